#include "engine/db/database_impl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <corobtree/error.h>
#include "engine/format/meta.h"
#include "engine/format/page_format.h"
#include "engine/log/batch_format.h"
#include "engine/log/log_format.h"
#include "engine/log/write_batch_internal.h"
#include "io/aligned_buffer.h"
#include "io/uring_disk_manager.h"

namespace corobtree {

// Verifies every page read from disk and stamps every page written.
class DatabaseImpl::Hooks final : public PageHooks {
 public:
  explicit Hooks(std::string path) : path_(std::move(path)) {}
  void after_read(BlockId id, std::span<const std::byte> p) override {
    if (id < 2) {
      throw Error(
          ErrorCode::kCorruption,
          "page " + std::to_string(id) + " of '" + path_ + "' is a meta page, not a tree page", 0,
          path_, id);
    }
    page::verify(id, p, path_);
  }
  void before_write(BlockId id, std::span<std::byte> p) override {
    // The LSN of the transaction that logs this image.
    if (store_) PageHeader::Lsn::set(p.data(), store_->next_lsn());
    page::stamp_checksum(id, p);
  }
  void set_store(const PageImageStore* store) noexcept { store_ = store; }
  // The tree's upper levels: few pages, on every lookup's path.
  bool keep_longer(std::span<const std::byte> p) const noexcept override {
    return page::type(p.data()) == PageType::kInner;
  }

 private:
  std::string path_;
  const PageImageStore* store_ = nullptr;
};

namespace {

[[noreturn]] void not_a_database(const std::string& path, const std::string& why) {
  throw Error(ErrorCode::kCorruption, "'" + path + "' is not a corobtree database: " + why, 0,
              path);
}

bool valid_page_size(std::uint32_t ps) {
  return ps >= kMinPageSize && ps <= kMaxPageSize && (ps & (ps - 1)) == 0;
}

// Learns the page size of an existing file from a meta page's header: block 0
// first, else block 1 at each possible page size (block 0 may be the damaged one).
std::uint32_t probe_page_size(const std::string& path, std::uint64_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw errno_error(errno, "open", path);
  auto read_header = [&](std::uint64_t off, std::byte* out) {
    return ::pread(fd, out, MetaLayout::kProbeBytes, static_cast<off_t>(off)) ==
           static_cast<ssize_t>(MetaLayout::kProbeBytes);
  };
  std::byte h[MetaLayout::kProbeBytes];
  std::uint32_t found = 0;
  std::uint32_t version = 0;
  for (std::uint64_t off : {std::uint64_t{0}, std::uint64_t{512}, std::uint64_t{1024},
                            std::uint64_t{2048}, std::uint64_t{4096}, std::uint64_t{8192},
                            std::uint64_t{16384}, std::uint64_t{32768}, std::uint64_t{65536}}) {
    if (off + MetaLayout::kProbeBytes > size || !read_header(off, h)) continue;
    if (MetaLayout::Magic::get(h) != kMagic) continue;
    const auto ps = MetaLayout::PageSize::get(h);
    if (!valid_page_size(ps) || (off != 0 && ps != off)) continue;
    found = ps;
    version = MetaLayout::Version::get(h);
    break;
  }
  ::close(fd);
  if (found == 0) not_a_database(path, "no meta page with the corobtree magic number");
  if (version != kFormatVersion) {
    throw Error(ErrorCode::kNotSupported,
                "'" + path + "' has format version " + std::to_string(version) +
                    "; this library reads version " + std::to_string(kFormatVersion),
                0, path);
  }
  return found;
}

// Options::pool_pages, or by default pool_bytes in frames of `page_size`.
std::size_t pool_frames(const Options& options, std::uint32_t page_size) {
  if (options.pool_pages != kPoolFromBytes) return options.pool_pages;
  constexpr std::size_t kMinimumFrames = 64;
  return std::max(kMinimumFrames, options.pool_bytes / page_size);
}

}  // namespace

DatabaseImpl::DatabaseImpl(std::string path, std::unique_ptr<ReplaceableDisk> disk,
                           const Options& options, const Meta& meta, PageImageStore& store)
    : path_(std::move(path)),
      options_(options),
      disk_(std::move(disk)),
      hooks_(std::make_unique<Hooks>(path_)),
      pool_(std::make_unique<BufferPool>(*disk_, pool_frames(options, disk_->page_size()))) {
  hooks_->set_store(&store);
  pool_->set_hooks(hooks_.get());
  pool_->set_store(&store);
  tree_ = std::make_unique<BTree>(*pool_, meta.state.tree);
}

DatabaseImpl::~DatabaseImpl() {
  // Without close(): nothing is written here; the log keeps every commit and
  // the next open replays it.
  if (log_) log_->abandon();
}

namespace {

// Creates a database at `path` atomically: the file is built and synced under
// a temporary name, then linked into place (never over an existing file) and
// the directory synced, so a crash during creation leaves no half-made file.
Task<void> create_database(std::string path, DiskOptions dopts, std::uint32_t minimum_degree) {
  const std::string tmp = path + ".creating";
  ::unlink(tmp.c_str());  // left by a crash during an earlier creation
  {
    std::unique_ptr<DiskManager> disk = DiskManager::open(tmp, dopts);
    const std::uint32_t page_size = dopts.page_size;
    AlignedBuffer buf(page_size);
    disk->allocate_blocks(3);  // two meta pages and an empty root leaf
    page::init(buf.span(), PageType::kLeaf);
    page::stamp_checksum(2, buf.span());
    co_await disk->write_block(2, buf.span());
    Meta meta;
    meta.page_size = page_size;
    meta.state.tree.root = 2;
    meta.state.tree.height = 1;
    meta.state.tree.minimum_degree = minimum_degree;
    meta.state.page_count = 3;
    meta.database_id = new_database_id();
    for (BlockId id : {BlockId{0}, BlockId{1}}) {
      meta.sequence = id;
      encode_meta(meta, id, buf.span());
      co_await disk->write_block(id, buf.span());
    }
    co_await disk->sync();
    disk->close();
  }
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    if (err == EEXIST) {
      throw Error(ErrorCode::kLocked, "'" + path + "' was created by another process meanwhile",
                  err, path);
    }
    throw errno_error(err, "create", path);
  }
  ::unlink(tmp.c_str());
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);  // the new name is durable
    ::close(dfd);
  }
}

}  // namespace

