#include "io/uring_disk_manager.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include <sys/uio.h>

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

Task<void> UringDiskManager::read_blocks_into(BlockId first, std::span<std::byte* const> pages) {
  const std::size_t n = pages.size();
  bool aligned = true;
  for (std::size_t i = 0; i < n && aligned && direct_io(); ++i) {
    aligned = is_direct_io_aligned(pages[i]);
  }
  if (n <= 1 || !aligned) {
    co_await DiskManager::read_blocks_into(first, pages);
    co_return;
  }
  check_read(first, page_size());
  check_read(first + n - 1, page_size());
  std::vector<iovec> iov(n);
  for (std::size_t i = 0; i < n; ++i) iov[i] = iovec{pages[i], page_size()};
  // A short read goes on from where it stopped: whole iovecs done are
  // skipped, a partly filled one is trimmed.
  std::size_t at = 0;  // the first iovec not filled yet
  std::uint64_t offset = offset_of(first);
  while (at < n) {
    const auto count = static_cast<unsigned>(std::min<std::size_t>(n - at, IOV_MAX));
    const int res = co_await loop_->readv(native_handle(), iov.data() + at, count, offset);
    if (res < 0) {
      throw errno_error(-res, "read", path(), first + (offset - offset_of(first)) / page_size());
    }
    // End of file: the tail block is zero-padded (as read_block does). With
    // O_DIRECT a transfer stops off a sector boundary only at the end.
    constexpr int kSector = 512;
    const bool eof = res == 0 || (direct_io() && res % kSector != 0);
    auto left = static_cast<std::size_t>(res);
    offset += left;
    while (at < n && left >= iov[at].iov_len) left -= iov[at++].iov_len;
    if (at < n && left > 0) {
      iov[at].iov_base = static_cast<std::byte*>(iov[at].iov_base) + left;
      iov[at].iov_len -= left;
    }
    if (eof) {
      for (; at < n; ++at) std::memset(iov[at].iov_base, 0, iov[at].iov_len);
    }
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
  settle_size();
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
