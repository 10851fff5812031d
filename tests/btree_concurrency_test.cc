// Concurrency on one loop: 64 tasks run mixed gets, puts, erases, batches and
// scans against one Database at once (when_all), on every backend and pool
// size. Tasks interleave only at co_await points and each operation is atomic,
// so a shared std::map model stays exact when every task writes only its own
// keys and applies each change right after the awaited write returns:
//  * a task's reads of its own keys must match the model exactly (nobody
//    else writes them, and the task itself is busy reading);
//  * a read of another task's key may see any value that task ever wrote
//    (each value names its key and is recorded before the write starts);
//  * a scan is ordered, within bounds, and exact on the scanning task's keys.
// Afterwards validate() and a full scan must agree with the model. A second
// test shows that readers missing the cache do not wait for each other: 32
// gets over a direct-mode io_uring database have all their leaf reads in the
// kernel together. Prints its seed; `-- --seed=N` replays the schedule.
#define BOOST_TEST_MODULE btree_concurrency
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "io/event_loop.h"
#include "io/uring_disk_manager.h"
#include "tests/support/db_matrix.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::Database;
using corobtree::ScanOptions;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::test::DbConfig;

namespace {

using Model = std::map<std::string, std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

constexpr int kTasks = 64;

// Keys of all tasks interleave in key order: "k0042.t07" belongs to task 7.
std::string key_for(int slot, int task) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "k%04d.t%02d", slot, task);
  return buf;
}

int owner_of(const std::string& key) { return std::stoi(key.substr(key.size() - 2)); }

struct Shared {
  Shared(Database& d, std::uint64_t s, int keys_per_task, int ops_per_task)
      : db(d), seed(s), slots(keys_per_task), ops(ops_per_task) {}

  Database& db;
  std::uint64_t seed;
  int slots;                                             // keys per task
  int ops;                                               // operations per task
  bool big_values = true;                                // some values in overflow pages
  Model model;                                           // the exact contents
  std::map<std::string, std::set<std::string>> history;  // every value ever written, per key
  std::vector<std::string> failures;
  int in_flight = 0;  // operations started and not finished, over all tasks
  int max_in_flight = 0;
  std::uint64_t foreign_hits = 0;

  void fail(const std::string& what) {
    if (failures.size() < 20) failures.push_back(what + " (seed " + std::to_string(seed) + ")");
  }
  void begin() { max_in_flight = std::max(max_in_flight, ++in_flight); }
  void end() { --in_flight; }
};

std::string make_value(std::mt19937_64& rng, const std::string& key, int version, bool big) {
  std::string v = key + "#" + std::to_string(version) + "#";
  const std::size_t extra = big && rng() % 40 == 0 ? 2500 + rng() % 6000 : rng() % 150;
  v.append(extra, static_cast<char>('a' + rng() % 26));
  return v;
}

void check_own_read(Shared& sh, const std::string& key, const std::optional<std::string>& got,
                    const std::string& what) {
  const auto it = sh.model.find(key);
  if (got.has_value() != (it != sh.model.end())) {
    sh.fail(what + ": own key " + key + " presence " + std::to_string(got.has_value()));
  } else if (got && *got != it->second) {
    sh.fail(what + ": own key " + key + " has a stale or foreign value");
  }
}

void check_foreign_value(Shared& sh, const std::string& key, const std::string& value,
                         const std::string& what) {
  const auto h = sh.history.find(key);
  if (h == sh.history.end() || !h->second.count(value)) {
    sh.fail(what + ": key " + key + " holds a value its owner never wrote");
  }
  ++sh.foreign_hits;
}

