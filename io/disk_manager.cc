#include "io/disk_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <corobtree/when_all.h>
#include "io/event_loop.h"
#include "io/file_lock.h"
#include "io/pread_disk_manager.h"
#include "io/uring_disk_manager.h"

namespace corobtree {

std::string_view backend_name(IoBackend b) noexcept {
  switch (b) {
    case IoBackend::kAuto: return "auto";
    case IoBackend::kUring: return "uring";
    case IoBackend::kPread: return "pread";
  }
  return "unknown";
}

IoBackend parse_backend(std::string_view name) {
  if (name == "auto") return IoBackend::kAuto;
  if (name == "uring" || name == "io_uring") return IoBackend::kUring;
  if (name == "pread") return IoBackend::kPread;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown I/O backend '" + std::string(name) + "' (expected auto, uring or pread)");
}

namespace {

bool is_fallback_errno(int err) {
  return err == ENOSYS || err == EPERM || err == ENOMEM || err == EINVAL;
}

void validate_page_size(std::uint32_t page_size) {
  if (page_size < kMinPageSize || page_size > kMaxPageSize || (page_size & (page_size - 1)) != 0) {
    throw Error(ErrorCode::kInvalidArgument, "page size " + std::to_string(page_size) +
                                                 " is not a power of two between 512 and 65536");
  }
}

}  // namespace

// Opens the file and builds the backend; a friend of DiskManager.
class DiskManagerFactory {
 public:
  static std::unique_ptr<DiskManager> open(const std::string& path, DiskOptions options) {
    validate_page_size(options.page_size);
    if (options.use_env) {
      if (const char* env = std::getenv("COROBTREE_IO"); env && *env) {
        options.backend = parse_backend(env);
      }
    }
    int flags = O_RDWR | O_CLOEXEC;
    if (options.create_if_missing) flags |= O_CREAT;
    if (options.direct_io) flags |= O_DIRECT;
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) {
      int err = errno;
      if (err == EINVAL && options.direct_io) {
        throw Error(ErrorCode::kNotSupported,
                    "open of '" + path +
                        "' with O_DIRECT failed: the file system does not "
                        "support direct I/O",
                    err, path);
      }
      throw errno_error(err, "open", path);
    }
    try {
      // The lock sits on a descriptor of its own that never reaches a ring
      // (io/file_lock.h); then wait for a dead holder's unfinished I/O.
      FileLock lock;
      if (options.lock_file) {
        lock = FileLock::acquire(path, fd, options.lock_timeout);
        wait_for_io_drain(path, fd);
      }
      struct stat st;
      if (::fstat(fd, &st) != 0) throw errno_error(errno, "stat", path);
      if (options.lock_file) {
        // The lock holder may have renamed another file over `path` (a
        // compaction) between our open and our lock: then we locked the old,
        // unlinked file, which nobody may use any more.
        struct stat by_name;
        if (::stat(path.c_str(), &by_name) != 0 || by_name.st_ino != st.st_ino ||
            by_name.st_dev != st.st_dev) {
          throw Error(ErrorCode::kLocked,
                      "'" + path +
                          "' was replaced while it was being opened (another process "
                          "compacted it); open it again",
                      EWOULDBLOCK, path);
        }
      }
      // Block access is random: kernel readahead would pull megabytes per miss
      // on buffered files (docs/io.md). Advisory only, so a failure is ignored.
      if (!options.direct_io) (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
      const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
      // A trailing partial block (written by another tool) reads as zero-padded.
      const std::uint64_t blocks = (size + options.page_size - 1) / options.page_size;
      std::unique_ptr<FileDiskManager> dm = make_backend(path, fd, options, blocks);
      dm->lock_ = std::move(lock);
      return dm;
    } catch (...) {
      ::close(fd);
      throw;
    }
  }

