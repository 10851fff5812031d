// AsyncMutex: a mutual-exclusion latch that a coroutine can hold across
// co_await. Waiting suspends only the waiting task.
//
//   auto guard = co_await mutex.scoped_lock();   // released when guard dies
//
// Unlock hands ownership straight to the oldest waiter (FIFO, no barging) and
// posts it to the thread's Scheduler rather than resuming it inline, so long
// hand-off chains never deepen the stack.
//
// Thread-safety: loop-affine. All users must run on the same thread.
#pragma once

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
    void await_suspend(std::coroutine_handle<> h) noexcept {
      node_.handle = h;
      mutex_.waiters_.push_back(&node_);
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
    if (locked_) return false;
    locked_ = true;
    return true;
  }

  // REQUIRES: the caller holds the lock.
  void unlock() noexcept {
    if (detail::WaiterNode* next = waiters_.pop_front()) {
      Scheduler::current().post(next->handle);  // ownership passes to next
    } else {
      locked_ = false;
    }
  }

  bool is_locked() const noexcept { return locked_; }

 private:
  bool locked_ = false;
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
