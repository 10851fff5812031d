// ViewPins: the buffer pool's table of page buffers that PinnedValue guards
// point into (include/corobtree/pinned_value.h), shared by the engine thread
// and every reader thread.
//
// A guard owns one slot, which names the start of the page buffer its view
// lies in. Readers claim and release slots lock-free from any thread; the
// engine thread asks which buffers are named, to learn which it must not
// write into, and moves a page to another buffer before it changes it
// (BufferPool::unshare_viewed, make_private).
//
// What the engine's questions cost: a count of live claims (`live_`) answers
// "nothing pinned" with one load, so with no pin held neither a write window
// nor a frame's reuse looks further, however many pins were taken before.
// Otherwise an occupancy bitmap (one bit per slot, 64 words) leads to the
// claimed slots: a question reads the 64 words and then only the claimed
// slots, so it costs 64 loads plus one per live pin, never a walk of all
// 4,096 slots.
//
// Ownership of a slot is its bit: claim sets it (fetch_or), release clears it
// (fetch_and). A slot's word holds its buffer while claimed, 0 otherwise.
//
// Ordering (the Dekker pattern; every access below is seq_cst):
//   reader: live_ + 1, set the slot's bit, store the buffer B in the slot;
//           then load the tree's window number and the page's directory word,
//           and keep the pin only if both are unchanged since the optimistic
//           read (a repoint stores B' in its slot and checks again);
//   engine: make the window number odd (BTree::open_window) or clear the
//           page's directory word (BufferPool::unpublish);  then load live_,
//           and only if it is not 0, the bitmap and the claimed slots.
// In the single total order of seq_cst operations either the reader's check
// comes after the engine's store (it sees the changed number or word, drops
// B and retries), or it comes before: then so do its increment, its bit and
// its store of B, and the engine's loads, which follow its store, see
// live_ > 0, the bit and B: it moves the page away from B before writing.
// So a skip on live_ == 0 is safe, and so is reading only the slots whose
// bit is set. No pinned buffer is ever written.
// Release stores 0 in the slot, clears the bit, then decrements live_. Every
// change of live_ and of a bitmap word is a read-modify-write, so an engine
// load that sees the count (or the bit) dropped synchronizes with the
// release: the reader's reads of B happen before the engine's reuse of B.
//
// Lifetime: the pool owns the table. If the pool dies while slots are in
// use, it hands its page memory to the table (orphan()), which sets
// kOrphanBit in live_; whichever of orphan() and the last release sees the
// count reach "orphaned, none live" deletes the table and that memory, and
// neither touches the table after its deciding read-modify-write otherwise.
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

  // Engine thread: whether any slot is claimed now (one load; see the
  // ordering above for why a false answer lets the engine skip its checks).
  bool any_live() const noexcept { return live_.load(std::memory_order_seq_cst) != 0; }
  // Engine thread: the buffers named by slots now (unsorted, may repeat).
  // Costs 64 loads plus one per claimed slot; `out` grows at most to kSlots.
  void named(std::vector<const std::byte*>& out) const;
  // Engine thread: whether a slot names `buffer` (the same cost).
  bool names(const std::byte* buffer) const noexcept;

  // The pool's destructor: deletes the table now if no slot is in use, else
  // keeps `memory` alive until the last slot is released.
  void orphan(std::vector<AlignedBuffer> memory) noexcept;

 private:
  static constexpr std::uint32_t kWords = kSlots / 64;
  static constexpr std::uint32_t kOrphanBit = std::uint32_t{1} << 31;

  ~ViewPins() = default;
  // Calls f(slot value) for each claimed slot whose value is not 0; stops
  // when f returns true (then returns true).
  template <typename F>
  bool for_each_named(F&& f) const noexcept;

  std::unique_ptr<std::atomic<std::uintptr_t>[]> slots_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> used_;  // kWords: bit i of word w = slot 64w + i
  alignas(64) std::atomic<std::uint32_t> live_{0};      // claims, | kOrphanBit after orphan()
  std::vector<AlignedBuffer> memory_;                   // after orphan(): the pool's pages
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
