// Wal: the write-ahead log of a database, kept in the file NAME-wal.
//
// Redo records are logical: a transaction appends its operations (encoded by
// the database) and a commit record; the commit is durable once the log's
// blocks holding it are written and fsynced. The data file is written only by
// checkpoints, so it always holds its meta page's checkpoint, and pages of an
// uncommitted transaction never reach it. Page images go to the log when the
// buffer pool evicts a dirty page (Wal is the pool's PageStore: the page is
// read back from here) and at a checkpoint, which logs the image of every
// changed page and a checkpoint record before it overwrites the data file.
// Format and recovery: docs/file-format.md, "The write-ahead log".
//
// Group commit: a committer waits in wait_durable(); the first waiter waits
// for the writers inside a transaction or queued for one, then writes and
// syncs everything appended, and every commit in that write is acknowledged
// by the one fsync.
//
// Every record's CRC32C is chained from its predecessor's, seeded by the
// log's salt, which changes at every reset: recovery stops at the first
// record that does not verify (a torn tail), and records left over from
// before a reset never verify.
//
// Errors: a failed log write or sync makes the log unusable (failed());
// every later call rethrows that error. Reopening the database recovers.
//
// Thread-safety: loop-affine, like the buffer pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include <corobtree/stats.h>

#include "engine/format/commit_state.h"
#include "engine/pager/buffer_pool.h"
#include "io/disk_manager.h"
#include <corobtree/task.h>
#include "io/waiter_list.h"

namespace corobtree {




struct WalRecovery {
  bool checkpoint = false;           // a checkpoint the data file lacks is complete in the log
  std::uint64_t checkpoint_lsn = 0;  // its last commit
  std::optional<CommitState> state;  // the tree as of that checkpoint
  std::uint64_t pages = 0;           // page images it applies
  std::uint64_t commits = 0;         // committed transactions to replay after it
  std::uint64_t last_lsn = 0;        // of the last one
  std::uint64_t ignored_bytes = 0;   // valid records after the last commit, dropped
  // The operations of each transaction to replay, in commit order.
  std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> txns;
};

class Wal final : public PageStore {
 public:
  static constexpr std::uint32_t kRecordHeader = 32;

  // `log` is the open NAME-wal file (same page size as `data`); `database_id`
  // ties the log to its data file; `last_lsn` is the meta page's checkpoint LSN.
  Wal(std::unique_ptr<DiskManager> log, DiskManager& data, Durability durability,
      std::uint64_t database_id, std::uint64_t last_lsn);
  ~Wal() override;
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Scans the log: the committed transactions newer than `checkpoint_lsn`
  // become readable through read_page (copy_pages_to then writes them to the
  // data file). A log of another database, of another page size, or with a
  // damaged header holds nothing. Call once, before anything else.
  Task<WalRecovery> recover(std::uint64_t checkpoint_lsn);

  // PageStore: the newest logged image of `id`, else the data file's copy.
  Task<void> read_page(BlockId id, std::span<std::byte> out) override;
  // Appends an image of `id` to the current transaction.
  Task<void> write_page(BlockId id, std::span<const std::byte> page) override;

  // Logs the current transaction's operations (encoded by the database).
  void append_ops(std::span<const std::byte> ops);
  // Marks that every page image a checkpoint needs (the newest one of each
  // page changed since the last checkpoint) precedes this point in the log.
  void append_checkpoint(const CommitState& state);
  // Recovery: continues the scanned log after its last valid record (so the
  // records to replay stay intact) instead of starting a new generation.
  Task<void> continue_after_scan();
  // Recovery: transaction `lsn` was replayed.
  void note_replayed(std::uint64_t lsn) noexcept;
  // Ends the current transaction with a commit record; returns its LSN.
  std::uint64_t append_commit(const CommitState& state);
  // Group commit: a writer counts itself in before it waits for the writer
  // mutex and out once its commit record is appended (or it failed); the
  // committer that writes the log waits for the writers counted in.
  void begin_writer() noexcept { ++writers_; }
  void end_writer() noexcept;
  // Returns once commit `lsn` is durable (kSync) or written (kRelaxed).
  Task<void> wait_durable(std::uint64_t lsn);
  // Writes and fsyncs everything appended, whatever the durability mode.
  Task<void> sync_all();

