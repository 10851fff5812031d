// Database::backup (engine/db/backup.cc), on both backends:
//  - a backup during a write load: writer tasks on the same thread commit
//    batches without pause while the backup runs (also with a log small
//    enough that checkpoints fall due during the copy); commits happen during
//    the backup, and the copy opens without replay, validates, has both meta
//    pages, and equals the model at some commit between the backup's start
//    and its end;
//  - checkpoint() and close() called during a backup wait for it;
//  - a destination that exists (the database itself included) or has a log
//    beside it is kInvalidArgument;
//  - failures on the destination (injected ENOSPC and EIO at each step, a
//    read-only directory, a file-size limit) leave no file behind, and the
//    database keeps working;
//  - an empty database, and a backup then a reopen of the source compared.
// Prints its seed; `-- --seed=N` replays it.
#define BOOST_TEST_MODULE backup
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
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
#include <corobtree/write_batch.h>
#include <corobtree/yield.h>

#include "engine/format/meta.h"
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"
#include "tests/support/backends.h"
#include "tests/support/fault_disk.h"
#include "tests/support/file_bytes.h"
#include "tests/support/random.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using corobtree::BlockingDatabase;
using corobtree::Database;
using corobtree::DiskManager;
using corobtree::Durability;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::IoBackend;
using corobtree::Options;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::WriteBatch;
using corobtree::test::TempDir;

namespace {

using Model = std::map<std::string, std::string>;

Options options_for(IoBackend backend) {
  Options o;
  o.backend = backend;
  o.pool_pages = 64;  // small: evicted pages go to the log during the load
  o.durability = Durability::kRelaxed;
  return o;
}

// One operation of a batch: a put, or an erase (no value).
struct Op {
  std::string key;
  std::optional<std::string> value;
};
using Batch = std::vector<Op>;

void apply(Model& m, const Op& op) {
  if (op.value) {
    m[op.key] = *op.value;
  } else {
    m.erase(op.key);
  }
}

// All pairs of the database, through a cursor.
Model contents(BlockingDatabase& db) {
  Model m;
  for (auto& [k, v] : db.scan()) m.emplace(std::move(k), std::move(v));
  return m;
}

// The pairs of `m` whose key starts with `prefix`.
Model with_prefix(const Model& m, const std::string& prefix) {
  Model out;
  for (auto it = m.lower_bound(prefix); it != m.end() && it->first.starts_with(prefix); ++it) {
    out.insert(*it);
  }
  return out;
}

// The smallest k in [lo, hi] such that `base` with the first k batches of
// `ops` applied equals `target`, or -1. Counts the keys on which the two
// differ, updating the count per operation (no copies of the model).
long matching_prefix(Model base, const std::vector<Batch>& ops, std::size_t lo, std::size_t hi,
                     const Model& target) {
  auto differs = [&](const std::string& k) {
    const auto a = base.find(k);
    const auto b = target.find(k);
    if (a == base.end()) return b != target.end();
    return b == target.end() || a->second != b->second;
  };
  long mismatches = 0;
  for (const auto& [k, v] : base) mismatches += differs(k) ? 1 : 0;
  for (const auto& [k, v] : target) mismatches += base.count(k) ? 0 : 1;
  for (std::size_t i = 0;; ++i) {
    if (i >= lo && mismatches == 0) return static_cast<long>(i);
    if (i >= hi || i >= ops.size()) return -1;
    for (const Op& op : ops[i]) {
      const bool before = differs(op.key);
      apply(base, op);
      mismatches += (differs(op.key) ? 1 : 0) - (before ? 1 : 0);
    }
  }
}

// Reads both meta pages of a closed database file.
std::vector<corobtree::DecodedMeta> meta_pages(const std::string& path, std::uint32_t ps = 4096) {
  const std::string bytes = corobtree::test::read_file_bytes(path);
  std::vector<corobtree::DecodedMeta> out;
  for (corobtree::BlockId id : {corobtree::BlockId{0}, corobtree::BlockId{1}}) {
    corobtree::AlignedBuffer buf(ps);
    BOOST_REQUIRE(bytes.size() >= (id + 1) * ps);
    std::memcpy(buf.data(), bytes.data() + id * ps, ps);
    out.push_back(corobtree::decode_meta(id, buf.span()));
  }
  return out;
}

// What a finished backup must look like on disk before it is opened: the
// file, no temporary, no log; both meta pages valid, describing one state.
void check_backup_file(const std::string& dest, std::uint32_t ps = 4096) {
  BOOST_TEST_REQUIRE(fs::exists(dest));
  BOOST_TEST(!fs::exists(dest + ".backup-tmp"));
  BOOST_TEST(!fs::exists(dest + "-wal"));
  const auto metas = meta_pages(dest, ps);
  BOOST_TEST_REQUIRE((metas[0].status == corobtree::MetaStatus::kValid));
  BOOST_TEST_REQUIRE((metas[1].status == corobtree::MetaStatus::kValid));
  BOOST_TEST((metas[0].meta.state == metas[1].meta.state));
  BOOST_TEST(metas[0].meta.database_id == metas[1].meta.database_id);
  BOOST_TEST(metas[0].meta.checkpoint_lsn == metas[1].meta.checkpoint_lsn);
  BOOST_TEST(fs::file_size(dest) == metas[0].meta.state.page_count * ps);
}

// Opens a backup copy: no replay, sound; returns its contents.
Model open_backup(const std::string& dest, IoBackend backend) {
  BlockingDatabase copy = BlockingDatabase::open(dest, options_for(backend));
  const corobtree::DatabaseStats s = copy.stats();
  BOOST_TEST(s.recovery.commits == 0u);
  BOOST_TEST(!s.recovery.checkpoint);
  const corobtree::ValidationReport r = copy.validate();
  BOOST_TEST(r.ok(), r.summary());
  Model m = contents(copy);
  BOOST_TEST(m.size() == copy.count());
  copy.close();
  return m;
}

// ---- the write load -------------------------------------------------------

std::string writer_key(int w, std::uint64_t k) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "w%d-%06llu", w, static_cast<unsigned long long>(k));
  return buf;
}

