#include "engine/log/checkpointer.h"

#include <algorithm>

#include <corobtree/error.h>

#include "engine/log/log_format.h"
#include "engine/log/write_batch_internal.h"
#include "io/aligned_buffer.h"

namespace corobtree {

static_assert(TxnRecord::kOperations != RecordLog::kPaddingType &&
              TxnRecord::kCommit != RecordLog::kPaddingType &&
              TxnRecord::kCheckpoint != RecordLog::kPaddingType &&
              TxnRecord::kRecoveryMark != RecordLog::kPaddingType);
static_assert(TxnRecord::kOperations != PageImageStore::kRecordType &&
              TxnRecord::kCommit != PageImageStore::kRecordType &&
              TxnRecord::kCheckpoint != PageImageStore::kRecordType &&
              TxnRecord::kRecoveryMark != PageImageStore::kRecordType);

Checkpointer::Checkpointer(std::array<std::unique_ptr<RecordLog>, 2> logs, int active,
                           std::unique_ptr<PageImageStore> store, DiskManager& data, Meta meta,
                           bool metas_differ, LoggedTree& tree, BufferPool& pool)
    : logs_(std::move(logs)),
      log_(logs_[active].get()),
      store_(std::move(store)),
      data_(data),
      tree_(tree),
      pool_(pool),
      meta_(meta),
      metas_differ_(metas_differ) {
  end_transaction();
}

Checkpointer::~Checkpointer() = default;

bool Checkpointer::in_transaction() const noexcept {
  return store_->images_appended() != images_at_commit_;
}

std::exception_ptr Checkpointer::failure() const noexcept {
  if (failed_) return failed_;
  if (logs_[0]->failure()) return logs_[0]->failure();
  return logs_[1]->failure();
}

WalStats Checkpointer::stats() const noexcept {
  WalStats s;
  s.commits = commits_;
  s.page_records = store_->images_appended();
  for (const std::unique_ptr<RecordLog>& log : logs_) {
    const RecordLog::Stats& l = log->stats();
    s.writes += l.writes;
    s.syncs += l.syncs;
    s.largest_group = std::max(s.largest_group, l.largest_group);
    s.log_reads += l.reads;
  }
  s.bytes = log_->bytes();
  s.pages = store_->pages();
  return s;
}

std::uint64_t Checkpointer::commit(const WriteBatch& batch) {
  if (failed_) std::rethrow_exception(failed_);
  const std::span<const std::byte> ops = WriteBatchInternal::contents(batch);
  const std::uint64_t lsn = log_->last_commit() + 1;
  for (std::size_t at = 0; at < ops.size(); at += RecordLog::kMaxPayload) {
    const std::size_t n = std::min(RecordLog::kMaxPayload, ops.size() - at);
    log_->append(TxnRecord::kOperations, lsn, 0, ops.subspan(at, n));
  }
  std::byte payload[CommitRecord::kSize] = {};
  encode_commit_record(tree_.commit_state(), payload);
  log_->append_commit(TxnRecord::kCommit, payload);
  end_transaction();
  modified_ = true;
  ++commits_;
  return lsn;
}

Task<std::uint64_t> Checkpointer::commit_through_checkpoint() {
  const WriteBatch nothing;  // the pages are the change; the checkpoint writes them
  const std::uint64_t lsn = commit(nothing);
  co_await checkpoint();
  co_return lsn;
}

Task<void> Checkpointer::write_meta_page(DiskManager& data, const Meta& m) {
  AlignedBuffer buf(data.page_size());
  const BlockId slot = m.sequence % 2;
  encode_meta(m, slot, buf.span());
  co_await data.write_block(slot, buf.span());
}

Task<void> Checkpointer::write_next_meta(const CommitState& state, std::uint64_t lsn) {
  Meta m = meta_;
  m.page_size = data_.page_size();
  m.sequence = meta_.sequence + 1;
  m.state = state;
  m.checkpoint_lsn = lsn;
  co_await write_meta_page(data_, m);
  meta_ = m;
}

Task<bool> Checkpointer::cut() {
  if (failed_) std::rethrow_exception(failed_);
  if (pending_) {
    throw Error(ErrorCode::kInvalidArgument,
                "a checkpoint of '" + log_->path() + "' is still being copied");
  }
  // Dirty pages go to the log as images (with the ones evicted earlier, the
  // newest image of every page changed since the last checkpoint).
  co_await pool_.flush_all();
  if (!modified_) {
    ++checkpoints_;  // nothing to copy: the data file holds every commit
    co_return false;
  }
  // The images are durable before the data file is overwritten: a crash
  // while copying is repaired from them at the next open.
  const CommitState state = tree_.commit_state();
  const std::uint64_t lsn = log_->last_commit();
  std::byte payload[CommitRecord::kSize] = {};
  encode_commit_record(state, payload);
  log_->append(TxnRecord::kCheckpoint, lsn, 0, payload);
  end_transaction();
  co_await log_->sync_all();
  // The other log's generation was copied by the previous checkpoint: a new
  // one starts there, after the cut's commit.
  RecordLog& next = log_ == logs_[0].get() ? *logs_[1] : *logs_[0];
  co_await next.start_after(lsn);
  store_->freeze(next);
  log_ = &next;
  end_transaction();
  pending_ = Pending{state, lsn};
  modified_ = false;
  co_return true;
}

Task<void> Checkpointer::copy_checkpoint() {
  if (failed_) std::rethrow_exception(failed_);
  if (!pending_) co_return;
  const Pending p = *pending_;
  std::exception_ptr error;
  try {
    co_await store_->copy_frozen_to_data_file();
    co_await data_.sync();
    co_await write_next_meta(p.state, p.lsn);
    co_await data_.sync();
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    // Like a failed log write: the database stops; reopening finishes the
    // checkpoint from the images in the log.
    failed_ = error;
    std::rethrow_exception(error);
  }
  store_->drop_frozen();
  pending_.reset();
  metas_differ_ = true;
  ++checkpoints_;
}

Task<void> Checkpointer::checkpoint() {
  const bool cut_now = co_await cut();
  if (cut_now) co_await copy_checkpoint();
}

void Checkpointer::data_file_replaced(const Meta& meta) {
  if (modified_ || in_transaction() || pending_ || meta.database_id != meta_.database_id ||
      meta.checkpoint_lsn != meta_.checkpoint_lsn || meta.sequence <= meta_.sequence) {
    throw Error(ErrorCode::kInvalidArgument,
                "the data file of '" + log_->path() +
                    "' may be replaced only right after a checkpoint, by one of the same "
                    "database and checkpoint");
  }
  meta_ = meta;
  metas_differ_ = false;  // the new file holds `meta` in both slots
  store_->clear();        // its images (none since the checkpoint) named the old file's pages
}

Task<void> Checkpointer::close() {
  // A database that was only read is left byte for byte as it was.
  if (modified_) co_await checkpoint();
  if (metas_differ_) {
    // The log goes away now, so the other meta page must not keep an older
    // state (it would point at pages a checkpoint overwrote): write it too.
    co_await write_next_meta(tree_.commit_state(), log_->last_commit());
    co_await data_.sync();
    metas_differ_ = false;
  }
  co_await pool_.close();
  logs_[0]->close_and_remove();
  logs_[1]->close_and_remove();
}

}  // namespace corobtree
