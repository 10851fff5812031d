#include "engine/btree/tree_cursor.h"

#include "engine/btree/optimistic_read.h"
#include "engine/pager/buffer_pool.h"
#include "engine/pager/view_pins.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <corobtree/error.h>

namespace corobtree {

using Mode = AsyncSharedMutex::Mode;

TreeCursor::TreeCursor(BTree& tree, ScanOptions options, std::uint32_t readahead)
    : tree_(tree), options_(std::move(options)), readahead_(readahead) {
  win_.forward = !options_.reverse;
  pins_ = tree.pool().view_pins();
}

TreeCursor::~TreeCursor() { unpin(); }

void TreeCursor::unpin() noexcept {
  if (pin_ != ViewPins::kNoSlot) pins_->release(std::exchange(pin_, ViewPins::kNoSlot));
}

void TreeCursor::fail(const std::string& why) {
  win_.valid = false;
  tree_.corrupt(leaf_id_, why);
}

void TreeCursor::decode() {
  const Node n(leaf_);
  const std::uint32_t count = n.count();
  entries_.resize(count);
  const std::byte* const p = leaf_.data();
  const char* const c = reinterpret_cast<const char*>(p);
  bool ordered = true;
  for (std::uint32_t i = 0; i < count; ++i) {
    // Node::key and Node::value, inline (a page the engine or a validated
    // lock-free copy checked).
    const std::uint32_t off = n.cell_offset(i);
    const std::uint32_t klen = LeafCell::KeyLength::get(p + off);
    const std::uint32_t at = off + LeafCell::kFixed;
    detail::CursorEntry& e = entries_[i];
    e.key = std::string_view(c + at, klen);
    if ((LeafCell::Flags::get(p + off) & LeafCell::kOverflow) != 0) {
      e.value = overflow_values_[i];
    } else {
      e.value = std::string_view(c + at + klen, LeafCell::ValueLength::get(p + off));
    }
    if (i > 0 && compare_keys(entries_[i - 1].key, e.key) >= 0) ordered = false;
  }
  win_.entries = entries_.data();
  // Inline steps only where the engine's per-step checks would pass: keys in
  // order (else the engine's path reports the damage) and within bounds.
  std::uint32_t lo = 0;
  std::uint32_t end = count;
  if (options_.lower) lo = n.lower_bound(*options_.lower);
  if (options_.upper) end = n.lower_bound(*options_.upper);
  if (!ordered || end == 0 || lo >= end) {
    win_.lo = 1;
    win_.hi = 0;
  } else {
    win_.lo = lo;
    win_.hi = end - 1;
  }
}

Task<void> TreeCursor::snapshot(BTree::Latched& leaf) {
  const auto bytes = leaf.page.data();
  page_.assign(bytes.begin(), bytes.end());
  leaf_ = std::span<std::byte>(page_);
  unpin();  // the views into the pinned leaf are gone with entries_' next decode
  leaf_id_ = leaf.page.page_id();
  win_.valid = false;  // until decoded
  Node n(std::span<std::byte>(page_.data(), page_.size()));
  overflow_values_.clear();
  for (std::uint32_t i = 0; i < n.count(); ++i) {
    if (!n.value(i).overflow) continue;
    if (overflow_values_.empty()) overflow_values_.resize(n.count());
    // Under the leaf latch: the chain is stable.
    std::string v = co_await tree_.read_value(n, leaf_id_, i);
    overflow_values_[i] = std::move(v);
  }
  decode();
}

void TreeCursor::read_ahead(std::string_view key, bool at_end, bool reverse) {
  readahead_trigger_ = kInvalidBlockId;
  BufferPool& pool = tree_.pool();
  const std::size_t cap = std::min<std::size_t>(readahead_, pool.pool_pages() / 8);
  if (cap == 0) return;
  // The window starts small (a short scan reads little more than it needs)
  // and doubles with each window that starts reads, up to `cap`.
  const std::size_t window = std::min(cap, ra_window_ == 0 ? kFirstWindow : 2 * ra_window_);
  if (optimistic_leaves_near(tree_, key, at_end, reverse, window, ahead_, parents_) !=
      Optimistic::kDone) {
    return;
  }
  // The parents after the list are not cached (a cold scan reaches them only
  // when it gets there), so the list cannot go on into them: read them too,
  // once the cursor is past its first window (a short scan reads no more
  // than it needs), so that later windows go on into them and the reads do
  // not run dry at every parent.
  if (window <= kFirstWindow) parents_.clear();
  for (std::size_t i = 0; i < parents_.size();) {  // consecutive pages as one read
    std::size_t j = i + 1;
    while (j < parents_.size() && parents_[j] == parents_[j - 1] + 1) ++j;
    pool.prefetch(parents_[i], static_cast<std::uint32_t>(j - i));
    i = j;
  }
  // Consecutive blocks (the layout bulk_load and compact leave) go as one
  // read per run of up to kMaxRun pages; a reverse list descends.
  constexpr std::size_t kMaxRun = 64;
  bool started = false;
  for (std::size_t i = 0; i < ahead_.size();) {
    std::size_t j = i + 1;
    while (j < ahead_.size() && j - i < kMaxRun &&
           ahead_[j] == (reverse ? ahead_[j - 1] - 1 : ahead_[j - 1] + 1)) {
      ++j;
    }
    const BlockId lowest = reverse ? ahead_[j - 1] : ahead_[i];
    started = pool.prefetch(lowest, static_cast<std::uint32_t>(j - i)) > 0 || started;
    i = j;
  }
  // The reads of the last window may still be in flight although this one
  // started none: keep triggering until two windows in a row started nothing.
  idle_windows_ = started || !parents_.empty() ? 0 : idle_windows_ + 1;
  ra_window_ = idle_windows_ < 2 ? window : 0;
  if (idle_windows_ < 2 && !reverse && !ahead_.empty()) {
    readahead_trigger_ = ahead_[ahead_.size() / 4];
  }
}

bool TreeCursor::in_bounds() noexcept {
  if (!win_.valid) return false;
  const std::string_view k = key();
  if (options_.lower && k < *options_.lower) win_.valid = false;
  if (options_.upper && k >= *options_.upper) win_.valid = false;
  if (!win_.valid) unpin();  // past the bounds: nothing views the leaf any more
  return win_.valid;
}

Task<bool> TreeCursor::seek_ge(std::string_view key) {
  // No compaction swaps the file while this seek reads it (BTree::read_gate).
  const AsyncSharedMutex::Guard gate = co_await tree_.read_gate_.scoped_lock_shared();
  BTree::Latched leaf;
  if (!tree_.try_descend_cached(key, leaf)) leaf = co_await tree_.descend_shared(key);
  std::uint32_t pos = Node(leaf.page.data()).lower_bound(key);
  // Keys >= key may start in a later leaf: couple latches rightwards (past
  // empty leaves, at most as many as the file has pages).
  std::uint64_t hops = 0;
  while (pos == Node(leaf.page.data()).count()) {
    const BlockId from = leaf.page.page_id();
    const BlockId next = Node(leaf.page.data()).next();
    if (next == kInvalidBlockId) {
      win_.valid = false;
      unpin();
      co_return false;
    }
    tree_.check_link(from, next, "next leaf");
    if (next == from || ++hops > tree_.page_count()) tree_.corrupt(from, "the leaf chain loops");
    BTree::Latched right = co_await tree_.latch_page(next, Mode::kShared);
    tree_.expect_type(right.page, from, PageType::kLeaf, "next leaf");
    leaf = std::move(right);
    pos = 0;
  }
  co_await snapshot(leaf);
  win_.pos = pos;
  win_.valid = true;
  co_return true;
}

Task<bool> TreeCursor::seek_gt(std::string_view key) {
  std::string probe(key);
  probe.push_back('\0');  // the smallest key greater than `key`
  const bool ok = co_await seek_ge(probe);
  co_return ok;
}

// The last entry < key: descend keeping the whole path latched (shared, top
// down), then back up to the nearest ancestor with a left neighbour if the
// leaf holds no smaller key.
Task<bool> TreeCursor::seek_lt(std::string_view key, bool unbounded) {
  const AsyncSharedMutex::Guard gate = co_await tree_.read_gate_.scoped_lock_shared();
  std::vector<BTree::Latched> path;
  AsyncSharedMutex::Guard root_guard = co_await tree_.root_latch_.scoped_lock_shared();
  const BlockId root_id = tree_.state_.root;
  const std::uint32_t height = tree_.state_.height;  // levels below a node never change
  tree_.check_tree_state(root_id, height);
  BTree::Latched root = co_await tree_.latch_page(root_id, Mode::kShared);
  root_guard.unlock();
  tree_.expect_node(root.page, root_id, 0, height);
  path.push_back(std::move(root));
  // Walk down: into the child that may hold the largest key < key. Every
  // node is type-checked for its depth, so the path ends at a leaf after
  // `height` nodes.
  while (path.size() < height) {
    Node n(path.back().page.data());
    const std::uint32_t idx = unbounded ? n.count() : n.lower_bound(key);
    path.back().child_idx = idx;
    const BlockId from = path.back().page.page_id();
    const BlockId child_id = tree_.checked_child(path, idx);
    BTree::Latched child = co_await tree_.latch_page(child_id, Mode::kShared);
    tree_.expect_node(child.page, from, static_cast<std::uint32_t>(path.size()), height);
    path.push_back(std::move(child));
  }
  for (;;) {
    Node leaf(path.back().page.data());
    const std::uint32_t pos = unbounded ? leaf.count() : leaf.lower_bound(key);
    if (pos > 0) {
      co_await snapshot(path.back());
      win_.pos = pos - 1;
      win_.valid = true;
      co_return true;
    }
    // Nothing smaller here: go up to an ancestor where we can step left.
    path.pop_back();
    while (!path.empty() && path.back().child_idx == 0) path.pop_back();
    if (path.empty()) {
      win_.valid = false;
      unpin();
      co_return false;
    }
    // Then down the rightmost edge of the left neighbour subtree.
    std::uint32_t idx = --path.back().child_idx;
    for (;;) {
      const BlockId from = path.back().page.page_id();
      const BlockId child_id = tree_.checked_child(path, idx);
      BTree::Latched child = co_await tree_.latch_page(child_id, Mode::kShared);
      tree_.expect_node(child.page, from, static_cast<std::uint32_t>(path.size()), height);
      path.push_back(std::move(child));
      if (path.size() == height) break;  // a leaf
      Node c(path.back().page.data());
      idx = c.count();
      path.back().child_idx = idx;
    }
    unbounded = true;  // every key in that subtree is < key
  }
}

Task<bool> TreeCursor::step_up() {
  if (!win_.valid) co_return false;
  if (win_.pos + 1 < entries_.size()) {
    if (compare_keys(entries_[win_.pos].key, entries_[win_.pos + 1].key) >= 0) [[unlikely]] {
      fail("keys out of order at slot " + std::to_string(win_.pos + 1));
    }
    ++win_.pos;
    co_return true;
  }
  const std::string last(key());
  read_ahead(last, /*at_end=*/false, /*reverse=*/false);
  const bool ok = co_await seek_gt(last);
  if (ok && compare_keys(last, key()) >= 0) [[unlikely]] {
    fail("a forward step did not move past the previous key (keys out of order)");
  }
  co_return ok;
}

Task<bool> TreeCursor::step_down() {
  if (!win_.valid) co_return false;
  if (win_.pos > 0) {
    if (compare_keys(entries_[win_.pos - 1].key, entries_[win_.pos].key) >= 0) [[unlikely]] {
      fail("keys out of order at slot " + std::to_string(win_.pos));
    }
    --win_.pos;
    co_return true;
  }
  const std::string first_key(key());
  read_ahead(first_key, /*at_end=*/false, /*reverse=*/true);
  const bool ok = co_await seek_lt(first_key, false);
  if (ok && compare_keys(key(), first_key) >= 0) [[unlikely]] {
    fail("a backward step did not move before the previous key (keys out of order)");
  }
  co_return ok;
}

Task<bool> TreeCursor::first() {
  copy_seq_.reset();  // the engine's path makes the copy
  bool ok;
  if (!options_.reverse) {
    const std::string from = options_.lower.value_or(std::string());
    ok = co_await seek_ge(from);
  } else if (options_.upper) {
    const std::string to = *options_.upper;
    ok = co_await seek_lt(to, false);
  } else {
    const std::string_view none;
    ok = co_await seek_lt(none, true);
  }
  co_return ok&& in_bounds();
}

Task<bool> TreeCursor::seek(std::string_view key) {
  copy_seq_.reset();  // the engine's path makes the copy
  bool ok;
  if (!options_.reverse) {
    std::string from(key);
    if (options_.lower && from < *options_.lower) from = *options_.lower;
    ok = co_await seek_ge(from);
  } else {
    std::string probe(key);
    probe.push_back('\0');  // last entry <= key == last entry < key + "\0"
    if (options_.upper && probe > *options_.upper) probe = *options_.upper;
    ok = co_await seek_lt(probe, false);
  }
  co_return ok&& in_bounds();
}

Task<bool> TreeCursor::next() {
  copy_seq_.reset();  // the engine's path makes the copy
  bool ok;
  if (options_.reverse) {
    ok = co_await step_down();
  } else {
    ok = co_await step_up();
  }
  co_return ok&& in_bounds();
}

Task<bool> TreeCursor::prev() {
  copy_seq_.reset();  // the engine's path makes the copy
  bool ok;
  if (options_.reverse) {
    ok = co_await step_up();
  } else {
    ok = co_await step_down();
  }
  co_return ok&& in_bounds();
}

bool TreeCursor::install_copy(Optimistic result, LeafCopy& copy, bool& moved) {
  if (result != Optimistic::kDone) {
    spare_ = std::move(copy.page);
    return false;
  }
  if (!copy.found) {
    spare_ = std::move(copy.page);
    win_.valid = false;
    unpin();
    copy_seq_.reset();
    moved = false;
    return true;
  }
  // The previous leaf's views die here: its pin (if any) goes.
  unpin();
  if (copy.slot != ViewPins::kNoSlot) {
    pin_ = copy.slot;
    leaf_ = std::span<std::byte>(copy.data, tree_.pool().page_size());
    spare_ = std::move(copy.page);
  } else {
    spare_ = std::move(page_);
    page_ = std::move(copy.page);
    leaf_ = std::span<std::byte>(page_);
  }
  leaf_id_ = copy.leaf_id;
  copy_seq_ = copy.seq;
  overflow_values_.clear();  // the lock-free path takes no leaf with overflow values
  decode();
  win_.pos = copy.pos;
  win_.valid = true;
  moved = in_bounds();
  return true;
}

bool TreeCursor::try_seek_ge_cached(std::string_view key, bool& moved) {
  LeafCopy copy;
  copy.page = std::move(spare_);  // its capacity: no allocation
  copy.pins = pins_;
  const Optimistic result = optimistic_seek(tree_, key, copy);
  return install_copy(result, copy, moved);
}

bool TreeCursor::try_first_cached(bool& moved) {
  if (options_.reverse) return false;
  const std::string_view from = options_.lower ? std::string_view(*options_.lower) : "";
  return try_seek_ge_cached(from, moved);
}

bool TreeCursor::try_seek_cached(std::string_view key, bool& moved) {
  if (options_.reverse) return false;
  if (options_.lower && key < *options_.lower) key = *options_.lower;
  return try_seek_ge_cached(key, moved);
}

bool TreeCursor::try_step_in_copy(bool up, bool& moved) {
  if (!win_.valid) {
    moved = false;
    return true;
  }
  if (up ? win_.pos + 1 >= entries_.size() : win_.pos == 0) return false;  // another leaf
  const std::uint32_t lo = up ? win_.pos : win_.pos - 1;
  if (compare_keys(entries_[lo].key, entries_[lo + 1].key) >= 0) {
    return false;  // the engine's path reports it
  }
  win_.pos = up ? win_.pos + 1 : win_.pos - 1;
  moved = in_bounds();
  return true;
}

bool TreeCursor::try_next_cached(bool& moved) {
  if (options_.reverse) return try_step_in_copy(/*up=*/false, moved);
  if (try_step_in_copy(/*up=*/true, moved)) return true;
  // The next leaf: through the copy's right link while no writer has entered
  // the tree since the copy was made, else a fresh descent for the first key
  // after this one (like seek_gt).
  // Only from the copy's last entry: try_step_in_copy also declines keys out
  // of order within the copy, which the engine's path must report.
  // Onto read-ahead's trigger: the engine's path reads the next window ahead.
  if (readahead_trigger_ != kInvalidBlockId && win_.valid &&
      Node(leaf_).next() == readahead_trigger_) {
    return false;
  }
  if (copy_seq_ && win_.valid && win_.pos + 1 >= entries_.size()) {
    const BlockId next = Node(leaf_).next();
    const std::string_view last = key();  // the cursor's pin (if any) holds it
    LeafCopy copy;
    copy.page = std::move(spare_);
    copy.pins = pins_;
    const Optimistic result = optimistic_next_leaf(tree_, *copy_seq_, next, copy);
    if (result == Optimistic::kDone && copy.found) {
      const Node n(std::span<std::byte>(copy.data, tree_.pool().page_size()));
      if (compare_keys(last, n.key(copy.pos)) >= 0) {
        if (copy.slot != ViewPins::kNoSlot) pins_->release(copy.slot);
        spare_ = std::move(copy.page);
        fail("a forward step did not move past the previous key (keys out of order)");
      }
    }
    if (install_copy(result, copy, moved)) return true;
  }
  std::string probe(key());
  probe.push_back('\0');
  const std::string last(key());
  if (!try_seek_ge_cached(probe, moved)) return false;
  if (win_.valid && compare_keys(last, key()) >= 0) {
    fail("a forward step did not move past the previous key (keys out of order)");
  }
  return true;
}

bool TreeCursor::try_prev_cached(bool& moved) {
  return try_step_in_copy(/*up=*/options_.reverse, moved);
}

}  // namespace corobtree
