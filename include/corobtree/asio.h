// corobtree/asio.h: corobtree operations as Asio asynchronous operations
// (standalone Asio 1.22, header-only; CMake target corobtree::asio).
//
//   asio::io_context ioc;
//   corobtree::AsioDriver driver(ioc);                 // mode 1: ioc drives this thread
//   auto here = corobtree::AsioRunner::this_thread();
//   corobtree::async_get(here, *db, "k", [](std::exception_ptr e, std::optional<std::string> v)
//   {}); ioc.run();
//
// Two ways to run the corobtree side of an operation (docs/asio.md):
//  * Mode 1, AsioRunner::this_thread(): on the io_context's own thread. An
//    AsioDriver lets `ioc` drive the thread's corobtree scheduler (through
//    corobtree::ExternalLoop): a posix::stream_descriptor waits for its
//    eventfd, which another thread's post (e.g. a database's engine thread
//    answering a call), a completion on the thread's io_uring ring, or a
//    coroutine of this thread made ready outside the driver's turn (by a task
//    an initiating function runs inline, by a plain handler setting an Event)
//    makes readable; the handler then runs the ready coroutines, all on this
//    thread. No extra thread.
//  * Mode 2, AsioRunner(runtime): on a corobtree::Runtime's workers (the
//    operation is spawned there); the result is sent to the handler's executor.
//
// Completion: a handler gets (std::exception_ptr, T), or (std::exception_ptr)
// for void; a corobtree::Error (or any exception of the task) arrives as the
// exception_ptr, with a value-initialized T. asio::use_awaitable rethrows it,
// asio::use_future stores it in the future. The handler runs on its associated
// executor (asio::get_associated_executor; by default the driver's io_context
// in mode 1, the runner's executor in mode 2, asio::system_executor if it has
// none), never inside the initiating function: in mode 1 it is always posted
// (even when the operation finished during initiation; never run inside the
// scheduler's turn), in mode 2 dispatched from the worker (which posts unless
// the executor may run it on any thread, like the system executor). The
// handler's executor counts outstanding work until then, so
// io_context::run() does not return early. Cancellation (per-operation
// cancellation slots) is not supported: an operation runs to its end.
//
// Lifetimes: the operation owns its arguments (keys, values, batch, options)
// until it completes. The Database must outlive every operation on it
// (corobtree/database.h); in mode 2 the Runtime must too.
//
// Thread-safety: an AsioDriver belongs to the thread that constructed it,
// which must be the only thread running its io_context. A mode-1 runner is
// used on that thread only (elsewhere the initiating function throws
// Error(kInvalidArgument)); a mode-2 runner from any thread.
//
//   #include <corobtree/asio.h>
#pragma once

#include <unistd.h>

#include <asio.hpp>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <corobtree/cursor.h>
#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/external_loop.h>
#include <corobtree/runtime.h>
#include <corobtree/task.h>
#include <corobtree/write_batch.h>

