// Many threads, one database: a differential test against a model
// (tests/support/mt_workload.h). 4 or 8 std::threads share one
// BlockingDatabase, or 8 coroutines on a Runtime(4) share its async Database;
// on this 2-core machine either is oversubscribed. Each runs a seeded random
// mix of put / erase / write(WriteBatch) / get / scan(ScanOptions, limit)
// over its own key range and a shared one, and checks every result as it goes
// (its own keys exactly; others' keys hold only values their owner wrote for
// them; scans strictly ordered and within bounds).
//
// The database has 512-byte pages and a 24-frame pool, so the tree has four
// or five levels, values of a few hundred bytes take overflow pages, and
// nearly every descent evicts a page another thread may be reading. The log
// checkpoints every 64 KiB. Variants add a thread that, meanwhile, calls
// checkpoint() and validate() in a loop, or compact(), or backup() (each copy
// must open, validate and hold only values written for their keys).
//
// Afterwards: a full scan equals the union of the workers' models, validate()
// is clean and count() agrees; then close, reopen and compare again. Every
// variant runs on io_uring and pread (the 8-thread one also with O_DIRECT).
// Prints its seed; `-- --seed=N` replays each worker's operation stream (not
// the interleaving, which is the scheduler's).
#define BOOST_TEST_MODULE mt_differential
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/database.h>
#include <corobtree/runtime.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "tests/support/backends.h"
#include "tests/support/mt_workload.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
namespace mt = corobtree::test::mt;
using corobtree::BlockingDatabase;
using corobtree::Database;
using corobtree::Runtime;
using corobtree::Task;
using corobtree::test::BackendConfig;

namespace {

enum class Mode { kThreads, kRuntime };
enum class Background { kNone, kCheckpoint, kCompact, kBackup };

struct Case {
  Mode mode;
  int workers;  // threads, or coroutines on a Runtime(4)
  Background background;
  BackendConfig backend;
  std::string name() const {
    std::string n = mode == Mode::kThreads ? std::to_string(workers) + "-threads"
                                           : std::to_string(workers) + "-tasks-on-runtime4";
    if (background == Background::kCheckpoint) n += "+checkpoints";
    if (background == Background::kCompact) n += "+compact";
    if (background == Background::kBackup) n += "+backup";
    return n + "/" + backend.name();
  }
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name(); }

std::vector<Case> cases() {
  std::vector<Case> out;
  for (corobtree::IoBackend b : {corobtree::IoBackend::kUring, corobtree::IoBackend::kPread}) {
    const BackendConfig buffered{b, false};
    out.push_back({Mode::kThreads, 4, Background::kNone, buffered});
    out.push_back({Mode::kThreads, 8, Background::kNone, buffered});
    out.push_back({Mode::kThreads, 8, Background::kNone, BackendConfig{b, true}});
    out.push_back({Mode::kRuntime, 8, Background::kNone, buffered});
    out.push_back({Mode::kThreads, 4, Background::kCheckpoint, buffered});
    out.push_back({Mode::kThreads, 4, Background::kCompact, buffered});
    out.push_back({Mode::kThreads, 4, Background::kBackup, buffered});
  }
  return out;
}

constexpr int kRuntimeThreads = 4;

corobtree::Options options_for(const BackendConfig& b) {
  corobtree::Options o;
  o.backend = b.backend;
  o.direct_io = b.direct_io;
  o.page_size = 512;
  o.pool_pages = 24;
  o.durability = corobtree::Durability::kRelaxed;  // commits race, not fsyncs
  o.wal_checkpoint_bytes = 64 * 1024;
  return o;
}

mt::Result execute(BlockingDatabase& db, const mt::Op& op) {
  mt::Result r;
  switch (op.kind) {
    case mt::Op::kPut: db.put(op.key, op.value); break;
    case mt::Op::kErase: r.existed = db.erase(op.key); break;
    case mt::Op::kBatch: db.write(op.batch); break;
    case mt::Op::kGet: r.got = db.get(op.key); break;
    case mt::Op::kScan: r.rows = db.scan(op.scan, op.limit); break;
  }
  return r;
}

Task<mt::Result> execute_async(Database& db, const mt::Op& op) {
  mt::Result r;
  switch (op.kind) {
    case mt::Op::kPut: co_await db.put(op.key, op.value); break;
    case mt::Op::kErase: {
      const bool existed = co_await db.erase(op.key);
      r.existed = existed;
      break;
    }
    case mt::Op::kBatch: co_await db.write(op.batch); break;
    case mt::Op::kGet: {
      std::optional<std::string> got = co_await db.get(op.key);
      r.got = std::move(got);
      break;
    }
    case mt::Op::kScan: {
      mt::Rows rows = co_await db.scan(op.scan, op.limit);
      r.rows = std::move(rows);
      break;
    }
  }
  co_return r;
}

void run_thread(BlockingDatabase& db, mt::Worker& w, int ops) {
  for (int i = 0; i < ops && w.failures().empty(); ++i) {
    const mt::Op op = w.next();
    try {
      const mt::Result r = execute(db, op);
      w.check(op, r);
    } catch (const std::exception& e) {
      w.fail(std::string("operation ") + std::to_string(op.kind) + " threw: " + e.what());
    }
  }
}

// One coroutine: hops onto a worker, then runs its operations there; every
// completion must bring it back to the thread it runs on.
Task<void> run_task(Runtime& rt, Database& db, mt::Worker& w, int ops) {
  co_await rt.schedule();
  for (int i = 0; i < ops && w.failures().empty(); ++i) {
    const mt::Op op = w.next();
    const std::thread::id before = std::this_thread::get_id();
    std::exception_ptr error;
    mt::Result r;
    try {
      r = co_await execute_async(db, op);
    } catch (...) {
      error = std::current_exception();
    }
    if (std::this_thread::get_id() != before) w.fail("resumed on another thread");
    if (!error) {
      w.check(op, r);
      continue;
    }
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      w.fail(std::string("operation ") + std::to_string(op.kind) + " threw: " + e.what());
    }
  }
}

