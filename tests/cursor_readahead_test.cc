// Cursors on a cold tree much larger than the pool, where read-ahead
// (Options::readahead_leaves, BufferPool::prefetch) runs: every walk must
// give exactly the model's entries (std::map), forward and reverse, with and
// without bounds, from first() and from seeks; on io_uring read-ahead must
// have read pages (the pread backend's does nothing). A failing prefetched
// read must never fail a scan by itself: with one injected read error the
// scan either completes or throws the typed error at the real fetch, and
// with every read failing it throws Error, never crashes or hangs.
// All backends.
#define BOOST_TEST_MODULE cursor_readahead
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>

#include "tests/support/backends.h"
#include "tests/support/fault_disk.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"
#include "tests/support/thread_probe.h"

namespace bdata = boost::unit_test::data;
using corobtree::Cursor;
using corobtree::Database;
using corobtree::ScanOptions;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::test::BackendConfig;

namespace {

constexpr int kKeys = 12000;            // about 250 leaves of 4 KiB
constexpr std::size_t kPoolPages = 64;  // read-ahead window: 64 / 8 = 8 leaves
using Model = std::map<std::string, std::string>;

std::string key_of(int i) {
  char k[16];
  std::snprintf(k, sizeof k, "k%07d", i);
  return k;
}

std::string value_of(int i) { return key_of(i) + std::string(60, static_cast<char>('a' + i % 26)); }

corobtree::Options options_for(const BackendConfig& b) {
  corobtree::Options o;
  o.backend = b.backend;
  o.direct_io = b.direct_io;
  o.pool_pages = kPoolPages;
  o.durability = corobtree::Durability::kRelaxed;
  return o;
}

// Makes the database (bulk-loaded: leaves on consecutive blocks, as read-ahead
// reads them in runs) and returns the model.
Model make_database(const std::string& path, const corobtree::Options& o) {
  Model model;
  std::vector<std::pair<std::string, std::string>> load;
  for (int i = 0; i < kKeys; ++i) {
    load.emplace_back(key_of(2 * i), value_of(2 * i));
    model.emplace(load.back());
  }
  std::unique_ptr<Database> db = sync_wait(Database::open(path, o));
  sync_wait(db->bulk_load(load));
  sync_wait(db->close());
  return model;
}

// A walk from first() (or from seek(from)) to the end, at most `limit` entries.
Task<std::vector<std::pair<std::string, std::string>>> walk(Database* db, ScanOptions o,
                                                            std::optional<std::string> from,
                                                            std::size_t limit) {
  Cursor c = db->cursor(std::move(o));
  std::vector<std::pair<std::string, std::string>> out;
  bool ok = false;
  if (from) {
    ok = co_await c.seek(*from);
  } else {
    ok = co_await c.first();
  }
  for (; ok && out.size() < limit; ok = co_await c.next()) {
    out.emplace_back(std::string(c.key()), std::string(c.value()));
  }
  co_return out;
}

// What the model says the same walk gives.
std::vector<std::pair<std::string, std::string>> expect(const Model& m, const ScanOptions& o,
                                                        const std::optional<std::string>& from,
                                                        std::size_t limit) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto in = [&](const std::string& k) {
    return (!o.lower || k >= *o.lower) && (!o.upper || k < *o.upper);
  };
  if (!o.reverse) {
    auto it = from ? m.lower_bound(*from) : m.begin();
    for (; it != m.end() && out.size() < limit; ++it) {
      if (o.upper && it->first >= *o.upper) break;
      if (in(it->first)) out.emplace_back(*it);
    }
  } else {
    auto it = from ? m.upper_bound(*from) : m.end();
    while (it != m.begin() && out.size() < limit) {
      --it;
      if (o.lower && it->first < *o.lower) break;
      if (in(it->first)) out.emplace_back(*it);
    }
  }
  return out;
}

}  // namespace

