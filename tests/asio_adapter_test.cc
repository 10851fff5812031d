// corobtree/asio.h on a real asio::io_context, in both modes (1: an
// AsioDriver lets the io_context drive its own thread; 2: a Runtime's
// workers) and on both backends (the database's engine thread uses io_uring
// or pread). Plain callbacks, use_future from another thread, a strand-bound
// handler, asio::use_awaitable (g++ only: Asio 1.22 enables its coroutines
// under clang only with <experimental/coroutine>, which libstdc++ 12 lacks),
// 200 operations in flight at once against a std::map (a pool of 16 pages:
// gets miss and hop to the engine), errors as exception_ptrs, io_context::run()
// not returning before the handlers ran, and an AsioDriver destroyed with
// operations in flight.
#define BOOST_TEST_MODULE asio_adapter
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <corobtree/asio.h>
#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/runtime.h>
#include <corobtree/sync_wait.h>
#include "io/event.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"
#include "tests/support/thread_probe.h"

namespace bdata = boost::unit_test::data;
using corobtree::AsioDriver;
using corobtree::AsioRunner;
using corobtree::Database;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::IoBackend;
using Pairs = std::vector<std::pair<std::string, std::string>>;

namespace {

struct Param {
  int mode;  // 1: AsioDriver on the io_context's thread; 2: Runtime workers
  IoBackend backend;
};

std::ostream& operator<<(std::ostream& os, const Param& p) {
  return os << "mode" << p.mode << "/" << corobtree::backend_name(p.backend);
}

std::vector<Param> params() {
  std::vector<Param> out;
  for (int mode : {1, 2}) {
    for (IoBackend b : {IoBackend::kUring, IoBackend::kPread}) out.push_back(Param{mode, b});
  }
  return out;
}

// A database with a 16-page pool, so that reads miss and go to the engine.
std::unique_ptr<Database> open_db(const corobtree::test::TempDir& dir, IoBackend backend) {
  corobtree::Options o;
  o.backend = backend;
  o.pool_pages = 16;
  o.durability = corobtree::Durability::kRelaxed;
  return corobtree::sync_wait(Database::open(dir.file("db"), o));
}

// The runner of a mode, on `ioc` (run by the calling thread). Mode 1 makes
// the AsioDriver here; mode 2 completes plain handlers on `ioc`.
struct Setup {
  Setup(int mode, asio::io_context& ioc) {
    if (mode == 1) {
      driver.emplace(ioc);
      runner.emplace(AsioRunner::this_thread());
    } else {
      runtime.emplace(2);
      runner.emplace(*runtime, ioc.get_executor());
    }
  }
  std::optional<corobtree::Runtime> runtime;
  std::optional<AsioDriver> driver;
  std::optional<AsioRunner> runner;
};

// The code of the corobtree::Error in `e`; none for anything else.
std::optional<ErrorCode> code_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    return err.code();
  } catch (...) {
  }
  return std::nullopt;
}

std::vector<std::exception_ptr>& kept_errors() {
  static std::vector<std::exception_ptr> kept;
  return kept;
}

std::string key_of(std::size_t i) {
  std::string k = "key" + std::to_string(100000 + i);
  return k;
}

}  // namespace

