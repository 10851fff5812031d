#include "engine/btree/optimistic_read.h"

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "engine/btree/btree.h"
#include "engine/btree/node.h"
#include "engine/format/page_format.h"
#include "engine/pager/buffer_pool.h"
#include "engine/pager/view_pins.h"

#if defined(__SANITIZE_THREAD__)
#define COROBTREE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COROBTREE_TSAN 1
#endif
#endif

#ifdef COROBTREE_TSAN
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace corobtree {
namespace {

// Restarts before giving the read to the engine's path.
constexpr int kAttempts = 8;

// The reads of page bytes below race with the engine thread's writes by
// design (validation discards what they saw): ThreadSanitizer ignores the
// calling thread's plain reads while one of these lives. Atomics still count.
class IgnoreRacyReads {
 public:
#ifdef COROBTREE_TSAN
  IgnoreRacyReads() noexcept { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
  ~IgnoreRacyReads() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
#else
  IgnoreRacyReads() noexcept = default;
#endif
  IgnoreRacyReads(const IgnoreRacyReads&) = delete;
  IgnoreRacyReads& operator=(const IgnoreRacyReads&) = delete;
};

// A binary search over a page that is not in the CPU caches takes one
// dependent cache miss per step (slot, then key). Asking for every line of
// the page at once lets the misses overlap instead.
void prefetch_page(const std::byte* p, std::uint32_t size) noexcept {
  for (std::uint32_t off = 0; off < size; off += 64) __builtin_prefetch(p + off);
}

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// A page that may change while it is read: every offset and length is
// checked against the page before use. A false return means "torn or bad".
class PageView {
 public:
  PageView(const std::byte* p, std::uint32_t size) noexcept : p_(p), size_(size) {}

  // The page is of type `want` and its slot array fits.
  bool check(PageType want) noexcept {
    if (page::type(p_) != want) return false;
    count_ = PageHeader::SlotCount::get(p_);
    overhead_ = want == PageType::kLeaf ? LeafCell::kFixed : InnerCell::kFixed;
    return page::kHeaderSize + std::uint64_t{count_} * page::kSlotSize <= size_;
  }
  std::uint32_t count() const noexcept { return count_; }
  BlockId link0() const noexcept { return PageHeader::Link0::get(p_); }

  bool key(std::uint32_t i, std::string_view& k) const noexcept {
    const std::uint32_t off = cell_offset(i);
    if (off + overhead_ > size_) return false;
    const std::uint32_t klen = LeafCell::KeyLength::get(p_ + off);
    if (off + overhead_ + klen > size_) return false;
    k = {reinterpret_cast<const char*>(p_ + off + overhead_), klen};
    return true;
  }
  // First slot whose key is >= k (upper: > k); false when torn.
  bool bound(std::string_view k, bool upper, std::uint32_t& out) const noexcept {
    std::uint32_t lo = 0;
    std::uint32_t hi = count_;
    while (lo < hi) {
      const std::uint32_t mid = (lo + hi) / 2;
      std::string_view m;
      if (!key(mid, m)) return false;
      const bool go_right = upper ? compare_keys(k, m) >= 0 : compare_keys(m, k) < 0;
      if (go_right) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    out = lo;
    return true;
  }
  // Inner page: child i in [0, count].
  bool child(std::uint32_t i, BlockId& out) const noexcept {
    if (i == 0) {
      out = link0();
      return true;
    }
    const std::uint32_t off = cell_offset(i - 1);
    if (off + InnerCell::kFixed > size_) return false;
    out = InnerCell::Child::get(p_ + off);
    return true;
  }
  // Leaf: the inline value of slot i; false when torn or in overflow pages
  // (`overflow` tells which).
  bool value(std::uint32_t i, std::string_view& v, bool& overflow) const noexcept {
    const std::uint32_t off = cell_offset(i);
    overflow = false;
    if (off + LeafCell::kFixed > size_) return false;
    if ((LeafCell::Flags::get(p_ + off) & LeafCell::kOverflow) != 0) {
      overflow = true;
      return false;
    }
    const std::uint64_t klen = LeafCell::KeyLength::get(p_ + off);
    const std::uint64_t vlen = LeafCell::ValueLength::get(p_ + off);
    const std::uint64_t at = off + LeafCell::kFixed + klen;
    if (at + vlen > size_) return false;
    v = {reinterpret_cast<const char*>(p_ + at), static_cast<std::size_t>(vlen)};
    return true;
  }

 private:
  std::uint32_t cell_offset(std::uint32_t i) const noexcept {
    return le::load<std::uint16_t>(p_, page::kHeaderSize + i * page::kSlotSize);
  }

  const std::byte* p_;
  std::uint32_t size_;
  std::uint32_t count_ = 0;
  std::uint32_t overhead_ = 0;
};

enum class Step : unsigned char { kOk, kRetry, kFallback };

// What a step answers when a page does not look right: a retry if the frame
// changed meanwhile (torn), else the engine's path (which names the damage).
Step torn_or_bad(const BufferPool::OptimisticPage& pg) noexcept {
  return BufferPool::read_valid(pg) ? Step::kFallback : Step::kRetry;
}

class Reader {
 public:
  explicit Reader(BTree& tree) noexcept
      : tree_(tree), pool_(tree.pool()), page_size_(tree.pool().page_size()) {}

  // Starts an attempt: false while a writer is inside the tree.
  bool begin() noexcept {
    seq_ = tree_.window_seq();
    return (seq_ & 1) == 0;
  }
  // No writer entered the tree since begin() (call after the last read_valid).
  bool unchanged() const noexcept {
    std::atomic_thread_fence(std::memory_order_acquire);
    return tree_.window_seq() == seq_;
  }

  // Descends to the leaf whose range holds `key` (the leftmost leaf without
  // one); `leaf` is its frame, `view` its checked header.
  Step descend(const std::string_view* key, BufferPool::OptimisticPage& leaf, PageView& view) {
    const std::uint32_t height = tree_.published_height();
    BlockId id = tree_.published_root();
    if (height == 0 || height > 64) return Step::kFallback;
    for (std::uint32_t depth = 0;; ++depth) {
      BufferPool::OptimisticPage pg;
      if (!pool_.read_begin(id, pg)) return Step::kFallback;  // not cached: the engine loads it
      const bool is_leaf = depth + 1 == height;
      // Leaves: the pages a large tree's reads find outside the CPU caches.
      if (is_leaf) prefetch_page(pg.data, page_size_);
      PageView v(pg.data, page_size_);
      if (!v.check(is_leaf ? PageType::kLeaf : PageType::kInner)) return torn_or_bad(pg);
      if (is_leaf) {
        leaf = pg;
        view = v;
        leaf_id_ = id;
        return Step::kOk;
      }
      std::uint32_t idx = 0;
      if (key != nullptr && !v.bound(*key, /*upper=*/true, idx)) return torn_or_bad(pg);
      BlockId child = kInvalidBlockId;
      if (!v.child(idx, child)) return torn_or_bad(pg);
      // Validate before following the child.
      if (!BufferPool::read_valid(pg)) return Step::kRetry;
      id = child;
    }
  }

  BTree& tree() noexcept { return tree_; }
  BufferPool& pool() noexcept { return pool_; }
  // The page of the leaf the last descend() reached.
  BlockId leaf_id() const noexcept { return leaf_id_; }
  // The write-window number begin() saw.
  std::uint64_t seq() const noexcept { return seq_; }
  std::uint32_t page_size() const noexcept { return page_size_; }

 private:
  BTree& tree_;
  BufferPool& pool_;
  std::uint32_t page_size_;
  std::uint64_t seq_ = 0;
  BlockId leaf_id_ = kInvalidBlockId;
};

// The leaf whose range holds `key`, and the slot of the first entry >= key.
Step find(Reader& r, std::string_view key, BufferPool::OptimisticPage& leaf, PageView& v,
          std::uint32_t& pos) {
  const Step s = r.descend(&key, leaf, v);
  if (s != Step::kOk) return s;
  return v.bound(key, /*upper=*/false, pos) ? Step::kOk : torn_or_bad(leaf);
}

// `value` is scratch until the result is kOk (an attempt may fill it, then retry).
Step get_once(Reader& r, std::string_view key, std::string& value, bool& found) {
  BufferPool::OptimisticPage leaf;
  PageView v(nullptr, 0);
  std::uint32_t pos = 0;
  const Step s = find(r, key, leaf, v, pos);
  if (s != Step::kOk) return s;
  bool hit = false;
  if (pos < v.count()) {
    std::string_view k;
    if (!v.key(pos, k)) return torn_or_bad(leaf);
    if (k == key) {
      std::string_view bytes;
      bool overflow = false;
      if (!v.value(pos, bytes, overflow)) return overflow ? Step::kFallback : torn_or_bad(leaf);
      value.assign(bytes);  // reuses the caller's capacity
      hit = true;
    }
  }
  if (!BufferPool::read_valid(leaf) || !r.unchanged()) return Step::kRetry;
  found = hit;
  return Step::kOk;
}

// get_once() that pins the leaf's buffer instead of copying the value.
// `slot`: the caller's pin slot, claimed on the first hit (or taken over
// from the guard) and kept across attempts; on a hit it names the buffer.
Step get_pinned_once(Reader& r, std::string_view key, std::uint32_t& slot, std::string_view& view,
                     bool& found) {
  BufferPool::OptimisticPage leaf;
  PageView v(nullptr, 0);
  std::uint32_t pos = 0;
  const Step s = find(r, key, leaf, v, pos);
  if (s != Step::kOk) return s;
  std::string_view bytes;
  bool hit = false;
  if (pos < v.count()) {
    std::string_view k;
    if (!v.key(pos, k)) return torn_or_bad(leaf);
    if (k == key) {
      bool overflow = false;
      if (!v.value(pos, bytes, overflow)) return overflow ? Step::kFallback : torn_or_bad(leaf);
      hit = true;
    }
  }
  if (!BufferPool::read_valid(leaf) || !r.unchanged()) return Step::kRetry;
  if (!hit) {
    found = false;
    return Step::kOk;
  }
  // Pin, then validate again, seq_cst (engine/pager/view_pins.h): if nothing
  // changed, every later writer or reuse of the frame sees the pin first.
  ViewPins* pins = r.pool().view_pins();
  if (pins == nullptr) return Step::kFallback;
  if (slot == ViewPins::kNoSlot) {
    slot = pins->claim(leaf.data);
    if (slot == ViewPins::kNoSlot) return Step::kFallback;
  } else {
    pins->repoint(slot, leaf.data);
  }
  if (!BufferPool::view_valid(leaf) || r.tree().window_seq_after_pin() != r.seq()) {
    return Step::kRetry;
  }
  view = bytes;
  found = true;
  return Step::kOk;
}

Step scan_once(Reader& r, const ScanOptions& options, std::size_t limit,
               std::vector<std::pair<std::string, std::string>>& out) {
  // The pairs already in `out` are overwritten in place (their strings'
  // capacity reused) and the rest appended; `n` counts this attempt's.
  std::size_t n = 0;
  const std::string_view lower = options.lower ? std::string_view(*options.lower) : "";
  BufferPool::OptimisticPage leaf;
  PageView v(nullptr, 0);
  const Step s = r.descend(options.lower ? &lower : nullptr, leaf, v);
  if (s != Step::kOk) return s;
  std::uint32_t pos = 0;
  if (options.lower && !v.bound(lower, /*upper=*/false, pos)) return torn_or_bad(leaf);
  for (bool first_leaf = true;; first_leaf = false) {
    const std::size_t before = n;
    bool done = false;
    for (; pos < v.count() && n < limit; ++pos) {
      std::string_view k;
      if (!v.key(pos, k)) return torn_or_bad(leaf);
      if (options.upper && compare_keys(k, *options.upper) >= 0) {
        done = true;
        break;
      }
      // Out of order: torn, or a damaged file (the engine's path reports it).
      if (n > 0 && compare_keys(out[n - 1].first, k) >= 0) return torn_or_bad(leaf);
      std::string_view value;
      bool overflow = false;
      if (!v.value(pos, value, overflow)) return overflow ? Step::kFallback : torn_or_bad(leaf);
      if (n < out.size()) {
        out[n].first.assign(k);
        out[n].second.assign(value);
      } else {
        if (n == 0) out.reserve(std::min<std::size_t>(limit, 128));
        out.emplace_back(std::string(k), std::string(value));
      }
      ++n;
    }
    const BlockId next = v.link0();
    if (!BufferPool::read_valid(leaf)) return Step::kRetry;
    if (done || n >= limit || next == kInvalidBlockId) break;
    // A leaf after the first holds keys (a valid tree's do): anything else
    // could be a cycle of empty leaves, which the engine's path bounds.
    if (!first_leaf && n == before) return Step::kFallback;
    if (!r.unchanged()) return Step::kRetry;
    if (!r.pool().read_begin(next, leaf)) return Step::kFallback;
    prefetch_page(leaf.data, r.page_size());
    v = PageView(leaf.data, r.page_size());
    if (!v.check(PageType::kLeaf)) return torn_or_bad(leaf);
    pos = 0;
  }
  if (!r.unchanged()) return Step::kRetry;
  out.resize(n);
  return Step::kOk;
}

// Zero-copy for a cursor (LeafCopy::pins): pins the buffer of `leaf` with
// `out.slot` (claimed on the first call, kept across attempts) and validates
// again, seq_cst (engine/pager/view_pins.h). False: no pin (no pins, or no
// free slot): copy instead. True: out.data is the pinned buffer, or null when
// the leaf changed meanwhile (retry).
bool pin_leaf(Reader& r, const BufferPool::OptimisticPage& leaf, LeafCopy& out) noexcept {
  if (out.pins == nullptr) return false;
  if (out.slot == ViewPins::kNoSlot) {
    out.slot = out.pins->claim(leaf.data);
    if (out.slot == ViewPins::kNoSlot) {
      out.pins = nullptr;  // all in use: copy from now on
      return false;
    }
  } else {
    out.pins->repoint(out.slot, leaf.data);
  }
  const bool valid = BufferPool::view_valid(leaf) && r.tree().window_seq_after_pin() == r.seq();
  // The pool's frames are writable memory; the pin keeps them unchanged.
  out.data = valid ? const_cast<std::byte*>(leaf.data) : nullptr;
  return true;
}

// From slot `pos` of leaf `id` (its frame `leaf`, checked view `v`): walks
// right past leaves that hold nothing from there, then copies the leaf.
Step copy_leaf_from(Reader& r, BufferPool::OptimisticPage leaf, PageView v, BlockId id,
                    std::uint32_t pos, LeafCopy& out) {
  for (int hops = 0; pos == v.count(); ++hops) {
    // Past empty leaves to the right (a valid tree has few: bound the walk).
    const BlockId next = v.link0();
    if (!BufferPool::read_valid(leaf)) return Step::kRetry;
    if (next == kInvalidBlockId) {
      if (!r.unchanged()) return Step::kRetry;
      out.found = false;
      return Step::kOk;
    }
    if (hops == 64 || !r.pool().read_begin(next, leaf)) return Step::kFallback;
    prefetch_page(leaf.data, r.page_size());
    v = PageView(leaf.data, r.page_size());
    if (!v.check(PageType::kLeaf)) return torn_or_bad(leaf);
    id = next;
    pos = 0;
  }
  // Pin the frame's buffer (zero-copy) or copy it (one sequential pass),
  // then check the bytes, which no writer can tear any more: a bad cell in
  // validated bytes is damage.
  if (!pin_leaf(r, leaf, out)) {
    out.page.assign(leaf.data, leaf.data + r.page_size());  // reuses out.page's capacity
    if (!BufferPool::read_valid(leaf) || !r.unchanged()) return Step::kRetry;
    out.data = out.page.data();
  } else if (out.data == nullptr) {
    return Step::kRetry;
  }
  PageView copy(out.data, r.page_size());
  if (!copy.check(PageType::kLeaf) || pos > copy.count()) return Step::kFallback;
  for (std::uint32_t i = 0; i < copy.count(); ++i) {
    std::string_view value;
    bool overflow = false;
    std::string_view key;
    if (!copy.key(i, key) || !copy.value(i, value, overflow)) return Step::kFallback;
  }
  // A cursor reads on into the next leaf: ask for its lines now, so that its
  // copy, a few dozen steps later, does not wait for memory.
  BufferPool::OptimisticPage right;
  const BlockId next = copy.link0();
  if (next != kInvalidBlockId && r.pool().read_begin(next, right)) {
    prefetch_page(right.data, r.page_size());
  }
  out.leaf_id = id;
  out.pos = pos;
  out.found = true;
  out.seq = r.seq();
  return Step::kOk;
}

Step seek_once(Reader& r, std::string_view key, LeafCopy& out) {
  BufferPool::OptimisticPage leaf;
  PageView v(nullptr, 0);
  std::uint32_t pos = 0;
  const Step s = find(r, key, leaf, v, pos);
  if (s != Step::kOk) return s;
  return copy_leaf_from(r, leaf, v, r.leaf_id(), pos, out);
}

Step next_leaf_once(Reader& r, std::uint64_t seq, BlockId next, LeafCopy& out) {
  // A writer entered the tree since the copy: its link may be stale.
  if (r.seq() != seq) return Step::kFallback;
  if (next == kInvalidBlockId) {
    if (!r.unchanged()) return Step::kRetry;
    out.found = false;
    return Step::kOk;
  }
  BufferPool::OptimisticPage leaf;
  if (!r.pool().read_begin(next, leaf)) return Step::kFallback;
  prefetch_page(leaf.data, r.page_size());
  PageView v(leaf.data, r.page_size());
  if (!v.check(PageType::kLeaf)) return torn_or_bad(leaf);
  return copy_leaf_from(r, leaf, v, next, 0, out);
}

// Parents read_ahead asks for at most per list (leaves_near_once).
constexpr std::size_t kParentsAhead = 16;

Step leaves_near_once(Reader& r, std::string_view key, bool at_end, bool reverse, std::size_t max,
                      std::vector<BlockId>& out, std::vector<BlockId>& uncached_parents) {
  out.clear();
  uncached_parents.clear();
  const std::uint32_t height = r.tree().published_height();
  BlockId id = r.tree().published_root();
  if (height == 1) return r.unchanged() ? Step::kOk : Step::kRetry;
  if (height == 0 || height > 64) return Step::kFallback;
  // The leaves' grandparent and the parent's index in it (height >= 3): the
  // list goes on into the parent's neighbour.
  BufferPool::OptimisticPage grand;
  PageView grand_view(nullptr, 0);
  std::uint32_t grand_idx = 0;
  for (std::uint32_t depth = 0;; ++depth) {
    BufferPool::OptimisticPage pg;
    if (!r.pool().read_begin(id, pg)) return Step::kFallback;
    PageView v(pg.data, r.page_size());
    if (!v.check(PageType::kInner)) return torn_or_bad(pg);
    std::uint32_t idx = v.count();
    if (!at_end && !v.bound(key, /*upper=*/true, idx)) return torn_or_bad(pg);
    if (depth + 2 < height) {
      if (depth + 3 == height) {
        grand = pg;
        grand_view = v;
        grand_idx = idx;
      }
      BlockId child = kInvalidBlockId;
      if (!v.child(idx, child)) return torn_or_bad(pg);
      if (!BufferPool::read_valid(pg)) return Step::kRetry;
      id = child;
      continue;
    }
    // The leaves' parent: children idx +- 1, 2, ...; then those of the
    // parent's neighbours in scan direction while they are cached (within
    // the grandparent). After each parent the next one is looked at even
    // when the list is full, so that a cold scan reads it well before it
    // gets there (`uncached_parents`).
    for (bool first = true;; first = false) {
      for (std::uint32_t k = first ? 1 : 0; out.size() < max; ++k) {
        if (reverse ? idx < k : idx + k > v.count()) break;
        const std::uint32_t c = reverse ? idx - k : idx + k;
        BlockId child = kInvalidBlockId;
        if (!v.child(c, child)) return torn_or_bad(pg);
        out.push_back(child);
      }
      if (!BufferPool::read_valid(pg)) return Step::kRetry;
      if (grand.word == nullptr) break;
      if (reverse ? grand_idx == 0 : grand_idx >= grand_view.count()) break;
      grand_idx = reverse ? grand_idx - 1 : grand_idx + 1;
      BlockId next = kInvalidBlockId;
      if (!grand_view.child(grand_idx, next)) return torn_or_bad(grand);
      if (!BufferPool::read_valid(grand)) return Step::kRetry;
      if (!r.pool().read_begin(next, pg)) {  // not cached: the list ends here
        // It and the next few parents that are not cached either.
        uncached_parents.push_back(next);
        for (std::uint32_t g = grand_idx; uncached_parents.size() < kParentsAhead;) {
          if (reverse ? g == 0 : g >= grand_view.count()) break;
          g = reverse ? g - 1 : g + 1;
          if (!grand_view.child(g, next)) return torn_or_bad(grand);
          BufferPool::OptimisticPage probe;
          if (!r.pool().read_begin(next, probe)) uncached_parents.push_back(next);
        }
        if (!BufferPool::read_valid(grand)) return Step::kRetry;
        break;
      }
      if (out.size() >= max) break;
      v = PageView(pg.data, r.page_size());
      if (!v.check(PageType::kInner)) return torn_or_bad(pg);
      idx = reverse ? v.count() : 0;
    }
    return r.unchanged() ? Step::kOk : Step::kRetry;
  }
}

template <typename Once>
Optimistic run(BTree& tree, Once once) {
  if (!tree.optimistic_enabled()) return Optimistic::kFallback;
  [[maybe_unused]] const IgnoreRacyReads ignore;
  Reader r(tree);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (!r.begin()) {
      cpu_relax();
      continue;
    }
    switch (once(r)) {
      case Step::kOk: return Optimistic::kDone;
      case Step::kFallback: return Optimistic::kFallback;
      case Step::kRetry: break;
    }
  }
  return Optimistic::kFallback;
}

}  // namespace

Optimistic optimistic_get(BTree& tree, std::string_view key, std::string& value, bool& found) {
  return run(tree, [&](Reader& r) { return get_once(r, key, value, found); });
}

Optimistic optimistic_get_pinned(BTree& tree, std::string_view key, PinnedValue& out, bool& found) {
  // A guard that pins already lends its slot: one store names the new
  // buffer (instead of a release and a claim).
  ViewPins* pins = tree.pool().view_pins();
  std::uint32_t slot =
      pins == nullptr ? ViewPins::kNoSlot : detail::PinAccess::take_slot(out, pins);
  std::string_view view;
  const Optimistic result =
      run(tree, [&](Reader& r) { return get_pinned_once(r, key, slot, view, found); });
  if (result == Optimistic::kDone && found) {
    detail::PinAccess::set_pinned(out, pins, slot, view);
  } else if (slot != ViewPins::kNoSlot) {
    pins->release(slot);
  }
  return result;
}

namespace {

// A leaf read's slot: kept only when it pins the leaf the result names.
Optimistic keep_pin_if_served(Optimistic result, LeafCopy& out) noexcept {
  if (out.slot != ViewPins::kNoSlot &&
      (result != Optimistic::kDone || !out.found || out.data == out.page.data())) {
    out.pins->release(out.slot);
    out.slot = ViewPins::kNoSlot;
  }
  return result;
}

}  // namespace

Optimistic optimistic_seek(BTree& tree, std::string_view key, LeafCopy& out) {
  ViewPins* const pins = out.pins;
  out.slot = ViewPins::kNoSlot;
  const Optimistic result = run(tree, [&](Reader& r) { return seek_once(r, key, out); });
  if (out.pins == nullptr) out.pins = pins;  // (cleared when no slot was free)
  return keep_pin_if_served(result, out);
}

Optimistic optimistic_next_leaf(BTree& tree, std::uint64_t seq, BlockId next, LeafCopy& out) {
  ViewPins* const pins = out.pins;
  out.slot = ViewPins::kNoSlot;
  const Optimistic result = run(tree, [&](Reader& r) { return next_leaf_once(r, seq, next, out); });
  if (out.pins == nullptr) out.pins = pins;
  return keep_pin_if_served(result, out);
}

Optimistic optimistic_leaves_near(BTree& tree, std::string_view key, bool at_end, bool reverse,
                                  std::size_t max, std::vector<BlockId>& out,
                                  std::vector<BlockId>& uncached_parents) {
  return run(tree, [&](Reader& r) {
    return leaves_near_once(r, key, at_end, reverse, max, out, uncached_parents);
  });
}

Optimistic optimistic_scan(BTree& tree, const ScanOptions& options, std::size_t limit,
                           std::vector<std::pair<std::string, std::string>>& out) {
  if (options.reverse || limit == 0) return Optimistic::kFallback;
  return run(tree, [&](Reader& r) { return scan_once(r, options, limit, out); });
}

}  // namespace corobtree