Task<std::unique_ptr<DatabaseImpl>> DatabaseImpl::open(std::string path, Options options) {
  struct stat st;
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) throw errno_error(errno, "stat", path);
  if (!exists && !options.create_if_missing) {
    throw Error(ErrorCode::kNotFound, "'" + path + "' does not exist", ENOENT, path);
  }
  if (exists && options.error_if_exists) {
    throw Error(ErrorCode::kInvalidArgument, "'" + path + "' already exists", EEXIST, path);
  }
  if (exists && st.st_size == 0) not_a_database(path, "the file is empty (0 bytes)");
  if (options.minimum_degree == 1) {
    throw Error(ErrorCode::kInvalidArgument, "minimum degree must be 0 or at least 2");
  }
  std::uint32_t page_size = options.page_size ? options.page_size : kDefaultPageSize;
  if (exists) {
    const std::uint32_t file_ps = probe_page_size(path, static_cast<std::uint64_t>(st.st_size));
    if (options.page_size != 0 && options.page_size != file_ps) {
      throw Error(ErrorCode::kInvalidArgument,
                  "'" + path + "' has " + std::to_string(file_ps) + "-byte pages, not the " +
                      std::to_string(options.page_size) + " the options ask for",
                  0, path);
    }
    page_size = file_ps;
  }
  DiskOptions dopts;
  dopts.page_size = page_size;
  dopts.backend = options.backend;
  dopts.direct_io = options.direct_io;
  dopts.lock_timeout = options.lock_timeout;
  dopts.create_if_missing = true;
  if (!exists) {
    co_await create_database(path, dopts, options.minimum_degree);
    if (::stat(path.c_str(), &st) != 0) throw errno_error(errno, "stat", path);
    exists = true;
  }
  dopts.create_if_missing = false;
  std::unique_ptr<DiskManager> disk = DiskManager::open(path, dopts);
  // The log shares the data file's backend and io_uring loop; it is buffered
  // (appends and fdatasync), never O_DIRECT.
  DiskOptions lopts = dopts;
  lopts.direct_io = false;
  lopts.create_if_missing = true;
  lopts.use_env = false;
  lopts.backend = disk->backend();
  lopts.inline_sync_when_idle = true;  // commits: fdatasync at once when the ring is idle
  if (auto* uring = dynamic_cast<UringDiskManager*>(disk.get())) lopts.loop = &uring->loop();
  // Both logs exist from the first open on (an older database has NAME-wal only).
  std::array<std::unique_ptr<DiskManager>, 2> logs;
  for (std::size_t i = 0; i < logs.size(); ++i) {
    logs[i] = DiskManager::open(path + kLogSuffixes[i], lopts);
  }
  if (options.wrap_disk) {
    disk = options.wrap_disk(std::move(disk));
    for (std::unique_ptr<DiskManager>& log : logs) log = options.wrap_disk(std::move(log));
  }
  auto data = std::make_unique<ReplaceableDisk>(std::move(disk));

  Meta meta;
  AlignedBuffer buf(page_size);
  {
    if (data->block_count() < 3) {
      throw Error(ErrorCode::kCorruption,
                  "'" + path + "' is truncated: " + std::to_string(st.st_size) + " bytes", 0, path);
    }
    DecodedMeta best{MetaStatus::kBadMagic, {}, 0};
    std::string reasons;
    for (BlockId id : {BlockId{0}, BlockId{1}}) {
      co_await data->read_block(id, buf.span());
      DecodedMeta d = decode_meta(id, buf.span());
      if (d.status != MetaStatus::kValid) {
        reasons += " meta page " + std::to_string(id) + ": " +
                   std::string(meta_status_name(d.status)) + ";";
        continue;
      }
      if (best.status != MetaStatus::kValid || d.meta.sequence > best.meta.sequence) best = d;
    }
    if (best.status != MetaStatus::kValid) {
      throw Error(ErrorCode::kCorruption, "'" + path + "' has no valid meta page:" + reasons, 0,
                  path);
    }
    meta = best.meta;
    if (meta.state.page_count > data->block_count()) {
      throw Error(ErrorCode::kCorruption,
                  "'" + path + "' is truncated: the meta page counts " +
                      std::to_string(meta.state.page_count) + " pages, the file holds " +
                      std::to_string(data->block_count()),
                  0, path);
    }
  }
  std::unique_ptr<Recovery> recovery =
      co_await Recovery::open(std::move(logs), *data, options.durability, meta);
  auto db = std::unique_ptr<DatabaseImpl>(
      new DatabaseImpl(path, std::move(data), options, recovery->meta(), recovery->page_store()));
  co_await db->replay(*recovery);
  const RecoveryStats rec = recovery->stats();
  db->recovery_ = rec;
  if ((rec.checkpoint || rec.commits > 0) && options.validate_after_recovery) {
    // The tree only: a meta page torn by the crash is rewritten by the next checkpoint.
    ValidationReport report = co_await db->tree_->validate();
    if (!report.ok()) {
      throw Error(ErrorCode::kCorruption,
                  "'" + path + "' fails validation after replaying " + std::to_string(rec.commits) +
                      " logged commits: " + report.summary(),
                  0, path);
    }
  }
  co_return db;
}

