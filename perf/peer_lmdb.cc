// The LMDB peer: one file (MDB_NOSUBDIR) and its -lock file, the unnamed
// database, an 8 GiB map (sparse; the largest run needs well under 1 GiB).
//
// kCached opens with MDB_NOSYNC: commits write their pages to the page cache
// but never sync. kDurable keeps LMDB's default: every commit syncs the data
// pages and then the meta page. LMDB serializes writers with its own mutex,
// so concurrent PeerWriters queue on it.
//
// Reads use one read-only transaction per session (the store has its own)
// that is renewed for each get or scan and reset after it (LMDB's cheap
// per-operation snapshot), and one cursor renewed with it. Values are read in
// place from the map. MDB_NOTLS ties a reader slot to its transaction rather
// than to the thread, so a session may be made on one thread and used on
// another.
#include <benchmark/benchmark.h>
#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "perf/bench_common.h"
#include "perf/peer_store.h"

namespace corobtree::bench {
namespace {

constexpr std::size_t kMapSize = std::size_t{8} << 30;

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) {
    throw std::runtime_error(std::string("lmdb ") + what + ": " + mdb_strerror(rc));
  }
}

MDB_val as_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

std::string_view as_view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

struct EnvCloser {
  void operator()(MDB_env* env) const { mdb_env_close(env); }
};
struct TxnAborter {
  void operator()(MDB_txn* txn) const { mdb_txn_abort(txn); }
};
struct CursorCloser {
  void operator()(MDB_cursor* cursor) const { mdb_cursor_close(cursor); }
};
using EnvPtr = std::unique_ptr<MDB_env, EnvCloser>;
using TxnPtr = std::unique_ptr<MDB_txn, TxnAborter>;
using CursorPtr = std::unique_ptr<MDB_cursor, CursorCloser>;

TxnPtr begin_txn(MDB_env* env, unsigned flags) {
  MDB_txn* txn = nullptr;
  check(mdb_txn_begin(env, nullptr, flags, &txn), "mdb_txn_begin");
  return TxnPtr(txn);
}

void commit_txn(TxnPtr txn) { check(mdb_txn_commit(txn.release()), "mdb_txn_commit"); }

void put(MDB_txn* txn, MDB_dbi dbi, std::uint64_t k, unsigned flags) {
  const Key key(k);
  const std::string value = make_value(k);
  MDB_val kv = as_val(key.view());
  MDB_val vv = as_val(value);
  check(mdb_put(txn, dbi, &kv, &vv, flags), "mdb_put");
}

// Renews a reset read-only transaction for one operation, resets it after.
class ReadScope {
 public:
  explicit ReadScope(MDB_txn* txn) : txn_(txn) { check(mdb_txn_renew(txn_), "mdb_txn_renew"); }
  ~ReadScope() { mdb_txn_reset(txn_); }
  ReadScope(const ReadScope&) = delete;
  ReadScope& operator=(const ReadScope&) = delete;

 private:
  MDB_txn* txn_;
};

class LmdbWriter final : public PeerWriter {
 public:
  LmdbWriter(MDB_env* env, MDB_dbi dbi) : env_(env), dbi_(dbi) {}
  bool commit(std::uint64_t k) override {
    TxnPtr txn = begin_txn(env_, 0);
    put(txn.get(), dbi_, k, 0);
    commit_txn(std::move(txn));
    return true;
  }

 private:
  MDB_env* env_;
  MDB_dbi dbi_;
};

// One thread's reads (a read-only transaction renewed for each get or scan,
// and a cursor renewed with it) and batch writes.
class LmdbSession final : public PeerSession {
 public:
  LmdbSession(MDB_env* env, MDB_dbi dbi) : env_(env), dbi_(dbi) {
    read_txn_ = begin_txn(env, MDB_RDONLY);
    MDB_cursor* cursor = nullptr;
    check(mdb_cursor_open(read_txn_.get(), dbi_, &cursor), "mdb_cursor_open");
    cursor_.reset(cursor);
    mdb_txn_reset(read_txn_.get());
  }

  void put_batch(std::span<const std::uint64_t> keys) override {
    TxnPtr txn = begin_txn(env_, 0);
    for (const std::uint64_t k : keys) put(txn.get(), dbi_, k, 0);
    commit_txn(std::move(txn));
  }

