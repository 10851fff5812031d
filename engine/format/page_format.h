// The on-disk page format (see docs/file-format.md for the tables).
//
// Every page starts with a 48-byte header; integers are little-endian.
//   0  u32  CRC32C over the page id (u64 LE) followed by bytes [4, page_size)
//   4  u8   page type (PageType)
//   5  u8   reserved (0)
//   6  u16  slot count (leaf/inner)
//   8  u64  LSN (0 until the WAL exists)
//   16 u64  link0: leaf -> next leaf, inner -> leftmost child,
//               overflow -> next overflow page, free -> next free page
//   24 u64  link1: leaf -> previous leaf
//   32 u32  heap start: offset of the lowest cell byte (page_size when empty)
//   36 u32  garbage: bytes of dead cells inside the heap
//   40 u32  overflow pages: payload bytes in this page
//   44 u32  reserved (0)
// Slotted pages (leaf, inner) keep a u16 cell offset per slot after the
// header, in key order, and cells in a heap growing down from the end.
//
// Thread-safety: plain functions over caller-owned bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>

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

namespace page {

inline constexpr std::uint32_t kHeaderSize = 48;
inline constexpr std::uint32_t kSlotSize = 2;
inline constexpr std::uint32_t kOffCrc = 0;
inline constexpr std::uint32_t kOffType = 4;
inline constexpr std::uint32_t kOffSlots = 6;
inline constexpr std::uint32_t kOffLsn = 8;
inline constexpr std::uint32_t kOffLink0 = 16;
inline constexpr std::uint32_t kOffLink1 = 24;
inline constexpr std::uint32_t kOffHeapStart = 32;
inline constexpr std::uint32_t kOffGarbage = 36;
inline constexpr std::uint32_t kOffPayload = 40;

template <typename T>
inline T load(const std::byte* p, std::uint32_t off) noexcept {
  T v;
  std::memcpy(&v, p + off, sizeof v);
  return v;
}
template <typename T>
inline void store(std::byte* p, std::uint32_t off, T v) noexcept {
  std::memcpy(p + off, &v, sizeof v);
}

inline PageType type(const std::byte* p) noexcept {
  return static_cast<PageType>(load<std::uint8_t>(p, kOffType));
}

// Zeroes the page and writes an empty header of the given type.
void init(std::span<std::byte> page, PageType type) noexcept;

// CRC over the page id and everything after the checksum field.
std::uint32_t checksum(BlockId id, std::span<const std::byte> page) noexcept;
inline void stamp_checksum(BlockId id, std::span<std::byte> page) noexcept {
  store<std::uint32_t>(page.data(), kOffCrc, checksum(id, page));
}

// Throws Error(kCorruption) naming the file and page when the checksum does
// not match or the header/slots are inconsistent (a page from disk is never
// trusted). `path` is for the message.
void verify(BlockId id, std::span<const std::byte> page, const std::string& path);

}  // namespace page
}  // namespace corobtree
