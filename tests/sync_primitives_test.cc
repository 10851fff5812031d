// AsyncMutex, AsyncSharedMutex, Event, Condition and DrainLatch: exclusion
// held across suspension, FIFO hand-off, readers sharing, writers not starved,
// wake-ups posted to the scheduler (never resumed inside the waker).
#define BOOST_TEST_MODULE sync_primitives
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>
#include "io/async_mutex.h"
#include "io/async_shared_mutex.h"
#include "io/condition.h"
#include "io/event.h"

using corobtree::AsyncMutex;
using corobtree::AsyncSharedMutex;
using corobtree::Event;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::when_all;

namespace {

// A yield point: suspends until the scheduler's next turn.
struct Yield {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { corobtree::Scheduler::current().post(h); }
  void await_resume() const noexcept {}
};

struct Shared {
  int inside = 0;
  int max_inside = 0;
  std::vector<int> order;
};

Task<void> critical(AsyncMutex& m, Shared& s, int id) {
  auto guard = co_await m.scoped_lock();
  s.order.push_back(id);
  ++s.inside;
  if (s.inside > s.max_inside) s.max_inside = s.inside;
  co_await Yield{};  // hold the lock across a suspension
  co_await Yield{};
  --s.inside;
}

Task<void> reader(AsyncSharedMutex& m, Shared& readers, Shared& writers, Event& go) {
  co_await go;
  auto guard = co_await m.scoped_lock_shared();
  BOOST_TEST(writers.inside == 0);
  ++readers.inside;
  if (readers.inside > readers.max_inside) readers.max_inside = readers.inside;
  co_await Yield{};
  --readers.inside;
}

Task<void> writer(AsyncSharedMutex& m, Shared& readers, Shared& writers, Event& go, int id) {
  co_await go;
  auto guard = co_await m.scoped_lock();
  BOOST_TEST(readers.inside == 0);
  ++writers.inside;
  if (writers.inside > writers.max_inside) writers.max_inside = writers.inside;
  writers.order.push_back(id);
  co_await Yield{};
  --writers.inside;
}

Task<void> open_gate(Event& e) {
  co_await Yield{};
  e.set();
}

Task<void> hold_shared_then_release(AsyncSharedMutex& m, std::vector<std::string>& log,
                                    Event& writer_queued) {
  co_await m.lock_shared();
  log.push_back("r1 in");
  co_await writer_queued;
  co_await Yield{};
  log.push_back("r1 out");
  m.unlock_shared();
}

Task<void> queued_writer(AsyncSharedMutex& m, std::vector<std::string>& log, Event& queued) {
  co_await Yield{};
  queued.set();  // set before suspending on the latch: r1 is still inside
  co_await m.lock();
  log.push_back("w in");
  m.unlock();
}

Task<void> late_reader(AsyncSharedMutex& m, std::vector<std::string>& log) {
  co_await Yield{};
  co_await Yield{};
  co_await m.lock_shared();
  log.push_back("r2 in");
  m.unlock_shared();
}

}  // namespace

BOOST_AUTO_TEST_CASE(mutex_excludes_across_suspension_in_fifo_order) {
  AsyncMutex m;
  Shared s;
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 50; ++i) tasks.push_back(critical(m, s, i));
  sync_wait(when_all(std::move(tasks)));
  BOOST_TEST(s.max_inside == 1);
  BOOST_REQUIRE_EQUAL(s.order.size(), 50u);
  for (int i = 0; i < 50; ++i) BOOST_TEST(s.order[static_cast<std::size_t>(i)] == i);
  BOOST_TEST(!m.is_locked());
  BOOST_TEST(m.try_lock());
  BOOST_TEST(!m.try_lock());
  m.unlock();
}

BOOST_AUTO_TEST_CASE(shared_mutex_readers_share_writers_exclude) {
  AsyncSharedMutex m;
  Shared readers, writers;
  Event go;
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back(reader(m, readers, writers, go));
  for (int i = 0; i < 5; ++i) tasks.push_back(writer(m, readers, writers, go, i));
  for (int i = 0; i < 20; ++i) tasks.push_back(reader(m, readers, writers, go));
  tasks.push_back(open_gate(go));
  sync_wait(when_all(std::move(tasks)));
  BOOST_TEST(readers.max_inside > 1);  // readers really overlapped
  BOOST_TEST(writers.max_inside == 1);
  BOOST_TEST(writers.order.size() == 5u);
  BOOST_TEST(m.shared_holders() == 0u);
  BOOST_TEST(!m.exclusively_held());
}

