// AsyncMutex: a mutual-exclusion latch that a coroutine can hold across
// co_await. Waiting suspends only the waiting task.
//
//   auto guard = co_await mutex.scoped_lock();   // released when guard dies
//
// Unlock hands ownership straight to the oldest waiter (FIFO, no barging) and
// posts it to its home Scheduler rather than resuming it inline, so long
// hand-off chains never deepen the stack.
//
// Thread-safety: safe from any thread. A waiter resumes on its own thread:
// unlocking on thread A hands the mutex to a waiter of thread B through B's
// inbox (waking B). The state is an atomic flag (try_lock is one CAS) and the
// waiter queue is under the list's SpinLock. A waiter whose thread has exited
// is skipped (ownership goes to the next one).
#pragma once

#include <atomic>
#include <coroutine>
#include <utility>

#include "io/scheduler.h"
#include "io/waiter_list.h"

namespace corobtree {

class AsyncMutex;

class [[nodiscard]] AsyncLockGuard {
 public:
  AsyncLockGuard() noexcept = default;
  explicit AsyncLockGuard(AsyncMutex* m) noexcept : mutex_(m) {}
  AsyncLockGuard(AsyncLockGuard&& o) noexcept : mutex_(std::exchange(o.mutex_, nullptr)) {}
  AsyncLockGuard& operator=(AsyncLockGuard&& o) noexcept;
  AsyncLockGuard(const AsyncLockGuard&) = delete;
  AsyncLockGuard& operator=(const AsyncLockGuard&) = delete;
  ~AsyncLockGuard() { unlock(); }
  void unlock() noexcept;
  bool owns_lock() const noexcept { return mutex_ != nullptr; }

 private:
  AsyncMutex* mutex_ = nullptr;
};

class AsyncMutex {
 public:
  AsyncMutex() = default;
  AsyncMutex(const AsyncMutex&) = delete;
  AsyncMutex& operator=(const AsyncMutex&) = delete;

  class LockAwaiter {
   public:
    explicit LockAwaiter(AsyncMutex& m) noexcept : mutex_(m) {}
    bool await_ready() noexcept { return mutex_.try_lock(); }
    // Returns false (continue at once) when the mutex was freed meanwhile.
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      node_.handle = h;
      node_.home = detail::this_thread_home();
      detail::SpinGuard g(mutex_.waiters_.lock());
      if (mutex_.try_lock()) return false;
      mutex_.waiters_.push_back(&node_);
      return true;
    }
    void await_resume() const noexcept {}

   protected:
    AsyncMutex& mutex_;
    detail::WaiterNode node_;
  };

  class ScopedLockAwaiter : public LockAwaiter {
   public:
    using LockAwaiter::LockAwaiter;
    AsyncLockGuard await_resume() const noexcept { return AsyncLockGuard(&mutex_); }
  };

  // co_await lock(); ... unlock();
  LockAwaiter lock() noexcept { return LockAwaiter(*this); }
  // co_await scoped_lock() -> AsyncLockGuard
  ScopedLockAwaiter scoped_lock() noexcept { return ScopedLockAwaiter(*this); }

  bool try_lock() noexcept {
    bool expected = false;
    return locked_.compare_exchange_strong(expected, true, std::memory_order_acquire,
                                           std::memory_order_relaxed);
  }

  // REQUIRES: the caller holds the lock.
  void unlock() noexcept {
    for (;;) {
      std::coroutine_handle<> h;
      detail::Inbox* home = nullptr;
      {
        detail::SpinGuard g(waiters_.lock());
        detail::WaiterNode* next = waiters_.pop_front();
        if (next == nullptr) {
          locked_.store(false, std::memory_order_release);
          return;
        }
        h = next->handle;  // ownership passes to next: locked_ stays true
        home = next->home;
      }
      if (detail::post_home(home, h)) return;
      // Its thread has exited: the waiter can never run; try the next one.
    }
  }

  bool is_locked() const noexcept { return locked_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> locked_{false};
  detail::WaiterList waiters_;
};

inline void AsyncLockGuard::unlock() noexcept {
  if (mutex_) std::exchange(mutex_, nullptr)->unlock();
}
inline AsyncLockGuard& AsyncLockGuard::operator=(AsyncLockGuard&& o) noexcept {
  if (this != &o) {
    unlock();
    mutex_ = std::exchange(o.mutex_, nullptr);
  }
  return *this;
}

}  // namespace corobtree