struct Load {
  Database* db = nullptr;
  int writers = 0;
  std::uint64_t keys_per_writer = 0;
  std::vector<Model> preload;              // per writer
  std::vector<std::vector<Batch>> issued;  // per writer, in order
  std::vector<std::size_t> acked;          // per writer
  bool backup_running = false;
  bool stop = false;
  std::uint64_t commits_during_backup = 0;
  std::uint64_t max_log_bytes_during_backup = 0;
  // Marks taken by the driver.
  std::vector<std::size_t> acked_at_start;
  std::vector<std::size_t> issued_at_end;
  std::uint64_t checkpoints_at_end = 0;
  double seconds = 0;
};

std::size_t total(const std::vector<std::size_t>& v) {
  std::size_t n = 0;
  for (std::size_t x : v) n += x;
  return n;
}

// Commits batches of one to three operations on its own keys until told to
// stop, recording each batch before it is written and counting it once
// acknowledged.
Task<void> writer(Load* load, int w, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uint64_t seq = 0;
  while (!load->stop) {
    Batch batch;
    WriteBatch wb;
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) {
      Op op{writer_key(w, rng() % load->keys_per_writer), std::nullopt};
      if (rng() % 4 == 0) {
        wb.erase(op.key);
      } else {
        const std::size_t len = rng() % 64 == 0 ? 5000 : 20 + rng() % 180;  // some overflow
        op.value = "v" + std::to_string(++seq) + corobtree::test::random_bytes(rng, len);
        wb.put(op.key, *op.value);
      }
      batch.push_back(std::move(op));
    }
    load->issued[w].push_back(std::move(batch));
    co_await load->db->write(wb);
    ++load->acked[w];
    if (load->backup_running) {
      ++load->commits_during_backup;
      load->max_log_bytes_during_backup =
          std::max(load->max_log_bytes_during_backup, load->db->stats().wal.bytes);
    }
    co_await corobtree::yield();
  }
}

Task<void> drive(Load* load, std::string dest) {
  while (total(load->acked) < 40) co_await corobtree::yield();
  load->acked_at_start = load->acked;
  load->backup_running = true;
  const auto t0 = std::chrono::steady_clock::now();
  co_await load->db->backup(dest);
  load->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  load->backup_running = false;
  for (const auto& v : load->issued) load->issued_at_end.push_back(v.size());
  load->checkpoints_at_end = load->db->stats().checkpoints;
  // Some more commits after the backup (a deferred checkpoint runs now).
  const std::size_t target = total(load->acked) + 60;
  while (total(load->acked) < target) co_await corobtree::yield();
}