// checkpoint() + validate(), compact(), or backup() in a loop until `stop`.
struct BackgroundRun {
  int rounds = 0;
  std::vector<std::string> failures;
};

// A backup taken meanwhile is a database of its own: it opens, validates, and
// holds only values written for their keys.
void check_backup(const std::string& file, const BackendConfig& backend, BackgroundRun& out) {
  corobtree::Options o = options_for(backend);
  o.create_if_missing = false;
  BlockingDatabase copy = BlockingDatabase::open(file, o);
  const corobtree::ValidationReport report = copy.validate();
  if (!report.ok()) out.failures.push_back("validate() of a backup: " + report.summary());
  const mt::Rows rows = copy.scan();
  if (rows.size() != copy.count()) out.failures.push_back("a backup's count() is not its scan");
  for (const auto& [k, v] : rows) {
    if (!mt::parse_value(k, v)) {
      out.failures.push_back("a backup holds a value never written for '" + k + "'");
      break;
    }
  }
  copy.close();
}

void run_background(BlockingDatabase& db, Background kind, const BackendConfig& backend,
                    const corobtree::test::TempDir& dir, const std::atomic<bool>& stop,
                    BackgroundRun& out) {
  while (!stop.load() && out.failures.empty()) {
    try {
      if (kind == Background::kCheckpoint) {
        db.checkpoint();
        const corobtree::ValidationReport report = db.validate();
        if (!report.ok()) out.failures.push_back("validate() meanwhile: " + report.summary());
      } else if (kind == Background::kCompact) {
        db.compact();
      } else {
        const std::string file = dir.file("backup" + std::to_string(out.rounds) + ".db");
        db.backup(file);
        check_backup(file, backend, out);
      }
      ++out.rounds;
    } catch (const std::exception& e) {
      out.failures.push_back(std::string("background call threw: ") + e.what());
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(kind == Background::kCheckpoint ? 20 : 150));
  }
}

