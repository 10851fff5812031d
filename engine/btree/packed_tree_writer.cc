#include "engine/btree/packed_tree_writer.h"

#include <algorithm>
#include <cstring>

#include <corobtree/error.h>
#include <corobtree/options.h>
#include "engine/btree/node.h"

namespace corobtree {

namespace {

// Blocks are added to the file this many at a time (cut back at finish()).
constexpr std::uint64_t kGrowBlocks = 64;

}  // namespace

PackedTreeWriter::PackedTreeWriter(DiskManager& out, std::uint32_t minimum_degree,
                                   std::uint64_t lsn)
    : out_(out),
      page_size_(out.page_size()),
      usable_(out.page_size() - page::kHeaderSize),
      max_cell_(page::max_cell(out.page_size())),
      minimum_degree_(minimum_degree),
      lsn_(lsn),
      page_(out.page_size()) {}

std::uint64_t PackedTreeWriter::max_keys() const noexcept {
  const std::uint64_t t = minimum_degree_;
  return t == 0 ? ~std::uint64_t{0} : 2 * t - 1;
}

std::uint32_t PackedTreeWriter::cost(const Item& item, bool leaf) const noexcept {
  const std::size_t cell =
      leaf ? item.cell.size() : corobtree::Node::inner_cell_size(item.key.size());
  return static_cast<std::uint32_t>(cell) + page::kSlotSize;
}

bool PackedTreeWriter::fits(const Pending& n, const Item& item, bool leaf) const noexcept {
  if (n.items.empty()) return true;
  // Keys after adding: a leaf holds one per item, an inner node one less.
  const std::uint64_t keys = leaf ? n.items.size() + 1 : n.items.size();
  return keys <= max_keys() && n.used + cost(item, leaf) <= usable_;
}

// The node rules of BTree::underflows (leaves a quarter full, inner nodes an
// eighth; with t > 0 also fewer than t-1 keys), and an inner node needs two
// children. `used`: bytes of cells and slots; `items`: cells, or children.
bool PackedTreeWriter::underfull(std::uint64_t used, std::size_t items, bool leaf) const noexcept {
  if (!leaf && items < 2) return true;
  const bool few_bytes = used < (leaf ? usable_ / 4 : usable_ / 8);
  if (minimum_degree_ == 0) return few_bytes;
  const std::uint64_t keys = leaf ? items : items - 1;
  return few_bytes && keys + 1 < minimum_degree_;
}

BlockId PackedTreeWriter::take_ids(std::uint64_t n) {
  const BlockId first = next_id_;
  next_id_ += n;
  return first;
}

Task<void> PackedTreeWriter::add(std::string_view key, std::string_view value) {
  if (finished_) throw Error(ErrorCode::kInvalidArgument, "PackedTreeWriter: add after finish");
  if (key.size() > page::max_key(page_size_) || value.size() > kMaxValueSize) {
    throw Error(ErrorCode::kInvalidArgument,
                "PackedTreeWriter: a key or value exceeds the limits of '" + out_.path() + "'");
  }
  if (keys_ > 0 && compare_keys(last_key_, key) >= 0) {
    throw Error(ErrorCode::kInvalidArgument, "PackedTreeWriter: keys must strictly increase (key " +
                                                 std::to_string(keys_) + " does not)");
  }
  Item item;
  item.key.assign(key);
  if (corobtree::Node::leaf_cell_size(key.size(), value.size()) <= max_cell_) {
    item.cell = corobtree::Node::leaf_cell(key, value);
  } else {
    const BlockId first = co_await write_overflow(value);
    item.cell =
        corobtree::Node::leaf_overflow_cell(key, static_cast<std::uint32_t>(value.size()), first);
  }
  co_await add_item(0, std::move(item));
  last_key_.assign(key);
  ++keys_;
}

Task<void> PackedTreeWriter::add_item(std::size_t level, Item item) {
  if (levels_.size() <= level) levels_.emplace_back();
  const bool leaf = level == 0;
  if (!fits(levels_[level].cur, item, leaf)) {
    // cur is full. prev is final now (only the last two nodes of a level are
    // ever evened out), and cur's first key is too, so cur goes up a level.
    Level& l = levels_[level];
    if (!l.prev.items.empty()) {
      co_await write_node(l.prev, leaf, l.before_prev, l.cur.id);
      l.before_prev = l.prev.id;
    }
    Item up;
    up.key = l.cur.items.front().key;
    up.child = l.cur.id;
    l.prev = std::move(l.cur);
    l.cur = Pending{};
    co_await add_item(level + 1, std::move(up));  // may grow levels_ (l dangles)
  }
  Pending& cur = levels_[level].cur;
  if (cur.items.empty()) cur.id = take_ids(1);
  if (leaf || !cur.items.empty()) cur.used += cost(item, leaf);
  cur.items.push_back(std::move(item));
}

void PackedTreeWriter::even_out(Level& l, bool leaf) const {
  std::vector<Item> all = std::move(l.prev.items);
  for (Item& i : l.cur.items) all.push_back(std::move(i));
  const std::size_t n = all.size();
  // sum[i]: the cost of items [0, i).
  std::vector<std::uint64_t> sum(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) sum[i + 1] = sum[i] + cost(all[i], leaf);
  // The most even split by bytes that fits two pages, preferring one that
  // leaves neither node underfull.
  std::size_t best = 0;
  std::uint64_t best_gap = ~std::uint64_t{0};
  bool best_sound = false;
  for (std::size_t m = 1; m < n; ++m) {
    if (!leaf && (m < 2 || n - m < 2)) continue;  // an inner node needs two children
    // Bytes on each page: an inner node's first item is its leftmost child.
    const std::uint64_t left = leaf ? sum[m] : sum[m] - sum[1];
    const std::uint64_t right = leaf ? sum[n] - sum[m] : sum[n] - sum[m + 1];
    const std::uint64_t left_keys = leaf ? m : m - 1;
    const std::uint64_t right_keys = leaf ? n - m : n - m - 1;
    if (left > usable_ || right > usable_ || left_keys > max_keys() || right_keys > max_keys()) {
      continue;
    }
    const bool sound = !underfull(left, m, leaf) && !underfull(right, n - m, leaf);
    const std::uint64_t gap = left > right ? left - right : right - left;
    if ((sound && !best_sound) || (sound == best_sound && gap < best_gap)) {
      best_gap = gap;
      best = m;
      best_sound = sound;
    }
  }
  if (best == 0) best = n - 1;  // cannot happen for a full prev; keep the order anyway
  l.prev.items.assign(std::make_move_iterator(all.begin()),
                      std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(best)));
  l.cur.items.assign(std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(best)),
                     std::make_move_iterator(all.end()));
}

