// Differential test: random puts, erases, gets and range scans against
// std::map, with periodic close + reopen + validate(), on every backend and
// pool size. Prints its seed; `-- --seed=N` replays a run.
#define BOOST_TEST_MODULE btree_differential
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>

#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include "tests/support/db_matrix.h"
#include "tests/support/random.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::Database;
using corobtree::ScanOptions;
using corobtree::sync_wait;
using corobtree::test::DbConfig;

namespace {

using corobtree::test::random_bytes;

// Keys from a smallish space so that updates and erases hit existing keys;
// some long keys and some long (overflow) values.
std::string random_key(std::mt19937_64& rng) {
  const std::uint64_t id = rng() % 20000;
  std::string k = "k" + std::to_string(id);
  if (id % 97 == 0) k += std::string(200 + id % 300, static_cast<char>('a' + id % 26));
  if (id % 13 == 0) k.push_back('\0');
  return k;
}

std::string random_value(std::mt19937_64& rng) {
  const std::uint64_t r = rng() % 1000;
  if (r < 5) return random_bytes(rng, 2000 + rng() % 20000);  // overflow pages
  if (r < 20) return std::string();
  return random_bytes(rng, rng() % 120);
}

// `reused`: the vector every lock-free scan of the run writes into (its pairs
// overwritten in place, as BlockingDatabase::scan(options, limit, out) does).
void check_scan(Database& db, const std::map<std::string, std::string>& model, std::mt19937_64& rng,
                std::uint64_t seed, int op,
                std::vector<std::pair<std::string, std::string>>& reused) {
  ScanOptions so;
  std::string a = random_key(rng);
  std::string b = random_key(rng);
  if (b < a) std::swap(a, b);
  so.lower = a;
  so.upper = b;
  so.reverse = rng() % 2 == 0;
  const std::size_t limit = 1 + rng() % 50;
  auto got = sync_wait(db.scan(so, limit));
  std::vector<std::pair<std::string, std::string>> want;
  if (!so.reverse) {
    for (auto it = model.lower_bound(a); it != model.end() && it->first < b && want.size() < limit;
         ++it) {
      want.push_back(*it);
    }
  } else {
    auto it = model.lower_bound(b);
    while (it != model.begin() && want.size() < limit) {
      --it;
      if (it->first < a) break;
      want.push_back(*it);
    }
  }
  BOOST_REQUIRE_MESSAGE(got == want, "scan mismatch at op " << op << " (seed " << seed << ", "
                                                            << (so.reverse ? "reverse" : "forward")
                                                            << ", got " << got.size() << " want "
                                                            << want.size() << ")");
  // Forward scans of cached leaves complete on the lock-free path; one that
  // gives up (an uncached page, an overflow value, a reverse scan) leaves
  // `reused` to be overwritten by the next.
  if (db.try_scan_cached(so, limit, reused)) {
    BOOST_REQUIRE_MESSAGE(reused == want, "scan into a reused vector: mismatch at op "
                                              << op << " (seed " << seed << ", got "
                                              << reused.size() << " want " << want.size() << ")");
  }
}

void run_differential(const DbConfig& cfg, std::uint32_t min_degree, int ops) {
  const auto seed = corobtree::test::test_seed("btree differential " + cfg.name() +
                                               " t=" + std::to_string(min_degree));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("diff.db");
  std::map<std::string, std::string> model;
  std::vector<std::pair<std::string, std::string>> reused;
  auto db = sync_wait(Database::open(path, cfg.options(min_degree)));
  for (int op = 0; op < ops; ++op) {
    const std::uint64_t r = rng() % 100;
    if (r < 50) {
      std::string k = random_key(rng);
      std::string v = random_value(rng);
      sync_wait(db->put(k, v));
      model[k] = v;
    } else if (r < 80) {
      std::string k = random_key(rng);
      const bool found = sync_wait(db->erase(k));
      BOOST_REQUIRE_MESSAGE(found == (model.erase(k) == 1),
                            "erase result at op " << op << " seed " << seed);
    } else if (r < 98) {
      std::string k = random_key(rng);
      auto got = sync_wait(db->get(k));
      auto it = model.find(k);
      BOOST_REQUIRE_MESSAGE(got.has_value() == (it != model.end()),
                            "get presence at op " << op << " seed " << seed);
      if (got)
        BOOST_REQUIRE_MESSAGE(*got == it->second, "get value at op " << op << " seed " << seed);
    } else {
      check_scan(*db, model, rng, seed, op, reused);
    }
    if (op % (ops / 4) == ops / 4 - 1) {
      auto report = sync_wait(db->validate());
      BOOST_REQUIRE_MESSAGE(
          report.ok(), "validate at op " << op << " (seed " << seed << "): " << report.summary());
      BOOST_REQUIRE_EQUAL(db->count(), model.size());
      sync_wait(db->close());
      db = sync_wait(Database::open(path, cfg.options()));
      BOOST_REQUIRE_EQUAL(db->count(), model.size());
    }
  }
  // Full forward scan equals the model.
  auto all = sync_wait(db->scan(ScanOptions{}));
  BOOST_REQUIRE(all.size() == model.size());
  BOOST_REQUIRE(std::equal(all.begin(), all.end(), model.begin(), [](const auto& a, const auto& b) {
    return a.first == b.first && a.second == b.second;
  }));
  auto report = sync_wait(db->validate());
  BOOST_TEST_MESSAGE(cfg.name() << ": " << report.summary());
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  sync_wait(db->close());
}

int ops_for(const DbConfig& cfg) {
  // The full 200k on the cached configurations; direct-mode and O_DIRECT ones
  // do real I/O per access and run 40k.
  const int n = (cfg.pool_pages == 0 || cfg.backend.direct_io) ? 40000 : 200000;
  return corobtree::test::scaled(n, 4000);
}

}  // namespace

