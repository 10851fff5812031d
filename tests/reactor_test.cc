// The per-thread reactor: completions reach coroutines through the Scheduler's
// ready queue, so a coroutine resumed by an I/O completion may close and
// destroy its Database while the rest of the batch is still pending or ready;
// every database a thread opens shares the thread's one io_uring ring; a
// thread waiting for I/O sleeps in io_uring_enter however many databases it
// has open; a forked child never uses its parent's ring.
#define BOOST_TEST_MODULE reactor
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>

#include "io/aligned_buffer.h"
#include "io/disk_manager.h"
#include "io/event.h"
#include "io/event_loop.h"
#include "io/scheduler.h"
#include "io/spawn.h"
#include "io/uring_disk_manager.h"
#include "tests/support/backends.h"
#include "tests/support/file_bytes.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::Database;
using corobtree::DiskManager;
using corobtree::Event;
using corobtree::EventLoop;
using corobtree::IoBackend;
using corobtree::Options;
using corobtree::Scheduler;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::when_all;
using corobtree::test::BackendConfig;
using corobtree::test::TempDir;

namespace {

using corobtree::test::run_in_child;

constexpr int kKeys = 64;  // 200-byte values: a root over several leaves

std::string key_of(int i) { return "key" + std::to_string(1000 + i); }
std::string value_of(int i, char tag) { return std::string(200, tag) + std::to_string(i); }

// No buffer pool: every get reads the disk, so every get suspends on io_uring.
Options db_options(const BackendConfig& cfg) {
  Options o;
  o.backend = cfg.backend;
  o.direct_io = cfg.direct_io;
  o.pool_pages = 0;
  o.durability = corobtree::Durability::kRelaxed;
  return o;
}

// Opens (creates) a database, fills it with kKeys pairs tagged `tag` and
// checkpoints, so the log is empty and gets read the data file.
std::unique_ptr<Database> open_filled(const std::string& path, const Options& options, char tag) {
  std::unique_ptr<Database> db = sync_wait(Database::open(path, options));
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = key_of(i);
    const std::string value = value_of(i, tag);
    sync_wait(db->put(key, value));
  }
  sync_wait(db->checkpoint());
  return db;
}

bool uses_uring(const Database& db) { return db.stats().backend == IoBackend::kUring; }

// Coroutines are free functions taking their parameters by value
// (docs/contributing.md, GCC 12 coroutine rules).

// Gets key i, then (optionally) closes and destroys the database. The get
// resumes this coroutine on the calling thread (from the lock-free path, or
// from the engine's hop back) in the same batch as the other tasks, whose
// gets of another database are on that database's engine thread or queued
// behind this one.
Task<bool> get_then_destroy(std::unique_ptr<Database>* db, int i, char tag, bool close_first) {
  const std::string key = key_of(i);
  const std::optional<std::string> got = co_await (*db)->get(key);
  const bool ok = got.has_value() && *got == value_of(i, tag);
  if (close_first) co_await (*db)->close();
  db->reset();
  co_return ok;
}

// count gets in a row from `first`, each checked.
Task<bool> gets_in_a_row(Database* db, int first, int count, char tag) {
  bool ok = true;
  for (int i = first; i < first + count; ++i) {
    const std::string key = key_of(i % kKeys);
    const std::optional<std::string> got = co_await db->get(key);
    ok = ok && got.has_value() && *got == value_of(i % kKeys, tag);
  }
  co_return ok;
}

// One byte from a pipe through the ring: completes when someone writes it.
Task<int> read_pipe(EventLoop* loop, int fd) {
  char c = 0;
  const int res = co_await loop->read(fd, &c, 1, 0);
  co_return res == 1 ? static_cast<int>(c) : res;
}

Task<void> read_pipe_then_set(EventLoop* loop, int fd, int* out, Event* done) {
  *out = co_await read_pipe(loop, fd);
  done->set();
}

Task<void> wait_for(Event* e) { co_await *e; }

double thread_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  const auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// The thread's ring, or null (with a message) when the kernel refuses one.
EventLoop* thread_loop_or_skip() {
  try {
    return &EventLoop::for_this_thread();
  } catch (const corobtree::Error& e) {
    BOOST_TEST_MESSAGE("skipped: no io_uring here: " << e.what());
    return nullptr;
  }
}