// Once a writer waits, a reader arriving later queues behind it.
BOOST_AUTO_TEST_CASE(shared_mutex_does_not_starve_writers) {
  AsyncSharedMutex m;
  std::vector<std::string> log;
  Event queued;
  sync_wait(when_all(hold_shared_then_release(m, log, queued), queued_writer(m, log, queued),
                     late_reader(m, log)));
  const std::vector<std::string> expected{"r1 in", "r1 out", "w in", "r2 in"};
  BOOST_TEST(log == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(event_is_one_shot_and_wakes_all) {
  Event e;
  int woke = 0;
  auto waiter = [](Event& ev, int& count) -> Task<void> {  // captures nothing
    co_await ev;
    ++count;
  };
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(waiter(e, woke));
  tasks.push_back(open_gate(e));
  sync_wait(when_all(std::move(tasks)));
  BOOST_TEST(woke == 10);
  BOOST_TEST(e.is_set());
  sync_wait(waiter(e, woke));  // already set: does not suspend
  BOOST_TEST(woke == 11);
}

// ---- Condition and DrainLatch ------------------------------------------------
namespace {

using corobtree::Condition;
using corobtree::DrainLatch;

struct Gate {
  bool open = false;
  Condition changed;
  std::vector<std::string> log;
};

Task<void> wait_for_gate(Gate& g, int id) {
  while (!g.open) co_await g.changed.wait();
  g.log.push_back("in " + std::to_string(id));
}

// Notifies once with the gate still shut (the waiters re-check and wait
// again), then opens it. The waiters run only after the notifier continued.
Task<void> notify_then_open(Gate& g) {
  co_await Yield{};
  g.changed.notify_all();
  g.log.push_back("notified shut");
  co_await Yield{};
  g.open = true;
  g.changed.notify_all();
  g.log.push_back("opened");
}

Task<void> operation(DrainLatch& latch, int yields, std::vector<std::string>& log, int id) {
  latch.enter();
  for (int i = 0; i < yields; ++i) co_await Yield{};
  log.push_back("done " + std::to_string(id));
  latch.leave();
}

Task<void> drain(DrainLatch& latch, std::vector<std::string>& log) {
  co_await Yield{};  // the operations have entered
  co_await latch.drained();
  log.push_back("drained at " + std::to_string(latch.in_flight()));
}

// Leaves, then enters again before the drainer (posted by the leave) runs:
// drained() must wait for this second operation too.
Task<void> leave_and_reenter(DrainLatch& latch, std::vector<std::string>& log) {
  latch.enter();
  co_await Yield{};
  co_await Yield{};
  latch.leave();
  latch.enter();
  co_await Yield{};
  log.push_back("second done");
  latch.leave();
}

}  // namespace

BOOST_AUTO_TEST_CASE(condition_notify_all_posts_every_waiter) {
  Gate g;
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 3; ++i) tasks.push_back(wait_for_gate(g, i));
  tasks.push_back(notify_then_open(g));
  sync_wait(when_all(std::move(tasks)));
  const std::vector<std::string> expected{"notified shut", "opened", "in 0", "in 1", "in 2"};
  BOOST_TEST(g.log == expected, boost::test_tools::per_element());
  BOOST_TEST(!g.changed.has_waiters());
}

BOOST_AUTO_TEST_CASE(drain_latch_waits_until_nothing_is_in_flight) {
  DrainLatch latch;
  std::vector<std::string> log;
  sync_wait(drain(latch, log));  // nothing in flight: returns at once
  BOOST_TEST(log == std::vector<std::string>{"drained at 0"}, boost::test_tools::per_element());
  log.clear();
  std::vector<Task<void>> tasks;
  tasks.push_back(operation(latch, 3, log, 1));
  tasks.push_back(drain(latch, log));
  tasks.push_back(operation(latch, 5, log, 2));
  sync_wait(when_all(std::move(tasks)));
  const std::vector<std::string> expected{"done 1", "done 2", "drained at 0"};
  BOOST_TEST(log == expected, boost::test_tools::per_element());
  log.clear();
  sync_wait(when_all(leave_and_reenter(latch, log), drain(latch, log)));
  const std::vector<std::string> again{"second done", "drained at 0"};
  BOOST_TEST(log == again, boost::test_tools::per_element());
  BOOST_TEST(latch.in_flight() == 0u);
}
