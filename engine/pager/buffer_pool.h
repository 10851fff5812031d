// BufferPool: caches disk blocks in a fixed set of frames, over a DiskManager.
//
// fetch_page(id) returns a PageGuard that pins the page's frame until the
// guard dies; an unpinned frame is evictable, least recently unpinned first,
// pages that PageHooks::keep_longer names after the others (LruReplacer). A miss suspends only the
// task that missed; tasks that miss on the same page share one disk read. A dirty victim is written
// back before its frame is reused, and stays findable in the page table until that write completes,
// so nobody can read the stale copy from disk meanwhile (a fetch during the write-back pins the
// frame and cancels the eviction). When every frame is pinned, a fetch waits for an unpin; if
// nothing could ever unpin, the thread's Scheduler reports Error(kDeadlock) naming this wait.
//
// pool_pages == 0 is the direct mode (the seed's "without buffer pool"
// baseline) through the same code: each pinned page gets a transient frame,
// every fetch that finds no pinned copy reads the disk, and the last unpin of
// a dirty page writes it back (in the background; its error, if any, is
// rethrown by the next pool call and the page stays cached and dirty so
// nothing is lost).
//
// Each frame has a shared/exclusive latch (PageGuard::latch()) that may be
// held across co_await; the pool itself never takes it. The pool's own waits
// (a frame's read or write to finish, a frame to be released, direct-mode
// write-backs to drain) are Conditions and a DrainLatch (io/condition.h),
// whose waiters are posted to the thread's Scheduler, never resumed inline.
//
// Invariants: a page is in at most one frame; a frame in the page table is
// loading, or holds the page's current contents; pinned frames are never in
// the replacer; a loading frame is pinned by its loader.
//
// Optimistic readers (any thread): the pool keeps a lock-free PageDirectory
// of the pages it publishes, one state word per page (the frame holding it
// and a version that every publish and every clear bumps). read_begin() takes
// a page's frame and word without any lock or pin and without writing
// anything but the frame's `referenced` byte (a dense array, written only
// when clear); read_valid() afterwards says whether the word is unchanged:
// then the frame held that page, unchanged by the pool, the whole time. The
// pool clears a page's word before it reuses the frame (eviction,
// delete_page, discard_all, a failed load) and publishes it once a load (or
// new_page) has finished. Writers of the page's contents are the tree's
// business (BTree's write window); checksum stamping at write-back touches
// only the header's CRC and LSN, which optimistic readers never read. Frames
// are never freed while the pool lives. The replacer gives a referenced frame
// a second chance before evicting it, so pages read only optimistically stay
// cached. Direct mode publishes nothing.
//
// Pinned views (include/corobtree/pinned_value.h): a frame's bytes live in a
// page buffer, at first the frame's own part of the arena. Readers pin a
// buffer through ViewPins (engine/pager/view_pins.h) to keep a value's bytes
// after their read. The pool never writes into a pinned buffer: before a
// frame is reused (make_private) or a write window changes the tree
// (unshare_viewed), a frame whose buffer is pinned gets another buffer (a
// copy of the page when it stays), and the pinned one is detached until
// its last pin is released. A frame off its own arena slot is published with
// kMovedBit in its directory word: read_begin then loads frame_data_. So a pin never holds a frame:
// eviction and writers go on, and pins cost at most one page of memory each beyond pool_pages.
// Direct mode publishes nothing, so nothing there is pinned.
//
// Thread-safety: everything but read_begin(), read_valid(), view_valid() and
// view_pins() is loop-affine,
// like everything in io/: one thread (the database's engine thread).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include <corobtree/stats.h>

#include <corobtree/task.h>
#include "engine/pager/lru_replacer.h"
#include "engine/pager/page_directory.h"
#include "engine/pager/page_table.h"
#include "engine/pager/view_pins.h"
#include "io/aligned_buffer.h"
#include "io/async_shared_mutex.h"
#include "io/condition.h"
#include "io/disk_manager.h"

