// Database: the async facade of corobtree. One file holds the whole database
// (a B+tree of byte-string keys and values); see docs/file-format.md.
//
//   auto db = co_await Database::open("my.db");
//   co_await db->put("key", "value");
//   std::optional<std::string> v = co_await db->get("key");
//   co_await db->close();
//
// Errors are thrown as corobtree::Error (io/error.h): kNotFound (no file and
// create_if_missing is off), kCorruption (not a database, damaged page or meta,
// truncated or empty file: the message names the page and the cause),
// kNotSupported (another format version), kInvalidArgument (key too long,
// conflicting page size), kLocked (another process has the file open), and
// the I/O errors of io/disk_manager.h. An absent key is std::nullopt, not an
// error.
//
// Durability: every put, erase, write(batch) and bulk_load is one atomic
// transaction, logged in the write-ahead log NAME-wal (engine/wal.h) before it
// returns. With Durability::kSync (the default) it returns once the log is
// fsynced, so it survives a power loss; concurrent writers share one fsync
// (group commit). With kRelaxed it returns once the log is written, which
// survives a crash of the process but not of the machine. The data file
// changes only at checkpoints, which run when the log exceeds
// Options::wal_checkpoint_bytes, on checkpoint() and on close(). Open replays
// the log's committed transactions (ignoring a torn tail) and validates the
// tree. A write sees the effects of commits that are not yet durable.
//
// A failed write (an I/O error, a full disk) throws and stops the database:
// every later call throws the same error, naming it; close() then releases
// the files without writing, and reopening recovers every acknowledged commit.
// A failure before the transaction changed anything (say, a read error on the
// way down the tree) throws without stopping the database.
//
// Thread-safety: a Database belongs to the thread that opened it; any number
// of tasks on that thread may use it at once (see BTree for the latching).
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

#include "engine/btree.h"
#include "engine/buffer_pool.h"
#include "engine/cursor.h"
#include "engine/wal.h"
#include "io/disk_manager.h"
#include "io/task.h"

namespace corobtree {

struct Options {
  std::uint32_t page_size = 0;       // 0: the file's, or 4096 for a new file
  std::size_t pool_pages = 1024;     // buffer pool frames; 0 = no caching
  std::uint32_t minimum_degree = 0;  // new files only: t > 0 caps nodes at 2t-1 keys
  IoBackend backend = IoBackend::kAuto;  // COROBTREE_IO overrides, as for DiskManager
  bool direct_io = false;
  bool create_if_missing = true;
  bool error_if_exists = false;
  EventLoop* loop = nullptr;  // share an io_uring loop; null = the database owns one
  Durability durability = Durability::kSync;
  // A checkpoint runs after the commit that grows the log past this many bytes.
  std::uint64_t wal_checkpoint_bytes = std::uint64_t{64} << 20;
  // After replaying a log at open, validate() the tree (kCorruption if unsound).
  bool validate_after_recovery = true;
  // Instrumentation: wraps the data file's and the log's DiskManager (the
  // tests' fault injector uses it). Null: none.
  std::function<std::unique_ptr<DiskManager>(std::unique_ptr<DiskManager>)> wrap_disk;
};

struct DatabaseStats {
  std::uint64_t keys = 0;
  std::uint32_t height = 0;
  std::uint64_t pages = 0;       // blocks in the file, meta pages included
  std::uint64_t free_pages = 0;  // on the free list
  std::uint32_t page_size = 0;
  std::uint32_t minimum_degree = 0;
  IoBackend backend = IoBackend::kAuto;
  std::string fallback_reason;
  BufferPoolStats pool;
  Durability durability = Durability::kSync;
  WalStats wal;
  std::uint64_t checkpoints = 0;
  WalRecovery recovery;  // what open replayed
};

// A group of writes applied together (last write to a key wins).
class WriteBatch {
 public:
  struct Op {
    bool erase;
    std::string key;
    std::string value;
  };
  void put(std::string_view key, std::string_view value) {
    ops_.push_back(Op{false, std::string(key), std::string(value)});
  }
  void erase(std::string_view key) { ops_.push_back(Op{true, std::string(key), {}}); }
  void clear() noexcept { ops_.clear(); }
  std::size_t size() const noexcept { return ops_.size(); }
  bool empty() const noexcept { return ops_.empty(); }
  const std::vector<Op>& ops() const noexcept { return ops_; }

 private:
  std::vector<Op> ops_;
};

class Database {
 public:
  static Task<std::unique_ptr<Database>> open(std::string path, Options options = {});

  // Without close() first, changes since the last checkpoint are lost.
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // The string_view arguments must stay valid until the returned task finishes.
  Task<std::optional<std::string>> get(std::string_view key);
  Task<void> put(std::string_view key, std::string_view value);
  // Returns whether the key existed.
  Task<bool> erase(std::string_view key);
  // REQUIRES: `batch` stays alive until the task finishes.
  Task<void> write(const WriteBatch& batch);
  // Loads strictly increasing pairs into an empty database, leaves packed.
  Task<void> bulk_load(const std::vector<std::pair<std::string, std::string>>& sorted);

  Cursor cursor(ScanOptions options = {});
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
  Database(std::string path, std::unique_ptr<DiskManager> disk, std::unique_ptr<Wal> wal,
           const Options& options, const struct Meta& meta);
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
