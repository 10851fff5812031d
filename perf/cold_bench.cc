// Cold point lookups: a database much larger than its buffer pool, read with
// O_DIRECT, so nearly every lookup waits for a leaf from the disk.
//
// The database holds N keys (N = 9,500,000, a file of a bit over 1 GiB;
// COROBTREE_COLD_KEYS=n overrides it): see perf/cold_db.h for how it is built
// once and reused.
//
// BM_ColdGet/<backend>/tasks:N  opens the database with direct_io, the
//   default pool (Options::pool_bytes, 64 MiB) and the io_uring or pread
//   backend, warms the inner levels,
//   then runs N concurrent lookup tasks on one thread: each iteration is one
//   sync_wait over when_all of N tasks, each doing a fixed number of gets of
//   random present keys and checking the values. items_per_second = lookups/s
//   (real time). Counters: hit_rate and reads_per_lookup (buffer pool deltas
//   over the timed loop), disk_reads, height, file_MiB, and peak_rss_mib
//   (VmHWM of this process); on io_uring also max_in_flight and
//   completions_per_enter of the thread's ring (which the database uses).
// BM_ColdGet/uring_pool32m/tasks:N  the same on io_uring with 8192 frames
//   (32 MiB), enough for every inner page of the 9.5M-key tree (with 1024
//   frames, the default before pool_bytes, the level above the leaves, ~1,500
//   pages, did not fit, and a lookup cost ~1.66 reads; here it costs ~1).
//
// The pool keeps the upper levels, so the misses are mostly leaves.
//   COROBTREE_BENCH_SMOKE=1 ./cold_bench --benchmark_min_time=0.01
#include <benchmark/benchmark.h>

#include "perf/bench_common.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "io/disk_manager.h"
#include "io/event_loop.h"
#include "io/uring_disk_manager.h"
#include "perf/bench_random.h"
#include "perf/cold_db.h"

namespace {

using corobtree::bench::cold_key_count;
using corobtree::bench::ensure_cold_db;
using corobtree::bench::Key;
using corobtree::bench::kValueSize;
using corobtree::bench::make_value;
using corobtree::bench::smoke_mode;
using corobtree::bench::value_matches;

using corobtree::Database;
using corobtree::IoBackend;
using corobtree::Options;
using corobtree::Task;
using corobtree::bench::SplitMix64;

constexpr std::size_t kColdPoolPages = corobtree::kPoolFromBytes;  // the default: 64 MiB
constexpr std::size_t kInnerPoolPages = 8192;                      // 32 MiB: all inner pages fit
constexpr std::uint64_t kWarmupLookups = 50'000;

double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0.0;
}

// ---- the benchmark -------------------------------------------------------------

Task<void> lookup_task(Database& db, std::uint64_t n, std::uint64_t lookups, std::uint64_t seed,
                       std::uint64_t& bad) {
  SplitMix64 rng(seed);
  for (std::uint64_t i = 0; i < lookups; ++i) {
    const std::uint64_t k = rng.below(n);
    const Key key(k);
    const std::optional<std::string> v = co_await db.get(key.view());
    if (!v || !value_matches(*v, k)) ++bad;
  }
}

void run_round(Database& db, std::uint64_t tasks, std::uint64_t per_task, std::uint64_t& seed,
               std::uint64_t& bad) {
  std::vector<Task<void>> round;
  round.reserve(tasks);
  for (std::uint64_t t = 0; t < tasks; ++t) {
    round.push_back(lookup_task(db, cold_key_count(), per_task, seed++, bad));
  }
  corobtree::sync_wait(corobtree::when_all(std::move(round)));
}

