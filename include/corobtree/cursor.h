// Cursor: ordered iteration over a key range of a Database, forward or reverse.
//
//   corobtree::Cursor c = db->cursor({.lower = "a", .upper = "m"});   // [a, m)
//   for (bool ok = co_await c.first(); ok; ok = co_await c.next()) use(c.key(), c.value());
//
// A cursor holds no latch between calls: it works on a private copy of one
// leaf, or (lock-free moves on cached pages) on the leaf's bytes in the pool,
// pinned so that writers move the page elsewhere rather than change them
// (docs/engine.md, "Zero-copy cursors"); so each leaf is seen in a consistent
// state and an idle cursor never blocks a writer; a key inserted or erased
// concurrently may or may not be seen. key() and value() stay valid until the
// cursor moves.
//
// Thread-safety: one task at a time, on any thread. Steps within the cursor's
// leaf copy (done inline, touching only the cursor), and forward cursors'
// seeks and moves to the next leaf when the pages are cached, run on the
// calling thread without a lock; the others run on the database's engine
// thread. On a cold tree, a cursor that moves from leaf to leaf reads the
// next leaves ahead (Options::readahead_leaves). REQUIRES: the Database
// outlives the cursor.
#pragma once

#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <corobtree/export.h>
#include <corobtree/in_flight.h>
#include <corobtree/task.h>

namespace corobtree {

struct ScanOptions {
  std::optional<std::string> lower;  // inclusive; none = from the first key
  std::optional<std::string> upper;  // exclusive; none = to the last key
  bool reverse = false;              // next() walks downwards
};

class TreeCursor;
class DatabaseHost;

namespace detail {

// One entry of a cursor's leaf copy, decoded once per leaf.
struct CursorEntry {
  std::string_view key;
  std::string_view value;
};

// What a Cursor's inline steps read and move: the decoded entries of its
// leaf copy (owned by the TreeCursor) and the slots [lo, hi] that a step may
// reach without the engine: in bounds, with every key of the copy in order.
// A step that stays in there touches only the cursor's memory, so it is not
// counted as a call in flight (the Database outlives the cursor anyway).
struct CursorWindow {
  const CursorEntry* entries = nullptr;
  std::uint32_t pos = 0;
  std::uint32_t lo = 1;  // lo > hi: no inline step
  std::uint32_t hi = 0;
  bool valid = false;
  bool forward = true;  // next() moves to larger keys
};

}  // namespace detail

class COROBTREE_EXPORT Cursor {
 public:
  // Made by Database::cursor.
  Cursor(std::unique_ptr<TreeCursor> impl, DatabaseHost* host) noexcept;
  Cursor(Cursor&&) noexcept;
  Cursor& operator=(Cursor&&) noexcept;
  ~Cursor();

  // Each move returns an awaitable (co_await it at once, once; sync_wait takes
  // it too) for whether the cursor is positioned on an entry. A move served
  // by the cursor's leaf copy or the cached pages completes without
  // suspending and allocates nothing.
  class Move;
  // Positions at the first entry in scan order (the last one if reverse).
  Move first();
  // Positions at the first entry >= key (reverse: the last entry <= key), within bounds.
  // `key` must stay valid until the move is awaited.
  Move seek(std::string_view key);
  // Moves one entry in scan order; false at the end (the cursor becomes invalid).
  Move next();
  // Moves one entry against scan order.
  Move prev();
  bool valid() const noexcept { return window_->valid; }
  // Empty when the cursor is not valid.
  std::string_view key() const noexcept {
    return window_->valid ? window_->entries[window_->pos].key : std::string_view();
  }
  std::string_view value() const noexcept {
    return window_->valid ? window_->entries[window_->pos].value : std::string_view();
  }

 private:
  enum class Step : unsigned char { kFirst, kSeek, kNext, kPrev };
  // A next() or prev() within the window (true: done, the cursor is on an
  // entry), or of an invalid cursor (`moved` false).
  bool step_inline(Step step, bool& moved) noexcept {
    detail::CursorWindow& w = *window_;
    if (step != Step::kNext && step != Step::kPrev) return false;
    if (!w.valid) {
      moved = false;
      return true;
    }
    if ((step == Step::kNext) == w.forward) {
      if (w.pos >= w.hi || w.pos < w.lo) return false;
      ++w.pos;
    } else {
      if (w.pos <= w.lo || w.pos > w.hi) return false;
      --w.pos;
    }
    moved = true;
    return true;
  }
  // Counts a move as in flight (see corobtree/in_flight.h); throws
  // Error(kClosed) once the Database's destructor started.
  detail::InFlight enter();
  // The lock-free part of a counted move (true: served, `moved` is the answer).
  bool try_cached(const detail::InFlight& call, Step step, std::string_view key, bool& moved);
  // The move on the database's engine thread, which takes over the count.
  Task<bool> on_engine(detail::InFlight call, Step step, std::string_view key);

  std::unique_ptr<TreeCursor> impl_;
  detail::CursorWindow* window_;  // impl_'s
  DatabaseHost* host_;            // where the cursor's steps run
};

class [[nodiscard]] Cursor::Move {
 public:
  // A step within the cursor's leaf copy is done here; any other move counts
  // as in flight from here.
  bool await_ready() {
    if (cursor_->step_inline(step_, moved_)) return true;
    call_ = cursor_->enter();
    if (!cursor_->try_cached(call_, step_, key_, moved_)) return false;
    call_.release();
    return true;
  }
  bool await_suspend(std::coroutine_handle<> awaiting) {
    task_ = cursor_->on_engine(std::move(call_), step_, key_);
    engine_.emplace(std::move(task_).operator co_await());
    return engine_->await_suspend(awaiting);
  }
  bool await_resume() { return engine_ ? engine_->await_resume() : moved_; }

 private:
  friend class Cursor;
  Move(Cursor* cursor, Step step, std::string_view key) noexcept
      : cursor_(cursor), step_(step), key_(key) {}

  Cursor* cursor_;
  Step step_;
  std::string_view key_;
  bool moved_ = false;
  detail::InFlight call_;
  Task<bool> task_;
  std::optional<Task<bool>::Awaiter> engine_;
};

inline Cursor::Move Cursor::first() { return Move(this, Step::kFirst, {}); }
inline Cursor::Move Cursor::seek(std::string_view key) { return Move(this, Step::kSeek, key); }
inline Cursor::Move Cursor::next() { return Move(this, Step::kNext, {}); }
inline Cursor::Move Cursor::prev() { return Move(this, Step::kPrev, {}); }

}  // namespace corobtree
