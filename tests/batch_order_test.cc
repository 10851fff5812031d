// Batches applied in key order (DatabaseImpl::apply_locked sorts a batch's
// operations by key, keeps the last one of each key, and the tree inserts runs
// of keys into one latched leaf): random WriteBatches with duplicate keys and
// puts and erases in random order, against a std::map that applies each
// batch's operations in batch order. Values of every size (empty, inline,
// overflow) and updates that shrink a value (underfull leaves inside a run).
// Point reads every 40 batches; halfway validate(), compare every entry, close
// and reopen; at the end compare, drop the database unclosed (the open replays
// the log's batches through the same sorted path), reopen, compare and
// validate. On every backend and pool size. Prints its seed; `-- --seed=N`
// replays a run. COROBTREE_TEST_SCALE scales the number of batches.
#define BOOST_TEST_MODULE batch_order
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/sync_wait.h>
#include <corobtree/write_batch.h>
#include "tests/support/db_matrix.h"
#include "tests/support/random.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::Database;
using corobtree::ScanOptions;
using corobtree::sync_wait;
using corobtree::WriteBatch;
using corobtree::test::DbConfig;
using corobtree::test::random_bytes;
using Model = std::map<std::string, std::string>;

namespace {

// A small key space, so that a batch often names a key twice and updates
// existing keys; keys of varied length (the long ones shorter on small
// pages, within their key limit), some with a NUL byte.
std::string random_key(std::mt19937_64& rng, std::uint64_t space) {
  const std::uint64_t id = rng() % space;
  std::string k = "k" + std::to_string(id);
  const std::uint64_t extra = space <= 3000 ? 10 + id % 40 : 40 + id % 90;
  if (id % 31 == 0) k += std::string(extra, static_cast<char>('a' + id % 26));
  if (id % 17 == 0) k.push_back('\0');
  return k;
}

std::string random_value(std::mt19937_64& rng) {
  const std::uint64_t r = rng() % 1000;
  if (r < 4) return random_bytes(rng, 1500 + rng() % 6000);  // overflow pages
  if (r < 60) return std::string();
  if (r < 300) return random_bytes(rng, 150 + rng() % 200);  // large inline: shrinks later
  return random_bytes(rng, rng() % 40);
}

// One random batch, applied to `model` in batch order.
WriteBatch random_batch(std::mt19937_64& rng, std::uint64_t space, Model& model) {
  WriteBatch batch;
  const std::uint64_t shape = rng() % 10;
  const std::size_t n = shape == 0 ? 1 : shape < 3 ? 2 + rng() % 8 : 1 + rng() % 400;
  std::string last;
  for (std::size_t i = 0; i < n; ++i) {
    // Now and then the same key again, right after or later in the batch.
    std::string k = !last.empty() && rng() % 8 == 0 ? last : random_key(rng, space);
    if (rng() % 100 < 30) {
      batch.erase(k);
      model.erase(k);
    } else {
      std::string v = random_value(rng);
      batch.put(k, v);
      model[k] = std::move(v);
    }
    last = std::move(k);
  }
  return batch;
}

void expect_equal(Database& db, const Model& model, const std::string& where) {
  const auto all = sync_wait(db.scan(ScanOptions{}));
  BOOST_REQUIRE_MESSAGE(all.size() == model.size(),
                        where << ": " << all.size() << " entries, the model has " << model.size());
  BOOST_REQUIRE_MESSAGE(std::equal(all.begin(), all.end(), model.begin(),
                                   [](const auto& a, const auto& b) {
                                     return a.first == b.first && a.second == b.second;
                                   }),
                        where << ": the entries differ from the model");
  BOOST_REQUIRE_EQUAL(db.count(), model.size());
}

void run(const DbConfig& cfg, std::uint32_t page_size, std::uint32_t min_degree, int batches) {
  const auto seed =
      corobtree::test::test_seed("batch order " + cfg.name() + " page " +
                                 std::to_string(page_size) + " t=" + std::to_string(min_degree));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("batch.db");
  corobtree::Options o = cfg.options(min_degree);
  o.page_size = page_size;
  const std::uint64_t space = page_size <= 1024 ? 3000 : 12000;
  Model model;
  auto db = sync_wait(Database::open(path, o));
  for (int b = 0; b < batches; ++b) {
    const WriteBatch batch = random_batch(rng, space, model);
    sync_wait(db->write(batch));
    if (b % 40 == 39) {
      for (int i = 0; i < 20; ++i) {  // point reads
        const std::string k = random_key(rng, space);
        const auto got = sync_wait(db->get(k));
        const auto it = model.find(k);
        BOOST_REQUIRE_MESSAGE(got.has_value() == (it != model.end()),
                              "get presence after batch " << b << " (seed " << seed << ")");
        if (got) BOOST_REQUIRE_MESSAGE(*got == it->second, "get value (seed " << seed << ")");
      }
    }
    // Halfway: validate, compare, close and reopen (the end drops it unclosed).
    if (b == batches / 2 - 1) {
      const std::string where =
          "after batch " + std::to_string(b) + " (seed " + std::to_string(seed) + ")";
      const auto report = sync_wait(db->validate());
      BOOST_REQUIRE_MESSAGE(report.ok(), where << ": " << report.summary());
      expect_equal(*db, model, where);
      sync_wait(db->close());
      db = sync_wait(Database::open(path, o));
      expect_equal(*db, model, where + ", reopened");
      const auto again = sync_wait(db->validate());
      BOOST_REQUIRE_MESSAGE(again.ok(), where << ", reopened: " << again.summary());
    }
  }
  expect_equal(*db, model, "at the end (seed " + std::to_string(seed) + ")");
  db.reset();  // unclosed: the open replays the log's batches
  db = sync_wait(Database::open(path, o));
  expect_equal(*db, model, "at the end, reopened (seed " + std::to_string(seed) + ")");
  const auto report = sync_wait(db->validate());
  BOOST_TEST_MESSAGE(cfg.name() << ": " << report.summary());
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  sync_wait(db->close());
}

// All cases together take about 8 s in a Debug build on a loaded 2-core
// machine; each still fails when the dedupe keeps the first operation of a key
// or a run ignores its leaf's upper bound. COROBTREE_TEST_SCALE scales it.
int batches_for(const DbConfig& cfg) {
  const int n = (cfg.pool_pages == 0 || cfg.backend.direct_io) ? 30 : 80;
  return std::max(corobtree::test::scaled(n), 6);
}

}  // namespace

