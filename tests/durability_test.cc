// Durability: the write-ahead log, atomic batches, group commit, checkpoints,
// recovery, and the sweeps through tests/support/fault_disk.h:
//  - power loss at every Nth operation of a workload (>= 1000 crash points);
//  - an I/O error (EIO, ENOSPC; once or for good) at every Nth operation.
// After each: reopen, validate, compare with the model. Every acknowledged
// commit must be there, no batch partly, nothing that was never written.
#define BOOST_TEST_MODULE durability
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>
#include "io/spawn.h"
#include "tests/support/backends.h"
#include "tests/support/fault_disk.h"
#include "tests/support/random.h"
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
using corobtree::Durability;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::IoBackend;
using corobtree::Options;
using corobtree::WriteBatch;
using corobtree::test::FaultPlan;
using corobtree::test::TempDir;

namespace {

using Model = std::map<std::string, std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// Files of these tests live in /dev/shm when it exists: fsync is free there,
// and what a sync means is modelled by the fault layer anyway.

struct Op {
  enum Kind { kPut, kErase, kBatch } kind;
  std::string key;
  std::string value;
  WriteBatch batch;
};

std::string key_of(std::uint64_t k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "k%06llu", static_cast<unsigned long long>(k));
  return buf;
}

std::string value_for(std::mt19937_64& rng, std::uint64_t tag) {
  // Mostly small values, some that need overflow pages; each names its op.
  const std::size_t n = rng() % 10 == 0 ? 1500 + rng() % 3000 : 10 + rng() % 120;
  std::string v = "v" + std::to_string(tag) + ":";
  while (v.size() < n) v += static_cast<char>('a' + rng() % 26);
  return v;
}

