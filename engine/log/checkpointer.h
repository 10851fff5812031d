// The write-ahead log's transaction level: Recovery opens the log, Checkpointer
// runs it. Together they drive the RecordLogs (records, group commit) and the
// PageImageStore (the pool's page images) through the order that keeps the
// database recoverable (docs/file-format.md, "The write-ahead log"):
//
//   open:        Recovery::open    scan both logs; finish an interrupted
//                                  checkpoint from its page images; cut the
//                                  data file back to its meta page's size
//                Recovery::replay  apply the committed transactions newer than
//                                  the checkpoint, checkpoint, and hand over
//                                  the Checkpointer (the only way to get one)
//   commit:      Checkpointer::commit, wait_durable
//   checkpoint:  Checkpointer::cut  (writer mutex held) flush the pool (dirty
//                pages become page images), log a checkpoint record, sync the
//                log, start a new generation in the other log, where commits
//                go from now on
//                Checkpointer::copy_checkpoint  (writer mutex NOT needed:
//                commits go on meanwhile) copy the cut's images into the data
//                file, sync it, write the next meta page, sync it; reads of
//                those pages go to the data file from then on
//                Checkpointer::checkpoint  both, one after the other
//   close:       Checkpointer::close        checkpoint if anything changed,
//                mirror the meta page, close the pool, delete both logs
//
// Two logs, NAME-wal and NAME-wal2, used alternately: each cut starts a new
// generation (base LSN: the cut's commit) in the log the cut before it left,
// whose checkpoint is copied by then (at most one copy runs at a time: the
// caller waits for copy_checkpoint to end before the next cut).
//
// Each sequence is one function here, so a caller cannot run its steps in
// another order. The db layer supplies the tree through LoggedTree (the log
// layer does not see engine/btree).
//
// Record types this level writes (RecordLog's padding, 3, is no longer written;
// PageImageStore page images, 1): operations 4, commit 2, checkpoint 5,
// recovery mark 6.
//
// Thread-safety: loop-affine. Every Checkpointer and Recovery call that
// changes the tree or the log runs under the tree's writer mutex, which the
// caller holds (commit, cut, checkpoint, close, replay); wait_durable and
// copy_checkpoint do not need it.
#pragma once

#include <array>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <corobtree/stats.h>
#include <corobtree/task.h>
#include <corobtree/write_batch.h>

#include "engine/format/commit_state.h"
#include "engine/format/meta.h"
#include "engine/log/page_image_store.h"
#include "engine/log/record_log.h"
#include "engine/pager/buffer_pool.h"
#include "io/disk_manager.h"

namespace corobtree {

// The record types of transactions and checkpoints.
struct TxnRecord {
  static constexpr std::uint16_t kOperations = 4;  // a chunk of a transaction's operations
  static constexpr std::uint16_t kCommit = 2;      // ends a transaction: CommitRecord
  static constexpr std::uint16_t kCheckpoint = 5;  // every image a checkpoint needs precedes it
  static constexpr std::uint16_t kRecoveryMark =
      6;  // recovery resumed here: earlier images are stale
};

// What the log is the log of: the database's tree, as the db layer provides it.
class LoggedTree {
 public:
  virtual ~LoggedTree() = default;
  // Recovery: applies one committed transaction's operations to the tree.
  virtual Task<void> redo(const WriteBatch& batch) = 0;
  // The tree's state now, as a commit, a checkpoint and a meta page record it.
  virtual CommitState commit_state() const = 0;
};

class Checkpointer;

// The first part of opening a database: what the log holds, applied up to the
// point where the tree can be built; replay() does the rest.
//
// Invariants: between open() and replay(), the data file holds exactly the
// checkpoint of meta(), and the log (continued after its last valid record, or
// a new generation when it held nothing newer) still holds every transaction
// left to replay; replay() hands the log and the store to the Checkpointer.
class Recovery {
 public:
  // Scans `logs` (the open NAME-wal and NAME-wal2, of the data file's page
  // size; either may be empty), finishes a checkpoint a crash cut short
  // (copies its images into `data`, syncs, writes its meta page, syncs) and
  // cuts `data` back to the page count of the meta page that now describes
  // it. `meta` is the newest valid meta page.
  // REQUIRES: `data` outlives the Recovery and the Checkpointer it makes.
  static Task<std::unique_ptr<Recovery>> open(std::array<std::unique_ptr<DiskManager>, 2> logs,
                                              DiskManager& data, Durability durability, Meta meta);
  ~Recovery();
  Recovery(const Recovery&) = delete;
  Recovery& operator=(const Recovery&) = delete;