// Rounds of 200 operations in flight at once (distinct keys within a round,
// so each result is known from the model before the round), checked against
// a std::map, then full and bounded scans. Every handler runs on the
// io_context's thread, and run() returns only after all of them ran.
BOOST_DATA_TEST_CASE(concurrent_ops_match_a_map, bdata::make(params()), p) {
  const std::uint64_t seed = corobtree::test::test_seed("asio concurrent");
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  auto db = open_db(dir, p.backend);
  std::map<std::string, std::string> model;
  const std::uint64_t misses_before = db->stats().pool.misses;
  {
    asio::io_context ioc;
    Setup s(p.mode, ioc);
    const std::thread::id ioc_thread = std::this_thread::get_id();
    constexpr std::size_t kKeys = 1500;
    constexpr std::size_t kInFlight = 200;
    for (int round = 0; round < 12; ++round) {
      std::vector<std::size_t> ids(kKeys);
      for (std::size_t i = 0; i < kKeys; ++i) ids[i] = i;
      std::shuffle(ids.begin(), ids.end(), rng);
      std::size_t launched = 0;
      std::size_t completed = 0;
      std::size_t wrong = 0;
      std::size_t off_thread = 0;
      std::map<std::string, std::optional<std::string>> changes;
      corobtree::WriteBatch batch;  // round 5: the puts go as one batch
      for (std::size_t n = 0; n < kInFlight; ++n) {
        const std::string key = key_of(ids[n]);
        const auto it = model.find(key);
        const std::optional<std::string> before =
            it == model.end() ? std::nullopt : std::optional<std::string>(it->second);
        const int op = round < 3 ? 0 : static_cast<int>(rng() % 3);
        auto check_thread = [&] {
          if (std::this_thread::get_id() != ioc_thread) ++off_thread;
          ++completed;
        };
        if (op == 0) {
          std::string value(1 + rng() % 300, static_cast<char>('a' + rng() % 26));
          changes[key] = value;
          if (round == 5) {
            batch.put(key, value);
            continue;
          }
          ++launched;
          corobtree::async_put(*s.runner, *db, key, value, [&, check_thread](std::exception_ptr e) {
            check_thread();
            if (e) ++wrong;
          });
        } else if (op == 1) {
          ++launched;
          changes[key] = std::nullopt;
          corobtree::async_erase(*s.runner, *db, key,
                                 [&, check_thread, before](std::exception_ptr e, bool existed) {
                                   check_thread();
                                   if (e || existed != before.has_value()) ++wrong;
                                 });
        } else {
          ++launched;
          corobtree::async_get(
              *s.runner, *db, key,
              [&, check_thread, before](std::exception_ptr e, std::optional<std::string> v) {
                check_thread();
                if (e || v != before) ++wrong;
              });
        }
      }
      if (round == 5) {
        ++launched;  // this round's puts: one atomic batch
        corobtree::async_write(*s.runner, *db, std::move(batch), [&](std::exception_ptr e) {
          if (std::this_thread::get_id() != ioc_thread) ++off_thread;
          ++completed;
          if (e) ++wrong;
        });
      }
      ioc.run();  // returns once every handler ran
      ioc.restart();
      BOOST_REQUIRE_EQUAL(completed, launched);
      BOOST_REQUIRE_EQUAL(wrong, 0U);
      BOOST_REQUIRE_EQUAL(off_thread, 0U);
      for (auto& [k, v] : changes) {
        if (v) {
          model[k] = *v;
        } else {
          model.erase(k);
        }
      }
    }
    // Scans: everything, then a bounded range.
    Pairs all;
    Pairs some;
    bool scanned = false;
    corobtree::async_scan(
        *s.runner, *db, corobtree::ScanOptions{}, SIZE_MAX, [&](std::exception_ptr e, Pairs v) {
          BOOST_CHECK(!e);
          all = std::move(v);
          corobtree::ScanOptions range;
          range.lower = key_of(300);
          range.upper = key_of(900);
          corobtree::async_scan(*s.runner, *db, range, 25, [&](std::exception_ptr e2, Pairs v2) {
            BOOST_CHECK(!e2);
            some = std::move(v2);
            scanned = true;
          });
        });
    ioc.run();
    BOOST_REQUIRE(scanned);
    const Pairs want_all(model.begin(), model.end());
    BOOST_CHECK(all == want_all);
    Pairs want_some;
    for (auto it = model.lower_bound(key_of(300));
         it != model.end() && it->first < key_of(900) && want_some.size() < 25; ++it) {
      want_some.push_back(*it);
    }
    BOOST_CHECK(some == want_some);
  }
  BOOST_CHECK_GT(db->stats().pool.misses, misses_before);  // reads really went to the engine
  corobtree::sync_wait(db->close());
}

