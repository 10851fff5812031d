// 4 KiB random O_DIRECT reads through DiskManager, io_uring against pread, at
// queue depths 1..128 from one thread. Each queue slot is a task that reads a
// random block and immediately issues the next, so io_uring keeps `depth`
// reads in flight; pread runs them one after another (its Tasks finish at
// once). Reported as items_per_second = IOPS. scripts/disk-bench.sh runs fio
// on the same file at the same depths for comparison.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include <corobtree/sync_wait.h>
#include <corobtree/when_all.h>
#include "io/aligned_buffer.h"
#include "io/disk_manager.h"
#include "io/event_loop.h"
#include "io/uring_disk_manager.h"
#include "perf/bench_file.h"

namespace {

using corobtree::AlignedBuffer;
using corobtree::DiskManager;
using corobtree::Task;

Task<void> reader_slot(DiskManager& dm, std::uint64_t reads, std::uint64_t seed) {
  AlignedBuffer buf(dm.page_size());
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::uint64_t> pick(0, dm.block_count() - 1);
  for (std::uint64_t i = 0; i < reads; ++i) {
    co_await dm.read_block(pick(rng), buf.span());
  }
}

void BM_RandomRead4K(benchmark::State& state, corobtree::IoBackend backend) {
  const auto depth = static_cast<std::uint64_t>(state.range(0));
  const auto file = corobtree::bench::ensure_bench_file();
  corobtree::DiskOptions o;
  o.backend = backend;
  o.use_env = false;
  o.direct_io = true;
  o.lock_file = false;
  auto dm = DiskManager::open(file.path, o);
  // Enough reads per iteration that slot start-up is noise.
  const std::uint64_t per_slot = std::max<std::uint64_t>(64, 4096 / depth);
  std::uint64_t seed = 1;
  std::uint64_t max_in_flight = 0;
  // The thread's ring is shared by every run: count this run's depth only.
  if (auto* u = dynamic_cast<corobtree::UringDiskManager*>(dm.get())) {
    u->loop().reset_max_in_flight();
  }
  for (auto _ : state) {
    std::vector<Task<void>> slots;
    for (std::uint64_t s = 0; s < depth; ++s) slots.push_back(reader_slot(*dm, per_slot, seed++));
    corobtree::sync_wait(corobtree::when_all(std::move(slots)));
  }
  if (auto* u = dynamic_cast<corobtree::UringDiskManager*>(dm.get())) {
    max_in_flight = u->loop().stats().max_in_flight;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * depth * per_slot));
  state.counters["max_in_flight"] = static_cast<double>(max_in_flight);
  state.counters["file_MiB"] = static_cast<double>(file.bytes >> 20);
}

}  // namespace

BENCHMARK_CAPTURE(BM_RandomRead4K, uring, corobtree::IoBackend::kUring)
    ->ArgName("qd")
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->Arg(64)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RandomRead4K, pread, corobtree::IoBackend::kPread)
    ->ArgName("qd")
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->Arg(64)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
