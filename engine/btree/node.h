// Node: a view of a slotted B+tree page (leaf or inner) over page bytes.
//
// Cell formats (LeafCell and InnerCell in engine/format/page_format.h):
//   leaf  : u16 key_len | u8 flags (bit 0: value in overflow pages) | u8 0 |
//           u32 value_len | key | value bytes, or u64 first overflow page
//   inner : u16 key_len | u64 child | key
// An inner node with n cells has n + 1 children: child(0) is the header's
// link0 (leftmost); child(i + 1) is cell i's child and holds keys >= key(i).
// Keys compare as unsigned bytes (memcmp order, shorter prefix first).
//
// A Node never allocates pages and never does I/O; it does not own the bytes.
// It trusts the slots and lengths it reads: a page from disk reaches a Node
// only after page::verify() (every slot on a whole cell inside the page, no
// overlaps, cells and garbage filling the heap exactly), and the mutators
// below keep those properties, so used_bytes() is exact and compact() and
// insert_cell() stay inside the page.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "engine/format/page_format.h"

namespace corobtree {

// memcmp order. Most keys differ in their first 8 bytes: compare those as one
// big-endian word before falling back to memcmp.
inline int compare_keys(std::string_view a, std::string_view b) noexcept {
  if (a.size() >= 8 && b.size() >= 8) {
    std::uint64_t x;
    std::uint64_t y;
    std::memcpy(&x, a.data(), 8);
    std::memcpy(&y, b.data(), 8);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
  }
  return a.compare(b);
}

class Node {
 public:
  static constexpr std::uint32_t kLeafCellOverhead = LeafCell::kFixed;
  static constexpr std::uint32_t kInnerCellOverhead = InnerCell::kFixed;
  static constexpr std::uint8_t kFlagOverflow = LeafCell::kOverflow;

  explicit Node(std::span<std::byte> page) noexcept
      : p_(page.data()), size_(static_cast<std::uint32_t>(page.size())) {}

  static void init(std::span<std::byte> page, PageType type) noexcept { page::init(page, type); }

  PageType type() const noexcept { return page::type(p_); }
  bool is_leaf() const noexcept { return type() == PageType::kLeaf; }
  std::uint32_t count() const noexcept { return PageHeader::SlotCount::get(p_); }
  std::uint32_t page_size() const noexcept { return size_; }

  BlockId link0() const noexcept { return PageHeader::Link0::get(p_); }
  BlockId link1() const noexcept { return PageHeader::Link1::get(p_); }
  void set_link0(BlockId v) noexcept { PageHeader::Link0::set(p_, v); }
  void set_link1(BlockId v) noexcept { PageHeader::Link1::set(p_, v); }
  // Leaf siblings.
  BlockId next() const noexcept { return link0(); }
  BlockId prev() const noexcept { return link1(); }
  void set_next(BlockId v) noexcept { set_link0(v); }
  void set_prev(BlockId v) noexcept { set_link1(v); }

  std::uint32_t cell_offset(std::uint32_t i) const noexcept {
    return le::load<std::uint16_t>(p_, PageHeader::kSize + i * PageHeader::kSlotSize);
  }
  std::string_view key(std::uint32_t i) const noexcept {
    const std::uint32_t off = cell_offset(i);
    const std::uint32_t klen = LeafCell::KeyLength::get(p_ + off);  // = InnerCell's
    const std::uint32_t at = off + (is_leaf() ? kLeafCellOverhead : kInnerCellOverhead);
    return {reinterpret_cast<const char*>(p_ + at), klen};
  }
  std::span<const std::byte> cell(std::uint32_t i) const noexcept {
    const std::uint32_t off = cell_offset(i);
    return {p_ + off, cell_size_at(off)};
  }

  // Leaf values.
  struct Value {
    bool overflow;
    std::uint32_t length;           // total value length
    std::string_view inline_bytes;  // when !overflow
    BlockId first_page;             // when overflow
  };
  Value value(std::uint32_t i) const noexcept;

