#include "tests/support/fault_disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <corobtree/error.h>
#include "io/scheduler.h"

namespace corobtree::test {

namespace {

const char* op_name(FaultOp op) {
  switch (op) {
    case FaultOp::kRead: return "read";
    case FaultOp::kWrite: return "write";
    case FaultOp::kSync: return "sync";
    case FaultOp::kAllocate: return "allocate";
    case FaultOp::kRename: return "rename";
  }
  return "?";
}

std::optional<std::uint64_t> block_of(BlockId id) {
  return id == kInvalidBlockId ? std::nullopt : std::optional<std::uint64_t>(id);
}

}  // namespace

// ---- FaultPlan -------------------------------------------------------------------

std::function<std::unique_ptr<DiskManager>(std::unique_ptr<DiskManager>)> FaultPlan::wrapper() {
  std::shared_ptr<FaultPlan> self = shared_from_this();
  return [self](std::unique_ptr<DiskManager> inner) -> std::unique_ptr<DiskManager> {
    return std::make_unique<FaultDiskManager>(std::move(inner), self);
  };
}

std::shared_ptr<FaultPlan::File> FaultPlan::file(const DiskManager& disk) {
  std::shared_ptr<File>& f = files_[disk.path()];
  if (!f) {
    f = std::make_shared<File>();
    f->path = disk.path();
    f->page_size = disk.page_size();
    f->synced_blocks = disk.block_count();  // what existed at open is on the disk
  }
  return f;
}

void FaultPlan::renamed(const std::shared_ptr<File>& f, const std::string& to) {
  auto it = files_.find(f->path);
  if (it != files_.end() && it->second == f) files_.erase(it);
  f->path = to;
  files_[to] = f;
}

void FaultPlan::step(FaultOp op, const std::string& path, BlockId block) {
  const std::uint64_t n = ops_++;
  if (!crashed_ && crash_at && n >= *crash_at) crashed_ = true;
  if (crashed_) {
    throw Error(
        ErrorCode::kIoError,
        std::string("simulated power loss: ") + op_name(op) + " of '" + path + "' after the crash",
        EIO, path, block_of(block));
  }
  const bool injected = fail_at && n == *fail_at;
  const bool dead = failing_ && (write_errno == EIO || op != FaultOp::kRead);
  if (!injected && !dead) return;
  if (injected && persistent) failing_ = true;
  ++failures_;
  int err = EIO;
  if (op == FaultOp::kWrite) err = write_errno;
  if (op == FaultOp::kAllocate) err = ENOSPC;
  throw errno_error(err, std::string("injected ") + op_name(op), path, block_of(block));
}

PowerLossReport FaultPlan::power_loss() {
  PowerLossReport r;
  std::mt19937_64 rng(seed_ ^ 0x9e3779b97f4a7c15ull);
  for (auto& [path, f] : files_) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    const std::uint32_t ps = f->page_size;
    std::map<BlockId, std::vector<std::byte>> image = f->synced;
    for (const auto& [id, data] : f->pending) {  // unsynced blocks past the synced size: zeros
      if (!image.count(id)) image[id].assign(ps, std::byte{0});
    }
    for (const auto& [id, data] : f->pending) {
      ++r.unsynced_writes;
      if (rng() % 2 == 0) continue;  // never reached the platter
      ++r.kept;
      std::vector<std::byte>& b = image[id];
      std::size_t len = ps;
      if (ps > 512 && rng() % 4 == 0) {  // torn: only some sectors made it
        ++r.torn;
        len = 512 * (1 + rng() % (ps / 512 - 1));
      }
      std::memcpy(b.data(), data.data(), len);
    }
    for (const auto& [id, b] : image) {
      if (::pwrite(fd, b.data(), ps, static_cast<off_t>(id * ps)) != static_cast<ssize_t>(ps)) {
        ::close(fd);
        throw errno_error(errno, "power_loss rewrite", path, id);
      }
    }
    struct stat st;
    if (::fstat(fd, &st) == 0 && static_cast<std::uint64_t>(st.st_size) > f->synced_blocks * ps &&
        rng() % 2 == 0) {
      ++r.sizes_lost;
      if (::ftruncate(fd, static_cast<off_t>(f->synced_blocks * ps)) != 0) {
        ::close(fd);
        throw errno_error(errno, "power_loss truncate", path);
      }
    }
    ::fsync(fd);
    if (::fstat(fd, &st) == 0) f->synced_blocks = static_cast<std::uint64_t>(st.st_size) / ps;
    ::close(fd);
    f->pending.clear();
    f->synced.clear();
  }
  crashed_ = false;
  crash_at.reset();
  fail_at.reset();
  failing_ = false;
  return r;
}

