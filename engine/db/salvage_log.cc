// Reading a damaged database's log for salvage (engine/db/salvage_log.h).
#include "engine/db/salvage_log.h"

#include <algorithm>

#include <corobtree/error.h>
#include <corobtree/options.h>

#include "engine/log/batch_format.h"
#include "engine/log/checkpointer.h"
#include "engine/log/log_format.h"
#include "engine/log/page_image_store.h"
#include "engine/log/record_log.h"

namespace corobtree {

namespace {

// The records recovery reads (engine/log/recovery.cc, Recovery::Scan), in
// the same order and with the same checks: operations and commits number
// the transactions base + 1, base + 2, ...; a checkpoint names the last
// commit before it; anything else ends the log.
class SalvageScan final : public RecordLog::Visitor {
 public:
  SalvageScan(SalvagedLog& out, std::uint32_t page_size) : out_(out), page_size_(page_size) {}

  void begin(std::uint64_t base_lsn) override { last_commit_ = base_lsn; }

  bool accept(const RecordLog::Record& r) override {
    const std::uint64_t expected = last_commit_ + 1;
    if (PageImageStore::is_image(r, page_size_)) {
      // The log's own size bounds what this keeps.
      images_[r.page] =
          std::make_shared<const std::vector<std::byte>>(r.payload.begin(), r.payload.end());
      return true;
    }
    switch (r.type) {
      case TxnRecord::kRecoveryMark: images_.clear(); return true;
      case TxnRecord::kOperations:
        if (r.lsn != expected) return false;
        pending_.append(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
        return true;
      case TxnRecord::kCommit:
        if (r.payload.size() != CommitRecord::kSize || r.lsn != expected) return false;
        out_.txns.emplace_back(r.lsn, std::move(pending_));
        pending_.clear();
        last_commit_ = r.lsn;
        return true;
      case TxnRecord::kCheckpoint:
        if (r.payload.size() != CommitRecord::kSize || r.lsn != last_commit_) return false;
        out_.checkpoint = decode_commit_record(r.payload.data());
        out_.checkpoint_lsn = r.lsn;
        out_.checkpoint_images = images_;  // shares the images
        return true;
      default: return false;
    }
  }

 private:
  SalvagedLog& out_;
  const std::uint32_t page_size_;
  std::uint64_t last_commit_ = 0;
  std::map<BlockId, std::shared_ptr<const std::vector<std::byte>>> images_;
  std::string pending_;
};

}  // namespace

Task<SalvagedLog> read_salvage_log(DiskManager& file, std::uint64_t database_id) {
  SalvagedLog out;
  if (file.block_count() < 2) co_return out;
  AlignedBuffer head(file.page_size());
  co_await file.read_block(0, head.span());
  for (const std::byte b : head.span()) out.written = out.written || b != std::byte{0};
  if (database_id == 0) {
    // No meta page to name the database: take the header's word for it.
    if (LogHeader::Magic::get(head.data()) != kLogMagic) co_return out;
    database_id = LogHeader::DatabaseId::get(head.data());
  }
  SalvageScan scan(out, file.page_size());
  const RecordLog::ScanEnd end = co_await RecordLog::scan(file, database_id, scan);
  out.header = end.header;
  out.database_id = database_id;
  out.base_lsn = end.base_lsn;
  co_return out;
}

SalvagedLog merge_salvage_logs(std::vector<SalvagedLog> logs) {
  if (logs.empty()) return {};
  std::stable_sort(logs.begin(), logs.end(), [](const SalvagedLog& a, const SalvagedLog& b) {
    return a.base_lsn < b.base_lsn;
  });
  SalvagedLog out = std::move(logs.front());
  for (std::size_t i = 1; i < logs.size(); ++i) {
    SalvagedLog& l = logs[i];
    const std::uint64_t last = out.txns.empty() ? 0 : out.txns.back().first;
    for (std::pair<std::uint64_t, std::string>& t : l.txns) {
      if (t.first > last) out.txns.push_back(std::move(t));
    }
    if (l.checkpoint && (!out.checkpoint || l.checkpoint_lsn > out.checkpoint_lsn)) {
      out.checkpoint = l.checkpoint;
      out.checkpoint_lsn = l.checkpoint_lsn;
      out.checkpoint_images = std::move(l.checkpoint_images);
    }
    out.written = out.written || l.written;
  }
  return out;
}

LogEffect log_effect(const SalvagedLog& log, std::uint64_t after, std::uint32_t max_key,
                     const std::string& path) {
  LogEffect e;
  for (const auto& [lsn, ops] : log.txns) {
    if (lsn <= after) continue;
    // Decode the whole transaction before applying any of it.
    const std::string source = "transaction " + std::to_string(lsn) + " of the log '" + path + "'";
    std::vector<BatchOp> decoded;
    try {
      BatchReader reader(as_bytes(ops), source, path);
      BatchOp op;
      while (reader.next(op)) {
        if (op.key.size() > max_key || op.value.size() > kMaxValueSize) {
          throw Error(ErrorCode::kCorruption,
                      source + " holds a key of " + std::to_string(op.key.size()) +
                          " bytes or a value of " + std::to_string(op.value.size()) +
                          " bytes, beyond the limits",
                      0, path);
        }
        decoded.push_back(op);
      }
    } catch (const Error& err) {
      e.error = err.what();
      return e;
    }
    for (const BatchOp& op : decoded) {
      std::optional<std::string>& slot = e.last[std::string(op.key)];
      if (op.kind == OpKind::kPut) {
        slot = std::string(op.value);
      } else {
        slot.reset();
      }
    }
    ++e.transactions;
    e.operations += decoded.size();
  }
  return e;
}

}  // namespace corobtree
