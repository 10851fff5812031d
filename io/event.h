// Event: a one-shot, manually set event. Tasks that co_await it before set()
// suspend; set() posts every waiter to the thread's Scheduler; awaiting after
// set() does not suspend. It cannot be reset.
//
// Thread-safety: loop-affine. All users must run on the same thread.
#pragma once

#include <coroutine>

#include "io/scheduler.h"
#include "io/waiter_list.h"

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
    while (detail::WaiterNode* n = waiters_.pop_front()) Scheduler::current().post(n->handle);
  }

  class Awaiter {
   public:
    explicit Awaiter(Event& e) noexcept : event_(e) {}
    bool await_ready() const noexcept { return event_.set_; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      node_.handle = h;
      event_.waiters_.push_back(&node_);
    }
    void await_resume() const noexcept {}

   private:
    Event& event_;
    detail::WaiterNode node_;
  };

  Awaiter operator co_await() noexcept { return Awaiter(*this); }

 private:
  bool set_ = false;
  detail::WaiterList waiters_;
};

}  // namespace corobtree