 private:
  static std::unique_ptr<FileDiskManager> make_backend(const std::string& path, int fd,
                                                       const DiskOptions& options,
                                                       std::uint64_t blocks) {
    if (options.backend == IoBackend::kPread) {
      return std::unique_ptr<FileDiskManager>(
          new PreadDiskManager(path, fd, options.page_size, options.direct_io, blocks));
    }
    EventLoop* loop = options.loop;
    if (!loop) {
      try {
        loop = &Scheduler::current().loop();  // the thread's one ring
      } catch (const Error& e) {
        if (options.backend == IoBackend::kUring || !is_fallback_errno(e.sys_errno())) throw;
        auto dm = std::make_unique<PreadDiskManager>(path, fd, options.page_size, options.direct_io,
                                                     blocks);
        dm->fallback_reason_ = e.what();
        return dm;
      }
    }
    return std::unique_ptr<FileDiskManager>(new UringDiskManager(path, fd, options.page_size,
                                                                 options.direct_io, blocks, loop,
                                                                 options.inline_sync_when_idle));
  }
};

std::unique_ptr<DiskManager> DiskManager::open(const std::string& path, DiskOptions options) {
  return DiskManagerFactory::open(path, options);
}

FileDiskManager::FileDiskManager(std::string path, int fd, std::uint32_t page_size, bool direct_io,
                                 std::uint64_t block_count)
    : path_(std::move(path)),
      fd_(fd),
      page_size_(page_size),
      direct_io_(direct_io),
      block_count_(block_count),
      sized_(block_count) {}

FileDiskManager::~FileDiskManager() { FileDiskManager::close(); }

void FileDiskManager::close() noexcept {
  if (fd_ >= 0) {
    if (!poisoned_) {
      try {
        settle_size();          // the file holds block_count() blocks once closed
      } catch (const Error&) {  // NOLINT(bugprone-empty-catch): best effort, as a crash
      }
    }
    ::close(fd_);  // drops its OFD lock once no request in flight holds it
    fd_ = -1;
  }
  lock_.release();
}

void FileDiskManager::check_usable(const char* op, BlockId id) const {
  if (fd_ < 0) {
    std::string what = op;
    if (id != kInvalidBlockId) what += " of block " + std::to_string(id);
    throw Error(ErrorCode::kClosed, what + " on closed file '" + path_ + "'", 0, path_,
                id == kInvalidBlockId ? std::nullopt : std::optional<std::uint64_t>(id));
  }
  if (poisoned_) {
    throw Error(ErrorCode::kClosed,
                std::string(op) + " on '" + path_ +
                    "' refused: an earlier sync failed, so unsynced data may be lost; reopen the "
                    "file to recover",
                EIO, path_);
  }
}

void FileDiskManager::check_read(BlockId id, std::size_t size) const {
  check_usable("read", id);
  if (id == kInvalidBlockId) {
    throw Error(ErrorCode::kInvalidArgument, "read of invalid block id in '" + path_ + "'", 0,
                path_);
  }
  if (id >= block_count_) {
    throw Error(ErrorCode::kOutOfRange,
                "read of block " + std::to_string(id) + " in '" + path_ +
                    "' is past the end (the file has " + std::to_string(block_count_) + " blocks)",
                0, path_, id);
  }
  if (size != page_size_) {
    throw Error(ErrorCode::kInvalidArgument,
                "read of block " + std::to_string(id) + " in '" + path_ + "' into a buffer of " +
                    std::to_string(size) + " bytes; it must be the page size " +
                    std::to_string(page_size_),
                0, path_, id);
  }
}

void FileDiskManager::check_write(BlockId id, std::size_t size) const {
  check_usable("write", id);
  if (id == kInvalidBlockId) {
    throw Error(ErrorCode::kInvalidArgument, "write of invalid block id in '" + path_ + "'", 0,
                path_);
  }
  if (id >= block_count_) {
    throw Error(ErrorCode::kOutOfRange,
                "write of block " + std::to_string(id) + " in '" + path_ +
                    "' is past the end (the file has " + std::to_string(block_count_) +
                    " blocks; allocate first)",
                0, path_, id);
  }
  if (size > page_size_) {
    throw Error(ErrorCode::kInvalidArgument,
                "write of " + std::to_string(size) + " bytes to block " + std::to_string(id) +
                    " in '" + path_ + "' exceeds the page size " + std::to_string(page_size_),
                0, path_, id);
  }
}

void FileDiskManager::check_sync() const { check_usable("sync", kInvalidBlockId); }

Error FileDiskManager::poison_after_sync_failure(int err) {
  poisoned_ = true;
  return errno_error(err, "sync", path_);
}

std::byte* FileDiskManager::read_target(std::span<std::byte> out, AlignedBuffer& bounce) const {
  if (direct_io_ && !is_direct_io_aligned(out.data())) {
    bounce = AlignedBuffer(page_size_);
    return bounce.data();
  }
  return out.data();
}

void FileDiskManager::finish_read(std::span<std::byte> out, std::byte* target,
                                  std::uint32_t got) const {
  if (got < page_size_) std::memset(target + got, 0, page_size_ - got);  // tail block at EOF
  if (target != out.data()) std::memcpy(out.data(), target, page_size_);
}

const std::byte* FileDiskManager::write_source(std::span<const std::byte> data,
                                               AlignedBuffer& bounce) const {
  if (data.size() == page_size_ && !(direct_io_ && !is_direct_io_aligned(data.data()))) {
    return data.data();
  }
  bounce = AlignedBuffer(page_size_);  // zero-filled: pads a short write
  if (!data.empty()) std::memcpy(bounce.data(), data.data(), data.size());
  return bounce.data();
}

void DiskManager::rename_to(const std::string& new_path) {
  throw Error(ErrorCode::kNotSupported, "'" + path() + "' cannot be renamed to '" + new_path + "'",
              0, path());
}

void FileDiskManager::rename_to(const std::string& new_path) {
  check_usable("rename", kInvalidBlockId);
  if (::rename(path_.c_str(), new_path.c_str()) != 0) {
    throw errno_error(errno, "rename to '" + new_path + "'", path_);
  }
  path_ = new_path;
  std::filesystem::path dir = std::filesystem::path(new_path).parent_path();
  if (dir.empty()) dir = std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw errno_error(errno, "open of the directory", path_);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) throw errno_error(err, "sync of the directory", path_);
}

