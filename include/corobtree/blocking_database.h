// BlockingDatabase: the Database API for code that is not a coroutine. Each
// call runs the async operation to completion with sync_wait on the calling
// thread (which sleeps while the database's engine thread does the work).
//
//   auto db = corobtree::BlockingDatabase::open("my.db");
//   db.put("k", "v");
//   std::optional<std::string> v = db.get("k");
//
// The destructor closes the database (checkpointing it) if close() was not
// called; errors there are swallowed, so call close() to see them.
// Thread-safety: like Database, any thread, concurrently: one BlockingDatabase
// may be shared by reference between std::threads. Not for use inside a
// coroutine (sync_wait there throws kInvalidArgument).
//
//   #include <corobtree/blocking_database.h>
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/stats.h>
#include <corobtree/sync_wait.h>

namespace corobtree {

class BlockingDatabase {
 public:
  static BlockingDatabase open(std::string path, Options options = {}) {
    return BlockingDatabase(sync_wait(Database::open(std::move(path), options)));
  }

  BlockingDatabase(BlockingDatabase&&) noexcept = default;
  BlockingDatabase& operator=(BlockingDatabase&& o) noexcept {
    if (this != &o) {
      close_quietly();
      db_ = std::move(o.db_);
    }
    return *this;
  }
  ~BlockingDatabase() { close_quietly(); }

  // A hit in the cached pages is answered on this thread without a task.
  std::optional<std::string> get(std::string_view key) {
    std::string value;
    bool found = false;
    if (db_->try_get_cached(key, value, found)) {
      return found ? std::optional<std::string>(std::move(value)) : std::nullopt;
    }
    return sync_wait(db_->get(key));
  }
  // Whether `key` exists; if it does, `value` holds its value (assigned: its
  // capacity is reused, so a cached hit allocates nothing once it suffices).
  bool get(std::string_view key, std::string& value) {
    bool found = false;
    if (db_->try_get_cached(key, value, found)) return found;
    return sync_wait(db_->get(key, value));
  }
  // Database::get_pinned: a cached hit pins the value on this thread (see
  // corobtree/pinned_value.h); writes through this object while the guard
  // lives are fine.
  bool get_pinned(std::string_view key, PinnedValue& value) {
    bool found = false;
    if (db_->try_get_pinned(key, value, found)) return found;
    return sync_wait(db_->get_pinned(key, value));
  }
  void put(std::string_view key, std::string_view value) { sync_wait(db_->put(key, value)); }
  bool erase(std::string_view key) { return sync_wait(db_->erase(key)); }
  void write(const WriteBatch& batch) { sync_wait(db_->write(batch)); }
  void bulk_load(const std::vector<std::pair<std::string, std::string>>& sorted) {
    sync_wait(db_->bulk_load(sorted));
  }
  std::vector<std::pair<std::string, std::string>> scan(ScanOptions options = {},
                                                        std::size_t limit = SIZE_MAX) {
    std::vector<std::pair<std::string, std::string>> out;
    scan(std::move(options), limit, out);
    return out;
  }
  // The same scan into `out`, which ends up holding exactly the entries found.
  // The pairs already in `out` are overwritten in place, so a scan of a cached
  // range reuses their strings' capacity: called again with the same vector,
  // it allocates nothing once the vector has held as many pairs that long.
  void scan(ScanOptions options, std::size_t limit,
            std::vector<std::pair<std::string, std::string>>& out) {
    if (db_->try_scan_cached(options, limit, out)) return;
    out = sync_wait(db_->scan(std::move(options), limit));
  }
  ValidationReport validate() { return sync_wait(db_->validate()); }
  void checkpoint() { sync_wait(db_->checkpoint()); }
  // Database::backup: a consistent copy of the database in the new file `dest`.
  void backup(const std::string& dest) { sync_wait(db_->backup(dest)); }
  // Database::compact(): rewrites the file packed and swaps it in.
  void compact() { sync_wait(db_->compact()); }
  void close() {
    if (db_) sync_wait(db_->close());
  }

  DatabaseStats stats() const { return db_->stats(); }
  std::uint64_t count() const noexcept { return db_->count(); }
  std::uint32_t max_key_size() const noexcept { return db_->max_key_size(); }
  const std::string& path() const noexcept { return db_->path(); }
  // The async database underneath (e.g. for cursors inside a coroutine).
  Database& async() noexcept { return *db_; }

 private:
  explicit BlockingDatabase(std::unique_ptr<Database> db) : db_(std::move(db)) {}
  void close_quietly() noexcept {
    try {
      close();
    } catch (...) {
    }
  }

  std::unique_ptr<Database> db_;
};

}  // namespace corobtree