// The driver, then the writers stopped whatever happened.
Task<void> drive_then_stop(Load* load, std::string dest) {
  std::exception_ptr error;
  try {
    co_await drive(load, dest);
  } catch (...) {
    error = std::current_exception();
  }
  load->stop = true;
  if (error) std::rethrow_exception(error);
}

Task<void> run_load(Load* load, std::string dest, std::uint64_t seed) {
  std::vector<Task<void>> tasks;
  for (int w = 0; w < load->writers; ++w) tasks.push_back(writer(load, w, seed + 1 + w));
  tasks.push_back(drive_then_stop(load, dest));
  co_await corobtree::when_all(std::move(tasks));
}

}  // namespace

BOOST_DATA_TEST_CASE(backup_during_a_write_load_equals_a_commit_in_between,
                     bdata::make(corobtree::test::io_backends()) * bdata::make({false, true}),
                     backend, small_log) {
  const std::uint64_t seed = corobtree::test::test_seed("backup_during_a_write_load");
  std::mt19937_64 rng(seed);
  TempDir dir;
  const std::string path = dir.file("a.db");
  const std::string dest = dir.file("copy.db");
  Options o = options_for(backend);
  if (small_log) o.wal_checkpoint_bytes = 256;  // due after every commit or two

  Load load;
  load.writers = 4;
  load.keys_per_writer = 6000;  // ~600 pages: chunks enough for commits in between
  load.preload.resize(load.writers);
  load.issued.resize(load.writers);
  load.acked.resize(load.writers);
  std::vector<std::pair<std::string, std::string>> sorted;
  for (int w = 0; w < load.writers; ++w) {
    for (std::uint64_t k = 0; k < load.keys_per_writer; k += 1 + rng() % 2) {
      const std::string key = writer_key(w, k);
      const std::string value = corobtree::test::random_bytes(rng, 20 + rng() % 180);
      load.preload[w][key] = value;
      sorted.emplace_back(key, value);
    }
  }
  std::uint64_t checkpoints_before = 0;
  {
    std::unique_ptr<Database> db = sync_wait(Database::open(path, o));
    load.db = db.get();
    sync_wait(db->bulk_load(sorted));
    checkpoints_before = db->stats().checkpoints;
    sync_wait(run_load(&load, dest, seed));
    const corobtree::DatabaseStats s = db->stats();
    BOOST_TEST_MESSAGE("keys " << s.keys << ", pages " << s.pages << ", commits during the backup "
                               << load.commits_during_backup << " of " << total(load.acked)
                               << ", backup " << load.seconds << " s, checkpoints "
                               << checkpoints_before << " -> " << load.checkpoints_at_end << " -> "
                               << s.checkpoints << ", log bytes during the backup up to "
                               << load.max_log_bytes_during_backup);
    // The writers were not held up by the backup.
    BOOST_TEST(load.commits_during_backup > 0u);
    if (small_log) {
      // A checkpoint fell due during the copy, waited, and ran after it.
      BOOST_TEST(load.max_log_bytes_during_backup >= o.wal_checkpoint_bytes);  // due: >=
      BOOST_TEST(s.checkpoints > load.checkpoints_at_end);
    }
    sync_wait(db->close());
  }
  check_backup_file(dest);
  const Model copy = open_backup(dest, backend);

  // Each writer's keys in the copy are its preload plus a prefix of its
  // batches: at least those acknowledged when the backup began, at most
  // those issued when it ended.
  std::size_t copied_keys = 0;
  for (int w = 0; w < load.writers; ++w) {
    const Model part = with_prefix(copy, "w" + std::to_string(w) + "-");
    copied_keys += part.size();
    const long k = matching_prefix(load.preload[w], load.issued[w], load.acked_at_start[w],
                                   load.issued_at_end[w], part);
    BOOST_TEST(k >= 0, "writer " << w << ": the copy matches no commit in ["
                                 << load.acked_at_start[w] << ", " << load.issued_at_end[w] << "]");
    BOOST_TEST_MESSAGE("writer " << w << ": copy = commit " << k << " (acknowledged at start "
                                 << load.acked_at_start[w] << ", issued at end "
                                 << load.issued_at_end[w] << ")");
  }
  BOOST_TEST(copied_keys == copy.size());

  // The source holds every batch.
  BlockingDatabase db = BlockingDatabase::open(path, options_for(backend));
  Model all;
  for (int w = 0; w < load.writers; ++w) {
    Model m = load.preload[w];
    for (const Batch& b : load.issued[w]) {
      for (const Op& op : b) apply(m, op);
    }
    all.insert(m.begin(), m.end());
  }
  BOOST_TEST(db.validate().ok());
  BOOST_TEST((contents(db) == all));
  db.close();
}

