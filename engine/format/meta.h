// The meta page: blocks 0 and 1 of every database file, written alternately
// (the one with the higher sequence number and a valid checksum wins at open).
//
//   0  u32  CRC32C over the block id (u64 LE) and bytes [4, page_size)
//   4  u8   page type = 1 (meta)
//   8  u64  magic "CORBTREE"
//   16 u32  format version (kFormatVersion)
//   20 u32  page size
//   24 u64  sequence number
//   32 u64  root page id
//   40 u32  height (1 = the root is a leaf)
//   44 u32  minimum degree (0 = byte-filled nodes)
//   48 u64  key count
//   56 u64  free-list head (kInvalidBlockId if empty)
//   64 u64  free pages
//   72 u64  page count (blocks the tree may use)
//   80 u64  checkpoint LSN (the last commit the data file holds; the WAL replays later ones)
//   88 u64  database id (random at creation; the WAL header repeats it)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "io/disk_manager.h"

namespace corobtree {

inline constexpr std::uint64_t kMagic = 0x45455254424f5243ull;  // "CORBTREE"
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::uint32_t kMetaProbeBytes = 24;  // enough to read magic, version, page size

struct Meta {
  std::uint32_t page_size = kDefaultPageSize;
  std::uint64_t sequence = 0;
  BlockId root = kInvalidBlockId;
  std::uint32_t height = 1;
  std::uint32_t minimum_degree = 0;
  std::uint64_t key_count = 0;
  BlockId free_head = kInvalidBlockId;
  std::uint64_t free_pages = 0;
  std::uint64_t page_count = 0;
  std::uint64_t checkpoint_lsn = 0;
  std::uint64_t database_id = 0;
};

// Serialises `m` into a meta page for block `id` (0 or 1), checksum included.
void encode_meta(const Meta& m, BlockId id, std::span<std::byte> page);

enum class MetaStatus { kValid, kBadChecksum, kBadMagic, kBadVersion, kBadFields };
struct DecodedMeta {
  MetaStatus status;
  Meta meta;
  std::uint32_t version = 0;
};
DecodedMeta decode_meta(BlockId id, std::span<const std::byte> page);

}  // namespace corobtree
