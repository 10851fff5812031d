// The LevelDB peer: a database directory with default options (Snappy
// compression, as the RocksDB peer's defaults have) except a 1 GiB LRU block
// cache, the RocksDB peer's size, so every data block read stays cached.
//
// kCached writes with WriteOptions::sync = false (the log is appended, never
// synced; memtables still compact to table files in the background, as LevelDB
// always does). kDurable writes with sync = true: each write returns after its
// log record is synced. Concurrent writers share LevelDB's write group, which
// syncs the log once for the records queued behind its leader.
//
// Gets copy the value into a reused string (LevelDB has no pinned read).
// LevelDB iterators cannot be refreshed, so each scan opens a new iterator,
// which reads the current state.
#include <benchmark/benchmark.h>
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/slice.h>
#include <leveldb/write_batch.h>

#include <algorithm>
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

constexpr std::size_t kBlockCacheBytes = std::size_t{1} << 30;
constexpr std::uint64_t kLoadBatch = 10'000;

void check(const leveldb::Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(std::string("leveldb ") + what + ": " + s.ToString());
}

leveldb::Slice as_slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view as_view(const leveldb::Slice& s) { return {s.data(), s.size()}; }

class LeveldbWriter final : public PeerWriter {
 public:
  explicit LeveldbWriter(leveldb::DB* db) : db_(db) { options_.sync = true; }
  bool commit(std::uint64_t k) override {
    const Key key(k);
    const std::string value = make_value(k);
    check(db_->Put(options_, as_slice(key.view()), value), "put");
    return true;
  }

 private:
  leveldb::DB* db_;
  leveldb::WriteOptions options_;
};

// One thread's reads (its own value buffer) and batch writes.
class LeveldbSession final : public PeerSession {
 public:
  LeveldbSession(leveldb::DB* db, PeerMode mode) : db_(db) {
    write_options_.sync = mode == PeerMode::kDurable;
  }

  void put_batch(std::span<const std::uint64_t> keys) override {
    leveldb::WriteBatch batch;
    for (const std::uint64_t k : keys) {
      const Key key(k);
      const std::string value = make_value(k);
      batch.Put(as_slice(key.view()), value);
    }
    check(db_->Write(write_options_, &batch), "write");
  }

  void warm() override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    std::uint64_t sum = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      sum += static_cast<unsigned char>(it->value()[it->value().size() - 1]);
    }
    check(it->status(), "warm");
    benchmark::DoNotOptimize(sum);
  }

  bool get(std::uint64_t k) override {
    const Key key(k);
    const leveldb::Status s = db_->Get(read_options_, as_slice(key.view()), &value_);
    if (s.IsNotFound()) return false;
    check(s, "get");
    return value_matches(value_, k);
  }

  bool scan(std::uint64_t start, std::size_t n) override {
    const std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options_));
    const Key key(start);
    it->Seek(as_slice(key.view()));
    std::size_t seen = 0;
    while (it->Valid()) {
      benchmark::DoNotOptimize(it->value().data());
      if (++seen == n) break;
      it->Next();
    }
    check(it->status(), "scan");
    return seen == n && as_view(it->key()) == Key(start + n - 1).view();
  }

 private:
  leveldb::DB* db_;
  leveldb::ReadOptions read_options_;
  leveldb::WriteOptions write_options_;
  std::string value_;
};

class LeveldbStore final : public PeerStore {
 public:
  LeveldbStore(const std::string& path, PeerMode mode) : files_(path), mode_(mode) {
    cache_.reset(leveldb::NewLRUCache(kBlockCacheBytes));
    leveldb::Options options;
    options.create_if_missing = true;
    options.error_if_exists = true;
    options.block_cache = cache_.get();
    leveldb::DB* raw = nullptr;
    check(leveldb::DB::Open(options, path, &raw), "open");
    db_.reset(raw);
    main_ = std::make_unique<LeveldbSession>(raw, mode);
  }

  ~LeveldbStore() override {
    main_.reset();
    db_.reset();  // before the cache it uses
  }
  LeveldbStore(const LeveldbStore&) = delete;
  LeveldbStore& operator=(const LeveldbStore&) = delete;

  void put_batch(std::span<const std::uint64_t> keys) override { main_->put_batch(keys); }

  // Sorted batches, then a full compaction: the data ends up in sorted table
  // files, LevelDB's steady read state. (LevelDB cannot skip its log.)
  void bulk_load(std::uint64_t n) override {
    const leveldb::WriteOptions options;
    for (std::uint64_t first = 0; first < n; first += kLoadBatch) {
      leveldb::WriteBatch batch;
      for (std::uint64_t k = first; k < std::min(n, first + kLoadBatch); ++k) {
        const Key key(k);
        const std::string value = make_value(k);
        batch.Put(as_slice(key.view()), value);
      }
      check(db_->Write(options, &batch), "write");
    }
    db_->CompactRange(nullptr, nullptr);
  }

  void warm() override { main_->warm(); }
  bool get(std::uint64_t k) override { return main_->get(k); }
  bool scan(std::uint64_t start, std::size_t n) override { return main_->scan(start, n); }

  std::uint64_t count() override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    std::uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    check(it->status(), "count");
    return n;
  }

  std::unique_ptr<PeerWriter> writer(const std::atomic<bool>& /*stop*/) override {
    return std::make_unique<LeveldbWriter>(db_.get());
  }

  std::unique_ptr<PeerSession> session() override {
    return std::make_unique<LeveldbSession>(db_.get(), mode_);
  }

 private:
  PeerFiles files_;  // first: removed after the database closes
  PeerMode mode_;
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<leveldb::DB> db_;
  std::unique_ptr<LeveldbSession> main_;  // the store's own calls; deleted before db_
};

}  // namespace

std::unique_ptr<PeerStore> open_leveldb(const std::string& path, PeerMode mode) {
  return std::make_unique<LeveldbStore>(path, mode);
}

}  // namespace corobtree::bench