BOOST_DATA_TEST_CASE(cold_walks_match_the_model, bdata::make(corobtree::test::all_backends()),
                     backend) {
  const std::uint64_t seed = corobtree::test::test_seed("cold walks " + backend.name());
  corobtree::test::Watchdog watchdog("cold walks " + backend.name());
  corobtree::test::TempDir dir;
  const std::string path = dir.file("cold.db");
  const corobtree::Options o = options_for(backend);
  const Model model = make_database(path, o);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, 2 * kKeys);

  std::unique_ptr<Database> db = sync_wait(Database::open(path, o));
  const std::uint64_t before = db->stats().pool.readahead_reads;
  for (const bool reverse : {false, true}) {
    ScanOptions all;
    all.reverse = reverse;
    const auto got = sync_wait(walk(db.get(), all, std::nullopt, SIZE_MAX));
    BOOST_REQUIRE(got == expect(model, all, std::nullopt, SIZE_MAX));
  }
  const std::uint64_t after_full = db->stats().pool.readahead_reads;
  if (backend.backend == corobtree::IoBackend::kUring) {
    BOOST_TEST(after_full > before);  // the tree is ~4x the pool: read-ahead read
  } else {
    BOOST_TEST(after_full == before);  // pread: read-ahead does nothing
  }
  // Bounded walks and seeks, both directions; every other one reopens cold.
  for (int round = 0; round < 24; ++round) {
    if (round % 2 == 0) {
      sync_wait(db->close());
      db.reset();
      db = sync_wait(Database::open(path, o));
    }
    ScanOptions range;
    range.reverse = round % 3 == 1;
    const int a = pick(rng);
    const int b = pick(rng);
    if (round % 4 != 0) range.lower = key_of(std::min(a, b));
    if (round % 4 != 1) range.upper = key_of(std::max(a, b) + 1);
    std::optional<std::string> from;
    if (round % 5 == 2) from = key_of(pick(rng));
    const std::size_t limit = round % 6 == 5 ? 100 : SIZE_MAX;
    const auto got = sync_wait(walk(db.get(), range, from, limit));
    const auto want = expect(model, range, from, limit);
    BOOST_REQUIRE_MESSAGE(
        got == want, "round " << round << ": " << got.size() << " entries, want " << want.size());
  }
  // Database::scan's engine path reads ahead too.
  sync_wait(db->close());
  db.reset();
  db = sync_wait(Database::open(path, o));
  const auto rows = sync_wait(db->scan({}));
  BOOST_REQUIRE(rows == expect(model, {}, std::nullopt, SIZE_MAX));
  BOOST_TEST(sync_wait(db->validate()).ok());
  sync_wait(db->close());
}

// One read fails at a time, at points spread over a cold forward walk: a
// prefetched read's failure is dropped (the fetch reads again), a real
// fetch's is the walk's typed error. Then every read fails: Error, never a
// crash or a hang.
BOOST_DATA_TEST_CASE(a_failed_prefetch_never_fails_the_walk_by_itself,
                     bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::test::Watchdog watchdog("failed prefetch " + backend.name());
  corobtree::test::TempDir dir;
  const std::string path = dir.file("fault.db");
  corobtree::Options o = options_for(backend);
  const Model model = make_database(path, o);
  ScanOptions all;
  const auto want = expect(model, all, std::nullopt, SIZE_MAX);
  int completed = 0;
  int failed = 0;
  for (const std::uint64_t at : {3u, 17u, 40u, 77u, 120u, 190u}) {
    auto plan = std::make_shared<corobtree::test::FaultPlan>(at);
    o.wrap_disk = plan->wrapper();
    std::unique_ptr<Database> db = sync_wait(Database::open(path, o));
    plan->fail_at = plan->ops() + at;
    try {
      const auto got = sync_wait(walk(db.get(), all, std::nullopt, SIZE_MAX));
      BOOST_REQUIRE(got == want);
      ++completed;
    } catch (const corobtree::Error& e) {
      BOOST_TEST_MESSAGE("fail at +" << at << ": " << e.what());
      BOOST_TEST((e.code() == corobtree::ErrorCode::kIoError));
      ++failed;
    }
    // The error was one read: the same walk succeeds now.
    const auto again = sync_wait(walk(db.get(), all, std::nullopt, SIZE_MAX));
    BOOST_REQUIRE(again == want);
    sync_wait(db->close());
  }
  BOOST_TEST_MESSAGE(backend.name() << ": " << completed << " walks completed past a failed read, "
                                    << failed << " reported it");
  if (backend.backend == corobtree::IoBackend::kUring) {
    // Most reads of a cold walk are prefetches: some failure must have hit one.
    BOOST_TEST(completed > 0);
  }

  auto plan = std::make_shared<corobtree::test::FaultPlan>(1);
  o.wrap_disk = plan->wrapper();
  std::unique_ptr<Database> db = sync_wait(Database::open(path, o));
  plan->fail_at = plan->ops() + 5;
  plan->persistent = true;
  BOOST_CHECK_EXCEPTION(
      sync_wait(walk(db.get(), all, std::nullopt, SIZE_MAX)), corobtree::Error,
      [](const corobtree::Error& e) { return e.code() == corobtree::ErrorCode::kIoError; });
  db.reset();  // no close: its reads fail too
}

