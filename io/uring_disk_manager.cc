#include "io/uring_disk_manager.h"

#include <cstring>

#include "io/aligned_buffer.h"
#include "io/event_loop.h"

namespace corobtree {

UringDiskManager::UringDiskManager(std::string path, int fd, std::uint32_t page_size,
                                   bool direct_io, std::uint64_t block_count, EventLoop* loop,
                                   bool inline_sync_when_idle)
    : FileDiskManager(std::move(path), fd, page_size, direct_io, block_count),
      loop_(loop),
      inline_sync_when_idle_(inline_sync_when_idle) {}

UringDiskManager::~UringDiskManager() { close(); }

Task<void> UringDiskManager::read_block(BlockId id, std::span<std::byte> out) {
  check_read(id, out.size());
  AlignedBuffer bounce;
  std::byte* target = read_target(out, bounce);
  const int res = co_await loop_->read(native_handle(), target, page_size(), offset_of(id));
  if (res < 0) throw errno_error(-res, "read", path(), id);
  finish_read(out, target, static_cast<std::uint32_t>(res));
  ++stats_.reads;
}

Task<void> UringDiskManager::read_blocks(BlockId first, std::span<std::byte> out) {
  const std::uint64_t n = out.size() / page_size();
  if (n <= 1 || (direct_io() && !is_direct_io_aligned(out.data()))) {
    co_await DiskManager::read_blocks(first, out);
    co_return;
  }
  check_read(first, page_size());
  check_read(first + n - 1, page_size());
  std::size_t done = 0;
  while (done < out.size()) {
    const int res = co_await loop_->read(native_handle(), out.data() + done,
                                         static_cast<std::uint32_t>(out.size() - done),
                                         offset_of(first) + done);
    if (res < 0) throw errno_error(-res, "read", path(), first + done / page_size());
    if (res == 0) {  // the tail block at EOF
      std::memset(out.data() + done, 0, out.size() - done);
      break;
    }
    done += static_cast<std::size_t>(res);
  }
  stats_.reads += n;
}

Task<void> UringDiskManager::write_block(BlockId id, std::span<const std::byte> data) {
  check_write(id, data.size());
  AlignedBuffer bounce;
  const std::byte* source = write_source(data, bounce);
  if (!direct_io()) {
    // A buffered write is a copy into the page cache: done here it costs
    // less than io_uring's hand-off to a kernel worker (io-wq), which made
    // log appends several times slower. Reads and fsyncs stay asynchronous.
    pwrite_block(id, source);
    co_return;
  }
  writes_.enter();
  const int res = co_await loop_->write(native_handle(), source, page_size(), offset_of(id));
  writes_.leave();
  if (res < 0) throw errno_error(-res, "write", path(), id);
  ++stats_.writes;
}

Task<void> UringDiskManager::sync() {
  check_sync();
  // io_uring does not order a write before a later fsync: wait for ours.
  co_await writes_.drained();
  check_sync();
  if (inline_sync_when_idle_ && loop_->pending() == 0) {
    // Nothing else in flight on this ring: an fdatasync on this thread costs
    // the least CPU and wakes soonest. Through the ring it runs on a kernel
    // worker whose completion this thread must then spin for (or sleep and
    // be woken late; see EventLoopOptions::sync_spin_us). Only where asked
    // (a log's commits): a data file's long syncs, a checkpoint's or a
    // backup's, would stop the thread's other tasks meanwhile.
    fdatasync_now();
    co_return;
  }
  const int res = co_await loop_->fsync(native_handle(), /*datasync=*/true);
  if (res < 0) throw poison_after_sync_failure(-res);
  ++stats_.syncs;
}

}  // namespace corobtree
