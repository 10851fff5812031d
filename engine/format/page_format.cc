#include "engine/format/page_format.h"

#include "engine/format/crc32c.h"
#include <corobtree/error.h>

namespace corobtree {

std::string_view page_type_name(PageType t) noexcept {
  switch (t) {
    case PageType::kZero: return "zero";
    case PageType::kMeta: return "meta";
    case PageType::kLeaf: return "leaf";
    case PageType::kInner: return "inner";
    case PageType::kOverflow: return "overflow";
    case PageType::kFree: return "free";
  }
  return "unknown";
}

namespace page {

void init(std::span<std::byte> p, PageType t) noexcept {
  std::memset(p.data(), 0, p.size());
  store<std::uint8_t>(p.data(), kOffType, static_cast<std::uint8_t>(t));
  store<std::uint64_t>(p.data(), kOffLink0, kInvalidBlockId);
  store<std::uint64_t>(p.data(), kOffLink1, kInvalidBlockId);
  store<std::uint32_t>(p.data(), kOffHeapStart, static_cast<std::uint32_t>(p.size()));
}

std::uint32_t checksum(BlockId id, std::span<const std::byte> p) noexcept {
  std::uint32_t crc = crc32c(&id, sizeof id);
  return crc32c_extend(crc, p.data() + 4, p.size() - 4);
}

namespace {

[[noreturn]] void corrupt(BlockId id, const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kCorruption,
              "page " + std::to_string(id) + " of '" + path + "' is corrupt: " + why, 0, path, id);
}

}  // namespace

void verify(BlockId id, std::span<const std::byte> p, const std::string& path) {
  const std::byte* d = p.data();
  const auto size = static_cast<std::uint32_t>(p.size());
  const auto stored = load<std::uint32_t>(d, kOffCrc);
  const std::uint32_t actual = checksum(id, p);
  if (stored != actual) {
    bool all_zero = true;
    for (std::byte b : p) {
      if (b != std::byte{0}) {
        all_zero = false;
        break;
      }
    }
    corrupt(id, path,
            all_zero ? std::string("the page was never written (all zeros)")
                     : "checksum mismatch (stored " + std::to_string(stored) + ", computed " +
                           std::to_string(actual) + ")");
  }
  const PageType t = type(d);
  if (t != PageType::kLeaf && t != PageType::kInner && t != PageType::kOverflow &&
      t != PageType::kFree) {
    corrupt(id, path, "unexpected page type " + std::to_string(static_cast<int>(t)));
  }
  if (t == PageType::kOverflow) {
    if (load<std::uint32_t>(d, kOffPayload) > size - kHeaderSize) corrupt(id, path, "overflow payload too long");
    return;
  }
  if (t == PageType::kFree) return;
  const std::uint32_t slots = load<std::uint16_t>(d, kOffSlots);
  const auto heap = load<std::uint32_t>(d, kOffHeapStart);
  if (kHeaderSize + slots * kSlotSize > heap || heap > size) corrupt(id, path, "slot array overlaps the heap");
  if (load<std::uint32_t>(d, kOffGarbage) > size - heap) corrupt(id, path, "bad garbage count");
  // Every cell must lie inside the heap with its declared lengths.
  for (std::uint32_t i = 0; i < slots; ++i) {
    const std::uint32_t off = load<std::uint16_t>(d, kHeaderSize + i * kSlotSize);
    const std::uint32_t min_cell = t == PageType::kInner ? 10 : 8;  // the fixed part of a cell
    if (off < heap || off + min_cell > size) {
      corrupt(id, path, "slot " + std::to_string(i) + " points outside the heap");
    }
    const std::uint32_t klen = load<std::uint16_t>(d, off);
    std::uint32_t end;
    if (t == PageType::kInner) {
      end = off + 10 + klen;
    } else {
      const auto flags = load<std::uint8_t>(d, off + 2);
      const auto vlen = load<std::uint32_t>(d, off + 4);
      end = off + 8 + klen + ((flags & 1) ? 8 : vlen);
      if (!(flags & 1) && vlen > size) end = size + 1;
    }
    if (end > size) corrupt(id, path, "cell " + std::to_string(i) + " runs past the page end");
  }
}

}  // namespace page
}  // namespace corobtree
