// WriteBatchInternal: the engine's access to a WriteBatch's encoded
// operations (engine/log/batch_format.h), which the public header keeps
// private: a commit logs them, recovery rebuilds a batch from a logged
// transaction, and the database applies a batch by decoding them.
//
// Thread-safety: plain functions over caller-owned values.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include <corobtree/write_batch.h>

#include "engine/log/batch_format.h"

namespace corobtree {

class WriteBatchInternal {
 public:
  // The batch's operations as the log stores them.
  static std::span<const std::byte> contents(const WriteBatch& batch) noexcept {
    return as_bytes(batch.rep_);
  }
  // A decoder over the batch's operations. REQUIRES: `batch` outlives it.
  static BatchReader reader(const WriteBatch& batch) noexcept {
    return BatchReader(contents(batch), "a WriteBatch");
  }
  // The batch whose encoded operations are `rep` (a logged transaction),
  // checked whole: Error(kCorruption) naming `source` and `path` if damaged.
  static WriteBatch from_contents(std::string rep, std::string_view source, std::string_view path);
};

}  // namespace corobtree
