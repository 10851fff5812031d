// Cross-thread hand-offs through a Database, while the waiting thread sleeps
// in its loop (io_uring_enter with I/O in flight on io_uring; poll on its
// eventfd with pread). tests/runtime_test.cc covers the primitives alone
// (Event, AsyncMutex); here the engine's own waits are released by another
// thread:
//  * a writer waits for the writer lock another thread's long batch holds;
//  * a read that misses waits for the same page another thread is loading;
//  * a Database destroyed while calls are in flight on other threads waits
//    for them (each returns its result or kClosed), never crashes; destroyed
//    on the thread of a call in flight, it does not wait for that call's
//    hop home;
//  * sync_wait (a BlockingDatabase call) inside a coroutine on the same
//    thread, or on a Runtime worker, is Error(kInvalidArgument), not a hang;
//  * a Cursor moves from one thread to another between calls;
//  * close() while four threads put and get: kClosed or success, and every
//    acknowledged put survives;
//  * a write failing on the disk stops the database for every thread.
// The stalls come from a gate on the data file's reads (Options::wrap_disk):
// while it is closed, a read of a tree page waits for the main thread to open
// it. Every waiting coroutine must resume on its own thread. No timing is
// asserted; a watchdog turns a hang into a failure. All backends.
#define BOOST_TEST_MODULE mt_handoff
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/runtime.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "io/event.h"
#include "io/event_loop.h"
#include "io/forwarding_disk.h"
#include "tests/support/backends.h"
#include "tests/support/fault_disk.h"
#include "tests/support/temp_dir.h"
#include "tests/support/thread_probe.h"

namespace bdata = boost::unit_test::data;
using corobtree::BlockId;
using corobtree::BlockingDatabase;
using corobtree::Database;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::Event;
using corobtree::Runtime;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::test::BackendConfig;
using corobtree::test::blocked_in;
using corobtree::test::this_tid;
using corobtree::test::wait_for;
using corobtree::test::Watchdog;

namespace {

// While closed, every read of a tree page of the data file waits for open().
// One-shot: a scenario makes a new Gate.
struct Gate {
  std::atomic<bool> closed{false};
  Event opened;
  std::atomic<int> waiting{0};  // reads that stopped at the gate
  std::mutex mutex;
  std::map<BlockId, int> reads;  // per block: reads of the data file while closed

  void open() {
    closed.store(false);
    opened.set();
  }
  int reads_of(BlockId id) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = reads.find(id);
    return it == reads.end() ? 0 : it->second;
  }
};

class GatedDisk : public corobtree::ForwardingDiskManager {
 public:
  GatedDisk(std::unique_ptr<corobtree::DiskManager> inner, std::shared_ptr<Gate> gate)
      : ForwardingDiskManager(std::move(inner)), gate_(std::move(gate)) {}

  Task<void> read_block(BlockId id, std::span<std::byte> out) override {
    if (id >= 2 && gate_->closed.load()) {  // not the meta pages
      {
        std::lock_guard<std::mutex> lock(gate_->mutex);
        ++gate_->reads[id];
      }
      gate_->waiting.fetch_add(1);
      co_await gate_->opened;
    }
    co_await inner().read_block(id, out);
  }
  Task<void> write_blocks(BlockId first, std::span<const std::byte> data) override {
    return inner().write_blocks(first, data);
  }

 private:
  std::shared_ptr<Gate> gate_;
};

// The data file only (not its log), for Options::wrap_disk.
auto gate_wrapper(std::shared_ptr<Gate> gate) {
  return
      [gate](std::unique_ptr<corobtree::DiskManager> d) -> std::unique_ptr<corobtree::DiskManager> {
        const std::string& p = d->path();
        if (p.find("-wal") != std::string::npos) return d;  // NAME-wal, NAME-wal2
        return std::make_unique<GatedDisk>(std::move(d), gate);
      };
}

constexpr int kKeys = 3000;

std::string key_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%05d", i);
  return buf;
}

std::string value_of(int i, int version) {
  return "value " + std::to_string(i) + " v" + std::to_string(version) +
         std::string(static_cast<std::size_t>(i % 40), '.');
}

