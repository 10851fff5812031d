// The on-disk page format: the page header and cell layouts, by name (the
// tables are in docs/file-format.md). Every page starts with a 48-byte
// header (PageHeader); integers are little-endian (engine/format/endian.h).
// Slotted pages (leaf, inner) keep a u16 cell offset per slot after the
// header, in key order, and cells (LeafCell, InnerCell) in a heap growing
// down from the end of the page.
//
// Thread-safety: plain functions over caller-owned bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "engine/format/endian.h"
#include "io/disk_manager.h"

namespace corobtree {

enum class PageType : std::uint8_t {
  kZero = 0,  // never written
  kMeta = 1,
  kLeaf = 2,
  kInner = 3,
  kOverflow = 4,
  kFree = 5,
};

std::string_view page_type_name(PageType t) noexcept;

// The header of every tree, overflow and free page (docs/file-format.md).
struct PageHeader {
  using Crc = Field<std::uint32_t, 0>;         // CRC32C over the page id and bytes [4, page_size)
  using Type = Field<std::uint8_t, 4>;         // PageType
  using SlotCount = Field<std::uint16_t, 6>;   // leaf/inner: cells in the slot array
  using Lsn = Field<std::uint64_t, 8>;         // the transaction that logged this image
  using Link0 = Field<std::uint64_t, 16>;      // leaf: next; inner: leftmost child;
                                               // overflow: next overflow page; free: next free page
  using Link1 = Field<std::uint64_t, 24>;      // leaf: previous leaf
  using HeapStart = Field<std::uint32_t, 32>;  // lowest cell byte (page_size when empty)
  using Garbage = Field<std::uint32_t, 36>;    // bytes of dead cells inside the heap
  using Payload = Field<std::uint32_t, 40>;    // overflow: payload bytes in this page
  static constexpr std::uint32_t kSize = 48;   // bytes 5 and [44, 48) are reserved (0)
  static constexpr std::uint32_t kSlotSize = 2;  // u16 cell offset per slot, after the header
};

// A leaf cell: the key, then the value inline or the first overflow page.
struct LeafCell {
  using KeyLength = Field<std::uint16_t, 0>;
  using Flags = Field<std::uint8_t, 2>;     // kOverflow: the value is in overflow pages
  using Reserved = Field<std::uint8_t, 3>;  // 0
  using ValueLength = Field<std::uint32_t, 4>;
  static constexpr std::uint32_t kFixed = 8;        // the key starts here
  static constexpr std::uint32_t kOverflowRef = 8;  // bytes of the u64 first overflow page
  static constexpr std::uint8_t kOverflow = 1;
};

// An inner cell: the child holding keys >= this key, then the key.
struct InnerCell {
  using KeyLength = Field<std::uint16_t, 0>;
  using Child = Field<std::uint64_t, 2>;
  static constexpr std::uint32_t kFixed = 10;  // the key starts here
};

static_assert(PageHeader::Payload::end <= PageHeader::kSize);
static_assert(LeafCell::ValueLength::end == LeafCell::kFixed);
static_assert(InnerCell::Child::end == InnerCell::kFixed);
// Code that only needs a cell's key length reads it the same way for both kinds.
static_assert(LeafCell::KeyLength::offset ==  // NOLINT(misc-redundant-expression)
              InnerCell::KeyLength::offset);

namespace page {

inline constexpr std::uint32_t kHeaderSize = PageHeader::kSize;
inline constexpr std::uint32_t kSlotSize = PageHeader::kSlotSize;

inline PageType type(const std::byte* p) noexcept {
  return static_cast<PageType>(PageHeader::Type::get(p));
}

// The largest cell a node keeps (a quarter of the usable bytes) and the
// longest key, for pages of `page_size` bytes (docs/file-format.md, "Limits
// and fill rules"). A separator is a key, so every inner cell fits max_cell.
inline constexpr std::uint32_t max_cell(std::uint32_t page_size) noexcept {
  return (page_size - kHeaderSize) / 4;
}
inline constexpr std::uint32_t max_key(std::uint32_t page_size) noexcept {
  return max_cell(page_size) - InnerCell::kFixed - LeafCell::kOverflowRef - kSlotSize;
}

// Zeroes the page and writes an empty header of the given type.
void init(std::span<std::byte> page, PageType type) noexcept;

// CRC over the page id and everything after the checksum field.
std::uint32_t checksum(BlockId id, std::span<const std::byte> page) noexcept;
inline void stamp_checksum(BlockId id, std::span<std::byte> page) noexcept {
  PageHeader::Crc::set(page.data(), checksum(id, page));
}

// Throws Error(kCorruption) naming the file and page when the checksum does
// not match or the structure is inconsistent (a page from disk is never
// trusted, even with a valid checksum). On success, for a leaf or inner page:
// the slot array ends at or before the heap start, which is within the page;
// every slot points at a whole cell inside the heap; no two cells overlap; no
// key is longer than max_key and no cell larger than max_cell; the cells and
// the garbage count fill the heap exactly (so used and free bytes are exact);
// leaf flags are known and an overflow value is at most kMaxValueSize. For an
// overflow page: 0 < payload <= page_size - kHeaderSize. Links are not
// checked here: whoever follows one checks the page it reaches.
// `path` is for the message.
void verify(BlockId id, std::span<const std::byte> page, const std::string& path);

}  // namespace page
}  // namespace corobtree
