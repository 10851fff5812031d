// Compaction (Database::compact, engine/db/compact.cc), on both backends:
//  - a randomly loaded database with 90% of its keys deleted shrinks to at
//    most 1.2x a fresh bulk load of the keys left (sizes printed);
//  - contents equal the model before and after, validate() passes, nothing
//    is free, and reopening gives the same; overflow values, minimum degrees,
//    empty and one-key databases, a session that only read, a leftover copy;
//  - gets, cursors (forward and reverse, opened before) and writers running
//    while compact() does, with every read suspending (so they interleave);
//  - an injected I/O error at every operation of a compaction: before the
//    rename the database goes on unchanged;
//  - a power loss at every operation of a compaction (the rename included,
//    and the operation right after it): 0 lost keys, a valid tree on reopen.
#define BOOST_TEST_MODULE compact
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>
#include <corobtree/yield.h>
#include "io/disk_manager.h"
#include "io/forwarding_disk.h"
#include "tests/support/backends.h"
#include "tests/support/db_matrix.h"
#include "tests/support/fault_disk.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace std {  // lets Boost.Test print optional values in failed checks
inline std::ostream& boost_test_print_type(std::ostream& os, const std::optional<std::string>& v) {
  return v ? os << '"' << *v << '"' : os << "nullopt";
}
}  // namespace std

namespace bdata = boost::unit_test::data;
using corobtree::BlockingDatabase;
using corobtree::Database;
using corobtree::DiskManager;
using corobtree::Durability;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::IoBackend;
using corobtree::Options;
using corobtree::ScanOptions;
using corobtree::Task;
using corobtree::WriteBatch;
using corobtree::test::FaultPlan;
using corobtree::test::TempDir;

namespace {

using Model = std::map<std::string, std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

const std::vector<IoBackend> kBackends = {IoBackend::kUring, IoBackend::kPread};

// /dev/shm when it exists: fsync is free there (the fault layer models it).

std::uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

bool exists(const std::string& path) { return std::filesystem::exists(path); }

ino_t inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

std::string random_key(std::mt19937_64& rng) {
  static const char kHex[] = "0123456789abcdef";
  std::string k = "k";
  for (int i = 0; i < 15; ++i) k += kHex[rng() % 16];
  return k;
}

// Mostly small values; every `overflow_one_in`-th needs overflow pages.
std::string random_value(std::mt19937_64& rng, std::size_t min, std::size_t max,
                         std::uint64_t overflow_one_in = 0) {
  std::size_t n = min + rng() % (max - min + 1);
  if (overflow_one_in && rng() % overflow_one_in == 0) n = 1500 + rng() % 6000;
  std::string v(n, ' ');
  for (char& c : v) c = static_cast<char>('a' + rng() % 26);
  return v;
}

void expect_contents(BlockingDatabase& db, const Model& m, const std::string& what) {
  const Pairs all = db.scan();
  BOOST_REQUIRE_MESSAGE(all == Pairs(m.begin(), m.end()),
                        what << ": " << all.size() << " pairs, the model has " << m.size());
  ScanOptions reverse;
  reverse.reverse = true;
  const Pairs back = db.scan(reverse);
  BOOST_REQUIRE_MESSAGE(back == Pairs(m.rbegin(), m.rend()), what << ": reverse scan differs");
  BOOST_REQUIRE_EQUAL(db.count(), m.size());
}

void expect_valid(BlockingDatabase& db, const std::string& what) {
  const auto r = db.validate();
  BOOST_REQUIRE_MESSAGE(r.ok(), what << ": " << r.summary());
}

// After a compaction: nothing free, and the file holds exactly the tree's pages.
void expect_packed(BlockingDatabase& db, const std::string& what) {
  const auto s = db.stats();
  BOOST_TEST(s.free_pages == 0u, what);
  BOOST_TEST(s.pages * s.page_size == file_size(db.path()), what);
  const auto r = db.validate();
  BOOST_REQUIRE_MESSAGE(r.ok(), what << ": " << r.summary());
  BOOST_TEST(r.free_pages == 0u, what);
  BOOST_TEST(2 + r.leaves + r.inner_nodes + r.overflow_pages == s.pages, what);
}

void write_in_batches(BlockingDatabase& db, const Pairs& puts, const std::vector<std::string>& dels,
                      std::size_t batch) {
  for (std::size_t i = 0; i < puts.size(); i += batch) {
    WriteBatch b;
    for (std::size_t j = i; j < std::min(puts.size(), i + batch); ++j) {
      b.put(puts[j].first, puts[j].second);
    }
    db.write(b);
  }
  for (std::size_t i = 0; i < dels.size(); i += batch) {
    WriteBatch b;
    for (std::size_t j = i; j < std::min(dels.size(), i + batch); ++j) b.erase(dels[j]);
    db.write(b);
  }
}

void remove_db(const std::string& path) {
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-wal2");
  std::filesystem::remove(path + ".compacting");
}

}  // namespace

