// thread_bench's cached workloads (see perf/thread_bench.cc): random gets,
// scans of 100 and batched inserts at every thread count, for corobtree and
// the peers. The read stores (N keys, bulk-loaded, then read through once) are
// made once per engine and shared by the gets and scans at every T; each
// insert run fills a fresh store.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/cursor.h>
#include <corobtree/database.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/write_batch.h>
#include "perf/bench_common.h"
#include "perf/bench_random.h"
#include "perf/peer_store.h"
#include "perf/thread_bench.h"

namespace corobtree::bench {
namespace {

constexpr std::size_t kBatchSize = 1000;
constexpr std::size_t kCachedPoolPages = 65536;  // 256 MiB: the N-key tree fits
constexpr std::uint64_t kCheckEvery = 32;        // operations between deadline checks
// Thread t draws from SplitMix64(seed + t): at T = 1, btree_bench's sequences.
constexpr std::uint64_t kGetSeed = 11;
constexpr std::uint64_t kScanSeed = 13;
constexpr std::uint64_t kInsertSeed = 7;

Options cached_options() {
  Options o;
  o.pool_pages = kCachedPoolPages;
  o.durability = Durability::kRelaxed;  // as btree_bench: logged, not fsynced
  return o;
}

// An engine of the cached workloads: corobtree (peer == nullptr) or a peer.
struct Engine {
  std::string name;
  const Peer* peer = nullptr;
  bool blocking = false;  // corobtree through BlockingDatabase::get / scan per call
};

// ---- the shared read stores --------------------------------------------------

struct OurStore {
  std::string path;
  std::unique_ptr<BlockingDatabase> db;
};

struct PeerShared {
  std::unique_ptr<PeerStore> store;
  std::vector<std::unique_ptr<PeerSession>> sessions;  // warmed; closed before the store
};

std::unique_ptr<OurStore>& our_slot() {
  static std::unique_ptr<OurStore> slot;
  return slot;
}

std::map<std::string, PeerShared>& peer_slots() {
  static std::map<std::string, PeerShared> slots;
  return slots;
}

// Reads every entry once through a cursor, checking the count.
Task<std::uint64_t> read_all(Database* db) {
  Cursor cursor = db->cursor();
  std::uint64_t n = 0;
  bool ok = co_await cursor.first();
  while (ok) {
    benchmark::DoNotOptimize(cursor.value().data());
    ++n;
    ok = co_await cursor.next();
  }
  co_return n;
}

BlockingDatabase& our_store() {
  std::unique_ptr<OurStore>& slot = our_slot();
  if (!slot) {
    auto s = std::make_unique<OurStore>();
    s->path = temp_db_path("shared");
    remove_database_files(s->path);
    s->db = std::make_unique<BlockingDatabase>(BlockingDatabase::open(s->path, cached_options()));
    std::vector<std::pair<std::string, std::string>> pairs;
    pairs.reserve(key_count());
    for (std::uint64_t k = 0; k < key_count(); ++k) {
      const Key key(k);
      pairs.emplace_back(std::string(key.view()), make_value(k));
    }
    s->db->bulk_load(pairs);
    if (sync_wait(read_all(&s->db->async())) != key_count()) {
      throw std::runtime_error("the loaded database has the wrong keys");
    }
    slot = std::move(s);
  }
  return *slot->db;
}

// The peer's shared store with at least `threads` warmed sessions.
PeerShared& peer_store(const Peer& peer, int threads) {
  PeerShared& shared = peer_slots()[peer.name];
  if (!shared.store) {
    std::unique_ptr<PeerStore> s =
        peer.open(peer_temp_path(peer.name, "shared"), PeerMode::kCached);
    s->bulk_load(key_count());
    s->warm();
    if (s->count() != key_count()) throw std::runtime_error("the loaded store has the wrong keys");
    shared.store = std::move(s);
  }
  while (shared.sessions.size() < static_cast<std::size_t>(threads)) {
    shared.sessions.push_back(shared.store->session());
    shared.sessions.back()->warm();
  }
  return shared;
}

// ---- gets and scans ------------------------------------------------------------

[[noreturn]] void bad_get() {
  throw std::runtime_error("a get missed a present key or returned a wrong value");
}

Task<std::uint64_t> get_loop(Database* db, std::uint64_t n, std::uint64_t seed,
                             Clock::time_point deadline) {
  SplitMix64 rng(seed);
  std::uint64_t done = 0;
  std::string value;  // get(key, value): a cached hit allocates nothing
  do {
    for (std::uint64_t i = 0; i < kCheckEvery; ++i) {
      const std::uint64_t k = rng.below(n);
      const Key key(k);
      const bool present = co_await db->get(key.view(), value);
      if (!present || !value_matches(value, k)) bad_get();
    }
    done += kCheckEvery;
  } while (Clock::now() < deadline);
  co_return done;
}

std::uint64_t blocking_get_loop(BlockingDatabase& db, std::uint64_t n, std::uint64_t seed,
                                Clock::time_point deadline) {
  SplitMix64 rng(seed);
  std::uint64_t done = 0;
  std::string value;
  do {
    for (std::uint64_t i = 0; i < kCheckEvery; ++i) {
      const std::uint64_t k = rng.below(n);
      const Key key(k);
      if (!db.get(key.view(), value) || !value_matches(value, k)) bad_get();
    }
    done += kCheckEvery;
  } while (Clock::now() < deadline);
  return done;
}

// BlockingDatabase::scan of kScanLength entries per call, into one vector the
// thread reuses; returns entries read.
std::uint64_t blocking_scan_loop(BlockingDatabase& db, std::uint64_t n, std::uint64_t seed,
                                 Clock::time_point deadline) {
  SplitMix64 rng(seed);
  std::uint64_t done = 0;
  std::vector<std::pair<std::string, std::string>> got;
  do {
    const std::uint64_t start = rng.below(n - kScanLength + 1);
    ScanOptions options;
    options.lower = std::string(Key(start).view());
    db.scan(options, kScanLength, got);
    if (got.size() != kScanLength || got.back().first != Key(start + kScanLength - 1).view()) {
      throw std::runtime_error("a scan returned the wrong entries");
    }
    benchmark::DoNotOptimize(got.data());
    done += kScanLength;
  } while (Clock::now() < deadline);
  return done;
}

// One Cursor, seek then next(); returns entries read (kScanLength per scan).
Task<std::uint64_t> scan_loop(Database* db, std::uint64_t n, std::uint64_t seed,
                              Clock::time_point deadline) {
  SplitMix64 rng(seed);
  Cursor cursor = db->cursor();
  std::uint64_t done = 0;
  do {
    const std::uint64_t start = rng.below(n - kScanLength + 1);
    const Key key(start);
    bool ok = co_await cursor.seek(key.view());
    std::size_t seen = 0;
    while (ok) {
      benchmark::DoNotOptimize(cursor.value().data());
      if (++seen == kScanLength) break;
      ok = co_await cursor.next();
    }
    if (seen != kScanLength || cursor.key() != Key(start + kScanLength - 1).view()) {
      throw std::runtime_error("a scan returned the wrong entries");
    }
    done += kScanLength;
  } while (Clock::now() < deadline);
  co_return done;
}

std::uint64_t peer_read_loop(PeerSession& session, bool scans, std::uint64_t n, std::uint64_t seed,
                             Clock::time_point deadline) {
  SplitMix64 rng(seed);
  std::uint64_t done = 0;
  do {
    if (scans) {
      if (!session.scan(rng.below(n - kScanLength + 1), kScanLength)) {
        throw std::runtime_error("a scan returned the wrong entries");
      }
      done += kScanLength;
    } else {
      for (std::uint64_t i = 0; i < kCheckEvery; ++i) {
        if (!session.get(rng.below(n))) bad_get();
      }
      done += kCheckEvery;
    }
  } while (Clock::now() < deadline);
  return done;
}

ThreadRun run_reads(const Engine& engine, bool scans, int threads) {
  const std::uint64_t n = key_count();
  const std::uint64_t seed0 = scans ? kScanSeed : kGetSeed;
  if (engine.peer != nullptr) {
    PeerShared& shared = peer_store(*engine.peer, threads);
    return run_threads(threads, window_seconds(), [&shared, scans, n, seed0](int t) -> TimedBody {
      PeerSession* session = shared.sessions[static_cast<std::size_t>(t)].get();
      const std::uint64_t seed = seed0 + static_cast<std::uint64_t>(t);
      return [session, scans, n, seed](Clock::time_point deadline) {
        return peer_read_loop(*session, scans, n, seed, deadline);
      };
    });
  }
  BlockingDatabase& db = our_store();
  const bool blocking = engine.blocking;
  return run_threads(threads, window_seconds(), [&db, scans, blocking, n, seed0](int t) {
    const std::uint64_t seed = seed0 + static_cast<std::uint64_t>(t);
    return TimedBody([&db, scans, blocking, n, seed](Clock::time_point deadline) {
      if (blocking && scans) return blocking_scan_loop(db, n, seed, deadline);
      if (blocking) return blocking_get_loop(db, n, seed, deadline);
      if (scans) return sync_wait(scan_loop(&db.async(), n, seed, deadline));
      return sync_wait(get_loop(&db.async(), n, seed, deadline));
    });
  });
}

// ---- inserts -------------------------------------------------------------------

// Thread t's keys: its contiguous share of [0, N), shuffled with seed kInsertSeed + t.
std::vector<std::uint64_t> insert_keys(int threads, int t) {
  const std::uint64_t n = key_count();
  const auto tt = static_cast<std::uint64_t>(threads);
  const auto ti = static_cast<std::uint64_t>(t);
  const std::uint64_t begin = n * ti / tt;
  const std::uint64_t end = n * (ti + 1) / tt;
  std::vector<std::uint64_t> v(end - begin);
  for (std::uint64_t i = 0; i < v.size(); ++i) v[i] = begin + i;
  SplitMix64 rng(kInsertSeed + ti);
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  return v;
}

Task<std::uint64_t> insert_batches(Database* db, const std::vector<std::uint64_t>* order) {
  const std::vector<std::uint64_t>& keys = *order;
  WriteBatch batch;
  for (std::size_t i = 0; i < keys.size(); i += kBatchSize) {
    batch.clear();
    const std::size_t end = std::min(keys.size(), i + kBatchSize);
    for (std::size_t j = i; j < end; ++j) {
      const Key key(keys[j]);
      const std::string value = make_value(keys[j]);
      batch.put(key.view(), value);
    }
    co_await db->write(batch);
  }
  co_return keys.size();
}

ThreadRun our_inserts(benchmark::State& state, int threads) {
  const std::string path = temp_db_path("insert");
  remove_database_files(path);
  ThreadRun run;
  {
    BlockingDatabase db = BlockingDatabase::open(path, cached_options());
    run = run_threads(threads, 0, [&db, threads](int t) {
      auto keys = std::make_shared<std::vector<std::uint64_t>>(insert_keys(threads, t));
      return TimedBody([&db, keys](Clock::time_point) {
        return sync_wait(insert_batches(&db.async(), keys.get()));
      });
    });
    if (run.error.empty()) {
      const ValidationReport r = db.validate();
      if (!r.ok()) run.error = "validate: " + r.summary();
      if (r.keys != key_count()) run.error = "validate counted the wrong number of keys";
      state.counters["height"] = r.height;
      state.counters["fill_factor"] = r.fill_factor;
    }
  }
  remove_database_files(path);
  return run;
}

ThreadRun peer_inserts(const Peer& peer, int threads) {
  std::unique_ptr<PeerStore> store =
      peer.open(peer_temp_path(peer.name, "insert"), PeerMode::kCached);
  std::vector<std::unique_ptr<PeerSession>> sessions;
  for (int t = 0; t < threads; ++t) sessions.push_back(store->session());
  ThreadRun run = run_threads(threads, 0, [&sessions, threads](int t) {
    auto keys = std::make_shared<std::vector<std::uint64_t>>(insert_keys(threads, t));
    PeerSession* session = sessions[static_cast<std::size_t>(t)].get();
    return TimedBody([session, keys](Clock::time_point) {
      const std::span<const std::uint64_t> all(*keys);
      for (std::size_t i = 0; i < all.size(); i += kBatchSize) {
        session->put_batch(all.subspan(i, std::min(kBatchSize, all.size() - i)));
      }
      return static_cast<std::uint64_t>(all.size());
    });
  });
  sessions.clear();
  if (run.error.empty() && store->count() != key_count()) {
    run.error = "the store counted the wrong number of keys";
  }
  return run;
}

// ---- the benchmarks ------------------------------------------------------------

enum class Workload { kGet, kScan, kInsert };

void BM_Cached(benchmark::State& state, Workload workload, const Engine& engine, int threads) {
  ThreadRun run;
  for (auto _ : state) {
    try {
      if (workload == Workload::kInsert) {
        run = engine.peer != nullptr ? peer_inserts(*engine.peer, threads)
                                     : our_inserts(state, threads);
      } else {
        run = run_reads(engine, workload == Workload::kScan, threads);
      }
    } catch (const std::exception& e) {
      run.error = e.what();
    }
    state.SetIterationTime(std::max(run.seconds, 1e-9));
  }
  if (!run.error.empty()) fail(state, run.error);
  state.SetItemsProcessed(static_cast<std::int64_t>(run.items));
  const double rate = run.seconds > 0 ? static_cast<double>(run.items) / run.seconds : 0.0;
  state.counters["threads"] = threads;
  state.counters["per_thread"] = rate / threads;
  state.counters["keys"] = static_cast<double>(key_count());
  if (workload == Workload::kInsert) state.counters["batch"] = kBatchSize;
}

}  // namespace

void register_cached_benchmarks() {
  static const std::vector<Peer> peers = available_peers();
  std::vector<Engine> engines{{"corobtree", nullptr, false}};
  for (const Peer& p : peers) engines.push_back({p.name, &p, false});
  const Engine blocking{"corobtree_blocking", nullptr, true};
  const struct {
    const char* family;
    Workload workload;
  } families[] = {{"BM_ThreadGet", Workload::kGet},
                  {"BM_ThreadScan", Workload::kScan},
                  {"BM_ThreadInsert", Workload::kInsert}};
  for (const auto& f : families) {
    std::vector<Engine> list = engines;
    if (f.workload != Workload::kInsert) list.insert(list.begin() + 1, blocking);
    for (const Engine& e : list) {
      for (const int t : thread_config().threads) {
        const std::string name = std::string(f.family) + "/" + e.name + threads_suffix(t);
        benchmark::RegisterBenchmark(name.c_str(), BM_Cached, f.workload, e, t)
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
}

void release_cached_stores() {
  peer_slots().clear();
  std::unique_ptr<OurStore>& slot = our_slot();
  if (slot) {
    slot->db.reset();
    remove_database_files(slot->path);
    slot.reset();
  }
}

}  // namespace corobtree::bench
