// DiskManager: fixed-size block storage in one file, behind awaitable calls.
//
// A block is page_size bytes (default 4096, chosen at creation; the engine
// records it in its superblock). Block `id` lives at byte offset
// id * page_size. The file holds block_count() blocks; allocate_block() grows
// it by one zeroed block. Reads and writes address existing blocks only.
// Allocation reserves the space on disk at once (a full disk fails there), but
// the file's size may lag behind block_count() until the next sync() or
// close(): blocks past the size read as zeros, as allocated blocks do.
// A write shorter than a block is zero-padded; a longer one is rejected.
//
// Two backends serve the same on-disk format:
//   UringDiskManager  io_uring through an EventLoop (optionally O_DIRECT);
//   PreadDiskManager  synchronous pread/pwrite; its Tasks finish at once.
// DiskManager::open picks one from DiskOptions::backend, overridden by the
// COROBTREE_IO=auto|uring|pread environment variable. `auto` uses io_uring and
// falls back to pread when the ring cannot be set up (ENOSYS, EPERM, ENOMEM,
// EINVAL); fallback_reason() then says why.
//
// Errors: every failure throws corobtree::Error naming the file and block:
// kOutOfRange for a block at or past the end, kInvalidArgument for a bad id or
// an oversized write, kIoError/kNoSpace from the kernel, kClosed after close()
// or after a failed sync (an fsync failure poisons the handle: data may be lost
// and only reopening, with recovery, is safe), kLocked if another handle holds
// the file (after waiting DiskOptions::lock_timeout for it).
//
// sync() makes every write that completed before it durable; on io_uring it
// first waits for writes still in flight, since io_uring does not order them
// before a later fsync.
//
// Thread-safety: a DiskManager belongs to the thread that opened it: its
// io_uring operations go through that thread's ring (Scheduler::loop()),
// shared with every other DiskManager of the thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <corobtree/error.h>
#include <corobtree/options.h>
#include <corobtree/task.h>
#include "io/aligned_buffer.h"
#include "io/file_lock.h"

namespace corobtree {

class EventLoop;

using BlockId = std::uint64_t;
inline constexpr BlockId kInvalidBlockId = ~BlockId{0};
inline constexpr std::uint32_t kDefaultPageSize = 4096;
inline constexpr std::uint32_t kMinPageSize = 512;
inline constexpr std::uint32_t kMaxPageSize = 65536;

struct DiskOptions {
  std::uint32_t page_size = kDefaultPageSize;  // power of two in [512, 65536]
  IoBackend backend = IoBackend::kAuto;
  bool use_env = true;     // let COROBTREE_IO override `backend`
  bool direct_io = false;  // O_DIRECT (both backends)
  bool create_if_missing = true;
  // Lock the file (io/file_lock.h) so a second opener gets kLocked, after
  // waiting up to lock_timeout for a live holder to close it (kLocked too if
  // the file was renamed over meanwhile).
  bool lock_file = true;
  std::chrono::milliseconds lock_timeout{0};
  EventLoop* loop = nullptr;  // io_uring: this loop; null = the thread's (Scheduler::loop())
  // io_uring: sync() is an fdatasync on the calling thread when nothing else
  // is in flight on the ring (a write-ahead log's commits: the cheapest and
  // soonest answer); otherwise, and always when false, an fsync on the ring,
  // during which the thread runs its other tasks (a data file's long syncs).
  bool inline_sync_when_idle = false;
};

struct DiskStats {
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;
  std::uint64_t syncs = 0;
  std::uint64_t allocations = 0;
};

// The interface every block store implements: the two file backends below
// (through FileDiskManager) and decorators such as the tests' fault injector.
class DiskManager {
 public:
  // Opens (or creates) `path`. Throws Error on failure.
  static std::unique_ptr<DiskManager> open(const std::string& path, DiskOptions options = {});

  DiskManager() = default;
  virtual ~DiskManager() = default;
  DiskManager(const DiskManager&) = delete;
  DiskManager& operator=(const DiskManager&) = delete;

  // Reads block `id` into `out`. REQUIRES: out.size() == page_size().
  virtual Task<void> read_block(BlockId id, std::span<std::byte> out) = 0;
  // Writes `data` (at most page_size() bytes, zero-padded) to block `id`.
  virtual Task<void> write_block(BlockId id, std::span<const std::byte> data) = 0;
  // Makes all completed writes durable.
  virtual Task<void> sync() = 0;
  // Writes data.size() / page_size() consecutive blocks from `first`.
  // REQUIRES: data.size() is a multiple of page_size(). The default writes
  // them one by one, all in flight at once.
  virtual Task<void> write_blocks(BlockId first, std::span<const std::byte> data);
  // Reads out.size() / page_size() consecutive blocks from `first` into
  // `out`. REQUIRES: out.size() is a multiple of page_size(). The default
  // reads them one by one, all in flight at once; io_uring makes it one read.
  virtual Task<void> read_blocks(BlockId first, std::span<std::byte> out);
  // Reads pages.size() consecutive blocks from `first`, block first + i into
  // pages[i] (page_size() bytes each, anywhere: a scattered read, e.g. into a
  // buffer pool's frames). The default reads them one by one, all in flight
  // at once; io_uring makes it one vectored read when every page is aligned
  // for O_DIRECT (or the file is buffered).
  virtual Task<void> read_blocks_into(BlockId first, std::span<std::byte* const> pages);