  // Copies the newest image of every logged page into `data` (taking clean
  // cached copies from `pool` when it has them). REQUIRES: sync_all() first,
  // no transaction in progress.
  Task<void> copy_pages_to(DiskManager& data, BufferPool* pool);
  // Starts an empty log (new salt) after a checkpoint has made the data file
  // and its meta page durable. Waits for reads of the old log to finish.
  Task<void> reset();

  // Closes the log file and deletes it. REQUIRES: reset() since the last commit.
  void close_and_remove();
  // Closes the file, keeping it (after a failure: the next open recovers).
  void close() noexcept;

  bool in_transaction() const noexcept { return txn_records_ > 0; }
  std::uint64_t last_lsn() const noexcept { return last_lsn_; }
  std::uint64_t bytes() const noexcept;
  Durability durability() const noexcept { return durability_; }
  std::exception_ptr failure() const noexcept { return failed_; }
  WalStats stats() const noexcept;
  const std::string& path() const noexcept { return log_->path(); }

 private:
  void append_record(std::uint16_t type, std::uint64_t lsn, std::uint64_t page,
                     std::span<const std::byte> payload, std::size_t zero_payload);
  void pad_to_block();
  Task<void> acquire_flush();
  void release_flush() noexcept;
  // Writes the tail (and the header when due). REQUIRES: the flush turn.
  Task<void> write_tail();
  Task<void> write_and_sync(bool sync, bool gather);
  Task<void> read_record_payload(std::uint64_t offset, std::span<std::byte> out);
  Task<void> copy_one(DiskManager& data, BufferPool* pool, BlockId id, std::uint64_t offset);
  void encode_header(std::span<std::byte> block) const;
  void start_generation();
  void check_failed() const;

  std::unique_ptr<DiskManager> log_;
  DiskManager& data_;
  const Durability durability_;
  const std::uint32_t page_size_;
  const std::uint64_t database_id_;

  std::uint64_t salt_ = 0;
  std::uint64_t base_lsn_ = 0;   // the checkpoint LSN this log starts after
  std::uint32_t chain_ = 0;      // CRC of the last appended record
  bool header_due_ = true;       // the header of this generation is not written yet

  // Appended bytes not yet written: file offsets [tail_base_, tail_base_ + tail_.size()).
  std::uint64_t tail_base_ = 0;
  std::vector<std::byte> tail_;
  // The tail being written now (kept readable until the write completes).
  std::uint64_t writing_base_ = 0;
  std::vector<std::byte> writing_;

  std::uint64_t scan_end_ = 0;     // recovery: the end of the last valid record
  std::uint32_t scan_chain_ = 0;   // its CRC
  std::uint64_t scan_salt_ = 0;
  std::uint64_t scan_base_lsn_ = 0;
  std::uint64_t last_lsn_ = 0;     // last commit appended
  std::uint64_t durable_lsn_ = 0;  // last commit written (and synced, in kSync mode)
  std::uint64_t txn_records_ = 0;  // page records of the open transaction
  std::unordered_map<BlockId, std::uint64_t> index_;  // page -> offset of its newest record

  bool flushing_ = false;
  bool gathering_ = false;  // a committer waits for writers before it writes
  detail::WaiterList flush_waiters_;
  std::uint64_t writers_ = 0;  // writers between begin_writer and end_writer
  detail::WaiterList writer_waiters_;
  std::uint64_t log_reads_in_flight_ = 0;
  detail::WaiterList read_waiters_;
  std::exception_ptr failed_;
  WalStats stats_;
};

}  // namespace corobtree