corobtree::Options small_options(const BackendConfig& b) {
  corobtree::Options o;
  o.backend = b.backend;
  o.direct_io = b.direct_io;
  o.page_size = 512;
  o.pool_pages = 16;
  o.durability = corobtree::Durability::kRelaxed;
  return o;
}

// A database of kKeys keys (several levels of 512-byte pages), closed: the
// next open starts with a cold pool.
void make_database(const std::string& path, const BackendConfig& b) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (int i = 0; i < kKeys; ++i) rows.emplace_back(key_of(i), value_of(i, 0));
  BlockingDatabase db = BlockingDatabase::open(path, small_options(b));
  db.bulk_load(rows);
  db.close();
}

bool uses_uring(const BackendConfig& b) { return b.backend == corobtree::IoBackend::kUring; }

// Keeps an io_uring read in flight on a pipe until someone writes to it, so
// that the thread sleeps in io_uring_enter (not in poll) while it waits.
Task<void> read_pipe(int fd, int& got) {
  char c = 0;
  got = co_await corobtree::EventLoop::for_this_thread().read(fd, &c, 1, 0);
}

// What a coroutine of thread B saw.
struct Seen {
  std::atomic<bool> done{false};
  std::atomic<bool> on_home{true};  // false once it resumed on another thread
  std::optional<std::string> value;
  std::string error;
};

Task<void> get_on_b(Database& db, std::string key, Seen& s) {
  const auto home = std::this_thread::get_id();
  try {
    std::optional<std::string> v = co_await db.get(key);
    s.value = std::move(v);
  } catch (const std::exception& e) {
    s.error = e.what();
  }
  if (std::this_thread::get_id() != home) s.on_home.store(false);
  s.done.store(true);
}

Task<void> put_on_b(Database& db, std::string key, std::string value, Seen& s) {
  const auto home = std::this_thread::get_id();
  try {
    co_await db.put(key, value);
  } catch (const std::exception& e) {
    s.error = e.what();
  }
  if (std::this_thread::get_id() != home) s.on_home.store(false);
  s.done.store(true);
}

Task<void> write_on_a(Database& db, const corobtree::WriteBatch& batch, Seen& s) {
  try {
    co_await db.write(batch);
  } catch (const std::exception& e) {
    s.error = e.what();
  }
  s.done.store(true);
}

// Thread B: runs `work` with sync_wait, alongside a pipe read on io_uring.
// `ready` is set once B's thread id is known.
struct ThreadB {
  std::atomic<pid_t> tid{0};
  std::thread::id id;
  int pipe_got = 0;
  std::string error;
};

void run_b(ThreadB& b, bool uring, int pipe_read_fd, Task<void> work) {
  b.id = std::this_thread::get_id();
  b.tid.store(this_tid());
  try {
    if (uring) {
      sync_wait(corobtree::when_all(std::move(work), read_pipe(pipe_read_fd, b.pipe_got)));
    } else {
      sync_wait(std::move(work));
    }
  } catch (const std::exception& e) {
    b.error = e.what();
  }
}

