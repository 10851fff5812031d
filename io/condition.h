// Condition and DrainLatch: the two wait-for-a-state primitives of io/.
//
// Condition is a notify-all condition for coroutines: a task re-checks its
// predicate in a loop and waits between checks,
//
//   while (busy_) co_await changed_.wait();     // the waiter
//   busy_ = false; changed_.notify_all();        // whoever changes the state
//
// notify_all() posts every waiter to its home Scheduler (never resumes one
// inline), so the notifier continues first and no stack nests.
// wait_unless(ready) does not suspend at all when `ready` is true (for
// one-shot states such as a set Event).
//
// DrainLatch counts operations in flight and lets a task wait until none is:
//
//   latch.enter(); ... co_await the operation ...; latch.leave();
//   co_await latch.drained();                    // returns once the count is 0
//
// drained() returns when nothing is in flight at the moment it returns (so
// the caller may act on "no operation in flight" before its next co_await),
// re-waiting if operations entered again before it ran.
//
// Waiting never allocates a node: it lives in the awaiter, in the awaiting
// coroutine's frame, and unlinks itself if that frame is destroyed while
// queued (detail::WaiterNode). drained() is a Task (one frame per call).
//
// Thread-safety: Condition's queue is thread-safe: notify_all() from any
// thread posts each waiter to its own thread's inbox. But the predicate
// pattern above is only race-free when the state and the waiting run on one
// thread (or the state is guarded so that no change slips between the check
// and the wait): across threads use Event, AsyncMutex or AsyncSharedMutex.
// DrainLatch is loop-affine: all users run on the same thread.
#pragma once

#include <coroutine>
#include <cstdint>

#include <corobtree/task.h>

#include "io/scheduler.h"
#include "io/waiter_list.h"

namespace corobtree {

class Condition {
 public:
  Condition() = default;
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  // Suspends until the next notify_all(). Callers re-check their predicate.
  [[nodiscard]] detail::ListAwaiter wait() noexcept { return detail::ListAwaiter(waiters_); }
  // Like wait(), but does not suspend when `ready` is true.
  [[nodiscard]] detail::ListAwaiter wait_unless(bool ready) noexcept {
    return detail::ListAwaiter(waiters_, ready);
  }

  // Posts every current waiter to its home Scheduler.
  void notify_all() noexcept {
    detail::WaiterNode* all;
    {
      detail::SpinGuard g(waiters_.lock());
      all = waiters_.pop_all();
    }
    detail::post_chain(all);
  }

  bool has_waiters() const noexcept {
    detail::SpinGuard g(waiters_.lock());
    return !waiters_.empty();
  }

 private:
  detail::WaiterList waiters_;
};

class DrainLatch {
 public:
  DrainLatch() = default;
  DrainLatch(const DrainLatch&) = delete;
  DrainLatch& operator=(const DrainLatch&) = delete;

  void enter() noexcept { ++in_flight_; }
  // REQUIRES: a matching enter().
  void leave() noexcept {
    if (--in_flight_ == 0) zero_.notify_all();
  }
  std::uint64_t in_flight() const noexcept { return in_flight_; }

  // co_await drained(): returns once nothing is in flight (at once if nothing is).
  Task<void> drained() {
    while (in_flight_ > 0) co_await zero_.wait();
  }

 private:
  std::uint64_t in_flight_ = 0;
  Condition zero_;
};

}  // namespace corobtree
