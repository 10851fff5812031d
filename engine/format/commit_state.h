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

// Whether the fields are possible at all: the root past the meta pages and
// inside the page count, a height of 1 to 64, the free list's head inside the
// page count. A meta page or checkpoint record failing this is damaged.
inline bool plausible(const CommitState& s) noexcept {
  const TreeState& t = s.tree;
  return t.root >= 2 && t.root < s.page_count && t.height != 0 && t.height <= 64 &&
         (t.free_head == kInvalidBlockId || t.free_head < s.page_count);
}

}  // namespace corobtree
