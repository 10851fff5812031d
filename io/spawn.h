// spawn: start a Task<void> now and let it run to completion on its own
// (fire and forget). The coroutine frame frees itself when the task finishes.
//
// REQUIRES: the task handles its own errors; an exception escaping a spawned
// task calls std::terminate (there is nobody to deliver it to).
// Thread-safety: like Task, single-threaded.
#pragma once

#include <coroutine>
#include <exception>
#include <utility>

#include <corobtree/task.h>

namespace corobtree {

namespace detail {

struct DetachedTask {
  struct promise_type {
    DetachedTask get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

inline DetachedTask run_detached(Task<void> task) { co_await std::move(task); }

}  // namespace detail

inline void spawn(Task<void> task) { detail::run_detached(std::move(task)); }

}  // namespace corobtree