namespace corobtree {

class AsioDriver;

namespace detail::asio_adapter {

// The calling thread's AsioDriver, if any (one per thread).
inline AsioDriver*& current_driver() noexcept {
  thread_local AsioDriver* driver = nullptr;
  return driver;
}

// What the driver's pending Asio handlers hold: cleared when it dies, so a
// handler that runs later (an aborted wait) touches nothing.
// `owner` is checked first, so a handler run by a wrong thread reads nothing else.
struct DriverLink {
  AsioDriver* driver = nullptr;
  std::thread::id owner = std::this_thread::get_id();
};

[[noreturn]] inline void throw_wrong_thread() {
  throw Error(ErrorCode::kInvalidArgument,
              "AsioDriver: its io_context is run by another thread than the driver's");
}

}  // namespace detail::asio_adapter

// Mode 1 (see the preamble): `ioc` drives the calling thread's corobtree
// scheduler for as long as this lives. It watches the thread's eventfd only
// while operations started with AsioRunner::this_thread() are in flight, so
// io_context::run() returns once they and everything else are done; other
// coroutines of this thread make progress only meanwhile.
//
// Destruction with operations in flight: the destructor waits for them,
// driving the scheduler itself (blocking the io_context's thread, as
// Database's destructor blocks for its calls); their handlers are posted to
// their executors as usual and run when the io_context next runs (or are
// destroyed with it). REQUIRES: constructed and destroyed on the thread that
// runs `ioc` (and only that thread runs it), before `ioc` is destroyed; not
// destroyed from inside a corobtree coroutine. Throws Error(kInvalidArgument)
// when the thread already has a driver or is driven otherwise (inside
// sync_wait, a Runtime worker), Error(kIoError) when no eventfd can be made.
class AsioDriver {
 public:
  explicit AsioDriver(asio::io_context& ioc)
      : ioc_(ioc), wake_(ioc), link_(std::make_shared<detail::asio_adapter::DriverLink>()) {
    if (detail::asio_adapter::current_driver() != nullptr) {
      throw Error(ErrorCode::kInvalidArgument, "AsioDriver: this thread already has one");
    }
    loop_.emplace();
    const int fd = loop_->duplicate_fd();
    asio::error_code ec;
    wake_.assign(fd, ec);  // from here the descriptor object closes its own copy
    if (ec) {
      ::close(fd);
      throw Error(ErrorCode::kIoError, "AsioDriver: cannot watch the eventfd: " + ec.message(),
                  ec.value());
    }
    link_->driver = this;
    detail::asio_adapter::current_driver() = this;
  }

  ~AsioDriver() {
    // Wait for this thread's operations, driving the scheduler here. A
    // failure here (an io_uring error) leaves operations that can never
    // complete and a destructor that must not throw: terminate, saying why.
    try {
      while (in_flight_ > 0) {
        (void)loop_->run();
        if (in_flight_ > 0 && loop_->prepare_wait()) loop_->wait();
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "corobtree::~AsioDriver: driving the scheduler failed: %s\n", e.what());
      std::terminate();
    } catch (...) {
      std::fprintf(stderr, "corobtree::~AsioDriver: driving the scheduler failed\n");
      std::terminate();
    }
    link_->driver = nullptr;
    detail::asio_adapter::current_driver() = nullptr;
    asio::error_code ignored;
    wake_.close(ignored);  // aborts a pending wait; its handler finds no driver
  }

  AsioDriver(const AsioDriver&) = delete;
  AsioDriver& operator=(const AsioDriver&) = delete;

  asio::io_context::executor_type get_executor() const noexcept { return ioc_.get_executor(); }
  // Operations started with AsioRunner::this_thread() and not yet finished.
  std::size_t in_flight() const noexcept { return in_flight_; }
  // Awaitable: continues on the driver's thread (see ExternalLoop::home()).
  ExternalLoop::Home home() const noexcept { return loop_->home(); }

  // --- used by the initiating functions (same thread) ---
  void op_started() noexcept { ++in_flight_; }
  void op_finished() noexcept { --in_flight_; }
  // Makes the io_context run a step of the scheduler soon.
  void kick() {
    if (posted_) return;
    posted_ = true;
    asio::post(ioc_, [link = link_] {
      if (std::this_thread::get_id() != link->owner) detail::asio_adapter::throw_wrong_thread();
      if (AsioDriver* d = link->driver) {
        d->posted_ = false;
        d->step();
      }
    });
  }

