// UringDiskManager: the io_uring backend of DiskManager.
//
// Reads, syncs and O_DIRECT writes are queued on an EventLoop (normally the
// thread's, shared with every other file the thread opened) and complete when
// the Scheduler polls it (buffered writes, which only copy into the page
// cache, are done at once with pwrite), so many tasks keep many block reads
// in flight from one thread. With direct_io the file is opened O_DIRECT;
// callers' buffers that are not 4096-aligned, and short writes, go through an
// aligned bounce buffer. sync() first waits until no write of this file is in
// flight (a DrainLatch): io_uring does not order writes before a later fsync.
//
// Thread-safety: belongs to the EventLoop's thread.
#pragma once

#include <memory>

#include "io/condition.h"
#include "io/disk_manager.h"

namespace corobtree {

class UringDiskManager final : public FileDiskManager {
 public:
  UringDiskManager(std::string path, int fd, std::uint32_t page_size, bool direct_io,
                   std::uint64_t block_count, EventLoop* loop, bool inline_sync_when_idle = false);
  ~UringDiskManager() override;

  Task<void> read_block(BlockId id, std::span<std::byte> out) override;
  Task<void> write_block(BlockId id, std::span<const std::byte> data) override;
  // One read for the run (blocks past the file's end throw, as read_block).
  Task<void> read_blocks(BlockId first, std::span<std::byte> out) override;
  // One vectored read for the run (pages not aligned for O_DIRECT: one by one).
  Task<void> read_blocks_into(BlockId first, std::span<std::byte* const> pages) override;
  Task<void> sync() override;
  IoBackend backend() const noexcept override { return IoBackend::kUring; }

  EventLoop& loop() noexcept { return *loop_; }

 private:
  EventLoop* loop_;
  bool inline_sync_when_idle_;  // DiskOptions::inline_sync_when_idle
  DrainLatch writes_;           // O_DIRECT writes in flight
};

}  // namespace corobtree