// A handler bound to a strand runs on it (mode 2 with two threads running
// the io_context, so only the strand serializes the handlers: the plain
// counter below is a data race otherwise, which TSan reports).
BOOST_DATA_TEST_CASE(strand_bound_handlers_run_on_their_strand, bdata::make(params()), p) {
  corobtree::test::TempDir dir;
  auto db = open_db(dir, p.backend);
  corobtree::sync_wait(db->put("k", "v"));
  asio::io_context ioc;
  Setup s(p.mode, ioc);
  auto strand = asio::make_strand(ioc);
  std::size_t on_strand = 0;  // touched by strand handlers only
  std::size_t wrong = 0;
  std::atomic<std::size_t> plain_on_strand{0};
  for (int i = 0; i < 100; ++i) {
    corobtree::async_get(
        *s.runner, *db, "k",
        asio::bind_executor(strand, [&](std::exception_ptr e, std::optional<std::string> v) {
          if (!strand.running_in_this_thread() || e || v != "v") ++wrong;
          ++on_strand;
        }));
    corobtree::async_get(*s.runner, *db, "k", [&](std::exception_ptr, std::optional<std::string>) {
      if (strand.running_in_this_thread()) ++plain_on_strand;
    });
  }
  if (p.mode == 1) {
    ioc.run();  // the driver's thread only
  } else {
    std::thread second([&ioc] { ioc.run(); });
    ioc.run();
    second.join();
  }
  BOOST_CHECK_EQUAL(on_strand, 100U);
  BOOST_CHECK_EQUAL(wrong, 0U);
  BOOST_CHECK_EQUAL(plain_on_strand.load(), 0U);
  s.driver.reset();
  corobtree::sync_wait(db->close());
}

// use_future from a thread that does not run the io_context; an error comes
// out of future::get() as the corobtree::Error.
BOOST_DATA_TEST_CASE(use_future_from_another_thread, bdata::make(params()), p) {
  corobtree::test::TempDir dir;
  auto db = open_db(dir, p.backend);
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  std::optional<corobtree::Runtime> rt;
  if (p.mode == 2) rt.emplace(2);
  std::promise<void> ready;
  std::thread ioc_thread([&] {
    std::optional<AsioDriver> driver;
    if (p.mode == 1) driver.emplace(ioc);
    ready.set_value();
    ioc.run();
  });
  ready.get_future().wait();
  const std::string oversize(db->max_key_size() + 1, 'x');
  // Mode 1 operations must start on the driver's thread: post there and hand
  // the future back.
  auto start_put = [&](std::string key, std::string value) {
    if (p.mode == 2)
      return corobtree::async_put(AsioRunner(*rt), *db, key, value, asio::use_future);
    std::promise<std::future<void>> fp;
    asio::post(ioc, [&] {
      fp.set_value(
          corobtree::async_put(AsioRunner::this_thread(), *db, key, value, asio::use_future));
    });
    return fp.get_future().get();
  };
  auto start_get = [&](std::string key) {
    if (p.mode == 2) return corobtree::async_get(AsioRunner(*rt), *db, key, asio::use_future);
    std::promise<std::future<std::optional<std::string>>> fp;
    asio::post(ioc, [&] {
      fp.set_value(corobtree::async_get(AsioRunner::this_thread(), *db, key, asio::use_future));
    });
    return fp.get_future().get();
  };
  for (int i = 0; i < 50; ++i)
    start_put(key_of(static_cast<std::size_t>(i)), "v" + std::to_string(i)).get();
  for (int i = 0; i < 50; ++i) {
    BOOST_CHECK(start_get(key_of(static_cast<std::size_t>(i))).get() == "v" + std::to_string(i));
  }
  BOOST_CHECK(!start_get("absent").get().has_value());
  auto bad = start_put(oversize, "v");
  std::exception_ptr error;
  try {
    bad.get();
  } catch (...) {
    error = std::current_exception();
  }
  // The thread that set the promise may drop its reference to the exception
  // last, freeing it: libstdc++'s exception_ptr count is atomic, but TSan
  // does not see inside libstdc++ and would take that free for a race with
  // the read below. Holding a reference for the rest of the run avoids it.
  kept_errors().push_back(error);
  BOOST_CHECK(code_of(error) == ErrorCode::kInvalidArgument);
  work.reset();
  ioc_thread.join();
  corobtree::sync_wait(db->close());
}

// Errors arrive as the handler's exception_ptr: an oversize key
// (kInvalidArgument), then any call after close() (kClosed).
BOOST_DATA_TEST_CASE(errors_arrive_as_exception_ptrs, bdata::make(params()), p) {
  corobtree::test::TempDir dir;
  auto db = open_db(dir, p.backend);
  asio::io_context ioc;
  Setup s(p.mode, ioc);
  std::optional<ErrorCode> oversize;
  std::optional<ErrorCode> closed;
  bool erase_value = true;
  corobtree::async_put(
      *s.runner, *db, std::string(db->max_key_size() + 1, 'x'), "v", [&](std::exception_ptr e) {
        if (e) oversize = code_of(e);
        corobtree::async_run(*s.runner, db->close(), [&](std::exception_ptr e2) {
          BOOST_CHECK(!e2);
          corobtree::async_erase(*s.runner, *db, "k", [&](std::exception_ptr e3, bool existed) {
            if (e3) closed = code_of(e3);
            erase_value = existed;
          });
        });
      });
  ioc.run();
  BOOST_CHECK(oversize == ErrorCode::kInvalidArgument);
  BOOST_CHECK(closed == ErrorCode::kClosed);
  BOOST_CHECK(!erase_value);  // the value-initialized result
}

