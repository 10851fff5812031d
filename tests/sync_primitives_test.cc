// AsyncMutex, AsyncSharedMutex and Event: exclusion held across suspension,
// FIFO hand-off, readers sharing, writers not starved.
#define BOOST_TEST_MODULE sync_primitives
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "io/async_mutex.h"
#include "io/async_shared_mutex.h"
#include "io/event.h"
#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>

using corobtree::AsyncMutex;
using corobtree::AsyncSharedMutex;
using corobtree::Event;
using corobtree::Task;
using corobtree::sync_wait;
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