// ---- space given back -----------------------------------------------------------

BOOST_DATA_TEST_CASE(ninety_percent_deleted_shrinks_to_a_fresh_load, bdata::make(kBackends),
                     backend) {
  const std::uint64_t seed = corobtree::test::test_seed("ninety_percent_deleted");
  std::mt19937_64 rng(seed);
  TempDir dir(corobtree::test::fast_temp_base());
  const std::string path = dir.file("big.db");
  Options o;
  o.backend = backend;
  o.durability = Durability::kRelaxed;
  const std::size_t n = static_cast<std::size_t>(corobtree::test::scaled(20000, 4000));

  Model model;
  Pairs puts;
  while (model.size() < n) {
    std::string k = random_key(rng);
    if (model.count(k)) continue;
    std::string v = random_value(rng, 60, 140);
    model[k] = v;
    puts.emplace_back(std::move(k), std::move(v));  // random order
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : model) keys.push_back(k);
  std::shuffle(keys.begin(), keys.end(), rng);
  keys.resize(n * 9 / 10);
  for (const std::string& k : keys) model.erase(k);

  BlockingDatabase db = BlockingDatabase::open(path, o);
  write_in_batches(db, puts, {}, 1000);
  db.checkpoint();
  const std::uint64_t loaded = file_size(path);
  write_in_batches(db, {}, keys, 1000);
  db.checkpoint();
  const std::uint64_t deleted = file_size(path);
  db.compact();
  const std::uint64_t compacted = file_size(path);
  expect_contents(db, model, "after compact");
  expect_packed(db, "after compact");
  db.close();
  BOOST_TEST(file_size(path) == compacted);
  BOOST_TEST(!exists(path + ".compacting"));
  {
    BlockingDatabase again = BlockingDatabase::open(path, o);
    expect_contents(again, model, "reopened");
    expect_valid(again, "reopened");
    again.close();
  }

  const std::string fresh_path = dir.file("fresh.db");
  BlockingDatabase fresh = BlockingDatabase::open(fresh_path, o);
  fresh.bulk_load(Pairs(model.begin(), model.end()));
  fresh.close();
  const std::uint64_t fresh_size = file_size(fresh_path);
  const double ratio = static_cast<double>(compacted) / static_cast<double>(fresh_size);
  BOOST_TEST_MESSAGE(corobtree::backend_name(backend)
                     << ": " << n << " random keys: " << loaded << " bytes loaded, " << deleted
                     << " bytes after deleting 90%, " << compacted << " bytes after compact(), "
                     << fresh_size << " bytes for a fresh bulk load of the " << model.size()
                     << " keys left: ratio " << ratio);
  BOOST_TEST(deleted >= loaded);  // deleting alone gives nothing back
  BOOST_TEST(ratio <= 1.2);
}

// ---- contents -------------------------------------------------------------------