namespace {

Task<void> put_during_backup(Database* db, int n, std::vector<std::string>* acked) {
  for (int i = 0; i < n; ++i) {
    const std::string key = "late" + std::to_string(1000 + i);
    co_await db->put(key, "x");
    acked->push_back(key);
  }
}

Task<void> backup_and_mark(Database* db, std::string dest, bool* done) {
  co_await db->backup(dest);
  *done = true;
}

// Commits, then checkpoint() and close() during the backup: they wait for it.
Task<void> checkpoint_and_close(Database* db, const bool* backup_done, bool* waited,
                                std::vector<std::string>* acked) {
  co_await put_during_backup(db, 50, acked);
  co_await db->checkpoint();
  *waited = *backup_done;
  co_await db->close();
}

Task<void> backup_with_checkpoint_and_close(Database* db, std::string dest, bool* waited,
                                            std::vector<std::string>* acked) {
  bool done = false;
  std::vector<Task<void>> tasks;
  tasks.push_back(backup_and_mark(db, dest, &done));
  tasks.push_back(checkpoint_and_close(db, &done, waited, acked));
  co_await corobtree::when_all(std::move(tasks));
}

}  // namespace

BOOST_DATA_TEST_CASE(checkpoint_and_close_wait_for_a_backup,
                     bdata::make(corobtree::test::io_backends()), backend) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  const std::string dest = dir.file("copy.db");
  Model model;
  std::vector<std::string> late;
  bool waited = false;
  {
    std::unique_ptr<Database> db = sync_wait(Database::open(path, options_for(backend)));
    std::mt19937_64 rng(7);
    for (int i = 0; i < 3000; ++i) {  // committed, not checkpointed: the backup's checkpoint writes
      const std::string key = "key" + std::to_string(rng() % 100000);
      const std::string value = corobtree::test::random_bytes(rng, 100);
      sync_wait(db->put(key, value));
      model[key] = value;
    }
    sync_wait(backup_with_checkpoint_and_close(db.get(), dest, &waited, &late));
    BOOST_TEST(waited);
    BOOST_CHECK_THROW(sync_wait(db->put("k", "v")), Error);  // closed
  }
  check_backup_file(dest);
  const Model copy = open_backup(dest, backend);
  // The model, plus a prefix of the late puts.
  Model expected = model;
  bool matched = copy == expected;
  for (const std::string& k : late) {
    expected[k] = "x";
    matched = matched || copy == expected;
  }
  BOOST_TEST(matched);
  BlockingDatabase db = BlockingDatabase::open(path, options_for(backend));
  BOOST_TEST((contents(db) == expected));
  db.close();
}

