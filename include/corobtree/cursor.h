// Cursor: ordered iteration over a key range of a Database, forward or reverse.
//
//   corobtree::Cursor c = db->cursor({.lower = "a", .upper = "m"});   // [a, m)
//   for (bool ok = co_await c.first(); ok; ok = co_await c.next()) use(c.key(), c.value());
//
// A cursor holds no latch between calls: it works on a private copy of one
// leaf, so each leaf is seen in a consistent state and an idle cursor never
// blocks a writer; a key inserted or erased concurrently may or may not be
// seen. key() and value() stay valid until the cursor moves.
//
// Thread-safety: one task at a time, on any thread. Steps within the cursor's
// leaf copy, and forward cursors' seeks and moves to the next leaf when the
// pages are cached, run on the calling thread without a lock; the others run
// on the database's engine thread. REQUIRES: the Database outlives the cursor.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <corobtree/export.h>
#include <corobtree/task.h>

namespace corobtree {

struct ScanOptions {
  std::optional<std::string> lower;  // inclusive; none = from the first key
  std::optional<std::string> upper;  // exclusive; none = to the last key
  bool reverse = false;              // next() walks downwards
};

class TreeCursor;
class DatabaseHost;

class COROBTREE_EXPORT Cursor {
 public:
  // Made by Database::cursor.
  Cursor(std::unique_ptr<TreeCursor> impl, DatabaseHost* host) noexcept;
  Cursor(Cursor&&) noexcept;
  Cursor& operator=(Cursor&&) noexcept;
  ~Cursor();

  // Positions at the first entry in scan order (the last one if reverse).
  Task<bool> first();
  // Positions at the first entry >= key (reverse: the last entry <= key), within bounds.
  Task<bool> seek(std::string_view key);
  // Moves one entry in scan order; false at the end (the cursor becomes invalid).
  Task<bool> next();
  // Moves one entry against scan order.
  Task<bool> prev();

  bool valid() const noexcept;
  std::string_view key() const noexcept;
  std::string_view value() const noexcept;

 private:
  std::unique_ptr<TreeCursor> impl_;
  DatabaseHost* host_;  // where the cursor's steps run
};

}  // namespace corobtree
