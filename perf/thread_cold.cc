// thread_bench's cold lookups (see perf/thread_bench.cc) against fio on the
// same file in the same run.
//
// The database is cold_bench's (perf/cold_db.h: 9.5M keys, a bit over 1 GiB;
// COROBTREE_COLD_KEYS=n). It is opened with direct_io, the default backend
// (io_uring, else pread) and a pool of 1/32 of the file (at least 256 frames;
// 9.5M keys: 35 MiB; COROBTREE_THREAD_COLD_POOL_PAGES=n overrides it): enough
// for every inner page, so a lookup costs about one leaf read and the ratio
// to fio measures the engine, not the pool's size. The inner levels are
// warmed from the main thread; then T threads each run N lookup tasks (one
// sync_wait over when_all), every task doing gets of random present keys and
// checking the values until the window closes. items_per_second = lookups/s.
//
// Then fio reads the same file: 4 KiB random O_DIRECT reads, io_uring engine,
// one job at queue depth T x N, for 5 s (quick: 2 s). Counters: fio_iops,
// ours_over_fio (lookups/s over fio IOPS), reads_per_lookup (the pool's disk
// reads over the lookups) and reads_over_fio (device reads/s over fio IOPS).
// fio is skipped in smoke mode, when COROBTREE_BENCH_FIO=0, or when it is not
// installed (then the counters are absent and the label says why).
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "perf/bench_common.h"
#include "perf/bench_random.h"
#include "perf/cold_db.h"
#include "perf/thread_bench.h"

