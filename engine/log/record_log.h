// RecordLog: the record layer of the write-ahead log, one of its files
// NAME-wal and NAME-wal2 (docs/file-format.md, "The write-ahead log"; layouts in
// engine/log/log_format.h). It frames records (type, LSN, page, payload),
// chains their CRC32C from a per-generation salt, keeps the tail in memory
// until a commit (or a large tail, spill()) writes it, and runs group commit.
// Payloads and record types are its clients' (PageImageStore, Checkpointer);
// it interprets only its own padding records.
//
// Generations: the log is written in generations, each starting at block 1
// with a new salt in the header (block 0). reset() starts the next one; the
// records of an earlier generation then never verify, since the chain is
// seeded by the salt. A scan (scan()) reads the records of the generation in
// the file up to the first one that does not verify (a torn tail).
//
// Commits: clients number their commit records 1, 2, 3, ... for the life of
// the database (append_commit); wait_durable(n) returns once commit n is
// written and, with Durability::kSync, fsynced. Group commit: a writer counts
// itself in (WriterCount) before it queues for the writer mutex and out once
// its commit is appended; the first waiter waits for the writers counted in
// (up to kMaxGatherRounds of them), then one write and one fsync acknowledge
// every commit appended.
//
// Errors: a failed write or sync makes the log unusable (failure()); every
// later append, wait or reset rethrows that error. Reopening recovers.
//
// Invariants: bytes before tail_base_ are in the file (or being written from
// writing_); tail_base_ is a block boundary. Writes are whole blocks: a write
// ends with zeros up to the block boundary, and the next write (or, after a
// scan, resume()'s first) rewrites that block with the same bytes before the
// point where it appends, so acknowledged records are never changed (a torn
// rewrite leaves them as they were: sectors are written whole). Only older
// versions wrote padding records (kPaddingType); a scan still skips them.
//
// Thread-safety: loop-affine: every call on the thread of the database's loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <corobtree/options.h>
#include <corobtree/task.h>

#include "io/async_mutex.h"
#include "io/condition.h"
#include "io/disk_manager.h"

namespace corobtree {

class RecordLog {
 public:
  // Padding records, which earlier versions wrote to end each write at a block
  // boundary; a scan skips them. Clients must not use this type.
  static constexpr std::uint16_t kPaddingType = 3;
  // Payloads may be up to max(kMaxPayload, 2 * page size) bytes; clients
  // split larger data into several records.
  static constexpr std::size_t kMaxPayload = std::size_t{64} << 10;
  // Group commit: how many writers the flushing committer waits for at most.
  static constexpr int kMaxGatherRounds = 256;

  // A record a scan verified. `payload` is valid during Visitor::accept only.
  struct Record {
    std::uint16_t type = 0;
    std::uint64_t lsn = 0;
    std::uint64_t page = 0;
    std::uint64_t offset = 0;  // of its header in the file
    std::uint64_t end = 0;     // just past its payload
    std::span<const std::byte> payload;
  };

  // What a scan hands its records to.
  class Visitor {
   public:
    virtual ~Visitor() = default;
    // The header verified; `base_lsn` is what reset() recorded in it.
    virtual void begin(std::uint64_t base_lsn) = 0;
    // A record whose CRC verified (padding is not shown). Returns false if it
    // does not verify for the client either: the log then ends before it.
    virtual bool accept(const Record& record) = 0;
  };

  // Where a scan stopped: what resume() continues from.
  struct ScanEnd {
    bool header = false;  // the header verified (else the log holds nothing)
    std::uint64_t salt = 0;
    std::uint64_t base_lsn = 0;
    std::uint64_t end = 0;    // just past the last valid record
    std::uint32_t chain = 0;  // that record's CRC
  };

  // Counts a writer in the group commit while it lives.
  class [[nodiscard]] WriterCount {
   public:
    explicit WriterCount(RecordLog& log) noexcept : log_(log) { ++log_.writers_; }
    ~WriterCount() {
      --log_.writers_;
      log_.writer_left_.notify_all();
    }
    WriterCount(const WriterCount&) = delete;
    WriterCount& operator=(const WriterCount&) = delete;

   private:
    RecordLog& log_;
  };

  struct Stats {
    std::uint64_t writes = 0;  // tail writes
    std::uint64_t syncs = 0;
    std::uint64_t largest_group = 0;  // most commits acknowledged by one write
    std::uint64_t reads = 0;          // payload reads from the file
  };

  // Reads the log in `file` (of the database `database_id`, with the data
  // file's page size) and hands `visitor` its records in order, up to the
  // first that does not verify. A log with a damaged header, of another
  // database or another page size holds nothing.
  static Task<ScanEnd> scan(DiskManager& file, std::uint64_t database_id, Visitor& visitor);

  // A log that starts a new generation in `file` (whatever the file holds is
  // overwritten), after commit `last_commit`.
  RecordLog(std::unique_ptr<DiskManager> file, std::uint64_t database_id, Durability durability,
            std::uint64_t last_commit);
  // A log that continues the generation `scan` read, appending right after its
  // last valid record; commits up to `last_commit` count as durable.
  // REQUIRES: scan.header.
  static Task<std::unique_ptr<RecordLog>> resume(std::unique_ptr<DiskManager> file,
                                                 std::uint64_t database_id, Durability durability,
                                                 ScanEnd scan, std::uint64_t last_commit);
  ~RecordLog();
  RecordLog(const RecordLog&) = delete;
  RecordLog& operator=(const RecordLog&) = delete;