// Waits until thread B sleeps in its loop: io_uring_enter with I/O in flight,
// or poll on its eventfd (pread).
void wait_until_asleep(const ThreadB& b, bool uring) {
  wait_for([&] { return b.tid.load() != 0; });
  if (uring) {
    wait_for([&] { return blocked_in(b.tid.load(), {SYS_io_uring_enter}); });
  } else {
    wait_for([&] { return blocked_in(b.tid.load(), {SYS_poll, SYS_ppoll}); });
  }
}

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { BOOST_REQUIRE(::pipe(fds) == 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  void poke() const {
    const char c = 'x';
    BOOST_REQUIRE(::write(fds[1], &c, 1) == 1);
  }
};

// Thread A's long write batch stalls on the disk while it holds the writer
// lock; thread B's put waits for that lock and B falls asleep in its loop.
// Opening the gate lets A finish, and the release must wake B (from another
// thread, A's or the engine's, into B's inbox) and resume B's put on B.
void run_writer_wakes_a_writer_asleep_on_another_thread(const BackendConfig& cfg) {
  Watchdog watchdog("writer_wakes_a_writer_asleep_on_another_thread");
  corobtree::test::TempDir dir;
  const std::string path = dir.file("handoff.db");
  make_database(path, cfg);
  auto gate = std::make_shared<Gate>();
  corobtree::Options options = small_options(cfg);
  options.wrap_disk = gate_wrapper(gate);
  BlockingDatabase db = BlockingDatabase::open(path, options);
  const bool uring = uses_uring(cfg);
  Pipe pipe;

  corobtree::WriteBatch batch;  // all over the tree: many page loads
  for (int i = 0; i < kKeys; i += 7) batch.put(key_of(i), value_of(i, 1));
  gate->closed.store(true);
  Seen a_seen;
  std::thread a([&] { sync_wait(write_on_a(db.async(), batch, a_seen)); });
  wait_for([&] { return gate->waiting.load() > 0; });  // A holds the writer lock, stalled

  Seen b_put, b_get;
  ThreadB b;
  std::thread bt([&] {
    std::vector<Task<void>> work;
    work.push_back(put_on_b(db.async(), key_of(3), "from B", b_put));
    work.push_back(get_on_b(db.async(), key_of(kKeys - 2), b_get));
    run_b(b, uring, pipe.fds[0], corobtree::when_all(std::move(work)));
  });
  wait_until_asleep(b, uring);
  BOOST_TEST(!a_seen.done.load());
  BOOST_TEST(!b_put.done.load(), "B's put finished while A's batch held the writer lock");
  gate->open();
  wait_for([&] { return b_put.done.load() && b_get.done.load(); });
  if (uring) pipe.poke();  // B's last I/O
  a.join();
  bt.join();

  BOOST_TEST(a_seen.error == "");
  BOOST_TEST(b.error == "");
  BOOST_TEST(b_put.error == "");
  BOOST_TEST(b_get.error == "");
  BOOST_TEST(b_put.on_home.load());
  BOOST_TEST(b_get.on_home.load());
  BOOST_TEST((b_get.value == value_of(kKeys - 2, 0)));
  if (uring) BOOST_TEST(b.pipe_got == 1);
  // B's put came after A's batch (A held the lock): B's value is the last.
  BOOST_TEST((db.get(key_of(3)) == std::optional<std::string>("from B")));
  BOOST_TEST((db.get(key_of(7)) == value_of(7, 1)));
  const corobtree::ValidationReport report = db.validate();
  BOOST_TEST(report.ok(), report.summary());
  db.close();
}

// Threads A and B miss on the same pages: A's get stops at the gate while it
// loads a page, B's get of the same key must then wait (for A's load or its
// own read) asleep in its loop, and resume on B once the gate opens. Misses
// of one page share one read: only A's stops at the gate.
void run_reader_waits_for_a_page_another_thread_loads(const BackendConfig& cfg) {
  Watchdog watchdog("reader_waits_for_a_page_another_thread_loads");
  corobtree::test::TempDir dir;
  const std::string path = dir.file("handoff.db");
  make_database(path, cfg);
  auto gate = std::make_shared<Gate>();
  corobtree::Options options = small_options(cfg);
  options.wrap_disk = gate_wrapper(gate);
  BlockingDatabase db = BlockingDatabase::open(path, options);
  const bool uring = uses_uring(cfg);
  Pipe pipe;

  const int k = kKeys / 2 + 11;
  gate->closed.store(true);
  Seen a_get;
  std::thread a([&] { sync_wait(get_on_b(db.async(), key_of(k), a_get)); });
  wait_for([&] { return gate->waiting.load() > 0; });

  Seen b_get;
  ThreadB b;
  std::thread bt([&] { run_b(b, uring, pipe.fds[0], get_on_b(db.async(), key_of(k), b_get)); });
  wait_until_asleep(b, uring);
  BOOST_TEST(!b_get.done.load());
  const int waited = gate->waiting.load();  // 1: B waits for A's read; 2: B reads itself
  gate->open();
  wait_for([&] { return b_get.done.load(); });
  if (uring) pipe.poke();
  a.join();
  bt.join();

  BOOST_TEST(waited == 1, "B's miss read the page itself instead of sharing A's read");
  BOOST_TEST(b.error == "");
  BOOST_TEST(a_get.error == "");
  BOOST_TEST(b_get.error == "");
  BOOST_TEST(b_get.on_home.load());
  BOOST_TEST(a_get.on_home.load());
  BOOST_TEST((a_get.value == value_of(k, 0)));
  BOOST_TEST((b_get.value == value_of(k, 0)));
  db.close();
}

// A database of make_database's keys opened behind a closed-able gate, with
// the path to one key (`cached`) loaded: a get of it never meets the gate.
// `raw` stays valid until the destructor of `db` returns.
struct GatedDatabase {
  explicit GatedDatabase(const BackendConfig& cfg) : path(dir.file("handoff.db")) {
    make_database(path, cfg);
    corobtree::Options options = small_options(cfg);
    options.wrap_disk = gate_wrapper(gate);
    db = sync_wait(Database::open(path, options));
    raw = db.get();
    BOOST_TEST((sync_wait(raw->get(cached)) == value_of(7, 0)));
  }

  corobtree::test::TempDir dir;
  std::string path;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  std::unique_ptr<Database> db;
  Database* raw = nullptr;
  std::string cached = key_of(7);
};

// Destroying a Database while calls on other threads are in flight: three
// gets (on three threads) stall at the gate, and a fourth thread destroys the
// database. The destructor must wait for them: meanwhile the main thread
// keeps calling get() of a cached key (served without the gate) until one
// throws kClosed, which says the destructor is running; it must not have
// returned then. Opening the gate lets the three finish (each with its value,
// or kClosed) and the destructor return. Nothing crashes, and the files reopen.
void run_destroying_the_database_waits_for_calls_in_flight(const BackendConfig& cfg) {
  Watchdog watchdog("destroying_the_database_waits_for_calls_in_flight");
  GatedDatabase g(cfg);
  const std::string& path = g.path;
  const std::shared_ptr<Gate>& gate = g.gate;
  std::unique_ptr<Database>& db = g.db;
  Database* const raw = g.raw;
  const std::string& cached = g.cached;

  constexpr int kCalls = 3;
  std::vector<std::unique_ptr<Seen>> seen;
  std::vector<std::atomic<pid_t>> tids(kCalls);
  for (int i = 0; i < kCalls; ++i) seen.push_back(std::make_unique<Seen>());
  gate->closed.store(true);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      const auto n = static_cast<std::size_t>(i);
      tids[n].store(this_tid());
      sync_wait(get_on_b(*raw, key_of(1000 * i + 501), *seen[n]));
    });
  }
  // Every call has started and is suspended (at the gate, or waiting for a
  // read that is): its thread sleeps in its loop.
  for (auto& tid : tids) {
    wait_for([&] {
      return tid.load() != 0 && blocked_in(tid.load(), {SYS_poll, SYS_ppoll, SYS_io_uring_enter});
    });
  }
  std::atomic<bool> destroyed{false};
  std::thread d([&] {
    db.reset();
    destroyed.store(true);
  });
  int probes = 0;
  std::string probe_error;
  for (bool closed = false; !closed;) {
    ++probes;
    try {
      const std::optional<std::string> v = sync_wait(raw->get(cached));
      if (v != value_of(7, 0)) probe_error = "a get meanwhile returned a wrong value";
    } catch (const Error& e) {
      closed = true;
      if (e.code() != ErrorCode::kClosed) probe_error = e.what();
    }
  }
  const bool destroyed_early = destroyed.load();
  gate->open();
  d.join();
  for (std::thread& t : threads) t.join();

  BOOST_TEST_MESSAGE("calls before one saw kClosed: " << probes);
  BOOST_TEST(probe_error == "");
  BOOST_TEST(!destroyed_early, "the destructor returned while calls were in flight");
  for (int i = 0; i < kCalls; ++i) {
    const Seen& s = *seen[static_cast<std::size_t>(i)];
    BOOST_TEST_CONTEXT("call " << i) {
      BOOST_TEST(s.done.load());
      BOOST_TEST(s.on_home.load());
      if (s.error.empty()) {
        BOOST_TEST((s.value == value_of(1000 * i + 501, 0)));
      } else {
        BOOST_TEST(s.error.find("closed") != std::string::npos, s.error);
      }
    }
  }
  BlockingDatabase again = BlockingDatabase::open(path, small_options(cfg));
  const corobtree::ValidationReport report = again.validate();
  BOOST_TEST(report.ok(), report.summary());
  BOOST_TEST(again.count() == static_cast<std::uint64_t>(kKeys));
  again.close();
}

