// The SQLite peer: `CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID`
// (a B-tree keyed by the blob, like ours), WAL mode, a 1 GiB page cache per
// connection, prepared statements made once and reused. Connections are
// opened with SQLITE_OPEN_NOMUTEX: each one is used by a single thread. The
// store loads and counts through its own connection and reads and writes
// batches through a session (a second connection), as every PeerSession does.
//
// kCached: synchronous=NORMAL, so commits append to the WAL without a sync
// (a checkpoint, every 1000 WAL pages, still syncs). kDurable:
// synchronous=FULL, every commit syncs the WAL. Each PeerWriter opens its own
// connection with a 60 s busy timeout (busy_wait below); SQLite admits one
// writer at a time and the others sleep in the busy handler and retry.
#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "perf/bench_common.h"
#include "perf/peer_store.h"

namespace corobtree::bench {
namespace {

constexpr int kBusyTimeoutMs = 60'000;

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

[[noreturn]] void fail(sqlite3* db, const char* what) {
  throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db));
}

DbPtr open_db(const std::string& path, const char* synchronous) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    throw std::runtime_error(std::string("sqlite open: ") +
                             (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  const std::string pragmas = std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") +
                              synchronous + "; PRAGMA cache_size=-1048576;";
  if (sqlite3_exec(db.get(), pragmas.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    fail(db.get(), "pragmas");
  }
  if (sqlite3_busy_timeout(db.get(), kBusyTimeoutMs) != SQLITE_OK) fail(db.get(), "busy_timeout");
  return db;
}

StmtPtr prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
    fail(db, sql);
  }
  return StmtPtr(raw);
}

// Resets a statement when the step (or the check after it) is done.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit() { sqlite3_reset(stmt_); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

void bind_blob(sqlite3* db, sqlite3_stmt* stmt, int index, std::string_view blob) {
  if (sqlite3_bind_blob(stmt, index, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC) !=
      SQLITE_OK) {
    fail(db, "bind");
  }
}

std::string_view column_blob(sqlite3_stmt* stmt, int column) {
  const void* p = sqlite3_column_blob(stmt, column);
  return {static_cast<const char*>(p),
          static_cast<std::size_t>(sqlite3_column_bytes(stmt, column))};
}

// Runs a statement that returns no rows.
void run(sqlite3* db, sqlite3_stmt* stmt, const char* what) {
  ResetOnExit reset(stmt);
  if (sqlite3_step(stmt) != SQLITE_DONE) fail(db, what);
}

void insert(sqlite3* db, sqlite3_stmt* stmt, std::uint64_t k) {
  const Key key(k);
  const std::string value = make_value(k);
  bind_blob(db, stmt, 1, key.view());
  bind_blob(db, stmt, 2, value);
  run(db, stmt, "insert");
}

constexpr const char* kInsertSql = "INSERT INTO kv(k, v) VALUES(?1, ?2)";

