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

Checkpointer::Checkpointer(std::unique_ptr<RecordLog> log, std::unique_ptr<PageImageStore> store,
                           DiskManager& data, Meta meta, bool metas_differ, LoggedTree& tree,
                           BufferPool& pool)
    : log_(std::move(log)),
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

WalStats Checkpointer::stats() const noexcept {
  const RecordLog::Stats& l = log_->stats();
  WalStats s;
  s.commits = commits_;
  s.page_records = store_->images_appended();
  s.writes = l.writes;
  s.syncs = l.syncs;
  s.largest_group = l.largest_group;
  s.log_reads = l.reads;
  s.bytes = log_->bytes();
  s.pages = store_->pages();
  return s;
}

std::uint64_t Checkpointer::commit(const WriteBatch& batch) {
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

Task<void> Checkpointer::write_next_meta(const CommitState& state) {
  Meta m = meta_;
  m.page_size = data_.page_size();
  m.sequence = meta_.sequence + 1;
  m.state = state;
  m.checkpoint_lsn = log_->last_commit();
  co_await write_meta_page(data_, m);
  meta_ = m;
}

Task<void> Checkpointer::checkpoint() {
  // Dirty pages go to the log as images (with the ones evicted earlier, the
  // newest image of every page changed since the last checkpoint).
  co_await pool_.flush_all();
  if (modified_) {
    // The images are durable before the data file is overwritten: a crash
    // while copying is repaired from them at the next open.
    const CommitState state = tree_.commit_state();
    std::byte payload[CommitRecord::kSize] = {};
    encode_commit_record(state, payload);
    log_->append(TxnRecord::kCheckpoint, log_->last_commit(), 0, payload);
    end_transaction();
    co_await log_->sync_all();
    co_await store_->copy_to_data_file(&pool_);
    co_await data_.sync();
    co_await write_next_meta(state);
    co_await data_.sync();
    metas_differ_ = true;
  }
  // The data file holds every image now: the next generation starts empty.
  co_await log_->reset();
  ++checkpoints_;
  modified_ = false;
}

void Checkpointer::data_file_replaced(const Meta& meta) {
  if (modified_ || in_transaction() || meta.database_id != meta_.database_id ||
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
    co_await write_next_meta(tree_.commit_state());
    co_await data_.sync();
    metas_differ_ = false;
  }
  co_await pool_.close();
  log_->close_and_remove();
}

}  // namespace corobtree
