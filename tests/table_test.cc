// Typed tables: the key codecs preserve order (a < b <=> encode(a) < encode(b)
// as byte strings) and round-trip, malformed bytes throw kCorruption, and
// Table / BlockingTable agree with a std::map model on a real database file
// for every backend and pool size. Prints its seeds; `-- --seed=N` replays.
#define BOOST_TEST_MODULE table
#include <boost/mpl/list.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/codec.h>
#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/table.h>
#include "tests/support/db_matrix.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::BlockingDatabase;
using corobtree::BlockingTable;
using corobtree::Database;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::KeyCodec;
using corobtree::sync_wait;
using corobtree::Table;
using corobtree::Task;
using corobtree::ValueCodec;
using corobtree::test::DbConfig;

namespace {

using IntTypes = boost::mpl::list<std::int8_t, std::int16_t, std::int32_t, std::int64_t,
                                  std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t, char,
                                  long long, unsigned long long>;

template <typename T>
T random_int(std::mt19937_64& rng) {
  using L = std::numeric_limits<T>;
  switch (rng() % 4) {
    case 0: {  // the edges
      const T edges[] = {L::min(),
                         static_cast<T>(L::min() + 1),
                         L::max(),
                         static_cast<T>(L::max() - 1),
                         T(0),
                         T(1),
                         static_cast<T>(-1)};
      return edges[rng() % std::size(edges)];
    }
    case 1:  // near zero, so that equal values and sign changes are common
      return static_cast<T>(static_cast<std::int64_t>(rng() % 7) - 3);
    default: return static_cast<T>(rng());
  }
}

// Short strings over a small alphabet rich in 00, 01 and FF, so that equal
// strings, prefixes and embedded zeros are frequent.
std::string random_bytes(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] = {'\x00', '\x01', '\xff', 'a', '\x7f', '\x80'};
  std::string s(rng() % 6, '\0');
  for (char& c : s) c = kAlphabet[rng() % std::size(kAlphabet)];
  return s;
}

using Composite = std::tuple<std::int64_t, std::string, std::uint32_t>;

Composite random_composite(std::mt19937_64& rng) {
  // A small int64 range so that the string and uint32 parts decide often.
  const std::int64_t first =
      rng() % 8 == 0 ? random_int<std::int64_t>(rng) : static_cast<std::int64_t>(rng() % 3) - 1;
  return Composite{first, random_bytes(rng),
                   static_cast<std::uint32_t>(rng() % 3 == 0 ? rng() : rng() % 3)};
}

// For `pairs` random pairs: order and equality agree, and decode inverts encode.
template <typename T, typename Gen>
void check_order_property(const std::string& what, Gen generate, int pairs) {
  const auto seed = corobtree::test::test_seed(what);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < pairs; ++i) {
    const T a = generate(rng);
    const T b = generate(rng);
    const std::string ea = KeyCodec<T>::encode(a);
    const std::string eb = KeyCodec<T>::encode(b);
    BOOST_REQUIRE_MESSAGE((a < b) == (ea < eb),
                          what << ": order differs at pair " << i << " (seed " << seed << ")");
    BOOST_REQUIRE_MESSAGE((a == b) == (ea == eb),
                          what << ": equality differs at pair " << i << " (seed " << seed << ")");
    BOOST_REQUIRE_MESSAGE(KeyCodec<T>::decode(ea) == a,
                          what << ": round trip at pair " << i << " (seed " << seed << ")");
  }
}

template <typename F>
void require_corruption(F decode, const std::string& what) {
  try {
    decode();
  } catch (const Error& e) {
    BOOST_REQUIRE_MESSAGE(e.code() == ErrorCode::kCorruption, what << ": wrong code: " << e.what());
    return;
  }
  BOOST_FAIL(what << ": decoded malformed input without an error");
}

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------
// Codecs

BOOST_AUTO_TEST_CASE_TEMPLATE(integer_keys_preserve_order, T, IntTypes) {
  check_order_property<T>(std::string("integer keys of ") + std::to_string(sizeof(T)) + " bytes" +
                              (std::is_signed_v<T> ? " signed" : " unsigned"),
                          random_int<T>, 20000);
  BOOST_REQUIRE_EQUAL(KeyCodec<T>::encode(T(0)).size(), sizeof(T));
}

