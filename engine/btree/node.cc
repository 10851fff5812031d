#include "engine/btree/node.h"

#include <algorithm>
#include <cstring>

namespace corobtree {

Node::Value Node::value(std::uint32_t i) const noexcept {
  const std::uint32_t off = cell_offset(i);
  const std::uint32_t klen = LeafCell::KeyLength::get(p_ + off);
  const auto flags = LeafCell::Flags::get(p_ + off);
  const auto vlen = LeafCell::ValueLength::get(p_ + off);
  const std::uint32_t at = off + kLeafCellOverhead + klen;
  if (flags & kFlagOverflow) return Value{true, vlen, {}, le::load<std::uint64_t>(p_, at)};
  return Value{false, vlen, {reinterpret_cast<const char*>(p_ + at), vlen}, kInvalidBlockId};
}

std::uint32_t Node::cell_size_at(std::uint32_t off) const noexcept {
  const std::uint32_t klen = LeafCell::KeyLength::get(p_ + off);  // = InnerCell's
  if (!is_leaf()) return kInnerCellOverhead + klen;
  const auto flags = LeafCell::Flags::get(p_ + off);
  const std::uint32_t vpart =
      (flags & kFlagOverflow) ? LeafCell::kOverflowRef : LeafCell::ValueLength::get(p_ + off);
  return kLeafCellOverhead + klen + vpart;
}

std::uint32_t Node::used_bytes() const noexcept {
  return (size_ - heap_start() - garbage()) + count() * page::kSlotSize;
}

void Node::insert_cell(std::uint32_t pos, std::span<const std::byte> cell) noexcept {
  const auto csize = static_cast<std::uint32_t>(cell.size());
  const std::uint32_t n = count();
  const std::uint32_t slots_end = page::kHeaderSize + (n + 1) * page::kSlotSize;
  if (heap_start() < slots_end + csize) compact();
  const std::uint32_t off = heap_start() - csize;
  std::memcpy(p_ + off, cell.data(), csize);
  set_heap_start(off);
  std::byte* slots = p_ + page::kHeaderSize;
  std::memmove(slots + (pos + 1) * page::kSlotSize, slots + pos * page::kSlotSize,
               (n - pos) * page::kSlotSize);
  le::store<std::uint16_t>(p_, PageHeader::kSize + pos * PageHeader::kSlotSize,
                           static_cast<std::uint16_t>(off));
  set_count(n + 1);
}

void Node::remove(std::uint32_t pos) noexcept {
  const std::uint32_t n = count();
  const std::uint32_t off = cell_offset(pos);
  const std::uint32_t csize = cell_size_at(off);
  if (off == heap_start()) {
    set_heap_start(off + csize);  // the lowest cell: reclaim at once
  } else {
    set_garbage(garbage() + csize);
  }
  std::byte* slots = p_ + page::kHeaderSize;
  std::memmove(slots + pos * page::kSlotSize, slots + (pos + 1) * page::kSlotSize,
               (n - pos - 1) * page::kSlotSize);
  set_count(n - 1);
  if (n - 1 == 0) {
    set_heap_start(size_);
    set_garbage(0);
  }
}

void Node::compact() noexcept {
  if (garbage() == 0) return;
  std::vector<std::byte> tmp(size_);
  std::uint32_t top = size_;
  const std::uint32_t n = count();
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint32_t off = cell_offset(i);
    const std::uint32_t csize = cell_size_at(off);
    top -= csize;
    std::memcpy(tmp.data() + top, p_ + off, csize);
    le::store<std::uint16_t>(p_, PageHeader::kSize + i * PageHeader::kSlotSize,
                             static_cast<std::uint16_t>(top));
  }
  std::memcpy(p_ + top, tmp.data() + top, size_ - top);
  set_heap_start(top);
  set_garbage(0);
}

std::vector<std::byte> Node::leaf_cell(std::string_view key, std::string_view value) {
  std::vector<std::byte> c;
  leaf_cell_into(c, key, value);
  return c;
}

void Node::leaf_cell_into(std::vector<std::byte>& c, std::string_view key, std::string_view value) {
  c.resize(kLeafCellOverhead + key.size() + value.size());
  LeafCell::KeyLength::set(c.data(), static_cast<std::uint16_t>(key.size()));
  LeafCell::Flags::set(c.data(), 0);
  LeafCell::Reserved::set(c.data(), 0);
  LeafCell::ValueLength::set(c.data(), static_cast<std::uint32_t>(value.size()));
  std::memcpy(c.data() + kLeafCellOverhead, key.data(), key.size());
  if (!value.empty())
    std::memcpy(c.data() + kLeafCellOverhead + key.size(), value.data(), value.size());
}

std::vector<std::byte> Node::leaf_overflow_cell(std::string_view key, std::uint32_t length,
                                                BlockId first_page) {
  std::vector<std::byte> c(kLeafCellOverhead + key.size() + LeafCell::kOverflowRef);
  LeafCell::KeyLength::set(c.data(), static_cast<std::uint16_t>(key.size()));
  LeafCell::Flags::set(c.data(), kFlagOverflow);
  LeafCell::ValueLength::set(c.data(), length);
  std::memcpy(c.data() + kLeafCellOverhead, key.data(), key.size());
  le::store<std::uint64_t>(c.data(), kLeafCellOverhead + static_cast<std::uint32_t>(key.size()),
                           first_page);
  return c;
}

std::vector<std::byte> Node::inner_cell(std::string_view key, BlockId child) {
  std::vector<std::byte> c(kInnerCellOverhead + key.size());
  InnerCell::KeyLength::set(c.data(), static_cast<std::uint16_t>(key.size()));
  InnerCell::Child::set(c.data(), child);
  std::memcpy(c.data() + kInnerCellOverhead, key.data(), key.size());
  return c;
}

}  // namespace corobtree
