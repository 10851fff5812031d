#include "io/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <utility>

#include <corobtree/error.h>

namespace corobtree {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// How long a dead holder's in-flight I/O may keep its description alive. The
// kernel finishes or cancels it within milliseconds (a few hundred on a loaded
// machine); this only bounds a wait that should never get near it.
constexpr milliseconds kDrainLimit{10000};
constexpr milliseconds kLongestPause{10};

// Sleeps a growing pause (1, 2, 4, ... 10 ms), never past `deadline`.
void pause_until(steady_clock::time_point deadline, milliseconds& pause) {
  const auto left = deadline - steady_clock::now();
  if (left > steady_clock::duration::zero()) {
    std::this_thread::sleep_for(std::min<steady_clock::duration>(pause, left));
  }
  pause = std::min(pause * 2, kLongestPause);
}

bool same_file(int a, int b) {
  struct stat sa;
  struct stat sb;
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

// A whole-file write lock, for F_OFD_SETLK (l_pid must be 0).
struct flock whole_file_write_lock() {
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  return fl;
}

}  // namespace

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

void FileLock::release() noexcept {
  // Never LOCK_UN: a forked child shares the description, and an explicit
  // unlock there would drop the parent's lock too. Closing drops only ours.
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

FileLock FileLock::acquire(const std::string& path, int io_fd, milliseconds timeout) {
  if (timeout < milliseconds::zero()) {
    throw Error(ErrorCode::kInvalidArgument,
                "lock timeout " + std::to_string(timeout.count()) + " ms is negative", 0, path);
  }
  // Opened by name, so it may meet a file renamed into place after io_fd was
  // opened: then the lock would guard the wrong file. Retry a few times.
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw errno_error(errno, "open for locking", path);
    if (!same_file(fd, io_fd)) {
      ::close(std::exchange(fd, -1));
      if (attempt == 3) {
        throw Error(ErrorCode::kLocked, "'" + path + "' was replaced while it was being opened", 0,
                    path);
      }
    }
  }
  FileLock lock(fd);
  const auto deadline = steady_clock::now() + timeout;
  milliseconds pause{1};
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK) throw errno_error(err, "lock", path);
    if (steady_clock::now() >= deadline) {
      std::string message = "'" + path + "' is locked: another process (or handle) has it open";
      if (timeout.count() > 0) {
        message += " (waited the lock timeout of " + std::to_string(timeout.count()) + " ms)";
      }
      throw Error(ErrorCode::kLocked, message, err, path);
    }
    pause_until(deadline, pause);
  }
  return lock;
}

void wait_for_io_drain(const std::string& path, int io_fd) {
  const auto deadline = steady_clock::now() + kDrainLimit;
  milliseconds pause{1};
  while (true) {
    struct flock fl = whole_file_write_lock();
    if (::fcntl(io_fd, F_OFD_SETLK, &fl) == 0) return;
    const int err = errno;
    if (err == EINTR) continue;
    // EINVAL: a kernel or file system without OFD locks; the guard is a
    // precaution, so go on without it.
    if (err != EAGAIN && err != EACCES) return;
    if (steady_clock::now() >= deadline) {
      throw Error(ErrorCode::kLocked,
                  "'" + path +
                      "' is still in use by the unfinished I/O of a process that no "
                      "longer holds its lock (waited " +
                      std::to_string(kDrainLimit.count()) + " ms)",
                  err, path);
    }
    pause_until(deadline, pause);
  }
}

}  // namespace corobtree
