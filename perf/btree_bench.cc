// B+tree benchmarks through the Database facade, one thread, everything cached.
//
// Keys are 8-byte big-endian integers (byte order == numeric order), values
// 100 bytes; N = 1,000,000 keys (COROBTREE_BENCH_SMOKE=1: 20,000;
// COROBTREE_BENCH_KEYS=n: n). The pool (65536 frames of 4 KiB) holds the whole
// tree, so after loading no operation reads the disk. items_per_second is the
// rate of each benchmark's own unit (CPU time, except where the name says
// manual_time or real_time).
//
// BM_BulkLoad              bulk_load of N sorted pairs into an empty database
//                          (inserts/s); then validate(): height, fill_factor, keys.
// BM_RandomInsertBatch1000 fill an empty database with N keys in random order,
//                          through Database::write of WriteBatches of 1000 puts
//                          (building each batch is timed too); then validate().
// BM_RandomGet             random gets of present keys in an N-key database
//                          (gets/s). The loop runs inside one coroutine, so the
//                          figure excludes sync_wait's per-call cost.
// BM_RandomGetInto         the same through get(key, value) into one reused
//                          string: a cached hit allocates nothing.
// BM_RandomGetPinned       the same through try_get_pinned into one PinnedValue
//                          (get_pinned if that cannot answer): the value is
//                          viewed in the pool's page, not copied.
// BM_Scan100               seek to a random key and read 100 entries with one
//                          Cursor (entries/s).
// BM_PutAfterPinBurst/held:H  (real time: the work is on the engine thread)
//                          single puts of random keys (each a write window)
//                          into the N-key database after 4,000 pinned gets
//                          were taken and released, H of them still held.
// BM_EvictAfterPinBurst/held:H  random gets from a 100,000-key database through a
//                          256-frame pool (each get evicts a frame and reads
//                          from the OS page cache) after the same burst.
// BM_SeedSearch            the seed project's shape: 20,000 single puts of the
//                          even keys of [0, 40000) in random order, minimum
//                          degree 32, 4 KiB pages; then rounds of 50,000 gets
//                          of uniform keys from [0, 40000) (about half present,
//                          through get(key, value) into one reused string),
//                          with a 256-frame pool or none (pool_pages = 0, the
//                          direct mode; uring_cached: 4096 frames, all
//                          cached), on io_uring and on pread (buffered
//                          files). The inserts are checkpointed before the
//                          searches. us_per_search, hit_rate, hits and misses
//                          cover the search rounds only.
//
// The N-key database of BM_RandomGet / BM_Scan100 is loaded once (bulk_load)
// and shared. Database files live in $TMPDIR (corobtree-btreebench-<pid>-*.db,
// each with its -wal log) and are removed when the benchmarks finish.
//   COROBTREE_BENCH_SMOKE=1 ./btree_bench
#include <benchmark/benchmark.h>

#include "perf/bench_common.h"

#include <unistd.h>
#include "perf/bench_random.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/pinned_value.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include "io/disk_manager.h"

namespace {

using corobtree::bench::Key;
using corobtree::bench::key_count;
using corobtree::bench::kScanLength;
using corobtree::bench::kValueSize;
using corobtree::bench::make_value;
using corobtree::bench::smoke_mode;
using corobtree::bench::value_matches;

using corobtree::bench::SplitMix64;

using corobtree::Cursor;
using corobtree::Database;
using corobtree::IoBackend;
using corobtree::Options;
using corobtree::Task;
using corobtree::ValidationReport;
using corobtree::WriteBatch;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatchSize = 1000;
constexpr std::size_t kCachedPoolPages = 65536;  // 256 MiB: the N-key tree fits

// ---- keys, values, randomness ---------------------------------------------

std::vector<std::uint64_t> shuffled(std::vector<std::uint64_t> v, std::uint64_t seed) {
  SplitMix64 rng(seed);
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  return v;
}

std::vector<std::uint64_t> iota_keys(std::uint64_t n, std::uint64_t step) {
  std::vector<std::uint64_t> v(n);
  for (std::uint64_t i = 0; i < n; ++i) v[i] = i * step;
  return v;
}

// The N sorted pairs, built once.
const std::vector<std::pair<std::string, std::string>>& sorted_pairs() {
  static const auto pairs = [] {
    std::vector<std::pair<std::string, std::string>> p;
    p.reserve(key_count());
    for (std::uint64_t k = 0; k < key_count(); ++k) {
      const Key key(k);
      p.emplace_back(std::string(key.view()), make_value(k));
    }
    return p;
  }();
  return pairs;
}

// ---- database files ----------------------------------------------------------

// A database file in $TMPDIR under a per-process name; the file and its log
// are removed (after the database is dropped, unclosed: nothing needs to
// reach the disk) when this object dies.
class TempDatabase {
 public:
  TempDatabase(std::string_view tag, Options options) {
    static int serial = 0;
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp && *tmp ? tmp : "/tmp") + "/corobtree-btreebench-" +
            std::to_string(::getpid()) + "-" + std::string(tag) + "-" + std::to_string(serial++) +
            ".db";
    remove_files();
    db_ = corobtree::sync_wait(Database::open(path_, options));
  }
  ~TempDatabase() {
    db_.reset();
    remove_files();
  }
  TempDatabase(const TempDatabase&) = delete;
  TempDatabase& operator=(const TempDatabase&) = delete;