BOOST_DATA_TEST_CASE(a_destination_that_exists_is_refused,
                     bdata::make(corobtree::test::io_backends()), backend) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  BlockingDatabase db = BlockingDatabase::open(path, options_for(backend));
  db.put("a", "1");
  auto code_of = [&](const std::string& dest) {
    try {
      db.backup(dest);
    } catch (const Error& e) {
      BOOST_TEST_MESSAGE(e.what());
      return static_cast<int>(e.code());
    }
    return -1;
  };
  const int invalid = static_cast<int>(ErrorCode::kInvalidArgument);
  corobtree::test::write_file_bytes(dir.file("exists"), "precious");
  BOOST_TEST(code_of(dir.file("exists")) == invalid);
  BOOST_TEST(corobtree::test::read_file_bytes(dir.file("exists")) == "precious");
  BOOST_TEST(code_of(path) == invalid);            // the database itself
  BOOST_TEST(code_of(path + "-wal") == invalid);   // its log
  BOOST_TEST(code_of(path + "-wal2") == invalid);  // its second log
  BOOST_TEST(code_of("") == invalid);
  fs::create_directory(dir.file("subdir"));
  BOOST_TEST(code_of(dir.file("subdir")) == invalid);
  // A log beside the destination would be replayed into the copy.
  corobtree::test::write_file_bytes(dir.file("b.db-wal"), "stale log");
  BOOST_TEST(code_of(dir.file("b.db")) == invalid);
  BOOST_TEST(!fs::exists(dir.file("b.db")));
  corobtree::test::write_file_bytes(dir.file("b2.db-wal2"), "stale second log");
  BOOST_TEST(code_of(dir.file("b2.db")) == invalid);
  BOOST_TEST(!fs::exists(dir.file("b2.db")));
  // A directory that does not exist.
  BOOST_TEST(code_of(dir.file("no/such/dir/c.db")) == static_cast<int>(ErrorCode::kNotFound));
  // A temporary file that another backup holds (locked) is left alone.
  const std::string busy = dir.file("busy.db");
  const int fd = ::open((busy + ".backup-tmp").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  BOOST_TEST_REQUIRE(fd >= 0);
  BOOST_TEST_REQUIRE(::flock(fd, LOCK_EX) == 0);
  BOOST_TEST(code_of(busy) == static_cast<int>(ErrorCode::kLocked));
  BOOST_TEST(fs::exists(busy + ".backup-tmp"));
  BOOST_TEST(!fs::exists(busy));
  ::close(fd);
  // One left by a crash is reused.
  corobtree::test::write_file_bytes(busy + ".backup-tmp", std::string(100000, 'x'));
  // The database kept working throughout.
  db.put("b", "2");
  db.backup(busy);
  BOOST_TEST(!fs::exists(busy + ".backup-tmp"));
  db.close();
  BOOST_TEST((open_backup(busy, backend) == Model{{"a", "1"}, {"b", "2"}}));
}

namespace {

// Wraps only the files whose path starts with `prefix` (the destination).
std::function<std::unique_ptr<DiskManager>(std::unique_ptr<DiskManager>)> wrap_only(
    std::shared_ptr<corobtree::test::FaultPlan> plan, std::string prefix) {
  return [plan, prefix](std::unique_ptr<DiskManager> d) {
    if (d->path().starts_with(prefix)) return plan->wrapper()(std::move(d));
    return d;
  };
}

// `n` keys with 200-byte values (many pages, some overflow values).
Model fill(BlockingDatabase& db, int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Model m;
  for (int i = 0; i < n; ++i) {
    const std::string key = "key" + std::to_string(rng() % 1000000);
    const std::string value = corobtree::test::random_bytes(rng, i % 100 == 0 ? 6000 : 200);
    db.put(key, value);
    m[key] = value;
  }
  return m;
}

// No file of the failed backup is left in `dir` (only the database's).
bool only_database_files(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name != "a.db" && name != "a.db-wal" && name != "a.db-wal2") return false;
  }
  return true;
}

}  // namespace

BOOST_DATA_TEST_CASE(a_failing_destination_leaves_nothing_and_the_database_keeps_working,
                     bdata::make(corobtree::test::io_backends()), backend) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  const std::string dest = dir.file("copy.db");
  auto plan = std::make_shared<corobtree::test::FaultPlan>(1);
  Options o = options_for(backend);
  o.wrap_disk = wrap_only(plan, dest);
  BlockingDatabase db = BlockingDatabase::open(path, o);
  Model model = fill(db, 2000, 3);
  // A dry run counts the destination's operations: allocation, writes, sync.
  db.backup(dest);
  const std::uint64_t ops = plan->ops();
  BOOST_TEST_MESSAGE("a backup makes " << ops << " operations on its destination");
  BOOST_TEST_REQUIRE(ops > 10u);
  fs::remove(dest);
  struct Case {
    std::uint64_t at;
    int err;
    ErrorCode code;
  };
  const std::vector<Case> cases = {{0, 0, ErrorCode::kNoSpace},       // the allocation: ENOSPC
                                   {1, ENOSPC, ErrorCode::kNoSpace},  // the first meta page
                                   {ops / 2, ENOSPC, ErrorCode::kNoSpace},   // a page in the middle
                                   {ops / 2 + 1, EIO, ErrorCode::kIoError},  // another
                                   {ops - 1, 0, ErrorCode::kIoError}};       // the final sync: EIO
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT("failing operation " << c.at << " of " << ops) {
      plan->fail_at = plan->ops() + c.at;
      if (c.err != 0) plan->write_errno = c.err;
      try {
        db.backup(dest);
        BOOST_ERROR("the backup did not fail");
      } catch (const Error& e) {
        BOOST_TEST((e.code() == c.code), e.what());
      }
      plan->fail_at.reset();
      BOOST_TEST(only_database_files(dir.path()));
      // The database keeps working: commits, reads, a sound tree.
      const std::string key = "after" + std::to_string(c.at);
      db.put(key, "v");
      model[key] = "v";
      BOOST_TEST((db.get(key) == std::optional<std::string>("v")));
      BOOST_TEST(db.validate().ok());
    }
  }
  db.backup(dest);
  db.close();
  check_backup_file(dest);
  BOOST_TEST((open_backup(dest, backend) == model));
  BlockingDatabase again = BlockingDatabase::open(path, options_for(backend));
  BOOST_TEST((contents(again) == model));
  again.close();
}

