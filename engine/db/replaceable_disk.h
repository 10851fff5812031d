// ReplaceableDisk: the data file as the database's parts see it. The buffer
// pool, the page-image store and the checkpointer keep a DiskManager&; this
// forwards every call to the file underneath, which compaction replaces with
// its packed copy (replace()) without those references changing.
//
// Thread-safety: loop-affine, like the DiskManager it forwards to.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "io/disk_manager.h"

namespace corobtree {

class ReplaceableDisk final : public DiskManager {
 public:
  explicit ReplaceableDisk(std::unique_ptr<DiskManager> file) : file_(std::move(file)) {}

  // Forwards to `file` from now on and returns the previous file (still open).
  // REQUIRES: no operation in flight on the previous file.
  std::unique_ptr<DiskManager> replace(std::unique_ptr<DiskManager> file) noexcept {
    return std::exchange(file_, std::move(file));
  }

  Task<void> read_block(BlockId id, std::span<std::byte> out) override {
    return file_->read_block(id, out);
  }
  Task<void> write_block(BlockId id, std::span<const std::byte> data) override {
    return file_->write_block(id, data);
  }
  Task<void> sync() override { return file_->sync(); }
  Task<void> write_blocks(BlockId first, std::span<const std::byte> data) override {
    return file_->write_blocks(first, data);
  }
  BlockId allocate_blocks(std::uint64_t n) override { return file_->allocate_blocks(n); }
  void truncate_blocks(std::uint64_t n) override { file_->truncate_blocks(n); }
  void rename_to(const std::string& new_path) override { file_->rename_to(new_path); }

  std::uint64_t block_count() const noexcept override { return file_->block_count(); }
  std::uint32_t page_size() const noexcept override { return file_->page_size(); }
  const std::string& path() const noexcept override { return file_->path(); }
  bool direct_io() const noexcept override { return file_->direct_io(); }
  bool is_open() const noexcept override { return file_->is_open(); }
  IoBackend backend() const noexcept override { return file_->backend(); }
  const std::string& fallback_reason() const noexcept override { return file_->fallback_reason(); }
  DiskStats stats() const noexcept override { return file_->stats(); }
  int native_handle() const noexcept override { return file_->native_handle(); }
  void close() noexcept override { file_->close(); }

 private:
  std::unique_ptr<DiskManager> file_;
};

}  // namespace corobtree