// A scan's result: ordered, in bounds, and exact on the scanning task's own keys
// over the part of the range it covered.
void check_scan(Shared& sh, int me, const ScanOptions& so, std::size_t limit, const Pairs& got) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::string& k = got[i].first;
    if (i > 0 && (so.reverse ? !(k < got[i - 1].first) : !(got[i - 1].first < k)))
      sh.fail("scan out of order");
    if ((so.lower && k < *so.lower) || (so.upper && !(k < *so.upper)))
      sh.fail("scan key out of bounds: " + k);
    if (owner_of(k) != me) check_foreign_value(sh, k, got[i].second, "scan");
  }
  // The covered interval [lo, hi) of the key space.
  std::optional<std::string> lo = so.lower;
  std::optional<std::string> hi = so.upper;
  if (got.size() == limit && !got.empty()) {
    if (so.reverse) {
      lo = got.back().first;
    } else {
      hi = got.back().first + '\0';
    }
  }
  Pairs mine_got;
  for (const auto& kv : got) {
    if (owner_of(kv.first) == me) mine_got.push_back(kv);
  }
  Pairs mine_want;
  for (auto it = lo ? sh.model.lower_bound(*lo) : sh.model.begin(); it != sh.model.end(); ++it) {
    if (hi && !(it->first < *hi)) break;
    if (owner_of(it->first) == me) mine_want.push_back(*it);
  }
  if (so.reverse) std::reverse(mine_want.begin(), mine_want.end());
  if (mine_got != mine_want) {
    sh.fail("scan of task " + std::to_string(me) + " shows " + std::to_string(mine_got.size()) +
            " own keys, the model " + std::to_string(mine_want.size()));
  }
}

Task<void> worker(Shared& sh, int me) {
  std::mt19937_64 rng(sh.seed * 1000003 + static_cast<std::uint64_t>(me));
  int version = 0;
  for (int op = 0; op < sh.ops && sh.failures.empty(); ++op) {
    const auto r = rng() % 100;
    const std::string key =
        key_for(static_cast<int>(rng() % static_cast<std::uint64_t>(sh.slots)), me);
    if (r < 30) {
      sh.begin();
      const std::optional<std::string> got = co_await sh.db.get(key);
      sh.end();
      check_own_read(sh, key, got, "get");
    } else if (r < 45) {
      const int other = static_cast<int>(rng() % kTasks);
      const std::string theirs =
          key_for(static_cast<int>(rng() % static_cast<std::uint64_t>(sh.slots)), other);
      sh.begin();
      const std::optional<std::string> got = co_await sh.db.get(theirs);
      sh.end();
      if (other == me) {
        check_own_read(sh, theirs, got, "get");
      } else if (got) {
        check_foreign_value(sh, theirs, *got, "get");
      }
    } else if (r < 70) {
      const std::string value = make_value(rng, key, ++version, sh.big_values);
      sh.history[key].insert(value);  // before the write: readers may see it from now on
      sh.begin();
      co_await sh.db.put(key, value);
      sh.end();
      sh.model[key] = value;
    } else if (r < 82) {
      sh.begin();
      const bool found = co_await sh.db.erase(key);
      sh.end();
      if (found != (sh.model.erase(key) == 1))
        sh.fail("erase of " + key + " returned " + std::to_string(found));
    } else if (r < 95) {
      ScanOptions so;
      const int a = static_cast<int>(rng() % static_cast<std::uint64_t>(sh.slots + 2)) - 1;
      const int b = a + static_cast<int>(rng() % 12);
      if (rng() % 5 != 0) so.lower = key_for(a, static_cast<int>(rng() % kTasks));
      if (rng() % 5 != 0) so.upper = key_for(b, static_cast<int>(rng() % kTasks));
      so.reverse = rng() % 2 == 0;
      const std::size_t limit = 1 + rng() % 80;
      sh.begin();
      const Pairs got = co_await sh.db.scan(so, limit);
      sh.end();
      check_scan(sh, me, so, limit, got);
    } else {
      // An atomic batch over a few own keys.
      corobtree::WriteBatch batch;
      Model changes;
      std::set<std::string> erased;
      for (int i = 0; i < 4; ++i) {
        const std::string k =
            key_for(static_cast<int>(rng() % static_cast<std::uint64_t>(sh.slots)), me);
        if (rng() % 3 == 0) {
          batch.erase(k);
          changes.erase(k);
          erased.insert(k);
        } else {
          const std::string value = make_value(rng, k, ++version, sh.big_values);
          sh.history[k].insert(value);
          batch.put(k, value);
          changes[k] = value;
          erased.erase(k);
        }
      }
      sh.begin();
      co_await sh.db.write(batch);
      sh.end();
      for (const auto& k : erased) sh.model.erase(k);
      for (const auto& [k, v] : changes) sh.model[k] = v;
    }
  }
}