namespace {

// In a child: a backup into `dest` fails with a kernel error (after `setup`,
// which may limit the process), leaves nothing, and the database keeps
// working. Returns 0, or the number of the first check that failed.
template <typename Setup, typename Undo>
int failing_backup_in_child(const std::string& path, const std::string& dest, IoBackend backend,
                            Setup setup, Undo undo) {
  BlockingDatabase db = BlockingDatabase::open(path, options_for(backend));
  Model model = fill(db, 2000, 5);
  db.checkpoint();  // the backup's own checkpoint then writes nothing to the source
  setup();
  try {
    db.backup(dest);
    return 10;
  } catch (const Error& e) {
    std::fprintf(stderr, "expected failure: %s\n", e.what());
  }
  undo();
  if (fs::exists(dest) || fs::exists(dest + ".backup-tmp")) return 11;
  db.put("after", "v");
  model["after"] = "v";
  if (!db.validate().ok()) return 12;
  db.close();
  BlockingDatabase again = BlockingDatabase::open(path, options_for(backend));
  if (contents(again) != model) return 13;
  again.close();
  return 0;
}

}  // namespace

BOOST_DATA_TEST_CASE(a_read_only_directory_fails_the_backup_cleanly,
                     bdata::make(corobtree::test::io_backends()), backend) {
  TempDir dir;
  ::chmod(dir.path().c_str(), 0777);
  const std::string path = dir.file("a.db");
  const std::string ro = dir.file("ro");
  const int code = corobtree::test::run_in_child([&] {
    // Root writes into any directory: drop to nobody first.
    if (::geteuid() == 0 && (::chown(dir.path().c_str(), 65534, 65534) != 0 ||
                             ::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      return 20;
    }
    if (::mkdir(ro.c_str(), 0555) != 0) return 21;
    return failing_backup_in_child(
        path, ro + "/copy.db", backend, [] {}, [] {});
  });
  BOOST_TEST(code == 0);
}

BOOST_DATA_TEST_CASE(a_file_size_limit_fails_the_backup_cleanly,
                     bdata::make(corobtree::test::io_backends()), backend) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  const int code = corobtree::test::run_in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead
    rlimit old{};
    ::getrlimit(RLIMIT_FSIZE, &old);
    return failing_backup_in_child(
        path, dir.file("copy.db"), backend,
        [&] {
          // Room for the log (and the copy's first pages), not for the whole copy.
          const rlimit small{fs::file_size(path) / 2, old.rlim_max};
          ::setrlimit(RLIMIT_FSIZE, &small);
        },
        [&] { ::setrlimit(RLIMIT_FSIZE, &old); });
  });
  BOOST_TEST(code == 0);
}

namespace {

Task<void> backup_then_bulk_load(Database* db, std::string dest,
                                 const std::vector<std::pair<std::string, std::string>>* sorted) {
  std::vector<Task<void>> tasks;
  tasks.push_back(db->backup(dest));
  tasks.push_back(db->bulk_load(*sorted));  // its checkpoint waits for the backup
  co_await corobtree::when_all(std::move(tasks));
}

}  // namespace

