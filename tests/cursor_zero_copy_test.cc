// Zero-copy cursors: the lock-free path pins the leaf's buffer (ViewPins)
// and key()/value() view it directly. They must stay byte-identical until the
// cursor moves, whatever writers do meanwhile to that leaf (overwrite or erase
// its keys, split it, evict it): the engine moves a page off a pinned buffer
// before it writes. Without that relocation these tests fail (the same-thread
// test's overwrites land in the viewed bytes). Later moves see a consistent
// state: strict order, every untouched key once, each value one its key had.
// Both backends; the default pool (pins), 16 frames (eviction under the pin)
// and direct mode (no pool: copies).
#define BOOST_TEST_MODULE cursor_zero_copy
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/sync_wait.h>

#include "tests/support/backends.h"
#include "tests/support/pool_cases.h"
#include "tests/support/seed.h"
#include "tests/support/stopping_thread.h"
#include "tests/support/temp_dir.h"
#include "tests/support/thread_probe.h"

namespace bdata = boost::unit_test::data;
using corobtree::Cursor;
using corobtree::Database;
using corobtree::IoBackend;
using corobtree::sync_wait;

namespace {

constexpr std::uint32_t kKeys = 1200;  // key i with i % 4 == 0: never written after the load

using Case = corobtree::test::PoolCase;

std::string key_of(std::uint32_t i) {
  char k[16];
  std::snprintf(k, sizeof k, "k%05u", i);
  return k;
}

// Names its key and version; the length varies with both (moves cells).
std::string value_of(std::uint32_t key, std::uint32_t version) {
  std::string v = key_of(key) + "#" + std::to_string(version) + ":";
  const std::size_t len = (key * 7 + version * 13) % 50;
  for (std::size_t i = 0; i < len; ++i) v.push_back(static_cast<char>('a' + (version + i) % 26));
  return v;
}

// The cursor's entry is one its key had: `value_of(key, v)` for a version
// v <= `latest` (the last written; kNone: only the load's).
void check_entry(std::string_view key, std::string_view value, std::uint32_t latest) {
  BOOST_REQUIRE_MESSAGE(key.size() == 6 && key[0] == 'k', "a key never written: " << key);
  const std::uint32_t k = static_cast<std::uint32_t>(std::stoul(std::string(key.substr(1))));
  const std::string prefix = std::string(key) + "#";
  BOOST_REQUIRE_MESSAGE(value.substr(0, prefix.size()) == prefix,
                        "the value of " << key << " is not its own: " << value.substr(0, 20));
  const std::string_view rest = value.substr(prefix.size());
  const std::uint32_t v =
      static_cast<std::uint32_t>(std::stoul(std::string(rest.substr(0, rest.find(':')))));
  BOOST_REQUIRE_MESSAGE(v <= latest, key << " shows version " << v << " > " << latest);
  BOOST_REQUIRE_MESSAGE(value == value_of(k, v), "the value of " << key << " is torn");
}

std::unique_ptr<Database> load(const Case& c, corobtree::test::TempDir& dir) {
  std::unique_ptr<Database> db =
      sync_wait(Database::open(dir.file("zc.db"), corobtree::test::small_page_options(c)));
  std::vector<std::pair<std::string, std::string>> rows;
  for (std::uint32_t i = 0; i < kKeys; ++i) rows.emplace_back(key_of(i), value_of(i, 0));
  sync_wait(db->bulk_load(rows));
  return db;
}

}  // namespace