Task<void> DatabaseImpl::replay(Recovery& recovery) {
  AsyncLockGuard writer = co_await tree_->writer_mutex().scoped_lock();
  log_ = co_await recovery.replay(*this, *pool_);
}

void DatabaseImpl::check_open() const {
  if (closed_) throw Error(ErrorCode::kClosed, "database '" + path_ + "' is closed", 0, path_);
  if (stopped_) {
    std::string cause = "unknown error";
    ErrorCode code = ErrorCode::kIoError;
    int err = 0;
    try {
      std::rethrow_exception(stopped_);
    } catch (const Error& e) {
      cause = e.what();
      code = e.code();
      err = e.sys_errno();
    } catch (const std::exception& e) {
      cause = e.what();
    }
    throw Error(code,
                "database '" + path_ + "' stopped after a failed write (" + cause +
                    "); close and reopen it: recovery restores every acknowledged commit",
                err, path_);
  }
}

// The point reads hand back the tree's task itself (no extra frame); a closed
// database throws at the call, inside the caller's co_await expression.
Task<std::optional<std::string>> DatabaseImpl::get(std::string_view key) {
  check_open();
  return tree_->get(key);
}

CommitState DatabaseImpl::commit_state() const {
  return CommitState{tree_->state(), disk_->block_count()};
}

