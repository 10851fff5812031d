// Peer benchmarks: LMDB, SQLite (WAL), RocksDB and LevelDB on btree_bench's cached
// workloads, and on durable single-key commits from concurrent threads.
// Each peer is built in only when its library was found (perf/CMakeLists.txt).
//
// The cached workloads reproduce btree_bench exactly: N keys (1,000,000;
// COROBTREE_BENCH_SMOKE=1: 20,000; COROBTREE_BENCH_KEYS=n: n), 8-byte
// big-endian keys, 100-byte values, the same SplitMix64 seeds, batch shapes and
// counters, so bench_report.py can set each peer beside our figure.
//
// BM_PeerInsertBatch/<peer> = BM_RandomInsertBatch1000: fill an empty store
//     with N keys in random order, one transaction (WriteBatch) per 1000 puts,
//     building the batch timed too (inserts/s, manual time; 3 runs, as
//     btree_bench; COROBTREE_BENCH_QUICK=1: 1).
// BM_PeerGet/<peer>  = BM_RandomGet: random gets of present keys (gets/s, CPU).
// BM_PeerScan/<peer> = BM_Scan100: seek to a random key and read 100 entries
//     (entries/s, CPU). Both run for at least 1 s (quick: 0.5 s).
// BM_PeerSeedSearch/<peer> = BM_SeedSearch/uring_cached (the seed's shape),
//     cached: the 20,000 even keys of [0, 40000) put in btree_bench's random
//     order (batches of 1000, untimed), read through once, then rounds of
//     50,000 gets of uniform keys from [0, 40000), about half present
//     (us_per_search; real time). The peers' values are make_value's 100
//     bytes (PeerStore's only values), btree_bench's the keys in decimal.
// The N-key store of the reads is loaded once per peer with its bulk path,
//     then read through once so that everything is cached.
// BM_PeerCommit/<peer>/writers:W: W threads (1, 8, 64), each committing
//     single puts of fresh random 8-byte keys with 100-byte values, each
//     durable before the thread's next, into a store preloaded as
//     commit_bench's database (preload_peer()), for a fixed
//     window (2 s; COROBTREE_BENCH_QUICK=1: 0.5 s; smoke: 0.05 s).
//     commits_per_s: the commits of all threads completed within the window,
//     over the window; p50_us / p99_us: commit latencies; cpu_us_per_commit:
//     the process's CPU time (every thread's) over the commits, drain included.
//
// Files live in $TMPDIR (corobtree-peerbench-<pid>-*) and are removed when the
// benchmarks finish.
//   COROBTREE_BENCH_SMOKE=1 ./peer_bench
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "perf/bench_common.h"
#include "perf/bench_random.h"
#include "perf/peer_store.h"