BOOST_DATA_TEST_CASE(compact_keeps_every_pair, bdata::make(corobtree::test::db_matrix()), cfg) {
  const std::uint64_t seed = corobtree::test::test_seed("compact_keeps_every_pair " + cfg.name());
  for (const std::uint32_t t : {0u, 3u}) {
    std::mt19937_64 rng(seed + t);
    TempDir dir(corobtree::test::fast_temp_base());
    const std::string path = dir.file("c.db");
    Options o = cfg.options(t);
    o.page_size = 1024;  // a deeper tree, and many overflow chains
    const std::string what = cfg.name() + " t=" + std::to_string(t);
    BlockingDatabase db = BlockingDatabase::open(path, o);
    Model model;
    const int ops = corobtree::test::scaled(800, 200);
    std::vector<std::string> space;
    for (int i = 0; i < 2000; ++i) space.push_back(random_key(rng));
    for (int i = 0; i < ops; ++i) {
      const std::string& k = space[rng() % space.size()];
      const std::string v = random_value(rng, 0, 100, 8);
      db.put(k, v);
      model[k] = v;
    }
    std::vector<std::string> dels;
    for (const auto& [k, v] : model) {
      if (rng() % 10 < 7) dels.push_back(k);
    }
    for (const std::string& k : dels) model.erase(k);
    write_in_batches(db, {}, dels, 50);
    const auto before = db.stats();
    db.compact();
    expect_contents(db, model, what + " after compact");
    expect_packed(db, what + " after compact");
    BOOST_TEST(db.stats().pages < before.pages, what);

    // The compacted database takes writes, and compacts again.
    for (int i = 0; i < ops / 4; ++i) {
      const std::string& k = space[rng() % space.size()];
      if (rng() % 3 == 0) {
        db.erase(k);
        model.erase(k);
      } else {
        const std::string v = random_value(rng, 0, 100, 8);
        db.put(k, v);
        model[k] = v;
      }
    }
    expect_contents(db, model, what + " after writes");
    expect_valid(db, what + " after writes");
    db.compact();
    expect_contents(db, model, what + " after the second compact");
    expect_packed(db, what + " after the second compact");
    db.close();
    BlockingDatabase again = BlockingDatabase::open(path, o);
    expect_contents(again, model, what + " reopened");
    expect_valid(again, what + " reopened");
    again.close();
  }
}

// Node shapes: tiny and maximal keys, values inline and in overflow chains,
// small and large pages, minimum degrees; each packed copy must validate (fill
// bounds, the 2t-1 cap, separators) and hold the same pairs.
BOOST_AUTO_TEST_CASE(packed_copies_of_every_shape_validate) {
  const std::uint64_t seed = corobtree::test::test_seed("packed_copies_of_every_shape");
  std::mt19937_64 rng(seed);
  TempDir dir(corobtree::test::fast_temp_base());
  std::uint64_t copies = 0;
  for (const std::uint32_t page : {512u, 4096u}) {
    for (const std::uint32_t t : {0u, 2u, 3u, 6u}) {
      for (const std::size_t n :
           {std::size_t{1}, std::size_t{9}, std::size_t{150}, std::size_t{900}}) {
        for (int shape = 0; shape < 3; ++shape) {
          const std::string path = dir.file("shape.db");
          remove_db(path);
          Options o;
          o.backend = IoBackend::kPread;
          o.page_size = page;
          o.minimum_degree = t;
          o.pool_pages = 64;
          o.durability = Durability::kRelaxed;
          BlockingDatabase db = BlockingDatabase::open(path, o);
          const std::size_t max_key = db.max_key_size();
          Model model;
          while (model.size() < n) {
            std::string k;
            std::string v;
            if (shape == 0) {  // tiny pairs: many cells per page
              k = random_key(rng).substr(0, 1 + rng() % 4);
              v = std::string(rng() % 3, 'v');
            } else if (shape == 1) {  // the longest keys: few cells per page
              k = random_key(rng) + std::string(max_key - 16, 'k');
              v = std::string(rng() % 8, 'v');
            } else {  // mixed, some values in overflow chains
              k = random_key(rng).substr(0, 2 + rng() % 15) +
                  std::string(rng() % (max_key / 2), 'm');
              v = random_value(rng, 0, page / 3, 5);
            }
            model[k] = v;
          }
          write_in_batches(db, Pairs(model.begin(), model.end()), {}, 100);
          std::vector<std::string> dels;
          for (const auto& [k, v] : model) {
            if (rng() % 3 == 0) dels.push_back(k);
          }
          write_in_batches(db, {}, dels, 100);
          for (const std::string& k : dels) model.erase(k);
          db.compact();
          const std::string what = "page " + std::to_string(page) + " t=" + std::to_string(t) +
                                   " n=" + std::to_string(n) + " shape " + std::to_string(shape);
          expect_contents(db, model, what);
          expect_packed(db, what);
          db.close();
          ++copies;
        }
      }
    }
  }
  BOOST_TEST_MESSAGE(copies << " packed copies validated");
}