BOOST_DATA_TEST_CASE(an_empty_database_backs_up, bdata::make(corobtree::test::io_backends()),
                     backend) {
  TempDir dir;
  const std::string dest = dir.file("copy.db");
  const std::string path = dir.file("a.db");
  {
    BlockingDatabase db = BlockingDatabase::open(path, options_for(backend));
    db.backup(dest);
    db.close();
  }
  check_backup_file(dest);
  BOOST_TEST(fs::file_size(dest) == 3u * 4096);
  BOOST_TEST(open_backup(dest, backend).empty());
  // A bulk load called during the backup of the empty database waits for it.
  fs::remove(dest);
  std::vector<std::pair<std::string, std::string>> sorted;
  Model model;
  for (int i = 0; i < 5000; ++i) {
    sorted.emplace_back(writer_key(0, i), std::string(100, 'v'));
    model.insert(sorted.back());
  }
  {
    std::unique_ptr<Database> db = sync_wait(Database::open(path, options_for(backend)));
    sync_wait(backup_then_bulk_load(db.get(), dest, &sorted));
    sync_wait(db->close());
  }
  check_backup_file(dest);
  BOOST_TEST(open_backup(dest, backend).empty());
  BlockingDatabase db = BlockingDatabase::open(path, options_for(backend));
  BOOST_TEST((contents(db) == model));
  db.close();
}

BOOST_DATA_TEST_CASE(a_backup_equals_the_reopened_source,
                     bdata::make(corobtree::test::all_backends()) *
                         bdata::make({std::uint32_t{1024}, std::uint32_t{4096}}),
                     config, page_size) {
  const std::uint64_t seed = corobtree::test::test_seed("a_backup_equals_the_reopened_source");
  TempDir dir;
  const std::string path = dir.file("a.db");
  const std::string dest = dir.file("copy.db");
  Options o = options_for(config.backend);
  o.direct_io = config.direct_io;
  o.page_size = page_size;
  Model model;
  {
    BlockingDatabase db = BlockingDatabase::open(path, o);
    std::mt19937_64 rng(seed);
    const int n = corobtree::test::scaled(4000, 400);
    for (int i = 0; i < n; ++i) {
      const std::string key = "k" + std::to_string(rng() % (n * 2));
      if (rng() % 5 == 0) {
        db.erase(key);
        model.erase(key);
      } else {
        const std::string value =
            corobtree::test::random_bytes(rng, rng() % 50 == 0 ? 3 * page_size : rng() % 300);
        db.put(key, value);
        model[key] = value;
      }
    }
    db.backup(dest);
    db.close();
  }
  check_backup_file(dest, page_size);
  // Copy and source are independent databases with the same contents.
  BOOST_TEST(meta_pages(dest, page_size)[0].meta.database_id !=
             meta_pages(path, page_size)[0].meta.database_id);
  BOOST_TEST((open_backup(dest, config.backend) == model));
  BlockingDatabase src = BlockingDatabase::open(path, o);
  BOOST_TEST(src.validate().ok());
  BOOST_TEST((contents(src) == model));
  src.close();
  // The copy is a database like any other: it takes writes and reopens.
  BlockingDatabase copy = BlockingDatabase::open(dest, o);
  copy.put("new", "value");
  copy.close();
  BlockingDatabase reopened = BlockingDatabase::open(dest, o);
  BOOST_TEST((reopened.get("new") == std::optional<std::string>("value")));
  BOOST_TEST(reopened.count() == model.size() + (model.count("new") ? 0 : 1));
  reopened.close();
}

namespace {

Task<void> two_backups(Database* db, std::string a, std::string b) {
  std::vector<Task<void>> tasks;
  tasks.push_back(db->backup(a));
  tasks.push_back(db->backup(b));  // waits for the first one's copy to end
  co_await corobtree::when_all(std::move(tasks));
}

}  // namespace

BOOST_DATA_TEST_CASE(two_backups_at_once_run_one_after_the_other,
                     bdata::make(corobtree::test::io_backends()), backend) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  Model model;
  {
    std::unique_ptr<Database> db = sync_wait(Database::open(path, options_for(backend)));
    std::mt19937_64 rng(11);
    for (int i = 0; i < 2000; ++i) {
      const std::string key = "key" + std::to_string(rng() % 100000);
      const std::string value = corobtree::test::random_bytes(rng, 150);
      sync_wait(db->put(key, value));
      model[key] = value;
    }
    sync_wait(two_backups(db.get(), dir.file("one.db"), dir.file("two.db")));
    sync_wait(db->close());
  }
  for (const char* name : {"one.db", "two.db"}) {
    check_backup_file(dir.file(name));
    BOOST_TEST((open_backup(dir.file(name), backend) == model), name);
  }
}
