// yield(): lets the other ready tasks of this thread run before the awaiting
// task continues (as a service handling requests would between two of them).
//
//   co_await corobtree::yield();
//
// Thread-safety: the task resumes on the thread it runs on.
#pragma once

#include <coroutine>

#include <corobtree/export.h>

namespace corobtree {

namespace detail {
// Queues `h` on the calling thread's ready queue; it resumes on a later turn.
COROBTREE_EXPORT void post_to_this_thread(std::coroutine_handle<> h);
}  // namespace detail

class YieldAwaiter {
 public:
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { detail::post_to_this_thread(h); }
  void await_resume() const noexcept {}
};

inline YieldAwaiter yield() noexcept { return {}; }

}  // namespace corobtree
