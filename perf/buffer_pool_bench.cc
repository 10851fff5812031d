// BufferPool benchmarks.
//
// BM_HotFetch           fetch_page + release of one page that is already cached,
//                       in a loop inside one coroutine (one sync_wait for the
//                       whole run), so the figure is the hit path alone. Goal:
//                       <= 100 ns per fetch+release.
// BM_HotFetchTryCached  the same through try_fetch_cached: no coroutine, no
//                       awaiter; the floor the awaitable path is measured against.
// BM_Zipf               32 tasks on one thread fetch Zipf-distributed pages
//                       (theta 0.99) of a file 10x larger than the pool, with
//                       O_DIRECT, on io_uring and on pread. items_per_second =
//                       fetches/s; hit_rate, misses and disk_reads are counted
//                       after a warm-up, so they describe the steady state.
//
// BM_PinTableAfterBurst/held:H  the engine's two questions to the pinned-view
//                       table (engine/pager/view_pins.h) after 4,000 slots
//                       were claimed and released, H still claimed: "does a
//                       slot name this buffer?" (before a frame's reuse) and
//                       "which buffers are named?" (when a write window
//                       opens). items_per_second = question pairs/s.
//
// The data file ($TMPDIR/corobtree-poolbench-<pid>.dat, real data so O_DIRECT
// reads reach the device) is written once per process and removed at exit.
// Every page starts with its own id, which the Zipf workers check on each fetch.
// COROBTREE_BENCH_SMOKE=1 shrinks everything for a quick functional run:
//   COROBTREE_BENCH_SMOKE=1 ./buffer_pool_bench --benchmark_min_time=0.01
#include <benchmark/benchmark.h>

#include "perf/bench_common.h"

#include <unistd.h>
#include "perf/bench_random.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "engine/pager/buffer_pool.h"
#include "io/disk_manager.h"

namespace {

using corobtree::bench::smoke_mode;

using corobtree::bench::SplitMix64;

using corobtree::BlockId;
using corobtree::BufferPool;
using corobtree::DiskManager;
using corobtree::DiskOptions;
using corobtree::IoBackend;
using corobtree::PageGuard;
using corobtree::Task;

// Sizes of the Zipf benchmark. The pool holds a tenth of the file's pages.
struct ZipfConfig {
  std::uint64_t file_pages;
  std::uint64_t warmup_fetches;    // before the stats are reset
  std::uint64_t fetches_per_task;  // per benchmark iteration
  std::size_t tasks;
  double theta;

  std::size_t pool_pages() const { return static_cast<std::size_t>(file_pages / 10); }

  static ZipfConfig get() {
    if (smoke_mode()) return ZipfConfig{512, 1024, 16, 32, 0.99};
    return ZipfConfig{16384, 2 * 16384, 512, 32, 0.99};
  }
};

// ---- deterministic randomness ---------------------------------------------

// Zipf ranks in [0, n), rank 0 the most popular, P(rank i) ~ 1 / (i+1)^theta.
// The constant-time method of Gray et al., "Quickly Generating Billion-Record
// Synthetic Databases" (SIGMOD 1994), as used by YCSB. REQUIRES: 0 < theta < 1.
class ZipfDistribution {
 public:
  ZipfDistribution(std::uint64_t n, double theta)
      : n_(n), theta_(theta), zeta_n_(zeta(n, theta)), alpha_(1.0 / (1.0 - theta)) {
    const double zeta2 = zeta(2, theta);
    eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n), 1.0 - theta)) / (1.0 - zeta2 / zeta_n_);
    half_pow_theta_ = 1.0 + std::pow(0.5, theta);
  }

  std::uint64_t operator()(SplitMix64& rng) const noexcept {
    const double u = rng.unit();
    const double uz = u * zeta_n_;
    if (uz < 1.0) return 0;
    if (uz < half_pow_theta_) return 1;
    const auto r = static_cast<std::uint64_t>(static_cast<double>(n_) *
                                              std::pow(eta_ * u - eta_ + 1.0, alpha_));
    return r < n_ ? r : n_ - 1;
  }

  // Probability mass of the `k` most popular ranks, for comparison with hit rates.
  double top_mass(std::uint64_t k) const { return zeta(k, theta_) / zeta_n_; }

 private:
  static double zeta(std::uint64_t n, double theta) {
    double sum = 0;
    for (std::uint64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
    return sum;
  }

  std::uint64_t n_;
  double theta_;
  double zeta_n_;
  double alpha_;
  double eta_ = 0;
  double half_pow_theta_ = 0;
};

// Rank -> page: a seeded shuffle, so hot pages are spread over the file rather
// than packed at its start.
std::vector<BlockId> scatter_ranks(std::uint64_t n, std::uint64_t seed) {
  std::vector<BlockId> pages(n);
  for (std::uint64_t i = 0; i < n; ++i) pages[i] = i;
  SplitMix64 rng(seed);
  for (std::uint64_t i = n; i > 1; --i) std::swap(pages[i - 1], pages[rng.below(i)]);
  return pages;
}