 private:
  // One turn (step_once). Leaving by an exception (run() failed: an io_uring
  // error), it posts the next turn first, so operations in flight are not
  // stranded: the exception leaves io_context::run() and a later run() goes on.
  void step() {
    try {
      step_once();
    } catch (...) {
      rearm_after_failure();
      throw;
    }
  }
  void rearm_after_failure() noexcept {
    if (in_flight_ == 0) return;
    try {
      kick();
    } catch (...) {  // out of memory posting: the original exception matters more
    }
  }
  // Runs what is ready, then either waits for the eventfd (when operations
  // are in flight and nothing is ready), or comes back at once.
  void step_once() {
    (void)loop_->run();
    if (in_flight_ == 0) {
      if (waiting_) wake_.cancel();  // lets io_context::run() return
      return;
    }
    if (!loop_->prepare_wait()) {
      kick();  // more is ready: after the handlers queued meanwhile
      return;
    }
    if (waiting_) return;
    waiting_ = true;
    wake_.async_wait(asio::posix::stream_descriptor::wait_read,
                     [link = link_](const asio::error_code& ec) {
                       if (std::this_thread::get_id() != link->owner) {
                         detail::asio_adapter::throw_wrong_thread();
                       }
                       AsioDriver* d = link->driver;
                       if (d == nullptr) return;
                       d->waiting_ = false;
                       if (ec && ec != asio::error::operation_aborted) {
                         d->rearm_after_failure();  // the next turn waits again
                         throw asio::system_error(ec);
                       }
                       d->step();
                     });
  }

  asio::io_context& ioc_;
  std::optional<ExternalLoop> loop_;  // engaged after the one-driver check
  asio::posix::stream_descriptor wake_;
  std::shared_ptr<detail::asio_adapter::DriverLink> link_;
  std::size_t in_flight_ = 0;
  bool waiting_ = false;  // an async_wait on wake_ is pending
  bool posted_ = false;   // a step() is posted
};

// Where the corobtree side of an operation runs. A small value; copy freely.
class AsioRunner {
 public:
  // Mode 1. Throws Error(kInvalidArgument) unless an AsioDriver lives on the
  // calling thread. REQUIRES: used on this thread while that driver lives.
  static AsioRunner this_thread() {
    AsioDriver* d = detail::asio_adapter::current_driver();
    if (d == nullptr) {
      throw Error(ErrorCode::kInvalidArgument,
                  "AsioRunner::this_thread(): no AsioDriver on this thread");
    }
    AsioRunner r;
    r.driver_ = d;
    r.executor_ = d->get_executor();
    return r;
  }
  // Mode 2: on `rt`'s workers. Handlers without an associated executor run
  // on asio::system_executor, i.e. right on the worker (where they must not
  // throw: std::terminate): bind one (asio::bind_executor) or use the
  // overload below.
  explicit AsioRunner(Runtime& rt) : runtime_(&rt), executor_(asio::system_executor()) {}
  // Mode 2 with `ex` for handlers that have no associated executor.
  AsioRunner(Runtime& rt, asio::any_io_executor ex) : runtime_(&rt), executor_(std::move(ex)) {}

  AsioDriver* driver() const noexcept { return driver_; }
  Runtime* runtime() const noexcept { return runtime_; }
  const asio::any_io_executor& default_executor() const noexcept { return executor_; }

 private:
  AsioRunner() = default;
  AsioDriver* driver_ = nullptr;
  Runtime* runtime_ = nullptr;
  asio::any_io_executor executor_;
};

namespace detail::asio_adapter {

template <typename T>
struct Signature {
  using type = void(std::exception_ptr, T);
};
template <>
struct Signature<void> {
  using type = void(std::exception_ptr);
};

// A handler with its arguments, as one nullary function object for
// asio::post/dispatch; keeps the handler's associated allocator.
template <typename Handler, typename... Args>
class BoundHandler {
 public:
  BoundHandler(Handler h, Args... args) : handler_(std::move(h)), args_(std::move(args)...) {}
  void operator()() {
    std::apply([this](Args&... a) { std::move(handler_)(std::move(a)...); }, args_);
  }
  using allocator_type = asio::associated_allocator_t<Handler>;
  allocator_type get_allocator() const noexcept { return asio::get_associated_allocator(handler_); }

 private:
  Handler handler_;
  std::tuple<Args...> args_;
};

// A coroutine that starts when resumed and frees itself at its end.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // the body catches everything
  };
  std::coroutine_handle<promise_type> handle;
};

