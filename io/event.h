// Event: a one-shot, manually set event. Tasks that co_await it before set()
// suspend; set() posts every waiter to its home Scheduler; awaiting after
// set() does not suspend. It cannot be reset.
//
// Thread-safety: safe from any thread. set() on thread A resumes a waiter of
// thread B on B (through B's inbox, waking B even in io_uring_enter). The
// flag is atomic (awaiting a set event costs one acquire load); the flag
// change and the waiters it releases are one step under the queue's lock,
// and a waiter re-checks the flag under that lock before it queues, so no
// wake-up is lost.
#pragma once

#include <atomic>
#include <coroutine>

#include "io/waiter_list.h"

namespace corobtree {

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }

  void set() noexcept {
    detail::WaiterNode* all;
    {
      detail::SpinGuard g(waiters_.lock());
      if (set_.load(std::memory_order_relaxed)) return;
      set_.store(true, std::memory_order_release);
      all = waiters_.pop_all();
    }
    detail::post_chain(all);
  }

  class [[nodiscard]] Awaiter {
   public:
    explicit Awaiter(Event& e) noexcept : event_(e) {}
    bool await_ready() const noexcept { return event_.is_set(); }
    // Returns false (continue at once) when the event was set meanwhile.
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      node_.handle = h;
      node_.home = detail::this_thread_home();
      detail::SpinGuard g(event_.waiters_.lock());
      if (event_.set_.load(std::memory_order_relaxed)) return false;
      event_.waiters_.push_back(&node_);
      return true;
    }
    void await_resume() const noexcept {}

   private:
    Event& event_;
    detail::WaiterNode node_;
  };

  // co_await event: suspends only while the event is not set.
  Awaiter operator co_await() noexcept { return Awaiter(*this); }

 private:
  std::atomic<bool> set_{false};
  detail::WaiterList waiters_;
};

}  // namespace corobtree