BOOST_DATA_TEST_CASE(differential_against_std_map, bdata::make(corobtree::test::db_matrix()), cfg) {
  run_differential(cfg, 0, ops_for(cfg));
}

BOOST_DATA_TEST_CASE(differential_classic_minimum_degree, bdata::make(corobtree::test::db_matrix()),
                     cfg) {
  run_differential(cfg, 4, ops_for(cfg) / 4);
}

// Small pages and keys of every length up to the limit: splits, merges and
// borrows whose new separators are longer than the old ones (so a parent may
// have to split during an erase) happen constantly.
BOOST_DATA_TEST_CASE(long_keys_on_small_pages, bdata::make(corobtree::test::db_matrix()), cfg) {
  if (cfg.backend.direct_io || cfg.pool_pages == 0) return;  // covered above; keep this one fast
  const auto seed = corobtree::test::test_seed("long keys " + cfg.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("long.db");
  corobtree::Options o = cfg.options();
  o.page_size = 512;
  auto db = sync_wait(Database::open(path, o));
  const std::uint32_t max_key = db->max_key_size();
  std::map<std::string, std::string> model;
  const int ops = corobtree::test::scaled(60000, 6000);
  for (int op = 0; op < ops; ++op) {
    const std::uint64_t id = rng() % 3000;
    // The key's length is a function of its id, so a key always has one length.
    std::string k = std::to_string(id);
    k.resize(1 + (id * 2654435761u) % max_key, static_cast<char>('a' + id % 26));
    if (rng() % 100 < 55) {
      std::string v = random_bytes(rng, rng() % 40);
      sync_wait(db->put(k, v));
      model[k] = v;
    } else {
      const bool found = sync_wait(db->erase(k));
      BOOST_REQUIRE_MESSAGE(found == (model.erase(k) == 1),
                            "erase at op " << op << " seed " << seed);
    }
    if (op % (ops / 6) == ops / 6 - 1) {
      auto report = sync_wait(db->validate());
      BOOST_REQUIRE_MESSAGE(report.ok(),
                            "op " << op << " seed " << seed << ": " << report.summary());
    }
  }
  auto all = sync_wait(db->scan(ScanOptions{}));
  BOOST_REQUIRE(all.size() == model.size());
  BOOST_REQUIRE(std::equal(all.begin(), all.end(), model.begin(), [](const auto& a, const auto& b) {
    return a.first == b.first && a.second == b.second;
  }));
  sync_wait(db->close());
}
