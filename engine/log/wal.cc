#include "engine/log/wal.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "engine/format/crc32c.h"
#include "engine/format/page_format.h"
#include "io/aligned_buffer.h"
#include <corobtree/error.h>
#include "io/scheduler.h"
#include <corobtree/when_all.h>

namespace corobtree {

namespace {

using le::load;
using le::store;

constexpr std::uint32_t kWalMagic = 0x4c574243u;  // "CBWL"
constexpr std::uint32_t kWalVersion = 1;
constexpr std::uint32_t kWalHeaderBytes = 64;

constexpr std::uint16_t kRecPage = 1;
constexpr std::uint16_t kRecCommit = 2;
constexpr std::uint16_t kRecPad = 3;
constexpr std::uint16_t kRecOps = 4;   // a transaction's operations (a chunk of them)
constexpr std::uint16_t kRecCkpt = 5;  // every page image a checkpoint needs precedes it
constexpr std::uint16_t kRecMark = 6;  // recovery resumed here: earlier page images are stale
constexpr std::uint32_t kCommitPayload = 48;
constexpr std::size_t kOpsChunk = std::size_t{64} << 10;

// A transaction's tail is written (not synced) once it holds this much, so a
// large transaction does not keep its whole log in memory.
constexpr std::size_t kSpillWriteBytes = std::size_t{1} << 20;
// The log file grows by at least this many bytes at a time.
constexpr std::uint64_t kGrowBytes = std::uint64_t{4} << 20;
// A reset shrinks a log file larger than this back to kGrowBytes (keeping a
// log of the usual size saves extending it again at every checkpoint).
constexpr std::uint64_t kShrinkAboveBytes = std::uint64_t{256} << 20;
// Group commit: how many transactions the flushing committer waits for at
// most (while writers are inside one or queued for one) before it writes.
constexpr int kMaxGatherRounds = 256;
// Recovery reads the log this many blocks at a time.
constexpr std::uint64_t kScanBlocks = 64;

struct Yield {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { Scheduler::current().post(h); }
  void await_resume() const noexcept {}
};

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void encode_commit(const CommitState& s, std::byte* p) noexcept {
  store<std::uint64_t>(p, 0, s.tree.root);
  store<std::uint32_t>(p, 8, s.tree.height);
  store<std::uint32_t>(p, 12, s.tree.minimum_degree);
  store<std::uint64_t>(p, 16, s.tree.key_count);
  store<std::uint64_t>(p, 24, s.tree.free_head);
  store<std::uint64_t>(p, 32, s.tree.free_pages);
  store<std::uint64_t>(p, 40, s.page_count);
}

CommitState decode_commit(const std::byte* p) noexcept {
  CommitState s;
  s.tree.root = load<std::uint64_t>(p, 0);
  s.tree.height = load<std::uint32_t>(p, 8);
  s.tree.minimum_degree = load<std::uint32_t>(p, 12);
  s.tree.key_count = load<std::uint64_t>(p, 16);
  s.tree.free_head = load<std::uint64_t>(p, 24);
  s.tree.free_pages = load<std::uint64_t>(p, 32);
  s.page_count = load<std::uint64_t>(p, 40);
  return s;
}

}  // namespace

// ---- Wal ---------------------------------------------------------------------

Wal::Wal(std::unique_ptr<DiskManager> log, DiskManager& data, Durability durability,
         std::uint64_t database_id, std::uint64_t last_lsn)
    : log_(std::move(log)),
      data_(data),
      durability_(durability),
      page_size_(data.page_size()),
      database_id_(database_id),
      last_lsn_(last_lsn),
      durable_lsn_(last_lsn) {
  if (log_->page_size() != page_size_) {
    throw Error(ErrorCode::kInvalidArgument, "the log '" + log_->path() +
                                                 "' must have the data file's page size");
  }
  salt_ = mix(database_id ^ std::random_device{}());
}

Wal::~Wal() = default;

void Wal::check_failed() const {
  if (failed_) std::rethrow_exception(failed_);
}

std::uint64_t Wal::bytes() const noexcept {
  return tail_base_ + tail_.size() - page_size_;
}

WalStats Wal::stats() const noexcept {
  WalStats s = stats_;
  s.bytes = bytes();
  s.pages = index_.size();
  return s;
}

void Wal::start_generation() {
  salt_ = mix(salt_ ^ mix(last_lsn_) ^ std::random_device{}());
  base_lsn_ = last_lsn_;
  std::byte seed[16];
  store<std::uint64_t>(seed, 0, salt_);
  store<std::uint64_t>(seed, 8, database_id_);
  chain_ = crc32c(seed, sizeof seed);
  header_due_ = true;
  tail_base_ = page_size_;
  tail_.clear();
  writing_.clear();
  writing_base_ = page_size_;
  index_.clear();
  txn_records_ = 0;
}

void Wal::encode_header(std::span<std::byte> block) const {
  std::memset(block.data(), 0, block.size());
  std::byte* p = block.data();
  store<std::uint32_t>(p, 4, kWalMagic);
  store<std::uint32_t>(p, 8, kWalVersion);
  store<std::uint32_t>(p, 12, page_size_);
  store<std::uint64_t>(p, 16, database_id_);
  store<std::uint64_t>(p, 24, salt_);
  store<std::uint64_t>(p, 32, base_lsn_);
  store<std::uint32_t>(p, 0, crc32c(p + 4, kWalHeaderBytes - 4));
}

// ---- appending -----------------------------------------------------------------

void Wal::append_record(std::uint16_t type, std::uint64_t lsn, std::uint64_t page,
                        std::span<const std::byte> payload, std::size_t zero_payload) {
  const std::size_t len = payload.size() + zero_payload;
  const std::size_t at = tail_.size();
  tail_.resize(at + kRecordHeader + len);  // zero-filled
  std::byte* h = tail_.data() + at;
  store<std::uint16_t>(h, 4, type);
  store<std::uint32_t>(h, 8, static_cast<std::uint32_t>(len));
  store<std::uint64_t>(h, 16, lsn);
  store<std::uint64_t>(h, 24, page);
  if (!payload.empty()) std::memcpy(h + kRecordHeader, payload.data(), payload.size());
  chain_ = crc32c_extend(chain_, h + 4, kRecordHeader - 4 + len);
  store<std::uint32_t>(h, 0, chain_);
}

void Wal::pad_to_block() {
  const std::uint64_t end = tail_base_ + tail_.size();
  std::uint64_t rem = page_size_ - end % page_size_;
  if (rem == page_size_) return;
  if (rem < kRecordHeader) rem += page_size_;
  append_record(kRecPad, 0, 0, {}, rem - kRecordHeader);
}

Task<void> Wal::write_page(BlockId id, std::span<const std::byte> page) {
  check_failed();
  const std::uint64_t offset = tail_base_ + tail_.size();
  append_record(kRecPage, last_lsn_ + 1, id, page, 0);
  index_[id] = offset;
  ++txn_records_;
  ++stats_.page_records;
  if (tail_.size() >= kSpillWriteBytes) {
    co_await acquire_flush();
    std::exception_ptr error;
    try {
      co_await write_tail();
    } catch (...) {
      error = std::current_exception();
    }
    release_flush();
    if (error) std::rethrow_exception(error);
  }
}

std::uint64_t Wal::append_commit(const CommitState& state) {
  check_failed();
  std::byte payload[kCommitPayload] = {};
  encode_commit(state, payload);
  const std::uint64_t lsn = ++last_lsn_;
  append_record(kRecCommit, lsn, 0, payload, 0);
  txn_records_ = 0;
  ++stats_.commits;
  return lsn;
}

void Wal::append_ops(std::span<const std::byte> ops) {
  check_failed();
  for (std::size_t at = 0; at < ops.size(); at += kOpsChunk) {
    append_record(kRecOps, last_lsn_ + 1, 0, ops.subspan(at, std::min(kOpsChunk, ops.size() - at)),
                  0);
  }
  ++txn_records_;
}

void Wal::append_checkpoint(const CommitState& state) {
  check_failed();
  std::byte payload[kCommitPayload] = {};
  encode_commit(state, payload);
  append_record(kRecCkpt, last_lsn_, 0, payload, 0);
  txn_records_ = 0;
}

void Wal::note_replayed(std::uint64_t lsn) noexcept {
  last_lsn_ = std::max(last_lsn_, lsn);
  durable_lsn_ = std::max(durable_lsn_, lsn);
  txn_records_ = 0;
}

Task<void> Wal::continue_after_scan() {
  // Append right after the last valid record, in the same generation: the
  // block holding it is rewritten with the same bytes before that point, so a
  // torn write cannot damage them (sectors are written whole).
  const std::uint64_t block = scan_end_ / page_size_;
  const std::uint64_t within = scan_end_ % page_size_;
  tail_.clear();
  writing_.clear();
  tail_base_ = writing_base_ = block * page_size_;
  if (within > 0) {
    AlignedBuffer buf(page_size_);
    co_await log_->read_block(block, buf.span());
    tail_.assign(buf.data(), buf.data() + within);
  }
  salt_ = scan_salt_;
  base_lsn_ = scan_base_lsn_;
  chain_ = scan_chain_;
  header_due_ = false;
  index_.clear();
  append_record(kRecMark, 0, 0, {}, 0);
}

// ---- writing -------------------------------------------------------------------

Task<void> Wal::acquire_flush() {
  while (flushing_) co_await detail::ListAwaiter(flush_waiters_);
  flushing_ = true;
}

void Wal::release_flush() noexcept {
  flushing_ = false;
  while (detail::WaiterNode* n = flush_waiters_.pop_front()) Scheduler::current().post(n->handle);
}

Task<void> Wal::write_tail() {
  if (tail_.empty() && !header_due_) co_return;
  pad_to_block();
  writing_base_ = tail_base_;
  writing_ = std::move(tail_);
  tail_ = {};
  tail_base_ += writing_.size();
  const std::uint64_t first = writing_base_ / page_size_;
  const std::uint64_t n = writing_.size() / page_size_;
  std::vector<std::byte> header;
  try {
    const std::uint64_t need = first + n;
    if (log_->block_count() < need) {
      log_->allocate_blocks(std::max(need - log_->block_count(), kGrowBytes / page_size_));
    }
    std::vector<Task<void>> writes;
    if (header_due_) {
      header.resize(page_size_);
      encode_header(header);
      writes.push_back(log_->write_block(0, header));
    }
    writes.push_back(log_->write_blocks(first, writing_));
    co_await when_all(std::move(writes));
  } catch (...) {
    if (!failed_) failed_ = std::current_exception();
    throw;
  }
  header_due_ = false;
  ++stats_.writes;
  writing_.clear();
  if (tail_.empty()) std::swap(tail_, writing_);  // reuse the capacity
}

Task<void> Wal::write_and_sync(bool sync, bool gather) {
  if (gather) {
    // Let the writers that are ready now, and those inside a transaction or
    // queued for one, append their commits first, so that one write and one
    // fsync acknowledge them all.
    gathering_ = true;
    co_await Yield{};
    for (int i = 0; i < kMaxGatherRounds && writers_ > 0; ++i) {
      co_await detail::ListAwaiter(writer_waiters_);
    }
    gathering_ = false;
  }
  co_await acquire_flush();
  const std::uint64_t target = last_lsn_;
  std::exception_ptr error;
  try {
    co_await write_tail();
    if (sync) {
      co_await log_->sync();
      ++stats_.syncs;
    }
  } catch (...) {
    error = std::current_exception();
    if (!failed_) failed_ = error;
  }
  if (!error && target > durable_lsn_) {
    stats_.largest_group = std::max(stats_.largest_group, target - durable_lsn_);
    durable_lsn_ = target;
  }
  release_flush();
  if (error) std::rethrow_exception(error);
}

Task<void> Wal::wait_durable(std::uint64_t lsn) {
  for (;;) {
    check_failed();
    if (durable_lsn_ >= lsn) co_return;
    if (flushing_ || gathering_) {
      co_await detail::ListAwaiter(flush_waiters_);
      continue;
    }
    co_await write_and_sync(durability_ == Durability::kSync, true);
  }
}

void Wal::end_writer() noexcept {
  --writers_;
  while (detail::WaiterNode* n = writer_waiters_.pop_front()) Scheduler::current().post(n->handle);
}

Task<void> Wal::sync_all() {
  check_failed();
  co_await write_and_sync(true, false);
}

// ---- reading -------------------------------------------------------------------

Task<void> Wal::read_record_payload(std::uint64_t offset, std::span<std::byte> out) {
  const std::uint64_t p = offset + kRecordHeader;
  if (p >= tail_base_) {
    std::memcpy(out.data(), tail_.data() + (p - tail_base_), page_size_);
    co_return;
  }
  if (!writing_.empty() && p >= writing_base_) {
    std::memcpy(out.data(), writing_.data() + (p - writing_base_), page_size_);
    co_return;
  }
  const std::uint64_t block = p / page_size_;
  const std::uint64_t within = p % page_size_;
  const std::uint64_t blocks = within == 0 ? 1 : 2;
  AlignedBuffer buf(blocks * page_size_);
  ++log_reads_in_flight_;
  ++stats_.log_reads;
  std::exception_ptr error;
  try {
    for (std::uint64_t i = 0; i < blocks; ++i) {
      co_await log_->read_block(block + i,
                                std::span<std::byte>(buf.data() + i * page_size_, page_size_));
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (--log_reads_in_flight_ == 0) {
    while (detail::WaiterNode* n = read_waiters_.pop_front()) Scheduler::current().post(n->handle);
  }
  if (error) std::rethrow_exception(error);
  std::memcpy(out.data(), buf.data() + within, page_size_);
}

Task<void> Wal::read_page(BlockId id, std::span<std::byte> out) {
  const auto it = index_.find(id);
  if (it == index_.end()) {
    co_await data_.read_block(id, out);
    co_return;
  }
  co_await read_record_payload(it->second, out);
}

// ---- checkpoint support --------------------------------------------------------

Task<void> Wal::copy_one(DiskManager& data, BufferPool* pool, BlockId id, std::uint64_t offset) {
  AlignedBuffer buf(page_size_);
  if (pool == nullptr || !pool->copy_if_clean(id, buf.span())) {
    co_await read_record_payload(offset, buf.span());
  }
  co_await data.write_block(id, buf.span());
}

Task<void> Wal::copy_pages_to(DiskManager& data, BufferPool* pool) {
  check_failed();
  std::vector<std::pair<BlockId, std::uint64_t>> pages(index_.begin(), index_.end());
  std::sort(pages.begin(), pages.end());
  constexpr std::size_t kBatch = 32;
  for (std::size_t i = 0; i < pages.size(); i += kBatch) {
    std::vector<Task<void>> copies;
    for (std::size_t j = i; j < std::min(pages.size(), i + kBatch); ++j) {
      copies.push_back(copy_one(data, pool, pages[j].first, pages[j].second));
    }
    co_await when_all(std::move(copies));
  }
}

Task<void> Wal::reset() {
  check_failed();
  co_await acquire_flush();
  while (log_reads_in_flight_ > 0) co_await detail::ListAwaiter(read_waiters_);
  std::exception_ptr error;
  try {
    if (log_->block_count() * page_size_ > kShrinkAboveBytes) {
      log_->truncate_blocks(kGrowBytes / page_size_);
    }
  } catch (...) {
    error = std::current_exception();
  }
  start_generation();
  release_flush();
  if (error) std::rethrow_exception(error);
}

void Wal::close() noexcept { log_->close(); }

void Wal::close_and_remove() {
  const std::string path = log_->path();
  log_->close();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw errno_error(errno, "unlink", path);
}

// ---- recovery ------------------------------------------------------------------

Task<WalRecovery> Wal::recover(std::uint64_t checkpoint_lsn) {
  WalRecovery r;
  const std::uint64_t blocks = log_->block_count();
  const std::uint64_t file_end = blocks * page_size_;
  start_generation();  // what the next append uses unless the log holds commits
  if (blocks < 2) co_return r;
  AlignedBuffer head(page_size_);
  co_await log_->read_block(0, head.span());
  const std::byte* h = head.data();
  if (load<std::uint32_t>(h, 0) != crc32c(h + 4, kWalHeaderBytes - 4) ||
      load<std::uint32_t>(h, 4) != kWalMagic || load<std::uint32_t>(h, 8) != kWalVersion ||
      load<std::uint32_t>(h, 12) != page_size_ || load<std::uint64_t>(h, 16) != database_id_) {
    co_return r;  // never written, torn at a reset, or not this database's log
  }
  const std::uint64_t salt = load<std::uint64_t>(h, 24);
  const std::uint64_t base_lsn = load<std::uint64_t>(h, 32);
  std::byte seed[16];
  store<std::uint64_t>(seed, 0, salt);
  store<std::uint64_t>(seed, 8, database_id_);
  std::uint32_t chain = crc32c(seed, sizeof seed);

  // A window of the file, refilled kScanBlocks blocks at a time.
  std::vector<std::byte> win;
  std::uint64_t win_off = 0;
  std::unordered_map<BlockId, std::uint64_t> images;  // newest image per page since the start or a mark
  std::vector<std::byte> pending;                      // the open transaction's operations
  std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> txns;
  std::optional<CommitState> ckpt_state;
  std::uint64_t ckpt_lsn = 0;
  std::unordered_map<BlockId, std::uint64_t> ckpt_images;
  std::uint64_t expected = base_lsn + 1;
  std::uint64_t off = page_size_;
  std::uint64_t committed_end = off;
  const std::uint64_t max_len = std::max<std::uint64_t>(2 * std::uint64_t{page_size_}, kOpsChunk);
  while (off + kRecordHeader <= file_end) {
    const std::uint64_t reach = std::min(file_end, off + kRecordHeader + max_len);
    if (off < win_off || reach > win_off + win.size()) {
      const std::uint64_t first = off / page_size_;
      const std::uint64_t want =
          std::min(blocks - first, kScanBlocks + 3 + kOpsChunk / page_size_);
      AlignedBuffer chunk(want * page_size_);
      std::vector<Task<void>> reads;
      for (std::uint64_t i = 0; i < want; ++i) {
        reads.push_back(log_->read_block(
            first + i, std::span<std::byte>(chunk.data() + i * page_size_, page_size_)));
      }
      co_await when_all(std::move(reads));
      win.assign(chunk.data(), chunk.data() + want * page_size_);
      win_off = first * page_size_;
    }
    const std::byte* rec = win.data() + (off - win_off);
    const auto type = load<std::uint16_t>(rec, 4);
    const std::uint64_t len = load<std::uint32_t>(rec, 8);
    const auto lsn = load<std::uint64_t>(rec, 16);
    const auto page_id = load<std::uint64_t>(rec, 24);
    if (type < kRecPage || type > kRecMark || len > max_len) break;
    if (off + kRecordHeader + len > win_off + win.size()) break;  // past the end of the file
    if (type == kRecPage && len != page_size_) break;
    if ((type == kRecCommit || type == kRecCkpt) && len != kCommitPayload) break;
    const std::uint32_t crc = crc32c_extend(chain, rec + 4, kRecordHeader - 4 + len);
    if (crc != load<std::uint32_t>(rec, 0)) break;
    // Operations and commits number the transactions; a checkpoint names the last one.
    if ((type == kRecOps || type == kRecCommit) && lsn != expected) break;
    if (type == kRecCkpt && lsn != expected - 1) break;
    chain = crc;
    const std::byte* payload = rec + kRecordHeader;
    switch (type) {
      case kRecPage:
        images[page_id] = off;
        break;
      case kRecMark:
        images.clear();
        break;
      case kRecOps:
        pending.insert(pending.end(), payload, payload + len);
        break;
      case kRecCommit:
        if (lsn > checkpoint_lsn) txns.emplace_back(lsn, std::move(pending));
        pending.clear();
        ++expected;
        break;
      case kRecCkpt:
        ckpt_state = decode_commit(payload);
        ckpt_lsn = lsn;
        ckpt_images = images;
        break;
      default:
        break;
    }
    off += kRecordHeader + len;
    if (type != kRecOps) committed_end = off;
  }
  r.ignored_bytes = off - committed_end;
  scan_end_ = off;
  scan_chain_ = chain;
  scan_salt_ = salt;
  scan_base_lsn_ = base_lsn;
  if (ckpt_state && ckpt_lsn > checkpoint_lsn) {
    // A checkpoint whose page images are all in the log: apply it first.
    r.checkpoint = true;
    r.state = ckpt_state;
    r.checkpoint_lsn = ckpt_lsn;
    index_ = std::move(ckpt_images);
    r.pages = index_.size();
    std::erase_if(txns, [ckpt_lsn](const auto& t) { return t.first <= ckpt_lsn; });
  }
  r.commits = txns.size();
  r.last_lsn = txns.empty() ? std::max(checkpoint_lsn, r.checkpoint_lsn) : txns.back().first;
  r.txns = std::move(txns);
  last_lsn_ = durable_lsn_ = std::max(checkpoint_lsn, r.checkpoint_lsn);
  if (r.checkpoint) {
    // The images stay readable from the file until reset().
    tail_base_ = writing_base_ = file_end;
  } else if (r.txns.empty()) {
    last_lsn_ = durable_lsn_ = std::max(last_lsn_, expected - 1);
    start_generation();
  }
  co_return r;
}

}  // namespace corobtree