BOOST_DATA_TEST_CASE(small_empty_and_read_only_databases, bdata::make(kBackends), backend) {
  TempDir dir(corobtree::test::fast_temp_base());
  Options o;
  o.backend = backend;
  o.pool_pages = 16;
  {
    const std::string path = dir.file("empty.db");
    BlockingDatabase db = BlockingDatabase::open(path, o);
    db.compact();
    BOOST_TEST(db.stats().pages == 3u);  // two meta pages and the empty root leaf
    expect_contents(db, {}, "empty");
    expect_packed(db, "empty");
    db.put("a", "1");
    db.close();
    BlockingDatabase again = BlockingDatabase::open(path, o);
    expect_contents(again, {{"a", "1"}}, "empty, then one put");
    again.close();
  }
  {
    // Everything erased: back to one empty leaf.
    const std::string path = dir.file("erased.db");
    BlockingDatabase db = BlockingDatabase::open(path, o);
    for (int i = 0; i < 500; ++i) db.put("key" + std::to_string(i), std::string(300, 'x'));
    for (int i = 0; i < 500; ++i) db.erase("key" + std::to_string(i));
    db.compact();
    BOOST_TEST(db.stats().pages == 3u);
    expect_packed(db, "all erased");
    db.close();
    BOOST_TEST(file_size(path) == 3u * 4096u);
  }
  {
    // A session that only reads, with a leftover copy from a crashed compaction.
    const std::string path = dir.file("read.db");
    Model model;
    {
      BlockingDatabase db = BlockingDatabase::open(path, o);
      for (int i = 0; i < 300; ++i) {
        model["r" + std::to_string(i)] = std::string(static_cast<std::size_t>(i) * 10, 'v');
        db.put("r" + std::to_string(i), model["r" + std::to_string(i)]);
      }
      db.close();
    }
    std::ofstream(path + ".compacting") << "junk left by a crash";
    BlockingDatabase db = BlockingDatabase::open(path, o);
    BOOST_TEST(db.get("r7") == model["r7"]);
    db.compact();
    BOOST_TEST(!exists(path + ".compacting"));
    expect_contents(db, model, "read-only session");
    expect_packed(db, "read-only session");
    db.close();
    BlockingDatabase again = BlockingDatabase::open(path, o);
    expect_contents(again, model, "read-only session, reopened");
    again.close();
    // A closed database refuses.
    BOOST_CHECK_EXCEPTION(corobtree::sync_wait(again.async().compact()), Error,
                          [](const Error& e) { return e.code() == ErrorCode::kClosed; });
  }
}

// ---- concurrency ----------------------------------------------------------------

namespace {

// Every read and write suspends first, so that on both backends the other tasks run
// while compaction (and every reader) waits for the disk.
class YieldingDisk final : public corobtree::ForwardingDiskManager {
 public:
  explicit YieldingDisk(std::unique_ptr<DiskManager> inner)
      : ForwardingDiskManager(std::move(inner)) {}
  Task<void> read_block(corobtree::BlockId id, std::span<std::byte> out) override {
    co_await corobtree::yield();
    co_await inner().read_block(id, out);
  }
  Task<void> write_block(corobtree::BlockId id, std::span<const std::byte> data) override {
    co_await corobtree::yield();
    co_await inner().write_block(id, data);
  }
};

struct Shared {
  bool compacting = false;
  bool done = false;
  std::uint64_t gets_during = 0;
  std::uint64_t steps_during = 0;
  std::uint64_t writes_before_done = 0;
  std::vector<std::string> problems;
};

Task<void> compact_task(Database& db, Shared& s) {
  s.compacting = true;
  co_await db.compact();
  s.compacting = false;
  s.done = true;
}

Task<void> reader_task(Database& db, const Model& model, std::vector<std::string> keys,
                       std::uint64_t seed, Shared& s) {
  std::mt19937_64 rng(seed);
  while (!s.done) {
    const std::string key =
        rng() % 8 == 0 ? "absent" + std::to_string(rng() % 100) : keys[rng() % keys.size()];
    const std::optional<std::string> got = co_await db.get(key);
    const auto it = model.find(key);
    const std::optional<std::string> want =
        it == model.end() ? std::nullopt : std::optional<std::string>(it->second);
    if (got != want) s.problems.push_back("get " + key + " differs from the model");
    if (s.compacting) ++s.gets_during;
    co_await corobtree::yield();
  }
}

// Walks `c` (positioned already) to its end; keys outside the model (the
// writers') may or may not show up.
Task<void> cursor_task(corobtree::Cursor& c, std::vector<std::string> expected, Shared& s) {
  std::vector<std::string> seen;
  while (c.valid()) {
    const std::string k(c.key());
    if (k.rfind("zz", 0) != 0) seen.push_back(k);
    const bool ok = co_await c.next();
    if (s.compacting) ++s.steps_during;
    if (!ok) break;
    co_await corobtree::yield();
  }
  if (seen != expected) {
    s.problems.push_back("a cursor saw " + std::to_string(seen.size()) + " model keys, expected " +
                         std::to_string(expected.size()));
  }
}

Task<void> writer_task(Database& db, Shared& s, int n) {
  while (!s.compacting && !s.done) co_await corobtree::yield();
  for (int i = 0; i < n; ++i) {
    const std::string key = "zzw" + std::to_string(i);
    const std::string value = "written during compaction " + std::to_string(i);
    co_await db.put(key, value);
    if (!s.done) ++s.writes_before_done;  // a writer waits for the compaction
  }
}

Task<void> run_concurrently(Database& db, const Model& model, std::uint64_t seed, Shared& s) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : model) keys.push_back(k);
  // Cursors opened and positioned before the compaction starts.
  corobtree::Cursor forward = db.cursor();
  bool ok = co_await forward.first();
  for (std::size_t i = 0; ok && i < keys.size() / 3; ++i) ok = co_await forward.next();
  const std::vector<std::string> forward_rest(
      keys.begin() + static_cast<std::ptrdiff_t>(keys.size() / 3), keys.end());
  ScanOptions rev;
  rev.reverse = true;
  rev.upper = keys[keys.size() / 2];
  corobtree::Cursor backward = db.cursor(rev);
  ok = co_await backward.first();
  std::vector<std::string> backward_rest(
      keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(keys.size() / 2));
  std::reverse(backward_rest.begin(), backward_rest.end());

  std::vector<Task<void>> tasks;
  tasks.push_back(compact_task(db, s));
  for (std::uint64_t r = 0; r < 3; ++r) tasks.push_back(reader_task(db, model, keys, seed + r, s));
  tasks.push_back(cursor_task(forward, forward_rest, s));
  tasks.push_back(cursor_task(backward, backward_rest, s));
  tasks.push_back(writer_task(db, s, 20));
  co_await corobtree::when_all(std::move(tasks));
}

}  // namespace