// ---- FaultDiskManager ------------------------------------------------------------

FaultDiskManager::FaultDiskManager(std::unique_ptr<DiskManager> inner,
                                   std::shared_ptr<FaultPlan> plan)
    : ForwardingDiskManager(std::move(inner)),
      plan_(std::move(plan)),
      file_(plan_->file(this->inner())) {}

FaultDiskManager::~FaultDiskManager() = default;

std::vector<std::byte> FaultDiskManager::current_block(BlockId id) const {
  const std::uint32_t ps = inner().page_size();
  std::vector<std::byte> out(ps, std::byte{0});
  const int fd = ::open(inner().path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::pread(fd, out.data(), ps, static_cast<off_t>(id * ps));
    ::close(fd);
  }
  return out;
}

Task<void> FaultDiskManager::read_block(BlockId id, std::span<std::byte> out) {
  plan_->step(FaultOp::kRead, inner().path(), id);
  co_await inner().read_block(id, out);
}

Task<void> FaultDiskManager::write_block(BlockId id, std::span<const std::byte> data) {
  plan_->step(FaultOp::kWrite, inner().path(), id);
  if (id < file_->synced_blocks && !file_->synced.count(id)) {
    file_->synced.emplace(id, current_block(id));  // its contents as of the last sync
  }
  std::vector<std::byte> copy(inner().page_size(), std::byte{0});
  std::memcpy(copy.data(), data.data(), std::min<std::size_t>(data.size(), copy.size()));
  file_->pending.emplace_back(id, std::move(copy));
  ++writes_in_flight_;
  std::exception_ptr error;
  try {
    co_await inner().write_block(id, data);
  } catch (...) {
    error = std::current_exception();
  }
  if (--writes_in_flight_ == 0) {
    while (detail::WaiterNode* n = drain_waiters_.pop_front()) Scheduler::current().post(n->handle);
  }
  if (error) std::rethrow_exception(error);
}

Task<void> FaultDiskManager::sync() {
  plan_->step(FaultOp::kSync, inner().path(), kInvalidBlockId);
  while (writes_in_flight_ > 0) co_await detail::ListAwaiter(drain_waiters_);
  co_await inner().sync();
  file_->pending.clear();
  file_->synced.clear();
  file_->synced_blocks = inner().block_count();
}

BlockId FaultDiskManager::allocate_blocks(std::uint64_t n) {
  plan_->step(FaultOp::kAllocate, inner().path(), kInvalidBlockId);
  return inner().allocate_blocks(n);
}

void FaultDiskManager::truncate_blocks(std::uint64_t n) {
  inner().truncate_blocks(n);
  // Treated as durable at once (it only happens at recovery, before a sync).
  file_->synced_blocks = std::min(file_->synced_blocks, n);
  std::erase_if(file_->synced, [n](const auto& e) { return e.first >= n; });
  std::erase_if(file_->pending, [n](const auto& e) { return e.first >= n; });
}

void FaultDiskManager::rename_to(const std::string& new_path) {
  plan_->step(FaultOp::kRename, inner().path(), kInvalidBlockId);
  plan_->rename_ops_.push_back(plan_->ops_ - 1);
  std::exception_ptr error;
  try {
    inner().rename_to(new_path);
  } catch (...) {
    error = std::current_exception();
  }
  if (inner().path() == new_path) plan_->renamed(file_, new_path);
  if (error) std::rethrow_exception(error);
}

}  // namespace corobtree::test