  Database& db() noexcept { return *db_; }

 private:
  void remove_files() const {
    std::remove(path_.c_str());
    std::remove((path_ + "-wal").c_str());
    std::remove((path_ + "-wal2").c_str());
  }

  std::string path_;
  std::unique_ptr<Database> db_;
};

Options cached_options() {
  Options o;
  o.pool_pages = kCachedPoolPages;
  // Commits are logged but not fsynced, like the peers' cached runs (SQLite
  // synchronous=NORMAL, RocksDB sync=false); commit_bench measures durable ones.
  o.durability = corobtree::Durability::kRelaxed;
  return o;
}

// The N-key database shared by the read benchmarks; main() drops it before exit.
std::unique_ptr<TempDatabase>& shared_db_slot() {
  static std::unique_ptr<TempDatabase> slot;
  return slot;
}

Database& shared_db() {
  std::unique_ptr<TempDatabase>& slot = shared_db_slot();
  if (!slot) {
    slot = std::make_unique<TempDatabase>("shared", cached_options());
    corobtree::sync_wait(slot->db().bulk_load(sorted_pairs()));
  }
  return slot->db();
}

void report_validation(benchmark::State& state, Database& db, std::uint64_t expected_keys) {
  const ValidationReport r = corobtree::sync_wait(db.validate());
  if (!r.ok()) state.SkipWithError(("validate: " + r.summary()).c_str());
  if (r.keys != expected_keys) state.SkipWithError("validate counted the wrong number of keys");
  state.counters["height"] = r.height;
  state.counters["fill_factor"] = r.fill_factor;
  state.counters["keys"] = static_cast<double>(r.keys);
  state.counters["leaves"] = static_cast<double>(r.leaves);
}

// ---- loading -----------------------------------------------------------------

void BM_BulkLoad(benchmark::State& state) {
  const auto& pairs = sorted_pairs();
  std::unique_ptr<TempDatabase> last;
  for (auto _ : state) {
    last.reset();
    last = std::make_unique<TempDatabase>("bulk", cached_options());
    const auto t0 = Clock::now();
    corobtree::sync_wait(last->db().bulk_load(pairs));
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(pairs.size()));
  report_validation(state, last->db(), pairs.size());
}

// Writes `order` in batches of kBatchSize puts, all inside one coroutine.
Task<void> insert_batches(Database& db, const std::vector<std::uint64_t>& order) {
  WriteBatch batch;
  for (std::size_t i = 0; i < order.size(); i += kBatchSize) {
    batch.clear();
    const std::size_t end = std::min(order.size(), i + kBatchSize);
    for (std::size_t j = i; j < end; ++j) {
      const Key key(order[j]);
      const std::string value = make_value(order[j]);
      batch.put(key.view(), value);
    }
    co_await db.write(batch);
  }
}

void BM_RandomInsertBatch1000(benchmark::State& state) {
  static const std::vector<std::uint64_t> order = shuffled(iota_keys(key_count(), 1), 7);
  std::unique_ptr<TempDatabase> last;
  for (auto _ : state) {
    last.reset();
    last = std::make_unique<TempDatabase>("insert", cached_options());
    const auto t0 = Clock::now();
    corobtree::sync_wait(insert_batches(last->db(), order));
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(order.size()));
  state.counters["batch"] = kBatchSize;
  report_validation(state, last->db(), order.size());
}

