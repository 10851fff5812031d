#include "engine/pager/view_pins.h"

#include <bit>
#include <utility>

namespace corobtree {
namespace {

// Each thread starts its search at its own bitmap word (64 slots, eight
// cache lines of them), so that threads pinning at once share neither a
// bitmap word nor a line of slots until more than 64 threads pin.
std::uint32_t first_word(std::uint32_t words) noexcept {
  static std::atomic<std::uint32_t> next_thread{0};
  thread_local const std::uint32_t start =
      next_thread.fetch_add(1, std::memory_order_relaxed) % words;
  return start;
}

}  // namespace

ViewPins::ViewPins()
    : slots_(std::make_unique<std::atomic<std::uintptr_t>[]>(kSlots)),
      used_(std::make_unique<std::atomic<std::uint64_t>[]>(kWords)) {}

std::uint32_t ViewPins::claim(const std::byte* buffer) noexcept {
  // The count first, then the bit, then the name (see the ordering above).
  live_.fetch_add(1, std::memory_order_seq_cst);
  const std::uint32_t start = first_word(kWords);
  for (std::uint32_t n = 0; n < kWords; ++n) {
    const std::uint32_t w = (start + n) % kWords;
    std::uint64_t bits = used_[w].load(std::memory_order_relaxed);
    while (bits != ~std::uint64_t{0}) {
      const auto bit = static_cast<std::uint32_t>(std::countr_one(bits));
      const std::uint64_t mask = std::uint64_t{1} << bit;
      bits = used_[w].fetch_or(mask, std::memory_order_seq_cst);
      if ((bits & mask) == 0) {
        const std::uint32_t slot = w * 64 + bit;
        slots_[slot].store(reinterpret_cast<std::uintptr_t>(buffer), std::memory_order_seq_cst);
        return slot;
      }
    }
  }
  live_.fetch_sub(1, std::memory_order_seq_cst);
  return kNoSlot;
}

void ViewPins::release(std::uint32_t slot) noexcept {
  slots_[slot].store(0, std::memory_order_seq_cst);
  used_[slot / 64].fetch_and(~(std::uint64_t{1} << (slot % 64)), std::memory_order_seq_cst);
  // The deciding step: after it, only the deleter touches the table.
  if (live_.fetch_sub(1, std::memory_order_seq_cst) == (kOrphanBit | 1)) delete this;
}

template <typename F>
bool ViewPins::for_each_named(F&& f) const noexcept {
  for (std::uint32_t w = 0; w < kWords; ++w) {
    for (std::uint64_t bits = used_[w].load(std::memory_order_seq_cst); bits != 0;
         bits &= bits - 1) {
      const std::uint32_t slot = w * 64 + static_cast<std::uint32_t>(std::countr_zero(bits));
      const std::uintptr_t v = slots_[slot].load(std::memory_order_seq_cst);
      if (v != 0 && f(v)) return true;
    }
  }
  return false;
}

void ViewPins::named(std::vector<const std::byte*>& out) const {
  out.clear();
  if (!any_live()) return;
  for_each_named([&out](std::uintptr_t v) {
    out.push_back(reinterpret_cast<const std::byte*>(v));  // capacity kSlots: no allocation
    return false;
  });
}

bool ViewPins::names(const std::byte* buffer) const noexcept {
  if (!any_live()) return false;
  const auto name = reinterpret_cast<std::uintptr_t>(buffer);
  return for_each_named([name](std::uintptr_t v) { return v == name; });
}

void ViewPins::orphan(std::vector<AlignedBuffer> memory) noexcept {
  memory_ = std::move(memory);
  // The deciding step for the pool's side: none live means no release is
  // left to do it.
  if (live_.fetch_or(kOrphanBit, std::memory_order_seq_cst) == 0) delete this;
}

void PinnedValue::reset() noexcept {
  if (pins_ != nullptr) static_cast<ViewPins*>(std::exchange(pins_, nullptr))->release(slot_);
  view_ = {};
  copy_.clear();  // keeps its capacity for the next copy
}

}  // namespace corobtree
