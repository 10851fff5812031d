#include "engine/db/database_host.h"

#include <chrono>
#include <functional>
#include <future>
#include <thread>

#include <corobtree/error.h>
#include "engine/btree/optimistic_read.h"
#include "engine/btree/tree_cursor.h"

namespace corobtree {
namespace {

// Each thread counts its calls in its own slot (distinct threads get distinct
// slots until there are more than kSlots of them).
std::size_t this_thread_slot(std::size_t slots) noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine % slots;
}

// block_on_engine's task (a coroutine function: its parameters live in its
// frame).
Task<void> run_and_signal(std::function<void()> fn, std::promise<void> done) {
  try {
    fn();
    done.set_value();
  } catch (...) {
    done.set_exception(std::current_exception());
  }
  co_return;
}

}  // namespace

detail::InFlight::InFlight(DatabaseHost& host)
    : slot_(&host.slots_[this_thread_slot(DatabaseHost::kSlots)].calls) {
  // Dekker with the destructor: count first, then look at closing_.
  slot_->fetch_add(1, std::memory_order_seq_cst);
  if (host.closing_.load(std::memory_order_seq_cst)) {
    release();
    throw Error(ErrorCode::kClosed, "the Database is being destroyed");
  }
}

DatabaseHost::DatabaseHost() : engine_(std::make_unique<Runtime>(1)) {}

Task<std::unique_ptr<DatabaseHost>> DatabaseHost::open(std::string path, Options options) {
  std::unique_ptr<DatabaseHost> host(new DatabaseHost());
  detail::Inbox* const home = detail::this_thread_home();
  co_await host->engine_->schedule();
  std::exception_ptr error;
  try {
    std::unique_ptr<DatabaseImpl> impl =
        co_await DatabaseImpl::open(std::move(path), std::move(options));
    host->impl_ = std::move(impl);
  } catch (...) {
    error = std::current_exception();
  }
  co_await detail::HopHome(home);
  // On failure the host dies here, on the calling thread: it joins the engine.
  if (error) std::rethrow_exception(error);
  co_return host;
}

void DatabaseHost::wait_for_calls() noexcept {
  closing_.store(true, std::memory_order_seq_cst);
  // Calls usually end within microseconds; a compaction or backup in flight
  // may take seconds: yield a while, then sleep between looks.
  int looks = 0;
  for (Slot& s : slots_) {
    while (s.calls.load(std::memory_order_seq_cst) != 0) {
      if (++looks < 1000) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
}

DatabaseHost::~DatabaseHost() {
  wait_for_calls();
  if (impl_) block_on_engine([this] { impl_.reset(); });
  engine_.reset();  // joins the engine thread
}

Task<std::optional<std::string>> DatabaseHost::get(std::string_view key) {
  detail::InFlight call(*this);  // handed to the engine's part on a miss
  std::string value;
  bool found = false;
  if (get_cached(call, key, value, found)) {
    co_return found ? std::optional<std::string>(std::move(value)) : std::nullopt;
  }
  Task<std::optional<std::string>> on_engine =
      run_on_engine(std::move(call), false, impl_.get(), &DatabaseImpl::get, key);
  std::optional<std::string> out = co_await std::move(on_engine);
  co_return out;
}

bool DatabaseHost::try_get_cached(std::string_view key, std::string& value, bool& found) {
  const detail::InFlight call(*this);
  return get_cached(call, key, value, found);
}

bool DatabaseHost::try_get_pinned(std::string_view key, PinnedValue& value, bool& found) {
  const detail::InFlight call(*this);
  impl_->tree().check_key(key);
  if (optimistic_get_pinned(impl_->tree(), key, value, found) != Optimistic::kDone) return false;
  if (!found) value.reset();
  return true;
}

bool DatabaseHost::enter_get_cached(detail::InFlight& call, std::string_view key,
                                    std::string& value, bool& found) {
  call = detail::InFlight(*this);
  if (!get_cached(call, key, value, found)) return false;
  call.release();
  return true;
}

bool DatabaseHost::get_cached(const detail::InFlight& /*call*/, std::string_view key,
                              std::string& value, bool& found) {
  impl_->tree().check_key(key);
  return optimistic_get(impl_->tree(), key, value, found) == Optimistic::kDone;
}

Task<bool> DatabaseHost::get_from_engine(detail::InFlight call, std::string_view key,
                                         std::string& value) {
  Task<std::optional<std::string>> on_engine =
      run_on_engine(std::move(call), false, impl_.get(), &DatabaseImpl::get, key);
  std::optional<std::string> v = co_await std::move(on_engine);
  if (!v) co_return false;
  value = std::move(*v);
  co_return true;
}

Task<std::vector<std::pair<std::string, std::string>>> DatabaseHost::scan(ScanOptions options,
                                                                          std::size_t limit) {
  detail::InFlight call(*this);  // handed to the engine's part on a miss
  std::vector<std::pair<std::string, std::string>> out;
  if (optimistic_scan(impl_->tree(), options, limit, out) == Optimistic::kDone) co_return out;
  Task<std::vector<std::pair<std::string, std::string>>> on_engine = run_on_engine(
      std::move(call), false, impl_.get(), &DatabaseImpl::scan, std::move(options), limit);
  out = co_await std::move(on_engine);
  co_return out;
}

bool DatabaseHost::try_scan_cached(const ScanOptions& options, std::size_t limit,
                                   std::vector<std::pair<std::string, std::string>>& out) {
  const detail::InFlight call(*this);
  return optimistic_scan(impl_->tree(), options, limit, out) == Optimistic::kDone;
}

bool DatabaseHost::try_cursor_step(const detail::InFlight& /*call*/, TreeCursor* cursor,
                                   DatabaseImpl::CursorStep step, std::string_view key,
                                   bool& moved) {
  // Closed or stopped: the engine's path says so.
  if (!impl_->tree().optimistic_enabled()) return false;
  switch (step) {
    case DatabaseImpl::CursorStep::kFirst: return cursor->try_first_cached(moved);
    case DatabaseImpl::CursorStep::kSeek: return cursor->try_seek_cached(key, moved);
    case DatabaseImpl::CursorStep::kNext: return cursor->try_next_cached(moved);
    case DatabaseImpl::CursorStep::kPrev: return cursor->try_prev_cached(moved);
  }
  return false;
}

Task<bool> DatabaseHost::cursor_step_on_engine(detail::InFlight call, TreeCursor* cursor,
                                               DatabaseImpl::CursorStep step,
                                               std::string_view key) {
  return run_on_engine(std::move(call), false, impl_.get(), &DatabaseImpl::cursor_step, cursor,
                       step, key);
}

DatabaseStats DatabaseHost::stats() {
  const detail::InFlight call(*this);
  DatabaseStats s;
  block_on_engine([&] { s = impl_->stats(); });
  return s;
}

void DatabaseHost::block_on_engine(std::function<void()> fn) {
  std::promise<void> done;
  std::future<void> ended = done.get_future();
  // The promise, not a flag on this stack: the engine's last touch of the
  // shared state is set_value itself, so this frame may end as soon as the
  // future is ready.
  engine_->spawn(run_and_signal(std::move(fn), std::move(done)));
  ended.get();
}

}  // namespace corobtree
