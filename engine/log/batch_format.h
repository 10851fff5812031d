// The encoding of a transaction's operations: the bytes a WriteBatch keeps
// (include/corobtree/write_batch.h) and the payload of the log's operation
// records (docs/file-format.md, "The write-ahead log"). This file is the one
// place that encodes or decodes them.
//
//   per operation: kind (u8: 1 put, 2 erase) | key length (u32) |
//                  value length (u64) | key | value
//
// An erase carries no value (length 0). The decoder never trusts a length:
// each is checked against the bytes that remain, so damaged bytes give
// Error(kCorruption), never a read past the end or an overflowing sum.
//
// Thread-safety: plain functions and values over caller-owned bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "engine/format/endian.h"

namespace corobtree {

enum class OpKind : std::uint8_t { kPut = 1, kErase = 2 };

struct OpLayout {
  using Kind = Field<std::uint8_t, 0>;  // OpKind
  using KeyLength = Field<std::uint32_t, 1>;
  using ValueLength = Field<std::uint64_t, 5>;  // 0 for an erase
  static constexpr std::uint32_t kSize = 13;    // the key starts here, the value after it
};
static_assert(OpLayout::ValueLength::end == OpLayout::kSize);

// Appends one operation to `rep`. Throws Error(kInvalidArgument) for a key
// longer than a u32 can count.
void append_op(std::string& rep, OpKind kind, std::string_view key, std::string_view value);

// One decoded operation; its views point into the decoded bytes.
struct BatchOp {
  OpKind kind = OpKind::kPut;
  std::string_view key;
  std::string_view value;
};

// Decodes encoded operations one at a time.
class BatchReader {
 public:
  // `source` says where the bytes come from ("transaction 7 of the log
  // '/d/x.db-wal'"), `path` is the file for the error (may be empty). All
  // three must outlive the reader.
  BatchReader(std::span<const std::byte> bytes, std::string_view source,
              std::string_view path = {}) noexcept
      : bytes_(bytes), source_(source), path_(path) {}

  // Decodes the next operation into `op`; false at the end of the bytes.
  // Throws Error(kCorruption) naming `source` when the bytes left do not hold
  // one whole, valid operation.
  bool next(BatchOp& op);

 private:
  [[noreturn]] void damaged(const char* what) const;

  std::span<const std::byte> bytes_;
  std::string_view source_;
  std::string_view path_;
  std::size_t at_ = 0;
};

// Decodes all of `bytes` (throwing as BatchReader::next does) and returns
// how many operations they hold.
std::size_t count_ops(std::span<const std::byte> bytes, std::string_view source,
                      std::string_view path = {});

inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace corobtree