// ---- reads -------------------------------------------------------------------

// The whole timed loop in one coroutine: every page is cached, so nothing
// suspends and sync_wait resumes this frame once.
Task<void> random_get_loop(Database& db, std::uint64_t n, benchmark::State& state,
                           std::uint64_t& bad) {
  SplitMix64 rng(11);
  for (auto _ : state) {
    const std::uint64_t k = rng.below(n);
    const Key key(k);
    const std::optional<std::string> v = co_await db.get(key.view());
    if (!v || !value_matches(*v, k)) ++bad;
  }
}

Task<void> random_get_into_loop(Database& db, std::uint64_t n, benchmark::State& state,
                                std::uint64_t& bad) {
  SplitMix64 rng(11);
  std::string value;
  for (auto _ : state) {
    const std::uint64_t k = rng.below(n);
    const Key key(k);
    const bool present = co_await db.get(key.view(), value);
    if (!present || !value_matches(value, k)) ++bad;
  }
}

Task<void> random_get_pinned_loop(Database& db, std::uint64_t n, benchmark::State& state,
                                  std::uint64_t& bad) {
  SplitMix64 rng(11);
  corobtree::PinnedValue value;
  for (auto _ : state) {
    const std::uint64_t k = rng.below(n);
    const Key key(k);
    bool present = false;
    if (!db.try_get_pinned(key.view(), value, present)) {
      present = co_await db.get_pinned(key.view(), value);
    }
    if (!present || !value_matches(value.view(), k)) ++bad;
  }
}

void BM_RandomGetPinned(benchmark::State& state) {
  Database& db = shared_db();
  std::uint64_t bad = 0;
  corobtree::sync_wait(random_get_pinned_loop(db, key_count(), state, bad));
  if (bad != 0) state.SkipWithError("a get missed a present key or returned a wrong value");
  state.SetItemsProcessed(state.iterations());
}

void BM_RandomGetInto(benchmark::State& state) {
  Database& db = shared_db();
  std::uint64_t bad = 0;
  corobtree::sync_wait(random_get_into_loop(db, key_count(), state, bad));
  if (bad != 0) state.SkipWithError("a get missed a present key or returned a wrong value");
  state.SetItemsProcessed(state.iterations());
}

void BM_RandomGet(benchmark::State& state) {
  Database& db = shared_db();
  std::uint64_t bad = 0;
  corobtree::sync_wait(random_get_loop(db, key_count(), state, bad));
  if (bad != 0) state.SkipWithError("a get missed a present key or returned a wrong value");
  state.SetItemsProcessed(state.iterations());
}

// ---- pinned views: what a past burst of pins costs writers -----------------

// 4,000 pins taken at once on distinct keys of `db` (all of ViewPins's
// bitmap words in use, and the old high-water mark near its 4,096 slots),
// then released but the first `held`.
Task<void> pin_burst(Database& db, std::uint64_t n, std::int64_t held,
                     std::vector<corobtree::PinnedValue>& kept) {
  std::vector<corobtree::PinnedValue> burst(4000);
  for (std::size_t i = 0; i < burst.size(); ++i) {
    const Key key(i * (n / burst.size()));
    const bool present = co_await db.get_pinned(key.view(), burst[i]);
    if (present && !burst[i].pinned()) (void)co_await db.get_pinned(key.view(), burst[i]);
  }
  kept.clear();
  for (std::int64_t i = 0; i < held; ++i) kept.push_back(std::move(burst[i]));
}

Task<void> put_loop(Database& db, std::uint64_t n, benchmark::State& state) {
  SplitMix64 rng(13);
  for (auto _ : state) {
    const std::uint64_t k = rng.below(n);
    const Key key(k);
    const std::string value = make_value(k);  // the same value: the shared tree stays as loaded
    co_await db.put(key.view(), value);
  }
}

