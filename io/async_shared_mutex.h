// AsyncSharedMutex: a reader/writer latch a coroutine can hold across co_await.
//
// Many shared holders or one exclusive holder. Waiters are served in FIFO
// order; once a writer waits, newly arriving readers queue behind it, so a
// stream of readers cannot starve a writer. Releasing hands the latch to the
// next waiter (a writer, or every consecutive reader at the head of the queue)
// and posts them to the thread's Scheduler.
//
// Thread-safety: loop-affine. All users must run on the same thread.
#pragma once

#include <coroutine>
#include <cstddef>
#include <utility>

#include "io/scheduler.h"
#include "io/waiter_list.h"

namespace corobtree {

class AsyncSharedMutex {
 public:
  AsyncSharedMutex() = default;
  AsyncSharedMutex(const AsyncSharedMutex&) = delete;
  AsyncSharedMutex& operator=(const AsyncSharedMutex&) = delete;

  enum class Mode { kShared = 0, kExclusive = 1 };

  class [[nodiscard]] Guard {
   public:
    Guard() noexcept = default;
    Guard(AsyncSharedMutex* m, Mode mode) noexcept : mutex_(m), mode_(mode) {}
    Guard(Guard&& o) noexcept : mutex_(std::exchange(o.mutex_, nullptr)), mode_(o.mode_) {}
    Guard& operator=(Guard&& o) noexcept {
      if (this != &o) {
        unlock();
        mutex_ = std::exchange(o.mutex_, nullptr);
        mode_ = o.mode_;
      }
      return *this;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { unlock(); }
    void unlock() noexcept {
      if (!mutex_) return;
      AsyncSharedMutex* m = std::exchange(mutex_, nullptr);
      if (mode_ == Mode::kExclusive) {
        m->unlock();
      } else {
        m->unlock_shared();
      }
    }
    bool owns_lock() const noexcept { return mutex_ != nullptr; }
    Mode mode() const noexcept { return mode_; }

   private:
    AsyncSharedMutex* mutex_ = nullptr;
    Mode mode_ = Mode::kShared;
  };

  // co_await lock()/lock_shared(): acquires; the caller must unlock()/unlock_shared().
  class Awaiter {
   public:
    Awaiter(AsyncSharedMutex& m, Mode mode) noexcept : mutex_(m), mode_(mode) {}
    bool await_ready() noexcept {
      return mode_ == Mode::kExclusive ? mutex_.try_lock() : mutex_.try_lock_shared();
    }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      node_.handle = h;
      node_.kind = static_cast<int>(mode_);
      mutex_.waiters_.push_back(&node_);
    }
    void await_resume() const noexcept {}

   protected:
    AsyncSharedMutex& mutex_;
    Mode mode_;
    detail::WaiterNode node_;
  };

  // co_await scoped_lock()/scoped_lock_shared(): acquires and returns a Guard.
  class ScopedAwaiter : public Awaiter {
   public:
    using Awaiter::Awaiter;
    Guard await_resume() const noexcept { return Guard(&mutex_, mode_); }
  };

  Awaiter lock() noexcept { return Awaiter(*this, Mode::kExclusive); }
  Awaiter lock_shared() noexcept { return Awaiter(*this, Mode::kShared); }
  ScopedAwaiter scoped_lock() noexcept { return ScopedAwaiter(*this, Mode::kExclusive); }
  ScopedAwaiter scoped_lock_shared() noexcept { return ScopedAwaiter(*this, Mode::kShared); }
  ScopedAwaiter scoped(Mode mode) noexcept { return ScopedAwaiter(*this, mode); }

  bool try_lock() noexcept {
    if (writer_ || readers_ != 0 || !waiters_.empty()) return false;
    writer_ = true;
    return true;
  }
  bool try_lock_shared() noexcept {
    if (writer_ || !waiters_.empty()) return false;
    ++readers_;
    return true;
  }
  // REQUIRES: exclusive holder.
  void unlock() noexcept {
    writer_ = false;
    wake();
  }
  // REQUIRES: shared holder.
  void unlock_shared() noexcept {
    if (--readers_ == 0) wake();
  }

  std::size_t shared_holders() const noexcept { return readers_; }
  bool exclusively_held() const noexcept { return writer_; }

 private:
  void wake() noexcept {
    while (detail::WaiterNode* n = waiters_.front()) {
      if (n->kind == static_cast<int>(Mode::kExclusive)) {
        if (writer_ || readers_ != 0) return;
        writer_ = true;
        waiters_.pop_front();
        Scheduler::current().post(n->handle);
        return;
      }
      if (writer_) return;
      ++readers_;
      waiters_.pop_front();
      Scheduler::current().post(n->handle);
    }
  }

  bool writer_ = false;
  std::size_t readers_ = 0;
  detail::WaiterList waiters_;
};

}  // namespace corobtree