namespace {

using corobtree::bench::key_count;
using corobtree::bench::kScanLength;
using corobtree::bench::Peer;
using corobtree::bench::PeerMode;
using corobtree::bench::PeerStore;
using corobtree::bench::PeerWriter;
using corobtree::bench::percentile;
using corobtree::bench::process_cpu_seconds;
using corobtree::bench::smoke_mode;
using corobtree::bench::SplitMix64;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatchSize = 1000;
constexpr std::uint64_t kCommitSeed = 1000;  // writer t draws from SplitMix64(kCommitSeed + t)

// COROBTREE_BENCH_QUICK=1: the main job's --quick (shorter timed runs).
bool quick_mode() {
  const char* s = std::getenv("COROBTREE_BENCH_QUICK");
  return s != nullptr && *s != '\0' && std::string_view(s) != "0";
}

double read_min_time() {
  if (smoke_mode()) return 0.05;
  return quick_mode() ? 0.5 : 1.0;
}

// btree_bench's 3 (smoke: 2); quick: 1, since SQLite's fill alone takes seconds.
int insert_iterations() {
  if (smoke_mode()) return 2;
  return quick_mode() ? 1 : 3;
}

double commit_seconds() {
  if (smoke_mode()) return 0.05;
  return quick_mode() ? 0.5 : 2.0;
}

// btree_bench's key orders: a Fisher-Yates shuffle of 0, 1, ..., N-1 with seed 7.
std::vector<std::uint64_t> insert_order() {
  std::vector<std::uint64_t> v(key_count());
  for (std::uint64_t i = 0; i < v.size(); ++i) v[i] = i;
  SplitMix64 rng(7);
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  return v;
}

std::vector<Peer> peers() { return corobtree::bench::available_peers(); }

std::unique_ptr<PeerStore> open_fresh(const Peer& peer, std::string_view tag, PeerMode mode) {
  return peer.open(corobtree::bench::peer_temp_path(peer.name, tag), mode);
}

// The N-key stores of the read benchmarks, one per peer; main() drops them.
std::map<std::string, std::unique_ptr<PeerStore>>& shared_stores() {
  static std::map<std::string, std::unique_ptr<PeerStore>> stores;
  return stores;
}

PeerStore& shared_store(const Peer& peer) {
  std::unique_ptr<PeerStore>& slot = shared_stores()[peer.name];
  if (!slot) {
    std::unique_ptr<PeerStore> s = open_fresh(peer, "shared", PeerMode::kCached);
    s->bulk_load(key_count());
    s->warm();
    if (s->count() != key_count()) throw std::runtime_error("the loaded store has the wrong keys");
    slot = std::move(s);
  }
  return *slot;
}

// ---- cached workloads ----------------------------------------------------------

void BM_PeerInsertBatch(benchmark::State& state, const Peer& peer) {
  static const std::vector<std::uint64_t> order = insert_order();
  const std::span<const std::uint64_t> all(order);
  try {
    std::unique_ptr<PeerStore> last;
    for (auto _ : state) {
      last.reset();
      last = open_fresh(peer, "insert", PeerMode::kCached);
      const auto t0 = Clock::now();
      for (std::size_t i = 0; i < all.size(); i += kBatchSize) {
        last->put_batch(all.subspan(i, std::min(kBatchSize, all.size() - i)));
      }
      state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    const std::uint64_t keys = last->count();
    if (keys != order.size()) state.SkipWithError("the store counted the wrong number of keys");
    state.counters["keys"] = static_cast<double>(keys);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(order.size()));
  state.counters["batch"] = kBatchSize;
}

void BM_PeerGet(benchmark::State& state, const Peer& peer) {
  try {
    PeerStore& store = shared_store(peer);
    const std::uint64_t n = key_count();
    SplitMix64 rng(11);
    std::uint64_t bad = 0;
    for (auto _ : state) {
      if (!store.get(rng.below(n))) ++bad;
    }
    if (bad != 0) state.SkipWithError("a get missed a present key or returned a wrong value");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["keys"] = static_cast<double>(key_count());
}

void BM_PeerScan(benchmark::State& state, const Peer& peer) {
  try {
    PeerStore& store = shared_store(peer);
    const std::uint64_t n = key_count();
    SplitMix64 rng(13);
    std::uint64_t bad = 0;
    for (auto _ : state) {
      if (!store.scan(rng.below(n - kScanLength + 1), kScanLength)) ++bad;
    }
    if (bad != 0) state.SkipWithError("a scan returned the wrong entries");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kScanLength));
  state.counters["keys"] = static_cast<double>(key_count());
}

// ---- the seed's searches --------------------------------------------------------

constexpr std::uint64_t kSeedInserts = 20'000;
constexpr std::uint64_t kSeedKeySpace = 2 * kSeedInserts;  // even keys inserted
constexpr std::uint64_t kSeedSearches = 50'000;

void BM_PeerSeedSearch(benchmark::State& state, const Peer& peer) {
  std::uint64_t found = 0;
  std::uint64_t bad = 0;
  double seconds = 0;
  try {
    std::unique_ptr<PeerStore> store = open_fresh(peer, "seed", PeerMode::kCached);
    // btree_bench's order: the even keys shuffled with seed 3.
    std::vector<std::uint64_t> order(kSeedInserts);
    for (std::uint64_t i = 0; i < kSeedInserts; ++i) order[i] = 2 * i;
    SplitMix64 shuffle(3);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle.below(i)]);
    const std::span<const std::uint64_t> all(order);
    for (std::size_t i = 0; i < all.size(); i += kBatchSize) {
      store->put_batch(all.subspan(i, std::min(kBatchSize, all.size() - i)));
    }
    store->warm();
    SplitMix64 rng(5);
    for (auto _ : state) {
      const auto t0 = Clock::now();
      for (std::uint64_t i = 0; i < kSeedSearches; ++i) {
        const std::uint64_t k = rng.below(kSeedKeySpace);
        const bool present = store->get(k);
        if (present) ++found;
        if (present != (k % 2 == 0)) ++bad;
      }
      seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    }
    if (bad != 0)
      state.SkipWithError("a search found an absent key, missed a present one or misread");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  const std::uint64_t searches = static_cast<std::uint64_t>(state.iterations()) * kSeedSearches;
  state.SetItemsProcessed(static_cast<std::int64_t>(searches));
  state.counters["us_per_search"] =
      searches > 0 ? seconds * 1e6 / static_cast<double>(searches) : 0.0;
  state.counters["found"] = static_cast<double>(found);
  state.counters["found_rate"] =
      searches > 0 ? static_cast<double>(found) / static_cast<double>(searches) : 0.0;
}

// ---- durable commits ---------------------------------------------------------

struct CommitRun {
  std::uint64_t commits = 0;            // all that completed, the drain included
  std::uint64_t commits_in_window = 0;  // completed by the deadline
  double seconds = 0;                   // the window
  std::vector<double> latencies_us;
  double cpu_seconds = 0;  // the process's, from the window's start to the drain's end
  std::string error;       // the first failure of any writer
};

// Runs one thread per writer, each committing back to back until `seconds`
// have passed. The rate counts the commits completed within that window;
// commits still in flight at the deadline finish (or give up, if only
// queued) untimed.
CommitRun run_commits(std::vector<std::unique_ptr<PeerWriter>>& writers, std::atomic<bool>& stop,
                      double seconds) {
  CommitRun run;
  std::vector<std::vector<double>> latencies(writers.size());
  std::vector<std::uint64_t> in_window(writers.size(), 0);
  std::mutex error_mutex;
  std::latch start(1);
  const auto window =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  Clock::time_point deadline;  // written before start.count_down()
  std::vector<std::thread> threads;
  threads.reserve(writers.size());
  for (std::size_t t = 0; t < writers.size(); ++t) {
    threads.emplace_back([&, t] {
      SplitMix64 rng(kCommitSeed + t);
      std::vector<double>& lat = latencies[t];
      start.wait();
      try {
        while (!stop.load(std::memory_order_relaxed)) {
          const auto c0 = Clock::now();
          if (!writers[t]->commit(rng.next())) break;
          const auto c1 = Clock::now();
          lat.push_back(std::chrono::duration<double, std::micro>(c1 - c0).count());
          if (c1 <= deadline) ++in_window[t];
        }
      } catch (const std::exception& e) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (run.error.empty()) run.error = e.what();
        stop.store(true);
      }
    });
  }
  deadline = Clock::now() + window;
  const double cpu0 = process_cpu_seconds();
  start.count_down();
  while (!stop.load() && Clock::now() < deadline) {
    std::this_thread::sleep_for(
        std::min<Clock::duration>(deadline - Clock::now(), std::chrono::milliseconds(10)));
  }
  stop.store(true);
  for (std::thread& th : threads) th.join();
  run.cpu_seconds = process_cpu_seconds() - cpu0;
  run.seconds = std::chrono::duration<double>(window).count();
  for (std::size_t t = 0; t < writers.size(); ++t) {
    run.latencies_us.insert(run.latencies_us.end(), latencies[t].begin(), latencies[t].end());
    run.commits_in_window += in_window[t];
  }
  run.commits = run.latencies_us.size();
  return run;
}