namespace corobtree {

class BufferPool;

// Where the pool reads pages from and writes dirty pages back to. Without one
// the pool uses its DiskManager directly; the database interposes its
// write-ahead log (engine/log/page_image_store.h), so that a dirty page is appended to the log
// instead of overwriting the data file, and a page the log holds is read from it.
class PageStore {
 public:
  virtual ~PageStore() = default;
  virtual Task<void> read_page(BlockId id, std::span<std::byte> out) = 0;
  virtual Task<void> write_page(BlockId id, std::span<const std::byte> page) = 0;
  // Pages first, first + 1, ... into scattered buffers (page_size bytes
  // each): page first + i into pages[i]; the default reads them one by one.
  virtual Task<void> read_pages_into(BlockId first, std::uint32_t page_size,
                                     std::span<std::byte* const> pages);
};

// Hooks through which the engine's page format sees every transfer: verify a
// page after it is read from disk (throw to fail the fetch) and stamp it
// (checksum) just before it is written.
class PageHooks {
 public:
  virtual ~PageHooks() = default;
  virtual void after_read(BlockId id, std::span<const std::byte> page) = 0;
  virtual void before_write(BlockId id, std::span<std::byte> page) = 0;
  // Asked when a cached page becomes evictable: true keeps it in the pool
  // longer than ordinary pages (LruReplacer: the B+tree's inner pages).
  virtual bool keep_longer(std::span<const std::byte> /*page*/) const noexcept { return false; }
};

// Pins one page while alive. Move-only.
class [[nodiscard]] PageGuard {
 public:
  PageGuard() noexcept = default;
  PageGuard(PageGuard&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), frame_(o.frame_) {}
  PageGuard& operator=(PageGuard&& o) noexcept {
    if (this != &o) {
      release();
      pool_ = std::exchange(o.pool_, nullptr);
      frame_ = o.frame_;
    }
    return *this;
  }
  PageGuard(const PageGuard&) = delete;
  PageGuard& operator=(const PageGuard&) = delete;
  ~PageGuard() { release(); }

  explicit operator bool() const noexcept { return pool_ != nullptr; }
  BlockId page_id() const noexcept;
  std::span<std::byte> data() noexcept;
  std::span<const std::byte> data() const noexcept;
  // The page will be written back before its frame is reused (or at unpin in
  // direct mode, or by flush_page / flush_all).
  void mark_dirty() noexcept;
  bool is_dirty() const noexcept;
  // The frame's latch, for callers that must exclude each other on a page.
  AsyncSharedMutex& latch() noexcept;
  // Unpins now (the guard becomes empty).
  void release() noexcept;

 private:
  friend class BufferPool;
  PageGuard(BufferPool* pool, FrameId frame) noexcept : pool_(pool), frame_(frame) {}

  BufferPool* pool_ = nullptr;
  FrameId frame_ = 0;
};

class BufferPool {
 public:
  // REQUIRES: `disk` outlives the pool. pool_pages == 0 selects direct mode.
  BufferPool(DiskManager& disk, std::size_t pool_pages);
  // Does not write anything: call close() (or flush_all()) first.
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Awaitable returned by fetch_page: a hit completes without suspending or
  // allocating; a miss runs the slow path as a Task.
  class [[nodiscard]] FetchAwaiter {
   public:
    FetchAwaiter(BufferPool& pool, BlockId id) noexcept : pool_(pool), id_(id) {}
    bool await_ready() noexcept { return pool_.try_fetch_cached(id_, guard_); }
    bool await_suspend(std::coroutine_handle<> h) {
      slow_ = pool_.fetch_slow(id_);
      awaiter_.emplace(std::move(slow_).operator co_await());
      return awaiter_->await_suspend(h);
    }
    PageGuard await_resume() {
      if (awaiter_) return awaiter_->await_resume();
      return std::move(guard_);
    }

   private:
    BufferPool& pool_;
    BlockId id_;
    PageGuard guard_;
    Task<PageGuard> slow_;
    std::optional<Task<PageGuard>::Awaiter> awaiter_;
  };

