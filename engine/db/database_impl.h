// DatabaseImpl: the engine behind the public Database (include/corobtree/
// database.h, which documents the behaviour): one data file, its buffer pool,
// its B+tree and its write-ahead log (engine/log/checkpointer.h), and the
// transactions over them. It is the log's LoggedTree: recovery replays
// logged transactions through redo().
//
// Thread-safety: belongs to one thread (DatabaseHost's engine thread), except
// tree() for the lock-free readers.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/database.h>

#include <corobtree/task.h>
#include "engine/btree/btree.h"
#include "engine/btree/tree_cursor.h"
#include "engine/db/replaceable_disk.h"
#include "engine/format/meta.h"
#include "engine/log/checkpointer.h"
#include "engine/log/page_image_store.h"
#include "engine/pager/buffer_pool.h"
#include "io/async_mutex.h"
#include "io/condition.h"
#include "io/disk_manager.h"

namespace corobtree {

class DatabaseImpl final : private LoggedTree {
 public:
  static Task<std::unique_ptr<DatabaseImpl>> open(std::string path, Options options = {});

  // Writes nothing: the log keeps every commit and the next open replays it.
  ~DatabaseImpl() override;
  DatabaseImpl(const DatabaseImpl&) = delete;
  DatabaseImpl& operator=(const DatabaseImpl&) = delete;

  // The string_view arguments must stay valid until the returned task finishes.
  Task<std::optional<std::string>> get(std::string_view key);
  Task<void> put(std::string_view key, std::string_view value);
  // Returns whether the key existed.
  Task<bool> erase(std::string_view key);
  // REQUIRES: `batch` stays alive until the task finishes.
  Task<void> write(const WriteBatch& batch);
  // Loads strictly increasing pairs into an empty database, leaves packed.
  Task<void> bulk_load(const std::vector<std::pair<std::string, std::string>>& sorted);

  // Touches nothing of the database's state (any thread); the cursor's steps
  // go through cursor_step, on the engine thread.
  std::unique_ptr<TreeCursor> cursor(ScanOptions options = {});
  // Whether a commit waits for an fsync (Durability::kSync).
  bool durable_commits() const noexcept { return options_.durability == Durability::kSync; }
  enum class CursorStep { kFirst, kSeek, kNext, kPrev };
  // check_open(), then the step (`key` for kSeek; it must outlive the task).
  Task<bool> cursor_step(TreeCursor* c, CursorStep step, std::string_view key);
  // Up to `limit` pairs of the range in scan order.
  Task<std::vector<std::pair<std::string, std::string>>> scan(ScanOptions options,
                                                              std::size_t limit = SIZE_MAX);

  Task<ValidationReport> validate();
  // Checkpointer::cut under the writer mutex, then (mutex released, commits
  // going on) Checkpointer::copy_checkpoint: the data file and its meta page
  // then hold every commit before the call. Waits for a copy in progress first.
  Task<void> checkpoint();
  // Rewrites the database into a packed copy and swaps it in (engine/db/
  // compact.cc; docs/engine.md, "Compaction"). Takes the writer mutex; reads
  // go on until the swap, which waits for the reads in flight (read_gate).
  Task<void> compact();
  // Checkpointer::close (checkpoint if anything was written, then release the
  // files and delete both logs). Later calls throw kClosed. After a failed
  // write it only releases. Waits for a backup and a checkpoint's copy in
  // progress first.
  Task<void> close();
  // A consistent copy in the new file `dest` while writers go on (backup.cc;
  // Database::backup documents it).
  Task<void> backup(std::string dest);

  DatabaseStats stats() const;
  std::uint64_t count() const noexcept { return tree_->state().key_count; }
  std::uint32_t max_key_size() const noexcept { return tree_->max_key_size(); }
  const std::string& path() const noexcept { return path_; }
  // The tree, for the lock-free readers (engine/btree/optimistic_read.h).
  BTree& tree() noexcept { return *tree_; }
  const BTree& tree() const noexcept { return *tree_; }

