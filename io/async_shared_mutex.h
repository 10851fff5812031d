// AsyncSharedMutex: a reader/writer latch a coroutine can hold across co_await.
//
// Many shared holders or one exclusive holder. Waiters are served in FIFO
// order; once a writer waits, newly arriving readers queue behind it, so a
// stream of readers cannot starve a writer. Releasing hands the latch to the
// next waiter (a writer, or every consecutive reader at the head of the queue)
// and posts them to their home Schedulers.
//
// Thread-safety: safe from any thread. The state and the queue are under the
// queue's SpinLock (one uncontended exchange + store per operation). A waiter
// released by another thread resumes on its own thread, through its inbox. A
// waiter whose thread has exited is granted and at once released again, so
// the latch passes on to the next one.
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
    // Returns false (continue at once) when the latch became free meanwhile.
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      node_.handle = h;
      node_.home = detail::this_thread_home();
      node_.kind = static_cast<int>(mode_);
      detail::SpinGuard g(mutex_.waiters_.lock());
      if (mode_ == Mode::kExclusive ? mutex_.try_lock_locked() : mutex_.try_lock_shared_locked()) {
        return false;
      }
      mutex_.waiters_.push_back(&node_);
      return true;
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
    detail::SpinGuard g(waiters_.lock());
    return try_lock_locked();
  }
  bool try_lock_shared() noexcept {
    detail::SpinGuard g(waiters_.lock());
    return try_lock_shared_locked();
  }
  // REQUIRES: exclusive holder.
  void unlock() noexcept {
    detail::WaiterNode* woken;
    {
      detail::SpinGuard g(waiters_.lock());
      writer_ = false;
      woken = wake_locked();
    }
    post_woken(woken);
  }
  // REQUIRES: shared holder.
  void unlock_shared() noexcept {
    detail::WaiterNode* woken = nullptr;
    {
      detail::SpinGuard g(waiters_.lock());
      if (--readers_ == 0) woken = wake_locked();
    }
    post_woken(woken);
  }

  // Snapshots (exact only while nobody else uses the latch).
  std::size_t shared_holders() const noexcept {
    detail::SpinGuard g(waiters_.lock());
    return readers_;
  }
  bool exclusively_held() const noexcept {
    detail::SpinGuard g(waiters_.lock());
    return writer_;
  }

 private:
  // REQUIRE: the queue's lock held.
  bool try_lock_locked() noexcept {
    if (writer_ || readers_ != 0 || !waiters_.empty()) return false;
    writer_ = true;
    return true;
  }
  bool try_lock_shared_locked() noexcept {
    if (writer_ || !waiters_.empty()) return false;
    ++readers_;
    return true;
  }
  // Grants the latch to the waiters at the head that can have it now and
  // returns them as a chain (through `next`) to post once the lock is released.
  detail::WaiterNode* wake_locked() noexcept {
    detail::WaiterNode* first = nullptr;
    detail::WaiterNode** link = &first;
    while (detail::WaiterNode* n = waiters_.front()) {
      if (n->kind == static_cast<int>(Mode::kExclusive)) {
        if (writer_ || readers_ != 0) break;
        writer_ = true;
        waiters_.pop_front();
        *link = n;
        break;
      }
      if (writer_) break;
      ++readers_;
      waiters_.pop_front();
      *link = n;
      link = &n->next;
    }
    return first;
  }
  // Posts each granted waiter home; one whose thread has exited gives its
  // grant back (which may grant the next waiters).
  void post_woken(detail::WaiterNode* n) noexcept {
    while (n) {
      detail::WaiterNode* next = n->next;
      const std::coroutine_handle<> h = n->handle;
      detail::Inbox* home = n->home;
      const bool exclusive = n->kind == static_cast<int>(Mode::kExclusive);
      if (!detail::post_home(home, h)) {
        if (exclusive) {
          unlock();
        } else {
          unlock_shared();
        }
      }
      n = next;  // n itself may be gone once posted
    }
  }

  bool writer_ = false;
  std::size_t readers_ = 0;
  detail::WaiterList waiters_;
};

}  // namespace corobtree