DatabaseImpl::Before DatabaseImpl::before() const {
  return Before{commit_state(), pool_->dirty_marks()};
}

void DatabaseImpl::stop(std::exception_ptr error) noexcept {
  if (stopped_) return;
  stopped_ = std::move(error);
  tree_->disable_optimistic();
}

void DatabaseImpl::stop_if_changed(const Before& b, std::exception_ptr error) {
  // Pages, tree state or the log changed and cannot be rolled back: stop, so
  // nothing half-done is read or committed; reopening recovers.
  const bool changed = pool_->dirty_marks() != b.dirty_marks || !(commit_state() == b.state) ||
                       log_->in_transaction() || log_->failure();
  if (changed) stop(error);
}

// A batch of several operations is applied in key order: sorted stably by
// key, only the last operation on each key kept (what applying them in batch
// order would leave), then handed to the tree, which inserts runs of keys into
// one leaf without descending for each. Replay applies a logged batch the same way.
Task<bool> DatabaseImpl::apply_locked(const WriteBatch& batch) {
  // Optimistic readers see the batch whole or not at all.
  const BTree::WriteWindow window(*tree_);
  BatchReader reader = WriteBatchInternal::reader(batch);
  std::vector<BTree::SortedOp>& ops = sorted_ops_;
  ops.clear();
  BatchOp op;
  while (reader.next(op)) ops.push_back({op.key, op.value, op.kind == OpKind::kErase});
  if (ops.size() > 1) {
    // A stable sort by key that mostly compares integers held side by side
    // instead of keys spread over the batch: by the first 8 bytes of the key
    // as a big-endian word, zero-padded (where two such words differ, the
    // keys compare the same way), then by the whole key, then by position.
    std::vector<SortKey>& order = sort_keys_;
    order.clear();
    for (std::size_t i = 0; i < ops.size(); ++i) {
      std::uint64_t word = 0;
      const std::string_view key = ops[i].key;
      if (!key.empty()) std::memcpy(&word, key.data(), std::min<std::size_t>(key.size(), 8));
      order.push_back({__builtin_bswap64(word), i});
    }
    std::sort(order.begin(), order.end(), [&ops](const SortKey& a, const SortKey& b) {
      if (a.prefix != b.prefix) return a.prefix < b.prefix;
      if (a.index == b.index) return false;
      const int c = ops[a.index].key.compare(ops[b.index].key);
      return c != 0 ? c < 0 : a.index < b.index;
    });
    // In key order; of equal keys, the last one wins.
    std::vector<BTree::SortedOp>& sorted = sorted_scratch_;
    sorted.clear();
    for (std::size_t i = 0; i < order.size(); ++i) {
      const BTree::SortedOp& o = ops[order[i].index];
      if (i + 1 < order.size() && order[i + 1].prefix == order[i].prefix &&
          ops[order[i + 1].index].key == o.key) {
        continue;
      }
      sorted.push_back(o);
    }
    ops.swap(sorted);
  }
  const bool changed = co_await tree_->apply_sorted_locked(ops);
  co_return changed;
}

Task<void> DatabaseImpl::redo(const WriteBatch& batch) { co_await apply_locked(batch); }

Task<void> DatabaseImpl::finish_commit(std::uint64_t lsn) {
  std::exception_ptr error;
  try {
    co_await log_->wait_durable(lsn);
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    stop(error);
    std::rethrow_exception(error);
  }
  // While a backup copies the data file the checkpoint is deferred: a commit
  // after the backup runs it (this one must not wait for the backup).
  if (log_->log_bytes() >= options_.wal_checkpoint_bytes && !checkpointing_ && !closed_ &&
      !stopped_ && !backup_running_ && !copying_ && data_file_waiters_ == 0) {
    co_await run_log_step(LogStep::kDueCheckpoint);
  }
}

Task<bool> DatabaseImpl::transact(const WriteBatch& batch) {
  std::uint64_t lsn = 0;
  bool changed = false;
  {
    // Counted in the log's group commit until the commit record is appended.
    const Checkpointer::WriterCount counted = log_->count_writer();
    AsyncLockGuard writer = co_await tree_->writer_mutex().scoped_lock();
    check_open();
    const Before b = before();
    std::exception_ptr error;
    try {
      changed = co_await apply_locked(batch);
      // Nothing changed (an erase of an absent key, an empty batch): nothing
      // to log, but wait for the commits this one may have seen.
      lsn = changed ? log_->commit(batch) : log_->last_lsn();
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      stop_if_changed(b, error);
      std::rethrow_exception(error);
    }
  }
  co_await finish_commit(lsn);
  co_return changed;
}

