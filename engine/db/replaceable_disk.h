// ReplaceableDisk: the data file as the database's parts see it. The buffer
// pool, the page-image store and the checkpointer keep a DiskManager&; this
// forwards every call to the file underneath, which compaction replaces with
// its packed copy (replace()) without those references changing.
//
// Thread-safety: loop-affine, like the DiskManager it forwards to.
#pragma once

#include <memory>
#include <span>

#include "io/forwarding_disk.h"

namespace corobtree {

class ReplaceableDisk final : public ForwardingDiskManager {
 public:
  using ForwardingDiskManager::ForwardingDiskManager;

  // Forwards to `file` from now on and returns the previous file (still open).
  // REQUIRES: no operation in flight on the previous file.
  std::unique_ptr<DiskManager> replace(std::unique_ptr<DiskManager> file) noexcept {
    return replace_inner(std::move(file));
  }

  // One pwrite for a run of blocks, as the file itself does it.
  Task<void> write_blocks(BlockId first, std::span<const std::byte> data) override {
    return inner().write_blocks(first, data);
  }
  // One read for a run of blocks, as the file itself does it.
  Task<void> read_blocks(BlockId first, std::span<std::byte> out) override {
    return inner().read_blocks(first, out);
  }
  Task<void> read_blocks_into(BlockId first, std::span<std::byte* const> pages) override {
    return inner().read_blocks_into(first, pages);
  }
};

}  // namespace corobtree
