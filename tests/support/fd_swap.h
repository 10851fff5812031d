// FdSwap: fault injection on the real I/O path. For its lifetime the file
// descriptor of a DiskManager points at another file (/dev/full gives ENOSPC
// on every write, /proc/self/mem gives EIO on reads of unmapped low offsets),
// so both backends see genuine kernel errors. The original open file is
// restored on destruction (its flock stays held meanwhile).
#pragma once

#include <string>

namespace corobtree::test {

class FdSwap {
 public:
  FdSwap(int fd, const char* replacement_path, int flags);
  ~FdSwap();
  FdSwap(const FdSwap&) = delete;
  FdSwap& operator=(const FdSwap&) = delete;

  static FdSwap enospc_on_write(int fd);  // /dev/full
  static FdSwap eio_on_read(int fd);      // /proc/self/mem (blocks < 16 of 4 KiB)

 private:
  int fd_;
  int saved_;
};

}  // namespace corobtree::test