  // Pins page `id`, reading it on a miss. Errors: those of DiskManager reads
  // (and of a dirty victim's write-back), kClosed after close().
  FetchAwaiter fetch_page(BlockId id) noexcept { return FetchAwaiter(*this, id); }
  // Read-ahead: starts reading pages first .. first + count - 1 (consecutive
  // blocks) into frames, as one read where the disk can, and returns at once
  // how many pages it started: pages at the start that are cached or being
  // loaded are skipped, the run ends at the next such page, and where no frame is free or clean and
  // evictable (it never writes back or waits). 0 in direct mode, with the
  // pread backend (its reads are synchronous: a read-ahead would only delay
  // the caller), and after close() or a deferred error. The pages are pinned
  // while their read is in flight (a fetch of one shares the read), then
  // unpinned as any fetched page. A failed read is dropped: its pages are
  // not cached, and the next fetch reads them again and reports the error.
  // flush_all() waits for the reads.
  std::uint32_t prefetch(BlockId first, std::uint32_t count = 1);
  // Returns once no prefetch() read is in flight.
  Task<void> readahead_drained() { return prefetches_.drained(); }
  // Allocates a new zeroed block on disk and pins it (already dirty).
  Task<PageGuard> new_page();
  // Drops the page from the pool without writing it (the caller frees the
  // block). REQUIRES: `guard` is the page's only pin; else kInvalidArgument.
  Task<void> delete_page(PageGuard guard);
  // Writes the page if it is cached and dirty.
  Task<void> flush_page(BlockId id);
  // Writes every dirty page (all in flight together) and waits for direct-mode
  // write-backs; rethrows a deferred write-back error if one remains.
  Task<void> flush_all();
  // Forgets every cached page without writing anything, so that each page is
  // read from the store again (the database swapped in another data file).
  // REQUIRES: no page pinned, dirty or in transfer (flush_all() first, with
  // nothing else using the pool); else Error(kInvalidArgument), nothing dropped.
  void discard_all();
  // flush_all(), then DiskManager::sync(); afterwards every call throws kClosed.
  Task<void> close();

  // Hints for a writer about to visit many pages (pooled mode; nothing in
  // direct mode), on the engine thread: no pin, no statistics, no LRU touch.
  // peek: the bytes of cached page `id` (not being read), or null; valid
  // until the caller next suspends. prefetch_slot: starts loading the page
  // table's entry for `id`; prefetch_page, after it: the frame's header and
  // the first `bytes` of the page, if it is cached.
  const std::byte* peek(BlockId id) noexcept;
  void prefetch_slot(BlockId id) const noexcept { table_.prefetch(id); }
  void prefetch_page(BlockId id, std::uint32_t bytes) noexcept;

  BufferPoolStats stats() const noexcept;
  void reset_stats() noexcept;  // all counters but `pinned`
  std::size_t pool_pages() const noexcept { return pool_pages_; }
  bool direct() const noexcept { return pool_pages_ == 0; }
  std::uint32_t page_size() const noexcept { return page_size_; }
  DiskManager& disk() noexcept { return disk_; }
  // Bytes of bookkeeping (frame headers, replacer, page table) per frame.
  double metadata_bytes_per_frame() const noexcept;

  // REQUIRES: set before the first fetch; `hooks` outlives the pool.
  void set_hooks(PageHooks* hooks) noexcept { hooks_ = hooks; }
  // REQUIRES: set before the first fetch; `store` outlives the pool. Null: the disk.
  void set_store(PageStore* store) noexcept { store_ = store; }

  // Reads the stored copy of `id` (through the store, not the cache) and
  // verifies it with the hooks, as a miss would.
  Task<void> read_stored(BlockId id, std::span<std::byte> out);
  // Copies page `id` into `out` if it is cached, loaded and clean; false otherwise.
  bool copy_if_clean(BlockId id, std::span<std::byte> out) const noexcept;
  // How many times a page was marked dirty (a transaction compares it to
  // learn whether it changed anything).
  std::uint64_t dirty_marks() const noexcept { return dirty_marks_; }

  // Pins `id` if it is cached and ready; false otherwise. Never suspends.
  bool try_fetch_cached(BlockId id, PageGuard& out) noexcept;

