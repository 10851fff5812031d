// PageImageStore: the buffer pool's PageStore over the write-ahead log. A
// dirty page the pool writes back (an eviction, or flush_all at a checkpoint)
// is appended to the log as a page-image record instead of overwriting the
// data file, which only checkpoints write; a page is read back from its
// newest image in the log, or from the data file if the log holds none.
//
// Two logs (Checkpointer's NAME-wal and NAME-wal2): images are appended to
// the current one. A checkpoint's cut (freeze()) turns the current index into
// the frozen one, of the log the cut ended, and appends go to the next log
// from then on. The newest image of a page is then the current log's, else
// the frozen log's, else the data file's copy. copy_frozen_to_data_file()
// writes the frozen images into the data file, and drop_frozen() (once the
// data file is synced) sends their reads to the data file.
//
// Each index (page -> offset of its newest image) covers its log's
// generation only: when the current RecordLog starts a new one (reset()),
// its index is dropped before it is used again, and reads go to the data
// file, which by then holds every image (the checkpoint copied them).
//
// Invariants: every offset in index_ is a page-image record of log_'s
// generation generation_, every offset in frozen_ one of frozen_log_'s
// (which appends nothing while it is frozen); an image appended later for
// the same page replaces the entry.
//
// Thread-safety: loop-affine, like the pool and the logs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>

#include <corobtree/task.h>

#include "engine/log/record_log.h"
#include "engine/pager/buffer_pool.h"
#include "io/disk_manager.h"

namespace corobtree {

class PageImageStore final : public PageStore {
 public:
  // The record type of a page image (its payload: the page, page-size bytes).
  static constexpr std::uint16_t kRecordType = 1;
  using Index = std::unordered_map<BlockId, std::uint64_t>;

  // REQUIRES: `log` and `data` outlive the store and have the same page size.
  PageImageStore(RecordLog& log, DiskManager& data);

  // Whether a scanned record is a well-formed page image.
  static bool is_image(const RecordLog::Record& r, std::uint32_t page_size) noexcept {
    return r.type == kRecordType && r.payload.size() == page_size;
  }

  // PageStore: the newest logged image of `id`, else the data file's copy.
  Task<void> read_page(BlockId id, std::span<std::byte> out) override;
  // One read of the data file when the log holds none of the pages.
  Task<void> read_pages_into(BlockId first, std::uint32_t page_size,
                             std::span<std::byte* const> pages) override;
  // Appends an image of `id` (stamped by the pool's hooks already).
  Task<void> write_page(BlockId id, std::span<const std::byte> page) override;

  // Writes the newest image of every page in the index into the data file,
  // taking clean cached copies from `pool` when it has them (null: none).
  // REQUIRES: nothing frozen.
  Task<void> copy_to_data_file(BufferPool* pool);
  // The cut of a checkpoint: the index becomes the frozen one (of the current
  // log, which appends nothing more) and images go to `next` from now on.
  // REQUIRES: nothing frozen; `next` has this log's page size, outlives the
  // store and is not the current log.
  void freeze(RecordLog& next);
  // Writes the newest frozen image of every page into the data file (read
  // from the frozen log: the pool's copies may be newer than the cut).
  Task<void> copy_frozen_to_data_file();
  // The data file holds (synced) every frozen image: reads go there.
  void drop_frozen() noexcept {
    frozen_.clear();
    frozen_log_ = nullptr;
  }
  bool has_frozen() const noexcept { return frozen_log_ != nullptr; }
  // Recovery: `index` (pages and offsets of images a scan of this generation
  // verified) becomes the index.
  void adopt(Index index);
  // The data file holds every image logged so far (copy_to_data_file() ran):
  // reads go there from now on.
  // REQUIRES: nothing frozen.
  void clear() noexcept { index_.clear(); }

  // The transaction number an image appended now belongs to (the log's
  // record carries it; the database stamps it into the page header).
  std::uint64_t next_lsn() const noexcept { return log_->last_commit() + 1; }
  // Distinct pages with an image in the current log's generation.
  std::uint64_t pages() const noexcept;
  // Page images appended since the store was made.
  std::uint64_t images_appended() const noexcept { return appended_; }

 private:
  void follow_generation() noexcept;
  static Task<void> copy_one(RecordLog& log, DiskManager& data, BufferPool* pool, BlockId id,
                             std::uint64_t offset);
  Task<void> copy_index(RecordLog& log, const Index& index, BufferPool* pool);

  RecordLog* log_;  // the current log: images are appended here
  DiskManager& data_;
  Index index_;
  RecordLog* frozen_log_ = nullptr;  // the log a checkpoint's cut ended, until copied
  Index frozen_;
  std::uint64_t generation_;
  std::uint64_t appended_ = 0;
};

}  // namespace corobtree
