// ViewPins: the buffer pool's table of page buffers that PinnedValue guards
// point into (include/corobtree/pinned_value.h), shared by the engine thread
// and every reader thread.
//
// A guard owns one slot, which names the start of the page buffer its view
// lies in. Readers claim and release slots lock-free from any thread; the
// engine thread scans the slots (up to the high-water mark, which only grows)
// to learn which buffers it must not write into, and moves a page to another
// buffer before it changes it (BufferPool::unshare_viewed, make_private).
//
// Ordering (the Dekker pattern; every access below is seq_cst):
//   reader: claim a slot naming buffer B;  then load the tree's window number
//           and the page's directory word, and keep the pin only if both are
//           unchanged since the optimistic read;
//   engine: make the window number odd (BTree::open_window) or clear the
//           page's directory word (BufferPool::unpublish);  then scan slots.
// In the single total order of seq_cst operations either the scan comes
// after the claim (the engine sees B named and moves the page away from B
// before writing) or the claim comes after the engine's store (the reader
// sees the changed number or word, releases the slot and retries). So no
// pinned buffer is ever written. A slot released (store 0) and then seen
// free by a scan orders the reader's reads of B before the engine's reuse.
//
// Lifetime: the pool owns the table. If the pool dies while slots are in
// use, it hands its page memory to the table (orphan()) and the release of
// the last slot deletes the table and that memory.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <corobtree/pinned_value.h>

#include "io/aligned_buffer.h"

namespace corobtree {

class ViewPins {
 public:
  // Slots: as many guards may pin pages at once; beyond that a get copies.
  static constexpr std::uint32_t kSlots = 4096;
  static constexpr std::uint32_t kNoSlot = UINT32_MAX;

  ViewPins();
  ViewPins(const ViewPins&) = delete;
  ViewPins& operator=(const ViewPins&) = delete;

  // Any thread: a slot naming `buffer`, or kNoSlot when all are in use.
  std::uint32_t claim(const std::byte* buffer) noexcept;
  // Any thread: the claimed `slot` names `buffer` instead (what it named
  // before is no longer pinned).
  void repoint(std::uint32_t slot, const std::byte* buffer) noexcept {
    slots_[slot].store(reinterpret_cast<std::uintptr_t>(buffer), std::memory_order_seq_cst);
  }
  // Any thread: frees the slot. May delete this table (see orphan()).
  void release(std::uint32_t slot) noexcept;

  // Engine thread: whether any slot was ever claimed (no scan needed if not).
  bool ever_used() const noexcept { return high_water_.load(std::memory_order_seq_cst) != 0; }
  // Engine thread: the buffers named by slots now (unsorted, may repeat).
  void named(std::vector<const std::byte*>& out) const;
  bool names(const std::byte* buffer) const noexcept;

  // The pool's destructor: deletes the table now if no slot is in use, else
  // keeps `memory` alive until the last slot is released.
  void orphan(std::vector<AlignedBuffer> memory) noexcept;

 private:
  ~ViewPins() = default;
  bool none_in_use() const noexcept;
  void delete_if_last() noexcept;

  std::unique_ptr<std::atomic<std::uintptr_t>[]> slots_;
  std::atomic<std::uint32_t> high_water_{0};
  std::atomic<bool> orphaned_{false};
  std::atomic<bool> deleted_{false};
  std::vector<AlignedBuffer> memory_;  // after orphan(): the pool's pages
};

namespace detail {

// Fills PinnedValue guards (the engine's side of their private state).
class PinAccess {
 public:
  static void set_pinned(PinnedValue& out, ViewPins* pins, std::uint32_t slot,
                         std::string_view view) noexcept {
    out.reset();
    out.pins_ = pins;
    out.slot_ = slot;
    out.view_ = view;
  }
  // The slot of `out` if it pins a buffer of `pins` (`out` is left empty,
  // the slot still claimed), else kNoSlot (`out` reset).
  static std::uint32_t take_slot(PinnedValue& out, const ViewPins* pins) noexcept {
    if (out.pins_ != pins || pins == nullptr) {
      out.reset();
      return ViewPins::kNoSlot;
    }
    out.pins_ = nullptr;
    out.view_ = {};
    return out.slot_;
  }
  // The guard owns `value` (the engine's path, or no pin possible).
  static void set_copy(PinnedValue& out, std::string&& value) noexcept {
    out.reset();
    out.copy_ = std::move(value);
    out.view_ = out.copy_;
  }
  static void set_copy(PinnedValue& out, std::string_view value) {
    out.reset();
    out.copy_.assign(value);
    out.view_ = out.copy_;
  }
};

}  // namespace detail
}  // namespace corobtree
