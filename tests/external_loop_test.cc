// ExternalLoop (corobtree/external_loop.h) without Asio: a plain poll(2) loop
// on its fd drives the thread. A post from another thread and a completion
// on the thread's io_uring ring each make the fd readable (a lost wake-up
// shows as a poll timeout); sync_wait is refused while it drives the thread;
// one per thread.
#define BOOST_TEST_MODULE external_loop
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <poll.h>

#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/external_loop.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"
#include "io/event.h"
#include "io/scheduler.h"
#include "tests/support/backends.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::Event;
using corobtree::ExternalLoop;
using corobtree::Task;

namespace {

// Starts a task on this thread and records when it is done (or its error).
struct Started {
  struct promise_type {
    Started get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

struct Outcome {
  bool done = false;
  std::exception_ptr error;
};

Started start(Task<void> task, Outcome* out) {
  try {
    co_await std::move(task);
  } catch (...) {
    out->error = std::current_exception();
  }
  out->done = true;
}

// 0: timed out; 1: readable.
int wait_readable(int fd, int timeout_ms) {
  pollfd p{};
  p.fd = fd;
  p.events = POLLIN;
  int r;
  while ((r = ::poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
  }
  BOOST_REQUIRE_GE(r, 0);
  return r;
}

// Drives `loop` until `out` is done; every wait must end by the fd becoming
// readable within 10 s. Returns the number of waits.
std::size_t drive(ExternalLoop& loop, const Outcome& out) {
  std::size_t waits = 0;
  for (;;) {
    (void)loop.run();
    if (out.done) return waits;
    if (!loop.prepare_wait()) continue;
    BOOST_REQUIRE_MESSAGE(wait_readable(loop.fd(), 10000) == 1, "lost wake-up: fd never readable");
    ++waits;
  }
}

Task<void> await_event(Event* e) { co_await *e; }

Task<void> set_event_task(Event* e) {
  e->set();
  co_return;
}

Task<void> ping_pong(std::vector<Event>* events, std::atomic<std::size_t>* reached) {
  for (std::size_t i = 0; i < events->size(); ++i) {
    reached->store(i + 1, std::memory_order_release);
    co_await (*events)[i];
  }
}

Task<void> write_then_read(corobtree::DiskManager* dm, std::vector<std::byte>* got) {
  const corobtree::BlockId id = dm->allocate_block();
  corobtree::AlignedBuffer out(dm->page_size());
  std::memset(out.data(), 0x5a, dm->page_size());
  co_await dm->write_block(id, out.span());
  corobtree::AlignedBuffer in(dm->page_size());
  co_await dm->read_block(id, in.span());
  got->assign(in.data(), in.data() + dm->page_size());
}

Task<int> forty_two() { co_return 42; }

}  // namespace

BOOST_AUTO_TEST_CASE(post_from_another_thread_makes_the_fd_readable) {
  ExternalLoop loop;
  Event e;
  Outcome out;
  start(await_event(&e), &out);
  (void)loop.run();
  BOOST_REQUIRE(!out.done);
  BOOST_REQUIRE(loop.prepare_wait());
  BOOST_CHECK_EQUAL(wait_readable(loop.fd(), 0), 0);  // nothing yet
  std::thread setter([&e] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    e.set();
  });
  BOOST_CHECK_EQUAL(wait_readable(loop.fd(), 10000), 1);
  (void)loop.run();
  BOOST_CHECK(out.done);
  BOOST_CHECK(!out.error);
  setter.join();
  BOOST_CHECK(loop.idle());
}

// A post between run() and prepare_wait() is not lost: prepare_wait sees it.
BOOST_AUTO_TEST_CASE(post_before_prepare_wait_is_seen) {
  ExternalLoop loop;
  Event e;
  Outcome out;
  start(await_event(&e), &out);
  (void)loop.run();
  std::thread setter([&e] { e.set(); });
  setter.join();
  BOOST_CHECK(!loop.prepare_wait());
  (void)loop.run();
  BOOST_CHECK(out.done);
}

// A coroutine of this thread made ready outside run() (by a handler of the
// outside loop, on this thread): after prepare_wait() it makes the fd
// readable; before it, prepare_wait() sees it.
BOOST_AUTO_TEST_CASE(local_post_outside_run_makes_the_fd_readable) {
  ExternalLoop loop;
  {
    Event e;
    Outcome out;
    start(await_event(&e), &out);
    (void)loop.run();
    BOOST_REQUIRE(!out.done);
    BOOST_REQUIRE(loop.prepare_wait());
    BOOST_CHECK_EQUAL(wait_readable(loop.fd(), 0), 0);  // nothing yet
    e.set();                                            // on this thread, outside run()
    BOOST_CHECK_EQUAL(wait_readable(loop.fd(), 1000), 1);
    (void)loop.run();
    BOOST_CHECK(out.done);
    BOOST_CHECK_EQUAL(wait_readable(loop.fd(), 0), 0);  // run() cleared it
  }
  {
    Event e;
    Outcome out;
    start(await_event(&e), &out);
    (void)loop.run();
    BOOST_REQUIRE(!out.done);
    e.set();  // before prepare_wait()
    BOOST_CHECK(!loop.prepare_wait());
    (void)loop.run();
    BOOST_CHECK(out.done);
  }
  // The wake-up leaves nothing behind: the next wait is declared and quiet.
  {
    Event e;
    Outcome out;
    Outcome setter;
    start(await_event(&e), &out);
    (void)loop.run();
    BOOST_REQUIRE(loop.prepare_wait());
    start(set_event_task(&e), &setter);  // runs now: outside run(), wakes
    BOOST_CHECK_EQUAL(wait_readable(loop.fd(), 1000), 1);
    (void)loop.run();  // resumes the waiter inside run()
    BOOST_CHECK(out.done);
    BOOST_CHECK(setter.done);
    BOOST_REQUIRE(loop.prepare_wait());
    BOOST_CHECK_EQUAL(wait_readable(loop.fd(), 0), 0);
  }
  BOOST_CHECK(loop.idle());
}

// Many hand-offs, each one waited for in poll(2): a post lost by the sleep
// handshake would end in a timeout.
BOOST_AUTO_TEST_CASE(ping_pong_with_another_thread) {
  constexpr std::size_t kRounds = 2000;
  ExternalLoop loop;
  std::vector<Event> events(kRounds);
  std::atomic<std::size_t> reached{0};
  Outcome out;
  start(ping_pong(&events, &reached), &out);
  std::thread setter([&] {
    for (std::size_t i = 0; i < kRounds; ++i) {
      while (reached.load(std::memory_order_acquire) < i + 1) std::this_thread::yield();
      events[i].set();
    }
  });
  (void)drive(loop, out);
  setter.join();
  BOOST_CHECK(out.done);
  BOOST_CHECK(!out.error);
}

// Disk I/O on the thread's own ring (io_uring) or inline (pread). With
// io_uring every completion makes the fd readable by itself, without a
// declared wait: the eventfd is registered with the ring, whether the ring
// existed before the loop (`ring_first`: made by an I/O under sync_wait) or
// is created while the loop drives the thread. Nothing else could make the
// fd readable here (no other thread posts), so a missing registration times
// out.
namespace {

void disk_io_through_the_fd(const corobtree::test::BackendConfig& backend, bool ring_first) {
  corobtree::test::TempDir dir;
  auto dm = corobtree::DiskManager::open(dir.file("blocks"), backend.options());
  std::vector<std::byte> got;
  if (ring_first) corobtree::sync_wait(write_then_read(dm.get(), &got));
  ExternalLoop loop;
  Outcome out;
  start(write_then_read(dm.get(), &got), &out);
  std::size_t waits = 0;
  for (;;) {
    (void)loop.run();
    if (out.done) break;
    BOOST_REQUIRE_MESSAGE(wait_readable(loop.fd(), 10000) == 1,
                          "a completion left the fd unreadable");
    ++waits;
  }
  if (out.error) std::rethrow_exception(out.error);
  BOOST_REQUIRE_EQUAL(got.size(), dm->page_size());
  for (std::byte b : got) BOOST_REQUIRE(b == std::byte{0x5a});
  if (backend.backend == corobtree::IoBackend::kUring) {
    // O_DIRECT goes to the device: at least one completion is waited for
    // (buffered I/O may complete inside the submitting io_uring_enter).
    if (backend.direct_io) BOOST_CHECK_GE(waits, 1U);
  } else {
    BOOST_CHECK_EQUAL(waits, 0U);  // pread: done inline
  }
  BOOST_CHECK(loop.idle());
}

}  // namespace

BOOST_DATA_TEST_CASE(disk_io_completes_through_the_fd, bdata::make(corobtree::test::all_backends()),
                     backend) {
  disk_io_through_the_fd(backend, false);
}

BOOST_DATA_TEST_CASE(disk_io_on_a_ring_made_before_the_loop,
                     bdata::make(corobtree::test::all_backends()), backend) {
  disk_io_through_the_fd(backend, true);
}

BOOST_AUTO_TEST_CASE(sync_wait_is_refused_while_driven) {
  {
    ExternalLoop loop;
    try {
      (void)corobtree::sync_wait(forty_two());
      BOOST_FAIL("sync_wait did not throw");
    } catch (const Error& e) {
      BOOST_CHECK(e.code() == ErrorCode::kInvalidArgument);
    }
    BOOST_CHECK_THROW(ExternalLoop second, Error);  // one per thread
  }
  BOOST_CHECK_EQUAL(corobtree::sync_wait(forty_two()), 42);  // the thread is free again
}

// A thread driven by sync_wait cannot be taken over from inside a coroutine.
Task<void> try_take_over(bool* refused) {
  try {
    ExternalLoop loop;
  } catch (const Error& e) {
    *refused = e.code() == ErrorCode::kInvalidArgument;
  }
  co_return;
}

BOOST_AUTO_TEST_CASE(refused_inside_sync_wait) {
  bool refused = false;
  corobtree::sync_wait(try_take_over(&refused));
  BOOST_CHECK(refused);
}