void BM_PeerCommit(benchmark::State& state, const Peer& peer, int writer_count) {
  CommitRun run;
  try {
    for (auto _ : state) {
      std::unique_ptr<PeerStore> store = open_fresh(peer, "commit", PeerMode::kDurable);
      const std::uint64_t preloaded = preload_peer(*store);
      std::atomic<bool> stop{false};
      std::vector<std::unique_ptr<PeerWriter>> writers;
      for (int i = 0; i < writer_count; ++i) writers.push_back(store->writer(stop));
      run = run_commits(writers, stop, commit_seconds());
      writers.clear();  // before the store: SQLite writers hold connections to its file
      state.SetIterationTime(run.seconds);
      if (!run.error.empty()) {
        state.SkipWithError(run.error.c_str());
      } else if (store->count() != preloaded + run.commits) {
        state.SkipWithError("the store counted a different number of keys than commits");
      }
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(run.commits_in_window));
  state.counters["commits_per_s"] =
      run.seconds > 0 ? static_cast<double>(run.commits_in_window) / run.seconds : 0.0;
  state.counters["commits"] = static_cast<double>(run.commits_in_window);
  state.counters["writers"] = writer_count;
  state.counters["p50_us"] = percentile(run.latencies_us, 0.50);
  state.counters["p99_us"] = percentile(run.latencies_us, 0.99);
  state.counters["cpu_us_per_commit"] =
      run.commits > 0 ? run.cpu_seconds * 1e6 / static_cast<double>(run.commits) : 0.0;
}

void register_benchmarks() {
  for (const Peer& peer : peers()) {
    const std::string name = peer.name;
    benchmark::RegisterBenchmark(("BM_PeerInsertBatch/" + name).c_str(), BM_PeerInsertBatch, peer)
        ->Iterations(insert_iterations())
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("BM_PeerGet/" + name).c_str(), BM_PeerGet, peer)
        ->MinTime(read_min_time());
    benchmark::RegisterBenchmark(("BM_PeerScan/" + name).c_str(), BM_PeerScan, peer)
        ->MinTime(read_min_time());
    benchmark::RegisterBenchmark(("BM_PeerSeedSearch/" + name).c_str(), BM_PeerSeedSearch, peer)
        ->MinTime(read_min_time())
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    for (const int writers : {1, 8, 64}) {
      benchmark::RegisterBenchmark(
          ("BM_PeerCommit/" + name + "/writers:" + std::to_string(writers)).c_str(), BM_PeerCommit,
          peer, writers)
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

// BENCHMARK_MAIN, plus the peers' registration and closing the shared stores
// before static destruction (which removes their files).
int main(int argc, char** argv) {
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  shared_stores().clear();
  return 0;
}
