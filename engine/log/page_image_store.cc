#include "engine/log/page_image_store.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/when_all.h>
#include <corobtree/yield.h>

#include "io/aligned_buffer.h"

namespace corobtree {

PageImageStore::PageImageStore(RecordLog& log, DiskManager& data)
    : log_(&log), data_(data), generation_(log.generation()) {
  if (log.page_size() != data.page_size()) {
    throw Error(ErrorCode::kInvalidArgument,
                "the log '" + log.path() + "' must have the data file's page size");
  }
}

void PageImageStore::follow_generation() noexcept {
  if (generation_ == log_->generation()) return;
  index_.clear();
  generation_ = log_->generation();
}

std::uint64_t PageImageStore::pages() const noexcept {
  return generation_ == log_->generation() ? index_.size() : 0;
}

void PageImageStore::adopt(Index index) {
  follow_generation();
  index_ = std::move(index);
}

Task<void> PageImageStore::read_page(BlockId id, std::span<std::byte> out) {
  follow_generation();
  if (const auto it = index_.find(id); it != index_.end()) {
    co_await log_->read(it->second, out);
    co_return;
  }
  if (frozen_log_ != nullptr) {
    if (const auto it = frozen_.find(id); it != frozen_.end()) {
      co_await frozen_log_->read(it->second, out);
      co_return;
    }
  }
  co_await data_.read_block(id, out);
}

Task<void> PageImageStore::read_pages_into(BlockId first, std::uint32_t page_size,
                                           std::span<std::byte* const> pages) {
  follow_generation();
  bool logged = false;
  for (std::size_t i = 0; i < pages.size() && !logged; ++i) {
    logged = index_.count(first + i) != 0 || frozen_.count(first + i) != 0;
  }
  if (!logged) {
    co_await data_.read_blocks_into(first, pages);
    co_return;
  }
  co_await PageStore::read_pages_into(first, page_size, pages);
}

Task<void> PageImageStore::write_page(BlockId id, std::span<const std::byte> page) {
  follow_generation();
  index_[id] = log_->append(kRecordType, next_lsn(), id, page);
  ++appended_;
  co_await log_->spill();
}

void PageImageStore::freeze(RecordLog& next) {
  if (frozen_log_ != nullptr || &next == log_ || next.page_size() != data_.page_size()) {
    throw Error(ErrorCode::kInvalidArgument,
                "the log '" + next.path() + "' cannot take over from '" + log_->path() + "'");
  }
  follow_generation();
  frozen_log_ = log_;
  frozen_ = std::move(index_);
  index_ = {};
  log_ = &next;
  generation_ = next.generation();
}

Task<void> PageImageStore::copy_one(RecordLog& log, DiskManager& data, BufferPool* pool, BlockId id,
                                    std::uint64_t offset) {
  AlignedBuffer buf(data.page_size());
  if (pool == nullptr || !pool->copy_if_clean(id, buf.span())) {
    co_await log.read(offset, buf.span());
  }
  co_await data.write_block(id, buf.span());
}

Task<void> PageImageStore::copy_to_data_file(BufferPool* pool) {
  follow_generation();
  co_await copy_index(*log_, index_, pool);
}

Task<void> PageImageStore::copy_frozen_to_data_file() {
  if (frozen_log_ == nullptr) co_return;
  co_await copy_index(*frozen_log_, frozen_, nullptr);
}

Task<void> PageImageStore::copy_index(RecordLog& log, const Index& index, BufferPool* pool) {
  std::vector<std::pair<BlockId, std::uint64_t>> pages(index.begin(), index.end());
  std::sort(pages.begin(), pages.end());
  constexpr std::size_t kBatch = 32;
  for (std::size_t i = 0; i < pages.size(); i += kBatch) {
    std::vector<Task<void>> copies;
    for (std::size_t j = i; j < std::min(pages.size(), i + kBatch); ++j) {
      copies.push_back(copy_one(log, data_, pool, pages[j].first, pages[j].second));
    }
    co_await when_all(std::move(copies));
    // The other tasks of the thread (commits, while a checkpoint's copy
    // runs without the writer mutex) go on between batches, also where the
    // backend completes I/O at once (pread).
    co_await yield();
  }
}

}  // namespace corobtree