  // Inner children, i in [0, count()].
  BlockId child(std::uint32_t i) const noexcept {
    if (i == 0) return link0();
    return InnerCell::Child::get(p_ + cell_offset(i - 1));
  }
  void set_child(std::uint32_t i, BlockId id) noexcept {
    if (i == 0) {
      set_link0(id);
    } else {
      InnerCell::Child::set(p_ + cell_offset(i - 1), id);
    }
  }

  // First slot whose key is >= k (count() if none).
  std::uint32_t lower_bound(std::string_view k) const noexcept {
    std::uint32_t lo = 0;
    std::uint32_t hi = count();
    while (lo < hi) {
      const std::uint32_t mid = (lo + hi) / 2;
      if (compare_keys(key(mid), k) < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }
  // First slot whose key is > k.
  std::uint32_t upper_bound(std::string_view k) const noexcept {
    std::uint32_t lo = 0;
    std::uint32_t hi = count();
    while (lo < hi) {
      const std::uint32_t mid = (lo + hi) / 2;
      if (compare_keys(k, key(mid)) < 0) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo;
  }
  // Inner: index of the child whose subtree may hold k.
  std::uint32_t child_index(std::string_view k) const noexcept { return upper_bound(k); }

  // Bytes in use by cells and slots (what a compacted page would hold).
  std::uint32_t used_bytes() const noexcept;
  // Usable bytes of any page of this size.
  std::uint32_t usable() const noexcept { return size_ - page::kHeaderSize; }
  std::uint32_t free_bytes() const noexcept { return usable() - used_bytes(); }
  // Does a cell of `cell_size` bytes fit (after compaction if needed)?
  bool fits(std::uint32_t cell_size) const noexcept {
    return cell_size + page::kSlotSize <= free_bytes();
  }

  // Inserts raw cell bytes at slot `pos`. REQUIRES: fits(cell.size()).
  void insert_cell(std::uint32_t pos, std::span<const std::byte> cell) noexcept;
  // Removes slot `pos` (its bytes become garbage until compaction).
  void remove(std::uint32_t pos) noexcept;
  // Rewrites the heap without garbage.
  void compact() noexcept;

  // Cell builders.
  static std::vector<std::byte> leaf_cell(std::string_view key, std::string_view value);
  // leaf_cell into `out`, which it resizes (reused, it stops allocating).
  static void leaf_cell_into(std::vector<std::byte>& out, std::string_view key,
                             std::string_view value);
  static std::vector<std::byte> leaf_overflow_cell(std::string_view key, std::uint32_t length,
                                                   BlockId first_page);
  static std::vector<std::byte> inner_cell(std::string_view key, BlockId child);
  static std::uint32_t leaf_cell_size(std::size_t klen, std::size_t vlen_or_8) noexcept {
    return kLeafCellOverhead + static_cast<std::uint32_t>(klen + vlen_or_8);
  }
  static std::uint32_t inner_cell_size(std::size_t klen) noexcept {
    return kInnerCellOverhead + static_cast<std::uint32_t>(klen);
  }

 private:
  std::uint32_t cell_size_at(std::uint32_t off) const noexcept;
  std::uint32_t heap_start() const noexcept { return PageHeader::HeapStart::get(p_); }
  std::uint32_t garbage() const noexcept { return PageHeader::Garbage::get(p_); }
  void set_count(std::uint32_t n) noexcept {
    PageHeader::SlotCount::set(p_, static_cast<std::uint16_t>(n));
  }
  void set_heap_start(std::uint32_t v) noexcept { PageHeader::HeapStart::set(p_, v); }
  void set_garbage(std::uint32_t v) noexcept { PageHeader::Garbage::set(p_, v); }

  std::byte* p_;
  std::uint32_t size_;
};

}  // namespace corobtree
