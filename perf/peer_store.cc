#include "perf/peer_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <system_error>
#include <vector>

#include "perf/bench_common.h"

namespace corobtree::bench {

std::string peer_temp_path(std::string_view peer, std::string_view tag) {
  static int serial = 0;
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/corobtree-peerbench-" +
         std::to_string(::getpid()) + "-" + std::string(peer) + "-" + std::string(tag) + "-" +
         std::to_string(serial++);
}

void remove_peer_files(const std::string& path) {
  // SQLite's WAL and shared-memory index, LMDB's lock file; RocksDB's and LevelDB's are
  // directories.
  for (const char* suffix : {"", "-wal", "-shm", "-journal", "-lock"}) {
    std::error_code ec;  // best effort: a leftover file is no reason to fail a benchmark
    std::filesystem::remove_all(path + suffix, ec);
  }
}

std::uint64_t preload_peer(PeerStore& store) {
  const std::vector<std::uint64_t> keys = commit_preload_keys();
  constexpr std::size_t kBatch = 10'000;
  for (std::size_t i = 0; i < keys.size(); i += kBatch) {
    const std::size_t n = std::min(kBatch, keys.size() - i);
    store.put_batch(std::span<const std::uint64_t>(keys.data() + i, n));
  }
  return keys.size();
}

std::vector<Peer> available_peers() {
  std::vector<Peer> p;
#ifdef COROBTREE_PEER_LMDB
  p.push_back({"lmdb", open_lmdb});
#endif
#ifdef COROBTREE_PEER_SQLITE
  p.push_back({"sqlite", open_sqlite});
#endif
#ifdef COROBTREE_PEER_ROCKSDB
  p.push_back({"rocksdb", open_rocksdb});
#endif
#ifdef COROBTREE_PEER_LEVELDB
  p.push_back({"leveldb", open_leveldb});
#endif
  return p;
}

}  // namespace corobtree::bench
