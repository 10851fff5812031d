// BTree: lookups, inserts and splits, page allocation, overflow chains.
#include "engine/btree/btree.h"

#include <algorithm>
#include <cstring>

#include <corobtree/error.h>

namespace corobtree {

using Mode = AsyncSharedMutex::Mode;

namespace {

// "a leaf page", "an inner page", ...
std::string a_page(PageType t) {
  const std::string_view name = page_type_name(t);
  const bool vowel =
      !name.empty() && std::string_view("aeiou").find(name[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + std::string(name) + " page";
}

}  // namespace

BTree::BTree(BufferPool& pool, TreeState state)
    : pool_(pool),
      state_(state),
      page_size_(pool.page_size()),
      usable_(pool.page_size() - page::kHeaderSize),
      max_cell_(page::max_cell(page_size_)),
      max_key_(page::max_key(page_size_)),
      pub_root_(state.root),
      pub_height_(state.height),
      pub_keys_(state.key_count) {}

void BTree::open_window() {
  if (window_depth_ != 0) {
    ++window_depth_;
    return;
  }
  // Spares for the pinned pages first, while a failure changes nothing.
  std::size_t need = pool_.viewed_frames();
  for (;;) {
    pool_.reserve_spares(need);
    // seq_cst, then the scan for pinned views: a reader that pins a page
    // buffer after the scan sees the odd number (engine/pager/view_pins.h).
    window_seq_.store(window_seq_.load(std::memory_order_relaxed) + 1, std::memory_order_seq_cst);
    // Readers that see any write of the window also see the odd number.
    std::atomic_thread_fence(std::memory_order_release);
    need = pool_.unshare_viewed();
    if (need == 0) break;
    // Pins came since: too few spares, nothing moved. An empty window ends
    // (readers that saw it retry) and the next try reserves enough.
    window_seq_.store(window_seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  window_depth_ = 1;
}

void BTree::close_window() noexcept {
  if (--window_depth_ != 0) return;
  pub_root_.store(state_.root, std::memory_order_relaxed);
  pub_height_.store(state_.height, std::memory_order_relaxed);
  pub_keys_.store(state_.key_count, std::memory_order_relaxed);
  window_seq_.store(window_seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

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
  throw Error(ErrorCode::kCorruption, "page " + std::to_string(id) + " of '" + path + "': " + why,
              0, path, id);
}

std::uint64_t BTree::max_keys() const noexcept {
  const std::uint64_t t = state_.minimum_degree;  // 64 bits: 2t-1 never wraps
  return t == 0 ? ~std::uint64_t{0} : 2 * t - 1;
}

// ---- pointers read from pages --------------------------------------------------

void BTree::check_tree_state(BlockId root, std::uint32_t height) const {
  if (height == 0 || height > kMaxHeight) {
    corrupt(root, "the tree's height " + std::to_string(height) + " is not in [1, " +
                      std::to_string(kMaxHeight) + "]");
  }
  if (root < 2 || root >= page_count()) {
    corrupt(root,
            "the root is not a page of the file (" + std::to_string(page_count()) + " pages)");
  }
}

void BTree::check_link(BlockId from, BlockId to, const char* what) const {
  if (to < 2 || to >= page_count()) [[unlikely]] {
    corrupt(from, std::string(what) + " " + std::to_string(to) + " is not a page of the file (" +
                      std::to_string(page_count()) + " pages)");
  }
}

// Latching a page this task already holds would wait forever.
void BTree::check_not_held(const std::vector<Latched>& path, BlockId from, BlockId to) const {
  for (const Latched& l : path) {
    if (l.latch.owns_lock() && l.page.page_id() == to) [[unlikely]] {
      corrupt(from,
              "points at page " + std::to_string(to) + ", which this walk already holds (a cycle)");
    }
  }
}

void BTree::expect_node(const PageGuard& page, BlockId from, std::uint32_t depth,
                        std::uint32_t height) const {
  const PageType want = depth + 1 == height ? PageType::kLeaf : PageType::kInner;
  const PageType got = page::type(page.data().data());
  if (got == want) return;
  const std::string what = a_page(got) + ", expected " + a_page(want) + " (the tree has height " +
                           std::to_string(height) + ")";
  if (depth == 0) corrupt(page.page_id(), "the root is " + what);
  corrupt(from, "child " + std::to_string(page.page_id()) + " at depth " + std::to_string(depth) +
                    " is " + what);
}

void BTree::expect_type(const PageGuard& page, BlockId from, PageType want,
                        const char* what) const {
  const PageType got = page::type(page.data().data());
  if (got == want) return;
  corrupt(from, std::string(what) + " " + std::to_string(page.page_id()) + " is " + a_page(got) +
                    ", expected " + a_page(want));
}

BlockId BTree::checked_child(std::vector<Latched>& path, std::uint32_t idx) const {
  const BlockId from = path.back().page.page_id();
  const BlockId child = Node(path.back().page.data()).child(idx);
  check_link(from, child, "child");
  check_not_held(path, from, child);
  return child;
}

void BTree::check_key(std::string_view key) const {
  if (key.size() > max_key_) {
    throw Error(ErrorCode::kInvalidArgument, "key of " + std::to_string(key.size()) +
                                                 " bytes exceeds the limit of " +
                                                 std::to_string(max_key_) + " bytes for " +
                                                 std::to_string(page_size_) + "-byte pages");
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
  if (n.count() >= max_keys()) return false;
  return n.fits(cell_size);
}

// A longer separator replacing a shorter one during a borrow may not fit:
// then the parent splits (the erase descent keeps what that needs).
bool BTree::inner_fits(const Node& n, std::uint32_t cell_size) const noexcept {
  if (n.count() >= max_keys()) return false;
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

bool BTree::try_latch_cached(BlockId id, Mode mode, Latched& out) {
  PageGuard page;
  if (!pool_.try_fetch_cached(id, page)) return false;
  AsyncSharedMutex& latch = page.latch();
  const bool locked = mode == Mode::kExclusive ? latch.try_lock() : latch.try_lock_shared();
  if (!locked) return false;
  out.page = std::move(page);
  out.latch = AsyncSharedMutex::Guard(&latch, mode);
  return true;
}

BlockId BTree::checked_child_for(PageGuard& inner, std::string_view key) const {
  Node n(inner.data());
  const BlockId parent = inner.page_id();
  const BlockId child = n.child(n.child_index(key));
  check_link(parent, child, "child");
  if (child == parent) corrupt(parent, "is its own child");
  return child;
}

// All pages cached and no latch contended: the whole descent without a
// coroutine. Returns false (holding nothing) when something would have to wait.
bool BTree::try_descend_cached(std::string_view key, Latched& out) {
  if (!root_latch_.try_lock_shared()) return false;
  AsyncSharedMutex::Guard root_guard(&root_latch_, Mode::kShared);
  const BlockId root = state_.root;
  const std::uint32_t height = state_.height;  // levels below a node never change
  check_tree_state(root, height);
  Latched cur;
  if (!pool_.try_fetch_cached(root, cur.page)) return false;
  if (!cur.page.latch().try_lock_shared()) return false;
  cur.latch = AsyncSharedMutex::Guard(&cur.page.latch(), Mode::kShared);
  root_guard.unlock();
  expect_node(cur.page, root, 0, height);
  for (std::uint32_t depth = 1; depth < height; ++depth) {  // a cycle ends at the leaf level
    const BlockId parent = cur.page.page_id();
    const BlockId child = checked_child_for(cur.page, key);
    Latched next;
    if (!pool_.try_fetch_cached(child, next.page)) return false;
    if (!next.page.latch().try_lock_shared()) return false;
    next.latch = AsyncSharedMutex::Guard(&next.page.latch(), Mode::kShared);
    expect_node(next.page, parent, depth, height);
    cur = std::move(next);
  }
  out = std::move(cur);
  return true;
}

// The read path that may wait: fetches and latches inline (a hit costs no allocation).
Task<BTree::Latched> BTree::descend_shared(std::string_view key) {
  AsyncSharedMutex::Guard root_guard = co_await root_latch_.scoped_lock_shared();
  const BlockId root = state_.root;
  const std::uint32_t height = state_.height;
  check_tree_state(root, height);
  Latched cur;
  cur.page = co_await pool_.fetch_page(root);
  cur.latch = co_await cur.page.latch().scoped_lock_shared();
  root_guard.unlock();
  expect_node(cur.page, root, 0, height);
  for (std::uint32_t depth = 1; depth < height; ++depth) {  // a cycle ends at the leaf level
    const BlockId parent = cur.page.page_id();
    const BlockId child = checked_child_for(cur.page, key);
    Latched next;
    next.page = co_await pool_.fetch_page(child);
    next.latch = co_await next.page.latch().scoped_lock_shared();
    expect_node(next.page, parent, depth, height);
    cur = std::move(next);  // releases the parent's latch, then its pin
  }
  co_return cur;
}

// The value's length is untrusted: it is checked against what the file's
// pages could carry before anything is reserved, and the chain is read page
// by page, at most page_count() pages, and must end exactly with the value
// (so a cyclic chain ends in kCorruption).
Task<std::string> BTree::read_value(const Node& leaf, BlockId leaf_id, std::uint32_t pos) {
  const Node::Value v = leaf.value(pos);
  if (!v.overflow) co_return std::string(v.inline_bytes);
  const std::uint64_t pages = page_count();
  const std::uint64_t capacity = (pages > 2 ? pages - 2 : 0) * usable_;
  if (v.length > kMaxValueSize || v.length > capacity) {
    corrupt(leaf_id, "slot " + std::to_string(pos) + " claims an overflow value of " +
                         std::to_string(v.length) + " bytes; the file's " + std::to_string(pages) +
                         " pages hold at most " + std::to_string(capacity));
  }
  std::string out;
  out.reserve(v.length);
  BlockId from = leaf_id;
  BlockId id = v.first_page;
  std::uint64_t hops = 0;
  while (out.size() < v.length) {
    check_link(from, id, "overflow page");
    if (++hops > pages)
      corrupt(leaf_id, "the overflow chain of slot " + std::to_string(pos) + " loops");
    PageGuard g = co_await pool_.fetch_page(id);
    expect_type(g, from, PageType::kOverflow, "overflow page");
    const std::byte* d = g.data().data();
    const std::uint64_t n = PageHeader::Payload::get(d);
    if (out.size() + n > v.length) {
      corrupt(id, "overflow payload runs past the value's " + std::to_string(v.length) + " bytes");
    }
    out.append(reinterpret_cast<const char*>(d + page::kHeaderSize), n);
    from = id;
    id = PageHeader::Link0::get(d);
  }
  if (id != kInvalidBlockId) corrupt(from, "the overflow chain continues past its value's end");
  co_return out;
}

Task<std::optional<std::string>> BTree::get(std::string_view key) {
  check_key(key);
  const AsyncSharedMutex::Guard gate = co_await read_gate_.scoped_lock_shared();
  Latched leaf;
  if (!try_descend_cached(key, leaf)) leaf = co_await descend_shared(key);
  Node n(leaf.page.data());
  const std::uint32_t pos = n.lower_bound(key);
  if (pos == n.count() || n.key(pos) != key) co_return std::nullopt;
  const Node::Value v = n.value(pos);
  if (!v.overflow) co_return std::string(v.inline_bytes);
  std::string value = co_await read_value(n, leaf.page.page_id(), pos);
  co_return value;
}

// ---- pages -----------------------------------------------------------------

Task<PageGuard> BTree::allocate_page(PageType type) {
  PageGuard g;
  if (state_.free_head != kInvalidBlockId) {
    const BlockId id = state_.free_head;
    check_link(id, id, "free-list page");
    if (state_.free_pages == 0) corrupt(id, "the free list is longer than its count");
    g = co_await pool_.fetch_page(id);
    // A page taken off the list is no longer free: a cyclic list ends here.
    expect_type(g, id, PageType::kFree, "free-list page");
    const BlockId next = PageHeader::Link0::get(g.data().data());
    if (next != kInvalidBlockId) check_link(id, next, "free-list link");
    state_.free_head = next;
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

// Freed pages change type, so a cyclic chain ends at its first repeat.
Task<void> BTree::free_overflow(BlockId first) {
  BlockId from = first;
  BlockId id = first;
  std::uint64_t hops = 0;
  while (id != kInvalidBlockId) {
    check_link(from, id, "overflow page");
    if (++hops > page_count()) corrupt(first, "the overflow chain loops");
    PageGuard g = co_await pool_.fetch_page(id);
    expect_type(g, from, PageType::kOverflow, "overflow page");
    const BlockId next = PageHeader::Link0::get(g.data().data());
    free_page(g);
    from = id;
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
  const WriteWindow window(*this);
  check_key(key);
  check_value(value);
  std::vector<std::byte> cell = co_await make_leaf_cell(key, value);
  const auto cell_size = static_cast<std::uint32_t>(cell.size());
  std::vector<Latched> path;
  AsyncSharedMutex::Guard root_guard;
  co_await descend_exclusive(key, cell_size, path, root_guard);
  const bool shrank = co_await insert_into_leaf(path, cell, key);
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
                                    std::vector<Latched>& path, AsyncSharedMutex::Guard& root_guard,
                                    std::optional<std::string>* upper,
                                    std::optional<std::string>* parent_upper) {
  if (upper != nullptr) upper->reset();
  if (parent_upper != nullptr) parent_upper->reset();
  root_guard = co_await root_latch_.scoped_lock();
  const BlockId root_id = state_.root;
  const std::uint32_t height = state_.height;  // only this writer changes it
  check_tree_state(root_id, height);
  Latched root;
  if (!try_latch_cached(root_id, Mode::kExclusive, root)) {
    root = co_await latch_page(root_id, Mode::kExclusive);
  }
  expect_node(root.page, root_id, 0, height);
  path.push_back(std::move(root));
  for (std::uint32_t depth = 1;; ++depth) {  // a cycle ends at the leaf level
    Node n(path.back().page.data());
    const BlockId parent = path.back().page.page_id();
    const bool is_root = parent == state_.root;
    const bool safe = cell_size > 0 ? safe_for_insert(n, cell_size) : safe_for_erase(n, is_root);
    if (safe) {
      // With parent_upper, a safe leaf keeps its parent latched too.
      const std::ptrdiff_t keep = parent_upper != nullptr && depth == height && depth > 1 ? 2 : 1;
      path.erase(path.begin(), path.end() - keep);
      root_guard.unlock();
    }
    if (depth == height) break;  // n is a leaf
    const std::uint32_t idx = n.child_index(key);
    path.back().child_idx = idx;
    if (parent_upper != nullptr && depth + 1 == height && upper != nullptr) *parent_upper = *upper;
    if (upper != nullptr && idx < n.count()) upper->emplace(n.key(idx));  // deeper: tighter
    const BlockId child_id = checked_child(path, idx);
    Latched child;
    if (!try_latch_cached(child_id, Mode::kExclusive, child)) {
      child = co_await latch_page(child_id, Mode::kExclusive);
    }
    expect_node(child.page, parent, depth, height);
    path.push_back(std::move(child));
  }
}

Task<bool> BTree::insert_into_leaf(std::vector<Latched>& path, std::span<const std::byte> cell,
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
    std::vector<std::byte> copy(cell.begin(), cell.end());
    co_await split_and_insert(path, path.size() - 1, std::move(copy), pos);
  }
  if (old_overflow != kInvalidBlockId) co_await free_overflow(old_overflow);
  const bool leaf_underfull = underflows(n) && leaf.page.page_id() != state_.root;
  co_return leaf_underfull;
}

namespace {

// Rebuilds node `n` (of `type`, keeping its links) from `cells`.
// A node's cells as views: into a copy of its page (the node is rebuilt in
// place) and into the cell being inserted.
using CellViews = std::vector<std::span<const std::byte>>;

void rebuild(Node& n, std::span<std::byte> bytes, PageType type, const CellViews& cells,
             std::size_t from, std::size_t to, BlockId link0, BlockId link1) {
  Node::init(bytes, type);
  n.set_link0(link0);
  n.set_link1(link1);
  for (std::size_t i = from; i < to; ++i)
    n.insert_cell(static_cast<std::uint32_t>(i - from), cells[i]);
}

// Do cells [from, to) fit one node of `usable` bytes?
bool fit(const CellViews& cells, std::size_t from, std::size_t to, std::uint32_t usable) {
  std::uint64_t bytes = 0;
  for (std::size_t i = from; i < to; ++i) bytes += cells[i].size() + page::kSlotSize;
  return bytes <= usable;
}

// The cells of the node in `page`, as views into `copy`, which receives a copy of the page.
CellViews cells_of(std::span<const std::byte> page, std::vector<std::byte>& copy) {
  copy.assign(page.begin(), page.end());
  const Node c(std::span<std::byte>(copy.data(), copy.size()));
  CellViews cells;
  cells.reserve(c.count() + 1);
  for (std::uint32_t i = 0; i < c.count(); ++i) cells.push_back(c.cell(i));
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
  std::vector<std::byte> copy;
  CellViews cells = cells_of(cur.page.data(), copy);
  cells.insert(cells.begin() + pos, std::span<const std::byte>(cell));
  const std::size_t total = cells.size();

  // Split point: by count when the classic key limit forced the split, else
  // at half of the bytes (each half then keeps its minimum fill).
  std::size_t m = total / 2;
  const std::uint32_t t = state_.minimum_degree;
  if (t == 0 || total <= max_keys()) {
    std::size_t all = 0;
    for (const auto& c : cells) all += c.size() + page::kSlotSize;
    std::size_t acc = 0;
    m = 0;
    while (m < total - 1 && acc + cells[m].size() + page::kSlotSize <= all / 2) {
      acc += cells[m].size() + page::kSlotSize;
      ++m;
    }
    // The left half stops short of half the bytes by less than a cell, so
    // with cells near the largest a leaf keeps (a quarter page) it can end a
    // few bytes under its minimum fill: give it the next cell when the right
    // half stays at or above its own.
    const std::size_t need = usable_ / 4;
    if (leaf && acc < need && m < total - 1) {
      const std::size_t next = cells[m].size() + page::kSlotSize;
      if (acc + next <= usable_ && all - acc - next >= need) ++m;
    }
    if (m == 0) m = 1;
  }
  if (!leaf && m >= total - 1) m = total - 2;  // inner: the pushed-up cell needs a right side
  if (!leaf && m == 0) m = 1;
  // Pages as page::verify() accepts them always split into two that fit; a
  // minimum degree inconsistent with the file's nodes might not.
  if (!fit(cells, 0, m, usable_) || !fit(cells, leaf ? m : m + 1, total, usable_)) {
    corrupt(cur.page.page_id(), "a split of " + std::to_string(total) +
                                    " cells does not fit two pages (minimum degree " +
                                    std::to_string(t) + ")");
  }
  const BlockId old_next = leaf ? n.next() : kInvalidBlockId;
  if (old_next != kInvalidBlockId) {
    check_link(cur.page.page_id(), old_next, "next leaf");
    check_not_held(path, cur.page.page_id(), old_next);
  }

  PageGuard right = co_await allocate_page(leaf ? PageType::kLeaf : PageType::kInner);
  AsyncSharedMutex::Guard right_latch = co_await right.latch().scoped_lock();
  Node r(right.data());
  std::string sep;
  const BlockId cur_id = cur.page.page_id();
  const BlockId right_id = right.page_id();
  if (leaf) {
    if (old_next == right_id) corrupt(cur_id, "the next leaf is a page from the free list");
    rebuild(n, cur.page.data(), PageType::kLeaf, cells, 0, m, right_id, n.prev());
    rebuild(r, right.data(), PageType::kLeaf, cells, m, total, old_next, cur_id);
    sep = std::string(r.key(0));
    if (old_next != kInvalidBlockId) {
      Latched next = co_await latch_page(old_next, Mode::kExclusive);  // left to right
      expect_type(next.page, cur_id, PageType::kLeaf, "next leaf");
      Node(next.page.data()).set_prev(right_id);
      next.page.mark_dirty();
    }
  } else {
    // cells[m] moves up: its key is the separator, its child becomes right's leftmost.
    const std::span<const std::byte> up = cells[m];
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
    if (cur_id != state_.root)
      corrupt(cur_id, "internal error: split reached the top of a trimmed path");
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
