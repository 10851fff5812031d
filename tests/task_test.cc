// Task<T>, sync_wait and when_all: laziness, results and errors reaching the
// awaiter, stack safety of synchronous completion, real suspension.
#define BOOST_TEST_MODULE task
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "io/event.h"

using corobtree::Event;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::when_all;

static_assert(!std::is_copy_constructible_v<Task<int>>);
static_assert(std::is_nothrow_move_constructible_v<Task<int>>);

namespace {

Task<int> answer(bool* started) {
  *started = true;
  co_return 42;
}

Task<int> add_one(int x) { co_return x + 1; }

Task<std::string> throws_runtime() {
  throw std::runtime_error("boom");
  co_return std::string();
}

Task<void> throws_typed() {
  throw corobtree::Error(corobtree::ErrorCode::kCorruption, "bad page");
  co_return;
}

Task<std::uint64_t> sum_sync_children(std::uint64_t n) {
  std::uint64_t total = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    int v = co_await add_one(static_cast<int>(i & 1));
    total += static_cast<std::uint64_t>(v);
  }
  co_return total;
}

Task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  int below = co_await nested(depth - 1);
  co_return below + 1;
}

Task<int> wait_then(Event& e, int v) {
  co_await e;
  co_return v;
}

Task<void> set_event(Event& e) {
  e.set();
  co_return;
}

Task<int> wait_and_add(Event& e, int v) {
  int got = co_await wait_then(e, v);
  co_return got + 1;
}

Task<void> never(Event& e) { co_await e; }

// Whether sync_wait(task) throws Error(kInvalidArgument).
template <typename T>
bool throws_invalid_argument(Task<T> task) {
  try {
    sync_wait(std::move(task));
  } catch (const corobtree::Error& e) {
    return e.code() == corobtree::ErrorCode::kInvalidArgument;
  }
  return false;
}

// Awaits a default-constructed (empty) Task; the awaiter must throw.
Task<int> await_empty_task() {
  Task<int> empty;
  const int v = co_await std::move(empty);
  co_return v;
}

Task<std::string> catch_inside() {
  try {
    std::string s = co_await throws_runtime();
    co_return s;
  } catch (const std::runtime_error& e) {
    co_return std::string("caught ") + e.what();
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(task_is_lazy) {
  bool started = false;
  Task<int> t = answer(&started);
  BOOST_TEST(!started);
  BOOST_TEST(sync_wait(std::move(t)) == 42);
  BOOST_TEST(started);
}

BOOST_AUTO_TEST_CASE(errors_reach_the_awaiter) {
  BOOST_CHECK_THROW(sync_wait(throws_runtime()), std::runtime_error);
  BOOST_CHECK_EXCEPTION(sync_wait(throws_typed()), corobtree::Error, [](const corobtree::Error& e) {
    return e.code() == corobtree::ErrorCode::kCorruption;
  });
  BOOST_TEST(sync_wait(catch_inside()) == "caught boom");
}

// docs/contributing.md: GCC 12 does not guarantee the symmetric-transfer tail call at -O0
// or under ASan. Ten million synchronously completing awaits must not grow the
// stack (run in the sanitizer build by scripts/run-tests.sh).
BOOST_AUTO_TEST_CASE(ten_million_synchronous_awaits_do_not_overflow) {
  const std::uint64_t n = 10'000'000;
  // i & 1 alternates 0,1 -> add_one gives 1,2: total = n/2 * 3.
  BOOST_TEST(sync_wait(sum_sync_children(n)) == n / 2 * 3);
}

BOOST_AUTO_TEST_CASE(deep_nesting) { BOOST_TEST(sync_wait(nested(10000)) == 10000); }

BOOST_AUTO_TEST_CASE(when_all_variadic_mixes_types_and_void) {
  Event e;
  auto [a, b, c] = sync_wait(when_all(wait_then(e, 7), add_one(1), set_event(e)));
  BOOST_TEST(a == 7);
  BOOST_TEST(b == 2);
  static_assert(std::is_same_v<std::decay_t<decltype(c)>, std::monostate>);
}

BOOST_AUTO_TEST_CASE(when_all_vector_keeps_order_across_real_suspension) {
  Event e;
  std::vector<Task<int>> tasks;
  for (int i = 0; i < 100; ++i) tasks.push_back(wait_and_add(e, i));
  // The waiters really suspend; the setter runs after all of them started.
  auto [results, done] = sync_wait(when_all(when_all(std::move(tasks)), set_event(e)));
  (void)done;
  BOOST_REQUIRE_EQUAL(results.size(), 100u);
  for (int i = 0; i < 100; ++i) BOOST_TEST(results[static_cast<std::size_t>(i)] == i + 1);
}

BOOST_AUTO_TEST_CASE(when_all_vector_of_void_and_empty) {
  Event e;
  std::vector<Task<void>> tasks;
  tasks.push_back(set_event(e));
  tasks.push_back(never(e));  // already set by the first: completes
  sync_wait(when_all(std::move(tasks)));
  BOOST_TEST(e.is_set());
  std::vector<Task<int>> none;
  BOOST_TEST(sync_wait(when_all(std::move(none))).empty());
}

BOOST_AUTO_TEST_CASE(when_all_rethrows_first_error_after_all_finish) {
  Event e;
  std::vector<Task<int>> tasks;
  tasks.push_back(wait_then(e, 1));
  tasks.push_back(add_one(2));
  std::vector<Task<void>> more;
  more.push_back(throws_typed());
  more.push_back(set_event(e));
  BOOST_CHECK_EXCEPTION(
      sync_wait(when_all(when_all(std::move(tasks)), when_all(std::move(more)))), corobtree::Error,
      [](const corobtree::Error& err) { return err.code() == corobtree::ErrorCode::kCorruption; });
  BOOST_TEST(e.is_set());  // the sibling after the failing child still ran
}

// A task waiting on something nobody will ever signal is reported, not hung.
BOOST_AUTO_TEST_CASE(sync_wait_detects_deadlock) {
  Event e;
  BOOST_CHECK_EXCEPTION(sync_wait(never(e)), corobtree::Error, [](const corobtree::Error& err) {
    return err.code() == corobtree::ErrorCode::kDeadlock;
  });
}

// An empty Task (default-constructed or moved-from) has no coroutine: awaiting
// it throws Error(kInvalidArgument) at the co_await, and so does sync_wait.
BOOST_AUTO_TEST_CASE(awaiting_an_empty_task_throws_invalid_argument) {
  BOOST_CHECK_EXCEPTION(sync_wait(await_empty_task()), corobtree::Error,
                        [](const corobtree::Error& err) {
                          return err.code() == corobtree::ErrorCode::kInvalidArgument;
                        });
}

BOOST_AUTO_TEST_CASE(sync_wait_on_an_empty_task_throws_invalid_argument) {
  // Moves happen outside the Boost macros, which expand to loops.
  Task<int> empty;
  BOOST_TEST(!empty.valid());
  const bool empty_throws = throws_invalid_argument(std::move(empty));
  BOOST_TEST(empty_throws);
  Task<void> empty_void;
  const bool empty_void_throws = throws_invalid_argument(std::move(empty_void));
  BOOST_TEST(empty_void_throws);
  bool started = false;
  Task<int> t = answer(&started);
  Task<int> taken = std::move(t);
  // A moved-from Task is empty too.
  const bool moved_from_throws =
      throws_invalid_argument(std::move(t));  // NOLINT(bugprone-use-after-move)
  BOOST_TEST(moved_from_throws);
  BOOST_TEST(!started);
  const int value = sync_wait(std::move(taken));
  BOOST_TEST(value == 42);
}