 private:
  class Hooks;
  // What a transaction compares with afterwards to learn whether it changed
  // anything before it failed.
  struct Before {
    CommitState state;
    std::uint64_t dirty_marks = 0;
  };
  DatabaseImpl(std::string path, std::unique_ptr<ReplaceableDisk> disk, const Options& options,
               const Meta& meta, PageImageStore& store);
  void check_open() const;
  // Reads both meta pages; a problem for each that does not decode.
  Task<std::vector<std::string>> check_meta_pages();
  // Replays the log's transactions (the writer mutex held) and takes over its Checkpointer.
  Task<void> replay(Recovery& recovery);
  // One transaction under the writer mutex: applies `batch`, logs it with a
  // commit record if it changed anything, then (mutex released) waits for
  // durability. Returns whether it changed anything (erase: the key existed).
  Task<bool> transact(const WriteBatch& batch);
  // Applies `batch` to the tree (writer mutex held); returns whether it changed anything.
  Task<bool> apply_locked(const WriteBatch& batch);
  Before before() const;
  // Stops the database (unless already stopped): every later call throws `error`.
  void stop(std::exception_ptr error) noexcept;
  // A transaction failed with `error`: stops the database if it changed pages,
  // the tree's state or the log since `b`, so nothing half-done is read or committed.
  void stop_if_changed(const Before& b, std::exception_ptr error);
  // What run_log_step runs: an explicit checkpoint, the checkpoint a commit
  // found due (skipped while a backup copies the data file or another
  // checkpoint's copy runs), or the close.
  enum class LogStep { kCheckpoint, kDueCheckpoint, kClose };
  // A checkpoint (its cut under the writer mutex, its copy after the mutex
  // is released), or the close's checkpoint and release under the writer
  // mutex; a failure stops the database.
  Task<void> run_log_step(LogStep step);
  // The log step itself, whole, the writer mutex held (the close, a backup's
  // and a compaction's first checkpoint); a failure stops the database.
  Task<void> log_step_locked(LogStep step);
  // Clears checkpointing_ when the step ends, however it ends.
  struct CheckpointingFlag {
    bool& flag;
    ~CheckpointingFlag() { flag = false; }
  };
  // The writer mutex, at a moment when no checkpoint's copy writes the data
  // file and (if `wait_for_backup`) no backup is copying it (so the holder
  // may change the data file: checkpoint, close, bulk load, compaction).
  Task<AsyncLockGuard> lock_data_file(bool wait_for_backup = true);
  // Checkpointer::cut (the writer mutex held); sets copying_ when it cut. A
  // failure stops the database.
  Task<bool> cut_locked();
  // Checkpointer::copy_checkpoint (no writer mutex); clears copying_ when it
  // ends. A failure stops the database.
  Task<void> copy_checkpoint();
  // backup.cc: the checkpoint a backup starts with; returns the meta page
  // that describes the data file then and marks the backup running.
  Task<Meta> begin_backup();
  // backup.cc: copies the data file's pages as of `meta` into a temporary
  // file, then links it to `dest`; removes the temporary file on failure.
  Task<void> copy_data_file(const std::string& dest, const Meta& meta);
  // Compaction: streams the tree into a new file at `tmp` (through
  // Options::wrap_disk like the data file), writes its meta pages into `meta`
  // and both slots, and syncs it. The writer mutex is held, the log empty.
  Task<std::unique_ptr<DiskManager>> build_packed_copy(std::string tmp, Meta& meta);
  // After the writer mutex is released: waits for durability, checkpoints when due.
  Task<void> finish_commit(std::uint64_t lsn);

  // LoggedTree
  Task<void> redo(const WriteBatch& batch) override;
  CommitState commit_state() const override;

  std::string path_;
  Options options_;
  std::unique_ptr<ReplaceableDisk> disk_;  // the data file (compaction replaces it)
  std::unique_ptr<Hooks> hooks_;
  std::unique_ptr<Checkpointer> log_;  // null until the log is replayed
  std::unique_ptr<BufferPool> pool_;
  std::unique_ptr<BTree> tree_;
  RecoveryStats recovery_;
  std::exception_ptr stopped_;  // the failed write that stopped the database
  bool checkpointing_ = false;
  bool closed_ = false;
  // A backup is copying the data file: nothing may write it (no checkpoint).
  bool backup_running_ = false;
  // A checkpoint's cut is being copied into the data file (copy_checkpoint):
  // the next cut, a backup, a compaction and close() wait for it.
  bool copying_ = false;
  Condition copy_done_;  // notified when copying_ turns false
  // Tasks in lock_data_file(): due checkpoints are skipped while there are any.
  std::uint64_t data_file_waiters_ = 0;
  Condition backup_done_;  // notified when backup_running_ turns false
  // apply_locked's sorted operations (writer mutex held), kept for their capacity.
  std::vector<BTree::SortedOp> sorted_ops_;
  // Its sort's scratch: each operation's key word and position, and the
  // operations in key order (swapped with sorted_ops_).
  struct SortKey {
    std::uint64_t prefix;
    std::size_t index;
  };
  std::vector<SortKey> sort_keys_;
  std::vector<BTree::SortedOp> sorted_scratch_;
};

}  // namespace corobtree
