// ExternalLoop: lets an outside event loop (Asio, libuv, a hand-written
// epoll loop) drive the calling thread's corobtree scheduler, instead of
// sync_wait or a Runtime worker. corobtree/asio.h builds on it.
//
//   corobtree::ExternalLoop loop;               // this thread is now driven from outside
//   for (;;) {
//     loop.run();                               // never blocks
//     if (!loop.prepare_wait()) continue;       // more is ready: run again first
//     wait_until_readable(loop.fd());           // poll(2), epoll, asio::posix::stream_descriptor
//   }
//
// What the thread's scheduler does while driven: run() resumes the coroutines
// that are ready (one batch: those posted meanwhile wait for the next call),
// reaps the completions of the thread's io_uring ring without waiting, moves
// the posts of other threads (e.g. a database's engine thread answering a
// call) from the inbox to the ready queue, and hands the I/O queued by the
// batch to the kernel. fd() is an eventfd that becomes readable when the
// thread has work, exactly in these cases:
//  * another thread posts to it (after a prepare_wait() that returned true);
//  * a coroutine of this thread is made ready on this thread outside run()
//    and prepare_wait() (by code the outside loop runs between them: a task
//    an Asio initiating function starts inline, a handler that sets an Event
//    or releases an AsyncMutex), after a prepare_wait() that returned true;
//    a post inside run() writes nothing (prepare_wait() comes next and sees
//    it);
//  * its ring posts a completion, at any time (the eventfd is registered
//    with every ring of the thread, io_uring_register_eventfd).
// So the outside loop sleeps in its own wait and no extra thread is needed.
//
// The sleep handshake: a post writes the eventfd only when the owner
// declared itself asleep, so the outside loop must call prepare_wait() right
// before it waits. prepare_wait() submits the queued I/O and declares the
// wait; it returns false, declaring nothing, when work is already there (call
// run() instead of waiting). A post made after it returned true makes fd()
// readable; one made before is seen by it. Nothing is lost, and fd() may also
// be readable for nothing (run() then finds nothing to do).
//
// A wait that only a task of this thread can end (Scheduler::note_waiting
// with a break_wait: a buffer pool whose frames this thread's tasks all pin)
// is broken by prepare_wait() when the thread is otherwise idle, as sync_wait
// breaks it: its waiters resume with an error.
//
// While an ExternalLoop lives, corobtree::sync_wait on this thread throws
// Error(kInvalidArgument), as it does inside a coroutine: it would nest the
// thread's loop. Coroutines still suspended when it is destroyed stay
// suspended; the thread's next driver (sync_wait, another ExternalLoop) runs
// them when they become ready.
//
// Thread-safety: an ExternalLoop belongs to the thread that constructed it;
// every member, the destructor included, must be called on that thread (a
// Home from home() may be awaited anywhere), and none but home() from inside
// a coroutine it runs (run() does not nest). One per thread.
//
//   #include <corobtree/external_loop.h>
#pragma once

#include <coroutine>
#include <cstddef>

#include <corobtree/export.h>

namespace corobtree {

class Scheduler;
namespace detail {
class Inbox;
}

class COROBTREE_EXPORT ExternalLoop {
 public:
  // Takes over the calling thread's scheduler. Throws Error(kInvalidArgument)
  // when the thread is already driven (inside sync_wait or a coroutine, on a
  // Runtime worker, or by another ExternalLoop), and Error(kIoError) when no
  // eventfd can be made or registered with the thread's ring.
  ExternalLoop();
  // Gives the thread back: unregisters the eventfd from its rings.
  ~ExternalLoop();
  ExternalLoop(const ExternalLoop&) = delete;
  ExternalLoop& operator=(const ExternalLoop&) = delete;

  // Readable when this thread has work (see the preamble). Owned by the
  // thread's scheduler: do not close or read it; watch it (a duplicate,
  // dup(2), may be handed to a loop that closes it).
  int fd() const noexcept { return fd_; }
  // A duplicate of fd() (dup(2), close-on-exec), owned by the caller: for a
  // loop that closes the descriptors it watches. Throws Error(kIoError).
  int duplicate_fd() const;

  // Never blocks: ends a declared wait, reaps ring completions, drains the
  // inbox, resumes the coroutines ready at that point and submits the I/O
  // they queued. Returns how many coroutines it resumed. An exception thrown
  // by the scheduler (an io_uring failure) propagates.
  std::size_t run();

  // Submits queued I/O and, when nothing is ready to run (no ready coroutine,
  // nothing in the inbox, no completion to reap), declares that the caller is
  // about to wait for fd() and returns true. Returns false when there is work
  // now: call run() again rather than waiting.
  bool prepare_wait();

  // Blocks in poll(2) until fd() is readable: for a caller with nothing else
  // to wait for. REQUIRES: prepare_wait() returned true since the last run().
  void wait();

  // Nothing ready, nothing in the inbox and no I/O in flight on the thread.
  bool idle() const noexcept;

  // co_await loop.home(): continues the awaiting coroutine on the loop's
  // thread (at once when already there), for a task that may have moved to
  // another thread (co_await Runtime::schedule()). A small value: may be
  // copied to and awaited on any thread while the loop's thread lives.
  class COROBTREE_EXPORT Home {
   public:
    bool await_ready() const noexcept;
    void await_suspend(std::coroutine_handle<> h) const noexcept;
    void await_resume() const noexcept {}

   private:
    friend class ExternalLoop;
    explicit Home(detail::Inbox* inbox) noexcept : inbox_(inbox) {}
    detail::Inbox* inbox_;
  };
  Home home() const noexcept { return Home(home_); }

 private:
  Scheduler* scheduler_;
  detail::Inbox* home_ = nullptr;
  int fd_ = -1;
  bool running_ = false;  // inside run(): debug check against nesting
};

}  // namespace corobtree