namespace corobtree::bench {
namespace {

constexpr std::uint64_t kWarmupLookups = 50'000;
constexpr std::size_t kMinPoolPages = 256;
constexpr std::size_t kPageBytes = 4096;

std::size_t cold_pool_pages(const std::string& path) {
  const char* s = std::getenv("COROBTREE_THREAD_COLD_POOL_PAGES");
  const std::uint64_t v = s != nullptr ? std::strtoull(s, nullptr, 10) : 0;
  if (v > 0) return static_cast<std::size_t>(v);
  struct stat st;
  const std::uint64_t bytes =
      ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  return std::max<std::size_t>(kMinPoolPages, static_cast<std::size_t>(bytes / kPageBytes / 32));
}

double fio_seconds() { return quick_mode() ? 2.0 : 5.0; }

// fio's IOPS of 4 KiB random O_DIRECT reads of `path` at queue depth `qd`, or
// nullopt with the reason in `why`.
std::optional<double> fio_iops(const std::string& path, int qd, std::string& why) {
  const char* env = std::getenv("COROBTREE_BENCH_FIO");
  if (smoke_mode() || (env != nullptr && std::string_view(env) == "0")) {
    why = "fio skipped";
    return std::nullopt;
  }
  std::string quoted = "'";
  for (const char c : path) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  const std::string cmd =
      "fio --name=threadcold --filename=" + quoted +
      " --readonly --rw=randread --bs=4k --direct=1 --ioengine=io_uring --iodepth=" +
      std::to_string(qd) + " --runtime=" + std::to_string(static_cast<int>(fio_seconds())) +
      " --time_based --output-format=terse --terse-version=3 2>/dev/null";
  std::FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    why = "fio could not be started";
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, got);
  const int status = ::pclose(pipe);
  // Terse v3: version;fio version;job name;group;error;read KiB;read KiB/s;read IOPS;...
  std::size_t pos = 0;
  for (int field = 0; field < 7 && pos != std::string::npos; ++field) {
    pos = out.find(';', pos);
    if (pos != std::string::npos) ++pos;
  }
  if (status != 0 || pos == std::string::npos || out.rfind("3;", 0) != 0) {
    why = "fio failed or is not installed";
    return std::nullopt;
  }
  return std::strtod(out.c_str() + pos, nullptr);
}

Task<std::uint64_t> timed_lookups(Database* db, std::uint64_t n, std::uint64_t seed,
                                  Clock::time_point deadline) {
  SplitMix64 rng(seed);
  std::uint64_t done = 0;
  while (Clock::now() < deadline) {
    const std::uint64_t k = rng.below(n);
    const Key key(k);
    const std::optional<std::string> v = co_await db->get(key.view());
    if (!v || !value_matches(*v, k)) {
      throw std::runtime_error("a get missed a present key or returned a wrong value");
    }
    ++done;
  }
  co_return done;
}

// N tasks on the calling thread; returns their lookups.
std::uint64_t run_tasks(Database* db, int tasks, std::uint64_t first_seed,
                        Clock::time_point deadline) {
  std::vector<Task<std::uint64_t>> round;
  round.reserve(static_cast<std::size_t>(tasks));
  for (int i = 0; i < tasks; ++i) {
    round.push_back(
        timed_lookups(db, cold_key_count(), first_seed + static_cast<std::uint64_t>(i), deadline));
  }
  const std::vector<std::uint64_t> done = sync_wait(when_all(std::move(round)));
  std::uint64_t all = 0;
  for (const std::uint64_t d : done) all += d;
  return all;
}

void BM_ThreadColdGet(benchmark::State& state, int threads, int tasks) {
  std::string error;
  const std::string path = ensure_cold_db(error);
  ThreadRun run;
  DatabaseStats before;
  DatabaseStats after;
  std::size_t pool_pages = 0;
  if (path.empty()) {
    fail(state, error);
    for (auto _ : state) {
    }
    return;
  }
  for (auto _ : state) {
    try {
      Options o;
      o.direct_io = true;
      pool_pages = cold_pool_pages(path);
      o.pool_pages = pool_pages;
      o.create_if_missing = false;
      std::unique_ptr<Database> db = sync_wait(Database::open(path, o));
      Database* raw = db.get();
      // Warm the inner levels from this thread (the leaves stay cold).
      const std::uint64_t warm = smoke_mode() ? 2'000 : kWarmupLookups;
      const auto warm_until = Clock::now() + std::chrono::seconds(smoke_mode() ? 1 : 10);
      std::uint64_t warmed = 0;
      while (warmed < warm && Clock::now() < warm_until) {
        warmed +=
            run_tasks(raw, 32, 1'000'000 + warmed, Clock::now() + std::chrono::milliseconds(50));
      }
      before = db->stats();
      run = run_threads(threads, window_seconds(), [raw, tasks](int t) {
        const std::uint64_t seed =
            (static_cast<std::uint64_t>(t) << 32) | static_cast<std::uint64_t>(tasks);
        return TimedBody([raw, tasks, seed](Clock::time_point deadline) {
          return run_tasks(raw, tasks, seed, deadline);
        });
      });
      after = db->stats();
      sync_wait(db->close());
    } catch (const std::exception& e) {
      run.error = e.what();
    }
    state.SetIterationTime(std::max(run.seconds, 1e-9));
  }
  if (!run.error.empty()) {
    fail(state, run.error);
    return;
  }
  const double lookups = static_cast<double>(run.items);
  const double rate = run.seconds > 0 ? lookups / run.seconds : 0.0;
  const double reads = static_cast<double>(after.pool.disk_reads - before.pool.disk_reads);
  state.SetItemsProcessed(static_cast<std::int64_t>(run.items));
  state.counters["threads"] = threads;
  state.counters["tasks"] = tasks;
  state.counters["reads_per_lookup"] = lookups > 0 ? reads / lookups : 0.0;
  state.counters["pool_MiB"] =
      static_cast<double>(pool_pages * after.page_size) / (1024.0 * 1024.0);
  state.counters["file_MiB"] =
      static_cast<double>(after.pages * after.page_size) / (1024.0 * 1024.0);
  std::string label(backend_name(after.backend));
  std::string why;
  if (const std::optional<double> fio = fio_iops(path, threads * tasks, why); fio && *fio > 0) {
    state.counters["fio_iops"] = *fio;
    state.counters["ours_over_fio"] = rate / *fio;
    state.counters["reads_over_fio"] = lookups > 0 ? rate * (reads / lookups) / *fio : 0.0;
  } else {
    label += ", " + why;
  }
  state.SetLabel(label);
}

}  // namespace

void register_cold_benchmarks() {
  for (const int n : thread_config().tasks) {
    for (const int t : thread_config().threads) {
      const std::string name =
          "BM_ThreadColdGet" + threads_suffix(t) + "/tasks:" + std::to_string(n);
      benchmark::RegisterBenchmark(name.c_str(), BM_ThreadColdGet, t, n)
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace corobtree::bench