// ---- data file -------------------------------------------------------------

Task<void> fill_pages(DiskManager& dm, std::uint64_t pages) {
  std::vector<std::uint64_t> words(dm.page_size() / sizeof(std::uint64_t));
  for (BlockId id = 0; id < pages; ++id) {
    for (std::size_t w = 0; w < words.size(); ++w) words[w] = id * 0x9e3779b97f4a7c15ull + w;
    words[0] = id;  // the stamp the workers check
    const std::span<const std::byte> bytes = std::as_bytes(std::span<const std::uint64_t>(words));
    co_await dm.write_block(id, bytes);
  }
  co_await dm.sync();
}

// A file of `pages` written pages, removed when the process exits.
class PoolBenchFile {
 public:
  explicit PoolBenchFile(std::uint64_t pages) : pages_(pages) {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp && *tmp ? tmp : "/tmp") + "/corobtree-poolbench-" +
            std::to_string(::getpid()) + ".dat";
    std::remove(path_.c_str());
    DiskOptions o;
    o.backend = IoBackend::kPread;
    o.use_env = false;
    o.lock_file = false;
    auto dm = DiskManager::open(path_, o);
    dm->allocate_blocks(pages);  // fallocate: unwritten extents, so write them
    corobtree::sync_wait(fill_pages(*dm, pages));
    dm->close();
  }
  ~PoolBenchFile() { std::remove(path_.c_str()); }
  PoolBenchFile(const PoolBenchFile&) = delete;
  PoolBenchFile& operator=(const PoolBenchFile&) = delete;

  // The process-wide file, sized for ZipfConfig.
  static const PoolBenchFile& get() {
    static const PoolBenchFile file(ZipfConfig::get().file_pages);
    return file;
  }

  const std::string& path() const { return path_; }
  std::uint64_t pages() const { return pages_; }

 private:
  std::string path_;
  std::uint64_t pages_;
};

std::unique_ptr<DiskManager> open_bench_file(IoBackend backend, bool direct_io) {
  DiskOptions o;
  o.backend = backend;
  o.use_env = false;
  o.direct_io = direct_io;
  o.lock_file = false;
  return DiskManager::open(PoolBenchFile::get().path(), o);
}

// ---- hot fetch -------------------------------------------------------------

constexpr std::size_t kHotPoolPages = 64;
constexpr BlockId kHotPage = 7;

Task<void> load_page(BufferPool& pool, BlockId id) {
  PageGuard g = co_await pool.fetch_page(id);
  benchmark::DoNotOptimize(g.data().data());
}

// The whole timed loop in one coroutine: every fetch is a hit, so nothing
// suspends and sync_wait resumes this frame once.
Task<void> hot_fetch_loop(BufferPool& pool, BlockId id, benchmark::State& state) {
  for (auto _ : state) {
    PageGuard g = co_await pool.fetch_page(id);
    benchmark::DoNotOptimize(g.data().data());
  }
}

void report_hot(benchmark::State& state, const BufferPool& pool) {
  const corobtree::BufferPoolStats s = pool.stats();
  if (s.misses != 0 || s.hits != static_cast<std::uint64_t>(state.iterations())) {
    state.SkipWithError("hot fetch was not served from the pool every time");
  }
  state.counters["metadata_bytes_per_frame"] = pool.metadata_bytes_per_frame();
  state.counters["frame_bytes"] = static_cast<double>(pool.page_size());
}

void BM_HotFetch(benchmark::State& state) {
  auto dm = open_bench_file(IoBackend::kPread, false);
  BufferPool pool(*dm, kHotPoolPages);
  corobtree::sync_wait(load_page(pool, kHotPage));
  pool.reset_stats();
  corobtree::sync_wait(hot_fetch_loop(pool, kHotPage, state));
  report_hot(state, pool);
  corobtree::sync_wait(pool.close());
}

void BM_HotFetchTryCached(benchmark::State& state) {
  auto dm = open_bench_file(IoBackend::kPread, false);
  BufferPool pool(*dm, kHotPoolPages);
  corobtree::sync_wait(load_page(pool, kHotPage));
  pool.reset_stats();
  for (auto _ : state) {
    PageGuard g;
    const bool hit = pool.try_fetch_cached(kHotPage, g);
    benchmark::DoNotOptimize(hit);
    benchmark::DoNotOptimize(g.data().data());
  }
  report_hot(state, pool);
  corobtree::sync_wait(pool.close());
}

// ---- Zipf ------------------------------------------------------------------

struct ZipfWorkload {
  const ZipfDistribution& zipf;
  const std::vector<BlockId>& page_of_rank;
};