BOOST_DATA_TEST_CASE(reads_cursors_and_writes_during_compaction, bdata::make(kBackends), backend) {
  const std::uint64_t seed = corobtree::test::test_seed("reads_cursors_and_writes_during");
  for (const std::size_t pool : {std::size_t{16}, std::size_t{0}, std::size_t{4096}}) {
    std::mt19937_64 rng(seed);
    TempDir dir(corobtree::test::fast_temp_base());
    const std::string path = dir.file("busy.db");
    Options o;
    o.backend = backend;
    o.pool_pages = pool;
    o.page_size = 1024;
    o.durability = Durability::kRelaxed;
    o.wrap_disk = [](std::unique_ptr<DiskManager> d) -> std::unique_ptr<DiskManager> {
      return std::make_unique<YieldingDisk>(std::move(d));
    };
    const std::string what =
        std::string(corobtree::backend_name(backend)) + "/pool" + std::to_string(pool);
    Model model;
    BlockingDatabase db = BlockingDatabase::open(path, o);
    Pairs puts;
    for (int i = 0; i < corobtree::test::scaled(1500, 400); ++i) {
      const std::string k = random_key(rng);
      const std::string v = random_value(rng, 0, 120, 16);
      puts.emplace_back(k, v);
      model[k] = v;
    }
    std::vector<std::string> dels;
    for (const auto& [k, v] : model) {
      if (rng() % 2 == 0) dels.push_back(k);
    }
    for (const std::string& k : dels) model.erase(k);
    write_in_batches(db, puts, dels, 200);

    Shared s;
    corobtree::sync_wait(run_concurrently(db.async(), model, seed, s));
    for (const std::string& p : s.problems) BOOST_ERROR(what << ": " << p);
    BOOST_TEST_MESSAGE(what << ": " << s.gets_during << " gets and " << s.steps_during
                            << " cursor steps while compact() ran");
    BOOST_TEST(s.done);
    BOOST_TEST(s.gets_during > 0u, what);
    BOOST_TEST(s.steps_during > 0u, what);
    BOOST_TEST(s.writes_before_done == 0u, what);
    for (int i = 0; i < 20; ++i) {
      model["zzw" + std::to_string(i)] = "written during compaction " + std::to_string(i);
    }
    expect_contents(db, model, what + " afterwards");
    expect_valid(db, what + " afterwards");
    db.close();
    BlockingDatabase again = BlockingDatabase::open(path, o);
    expect_contents(again, model, what + " reopened");
    again.close();
  }
}

// ---- failures -------------------------------------------------------------------

