// PackedTreeWriter: writes a packed B+tree straight into a new data file,
// from pairs handed over one at a time in strictly increasing key order.
// Compaction streams the live tree through it (docs/engine.md, "Compaction").
//
// Pages are numbered from 2 in the order the writer fills them, so the tree
// (leaves, inner nodes and overflow chains) occupies blocks [2, page_count)
// with nothing free. Each level fills a node as full as the node rules allow
// (bytes, and 2t-1 keys with a minimum degree t), then starts the next; at
// finish() the last two nodes of a level are evened out when the last one
// would be underfull, so the result passes BTree::validate(). Separators are
// the first keys of the nodes to their right, as bulk_load makes them.
//
// Memory: the items of two nodes per level (the last full one is kept until
// the next fills, so that the two can be evened out) and the value at hand;
// never the whole tree.
//
// The meta pages (blocks 0 and 1) are the caller's: the writer allocates them
// but writes only tree pages, each stamped with `lsn` and its checksum. It
// does not sync.
//
// Thread-safety: loop-affine; one task at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <corobtree/task.h>

#include "engine/format/commit_state.h"
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"

namespace corobtree {

class PackedTreeWriter {
 public:
  // REQUIRES: `out` is empty (0 blocks) and outlives the writer.
  PackedTreeWriter(DiskManager& out, std::uint32_t minimum_degree, std::uint64_t lsn);

  // Appends a pair. REQUIRES: keys strictly increase (else kInvalidArgument),
  // key and value within the tree's limits.
  Task<void> add(std::string_view key, std::string_view value);
  // Writes the nodes still held, cuts the file to the pages used and returns
  // the tree's state (no free pages). Once only.
  Task<CommitState> finish();

  std::uint64_t keys() const noexcept { return keys_; }
  // Keys per node at most (2t-1; unbounded without a minimum degree).
  std::uint64_t max_keys() const noexcept;

 private:
  // A cell of a node being filled: a leaf's pair, or an inner node's child
  // with the first key of its subtree (the first item of an inner node becomes
  // its leftmost child; the others become cells).
  struct Item {
    std::string key;
    std::vector<std::byte> cell;  // leaves: the leaf cell
    BlockId child = kInvalidBlockId;
  };
  // A node being filled, or full and not yet written.
  struct Pending {
    BlockId id = kInvalidBlockId;
    std::vector<Item> items;
    std::uint64_t used = 0;  // bytes of cells and slots on its page
  };
  struct Level {
    Pending prev;                           // full, not yet written (empty if none)
    Pending cur;                            // being filled
    BlockId before_prev = kInvalidBlockId;  // leaves: the leaf written before prev
  };

  std::uint32_t cost(const Item& item, bool leaf) const noexcept;
  bool fits(const Pending& n, const Item& item, bool leaf) const noexcept;
  bool underfull(std::uint64_t used, std::size_t items, bool leaf) const noexcept;
  BlockId take_ids(std::uint64_t n);
  Task<void> add_item(std::size_t level, Item item);
  // Evens out prev and cur of `level` so that neither is underfull.
  void even_out(Level& l, bool leaf) const;
  Task<void> write_node(const Pending& n, bool leaf, BlockId prev_leaf, BlockId next_leaf);
  Task<void> write_page(BlockId id);
  Task<BlockId> write_overflow(std::string_view value);

  DiskManager& out_;
  const std::uint32_t page_size_;
  const std::uint32_t usable_;
  const std::uint32_t max_cell_;
  const std::uint32_t minimum_degree_;
  const std::uint64_t lsn_;
  AlignedBuffer page_;
  std::vector<Level> levels_;  // 0: leaves
  BlockId next_id_ = 2;
  std::uint64_t keys_ = 0;
  std::string last_key_;
  bool finished_ = false;
};

}  // namespace corobtree
