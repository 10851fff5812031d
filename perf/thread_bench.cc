// Thread scaling: corobtree and the peers (LMDB, SQLite in WAL mode, RocksDB, LevelDB;
// each only when its library was found) with the same thread counts in the
// same run, for the scaling table of bench_report.py.
//
//   thread_bench [--threads=1,2,4] [--tasks=32] [Google Benchmark flags]
//
// --threads lists the thread counts T every workload runs at (default 1,2),
// so the same binary measures a larger machine; --tasks lists the lookup tasks
// per thread of the cold lookups (default 32). Both are read (and removed)
// before Google Benchmark sees the command line.
//
// Every run uses T threads (the main thread and T - 1 std::threads, started
// together after an untimed setup), Iterations(1) and manual time: items_per_second is the items
// of all threads over the wall time from the start to the last thread's end.
// Each timed run lasts 2 s (COROBTREE_BENCH_QUICK=1: 0.5 s; smoke: 0.05 s).
//
// Cached (thread_cached.cc; N keys as btree_bench: 1M, COROBTREE_BENCH_KEYS=n,
// smoke 20k; 8-byte keys, 100-byte values; everything cached and warmed):
//   BM_ThreadGet/<engine>/threads:T     random gets of present keys (gets/s)
//   BM_ThreadScan/<engine>/threads:T    seek to a random key, read 100 (entries/s)
//   BM_ThreadInsert/<engine>/threads:T  fill an empty store with N keys, thread t
//       its own contiguous range in random order, one commit (WriteBatch) per
//       1000 puts, no sync (inserts/s over the whole fill)
//   engines: corobtree (one BlockingDatabase shared by the threads; each
//   thread runs its loop in one coroutine under sync_wait on its Database),
//   corobtree_blocking (gets and scans: BlockingDatabase::get, or ::scan of
//   100 entries into a reused vector, per call, sync_wait included), and each peer with a
//   PeerSession per thread (LMDB: a read transaction per thread, one env; RocksDB: one DB; SQLite:
//   a connection per thread).
// Durable commits (thread_commit.cc):
//   BM_ThreadCommit/corobtree/threads:T/writers:W  T threads, each running W
//       writer tasks (when_all under sync_wait) of single durable puts
//       (Durability::kSync), as commit_bench (1, 8, 32 writers per thread)
//   BM_ThreadCommit/<peer>/threads:T/writers:1  one PeerWriter per thread
// Cold lookups (thread_cold.cc):
//   BM_ThreadColdGet/threads:T/tasks:N  T threads, each running N lookup tasks
//       (when_all under sync_wait) on one database much larger than its pool,
//       O_DIRECT; then fio 4 KiB randread at queue depth T x N on the same file
//       (counters fio_iops and ours_over_fio).
//
// Files live in $TMPDIR (corobtree-threadbench-<pid>-*, corobtree-peerbench-<pid>-*,
// and the reused corobtree-cold-<N>.db) and are removed when the benchmarks
// finish, except the cold database. A failed run makes the exit status 1.
//   COROBTREE_BENCH_SMOKE=1 ./thread_bench --threads=1,2
#include "perf/thread_bench.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <latch>
#include <mutex>
#include <string_view>
#include <thread>

#include "perf/bench_common.h"

namespace corobtree::bench {

ThreadBenchConfig& thread_config() {
  static ThreadBenchConfig config;
  return config;
}

bool quick_mode() {
  const char* s = std::getenv("COROBTREE_BENCH_QUICK");
  return s != nullptr && *s != '\0' && std::string_view(s) != "0";
}

double window_seconds() {
  if (smoke_mode()) return 0.05;
  return quick_mode() ? 0.5 : 2.0;
}

namespace {
bool g_failed = false;
}  // namespace

void fail(benchmark::State& state, const std::string& message) {
  g_failed = true;
  state.SkipWithError(message.c_str());
}

bool any_failure() { return g_failed; }

std::string threads_suffix(int threads) { return "/threads:" + std::to_string(threads); }

std::string temp_db_path(const std::string& tag) {
  static int serial = 0;
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/corobtree-threadbench-" +
         std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(serial++) + ".db";
}

void remove_database_files(const std::string& path) {
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-wal2").c_str());
}

ThreadRun run_threads(int threads, double window, const std::function<TimedBody(int)>& setup) {
  ThreadRun run;
  const auto n = static_cast<std::size_t>(threads);
  std::vector<std::uint64_t> items(n, 0);
  std::vector<Clock::time_point> finished(n);
  std::mutex error_mutex;
  const auto record = [&](const char* what) {
    const std::lock_guard<std::mutex> lock(error_mutex);
    if (run.error.empty()) run.error = what;
  };
  std::latch ready(threads);
  std::latch go(1);
  Clock::time_point deadline;  // written before go.count_down()
  Clock::time_point start;
  const auto thread_main = [&](std::size_t t) {
    TimedBody body;
    try {
      body = setup(static_cast<int>(t));
    } catch (const std::exception& e) {
      record(e.what());
    }
    ready.count_down();
    if (t == 0) {
      ready.wait();
      start = Clock::now();
      deadline = start +
                 std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(window));
      go.count_down();
    }
    go.wait();
    if (body) {
      try {
        items[t] = body(deadline);
      } catch (const std::exception& e) {
        record(e.what());
      }
    }
    finished[t] = Clock::now();
  };
  std::vector<std::thread> others;
  others.reserve(n - 1);
  for (std::size_t t = 1; t < n; ++t) others.emplace_back(thread_main, t);
  thread_main(0);
  for (std::thread& th : others) th.join();
  const Clock::time_point last = *std::max_element(finished.begin(), finished.end());
  run.seconds = std::chrono::duration<double>(last - start).count();
  for (const std::uint64_t i : items) run.items += i;
  return run;
}

namespace {

// Parses "1,2,4" into distinct positive integers (at most `max` each), in
// increasing order; false if malformed.
bool parse_list(std::string_view text, int max, std::vector<int>& out) {
  out.clear();
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string item(text.substr(0, comma));
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > max) return false;
    if (std::find(out.begin(), out.end(), static_cast<int>(v)) == out.end()) {
      out.push_back(static_cast<int>(v));
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return false;  // a trailing comma
  }
  std::sort(out.begin(), out.end());
  return !out.empty();
}

// Removes --threads=... and --tasks=... from argv into the configuration.
// Returns false (after printing why) on a malformed list.
bool take_flags(int& argc, char** argv) {
  ThreadBenchConfig& config = thread_config();
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    std::vector<int>* target = nullptr;
    std::string_view value;
    int max = 0;
    if (arg.rfind("--threads=", 0) == 0) {
      target = &config.threads;
      value = arg.substr(std::strlen("--threads="));
      max = 1024;
    } else if (arg.rfind("--tasks=", 0) == 0) {
      target = &config.tasks;
      value = arg.substr(std::strlen("--tasks="));
      max = 4096;
    }
    if (target == nullptr) {
      argv[kept++] = argv[i];
      continue;
    }
    if (!parse_list(value, max, *target)) {
      std::fprintf(stderr,
                   "thread_bench: %s: expected a comma-separated list of integers in 1..%d\n",
                   argv[i], max);
      return false;
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  return true;
}

}  // namespace
}  // namespace corobtree::bench

int main(int argc, char** argv) {
  if (!corobtree::bench::take_flags(argc, argv)) return 2;
  corobtree::bench::register_cached_benchmarks();
  corobtree::bench::register_commit_benchmarks();
  corobtree::bench::register_cold_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  corobtree::bench::release_cached_stores();
  return corobtree::bench::any_failure() ? 1 : 0;
}