// SQLite's busy_timeout algorithm (sqliteDefaultBusyCallback: the same sleeps
// and the same total), except that it gives up once the run's stop flag is
// set, so writers still queued when a run ends leave at once.
int busy_wait(void* stop_flag, int count) {
  static constexpr int kDelays[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
  static constexpr int kTotals[] = {0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228};
  constexpr int kSteps = 12;
  if (static_cast<const std::atomic<bool>*>(stop_flag)->load(std::memory_order_relaxed)) return 0;
  int delay = kDelays[kSteps - 1];
  int prior = kTotals[kSteps - 1] + delay * (count - (kSteps - 1));
  if (count < kSteps) {
    delay = kDelays[count];
    prior = kTotals[count];
  }
  if (prior + delay > kBusyTimeoutMs) {
    delay = kBusyTimeoutMs - prior;
    if (delay <= 0) return 0;
  }
  sqlite3_sleep(delay);
  return 1;
}

class SqliteWriter final : public PeerWriter {
 public:
  SqliteWriter(const std::string& path, const std::atomic<bool>& stop)
      : stop_(stop), db_(open_db(path, "FULL")), insert_(prepare(db_.get(), kInsertSql)) {
    if (sqlite3_busy_handler(db_.get(), busy_wait, const_cast<std::atomic<bool>*>(&stop_)) !=
        SQLITE_OK) {
      fail(db_.get(), "busy_handler");
    }
  }

  // An autocommit INSERT: one transaction, synced before step returns.
  bool commit(std::uint64_t k) override {
    sqlite3_stmt* stmt = insert_.get();
    ResetOnExit reset(stmt);
    const Key key(k);
    const std::string value = make_value(k);
    bind_blob(db_.get(), stmt, 1, key.view());
    bind_blob(db_.get(), stmt, 2, value);
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return true;
    if (rc == SQLITE_BUSY && stop_.load()) return false;
    fail(db_.get(), "commit");
  }

 private:
  const std::atomic<bool>& stop_;
  DbPtr db_;
  StmtPtr insert_;
};

// Reads every row once, so the connection's page cache holds them all.
void read_all(sqlite3* db) {
  StmtPtr all = prepare(db, "SELECT sum(length(k) + length(v)) FROM kv");
  if (sqlite3_step(all.get()) != SQLITE_ROW) fail(db, "warm");
  benchmark::DoNotOptimize(sqlite3_column_int64(all.get(), 0));
}

// One thread's connection, with its own page cache and prepared statements.
// Its batches take the write lock up front (BEGIN IMMEDIATE), so a session
// that waits for another's batch waits in the busy handler rather than
// failing with SQLITE_BUSY on a stale snapshot.
class SqliteSession final : public PeerSession {
 public:
  SqliteSession(const std::string& path, const char* synchronous)
      : db_(open_db(path, synchronous)),
        begin_(prepare(db_.get(), "BEGIN IMMEDIATE")),
        commit_(prepare(db_.get(), "COMMIT")),
        insert_(prepare(db_.get(), kInsertSql)),
        get_(prepare(db_.get(), "SELECT v FROM kv WHERE k = ?1")),
        scan_(prepare(db_.get(), "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2")) {}

  void put_batch(std::span<const std::uint64_t> keys) override {
    run(db_.get(), begin_.get(), "begin");
    for (const std::uint64_t k : keys) insert(db_.get(), insert_.get(), k);
    run(db_.get(), commit_.get(), "commit");
  }

  void warm() override { read_all(db_.get()); }

  bool get(std::uint64_t k) override {
    sqlite3_stmt* stmt = get_.get();
    ResetOnExit reset(stmt);
    const Key key(k);
    bind_blob(db_.get(), stmt, 1, key.view());
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return false;
    if (rc != SQLITE_ROW) fail(db_.get(), "get");
    return value_matches(column_blob(stmt, 0), k);
  }

  bool scan(std::uint64_t start, std::size_t n) override {
    sqlite3_stmt* stmt = scan_.get();
    ResetOnExit reset(stmt);
    const Key key(start);
    bind_blob(db_.get(), stmt, 1, key.view());
    if (sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(n)) != SQLITE_OK) {
      fail(db_.get(), "bind");
    }
    std::size_t seen = 0;
    bool last_ok = false;
    while (seen < n) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) fail(db_.get(), "scan");
      benchmark::DoNotOptimize(sqlite3_column_blob(stmt, 1));
      if (++seen == n) last_ok = column_blob(stmt, 0) == Key(start + n - 1).view();
    }
    return seen == n && last_ok;
  }

 private:
  DbPtr db_;
  StmtPtr begin_, commit_, insert_, get_, scan_;  // finalized before db_ closes
};

class SqliteStore final : public PeerStore {
 public:
  SqliteStore(const std::string& path, PeerMode mode)
      : files_(path),
        synchronous_(mode == PeerMode::kCached ? "NORMAL" : "FULL"),
        db_(open_db(path, synchronous_)) {
    if (sqlite3_exec(db_.get(), "CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID",
                     nullptr, nullptr, nullptr) != SQLITE_OK) {
      fail(db_.get(), "create table");
    }
    begin_ = prepare(db_.get(), "BEGIN");
    commit_ = prepare(db_.get(), "COMMIT");
    insert_ = prepare(db_.get(), kInsertSql);
    main_ = std::make_unique<SqliteSession>(path, synchronous_);
  }

  void put_batch(std::span<const std::uint64_t> keys) override { main_->put_batch(keys); }

  // One transaction of sorted inserts (SQLite packs appended pages), then a
  // checkpoint that moves it all into the database file and empties the WAL.
  void bulk_load(std::uint64_t n) override {
    run(db_.get(), begin_.get(), "begin");
    for (std::uint64_t k = 0; k < n; ++k) insert(db_.get(), insert_.get(), k);
    run(db_.get(), commit_.get(), "commit");
    if (sqlite3_exec(db_.get(), "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
      fail(db_.get(), "checkpoint");
    }
  }

  // The reads go through the store's session, whose cache this fills.
  void warm() override { main_->warm(); }
  bool get(std::uint64_t k) override { return main_->get(k); }
  bool scan(std::uint64_t start, std::size_t n) override { return main_->scan(start, n); }

  std::uint64_t count() override {
    StmtPtr stmt = prepare(db_.get(), "SELECT count(*) FROM kv");
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) fail(db_.get(), "count");
    return static_cast<std::uint64_t>(sqlite3_column_int64(stmt.get(), 0));
  }

  std::unique_ptr<PeerWriter> writer(const std::atomic<bool>& stop) override {
    return std::make_unique<SqliteWriter>(files_.path(), stop);
  }

  std::unique_ptr<PeerSession> session() override {
    return std::make_unique<SqliteSession>(files_.path(), synchronous_);
  }

 private:
  PeerFiles files_;  // first: removed after the connections close
  const char* synchronous_;
  DbPtr db_;
  StmtPtr begin_, commit_, insert_;      // finalized before db_ closes
  std::unique_ptr<SqliteSession> main_;  // the store's reads and batches
};

}  // namespace

std::unique_ptr<PeerStore> open_sqlite(const std::string& path, PeerMode mode) {
  return std::make_unique<SqliteStore>(path, mode);
}

}  // namespace corobtree::bench