Task<void> DatabaseImpl::put(std::string_view key, std::string_view value) {
  check_open();
  tree_->check_key(key);
  tree_->check_value(value);
  WriteBatch batch;
  batch.put(key, value);
  co_await transact(batch);
}

Task<bool> DatabaseImpl::erase(std::string_view key) {
  check_open();
  tree_->check_key(key);
  WriteBatch batch;
  batch.erase(key);
  const bool found = co_await transact(batch);
  co_return found;
}

Task<void> DatabaseImpl::write(const WriteBatch& batch) {
  check_open();
  BatchReader reader = WriteBatchInternal::reader(batch);
  BatchOp op;
  while (reader.next(op)) {  // reject bad input before changing anything
    tree_->check_key(op.key);
    if (op.kind == OpKind::kPut) tree_->check_value(op.value);
  }
  co_await transact(batch);
}

Task<void> DatabaseImpl::bulk_load(const std::vector<std::pair<std::string, std::string>>& sorted) {
  check_open();
  std::uint64_t lsn = 0;
  {
    const Checkpointer::WriterCount counted = log_->count_writer();
    // Its commit is a checkpoint: it waits for a backup to end.
    AsyncLockGuard writer = co_await lock_data_file();
    check_open();
    const Before b = before();
    std::exception_ptr error;
    try {
      co_await tree_->bulk_load_locked(sorted);
      // Not logged pair by pair: the checkpoint that follows the commit
      // record writes the new pages (their images first, then the data file),
      // and its checkpoint record is what makes the load durable.
      lsn = co_await log_->commit_through_checkpoint();
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      stop_if_changed(b, error);
      std::rethrow_exception(error);
    }
  }
  co_await finish_commit(lsn);
}

std::unique_ptr<TreeCursor> DatabaseImpl::cursor(ScanOptions options) {
  return std::make_unique<TreeCursor>(*tree_, std::move(options), options_.readahead_leaves);
}

Task<bool> DatabaseImpl::cursor_step(TreeCursor* c, CursorStep step, std::string_view key) {
  check_open();
  switch (step) {
    case CursorStep::kFirst: return c->first();
    case CursorStep::kSeek: return c->seek(key);
    case CursorStep::kNext: return c->next();
    case CursorStep::kPrev: break;
  }
  return c->prev();
}

Task<std::vector<std::pair<std::string, std::string>>> DatabaseImpl::scan(ScanOptions options,
                                                                          std::size_t limit) {
  check_open();
  std::vector<std::pair<std::string, std::string>> out;
  TreeCursor c(*tree_, std::move(options), options_.readahead_leaves);
  bool ok = co_await c.first();
  while (ok && out.size() < limit) {
    out.emplace_back(std::string(c.key()), std::string(c.value()));
    if (out.size() == limit) break;
    ok = co_await c.next();
  }
  co_return out;
}

Task<std::vector<std::string>> DatabaseImpl::check_meta_pages() {
  std::vector<std::string> problems;
  // Under the writer mutex and with no checkpoint's copy running: no
  // checkpoint writes a meta page meanwhile.
  AsyncLockGuard writer = co_await lock_data_file(false);
  AlignedBuffer buf(disk_->page_size());
  for (BlockId id : {BlockId{0}, BlockId{1}}) {
    co_await disk_->read_block(id, buf.span());
    const DecodedMeta d = decode_meta(id, buf.span());
    if (d.status == MetaStatus::kValid) continue;
    problems.push_back("meta page " + std::to_string(id) + " of '" + path_ + "' is damaged (" +
                       std::string(meta_status_name(d.status)) + "); the database uses meta page " +
                       std::to_string(1 - id));
  }
  co_return problems;
}

Task<ValidationReport> DatabaseImpl::validate() {
  check_open();
  std::vector<std::string> meta_problems = co_await check_meta_pages();
  ValidationReport r = co_await tree_->validate();
  r.problems.insert(r.problems.begin(), meta_problems.begin(), meta_problems.end());
  co_return r;
}

