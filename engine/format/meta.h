// The meta page: blocks 0 and 1 of every database file, written alternately
// (the one with the higher sequence number and a valid checksum wins at open).
// Its layout is MetaLayout below; docs/file-format.md has the table.
//
// Thread-safety: plain functions over caller-owned bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "engine/format/commit_state.h"
#include "engine/format/endian.h"
#include "io/disk_manager.h"

namespace corobtree {

// The bytes "CROBTREE" read as a little-endian u64.
inline constexpr std::uint64_t kMagic = 0x45455254424f5243ull;
inline constexpr std::uint32_t kFormatVersion = 1;

struct MetaLayout {
  using Crc =
      Field<std::uint32_t, 0>;  // CRC32C over the block id (u64 LE) and bytes [4, page_size)
  using Type = Field<std::uint8_t, 4>;       // PageType::kMeta
  using Magic = Field<std::uint64_t, 8>;     // kMagic
  using Version = Field<std::uint32_t, 16>;  // kFormatVersion
  using PageSize = Field<std::uint32_t, 20>;
  using Sequence = Field<std::uint64_t, 24>;
  using Root = Field<std::uint64_t, 32>;
  using Height = Field<std::uint32_t, 40>;         // 1: the root is a leaf
  using MinimumDegree = Field<std::uint32_t, 44>;  // 0: byte-filled nodes
  using KeyCount = Field<std::uint64_t, 48>;
  using FreeHead = Field<std::uint64_t, 56>;  // kInvalidBlockId if empty
  using FreePages = Field<std::uint64_t, 64>;
  using PageCount = Field<std::uint64_t, 72>;      // blocks the tree may use
  using CheckpointLsn = Field<std::uint64_t, 80>;  // the last commit the file holds
  using DatabaseId = Field<std::uint64_t, 88>;     // random at creation; the log header repeats it
  // Reading this many bytes of a meta page tells its magic, version and page size.
  static constexpr std::uint32_t kProbeBytes = PageSize::end;
};

struct Meta {
  std::uint32_t page_size = kDefaultPageSize;
  std::uint64_t sequence = 0;
  CommitState state;  // the tree as of the checkpoint
  std::uint64_t checkpoint_lsn = 0;
  std::uint64_t database_id = 0;
};

// A fresh random database id (never 0), for a new database or a backup copy.
std::uint64_t new_database_id();

// Serialises `m` into a meta page for block `id` (0 or 1), checksum included.
void encode_meta(const Meta& m, BlockId id, std::span<std::byte> page);

enum class MetaStatus { kValid, kBadChecksum, kBadMagic, kBadVersion, kBadFields };
struct DecodedMeta {
  MetaStatus status;
  Meta meta;
  std::uint32_t version = 0;
};
DecodedMeta decode_meta(BlockId id, std::span<const std::byte> page);
// What is wrong with a meta page that did not decode: "checksum mismatch", ...
std::string_view meta_status_name(MetaStatus s) noexcept;

}  // namespace corobtree
