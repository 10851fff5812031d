#include "tests/support/fd_swap.h"

#include <fcntl.h>
#include <unistd.h>

#include <stdexcept>

namespace corobtree::test {

FdSwap::FdSwap(int fd, const char* replacement_path, int flags) : fd_(fd), saved_(::dup(fd)) {
  if (saved_ < 0) throw std::runtime_error("dup failed");
  int other = ::open(replacement_path, flags | O_CLOEXEC);
  if (other < 0) throw std::runtime_error(std::string("cannot open ") + replacement_path);
  if (::dup2(other, fd) < 0) throw std::runtime_error("dup2 failed");
  ::close(other);
}

FdSwap::~FdSwap() {
  ::dup2(saved_, fd_);
  ::close(saved_);
}

FdSwap FdSwap::enospc_on_write(int fd) { return FdSwap(fd, "/dev/full", O_RDWR); }
FdSwap FdSwap::eio_on_read(int fd) { return FdSwap(fd, "/proc/self/mem", O_RDONLY); }

}  // namespace corobtree::test
