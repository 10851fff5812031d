// The cross-thread runtime: a waiter released by another thread resumes on its
// own thread (through its inbox), even while that thread sleeps in
// io_uring_enter or poll; the sync primitives under many oversubscribed
// threads; Runtime (schedule, spawn, sync_wait, shutdown); posting to a thread
// that has exited; sync_wait refused where it would nest a loop.
#define BOOST_TEST_MODULE runtime
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/runtime.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include <corobtree/yield.h>
#include "io/aligned_buffer.h"
#include "io/async_mutex.h"
#include "io/async_shared_mutex.h"
#include "io/disk_manager.h"
#include "io/event.h"
#include "io/event_loop.h"
#include "io/scheduler.h"
#include "tests/support/backends.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::AsyncMutex;
using corobtree::AsyncSharedMutex;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::Event;
using corobtree::Runtime;
using corobtree::Scheduler;
using corobtree::sync_wait;
using corobtree::Task;

namespace {

pid_t this_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// The system call thread `tid` of this process is blocked in, or -1 while it
// runs (/proc/self/task/TID/syscall).
long blocked_syscall(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  std::string first;
  in >> first;
  if (first.empty() || first == "running") return -1;
  try {
    return std::stol(first);
  } catch (const std::exception&) {
    return -1;
  }
}

// Waits (no deadline: a hang is the failure) until thread `tid` is blocked in
// one of the given system calls.
void wait_until_blocked_in(pid_t tid, std::initializer_list<long> calls) {
  for (;;) {
    const long nr = blocked_syscall(tid);
    for (long c : calls) {
      if (nr == c) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// What the waiting thread saw.
struct Waiter {
  std::atomic<bool> waiting{false};  // set just before it suspends
  std::atomic<bool> resumed{false};
  std::thread::id resumed_on;
};

Task<void> wait_event(Event& e, Waiter& w) {
  w.waiting.store(true);
  co_await e;
  w.resumed_on = std::this_thread::get_id();
  w.resumed.store(true);
}

Task<void> wait_mutex(AsyncMutex& m, Waiter& w) {
  w.waiting.store(true);
  co_await m.lock();
  w.resumed_on = std::this_thread::get_id();
  w.resumed.store(true);
  m.unlock();
}

// Keeps an io_uring read in flight on a pipe until someone writes to it.
Task<void> read_pipe(int fd, int& got) {
  char c = 0;
  got = co_await corobtree::EventLoop::for_this_thread().read(fd, &c, 1, 0);
}

// One disk block written and read back on the calling thread's backend.
Task<bool> disk_round_trip(corobtree::DiskManager& dm, std::uint8_t stamp) {
  corobtree::AlignedBuffer out(dm.page_size());
  std::memset(out.data(), stamp, dm.page_size());
  const corobtree::BlockId id = dm.allocate_block();
  co_await dm.write_block(id, out.span());
  corobtree::AlignedBuffer in(dm.page_size());
  co_await dm.read_block(id, in.span());
  co_return std::memcmp(in.data(), out.data(), dm.page_size()) == 0;
}

Task<void> disk_then(corobtree::DiskManager& dm, Task<void> wait, bool& disk_ok) {
  disk_ok = co_await disk_round_trip(dm, 0x5a);
  co_await std::move(wait);
}

bool uses_uring(const corobtree::test::BackendConfig& cfg) {
  return cfg.backend == corobtree::IoBackend::kUring;
}

// Thread B waits for an Event, then for a mutex, that the main thread releases
// only once B is surely asleep: in io_uring_enter (a pipe read in flight, with
// the io_uring backend) or in poll on its eventfd (pread: no ring). B must
// resume, on B. Disk I/O on B's own backend runs first.
void release_wakes_sleeper(const corobtree::test::BackendConfig& cfg) {
  (void)Scheduler::current();  // this thread can post: B sleeps rather than report a deadlock
  corobtree::test::TempDir dir;
  const bool uring = uses_uring(cfg);
  int pipe_fds[2];
  BOOST_REQUIRE(::pipe(pipe_fds) == 0);

  for (const bool use_mutex : {false, true}) {
    BOOST_TEST_CONTEXT((use_mutex ? "AsyncMutex" : "Event")) {
      Event event;
      AsyncMutex mutex;
      if (use_mutex) BOOST_REQUIRE(mutex.try_lock());  // held by this thread until B sleeps
      Waiter w;
      std::atomic<pid_t> b_tid{0};
      bool disk_ok = false;
      int pipe_got = 0;
      std::thread::id b_id;
      std::thread b([&] {
        b_id = std::this_thread::get_id();
        b_tid.store(this_tid());
        auto dm = corobtree::DiskManager::open(dir.file(use_mutex ? "b-mutex.db" : "b-event.db"),
                                               cfg.options());
        Task<void> wait = use_mutex ? wait_mutex(mutex, w) : wait_event(event, w);
        if (uring) {
          sync_wait(corobtree::when_all(disk_then(*dm, std::move(wait), disk_ok),
                                        read_pipe(pipe_fds[0], pipe_got)));
        } else {
          sync_wait(disk_then(*dm, std::move(wait), disk_ok));
        }
      });
      while (!w.waiting.load() || b_tid.load() == 0) std::this_thread::yield();
      if (uring) {
        wait_until_blocked_in(b_tid.load(), {SYS_io_uring_enter});
      } else {
        wait_until_blocked_in(b_tid.load(), {SYS_poll, SYS_ppoll});
      }
      BOOST_TEST(!w.resumed.load());
      if (use_mutex) {
        mutex.unlock();  // hands the mutex to B's waiter through B's inbox
      } else {
        event.set();
      }
      if (uring) {
        // B must wake for the post while its pipe read is still in flight.
        while (!w.resumed.load()) std::this_thread::yield();
        const char c = 'x';
        BOOST_REQUIRE(::write(pipe_fds[1], &c, 1) == 1);
      }
      b.join();
      BOOST_TEST(w.resumed.load());
      BOOST_TEST((w.resumed_on == b_id));
      BOOST_TEST(disk_ok);
      if (uring) BOOST_TEST(pipe_got == 1);
      BOOST_TEST(!mutex.is_locked());
    }
  }
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

}  // namespace

BOOST_DATA_TEST_CASE(release_wakes_a_thread_asleep_in_its_loop,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  release_wakes_sleeper(cfg);
}

namespace {

// Shared state of the stress: guarded by the primitives, checked at the end.
struct Stress {
  AsyncMutex mutex;
  std::uint64_t mutex_count = 0;  // only under `mutex`
  AsyncSharedMutex latch;
  std::uint64_t a = 0, b = 0;  // writers keep a == b under `latch`
  std::atomic<std::uint64_t> torn_reads{0};
  std::atomic<std::uint64_t> wrong_thread{0};
  std::atomic<std::uint64_t> reads{0};
};

void check_thread(Stress& s, std::thread::id home) {
  if (std::this_thread::get_id() != home) s.wrong_thread.fetch_add(1);
}

Task<void> mutex_worker(Stress& s, int rounds) {
  const auto home = std::this_thread::get_id();
  for (int i = 0; i < rounds; ++i) {
    auto g = co_await s.mutex.scoped_lock();
    check_thread(s, home);
    const std::uint64_t v = s.mutex_count;
    if (i % 3 == 0) co_await corobtree::yield();  // hold it across a suspension
    s.mutex_count = v + 1;
  }
}

Task<void> latch_worker(Stress& s, int rounds, bool writer) {
  const auto home = std::this_thread::get_id();
  for (int i = 0; i < rounds; ++i) {
    if (writer && i % 2 == 0) {
      auto g = co_await s.latch.scoped_lock();
      check_thread(s, home);
      ++s.a;
      co_await corobtree::yield();
      ++s.b;
    } else {
      auto g = co_await s.latch.scoped_lock_shared();
      check_thread(s, home);
      if (s.a != s.b) s.torn_reads.fetch_add(1);
      s.reads.fetch_add(1);
      if (i % 4 == 0) co_await corobtree::yield();
      if (s.a != s.b) s.torn_reads.fetch_add(1);
    }
  }
}

// A ring of events: task k of thread t waits for events[t][k] and then sets
// the event of the next thread, so every set wakes another thread's waiter.
Task<void> event_relay(std::vector<std::unique_ptr<Event>>& mine,
                       std::vector<std::unique_ptr<Event>>& next, std::size_t k, Stress& s,
                       std::atomic<std::uint64_t>& passed) {
  const auto home = std::this_thread::get_id();
  co_await *mine[k];
  check_thread(s, home);
  passed.fetch_add(1);
  next[k]->set();
}

// 4 and 8 threads (oversubscribed on 2 cores), each with several tasks:
// mutex increments, shared-latch readers and writers, and an event relay
// around all threads. Every count must come out exact, and every coroutine
// must always resume on its own thread.
void stress(int threads) {
  (void)Scheduler::current();
  const std::uint64_t seed = corobtree::test::test_seed("oversubscribed_hand_offs");
  std::mt19937_64 rng(seed);
  const int rounds = corobtree::test::scaled(3000, 200);
  const int tasks = 4;
  const std::size_t relay = 32;
  Stress s;
  const auto n = static_cast<std::size_t>(threads);
  std::vector<std::vector<std::unique_ptr<Event>>> events(n);
  for (auto& v : events) {
    for (std::size_t k = 0; k < relay; ++k) v.push_back(std::make_unique<Event>());
  }
  std::atomic<std::uint64_t> passed{0};
  std::vector<int> writer_task(n);
  for (auto& w : writer_task) w = static_cast<int>(rng() % tasks);
  std::vector<std::thread> pool;
  std::atomic<int> failures{0};
  for (std::size_t t = 0; t < n; ++t) {
    pool.emplace_back([&, t] {
      try {
        std::vector<Task<void>> work;
        for (int i = 0; i < tasks; ++i) {
          work.push_back(mutex_worker(s, rounds));
          work.push_back(latch_worker(s, rounds, i == writer_task[t]));
        }
        for (std::size_t k = 0; k < relay; ++k) {
          work.push_back(event_relay(events[t], events[(t + 1) % n], k, s, passed));
        }
        if (t == 0) {
          for (std::size_t k = 0; k < relay; ++k) events[0][k]->set();  // start the relay
        }
        sync_wait(corobtree::when_all(std::move(work)));
      } catch (const std::exception& e) {
        BOOST_TEST_MESSAGE("thread " << t << ": " << e.what());
        failures.fetch_add(1);
      }
    });
  }
  for (std::thread& th : pool) th.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(s.mutex_count == std::uint64_t(n) * tasks * rounds);
  BOOST_TEST(s.a == s.b);
  BOOST_TEST(s.a == std::uint64_t(n) * ((rounds + 1) / 2));
  BOOST_TEST(s.torn_reads.load() == 0u);
  BOOST_TEST(s.wrong_thread.load() == 0u);
  BOOST_TEST(passed.load() == n * relay);
  BOOST_TEST(!s.mutex.is_locked());
  BOOST_TEST(!s.latch.exclusively_held());
  BOOST_TEST(s.latch.shared_holders() == 0u);
}

}  // namespace

BOOST_DATA_TEST_CASE(oversubscribed_hand_offs_keep_counts_exact, bdata::make({4, 8}), threads) {
  stress(threads);
}

namespace {

// The worker's thread id, or a default id if it did not run on a worker.
Task<std::thread::id> hop_and_report(Runtime& rt) {
  co_await rt.schedule();
  co_return rt.on_worker() ? std::this_thread::get_id() : std::thread::id{};
}

Task<int> hop_and_throw(Runtime& rt) {
  co_await rt.schedule();
  throw Error(ErrorCode::kCorruption, "thrown on a worker");
}

Task<void> count_and_signal(std::atomic<int>& done, int total, Event& all_done,
                            std::atomic<int>& off_worker, Runtime& rt) {
  if (!rt.on_worker()) off_worker.fetch_add(1);
  co_await corobtree::yield();
  if (done.fetch_add(1) + 1 == total) all_done.set();
}

Task<void> wait_on(Event& e) { co_await e; }

// Destroyed with its (stranded) frame: proves ~Runtime unwound the task.
struct SetOnDestroy {
  std::atomic<bool>& flag;
  ~SetOnDestroy() { flag.store(true); }
};

Task<void> stranded(Event& never, std::atomic<bool>& unwound, std::atomic<bool>& started) {
  SetOnDestroy guard{unwound};
  started.store(true);
  co_await never;
}

Task<void> nested_sync_wait(ErrorCode& code) {
  try {
    sync_wait(corobtree::yield());
  } catch (const Error& e) {
    code = e.code();
  }
  co_return;
}

Task<void> nested_on_worker(Runtime& rt, ErrorCode& code) {
  co_await rt.schedule();
  try {
    sync_wait(corobtree::yield());
  } catch (const Error& e) {
    code = e.code();
  }
}

Task<bool> disk_on_worker(Runtime& rt, std::string path, corobtree::DiskOptions options) {
  co_await rt.schedule();
  // Opened on the worker: its file uses the worker's own ring (or pread).
  auto dm = corobtree::DiskManager::open(path, options);
  const bool ok = co_await disk_round_trip(*dm, 0xa5);
  co_return ok;
}

}  // namespace

BOOST_AUTO_TEST_CASE(runtime_schedule_moves_the_task_to_a_worker_and_sync_wait_returns_home) {
  Runtime rt(3);
  BOOST_TEST(rt.size() == 3u);
  BOOST_TEST(!rt.on_worker());
  const std::thread::id worker = sync_wait(hop_and_report(rt));
  BOOST_TEST((worker != std::this_thread::get_id()));
  BOOST_TEST((worker != std::thread::id{}));
  BOOST_CHECK_EXCEPTION(sync_wait(hop_and_throw(rt)), Error,
                        [](const Error& e) { return e.code() == ErrorCode::kCorruption; });
}

BOOST_AUTO_TEST_CASE(runtime_spawn_runs_every_task_on_a_worker) {
  Runtime rt(2);
  const int total = corobtree::test::scaled(2000, 100);
  std::atomic<int> done{0};
  std::atomic<int> off_worker{0};
  Event all_done;
  for (int i = 0; i < total; ++i) rt.spawn(count_and_signal(done, total, all_done, off_worker, rt));
  sync_wait(wait_on(all_done));  // this thread sleeps until a worker sets it
  BOOST_TEST(done.load() == total);
  BOOST_TEST(off_worker.load() == 0);
  BOOST_CHECK_EXCEPTION(rt.spawn(Task<void>{}), Error,
                        [](const Error& e) { return e.code() == ErrorCode::kInvalidArgument; });
}

BOOST_DATA_TEST_CASE(runtime_workers_do_disk_io_on_their_own_backend,
                     bdata::make(corobtree::test::all_backends()), cfg) {
  corobtree::test::TempDir dir;
  Runtime rt(2);
  std::vector<Task<bool>> work;
  for (int i = 0; i < 4; ++i) {
    work.push_back(disk_on_worker(rt, dir.file("w" + std::to_string(i) + ".db"), cfg.options()));
  }
  const std::vector<bool> ok = sync_wait(corobtree::when_all(std::move(work)));
  for (const bool b : ok) BOOST_TEST(b);
}

BOOST_AUTO_TEST_CASE(runtime_shutdown_unwinds_stranded_tasks_without_hanging) {
  Event never;
  std::atomic<bool> unwound{false};
  std::atomic<bool> started{false};
  {
    Runtime rt(2);
    rt.spawn(stranded(never, unwound, started));
    while (!started.load()) std::this_thread::yield();
  }  // the workers stop (nothing ready, no I/O) and the stranded frame is destroyed
  BOOST_TEST(unwound.load());
  never.set();  // no waiter is left to resume
}

BOOST_AUTO_TEST_CASE(sync_wait_inside_a_coroutine_or_on_a_worker_is_refused) {
  ErrorCode code = ErrorCode::kIoError;
  sync_wait(nested_sync_wait(code));
  BOOST_TEST((code == ErrorCode::kInvalidArgument));
  Runtime rt(1);
  code = ErrorCode::kIoError;
  sync_wait(nested_on_worker(rt, code));
  BOOST_TEST((code == ErrorCode::kInvalidArgument));
  // The refusals left both loops usable.
  BOOST_TEST((sync_wait(hop_and_report(rt)) != std::this_thread::get_id()));
}

namespace {

// A coroutine that starts at once and keeps its frame after finishing, so the
// test can destroy it on any thread (a waiter stranded by its thread's exit).
struct Manual {
  struct promise_type {
    Manual get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

Manual lock_mutex(AsyncMutex& m, bool& got) {
  co_await m.lock();
  got = true;
  m.unlock();
}

Manual lock_shared(AsyncSharedMutex& m, bool& got) {
  co_await m.lock_shared();
  got = true;
  m.unlock_shared();
}

Manual await_event(Event& e, bool& got) {
  co_await e;
  got = true;
}

}  // namespace

// Waiters whose thread has exited: releasing skips them (the mutex and the
// latch pass on, nothing is resumed on a wrong thread, nothing crashes), and
// posting to the dead thread's inbox reports failure.
BOOST_AUTO_TEST_CASE(releasing_to_a_thread_that_exited_skips_its_waiters) {
  (void)Scheduler::current();
  AsyncMutex mutex;
  AsyncSharedMutex latch;
  Event event;
  BOOST_REQUIRE(mutex.try_lock());
  BOOST_REQUIRE(latch.try_lock());
  bool got_mutex = false, got_shared = false, got_event = false;
  Manual a{}, b{}, c{};
  corobtree::detail::Inbox* dead_home = nullptr;
  std::thread t([&] {
    dead_home = corobtree::detail::this_thread_home();
    a = lock_mutex(mutex, got_mutex);
    b = lock_shared(latch, got_shared);
    c = await_event(event, got_event);
  });
  t.join();  // its Scheduler is gone; the three coroutines wait, stranded
  BOOST_TEST(!corobtree::detail::post_home(dead_home, std::noop_coroutine()));
  mutex.unlock();
  latch.unlock();
  event.set();
  BOOST_TEST(!got_mutex);
  BOOST_TEST(!got_shared);
  BOOST_TEST(!got_event);
  BOOST_TEST(!mutex.is_locked());
  BOOST_TEST(!latch.exclusively_held());
  BOOST_TEST(latch.shared_holders() == 0u);
  BOOST_TEST(mutex.try_lock());
  mutex.unlock();
  a.handle.destroy();
  b.handle.destroy();
  c.handle.destroy();
}