// One walk; after each move the same thread overwrites, erases and inserts
// keys around the cursor's (its own too, unless it is a stable key), then
// checks that key() and value() did not change; the next move goes on.
BOOST_DATA_TEST_CASE(same_thread_writes_under_the_cursor,
                     bdata::make(corobtree::test::pool_cases()), c) {
  const std::uint64_t seed = corobtree::test::test_seed("cursor zero copy " + c.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  std::unique_ptr<Database> db = load(c, dir);
  std::map<std::string, std::string> model;
  std::vector<std::uint32_t> version(kKeys, 0);
  for (std::uint32_t i = 0; i < kKeys; ++i) model[key_of(i)] = value_of(i, 0);
  // Cache the tree, so that the lock-free path (which pins) serves the moves.
  (void)sync_wait(db->scan({}));

  Cursor cur = db->cursor();
  std::string prev;
  std::uint32_t stable_seen = 0;
  std::uint64_t writes = 0;
  for (bool ok = sync_wait(cur.first()); ok; ok = sync_wait(cur.next())) {
    const std::string key(cur.key());
    const std::string value(cur.value());
    const std::string_view key_view = cur.key();
    const std::string_view value_view = cur.value();
    BOOST_REQUIRE_MESSAGE(prev < key, "walk out of order at " << key << " after " << prev);
    const std::uint32_t k = static_cast<std::uint32_t>(std::stoul(key.substr(1)));
    check_entry(key, value, version.at(k));
    if (k % 4 == 0) {
      ++stable_seen;
      BOOST_REQUIRE_EQUAL(value, value_of(k, 0));
    }
    prev = key;
    // Writes to the cursor's leaf and its neighbours (512-byte pages hold a
    // handful of entries: this overwrites, erases, splits and merges them).
    const int n = static_cast<int>(rng() % 12);
    for (int w = 0; w < n; ++w) {
      const std::int64_t at =
          static_cast<std::int64_t>(k) + static_cast<std::int64_t>(rng() % 9) - 4;
      if (at < 0 || at >= static_cast<std::int64_t>(kKeys) || at % 4 == 0) continue;
      const auto i = static_cast<std::uint32_t>(at);
      if (rng() % 4 == 0) {
        (void)sync_wait(db->erase(key_of(i)));
        model.erase(key_of(i));
      } else {
        ++version[i];
        sync_wait(db->put(key_of(i), value_of(i, version[i])));
        model[key_of(i)] = value_of(i, version[i]);
      }
      ++writes;
    }
    // Byte-identical until the cursor moves.
    BOOST_REQUIRE_MESSAGE(cur.key() == key && cur.value() == value,
                          "the cursor's entry " << key << " changed under it: " << cur.key()
                                                << " = " << cur.value().substr(0, 20));
    BOOST_REQUIRE(key_view == key && value_view == value);
  }
  BOOST_TEST(stable_seen == kKeys / 4);
  BOOST_TEST_MESSAGE(c.name() << ": " << writes << " writes under the cursor, "
                              << db->stats().pool.view_relocations << " relocations");
  // The pinned pool relocated pages the cursor viewed (no PinnedValue here).
  if (c.pool == SIZE_MAX) BOOST_CHECK_GT(db->stats().pool.view_relocations, 0U);
  // Quiet now: a walk sees exactly the model.
  {
    Cursor again = db->cursor();
    auto it = model.begin();
    for (bool ok = sync_wait(again.first()); ok; ok = sync_wait(again.next()), ++it) {
      BOOST_REQUIRE(it != model.end());
      BOOST_REQUIRE_EQUAL(again.key(), it->first);
      BOOST_REQUIRE_EQUAL(again.value(), it->second);
    }
    BOOST_REQUIRE(it == model.end());
  }
  BOOST_TEST(sync_wait(db->validate()).ok());
  sync_wait(db->close());
}

// The engine writes from another thread while the cursor walks: at each
// position the entry is read twice with a pause between (the writer keeps
// going), and must not change; the walk is ordered and complete.
BOOST_DATA_TEST_CASE(engine_writes_while_the_cursor_views,
                     bdata::make(corobtree::test::pool_cases()), c) {
  const std::uint64_t seed = corobtree::test::test_seed("cursor zero copy mt " + c.name());
  corobtree::test::Watchdog watchdog("cursor zero copy mt " + c.name());
  corobtree::test::TempDir dir;
  std::unique_ptr<Database> db = load(c, dir);
  (void)sync_wait(db->scan({}));
  std::vector<std::atomic<std::uint32_t>> version(kKeys);
  std::atomic<std::uint64_t> writes{0};
  corobtree::test::StoppingThread writer([&](const std::atomic<bool>& stop) {
    std::mt19937_64 rng(seed);
    while (!stop.load(std::memory_order_relaxed)) {
      const std::uint32_t i = static_cast<std::uint32_t>(rng() % kKeys);
      if (i % 4 == 0) continue;
      if (rng() % 4 == 0) {
        (void)sync_wait(db->erase(key_of(i)));
      } else {
        const std::uint32_t v = version[i].load(std::memory_order_relaxed) + 1;
        version[i].store(v, std::memory_order_relaxed);  // before the put: an upper bound
        sync_wait(db->put(key_of(i), value_of(i, v)));
      }
      writes.fetch_add(1, std::memory_order_relaxed);
    }
  });
  const int walks = corobtree::test::scaled(4, 2);
  for (int w = 0; w < walks; ++w) {
    Cursor cur = db->cursor();
    std::string prev;
    std::uint32_t stable_seen = 0;
    std::uint32_t step = 0;
    for (bool ok = sync_wait(cur.first()); ok; ok = sync_wait(cur.next()), ++step) {
      const std::string key(cur.key());
      const std::string value(cur.value());
      BOOST_REQUIRE_MESSAGE(prev < key, "walk out of order at " << key << " after " << prev);
      const std::uint32_t k = static_cast<std::uint32_t>(std::stoul(key.substr(1)));
      check_entry(key, value, version[k].load(std::memory_order_relaxed));
      if (k % 4 == 0) ++stable_seen;
      prev = key;
      if (step % 16 == 0) {
        // Let the writer change the leaf under the view.
        for (int y = 0; y < 20; ++y) std::this_thread::yield();
        BOOST_REQUIRE_MESSAGE(cur.key() == key && cur.value() == value,
                              "the cursor's entry " << key << " changed under it");
      }
    }
    BOOST_REQUIRE_EQUAL(stable_seen, kKeys / 4);
  }
  writer.stop();
  BOOST_TEST_MESSAGE(c.name() << ": " << walks << " walks beside " << writes.load() << " writes, "
                              << db->stats().pool.view_relocations << " relocations");
  BOOST_TEST(sync_wait(db->validate()).ok());
  sync_wait(db->close());
}

// A cursor reset by moving another into it, and one destroyed on another
// thread, release their pins: afterwards writes relocate nothing new.
BOOST_DATA_TEST_CASE(pins_released_on_reset_and_destroy,
                     bdata::make(corobtree::test::io_backends()), backend) {
  corobtree::test::TempDir dir;
  std::unique_ptr<Database> db = load({backend, SIZE_MAX}, dir);
  (void)sync_wait(db->scan({}));
  {
    Cursor a = db->cursor();
    BOOST_REQUIRE(sync_wait(a.first()));
    Cursor b = db->cursor();
    BOOST_REQUIRE(sync_wait(b.seek(key_of(kKeys / 2))));
    a = std::move(b);  // a's pin goes with its old TreeCursor
    BOOST_CHECK_EQUAL(a.key(), key_of(kKeys / 2));
    std::thread([c = std::move(a)]() mutable { (void)c; }).join();  // destroyed there
  }
  const std::uint64_t before = db->stats().pool.view_relocations;
  for (std::uint32_t i = 1; i < kKeys; i += 4) sync_wait(db->put(key_of(i), value_of(i, 1)));
  BOOST_CHECK_EQUAL(db->stats().pool.view_relocations, before);
  BOOST_TEST(sync_wait(db->validate()).ok());
  sync_wait(db->close());
}
