// Shared pieces of thread_bench (perf/thread_bench.cc): the --threads and
// --tasks lists, the run lengths, the runner that starts T threads together,
// and failure reporting. Each workload lives in its own file
// (thread_cached.cc, thread_cold.cc, thread_commit.cc) and registers its
// benchmarks from main.
//
// Thread-safety: the configuration is written by main() before any benchmark
// runs; run_threads() is called from the benchmark's (main) thread.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace corobtree::bench {

using Clock = std::chrono::steady_clock;

struct ThreadBenchConfig {
  std::vector<int> threads{1, 2};  // --threads=1,2: the thread counts of every workload
  std::vector<int> tasks{32};      // --tasks=32: cold lookup tasks per thread
};

ThreadBenchConfig& thread_config();

// COROBTREE_BENCH_QUICK=1: the main job's --quick (shorter timed runs).
bool quick_mode();
// The length of each timed run: 2 s; quick 0.5 s; smoke 0.05 s.
double window_seconds();

// One thread's timed work: runs once every thread has started, until
// `deadline` (or through its fixed work, ignoring it), and returns the items
// it completed.
using TimedBody = std::function<std::uint64_t(Clock::time_point deadline)>;

struct ThreadRun {
  std::uint64_t items = 0;  // of all threads
  double seconds = 0;       // from the common start to the last thread's return
  std::string error;        // the first exception of any thread, or empty
};

// Runs `threads` threads: thread 0 is the calling thread (so T = 1 runs where
// the database was opened, as the one-thread benchmarks do), the others are
// new std::threads. Thread t first calls setup(t), untimed, on itself and gets
// its body; once every thread is set up, all start together with the same
// deadline (start + window seconds). An exception in a setup or a body is
// recorded in `error` (that thread's items count 0); the others run on.
ThreadRun run_threads(int threads, double window, const std::function<TimedBody(int)>& setup);

// SkipWithError, and remembers the failure: main's exit status is then 1 (for
// CI's smoke run, which checks it).
void fail(benchmark::State& state, const std::string& message);
bool any_failure();

// The name suffix "/threads:T".
std::string threads_suffix(int threads);

// $TMPDIR/corobtree-threadbench-<pid>-<tag>-<serial>.db (the file and its
// -wal are removed by remove_database_files).
std::string temp_db_path(const std::string& tag);
void remove_database_files(const std::string& path);

void register_cached_benchmarks();
void register_commit_benchmarks();
void register_cold_benchmarks();
// Drops the databases the cached benchmarks share (before static destruction).
void release_cached_stores();

}  // namespace corobtree::bench