// A cold forward walk over a tree of many parents (long keys: few children
// per inner page, height 4) with windows larger than the first: read-ahead
// reads the parents ahead too, so its lists go on through them and nearly
// every leaf is read ahead. (When each list stopped at its parent's edge,
// the read-ahead went idle and started over at every parent: the walk's own
// fetches then read at least a leaf per parent.) No page is read twice: a
// page read ahead is not evicted before the walk reaches it. Then the same
// walk in reverse, cold again.
BOOST_DATA_TEST_CASE(read_ahead_goes_on_through_the_parents,
                     bdata::make(corobtree::test::all_backends()), backend) {
  corobtree::test::Watchdog watchdog("parents " + backend.name());
  corobtree::test::TempDir dir;
  const std::string path = dir.file("parents.db");
  corobtree::Options o = options_for(backend);
  o.pool_pages = 512;  // windows of up to 64 leaves; the tree is a few times the pool
  const auto long_key = [](int i) { return key_of(i) + std::string(180, 'p'); };
  Model model;
  std::vector<std::pair<std::string, std::string>> load;
  for (int i = 0; i < 20000; ++i) {
    load.emplace_back(long_key(i), "v" + std::to_string(i));
    model.emplace(load.back());
  }
  {
    std::unique_ptr<Database> db = sync_wait(Database::open(path, o));
    sync_wait(db->bulk_load(load));
    sync_wait(db->close());
  }
  std::unique_ptr<Database> db = sync_wait(Database::open(path, o));
  const corobtree::DatabaseStats before = db->stats();
  BOOST_REQUIRE(before.height >= 4);  // parents under grandparents
  const auto got = sync_wait(walk(db.get(), {}, std::nullopt, SIZE_MAX));
  BOOST_REQUIRE(got == expect(model, {}, std::nullopt, SIZE_MAX));
  const corobtree::DatabaseStats after = db->stats();
  const std::uint64_t reads = after.pool.disk_reads - before.pool.disk_reads;
  const std::uint64_t ahead = after.pool.readahead_reads - before.pool.readahead_reads;
  BOOST_TEST_MESSAGE(backend.name() << ": " << reads << " pages read, " << ahead
                                    << " by read-ahead, " << after.pages << " pages");
  if (backend.backend == corobtree::IoBackend::kUring) {
    BOOST_TEST(reads >= ahead);
    BOOST_TEST(reads - ahead <= 16);   // the first leaves and the root's path, little else
    BOOST_TEST(reads <= after.pages);  // and no page twice (none evicted before it was reached)
  } else {
    BOOST_TEST(ahead == 0);
  }
  // Reverse, cold again: the parents before the list are read ahead too.
  sync_wait(db->close());
  db = sync_wait(Database::open(path, o));
  const corobtree::DatabaseStats cold = db->stats();
  ScanOptions reverse;
  reverse.reverse = true;
  const auto back = sync_wait(walk(db.get(), reverse, std::nullopt, SIZE_MAX));
  BOOST_REQUIRE(back == expect(model, reverse, std::nullopt, SIZE_MAX));
  const corobtree::DatabaseStats end = db->stats();
  const std::uint64_t back_reads = end.pool.disk_reads - cold.pool.disk_reads;
  const std::uint64_t back_ahead = end.pool.readahead_reads - cold.pool.readahead_reads;
  BOOST_TEST_MESSAGE(backend.name() << " reverse: " << back_reads << " pages read, " << back_ahead
                                    << " by read-ahead");
  if (backend.backend == corobtree::IoBackend::kUring) {
    BOOST_TEST(back_reads >= back_ahead);
    BOOST_TEST(back_reads - back_ahead <= 16);
    BOOST_TEST(back_reads <= end.pages);
  }
  sync_wait(db->close());
}
