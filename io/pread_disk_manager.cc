#include "io/pread_disk_manager.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/aligned_buffer.h"

namespace corobtree {

PreadDiskManager::PreadDiskManager(std::string path, int fd, std::uint32_t page_size,
                                   bool direct_io, std::uint64_t block_count)
    : FileDiskManager(std::move(path), fd, page_size, direct_io, block_count) {}

void PreadDiskManager::read_block_now(BlockId id, std::span<std::byte> out) {
  check_read(id, out.size());
  const std::uint32_t size = page_size();
  AlignedBuffer bounce;
  std::byte* target = read_target(out, bounce);
  std::uint32_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(native_handle(), target + done, size - done,
                              static_cast<off_t>(offset_of(id) + done));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw errno_error(errno, "read", path(), id);
    }
    if (n == 0) break;  // end of file: the rest reads as zeros
    done += static_cast<std::uint32_t>(n);
  }
  finish_read(out, target, done);
  ++stats_.reads;
}

void PreadDiskManager::write_block_now(BlockId id, std::span<const std::byte> data) {
  check_write(id, data.size());
  AlignedBuffer bounce;
  pwrite_block(id, write_source(data, bounce));
}

void PreadDiskManager::sync_now() {
  check_sync();
  settle_size();
  fdatasync_now();
}

Task<void> PreadDiskManager::read_block(BlockId id, std::span<std::byte> out) {
  read_block_now(id, out);
  co_return;
}

Task<void> PreadDiskManager::write_block(BlockId id, std::span<const std::byte> data) {
  write_block_now(id, data);
  co_return;
}

Task<void> PreadDiskManager::sync() {
  sync_now();
  co_return;
}

}  // namespace corobtree
