// Cursors walking the whole tree while another thread writes: the lock-free
// moves to the next leaf (through the leaf copy's right link while no writer
// has entered the tree since the copy, else a fresh descent) and the engine's
// path must together give every walk strictly ordered keys, each key that
// stayed in the tree throughout exactly once, and no key that was never
// written. 512-byte pages give a tree of many small leaves, so the writer's
// splits and merges keep moving the leaf boundaries the walkers cross.
// Forward and reverse cursors, cached (default pool) and a small pool (the
// walkers' leaves get evicted under them). All backends.
#define BOOST_TEST_MODULE cursor_concurrency
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>

#include "tests/support/backends.h"
#include "tests/support/seed.h"
#include "tests/support/stopping_thread.h"
#include "tests/support/temp_dir.h"
#include "tests/support/thread_probe.h"

namespace bdata = boost::unit_test::data;
using corobtree::Cursor;
using corobtree::Database;
using corobtree::sync_wait;
using corobtree::Task;
using corobtree::test::BackendConfig;

namespace {

constexpr int kStable = 1500;  // keys 2i, never touched after the load

std::string key_of(int i) {
  char k[16];
  std::snprintf(k, sizeof k, "k%07d", i);
  return k;
}

std::string value_of(int i) { return key_of(i) + std::string(40, 'v'); }

struct Case {
  BackendConfig backend;
  bool small_pool;
  std::string name() const { return backend.name() + (small_pool ? " pool=24" : " pool=default"); }
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name(); }

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const BackendConfig& b : corobtree::test::all_backends()) {
    out.push_back({b, false});
    out.push_back({b, true});
  }
  return out;
}

// One walk of the whole range; the keys in the order the cursor gave them.
Task<std::vector<std::string>> walk(Database* db, bool reverse) {
  corobtree::ScanOptions o;
  o.reverse = reverse;
  Cursor c = db->cursor(o);
  std::vector<std::string> keys;
  for (bool ok = co_await c.first(); ok; ok = co_await c.next()) {
    keys.emplace_back(c.key());
    if (c.value().substr(0, c.key().size()) != c.key()) {
      throw std::runtime_error("a value that does not belong to its key at " + keys.back());
    }
  }
  co_return keys;
}

// Checks a walk: strict order, every stable key once, only keys ever written.
void check_walk(const std::vector<std::string>& keys, bool reverse) {
  std::vector<std::string> sorted = keys;
  if (reverse) std::reverse(sorted.begin(), sorted.end());
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    BOOST_REQUIRE_MESSAGE(sorted[i - 1] < sorted[i], "walk out of order or repeated at "
                                                         << sorted[i] << " (reverse=" << reverse
                                                         << ")");
  }
  int stable_seen = 0;
  for (const std::string& k : sorted) {
    const int n = std::stoi(k.substr(1));
    BOOST_REQUIRE_MESSAGE(n >= 0 && n < 2 * kStable, "a key never written: " << k);
    if (n % 2 == 0) ++stable_seen;
  }
  BOOST_TEST(stable_seen == kStable);
}

}  // namespace

BOOST_DATA_TEST_CASE(walks_stay_ordered_and_complete_while_a_thread_writes, bdata::make(cases()),
                     c) {
  const std::uint64_t seed = corobtree::test::test_seed("cursor walks " + c.name());
  corobtree::test::Watchdog watchdog("cursor walks " + c.name());
  corobtree::test::TempDir dir;
  corobtree::Options o;
  o.backend = c.backend.backend;
  o.direct_io = c.backend.direct_io;
  o.page_size = 512;
  if (c.small_pool) o.pool_pages = 24;
  o.durability = corobtree::Durability::kRelaxed;
  std::unique_ptr<Database> db = sync_wait(Database::open(dir.file("walk.db"), o));
  {
    std::vector<std::pair<std::string, std::string>> load;
    for (int i = 0; i < kStable; ++i) load.emplace_back(key_of(2 * i), value_of(2 * i));
    sync_wait(db->bulk_load(load));
  }

  // The writer: puts and erases the odd keys between the stable ones, in
  // random order, until the walkers are done.
  std::atomic<std::uint64_t> writes{0};
  corobtree::test::StoppingThread writer([&](const std::atomic<bool>& stop) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> pick(0, kStable - 1);
    while (!stop.load(std::memory_order_relaxed)) {
      const int k = 2 * pick(rng) + 1;
      if (rng() % 3 != 0) {
        sync_wait(db->put(key_of(k), value_of(k)));
      } else {
        (void)sync_wait(db->erase(key_of(k)));
      }
      writes.fetch_add(1, std::memory_order_relaxed);
    }
  });
  const int walks = corobtree::test::scaled(16, 4);
  for (int w = 0; w < walks; ++w) {
    const bool reverse = w % 4 == 3;
    check_walk(sync_wait(walk(db.get(), reverse)), reverse);
  }
  writer.stop();
  BOOST_TEST_MESSAGE(c.name() << ": " << walks << " walks beside " << writes.load() << " writes");
  BOOST_TEST(writes.load() > 0u);
  // Quiet now: a walk sees exactly what a scan does.
  const auto rows = sync_wait(db->scan({}));
  const std::vector<std::string> keys = sync_wait(walk(db.get(), false));
  BOOST_REQUIRE_EQUAL(keys.size(), rows.size());
  for (std::size_t i = 0; i < keys.size(); ++i) BOOST_REQUIRE(keys[i] == rows[i].first);
  BOOST_TEST(sync_wait(db->validate()).ok());
  sync_wait(db->close());
}
