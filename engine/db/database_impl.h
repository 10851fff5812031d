// DatabaseImpl: the engine behind the public Database (include/corobtree/
// database.h, which documents the behaviour): one data file, its buffer pool,
// its B+tree and its write-ahead log, and the transactions over them.
//
// Thread-safety: belongs to the thread that opened it, like Database.
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

#include "engine/btree/btree.h"
#include "engine/pager/buffer_pool.h"
#include "engine/btree/tree_cursor.h"
#include "engine/format/meta.h"
#include "engine/log/wal.h"
#include "io/disk_manager.h"
#include <corobtree/task.h>

namespace corobtree {




class DatabaseImpl {
 public:
  static Task<std::unique_ptr<DatabaseImpl>> open(std::string path, Options options = {});

  // Writes nothing: the log keeps every commit and the next open replays it.
  ~DatabaseImpl();
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

  std::unique_ptr<TreeCursor> cursor(ScanOptions options = {});
  // Up to `limit` pairs of the range in scan order.
  Task<std::vector<std::pair<std::string, std::string>>> scan(ScanOptions options,
                                                              std::size_t limit = SIZE_MAX);

  Task<ValidationReport> validate();
  // Copies the logged pages into the data file, syncs it, writes the next
  // meta page, syncs again and empties the log.
  Task<void> checkpoint();
  // checkpoint() if anything was written, then release the files and delete
  // the log. Later calls throw kClosed. After a failed write it only releases.
  Task<void> close();

  DatabaseStats stats() const;
  std::uint64_t count() const noexcept { return tree_->state().key_count; }
  std::uint32_t max_key_size() const noexcept { return tree_->max_key_size(); }
  const std::string& path() const noexcept { return path_; }

 private:
  class Hooks;
  DatabaseImpl(std::string path, std::unique_ptr<DiskManager> disk, std::unique_ptr<Wal> wal,
           const Options& options, const Meta& meta);
  void check_open() const;
  CommitState commit_state() const;
  enum class Txn { kPut, kErase, kBatch, kBulkLoad };
  // One transaction under the writer mutex: the change, its commit record,
  // then (mutex released) the wait for durability. Returns erase's result.
  Task<bool> transact(Txn kind, std::string_view key, std::string_view value,
                      const WriteBatch* batch,
                      const std::vector<std::pair<std::string, std::string>>* sorted);
  // The end of a transaction (writer mutex held): logs its operations and a
  // commit record; returns the commit's LSN.
  std::uint64_t log_commit(std::span<const std::byte> ops);
  // Recovery: applies the logged transactions to the checkpointed tree, then checkpoints.
  Task<void> replay(const std::vector<std::pair<std::uint64_t, std::vector<std::byte>>>& txns);
  // After the writer mutex is released: waits for durability, checkpoints when due.
  Task<void> finish_commit(std::uint64_t lsn);
  Task<void> checkpoint_locked();
  Task<void> write_meta();

  std::string path_;
  Options options_;
  std::unique_ptr<DiskManager> disk_;
  std::unique_ptr<Hooks> hooks_;
  std::unique_ptr<Wal> wal_;
  std::unique_ptr<BufferPool> pool_;
  std::unique_ptr<BTree> tree_;
  std::uint64_t meta_sequence_ = 0;
  std::uint64_t database_id_ = 0;
  std::uint64_t checkpoints_ = 0;
  WalRecovery recovery_;
  std::exception_ptr stopped_;  // the failed write that stopped the database
  bool checkpointing_ = false;
  bool closed_ = false;
  bool modified_ = false;  // commits since the last checkpoint
  // This session wrote one meta page (a checkpoint or the replay); close()
  // writes the other one too, since the log that backs the older one goes away.
  bool metas_differ_ = false;
};

}  // namespace corobtree
