// What a Database reports about itself: DatabaseStats (Database::stats()) and
// ValidationReport (Database::validate()).
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <corobtree/export.h>
#include <corobtree/options.h>

namespace corobtree {

// The buffer pool's counters (all but `pinned` count since open).
struct BufferPoolStats {
  std::uint64_t hits = 0;    // fetches served from memory at once
  std::uint64_t misses = 0;  // fetches that had to wait for a disk read
  std::uint64_t disk_reads = 0;
  std::uint64_t disk_writes = 0;       // every block write the pool made
  std::uint64_t evictions = 0;         // frames taken from one page for another
  std::uint64_t dirty_writebacks = 0;  // writes of dirty victims / direct-mode unpins
  std::uint64_t free_frame_waits = 0;  // times a fetch waited because all frames were pinned
  std::uint64_t pinned = 0;            // frames pinned now
  std::uint64_t readahead_reads = 0;   // reads started by read-ahead (BufferPool::prefetch)
  std::uint64_t view_relocations = 0;  // pages moved off a buffer a PinnedValue or cursor pins
  double hit_rate() const noexcept {
    const std::uint64_t n = hits + misses;
    return n == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(n);
  }
};

// The write-ahead log's counters.
struct WalStats {
  std::uint64_t commits = 0;        // commit records appended
  std::uint64_t page_records = 0;   // page images appended
  std::uint64_t writes = 0;         // tail writes (each one a group of commits)
  std::uint64_t syncs = 0;          // fsyncs of the log
  std::uint64_t largest_group = 0;  // most commits acknowledged by one write
  std::uint64_t log_reads = 0;      // page images read back from the log file
  std::uint64_t bytes = 0;          // log bytes since the last reset
  std::uint64_t pages = 0;          // distinct pages the log holds
};

// What open() found in the log and replayed.
struct RecoveryStats {
  bool checkpoint = false;           // finished a checkpoint a crash had cut short
  std::uint64_t checkpoint_lsn = 0;  // its last commit
  std::uint64_t pages = 0;           // page images that checkpoint applied
  std::uint64_t commits = 0;         // committed transactions replayed after it
  std::uint64_t last_lsn = 0;        // of the last one
  std::uint64_t ignored_bytes = 0;   // valid records after the last commit, dropped
};

struct DatabaseStats {
  std::uint64_t keys = 0;
  std::uint32_t height = 0;
  std::uint64_t pages = 0;       // blocks in the file, meta pages included
  std::uint64_t free_pages = 0;  // on the free list
  std::uint32_t page_size = 0;
  std::uint32_t minimum_degree = 0;
  IoBackend backend = IoBackend::kAuto;
  std::string fallback_reason;  // why `auto` chose pread ("" if it did not)
  BufferPoolStats pool;
  Durability durability = Durability::kSync;
  WalStats wal;
  std::uint64_t checkpoints = 0;
  RecoveryStats recovery;  // what open replayed
};

// The outcome of Database::validate(): every invariant of docs/engine.md checked.
struct ValidationReport {
  std::vector<std::string> problems;  // empty when the tree is sound
  std::uint64_t leaves = 0;
  std::uint64_t inner_nodes = 0;
  std::uint64_t overflow_pages = 0;
  std::uint64_t free_pages = 0;
  std::uint64_t keys = 0;
  std::uint32_t height = 0;
  double fill_factor = 0.0;  // used bytes / usable bytes over all tree nodes
  bool ok() const noexcept { return problems.empty(); }
  COROBTREE_EXPORT std::string summary() const;
};

}  // namespace corobtree
