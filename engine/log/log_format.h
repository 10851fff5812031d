// The write-ahead log's on-disk structures, by name (the tables are in
// docs/file-format.md, "The write-ahead log"): the header in block 0, the
// header of every record, the seed of the records' CRC chain, and the payload
// of commit and checkpoint records. The encoding of a transaction's
// operations is in engine/log/batch_format.h; which record type number means
// what is defined by the part that writes it (RecordLog: padding;
// PageImageStore: page images; Checkpointer: operations, commits, checkpoints,
// recovery marks).
//
// Thread-safety: layouts and plain functions over caller-owned bytes.
#pragma once

#include <array>
#include <cstdint>

#include "engine/format/commit_state.h"
#include "engine/format/endian.h"

namespace corobtree {

// The two log files beside the data file NAME: NAME-wal and NAME-wal2 (used
// alternately, a generation each; engine/log/checkpointer.h).
inline constexpr std::array<const char*, 2> kLogSuffixes = {"-wal", "-wal2"};

// The bytes "CBWL" read as a little-endian u32.
inline constexpr std::uint32_t kLogMagic = 0x4c574243u;
inline constexpr std::uint32_t kLogVersion = 1;

// Block 0 of the log. The rest of the block is zero.
struct LogHeader {
  using Crc = Field<std::uint32_t, 0>;          // CRC32C of bytes [4, kSize)
  using Magic = Field<std::uint32_t, 4>;        // kLogMagic
  using Version = Field<std::uint32_t, 8>;      // kLogVersion
  using PageSize = Field<std::uint32_t, 12>;    // the data file's
  using DatabaseId = Field<std::uint64_t, 16>;  // the data file's meta page's
  using Salt = Field<std::uint64_t, 24>;        // random, new at every reset
  using BaseLsn = Field<std::uint64_t, 32>;     // the checkpoint this generation follows
  static constexpr std::uint32_t kSize = 64;    // bytes [40, 64) are reserved (0)
};

// The header of every record; its payload (Length bytes) follows it.
struct RecordHeader {
  // CRC32C over bytes [4, kSize + Length), extending the previous record's
  // CRC (the first record's starts from ChainSeed's CRC).
  using Crc = Field<std::uint32_t, 0>;
  using Type = Field<std::uint16_t, 4>;    // bytes [6, 8) are reserved (0)
  using Length = Field<std::uint32_t, 8>;  // bytes [12, 16) are reserved (0)
  using Lsn = Field<std::uint64_t, 16>;
  using Page = Field<std::uint64_t, 24>;
  static constexpr std::uint32_t kSize = 32;
};

// The bytes whose CRC32C starts a generation's chain.
struct ChainSeed {
  using Salt = Field<std::uint64_t, 0>;
  using DatabaseId = Field<std::uint64_t, 8>;
  static constexpr std::uint32_t kSize = 16;
};

// The payload of a commit and of a checkpoint record: the tree's state.
struct CommitRecord {
  using Root = Field<std::uint64_t, 0>;
  using Height = Field<std::uint32_t, 8>;
  using MinimumDegree = Field<std::uint32_t, 12>;
  using KeyCount = Field<std::uint64_t, 16>;
  using FreeHead = Field<std::uint64_t, 24>;
  using FreePages = Field<std::uint64_t, 32>;
  using PageCount = Field<std::uint64_t, 40>;
  static constexpr std::uint32_t kSize = 48;
};

static_assert(LogHeader::BaseLsn::end <= LogHeader::kSize);
static_assert(RecordHeader::Page::end == RecordHeader::kSize);
static_assert(ChainSeed::DatabaseId::end == ChainSeed::kSize);
static_assert(CommitRecord::PageCount::end == CommitRecord::kSize);

// REQUIRES: `p` holds CommitRecord::kSize bytes.
inline void encode_commit_record(const CommitState& s, std::byte* p) noexcept {
  CommitRecord::Root::set(p, s.tree.root);
  CommitRecord::Height::set(p, s.tree.height);
  CommitRecord::MinimumDegree::set(p, s.tree.minimum_degree);
  CommitRecord::KeyCount::set(p, s.tree.key_count);
  CommitRecord::FreeHead::set(p, s.tree.free_head);
  CommitRecord::FreePages::set(p, s.tree.free_pages);
  CommitRecord::PageCount::set(p, s.page_count);
}

inline CommitState decode_commit_record(const std::byte* p) noexcept {
  CommitState s;
  s.tree.root = CommitRecord::Root::get(p);
  s.tree.height = CommitRecord::Height::get(p);
  s.tree.minimum_degree = CommitRecord::MinimumDegree::get(p);
  s.tree.key_count = CommitRecord::KeyCount::get(p);
  s.tree.free_head = CommitRecord::FreeHead::get(p);
  s.tree.free_pages = CommitRecord::FreePages::get(p);
  s.page_count = CommitRecord::PageCount::get(p);
  return s;
}

}  // namespace corobtree
