#include "engine/pager/view_pins.h"

#include <algorithm>

namespace corobtree {
namespace {

// Each thread starts its search at its own cache line of slots, so that
// threads pinning at once do not share one line; 16 lines keep the engine's
// scan short (the high-water mark stays near 16 * 8 slots).
std::uint32_t first_slot() noexcept {
  static std::atomic<std::uint32_t> next_thread{0};
  thread_local const std::uint32_t start =
      (next_thread.fetch_add(1, std::memory_order_relaxed) % 16) * 8;
  return start;
}

}  // namespace

ViewPins::ViewPins() : slots_(std::make_unique<std::atomic<std::uintptr_t>[]>(kSlots)) {}

std::uint32_t ViewPins::claim(const std::byte* buffer) noexcept {
  const auto name = reinterpret_cast<std::uintptr_t>(buffer);
  const std::uint32_t start = first_slot();
  for (std::uint32_t n = 0; n < kSlots; ++n) {
    const std::uint32_t i = (start + n) % kSlots;
    if (slots_[i].load(std::memory_order_relaxed) != 0) continue;
    // The mark first: a scan that sees the slot must be one that reads it.
    std::uint32_t hw = high_water_.load(std::memory_order_seq_cst);
    while (hw < i + 1 && !high_water_.compare_exchange_weak(hw, i + 1, std::memory_order_seq_cst)) {
    }
    std::uintptr_t expected = 0;
    if (slots_[i].compare_exchange_strong(expected, name, std::memory_order_seq_cst)) return i;
  }
  return kNoSlot;
}

void ViewPins::release(std::uint32_t slot) noexcept {
  slots_[slot].store(0, std::memory_order_seq_cst);
  if (orphaned_.load(std::memory_order_seq_cst)) delete_if_last();
}

void ViewPins::named(std::vector<const std::byte*>& out) const {
  out.clear();
  const std::uint32_t hw = high_water_.load(std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < hw; ++i) {
    const std::uintptr_t v = slots_[i].load(std::memory_order_seq_cst);
    if (v != 0) out.push_back(reinterpret_cast<const std::byte*>(v));
  }
}

bool ViewPins::names(const std::byte* buffer) const noexcept {
  const auto name = reinterpret_cast<std::uintptr_t>(buffer);
  const std::uint32_t hw = high_water_.load(std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < hw; ++i) {
    if (slots_[i].load(std::memory_order_seq_cst) == name) return true;
  }
  return false;
}

bool ViewPins::none_in_use() const noexcept {
  const std::uint32_t hw = high_water_.load(std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < hw; ++i) {
    if (slots_[i].load(std::memory_order_seq_cst) != 0) return false;
  }
  return true;
}

// Releases racing with orphan(): each stores its 0 before it reads
// `orphaned_`, and orphan() stores `orphaned_` before it scans, so the last
// of them to scan sees every slot free; `deleted_` picks one deleter.
void ViewPins::delete_if_last() noexcept {
  if (!none_in_use()) return;
  if (deleted_.exchange(true, std::memory_order_seq_cst)) return;
  delete this;
}

void ViewPins::orphan(std::vector<AlignedBuffer> memory) noexcept {
  memory_ = std::move(memory);
  orphaned_.store(true, std::memory_order_seq_cst);
  delete_if_last();
}

void PinnedValue::reset() noexcept {
  if (pins_ != nullptr) static_cast<ViewPins*>(std::exchange(pins_, nullptr))->release(slot_);
  view_ = {};
  copy_.clear();  // keeps its capacity for the next copy
}

}  // namespace corobtree
