// DatabaseImpl::backup: an online copy of the database (include/corobtree/
// database.h documents the behaviour; docs/engine.md, "Backup", the design).
//
// Why it is cheap: between two checkpoints nothing writes the data file's
// pages. Commits go to the log; a dirty page the pool evicts becomes a page
// image in the log (PageImageStore), never a write to the data file; a page
// allocated meanwhile only extends the file past the last checkpoint's page
// count. So right after a checkpoint, pages [0, page count) of the data file
// hold exactly the state of its meta page, and stay so for as long as no
// other checkpoint runs. The backup checkpoints, then copies those pages
// while backup_running_ holds further checkpoints off (lock_data_file);
// writers keep committing to the log.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/when_all.h>
#include <corobtree/yield.h>

#include "engine/db/database_impl.h"
#include "engine/format/meta.h"
#include "engine/format/page_format.h"
#include "engine/log/log_format.h"
#include "io/aligned_buffer.h"
#include "io/uring_disk_manager.h"

namespace corobtree {

namespace {

// The copy is built under this name beside `dest`, then linked to `dest`.
constexpr const char* kTempSuffix = ".backup-tmp";
// Bytes read per chunk (all of a chunk's reads are in flight together): the
// memory a backup holds, whatever the database's size.
constexpr std::uint64_t kChunkBytes = std::uint64_t{256} << 10;

[[noreturn]] void bad_destination(const std::string& dest, const std::string& why, int err) {
  throw Error(ErrorCode::kInvalidArgument, "cannot back up to '" + dest + "': " + why, err, dest);
}

bool exists_no_follow(const std::string& path, struct stat* st) {
  if (::lstat(path.c_str(), st) == 0) return true;
  if (errno == ENOENT) return false;
  throw errno_error(errno, "stat", path);
}

bool same_file(const struct stat& a, const std::string& path) {
  struct stat b;
  return ::stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Refuses a destination that exists (the database's own files among them),
// one with a log beside it (an open would replay it into the copy), and a
// temporary name that is one of the database's files.
void check_destination(const std::string& dest, const std::string& db_path) {
  if (dest.empty()) bad_destination(dest, "the path is empty", 0);
  struct stat st;
  if (exists_no_follow(dest, &st)) {
    bad_destination(dest, same_file(st, db_path) ? "it is the database itself" : "it exists",
                    EEXIST);
  }
  for (const char* suffix : kLogSuffixes) {
    if (exists_no_follow(dest + suffix, &st)) {
      bad_destination(dest, "a log '" + dest + suffix + "' exists beside it", EEXIST);
    }
  }
  const std::string tmp = dest + kTempSuffix;
  if (exists_no_follow(tmp, &st) &&
      (same_file(st, db_path) || same_file(st, db_path + kLogSuffixes[0]) ||
       same_file(st, db_path + kLogSuffixes[1]))) {
    bad_destination(dest, "its temporary name '" + tmp + "' is a file of the database", EEXIST);
  }
}

// fsyncs the directory holding `path`, so a new name in it is durable.
void sync_parent_directory(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw errno_error(errno, "open directory", dir.string());
  const int ret = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (ret != 0) throw errno_error(err, "fsync directory", dir.string());
}

}  // namespace

Task<Meta> DatabaseImpl::begin_backup() {
  AsyncLockGuard writer;
  {
    checkpointing_ = true;
    const CheckpointingFlag flag{checkpointing_};
    writer = co_await lock_data_file();
    co_await log_step_locked(LogStep::kCheckpoint);
  }
  // Still under the writer mutex: no checkpoint ran after this one.
  backup_running_ = true;
  co_return log_->meta();
}

Task<void> DatabaseImpl::copy_data_file(const std::string& dest, const Meta& meta) {
  const std::string tmp = dest + kTempSuffix;
  const std::uint32_t ps = disk_->page_size();
  DiskOptions o;
  o.page_size = ps;
  o.backend = disk_->backend();
  o.use_env = false;
  o.direct_io = false;
  o.create_if_missing = true;
  if (auto* uring = dynamic_cast<UringDiskManager*>(disk_.get())) o.loop = &uring->loop();
  // Locked like a database file: a second backup building the same copy gets kLocked.
  std::unique_ptr<DiskManager> out = DiskManager::open(tmp, o);
  if (options_.wrap_disk) out = options_.wrap_disk(std::move(out));

  std::exception_ptr error;
  try {
    const std::uint64_t pages = meta.state.page_count;
    out->truncate_blocks(0);      // a copy left by a crash during an earlier backup
    out->allocate_blocks(pages);  // a full disk shows here, before any copying
    // Both meta slots describe the copy (as after a close), under a new id.
    Meta m = meta;
    m.database_id = new_database_id();
    AlignedBuffer buf(ps);
    for (const std::uint64_t seq : {meta.sequence, meta.sequence + 1}) {
      m.sequence = seq;
      encode_meta(m, seq % 2, buf.span());
      co_await out->write_block(seq % 2, buf.span());
    }
    const std::uint64_t chunk_pages = std::max<std::uint64_t>(1, kChunkBytes / ps);
    AlignedBuffer chunk(chunk_pages * ps);
    for (BlockId first = 2; first < pages; first += chunk_pages) {
      const std::uint64_t n = std::min(chunk_pages, pages - first);
      const std::span<std::byte> bytes = chunk.span().subspan(0, n * ps);
      std::vector<Task<void>> reads;
      reads.reserve(n);
      for (std::uint64_t i = 0; i < n; ++i) {
        reads.push_back(disk_->read_block(first + i, bytes.subspan(i * ps, ps)));
      }
      co_await when_all(std::move(reads));
      // The copy is checked as the pool checks every page it reads.
      for (std::uint64_t i = 0; i < n; ++i) {
        page::verify(first + i, bytes.subspan(i * ps, ps), path_);
      }
      co_await out->write_blocks(first, bytes);
      co_await yield();  // the other tasks of the thread (writers) run between chunks
    }
    co_await out->sync();
    // Linked while the lock is held, so nobody else truncates it meanwhile;
    // link (not rename) never replaces a `dest` created since the check.
    if (::link(tmp.c_str(), dest.c_str()) != 0) {
      const int err = errno;
      if (err == EEXIST) bad_destination(dest, "it was created meanwhile", err);
      throw errno_error(err, "link", dest);
    }
    ::unlink(tmp.c_str());
    try {
      sync_parent_directory(dest);
    } catch (...) {
      ::unlink(dest.c_str());
      throw;
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (error) ::unlink(tmp.c_str());  // ours: it is locked until out closes
  out->close();
  if (error) std::rethrow_exception(error);
}

Task<void> DatabaseImpl::backup(std::string dest) {
  check_open();
  check_destination(dest, path_);
  const Meta meta = co_await begin_backup();
  // From here until the end, checkpoints wait (or are deferred).
  struct EndBackup {
    DatabaseImpl& db;
    ~EndBackup() {
      db.backup_running_ = false;
      db.backup_done_.notify_all();
    }
  } end{*this};
  co_await copy_data_file(dest, meta);
}

}  // namespace corobtree