// Single puts into the cached N-key database (one write window each) after
// a burst of 4,000 pins, `held` of them still held (0: none).
void BM_PutAfterPinBurst(benchmark::State& state) {
  Database& db = shared_db();
  std::vector<corobtree::PinnedValue> kept;
  corobtree::sync_wait(pin_burst(db, key_count(), state.range(0), kept));
  corobtree::sync_wait(put_loop(db, key_count(), state));
  state.SetItemsProcessed(state.iterations());
}

Database& small_pool_db() {
  static std::unique_ptr<TempDatabase> db;
  if (!db) {
    Options o = cached_options();
    o.pool_pages = 256;
    db = std::make_unique<TempDatabase>("smallpool", o);
    std::vector<std::pair<std::string, std::string>> pairs;
    for (std::uint64_t k = 0; k < 100000; ++k) pairs.emplace_back(Key(k).view(), make_value(k));
    corobtree::sync_wait(db->db().bulk_load(pairs));
  }
  return db->db();
}

// Random gets from a 100,000-key database through a 256-frame pool (nearly
// every get evicts a frame and reads a page from the OS page cache) after a
// burst of 4,000 pins, `held` of them still held.
void BM_EvictAfterPinBurst(benchmark::State& state) {
  Database& db = small_pool_db();
  std::vector<corobtree::PinnedValue> kept;
  corobtree::sync_wait(pin_burst(db, 100000, state.range(0), kept));
  std::uint64_t bad = 0;
  corobtree::sync_wait(random_get_into_loop(db, 100000, state, bad));
  if (bad != 0) state.SkipWithError("a get missed a present key or returned a wrong value");
  state.SetItemsProcessed(state.iterations());
}

Task<void> scan_loop(Database& db, std::uint64_t n, benchmark::State& state, std::uint64_t& bad) {
  SplitMix64 rng(13);
  Cursor cursor = db.cursor();
  for (auto _ : state) {
    const std::uint64_t start = rng.below(n - kScanLength + 1);
    const Key key(start);
    bool ok = co_await cursor.seek(key.view());
    std::size_t seen = 0;
    while (ok) {
      benchmark::DoNotOptimize(cursor.value().data());
      if (++seen == kScanLength) break;
      ok = co_await cursor.next();
    }
    if (seen != kScanLength || cursor.key() != Key(start + kScanLength - 1).view()) ++bad;
  }
}

void BM_Scan100(benchmark::State& state) {
  Database& db = shared_db();
  std::uint64_t bad = 0;
  corobtree::sync_wait(scan_loop(db, key_count(), state, bad));
  if (bad != 0) state.SkipWithError("a scan returned the wrong entries");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kScanLength));
}

// ---- the seed's shape --------------------------------------------------------

constexpr std::uint64_t kSeedInserts = 20'000;
constexpr std::uint64_t kSeedKeySpace = 2 * kSeedInserts;  // even keys inserted
constexpr std::uint64_t kSeedSearches = 50'000;

Task<void> seed_insert(Database& db, const std::vector<std::uint64_t>& order) {
  for (const std::uint64_t k : order) {
    const Key key(k);
    const std::string value = std::to_string(k);
    co_await db.put(key.view(), value);
  }
}

// One round of searches; counts the keys found.
Task<void> seed_search(Database& db, SplitMix64& rng, std::uint64_t& found, std::uint64_t& bad) {
  std::string value;
  for (std::uint64_t i = 0; i < kSeedSearches; ++i) {
    const std::uint64_t k = rng.below(kSeedKeySpace);
    const Key key(k);
    const bool present = co_await db.get(key.view(), value);
    if (present) ++found;
    const bool expected = k % 2 == 0;
    if (present != expected || (present && value != std::to_string(k))) ++bad;
  }
}

