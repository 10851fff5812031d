// Database: the async facade of corobtree. One file holds the whole database
// (a B+tree of byte-string keys and values), beside its write-ahead log, the
// files NAME-wal and NAME-wal2; see docs/file-format.md.
//
//   #include <corobtree/database.h>
//
//   auto db = co_await corobtree::Database::open("my.db");
//   co_await db->put("key", "value");
//   std::optional<std::string> v = co_await db->get("key");
//   co_await db->close();
//
// Errors are thrown as corobtree::Error (corobtree/error.h): kNotFound (no file
// and create_if_missing is off), kCorruption (not a database, damaged page or
// meta, truncated or empty file: the message names the page and the cause),
// kNotSupported (another format version), kInvalidArgument (key too long,
// conflicting page size), kLocked (another process has the file open), kClosed
// (after close()), and the I/O errors kIoError and kNoSpace. An absent key is
// std::nullopt, not an error.
//
// Durability: every put, erase, write(batch) and bulk_load is one atomic
// transaction, logged in the write-ahead log (NAME-wal, NAME-wal2) before it returns. With
// Durability::kSync (the default) it returns once the log is fsynced, so it
// survives a power loss; concurrent writers share one fsync (group commit).
// With kRelaxed it returns once the log is written, which survives a crash of
// the process but not of the machine. The data file changes only at
// checkpoints, which run when the log exceeds Options::wal_checkpoint_bytes,
// on checkpoint() and on close(); a checkpoint holds the writer mutex only for
// its cut, and commits go on while it copies pages into the data file. Open
// replays the log's committed
// transactions (ignoring a torn tail) and validates the tree. A write sees the
// effects of commits that are not yet durable.
//
// A failed write (an I/O error, a full disk) throws and stops the database:
// every later call throws the same error, naming it; close() then releases
// the files without writing, and reopening recovers every acknowledged commit.
// A failure before the transaction changed anything (say, a read error on the
// way down the tree) throws without stopping the database.
//
// Thread-safety: every call may be made from any thread, concurrently (the
// model is in docs/engine.md, "Threads"). The engine runs on a thread of the
// database's own, with its own io_uring ring; a call that must wait (a write,
// a page not cached, a checkpoint) runs there and the calling coroutine
// resumes on its own thread. Cached point reads, forward scans and forward
// cursor steps are served on the calling thread without a lock. Destroying a
// Database waits for the calls in flight (a call that starts meanwhile throws
// kClosed). REQUIRES: a task a call returned is started before the Database
// is destroyed. A Cursor is used by one task at a time, on any thread.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/cursor.h>
#include <corobtree/error.h>
#include <corobtree/export.h>
#include <corobtree/in_flight.h>
#include <corobtree/options.h>
#include <corobtree/pinned_value.h>
#include <corobtree/stats.h>
#include <corobtree/task.h>
#include <corobtree/write_batch.h>

namespace corobtree {

class DatabaseHost;

class COROBTREE_EXPORT Database {
 public:
  // Opens the database at `path`, creating it if allowed, and recovers it
  // from its log.
  static Task<std::unique_ptr<Database>> open(std::string path, Options options = {});

  // Without close() first, nothing is written here: the log keeps every
  // commit and the next open replays it.
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // The string_view arguments must stay valid until the returned task finishes.
  Task<std::optional<std::string>> get(std::string_view key);
  // co_await db->get(key, value): whether `key` exists; if it does, `value`
  // holds its value (assigned: its capacity is reused). A hit in the cached
  // pages completes without suspending and allocates nothing once `value`
  // has the capacity. Await the result at once, once; `key` and `value`
  // must stay valid until then, and `value` is unspecified if the key is
  // absent or the call throws.
  class GetInto;
  GetInto get(std::string_view key, std::string& value);
  // The lock-free part of get(key, value), on the calling thread and without
  // waiting: true when it could answer (`found`, and `value` as above);
  // false when the answer needs the engine (a page that is not cached, an
  // overflow value, a write in the way), after which get() answers.
  // RocksDB's ReadOptions::read_tier = kBlockCacheTier is the same idea.
  bool try_get_cached(std::string_view key, std::string& value, bool& found);
  // get(key, value) without the copy: on a cached hit `value` pins the
  // value's bytes in the pool (value.pinned(); no allocation, no copy, valid
  // while the guard lives, whatever writers do meanwhile); otherwise it
  // holds a copy (include/corobtree/pinned_value.h). A miss resets it.
  // try_get_pinned is the lock-free part (true: answered; false: the engine
  // must, `value` reset); get_pinned falls back to the engine's get.
  // `key` must stay valid until the task finishes.
  bool try_get_pinned(std::string_view key, PinnedValue& value, bool& found);
  Task<bool> get_pinned(std::string_view key, PinnedValue& value);
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
  // The lock-free part of scan(), on the calling thread and without waiting:
  // true when the cached pages answered (`out` holds the pairs, its capacity
  // reused); false when the answer needs the engine (`out` unspecified).
  bool try_scan_cached(const ScanOptions& options, std::size_t limit,
                       std::vector<std::pair<std::string, std::string>>& out);

