// Event: a one-shot, manually set event. Tasks that co_await it before set()
// suspend; set() posts every waiter to the thread's Scheduler (a Condition's
// notify_all); awaiting after set() does not suspend. It cannot be reset.
//
// Thread-safety: loop-affine. All users must run on the same thread.
#pragma once

#include "io/condition.h"

namespace corobtree {

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool is_set() const noexcept { return set_; }

  void set() noexcept {
    if (set_) return;
    set_ = true;
    set_changed_.notify_all();
  }

  // co_await event: suspends only while the event is not set.
  [[nodiscard]] detail::ListAwaiter operator co_await() noexcept {
    return set_changed_.wait_unless(set_);
  }

 private:
  bool set_ = false;
  Condition set_changed_;
};

}  // namespace corobtree