// Puts, erases and batches over a small key space (so the tree splits and
// merges, and keys are rewritten and erased again).
std::vector<Op> make_workload(std::uint64_t seed, std::size_t n, std::uint64_t keys = 160) {
  std::mt19937_64 rng(seed);
  std::vector<Op> ops;
  for (std::size_t i = 0; i < n; ++i) {
    Op op;
    const auto r = rng() % 10;
    if (r < 5) {
      op.kind = Op::kPut;
      op.key = key_of(rng() % keys);
      op.value = value_for(rng, i);
    } else if (r < 7) {
      op.kind = Op::kErase;
      op.key = key_of(rng() % keys);
    } else {
      op.kind = Op::kBatch;
      const std::size_t m = 2 + rng() % 12;
      for (std::size_t j = 0; j < m; ++j) {
        if (rng() % 4 == 0) {
          op.batch.erase(key_of(rng() % keys));
        } else {
          op.batch.put(key_of(rng() % keys), value_for(rng, i));
        }
      }
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

void apply(Model& m, const Op& op) {
  switch (op.kind) {
    case Op::kPut: m[op.key] = op.value; break;
    case Op::kErase: m.erase(op.key); break;
    case Op::kBatch:
      for (const WriteBatch::Op& b : op.batch.ops()) {
        if (b.erase) {
          m.erase(b.key);
        } else {
          m[b.key] = b.value;
        }
      }
      break;
  }
}

void run_op(BlockingDatabase& db, const Op& op) {
  switch (op.kind) {
    case Op::kPut: db.put(op.key, op.value); break;
    case Op::kErase: db.erase(op.key); break;
    case Op::kBatch: db.write(op.batch); break;
  }
}

Options base_options(IoBackend backend, std::size_t pool_pages) {
  Options o;
  o.backend = backend;
  o.pool_pages = pool_pages;
  o.page_size = 1024;                 // small pages: a deeper tree from few keys
  o.wal_checkpoint_bytes = 48 << 10;  // checkpoints during the workload
  o.durability = Durability::kSync;
  return o;
}

struct RunResult {
  std::size_t acked = 0;      // ops acknowledged
  bool failed = false;        // an op (or close) threw
  std::size_t failed_op = 0;  // which op threw (ops.size() = the close)
  ErrorCode code = ErrorCode::kIoError;
  std::string what;
};

// Runs the workload through the plan's fault layer, stopping at the first error.
RunResult run_with_faults(const std::string& path, Options options, const std::vector<Op>& ops,
                          const std::shared_ptr<FaultPlan>& plan,
                          std::optional<std::uint64_t> crash_after_open,
                          std::optional<std::uint64_t> fail_after_open) {
  RunResult r;
  options.wrap_disk = plan->wrapper();
  BlockingDatabase db = BlockingDatabase::open(path, options);
  if (crash_after_open) plan->crash_at = plan->ops() + *crash_after_open;
  if (fail_after_open) plan->fail_at = plan->ops() + *fail_after_open;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    try {
      run_op(db, ops[i]);
    } catch (const Error& e) {
      r.failed = true;
      r.failed_op = i;
      r.code = e.code();
      r.what = e.what();
      break;
    }
    r.acked = i + 1;
  }
  try {
    db.close();
  } catch (const Error& e) {
    if (!r.failed) {
      r.failed = true;
      r.failed_op = ops.size();
      r.code = e.code();
      r.what = e.what();
    }
  }
  return r;
}

Model model_after(const std::vector<Op>& ops, std::size_t n) {
  Model m;
  for (std::size_t i = 0; i < n && i < ops.size(); ++i) apply(m, ops[i]);
  return m;
}

// Reopens without faults and checks: valid, and equal to the model after the
// acknowledged ops, or after those plus the op in flight. Returns "" or the problem.
std::string check_recovered(const std::string& path, IoBackend backend, const std::vector<Op>& ops,
                            const RunResult& r) {
  Options o = base_options(backend, 64);
  BlockingDatabase db = BlockingDatabase::open(path, o);
  const auto report = db.validate();
  if (!report.ok()) return "invalid after recovery: " + report.summary();
  const Pairs all = db.scan();
  const Model acked = model_after(ops, r.acked);
  if (all == Pairs(acked.begin(), acked.end())) {
    db.put("zz-after-recovery", "x");  // the recovered database takes writes
    db.close();
    return "";
  }
  if (r.failed && r.failed_op < ops.size()) {
    Model with = acked;
    apply(with, ops[r.failed_op]);
    if (all == Pairs(with.begin(), with.end())) {
      db.close();
      return "";
    }
  }
  std::size_t missing = 0;
  std::size_t extra = 0;
  const Model got(all.begin(), all.end());
  for (const auto& [k, v] : acked) {
    auto it = got.find(k);
    if (it == got.end() || it->second != v) ++missing;
  }
  for (const auto& [k, v] : got) {
    if (!acked.count(k)) ++extra;
  }
  return "contents differ from the model after " + std::to_string(r.acked) + " acked ops (" +
         std::to_string(missing) + " acked keys missing or different, " + std::to_string(extra) +
         " unexpected keys)";
}

void remove_db(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-wal2"}) std::filesystem::remove(path + suffix);
}

struct SweepConfig {
  IoBackend backend;
  std::size_t pool_pages;
  int points;  // crash points (before scaling)
  std::string name() const {
    return std::string(corobtree::backend_name(backend)) + "/pool" + std::to_string(pool_pages);
  }
};
std::ostream& operator<<(std::ostream& os, const SweepConfig& c) { return os << c.name(); }

// 1000 on pread with a small pool, plus io_uring and the direct (no pool) mode.
const std::vector<SweepConfig> kPowerLossSweeps = {
    {IoBackend::kPread, 16, 1000}, {IoBackend::kUring, 16, 250}, {IoBackend::kPread, 0, 150}};
const std::vector<SweepConfig> kErrorSweeps = {
    {IoBackend::kPread, 16, 400}, {IoBackend::kUring, 16, 150}, {IoBackend::kPread, 0, 100}};

std::vector<std::uint64_t> spread(std::uint64_t total, std::uint64_t points) {
  std::vector<std::uint64_t> out;
  if (points >= total) {
    for (std::uint64_t i = 0; i < total; ++i) out.push_back(i);
    return out;
  }
  for (std::uint64_t i = 0; i < points; ++i) out.push_back(i * total / points);
  return out;
}

// The operations the workload makes after open, counted by a fault-free run.
std::uint64_t count_ops(const std::string& path, const Options& o, const std::vector<Op>& ops) {
  remove_db(path);
  auto plan = std::make_shared<FaultPlan>(1);
  Options opts = o;
  opts.wrap_disk = plan->wrapper();
  BlockingDatabase db = BlockingDatabase::open(path, opts);
  const std::uint64_t at_open = plan->ops();
  for (const Op& op : ops) run_op(db, op);
  db.close();
  return plan->ops() - at_open;
}

}  // namespace

BOOST_DATA_TEST_CASE(power_loss_sweep, bdata::make(kPowerLossSweeps), cfg) {
  const std::uint64_t seed = corobtree::test::test_seed("power_loss_sweep " + cfg.name());
  TempDir dir(corobtree::test::fast_temp_base());
  const std::string path = dir.file("crash.db");
  const std::vector<Op> ops = make_workload(seed, 140);
  const Options options = base_options(cfg.backend, cfg.pool_pages);
  const std::uint64_t total = count_ops(path, options, ops);
  const auto points =
      spread(total, static_cast<std::uint64_t>(corobtree::test::scaled(cfg.points, 50)));
  std::uint64_t torn = 0;
  std::uint64_t kept = 0;
  std::uint64_t unsynced = 0;
  std::uint64_t replayed = 0;
  std::uint64_t checkpoints_finished = 0;
  std::uint64_t in_flight_applied = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    remove_db(path);
    auto plan = std::make_shared<FaultPlan>(seed + i);
    const RunResult r = run_with_faults(path, options, ops, plan, points[i], std::nullopt);
    BOOST_REQUIRE_MESSAGE(plan->crashed(),
                          "crash point " << points[i] << " of " << total << " was never reached");
    const auto loss = plan->power_loss();
    torn += loss.torn;
    kept += loss.kept;
    unsynced += loss.unsynced_writes;
    {
      BlockingDatabase probe = BlockingDatabase::open(path, base_options(cfg.backend, 64));
      replayed += probe.stats().recovery.commits;
      if (probe.stats().recovery.checkpoint) ++checkpoints_finished;
      const Pairs all = probe.scan();
      const Model acked = model_after(ops, r.acked);
      if (all != Pairs(acked.begin(), acked.end())) ++in_flight_applied;
      probe.close();
    }
    const std::string problem = check_recovered(path, cfg.backend, ops, r);
    BOOST_REQUIRE_MESSAGE(problem.empty(), cfg.name() << " seed " << seed + i << ", crash at op "
                                                      << points[i] << " of " << total << " (after "
                                                      << r.acked << " acked ops): " << problem);
  }
  BOOST_TEST_MESSAGE(
      cfg.name() << ": " << points.size() << " crash points over " << total
                 << " operations; 0 lost acknowledged commits; " << unsynced
                 << " unsynced writes at the crashes, " << kept << " kept, " << torn << " torn; "
                 << replayed << " commits replayed; " << checkpoints_finished
                 << " interrupted checkpoints finished from the log; in-flight op applied "
                 << in_flight_applied << " times");
  BOOST_TEST(torn > 0u);
  BOOST_TEST(replayed > 0u);
  BOOST_TEST(checkpoints_finished > 0u);
}

