#include "engine/format/page_format.h"

#include <algorithm>
#include <array>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/options.h>

#include "engine/format/crc32c.h"

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

// The extent [begin, end) of one cell in its page.
struct CellExtent {
  std::uint32_t begin;
  std::uint32_t end;
};

// A leaf or inner page's slots and cells (see verify() in the header). All
// arithmetic on lengths read from the page is done in 64 bits: no wrap-around.
void verify_slotted(BlockId id, const std::byte* d, std::uint32_t size, PageType t,
                    const std::string& path) {
  const std::uint32_t slots = PageHeader::SlotCount::get(d);
  const std::uint32_t heap = PageHeader::HeapStart::get(d);
  const std::uint64_t slots_end = kHeaderSize + std::uint64_t{slots} * kSlotSize;
  if (heap > size || slots_end > heap) {
    corrupt(id, path,
            std::to_string(slots) + " slots and heap start " + std::to_string(heap) +
                " do not fit a " + std::to_string(size) + "-byte page");
  }
  const bool inner = t == PageType::kInner;
  const std::uint32_t fixed = inner ? InnerCell::kFixed : LeafCell::kFixed;
  const std::uint32_t key_limit = max_key(size);
  const std::uint32_t cell_limit = max_cell(size);
  // Extents to sort for the overlap check; no allocation for pages up to 4 KiB.
  constexpr std::uint32_t kOnStack = 512;
  std::array<CellExtent, kOnStack> on_stack;  // NOLINT(cppcoreguidelines-pro-type-member-init)
  std::vector<CellExtent> on_heap(slots > kOnStack ? slots : 0);
  CellExtent* const cells = slots > kOnStack ? on_heap.data() : on_stack.data();
  std::uint64_t cell_bytes = 0;
  for (std::uint32_t i = 0; i < slots; ++i) {
    const std::uint32_t off = le::load<std::uint16_t>(d, kHeaderSize + i * kSlotSize);
    if (off < heap || std::uint64_t{off} + fixed > size) {
      corrupt(id, path,
              "slot " + std::to_string(i) + " points outside the heap (offset " +
                  std::to_string(off) + ", heap start " + std::to_string(heap) + ")");
    }
    const std::uint32_t klen = LeafCell::KeyLength::get(d + off);  // = InnerCell's
    if (klen > key_limit) {
      corrupt(id, path,
              "cell " + std::to_string(i) + " has a key of " + std::to_string(klen) +
                  " bytes (the limit is " + std::to_string(key_limit) + ")");
    }
    std::uint64_t len = std::uint64_t{fixed} + klen;
    if (!inner) {
      const auto flags = LeafCell::Flags::get(d + off);
      const std::uint64_t vlen = LeafCell::ValueLength::get(d + off);
      if ((flags & ~LeafCell::kOverflow) != 0) {
        corrupt(id, path,
                "cell " + std::to_string(i) + " has unknown flags " + std::to_string(flags));
      }
      if ((flags & LeafCell::kOverflow) != 0) {
        if (vlen > kMaxValueSize) {
          corrupt(id, path,
                  "cell " + std::to_string(i) + " claims an overflow value of " +
                      std::to_string(vlen) + " bytes (the limit is " +
                      std::to_string(kMaxValueSize) + ")");
        }
        len += LeafCell::kOverflowRef;
      } else {
        len += vlen;
      }
    }
    if (len > cell_limit || off + len > size) {
      corrupt(id, path,
              "cell " + std::to_string(i) + " of " + std::to_string(len) + " bytes at offset " +
                  std::to_string(off) + " does not fit (cells are at most " +
                  std::to_string(cell_limit) + " bytes, inside the page)");
    }
    cells[i] = CellExtent{off, static_cast<std::uint32_t>(off + len)};
    cell_bytes += len;
  }
  std::sort(cells, cells + slots,
            [](const CellExtent& a, const CellExtent& b) { return a.begin < b.begin; });
  for (std::uint32_t i = 1; i < slots; ++i) {
    if (cells[i].begin < cells[i - 1].end) {
      corrupt(id, path,
              "cells at offsets " + std::to_string(cells[i - 1].begin) + " and " +
                  std::to_string(cells[i].begin) + " overlap");
    }
  }
  // Cells and garbage fill the heap exactly: used_bytes() and free_bytes() are exact.
  const std::uint64_t garbage = PageHeader::Garbage::get(d);
  if (cell_bytes + garbage != size - heap) {
    corrupt(id, path,
            "heap of " + std::to_string(size - heap) + " bytes holds " +
                std::to_string(cell_bytes) + " bytes of cells and " + std::to_string(garbage) +
                " of garbage");
  }
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
    const auto payload = PageHeader::Payload::get(d);
    if (payload == 0 || payload > size - kHeaderSize) {
      corrupt(id, path,
              "overflow payload of " + std::to_string(payload) + " bytes (a page holds 1 to " +
                  std::to_string(size - kHeaderSize) + ")");
    }
    return;
  }
  if (t == PageType::kFree) return;
  verify_slotted(id, d, size, t, path);
}

}  // namespace page
}  // namespace corobtree