#if defined(ASIO_HAS_CO_AWAIT)
namespace {

// One client: its own keys, awaited one after the other; an error is thrown
// at the co_await. Counts its mismatches.
asio::awaitable<void> awaitable_client(AsioRunner r, Database* db, int id, int* wrong) {
  const std::string prefix = "c" + std::to_string(id) + "-";
  for (int i = 0; i < 40; ++i) {
    const std::string key = prefix + std::to_string(i);
    const std::string value = key + "!";
    co_await corobtree::async_put(r, *db, key, value, asio::use_awaitable);
  }
  for (int i = 0; i < 40; ++i) {
    const std::string key = prefix + std::to_string(i);
    const std::string want = key + "!";
    std::optional<std::string> v = co_await corobtree::async_get(r, *db, key, asio::use_awaitable);
    if (v != want) ++*wrong;
  }
  const std::string first = prefix + "0";
  const bool existed = co_await corobtree::async_erase(r, *db, first, asio::use_awaitable);
  if (!existed) ++*wrong;
  bool threw = false;
  const std::string oversize(db->max_key_size() + 1, 'x');
  try {
    co_await corobtree::async_get(r, *db, oversize, asio::use_awaitable);
  } catch (const Error& e) {
    threw = e.code() == ErrorCode::kInvalidArgument;
  }
  if (!threw) ++*wrong;
}

}  // namespace

BOOST_DATA_TEST_CASE(use_awaitable_clients, bdata::make(params()), p) {
  corobtree::test::TempDir dir;
  auto db = open_db(dir, p.backend);
  {
    asio::io_context ioc;
    Setup s(p.mode, ioc);
    int wrong = 0;
    int finished = 0;
    for (int c = 0; c < 4; ++c) {
      asio::co_spawn(ioc, awaitable_client(*s.runner, db.get(), c, &wrong),
                     [&](std::exception_ptr e) {
                       BOOST_CHECK(!e);
                       ++finished;
                     });
    }
    ioc.run();
    BOOST_CHECK_EQUAL(finished, 4);
    BOOST_CHECK_EQUAL(wrong, 0);
  }
  BOOST_CHECK_EQUAL(db->count(), 4U * 39U);
  corobtree::sync_wait(db->close());
}
#endif  // ASIO_HAS_CO_AWAIT

namespace {
corobtree::Task<int> doubled_on(corobtree::Runtime* rt, int v) {
  co_await rt->schedule();  // from here on, on a worker
  co_return v * 2;
}
}  // namespace

namespace {
corobtree::Task<int> wait_for_event(corobtree::Event* ev) {
  co_await *ev;
  co_return 1;
}
corobtree::Task<int> set_event(corobtree::Event* ev) {
  ev->set();
  co_return 2;
}
}  // namespace

// Review finding (lost wake-up): an operation that finishes inside its
// initiating function after making another operation's coroutine ready (a
// local post) while the driver is parked in its wait for the eventfd. The
// waiter must still run and io_context::run() return (a hang fails through
// the watchdog).
BOOST_AUTO_TEST_CASE(mode1_op_finishing_at_initiation_wakes_a_local_waiter) {
  corobtree::test::Watchdog watchdog("mode1_op_finishing_at_initiation_wakes_a_local_waiter",
                                     std::chrono::seconds(30));
  asio::io_context ioc;
  corobtree::Event ev;
  int got = 0;
  AsioDriver driver(ioc);
  const AsioRunner here = AsioRunner::this_thread();
  corobtree::async_run(here, wait_for_event(&ev), [&](std::exception_ptr, int v) { got += v; });
  // Later, once the driver has armed its wait: start the setter.
  asio::steady_timer t(ioc, std::chrono::milliseconds(50));
  t.async_wait([&](const asio::error_code&) {
    corobtree::async_run(here, set_event(&ev), [&](std::exception_ptr, int v) { got += v; });
  });
  ioc.run();
  BOOST_CHECK_EQUAL(got, 3);
  BOOST_CHECK_EQUAL(driver.in_flight(), 0U);
}