BOOST_DATA_TEST_CASE(error_sweep, bdata::make(kErrorSweeps), cfg) {
  const std::uint64_t seed = corobtree::test::test_seed("error_sweep " + cfg.name());
  TempDir dir(corobtree::test::fast_temp_base());
  const std::string path = dir.file("errors.db");
  const std::vector<Op> ops = make_workload(seed, 120);
  const Options options = base_options(cfg.backend, cfg.pool_pages);
  const std::uint64_t total = count_ops(path, options, ops);
  const auto points =
      spread(total, static_cast<std::uint64_t>(corobtree::test::scaled(cfg.points, 40)));
  std::uint64_t reported = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    remove_db(path);
    auto plan = std::make_shared<FaultPlan>(seed + i);
    plan->write_errno = i % 2 == 0 ? EIO : ENOSPC;
    plan->persistent = (i / 2) % 2 == 1;
    const RunResult r = run_with_faults(path, options, ops, plan, std::nullopt, points[i]);
    const std::string what = cfg.name() + " seed " + std::to_string(seed + i) + ", " +
                             (plan->persistent ? "lasting " : "one ") +
                             (plan->write_errno == EIO ? "EIO" : "ENOSPC") + " at op " +
                             std::to_string(points[i]) + " of " + std::to_string(total);
    BOOST_REQUIRE_MESSAGE(plan->failures() > 0, what << ": the failure was never injected");
    // The API reports it, with its type.
    BOOST_REQUIRE_MESSAGE(r.failed, what << ": no call reported the error");
    BOOST_REQUIRE_MESSAGE(
        r.code == ErrorCode::kIoError || r.code == ErrorCode::kNoSpace,
        what << ": reported as " << corobtree::error_code_name(r.code) << ": " << r.what);
    ++reported;
    const std::string problem = check_recovered(path, cfg.backend, ops, r);
    BOOST_REQUIRE_MESSAGE(problem.empty(),
                          what << " (after " << r.acked << " acked ops): " << problem);
  }
  BOOST_TEST_MESSAGE(cfg.name() << ": " << points.size() << " injected errors over " << total
                                << " operations, all reported, 0 lost acknowledged commits");
  BOOST_TEST(reported == points.size());
}

