// BTree: a B+tree of byte-string keys and values over a BufferPool.
//
// Values live in leaves (or, when a cell would exceed a quarter of a page, in
// a chain of overflow pages); inner nodes hold separators; leaves are linked
// both ways. Node capacity is set by bytes; with minimum_degree t > 0 a node
// also holds at most 2t-1 keys and, unless its bytes are a quarter full, at
// least t-1 (the seed's classic bounds).
//
// Concurrency (all tasks on one loop thread): readers descend with shared
// page latches, coupling parent to child (a reader holds at most a parent and
// a child, top-down, or two leaves left-to-right). Writers are serialised by
// writer_mutex() and descend with exclusive latches, releasing the ancestors
// as soon as a child cannot split (insert) or underflow (erase); siblings are
// latched left to right under an exclusively latched parent. A reader waiting
// on the disk therefore never stops other readers, and no lock order cycles.
//
// Untrusted files: page::verify() has checked each page's structure when it
// was read, and whoever follows a pointer (child, leaf sibling, overflow or
// free-list link) checks that it names a page of the file that the caller does
// not hold latched, and that the page reached has the expected type (a child
// at depth d is a leaf iff d == height - 1), so descents end within `height`
// steps (height <= kMaxHeight); chains are bounded by the file's page count.
// Failures are Error(kCorruption) naming the file and the page.
//
// Invariants (checked by validate()): keys strictly increase within a node and
// lie within their parent's separator bounds; every leaf is at depth height-1;
// non-root nodes are not underfull and no node is overfull; the leaf chain
// visits every leaf in key order with consistent prev links; every reachable
// page and every free page has a valid checksum; the free list is disjoint
// from the tree; every page below page_count is accounted for.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/stats.h>

#include <corobtree/task.h>
#include "engine/btree/node.h"
#include "engine/format/commit_state.h"
#include "engine/pager/buffer_pool.h"
#include "io/async_mutex.h"
#include "io/async_shared_mutex.h"

namespace corobtree {

class BTree {
 public:
  // REQUIRES: state.root is an initialised node in the pool's file.
  BTree(BufferPool& pool, TreeState state);

  // Largest key accepted (992 bytes for 4 KiB pages); larger ones are rejected
  // with Error(kInvalidArgument). Values may be up to kMaxValueSize bytes.
  std::uint32_t max_key_size() const noexcept { return max_key_; }
  static constexpr std::uint64_t kMaxValueSize = corobtree::kMaxValueSize;

  Task<std::optional<std::string>> get(std::string_view key);

  // Writers hold writer_mutex() around the calls below (a transaction spans
  // several of them and its commit record).
  AsyncMutex& writer_mutex() noexcept { return writer_mutex_; }
  // Inserts or replaces.
  Task<void> put_locked(std::string_view key, std::string_view value);
  // Returns whether the key was present.
  Task<bool> erase_locked(std::string_view key);
  // One operation of a batch for apply_sorted_locked (views into the caller's bytes).
  struct SortedOp {
    std::string_view key;
    std::string_view value;
    bool erase = false;
  };
  // Applies `ops`, whose keys strictly increase, as put_locked / erase_locked
  // one after the other would; returns whether the tree changed. A run of puts
  // whose keys fall into the leaf that the run's first put descended to, and
  // whose cells fit it, goes into that leaf while it stays latched, without a
  // descent each.
  Task<bool> apply_sorted_locked(std::span<const SortedOp> ops);
  // Builds the tree bottom-up from strictly increasing keys into packed
  // leaves. REQUIRES: the tree is empty. Throws kInvalidArgument on unsorted input.
  Task<void> bulk_load_locked(const std::vector<std::pair<std::string, std::string>>& sorted);

  // Readers (get, and each TreeCursor seek or step that descends) hold this
  // latch shared from the root to the last page they read; nothing else takes
  // it. Compaction holds it exclusively (with the writer mutex) while it swaps
  // the file under the pool and calls replace_state(), so that no read spans
  // the swap: one that started before it finishes in the old file first.
  AsyncSharedMutex& read_gate() noexcept { return read_gate_; }
  // The tree is now `state` (a packed copy that the pool's file holds).
  // REQUIRES: the writer mutex and read_gate() held exclusively; no page of
  // the old tree pinned.
  void replace_state(const TreeState& state) noexcept { state_ = state; }