// Void-or-value holder, so one body serves Task<void> too.
template <typename T>
struct Slot {
  using type = std::optional<T>;
};
template <>
struct Slot<void> {
  using type = std::optional<bool>;
};

// One operation's completion, seen by the coroutines without the handler's
// type (a frame whose type named a handler declared in an anonymous
// namespace would draw GCC's -Wsubobject-linkage in the user's code).
template <typename T>
class CompletionBase {
 public:
  virtual ~CompletionBase() = default;
  // REQUIRES: called once. `post`: always queue the handler; else dispatch.
  // `slot` holds the value (empty on error: T{} is passed).
  virtual void complete(bool post, std::exception_ptr error, typename Slot<T>::type& slot) = 0;
  bool finished = false;  // set when the task is done
};

// The handler and work counted on its executor until it is queued.
template <typename Handler, typename T>
class Completion final : public CompletionBase<T> {
 public:
  using Executor = asio::associated_executor_t<Handler, asio::any_io_executor>;

  Completion(Handler h, const asio::any_io_executor& fallback)
      : work_(asio::get_associated_executor(h, fallback)), handler_(std::move(h)) {}

  void complete(bool post, std::exception_ptr error, typename Slot<T>::type& slot) override {
    this->finished = true;
    if constexpr (std::is_void_v<T>) {
      queue(post, std::move(error));
    } else {
      queue(post, std::move(error), slot ? std::move(*slot) : T{});
    }
  }

 private:
  template <typename... Args>
  void queue(bool post, Args... args) {
    Executor ex = work_.get_executor();
    BoundHandler<Handler, Args...> bound(std::move(handler_), std::move(args)...);
    if (post) {
      asio::post(ex, std::move(bound));
    } else {
      asio::dispatch(ex, std::move(bound));
    }
    work_.reset();  // the queued handler counts from here
  }

  asio::executor_work_guard<Executor> work_;
  Handler handler_;
};

template <typename T>
Task<void> await_into(Task<T> task, typename Slot<T>::type& out) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    out.emplace(true);
  } else {
    T v = co_await std::move(task);
    out.emplace(std::move(v));
  }
}

// Mode 1: runs on the driver's thread.
template <typename T>
Detached run_on_driver(std::shared_ptr<CompletionBase<T>> c, Task<T> task, AsioDriver* driver,
                       ExternalLoop::Home home) {
  std::exception_ptr error;
  typename Slot<T>::type slot;
  try {
    co_await await_into<T>(std::move(task), slot);
  } catch (...) {
    error = std::current_exception();
  }
  co_await home;  // the task may have finished on another thread (Runtime::schedule())
  driver->op_finished();
  c->complete(true, std::move(error), slot);
}

// Mode 2: runs on a Runtime worker (spawned there).
template <typename T>
Task<void> run_on_worker(std::shared_ptr<CompletionBase<T>> c, Task<T> task) {
  std::exception_ptr error;
  typename Slot<T>::type slot;
  try {
    co_await await_into<T>(std::move(task), slot);
  } catch (...) {
    error = std::current_exception();
  }
  c->complete(false, std::move(error), slot);
}

template <typename T>
struct Initiate {
  template <typename Handler>
  void operator()(Handler&& handler, AsioRunner runner, Task<T> task) const {
    using H = std::decay_t<Handler>;
    using C = Completion<H, T>;
    AsioDriver* driver = runner.driver();
    if (driver != nullptr && driver != current_driver()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "corobtree asio: an AsioRunner::this_thread() runner used on another thread "
                  "(or after its AsioDriver died)");
    }
    std::shared_ptr<CompletionBase<T>> c =
        std::make_shared<C>(std::forward<Handler>(handler), runner.default_executor());
    if (driver != nullptr) {
      // Start it here: a cached read may finish at once (its handler is
      // posted all the same); otherwise the driver must watch for its wake-up.
      Detached d = run_on_driver<T>(c, std::move(task), driver, driver->home());
      driver->op_started();
      d.handle.resume();
      // Always (coalesced): even when it finished here, it may have made
      // other coroutines of this thread ready (released a lock, set an event),
      // and the driver may be parked in its wait for the eventfd.
      driver->kick();
      return;
    }
    try {
      runner.runtime()->spawn(run_on_worker<T>(c, std::move(task)));
    } catch (...) {  // the runtime is stopping (kClosed)
      typename Slot<T>::type none;
      c->complete(true, std::current_exception(), none);
    }
  }
};

