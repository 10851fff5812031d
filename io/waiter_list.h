// WaiterList: an intrusive FIFO of suspended coroutines, used by the latches
// and events in io/. Nodes live in the awaiting coroutine's frame (inside its
// awaiter), so queuing a waiter never allocates.
#pragma once

#include <coroutine>

namespace corobtree::detail {

struct WaiterNode {
  std::coroutine_handle<> handle;
  WaiterNode* next = nullptr;
  int kind = 0;  // free for the owner's use (e.g. shared vs exclusive)
};

class WaiterList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  WaiterNode* front() const noexcept { return head_; }
  void push_back(WaiterNode* n) noexcept {
    n->next = nullptr;
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
    }
    return n;
  }

 private:
  WaiterNode* head_ = nullptr;
  WaiterNode* tail_ = nullptr;
};

}  // namespace corobtree::detail
