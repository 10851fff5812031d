#include "engine/pager/page_table.h"

#include <bit>

namespace corobtree {

PageTable::PageTable(std::size_t expected_entries) {
  rehash(std::bit_ceil(std::max<std::size_t>(16, expected_entries * 2)));
}

void PageTable::rehash(std::size_t new_capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(new_capacity, Slot{});
  mask_ = new_capacity - 1;
  shift_ = static_cast<unsigned>(64 - std::countr_zero(new_capacity));
  size_ = 0;
  for (const Slot& s : old) {
    if (s.page != kInvalidBlockId) insert(s.page, s.frame);
  }
}

void PageTable::insert(BlockId page, FrameId frame) {
  if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
  std::size_t i = slot_of(page);
  while (slots_[i].page != kInvalidBlockId) i = (i + 1) & mask_;
  slots_[i] = Slot{page, frame};
  ++size_;
}

bool PageTable::erase(BlockId page) noexcept {
  if (page == kInvalidBlockId) return false;  // the empty-slot marker is never a key
  std::size_t i = slot_of(page);
  while (slots_[i].page != page) {
    if (slots_[i].page == kInvalidBlockId) return false;
    i = (i + 1) & mask_;
  }
  // Backward-shift: pull later entries of the probe run into the hole.
  std::size_t hole = i;
  std::size_t j = i;
  for (;;) {
    j = (j + 1) & mask_;
    if (slots_[j].page == kInvalidBlockId) break;
    const std::size_t home = slot_of(slots_[j].page);
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool home_between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!home_between) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot{};
  --size_;
  return true;
}

}  // namespace corobtree
