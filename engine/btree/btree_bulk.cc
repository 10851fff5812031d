// BTree::bulk_load: builds a tree bottom-up from sorted input, leaves packed
// full, then each inner level from the one below.
#include <algorithm>

#include <corobtree/error.h>
#include "engine/btree/btree.h"

namespace corobtree {

namespace {

// Splits cell sizes into consecutive groups that each fit `capacity` bytes
// (and at most max_count cells when nonzero); then evens out the last two
// groups so the last one is not underfull. Returns group end indices.
std::vector<std::size_t> pack(const std::vector<std::uint32_t>& sizes, std::uint32_t capacity,
                              std::uint32_t max_count, std::size_t min_group) {
  std::vector<std::size_t> ends;
  std::uint64_t used = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const std::uint64_t need = sizes[i] + page::kSlotSize;
    if (count >= min_group && (used + need > capacity || (max_count && count >= max_count))) {
      ends.push_back(i);
      used = 0;
      count = 0;
    }
    used += need;
    ++count;
  }
  ends.push_back(sizes.size());
  if (ends.size() >= 2) {
    const std::size_t begin = ends.size() >= 3 ? ends[ends.size() - 3] : 0;
    const std::size_t end = ends.back();
    const std::size_t last_begin = ends[ends.size() - 2];
    std::uint64_t last_bytes = 0;
    for (std::size_t i = last_begin; i < end; ++i) last_bytes += sizes[i] + page::kSlotSize;
    const std::size_t last_count = end - last_begin;
    const std::size_t min_count = max_count ? (max_count + 1) / 2 - 1 : 0;
    if (last_count >= min_group && last_bytes >= capacity / 4 && last_count >= min_count)
      return ends;
    if (end - begin < 2 * min_group) {  // too few to split in two: one group
      ends.erase(ends.end() - 2);
      return ends;
    }
    // Even out the last two groups by bytes.
    std::uint64_t total = 0;
    for (std::size_t i = begin; i < end; ++i) total += sizes[i] + page::kSlotSize;
    std::uint64_t acc = 0;
    std::size_t mid = begin;
    while (mid < end && acc + sizes[mid] + page::kSlotSize <= total / 2)
      acc += sizes[mid++] + page::kSlotSize;
    if (max_count) {
      // Neither group may exceed max_count (the byte split alone can give the
      // first one more: tests/btree_scenarios_test.cc bulk_load_50k_sorted_pairs).
      mid = std::max<std::size_t>(mid, end > max_count ? end - max_count : begin);
      mid = std::min<std::size_t>(mid, begin + max_count);
    }
    mid = std::clamp<std::size_t>(mid, begin + min_group, end - min_group);
    ends[ends.size() - 2] = mid;
  }
  return ends;
}

}  // namespace

Task<void> BTree::bulk_load_locked(const std::vector<std::pair<std::string, std::string>>& sorted) {
  const WriteWindow window(*this);
  if (state_.key_count != 0 || state_.height != 1) {
    throw Error(ErrorCode::kInvalidArgument, "bulk_load needs an empty tree");
  }
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    check_key(sorted[i].first);
    check_value(sorted[i].second);
    if (i > 0 && !(sorted[i - 1].first < sorted[i].first)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "bulk_load input is not strictly increasing at entry " + std::to_string(i));
    }
  }
  if (sorted.empty()) co_return;
  AsyncSharedMutex::Guard root_guard = co_await root_latch_.scoped_lock();
  // 2t-1 keys per node; a t too large for that to be a u32 caps nothing.
  const std::uint32_t t = state_.minimum_degree < (1u << 31) ? state_.minimum_degree : 0;
  const std::uint32_t max_count = t ? 2 * t - 1 : 0;

  // Leaf level.
  std::vector<std::uint32_t> sizes;
  sizes.reserve(sorted.size());
  for (const auto& [k, v] : sorted) {
    const std::uint32_t inline_size = Node::leaf_cell_size(k.size(), v.size());
    sizes.push_back(inline_size <= max_cell_ ? inline_size : Node::leaf_cell_size(k.size(), 8));
  }
  std::vector<std::size_t> ends = pack(sizes, usable_, max_count, 1);
  struct Child {
    BlockId id;
    std::string first_key;
  };
  std::vector<Child> level;
  level.reserve(ends.size());
  // The empty root leaf becomes the first leaf.
  check_tree_state(state_.root, state_.height);
  Latched first_leaf = co_await latch_page(state_.root, AsyncSharedMutex::Mode::kExclusive);
  expect_node(first_leaf.page, state_.root, 0, state_.height);
  PageGuard prev;
  std::size_t begin = 0;
  for (std::size_t g = 0; g < ends.size(); ++g) {
    PageGuard leaf;
    if (g == 0) {
      leaf = std::move(first_leaf.page);
      first_leaf.latch.unlock();
      Node::init(leaf.data(), PageType::kLeaf);
    } else {
      leaf = co_await allocate_page(PageType::kLeaf);
    }
    Node n(leaf.data());
    for (std::size_t i = begin; i < ends[g]; ++i) {
      std::vector<std::byte> cell = co_await make_leaf_cell(sorted[i].first, sorted[i].second);
      n.insert_cell(n.count(), cell);
    }
    if (prev) {
      Node(prev.data()).set_next(leaf.page_id());
      n.set_prev(prev.page_id());
      prev.mark_dirty();
    }
    leaf.mark_dirty();
    level.push_back(Child{leaf.page_id(), sorted[begin].first});
    begin = ends[g];
    prev = std::move(leaf);
  }
  prev.release();
  std::uint32_t height = 1;

  // Inner levels: a node over children [b, e) holds e-b-1 separators.
  const std::uint32_t inner_capacity = usable_;
  while (level.size() > 1) {
    std::vector<std::uint32_t> child_sizes;
    child_sizes.reserve(level.size());
    for (const Child& c : level) child_sizes.push_back(Node::inner_cell_size(c.first_key.size()));
    // Each group of children costs the cells of all but its first child; pack
    // conservatively by charging every child.
    std::vector<std::size_t> groups = pack(child_sizes, inner_capacity, t ? 2 * t : 0, 2);
    std::vector<Child> up;
    std::size_t b = 0;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      PageGuard node = co_await allocate_page(PageType::kInner);
      Node n(node.data());
      n.set_link0(level[b].id);
      for (std::size_t i = b + 1; i < groups[g]; ++i) {
        n.insert_cell(n.count(), Node::inner_cell(level[i].first_key, level[i].id));
      }
      node.mark_dirty();
      up.push_back(Child{node.page_id(), level[b].first_key});
      b = groups[g];
    }
    level = std::move(up);
    ++height;
  }
  state_.root = level.front().id;
  state_.height = height;
  state_.key_count = sorted.size();
}

}  // namespace corobtree
