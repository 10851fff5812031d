// The tree's state as the file records it: in the meta page (as of a
// checkpoint) and in every commit record of the log (as of that commit).
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>

#include "io/disk_manager.h"

namespace corobtree {

struct TreeState {
  BlockId root = kInvalidBlockId;
  std::uint32_t height = 1;
  std::uint64_t key_count = 0;
  BlockId free_head = kInvalidBlockId;
  std::uint64_t free_pages = 0;
  std::uint32_t minimum_degree = 0;
  bool operator==(const TreeState&) const = default;
};

// The tree's state as of a commit (and as of a checkpoint, in the meta page).
struct CommitState {
  TreeState tree;
  std::uint64_t page_count = 0;  // blocks of the data file the tree may use
  bool operator==(const CommitState&) const = default;
};

}  // namespace corobtree
