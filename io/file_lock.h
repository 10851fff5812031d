// FileLock: the exclusive lock that keeps a second opener away from a file,
// held on a descriptor of its own.
//
// DiskManager::open takes one per file it locks (DiskOptions::lock_file). The
// lock is flock(LOCK_EX) on a second, read-only O_CLOEXEC descriptor of the
// file that never reaches an io_uring ring, so it goes away the moment its
// holder dies. A lock on the I/O descriptor itself would outlive a killed
// process while the kernel tears down its ring: requests still in flight hold
// that file description, and a restart right after the crash got kLocked
// (docs/engine.md, "Locking").
//
// What the ring's teardown still guards is the file's contents: a dead
// holder's in-flight writes may land after it is gone. wait_for_io_drain()
// makes the new owner wait them out: every I/O descriptor carries an OFD
// record lock (fcntl F_OFD_SETLK), which the kernel drops only when the last
// reference to that description goes, that is once the dead process's
// requests are finished. That wait is short and never fails the open for a
// process that is merely slow to die.
//
// flock and OFD locks belong to the open file description, so a forked child
// shares them with its parent; the child never unlocks explicitly (only the
// last close of the description releases the lock), and O_CLOEXEC keeps the
// descriptors out of exec'd programs.
//
// Thread-safety: a FileLock is a plain owner of a descriptor; the functions
// are safe to call from any thread.
#pragma once

#include <chrono>
#include <string>

namespace corobtree {

class FileLock {
 public:
  FileLock() = default;
  ~FileLock() { release(); }
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Locks `path`, which `io_fd` has open (the lock must cover the same file,
  // not one renamed into its place meanwhile). Waits up to `timeout` for a
  // live holder to let go, polling; then throws Error(kLocked) naming the
  // path and the wait. Other failures throw the matching Error.
  static FileLock acquire(const std::string& path, int io_fd, std::chrono::milliseconds timeout);

  bool held() const noexcept { return fd_ >= 0; }
  // The lock's own descriptor, for tests (-1 when not held).
  int native_handle() const noexcept { return fd_; }
  // Closes the lock's descriptor (the lock goes when no forked copy holds it).
  void release() noexcept;

 private:
  explicit FileLock(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

// Puts the OFD record lock on `io_fd`, first waiting (up to a few seconds)
// while a dead holder's in-flight I/O still holds the one on its own
// description. REQUIRES: the caller holds the FileLock of the file. Throws
// Error(kLocked) if the wait runs out; a file system without OFD locks skips
// the wait.
void wait_for_io_drain(const std::string& path, int io_fd);

}  // namespace corobtree