// ---- the log's contracts, one by one ------------------------------------------

namespace {

Options plain_options(IoBackend backend) {
  Options o;
  o.backend = backend;
  o.pool_pages = 16;
  return o;
}

std::uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(n);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

corobtree::Task<void> writer_task(Database& db, int writer, int commits) {
  for (int i = 0; i < commits; ++i) {
    const std::string key = "w" + std::to_string(writer) + "-" + std::to_string(i);
    const std::string value(100, static_cast<char>('a' + writer % 26));
    co_await db.put(key, value);
  }
}

corobtree::Task<void> run_writers(Database& db, int writers, int commits) {
  std::vector<corobtree::Task<void>> tasks;
  for (int w = 0; w < writers; ++w) tasks.push_back(writer_task(db, w, commits));
  co_await corobtree::when_all(std::move(tasks));
}

}  // namespace

// Concurrent committers share fsyncs; each commit still returns only when durable.
BOOST_DATA_TEST_CASE(group_commit_shares_fsyncs, bdata::make(corobtree::test::io_backends()),
                     backend) {
  TempDir dir;
  const std::string path = dir.file("group.db");
  auto db = corobtree::sync_wait(Database::open(path, plain_options(backend)));
  const auto before = db->stats().wal;
  corobtree::sync_wait(run_writers(*db, 32, 8));
  const auto after = db->stats().wal;
  const std::uint64_t commits = after.commits - before.commits;
  const std::uint64_t syncs = after.syncs - before.syncs;
  BOOST_TEST(commits == 256u);
  BOOST_TEST_MESSAGE(corobtree::backend_name(backend)
                     << ": 256 commits from 32 tasks took " << syncs << " fsyncs; largest group "
                     << after.largest_group);
  BOOST_TEST(syncs * 4 <= commits);  // at least 4 commits per fsync on average
  BOOST_TEST(after.largest_group >= 16u);
  // Dropped without close (a crash of the process): every commit is in the log.
  db.reset();
  BlockingDatabase again = BlockingDatabase::open(path, plain_options(backend));
  BOOST_TEST(again.count() == 256u);
  BOOST_TEST(again.stats().recovery.commits > 0u);
  BOOST_TEST(again.validate().ok());
}

// Relaxed commits are written but not synced: they survive the process
// (dropped without close), and take no fsync.
BOOST_DATA_TEST_CASE(relaxed_commits_survive_a_process_crash,
                     bdata::make(corobtree::test::io_backends()), backend) {
  TempDir dir;
  const std::string path = dir.file("relaxed.db");
  Options o = plain_options(backend);
  o.durability = Durability::kRelaxed;
  auto db = corobtree::sync_wait(Database::open(path, o));
  for (int i = 0; i < 300; ++i)
    corobtree::sync_wait(db->put(key_of(i), "value" + std::to_string(i)));
  BOOST_TEST(db->stats().wal.syncs == 0u);
  BOOST_TEST(db->stats().wal.commits == 300u);
  db.reset();  // no close, no checkpoint
  BlockingDatabase again = BlockingDatabase::open(path, o);
  BOOST_TEST(again.count() == 300u);
  BOOST_TEST(again.get(key_of(299)) == std::optional<std::string>("value299"));
}

// The log is checkpointed by size, so it stays bounded; the data file then
// holds the state, and a clean close removes the log.
BOOST_DATA_TEST_CASE(checkpoints_run_by_log_size, bdata::make(corobtree::test::io_backends()),
                     backend) {
  TempDir dir;
  const std::string path = dir.file("ckpt.db");
  Options o = plain_options(backend);
  o.durability = Durability::kRelaxed;
  o.wal_checkpoint_bytes = 256 << 10;
  BlockingDatabase db = BlockingDatabase::open(path, o);
  std::uint64_t biggest_log = 0;
  for (int i = 0; i < 3000; ++i) {
    db.put(key_of(i), std::string(200, 'x'));
    biggest_log = std::max(biggest_log, db.stats().wal.bytes);
  }
  BOOST_TEST(db.stats().checkpoints >= 3u);
  // One commit past the threshold at most (a commit here logs a few pages).
  BOOST_TEST(biggest_log < (256u << 10) + 64u * 1024u);
  BOOST_TEST(file_size(path + "-wal") <= (8u << 20));
  BOOST_TEST(file_size(path + "-wal2") <= (8u << 20));
  db.close();
  BOOST_TEST(!std::filesystem::exists(path + "-wal"));
  BOOST_TEST(!std::filesystem::exists(path + "-wal2"));
  BlockingDatabase again = BlockingDatabase::open(path, o);
  BOOST_TEST(again.count() == 3000u);
  BOOST_TEST(again.stats().recovery.commits == 0u);
}