Task<void> blocking_call_inside_a_coroutine(BlockingDatabase& db, ErrorCode& code) {
  try {
    (void)db.get(key_of(1));  // sync_wait inside a coroutine on this thread
  } catch (const Error& e) {
    code = e.code();
  }
  co_return;
}

Task<void> blocking_call_on_a_worker(Runtime& rt, BlockingDatabase& db, ErrorCode& code) {
  co_await rt.schedule();
  try {
    db.put(key_of(2), "never");
  } catch (const Error& e) {
    code = e.code();
  }
}

// The three ways a get may reach the engine thread.
enum class ReadKind { kGet, kGetInto, kScan };

Task<void> read_on_worker(Database& db, std::string key, ReadKind kind, Seen& s) {
  const auto home = std::this_thread::get_id();
  try {
    if (kind == ReadKind::kGet) {
      std::optional<std::string> v = co_await db.get(key);
      s.value = std::move(v);
    } else if (kind == ReadKind::kGetInto) {
      std::string v;
      const bool found = co_await db.get(key, v);
      if (found) s.value = std::move(v);
    } else {
      corobtree::ScanOptions range;
      range.lower = key;
      std::vector<std::pair<std::string, std::string>> rows = co_await db.scan(range, 1);
      if (!rows.empty() && rows[0].first == key) s.value = std::move(rows[0].second);
    }
  } catch (const std::exception& e) {
    s.error = e.what();
  }
  if (std::this_thread::get_id() != home) s.on_home.store(false);
  s.done.store(true);
}