Task<AsyncLockGuard> DatabaseImpl::lock_data_file(bool wait_for_backup) {
  // Due checkpoints are skipped meanwhile, so that cuts falling due after
  // every commit do not keep this task waiting for copies for ever.
  ++data_file_waiters_;
  struct Waiting {
    std::uint64_t& n;
    ~Waiting() { --n; }
  } waiting{data_file_waiters_};
  while (true) {
    while ((wait_for_backup && backup_running_) || copying_) {
      if (copying_) {
        co_await copy_done_.wait();
      } else {
        co_await backup_done_.wait();
      }
    }
    AsyncLockGuard writer = co_await tree_->writer_mutex().scoped_lock();
    // Else a backup or a copy began while this task waited.
    if (!(wait_for_backup && backup_running_) && !copying_) co_return writer;
  }
}

Task<void> DatabaseImpl::log_step_locked(LogStep step) {
  std::exception_ptr error;
  try {
    check_open();
    if (step == LogStep::kClose) {
      co_await log_->close();
    } else {
      co_await log_->checkpoint();
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    if (!closed_) stop(error);
    std::rethrow_exception(error);
  }
}

Task<bool> DatabaseImpl::cut_locked() {
  std::exception_ptr error;
  bool cut = false;
  try {
    check_open();
    cut = co_await log_->cut();
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    if (!closed_) stop(error);
    std::rethrow_exception(error);
  }
  if (cut) copying_ = true;
  co_return cut;
}

Task<void> DatabaseImpl::copy_checkpoint() {
  struct EndCopy {
    DatabaseImpl& db;
    ~EndCopy() {
      db.copying_ = false;
      db.copy_done_.notify_all();
    }
  } end{*this};
  std::exception_ptr error;
  try {
    co_await log_->copy_checkpoint();
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    stop(error);
    std::rethrow_exception(error);
  }
}

Task<void> DatabaseImpl::run_log_step(LogStep step) {
  checkpointing_ = true;
  const CheckpointingFlag flag{checkpointing_};
  bool cut = false;
  {
    AsyncLockGuard writer;
    if (step == LogStep::kDueCheckpoint) {
      writer = co_await tree_->writer_mutex().scoped_lock();
      // While a backup copies the data file the checkpoint is deferred (and
      // while another checkpoint's copy runs, or a task waits to change the
      // data file).
      if (backup_running_ || copying_ || data_file_waiters_ > 0) co_return;
    } else {
      writer = co_await lock_data_file();
    }
    if (step == LogStep::kClose) {
      co_await log_step_locked(step);
      co_return;
    }
    cut = co_await cut_locked();
  }
  // The writer mutex is released: commits go on into the other log while
  // the cut's images are copied into the data file.
  if (cut) co_await copy_checkpoint();
}

Task<void> DatabaseImpl::checkpoint() {
  check_open();
  co_await run_log_step(LogStep::kCheckpoint);
}

Task<void> DatabaseImpl::close() {
  if (closed_) co_return;
  // A backup reads the data file until it ends (even after a failed write),
  // and so does a checkpoint's copy, which writes it.
  while (backup_running_ || copying_) {
    if (copying_) {
      co_await copy_done_.wait();
    } else {
      co_await backup_done_.wait();
    }
  }
  if (closed_) co_return;
  if (stopped_) {
    // Nothing is written after a failed write: the log holds every commit.
    closed_ = true;
    tree_->disable_optimistic();
    log_->abandon();
    disk_->close();
    co_return;
  }
  tree_->disable_optimistic();  // lock-free reads end here; the engine's path reports kClosed
  co_await run_log_step(LogStep::kClose);
  closed_ = true;
  disk_->close();
}

DatabaseStats DatabaseImpl::stats() const {
  DatabaseStats s;
  const TreeState& t = tree_->state();
  s.keys = t.key_count;
  s.height = t.height;
  s.pages = disk_->block_count();
  s.free_pages = t.free_pages;
  s.page_size = disk_->page_size();
  s.minimum_degree = t.minimum_degree;
  s.backend = disk_->backend();
  s.fallback_reason = disk_->fallback_reason();
  s.pool = pool_->stats();
  s.durability = log_->durability();
  s.wal = log_->stats();
  s.checkpoints = log_->checkpoints();
  s.recovery = recovery_;
  return s;
}

}  // namespace corobtree
