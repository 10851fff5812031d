// salvage: copies every intact key/value pair of a damaged database file into
// a new database, and reports what it could not read (the `corobtree salvage`
// command; docs/engine.md, "Salvage").
//
//   #include <corobtree/salvage.h>
//
//   corobtree::SalvageReport r = corobtree::salvage_blocking("broken.db", "rescued.db");
//   if (!r.complete()) std::puts(r.summary().c_str());
//
// It trusts neither the meta pages nor the tree: it reads every page of the
// file, keeps the ones whose checksum and structure verify (page by page, as
// open does), walks the tree from the newest valid meta page to tell
// reachable leaves from orphans (leaves under a damaged inner page), and takes
// the pairs of every leaf that verifies. Free pages never hold pairs, so
// deleted keys do not come back. A key found in two leaves keeps the copy of
// the leaf with the higher LSN (a tie: the reachable one). A value in
// overflow pages is kept only if its whole chain verifies. Then the committed
// transactions of the write-ahead log DAMAGED-wal and DAMAGED-wal2 (in order) newer than the meta
// page are applied in order (and the page images of a checkpoint the log holds but the meta page
// does not), as open would. The pairs are bulk-loaded into `out`, which is then validated. DAMAGED
// and its log are only read.
//
// Errors (corobtree::Error): kInvalidArgument if `out` exists; kNotFound if
// `damaged` does not; kCorruption if no page size can be found (not a
// corobtree file: no meta page header and no page whose checksum verifies);
// kNotSupported for another format version; kLocked if a process has the file
// open; I/O errors creating `out`. Damage is never an error: it is reported.
//
// Thread-safety: salvage() does its I/O on the calling thread's runtime (it opens
// no Database and starts no engine thread).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <corobtree/export.h>
#include <corobtree/options.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>

namespace corobtree {

struct SalvageOptions {
  IoBackend backend = IoBackend::kAuto;  // for both files; COROBTREE_IO overrides
  // 0: learn it from the file (its meta pages, else the size at which pages verify).
  std::uint32_t page_size = 0;
  bool use_log = true;  // apply what DAMAGED-wal and DAMAGED-wal2 hold
  // How many unreadable page ids and problem messages the report lists.
  std::size_t max_listed = 64;
};

struct SalvageReport {
  // The damaged file.
  std::uint32_t page_size = 0;
  std::uint64_t pages = 0;             // blocks in the file, meta pages included
  std::uint64_t meta_pages_valid = 0;  // 0, 1 or 2
  std::uint64_t meta_key_count = 0;    // the chosen meta page's (0 if none)
  // Pages (not meta) that fail their checksum or structure, or are all zeros
  // inside the meta page's page count; the first `max_listed` ids in order.
  std::uint64_t pages_unreadable = 0;
  std::vector<std::uint64_t> unreadable_ids;
  // Of those, pages that the free list names (nothing lost there).
  std::uint64_t unreadable_free = 0;
  std::uint64_t pages_missing = 0;  // counted by the meta page past the file's end
  std::uint64_t inner_pages = 0;    // that verify
  std::uint64_t leaves_reachable = 0;
  std::uint64_t leaves_orphan = 0;       // verify but not reachable from the root
  std::uint64_t free_pages = 0;          // type free, verified
  std::uint64_t overflow_pages = 0;      // type overflow, verified
  std::uint64_t duplicate_keys = 0;      // found in two leaves: the newer copy kept
  std::uint64_t keys_from_pages = 0;     // distinct keys with their values, before the log
  std::uint64_t keys_lost_overflow = 0;  // whose overflow chain is broken: dropped
  // The chosen meta page's key count minus the keys found in leaves (those
  // above included): about the keys of unreadable leaves. 0 without a meta page.
  std::uint64_t keys_missing = 0;
  // The log.
  bool log_found = false;  // DAMAGED-wal or DAMAGED-wal2 exists
  bool log_used = false;   // its header matched this database
  std::uint64_t log_transactions_applied = 0;
  std::uint64_t log_operations_applied = 0;
  std::uint64_t log_checkpoint_pages = 0;  // images of an unfinished checkpoint used
  // The result.
  std::uint64_t keys_recovered = 0;  // pairs written to `out`
  // What went wrong, one line each (the first `max_listed`), and how many.
  std::vector<std::string> problems;
  std::uint64_t problem_count = 0;

  // True when nothing is known to be lost: every page verified (or was a
  // damaged free-list page), no overflow chain broke, a meta page was valid,
  // the keys found match its key count, and the log (if any) was intact.
  bool complete() const noexcept { return problem_count == 0; }
  // Multi-line "name value" text of every field.
  COROBTREE_EXPORT std::string summary() const;
};

// Salvages `damaged` into the new database `out` (which must not exist) and
// reports what it found. See the top of this file.
COROBTREE_EXPORT Task<SalvageReport> salvage(std::string damaged, std::string out,
                                             SalvageOptions options = {});

// salvage() run to completion with sync_wait. Not for use inside a coroutine.
inline SalvageReport salvage_blocking(std::string damaged, std::string out,
                                      SalvageOptions options = {}) {
  return sync_wait(salvage(std::move(damaged), std::move(out), options));
}

}  // namespace corobtree
