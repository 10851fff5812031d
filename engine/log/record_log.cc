#include "engine/log/record_log.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <random>

#include <corobtree/error.h>
#include <corobtree/when_all.h>
#include <corobtree/yield.h>

#include "engine/format/crc32c.h"
#include "engine/log/log_format.h"
#include "io/aligned_buffer.h"

namespace corobtree {

namespace {

// A transaction's tail is written (not synced) once it holds this much.
constexpr std::size_t kSpillWriteBytes = std::size_t{1} << 20;
// The log file grows by at least this many bytes at a time.
constexpr std::uint64_t kGrowBytes = std::uint64_t{4} << 20;
// With Durability::kSync the log's new blocks are zero-filled this many bytes
// per write.
constexpr std::uint64_t kZeroFillBytes = std::uint64_t{1} << 20;
// A reset shrinks a log file larger than this back to kGrowBytes (keeping a
// log of the usual size saves extending it again at every checkpoint).
constexpr std::uint64_t kShrinkAboveBytes = std::uint64_t{256} << 20;
// A scan reads the log this many blocks (plus a largest record) at a time.
constexpr std::uint64_t kScanBlocks = 64;

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint32_t chain_seed(std::uint64_t salt, std::uint64_t database_id) noexcept {
  std::byte seed[ChainSeed::kSize];
  ChainSeed::Salt::set(seed, salt);
  ChainSeed::DatabaseId::set(seed, database_id);
  return crc32c(seed, sizeof seed);
}

std::size_t max_payload_for(std::uint32_t page_size) noexcept {
  return std::max(RecordLog::kMaxPayload, 2 * std::size_t{page_size});
}

}  // namespace

// ---- construction --------------------------------------------------------------

RecordLog::RecordLog(ResumeTag, std::unique_ptr<DiskManager> file, std::uint64_t database_id,
                     Durability durability, std::uint64_t last_commit)
    : file_(std::move(file)),
      page_size_(file_->page_size()),
      database_id_(database_id),
      durability_(durability),
      last_commit_(last_commit),
      durable_commit_(last_commit) {
  salt_ = mix(database_id ^ std::random_device{}());
}

RecordLog::RecordLog(std::unique_ptr<DiskManager> file, std::uint64_t database_id,
                     Durability durability, std::uint64_t last_commit)
    : RecordLog(ResumeTag{}, std::move(file), database_id, durability, last_commit) {
  start_generation();
}

RecordLog::~RecordLog() = default;

Task<std::unique_ptr<RecordLog>> RecordLog::resume(std::unique_ptr<DiskManager> file,
                                                   std::uint64_t database_id, Durability durability,
                                                   ScanEnd scan, std::uint64_t last_commit) {
  assert(scan.header);
  std::unique_ptr<RecordLog> log(
      new RecordLog(ResumeTag{}, std::move(file), database_id, durability, last_commit));
  RecordLog& l = *log;
  // Appending starts in the block holding the scan's end: that block is
  // rewritten with the same bytes before that point, so a torn write cannot
  // damage them (sectors are written whole).
  const std::uint64_t block = scan.end / l.page_size_;
  const std::uint64_t within = scan.end % l.page_size_;
  l.tail_base_ = l.writing_base_ = block * l.page_size_;
  if (within > 0) {
    AlignedBuffer buf(l.page_size_);
    co_await l.file_->read_block(block, buf.span());
    l.tail_.assign(buf.data(), buf.data() + within);
  }
  l.kept_ = within;
  l.salt_ = scan.salt;
  l.base_lsn_ = scan.base_lsn;
  l.chain_ = scan.chain;
  l.header_due_ = false;
  co_return log;
}

void RecordLog::start_generation() {
  const std::uint64_t old = salt_;
  do {
    salt_ = mix(salt_ ^ mix(last_commit_) ^ std::random_device{}());
  } while (salt_ == old);
  ++generation_;
  base_lsn_ = last_commit_;
  chain_ = chain_seed(salt_, database_id_);
  header_due_ = true;
  tail_base_ = writing_base_ = page_size_;
  kept_ = 0;
  tail_.clear();
  writing_.clear();
}

void RecordLog::encode_header(std::span<std::byte> block) const {
  std::memset(block.data(), 0, block.size());
  std::byte* h = block.data();
  LogHeader::Magic::set(h, kLogMagic);
  LogHeader::Version::set(h, kLogVersion);
  LogHeader::PageSize::set(h, page_size_);
  LogHeader::DatabaseId::set(h, database_id_);
  LogHeader::Salt::set(h, salt_);
  LogHeader::BaseLsn::set(h, base_lsn_);
  LogHeader::Crc::set(h, crc32c(h + LogHeader::Crc::end, LogHeader::kSize - LogHeader::Crc::end));
}

void RecordLog::check_failed() const {
  if (failed_) std::rethrow_exception(failed_);
}

std::uint64_t RecordLog::bytes() const noexcept { return tail_base_ + tail_.size() - page_size_; }

std::size_t RecordLog::max_payload() const noexcept { return max_payload_for(page_size_); }

// ---- appending -----------------------------------------------------------------

void RecordLog::append_raw(std::uint16_t type, std::uint64_t lsn, std::uint64_t page,
                           std::span<const std::byte> payload, std::size_t zero_bytes) {
  using H = RecordHeader;
  const std::size_t len = payload.size() + zero_bytes;
  const std::size_t at = tail_.size();
  tail_.resize(at + H::kSize + len);  // zero-filled
  std::byte* h = tail_.data() + at;
  H::Type::set(h, type);
  H::Length::set(h, static_cast<std::uint32_t>(len));
  H::Lsn::set(h, lsn);
  H::Page::set(h, page);
  if (!payload.empty()) std::memcpy(h + H::kSize, payload.data(), payload.size());
  chain_ = crc32c_extend(chain_, h + H::Crc::end, H::kSize - H::Crc::end + len);
  H::Crc::set(h, chain_);
}

std::uint64_t RecordLog::append(std::uint16_t type, std::uint64_t lsn, std::uint64_t page,
                                std::span<const std::byte> payload) {
  check_failed();
  assert(type != kPaddingType && payload.size() <= max_payload());
  const std::uint64_t offset = tail_base_ + tail_.size();
  append_raw(type, lsn, page, payload, 0);
  return offset;
}

std::uint64_t RecordLog::append_commit(std::uint16_t type, std::span<const std::byte> payload) {
  check_failed();
  const std::uint64_t n = last_commit_ + 1;
  append(type, n, 0, payload);
  last_commit_ = n;
  return n;
}

void RecordLog::note_logged(std::uint64_t n) noexcept {
  last_commit_ = std::max(last_commit_, n);
  durable_commit_ = std::max(durable_commit_, n);
}

// ---- writing -------------------------------------------------------------------

void RecordLog::end_flush(AsyncLockGuard& turn) noexcept {
  turn.unlock();
  flush_ended_.notify_all();
}

Task<void> RecordLog::write_tail() {
  if (tail_.size() == kept_ && !header_due_) co_return;
  // The write ends with zeros up to the block boundary. The next write
  // starts with that last block again, holding the same bytes before the
  // point where it appends: a torn rewrite cannot damage them (sectors are
  // written whole), so records need not be padded to a block each write.
  const std::size_t used = tail_.size();
  const std::size_t partial = used % page_size_;
  writing_base_ = tail_base_;
  writing_ = std::move(tail_);
  tail_ = {};
  if (partial > 0) {
    tail_.assign(writing_.end() - static_cast<std::ptrdiff_t>(partial), writing_.end());
    writing_.resize(used - partial + page_size_);  // zero-filled
  }
  tail_base_ += used - partial;
  kept_ = partial;
  const std::uint64_t first = writing_base_ / page_size_;
  const std::uint64_t n = writing_.size() / page_size_;
  std::vector<std::byte> header;
  try {
    const std::uint64_t need = first + n;
    if (file_->block_count() < need) co_await grow(need);
    std::vector<Task<void>> writes;
    if (header_due_) {
      header.resize(page_size_);
      encode_header(header);
      writes.push_back(file_->write_block(0, header));
    }
    writes.push_back(file_->write_blocks(first, writing_));
    co_await when_all(std::move(writes));
  } catch (...) {
    if (!failed_) failed_ = std::current_exception();
    throw;
  }
  header_due_ = false;
  ++stats_.writes;
  writing_.clear();
  if (tail_.size() == kept_ && tail_.capacity() < writing_.capacity()) {
    writing_.assign(tail_.begin(), tail_.end());
    std::swap(tail_, writing_);  // reuse the capacity
    writing_.clear();
  }
}

Task<void> RecordLog::grow(std::uint64_t need) {
  const std::uint64_t first = file_->block_count();
  const std::uint64_t n = std::max(need - first, kGrowBytes / page_size_);
  file_->allocate_blocks(n);  // reserves the space: a full disk fails here
  if (durability_ != Durability::kSync) co_return;
  const std::uint64_t chunk = std::max<std::uint64_t>(1, kZeroFillBytes / page_size_);
  const AlignedBuffer zeros(std::min(n, chunk) * page_size_);
  for (std::uint64_t b = first; b < first + n; b += chunk) {
    const std::uint64_t k = std::min(chunk, first + n - b);
    co_await file_->write_blocks(b, std::span<const std::byte>(zeros.data(), k * page_size_));
  }
  co_await file_->sync();
}

Task<void> RecordLog::spill() {
  if (tail_.size() < kSpillWriteBytes) co_return;
  AsyncLockGuard turn = co_await flush_.scoped_lock();
  std::exception_ptr error;
  try {
    co_await write_tail();
  } catch (...) {
    error = std::current_exception();
  }
  end_flush(turn);
  if (error) std::rethrow_exception(error);
}

Task<void> RecordLog::write_and_sync(bool sync, bool gather) {
  if (gather) {
    // Let the writers that are ready now, and those inside a transaction or
    // queued for one, append their commits first, so that one write and one
    // fsync acknowledge them all.
    gathering_ = true;
    co_await yield();
    for (int i = 0; i < kMaxGatherRounds && writers_ > 0; ++i) co_await writer_left_.wait();
    gathering_ = false;
  }
  AsyncLockGuard turn = co_await flush_.scoped_lock();
  const std::uint64_t target = last_commit_;
  std::exception_ptr error;
  try {
    co_await write_tail();
    if (sync) {
      co_await file_->sync();
      ++stats_.syncs;
    }
  } catch (...) {
    error = std::current_exception();
    if (!failed_) failed_ = error;
  }
  if (!error && target > durable_commit_) {
    stats_.largest_group = std::max(stats_.largest_group, target - durable_commit_);
    durable_commit_ = target;
  }
  end_flush(turn);
  if (error) std::rethrow_exception(error);
}

Task<void> RecordLog::wait_durable(std::uint64_t n) {
  for (;;) {
    check_failed();
    if (durable_commit_ >= n) co_return;
    if (flush_.is_locked() || gathering_) {
      co_await flush_ended_.wait();
      continue;
    }
    co_await write_and_sync(durability_ == Durability::kSync, true);
  }
}

Task<void> RecordLog::sync_all() {
  check_failed();
  co_await write_and_sync(true, false);
}

// ---- reading -------------------------------------------------------------------

Task<void> RecordLog::read(std::uint64_t offset, std::span<std::byte> out) {
  const std::uint64_t p = offset + RecordHeader::kSize;
  if (p >= tail_base_) {
    assert(p - tail_base_ + out.size() <= tail_.size());
    std::memcpy(out.data(), tail_.data() + (p - tail_base_), out.size());
    co_return;
  }
  if (!writing_.empty() && p >= writing_base_) {
    assert(p - writing_base_ + out.size() <= writing_.size());
    std::memcpy(out.data(), writing_.data() + (p - writing_base_), out.size());
    co_return;
  }
  const std::uint64_t block = p / page_size_;
  const std::uint64_t within = p % page_size_;
  const std::uint64_t blocks = (within + out.size() + page_size_ - 1) / page_size_;
  AlignedBuffer buf(blocks * page_size_);
  reads_.enter();  // before the first suspension: reset() waits for this read
  ++stats_.reads;
  std::exception_ptr error;
  try {
    for (std::uint64_t i = 0; i < blocks; ++i) {
      co_await file_->read_block(block + i,
                                 std::span<std::byte>(buf.data() + i * page_size_, page_size_));
    }
  } catch (...) {
    error = std::current_exception();
  }
  reads_.leave();
  if (error) std::rethrow_exception(error);
  std::memcpy(out.data(), buf.data() + within, out.size());
}

// ---- generations -----------------------------------------------------------------

Task<void> RecordLog::reset() { co_await start_after(last_commit_); }

Task<void> RecordLog::start_after(std::uint64_t last_commit) {
  check_failed();
  AsyncLockGuard turn = co_await flush_.scoped_lock();
  co_await reads_.drained();
  last_commit_ = last_commit;
  durable_commit_ = std::max(durable_commit_, last_commit);
  std::exception_ptr error;
  try {
    if (file_->block_count() * page_size_ > kShrinkAboveBytes) {
      file_->truncate_blocks(kGrowBytes / page_size_);
    }
  } catch (...) {
    error = std::current_exception();
  }
  start_generation();
  end_flush(turn);
  if (error) std::rethrow_exception(error);
}

void RecordLog::close() noexcept { file_->close(); }

void RecordLog::close_and_remove() {
  const std::string path = file_->path();
  file_->close();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw errno_error(errno, "unlink", path);
}

// ---- scanning ------------------------------------------------------------------

Task<RecordLog::ScanEnd> RecordLog::scan(DiskManager& file, std::uint64_t database_id,
                                         Visitor& visitor) {
  using H = RecordHeader;
  ScanEnd out;
  const std::uint32_t page_size = file.page_size();
  const std::uint64_t blocks = file.block_count();
  const std::uint64_t file_end = blocks * page_size;
  if (blocks < 2) co_return out;
  AlignedBuffer head(page_size);
  co_await file.read_block(0, head.span());
  const std::byte* h = head.data();
  if (LogHeader::Crc::get(h) !=
          crc32c(h + LogHeader::Crc::end, LogHeader::kSize - LogHeader::Crc::end) ||
      LogHeader::Magic::get(h) != kLogMagic || LogHeader::Version::get(h) != kLogVersion ||
      LogHeader::PageSize::get(h) != page_size || LogHeader::DatabaseId::get(h) != database_id) {
    co_return out;  // never written, torn at a reset, or not this database's log
  }
  out.header = true;
  out.salt = LogHeader::Salt::get(h);
  out.base_lsn = LogHeader::BaseLsn::get(h);
  std::uint32_t chain = chain_seed(out.salt, database_id);
  visitor.begin(out.base_lsn);

  // A window of the file, refilled kScanBlocks blocks (and room for one
  // largest record) at a time.
  const std::uint64_t max_len = max_payload_for(page_size);
  const std::uint64_t window_blocks = kScanBlocks + 3 + kMaxPayload / page_size;
  std::vector<std::byte> win;
  std::uint64_t win_off = 0;
  std::uint64_t off = page_size;
  while (off + H::kSize <= file_end) {
    const std::uint64_t reach = std::min(file_end, off + H::kSize + max_len);
    if (off < win_off || reach > win_off + win.size()) {
      const std::uint64_t first = off / page_size;
      const std::uint64_t want = std::min(blocks - first, window_blocks);
      AlignedBuffer chunk(want * page_size);
      std::vector<Task<void>> reads;
      for (std::uint64_t i = 0; i < want; ++i) {
        reads.push_back(file.read_block(
            first + i, std::span<std::byte>(chunk.data() + i * page_size, page_size)));
      }
      co_await when_all(std::move(reads));
      win.assign(chunk.data(), chunk.data() + want * page_size);
      win_off = first * page_size;
    }
    const std::byte* rec = win.data() + (off - win_off);
    const std::uint64_t len = H::Length::get(rec);
    if (len > max_len) break;
    if (off + H::kSize + len > win_off + win.size()) break;  // past the end of the file
    const std::uint32_t crc = crc32c_extend(chain, rec + H::Crc::end, H::kSize - H::Crc::end + len);
    if (crc != H::Crc::get(rec)) break;
    const std::uint16_t type = H::Type::get(rec);
    if (type != kPaddingType) {
      Record r;
      r.type = type;
      r.lsn = H::Lsn::get(rec);
      r.page = H::Page::get(rec);
      r.offset = off;
      r.end = off + H::kSize + len;
      r.payload = std::span<const std::byte>(rec + H::kSize, len);
      if (!visitor.accept(r)) break;
    }
    chain = crc;
    off += H::kSize + len;
  }
  out.end = off;
  out.chain = chain;
  co_return out;
}

}  // namespace corobtree
