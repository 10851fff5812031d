// FaultDiskManager: a DiskManager decorator for tests that injects I/O errors
// and simulates power loss. Install it on both files of a database (the data
// file and its log) through Options::wrap_disk, sharing one FaultPlan:
//
//   auto plan = std::make_shared<FaultPlan>(seed);
//   options.wrap_disk = plan->wrapper();
//
// Every read, write, sync, allocation and rename of either file is one
// operation, numbered from 0 in the order the engine issues them. A rename
// (DiskManager::rename_to, which compaction uses to swap in its packed copy)
// is durable once done; the plan then knows the file by its new name, and a
// crash at the rename (crash_at = its number) leaves the old name in place.
//
// Errors: plan->fail_at = N fails operation N (reads and syncs with EIO, writes
// with `write_errno`, allocations with ENOSPC); with `persistent` every later
// operation fails too (reads only for EIO).
//
// Power loss: plan->crash_at = N stops the machine at operation N: it and
// every later operation fail with EIO. After the database object is gone,
// plan->power_loss() rewrites each file as the disk would hold it after the
// power came back: everything synced, plus a random subset of the writes since
// each file's last sync, some of them torn (only a prefix of 512-byte sectors
// written), and the file size of the last sync or the current one. One seed
// reproduces all of it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "io/disk_manager.h"
#include "io/forwarding_disk.h"
#include "io/waiter_list.h"

namespace corobtree::test {

enum class FaultOp { kRead, kWrite, kSync, kAllocate, kRename };

struct PowerLossReport {
  std::uint64_t unsynced_writes = 0;  // writes since the last sync, over all files
  std::uint64_t kept = 0;             // of those, how many reached the disk
  std::uint64_t torn = 0;             // of the kept ones, how many only partly
  std::uint64_t sizes_lost = 0;       // files cut back to their last synced size
};

class FaultPlan : public std::enable_shared_from_this<FaultPlan> {
 public:
  explicit FaultPlan(std::uint64_t seed) : seed_(seed) {}

  std::optional<std::uint64_t> fail_at;
  int write_errno = 5;  // EIO; or ENOSPC (28)
  bool persistent = false;
  std::optional<std::uint64_t> crash_at;

  std::uint64_t ops() const noexcept { return ops_; }
  // The numbers of the renames done so far.
  const std::vector<std::uint64_t>& rename_ops() const noexcept { return rename_ops_; }
  std::uint64_t failures() const noexcept { return failures_; }
  bool crashed() const noexcept { return crashed_; }

  // For Options::wrap_disk.
  std::function<std::unique_ptr<DiskManager>(std::unique_ptr<DiskManager>)> wrapper();

  // Rewrites the files as a power loss leaves them. REQUIRES: no
  // FaultDiskManager of this plan is still open.
  PowerLossReport power_loss();

 private:
  friend class FaultDiskManager;
  struct File {
    std::string path;
    std::uint32_t page_size = 0;
    std::uint64_t synced_blocks = 0;  // the size as of the last sync
    std::map<BlockId, std::vector<std::byte>>
        synced;  // contents at the last sync, of written blocks
    std::vector<std::pair<BlockId, std::vector<std::byte>>> pending;  // writes since
  };
  // Counts an operation; throws the injected error, if any.
  void step(FaultOp op, const std::string& path, BlockId block);
  std::shared_ptr<File> file(const DiskManager& disk);
  // `f` was renamed to `to`, replacing whatever file had that name.
  void renamed(const std::shared_ptr<File>& f, const std::string& to);

  std::uint64_t seed_;
  std::uint64_t ops_ = 0;
  std::uint64_t failures_ = 0;
  bool failing_ = false;
  bool crashed_ = false;
  std::map<std::string, std::shared_ptr<File>> files_;
  std::vector<std::uint64_t> rename_ops_;
};

class FaultDiskManager final : public ForwardingDiskManager {
 public:
  FaultDiskManager(std::unique_ptr<DiskManager> inner, std::shared_ptr<FaultPlan> plan);
  ~FaultDiskManager() override;

  Task<void> read_block(BlockId id, std::span<std::byte> out) override;
  Task<void> write_block(BlockId id, std::span<const std::byte> data) override;
  Task<void> sync() override;
  BlockId allocate_blocks(std::uint64_t n) override;
  void truncate_blocks(std::uint64_t n) override;
  void rename_to(const std::string& new_path) override;

 private:
  std::vector<std::byte> current_block(BlockId id) const;

  std::shared_ptr<FaultPlan> plan_;
  std::shared_ptr<FaultPlan::File> file_;
  std::uint64_t writes_in_flight_ = 0;
  detail::WaiterList drain_waiters_;
};

}  // namespace corobtree::test