BOOST_AUTO_TEST_CASE(small_integers_exhaustive) {
  for (int a = -128; a < 128; ++a) {
    for (int b = -128; b < 128; ++b) {
      const auto sa = static_cast<std::int8_t>(a), sb = static_cast<std::int8_t>(b);
      BOOST_REQUIRE((sa < sb) ==
                    (KeyCodec<std::int8_t>::encode(sa) < KeyCodec<std::int8_t>::encode(sb)));
      const auto ua = static_cast<std::uint8_t>(a + 128), ub = static_cast<std::uint8_t>(b + 128);
      BOOST_REQUIRE((ua < ub) ==
                    (KeyCodec<std::uint8_t>::encode(ua) < KeyCodec<std::uint8_t>::encode(ub)));
    }
  }
  for (int v = std::numeric_limits<std::int16_t>::min();
       v < std::numeric_limits<std::int16_t>::max(); ++v) {
    const auto a = static_cast<std::int16_t>(v), b = static_cast<std::int16_t>(v + 1);
    BOOST_REQUIRE(KeyCodec<std::int16_t>::encode(a) < KeyCodec<std::int16_t>::encode(b));
    BOOST_REQUIRE_EQUAL(KeyCodec<std::int16_t>::decode(KeyCodec<std::int16_t>::encode(a)), a);
  }
}

