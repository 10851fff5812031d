// TreeCursor: ordered iteration over a key range of a BTree, forward or
// reverse; the engine behind the public Cursor (include/corobtree/cursor.h).
//
//   TreeCursor c(tree, {.lower = "a", .upper = "m"});   // [a, m)
//   for (bool ok = co_await c.first(); ok; ok = co_await c.next()) use(c.key(), c.value());
//
// A cursor holds no latch between calls: it works on a private copy of one
// leaf (taken under the leaf's shared latch, with any overflow values read
// then) or, on the lock-free path, on the leaf's buffer in the pool, pinned
// (ViewPins: writers move the page elsewhere instead of changing it), and
// moves to the neighbouring leaf by coupling latches left to right or,
// backwards, by a fresh descent. Each leaf is therefore seen in a
// consistent state, and concurrent writers are never blocked by an idle
// cursor; a key inserted or erased concurrently may or may not be seen.
// A compaction (Database::compact) between two calls is invisible: the next
// descent reads the packed tree; each seek holds BTree::read_gate() shared.
// key() and value() stay valid until the cursor moves.
//
// A file is not trusted: each step must reach a key strictly greater (in
// scan order: beyond) the previous one, and a walk along the leaf chain ends
// within the file's page count; otherwise Error(kCorruption).
//
// Thread-safety: one task at a time; the tree must outlive the cursor.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <corobtree/cursor.h>

#include "engine/btree/btree.h"
#include "engine/btree/optimistic_read.h"

namespace corobtree {

class TreeCursor {
 public:
  // `readahead`: leaves to read ahead of a cursor that moves from leaf to
  // leaf through pages that are not cached (0: none; see read_ahead()).
  TreeCursor(BTree& tree, ScanOptions options = {}, std::uint32_t readahead = 0);
  TreeCursor(const TreeCursor&) = delete;
  TreeCursor& operator=(const TreeCursor&) = delete;
  // Any thread, also after the tree is gone (releases the cursor's pin).
  ~TreeCursor();

  // Positions at the first entry in scan order (the last one if reverse).
  Task<bool> first();
  // Positions at the first entry >= key (reverse: the last entry <= key), within bounds.
  Task<bool> seek(std::string_view key);
  // Moves one entry in scan order; false at the end (the cursor becomes invalid).
  Task<bool> next();
  // Moves one entry against scan order.
  Task<bool> prev();

  // Lock-free forms for any thread (engine/btree/optimistic_read.h): the same
  // positioning from cached pages, or false (nothing changed) when the
  // engine's path must run (a page not cached, a value in overflow pages, a
  // reverse cursor's seek or move to another leaf, a writer kept
  // interfering). `moved` is what the Task form would have returned.
  bool try_first_cached(bool& moved);
  bool try_seek_cached(std::string_view key, bool& moved);
  bool try_next_cached(bool& moved);
  bool try_prev_cached(bool& moved);

  bool valid() const noexcept { return win_.valid; }
  std::string_view key() const noexcept { return entries_[win_.pos].key; }
  std::string_view value() const noexcept { return entries_[win_.pos].value; }
  // The decoded leaf copy and position, for the public Cursor's inline steps.
  detail::CursorWindow& window() noexcept { return win_; }

 private:
  Task<bool> seek_ge(std::string_view key);                  // first entry >= key
  Task<bool> seek_gt(std::string_view key);                  // first entry > key
  Task<bool> seek_lt(std::string_view key, bool unbounded);  // last entry < key (or last)
  Task<bool> step_up();                                      // to the next larger key
  Task<bool> step_down();                                    // to the next smaller key
  Task<void> snapshot(BTree::Latched& leaf);
  // Read-ahead, as the cursor leaves the leaf holding `key` (`at_end`: the
  // last leaf) in scan direction: asks the pool to read the next leaves
  // (those after it in its parent and the cached neighbours: 8 at first,
  // twice the last window's while reading ahead, at most
  // min(readahead_, pool / 8)) without waiting, and (past the first window)
  // the parents after the list that are not cached, so that later lists go
  // on through them. While windows start reads (this one or the one before)
  // or wait for such parents, the leaf a quarter into the window becomes
  // readahead_trigger_: the lock-free path hands the move onto it to the
  // engine, which reads the next window ahead, so reads stay in flight while
  // the cursor consumes cached leaves. Best effort: nothing here fails.
  void read_ahead(std::string_view key, bool at_end, bool reverse);
  // Decodes leaf_ (and overflow_values_) into entries_ and sets the window's
  // inline range. After every change of leaf_.
  void decode();
  // Releases the pin of the leaf the cursor was on (if any).
  void unpin() noexcept;
  bool in_bounds() noexcept;
  // One entry up or down within the leaf copy; false at its edge.
  bool try_step_in_copy(bool up, bool& moved);
  // Forward seek to the first entry >= key from cached pages.
  bool try_seek_ge_cached(std::string_view key, bool& moved);
  // Makes `copy` (a lock-free read's result) the cursor's leaf when `result`
  // is kDone; its buffer becomes spare_ otherwise. Returns whether it served.
  bool install_copy(Optimistic result, LeafCopy& copy, bool& moved);
  // Invalidates the cursor and throws Error(kCorruption) naming the current leaf.
  [[noreturn]] void fail(const std::string& why);

  BTree& tree_;
  ScanOptions options_;
  std::vector<std::byte> page_;  // copy of the current leaf (when not pinned)
  // The current leaf's bytes: page_, or (zero-copy, lock-free path) the
  // pool's buffer that pin_ names (engine/pager/view_pins.h): no writer
  // changes it until the cursor moves off the leaf and releases the pin.
  std::span<std::byte> leaf_;
  ViewPins* pins_ = nullptr;        // the pool's (null in direct mode)
  std::uint32_t pin_ = UINT32_MAX;  // ViewPins::kNoSlot: leaf_ is page_
  std::vector<std::byte> spare_;    // the previous copy's buffer, reused
  // The tree's write-window number the copy was validated under, when the
  // lock-free path made it (engine-path copies have none): while no writer
  // has entered since, the copy's right link still names the next leaf.
  std::optional<std::uint64_t> copy_seq_;
  std::vector<std::string> overflow_values_;  // per slot, when a value is in overflow pages
  std::vector<detail::CursorEntry> entries_;  // page_'s entries, decoded
  BlockId leaf_id_ = kInvalidBlockId;         // the leaf page_ copies
  detail::CursorWindow win_;                  // position (pos, valid) in entries_
  std::uint32_t readahead_;
  BlockId readahead_trigger_ = kInvalidBlockId;
  std::uint32_t idle_windows_ = 2;  // read-ahead windows in a row that started no read
  static constexpr std::size_t kFirstWindow = 8;
  std::size_t ra_window_ = 0;     // the last window's size while reading ahead (0: idle)
  std::vector<BlockId> ahead_;    // read_ahead()'s scratch: leaves
  std::vector<BlockId> parents_;  // and their parents not cached yet
};

}  // namespace corobtree
