// thread_bench's durable commits (see perf/thread_bench.cc). corobtree: a
// fresh database (default options, Durability::kSync) preloaded as
// commit_bench's (100,000 random keys; smoke 2,000) and checkpointed, then T
// threads each run W writer tasks under one sync_wait, each task putting a
// fresh random key (seed kCommitSeed + t * W + w) and awaiting its commit
// before the next. The peers: a fresh store in PeerMode::kDurable, one
// PeerWriter (a thread of peer_bench's BM_PeerCommit) per thread.
//
// commits_per_s counts the commits completed within the window, over the
// window; commits in flight at the deadline finish untimed. p50_us / p99_us:
// commit latencies; the store's count is checked against all the commits.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "perf/bench_common.h"
#include "perf/bench_random.h"
#include "perf/peer_store.h"
#include "perf/thread_bench.h"

namespace corobtree::bench {
namespace {

constexpr std::uint64_t kCommitSeed = 1000;
constexpr int kWriterCounts[] = {1, 8, 32};  // writer tasks per thread

// One thread's tally: its tasks all run on that thread, so no sharing.
struct Tally {
  std::uint64_t in_window = 0;
  std::vector<double> latencies_us;  // every commit, the drain included
};

Task<void> commit_writer(Database* db, Tally* tally, std::uint64_t seed,
                         Clock::time_point deadline) {
  SplitMix64 rng(seed);
  while (Clock::now() < deadline) {
    const std::uint64_t k = rng.next();
    const Key key(k);
    const std::string value = make_value(k);
    const auto c0 = Clock::now();
    co_await db->put(key.view(), value);
    const auto c1 = Clock::now();
    tally->latencies_us.push_back(std::chrono::duration<double, std::micro>(c1 - c0).count());
    if (c1 <= deadline) ++tally->in_window;
  }
}

Task<void> thread_writers(Database* db, Tally* tally, std::uint64_t first_seed, int writers,
                          Clock::time_point deadline) {
  std::vector<Task<void>> tasks;
  tasks.reserve(static_cast<std::size_t>(writers));
  for (int w = 0; w < writers; ++w) {
    tasks.push_back(commit_writer(db, tally, first_seed + static_cast<std::uint64_t>(w), deadline));
  }
  co_await when_all(std::move(tasks));
}

struct CommitResult {
  ThreadRun run;
  std::vector<double> latencies_us;
};

CommitResult our_commits(int threads, int writers) {
  const std::string path = temp_db_path("commit");
  remove_database_files(path);
  CommitResult result;
  std::vector<Tally> tallies(static_cast<std::size_t>(threads));
  {
    Options options;
    options.durability = Durability::kSync;
    std::unique_ptr<Database> db = sync_wait(Database::open(path, options));
    const auto pairs = commit_preload_pairs();
    sync_wait(db->bulk_load(pairs));
    sync_wait(db->checkpoint());
    Database* raw = db.get();
    result.run = run_threads(threads, window_seconds(), [&](int t) {
      Tally* tally = &tallies[static_cast<std::size_t>(t)];
      const std::uint64_t seed =
          kCommitSeed + static_cast<std::uint64_t>(t) * static_cast<std::uint64_t>(writers);
      return TimedBody([raw, tally, seed, writers](Clock::time_point deadline) {
        sync_wait(thread_writers(raw, tally, seed, writers, deadline));
        return tally->in_window;
      });
    });
    std::uint64_t all = 0;
    for (Tally& tl : tallies) {
      all += tl.latencies_us.size();
      result.latencies_us.insert(result.latencies_us.end(), tl.latencies_us.begin(),
                                 tl.latencies_us.end());
    }
    if (result.run.error.empty() && db->count() != pairs.size() + all) {
      result.run.error = "the database counted a different number of keys than commits";
    }
    // Dropped unclosed: closing would checkpoint, untimed and useless.
  }
  remove_database_files(path);
  return result;
}

CommitResult peer_commits(const Peer& peer, int threads) {
  CommitResult result;
  std::unique_ptr<PeerStore> store =
      peer.open(peer_temp_path(peer.name, "commit"), PeerMode::kDurable);
  const std::uint64_t preloaded = preload_peer(*store);
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<PeerWriter>> writers;
  for (int t = 0; t < threads; ++t) writers.push_back(store->writer(stop));
  std::vector<Tally> tallies(static_cast<std::size_t>(threads));
  result.run = run_threads(threads, window_seconds(), [&](int t) {
    PeerWriter* writer = writers[static_cast<std::size_t>(t)].get();
    Tally* tally = &tallies[static_cast<std::size_t>(t)];
    const std::uint64_t seed = kCommitSeed + static_cast<std::uint64_t>(t);
    return TimedBody([writer, tally, seed, &stop](Clock::time_point deadline) {
      SplitMix64 rng(seed);
      while (Clock::now() < deadline) {
        const auto c0 = Clock::now();
        if (!writer->commit(rng.next())) break;
        const auto c1 = Clock::now();
        tally->latencies_us.push_back(std::chrono::duration<double, std::micro>(c1 - c0).count());
        if (c1 <= deadline) ++tally->in_window;
      }
      // Writers still queued for the lock (SQLite) give up now.
      stop.store(true);
      return tally->in_window;
    });
  });
  writers.clear();  // before the store: SQLite writers hold connections to its file
  std::uint64_t all = 0;
  for (Tally& tl : tallies) {
    all += tl.latencies_us.size();
    result.latencies_us.insert(result.latencies_us.end(), tl.latencies_us.begin(),
                               tl.latencies_us.end());
  }
  if (result.run.error.empty() && store->count() != preloaded + all) {
    result.run.error = "the store counted a different number of keys than commits";
  }
  return result;
}

void BM_ThreadCommit(benchmark::State& state, const Peer* peer, int threads, int writers) {
  CommitResult result;
  for (auto _ : state) {
    try {
      result = peer != nullptr ? peer_commits(*peer, threads) : our_commits(threads, writers);
    } catch (const std::exception& e) {
      result.run.error = e.what();
    }
    state.SetIterationTime(window_seconds());
  }
  if (!result.run.error.empty()) fail(state, result.run.error);
  state.SetItemsProcessed(static_cast<std::int64_t>(result.run.items));
  state.counters["commits_per_s"] = static_cast<double>(result.run.items) / window_seconds();
  state.counters["threads"] = threads;
  state.counters["writers"] = writers;
  state.counters["p50_us"] = percentile(result.latencies_us, 0.50);
  state.counters["p99_us"] = percentile(result.latencies_us, 0.99);
}

}  // namespace

void register_commit_benchmarks() {
  static const std::vector<Peer> peers = available_peers();
  for (const int w : kWriterCounts) {
    for (const int t : thread_config().threads) {
      const std::string name =
          "BM_ThreadCommit/corobtree" + threads_suffix(t) + "/writers:" + std::to_string(w);
      benchmark::RegisterBenchmark(name.c_str(), BM_ThreadCommit, nullptr, t, w)
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  for (const Peer& p : peers) {
    for (const int t : thread_config().threads) {
      const std::string name =
          "BM_ThreadCommit/" + std::string(p.name) + threads_suffix(t) + "/writers:1";
      benchmark::RegisterBenchmark(name.c_str(), BM_ThreadCommit, &p, t, 1)
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace corobtree::bench
