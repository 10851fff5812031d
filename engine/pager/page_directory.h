// PageDirectory: the buffer pool's page -> frame map for optimistic readers
// on any thread (BufferPool::read_begin).
//
// A two-level array of atomic words indexed by page id: a fixed top level of
// kTopEntries segment pointers, each segment kSegmentPages words holding the
// frame id + 1 (0: not published). Segments are allocated when a page of
// their range is first published and live as long as the directory, so a
// reader never touches freed memory; pages at or beyond kMaxPages are never
// published (their readers take the engine's path). A lookup is two
// dependent loads and writes nothing.
//
// Thread-safety: set() and clear() belong to the pool's engine thread; find()
// may run on any thread concurrently with them. What find() returns is a
// hint: the reader confirms it with the frame's own state word (see
// BufferPool::read_begin).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "engine/pager/lru_replacer.h"
#include "io/disk_manager.h"

namespace corobtree {

class PageDirectory {
 public:
  static constexpr unsigned kSegmentBits = 16;
  static constexpr std::uint64_t kSegmentPages = std::uint64_t{1} << kSegmentBits;
  static constexpr std::uint64_t kTopEntries = std::uint64_t{1} << 14;
  static constexpr std::uint64_t kMaxPages = kSegmentPages * kTopEntries;  // 2^30

  PageDirectory() : top_(std::make_unique<std::atomic<Segment*>[]>(kTopEntries)) {}
  ~PageDirectory() {
    for (std::uint64_t i = 0; i < kTopEntries; ++i) delete top_[i].load(std::memory_order_relaxed);
  }
  PageDirectory(const PageDirectory&) = delete;
  PageDirectory& operator=(const PageDirectory&) = delete;

  // The frame that held `page` when it was last published, if any.
  bool find(BlockId page, FrameId& frame) const noexcept {
    if (page >= kMaxPages) return false;
    const Segment* s = top_[page >> kSegmentBits].load(std::memory_order_acquire);
    if (s == nullptr) return false;
    const std::uint32_t e = s->slots[page & (kSegmentPages - 1)].load(std::memory_order_acquire);
    if (e == 0) return false;
    frame = e - 1;
    return true;
  }
  // Returns false (publishing nothing) for a page beyond kMaxPages.
  bool set(BlockId page, FrameId frame) {
    if (page >= kMaxPages) return false;
    std::atomic<Segment*>& top = top_[page >> kSegmentBits];
    Segment* s = top.load(std::memory_order_relaxed);
    if (s == nullptr) {
      s = new Segment();
      top.store(s, std::memory_order_release);
    }
    s->slots[page & (kSegmentPages - 1)].store(frame + 1, std::memory_order_release);
    return true;
  }
  void clear(BlockId page) noexcept {
    if (page >= kMaxPages) return;
    Segment* s = top_[page >> kSegmentBits].load(std::memory_order_relaxed);
    if (s != nullptr) s->slots[page & (kSegmentPages - 1)].store(0, std::memory_order_release);
  }

 private:
  struct Segment {
    std::atomic<std::uint32_t> slots[kSegmentPages] = {};
  };
  std::unique_ptr<std::atomic<Segment*>[]> top_;
};

}  // namespace corobtree