  // The meta page that describes the data file now: build the tree from it.
  const Meta& meta() const noexcept { return meta_; }
  // The pool's PageStore (set it before the pool's first fetch); it moves to
  // the Checkpointer with the log and stays at this address.
  PageImageStore& page_store() noexcept { return *store_; }
  // What open() found (and, after replay(), what it replayed).
  const RecoveryStats& stats() const noexcept { return stats_; }

  // Applies every committed transaction newer than the checkpoint to `tree`
  // (whose pool reads and writes through page_store()), checkpoints if there
  // were any, and returns the Checkpointer that runs the log from now on.
  // Error(kCorruption) naming the log if a transaction's operations are
  // damaged. The caller holds the tree's writer mutex. Once only.
  Task<std::unique_ptr<Checkpointer>> replay(LoggedTree& tree, BufferPool& pool);

 private:
  class Scan;
  Recovery(DiskManager& data, Meta meta) : data_(data), meta_(meta) {}
  Task<void> finish_checkpoint(PageImageStore& store, const CommitState& state, std::uint64_t lsn);

  DiskManager& data_;
  Meta meta_;
  std::array<std::unique_ptr<RecordLog>, 2> logs_;
  int active_ = 0;  // the log commits continue in
  std::unique_ptr<PageImageStore> store_;
  bool wrote_meta_ = false;  // finish_checkpoint wrote one meta page
  // The transactions to replay, in commit order: LSN and encoded operations.
  std::vector<std::pair<std::uint64_t, std::string>> txns_;
  RecoveryStats stats_;
};

// Runs the log of an open database: commits, checkpoints, close. Made by
// Recovery::replay() only.
//
// Invariants: the data file holds exactly the state of meta_ (its last
// checkpoint) but for a copy in progress (pending_: a cut whose images are
// being copied); every commit since meta_'s is in the logs: up to the cut in
// the frozen log (with the cut's images), after it in the current log, with
// the images of the pages it changed that the pool wrote back; modified_
// says whether there are commits since the last cut.
class Checkpointer {
 public:
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Counts a writer in the group commit of both logs while it lives (a cut
  // may switch logs while it waits).
  class [[nodiscard]] WriterCount {
   public:
    WriterCount(RecordLog& a, RecordLog& b) noexcept : a_(a), b_(b) {}

   private:
    RecordLog::WriterCount a_;
    RecordLog::WriterCount b_;
  };
  // Counts a writer in the group commit: take it before queueing for the
  // writer mutex, keep it until the commit is appended (or failed).
  [[nodiscard]] WriterCount count_writer() noexcept { return {*logs_[0], *logs_[1]}; }
  // Logs `batch` and a commit record holding the tree's state after it;
  // returns the commit's LSN (for wait_durable). The writer mutex is held.
  std::uint64_t commit(const WriteBatch& batch);
  // A bulk load's commit: a commit record without operations, made durable
  // by the checkpoint that follows it at once (which writes the new pages).
  Task<std::uint64_t> commit_through_checkpoint();
  // Returns once commit `lsn` is durable (as the durability mode says).
  Task<void> wait_durable(std::uint64_t lsn) { return log_->wait_durable(lsn); }
  // Makes the data file and its meta page hold every commit so far and
  // starts a new log generation (cut(), then copy_checkpoint()).
  // REQUIRES: no copy pending.
  Task<void> checkpoint();
  // The first half of a checkpoint (see the preamble): returns whether it
  // cut (false: nothing was committed since the last one, and nothing
  // changed). REQUIRES: the writer mutex held; no copy pending.
  Task<bool> cut();
  // The second half: makes the data file and its meta page hold the cut's
  // state. Needs no writer mutex; nothing else may write the data file
  // meanwhile (no backup copying it, no compaction). A failure makes the
  // Checkpointer unusable (failure()). REQUIRES: copy_pending().
  Task<void> copy_checkpoint();
  bool copy_pending() const noexcept { return pending_.has_value(); }
  // Checkpoints if anything was committed since the last checkpoint, writes
  // the same meta page into the other slot too if this session wrote one,
  // closes the pool and deletes both logs. Afterwards only abandon() is left.
  // REQUIRES: no copy pending.
  Task<void> close();
  // Closes the log files and keeps them (after a failure: the next open recovers).
  void abandon() noexcept {
    logs_[0]->close();
    logs_[1]->close();
  }
  // Compaction swapped in another data file (the one `data` now reaches)
  // that holds this database's contents as of the last checkpoint, described
  // by `meta` (written into both slots and synced): this database's id and
  // checkpoint LSN, a later sequence number. REQUIRES: the writer mutex held
  // and nothing committed since the last checkpoint, so the log is empty;
  // else Error(kInvalidArgument) and nothing changes.
  void data_file_replaced(const Meta& meta);

  // The LSN of the last commit appended.
  std::uint64_t last_lsn() const noexcept { return log_->last_commit(); }
  // Page images were appended since the last commit or checkpoint record
  // (a transaction in progress changed the log).
  bool in_transaction() const noexcept;
  bool modified() const noexcept { return modified_; }
  // The last meta page written: the data file holds exactly its state (every
  // page below its page count) until the next checkpoint.
  const Meta& meta() const noexcept { return meta_; }
  // Bytes in the current log (since the last cut).
  std::uint64_t log_bytes() const noexcept { return log_->bytes(); }
  std::exception_ptr failure() const noexcept;
  Durability durability() const noexcept { return log_->durability(); }
  std::uint64_t checkpoints() const noexcept { return checkpoints_; }
  WalStats stats() const noexcept;

 private:
  friend class Recovery;
  Checkpointer(std::array<std::unique_ptr<RecordLog>, 2> logs, int active,
               std::unique_ptr<PageImageStore> store, DiskManager& data, Meta meta,
               bool metas_differ, LoggedTree& tree, BufferPool& pool);
  void end_transaction() noexcept { images_at_commit_ = store_->images_appended(); }
  // Writes `m` into its slot (block m.sequence % 2) of `data`, unsynced.
  static Task<void> write_meta_page(DiskManager& data, const Meta& m);
  // Writes the meta page after meta_ (next sequence, the other slot) with
  // checkpoint LSN `lsn`.
  Task<void> write_next_meta(const CommitState& state, std::uint64_t lsn);

  // A cut whose images are not copied yet: the state and commit it records.
  struct Pending {
    CommitState state;
    std::uint64_t lsn = 0;
  };

  std::array<std::unique_ptr<RecordLog>, 2> logs_;
  RecordLog* log_;  // the current one of logs_: commits and images go here
  std::unique_ptr<PageImageStore> store_;
  DiskManager& data_;
  LoggedTree& tree_;
  BufferPool& pool_;
  Meta meta_;              // the last meta page written
  bool modified_ = false;  // commits since the last checkpoint
  // This session wrote one meta page (a checkpoint or recovery); close()
  // writes the other one too, since the log that backs the older one goes away.
  bool metas_differ_ = false;
  std::uint64_t images_at_commit_ = 0;
  std::uint64_t commits_ = 0;
  std::uint64_t checkpoints_ = 0;
  std::optional<Pending> pending_;
  std::exception_ptr failed_;  // a copy_checkpoint failed
};

}  // namespace corobtree