  // Checks every invariant (see above); flushes the pool first so that the
  // on-disk checksums it verifies are current. Takes the writer mutex.
  Task<ValidationReport> validate();

  // ---- optimistic readers on any thread (engine/btree/optimistic_read.h) ----
  // Every change to the tree's pages or state happens inside a write window:
  // its sequence number is odd while one is open and even otherwise, and the
  // root, height and key count that readers see are published when the
  // outermost window closes. A lock-free reader checks that the number was
  // even when it began and unchanged when it ended (with each page's frame
  // word, BufferPool::read_valid, for the pool's own reuse of frames).
  // Windows nest (a transaction opens one around its puts and erases); they
  // belong to the engine thread, under the writer mutex. Opening the
  // outermost one may throw std::bad_alloc (no memory for the copies of
  // pinned pages, BufferPool::reserve_spares) before the tree or any page
  // changed; once open, nothing in it fails.
  class [[nodiscard]] WriteWindow {
   public:
    explicit WriteWindow(BTree& tree) : tree_(&tree) { tree.open_window(); }
    WriteWindow(const WriteWindow&) = delete;
    WriteWindow& operator=(const WriteWindow&) = delete;
    ~WriteWindow() { tree_->close_window(); }

   private:
    BTree* tree_;
  };
  std::uint64_t window_seq() const noexcept { return window_seq_.load(std::memory_order_acquire); }
  // window_seq() for a reader that has just pinned a view (engine/pager/view_pins.h).
  std::uint64_t window_seq_after_pin() const noexcept {
    return window_seq_.load(std::memory_order_seq_cst);
  }
  // The tree's root and height as of the last closed window (any thread).
  BlockId published_root() const noexcept { return pub_root_.load(std::memory_order_relaxed); }
  std::uint32_t published_height() const noexcept {
    return pub_height_.load(std::memory_order_relaxed);
  }
  std::uint64_t published_keys() const noexcept {
    return pub_keys_.load(std::memory_order_relaxed);
  }
  // Off once the database closes or stops: readers then take the engine's
  // path, which reports why.
  bool optimistic_enabled() const noexcept {
    return optimistic_on_.load(std::memory_order_acquire);
  }
  void disable_optimistic() noexcept { optimistic_on_.store(false, std::memory_order_release); }

  const TreeState& state() const noexcept { return state_; }
  std::uint64_t page_count() const noexcept { return pool_.disk().block_count(); }
  BufferPool& pool() noexcept { return pool_; }
  void check_key(std::string_view key) const;
  void check_value(std::string_view value) const;

 private:
  friend class TreeCursor;

  // A pinned and latched page. The latch is always released before the pin
  // (an unpinned frame may be reused, and its latch with it).
  struct Latched {
    PageGuard page;
    AsyncSharedMutex::Guard latch;  // declared after `page`: destroyed first
    std::uint32_t child_idx = 0;    // index of the next node in this one (inner)

    Latched() = default;
    Latched(Latched&&) noexcept = default;
    Latched& operator=(Latched&& o) noexcept {
      latch = std::move(o.latch);
      page = std::move(o.page);
      child_idx = o.child_idx;
      return *this;
    }
  };

  // Reads.
  Task<Latched> descend_shared(std::string_view key);
  bool try_descend_cached(std::string_view key, Latched& out);
  Task<std::string> read_value(const Node& leaf, BlockId leaf_id, std::uint32_t pos);
  Task<Latched> latch_page(BlockId id, AsyncSharedMutex::Mode mode);
  // latch_page without a coroutine: false (holding nothing) unless the page is
  // cached and its latch free.
  bool try_latch_cached(BlockId id, AsyncSharedMutex::Mode mode, Latched& out);

