#include "engine/pager/buffer_pool.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include <corobtree/error.h>
#include <corobtree/when_all.h>
#include "io/scheduler.h"
#include "io/spawn.h"

namespace corobtree {

// ---- PageGuard -----------------------------------------------------------

BlockId PageGuard::page_id() const noexcept { return pool_->frame(frame_).page_id; }
std::span<std::byte> PageGuard::data() noexcept {
  return {pool_->frame(frame_).data, pool_->page_size_};
}
std::span<const std::byte> PageGuard::data() const noexcept {
  return {pool_->frame(frame_).data, pool_->page_size_};
}
void PageGuard::mark_dirty() noexcept { pool_->note_dirty(frame_); }
bool PageGuard::is_dirty() const noexcept { return pool_->frame(frame_).dirty; }
AsyncSharedMutex& PageGuard::latch() noexcept { return pool_->frame(frame_).latch; }
void PageGuard::release() noexcept {
  if (pool_) std::exchange(pool_, nullptr)->unpin(frame_);
}

// ---- BufferPool ----------------------------------------------------------

BufferPool::BufferPool(DiskManager& disk, std::size_t pool_pages)
    : disk_(disk),
      pool_pages_(pool_pages),
      page_size_(disk.page_size()),
      arena_(pool_pages * disk.page_size()),
      replacer_(pool_pages),
      table_(pool_pages == 0 ? 64 : pool_pages) {
  arena_.advise_huge_pages();  // frames are read at random: fewer TLB misses
  free_frames_.reserve(pool_pages);
  dirty_list_.reserve(pool_pages);
  if (pool_pages > 0) {
    fixed_frames_ = std::make_unique<Frame[]>(pool_pages);
    referenced_ = std::make_unique<std::atomic<bool>[]>(pool_pages);
    frame_data_ = std::make_unique<std::atomic<std::byte*>[]>(pool_pages);
    owner_.resize(pool_pages);
    pins_ = new ViewPins();
    named_.reserve(ViewPins::kSlots);  // scans in a write window never allocate
    still_named_.reserve(ViewPins::kSlots);
    to_unshare_.reserve(ViewPins::kSlots);
  }
  for (std::size_t i = 0; i < pool_pages; ++i) {
    fixed_frames_[i].data = arena_.data() + i * page_size_;
    fixed_frames_[i].buf = static_cast<std::uint32_t>(i);
    frame_data_[i].store(fixed_frames_[i].data, std::memory_order_relaxed);
    owner_[i] = static_cast<FrameId>(i);
  }
  // Hand out low frame ids first.
  for (std::size_t i = pool_pages; i > 0; --i) free_frames_.push_back(static_cast<FrameId>(i - 1));
}

BufferPool::~BufferPool() {
  Scheduler::current().clear_waiting(this);
  if (pins_ != nullptr) {
    // Guards may outlive the pool: the table keeps the page memory for them.
    std::vector<AlignedBuffer> memory;
    memory.reserve(extra_.size() + 1);
    memory.push_back(std::move(arena_));
    for (AlignedBuffer& b : extra_) memory.push_back(std::move(b));
    std::exchange(pins_, nullptr)->orphan(std::move(memory));
  }
}

// ---- pinned views (see the header's preamble) -------------------------------

namespace {
std::atomic<std::uint32_t> fail_spare_allocations{0};  // tests
}  // namespace

void BufferPool::fail_spare_allocations_for_testing(std::uint32_t n) noexcept {
  fail_spare_allocations.store(n, std::memory_order_relaxed);
}

std::byte* BufferPool::buffer_data(std::uint32_t b) noexcept {
  if (b < pool_pages_) return arena_.data() + std::size_t{b} * page_size_;
  return extra_[b - pool_pages_].data();
}

std::uint32_t BufferPool::buffer_of(const std::byte* data) const noexcept {
  const std::byte* arena = arena_.data();
  if (data >= arena && data < arena + pool_pages_ * page_size_) {
    return static_cast<std::uint32_t>(static_cast<std::size_t>(data - arena) / page_size_);
  }
  const auto it = extra_ids_.find(data);
  return it == extra_ids_.end() ? UINT32_MAX : it->second;
}

std::size_t BufferPool::collect_viewed() noexcept {
  to_unshare_.clear();
  if (pins_ == nullptr || !pins_->any_live()) return 0;  // one load when nothing is pinned
  pins_->named(named_);
  for (const std::byte* data : named_) {
    const std::uint32_t b = buffer_of(data);
    if (b == UINT32_MAX || owner_[b] == kNoFrame) continue;  // detached already
    const FrameId f = owner_[b];
    // A loading frame is not published: a pin on it fails its validation.
    if (frame(f).loading) continue;
    to_unshare_.push_back(f);  // capacity kSlots: no allocation
  }
  // A buffer named by several slots counts once.
  std::sort(to_unshare_.begin(), to_unshare_.end());
  to_unshare_.erase(std::unique(to_unshare_.begin(), to_unshare_.end()), to_unshare_.end());
  return to_unshare_.size();
}

std::size_t BufferPool::viewed_frames() noexcept { return collect_viewed(); }

std::size_t BufferPool::unshare_viewed() noexcept {
  const std::size_t need = collect_viewed();
  // Too few spares (or room to list the detached): nothing changed; the
  // caller reserves and retries.
  if (need > spare_.size() || need > detached_.capacity() - detached_.size()) return need;
  for (const FrameId f : to_unshare_) detach_buffer(f, /*copy=*/true);
  return 0;
}

void BufferPool::reserve_spares(std::size_t n) {
  if (pins_ == nullptr) return;
  detached_.reserve(detached_.size() + n);  // detach_buffer's push_back never allocates
  if (spare_.size() >= n) return;
  recycle_detached();
  spare_.reserve(n);
  while (spare_.size() < n) spare_.push_back(new_spare_buffer());
}

void BufferPool::make_private(FrameId f) {
  if (pins_ == nullptr || !pins_->any_live()) return;  // one load when nothing is pinned
  if (pins_->names(frame(f).data)) detach_buffer(f, /*copy=*/false);
}

void BufferPool::detach_buffer(FrameId f, bool copy) {
  const std::uint32_t nb = take_spare_buffer();
  Frame& fr = frame(f);
  std::byte* data = buffer_data(nb);
  if (copy) std::memcpy(data, fr.data, page_size_);
  detached_.push_back({fr.buf, f});
  owner_[fr.buf] = kNoFrame;
  owner_[nb] = f;
  fr.buf = nb;
  fr.data = data;
  frame_data_[f].store(data, std::memory_order_release);
  if (fr.published) publish(f);  // with kMovedBit (a new version: readers retry)
  ++stats_.view_relocations;
}

void BufferPool::recycle_detached() {
  if (detached_.empty()) return;
  // Detached buffers that no view names any more (and that no write in
  // flight from their old frame may still read) become spares.
  pins_->named(still_named_);
  std::sort(still_named_.begin(), still_named_.end());
  spare_.reserve(spare_.size() + detached_.size());
  std::size_t kept = 0;
  for (const Detached& d : detached_) {
    const bool named = std::binary_search(still_named_.begin(), still_named_.end(),
                                          static_cast<const std::byte*>(buffer_data(d.buf)));
    if (named || frame(d.from).writing) {
      detached_[kept++] = d;
    } else {
      spare_.push_back(d.buf);
    }
  }
  detached_.resize(kept);
}

std::uint32_t BufferPool::new_spare_buffer() {
  if (fail_spare_allocations.load(std::memory_order_relaxed) > 0) {
    fail_spare_allocations.fetch_sub(1, std::memory_order_relaxed);
    throw std::bad_alloc();
  }
  const auto b = static_cast<std::uint32_t>(pool_pages_ + extra_.size());
  owner_.reserve(owner_.size() + 1);  // then push_back cannot throw
  AlignedBuffer& page = extra_.emplace_back(page_size_);
  try {
    extra_ids_.emplace(page.data(), b);
  } catch (...) {
    extra_.pop_back();  // as before: buffer ids stay dense
    throw;
  }
  owner_.push_back(kNoFrame);
  return b;
}

std::uint32_t BufferPool::take_spare_buffer() {
  if (spare_.empty()) recycle_detached();
  if (!spare_.empty()) {
    const std::uint32_t b = spare_.back();
    spare_.pop_back();
    return b;
  }
  return new_spare_buffer();
}

void BufferPool::check_usable() const {
  if (closed_) {
    throw Error(ErrorCode::kClosed, "buffer pool over '" + disk_.path() + "' is closed", 0,
                disk_.path());
  }
}

void BufferPool::rethrow_deferred() {
  if (deferred_error_) std::rethrow_exception(std::exchange(deferred_error_, nullptr));
}

void BufferPool::pin(FrameId f) noexcept {
  Frame& fr = frame(f);
  if (fr.pins++ == 0) {
    ++stats_.pinned;
    if (!direct()) replacer_.remove(f);
  }
}

bool BufferPool::keep_longer(FrameId f) noexcept {
  return hooks_ != nullptr &&
         hooks_->keep_longer(std::span<const std::byte>(frame(f).data, page_size_));
}

void BufferPool::unpin(FrameId f) noexcept {
  Frame& fr = frame(f);
  if (--fr.pins != 0) return;
  --stats_.pinned;
  if (!direct()) {
    if (fr.evicting) return;  // its evictor decides what happens next
    replacer_.record_unpinned(f, keep_longer(f));
    wake_frame_waiters();
    return;
  }
  // Direct mode: nothing stays cached once unpinned, except a page whose
  // write-back failed (kept so the data is not lost).
  if (fr.writing || fr.loading) return;  // the in-flight operation finishes the job
  if (fr.write_failed) return;           // stays cached and dirty until a flush succeeds
  if (fr.dirty) {
    spawn(direct_write_back(f));
  } else {
    table_.erase(fr.page_id);
    free_frame(f);
  }
}

void BufferPool::publish(FrameId f) {
  if (direct()) return;
  Frame& fr = frame(f);
  fr.published = directory_.set(fr.page_id, fr.buf == f ? f : f | kMovedBit);
}

void BufferPool::unpublish(FrameId f) noexcept {
  if (direct()) return;
  Frame& fr = frame(f);
  if (!fr.published) return;
  directory_.clear(fr.page_id);
  fr.published = false;
}

void BufferPool::free_frame(FrameId f) noexcept {
  unpublish(f);
  Frame& fr = frame(f);
  fr.page_id = kInvalidBlockId;
  fr.dirty = false;
  free_frames_.push_back(f);
  wake_frame_waiters();
}

void BufferPool::note_dirty(FrameId f) noexcept {
  Frame& fr = frame(f);
  fr.dirty = true;
  ++dirty_marks_;
  if (!fr.listed) {
    fr.listed = true;
    dirty_list_.push_back(f);  // capacity reserved: one entry per frame at most
  }
}

Task<void> BufferPool::store_read(BlockId id, std::span<std::byte> out) {
  if (store_) return store_->read_page(id, out);
  return disk_.read_block(id, out);
}

Task<void> BufferPool::store_write(BlockId id, std::span<const std::byte> page) {
  if (store_) return store_->write_page(id, page);
  return disk_.write_block(id, page);
}

Task<void> BufferPool::read_stored(BlockId id, std::span<std::byte> out) {
  co_await store_read(id, out);
  if (hooks_) hooks_->after_read(id, out);
}

bool BufferPool::copy_if_clean(BlockId id, std::span<std::byte> out) const noexcept {
  const std::optional<FrameId> f = table_.find(id);
  if (!f) return false;
  const Frame& fr = fixed_frames_ ? fixed_frames_[*f] : direct_frames_[*f];
  if (fr.loading || fr.dirty || fr.writing) return false;
  std::memcpy(out.data(), fr.data, page_size_);
  return true;
}

Task<void> BufferPool::wait_for_a_frame() {
  // Noted for the deadlock report: if no task can ever unpin, the Scheduler
  // finds nothing ready and no I/O in flight, and names this wait. Only this
  // thread's tasks pin this pool, so even where other threads could post
  // (the database's engine thread) an idle thread breaks the wait.
  const std::string reason = "buffer pool: all " + std::to_string(pool_pages_) +
                             " frames are pinned and a fetch is waiting for one to be released";
  const std::uint64_t epoch = deadlock_epoch_;
  Scheduler::current().note_waiting(this, reason, [this] {
    ++deadlock_epoch_;
    frame_released_.notify_all();
  });
  co_await frame_released_.wait();
  if (deadlock_epoch_ != epoch) {
    throw Error(ErrorCode::kDeadlock,
                "'" + disk_.path() + "': " + reason +
                    ", and no task on the thread can release one (a larger pool_pages, or "
                    "fewer concurrent readers)",
                0, disk_.path());
  }
}

void BufferPool::wake_frame_waiters() noexcept {
  if (!frame_released_.has_waiters()) return;
  frame_released_.notify_all();
  Scheduler::current().clear_waiting(this);
}

bool BufferPool::try_fetch_cached(BlockId id, PageGuard& out) noexcept {
  if (closed_ || deferred_error_) return false;  // the slow path reports these
  const std::optional<FrameId> f = table_.find(id);
  if (!f || frame(*f).loading) return false;
  // Direct mode caches nothing: an unpinned page still in the table is being
  // written back (wait, then read it from disk), or failed to be (keep it).
  if (direct() && frame(*f).pins == 0 && !frame(*f).write_failed) return false;
  pin(*f);
  ++stats_.hits;
  out = PageGuard(this, *f);
  return true;
}

const std::byte* BufferPool::peek(BlockId id) noexcept {
  if (direct() || closed_) return nullptr;
  const std::optional<FrameId> f = table_.find(id);
  if (!f || frame(*f).loading) return nullptr;
  return frame(*f).data;
}

void BufferPool::prefetch_page(BlockId id, std::uint32_t bytes) noexcept {
  if (direct() || closed_) return;
  const std::optional<FrameId> f = table_.find(id);
  if (!f) return;
  __builtin_prefetch(&fixed_frames_[*f]);
  const std::byte* data = arena_.data() + std::size_t{*f} * page_size_;  // the frame's page
  for (std::uint32_t at = 0; at < bytes && at < page_size_; at += 64) __builtin_prefetch(data + at);
}

Task<PageGuard> BufferPool::fetch_slow(BlockId id) {
  check_usable();
  rethrow_deferred();
  bool waited_for_load = false;
  for (;;) {
    if (const std::optional<FrameId> found = table_.find(id)) {
      Frame& fr = frame(*found);
      if (fr.loading) {
        // Another task is reading this page: share its read.
        waited_for_load = true;
        co_await fr.io_done.wait();
        continue;
      }
      if (direct() && fr.pins == 0 && fr.writing) {
        co_await fr.io_done.wait();  // its write-back drops it; then read it back
        continue;
      }
      pin(*found);
      if (waited_for_load) {
        ++stats_.misses;
      } else {
        ++stats_.hits;
      }
      co_return PageGuard(this, *found);
    }
    const FrameId f = co_await acquire_frame();
    if (table_.find(id)) {  // loaded by someone else while we waited for a frame
      free_frame(f);
      continue;
    }
    Frame& fr = frame(f);
    fr.page_id = id;
    fr.loading = true;
    fr.dirty = false;
    table_.insert(id, f);
    pin(f);
    ++stats_.misses;
    std::exception_ptr error;
    try {
      co_await store_read(id, std::span<std::byte>(fr.data, page_size_));
      if (hooks_) hooks_->after_read(id, std::span<const std::byte>(fr.data, page_size_));
    } catch (...) {
      error = std::current_exception();
    }
    fr.loading = false;
    fr.io_done.notify_all();  // sharers retry: on error they find no entry and read themselves
    if (error) {
      table_.erase(id);
      fr.pins = 0;
      --stats_.pinned;
      free_frame(f);
      std::rethrow_exception(error);
    }
    ++stats_.disk_reads;
    publish(f);
    co_return PageGuard(this, f);
  }
}

Task<void> PageStore::read_pages_into(BlockId first, std::uint32_t page_size,
                                      std::span<std::byte* const> pages) {
  for (std::size_t i = 0; i < pages.size(); ++i) {
    co_await read_page(first + i, std::span<std::byte>(pages[i], page_size));
  }
}

std::optional<FrameId> BufferPool::pick_victim() noexcept {
  std::optional<FrameId> victim = replacer_.victim();
  // Second chance for frames that optimistic readers used since (their hits
  // do not reach the replacer); bounded, so a pool of hot frames still evicts.
  for (std::size_t spins = 0; victim && spins < pool_pages_; ++spins) {
    if (!referenced_[*victim].exchange(false, std::memory_order_relaxed)) break;
    replacer_.record_unpinned(*victim, replacer_.kept(*victim));
    victim = replacer_.victim();
  }
  return victim;
}

std::optional<FrameId> BufferPool::take_clean_frame() {
  if (!free_frames_.empty()) {
    const FrameId f = free_frames_.back();
    free_frames_.pop_back();
    make_private(f);
    return f;
  }
  const std::optional<FrameId> victim = pick_victim();
  if (!victim) return std::nullopt;
  Frame& v = frame(*victim);
  if (v.dirty) {
    replacer_.record_unpinned(*victim, replacer_.kept(*victim));  // stays; a fetch writes it back
    return std::nullopt;
  }
  unpublish(*victim);
  table_.erase(v.page_id);
  v.page_id = kInvalidBlockId;
  ++stats_.evictions;
  make_private(*victim);
  return victim;
}

std::uint32_t BufferPool::prefetch(BlockId first, std::uint32_t count) {
  if (direct() || closed_ || deferred_error_ || disk_.backend() == IoBackend::kPread) return 0;
  std::vector<FrameId> frames;
  for (std::uint32_t i = 0; i < count; ++i) {
    const BlockId id = first + i;
    if (table_.find(id)) {  // cached or loading: skipped at the start, else the run ends
      if (frames.empty()) continue;
      break;
    }
    const std::optional<FrameId> f = take_clean_frame();
    if (!f) break;
    if (frames.empty()) frames.reserve(count - i);
    Frame& fr = frame(*f);
    fr.page_id = id;
    fr.loading = true;
    fr.dirty = false;
    table_.insert(id, *f);
    pin(*f);
    frames.push_back(*f);
  }
  const auto started = static_cast<std::uint32_t>(frames.size());
  if (started == 0) return 0;
  stats_.readahead_reads += started;
  prefetches_.enter();
  spawn(prefetch_read(std::move(frames)));
  return started;
}

Task<void> BufferPool::prefetch_read(std::vector<FrameId> frames) {
  const BlockId first = frame(frames.front()).page_id;
  const std::size_t n = frames.size();
  bool ok = true;
  try {
    if (n == 1) {
      Frame& fr = frame(frames.front());
      co_await store_read(first, std::span<std::byte>(fr.data, page_size_));
    } else {
      // One vectored read for the run, straight into the frames.
      std::vector<std::byte*> pages(n);
      for (std::size_t i = 0; i < n; ++i) pages[i] = frame(frames[i]).data;
      const std::span<std::byte* const> into(pages);
      if (store_) {
        co_await store_->read_pages_into(first, page_size_, into);
      } else {
        co_await disk_.read_blocks_into(first, into);
      }
    }
  } catch (...) {
    ok = false;  // dropped: the next fetch reads the pages itself and reports the error
  }
  for (std::size_t i = 0; i < n; ++i) {
    const FrameId f = frames[i];
    Frame& fr = frame(f);
    const BlockId id = first + i;
    bool good = ok;
    if (good && hooks_) {
      try {
        hooks_->after_read(id, std::span<const std::byte>(fr.data, page_size_));
      } catch (...) {
        good = false;  // a damaged page: its fetch reads it again and reports it
      }
    }
    fr.loading = false;
    fr.io_done.notify_all();  // sharers retry: on error they find no entry and read themselves
    if (good) {
      ++stats_.disk_reads;
      try {
        publish(f);
      } catch (...) {  // no directory segment: cached, only not for optimistic readers
      }
      // The second chance a use gives (the cursor is on its way): else, when
      // the replacer next wraps round a pool of leaves that the cursor's
      // optimistic reads marked, it passes over all of them and evicts the
      // pages read ahead and not reached yet, which are then read again.
      referenced_[f].store(true, std::memory_order_relaxed);
      unpin(f);
    } else {
      table_.erase(id);
      fr.pins = 0;
      --stats_.pinned;
      free_frame(f);
    }
  }
  prefetches_.leave();
}

Task<FrameId> BufferPool::acquire_frame() {
  for (;;) {
    if (!free_frames_.empty()) {
      const FrameId f = free_frames_.back();
      free_frames_.pop_back();
      if (!direct()) make_private(f);
      co_return f;
    }
    if (direct()) {
      const auto f = static_cast<FrameId>(direct_frames_.size());
      dirty_list_.reserve(direct_frames_.size() + 1);  // note_dirty never allocates
      Frame& fr = direct_frames_.emplace_back();
      fr.data = transient_.emplace_back(page_size_).data();
      co_return f;
    }
    const std::optional<FrameId> victim = pick_victim();
    if (!victim) {
      ++stats_.free_frame_waits;
      co_await wait_for_a_frame();
      continue;
    }
    const FrameId f = *victim;
    Frame& fr = frame(f);
    if (fr.dirty) {
      // Write back first. The page stays in the table meanwhile, so a fetch
      // finds this frame (not the stale disk copy); `evicting` keeps an unpin
      // from handing the frame to another evictor while the write is in flight.
      fr.evicting = true;
      std::exception_ptr error;
      try {
        co_await write_frame(f);
        ++stats_.dirty_writebacks;
      } catch (...) {
        error = std::current_exception();
      }
      fr.evicting = false;
      if (error || fr.pins > 0 || fr.dirty) {
        // Failed, or used again meanwhile: the page stays; it is evictable again once unpinned.
        if (fr.pins == 0) replacer_.record_unpinned(f, keep_longer(f));
        if (error) std::rethrow_exception(error);
        continue;
      }
    }
    unpublish(f);
    table_.erase(fr.page_id);
    fr.page_id = kInvalidBlockId;
    ++stats_.evictions;
    make_private(f);
    co_return f;
  }
}

Task<void> BufferPool::write_frame(FrameId f) {
  Frame& fr = frame(f);
  fr.dirty = false;  // a mark_dirty during the write sets it again
  fr.writing = true;
  if (hooks_) hooks_->before_write(fr.page_id, std::span<std::byte>(fr.data, page_size_));
  std::exception_ptr error;
  try {
    co_await store_write(fr.page_id, std::span<const std::byte>(fr.data, page_size_));
  } catch (...) {
    error = std::current_exception();
  }
  fr.writing = false;
  fr.io_done.notify_all();
  fr.write_failed = static_cast<bool>(error);
  if (error) {
    note_dirty(f);  // still unwritten: keep it
    std::rethrow_exception(error);
  }
  ++stats_.disk_writes;
}

Task<void> BufferPool::direct_write_back(FrameId f) {
  direct_writebacks_.enter();
  Frame& fr = frame(f);
  // Repeat while the page was dirtied again (pinned and unpinned) during a write.
  while (fr.dirty && fr.pins == 0) {
    try {
      co_await write_frame(f);
      ++stats_.dirty_writebacks;
    } catch (...) {
      if (!deferred_error_) deferred_error_ = std::current_exception();
      break;
    }
  }
  if (fr.pins == 0 && !fr.dirty && !fr.writing) {
    table_.erase(fr.page_id);
    free_frame(f);
  }
  direct_writebacks_.leave();
}

Task<PageGuard> BufferPool::new_page() {
  check_usable();
  rethrow_deferred();
  const BlockId id = disk_.allocate_block();  // zeroed on disk already
  const FrameId f = co_await acquire_frame();
  Frame& fr = frame(f);
  std::memset(fr.data, 0, page_size_);
  fr.page_id = id;
  note_dirty(f);
  table_.insert(id, f);
  pin(f);
  publish(f);
  co_return PageGuard(this, f);
}

Task<void> BufferPool::delete_page(PageGuard guard) {
  check_usable();
  if (!guard || guard.pool_ != this) {
    throw Error(ErrorCode::kInvalidArgument, "delete_page needs a guard from this pool");
  }
  const FrameId f = guard.frame_;
  Frame& fr = frame(f);
  const BlockId id = fr.page_id;
  while (fr.writing) co_await fr.io_done.wait();
  if (fr.pins != 1) {
    throw Error(ErrorCode::kInvalidArgument,
                "delete_page of block " + std::to_string(id) + " in '" + disk_.path() +
                    "': the page is pinned " + std::to_string(fr.pins) + " times",
                0, disk_.path(), id);
  }
  guard.pool_ = nullptr;  // consume the pin by hand: no write-back
  fr.pins = 0;
  --stats_.pinned;
  table_.erase(id);
  free_frame(f);
}

Task<void> BufferPool::flush_page(BlockId id) {
  check_usable();
  const std::optional<FrameId> found = table_.find(id);
  if (!found) co_return;
  const FrameId f = *found;
  pin(f);
  PageGuard hold(this, f);  // keeps the frame from eviction while we write
  Frame& fr = frame(f);
  while (fr.loading || fr.writing) co_await fr.io_done.wait();
  if (!fr.dirty) co_return;
  co_await write_frame(f);
}

Task<void> BufferPool::flush_all() {
  check_usable();
  // Let direct-mode write-backs finish first; then rewrite whatever is dirty.
  co_await direct_writebacks_.drained();
  co_await prefetches_.drained();
  // Whatever failed in the background is retried below and reported from here.
  deferred_error_ = nullptr;
  std::vector<Task<void>> writes;
  for (const FrameId f : std::exchange(dirty_list_, {})) {
    Frame& fr = frame(f);
    fr.listed = false;
    if (fr.page_id != kInvalidBlockId && fr.dirty && !fr.loading) {
      writes.push_back(flush_page(fr.page_id));
    }
  }
  dirty_list_.reserve(frame_count());
  co_await when_all(std::move(writes));
}

void BufferPool::discard_all() {
  check_usable();
  for (std::size_t i = 0; i < frame_count(); ++i) {
    const Frame& fr = frame(static_cast<FrameId>(i));
    if (fr.page_id == kInvalidBlockId) continue;
    if (fr.pins > 0 || fr.dirty || fr.loading || fr.writing || fr.evicting) {
      throw Error(ErrorCode::kInvalidArgument,
                  "discard_all on the pool over '" + disk_.path() + "': page " +
                      std::to_string(fr.page_id) + " is in use or dirty",
                  0, disk_.path(), fr.page_id);
    }
  }
  for (std::size_t i = 0; i < frame_count(); ++i) {
    const auto f = static_cast<FrameId>(i);
    Frame& fr = frame(f);
    if (fr.page_id == kInvalidBlockId) continue;
    table_.erase(fr.page_id);
    if (!direct() && replacer_.contains(f)) replacer_.remove(f);
    fr.listed = false;
    free_frame(f);
  }
  dirty_list_.clear();
}

Task<void> BufferPool::close() {
  if (closed_) co_return;
  co_await flush_all();
  co_await disk_.sync();
  closed_ = true;
}

BufferPoolStats BufferPool::stats() const noexcept { return stats_; }

void BufferPool::reset_stats() noexcept {
  const std::uint64_t pinned = stats_.pinned;
  stats_ = BufferPoolStats{};
  stats_.pinned = pinned;
}

double BufferPool::metadata_bytes_per_frame() const noexcept {
  const std::size_t frames = frame_count() == 0 ? 1 : frame_count();
  const std::size_t bytes = frame_count() * sizeof(Frame) +
                            replacer_.capacity() * (2 * sizeof(FrameId) + 1) + table_.bytes() +
                            free_frames_.capacity() * sizeof(FrameId);
  return static_cast<double>(bytes) / static_cast<double>(frames);
}

}  // namespace corobtree
