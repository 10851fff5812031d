// sync_wait: runs a Task to completion on the calling thread and returns its
// result (or rethrows its exception). While the task is suspended, the thread's
// Scheduler resumes ready coroutines and polls the EventLoops created on this
// thread. This is how blocking code (BlockingDatabase, tests, main()) enters the
// async world.
//
// REQUIRES: not called from inside a coroutine running on this thread's
// scheduler (that would nest the loop).
#pragma once

#include <concepts>
#include <type_traits>
#include <utility>

#include "io/error.h"
#include "io/scheduler.h"
#include "io/task.h"

namespace corobtree {

template <typename T>
T sync_wait(Task<T> task) {
  auto h = task.handle();
  if (!h) throw Error(ErrorCode::kInvalidArgument, "sync_wait on an empty Task");
  Scheduler& scheduler = Scheduler::current();
  // No continuation: when the task finishes it transfers to noop and control
  // returns here.
  h.resume();
  while (!h.done()) scheduler.run_turn();
  scheduler.flush_submissions();
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

// sync_wait over a plain awaiter (e.g. BufferPool::fetch_page's).
template <detail::Awaiter A>
auto sync_wait(A awaiter) {
  return sync_wait(detail::await_in_task(std::move(awaiter)));
}

}  // namespace corobtree