namespace {

Options sweep_options(IoBackend backend, std::size_t pool_pages) {
  Options o;
  o.backend = backend;
  o.pool_pages = pool_pages;
  o.page_size = 1024;
  o.durability = Durability::kSync;
  return o;
}

// A database with overflow values and free pages, closed (no log).
Model make_template(const std::string& path, const Options& o, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  remove_db(path);
  BlockingDatabase db = BlockingDatabase::open(path, o);
  Model model;
  Pairs puts;
  for (int i = 0; i < 160; ++i) {
    const std::string k = random_key(rng);
    const std::string v = random_value(rng, 10, 150, 10);
    puts.emplace_back(k, v);
    model[k] = v;
  }
  std::vector<std::string> dels;
  for (const auto& [k, v] : model) {
    if (rng() % 10 < 6) dels.push_back(k);
  }
  for (const std::string& k : dels) model.erase(k);
  write_in_batches(db, puts, dels, 40);
  db.close();
  return model;
}

void copy_template(const std::string& from, const std::string& to) {
  remove_db(to);
  std::filesystem::copy_file(from, to);
}

// The workload around the compaction: commits before it (so that its
// checkpoint has work), the compaction, commits after it.
struct Step {
  bool compact = false;
  std::string key;
  std::optional<std::string> value;  // nullopt: erase
};

std::vector<Step> make_steps(std::uint64_t seed, const Model& base) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> keys;
  for (const auto& [k, v] : base) keys.push_back(k);
  std::vector<Step> steps;
  for (int phase = 0; phase < 2; ++phase) {
    for (int i = 0; i < 12; ++i) {
      Step s;
      if (rng() % 3 == 0 && !keys.empty()) {
        s.key = keys[rng() % keys.size()];
      } else {
        s.key = random_key(rng);
        s.value = random_value(rng, 10, 150, 6);
      }
      if (rng() % 4 == 0 && !keys.empty()) s.value = random_value(rng, 10, 150, 6);
      steps.push_back(s);
    }
    if (phase == 0) steps.push_back(Step{true, "", std::nullopt});
  }
  return steps;
}

void apply(Model& m, const Step& s) {
  if (s.compact) return;
  if (s.value) {
    m[s.key] = *s.value;
  } else {
    m.erase(s.key);
  }
}

Model model_after(Model m, const std::vector<Step>& steps, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) apply(m, steps[i]);
  return m;
}

struct RunResult {
  std::size_t acked = 0;
  bool failed = false;
  std::uint64_t compact_begin = 0;  // plan->ops() when the compaction started
  std::uint64_t compact_end = 0;    // ... and when it returned
};

RunResult run_steps(const std::string& path, Options o, const std::vector<Step>& steps,
                    const std::shared_ptr<FaultPlan>& plan, std::optional<std::uint64_t> crash_at) {
  RunResult r;
  o.wrap_disk = plan->wrapper();
  BlockingDatabase db = BlockingDatabase::open(path, o);
  if (crash_at) plan->crash_at = plan->ops() + *crash_at;
  const std::uint64_t at_open = plan->ops();
  for (std::size_t i = 0; i < steps.size(); ++i) {
    try {
      if (steps[i].compact) {
        r.compact_begin = plan->ops() - at_open;
        db.compact();
        r.compact_end = plan->ops() - at_open;
      } else if (steps[i].value) {
        db.put(steps[i].key, *steps[i].value);
      } else {
        db.erase(steps[i].key);
      }
    } catch (const Error&) {
      r.failed = true;
      break;
    }
    r.acked = i + 1;
  }
  try {
    db.close();
  } catch (const Error&) {
    r.failed = true;
  }
  return r;
}

}  // namespace

