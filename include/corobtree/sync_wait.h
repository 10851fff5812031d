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
// Threads: the task may move to other threads on the way (co_await
// Runtime::schedule()); when it finishes elsewhere, its completion is posted
// back to the calling thread, which sleeps meanwhile. Called from inside a
// coroutine running on this thread (or on a Runtime worker), where it would
// nest the thread's loop, it throws Error(kInvalidArgument) instead.
// While other threads use corobtree, a task waiting on something that only
// another thread could release is not a deadlock: the thread sleeps until a
// post arrives (kDeadlock is reported only while this is the process's only
// thread that uses corobtree).
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
// Checks that this thread may block in sync_wait (else throws
// Error(kInvalidArgument)) and returns its root: the continuation to give the
// awaited task.
COROBTREE_EXPORT std::coroutine_handle<> begin_sync_wait();
// Starts `h` and drives this thread's scheduler until it is done. Throws
// Error(kDeadlock) when nothing could ever finish it.
COROBTREE_EXPORT void run_until_done(std::coroutine_handle<> h);
}  // namespace detail

template <typename T>
T sync_wait(Task<T> task) {
  auto h = task.handle_;
  if (!h) throw Error(ErrorCode::kInvalidArgument, "sync_wait on an empty Task");
  // When the task finishes it transfers to the thread's root, which hops back
  // to this thread if needed and tells run_until_done.
  h.promise().set_continuation(detail::begin_sync_wait());
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
