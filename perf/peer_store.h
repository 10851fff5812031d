// The interface peer_bench and thread_bench drive each peer engine (LMDB, SQLite, RocksDB,
// LevelDB)
// through, so every peer runs exactly the workloads of btree_bench: the same
// 8-byte big-endian keys (perf/bench_common.h), 100-byte values, batch shapes
// and random sequences.
//
// Every call reports failure by throwing std::runtime_error naming the peer
// call and its error text; peer_bench turns that into SkipWithError.
//
// Thread-safety: a PeerStore is used by one thread at a time (get, scan,
// put_batch, count). Each PeerWriter and each PeerSession belongs to one
// thread; any number of writers and sessions of one store may run at once
// from different threads, beside the store's own calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corobtree::bench {

// kCached: every commit skips the sync (what btree_bench's cached workloads
// pay: nothing reaches the disk). kDurable: each commit is on stable storage
// before it returns (fsync / fdatasync of the log or the data file).
enum class PeerMode { kCached, kDurable };

// One thread's handle for single-key durable commits.
class PeerWriter {
 public:
  virtual ~PeerWriter() = default;
  // Puts key `k` (Key(k), make_value(k)) in its own transaction, durable on
  // return (true). Returns false, having written nothing, only when it gave up
  // waiting for its turn because the run's stop flag was set.
  virtual bool commit(std::uint64_t k) = 0;
};

// One thread's handle for the cached workloads of thread_bench: the peer's
// per-thread read transaction (LMDB), connection (SQLite) or iterator and
// buffers (RocksDB). The calls mean what PeerStore's of the same name do.
class PeerSession {
 public:
  virtual ~PeerSession() = default;
  virtual void put_batch(std::span<const std::uint64_t> keys) = 0;
  // Reads every entry once (SQLite's page cache belongs to the connection).
  virtual void warm() = 0;
  virtual bool get(std::uint64_t k) = 0;
  virtual bool scan(std::uint64_t start, std::size_t n) = 0;
};

// One open database of a peer, in a fresh file (or directory) that the store
// removes when it dies.
class PeerStore {
 public:
  virtual ~PeerStore() = default;

  // Puts Key(k) -> make_value(k) for every k of `keys` in one transaction
  // (one WriteBatch). The keys and values are built inside, as btree_bench
  // builds its WriteBatch inside the timed region.
  virtual void put_batch(std::span<const std::uint64_t> keys) = 0;
  // Loads keys [0, n) in increasing order into the empty store with the peer's
  // fastest bulk path, then leaves it in its steady read state.
  virtual void bulk_load(std::uint64_t n) = 0;
  // Reads every entry once, so the peer's cache (and the page cache) holds them.
  virtual void warm() = 0;
  // Returns whether key `k` is present with make_value(k).
  virtual bool get(std::uint64_t k) = 0;
  // Reads `n` entries from Key(start) on; returns whether they are keys
  // start .. start + n - 1.
  virtual bool scan(std::uint64_t start, std::size_t n) = 0;
  virtual std::uint64_t count() = 0;
  // REQUIRES: opened in PeerMode::kDurable; `stop` outlives the writer.
  virtual std::unique_ptr<PeerWriter> writer(const std::atomic<bool>& stop) = 0;
  // A new session, in the store's mode. REQUIRES: the store outlives it.
  virtual std::unique_ptr<PeerSession> session() = 0;
};

// A fresh path in $TMPDIR (or /tmp): corobtree-peerbench-<pid>-<peer>-<tag>-<serial>.
std::string peer_temp_path(std::string_view peer, std::string_view tag);
// Removes `path` (a file or directory) and the peers' side files next to it.
void remove_peer_files(const std::string& path);
// Puts commit_preload_keys() into `store` (transactions of 10,000 keys), so
// that a durable-commit benchmark starts every peer from the data corobtree's
// database starts from. Returns how many keys it put.
std::uint64_t preload_peer(PeerStore& store);

// Owns a store's path: removes its files on construction (a stale run) and
// destruction. Declare it before the handles, so it dies after they close.
class PeerFiles {
 public:
  explicit PeerFiles(std::string path) : path_(std::move(path)) { remove_peer_files(path_); }
  ~PeerFiles() { remove_peer_files(path_); }
  PeerFiles(const PeerFiles&) = delete;
  PeerFiles& operator=(const PeerFiles&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// Each factory exists only when the peers' library is built with that library.
std::unique_ptr<PeerStore> open_lmdb(const std::string& path, PeerMode mode);
std::unique_ptr<PeerStore> open_sqlite(const std::string& path, PeerMode mode);
std::unique_ptr<PeerStore> open_rocksdb(const std::string& path, PeerMode mode);
std::unique_ptr<PeerStore> open_leveldb(const std::string& path, PeerMode mode);

struct Peer {
  const char* name;  // "lmdb", "sqlite", "rocksdb", "leveldb"
  std::unique_ptr<PeerStore> (*open)(const std::string& path, PeerMode mode);
};
// The peers built in, in that order (none when no peer library was found).
std::vector<Peer> available_peers();

}  // namespace corobtree::bench
