// BTree: lookups, inserts and splits, page allocation, overflow chains.
#include "engine/btree/btree.h"

#include <cstring>

#include <corobtree/error.h>

namespace corobtree {

using Mode = AsyncSharedMutex::Mode;

BTree::BTree(BufferPool& pool, TreeState state)
    : pool_(pool),
      state_(state),
      page_size_(pool.page_size()),
      usable_(pool.page_size() - page::kHeaderSize),
      max_cell_(usable_ / 4),
      max_key_(max_cell_ - Node::kInnerCellOverhead - 8 - page::kSlotSize) {}

std::string ValidationReport::summary() const {
  std::string s = ok() ? "ok" : std::to_string(problems.size()) + " problem(s)";
  s += ": height " + std::to_string(height) + ", " + std::to_string(keys) + " keys, " +
       std::to_string(leaves) + " leaves, " + std::to_string(inner_nodes) + " inner, " +
       std::to_string(overflow_pages) + " overflow, " + std::to_string(free_pages) +
       " free pages, fill " + std::to_string(fill_factor);
  for (const auto& p : problems) s += "\n  " + p;
  return s;
}

void BTree::corrupt(BlockId id, const std::string& why) const {
  const std::string& path = pool_.disk().path();
  throw Error(ErrorCode::kCorruption,
              "page " + std::to_string(id) + " of '" + path + "': " + why, 0, path, id);
}

void BTree::check_key(std::string_view key) const {
  if (key.size() > max_key_) {
    throw Error(ErrorCode::kInvalidArgument,
                "key of " + std::to_string(key.size()) + " bytes exceeds the limit of " +
                    std::to_string(max_key_) + " bytes for " + std::to_string(page_size_) +
                    "-byte pages");
  }
}

void BTree::check_value(std::string_view value) const {
  if (value.size() > kMaxValueSize) {
    throw Error(ErrorCode::kInvalidArgument, "value of " + std::to_string(value.size()) +
                                                 " bytes exceeds the limit of " +
                                                 std::to_string(kMaxValueSize) + " bytes");
  }
}

// ---- policy ----------------------------------------------------------------

bool BTree::leaf_fits(const Node& n, std::uint32_t cell_size) const noexcept {
  if (state_.minimum_degree > 0 && n.count() >= 2 * state_.minimum_degree - 1) return false;
  return n.fits(cell_size);
}

// A longer separator replacing a shorter one during a borrow may not fit:
// then the parent splits (the erase descent keeps what that needs).
bool BTree::inner_fits(const Node& n, std::uint32_t cell_size) const noexcept {
  if (state_.minimum_degree > 0 && n.count() >= 2 * state_.minimum_degree - 1) return false;
  return n.fits(cell_size);
}

// Leaves must stay a quarter full, inner nodes an eighth (their splits can
// push up separators of up to a quarter page).
std::uint32_t BTree::min_fill(const Node& n) const noexcept {
  return n.is_leaf() ? usable_ / 4 : usable_ / 8;
}

bool BTree::underflows(const Node& n) const noexcept {
  const bool few_bytes = n.used_bytes() < min_fill(n);
  if (state_.minimum_degree == 0) return few_bytes;
  return few_bytes && n.count() < state_.minimum_degree - 1;
}

bool BTree::safe_for_insert(const Node& n, std::uint32_t leaf_cell_size) const noexcept {
  if (n.is_leaf()) return leaf_fits(n, leaf_cell_size);
  return inner_fits(n, Node::inner_cell_size(max_key_));
}

// An erase below may remove one cell from this node (a merge), replace one
// separator with a longer one (a borrow), or push one separator into it (a
// replacement that had to split the child): it must survive each of these.
bool BTree::safe_for_erase(const Node& n, bool is_root) const noexcept {
  if (n.is_leaf()) {
    if (is_root) return true;
  } else if (n.free_bytes() < Node::inner_cell_size(max_key_) + page::kSlotSize) {
    return false;
  }
  if (is_root) return n.count() >= 2;
  const std::uint32_t worst = max_cell_ + page::kSlotSize;
  const bool bytes_ok = n.used_bytes() >= min_fill(n) + worst;
  if (state_.minimum_degree == 0) return bytes_ok;
  return bytes_ok || n.count() > state_.minimum_degree;  // count-1 >= t-1 after removal
}

// ---- reads -----------------------------------------------------------------

Task<BTree::Latched> BTree::latch_page(BlockId id, Mode mode) {
  Latched l;
  l.page = co_await pool_.fetch_page(id);
  l.latch = co_await l.page.latch().scoped(mode);
  co_return l;
}

// All pages cached and no latch contended: the whole descent without a
// coroutine. Returns false (holding nothing) when something would have to wait.
bool BTree::try_descend_cached(std::string_view key, Latched& out) {
  if (!root_latch_.try_lock_shared()) return false;
  AsyncSharedMutex::Guard root_guard(&root_latch_, Mode::kShared);
  Latched cur;
  if (!pool_.try_fetch_cached(state_.root, cur.page)) return false;
  if (!cur.page.latch().try_lock_shared()) return false;
  cur.latch = AsyncSharedMutex::Guard(&cur.page.latch(), Mode::kShared);
  root_guard.unlock();
  for (;;) {
    Node n(cur.page.data());
    if (n.is_leaf()) break;
    if (n.type() != PageType::kInner) corrupt(cur.page.page_id(), "expected a tree node");
    Latched next;
    if (!pool_.try_fetch_cached(n.child(n.child_index(key)), next.page)) return false;
    if (!next.page.latch().try_lock_shared()) return false;
    next.latch = AsyncSharedMutex::Guard(&next.page.latch(), Mode::kShared);
    cur = std::move(next);
  }
  out = std::move(cur);
  return true;
}

// The read path that may wait: fetches and latches inline (a hit costs no allocation).
Task<BTree::Latched> BTree::descend_shared(std::string_view key) {
  AsyncSharedMutex::Guard root_guard = co_await root_latch_.scoped_lock_shared();
  Latched cur;
  cur.page = co_await pool_.fetch_page(state_.root);
  cur.latch = co_await cur.page.latch().scoped_lock_shared();
  root_guard.unlock();
  for (;;) {
    Node n(cur.page.data());
    if (n.is_leaf()) break;
    if (n.type() != PageType::kInner) corrupt(cur.page.page_id(), "expected a tree node");
    const BlockId child = n.child(n.child_index(key));
    Latched next;
    next.page = co_await pool_.fetch_page(child);
    next.latch = co_await next.page.latch().scoped_lock_shared();
    cur = std::move(next);  // releases the parent's latch, then its pin
  }
  co_return cur;
}

Task<std::string> BTree::read_value(const Node& leaf, std::uint32_t pos) {
  const Node::Value v = leaf.value(pos);
  if (!v.overflow) co_return std::string(v.inline_bytes);
  std::string out;
  out.reserve(v.length);
  BlockId id = v.first_page;
  while (out.size() < v.length) {
    if (id == kInvalidBlockId || id >= page_count()) corrupt(id, "overflow chain is broken");
    PageGuard g = co_await pool_.fetch_page(id);
    const std::byte* d = g.data().data();
    if (page::type(d) != PageType::kOverflow) corrupt(id, "expected an overflow page");
    const auto n = PageHeader::Payload::get(d);
    if (n == 0 || out.size() + n > v.length) corrupt(id, "overflow payload length is wrong");
    out.append(reinterpret_cast<const char*>(d + page::kHeaderSize), n);
    id = PageHeader::Link0::get(d);
  }
  co_return out;
}

Task<std::optional<std::string>> BTree::get(std::string_view key) {
  check_key(key);
  Latched leaf;
  if (!try_descend_cached(key, leaf)) leaf = co_await descend_shared(key);
  Node n(leaf.page.data());
  const std::uint32_t pos = n.lower_bound(key);
  if (pos == n.count() || n.key(pos) != key) co_return std::nullopt;
  const Node::Value v = n.value(pos);
  if (!v.overflow) co_return std::string(v.inline_bytes);
  std::string value = co_await read_value(n, pos);
  co_return value;
}

// ---- pages -----------------------------------------------------------------

Task<PageGuard> BTree::allocate_page(PageType type) {
  PageGuard g;
  if (state_.free_head != kInvalidBlockId) {
    const BlockId id = state_.free_head;
    g = co_await pool_.fetch_page(id);
    if (page::type(g.data().data()) != PageType::kFree) corrupt(id, "free-list page is not free");
    state_.free_head = PageHeader::Link0::get(g.data().data());
    --state_.free_pages;
  } else {
    g = co_await pool_.new_page();
  }
  Node::init(g.data(), type);
  g.mark_dirty();
  co_return g;
}

void BTree::free_page(PageGuard& g) {
  page::init(g.data(), PageType::kFree);
  PageHeader::Link0::set(g.data().data(), state_.free_head);
  state_.free_head = g.page_id();
  ++state_.free_pages;
  g.mark_dirty();
}

Task<BlockId> BTree::write_overflow(std::string_view value) {
  const std::uint32_t chunk = usable_;
  // Written back to front so each page can point at the next one.
  std::size_t chunks = (value.size() + chunk - 1) / chunk;
  BlockId next = kInvalidBlockId;
  for (std::size_t i = chunks; i > 0; --i) {
    const std::size_t off = (i - 1) * chunk;
    const std::size_t n = std::min<std::size_t>(chunk, value.size() - off);
    PageGuard g = co_await allocate_page(PageType::kOverflow);
    std::byte* d = g.data().data();
    PageHeader::Link0::set(d, next);
    PageHeader::Payload::set(d, static_cast<std::uint32_t>(n));
    std::memcpy(d + page::kHeaderSize, value.data() + off, n);
    next = g.page_id();
  }
  co_return next;
}

Task<void> BTree::free_overflow(BlockId first) {
  BlockId id = first;
  while (id != kInvalidBlockId) {
    if (id >= page_count()) corrupt(id, "overflow chain is broken");
    PageGuard g = co_await pool_.fetch_page(id);
    if (page::type(g.data().data()) != PageType::kOverflow) corrupt(id, "expected an overflow page");
    const BlockId next = PageHeader::Link0::get(g.data().data());
    free_page(g);
    id = next;
  }
}

Task<std::vector<std::byte>> BTree::make_leaf_cell(std::string_view key, std::string_view value) {
  if (Node::leaf_cell_size(key.size(), value.size()) <= max_cell_) {
    co_return Node::leaf_cell(key, value);
  }
  const BlockId first = co_await write_overflow(value);
  co_return Node::leaf_overflow_cell(key, static_cast<std::uint32_t>(value.size()), first);
}

// ---- insert ----------------------------------------------------------------

Task<void> BTree::put_locked(std::string_view key, std::string_view value) {
  check_key(key);
  check_value(value);
  std::vector<std::byte> cell = co_await make_leaf_cell(key, value);
  const auto cell_size = static_cast<std::uint32_t>(cell.size());
  std::vector<Latched> path;
  AsyncSharedMutex::Guard root_guard;
  co_await descend_exclusive(key, cell_size, path, root_guard);
  const bool shrank = co_await insert_into_leaf(path, std::move(cell), key);
  if (shrank) {
    // A smaller value replaced a larger one and left the leaf underfull; the
    // insert descent did not keep what a rebalance needs, so descend again.
    path.clear();
    root_guard.unlock();
    co_await fix_underflow(key);
  }
}

// Exclusive descent to the leaf for `key`, releasing the ancestors (and the
// root latch) of every node that is safe: for an insert (cell_size > 0) one
// that cannot split, for an erase (cell_size == 0) one that survives whatever
// a rebalance below may do to it.
Task<void> BTree::descend_exclusive(std::string_view key, std::uint32_t cell_size,
                                    std::vector<Latched>& path,
                                    AsyncSharedMutex::Guard& root_guard) {
  root_guard = co_await root_latch_.scoped_lock();
  Latched root = co_await latch_page(state_.root, Mode::kExclusive);
  path.push_back(std::move(root));
  for (;;) {
    Node n(path.back().page.data());
    const bool is_root = path.back().page.page_id() == state_.root;
    const bool safe = cell_size > 0 ? safe_for_insert(n, cell_size) : safe_for_erase(n, is_root);
    if (safe) {
      path.erase(path.begin(), path.end() - 1);
      root_guard.unlock();
    }
    if (n.is_leaf()) break;
    if (n.type() != PageType::kInner) corrupt(path.back().page.page_id(), "expected a tree node");
    const std::uint32_t idx = n.child_index(key);
    path.back().child_idx = idx;
    Latched child = co_await latch_page(n.child(idx), Mode::kExclusive);
    path.push_back(std::move(child));
  }
}

Task<bool> BTree::insert_into_leaf(std::vector<Latched>& path, std::vector<std::byte> cell,
                                   std::string_view key) {
  Latched& leaf = path.back();
  Node n(leaf.page.data());
  std::uint32_t pos = n.lower_bound(key);
  BlockId old_overflow = kInvalidBlockId;
  if (pos < n.count() && n.key(pos) == key) {
    const Node::Value old = n.value(pos);
    if (old.overflow) old_overflow = old.first_page;
    n.remove(pos);
  } else {
    ++state_.key_count;
  }
  leaf.page.mark_dirty();
  if (leaf_fits(n, static_cast<std::uint32_t>(cell.size()))) {
    n.insert_cell(pos, cell);
  } else {
    co_await split_and_insert(path, path.size() - 1, std::move(cell), pos);
  }
  if (old_overflow != kInvalidBlockId) co_await free_overflow(old_overflow);
  const bool leaf_underfull = underflows(n) && leaf.page.page_id() != state_.root;
  co_return leaf_underfull;
}

namespace {

// Rebuilds node `n` (of `type`, keeping its links) from `cells`.
void rebuild(Node& n, std::span<std::byte> bytes, PageType type,
             const std::vector<std::vector<std::byte>>& cells, std::size_t from, std::size_t to,
             BlockId link0, BlockId link1) {
  Node::init(bytes, type);
  n.set_link0(link0);
  n.set_link1(link1);
  for (std::size_t i = from; i < to; ++i) n.insert_cell(static_cast<std::uint32_t>(i - from), cells[i]);
}

std::vector<std::vector<std::byte>> cells_of(const Node& n) {
  std::vector<std::vector<std::byte>> cells;
  cells.reserve(n.count() + 1);
  for (std::uint32_t i = 0; i < n.count(); ++i) {
    auto c = n.cell(i);
    cells.emplace_back(c.begin(), c.end());
  }
  return cells;
}

}  // namespace

// Splits path[level] (which cannot take `cell` at `pos`) into two nodes and
// pushes the separator into the parent, splitting upward as needed.
Task<void> BTree::split_and_insert(std::vector<Latched>& path, std::size_t level,
                                   std::vector<std::byte> cell, std::uint32_t pos) {
  Latched& cur = path[level];
  Node n(cur.page.data());
  const bool leaf = n.is_leaf();
  std::vector<std::vector<std::byte>> cells = cells_of(n);
  cells.insert(cells.begin() + pos, std::move(cell));
  const std::size_t total = cells.size();

  // Split point: by count when the classic key limit forced the split, else
  // at half of the bytes (each half then keeps its minimum fill).
  std::size_t m = total / 2;
  const std::uint32_t t = state_.minimum_degree;
  if (t == 0 || total <= 2 * t - 1) {
    std::size_t all = 0;
    for (const auto& c : cells) all += c.size() + page::kSlotSize;
    std::size_t acc = 0;
    m = 0;
    while (m < total - 1 && acc + cells[m].size() + page::kSlotSize <= all / 2) {
      acc += cells[m].size() + page::kSlotSize;
      ++m;
    }
    if (m == 0) m = 1;
  }
  if (!leaf && m >= total - 1) m = total - 2;  // inner: the pushed-up cell needs a right side
  if (!leaf && m == 0) m = 1;

  PageGuard right = co_await allocate_page(leaf ? PageType::kLeaf : PageType::kInner);
  AsyncSharedMutex::Guard right_latch = co_await right.latch().scoped_lock();
  Node r(right.data());
  std::string sep;
  const BlockId cur_id = cur.page.page_id();
  const BlockId right_id = right.page_id();
  if (leaf) {
    const BlockId old_next = n.next();
    rebuild(n, cur.page.data(), PageType::kLeaf, cells, 0, m, right_id, n.prev());
    rebuild(r, right.data(), PageType::kLeaf, cells, m, total, old_next, cur_id);
    sep = std::string(r.key(0));
    if (old_next != kInvalidBlockId) {
      Latched next = co_await latch_page(old_next, Mode::kExclusive);  // left to right
      Node(next.page.data()).set_prev(right_id);
      next.page.mark_dirty();
    }
  } else {
    // cells[m] moves up: its key is the separator, its child becomes right's leftmost.
    const std::vector<std::byte>& up = cells[m];
    const std::uint32_t klen = le::load<std::uint16_t>(up.data(), 0);
    sep.assign(reinterpret_cast<const char*>(up.data() + Node::kInnerCellOverhead), klen);
    const BlockId up_child = le::load<std::uint64_t>(up.data(), 2);
    const BlockId leftmost = n.link0();
    rebuild(n, cur.page.data(), PageType::kInner, cells, 0, m, leftmost, kInvalidBlockId);
    rebuild(r, right.data(), PageType::kInner, cells, m + 1, total, up_child, kInvalidBlockId);
  }
  cur.page.mark_dirty();
  right.mark_dirty();
  right_latch.unlock();
  std::vector<std::byte> sep_cell = Node::inner_cell(sep, right_id);

  if (level == 0) {
    // Only the root can split with nothing above it in the path: the descent
    // keeps every node that might split together with its parent.
    if (cur_id != state_.root) corrupt(cur_id, "internal error: split reached the top of a trimmed path");
    PageGuard root = co_await allocate_page(PageType::kInner);
    Node nr(root.data());
    nr.set_link0(cur_id);
    nr.insert_cell(0, sep_cell);
    root.mark_dirty();
    state_.root = root.page_id();
    ++state_.height;
    co_return;
  }
  Latched& parent = path[level - 1];
  Node p(parent.page.data());
  const std::uint32_t ppos = parent.child_idx;  // new cell sits right after our child
  parent.page.mark_dirty();
  // The top of a trimmed path was checked to have room when the descent kept it.
  const bool top_of_trimmed = level - 1 == 0 && parent.page.page_id() != state_.root;
  if (inner_fits(p, static_cast<std::uint32_t>(sep_cell.size())) ||
      (top_of_trimmed && p.fits(static_cast<std::uint32_t>(sep_cell.size())))) {
    p.insert_cell(ppos, sep_cell);
    co_return;
  }
  co_await split_and_insert(path, level - 1, std::move(sep_cell), ppos);
}

}  // namespace corobtree