BOOST_AUTO_TEST_CASE(integer_key_layout) {
  using L = std::numeric_limits<std::int64_t>;
  BOOST_CHECK(KeyCodec<std::int64_t>::encode(L::min()) == bytes({0, 0, 0, 0, 0, 0, 0, 0}));
  BOOST_CHECK(KeyCodec<std::int64_t>::encode(-1) ==
              bytes({0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  BOOST_CHECK(KeyCodec<std::int64_t>::encode(0) == bytes({0x80, 0, 0, 0, 0, 0, 0, 0}));
  BOOST_CHECK(KeyCodec<std::int64_t>::encode(L::max()) ==
              bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  BOOST_CHECK(KeyCodec<std::uint32_t>::encode(0x01020304u) == bytes({1, 2, 3, 4}));
  BOOST_CHECK(KeyCodec<std::int16_t>::encode(-2) == bytes({0x7f, 0xfe}));
}

BOOST_AUTO_TEST_CASE(string_keys_preserve_order) {
  check_order_property<std::string>("string keys", random_bytes, 50000);
  BOOST_CHECK(KeyCodec<std::string>::encode(bytes({'a', 0, 'b'})) == bytes({'a', 0, 'b'}));
}

BOOST_AUTO_TEST_CASE(tuple_keys_preserve_order) {
  check_order_property<Composite>("tuple keys", random_composite, 100000);
  using Nested = std::tuple<std::string, std::tuple<std::int32_t, std::string>, std::int8_t>;
  auto nested = [](std::mt19937_64& rng) {
    return Nested{
        random_bytes(rng),
        std::tuple<std::int32_t, std::string>{random_int<std::int32_t>(rng) % 2, random_bytes(rng)},
        random_int<std::int8_t>(rng)};
  };
  check_order_property<Nested>("nested tuple keys", nested, 50000);
}

BOOST_AUTO_TEST_CASE(tuple_string_escaping) {
  using Key = std::tuple<std::string, std::int64_t>;
  // A string sorts before its extensions, whatever follows it in the tuple.
  const Key ab9{"ab", 9};
  const Key ab0_0{std::string("ab\0", 3), 0};
  const Key abc0{"abc", 0};
  BOOST_CHECK(KeyCodec<Key>::encode(ab9) < KeyCodec<Key>::encode(ab0_0));
  BOOST_CHECK(KeyCodec<Key>::encode(ab0_0) < KeyCodec<Key>::encode(abc0));
  using One = std::tuple<std::string>;
  const One zeros{std::string("a\0\0", 3)};
  BOOST_CHECK(KeyCodec<One>::encode(zeros) == bytes({'a', 0, 0xff, 0, 0xff, 0, 1}));
  BOOST_CHECK(KeyCodec<One>::decode(KeyCodec<One>::encode(zeros)) == zeros);
  BOOST_CHECK(KeyCodec<One>::encode(One{""}) == bytes({0, 1}));
}

BOOST_AUTO_TEST_CASE(malformed_keys_throw_corruption) {
  using Key = std::tuple<std::string, std::int64_t>;
  require_corruption([] { return KeyCodec<std::int64_t>::decode(std::string(7, 'x')); },
                     "int64 short");
  require_corruption([] { return KeyCodec<std::int64_t>::decode(std::string(9, 'x')); },
                     "int64 long");
  require_corruption([] { return KeyCodec<std::uint16_t>::decode(""); }, "uint16 empty");
  require_corruption([] { return KeyCodec<Key>::decode(""); }, "tuple empty");
  require_corruption([] { return KeyCodec<Key>::decode("ab"); }, "tuple no terminator");
  require_corruption([] { return KeyCodec<Key>::decode(bytes({'a', 0})); }, "tuple lone 00");
  require_corruption(
      [] {
        return KeyCodec<Key>::decode(bytes({'a', 0, 2, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8}));
      },
      "tuple bad escape");
  require_corruption(
      [] {
        return KeyCodec<Key>::decode(bytes({'a', 0, 1, 1, 2, 3}));
      },
      "tuple short int");
  require_corruption(
      [] {
        return KeyCodec<Key>::decode(bytes({'a', 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
      },
      "tuple trailing byte");
  // The well-formed neighbour of the cases above decodes.
  BOOST_CHECK(KeyCodec<Key>::decode(bytes({'a', 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 7})) ==
              (Key{"a", 7}));
}

namespace {
struct Point {
  std::int32_t x;
  std::int32_t y;
  double weight;
  bool operator==(const Point&) const = default;
};
}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(integer_values_round_trip, T, IntTypes) {
  std::mt19937_64 rng(corobtree::test::test_seed("integer values"));
  for (int i = 0; i < 1000; ++i) {
    const T v = random_int<T>(rng);
    BOOST_REQUIRE_EQUAL(ValueCodec<T>::decode(ValueCodec<T>::encode(v)), v);
  }
  require_corruption([] { return ValueCodec<T>::decode(std::string(sizeof(T) + 1, 'x')); },
                     "long integer value");
}

BOOST_AUTO_TEST_CASE(other_values_round_trip) {
  BOOST_CHECK(ValueCodec<std::uint32_t>::encode(0x01020304u) ==
              bytes({4, 3, 2, 1}));  // little-endian
  BOOST_CHECK(ValueCodec<std::int16_t>::encode(-2) == bytes({0xfe, 0xff}));
  const std::string raw = bytes({0, 'x', 0xff, 0});
  BOOST_CHECK(ValueCodec<std::string>::decode(ValueCodec<std::string>::encode(raw)) == raw);
  BOOST_CHECK(ValueCodec<bool>::decode(ValueCodec<bool>::encode(true)));
  BOOST_CHECK(!ValueCodec<bool>::decode(ValueCodec<bool>::encode(false)));
  const Point p{-3, 7, 0.25};
  BOOST_CHECK(ValueCodec<Point>::decode(ValueCodec<Point>::encode(p)) == p);
  require_corruption([] { return ValueCodec<Point>::decode(std::string(sizeof(Point) - 1, 'x')); },
                     "short struct");
  require_corruption([] { return ValueCodec<bool>::decode(bytes({2})); }, "bool 2");
  require_corruption([] { return ValueCodec<bool>::decode(""); }, "bool empty");
}

// ---------------------------------------------------------------------------
// Tables on a database file

namespace {

using IntTable = Table<std::int64_t, std::string>;
using IntModel = std::map<std::int64_t, std::string>;
using Rows = std::vector<std::pair<std::int64_t, std::string>>;

std::string value_for(std::int64_t k) { return "v" + std::to_string(k); }

// Distinct keys in random order: the int64 edges, many near zero (both
// signs), the rest anywhere.
std::vector<std::int64_t> random_keys(std::mt19937_64& rng, std::size_t n) {
  using L = std::numeric_limits<std::int64_t>;
  std::set<std::int64_t> set{L::min(), L::min() + 1, -1, 0, 1, L::max() - 1, L::max()};
  while (set.size() < n) {
    set.insert(rng() % 2 == 0 ? static_cast<std::int64_t>(rng() % 200001) - 100000
                              : static_cast<std::int64_t>(rng()));
  }
  std::vector<std::int64_t> keys(set.begin(), set.end());
  std::shuffle(keys.begin(), keys.end(), rng);
  return keys;
}

// Rows (pair<K, V>) against a map range (pair<const K, V>), element by element.
template <typename Rows, typename It>
bool same_rows(const Rows& rows, It first, It last) {
  return std::equal(rows.begin(), rows.end(), first, last, [](const auto& a, const auto& b) {
    return a.first == b.first && a.second == b.second;
  });
}

template <typename K, typename V>
std::vector<std::pair<K, V>> model_scan(const std::map<K, V>& model, const std::optional<K>& lower,
                                        const std::optional<K>& upper, std::size_t limit,
                                        bool reverse) {
  std::vector<std::pair<K, V>> out;
  auto first = lower ? model.lower_bound(*lower) : model.begin();
  auto last = upper ? model.lower_bound(*upper) : model.end();
  if (lower && upper && *upper <= *lower) return out;
  if (!reverse) {
    for (auto it = first; it != last && out.size() < limit; ++it) out.push_back(*it);
  } else {
    for (auto it = last; it != first && out.size() < limit;) out.push_back(*--it);
  }
  return out;
}

std::optional<std::int64_t> random_bound(std::mt19937_64& rng,
                                         const std::vector<std::int64_t>& keys) {
  switch (rng() % 4) {
    case 0: return std::nullopt;
    case 1: return static_cast<std::int64_t>(rng());
    default: return keys[rng() % keys.size()];
  }
}

// Random range scans through `scan(lower, upper, limit, reverse)` against the model.
template <typename ScanFn>
void check_range_scans(ScanFn scan, const IntModel& model, const std::vector<std::int64_t>& keys,
                       std::mt19937_64& rng, std::uint64_t seed, int count) {
  for (int i = 0; i < count; ++i) {
    std::optional<std::int64_t> lower = random_bound(rng, keys);
    std::optional<std::int64_t> upper = random_bound(rng, keys);
    if (lower && upper && *upper < *lower && rng() % 4 != 0) std::swap(lower, upper);
    const std::size_t limit = rng() % 3 == 0 ? SIZE_MAX : rng() % 200;
    const bool reverse = rng() % 2 == 0;
    const Rows got = scan(lower, upper, limit, reverse);
    const Rows want = model_scan(model, lower, upper, limit, reverse);
    BOOST_REQUIRE_MESSAGE(got == want, "range scan " << i << " differs (seed " << seed << ", "
                                                     << (reverse ? "reverse" : "forward")
                                                     << ", got " << got.size() << " want "
                                                     << want.size() << ")");
  }
}

void check_full_scans(const Rows& forward, const Rows& backward, const IntModel& model) {
  BOOST_REQUIRE_EQUAL(forward.size(), model.size());
  BOOST_REQUIRE_EQUAL(backward.size(), model.size());
  BOOST_REQUIRE(same_rows(forward, model.begin(), model.end()));
  BOOST_REQUIRE(same_rows(backward, model.rbegin(), model.rend()));
}

}  // namespace

namespace {

// Each key is its own commit: 5,000 in the full-size pass, fewer under the
// sanitizers (COROBTREE_TEST_SCALE), where the commits dominate the run.
std::size_t table_keys() { return static_cast<std::size_t>(corobtree::test::scaled(5000, 1000)); }

}  // namespace

BOOST_DATA_TEST_CASE(blocking_table_int64_keys, bdata::make(corobtree::test::db_matrix()), cfg) {
  const auto seed = corobtree::test::test_seed("blocking table " + cfg.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("table.db");
  const std::vector<std::int64_t> keys = random_keys(rng, table_keys());
  IntModel model;
  {
    auto db = BlockingDatabase::open(path, cfg.options());
    BlockingTable<std::int64_t, std::string> t(db);
    for (std::int64_t k : keys) {
      t.put(k, value_for(k));
      model[k] = value_for(k);
    }
    t.put(keys[0], "overwritten");
    model[keys[0]] = "overwritten";
    check_full_scans(t.scan(std::nullopt, std::nullopt),
                     t.scan(std::nullopt, std::nullopt, SIZE_MAX, true), model);
    auto scan = [&t](auto... args) { return t.scan(args...); };
    check_range_scans(scan, model, keys, rng, seed, 100);
    BOOST_REQUIRE(t.get(keys[0]) == std::optional<std::string>("overwritten"));
    BOOST_REQUIRE(!t.get(-100001).has_value());  // outside the near-zero range, and not an edge
    for (std::size_t i = 0; i < keys.size(); i += 2) {
      BOOST_REQUIRE(t.erase(keys[i]));
      model.erase(keys[i]);
    }
    BOOST_REQUIRE(!t.erase(keys[0]));
    check_range_scans(scan, model, keys, rng, seed, 50);
    BOOST_REQUIRE_EQUAL(db.count(), model.size());
    db.close();
  }
  auto db = BlockingDatabase::open(path, cfg.options());
  BlockingTable<std::int64_t, std::string> t(db);
  check_full_scans(t.scan(std::nullopt, std::nullopt),
                   t.scan(std::nullopt, std::nullopt, SIZE_MAX, true), model);
  for (std::size_t i = 0; i < keys.size(); i += 97)
    BOOST_REQUIRE(t.get(keys[i]) ==
                  (i % 2 == 0 ? std::nullopt : std::optional(value_for(keys[i]))));
  const auto report = db.validate();
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
}

namespace {

Task<void> async_fill(IntTable& t, const std::vector<std::int64_t>& keys) {
  for (std::int64_t k : keys) {
    const std::string v = value_for(k);
    co_await t.put(k, v);
  }
}

// Erases every other key (and tries each twice); returns how many existed.
Task<std::size_t> async_erase_even(IntTable& t, const std::vector<std::int64_t>& keys) {
  std::size_t erased = 0;
  for (std::size_t i = 0; i < keys.size(); i += 2) {
    const bool first = co_await t.erase(keys[i]);
    const bool again = co_await t.erase(keys[i]);
    if (first && !again) ++erased;
  }
  co_return erased;
}

// Counts the keys whose get() matches the model.
Task<std::size_t> async_count_matches(IntTable& t, const std::vector<std::int64_t>& keys,
                                      const IntModel& model) {
  std::size_t matches = 0;
  for (std::int64_t k : keys) {
    const std::optional<std::string> got = co_await t.get(k);
    const auto it = model.find(k);
    const std::optional<std::string> want =
        it == model.end() ? std::nullopt : std::optional(it->second);
    if (got == want) ++matches;
  }
  co_return matches;
}

Task<Rows> async_scan(IntTable& t, std::optional<std::int64_t> lower,
                      std::optional<std::int64_t> upper, std::size_t limit, bool reverse) {
  Rows rows = co_await t.scan(lower, upper, limit, reverse);
  co_return rows;
}

}  // namespace

BOOST_DATA_TEST_CASE(async_table_int64_keys, bdata::make(corobtree::test::db_matrix()), cfg) {
  const auto seed = corobtree::test::test_seed("async table " + cfg.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("table.db");
  const std::vector<std::int64_t> keys = random_keys(rng, table_keys());
  IntModel model;
  for (std::int64_t k : keys) model[k] = value_for(k);

  auto db = sync_wait(Database::open(path, cfg.options()));
  IntTable t(*db);
  sync_wait(async_fill(t, keys));
  // Arguments are encoded at the call: the temporaries may die before the task runs.
  Task<void> late_put = t.put(7, std::string("seven"));
  sync_wait(std::move(late_put));
  model[7] = "seven";
  auto scan = [&t](std::optional<std::int64_t> lower, std::optional<std::int64_t> upper,
                   std::size_t limit,
                   bool reverse) { return sync_wait(async_scan(t, lower, upper, limit, reverse)); };
  check_full_scans(scan(std::nullopt, std::nullopt, SIZE_MAX, false),
                   scan(std::nullopt, std::nullopt, SIZE_MAX, true), model);
  check_range_scans(scan, model, keys, rng, seed, 100);
  BOOST_REQUIRE_EQUAL(sync_wait(async_erase_even(t, keys)), (keys.size() + 1) / 2);
  for (std::size_t i = 0; i < keys.size(); i += 2) model.erase(keys[i]);
  BOOST_REQUIRE_EQUAL(sync_wait(async_count_matches(t, keys, model)), keys.size());
  sync_wait(db->close());

  db = sync_wait(Database::open(path, cfg.options()));
  IntTable reopened(*db);
  BOOST_REQUIRE_EQUAL(sync_wait(async_count_matches(reopened, keys, model)), keys.size());
  const Rows all = sync_wait(reopened.scan(std::nullopt, std::nullopt));
  BOOST_REQUIRE(same_rows(all, model.begin(), model.end()));
  sync_wait(db->close());
}

BOOST_DATA_TEST_CASE(tuple_keyed_table, bdata::make(corobtree::test::db_matrix()), cfg) {
  using Key = std::tuple<std::string, std::int64_t>;
  const auto seed = corobtree::test::test_seed("tuple table " + cfg.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("tuple.db"), cfg.options());
  BlockingTable<Key, std::uint64_t> t(db);
  std::map<Key, std::uint64_t> model;
  const std::vector<std::string> users = {
      "", std::string(1, '\0'), "a", std::string("a\0", 2), "ab", "b\xff"};
  for (int i = 0; i < 2000; ++i) {
    const Key k{users[rng() % users.size()], random_int<std::int64_t>(rng) % 1000};
    const std::uint64_t v = rng();
    t.put(k, v);
    model[k] = v;
  }
  const auto all = t.scan(std::nullopt, std::nullopt);
  BOOST_REQUIRE(same_rows(all, model.begin(), model.end()));
  // (user, min) .. (user + "\0", min) is exactly the user's rows: no string lies between.
  for (const std::string& user : users) {
    const std::optional<Key> lower = Key{user, std::numeric_limits<std::int64_t>::min()};
    const std::optional<Key> upper =
        Key{user + std::string(1, '\0'), std::numeric_limits<std::int64_t>::min()};
    for (bool reverse : {false, true}) {
      const auto got = t.scan(lower, upper, 50, reverse);
      BOOST_REQUIRE_MESSAGE(got == model_scan(model, lower, upper, 50, reverse),
                            "user scan (seed " << seed << ")");
      for (const auto& row : got) BOOST_REQUIRE(std::get<0>(row.first) == user);
    }
  }
}

BOOST_DATA_TEST_CASE(prefixed_tables_share_a_database, bdata::make(corobtree::test::db_matrix()),
                     cfg) {
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("prefix.db"), cfg.options());
  BlockingTable<std::int64_t, std::string> numbers(db, "\x01");
  BlockingTable<std::string, std::int32_t> names(db, "\x02");
  BlockingTable<std::uint32_t, Point> points(db, "\xff");  // no successor: an open upper bound
  for (std::int64_t k = -50; k < 50; ++k) numbers.put(k, value_for(k));
  for (int i = 0; i < 30; ++i) names.put("name" + std::to_string(i), -i);
  for (std::uint32_t i = 0; i < 20; ++i)
    points.put(i, Point{static_cast<std::int32_t>(i), -1, i * 0.5});
  BOOST_REQUIRE_EQUAL(numbers.scan(std::nullopt, std::nullopt).size(), 100u);
  BOOST_REQUIRE_EQUAL(numbers.scan(std::nullopt, std::nullopt, SIZE_MAX, true).front().first, 49);
  BOOST_REQUIRE_EQUAL(names.scan(std::nullopt, std::nullopt).size(), 30u);
  BOOST_REQUIRE_EQUAL(names.scan(std::nullopt, std::nullopt, 1, true).front().first, "name9");
  BOOST_REQUIRE_EQUAL(points.scan(std::nullopt, std::nullopt).size(), 20u);
  BOOST_REQUIRE(points.get(3) == (Point{3, -1, 1.5}));
  BOOST_REQUIRE(!names.get("missing").has_value());
  // A stray key inside a table's range that is not a K surfaces as corruption.
  db.put(bytes({0x01, 1, 2, 3}), "junk");
  require_corruption([&numbers] { return numbers.scan(std::nullopt, std::nullopt); }, "stray key");
  BOOST_REQUIRE_EQUAL(names.scan(std::nullopt, std::nullopt).size(), 30u);
}
