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
// BM_ColdScan/<variant>  a cold full scan: opens the database as above
//   (O_DIRECT, the default pool: nothing of it cached) and reads every entry
//   in key order with one Cursor on one thread, one iteration. Variants:
//   uring (read-ahead on: Options::readahead_leaves' default), uring_no_ra
//   (readahead_leaves = 0) and pread (whose read-ahead does nothing). The
//   variants without read-ahead stop after a few seconds (kSlowScanSeconds;
//   counter complete = 0). items_per_second = entries/s; MB_per_s = bytes of
//   the pages read (leaves, mostly) per second; readahead_reads, disk_reads.
//   scripts/cold-bench.sh compares MB_per_s with fio's sequential 128 KiB
//   O_DIRECT reads of the same file.
//
// The pool keeps the upper levels, so the misses are mostly leaves.
//   COROBTREE_BENCH_SMOKE=1 ./cold_bench --benchmark_min_time=0.01
#include <benchmark/benchmark.h>

#include "perf/bench_common.h"

#include <algorithm>
#include <chrono>
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

#include <corobtree/cursor.h>
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

// ---- the cold full scan -------------------------------------------------------

constexpr double kSlowScanSeconds = 4.0;
constexpr double kFullScanSeconds = 60.0;  // a cap, far above a full scan's time

Task<void> scan_all(Database& db, double seconds, std::uint64_t& entries, bool& complete) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(seconds));
  corobtree::Cursor cursor = db.cursor();
  bool ok = co_await cursor.first();
  complete = false;
  while (ok) {
    benchmark::DoNotOptimize(cursor.value().data());
    if ((++entries & 4095) == 0 && Clock::now() > deadline) co_return;
    ok = co_await cursor.next();
  }
  complete = true;
}

void BM_ColdScan(benchmark::State& state, IoBackend backend, std::uint32_t readahead,
                 double seconds) {
  std::string error;
  const std::string path = ensure_cold_db(error);
  if (path.empty()) {
    state.SkipWithError(error.c_str());
    for (auto _ : state) {
    }
    return;
  }
  Options o;
  o.direct_io = true;
  o.pool_pages = kColdPoolPages;
  o.backend = backend;
  o.create_if_missing = false;
  o.readahead_leaves = readahead;
  std::uint64_t entries = 0;
  bool complete = false;
  corobtree::DatabaseStats before;
  corobtree::DatabaseStats after;
  double elapsed = 0;
  for (auto _ : state) {
    // Opened inside the timing loop's iteration but outside the timed part:
    // a fresh pool each time (O_DIRECT: no page cache either).
    state.PauseTiming();
    std::unique_ptr<Database> db = corobtree::sync_wait(Database::open(path, o));
    before = db->stats();
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    corobtree::sync_wait(scan_all(*db, seconds, entries, complete));
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.PauseTiming();
    after = db->stats();
    if (after.backend != backend) state.SkipWithError("the database fell back to another backend");
    corobtree::sync_wait(db->close());
    db.reset();
    state.ResumeTiming();
  }
  if (complete && entries != cold_key_count()) state.SkipWithError("the scan missed entries");
  const std::uint64_t reads = after.pool.disk_reads - before.pool.disk_reads;
  state.SetItemsProcessed(static_cast<std::int64_t>(entries));
  state.counters["entries"] = static_cast<double>(entries);
  state.counters["complete"] = complete ? 1.0 : 0.0;
  state.counters["disk_reads"] = static_cast<double>(reads);
  state.counters["readahead_reads"] =
      static_cast<double>(after.pool.readahead_reads - before.pool.readahead_reads);
  state.counters["MB_per_s"] =
      elapsed > 0 ? static_cast<double>(reads) * after.page_size / elapsed / 1e6 : 0.0;
  state.counters["seconds"] = elapsed;
}

}  // namespace

BENCHMARK_CAPTURE(BM_ColdScan, uring, IoBackend::kUring, Options{}.readahead_leaves,
                  kFullScanSeconds)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ColdScan, uring_no_ra, IoBackend::kUring, 0, kSlowScanSeconds)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ColdScan, pread, IoBackend::kPread, Options{}.readahead_leaves,
                  kSlowScanSeconds)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
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
