// PageTable: maps a page id to the frame holding it.
//
// Open addressing with linear probing and backward-shift deletion over a
// power-of-two array of (page id, frame) slots kept at most half full, so a
// lookup touches one or two cache lines and an entry costs 32 bytes of table
// per frame at the default load. It grows (doubling) only when the pool
// itself grows (the direct, pool-size-0 mode).
//
// Thread-safety: none; owned by one BufferPool.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/pager/lru_replacer.h"
#include "io/disk_manager.h"

namespace corobtree {

class PageTable {
 public:
  explicit PageTable(std::size_t expected_entries);

  std::optional<FrameId> find(BlockId page) const noexcept {
    std::size_t i = slot_of(page);
    while (slots_[i].page != kInvalidBlockId) {
      if (slots_[i].page == page) return slots_[i].frame;
      i = (i + 1) & mask_;
    }
    return std::nullopt;
  }
  // Starts loading the cache line where a lookup of `page` begins.
  void prefetch(BlockId page) const noexcept { __builtin_prefetch(&slots_[slot_of(page)]); }
  // REQUIRES: page is absent.
  void insert(BlockId page, FrameId frame);
  // Returns false if the page was absent.
  bool erase(BlockId page) noexcept;

  std::size_t size() const noexcept { return size_; }
  std::size_t bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    BlockId page = kInvalidBlockId;
    FrameId frame = 0;
  };

  std::size_t slot_of(BlockId page) const noexcept {
    // Fibonacci hashing spreads sequential page ids.
    return static_cast<std::size_t>((page * 0x9e3779b97f4a7c15ull) >> shift_) & mask_;
  }
  void rehash(std::size_t new_capacity);

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  unsigned shift_ = 0;
  std::size_t size_ = 0;
};

}  // namespace corobtree