BOOST_DATA_TEST_CASE(sorted_batches_against_std_map, bdata::make(corobtree::test::db_matrix()),
                     cfg) {
  run(cfg, 4096, 0, batches_for(cfg));
}

// Small pages: splits inside nearly every batch, runs that end at a full leaf.
BOOST_DATA_TEST_CASE(sorted_batches_small_pages, bdata::make(corobtree::test::db_matrix()), cfg) {
  if (cfg.backend.direct_io || cfg.pool_pages == 0) return;  // covered above; keep this one fast
  run(cfg, 512, 0, batches_for(cfg) / 2);
}

// The classic key bounds (minimum degree 4): a leaf is full at 7 keys.
BOOST_DATA_TEST_CASE(sorted_batches_classic_degree, bdata::make(corobtree::test::db_matrix()),
                     cfg) {
  if (cfg.backend.direct_io || cfg.pool_pages == 0) return;
  run(cfg, 4096, 4, batches_for(cfg) / 2);
}

// Keys that tie on the sort's first word (their first 8 bytes, zero-padded:
// "a", "a\0" and "a\0\0\0\0\0\0\0" have the same word, as have "abcdefgh"
// and its longer twins), each named several times in a shuffled batch with
// erases among the puts: the sort falls back to the whole keys, the last
// operation of each key wins, and keys of one word stay distinct. Compared
// with a std::map applying the batch in order, after validate() and a reopen.
BOOST_DATA_TEST_CASE(keys_that_share_their_first_word, bdata::make(corobtree::test::db_matrix()),
                     cfg) {
  using namespace std::string_literals;
  const std::vector<std::string> keys = {"a"s,
                                         "a\0"s,
                                         "a\0\0\0\0\0\0\0"s,
                                         "a\0\0\0\0\0\0\0\0"s,
                                         "a\0\0\0\0\0\0\0\1"s,
                                         "abcdefg"s,
                                         "abcdefgh"s,
                                         "abcdefgh\0"s,
                                         "abcdefghA"s,
                                         "abcdefghAB"s,
                                         "abcdefgi"s,
                                         "b"s,
                                         "\xff\xff\xff\xff\xff\xff\xff\xff"s,
                                         "\xff\xff\xff\xff\xff\xff\xff\xff\1"s,
                                         "\x01"s,
                                         "\x01\x02"s,
                                         "abcdefg\xff"s,
                                         "abcdefg\xff\xff"s};
  const auto seed = corobtree::test::test_seed("batch order first word " + cfg.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("word.db");
  const corobtree::Options o = cfg.options(0);
  Model model;
  auto db = sync_wait(Database::open(path, o));
  for (int round = 0; round < 4; ++round) {
    std::vector<std::size_t> order;
    for (std::size_t k = 0; k < keys.size(); ++k) {
      for (int times = 0; times < 3; ++times) order.push_back(k);
    }
    std::shuffle(order.begin(), order.end(), rng);
    WriteBatch batch;
    for (const std::size_t k : order) {
      if (rng() % 4 == 0) {
        batch.erase(keys[k]);
        model.erase(keys[k]);
      } else {
        const std::string v = "v" + std::to_string(round) + "-" + std::to_string(rng() % 1000);
        batch.put(keys[k], v);
        model[keys[k]] = v;
      }
    }
    sync_wait(db->write(batch));
    const std::string where =
        "round " + std::to_string(round) + " (seed " + std::to_string(seed) + ")";
    expect_equal(*db, model, where);
  }
  const auto report = sync_wait(db->validate());
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  sync_wait(db->close());
  db = sync_wait(Database::open(path, o));
  expect_equal(*db, model, "reopened (seed " + std::to_string(seed) + ")");
  sync_wait(db->close());
}