  // An optimistic read of one page (see the preamble): where its bytes are
  // and its state word when the read began.
  struct OptimisticPage {
    const std::byte* data = nullptr;
    const std::atomic<std::uint64_t>* word = nullptr;
    std::uint64_t seen = 0;
  };
  // Any thread, lock-free. False when the page is not cached (or is being
  // loaded or evicted): the caller takes the engine's path.
  bool read_begin(BlockId id, OptimisticPage& out) noexcept {
    const std::atomic<std::uint64_t>* word = directory_.word(id);
    if (word == nullptr) return false;
    const std::uint64_t w = word->load(std::memory_order_acquire);
    if (!PageDirectory::cached(w)) return false;
    const FrameId raw = PageDirectory::frame_of(w);
    const FrameId f = raw & ~kMovedBit;
    if (f >= pool_pages_) return false;
    std::atomic<bool>& ref = referenced_[f];
    if (!ref.load(std::memory_order_relaxed)) ref.store(true, std::memory_order_relaxed);
    // Frames on their own arena slot (the rule) need no load to find it.
    const std::byte* data = (raw & kMovedBit) == 0 ? arena_.data() + std::size_t{f} * page_size_
                                                   : frame_data_[f].load(std::memory_order_acquire);
    out = OptimisticPage{data, word, w};
    return true;
  }
  // True when the pool did not move the page since read_begin (what was read
  // from its frame is the page's, as far as the pool is concerned).
  static bool read_valid(const OptimisticPage& p) noexcept {
    std::atomic_thread_fence(std::memory_order_acquire);
    return p.word->load(std::memory_order_relaxed) == p.seen;
  }
  // read_valid() for a reader that has just claimed a view pin on p.data
  // (seq_cst: see the ordering in engine/pager/view_pins.h).
  static bool view_valid(const OptimisticPage& p) noexcept {
    return p.word->load(std::memory_order_seq_cst) == p.seen;
  }
  // Any thread: the pins of page buffers (null in direct mode).
  ViewPins* view_pins() noexcept { return pins_; }
  // Engine thread, how a write window opens (BTree::open_window), so that its
  // writes never reach a pinned buffer and opening it cannot fail:
  //   reserve_spares(viewed_frames())   before: may throw (std::bad_alloc),
  //                                      having changed nothing that matters;
  //   the window number turns odd (seq_cst);
  //   unshare_viewed()                   every frame whose buffer a view pins
  //                                      moves to a copy in a spare buffer.
  // unshare_viewed() never allocates: when pins came meanwhile and the spares
  // are too few it changes nothing and returns how many frames it must move
  // (the caller closes the window, reserves that many and tries again); else
  // it returns 0. Both scans are one load when no view is pinned, else 64
  // loads plus one per pin (engine/pager/view_pins.h).
  std::size_t viewed_frames() noexcept;
  void reserve_spares(std::size_t n);
  std::size_t unshare_viewed() noexcept;
  // Tests, process-wide: the next `n` page buffers any pool would allocate
  // for pinned views throw std::bad_alloc instead (checked only when one is
  // allocated).
  static void fail_spare_allocations_for_testing(std::uint32_t n) noexcept;
  // Buffers detached from their frames and not yet released (tests).
  std::size_t detached_buffers() const noexcept { return detached_.size(); }

 private:
  friend class PageGuard;

  struct Frame {
    BlockId page_id = kInvalidBlockId;
    std::byte* data = nullptr;  // its buffer's bytes (see buf)
    std::uint32_t buf = 0;      // pooled mode: the buffer (buffer_data) holding the page
    std::uint32_t pins = 0;
    bool dirty = false;
    bool loading = false;       // a read into this frame is in flight
    bool writing = false;       // a write from this frame is in flight
    bool evicting = false;      // chosen as a victim; its write-back is in flight
    bool write_failed = false;  // the last write failed: only a flush retries it
    bool listed = false;        // in dirty_list_
    AsyncSharedMutex latch;
    Condition io_done;       // notified when loading or writing ends
    bool published = false;  // in directory_ (pooled mode)
  };

