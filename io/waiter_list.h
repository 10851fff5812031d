// WaiterList: an intrusive FIFO of suspended coroutines, used by the latches,
// Condition and Event in io/. Nodes live in the awaiting coroutine's frame
// (inside its awaiter), so queuing a waiter never allocates. Whoever pops a
// node posts its handle to the Scheduler; nothing here resumes a coroutine.
//
// Thread-safety: loop-affine; a list and its nodes belong to one thread.
#pragma once

#include <coroutine>

namespace corobtree::detail {

class WaiterList;

// A queued waiter. If the awaiting coroutine is destroyed while still queued
// (e.g. sync_wait gave up on a deadlock), the node unlinks itself, so no
// dangling handle is ever resumed.
struct WaiterNode {
  WaiterNode() = default;
  WaiterNode(const WaiterNode&) = delete;
  WaiterNode& operator=(const WaiterNode&) = delete;
  inline ~WaiterNode();

  std::coroutine_handle<> handle;
  WaiterNode* next = nullptr;
  WaiterList* owner = nullptr;  // the list this node is queued on
  int kind = 0;                 // free for the owner's use (e.g. shared vs exclusive)
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

  bool empty() const noexcept { return head_ == nullptr; }
  WaiterNode* front() const noexcept { return head_; }
  void push_back(WaiterNode* n) noexcept {
    n->next = nullptr;
    n->owner = this;
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
      n->owner = nullptr;
    }
    return n;
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
      n->owner = nullptr;
      return;
    }
  }

 private:
  WaiterNode* head_ = nullptr;
  WaiterNode* tail_ = nullptr;
};

inline WaiterNode::~WaiterNode() {
  if (owner) owner->remove(this);
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
    list_.push_back(&node_);
  }
  void await_resume() const noexcept {}

 private:
  WaiterList& list_;
  bool ready_;
  WaiterNode node_;
};

}  // namespace corobtree::detail
