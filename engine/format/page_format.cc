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
  PageHeader::Type::set(p.data(), static_cast<std::uint8_t>(t));
  PageHeader::Link0::set(p.data(), kInvalidBlockId);
  PageHeader::Link1::set(p.data(), kInvalidBlockId);
  PageHeader::HeapStart::set(p.data(), static_cast<std::uint32_t>(p.size()));
}

std::uint32_t checksum(BlockId id, std::span<const std::byte> p) noexcept {
  std::byte id_le[8];
  le::store<std::uint64_t>(id_le, 0, id);
  const std::uint32_t crc = crc32c(id_le, sizeof id_le);
  return crc32c_extend(crc, p.data() + PageHeader::Crc::end, p.size() - PageHeader::Crc::end);
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
  const auto stored = PageHeader::Crc::get(d);
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
    if (PageHeader::Payload::get(d) > size - kHeaderSize) corrupt(id, path, "overflow payload too long");
    return;
  }
  if (t == PageType::kFree) return;
  const std::uint32_t slots = PageHeader::SlotCount::get(d);
  const auto heap = PageHeader::HeapStart::get(d);
  if (kHeaderSize + slots * kSlotSize > heap || heap > size) corrupt(id, path, "slot array overlaps the heap");
  if (PageHeader::Garbage::get(d) > size - heap) corrupt(id, path, "bad garbage count");
  // Every cell must lie inside the heap with its declared lengths.
  for (std::uint32_t i = 0; i < slots; ++i) {
    const std::uint32_t off = le::load<std::uint16_t>(d, kHeaderSize + i * kSlotSize);
    const std::uint32_t min_cell = t == PageType::kInner ? InnerCell::kFixed : LeafCell::kFixed;
    if (off < heap || off + min_cell > size) {
      corrupt(id, path, "slot " + std::to_string(i) + " points outside the heap");
    }
    const std::uint32_t klen = LeafCell::KeyLength::get(d + off);  // = InnerCell's
    std::uint32_t end;
    if (t == PageType::kInner) {
      end = off + InnerCell::kFixed + klen;
    } else {
      const bool overflow = (LeafCell::Flags::get(d + off) & LeafCell::kOverflow) != 0;
      const auto vlen = LeafCell::ValueLength::get(d + off);
      end = off + LeafCell::kFixed + klen + (overflow ? LeafCell::kOverflowRef : vlen);
      if (!overflow && vlen > size) end = size + 1;
    }
    if (end > size) corrupt(id, path, "cell " + std::to_string(i) + " runs past the page end");
  }
}

}  // namespace page
}  // namespace corobtree
