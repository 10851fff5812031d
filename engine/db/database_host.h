// DatabaseHost: what makes one Database usable from any thread at once (the
// model is in docs/engine.md, "Threads").
//
// The engine (DatabaseImpl: pool, tree, log, checkpoints) runs on one thread
// of its own, the engine thread: a one-worker Runtime that the host starts
// with the database and joins when it is destroyed. Every call that may wait
// (a write, a miss, a checkpoint, a cursor step) hops onto it, runs there with
// the engine's coroutine concurrency (misses of all threads share reads and
// keep dozens in flight on the engine's ring; commits of all threads share one
// fsync), and hops back: the caller resumes on its own thread, never on the
// engine's. Point lookups and forward scans first try the lock-free path
// (engine/btree/optimistic_read.h) on the calling thread, which serves cached
// data without touching the engine thread, any lock or any shared cache line
// but the frames' own; only what it cannot serve takes the hop.
//
// Calls in flight: a call counts itself (detail::InFlight) from the moment its
// task starts (an awaitable's: its await_ready) until its engine part is over
// (in a slot of the calling thread's, so counting writes no cache line shared
// between threads), and the destructor waits for the count to drain before it
// destroys the engine on its thread. The count ends on the engine thread,
// before the hop back: a destructor on the caller's own thread, which blocks
// that hop, still returns. A call that starts while the destructor runs
// throws Error(kClosed).
// REQUIRES: a task returned by a call is started before the database is
// destroyed (like any reference it holds).
//
// Thread-safety: every member may be called from any thread, concurrently,
// except the destructor (once, from a thread that is not the engine's).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <corobtree/in_flight.h>
#include <corobtree/runtime.h>
#include <corobtree/stats.h>
#include <corobtree/task.h>
#include "engine/db/database_impl.h"
#include "io/scheduler.h"

namespace corobtree {

class DatabaseHost {
 public:
  // Starts the engine thread and opens the database on it.
  static Task<std::unique_ptr<DatabaseHost>> open(std::string path, Options options);
  // Waits for the calls in flight, then destroys the engine (on its thread)
  // and joins the thread. Writes nothing (see ~Database).
  ~DatabaseHost();
  DatabaseHost(const DatabaseHost&) = delete;
  DatabaseHost& operator=(const DatabaseHost&) = delete;

  Task<std::optional<std::string>> get(std::string_view key);
  // The lock-free part of a get, on the calling thread: true when it served
  // the call (`found`, and `value` assigned when found); false when the
  // engine must (the page is not cached, an overflow value, a conflict).
  bool try_get_cached(std::string_view key, std::string& value, bool& found);
  // try_get_cached with the value pinned instead of copied (on a miss the
  // guard is reset).
  bool try_get_pinned(std::string_view key, PinnedValue& value, bool& found);
  // try_get_cached for a call already counted (`call`).
  bool get_cached(const detail::InFlight& call, std::string_view key, std::string& value,
                  bool& found);
  // Counts a call in `call`, then get_cached; a hit ends the count (true).
  bool enter_get_cached(detail::InFlight& call, std::string_view key, std::string& value,
                        bool& found);
  // A get into `value` through the engine thread (after get_cached failed),
  // which takes over the call's count.
  Task<bool> get_from_engine(detail::InFlight call, std::string_view key, std::string& value);
  Task<std::vector<std::pair<std::string, std::string>>> scan(ScanOptions options,
                                                              std::size_t limit);
  // The lock-free part of scan() on the calling thread (counted while it runs).
  bool try_scan_cached(const ScanOptions& options, std::size_t limit,
                       std::vector<std::pair<std::string, std::string>>& out);

  // The lock-free part of a cursor step of a counted call, on the calling
  // thread: true when the cursor's leaf copy or (forward cursors) the cached
  // pages served it, with the answer in `moved`.
  bool try_cursor_step(const detail::InFlight& call, TreeCursor* cursor,
                       DatabaseImpl::CursorStep step, std::string_view key, bool& moved);
  // The step on the engine thread, which takes over the call's count.
  Task<bool> cursor_step_on_engine(detail::InFlight call, TreeCursor* cursor,
                                   DatabaseImpl::CursorStep step, std::string_view key);
  // Runs (obj->*fn)(args...) on the engine thread, the calling coroutine
  // resuming on its own thread with the result. The arguments are stored by
  // value (pass std::cref for a large argument the caller keeps alive).
  template <typename Obj, typename T, typename... Params, typename... Args>
  Task<T> run(Obj* obj, Task<T> (Obj::*fn)(Params...), Args... args) {
    return run_on_engine(detail::InFlight(), false, obj, fn, std::move(args)...);
  }
  // run() for a call that commits: with Durability::kSync the caller's
  // thread sleeps at once while it waits (Scheduler::LongWait), since the
  // answer comes after an fsync.
  template <typename Obj, typename T, typename... Params, typename... Args>
  Task<T> run_commit(Obj* obj, Task<T> (Obj::*fn)(Params...), Args... args) {
    return run_on_engine(detail::InFlight(), impl_->durable_commits(), obj, fn, std::move(args)...);
  }

  // On the engine thread, waiting (the calling thread blocks) for the answer.
  DatabaseStats stats();
  std::uint64_t count() const noexcept { return impl_->tree().published_keys(); }
  std::uint32_t max_key_size() const noexcept { return impl_->max_key_size(); }
  const std::string& path() const noexcept { return impl_->path(); }
  DatabaseImpl& impl() noexcept { return *impl_; }

 private:
  static constexpr std::size_t kSlots = 64;
  struct alignas(64) Slot {
    std::atomic<std::int64_t> calls{0};
  };

  friend class detail::InFlight;  // counts in slots_, looks at closing_

  DatabaseHost();
  // run() of a call counted by `call` (an empty one: counted from the start).
  template <typename Obj, typename T, typename... Params, typename... Args>
  Task<T> run_on_engine(detail::InFlight call, bool long_wait, Obj* obj,
                        Task<T> (Obj::*fn)(Params...), Args... args);
  void wait_for_calls() noexcept;
  // Runs fn on the engine thread while the calling thread blocks for it to
  // end; rethrows what fn threw. The engine never waits for a caller, so this
  // cannot deadlock. REQUIRES: not called on the engine thread.
  void block_on_engine(std::function<void()> fn);

  std::unique_ptr<Runtime> engine_;
  std::unique_ptr<DatabaseImpl> impl_;
  std::atomic<bool> closing_{false};
  std::array<Slot, kSlots> slots_;
};

template <typename Obj, typename T, typename... Params, typename... Args>
Task<T> DatabaseHost::run_on_engine(detail::InFlight call, bool long_wait, Obj* obj,
                                    Task<T> (Obj::*fn)(Params...), Args... args) {
  if (!call.counts()) call = detail::InFlight(*this);
  const Scheduler::LongWait hint(long_wait);  // ends after the hop home, on this thread
  detail::Inbox* const home = detail::this_thread_home();
  co_await engine_->schedule();
  std::exception_ptr error;
  std::conditional_t<std::is_void_v<T>, bool, std::optional<T>> value{};
  try {
    Task<T> op = (obj->*fn)(args...);
    if constexpr (std::is_void_v<T>) {
      co_await std::move(op);
    } else {
      T v = co_await std::move(op);
      value.emplace(std::move(v));
    }
  } catch (...) {
    error = std::current_exception();
  }
  call.release();  // the destructor may go on once the engine's part is over
  co_await detail::HopHome(home);
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) co_return std::move(*value);
}

}  // namespace corobtree