// A batch's pages do not reach the data file before its commit, even when the
// pool has to evict them mid-batch; after a crash the batch is all or nothing.
BOOST_DATA_TEST_CASE(uncommitted_batch_never_reaches_the_data_file,
                     bdata::make(corobtree::test::io_backends()), backend) {
  TempDir dir(corobtree::test::fast_temp_base());
  const std::string path = dir.file("batch.db");
  Options o = plain_options(backend);
  o.page_size = 1024;
  {
    BlockingDatabase db = BlockingDatabase::open(path, o);
    for (int i = 0; i < 200; ++i) db.put(key_of(i), "before");
    db.close();
  }
  const std::string data_before = read_all(path);
  WriteBatch big;  // far more pages than the 16 frames
  for (int i = 0; i < 2000; ++i) big.put(key_of(i), std::string(300, 'n'));
  auto plan = std::make_shared<FaultPlan>(7);
  o.wrap_disk = plan->wrapper();
  auto db = corobtree::sync_wait(Database::open(path, o));
  plan->crash_at = plan->ops() + 400;  // well inside the batch, before its commit
  bool threw = false;
  try {
    corobtree::sync_wait(db->write(big));
  } catch (const Error&) {
    threw = true;
  }
  BOOST_REQUIRE(threw);
  BOOST_TEST(db->stats().wal.page_records > 16u);  // the pool did spill pages of the batch
  db.reset();
  // Not one byte of the data file changed; it only grew by zeroed blocks that
  // new pages of the batch will take once it commits.
  const std::string data_after = read_all(path);
  BOOST_REQUIRE(data_after.size() >= data_before.size());
  BOOST_TEST((data_after.compare(0, data_before.size(), data_before) == 0));
  BOOST_TEST((data_after.find_first_not_of('\0', data_before.size()) == std::string::npos));
  plan->power_loss();
  Options plain = plain_options(backend);
  BlockingDatabase again = BlockingDatabase::open(path, plain);
  BOOST_TEST(again.count() == 200u);
  BOOST_TEST(again.get(key_of(0)) == std::optional<std::string>("before"));
  BOOST_TEST(again.validate().ok());
}

// Recovery ignores a torn tail and garbage after the last commit, and a log
// that belongs to another database.
BOOST_DATA_TEST_CASE(torn_tail_and_foreign_logs_are_ignored,
                     bdata::make(corobtree::test::io_backends()), backend) {
  TempDir dir;
  const std::string path = dir.file("tail.db");
  Options o = plain_options(backend);
  auto db = corobtree::sync_wait(Database::open(path, o));
  for (int i = 0; i < 50; ++i) corobtree::sync_wait(db->put(key_of(i), "v" + std::to_string(i)));
  db.reset();  // crash: the log holds 50 commits
  const std::string wal = path + "-wal";
  const std::string log = read_all(wal);
  // Flip bytes at the end of the used part of the log (a torn last block),
  // and append garbage.
  std::size_t end = log.size();
  while (end > 0 && log[end - 1] == '\0') --end;
  std::string damaged = log;
  damaged[end - 10] = static_cast<char>(damaged[end - 10] ^ 0x5a);
  damaged += std::string(5000, '\x77');
  { std::ofstream(wal, std::ios::binary | std::ios::trunc) << damaged; }
  {
    BlockingDatabase again = BlockingDatabase::open(path, o);
    // The last record was damaged: at most the last commit is gone, none before it.
    BOOST_TEST(again.count() >= 49u);
    for (int i = 0; i < 49; ++i)
      BOOST_TEST(again.get(key_of(i)) == std::optional<std::string>("v" + std::to_string(i)));
    BOOST_TEST(again.validate().ok());
    again.close();
  }
  // A log left by another database of the same name is not replayed.
  const std::string other = dir.file("other.db");
  {
    auto odb = corobtree::sync_wait(Database::open(other, o));
    corobtree::sync_wait(odb->put("foreign", "key"));
    odb.reset();  // its log stays
  }
  std::filesystem::remove(other);  // the data file goes; its log stays
  BlockingDatabase fresh = BlockingDatabase::open(other, o);
  BOOST_TEST(fresh.count() == 0u);
  BOOST_TEST(!fresh.get("foreign").has_value());
}

