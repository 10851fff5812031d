// Recovery: the opening half of engine/log/checkpointer.h.
#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>

#include <corobtree/error.h>

#include "engine/log/checkpointer.h"
#include "engine/log/log_format.h"
#include "engine/log/write_batch_internal.h"

namespace corobtree {

// Reads the scanned records: the transactions committed after the meta
// page's checkpoint, and the last checkpoint record with the newest image of
// each page before it (since the log's start or the last recovery mark).
// Rejects (ends the log at) a record of an unknown type, of the wrong size,
// or out of sequence: operations and commits number the transactions
// base + 1, base + 2, ...; a checkpoint names the last commit before it.
class Recovery::Scan final : public RecordLog::Visitor {
 public:
  Scan(std::uint64_t checkpoint_lsn, std::uint32_t page_size)
      : checkpoint_lsn_(checkpoint_lsn), page_size_(page_size) {}

  void begin(std::uint64_t base_lsn) override { last_commit = base_lsn; }

  bool accept(const RecordLog::Record& r) override {
    const std::uint64_t expected = last_commit + 1;
    if (PageImageStore::is_image(r, page_size_)) {
      images_[r.page] = r.offset;
      trailing_ops = 0;
      return true;
    }
    switch (r.type) {
      case TxnRecord::kRecoveryMark: images_.clear(); break;
      case TxnRecord::kOperations:
        if (r.lsn != expected) return false;
        pending_.append(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
        trailing_ops += r.end - r.offset;
        return true;
      case TxnRecord::kCommit:
        if (r.payload.size() != CommitRecord::kSize || r.lsn != expected) return false;
        if (r.lsn > checkpoint_lsn_) txns.emplace_back(r.lsn, std::move(pending_));
        pending_.clear();
        last_commit = r.lsn;
        break;
      case TxnRecord::kCheckpoint:
        if (r.payload.size() != CommitRecord::kSize || r.lsn != last_commit) return false;
        checkpoint = decode_commit_record(r.payload.data());
        checkpoint_lsn = r.lsn;
        checkpoint_images = images_;
        break;
      default: return false;
    }
    trailing_ops = 0;
    return true;
  }

  std::uint64_t last_commit = 0;   // the last commit read (else the header's base)
  std::uint64_t trailing_ops = 0;  // bytes of operations after it, never committed
  std::vector<std::pair<std::uint64_t, std::string>> txns;  // newer than the meta page's
  std::optional<CommitState> checkpoint;                    // the last checkpoint record's
  std::uint64_t checkpoint_lsn = 0;
  PageImageStore::Index checkpoint_images;

 private:
  const std::uint64_t checkpoint_lsn_;
  const std::uint32_t page_size_;
  PageImageStore::Index images_;
  std::string pending_;  // the operations of the transaction being read
};

Recovery::~Recovery() = default;

Task<std::unique_ptr<Recovery>> Recovery::open(std::array<std::unique_ptr<DiskManager>, 2> logs,
                                               DiskManager& data, Durability durability,
                                               Meta meta) {
  for (const std::unique_ptr<DiskManager>& log : logs) {
    if (log->page_size() != data.page_size()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the log '" + log->path() + "' must have the data file's page size");
    }
  }
  std::unique_ptr<Recovery> rec(new Recovery(data, meta));
  std::array<std::unique_ptr<Scan>, 2> scans;
  std::array<RecordLog::ScanEnd, 2> ends;
  for (int i = 0; i < 2; ++i) {
    scans[i] = std::make_unique<Scan>(meta.checkpoint_lsn, data.page_size());
    ends[i] = co_await RecordLog::scan(*logs[i], meta.database_id, *scans[i]);
  }

  // A checkpoint record newer than the meta page: the crash cut that
  // checkpoint short after its images were durable. Of the two logs', the
  // newest (the older log's, whose copy was running while the newer one
  // took the commits after its cut).
  int ck = -1;
  for (int i = 0; i < 2; ++i) {
    const Scan& sc = *scans[i];
    if (ends[i].header && sc.checkpoint && sc.checkpoint_lsn > meta.checkpoint_lsn &&
        (ck < 0 || sc.checkpoint_lsn > scans[ck]->checkpoint_lsn)) {
      ck = i;
    }
  }
  const bool interrupted = ck >= 0;
  const std::uint64_t checkpointed = interrupted ? scans[ck]->checkpoint_lsn : meta.checkpoint_lsn;

  // The transactions after it, from the logs in the order of their base
  // LSNs: they must follow on from it without a gap (a log whose commits are
  // all older contributes nothing; one that does not follow on is ignored).
  int order[2] = {0, 1};
  if (ends[1].header && (!ends[0].header || ends[1].base_lsn < ends[0].base_lsn)) {
    order[0] = 1;
    order[1] = 0;
  }
  int txn_log = -1;
  std::uint64_t last_commit = checkpointed;
  std::uint64_t next = checkpointed + 1;
  for (const int i : order) {
    if (!ends[i].header) continue;
    Scan& sc = *scans[i];
    last_commit = std::max(last_commit, sc.last_commit);
    std::erase_if(sc.txns, [checkpointed](const auto& t) { return t.first <= checkpointed; });
    if (sc.txns.empty()) continue;
    if (sc.txns.front().first != next) continue;  // not the next commits: damage
    next = sc.txns.back().first + 1;
    for (std::pair<std::uint64_t, std::string>& t : sc.txns) rec->txns_.push_back(std::move(t));
    txn_log = i;
  }
  RecoveryStats& st = rec->stats_;
  st.checkpoint = interrupted;
  st.checkpoint_lsn = interrupted ? checkpointed : 0;
  st.pages = interrupted ? scans[ck]->checkpoint_images.size() : 0;
  st.commits = rec->txns_.size();
  st.last_lsn = rec->txns_.empty() ? checkpointed : rec->txns_.back().first;
  st.ignored_bytes = txn_log >= 0 ? scans[txn_log]->trailing_ops : 0;

  // The log commits continue in: the one whose transactions are replayed,
  // else the one whose checkpoint is finished (it starts afresh below), else
  // NAME-wal. The one with records still needed keeps its generation; a log
  // that holds nothing newer than the data file starts a new one, which
  // writes nothing until it is used.
  rec->active_ = txn_log >= 0 ? txn_log : (ck >= 0 ? ck : 0);
  for (int i = 0; i < 2; ++i) {
    if (i == ck || i == txn_log) {
      rec->logs_[i] = co_await RecordLog::resume(std::move(logs[i]), meta.database_id, durability,
                                                 ends[i], checkpointed);
    } else {
      rec->logs_[i] = std::make_unique<RecordLog>(std::move(logs[i]), meta.database_id, durability,
                                                  i == rec->active_ ? last_commit : checkpointed);
    }
  }
  if (interrupted) {
    RecordLog& log = *rec->logs_[ck];
    const Scan& sc = *scans[ck];
    // Only images of the checkpoint's tree pages are copied: a page past its
    // page count would be cut off by the truncation at once (and is past the
    // end of the file), a meta page never has an image. A hostile log can
    // name any page.
    const std::uint64_t page_count = sc.checkpoint->page_count;
    if (!plausible(*sc.checkpoint)) {
      throw Error(ErrorCode::kCorruption,
                  "the log '" + log.path() + "' holds a checkpoint of impossible fields (" +
                      std::to_string(page_count) + " pages, root " +
                      std::to_string(sc.checkpoint->tree.root) + ", height " +
                      std::to_string(sc.checkpoint->tree.height) + ")",
                  0, data.path());
    }
    // Every page the checkpoint added past the end of the file was logged
    // (a new page is dirty): a larger count is damage, not a file to grow.
    if (page_count > data.block_count() &&
        page_count - data.block_count() > sc.checkpoint_images.size()) {
      throw Error(ErrorCode::kCorruption,
                  "the log '" + log.path() + "' holds a checkpoint of " +
                      std::to_string(page_count) + " pages, but '" + data.path() + "' has " +
                      std::to_string(data.block_count()) + " and the log images of only " +
                      std::to_string(sc.checkpoint_images.size()),
                  0, data.path());
    }
    PageImageStore::Index images = sc.checkpoint_images;
    std::erase_if(images, [page_count](const auto& image) {
      return image.first < 2 || image.first >= page_count;
    });
    PageImageStore store(log, data);
    store.adopt(std::move(images));
    co_await rec->finish_checkpoint(store, *sc.checkpoint, checkpointed);
    if (rec->txns_.empty()) co_await log.reset();
  }
  rec->store_ = std::make_unique<PageImageStore>(*rec->logs_[rec->active_], data);
  if (!rec->txns_.empty()) {
    // Replay appends after the transactions it replays; images logged before
    // this mark are stale for a later scan (the pages changed since).
    rec->logs_[rec->active_]->append(TxnRecord::kRecoveryMark, 0, 0, {});
  }
  // Blocks allocated after the checkpoint hold nothing it needs.
  if (data.block_count() > rec->meta_.state.page_count) {
    data.truncate_blocks(rec->meta_.state.page_count);
  }
  co_return rec;
}

Task<void> Recovery::finish_checkpoint(PageImageStore& store, const CommitState& state,
                                       std::uint64_t lsn) {
  if (data_.block_count() < state.page_count) {
    data_.allocate_blocks(state.page_count - data_.block_count());
  }
  co_await store.copy_to_data_file(nullptr);
  data_.truncate_blocks(state.page_count);  // blocks of a transaction that never committed
  co_await data_.sync();
  meta_.sequence += 1;
  meta_.state = state;
  meta_.checkpoint_lsn = lsn;
  co_await Checkpointer::write_meta_page(data_, meta_);
  co_await data_.sync();
  wrote_meta_ = true;
}

Task<std::unique_ptr<Checkpointer>> Recovery::replay(LoggedTree& tree, BufferPool& pool) {
  if (!store_) throw Error(ErrorCode::kInvalidArgument, "the log was replayed already");
  const std::string path = logs_[active_]->path();
  // Every transaction is decoded (and checked) before the first is applied.
  std::vector<std::pair<std::uint64_t, WriteBatch>> batches;
  batches.reserve(txns_.size());
  for (std::pair<std::uint64_t, std::string>& t : txns_) {
    const std::string source =
        "transaction " + std::to_string(t.first) + " in the log '" + path + "'";
    batches.emplace_back(t.first,
                         WriteBatchInternal::from_contents(std::move(t.second), source, path));
  }
  txns_.clear();
  std::unique_ptr<Checkpointer> cp(new Checkpointer(std::move(logs_), active_, std::move(store_),
                                                    data_, meta_, wrote_meta_, tree, pool));
  for (const std::pair<std::uint64_t, WriteBatch>& b : batches) {
    co_await tree.redo(b.second);
    cp->log_->note_logged(b.first);
  }
  if (!batches.empty()) {
    cp->modified_ = true;
    co_await cp->checkpoint();
  }
  co_return cp;
}

}  // namespace corobtree