Task<void> DiskManager::write_blocks(BlockId first, std::span<const std::byte> data) {
  const std::uint32_t ps = page_size();
  std::vector<Task<void>> writes;
  writes.reserve(data.size() / ps);
  for (std::size_t i = 0; i * ps < data.size(); ++i) {
    writes.push_back(write_block(first + i, data.subspan(i * ps, ps)));
  }
  co_await when_all(std::move(writes));
}

Task<void> DiskManager::read_blocks(BlockId first, std::span<std::byte> out) {
  const std::uint32_t ps = page_size();
  std::vector<Task<void>> reads;
  reads.reserve(out.size() / ps);
  for (std::size_t i = 0; i * ps < out.size(); ++i) {
    reads.push_back(read_block(first + i, out.subspan(i * ps, ps)));
  }
  co_await when_all(std::move(reads));
}

Task<void> DiskManager::read_blocks_into(BlockId first, std::span<std::byte* const> pages) {
  const std::uint32_t ps = page_size();
  std::vector<Task<void>> reads;
  reads.reserve(pages.size());
  for (std::size_t i = 0; i < pages.size(); ++i) {
    reads.push_back(read_block(first + i, std::span<std::byte>(pages[i], ps)));
  }
  co_await when_all(std::move(reads));
}

Task<void> FileDiskManager::write_blocks(BlockId first, std::span<const std::byte> data) {
  if (direct_io_ || data.empty()) {
    co_await DiskManager::write_blocks(first, data);
    co_return;
  }
  const std::uint64_t n = data.size() / page_size_;
  check_write(first, page_size_);
  check_write(first + n - 1, page_size_);
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t w = ::pwrite(fd_, data.data() + done, data.size() - done,
                               static_cast<off_t>(offset_of(first) + done));
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw errno_error(errno, "write", path_, first + done / page_size_);
    }
    if (w == 0) throw errno_error(EIO, "write", path_, first + done / page_size_);
    done += static_cast<std::size_t>(w);
  }
  stats_.writes += n;
}

