// What salvage (include/corobtree/salvage.h) takes from a damaged database's
// write-ahead log: the committed transactions newer than the data file's
// checkpoint, and the page images of a checkpoint the log holds but the meta
// page does not (a crash cut it short). It reads the log the way recovery
// does (engine/log/recovery.cc: the same record order and checks) but writes
// nothing: neither the log nor the data file changes.
//
// Thread-safety: loop-affine, like the DiskManager it reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <corobtree/task.h>

#include "engine/format/commit_state.h"
#include "io/disk_manager.h"

namespace corobtree {

struct SalvagedLog {
  bool header = false;   // the header verified for this database
  bool written = false;  // block 0 holds anything at all (a header that failed: damage)
  std::uint64_t database_id = 0;
  std::uint64_t base_lsn = 0;  // the header's: the checkpoint its generation follows
  // The committed transactions, in order: LSN and encoded operations
  // (engine/log/batch_format.h), every one the log holds (the caller keeps
  // those newer than its checkpoint).
  std::vector<std::pair<std::uint64_t, std::string>> txns;
  // The last checkpoint record read, its LSN and the newest image of each
  // page logged before it (since the start or the last recovery mark).
  std::optional<CommitState> checkpoint;
  std::uint64_t checkpoint_lsn = 0;
  std::map<BlockId, std::shared_ptr<const std::vector<std::byte>>> checkpoint_images;
};

// Reads the log in `file`. `database_id` is the meta page's; 0 when no meta
// page was valid: then the log's own header names the database (its records
// still verify through the CRC chain). A log with a bad header holds nothing.
Task<SalvagedLog> read_salvage_log(DiskManager& file, std::uint64_t database_id);

// The logs NAME-wal and NAME-wal2 read as one (those whose header verified):
// the transactions of the older generation (lower base LSN), then those of
// the newer one that follow them; the newest checkpoint record of either,
// with its images. None: a log with header false.
SalvagedLog merge_salvage_logs(std::vector<SalvagedLog> logs);

// The operations of `txns` (newer than `after` only), applied in order to a
// map from key to its last value (nullopt: erased). Transactions that do not
// decode, or hold a key longer than `max_key` or a value longer than
// kMaxValueSize, stop the replay there: `*error` says why. Returns the
// number of transactions and operations applied.
struct LogEffect {
  std::map<std::string, std::optional<std::string>> last;  // key -> last value, nullopt: erased
  std::uint64_t transactions = 0;
  std::uint64_t operations = 0;
  std::string error;  // "" when every transaction applied
};
LogEffect log_effect(const SalvagedLog& log, std::uint64_t after, std::uint32_t max_key,
                     const std::string& path);

}  // namespace corobtree