  // Writes (writer mutex held).
  // Returns true when the leaf is left underfull (an update shrank a value).
  Task<bool> insert_into_leaf(std::vector<Latched>& path, std::span<const std::byte> cell,
                              std::string_view key);
  // The put of `cell` (for `key`) into the latched leaf when it needs neither
  // a split nor the freeing of an overflow chain; false (nothing changed)
  // otherwise. Sets `shrank` as insert_into_leaf's result.
  bool put_in_leaf(Latched& leaf, std::span<const std::byte> cell, std::string_view key,
                   bool& shrank);
  // Exclusive descent; cell_size > 0 for an insert of that leaf cell, 0 for an erase.
  // With `upper`, sets it to the leaf's exclusive upper bound: the smallest
  // separator right of the path (nullopt for the rightmost leaf). With
  // `parent_upper` too (and height >= 2), the path keeps the leaf's parent
  // even when the leaf is safe, and it gets the parent's upper bound.
  Task<void> descend_exclusive(std::string_view key, std::uint32_t cell_size,
                               std::vector<Latched>& path, AsyncSharedMutex::Guard& root_guard,
                               std::optional<std::string>* upper = nullptr,
                               std::optional<std::string>* parent_upper = nullptr);
  // Rebalances the leaf holding `key` if it is underfull.
  Task<void> fix_underflow(std::string_view key);
  Task<void> split_and_insert(std::vector<Latched>& path, std::size_t level,
                              std::vector<std::byte> cell, std::uint32_t pos);
  Task<void> rebalance(std::vector<Latched>& path, std::size_t level);
  Task<PageGuard> allocate_page(PageType type);
  void free_page(PageGuard& page);
  Task<BlockId> write_overflow(std::string_view value);
  Task<void> free_overflow(BlockId first);
  Task<std::vector<std::byte>> make_leaf_cell(std::string_view key, std::string_view value);

  // Prefetch hints for apply_sorted_locked: walks the cached inner levels to
  // the leaf of each key of `ops` (no latch: the writer mutex is held and it
  // does not suspend), then starts loading those leaves' page-table entries,
  // frames and first lines together, so that their cache misses overlap.
  void prefetch_leaves(std::span<const SortedOp> ops);
  // The second step, a few operations before a leaf is searched (its header
  // and slots have arrived by then): the cells that the first three steps of
  // its binary search read.
  void prefetch_probes(BlockId leaf);

  // Policy.
  bool leaf_fits(const Node& n, std::uint32_t cell_size) const noexcept;
  bool inner_fits(const Node& n, std::uint32_t cell_size) const noexcept;
  bool underflows(const Node& n) const noexcept;
  std::uint32_t min_fill(const Node& n) const noexcept;
  bool safe_for_insert(const Node& n, std::uint32_t leaf_cell_size) const noexcept;
  bool safe_for_erase(const Node& n, bool is_root) const noexcept;
  std::uint32_t max_cell() const noexcept { return max_cell_; }
  [[noreturn]] void corrupt(BlockId id, const std::string& why) const;
  // Nodes per path and the 2t-1 key cap (unbounded without t).
  static constexpr std::uint32_t kMaxHeight = 64;
  std::uint64_t max_keys() const noexcept;
  // Pointer checks (Error(kCorruption) naming `from`, the page that holds the pointer).
  void check_tree_state(BlockId root, std::uint32_t height) const;
  void check_link(BlockId from, BlockId to, const char* what) const;
  void check_not_held(const std::vector<Latched>& path, BlockId from, BlockId to) const;
  // Child `idx` of path.back(), checked with check_link and check_not_held.
  BlockId checked_child(std::vector<Latched>& path, std::uint32_t idx) const;
  // The child of inner node `inner` whose range holds `key` (the shared
  // descents), checked with check_link and for pointing at `inner` itself.
  BlockId checked_child_for(PageGuard& inner, std::string_view key) const;
  void expect_node(const PageGuard& page, BlockId from, std::uint32_t depth,
                   std::uint32_t height) const;
  void expect_type(const PageGuard& page, BlockId from, PageType want, const char* what) const;

  std::vector<BlockId> prefetch_ids_;      // prefetch_leaves' scratch
  std::vector<BlockId> prefetch_leaf_of_;  // the leaf of each operation of the group

  void open_window();
  void close_window() noexcept;

  BufferPool& pool_;
  TreeState state_;
  std::uint32_t page_size_;
  std::uint32_t usable_;
  std::uint32_t max_cell_;  // largest cell kept in a node: a quarter of the usable bytes
  std::uint32_t max_key_;
  AsyncMutex writer_mutex_;
  AsyncSharedMutex root_latch_;  // guards state_.root / height against readers
  AsyncSharedMutex read_gate_;   // held shared by every read; see read_gate()
  // Optimistic readers (see WriteWindow).
  std::uint32_t window_depth_ = 0;
  std::atomic<std::uint64_t> window_seq_{0};
  std::atomic<BlockId> pub_root_;
  std::atomic<std::uint32_t> pub_height_;
  std::atomic<std::uint64_t> pub_keys_;
  std::atomic<bool> optimistic_on_{true};
};

}  // namespace corobtree