// In a forked child whose parent has a read in flight on its ring: the
// thread's loop is a new, empty one and serves a DiskManager. Exit codes:
// 0 ok, 1 the loop has the parent's operation, 2 it has the parent's
// counters, 3 the block read back wrong, 4 the read was not this loop's.
int child_uses_its_own_ring(const std::string& path) {
  EventLoop& loop = EventLoop::for_this_thread();
  if (loop.pending() != 0) return 1;
  if (loop.stats().completed != 0) return 2;
  corobtree::DiskOptions options;
  options.backend = IoBackend::kUring;
  options.use_env = false;
  auto dm = DiskManager::open(path, options);
  const corobtree::BlockId id = dm->allocate_block();
  corobtree::AlignedBuffer page(dm->page_size());
  std::memset(page.data(), 0x5c, page.size());
  sync_wait(dm->write_block(id, page.span()));
  corobtree::AlignedBuffer back(dm->page_size());
  sync_wait(dm->read_block(id, back.span()));
  if (std::memcmp(page.data(), back.data(), page.size()) != 0) return 3;
  if (loop.stats().completed != 1 || loop.pending() != 0) return 4;
  return 0;
}

}  // namespace

// A coroutine resumed by an I/O completion closes (or just destroys) its
// database while eight tasks of the same batch still have reads of another
// database in the kernel or waiting in the ready queue. The ring and the
// Scheduler must not touch anything of the destroyed database afterwards
// (the ASan build checks), and the other database and the ring keep working.
BOOST_DATA_TEST_CASE(database_destroyed_from_inside_a_completion,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  for (const bool close_first : {true, false}) {
    BOOST_TEST_CONTEXT("close before destroying: " << close_first) {
      TempDir dir;
      const Options options = db_options(cfg);
      std::unique_ptr<Database> a = open_filled(dir.file("a.db"), options, 'a');
      std::unique_ptr<Database> b = open_filled(dir.file("b.db"), options, 'b');
      std::vector<Task<bool>> batch;
      batch.push_back(get_then_destroy(&a, 7, 'a', close_first));
      for (int t = 0; t < 8; ++t) batch.push_back(gets_in_a_row(b.get(), t * 5, 6, 'b'));
      const std::vector<bool> ok = sync_wait(when_all(std::move(batch)));
      for (std::size_t i = 0; i < ok.size(); ++i) BOOST_TEST(ok[i], "task " << i);
      BOOST_TEST(a == nullptr);
      BOOST_TEST(sync_wait(gets_in_a_row(b.get(), 0, kKeys, 'b')));
      sync_wait(b->close());
      // The closed (or dropped) database reopens with every key.
      std::unique_ptr<Database> again = sync_wait(Database::open(dir.file("a.db"), options));
      BOOST_TEST(sync_wait(gets_in_a_row(again.get(), 0, kKeys, 'a')));
      sync_wait(again->close());
    }
  }
}

// Each database does its I/O (data file and log alike) on its own engine
// thread's ring, never on the calling thread's: the two databases' disk
// managers point at two loops, neither of them this thread's, and each loop's
// completions count the reads of its own database only.
BOOST_AUTO_TEST_CASE(each_database_does_its_io_on_its_engine_thread) {
  TempDir dir;
  std::vector<DiskManager*> disks;
  Options options = db_options({IoBackend::kUring, false});
  options.pool_pages = 0;  // every get reads the disk (no lock-free hits)
  options.wrap_disk = [&disks](std::unique_ptr<DiskManager> d) {
    disks.push_back(d.get());
    return d;
  };
  std::unique_ptr<Database> a = open_filled(dir.file("a.db"), options, 'a');
  std::unique_ptr<Database> b = open_filled(dir.file("b.db"), options, 'b');
  if (!uses_uring(*a) || !uses_uring(*b)) {
    BOOST_TEST_MESSAGE("skipped: COROBTREE_IO forces another backend");
    return;
  }
  BOOST_REQUIRE_EQUAL(disks.size(), 6u);  // per database: its data file and its two logs
  std::vector<EventLoop*> loops;
  for (DiskManager* d : disks) {
    auto* uring = dynamic_cast<corobtree::UringDiskManager*>(d);
    BOOST_REQUIRE(uring != nullptr);
    loops.push_back(&uring->loop());
    BOOST_TEST(loops.back() != Scheduler::current().loop_if_created());
  }
  BOOST_TEST(loops[0] == loops[1]);  // a's data file and logs: a's engine ring
  BOOST_TEST(loops[0] == loops[2]);
  BOOST_TEST(loops[3] == loops[4]);
  BOOST_TEST(loops[3] == loops[5]);
  BOOST_TEST(loops[0] != loops[3]);  // two databases, two engine threads
  // The engine threads are idle between calls, and each call's hop orders
  // their writes before this thread's reads of their counters.
  for (const char tag : {'a', 'b'}) {
    Database* db = tag == 'a' ? a.get() : b.get();
    EventLoop* loop = tag == 'a' ? loops[0] : loops[3];
    EventLoop* other = tag == 'a' ? loops[3] : loops[0];
    const std::uint64_t reads_before = db->stats().pool.disk_reads;
    const std::uint64_t completed_before = loop->stats().completed;
    const std::uint64_t other_before = other->stats().completed;
    BOOST_TEST(sync_wait(gets_in_a_row(db, 0, kKeys, tag)));
    const std::uint64_t reads = db->stats().pool.disk_reads - reads_before;
    BOOST_TEST(reads >= static_cast<std::uint64_t>(kKeys));
    BOOST_TEST(loop->stats().completed - completed_before == reads, "database " << tag);
    BOOST_TEST(other->stats().completed == other_before, "database " << tag);
  }
  sync_wait(a->close());
  sync_wait(b->close());
}

