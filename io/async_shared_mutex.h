// AsyncSharedMutex: a reader/writer latch a coroutine can hold across co_await.
//
// Many shared holders or one exclusive holder. Waiters are served in FIFO
// order; once a writer waits, newly arriving readers queue behind it, so a
// stream of readers cannot starve a writer. Releasing hands the latch to the
// next waiter (a writer, or every consecutive reader at the head of the queue)
// and posts them to their home Schedulers.
//
// Thread-safety: safe from any thread. The state is one atomic word (writer
// bit, "waiters queued" bit, reader count): an uncontended lock or unlock is
// one atomic operation; queuing and waking take the queue's SpinLock. A waiter
// released by another thread resumes on its own thread, through its inbox. A
// waiter whose thread has exited is granted and at once released again, so
// the latch passes on to the next one.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
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
      return !mutex_.enqueue_locked(&node_, mode_);
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
    std::uint32_t expected = 0;
    if (state_.compare_exchange_strong(expected, kWriter, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return true;
    }
    return (expected & kQueued) != 0 && try_slow(Mode::kExclusive);
  }
  bool try_lock_shared() noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while ((s & (kWriter | kQueued)) == 0) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return (s & kWriter) == 0 && try_slow(Mode::kShared);
  }
  // REQUIRES: exclusive holder.
  void unlock() noexcept {
    const std::uint32_t prev = state_.fetch_and(~kWriter, std::memory_order_release);
    if ((prev & kQueued) != 0) wake();
  }
  // REQUIRES: shared holder.
  void unlock_shared() noexcept {
    const std::uint32_t prev = state_.fetch_sub(1, std::memory_order_release);
    if ((prev & kQueued) != 0 && (prev & kReaders) == 1) wake();
  }

  // Snapshots (exact only while nobody else uses the latch).
  std::size_t shared_holders() const noexcept {
    return state_.load(std::memory_order_relaxed) & kReaders;
  }
  bool exclusively_held() const noexcept {
    return (state_.load(std::memory_order_relaxed) & kWriter) != 0;
  }

 private:
  // The state word: the writer bit, the "waiters queued" bit (set only under
  // the queue's lock, while the queue may be non-empty), and the reader count.
  // While kQueued is set the lock-free fast paths fail, so nobody barges past
  // the queue; a release that sees it takes the slow path (wake()).
  static constexpr std::uint32_t kWriter = 1U << 31;
  static constexpr std::uint32_t kQueued = 1U << 30;
  static constexpr std::uint32_t kReaders = kQueued - 1;

  // REQUIRES: the queue's lock held. Takes the latch in `mode` if it is free
  // for that mode, clearing kQueued (the caller knows nobody is queued).
  bool take_if_free_locked(Mode mode) noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      const bool free =
          mode == Mode::kExclusive ? (s & (kWriter | kReaders)) == 0 : (s & kWriter) == 0;
      if (!free) return false;
      const std::uint32_t next =
          mode == Mode::kExclusive ? ((s & ~kQueued) | kWriter) : ((s & ~kQueued) + 1);
      if (state_.compare_exchange_weak(s, next, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
  }
  // REQUIRES: the queue's lock held. Takes the latch if nobody is queued and
  // it is free (kQueued may be set but stale, after an abandoned waiter left).
  bool acquire_locked(Mode mode) noexcept { return waiters_.empty() && take_if_free_locked(mode); }
  bool try_slow(Mode mode) noexcept {
    detail::SpinGuard g(waiters_.lock());
    return acquire_locked(mode);
  }
  // REQUIRES: the queue's lock held. Queues `n`, or takes the latch at once
  // (returns true) when it was released before kQueued went up.
  bool enqueue_locked(detail::WaiterNode* n, Mode mode) noexcept {
    if (acquire_locked(mode)) return true;
    // Announce the queue first, then look again: a holder that released
    // before this saw no kQueued and woke nobody, so take the latch here; one
    // that releases after it sees kQueued and calls wake(), which waits for
    // this lock and so finds n queued.
    state_.fetch_or(kQueued, std::memory_order_acq_rel);
    if (acquire_locked(mode)) return true;
    waiters_.push_back(n);
    return false;
  }
  // Grants the latch to the waiters at the head that can have it now (a
  // writer, or every consecutive reader) and posts them after the lock is
  // released.
  void wake() noexcept {
    detail::WaiterNode* first = nullptr;
    {
      detail::SpinGuard g(waiters_.lock());
      detail::WaiterNode** link = &first;
      std::uint32_t s = state_.load(std::memory_order_relaxed);
      while (detail::WaiterNode* n = waiters_.front()) {
        const bool exclusive = n->kind == static_cast<int>(Mode::kExclusive);
        const bool free = exclusive ? (s & (kWriter | kReaders)) == 0 : (s & kWriter) == 0;
        if (!free) break;
        const std::uint32_t next = exclusive ? (s | kWriter) : (s + 1);
        if (!state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                          std::memory_order_relaxed)) {
          continue;  // a holder released meanwhile: look again
        }
        s = next;
        waiters_.pop_front();
        *link = n;
        link = &n->next;
        if (exclusive) break;
      }
      // Nobody left in the queue: let the fast paths work again.
      if (waiters_.empty()) state_.fetch_and(~kQueued, std::memory_order_release);
    }
    post_woken(first);
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

  std::atomic<std::uint32_t> state_{0};
  detail::WaiterList waiters_;
};

}  // namespace corobtree