Task<void> run_all(Shared& sh) {
  std::vector<Task<void>> tasks;
  for (int i = 0; i < kTasks; ++i) tasks.push_back(worker(sh, i));
  co_await corobtree::when_all(std::move(tasks));
}

}  // namespace

BOOST_DATA_TEST_CASE(tasks_interleave_against_a_shared_model,
                     bdata::make(corobtree::test::db_matrix()), cfg) {
  const auto seed =
      corobtree::test::test_seed("tasks_interleave_against_a_shared_model " + cfg.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("concurrent.db");
  auto db = sync_wait(Database::open(path, cfg.options()));
  const bool slow = cfg.pool_pages == 0 || cfg.backend.direct_io;
  Shared sh(*db, seed, 40, corobtree::test::scaled(slow ? 200 : 600, 50));
  // Preload about half of every task's keys.
  for (int task = 0; task < kTasks; ++task) {
    for (int slot = 0; slot < sh.slots; ++slot) {
      if (rng() % 2 != 0) continue;
      const std::string k = key_for(slot, task);
      const std::string v = make_value(rng, k, 0, true);
      sh.history[k].insert(v);
      sync_wait(db->put(k, v));
      sh.model[k] = v;
    }
  }
  const auto before = db->stats().pool;
  sync_wait(run_all(sh));
  const auto after = db->stats().pool;
  BOOST_TEST_MESSAGE(cfg.name() << ": max ops in flight " << sh.max_in_flight << ", pool misses "
                                << after.misses - before.misses << ", frame waits "
                                << after.free_frame_waits - before.free_frame_waits
                                << ", foreign reads " << sh.foreign_hits);
  std::string failures;
  for (const auto& f : sh.failures) failures += "\n  " + f;
  BOOST_REQUIRE_MESSAGE(sh.failures.empty(), "model violations:" << failures);
  // (The backend actually in use: COROBTREE_IO=pread overrides the options.)
  if (db->stats().backend == corobtree::IoBackend::kUring && cfg.pool_pages != 4096) {
    // With little or no caching, misses really suspended on io_uring: many
    // tasks had an operation outstanding at once.
    BOOST_TEST_MESSAGE("pool misses during the run: " << after.misses - before.misses);
    BOOST_CHECK_MESSAGE(after.misses > before.misses,
                        cfg.name() << ": no fetch missed the cache during the run");
    BOOST_CHECK_MESSAGE(sh.max_in_flight > kTasks / 2,
                        cfg.name() << ": at most " << sh.max_in_flight
                                   << " operations were ever in flight at once");
  }
  BOOST_TEST(sh.foreign_hits > 0u);

  const corobtree::ValidationReport report = sync_wait(db->validate());
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  BOOST_REQUIRE_EQUAL(db->count(), sh.model.size());
  const ScanOptions all;
  const Pairs everything = sync_wait(db->scan(all));
  BOOST_REQUIRE(everything == Pairs(sh.model.begin(), sh.model.end()));
  sync_wait(db->close());
  db = sync_wait(Database::open(path, cfg.options()));
  const Pairs reopened = sync_wait(db->scan(all));
  BOOST_REQUIRE(reopened == Pairs(sh.model.begin(), sh.model.end()));
  sync_wait(db->close());
}

namespace {

Task<std::vector<std::optional<std::string>>> get_all(Database& db,
                                                      const std::vector<std::string>& keys) {
  std::vector<Task<std::optional<std::string>>> gets;
  for (const auto& k : keys) gets.push_back(db.get(k));
  std::vector<std::optional<std::string>> values = co_await corobtree::when_all(std::move(gets));
  co_return values;
}

}  // namespace

// Direct mode (no caching) on io_uring: 32 gets for keys in 32 different leaves
// under one root. They share one read of the root, and then all 32 leaf reads
// are in flight together: no reader waits for another reader's miss.
BOOST_DATA_TEST_CASE(readers_do_not_wait_for_each_others_misses, bdata::make({false, true}),
                     direct_io) {
  corobtree::test::TempDir dir;
  corobtree::Options options;
  options.backend = corobtree::IoBackend::kUring;
  options.direct_io = direct_io;
  options.pool_pages = 0;
  corobtree::DiskManager* data_file = nullptr;
  options.wrap_disk = [&data_file](std::unique_ptr<corobtree::DiskManager> d) {
    if (data_file == nullptr) data_file = d.get();  // the first is the data file, then the log
    return d;
  };
  auto db = sync_wait(Database::open(dir.file("readers.db"), options));
  if (db->stats().backend != corobtree::IoBackend::kUring) {
    BOOST_TEST_MESSAGE("COROBTREE_IO forces another backend: nothing is ever in flight to count");
    return;
  }
  // The database's ring: its engine thread's (idle between calls; each call's
  // hop orders the engine's writes of the counters before this thread's reads).
  auto* uring = dynamic_cast<corobtree::UringDiskManager*>(data_file);
  BOOST_REQUIRE(uring != nullptr);
  corobtree::EventLoop& loop = uring->loop();
  // 900-byte values: at most four per leaf, so every 8th key sits in its own leaf.
  std::vector<std::string> keys;
  for (int i = 0; i < 256; ++i) {
    const std::string k = key_for(i, 0);
    const std::string v = k + std::string(900, 'r');
    sync_wait(db->put(k, v));
    if (i % 8 == 0) keys.push_back(k);
  }
  BOOST_REQUIRE_EQUAL(keys.size(), 32u);
  BOOST_REQUIRE_EQUAL(db->stats().height, 2u);
  sync_wait(db->checkpoint());  // no write-backs left in flight

  // The 32 calls hop to the engine thread one by one; when this thread is
  // preempted halfway (other tests on the same cores) the engine serves the
  // first arrivals before the rest come, and a late one reads the root again.
  // So up to 5 rounds: one in which the calls arrived together must show it.
  bool shown = false;
  for (int round = 0; round < 5 && !shown; ++round) {
    const auto before = db->stats().pool;
    loop.reset_max_in_flight();
    const std::vector<std::optional<std::string>> values = sync_wait(get_all(*db, keys));
    const auto after = db->stats().pool;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      BOOST_REQUIRE(values[i].has_value());
      BOOST_REQUIRE(*values[i] == keys[i] + std::string(900, 'r'));
    }
    const std::uint64_t reads = after.disk_reads - before.disk_reads;
    const std::uint64_t misses = after.misses - before.misses;
    const std::uint64_t in_flight = loop.stats().max_in_flight;
    BOOST_TEST_MESSAGE("direct_io=" << direct_io << " round " << round << ": reads " << reads
                                    << ", misses " << misses << ", max in flight " << in_flight);
    // The root once, then each leaf. The leaf reads are in flight together:
    // the 31 sharers' all at once. The root's loader resumes from the ready
    // queue, wakes the sharers and queues its own leaf read, which the poll
    // after that batch submits; if it has completed (always from the page
    // cache, sometimes with O_DIRECT) by the time the sharers queue theirs,
    // it no longer counts as in flight.
    // Every fetch waited for a read (64 misses) in a round whose calls
    // arrived together (a late arrival may find a sharer's page pinned).
    shown = reads == 33u && misses == 64u && in_flight >= 31u;
  }
  BOOST_TEST(shown,
             "no round read the root once, missed on every fetch and kept the 32 leaf "
             "reads in flight together");
  sync_wait(db->close());
}