// One injected I/O error at every operation of a compaction. Before the
// rename, nothing changed: the database goes on (the copy is deleted).
BOOST_DATA_TEST_CASE(an_io_error_during_compaction_changes_nothing, bdata::make(kBackends),
                     backend) {
  const std::uint64_t seed = corobtree::test::test_seed("an_io_error_during_compaction");
  TempDir dir(corobtree::test::fast_temp_base());
  const std::string tpl = dir.file("template.db");
  const std::string path = dir.file("e.db");
  const Options o = sweep_options(backend, 16);
  const Model model = make_template(tpl, o, seed);
  // Where the compaction's operations are, from a fault-free run.
  std::uint64_t begin = 0;
  std::uint64_t rename = 0;
  std::uint64_t end = 0;
  {
    copy_template(tpl, path);
    auto plan = std::make_shared<FaultPlan>(seed);
    Options po = o;
    po.wrap_disk = plan->wrapper();
    BlockingDatabase db = BlockingDatabase::open(path, po);
    begin = plan->ops();
    db.compact();
    end = plan->ops();
    BOOST_REQUIRE_EQUAL(plan->rename_ops().size(), 1u);
    rename = plan->rename_ops()[0];
    db.close();
  }
  BOOST_REQUIRE(begin < rename && rename < end);
  // Up to 60 of them, evenly spread, the rename and the operation before it included.
  std::vector<std::uint64_t> at_ops;
  const std::uint64_t span = rename - begin + 1;
  const std::uint64_t want = static_cast<std::uint64_t>(corobtree::test::scaled(60, 20));
  for (std::uint64_t i = 0; i < std::min(span, want); ++i) {
    at_ops.push_back(begin + i * span / std::min(span, want));
  }
  at_ops.push_back(rename - 1);
  at_ops.push_back(rename);
  std::sort(at_ops.begin(), at_ops.end());
  at_ops.erase(std::unique(at_ops.begin(), at_ops.end()), at_ops.end());
  std::uint64_t points = 0;
  for (const std::uint64_t at : at_ops) {
    copy_template(tpl, path);
    auto plan = std::make_shared<FaultPlan>(seed + at);
    plan->fail_at = at;
    plan->write_errno = at % 2 == 0 ? EIO : ENOSPC;
    Options po = o;
    po.wrap_disk = plan->wrapper();
    BlockingDatabase db = BlockingDatabase::open(path, po);
    BOOST_REQUIRE_EQUAL(plan->ops(), begin);
    const std::string what =
        "error at op " + std::to_string(at) + " (rename at " + std::to_string(rename) + ")";
    bool threw = false;
    try {
      db.compact();
    } catch (const Error& e) {
      threw = true;
      BOOST_TEST((e.code() == ErrorCode::kIoError || e.code() == ErrorCode::kNoSpace), what);
    }
    BOOST_REQUIRE_MESSAGE(threw, what << ": compact() did not report it");
    BOOST_TEST(!exists(path + ".compacting"), what);
    db.put("after", "the failed compaction");  // not stopped
    Model m = model;
    m["after"] = "the failed compaction";
    expect_contents(db, m, what);
    db.close();
    BlockingDatabase again = BlockingDatabase::open(path, o);
    expect_contents(again, m, what + ", reopened");
    expect_valid(again, what + ", reopened");
    again.close();
    ++points;
  }
  BOOST_TEST_MESSAGE(corobtree::backend_name(backend)
                     << ": " << points << " injected errors over the " << end - begin
                     << " operations of a compaction; the database went on after each");

  // A stopped database refuses to compact, as it refuses writes.
  copy_template(tpl, path);
  auto plan = std::make_shared<FaultPlan>(seed);
  Options po = o;
  po.wrap_disk = plan->wrapper();
  BlockingDatabase db = BlockingDatabase::open(path, po);
  plan->fail_at = plan->ops();
  plan->persistent = true;
  BOOST_CHECK_THROW(db.put("x", "y"), Error);
  BOOST_CHECK_THROW(db.compact(), Error);
}

namespace {

struct SweepConfig {
  IoBackend backend;
  std::size_t pool_pages;
  std::string name() const {
    return std::string(corobtree::backend_name(backend)) + "/pool" + std::to_string(pool_pages);
  }
};
std::ostream& operator<<(std::ostream& os, const SweepConfig& c) { return os << c.name(); }

const std::vector<SweepConfig> kSweeps = {
    {IoBackend::kPread, 16}, {IoBackend::kUring, 16}, {IoBackend::kPread, 0}};

}  // namespace