void BM_ColdGet(benchmark::State& state, IoBackend backend, std::size_t pool_pages) {
  std::string error;
  const std::string path = ensure_cold_db(error);
  if (path.empty()) {
    state.SkipWithError(error.c_str());
    for (auto _ : state) {
    }
    return;
  }
  const auto tasks = static_cast<std::uint64_t>(state.range(0));
  const std::uint64_t per_task = smoke_mode() ? std::max<std::uint64_t>(16, 1024 / tasks)
                                              : std::max<std::uint64_t>(64, 8192 / tasks);
  Options o;
  o.direct_io = true;
  o.pool_pages = pool_pages;
  o.backend = backend;
  o.create_if_missing = false;
  // The data file's disk (the first one wrapped; the log's comes next): on
  // io_uring its ring, the database's engine thread's, reports how deep the
  // queue got (read after each round: the round's last hop home orders the
  // engine's counter writes before this thread's reads).
  corobtree::DiskManager* data_file = nullptr;
  o.wrap_disk = [&data_file](std::unique_ptr<corobtree::DiskManager> d) {
    if (data_file == nullptr) data_file = d.get();
    return d;
  };
  std::unique_ptr<Database> db = corobtree::sync_wait(Database::open(path, o));
  corobtree::EventLoop* loop = nullptr;
  if (auto* uring = dynamic_cast<corobtree::UringDiskManager*>(data_file)) loop = &uring->loop();

  std::uint64_t seed = static_cast<std::uint64_t>(tasks) << 32;
  std::uint64_t bad = 0;
  // Warm the inner levels (the leaves stay cold: far more of them than frames).
  const std::uint64_t warm = smoke_mode() ? 2'000 : kWarmupLookups;
  run_round(*db, tasks, std::max<std::uint64_t>(1, warm / tasks), seed, bad);

  const corobtree::DatabaseStats before = db->stats();
  corobtree::EventLoopStats loop_before;
  if (loop) {
    loop->reset_max_in_flight();
    loop_before = loop->stats();
  }
  for (auto _ : state) run_round(*db, tasks, per_task, seed, bad);
  const corobtree::DatabaseStats after = db->stats();

  const auto lookups = static_cast<std::uint64_t>(state.iterations()) * tasks * per_task;
  const std::uint64_t hits = after.pool.hits - before.pool.hits;
  const std::uint64_t misses = after.pool.misses - before.pool.misses;
  const std::uint64_t reads = after.pool.disk_reads - before.pool.disk_reads;
  if (bad != 0) state.SkipWithError("a get missed a present key or returned a wrong value");
  if (after.backend != backend) state.SkipWithError("the database fell back to another backend");
  state.SetItemsProcessed(static_cast<std::int64_t>(lookups));
  state.counters["hit_rate"] =
      hits + misses == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(hits + misses);
  state.counters["disk_reads"] = static_cast<double>(reads);
  state.counters["reads_per_lookup"] =
      lookups == 0 ? 0.0 : static_cast<double>(reads) / static_cast<double>(lookups);
  state.counters["height"] = after.height;
  state.counters["file_MiB"] =
      static_cast<double>(after.pages * after.page_size) / (1024.0 * 1024.0);
  state.counters["keys"] = static_cast<double>(after.keys);
  const double pool_bytes = pool_pages == corobtree::kPoolFromBytes
                                ? static_cast<double>(o.pool_bytes)
                                : static_cast<double>(pool_pages * after.page_size);
  state.counters["pool_MiB"] = pool_bytes / (1024.0 * 1024.0);
  if (loop) {
    const corobtree::EventLoopStats l = loop->stats();
    const std::uint64_t enters = l.enters - loop_before.enters;
    state.counters["max_in_flight"] = static_cast<double>(l.max_in_flight);
    state.counters["completions_per_enter"] =
        enters == 0 ? 0.0
                    : static_cast<double>(l.completed - loop_before.completed) /
                          static_cast<double>(enters);
  }
  corobtree::sync_wait(db->close());
  db.reset();
  state.counters["peak_rss_mib"] = peak_rss_mib();
}

}  // namespace

BENCHMARK_CAPTURE(BM_ColdGet, uring, IoBackend::kUring, kColdPoolPages)
    ->ArgName("tasks")
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->Arg(64)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ColdGet, pread, IoBackend::kPread, kColdPoolPages)
    ->ArgName("tasks")
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->Arg(64)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
// Diagnostic, registered last (peak_rss_mib is a high-water mark): a pool that
// holds every inner page, so nearly each lookup is exactly one leaf read.
BENCHMARK_CAPTURE(BM_ColdGet, uring_pool32m, IoBackend::kUring, kInnerPoolPages)
    ->ArgName("tasks")
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->Arg(64)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