// With two databases open and their gets done, the thread waits 200 ms for a
// pipe read on the same ring. It must sleep in io_uring_enter: a handful of
// enters and little CPU time, not a busy poll of one ring per database.
BOOST_AUTO_TEST_CASE(waiting_with_two_databases_sleeps_in_the_kernel) {
  TempDir dir;
  const Options options = db_options({IoBackend::kUring, false});
  std::unique_ptr<Database> a = open_filled(dir.file("a.db"), options, 'a');
  std::unique_ptr<Database> b = open_filled(dir.file("b.db"), options, 'b');
  if (!uses_uring(*a) || !uses_uring(*b)) {
    BOOST_TEST_MESSAGE("skipped: COROBTREE_IO forces another backend");
    return;
  }
  EventLoop& loop = EventLoop::for_this_thread();
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const auto delay = std::chrono::milliseconds(200);
  const corobtree::EventLoopStats before = loop.stats();
  const double cpu_before = thread_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  std::thread writer([fd = fds[1], delay] {
    std::this_thread::sleep_for(delay);
    const char c = 'x';
    (void)!::write(fd, &c, 1);
  });
  auto [c, ok_a, ok_b] =
      sync_wait(when_all(read_pipe(&loop, fds[0]), gets_in_a_row(a.get(), 0, 8, 'a'),
                         gets_in_a_row(b.get(), 0, 8, 'b')));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const double cpu = thread_cpu_seconds() - cpu_before;
  writer.join();
  ::close(fds[0]);
  ::close(fds[1]);
  const corobtree::EventLoopStats after = loop.stats();
  BOOST_TEST(c == 'x');
  BOOST_TEST(ok_a);
  BOOST_TEST(ok_b);
  BOOST_TEST(elapsed >= delay - std::chrono::milliseconds(20));
  const std::uint64_t enters = after.enters - before.enters;
  BOOST_TEST_MESSAGE("waited " << std::chrono::duration<double>(elapsed).count() << " s with "
                               << enters << " io_uring_enter calls and " << cpu << " s of CPU");
  // 16 gets of two reads each take at most a few dozen polls; a spinning
  // thread would make thousands of calls over 200 ms and burn all of it.
  BOOST_TEST(enters <= 64u);
  BOOST_TEST(after.spin_polls == before.spin_polls);  // no fsync in flight
  BOOST_TEST(cpu < 0.1);
  sync_wait(a->close());
  sync_wait(b->close());
}

// A forked child never uses the parent's ring, even while the parent has an
// operation in flight on it: the child's thread gets a fresh loop, and the
// parent's operation still completes in the parent.
BOOST_AUTO_TEST_CASE(a_forked_child_gets_its_own_ring) {
  EventLoop* loop = thread_loop_or_skip();
  if (!loop) return;
  TempDir dir;
  const std::string path = dir.file("child.db");
  int fds[2];
  BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  int got = 0;
  Event done;
  corobtree::spawn(read_pipe_then_set(loop, fds[0], &got, &done));
  Scheduler::current().submit_queued_io();
  BOOST_REQUIRE_EQUAL(loop->pending(), 1u);  // the read sits in the kernel
  const int code = run_in_child([&path] { return child_uses_its_own_ring(path); });
  BOOST_TEST(code == 0, "child exit " << code);
  BOOST_TEST(loop->pending() == 1u);
  const char c = 'y';
  BOOST_REQUIRE(::write(fds[1], &c, 1) == 1);
  sync_wait(wait_for(&done));
  BOOST_TEST(got == 'y');
  BOOST_TEST(loop->pending() == 0u);
  ::close(fds[0]);
  ::close(fds[1]);
}