// A power loss at every operation of a compaction (and at some before and
// after it): the reopened database is valid and holds every acknowledged
// commit (and perhaps the one in flight), whichever file the name reached.
BOOST_DATA_TEST_CASE(power_loss_at_every_point_of_a_compaction, bdata::make(kSweeps), cfg) {
  const std::uint64_t seed = corobtree::test::test_seed("power_loss_compaction " + cfg.name());
  TempDir dir(corobtree::test::fast_temp_base());
  const std::string tpl = dir.file("template.db");
  const std::string path = dir.file("p.db");
  const Options o = sweep_options(cfg.backend, cfg.pool_pages);
  const Model base = make_template(tpl, o, seed);
  const std::vector<Step> steps = make_steps(seed + 1, base);

  // A fault-free run: where the compaction and its rename are.
  copy_template(tpl, path);
  auto probe = std::make_shared<FaultPlan>(seed);
  const RunResult clean = run_steps(path, o, steps, probe, std::nullopt);
  BOOST_REQUIRE(!clean.failed);
  BOOST_REQUIRE_EQUAL(probe->rename_ops().size(), 1u);
  const std::uint64_t total = probe->ops();
  std::uint64_t opened = 0;
  {
    auto p = std::make_shared<FaultPlan>(seed);
    Options po = o;
    po.wrap_disk = p->wrapper();
    copy_template(tpl, path);
    BlockingDatabase db = BlockingDatabase::open(path, po);
    opened = p->ops();
    db.close();
  }
  const std::uint64_t rename = probe->rename_ops()[0] - opened;  // counted from the open
  // Every operation of the compaction, the rename and the one after it
  // included; and a spread over the commits before and after.
  std::vector<std::uint64_t> points;
  for (std::uint64_t i = clean.compact_begin; i <= clean.compact_end; ++i) points.push_back(i);
  const std::uint64_t others = static_cast<std::uint64_t>(corobtree::test::scaled(40, 10));
  for (std::uint64_t i = 0; i < others; ++i) {
    const std::uint64_t at = i * (total - opened) / others;
    if (at < clean.compact_begin || at > clean.compact_end) points.push_back(at);
  }
  BOOST_REQUIRE(rename >= clean.compact_begin && rename < clean.compact_end);

  std::uint64_t before_rename = 0;
  std::uint64_t after_rename = 0;
  std::uint64_t replayed = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    copy_template(tpl, path);
    const ino_t old_file = inode(path);
    auto plan = std::make_shared<FaultPlan>(seed + 100 + i);
    const RunResult r = run_steps(path, o, steps, plan, points[i]);
    BOOST_REQUIRE_MESSAGE(plan->crashed(), "crash point " << points[i] << " never reached");
    plan->power_loss();
    const std::string what =
        cfg.name() + " seed " + std::to_string(seed) + ", crash at op " +
        std::to_string(points[i]) + " (compaction " + std::to_string(clean.compact_begin) + ".." +
        std::to_string(clean.compact_end) + ", rename " + std::to_string(rename) + "), " +
        std::to_string(r.acked) + " steps acked";
    // The name reached the packed copy (a crash in a real process would also
    // leave NAME.compacting behind before the rename; the engine deletes it
    // when the failure reaches compact(), so the inode tells).
    const bool renamed = inode(path) != old_file;
    if (points[i] == rename) BOOST_TEST(!renamed, what << ": the rename happened anyway");
    if (points[i] == rename + 1) BOOST_TEST(renamed, what << ": the rename did not happen");
    ++(renamed ? after_rename : before_rename);
    BlockingDatabase db = BlockingDatabase::open(path, sweep_options(cfg.backend, 64));
    replayed += db.stats().recovery.commits;
    const auto report = db.validate();
    BOOST_REQUIRE_MESSAGE(report.ok(), what << ": invalid after recovery: " << report.summary());
    const Pairs all = db.scan();
    const Model acked = model_after(base, steps, r.acked);
    Model with = acked;
    if (r.acked < steps.size()) apply(with, steps[r.acked]);
    BOOST_REQUIRE_MESSAGE(
        all == Pairs(acked.begin(), acked.end()) || all == Pairs(with.begin(), with.end()),
        what << ": contents differ from the model (" << all.size() << " pairs, " << acked.size()
             << " acked)");
    if (!renamed || i % 8 == 0) {
      // Compacting again works, and deletes a leftover copy.
      if (!renamed) std::ofstream(path + ".compacting") << "left by the crash";
      db.compact();
      BOOST_TEST(!exists(path + ".compacting"), what);
      expect_valid(db, what + ", compacted again");
      BOOST_REQUIRE(db.scan() == all);
    }
    db.close();
  }
  BOOST_TEST_MESSAGE(cfg.name() << ": " << points.size() << " crash points, "
                                << clean.compact_end - clean.compact_begin + 1
                                << " of them every operation of the compaction (rename at "
                                << rename << "); " << before_rename << " found the old file, "
                                << after_rename << " the packed one; 0 lost keys; " << replayed
                                << " commits replayed");
  BOOST_TEST(before_rename > 0u);
  BOOST_TEST(after_rename > 0u);
}