// The same hole through a plain Asio handler (no corobtree operation
// started): Event::set() on the driver's thread, outside the scheduler's turn.
BOOST_AUTO_TEST_CASE(plain_handler_setting_an_event_wakes_the_driver) {
  corobtree::test::Watchdog watchdog("plain_handler_setting_an_event_wakes_the_driver",
                                     std::chrono::seconds(30));
  asio::io_context ioc;
  corobtree::Event ev;
  int got = 0;
  AsioDriver driver(ioc);
  corobtree::async_run(AsioRunner::this_thread(), wait_for_event(&ev),
                       [&](std::exception_ptr, int v) { got += v; });
  asio::steady_timer t(ioc, std::chrono::milliseconds(50));
  t.async_wait([&](const asio::error_code&) { ev.set(); });
  ioc.run();
  BOOST_CHECK_EQUAL(got, 1);
  BOOST_CHECK_EQUAL(driver.in_flight(), 0U);
}

// Mode 1 with a task that moves to a Runtime's worker: it finishes there, and
// the operation still completes on the driver's thread (checked by the
// thread id, and by TSan: the driver's counters are not atomic).
BOOST_AUTO_TEST_CASE(mode1_task_that_moves_to_a_worker_comes_back) {
  corobtree::Runtime rt(2);
  asio::io_context ioc;
  AsioDriver driver(ioc);
  const std::thread::id ioc_thread = std::this_thread::get_id();
  int sum = 0;
  int wrong = 0;
  for (int i = 0; i < 100; ++i) {
    corobtree::async_run(AsioRunner::this_thread(), doubled_on(&rt, i),
                         [&](std::exception_ptr e, int v) {
                           if (e || std::this_thread::get_id() != ioc_thread) ++wrong;
                           sum += v;
                         });
  }
  ioc.run();
  BOOST_CHECK_EQUAL(sum, 9900);
  BOOST_CHECK_EQUAL(wrong, 0);
  BOOST_CHECK_EQUAL(driver.in_flight(), 0U);
}

// The driver's rules: this_thread() needs one; one per thread; sync_wait is
// refused on its thread. Destroyed with operations in flight, it waits for
// them; their handlers run on the next run().
BOOST_DATA_TEST_CASE(driver_lifetime,
                     bdata::make(std::vector<Param>{{1, IoBackend::kUring},
                                                    {1, IoBackend::kPread}}),
                     p) {
  corobtree::test::TempDir dir;
  auto db = open_db(dir, p.backend);
  for (std::size_t i = 0; i < 500; ++i) {
    corobtree::sync_wait(db->put(key_of(i), std::string(200, static_cast<char>('a' + i % 26))));
  }
  BOOST_CHECK_THROW((void)AsioRunner::this_thread(), Error);
  asio::io_context ioc;
  std::size_t right = 0;
  {
    AsioDriver driver(ioc);
    BOOST_CHECK_THROW(AsioDriver second(ioc), Error);
    try {
      corobtree::sync_wait(db->get("k"));
      BOOST_FAIL("sync_wait ran under an AsioDriver");
    } catch (const Error& e) {
      BOOST_CHECK(e.code() == ErrorCode::kInvalidArgument);
    }
    const AsioRunner here = AsioRunner::this_thread();
    for (std::size_t i = 0; i < 500; i += 5) {
      corobtree::async_get(here, *db, key_of(i),
                           [&right, i](std::exception_ptr e, std::optional<std::string> v) {
                             if (!e && v == std::string(200, static_cast<char>('a' + i % 26))) {
                               ++right;
                             }
                           });
    }
    BOOST_CHECK_GT(driver.in_flight(), 0U);  // misses: waiting for the engine
  }                                          // waits for them
  BOOST_CHECK_EQUAL(right, 0U);              // handlers are posted, not run inline
  ioc.run();
  BOOST_CHECK_EQUAL(right, 100U);
  BOOST_CHECK_THROW((void)AsioRunner::this_thread(), Error);
  BOOST_CHECK(corobtree::sync_wait(db->get(key_of(0))).has_value());  // the thread is free again
  corobtree::sync_wait(db->close());
}