// The whole database against the model: contents, count, validate().
void compare_all(BlockingDatabase& db, const mt::Model& model, const std::string& when) {
  BOOST_TEST_CONTEXT(when) {
    const mt::Rows rows = db.scan();
    BOOST_TEST(rows.size() == model.size());
    std::size_t mismatches = 0;
    auto it = model.begin();
    for (const auto& [k, v] : rows) {
      if (it == model.end() || it->first != k || it->second != v) {
        if (++mismatches <= 5) {
          BOOST_ERROR("database has '"
                      << k << "' (" << v.size() << " bytes), model "
                      << (it == model.end() ? std::string("ends") : "'" + it->first + "'"));
        }
        if (it != model.end() && it->first <= k) ++it;
        continue;
      }
      ++it;
    }
    BOOST_TEST(mismatches == 0u);
    BOOST_TEST(db.count() == model.size());
    const corobtree::ValidationReport report = db.validate();
    BOOST_TEST(report.ok(), report.summary());
    BOOST_TEST(report.keys == model.size());
  }
}

void run_case(const Case& c) {
  const std::uint64_t seed = corobtree::test::test_seed("mt_differential " + c.name());
  const mt::Sizes sizes;
  corobtree::test::TempDir dir;
  const std::string path = dir.file("mt.db");
  const corobtree::Options options = options_for(c.backend);
  BlockingDatabase db = BlockingDatabase::open(path, options);
  const mt::Rows initial = mt::initial_rows(c.workers, sizes, seed);
  db.bulk_load(initial);

  // Each worker starts with its share of the initial rows.
  std::vector<mt::Model> start(static_cast<std::size_t>(c.workers));
  for (const auto& [k, v] : initial) {
    start[static_cast<std::size_t>(mt::parse_value(k, v)->worker)].emplace(k, v);
  }
  mt::Shared shared(c.workers);
  std::vector<std::unique_ptr<mt::Worker>> workers;
  for (int w = 0; w < c.workers; ++w) {
    workers.push_back(std::make_unique<mt::Worker>(w, c.workers, sizes, seed, shared,
                                                   std::move(start[static_cast<std::size_t>(w)])));
  }
  // About the same work in every case, whatever the number of workers; less
  // with O_DIRECT, where every one of the many evictions is a real disk read.
  const int total_ops = c.backend.direct_io ? 2000 : 5000;
  const int ops = corobtree::test::scaled(total_ops / c.workers, 50);

  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<bool> stop{false};
  BackgroundRun background;
  std::thread bg;
  if (c.background != Background::kNone) {
    bg = std::thread([&] { run_background(db, c.background, c.backend, dir, stop, background); });
  }
  if (c.mode == Mode::kThreads) {
    std::vector<std::thread> threads;
    for (auto& w : workers) {
      threads.emplace_back([&db, &w, ops] { run_thread(db, *w, ops); });
    }
    for (std::thread& t : threads) t.join();
  } else {
    Runtime rt(kRuntimeThreads);
    std::vector<Task<void>> tasks;
    for (auto& w : workers) tasks.push_back(run_task(rt, db.async(), *w, ops));
    corobtree::sync_wait(corobtree::when_all(std::move(tasks)));
  }
  stop.store(true);
  if (bg.joinable()) bg.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  mt::Counts counts;
  mt::Model merged;
  for (const auto& w : workers) {
    counts.add(w->counts());
    merged.insert(w->model().begin(), w->model().end());
    for (const std::string& f : w->failures()) BOOST_ERROR(f);
  }
  for (const std::string& f : background.failures) BOOST_ERROR(f);
  const corobtree::DatabaseStats stats = db.stats();
  std::cout << "[mt] " << c.name() << ": " << secs << " s, " << counts.puts << " puts, "
            << counts.erases << " erases, " << counts.batches << " batches, " << counts.gets
            << " gets, " << counts.scans << " scans (" << counts.rows << " rows), "
            << counts.foreign_values << " values of other workers checked; height " << stats.height
            << ", " << stats.pages << " pages, " << stats.pool.evictions << " evictions, "
            << stats.checkpoints << " checkpoints, " << stats.wal.writes << " log writes for "
            << stats.wal.commits << " commits";
  if (c.background != Background::kNone) std::cout << ", background rounds " << background.rounds;
  std::cout << std::endl;
  BOOST_TEST(stats.height >= 3u);
  if (c.background != Background::kNone) BOOST_TEST(background.rounds > 0);

  compare_all(db, merged, "after the run");
  db.close();
  BlockingDatabase again = BlockingDatabase::open(path, options);
  compare_all(again, merged, "after reopening");
  again.close();
}

}  // namespace

BOOST_DATA_TEST_CASE(threads_match_the_model, bdata::make(cases()), c) { run_case(c); }