Task<void> destroy_on_worker(std::unique_ptr<Database>& db, std::atomic<bool>& destroyed) {
  db.reset();
  destroyed.store(true);
  co_return;
}

// Destroying a Database on the very thread whose call is in flight: a task
// on a one-worker Runtime gets a key whose leaf read stalls at the gate, and
// a second task on the same worker destroys the database, blocking the
// worker. The call's engine part must stop counting as in flight before its
// hop home (which cannot run until the destructor returns), else the
// destructor waits for it forever. Once the gate opens, the destructor
// returns and the get resumes on its worker with its value (or kClosed).
// For get(key), get(key, value) and scan.
void run_destroying_the_database_on_the_thread_of_a_call_in_flight(const BackendConfig& cfg,
                                                                   ReadKind kind) {
  Watchdog watchdog("destroying_the_database_on_the_thread_of_a_call_in_flight");
  GatedDatabase g(cfg);
  const std::string& path = g.path;
  const std::shared_ptr<Gate>& gate = g.gate;
  std::unique_ptr<Database>& db = g.db;
  Database* const raw = g.raw;
  const std::string& cached = g.cached;

  Seen seen;
  std::atomic<bool> destroyed{false};
  {
    Runtime worker(1);
    gate->closed.store(true);
    const std::string key = key_of(2501);
    worker.spawn(read_on_worker(*raw, key, kind, seen));
    wait_for([&] { return gate->waiting.load() >= 1; });
    worker.spawn(destroy_on_worker(db, destroyed));
    // The destructor has started once a get from here throws kClosed.
    for (bool closed = false; !closed;) {
      try {
        (void)sync_wait(raw->get(cached));
      } catch (const Error& e) {
        closed = true;
        BOOST_TEST((e.code() == ErrorCode::kClosed), e.what());
      }
    }
    gate->open();
    wait_for([&] { return destroyed.load() && seen.done.load(); });
  }
  BOOST_TEST(seen.on_home.load());
  if (seen.error.empty()) {
    BOOST_TEST((seen.value == value_of(2501, 0)));
  } else {
    BOOST_TEST(seen.error.find("closed") != std::string::npos, seen.error);
  }
  BlockingDatabase again = BlockingDatabase::open(path, small_options(cfg));
  BOOST_TEST(again.count() == static_cast<std::uint64_t>(kKeys));
  again.close();
}