void FileDiskManager::pwrite_block(BlockId id, const std::byte* source) {
  const std::uint32_t size = page_size_;
  std::uint32_t done = 0;
  while (done < size) {
    const ssize_t n =
        ::pwrite(fd_, source + done, size - done, static_cast<off_t>(offset_of(id) + done));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw errno_error(errno, "write", path_, id);
    }
    if (n == 0) throw errno_error(EIO, "write", path_, id);  // no progress
    done += static_cast<std::uint32_t>(n);
  }
  ++stats_.writes;
}

void FileDiskManager::fdatasync_now() {
  int ret;
  do {
    ret = ::fdatasync(fd_);
  } while (ret != 0 && errno == EINTR);
  if (ret != 0) throw poison_after_sync_failure(errno);
  ++stats_.syncs;
}

BlockId FileDiskManager::allocate_blocks(std::uint64_t n) {
  check_usable("allocate", kInvalidBlockId);
  const BlockId first = block_count_;
  if (n == 0) return first;
  if (first + n > reserved_) {
    // Reserve ahead of the end in one call (an eighth of the file, 16 to 4096
    // blocks), so that allocating the next blocks one at a time does not run
    // the file system's block allocator for each. Best effort: a failure
    // (a full disk) leaves the exact allocation below to report it.
    const std::uint64_t ahead = std::clamp<std::uint64_t>(block_count_ / 8, 16, 4096);
    const std::uint64_t end = first + n + ahead;
    const off_t at = static_cast<off_t>(std::max(first, reserved_) * page_size_);
    int r;
    do {
      r = ::fallocate(fd_, FALLOC_FL_KEEP_SIZE, at, static_cast<off_t>(end * page_size_) - at);
    } while (r != 0 && errno == EINTR);
    if (r == 0) reserved_ = end;
  }
  if (first + n <= reserved_) {
    // The space is there already: the file's size follows at sync() or
    // close() (settle_size), one call instead of one per allocation. Until
    // then the blocks past the file's end read as zeros (a short read) and a
    // write extends the file.
    block_count_ += n;
    stats_.allocations += n;
    return first;
  }
  // fallocate reserves the space now, so a full disk shows up here and not at
  // some later write-back; file systems without it get a sparse extension.
  settle_size();
  const off_t offset = static_cast<off_t>(first * page_size_);
  const off_t length = static_cast<off_t>(n * page_size_);
  int ret;
  do {
    ret = ::fallocate(fd_, 0, offset, length);
  } while (ret != 0 && errno == EINTR);
  if (ret != 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
    ret = ::ftruncate(fd_, offset + length);
  }
  if (ret != 0) throw errno_error(errno, "allocate", path_, first);
  block_count_ += n;
  sized_ = block_count_;
  stats_.allocations += n;
  return first;
}

void FileDiskManager::settle_size() {
  if (sized_ >= block_count_) return;
  // Inside the reservation: this only moves the file's end (no allocation).
  const off_t offset = static_cast<off_t>(sized_ * page_size_);
  const off_t length = static_cast<off_t>((block_count_ - sized_) * page_size_);
  int ret;
  do {
    ret = ::fallocate(fd_, 0, offset, length);
  } while (ret != 0 && errno == EINTR);
  if (ret != 0) throw errno_error(errno, "allocate", path_, sized_);
  sized_ = block_count_;
}

void FileDiskManager::truncate_blocks(std::uint64_t n) {
  check_usable("truncate", kInvalidBlockId);
  if (n >= block_count_) return;
  if (::ftruncate(fd_, static_cast<off_t>(n * page_size_)) != 0) {
    throw errno_error(errno, "truncate", path_);
  }
  block_count_ = n;
  sized_ = n;
  reserved_ = n;  // ftruncate frees the reserved blocks past the end too
}

}  // namespace corobtree