  // Appends a record to the tail; returns its offset (for read()). REQUIRES:
  // payload.size() <= max_payload(); `type` is not kPaddingType.
  std::uint64_t append(std::uint16_t type, std::uint64_t lsn, std::uint64_t page,
                       std::span<const std::byte> payload);
  // Appends commit record number last_commit() + 1 and returns that number.
  std::uint64_t append_commit(std::uint16_t type, std::span<const std::byte> payload);
  // Recovery: commit `n`, read back by a scan, is in the log already.
  void note_logged(std::uint64_t n) noexcept;
  // Writes the tail (not synced) once it holds 1 MiB, so that a large
  // transaction does not keep its whole log in memory.
  Task<void> spill();

  // Returns once commit `n` is durable (kSync) or written (kRelaxed).
  Task<void> wait_durable(std::uint64_t n);
  // Writes and fsyncs everything appended, whatever the durability mode.
  Task<void> sync_all();

  // Reads out.size() bytes of the payload of the record at `offset` of this
  // generation (from memory if they are not written yet).
  Task<void> read(std::uint64_t offset, std::span<std::byte> out);

  // Starts the next generation (a new salt; based on last_commit()) once the
  // reads of this one have finished. Nothing appended so far is kept.
  Task<void> reset();
  // reset(), as the log that takes over after another log's last commit
  // `last_commit` (Checkpointer's cut): that commit and those before it count
  // as durable here (the other log synced them).
  Task<void> start_after(std::uint64_t last_commit);

  // Closes the file, keeping it (the next open recovers from it).
  void close() noexcept;
  // Closes the file and deletes it.
  void close_and_remove();

  std::uint64_t last_commit() const noexcept { return last_commit_; }
  std::uint64_t durable_commit() const noexcept { return durable_commit_; }
  // Bytes appended in this generation (written or not), the header excluded.
  std::uint64_t bytes() const noexcept;
  // Counts reset()s (and the start): offsets from read() are valid within one.
  std::uint64_t generation() const noexcept { return generation_; }
  std::uint64_t salt() const noexcept { return salt_; }
  std::size_t max_payload() const noexcept;
  std::uint32_t page_size() const noexcept { return page_size_; }
  Durability durability() const noexcept { return durability_; }
  std::exception_ptr failure() const noexcept { return failed_; }
  const Stats& stats() const noexcept { return stats_; }
  const std::string& path() const noexcept { return file_->path(); }

 private:
  struct ResumeTag {};
  RecordLog(ResumeTag, std::unique_ptr<DiskManager> file, std::uint64_t database_id,
            Durability durability, std::uint64_t last_commit);

  void append_raw(std::uint16_t type, std::uint64_t lsn, std::uint64_t page,
                  std::span<const std::byte> payload, std::size_t zero_bytes);
  void start_generation();
  void encode_header(std::span<std::byte> block) const;
  void check_failed() const;
  // Writes the tail (and the header when due). REQUIRES: the flush turn.
  Task<void> write_tail();
  // Extends the file to at least `need` blocks (kGrowBytes at least). With
  // Durability::kSync it writes the new blocks with zeros, then syncs:
  // commits then overwrite blocks the file system holds as written, so their
  // fdatasync has only data to flush (into space that is only fallocated,
  // ext4 and XFS must also journal the conversion of its extents at every
  // commit's sync). With kRelaxed no commit syncs, so the blocks are only
  // allocated (they read as zeros): writing them twice cost about a sixth
  // of the CPU time of a fresh database's random inserts.
  Task<void> grow(std::uint64_t need);
  Task<void> write_and_sync(bool sync, bool gather);
  // Gives up the flush turn and wakes the tasks waiting for a flush to end.
  void end_flush(AsyncLockGuard& turn) noexcept;

  std::unique_ptr<DiskManager> file_;
  const std::uint32_t page_size_;
  const std::uint64_t database_id_;
  const Durability durability_;

  std::uint64_t generation_ = 0;
  std::uint64_t salt_ = 0;
  std::uint64_t base_lsn_ = 0;  // the header's
  std::uint32_t chain_ = 0;     // CRC of the last appended record
  bool header_due_ = true;      // the header of this generation is not written yet

  // Appended bytes from the block at tail_base_ on: file offsets
  // [tail_base_, tail_base_ + tail_.size()). The first kept_ of them (less
  // than a block) are in the file already: the next write rewrites that block.
  std::uint64_t tail_base_ = 0;
  std::vector<std::byte> tail_;
  std::size_t kept_ = 0;
  // The tail being written now (kept readable until the write completes).
  std::uint64_t writing_base_ = 0;
  std::vector<std::byte> writing_;

  std::uint64_t last_commit_ = 0;     // last commit appended
  std::uint64_t durable_commit_ = 0;  // last commit written (and synced, in kSync mode)

  AsyncMutex flush_;        // one write of the tail (or a reset) at a time
  Condition flush_ended_;   // a flush turn ended
  bool gathering_ = false;  // a committer waits for writers before it flushes
  std::uint64_t writers_ = 0;
  Condition writer_left_;
  DrainLatch reads_;  // payload reads from the file in flight
  std::exception_ptr failed_;
  Stats stats_;
};

}  // namespace corobtree