  // Appends n zeroed blocks and returns the first id.
  virtual BlockId allocate_blocks(std::uint64_t n) = 0;
  // Appends one zeroed block and returns its id.
  BlockId allocate_block() { return allocate_blocks(1); }
  // Shrinks the file to n blocks (no-op if it has n or fewer).
  virtual void truncate_blocks(std::uint64_t n) = 0;
  // Renames the file to `new_path` (atomically replacing any file there) and
  // fsyncs the directory of `new_path`, so that the new name is durable;
  // path() reports `new_path` from then on. The descriptor, and with it the
  // lock, stays. If the rename itself fails, nothing changed; if only the
  // directory sync fails, the file has its new name (path() says so) and the
  // error is thrown. The base class throws Error(kNotSupported).
  virtual void rename_to(const std::string& new_path);

  virtual std::uint64_t block_count() const noexcept = 0;
  bool exists(BlockId id) const noexcept { return id < block_count(); }
  virtual std::uint32_t page_size() const noexcept = 0;
  virtual const std::string& path() const noexcept = 0;
  virtual bool direct_io() const noexcept = 0;
  virtual bool is_open() const noexcept = 0;
  virtual IoBackend backend() const noexcept = 0;
  // Why `auto` fell back to pread ("" if it did not).
  virtual const std::string& fallback_reason() const noexcept = 0;
  virtual DiskStats stats() const noexcept = 0;
  // The file descriptor, for diagnostics and tests. -1 after close().
  virtual int native_handle() const noexcept = 0;

  // Closes the file. Idempotent; later operations throw Error(kClosed).
  // REQUIRES: no operation in flight.
  virtual void close() noexcept = 0;
};

// The file-backed base of the two backends: the descriptor, the checks, the
// allocation and the O_DIRECT bounce-buffer helpers.
class FileDiskManager : public DiskManager {
 public:
  ~FileDiskManager() override;

  BlockId allocate_blocks(std::uint64_t n) override;
  void truncate_blocks(std::uint64_t n) override;
  // Buffered files: one pwrite for the whole run.
  Task<void> write_blocks(BlockId first, std::span<const std::byte> data) override;
  void rename_to(const std::string& new_path) override;
  std::uint64_t block_count() const noexcept override { return block_count_; }
  std::uint32_t page_size() const noexcept override { return page_size_; }
  const std::string& path() const noexcept override { return path_; }
  bool direct_io() const noexcept override { return direct_io_; }
  bool is_open() const noexcept override { return fd_ >= 0; }
  const std::string& fallback_reason() const noexcept override { return fallback_reason_; }
  DiskStats stats() const noexcept override { return stats_; }
  int native_handle() const noexcept override { return fd_; }
  void close() noexcept override;

 protected:
  FileDiskManager(std::string path, int fd, std::uint32_t page_size, bool direct_io,
                  std::uint64_t block_count);

  // Validates an operation and throws the matching Error.
  void check_usable(const char* op, BlockId id) const;
  void check_read(BlockId id, std::size_t size) const;
  void check_write(BlockId id, std::size_t size) const;
  void check_sync() const;
  // Marks the handle unusable after an fsync failure, and builds the error.
  Error poison_after_sync_failure(int err);
  std::uint64_t offset_of(BlockId id) const noexcept { return id * page_size_; }
  // Where to read a block: `out` itself, or `bounce` when O_DIRECT needs aligned memory.
  std::byte* read_target(std::span<std::byte> out, AlignedBuffer& bounce) const;
  // After reading `got` bytes into `target`: zero-fills a short tail block and
  // copies a bounced read back into `out`.
  void finish_read(std::span<std::byte> out, std::byte* target, std::uint32_t got) const;
  // A full, suitably aligned page to write: `data`, or `bounce` padded with zeros.
  const std::byte* write_source(std::span<const std::byte> data, AlignedBuffer& bounce) const;
  // Writes one page synchronously with pwrite (resuming short writes).
  void pwrite_block(BlockId id, const std::byte* source);
  // fdatasync on the calling thread (retrying EINTR); a failure poisons the
  // handle. Counts the sync.
  void fdatasync_now();
  // Extends the file's size to block_count() blocks if allocations inside the
  // reservation left it shorter (one fallocate; their space is there). Every
  // sync() calls it first, and close().
  void settle_size();

  DiskStats stats_;
  std::string fallback_reason_;

 private:
  friend class DiskManagerFactory;

  std::string path_;
  int fd_;
  std::uint32_t page_size_;
  bool direct_io_;
  std::uint64_t block_count_;
  // The file's size is at least sized_ blocks (writes past it extend it).
  // Blocks allocated inside the reservation, [sized_, block_count_), have
  // their space but not their size until settle_size().
  std::uint64_t sized_;
  // Blocks [sized_ or block_count_, reserved_) are fallocated past the end of
  // the file (FALLOC_FL_KEEP_SIZE): growing into them finds the space there.
  std::uint64_t reserved_ = 0;
  bool poisoned_ = false;
  FileLock lock_;  // held from open to close() when DiskOptions::lock_file
};

}  // namespace corobtree
