// Task<T>: the lazy, move-only coroutine type every async corobtree API returns.
//
// A Task does nothing until it is awaited (or handed to sync_wait / when_all).
// Awaiting starts it; its value, or the exception it threw, arrives at the
// co_await. A Task must be awaited at most once.
//
// Awaiting an empty (default-constructed or moved-from) Task throws
// Error(kInvalidArgument).
//
// Stack safety (GCC 12, see docs/contributing.md): symmetric transfer is not a guaranteed
// tail call at -O0/-O1 or under ASan, so a long loop of awaits on children that
// finish synchronously would grow the stack. The awaiter therefore resumes the
// child inline from await_suspend and returns false when the child has already
// finished: the parent continues on the same stack frame without any transfer.
// Only a child that really suspended (on I/O, a latch, ...) resumes its parent
// later, from its final awaiter.
//
// Thread-safety: a Task and the coroutines it starts run on one thread at a
// time (the thread whose scheduler drives them); co_await Runtime::schedule()
// moves the awaiting chain to a worker, and it continues there. A Task object
// itself is not synchronized: await it from one place only.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include <corobtree/error.h>
#include <corobtree/export.h>

namespace corobtree {

template <typename T = void>
class Task;
template <typename T>
T sync_wait(Task<T> task);

namespace detail {

// True once a coroutine may be handed to another thread while it runs (a
// Runtime exists, or Scheduler::post was used across threads). Until then the
// start-inline hand-off below uses plain (relaxed) loads and stores; after,
// an atomic exchange on each side. Set once, never cleared.
extern COROBTREE_EXPORT std::atomic<bool> g_cross_thread_handoffs;

class TaskPromiseBase {
 public:
  // The start-inline hand-off between Task::Awaiter and FinalAwaiter.
  enum : std::uint8_t { kIdle = 0, kStartedInline = 1, kSuspended = 2, kDone = 3 };

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      TaskPromiseBase& p = self.promise();
      std::uint8_t before;
      if (!g_cross_thread_handoffs.load(std::memory_order_relaxed)) {
        before = p.state_.load(std::memory_order_relaxed);
        p.state_.store(kDone, std::memory_order_relaxed);
      } else {
        // The awaiter may be running on another thread right now (the child
        // moved there while it was started inline): decide atomically.
        before = p.state_.exchange(kDone, std::memory_order_acq_rel);
      }
      // Finished while the awaiter is still inside await_suspend: it sees
      // kDone and continues by itself, so transfer nowhere.
      if (before == kStartedInline) return std::noop_coroutine();
      return p.continuation_ ? p.continuation_ : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }

  void set_continuation(std::coroutine_handle<> h) noexcept { continuation_ = h; }

  // Task::Awaiter: starts the child inline (state kStartedInline), then
  // returns whether the awaiting coroutine must suspend: false when the child
  // already finished (FinalAwaiter saw kStartedInline and transferred nowhere).
  bool start_inline(std::coroutine_handle<> child) noexcept {
    state_.store(kStartedInline, std::memory_order_relaxed);
    child.resume();
    if (!g_cross_thread_handoffs.load(std::memory_order_relaxed)) {
      if (state_.load(std::memory_order_relaxed) == kDone) return false;
      state_.store(kSuspended, std::memory_order_relaxed);
      return true;
    }
    return state_.exchange(kSuspended, std::memory_order_acq_rel) != kDone;
  }

 private:
  std::coroutine_handle<> continuation_;
  std::atomic<std::uint8_t> state_{kIdle};
};

template <typename T>
class TaskPromise final : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }
  template <typename U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    result_.template emplace<1>(std::forward<U>(value));
  }
  T take_result() {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
    return std::move(std::get<1>(result_));
  }

 private:
  std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void unhandled_exception() noexcept { error_ = std::current_exception(); }
  void return_void() noexcept {}
  void take_result() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task() noexcept = default;
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { destroy(); }

  bool valid() const noexcept { return static_cast<bool>(handle_); }
  bool done() const noexcept { return !handle_ || handle_.done(); }

  class Awaiter {
   public:
    explicit Awaiter(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
    bool await_ready() const noexcept { return !handle_ || handle_.done(); }
    // REQUIRES: the task has not been started.
    bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
      promise_type& p = handle_.promise();
      p.set_continuation(awaiting);
      // false: finished synchronously, do not suspend. true: suspended; the
      // child resumes the awaiting coroutine from its final awaiter (from
      // here on, *this may be resumed on another thread: touch nothing).
      return p.start_inline(handle_);
    }
    T await_resume() {
      if (!handle_) throw Error(ErrorCode::kInvalidArgument, "co_await on an empty Task");
      return handle_.promise().take_result();
    }

   private:
    std::coroutine_handle<promise_type> handle_;
  };

  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }

 private:
  template <typename U>
  friend U sync_wait(Task<U> task);

  void destroy() noexcept {
    if (handle_) {
      handle_.destroy();
      handle_ = {};
    }
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {
template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>{std::coroutine_handle<TaskPromise<T>>::from_promise(*this)};
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>{std::coroutine_handle<TaskPromise<void>>::from_promise(*this)};
}
}  // namespace detail

}  // namespace corobtree
