// The RocksDB peer: a database directory with default options except a 1 GiB
// LRU block cache, so every data block read stays cached.
//
// kCached writes with WriteOptions::sync = false (the WAL is appended, never
// synced; memtables still flush to SST files in the background, as RocksDB
// always does). kDurable writes with sync = true: each write returns after its
// WAL record is synced. Concurrent writers share RocksDB's write group, which
// syncs the WAL once for all the records queued behind its leader.
//
// Gets read into a PinnableSlice (no copy out of the block cache). Scans reuse
// one iterator per session (the store has its own) and Refresh() it before
// each seek, so each scan reads the
// current state (as a fresh iterator would) without rebuilding the iterator.
#include <benchmark/benchmark.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

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

void check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(std::string("rocksdb ") + what + ": " + s.ToString());
}

rocksdb::Slice as_slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view as_view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

class RocksdbWriter final : public PeerWriter {
 public:
  explicit RocksdbWriter(rocksdb::DB* db) : db_(db) { options_.sync = true; }
  bool commit(std::uint64_t k) override {
    const Key key(k);
    const std::string value = make_value(k);
    check(db_->Put(options_, as_slice(key.view()), value), "put");
    return true;
  }

 private:
  rocksdb::DB* db_;
  rocksdb::WriteOptions options_;
};

// One thread's reads (its own PinnableSlice and iterator) and batch writes.
class RocksdbSession final : public PeerSession {
 public:
  RocksdbSession(rocksdb::DB* db, PeerMode mode) : db_(db) {
    write_options_.sync = mode == PeerMode::kDurable;
  }

  void put_batch(std::span<const std::uint64_t> keys) override {
    rocksdb::WriteBatch batch;
    for (const std::uint64_t k : keys) {
      const Key key(k);
      const std::string value = make_value(k);
      check(batch.Put(as_slice(key.view()), value), "batch put");
    }
    check(db_->Write(write_options_, &batch), "write");
  }

  void warm() override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options_));
    std::uint64_t sum = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      sum += static_cast<unsigned char>(it->value()[it->value().size() - 1]);
    }
    check(it->status(), "warm");
    benchmark::DoNotOptimize(sum);
  }

  bool get(std::uint64_t k) override {
    const Key key(k);
    value_.Reset();
    const rocksdb::Status s =
        db_->Get(read_options_, db_->DefaultColumnFamily(), as_slice(key.view()), &value_);
    if (s.IsNotFound()) return false;
    check(s, "get");
    return value_matches(as_view(value_), k);
  }

  bool scan(std::uint64_t start, std::size_t n) override {
    if (!iterator_ || !iterator_->Refresh().ok()) {
      iterator_.reset(db_->NewIterator(read_options_));
    }
    rocksdb::Iterator& it = *iterator_;
    const Key key(start);
    it.Seek(as_slice(key.view()));
    std::size_t seen = 0;
    while (it.Valid()) {
      benchmark::DoNotOptimize(it.value().data());
      if (++seen == n) break;
      it.Next();
    }
    check(it.status(), "scan");
    return seen == n && as_view(it.key()) == Key(start + n - 1).view();
  }

  // Drops the iterator (it pins the SST files a compaction replaces).
  void reset_iterator() { iterator_.reset(); }

 private:
  rocksdb::DB* db_;
  std::unique_ptr<rocksdb::Iterator> iterator_;
  rocksdb::ReadOptions read_options_;
  rocksdb::WriteOptions write_options_;
  rocksdb::PinnableSlice value_;
};

class RocksdbStore final : public PeerStore {
 public:
  RocksdbStore(const std::string& path, PeerMode mode) : files_(path), mode_(mode) {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.error_if_exists = true;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    rocksdb::DB* raw = nullptr;
    check(rocksdb::DB::Open(options, path, &raw), "open");
    db_.reset(raw);
    main_ = std::make_unique<RocksdbSession>(raw, mode);
  }

  void put_batch(std::span<const std::uint64_t> keys) override { main_->put_batch(keys); }

  // Sorted batches without the WAL, then a flush and a full compaction: the
  // data ends up in sorted SST files of one level, RocksDB's steady read state.
  void bulk_load(std::uint64_t n) override {
    rocksdb::WriteOptions no_wal;
    no_wal.disableWAL = true;
    for (std::uint64_t first = 0; first < n; first += kLoadBatch) {
      rocksdb::WriteBatch batch;
      for (std::uint64_t k = first; k < std::min(n, first + kLoadBatch); ++k) {
        const Key key(k);
        const std::string value = make_value(k);
        check(batch.Put(as_slice(key.view()), value), "batch put");
      }
      check(db_->Write(no_wal, &batch), "write");
    }
    check(db_->Flush(rocksdb::FlushOptions()), "flush");
    check(db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "compact");
    main_->reset_iterator();
  }

  void warm() override { main_->warm(); }
  bool get(std::uint64_t k) override { return main_->get(k); }
  bool scan(std::uint64_t start, std::size_t n) override { return main_->scan(start, n); }

  std::uint64_t count() override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    std::uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    check(it->status(), "count");
    return n;
  }

  std::unique_ptr<PeerWriter> writer(const std::atomic<bool>& /*stop*/) override {
    return std::make_unique<RocksdbWriter>(db_.get());
  }

  std::unique_ptr<PeerSession> session() override {
    return std::make_unique<RocksdbSession>(db_.get(), mode_);
  }

 private:
  PeerFiles files_;  // first: removed after the database closes
  PeerMode mode_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<RocksdbSession> main_;  // the store's own calls; deleted before db_
};

}  // namespace

std::unique_ptr<PeerStore> open_rocksdb(const std::string& path, PeerMode mode) {
  return std::make_unique<RocksdbStore>(path, mode);
}

}  // namespace corobtree::bench
