// when_all: start several Tasks at once and resume the caller when all of
// them have finished.
//
//   auto [a, b] = co_await when_all(read_a(), read_b());   // variadic -> tuple
//   std::vector<int> v = co_await when_all(std::move(tasks));  // vector -> vector
//
// All children are started before the caller suspends, so their I/O is in
// flight together. Results keep the children's order. If any child throws, the
// others still run to completion and the first exception (in child order) is
// rethrown at the co_await. Task<void> children yield std::monostate in the
// tuple form; the vector form over Task<void> returns void.
//
// Thread-safety: like Task. Children that move to other threads (co_await
// Runtime::schedule()) may finish concurrently: the count is atomic, and the
// caller continues on the thread of the child that finished last.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <corobtree/task.h>

namespace corobtree {

namespace detail {

// Counts finished children. Starts at n + 1 so that children finishing while
// they are being started cannot resume the parent before it has suspended.
class WhenAllLatch {
 public:
  explicit WhenAllLatch(std::size_t n) noexcept : remaining_(n + 1) {}
  // Called by a child when it finishes; returns the parent to resume, if any.
  std::coroutine_handle<> arrive() noexcept {
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) return parent_;
    return std::noop_coroutine();
  }
  // Called by the parent after starting all children; true if it must suspend.
  bool try_await(std::coroutine_handle<> parent) noexcept {
    parent_ = parent;
    return remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1;
  }

 private:
  std::atomic<std::size_t> remaining_;
  std::coroutine_handle<> parent_ = std::noop_coroutine();
};

// An eagerly resumable wrapper coroutine: runs one child, stores its outcome
// and reports to the latch from its final awaiter.
template <typename T>
struct ChildOutcome {
  using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  std::optional<Stored> value;
  std::exception_ptr error;
};

class WhenAllChild {
 public:
  struct promise_type {
    WhenAllLatch* latch = nullptr;
    WhenAllChild get_return_object() noexcept {
      return WhenAllChild{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct Final {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().latch->arrive();
      }
      void await_resume() const noexcept {}
    };
    Final final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // run_child catches everything
  };

  explicit WhenAllChild(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  WhenAllChild(WhenAllChild&& o) noexcept : handle_(std::exchange(o.handle_, {})) {}
  WhenAllChild(const WhenAllChild&) = delete;
  WhenAllChild& operator=(const WhenAllChild&) = delete;
  WhenAllChild& operator=(WhenAllChild&&) = delete;
  ~WhenAllChild() {
    if (handle_) handle_.destroy();
  }

  void start(WhenAllLatch& latch) {
    handle_.promise().latch = &latch;
    handle_.resume();
  }

 private:
  std::coroutine_handle<promise_type> handle_;
};

template <typename T>
WhenAllChild run_child(Task<T> task, ChildOutcome<T>& out) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
      out.value.emplace();
    } else {
      T result = co_await std::move(task);
      out.value.emplace(std::move(result));
    }
  } catch (...) {
    out.error = std::current_exception();
  }
}

class WhenAllAwaiter {
 public:
  WhenAllAwaiter(std::vector<WhenAllChild>& children, WhenAllLatch& latch) noexcept
      : children_(children), latch_(latch) {}
  bool await_ready() const noexcept { return children_.empty(); }
  bool await_suspend(std::coroutine_handle<> parent) {
    for (WhenAllChild& c : children_) c.start(latch_);
    return latch_.try_await(parent);
  }
  void await_resume() const noexcept {}

 private:
  std::vector<WhenAllChild>& children_;
  WhenAllLatch& latch_;
};

template <typename T>
typename ChildOutcome<T>::Stored take_outcome(ChildOutcome<T>& o) {
  if (o.error) std::rethrow_exception(o.error);
  return std::move(*o.value);
}

template <typename... Ts, std::size_t... Is>
Task<std::tuple<typename ChildOutcome<Ts>::Stored...>> when_all_impl(std::index_sequence<Is...>,
                                                                     Task<Ts>... tasks) {
  std::tuple<ChildOutcome<Ts>...> outcomes;
  std::vector<WhenAllChild> children;
  children.reserve(sizeof...(Ts));
  (children.push_back(run_child<Ts>(std::move(tasks), std::get<Is>(outcomes))), ...);
  WhenAllLatch latch(sizeof...(Ts));
  WhenAllAwaiter awaiter(children, latch);
  co_await awaiter;
  // Rethrow the first failure in child order.
  std::exception_ptr first;
  ((first = first ? first : std::get<Is>(outcomes).error), ...);
  if (first) std::rethrow_exception(first);
  std::tuple<typename ChildOutcome<Ts>::Stored...> results(
      std::move(*std::get<Is>(outcomes).value)...);
  co_return results;
}

}  // namespace detail

template <typename... Ts>
Task<std::tuple<typename detail::ChildOutcome<Ts>::Stored...>> when_all(Task<Ts>... tasks) {
  return detail::when_all_impl(std::index_sequence_for<Ts...>{}, std::move(tasks)...);
}

template <typename T>
Task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> when_all(
    std::vector<Task<T>> tasks) {
  std::vector<detail::ChildOutcome<T>> outcomes(tasks.size());
  std::vector<detail::WhenAllChild> children;
  children.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    children.push_back(detail::run_child<T>(std::move(tasks[i]), outcomes[i]));
  }
  detail::WhenAllLatch latch(children.size());
  detail::WhenAllAwaiter awaiter(children, latch);
  co_await awaiter;
  for (auto& o : outcomes) {
    if (o.error) std::rethrow_exception(o.error);
  }
  if constexpr (!std::is_void_v<T>) {
    std::vector<T> results;
    results.reserve(outcomes.size());
    for (auto& o : outcomes) results.push_back(std::move(*o.value));
    co_return results;
  }
}

}  // namespace corobtree