// The database operations as tasks that own their arguments.
// NOLINTBEGIN(cppcoreguidelines-avoid-reference-coroutine-parameters): the
// Database outlives the operation (a documented requirement).
inline Task<std::optional<std::string>> get_task(Database& db, std::string key) {
  std::optional<std::string> v = co_await db.get(key);
  co_return v;
}
inline Task<void> put_task(Database& db, std::string key, std::string value) {
  co_await db.put(key, value);
}
inline Task<bool> erase_task(Database& db, std::string key) {
  const bool existed = co_await db.erase(key);
  co_return existed;
}
inline Task<void> write_task(Database& db, WriteBatch batch) { co_await db.write(batch); }
inline Task<std::vector<std::pair<std::string, std::string>>> scan_task(Database& db,
                                                                        ScanOptions opts,
                                                                        std::size_t limit) {
  std::vector<std::pair<std::string, std::string>> v = co_await db.scan(std::move(opts), limit);
  co_return v;
}
// NOLINTEND(cppcoreguidelines-avoid-reference-coroutine-parameters)

}  // namespace detail::asio_adapter

// Runs `task` where `runner` says and completes `token` with
// (std::exception_ptr, T) (void: (std::exception_ptr)).
// REQUIRES: T is void or default-constructible.
template <typename T, typename Token>
auto async_run(AsioRunner runner, Task<T> task, Token&& token) {
  static_assert(std::is_void_v<T> || std::default_initializable<T>,
                "async_run: the task's result must be default-constructible");
  return asio::async_initiate<Token, typename detail::asio_adapter::Signature<T>::type>(
      detail::asio_adapter::Initiate<T>{}, token, std::move(runner), std::move(task));
}

// Database::get: (std::exception_ptr, std::optional<std::string>).
template <typename Token>
auto async_get(AsioRunner runner, Database& db, std::string key, Token&& token) {
  return async_run(std::move(runner), detail::asio_adapter::get_task(db, std::move(key)),
                   std::forward<Token>(token));
}
// Database::put: (std::exception_ptr).
template <typename Token>
auto async_put(AsioRunner runner, Database& db, std::string key, std::string value, Token&& token) {
  return async_run(std::move(runner),
                   detail::asio_adapter::put_task(db, std::move(key), std::move(value)),
                   std::forward<Token>(token));
}
// Database::erase: (std::exception_ptr, bool existed).
template <typename Token>
auto async_erase(AsioRunner runner, Database& db, std::string key, Token&& token) {
  return async_run(std::move(runner), detail::asio_adapter::erase_task(db, std::move(key)),
                   std::forward<Token>(token));
}
// Database::write (one atomic batch): (std::exception_ptr).
template <typename Token>
auto async_write(AsioRunner runner, Database& db, WriteBatch batch, Token&& token) {
  return async_run(std::move(runner), detail::asio_adapter::write_task(db, std::move(batch)),
                   std::forward<Token>(token));
}
// Database::scan: (std::exception_ptr, std::vector<std::pair<std::string, std::string>>).
template <typename Token>
auto async_scan(AsioRunner runner, Database& db, ScanOptions opts, std::size_t limit,
                Token&& token) {
  return async_run(std::move(runner), detail::asio_adapter::scan_task(db, std::move(opts), limit),
                   std::forward<Token>(token));
}

}  // namespace corobtree