// A BlockingDatabase call inside a coroutine would nest the thread's loop:
// Error(kInvalidArgument), on the calling thread and on a Runtime worker; the
// database stays usable.
void run_sync_wait_inside_a_coroutine_is_invalid_argument(const BackendConfig& cfg) {
  Watchdog watchdog("sync_wait_inside_a_coroutine_is_invalid_argument");
  corobtree::test::TempDir dir;
  const std::string path = dir.file("nested.db");
  make_database(path, cfg);
  BlockingDatabase db = BlockingDatabase::open(path, small_options(cfg));
  ErrorCode code = ErrorCode::kIoError;
  sync_wait(blocking_call_inside_a_coroutine(db, code));
  BOOST_TEST((code == ErrorCode::kInvalidArgument));
  {
    Runtime rt(1);
    code = ErrorCode::kIoError;
    sync_wait(blocking_call_on_a_worker(rt, db, code));
    BOOST_TEST((code == ErrorCode::kInvalidArgument));
  }
  BOOST_TEST((db.get(key_of(1)) == value_of(1, 0)));
  BOOST_TEST((db.get(key_of(2)) == value_of(2, 0)));
  db.put(key_of(2), "after");
  BOOST_TEST((db.get(key_of(2)) == std::optional<std::string>("after")));
  db.close();
}

Task<std::vector<std::string>> walk(corobtree::Cursor& c, bool from_start, int steps) {
  std::vector<std::string> keys;
  bool ok = false;
  if (from_start) {
    ok = co_await c.first();
  } else {
    ok = co_await c.next();
  }
  while (ok) {
    keys.emplace_back(c.key());
    if (static_cast<int>(keys.size()) == steps) break;
    ok = co_await c.next();
  }
  co_return keys;
}

// A Cursor is used by one task at a time, on any thread: it starts on this
// thread, continues on three others in turn (while a fourth writes), and sees
// every key once, in order.
void run_a_cursor_moves_between_threads(const BackendConfig& cfg) {
  Watchdog watchdog("a_cursor_moves_between_threads");
  corobtree::test::TempDir dir;
  const std::string path = dir.file("cursor.db");
  make_database(path, cfg);
  BlockingDatabase db = BlockingDatabase::open(path, small_options(cfg));
  std::atomic<bool> stop{false};
  std::thread writer([&] {  // rewrites values only: the key set stays fixed
    for (int i = 0; !stop.load(); i = (i + 13) % kKeys) db.put(key_of(i), value_of(i, 2));
  });
  corobtree::Cursor cursor = db.async().cursor();
  std::vector<std::string> keys = sync_wait(walk(cursor, true, 500));
  for (int leg = 0; leg < 3 && cursor.valid(); ++leg) {
    std::vector<std::string> part;
    std::thread t([&] { part = sync_wait(walk(cursor, false, 900)); });
    t.join();
    keys.insert(keys.end(), part.begin(), part.end());
  }
  if (cursor.valid()) {
    std::vector<std::string> rest = sync_wait(walk(cursor, false, kKeys));
    keys.insert(keys.end(), rest.begin(), rest.end());
  }
  stop.store(true);
  writer.join();
  BOOST_TEST(keys.size() == static_cast<std::size_t>(kKeys));
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] != key_of(static_cast<int>(i))) {
      BOOST_ERROR("position " << i << ": " << keys[i]);
      break;
    }
  }
  db.close();
}

// close() on one thread while four others put and get: every call either
// works or throws kClosed (no other error, no crash, no hang), and after
// reopening, each writer's acknowledged puts are all there; of the rest only
// the one it had in flight may be.
struct CloseRaceWriter {
  std::atomic<int> acked{0};
  std::string error;
};

