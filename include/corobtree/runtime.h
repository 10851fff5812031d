// Runtime: a small thread pool of corobtree schedulers. Each of its N worker
// threads runs its own scheduler loop (ready queue, io_uring ring or the pread
// fallback, inbox for posts from other threads), as any thread that uses
// corobtree does.
//
//   corobtree::Runtime rt(4);
//   rt.spawn(handle_request(req));            // runs on a worker, fire and forget
//
//   Task<int> work() {
//     co_await rt.schedule();                 // from here on, runs on a worker
//     co_return compute();
//   }
//   int v = corobtree::sync_wait(work());     // from any thread that is not a worker
//
// A coroutine always resumes on the thread that runs it: schedule() moves the
// awaiting coroutine (and the Task chain it belongs to) onto a worker, and
// from then on every wake-up of it (a released mutex, a set Event, a completed
// read) is delivered to that worker, whichever thread caused it. sync_wait on
// a task that moved still returns on the calling thread, which sleeps
// meanwhile.
//
// A Database may be shared by the workers (and any other thread): each runs
// its engine on a thread of its own and serves every thread (see
// corobtree/database.h).
//
// Shutdown: the destructor stops the workers and joins them. A worker stops
// once it has nothing ready, nothing queued in its inbox and no I/O in
// flight; tasks that are then still suspended (e.g. waiting for an Event
// nobody sets) are never resumed: the spawn()ed ones are destroyed (their
// frames unwound on the destroying thread) after the join. From the moment
// the destructor starts, schedule() throws Error(kClosed) in the awaiting
// coroutine (on its own thread) and spawn() throws Error(kClosed).
// REQUIRES: at destruction no spawned task runs or waits on another thread
// (hopped there with another Runtime's schedule()); the destructor is not
// called on one of the runtime's own workers.
//
// Thread-safety: schedule(), spawn(), size() and on_worker() may be called
// from any thread, concurrently.
//
//   #include <corobtree/runtime.h>
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>

#include <corobtree/export.h>
#include <corobtree/task.h>

namespace corobtree {

class COROBTREE_EXPORT Runtime {
 public:
  // Starts `threads` workers (at least 1; 0 is raised to 1). Throws
  // std::system_error when a thread cannot be started.
  explicit Runtime(std::size_t threads);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  std::size_t size() const noexcept;
  // True when the calling thread is one of this runtime's workers.
  bool on_worker() const noexcept;

  class ScheduleAwaiter {
   public:
    explicit ScheduleAwaiter(Runtime& rt) noexcept : rt_(rt) {}
    bool await_ready() const noexcept { return false; }
    // Posts the coroutine to the next worker (round robin). Throws
    // Error(kClosed) (into the awaiting coroutine) when the runtime stops.
    void await_suspend(std::coroutine_handle<> h) { rt_.post_to_worker(h); }
    void await_resume() const noexcept {}

   private:
    Runtime& rt_;
  };

  // co_await rt.schedule(): continues on a worker thread (another worker, if
  // already on one).
  ScheduleAwaiter schedule() noexcept { return ScheduleAwaiter(*this); }

  // Runs `task` on a worker, fire and forget. An exception escaping it calls
  // std::terminate (there is nobody to deliver it to): handle errors inside.
  // Throws Error(kInvalidArgument) for an empty Task, Error(kClosed) once the
  // destructor has started.
  void spawn(Task<void> task);

 private:
  void post_to_worker(std::coroutine_handle<> h);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corobtree