  Task<PageGuard> fetch_slow(BlockId id);
  Task<FrameId> acquire_frame();
  // The replacer's victim after the second chance of referenced frames
  // (acquire_frame, take_clean_frame); nullopt when nothing is evictable.
  std::optional<FrameId> pick_victim() noexcept;
  Task<void> write_frame(FrameId f);  // REQUIRES: pinned or chosen victim
  Task<void> direct_write_back(FrameId f);
  // prefetch()'s read of `frames` (pinned, loading, consecutive pages).
  Task<void> prefetch_read(std::vector<FrameId> frames);
  // A frame now, without waiting or writing: a free one or a clean victim.
  std::optional<FrameId> take_clean_frame();
  void pin(FrameId f) noexcept;
  void unpin(FrameId f) noexcept;
  // Whether frame f's page goes to the replacer's kept class (hooks_).
  bool keep_longer(FrameId f) noexcept;
  void free_frame(FrameId f) noexcept;
  void note_dirty(FrameId f) noexcept;
  // Pooled mode: makes frame f's page visible to optimistic readers / hides
  // it before the frame changes hands (no-op when not published).
  void publish(FrameId f);
  void unpublish(FrameId f) noexcept;
  // Pinned views: the bytes of buffer `b` (the arena's frames, then extra_),
  // and back.
  std::byte* buffer_data(std::uint32_t b) noexcept;
  std::uint32_t buffer_of(const std::byte* data) const noexcept;
  // Before frame f's bytes are overwritten (a load into a reused frame):
  // if its buffer is pinned, f gets a fresh one.
  void make_private(FrameId f);
  // Gives frame f another buffer (with a copy of the page if `copy`); the old
  // one waits in detached_ until no view pins it.
  void detach_buffer(FrameId f, bool copy);
  std::uint32_t take_spare_buffer();
  // Detached buffers that nothing names any more go back to spare_.
  void recycle_detached();
  // A new page buffer beyond the arena (may throw; then nothing changed).
  std::uint32_t new_spare_buffer();
  // Fills to_unshare_ with the frames whose buffers views name (each once);
  // returns how many.
  std::size_t collect_viewed() noexcept;
  Task<void> store_read(BlockId id, std::span<std::byte> out);
  Task<void> store_write(BlockId id, std::span<const std::byte> page);
  Task<void> wait_for_a_frame();  // until an unpin or a freed frame
  void wake_frame_waiters() noexcept;
  void check_usable() const;
  void rethrow_deferred();

  DiskManager& disk_;
  const std::size_t pool_pages_;
  const std::uint32_t page_size_;
  AlignedBuffer arena_;  // pooled mode: all frames' pages
  // Pooled mode: one array. Direct mode: a deque (stable addresses as it grows).
  Frame& frame(FrameId f) noexcept { return fixed_frames_ ? fixed_frames_[f] : direct_frames_[f]; }
  std::size_t frame_count() const noexcept {
    return fixed_frames_ ? pool_pages_ : direct_frames_.size();
  }
  std::unique_ptr<Frame[]> fixed_frames_;
  std::deque<Frame> direct_frames_;
  std::deque<AlignedBuffer> transient_;  // direct mode: one page per frame
  std::vector<FrameId> free_frames_;
  std::vector<FrameId> dirty_list_;  // frames marked dirty since the last flush_all
  LruReplacer replacer_;
  PageTable table_;
  PageDirectory directory_;  // pooled mode: the published pages, for read_begin
  // Pooled mode: per frame, set by optimistic readers, cleared by the replacer.
  std::unique_ptr<std::atomic<bool>[]> referenced_;
  // Pooled mode, pinned views: per frame, the bytes of its buffer (Frame::data,
  // for read_begin); the pins; buffers beyond the arena; per buffer the frame
  // using it (kNoFrame: spare or detached); spare and detached buffers.
  static constexpr FrameId kNoFrame = UINT32_MAX;
  // Published with a frame's id in the directory when its page is not in the
  // frame's own arena slot (read_begin then loads frame_data_).
  static constexpr FrameId kMovedBit = FrameId{1} << 31;
  struct Detached {
    std::uint32_t buf;
    FrameId from;  // while it is writing, its write may still read the buffer
  };
  std::unique_ptr<std::atomic<std::byte*>[]> frame_data_;
  ViewPins* pins_ = nullptr;
  std::vector<AlignedBuffer> extra_;
  std::unordered_map<const std::byte*, std::uint32_t> extra_ids_;
  std::vector<FrameId> owner_;
  std::vector<std::uint32_t> spare_;
  std::vector<Detached> detached_;
  std::vector<const std::byte*> named_;        // scratch: unshare_viewed's scan
  std::vector<const std::byte*> still_named_;  // scratch: recycle_detached's scan
  std::vector<FrameId> to_unshare_;            // scratch: collect_viewed's frames
  Condition frame_released_;                   // an unpin or a freed frame
  DrainLatch direct_writebacks_;               // direct-mode write-backs in flight
  DrainLatch prefetches_;                      // prefetch() reads in flight
  std::uint64_t dirty_marks_ = 0;
  std::uint64_t deadlock_epoch_ = 0;   // bumped when the Scheduler breaks a frame wait
  std::exception_ptr deferred_error_;  // direct-mode write-back failure
  bool closed_ = false;
  PageHooks* hooks_ = nullptr;
  PageStore* store_ = nullptr;
  BufferPoolStats stats_;
};

}  // namespace corobtree