std::string race_key(int writer, int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "w%d/%06d", writer, n);
  return buf;
}

void write_until_closed(BlockingDatabase& db, int writer, CloseRaceWriter& out) {
  for (int n = 0;; ++n) {
    try {
      db.put(race_key(writer, n), value_of(n, writer));
      out.acked.store(n + 1);
      const std::optional<std::string> v = db.get(key_of((n * 37) % kKeys));
      if (v != value_of((n * 37) % kKeys, 0)) out.error = "a get returned a wrong value";
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kClosed) out.error = e.what();
      return;
    } catch (const std::exception& e) {
      out.error = e.what();
      return;
    }
  }
}

void run_close_while_threads_write(const BackendConfig& cfg) {
  Watchdog watchdog("close_while_threads_write");
  corobtree::test::TempDir dir;
  const std::string path = dir.file("close.db");
  make_database(path, cfg);
  BlockingDatabase db = BlockingDatabase::open(path, small_options(cfg));
  constexpr int kWriters = 4;
  std::vector<std::unique_ptr<CloseRaceWriter>> writers;
  for (int w = 0; w < kWriters; ++w) writers.push_back(std::make_unique<CloseRaceWriter>());
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back(
        [&db, &writers, w] { write_until_closed(db, w, *writers[static_cast<std::size_t>(w)]); });
  }
  for (auto& w : writers) wait_for([&] { return w->acked.load() >= 20; });
  std::string close_error;
  try {
    db.close();
  } catch (const std::exception& e) {
    close_error = e.what();
  }
  for (std::thread& t : threads) t.join();
  BOOST_TEST(close_error == "");

  BlockingDatabase again = BlockingDatabase::open(path, small_options(cfg));
  const corobtree::ValidationReport report = again.validate();
  BOOST_TEST(report.ok(), report.summary());
  std::uint64_t extra = 0;
  for (int w = 0; w < kWriters; ++w) {
    const CloseRaceWriter& out = *writers[static_cast<std::size_t>(w)];
    BOOST_TEST_CONTEXT("writer " << w << ", " << out.acked.load() << " puts acknowledged") {
      BOOST_TEST(out.error == "");
      const int acked = out.acked.load();
      for (int n = 0; n < acked; ++n) {
        if (again.get(race_key(w, n)) != value_of(n, w)) {
          BOOST_ERROR("acknowledged put " << n << " is missing");
          break;
        }
      }
      if (again.get(race_key(w, acked)) == value_of(acked, w)) ++extra;  // was in flight
      BOOST_TEST(!again.get(race_key(w, acked + 1)).has_value());
      extra += static_cast<std::uint64_t>(acked);
    }
  }
  BOOST_TEST(again.count() == static_cast<std::uint64_t>(kKeys) + extra);
  again.close();
}

// A write that fails on the disk stops the database for every thread: four
// threads put until one of their calls throws; the failure is an I/O error
// and every call after it, on any thread, throws too (also a get of a key
// that is cached). close() writes nothing; reopening recovers every
// acknowledged put (and at most the one each writer had in flight).
void put_until_failure(BlockingDatabase& db, int writer, CloseRaceWriter& out,
                       std::atomic<int>& stopped) {
  // A failed read throws without stopping the database: go on until a call
  // reports the stop (its message says to reopen).
  for (int n = 0; n < 100000; ++n) {
    try {
      db.put(race_key(writer, n), value_of(n, writer));
      out.acked.store(n + 1);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kIoError && e.code() != ErrorCode::kNoSpace) {
        out.error = e.what();
        break;
      }
      if (std::string(e.what()).find("reopen") != std::string::npos) break;
    }
  }
  stopped.fetch_add(1);
  wait_for([&] { return stopped.load() == 4; });  // every writer has seen it
  try {
    (void)db.get(key_of(1));  // cached: the main thread read it
    out.error = "a get after the failure returned";
  } catch (const Error&) {
  }
}