// After a failed write the database stops: every call names the failure;
// close() writes nothing; reopening recovers the acknowledged commits.
BOOST_DATA_TEST_CASE(a_failed_write_stops_the_database, bdata::make(corobtree::test::io_backends()),
                     backend) {
  TempDir dir(corobtree::test::fast_temp_base());
  const std::string path = dir.file("stop.db");
  auto plan = std::make_shared<FaultPlan>(3);
  Options o = plain_options(backend);
  o.wrap_disk = plan->wrapper();
  BlockingDatabase db = BlockingDatabase::open(path, o);
  for (int i = 0; i < 20; ++i) db.put(key_of(i), "ok");
  plan->fail_at = plan->ops();  // the next operation: the commit's log write
  plan->write_errno = ENOSPC;
  try {
    db.put("doomed", "value");
    BOOST_FAIL("the put did not report the failure");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == ErrorCode::kNoSpace || e.code() == ErrorCode::kIoError), e.what());
  }
  try {
    (void)db.get(key_of(1));
    BOOST_FAIL("a stopped database answered a read");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("reopen") != std::string::npos, e.what());
  }
  db.close();  // releases the files, writes nothing
  Options plain = plain_options(backend);
  BlockingDatabase again = BlockingDatabase::open(path, plain);
  BOOST_TEST(again.count() >= 20u);
  BOOST_TEST(again.get(key_of(19)) == std::optional<std::string>("ok"));
  BOOST_TEST(again.validate().ok());
}

// A bulk load is one transaction too: cut by a power loss anywhere, the
// database afterwards is empty or holds every pair.
BOOST_DATA_TEST_CASE(bulk_load_is_all_or_nothing, bdata::make(corobtree::test::io_backends()),
                     backend) {
  const std::uint64_t seed = corobtree::test::test_seed("bulk_load_is_all_or_nothing");
  TempDir dir(corobtree::test::fast_temp_base());
  const std::string path = dir.file("bulk.db");
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < 3000; ++i) pairs.emplace_back(key_of(i), "bulk" + std::to_string(i));
  Options o = base_options(backend, 16);
  // Operations the load makes, counted once without faults.
  remove_db(path);
  std::uint64_t total = 0;
  {
    auto plan = std::make_shared<FaultPlan>(seed);
    Options f = o;
    f.wrap_disk = plan->wrapper();
    BlockingDatabase db = BlockingDatabase::open(path, f);
    const std::uint64_t at_open = plan->ops();
    db.bulk_load(pairs);
    total = plan->ops() - at_open;
    db.close();
  }
  int empty = 0;
  int full = 0;
  std::vector<std::uint64_t> points =
      spread(total, static_cast<std::uint64_t>(corobtree::test::scaled(60, 20)));
  // And the load's last operations: most of its operations come before its
  // commit point (the data pages, then the log's growth, zero-filled), so an
  // even spread of few points may miss the few after it, which must leave
  // the load whole.
  for (std::uint64_t k = std::min<std::uint64_t>(total, 8); k > 0; --k) {
    points.push_back(total - k);
  }
  for (std::uint64_t point : points) {
    remove_db(path);
    auto plan = std::make_shared<FaultPlan>(seed + point);
    Options f = o;
    f.wrap_disk = plan->wrapper();
    bool acknowledged = false;
    {
      BlockingDatabase db = BlockingDatabase::open(path, f);
      plan->crash_at = plan->ops() + point;
      try {
        db.bulk_load(pairs);
        acknowledged = true;
      } catch (const Error&) {
      }
    }
    plan->power_loss();
    BlockingDatabase db = BlockingDatabase::open(path, o);
    BOOST_REQUIRE_MESSAGE(db.validate().ok(), "crash at op " << point << " of " << total);
    const std::uint64_t n = db.count();
    BOOST_REQUIRE_MESSAGE(n == 0 || n == pairs.size(),
                          "crash at op " << point << ": " << n << " keys");
    if (acknowledged) BOOST_REQUIRE_EQUAL(n, pairs.size());
    if (n == 0) {
      ++empty;
    } else {
      ++full;
      BOOST_REQUIRE(db.scan() == pairs);
    }
  }
  BOOST_TEST_MESSAGE(corobtree::backend_name(backend)
                     << ": bulk load cut at " << empty + full << " points: " << empty << " empty, "
                     << full << " complete");
  BOOST_TEST(empty > 0);
  BOOST_TEST(full > 0);
}