Task<void> PackedTreeWriter::write_node(const Pending& n, bool leaf, BlockId prev_leaf,
                                        BlockId next_leaf) {
  const std::span<std::byte> p = page_.span();
  corobtree::Node node(p);
  corobtree::Node::init(p, leaf ? PageType::kLeaf : PageType::kInner);
  if (leaf) {
    node.set_next(next_leaf);
    node.set_prev(prev_leaf);
    for (const Item& i : n.items) node.insert_cell(node.count(), i.cell);
  } else {
    node.set_link0(n.items.front().child);
    for (std::size_t i = 1; i < n.items.size(); ++i) {
      const std::vector<std::byte> cell =
          corobtree::Node::inner_cell(n.items[i].key, n.items[i].child);
      node.insert_cell(node.count(), cell);
    }
  }
  co_await write_page(n.id);
}

Task<void> PackedTreeWriter::write_page(BlockId id) {
  if (id >= out_.block_count()) {
    out_.allocate_blocks(std::max<std::uint64_t>(id + 1 - out_.block_count(), kGrowBlocks));
  }
  PageHeader::Lsn::set(page_.data(), lsn_);
  page::stamp_checksum(id, page_.span());
  co_await out_.write_block(id, page_.span());
}

Task<BlockId> PackedTreeWriter::write_overflow(std::string_view value) {
  const std::uint64_t chunks = (value.size() + usable_ - 1) / usable_;
  const BlockId first = take_ids(chunks);
  for (std::uint64_t i = 0; i < chunks; ++i) {
    const std::size_t off = i * usable_;
    const std::size_t len = std::min<std::size_t>(usable_, value.size() - off);
    const std::span<std::byte> p = page_.span();
    page::init(p, PageType::kOverflow);
    PageHeader::Link0::set(p.data(), i + 1 < chunks ? first + i + 1 : kInvalidBlockId);
    PageHeader::Payload::set(p.data(), static_cast<std::uint32_t>(len));
    std::memcpy(p.data() + page::kHeaderSize, value.data() + off, len);
    co_await write_page(first + i);
  }
  co_return first;
}

Task<CommitState> PackedTreeWriter::finish() {
  if (finished_) throw Error(ErrorCode::kInvalidArgument, "PackedTreeWriter: finished twice");
  finished_ = true;
  CommitState st;
  st.tree.minimum_degree = minimum_degree_;
  st.tree.key_count = keys_;
  if (levels_.empty()) {  // no keys: the root is one empty leaf
    Pending empty;
    empty.id = take_ids(1);
    co_await write_node(empty, true, kInvalidBlockId, kInvalidBlockId);
    st.tree.root = empty.id;
    st.tree.height = 1;
  }
  for (std::size_t lv = 0; lv < levels_.size(); ++lv) {
    const bool leaf = lv == 0;
    Level& l = levels_[lv];
    const bool has_prev = !l.prev.items.empty();
    if (has_prev && underfull(l.cur.used, l.cur.items.size(), leaf)) even_out(l, leaf);
    if (has_prev) co_await write_node(l.prev, leaf, l.before_prev, l.cur.id);
    const BlockId prev_id = has_prev ? l.prev.id : kInvalidBlockId;
    co_await write_node(l.cur, leaf, prev_id, kInvalidBlockId);
    if (lv + 1 == levels_.size()) {  // nothing above: the root
      st.tree.root = l.cur.id;
      st.tree.height = static_cast<std::uint32_t>(lv + 1);
      break;
    }
    Item up;
    up.key = l.cur.items.front().key;
    up.child = l.cur.id;
    co_await add_item(lv + 1, std::move(up));  // l may dangle from here
  }
  out_.truncate_blocks(next_id_);
  st.page_count = next_id_;
  co_return st;
}

}  // namespace corobtree
