// PageDirectory: the buffer pool's page -> frame map and per-page state word
// for optimistic readers on any thread (BufferPool::read_begin), in the
// manner of vmcache's page state array.
//
// A two-level array of atomic 64-bit words indexed by page id: a fixed top
// level of kTopEntries segment pointers, each segment kSegmentPages words.
// A word holds a version in its high 32 bits and the frame id + 1 in its low
// 32 bits (0: the page is not cached, or its frame is changing hands). Every
// publish and every clear bumps the version, so a reader that loads the word,
// reads the frame, and finds the word unchanged afterwards knows the frame
// held this page, untouched by the pool, throughout. Segments are allocated
// when a page of their range is first published and live as long as the
// directory, so a reader never touches freed memory; pages at or beyond
// kMaxPages are never published (their readers take the engine's path). A
// lookup is two dependent loads (the first one, of the top level, almost
// always cached) and writes nothing; 8 bytes per page of the file's cached
// range, dense, so the words of a hot tree stay in the CPU caches.
//
// Thread-safety: set() and clear() belong to the pool's engine thread; load()
// may run on any thread concurrently with them.
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

  // The state word of `page` (nullptr beyond the published range: not cached).
  const std::atomic<std::uint64_t>* word(BlockId page) const noexcept {
    if (page >= kMaxPages) return nullptr;
    const Segment* s = top_[page >> kSegmentBits].load(std::memory_order_acquire);
    if (s == nullptr) return nullptr;
    return &s->words[page & (kSegmentPages - 1)];
  }
  static bool cached(std::uint64_t w) noexcept { return (w & 0xffffffffu) != 0; }
  static FrameId frame_of(std::uint64_t w) noexcept {
    return static_cast<FrameId>((w & 0xffffffffu) - 1);
  }

  // `page` is in `frame`, readable. Returns false (publishing nothing) for a
  // page beyond kMaxPages.
  bool set(BlockId page, FrameId frame) {
    if (page >= kMaxPages) return false;
    std::atomic<Segment*>& top = top_[page >> kSegmentBits];
    Segment* s = top.load(std::memory_order_relaxed);
    if (s == nullptr) {
      s = new Segment();
      top.store(s, std::memory_order_release);
    }
    std::atomic<std::uint64_t>& w = s->words[page & (kSegmentPages - 1)];
    const std::uint64_t version = (w.load(std::memory_order_relaxed) >> 32) + 1;
    w.store(version << 32 | (std::uint64_t{frame} + 1), std::memory_order_release);
    return true;
  }
  // `page` leaves its frame (before the frame's bytes change). Readers that
  // see any later write to the frame also see the new word.
  void clear(BlockId page) noexcept {
    if (page >= kMaxPages) return;
    Segment* s = top_[page >> kSegmentBits].load(std::memory_order_relaxed);
    if (s == nullptr) return;
    std::atomic<std::uint64_t>& w = s->words[page & (kSegmentPages - 1)];
    const std::uint64_t version = (w.load(std::memory_order_relaxed) >> 32) + 1;
    // seq_cst: before the pool scans for view pins (engine/pager/view_pins.h).
    w.store(version << 32, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_release);
  }

 private:
  struct Segment {
    std::atomic<std::uint64_t> words[kSegmentPages] = {};
  };
  std::unique_ptr<std::atomic<Segment*>[]> top_;
};

}  // namespace corobtree
