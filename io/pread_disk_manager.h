// PreadDiskManager: the synchronous backend of DiskManager.
//
// Each call does its pread/pwrite/fdatasync before returning, so the Task it
// returns finishes the moment it is awaited (it never suspends). Used where
// io_uring is unavailable, and as the baseline in benchmarks. Same file format
// as UringDiskManager.
//
// Thread-safety: one thread at a time.
#pragma once

#include "io/disk_manager.h"

namespace corobtree {

class PreadDiskManager final : public FileDiskManager {
 public:
  PreadDiskManager(std::string path, int fd, std::uint32_t page_size, bool direct_io,
                   std::uint64_t block_count);

  Task<void> read_block(BlockId id, std::span<std::byte> out) override;
  Task<void> write_block(BlockId id, std::span<const std::byte> data) override;
  Task<void> sync() override;
  IoBackend backend() const noexcept override { return IoBackend::kPread; }

  // The same operations without a coroutine, for callers that are not one.
  void read_block_now(BlockId id, std::span<std::byte> out);
  void write_block_now(BlockId id, std::span<const std::byte> data);
  void sync_now();
};

}  // namespace corobtree