// Fetches `fetches` Zipf-chosen pages one after another, checking each page's
// stamp; counts wrong pages into `bad`.
Task<void> zipf_worker(BufferPool& pool, ZipfWorkload work, std::uint64_t fetches,
                       std::uint64_t seed, std::uint64_t& bad) {
  SplitMix64 rng(seed);
  for (std::uint64_t i = 0; i < fetches; ++i) {
    const BlockId id = work.page_of_rank[work.zipf(rng)];
    PageGuard g = co_await pool.fetch_page(id);
    std::uint64_t stamp;
    std::memcpy(&stamp, g.data().data(), sizeof stamp);
    if (stamp != id) ++bad;
  }
}

// Runs `tasks` workers together on this thread until all have finished.
void run_zipf_round(BufferPool& pool, ZipfWorkload work, std::size_t tasks,
                    std::uint64_t fetches_per_task, std::uint64_t& seed, std::uint64_t& bad) {
  std::vector<Task<void>> workers;
  workers.reserve(tasks);
  for (std::size_t t = 0; t < tasks; ++t) {
    workers.push_back(zipf_worker(pool, work, fetches_per_task, seed++, bad));
  }
  corobtree::sync_wait(corobtree::when_all(std::move(workers)));
}

void BM_Zipf(benchmark::State& state, IoBackend backend) {
  const ZipfConfig cfg = ZipfConfig::get();
  auto dm = open_bench_file(backend, true);
  BufferPool pool(*dm, cfg.pool_pages());
  const ZipfDistribution zipf(cfg.file_pages, cfg.theta);
  const std::vector<BlockId> page_of_rank = scatter_ranks(cfg.file_pages, 42);
  const ZipfWorkload work{zipf, page_of_rank};
  std::uint64_t seed = 1;
  std::uint64_t bad = 0;

  // Warm-up: fill the pool and let the LRU settle, then count from zero.
  run_zipf_round(pool, work, cfg.tasks, cfg.warmup_fetches / cfg.tasks, seed, bad);
  pool.reset_stats();

  for (auto _ : state) {
    run_zipf_round(pool, work, cfg.tasks, cfg.fetches_per_task, seed, bad);
  }

  const corobtree::BufferPoolStats s = pool.stats();
  const auto fetches =
      static_cast<std::uint64_t>(state.iterations()) * cfg.tasks * cfg.fetches_per_task;
  if (bad != 0) state.SkipWithError("a fetched page did not hold its own id");
  if (s.hits + s.misses != fetches) state.SkipWithError("hits + misses != fetches");
  state.SetItemsProcessed(static_cast<std::int64_t>(fetches));
  state.counters["hit_rate"] = s.hit_rate();
  state.counters["misses"] = static_cast<double>(s.misses);
  state.counters["disk_reads"] = static_cast<double>(s.disk_reads);
  state.counters["evictions"] = static_cast<double>(s.evictions);
  // What a perfect cache of the hottest pool_pages pages would hit.
  state.counters["ideal_hit_rate"] = zipf.top_mass(cfg.pool_pages());
  state.counters["metadata_bytes_per_frame"] = pool.metadata_bytes_per_frame();
  state.counters["pool_pages"] = static_cast<double>(cfg.pool_pages());
  state.counters["file_pages"] = static_cast<double>(cfg.file_pages);
  corobtree::sync_wait(pool.close());
}

}  // namespace

// A burst of 4,000 claims, all released but the first `held`; then the
// engine's questions in a loop.
void BM_PinTableAfterBurst(benchmark::State& state) {
  auto* pins = new corobtree::ViewPins();
  std::vector<std::byte> pages(4096);
  std::vector<std::uint32_t> slots;
  for (std::uint32_t i = 0; i < 4000; ++i) slots.push_back(pins->claim(&pages[i % 4096]));
  for (std::size_t i = static_cast<std::size_t>(state.range(0)); i < slots.size(); ++i) {
    pins->release(slots[i]);
  }
  std::vector<const std::byte*> named;
  named.reserve(corobtree::ViewPins::kSlots);
  std::size_t hits = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    hits += pins->names(&pages[++i % 4096]) ? 1 : 0;
    pins->named(named);
    hits += named.size();
    benchmark::DoNotOptimize(hits);
  }
  for (std::int64_t h = 0; h < state.range(0); ++h)
    pins->release(slots[static_cast<std::size_t>(h)]);
  pins->orphan({});
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_HotFetch);
BENCHMARK(BM_HotFetchTryCached);
BENCHMARK(BM_PinTableAfterBurst)->ArgName("held")->Arg(0)->Arg(1);
BENCHMARK_CAPTURE(BM_Zipf, uring, IoBackend::kUring)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Zipf, pread, IoBackend::kPread)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