void BM_SeedSearch(benchmark::State& state, IoBackend backend, std::size_t pool_pages) {
  Options o;
  o.page_size = 4096;
  o.minimum_degree = 32;
  o.pool_pages = pool_pages;
  o.backend = backend;
  o.durability = corobtree::Durability::kRelaxed;  // the searches are measured, not the inserts
  TempDatabase tmp("seed", o);
  Database& db = tmp.db();
  static const std::vector<std::uint64_t> order = shuffled(iota_keys(kSeedInserts, 2), 3);
  const auto i0 = Clock::now();
  corobtree::sync_wait(seed_insert(db, order));
  const double insert_seconds = std::chrono::duration<double>(Clock::now() - i0).count();
  // Write everything now, so the searches measure searching (and the "disk
  // writes during search" counter is about the searches alone).
  corobtree::sync_wait(db.checkpoint());

  const corobtree::DatabaseStats before = db.stats();
  SplitMix64 rng(5);
  std::uint64_t found = 0;
  std::uint64_t bad = 0;
  double search_seconds = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    corobtree::sync_wait(seed_search(db, rng, found, bad));
    search_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const corobtree::DatabaseStats after = db.stats();
  const std::uint64_t searches = static_cast<std::uint64_t>(state.iterations()) * kSeedSearches;
  const std::uint64_t hits = after.pool.hits - before.pool.hits;
  const std::uint64_t misses = after.pool.misses - before.pool.misses;
  if (bad != 0) {
    state.SkipWithError("a search found an absent key, missed a present one or misread");
  }
  if (after.backend != backend) state.SkipWithError("the database fell back to another backend");
  state.SetItemsProcessed(static_cast<std::int64_t>(searches));
  state.counters["us_per_search"] = search_seconds * 1e6 / static_cast<double>(searches);
  state.counters["us_per_insert"] = insert_seconds * 1e6 / static_cast<double>(kSeedInserts);
  state.counters["hits"] = static_cast<double>(hits);
  state.counters["misses"] = static_cast<double>(misses);
  state.counters["hit_rate"] =
      hits + misses == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(hits + misses);
  state.counters["disk_reads"] =
      static_cast<double>(after.pool.disk_reads - before.pool.disk_reads);
  state.counters["disk_writes"] =
      static_cast<double>(after.pool.disk_writes - before.pool.disk_writes);
  state.counters["found"] = static_cast<double>(found);
  state.counters["found_rate"] = static_cast<double>(found) / static_cast<double>(searches);
  state.counters["height"] = after.height;
  state.counters["pages"] = static_cast<double>(after.pages);
}

double read_min_time() { return smoke_mode() ? 0.05 : 1.0; }

}  // namespace

BENCHMARK(BM_BulkLoad)->Iterations(3)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RandomInsertBatch1000)
    ->Iterations(smoke_mode() ? 2 : 3)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RandomGet)->MinTime(read_min_time());
BENCHMARK(BM_RandomGetInto)->MinTime(read_min_time());
BENCHMARK(BM_RandomGetPinned)->MinTime(read_min_time());
BENCHMARK(BM_Scan100)->MinTime(read_min_time());
BENCHMARK(BM_PutAfterPinBurst)
    ->ArgName("held")
    ->Arg(0)
    ->Arg(1)
    ->MinTime(read_min_time())
    ->UseRealTime();
BENCHMARK(BM_EvictAfterPinBurst)
    ->ArgName("held")
    ->Arg(0)
    ->Arg(1)
    ->MinTime(read_min_time())
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_SeedSearch, uring_pool256, IoBackend::kUring, 256)
    ->MinTime(read_min_time())
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SeedSearch, uring_direct, IoBackend::kUring, 0)
    ->MinTime(read_min_time())
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SeedSearch, pread_pool256, IoBackend::kPread, 256)
    ->MinTime(read_min_time())
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SeedSearch, pread_direct, IoBackend::kPread, 0)
    ->MinTime(read_min_time())
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
// Everything cached (4096 frames; the tree has about 470 pages): the row that
// bench_report.py sets beside peer_bench's BM_PeerSeedSearch.
BENCHMARK_CAPTURE(BM_SeedSearch, uring_cached, IoBackend::kUring, 4096)
    ->MinTime(read_min_time())
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The seed's workload on io_uring over pool sizes 16..4096 frames (hit rate
// and µs/search against pool size; the tree has about 470 pages).
void BM_SeedPoolSweep(benchmark::State& state) {
  BM_SeedSearch(state, IoBackend::kUring, static_cast<std::size_t>(state.range(0)));
}
BENCHMARK(BM_SeedPoolSweep)
    ->ArgName("pool")
    ->RangeMultiplier(2)
    ->Range(16, 4096)
    ->MinTime(0.2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// BENCHMARK_MAIN, plus dropping the shared database before static destruction
// (which removes its file).
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  shared_db_slot().reset();
  return 0;
}
