// WaiterList: an intrusive FIFO of suspended coroutines, used by the latches,
// Condition and Event in io/. Nodes live in the awaiting coroutine's frame
// (inside its awaiter), so queuing a waiter never allocates. Whoever pops a
// node posts its handle to the node's home (detail::post_home: the ready queue
// when the home is the calling thread, else the home thread's inbox); nothing
// here resumes a coroutine.
//
// Thread-safety: each list has a SpinLock (lock()). push_back, pop_front,
// front and remove REQUIRE the caller to hold it (or the list to be used by
// one thread only); the primitives that own a list keep their own state under
// the same lock, so a state change and the waiters it releases are one atomic
// step. A node's destructor takes the lock itself. A popped node stays valid
// until its handle is posted: read `handle`, `home` (and `next`, for a chain
// of popped nodes) before posting, and touch nothing of it afterwards.
#pragma once

#include <atomic>
#include <coroutine>
#include <mutex>
#include <thread>

#include "io/scheduler.h"

namespace corobtree::detail {

class WaiterList;

// A tiny test-and-test-and-set lock for the primitives' short critical
// sections (a few pointer moves, never a syscall). Uncontended it costs one
// atomic exchange and one release store; contended it spins briefly and then
// yields, so an oversubscribed holder that was preempted gets the CPU back.
class SpinLock {
 public:
  SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() noexcept {
    unsigned spins = 0;
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins >= 64) {
          std::this_thread::yield();
        }
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

using SpinGuard = std::lock_guard<SpinLock>;

// A queued waiter. If the awaiting coroutine is destroyed while still queued
// (e.g. sync_wait gave up on a deadlock), the node unlinks itself, so no
// dangling handle is ever resumed.
struct WaiterNode {
  WaiterNode() = default;
  WaiterNode(const WaiterNode&) = delete;
  WaiterNode& operator=(const WaiterNode&) = delete;
  inline ~WaiterNode();

  std::coroutine_handle<> handle;
  Inbox* home = nullptr;  // the waiting thread's (set by the awaiter): where to post
  WaiterNode* next = nullptr;
  std::atomic<WaiterList*> owner{nullptr};  // the list this node is queued on
  int kind = 0;                             // free for the owner's use (e.g. shared vs exclusive)
};

class WaiterList {
 public:
  WaiterList() = default;
  WaiterList(const WaiterList&) = delete;
  WaiterList& operator=(const WaiterList&) = delete;
  ~WaiterList() {
    while (pop_front() != nullptr) {
    }
  }

  SpinLock& lock() const noexcept { return lock_; }

  bool empty() const noexcept { return head_ == nullptr; }
  WaiterNode* front() const noexcept { return head_; }
  void push_back(WaiterNode* n) noexcept {
    n->next = nullptr;
    n->owner.store(this, std::memory_order_relaxed);
    if (tail_) {
      tail_->next = n;
    } else {
      head_ = n;
    }
    tail_ = n;
  }
  WaiterNode* pop_front() noexcept {
    WaiterNode* n = head_;
    if (n) {
      head_ = n->next;
      if (!head_) tail_ = nullptr;
      n->next = nullptr;
      n->owner.store(nullptr, std::memory_order_relaxed);
    }
    return n;
  }
  // Pops every node and returns them as a chain through `next`.
  WaiterNode* pop_all() noexcept {
    WaiterNode* first = head_;
    for (WaiterNode* n = head_; n; n = n->next) n->owner.store(nullptr, std::memory_order_relaxed);
    head_ = tail_ = nullptr;
    return first;
  }
  // Unlinks n (O(n) walk; only for abandoned waiters).
  void remove(WaiterNode* n) noexcept {
    WaiterNode* prev = nullptr;
    for (WaiterNode* cur = head_; cur; prev = cur, cur = cur->next) {
      if (cur != n) continue;
      if (prev) {
        prev->next = cur->next;
      } else {
        head_ = cur->next;
      }
      if (tail_ == cur) tail_ = prev;
      n->next = nullptr;
      n->owner.store(nullptr, std::memory_order_relaxed);
      return;
    }
  }

 private:
  mutable SpinLock lock_;
  WaiterNode* head_ = nullptr;
  WaiterNode* tail_ = nullptr;
};

inline WaiterNode::~WaiterNode() {
  // Only this node's own thread destroys it, and only while its coroutine is
  // suspended; a releaser may be popping it meanwhile, so look again under
  // the list's lock. (The list outlives the nodes queued on it.)
  if (WaiterList* o = owner.load(std::memory_order_acquire)) {
    SpinGuard g(o->lock());
    if (owner.load(std::memory_order_relaxed) == o) o->remove(this);
  }
}

// Posts every node of a chain popped under the lock (pop_all, or nodes linked
// through `next`), reading each node before posting it. Call it after
// releasing the lock. Posting to a thread that has exited drops the waiter.
inline void post_chain(WaiterNode* n) noexcept {
  while (n) {
    WaiterNode* next = n->next;
    const std::coroutine_handle<> h = n->handle;
    Inbox* home = n->home;
    (void)post_home(home, h);  // n may be gone from here on
    n = next;
  }
}

// Awaits a wake-up through `list` (whoever wakes it pops the node and posts
// its handle): `while (busy) co_await ListAwaiter(list);`. With ready ==
// true it does not suspend at all. Not movable: use it where it is made.
class ListAwaiter {
 public:
  explicit ListAwaiter(WaiterList& list, bool ready = false) noexcept
      : list_(list), ready_(ready) {}
  bool await_ready() const noexcept { return ready_; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    node_.handle = h;
    node_.home = this_thread_home();
    SpinGuard g(list_.lock());
    list_.push_back(&node_);
  }
  void await_resume() const noexcept {}

 private:
  WaiterList& list_;
  bool ready_;
  WaiterNode node_;
};

}  // namespace corobtree::detail