  // Every invariant of the tree and the free list, each page's checksum, and
  // both meta pages (a damaged copy is a problem even while the other serves).
  Task<ValidationReport> validate();
  // Copies the logged pages into the data file, syncs it, writes the next
  // meta page, syncs again and empties the log.
  Task<void> checkpoint();
  // Gives space back: checkpoints, then rewrites the tree, packed, into a new
  // file NAME.compacting (leaves as full as bulk_load makes them, no free
  // pages), syncs it and renames it over NAME, so the file shrinks to what
  // the live keys need. Atomic: a crash at any point leaves either the old
  // file or the packed one, with every commit. Writers wait for it (it holds
  // the writer mutex throughout); reads and cursors go on meanwhile and stay
  // correct, the swap itself waiting for the reads in flight. Needs free disk
  // space for the copy. A failure before the rename leaves the database as
  // it was (the copy is deleted); one after it stops the database like a
  // failed write. Throws kClosed after close().
  Task<void> compact();
  // checkpoint() if anything was written, then release the files and delete
  // the log. Later calls throw kClosed. After a failed write it only releases.
  // A backup in progress finishes first.
  Task<void> close();

  // Online backup: writes a consistent copy of the database to the new file
  // `dest` while other tasks keep reading and committing. The copy holds
  // every commit acknowledged before the call, and possibly some made during
  // it: it is the database as of one commit between the call and its return.
  // It is a complete database of its own (both meta pages, no log, its own
  // database id, so a log left from the source never replays into it); open
  // it like any other.
  //
  // How: a checkpoint first, then the data file's pages are copied (and
  // verified) in bounded chunks while further checkpoints wait: commits go
  // on into the log (which grows meanwhile), a checkpoint that falls due is
  // deferred to a commit after the backup, and checkpoint(), close() and
  // bulk_load() wait for the backup to end. The copy is built as
  // `dest.backup-tmp`, fsynced, linked to `dest` and the directory fsynced.
  //
  // Errors: kInvalidArgument if `dest` is empty or exists (the database's own
  // files included), or if `dest-wal` or `dest-wal2` exists; kLocked if another backup is
  // building the same file; kCorruption if a page of the source fails its
  // checks; the I/O error (kNoSpace, kIoError, ...) of a failed read, write or
  // sync. A failure removes the partial copy and leaves the database running
  // (only a failure of the first checkpoint stops it, like any checkpoint's).
  // Backups of one database run one after the other.
  // REQUIRES: the Database outlives the returned task.
  Task<void> backup(std::string dest);

  // Asks the engine thread (the caller blocks briefly). Reads served on the
  // calling thread without a lock are not counted in pool.hits.
  DatabaseStats stats() const;
  std::uint64_t count() const noexcept;
  // Largest key accepted (992 bytes for 4 KiB pages).
  std::uint32_t max_key_size() const noexcept;
  const std::string& path() const noexcept;

 private:
  explicit Database(std::unique_ptr<DatabaseHost> host) noexcept;
  // get(key, value)'s lock-free part, in one call: counts the call in `call`
  // (Error(kClosed) once ~Database started), then answers a cached hit (true:
  // `found`, `value`; the count has ended) or leaves the count in `call` for
  // get_from_engine (false).
  bool enter_get_cached(detail::InFlight& call, std::string_view key, std::string& value,
                        bool& found);
  Task<bool> get_from_engine(detail::InFlight call, std::string_view key, std::string& value);
  std::unique_ptr<DatabaseHost> host_;
};

// What Database::get(key, value) returns (see there).
class [[nodiscard]] Database::GetInto {
 public:
  // The call counts as in flight from here (see corobtree/in_flight.h).
  bool await_ready() { return db_->enter_get_cached(call_, key_, *value_, found_); }
  bool await_suspend(std::coroutine_handle<> awaiting) {
    task_ = db_->get_from_engine(std::move(call_), key_, *value_);
    engine_.emplace(std::move(task_).operator co_await());
    return engine_->await_suspend(awaiting);
  }
  bool await_resume() { return engine_ ? engine_->await_resume() : found_; }

 private:
  friend class Database;
  GetInto(Database* db, std::string_view key, std::string* value) noexcept
      : db_(db), key_(key), value_(value) {}

  Database* db_;
  std::string_view key_;
  std::string* value_;
  bool found_ = false;
  detail::InFlight call_;
  Task<bool> task_;
  std::optional<Task<bool>::Awaiter> engine_;
};

inline Database::GetInto Database::get(std::string_view key, std::string& value) {
  return GetInto(this, key, &value);
}

}  // namespace corobtree
