// ForwardingDiskManager: a DiskManager that passes every call to another one
// (inner()), the base of decorators: a subclass overrides only what it
// changes. write_blocks is not forwarded: the DiskManager default splits it
// into write_block calls, so a decorator that intercepts write_block sees
// every write; a decorator that intercepts no writes may forward it itself.
//
// Thread-safety: loop-affine, like the DiskManager it forwards to.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "io/disk_manager.h"

namespace corobtree {

class ForwardingDiskManager : public DiskManager {
 public:
  explicit ForwardingDiskManager(std::unique_ptr<DiskManager> inner) : inner_(std::move(inner)) {}

  Task<void> read_block(BlockId id, std::span<std::byte> out) override {
    return inner_->read_block(id, out);
  }
  Task<void> write_block(BlockId id, std::span<const std::byte> data) override {
    return inner_->write_block(id, data);
  }
  Task<void> sync() override { return inner_->sync(); }
  BlockId allocate_blocks(std::uint64_t n) override { return inner_->allocate_blocks(n); }
  void truncate_blocks(std::uint64_t n) override { inner_->truncate_blocks(n); }
  void rename_to(const std::string& new_path) override { inner_->rename_to(new_path); }

  std::uint64_t block_count() const noexcept override { return inner_->block_count(); }
  std::uint32_t page_size() const noexcept override { return inner_->page_size(); }
  const std::string& path() const noexcept override { return inner_->path(); }
  bool direct_io() const noexcept override { return inner_->direct_io(); }
  bool is_open() const noexcept override { return inner_->is_open(); }
  IoBackend backend() const noexcept override { return inner_->backend(); }
  const std::string& fallback_reason() const noexcept override { return inner_->fallback_reason(); }
  DiskStats stats() const noexcept override { return inner_->stats(); }
  int native_handle() const noexcept override { return inner_->native_handle(); }
  void close() noexcept override { inner_->close(); }

 protected:
  DiskManager& inner() noexcept { return *inner_; }
  const DiskManager& inner() const noexcept { return *inner_; }
  // Forwards to `inner` from now on and returns the previous one (still open).
  std::unique_ptr<DiskManager> replace_inner(std::unique_ptr<DiskManager> inner) noexcept {
    return std::exchange(inner_, std::move(inner));
  }

 private:
  std::unique_ptr<DiskManager> inner_;
};

}  // namespace corobtree