void run_a_failed_write_stops_every_thread(const BackendConfig& cfg) {
  Watchdog watchdog("a_failed_write_stops_every_thread");
  corobtree::test::TempDir dir;
  const std::string path = dir.file("fail.db");
  make_database(path, cfg);
  auto plan = std::make_shared<corobtree::test::FaultPlan>(5);
  corobtree::Options options = small_options(cfg);
  options.wrap_disk = plan->wrapper();
  BlockingDatabase db = BlockingDatabase::open(path, options);
  BOOST_TEST((db.get(key_of(1)) == value_of(1, 0)));
  plan->fail_at = plan->ops() + 300;  // set before the writers start
  plan->persistent = true;
  constexpr int kWriters = 4;
  std::vector<std::unique_ptr<CloseRaceWriter>> writers;
  for (int w = 0; w < kWriters; ++w) writers.push_back(std::make_unique<CloseRaceWriter>());
  std::atomic<int> stopped{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&db, &writers, &stopped, w] {
      put_until_failure(db, w, *writers[static_cast<std::size_t>(w)], stopped);
    });
  }
  for (std::thread& t : threads) t.join();
  BOOST_TEST(plan->failures() >= 1u);
  std::string close_error;
  try {
    db.close();
  } catch (const std::exception& e) {
    close_error = e.what();
  }
  BOOST_TEST(close_error == "");

  BlockingDatabase again = BlockingDatabase::open(path, small_options(cfg));
  const corobtree::ValidationReport report = again.validate();
  BOOST_TEST(report.ok(), report.summary());
  for (int w = 0; w < kWriters; ++w) {
    const CloseRaceWriter& out = *writers[static_cast<std::size_t>(w)];
    const int acked = out.acked.load();
    BOOST_TEST_CONTEXT("writer " << w << ", " << acked << " puts acknowledged") {
      BOOST_TEST(out.error == "");
      for (int n = 0; n < acked; ++n) {
        if (again.get(race_key(w, n)) != value_of(n, w)) {
          BOOST_ERROR("acknowledged put " << n << " is missing");
          break;
        }
      }
      BOOST_TEST(!again.get(race_key(w, acked + 1)).has_value());
    }
  }
  again.close();
}

}  // namespace

BOOST_DATA_TEST_CASE(writer_wakes_a_writer_asleep_on_another_thread,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  run_writer_wakes_a_writer_asleep_on_another_thread(cfg);
}
BOOST_DATA_TEST_CASE(reader_waits_for_a_page_another_thread_loads,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  run_reader_waits_for_a_page_another_thread_loads(cfg);
}
BOOST_DATA_TEST_CASE(destroying_the_database_waits_for_calls_in_flight,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  run_destroying_the_database_waits_for_calls_in_flight(cfg);
}
BOOST_DATA_TEST_CASE(destroying_the_database_on_the_thread_of_a_get_in_flight,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  run_destroying_the_database_on_the_thread_of_a_call_in_flight(cfg, ReadKind::kGet);
}
BOOST_DATA_TEST_CASE(destroying_the_database_on_the_thread_of_a_get_into_in_flight,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  run_destroying_the_database_on_the_thread_of_a_call_in_flight(cfg, ReadKind::kGetInto);
}
BOOST_DATA_TEST_CASE(destroying_the_database_on_the_thread_of_a_scan_in_flight,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  run_destroying_the_database_on_the_thread_of_a_call_in_flight(cfg, ReadKind::kScan);
}
BOOST_DATA_TEST_CASE(sync_wait_inside_a_coroutine_is_invalid_argument,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  run_sync_wait_inside_a_coroutine_is_invalid_argument(cfg);
}
BOOST_DATA_TEST_CASE(a_cursor_moves_between_threads, bdata::make(corobtree::test::all_backends()),
                     cfg) {
  run_a_cursor_moves_between_threads(cfg);
}
BOOST_DATA_TEST_CASE(close_while_threads_write, bdata::make(corobtree::test::all_backends()), cfg) {
  run_close_while_threads_write(cfg);
}
BOOST_DATA_TEST_CASE(a_failed_write_stops_every_thread,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  run_a_failed_write_stops_every_thread(cfg);
}
