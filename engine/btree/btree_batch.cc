// BTree: a batch's operations in key order (apply_sorted_locked) and the
// prefetch hints for it.
#include <algorithm>
#include <utility>

#include "engine/btree/btree.h"

namespace corobtree {

using Mode = AsyncSharedMutex::Mode;

void BTree::prefetch_leaves(std::span<const SortedOp> ops) {
  prefetch_leaf_of_.assign(ops.size(), kInvalidBlockId);
  const BlockId root = state_.root;
  const std::uint32_t height = state_.height;
  if (height < 2 || height > kMaxHeight) return;
  std::vector<BlockId>& leaves = prefetch_ids_;
  leaves.clear();
  std::size_t at = 0;
  // The keys increase: while one stays below the upper bound of the previous
  // key's leaf parent, its leaf is a child of that parent (no walk from the root).
  const std::byte* parent = nullptr;
  std::string_view parent_upper;
  bool parent_bounded = false;
  for (const SortedOp& op : ops) {
    const std::size_t this_op = at++;
    if (parent != nullptr && parent_bounded && compare_keys(op.key, parent_upper) >= 0) {
      parent = nullptr;
    }
    if (parent == nullptr) {
      BlockId id = root;
      std::string_view upper;
      bool bounded = false;
      for (std::uint32_t depth = 0; depth + 1 < height; ++depth) {
        // A page in the pool passed page::verify() when it was read: a hint
        // only follows what such a page holds.
        const std::byte* p = pool_.peek(id);
        if (p == nullptr || page::type(p) != PageType::kInner) break;
        if (depth + 2 == height) {
          parent = p;
          parent_upper = upper;
          parent_bounded = bounded;
          break;
        }
        const Node n(std::span<std::byte>(const_cast<std::byte*>(p), page_size_));
        const std::uint32_t idx = n.child_index(op.key);
        if (idx < n.count()) {
          upper = n.key(idx);
          bounded = true;
        }
        id = n.child(idx);
      }
      if (parent == nullptr) continue;
    }
    const Node n(std::span<std::byte>(const_cast<std::byte*>(parent), page_size_));
    const BlockId id = n.child(n.child_index(op.key));
    prefetch_leaf_of_[this_op] = id;
    if (!leaves.empty() && leaves.back() == id) continue;
    pool_.prefetch_slot(id);
    leaves.push_back(id);
  }
  // The header and the slot array (the cells are where a search leads).
  for (const BlockId id : leaves) pool_.prefetch_page(id, 192);
}

void BTree::prefetch_probes(BlockId leaf) {
  if (leaf == kInvalidBlockId) return;
  const std::byte* p = pool_.peek(leaf);
  if (p == nullptr || page::type(p) != PageType::kLeaf) return;
  const Node n(std::span<std::byte>(const_cast<std::byte*>(p), page_size_));
  const std::uint32_t count = n.count();
  // The first three levels of lower_bound's binary search over [0, count).
  struct Range {
    std::uint32_t lo, hi;
  };
  Range ranges[7] = {{0, count}};
  std::uint32_t filled = 1;
  for (std::uint32_t r = 0; r < filled; ++r) {
    const auto [lo, hi] = ranges[r];
    if (lo >= hi) continue;
    const std::uint32_t mid = (lo + hi) / 2;
    const std::uint32_t off = n.cell_offset(mid);
    if (off < page_size_) __builtin_prefetch(p + off);
    if (filled + 2 <= 7) {
      ranges[filled++] = {lo, mid};
      ranges[filled++] = {mid + 1, hi};
    }
  }
}

bool BTree::put_in_leaf(Latched& leaf, std::span<const std::byte> cell, std::string_view key,
                        bool& shrank) {
  Node n(leaf.page.data());
  if (!leaf_fits(n, static_cast<std::uint32_t>(cell.size()))) return false;
  const std::uint32_t pos = n.lower_bound(key);
  const bool replace = pos < n.count() && n.key(pos) == key;
  if (replace && n.value(pos).overflow) return false;  // its chain is freed on the general path
  leaf.page.mark_dirty();
  if (replace) {
    n.remove(pos);
  } else {
    ++state_.key_count;
  }
  n.insert_cell(pos, cell);
  shrank = underflows(n) && leaf.page.page_id() != state_.root;
  return true;
}

// The path of a put is kept in `finger` across operations: the leaf's parent
// stays latched exclusively, and the next put whose key falls below the
// parent's upper bound descends one level from it instead of from the root.
// A put that splits its leaf adds a separator to the parent, so it goes that
// way only when the parent is safe for an insert (it cannot split, and its
// range stays what the bound says); otherwise it descends from the root, and
// the parent is kept afterwards only if it was safe. Other operations (an
// erase, a rebalance) descend from the root too, so they drop the finger
// first: a latched page is never latched again by the same task.
Task<bool> BTree::apply_sorted_locked(std::span<const SortedOp> ops) {
  const WriteWindow window(*this);
  bool changed = false;
  std::optional<std::string> upper;  // the latched leaf's exclusive upper bound
  Latched finger;
  std::optional<std::string> finger_upper;
  std::vector<Latched> path;
  path.reserve(8);
  std::vector<std::byte> scratch;        // an inline value's cell
  std::vector<std::byte> overflow_cell;  // or one whose value went to overflow pages
  constexpr std::size_t kPrefetchGroup = 64;
  constexpr std::size_t kProbeAhead = 8;  // operations between the two steps
  std::size_t prefetched = ops.size() < kPrefetchGroup / 2 ? ops.size() : 0;
  prefetch_leaf_of_.clear();  // none for a small batch
  std::size_t group = 0;      // the first operation of the group prefetch_leaf_of_ describes
  std::size_t i = 0;
  while (i < ops.size()) {
    if (i >= prefetched) {
      group = i;
      prefetched = std::min(ops.size(), i + kPrefetchGroup);
      prefetch_leaves(ops.subspan(i, prefetched - i));
    }
    if (i + kProbeAhead - group < prefetch_leaf_of_.size()) {
      prefetch_probes(prefetch_leaf_of_[i + kProbeAhead - group]);
    }
    const SortedOp& op = ops[i++];
    if (op.erase) {
      finger = Latched();
      const bool found = co_await erase_locked(op.key);
      if (found) changed = true;
      continue;
    }
    check_key(op.key);
    check_value(op.value);
    std::span<const std::byte> cell;
    if (Node::leaf_cell_size(op.key.size(), op.value.size()) <= max_cell_) {
      Node::leaf_cell_into(scratch, op.key, op.value);
      cell = scratch;
    } else {
      overflow_cell = co_await make_leaf_cell(op.key, op.value);
      cell = overflow_cell;
    }
    const auto cell_size = static_cast<std::uint32_t>(cell.size());
    path.clear();
    AsyncSharedMutex::Guard root_guard;
    std::optional<std::string> parent_upper;
    const bool below = !finger_upper || compare_keys(op.key, *finger_upper) < 0;
    if (finger.page && below) {
      // One level down from the finger: the leaf of a key in its range.
      path.push_back(std::exchange(finger, Latched()));
      parent_upper = std::exchange(finger_upper, std::nullopt);
      Node parent(path.back().page.data());
      const std::uint32_t idx = parent.child_index(op.key);
      path.back().child_idx = idx;
      if (idx < parent.count()) {
        upper.emplace(parent.key(idx));
      } else {
        upper = parent_upper;
      }
      const BlockId parent_id = path.back().page.page_id();
      const BlockId child_id = checked_child(path, idx);
      Latched leaf;
      if (!try_latch_cached(child_id, Mode::kExclusive, leaf)) {
        leaf = co_await latch_page(child_id, Mode::kExclusive);
      }
      expect_node(leaf.page, parent_id, state_.height - 1, state_.height);
      path.push_back(std::move(leaf));
      // A split of the leaf would add a separator to the parent: only where
      // it cannot split the parent too (the descent below keeps what that needs).
      if (!leaf_fits(Node(path.back().page.data()), cell_size) &&
          !safe_for_insert(parent, cell_size)) {
        path.clear();
      }
    } else {
      finger = Latched();
    }
    if (path.empty()) {
      co_await descend_exclusive(op.key, cell_size, path, root_guard, &upper, &parent_upper);
    }
    // Without a split the leaf keeps its range, bounded by `upper`; with the
    // parent safe, the parent keeps its range.
    const bool no_split = leaf_fits(Node(path.back().page.data()), cell_size);
    const bool parent_stays =
        path.size() >= 2 &&
        (no_split || safe_for_insert(Node(path[path.size() - 2].page.data()), cell_size));
    bool shrank = false;
    if (!put_in_leaf(path.back(), cell, op.key, shrank)) {
      shrank = co_await insert_into_leaf(path, cell, op.key);
    }
    changed = true;
    std::string_view last = op.key;
    // The run: puts of inline values that fit the latched leaf, no descent.
    while (no_split && !shrank && i < ops.size()) {
      const SortedOp& next = ops[i];
      if (next.erase || (upper && compare_keys(next.key, *upper) >= 0)) break;
      check_key(next.key);
      check_value(next.value);
      if (Node::leaf_cell_size(next.key.size(), next.value.size()) > max_cell_) break;
      Node::leaf_cell_into(scratch, next.key, next.value);
      if (!put_in_leaf(path.back(), scratch, next.key, shrank)) break;
      last = next.key;
      ++i;
    }
    if (shrank) {
      // A smaller value replaced a larger one and left the leaf underfull.
      path.clear();
      root_guard.unlock();
      co_await fix_underflow(last);
      continue;
    }
    if (parent_stays) {
      finger = std::move(path[path.size() - 2]);
      finger_upper = std::move(parent_upper);
    }
    path.clear();
  }
  co_return changed;
}

}  // namespace corobtree