  void warm() override {
    ReadScope scope(read_txn_.get());
    check(mdb_cursor_renew(read_txn_.get(), cursor_.get()), "mdb_cursor_renew");
    MDB_val kv;
    MDB_val vv;
    std::uint64_t sum = 0;
    int rc = mdb_cursor_get(cursor_.get(), &kv, &vv, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
      sum += static_cast<unsigned char>(as_view(vv).back());
      rc = mdb_cursor_get(cursor_.get(), &kv, &vv, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get");
    benchmark::DoNotOptimize(sum);
  }

  bool get(std::uint64_t k) override {
    ReadScope scope(read_txn_.get());
    const Key key(k);
    MDB_val kv = as_val(key.view());
    MDB_val vv;
    const int rc = mdb_get(read_txn_.get(), dbi_, &kv, &vv);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "mdb_get");
    return value_matches(as_view(vv), k);
  }

  bool scan(std::uint64_t start, std::size_t n) override {
    ReadScope scope(read_txn_.get());
    check(mdb_cursor_renew(read_txn_.get(), cursor_.get()), "mdb_cursor_renew");
    const Key key(start);
    MDB_val kv = as_val(key.view());
    MDB_val vv;
    int rc = mdb_cursor_get(cursor_.get(), &kv, &vv, MDB_SET_RANGE);
    std::size_t seen = 0;
    while (rc == MDB_SUCCESS) {
      benchmark::DoNotOptimize(vv.mv_data);
      if (++seen == n) break;
      rc = mdb_cursor_get(cursor_.get(), &kv, &vv, MDB_NEXT);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get");
    return seen == n && as_view(kv) == Key(start + n - 1).view();
  }

 private:
  MDB_env* env_;
  MDB_dbi dbi_;
  TxnPtr read_txn_;   // reset between operations
  CursorPtr cursor_;  // of read_txn_; closed before it (members die in reverse)
};

class LmdbStore final : public PeerStore {
 public:
  LmdbStore(const std::string& path, PeerMode mode) : files_(path) {
    MDB_env* env = nullptr;
    check(mdb_env_create(&env), "mdb_env_create");
    env_.reset(env);
    check(mdb_env_set_mapsize(env, kMapSize), "mdb_env_set_mapsize");
    const unsigned flags = MDB_NOSUBDIR | MDB_NOTLS | (mode == PeerMode::kCached ? MDB_NOSYNC : 0u);
    check(mdb_env_open(env, path.c_str(), flags, 0644), "mdb_env_open");
    TxnPtr txn = begin_txn(env, 0);
    check(mdb_dbi_open(txn.get(), nullptr, 0, &dbi_), "mdb_dbi_open");
    commit_txn(std::move(txn));
    main_ = std::make_unique<LmdbSession>(env, dbi_);
  }

  void put_batch(std::span<const std::uint64_t> keys) override { main_->put_batch(keys); }

  // MDB_APPEND: sorted input fills each page completely, LMDB's bulk load.
  void bulk_load(std::uint64_t n) override {
    TxnPtr txn = begin_txn(env_.get(), 0);
    for (std::uint64_t k = 0; k < n; ++k) put(txn.get(), dbi_, k, MDB_APPEND);
    commit_txn(std::move(txn));
  }

  void warm() override { main_->warm(); }
  bool get(std::uint64_t k) override { return main_->get(k); }
  bool scan(std::uint64_t start, std::size_t n) override { return main_->scan(start, n); }

  std::uint64_t count() override {
    TxnPtr txn = begin_txn(env_.get(), MDB_RDONLY);
    MDB_stat st;
    check(mdb_stat(txn.get(), dbi_, &st), "mdb_stat");
    return st.ms_entries;
  }

  std::unique_ptr<PeerWriter> writer(const std::atomic<bool>& /*stop*/) override {
    return std::make_unique<LmdbWriter>(env_.get(), dbi_);
  }

  std::unique_ptr<PeerSession> session() override {
    return std::make_unique<LmdbSession>(env_.get(), dbi_);
  }

 private:
  PeerFiles files_;  // first: removed after the handles below are closed
  EnvPtr env_;
  MDB_dbi dbi_ = 0;
  std::unique_ptr<LmdbSession> main_;  // the store's own reads; closed before env_
};

}  // namespace

std::unique_ptr<PeerStore> open_lmdb(const std::string& path, PeerMode mode) {
  return std::make_unique<LmdbStore>(path, mode);
}

}  // namespace corobtree::bench
