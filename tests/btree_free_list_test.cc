// The free list: pages freed by erases (merged nodes, overflow chains) are
// reused by later inserts, so under a steady workload the file stops growing.
// Each round deletes half of the live keys (~5k where the pool caches the
// file, fewer where every miss is a real read) and inserts as many new ones
// (100-200 byte values, one in 50 a 10 KB overflow value), then checkpoints.
// After a warm-up of 5 rounds the file may grow by at most 10% over the
// remaining 25 rounds, the file may only grow while the free list is empty,
// the free page count must move, and validate() (which walks the free list
// and accounts for every page) must pass every round. On every backend and
// pool size, for byte-filled nodes and minimum degree t = 3. Prints its seed;
// `-- --seed=N` replays a run.
#define BOOST_TEST_MODULE btree_free_list
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include "tests/support/db_matrix.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::BlockingDatabase;
using corobtree::test::DbConfig;

namespace {

using Model = std::map<std::string, std::string>;

std::string random_value(std::mt19937_64& rng, bool big) {
  const std::size_t n = big ? 10 * 1024 : 100 + rng() % 101;  // big: three overflow pages
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string random_key(std::mt19937_64& rng) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "f%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

struct Round {
  std::uint64_t pages;
  std::uint64_t free_after_delete;
  std::uint64_t free_after_insert;
};

void run_churn(const DbConfig& cfg, std::uint32_t t) {
  const std::string name = cfg.name() + " t=" + std::to_string(t);
  const auto seed = corobtree::test::test_seed("steady churn " + name);
  std::mt19937_64 rng(seed);
  // ~5k live keys where the pool caches the whole file; fewer where every
  // miss is a real read (small pool, direct mode, O_DIRECT).
  const bool slow = cfg.pool_pages < 4096 || cfg.backend.direct_io;
  const auto live = static_cast<std::size_t>(corobtree::test::scaled(
      t > 0 ? (slow ? 600 : 2000) : (slow ? 1500 : 5000), t > 0 ? 600 : 1500));
  // 30 rounds; fewer (at least 12: the growth check starts after round 5)
  // under the sanitizers.
  const int rounds = corobtree::test::scaled(30, 12);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("churn.db");
  auto db = BlockingDatabase::open(path, cfg.options(t));
  Model model;
  // Two pools of live keys, small values and 10 KB values (one in 50), each
  // churned by half per round: the live data stays about the same size, so
  // what the file needs beyond it is only what the tree's shape varies by.
  std::vector<std::string> pools[2];
  const std::size_t pool_size[2] = {live - live / 50, live / 50};
  auto refill = [&](int big) {
    while (pools[big].size() < pool_size[big]) {
      const std::string k = random_key(rng);
      if (model.count(k)) continue;
      const std::string v = random_value(rng, big == 1);
      db.put(k, v);
      model[k] = v;
      pools[big].push_back(k);
    }
  };
  refill(0);
  refill(1);
  db.checkpoint();
  std::vector<Round> history;
  std::uint64_t baseline = 0;
  for (int round = 1; round <= rounds; ++round) {
    const std::string when =
        name + " round " + std::to_string(round) + " (seed " + std::to_string(seed) + ")";
    for (auto& keys : pools) {
      std::shuffle(keys.begin(), keys.end(), rng);
      for (std::size_t i = keys.size() / 2; i > 0; --i) {
        BOOST_REQUIRE_MESSAGE(db.erase(keys.back()), when << ": erase of a live key failed");
        model.erase(keys.back());
        keys.pop_back();
      }
    }
    Round r{};
    r.free_after_delete = db.stats().free_pages;
    const std::uint64_t pages_before_insert = db.stats().pages;
    refill(0);
    refill(1);
    db.checkpoint();
    r.free_after_insert = db.stats().free_pages;
    r.pages = db.stats().pages;
    history.push_back(r);
    const corobtree::ValidationReport report = db.validate();
    BOOST_REQUIRE_MESSAGE(report.ok(), when << ": " << report.summary());
    BOOST_REQUIRE_MESSAGE(report.free_pages == r.free_after_insert,
                          when << ": validate counted " << report.free_pages
                               << " free pages, stats() says " << r.free_after_insert);
    BOOST_REQUIRE_EQUAL(db.count(), model.size());
    // The deletes freed pages, and the inserts took pages from the free list
    // before growing the file.
    BOOST_REQUIRE_MESSAGE(r.free_after_delete > 0,
                          when << ": deleting half the keys freed no page");
    if (r.pages > pages_before_insert) {
      BOOST_REQUIRE_MESSAGE(r.free_after_insert == 0,
                            when << ": the file grew by " << r.pages - pages_before_insert
                                 << " pages while " << r.free_after_insert << " pages were free");
    }
    if (round == 5) baseline = r.pages;
    if (round > 5) {
      BOOST_REQUIRE_MESSAGE(
          r.pages * 10 <= baseline * 11,
          when << ": the file grew from " << baseline << " pages after round 5 to " << r.pages);
    }
  }
  std::set<std::uint64_t> free_counts;
  bool reused = false;
  std::string trace;
  for (const Round& r : history) {
    free_counts.insert(r.free_after_delete);
    free_counts.insert(r.free_after_insert);
    reused = reused || r.free_after_insert < r.free_after_delete;
    trace += " " + std::to_string(r.pages) + "/" + std::to_string(r.free_after_delete) + "/" +
             std::to_string(r.free_after_insert);
  }
  BOOST_TEST_MESSAGE(name << " pages/free after delete/free after insert per round:" << trace);
  BOOST_REQUIRE_MESSAGE(reused, "inserts never took a page from the free list:" << trace);
  BOOST_REQUIRE_MESSAGE(free_counts.size() > 2, "the free page count did not move:" << trace);

  // Everything is still there after a reopen, and the file did not change size.
  const std::uint64_t pages = db.stats().pages;
  db.close();
  auto again = BlockingDatabase::open(path, cfg.options());
  BOOST_REQUIRE_EQUAL(again.stats().pages, pages);
  const auto all = again.scan();
  BOOST_REQUIRE(all.size() == model.size());
  BOOST_REQUIRE(std::equal(all.begin(), all.end(), model.begin(), [](const auto& a, const auto& b) {
    return a.first == b.first && a.second == b.second;
  }));
  const corobtree::ValidationReport report = again.validate();
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
}

}  // namespace

BOOST_DATA_TEST_CASE(file_stops_growing_under_steady_churn,
                     bdata::make(corobtree::test::db_matrix()), cfg) {
  run_churn(cfg, 0);
}

BOOST_DATA_TEST_CASE(file_stops_growing_with_minimum_degree,
                     bdata::make(corobtree::test::db_matrix()), cfg) {
  run_churn(cfg, 3);
}
