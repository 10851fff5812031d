// Options for opening a Database, and the enums they use.
//
// Thread-safety: plain values.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include <corobtree/export.h>

namespace corobtree {

class DiskManager;  // internal; see Options::wrap_disk

// The largest value accepted (larger ones: Error(kInvalidArgument)). The
// largest key depends on the page size: Database::max_key_size().
inline constexpr std::uint64_t kMaxValueSize = std::uint64_t{1} << 30;

// Which I/O backend serves the files. The environment variable
// COROBTREE_IO=auto|uring|pread overrides the option.
enum class IoBackend {
  kAuto,   // io_uring, falling back to pread when the kernel refuses a ring
  kUring,  // io_uring or an error
  kPread,  // synchronous pread/pwrite
};

COROBTREE_EXPORT std::string_view backend_name(IoBackend b) noexcept;
// Parses "auto", "uring" or "pread"; throws Error(kInvalidArgument) otherwise.
COROBTREE_EXPORT IoBackend parse_backend(std::string_view name);

enum class Durability {
  kSync,     // a commit returns after its records are fsynced: survives power loss
  kRelaxed,  // a commit returns after its records are written to the file (no
             // fsync): survives a crash of the process, not of the machine
};

// Options::pool_pages's default: size the pool by Options::pool_bytes.
inline constexpr std::size_t kPoolFromBytes = ~std::size_t{0};

struct Options {
  std::uint32_t page_size = 0;  // 0: the file's, or 4096 for a new file
  // Buffer pool frames (one page each); 0 = no caching. By default
  // (kPoolFromBytes) pool_bytes / page size, at least 64.
  std::size_t pool_pages = kPoolFromBytes;
  // The pool's size when pool_pages is kPoolFromBytes: 64 MiB (16,384 frames
  // of 4 KiB). The frames' memory is reserved at open but only takes RAM as
  // pages are loaded into it.
  std::size_t pool_bytes = std::size_t{64} << 20;
  // Read-ahead of a cursor (and of Database::scan) that moves from leaf to
  // leaf through pages that are not cached: up to this many of the next
  // leaves are read in the background (8 at first, doubling while the cursor
  // goes on), consecutive blocks as one read (at most 1/8 of the pool; 0: off; io_uring only: the
  // pread backend's reads are synchronous).
  std::uint32_t readahead_leaves = 512;
  std::uint32_t minimum_degree = 0;      // new files only: t > 0 caps nodes at 2t-1 keys
  IoBackend backend = IoBackend::kAuto;  // COROBTREE_IO overrides
  bool direct_io = false;                // O_DIRECT for the data file
  bool create_if_missing = true;
  bool error_if_exists = false;
  // How long open() waits for another process (or handle) that has the
  // database open to close it, polling every few milliseconds, before it
  // throws Error(kLocked). 0: fail at once. A process that was killed never
  // needs it: its lock goes with it (docs/engine.md, "Locking").
  std::chrono::milliseconds lock_timeout{0};
  Durability durability = Durability::kSync;
  // A checkpoint runs after the commit that grows the log past this many bytes.
  std::uint64_t wal_checkpoint_bytes = std::uint64_t{64} << 20;
  // After replaying a log at open, validate() the tree (kCorruption if unsound).
  bool validate_after_recovery = true;
  // For the project's own tests (fault injection): wraps the data file's and
  // the log's block store, a backup's destination and the packed copy that
  // compact() writes. DiskManager is not part of the installed API; leave this
  // empty.
  std::function<std::unique_ptr<DiskManager>(std::unique_ptr<DiskManager>)> wrap_disk;
};

}  // namespace corobtree
