// sync_wait: runs a Task to completion on the calling thread and returns its
// result (or rethrows its exception). While the task is suspended, the calling
// thread's runtime resumes ready coroutines and sleeps in its io_uring ring
// until I/O completes; before returning it hands any I/O still queued (e.g. a
// background write-back) to the kernel. This is how blocking code
// (BlockingDatabase, tests, main()) enters the async world. An empty Task
// throws Error(kInvalidArgument); a task that can never finish (nothing
// ready, no I/O in flight) throws Error(kDeadlock).
//
//   std::optional<std::string> v = corobtree::sync_wait(db->get("key"));
//
// REQUIRES: not called from inside a coroutine running on this thread (that
// would nest the thread's loop).
#pragma once

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

#include <corobtree/error.h>
#include <corobtree/export.h>
#include <corobtree/task.h>

namespace corobtree {

namespace detail {
// Starts `h` and drives this thread's scheduler until it is done. Throws
// Error(kDeadlock) when nothing could ever finish it.
COROBTREE_EXPORT void run_until_done(std::coroutine_handle<> h);
}  // namespace detail

template <typename T>
T sync_wait(Task<T> task) {
  auto h = task.handle_;
  if (!h) throw Error(ErrorCode::kInvalidArgument, "sync_wait on an empty Task");
  // No continuation: when the task finishes it transfers to noop and control
  // returns to run_until_done.
  detail::run_until_done(h);
  return h.promise().take_result();
}

namespace detail {

template <typename A>
concept Awaiter = requires(A a) {
  { a.await_ready() } -> std::convertible_to<bool>;
  a.await_resume();
};

template <Awaiter A>
auto await_in_task(A awaiter) -> Task<decltype(awaiter.await_resume())> {
  using R = decltype(awaiter.await_resume());
  if constexpr (std::is_void_v<R>) {
    co_await std::move(awaiter);
  } else {
    R result = co_await std::move(awaiter);
    co_return result;
  }
}

}  // namespace detail

// sync_wait over a plain awaiter.
template <detail::Awaiter A>
auto sync_wait(A awaiter) {
  return sync_wait(detail::await_in_task(std::move(awaiter)));
}

}  // namespace corobtree
