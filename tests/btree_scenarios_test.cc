// The seed project's B+tree scenarios, each on every backend and pool size
// and with both node-capacity policies: classic minimum degree t = 3 (nodes of
// t-1 .. 2t-1 keys) and t = 0 (byte-filled nodes). Root split, updates,
// deletes (from a leaf, of separators, with borrows from either side, merges
// and root shrinks, all classified by reading the tree's shape off the file),
// persistence, a large workload against std::map, cursor semantics, bulk
// load, and the limits on keys and values. Randomized parts print their seed;
// `-- --seed=N` replays them.
#define BOOST_TEST_MODULE btree_scenarios
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include "engine/btree/node.h"
#include "engine/format/page_format.h"
#include "tests/support/db_matrix.h"
#include "tests/support/random.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::BlockId;
using corobtree::BlockingDatabase;
using corobtree::Cursor;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::Node;
using corobtree::PageType;
using corobtree::ScanOptions;
using corobtree::sync_wait;
using corobtree::ValidationReport;
using corobtree::test::DbConfig;

namespace {

using Model = std::map<std::string, std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

auto matrix_x_degrees() {
  return bdata::make(corobtree::test::db_matrix()) * bdata::make(std::vector<std::uint32_t>{3, 0});
}

// Configurations that do real I/O on most accesses (direct mode, a 16-frame
// pool, O_DIRECT) get smaller workloads than the fully cached ones; long
// workloads also shrink with COROBTREE_TEST_SCALE (the sanitizer pass).
bool slow(const DbConfig& cfg) { return cfg.pool_pages < 4096 || cfg.backend.direct_io; }

std::string label(const DbConfig& cfg, std::uint32_t t) {
  return cfg.name() + " t=" + std::to_string(t);
}

std::string key_of(int i, std::size_t pad = 0) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%06d", i);
  return std::string(buf) + std::string(pad, static_cast<char>('a' + i % 26));
}

using corobtree::test::random_bytes;

void require_valid(BlockingDatabase& db, const std::string& when) {
  const ValidationReport r = db.validate();
  BOOST_REQUIRE_MESSAGE(r.ok(), when << ": " << r.summary());
  BOOST_REQUIRE_MESSAGE(r.keys == db.count(),
                        when << ": validate saw " << r.keys << " keys, count() is " << db.count());
}

void require_matches(BlockingDatabase& db, const Model& model, const std::string& when) {
  BOOST_REQUIRE_MESSAGE(db.count() == model.size(),
                        when << ": count " << db.count() << " != model " << model.size());
  const Pairs all = db.scan();
  BOOST_REQUIRE_MESSAGE(all.size() == model.size(), when << ": scan returned " << all.size()
                                                         << " pairs, model has " << model.size());
  auto it = model.begin();
  for (std::size_t i = 0; i < all.size(); ++i, ++it) {
    BOOST_REQUIRE_MESSAGE(all[i].first == it->first, when << ": scan key " << i << " differs");
    BOOST_REQUIRE_MESSAGE(all[i].second == it->second,
                          when << ": scan value of key " << i << " differs");
  }
}

void require_get(BlockingDatabase& db, const Model& model, const std::string& key,
                 const std::string& when) {
  const auto got = db.get(key);
  const auto it = model.find(key);
  BOOST_REQUIRE_MESSAGE(got.has_value() == (it != model.end()),
                        when << ": presence of key '" << key.substr(0, 20) << "'");
  if (got)
    BOOST_REQUIRE_MESSAGE(*got == it->second,
                          when << ": value of key '" << key.substr(0, 20) << "'");
}

template <typename F>
ErrorCode error_code_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  BOOST_FAIL("expected a corobtree::Error");
  return ErrorCode::kIoError;
}

// ---- the tree's shape, read off the file --------------------------------
// After validate() (which flushes every dirty page) the file holds the whole
// tree. The root is the one tree node no inner node points at.

struct LeafInfo {
  BlockId id;
  std::vector<std::string> keys;
};

struct Shape {
  std::uint32_t height = 0;
  std::vector<LeafInfo> leaves;      // in key order
  std::set<std::string> separators;  // every key held by an inner node
  std::size_t inner_nodes = 0;
};

// The data file changes only at checkpoints: take one, then read the file.
Shape read_shape(BlockingDatabase& db) {
  db.checkpoint();
  const std::string& path = db.path();
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string file(static_cast<std::size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(file.data(), static_cast<std::streamsize>(file.size()));
  BOOST_REQUIRE(in.good() && file.size() >= 3 * corobtree::kDefaultPageSize);
  std::uint32_t ps = 0;
  std::memcpy(&ps, file.data() + 20, sizeof ps);
  BOOST_REQUIRE(ps >= corobtree::kMinPageSize && file.size() % ps == 0);
  const std::size_t pages = file.size() / ps;
  std::vector<std::vector<std::byte>> nodes(pages);
  std::set<BlockId> children;
  for (BlockId id = 2; id < pages; ++id) {
    std::vector<std::byte> p(ps);
    std::memcpy(p.data(), file.data() + id * ps, ps);
    if (corobtree::le::load<std::uint32_t>(p.data(), 0) != corobtree::page::checksum(id, p))
      continue;
    const PageType type = corobtree::page::type(p.data());
    if (type != PageType::kLeaf && type != PageType::kInner) continue;
    if (type == PageType::kInner) {
      Node n(p);
      for (std::uint32_t i = 0; i <= n.count(); ++i) children.insert(n.child(i));
    }
    nodes[id] = std::move(p);
  }
  std::vector<BlockId> roots;
  for (BlockId id = 2; id < pages; ++id) {
    if (!nodes[id].empty() && !children.count(id)) roots.push_back(id);
  }
  BOOST_REQUIRE_MESSAGE(roots.size() == 1,
                        "expected exactly one root in " << path << ", found " << roots.size());
  Shape s;
  struct Frame {
    BlockId id;
    std::uint32_t depth;
  };
  std::vector<Frame> stack{{roots[0], 0}};
  while (!stack.empty()) {
    const Frame f = stack.back();
    stack.pop_back();
    BOOST_REQUIRE(f.id < pages && !nodes[f.id].empty());
    Node n(nodes[f.id]);
    if (n.is_leaf()) {
      if (s.height == 0) s.height = f.depth + 1;
      BOOST_REQUIRE_EQUAL(s.height, f.depth + 1);
      LeafInfo leaf{f.id, {}};
      for (std::uint32_t i = 0; i < n.count(); ++i) leaf.keys.emplace_back(n.key(i));
      s.leaves.push_back(std::move(leaf));
      continue;
    }
    ++s.inner_nodes;
    for (std::uint32_t i = 0; i < n.count(); ++i) s.separators.emplace(n.key(i));
    for (std::uint32_t i = n.count() + 1; i > 0; --i)
      stack.push_back(Frame{n.child(i - 1), f.depth + 1});
  }
  return s;
}

std::vector<std::string> keys_of(const Shape& s) {
  std::vector<std::string> out;
  for (const auto& l : s.leaves) out.insert(out.end(), l.keys.begin(), l.keys.end());
  return out;
}

}  // namespace

// ---- root split ------------------------------------------------------------

BOOST_DATA_TEST_CASE(root_split, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  corobtree::test::TempDir dir;
  const std::string path = dir.file("split.db");
  auto db = BlockingDatabase::open(path, cfg.options(t));
  BOOST_REQUIRE_EQUAL(db.stats().height, 1u);
  BOOST_REQUIRE_EQUAL(db.stats().minimum_degree, t);
  Model model;
  const std::string value(100, 'v');
  // How many keys the root leaf takes before it splits: 2t-1, or as many
  // cells as fit in the page after the header (each cell plus its slot).
  const std::size_t cell =
      Node::leaf_cell_size(key_of(0).size(), value.size()) + corobtree::page::kSlotSize;
  const std::size_t capacity =
      t > 0 ? 2 * t - 1 : (corobtree::kDefaultPageSize - corobtree::page::kHeaderSize) / cell;
  for (std::size_t i = 0; i < capacity; ++i) {
    db.put(key_of(static_cast<int>(i)), value);
    model[key_of(static_cast<int>(i))] = value;
  }
  BOOST_REQUIRE_MESSAGE(db.stats().height == 1,
                        "the root leaf split before it was full (" << capacity << " keys)");
  db.put(key_of(static_cast<int>(capacity)), value);
  model[key_of(static_cast<int>(capacity))] = value;
  BOOST_REQUIRE_MESSAGE(db.stats().height == 2,
                        "the root leaf did not split at " << capacity + 1 << " keys");
  require_valid(db, "after the first root split");
  const Shape s = read_shape(db);
  BOOST_REQUIRE_EQUAL(s.height, 2u);
  BOOST_REQUIRE_EQUAL(s.leaves.size(), 2u);
  BOOST_REQUIRE_EQUAL(s.separators.size(), 1u);
  BOOST_REQUIRE(*s.separators.begin() == s.leaves[1].keys.front());
  require_matches(db, model, "after the first root split");

  // Long keys make inner nodes small: keep going until the inner root splits.
  int i = 1000;
  while (db.stats().height < 3) {
    const std::string k = key_of(i++, 200);
    db.put(k, value);
    model[k] = value;
    BOOST_REQUIRE_MESSAGE(i < 20000, "height 3 never reached");
  }
  require_valid(db, "after the inner root split");
  const Shape s3 = read_shape(db);
  BOOST_REQUIRE_EQUAL(s3.height, 3u);
  BOOST_REQUIRE(keys_of(s3).size() == model.size());
  require_matches(db, model, "after the inner root split");
  for (const auto& [k, v] : model) require_get(db, model, k, "get after splits");
  db.close();
  auto again = BlockingDatabase::open(path, cfg.options());
  BOOST_REQUIRE_EQUAL(again.stats().height, 3u);
  require_matches(again, model, "after reopen");
}

// A leaf split by bytes whose left half stopped one cell short of half the
// page: with cells near the largest a leaf keeps, that half ended a byte under
// the minimum fill (found by mt_differential_test). 512-byte pages: 464
// usable bytes, minimum fill 116; the four cells with their slots are 115,
// 118, 116 and 116 bytes (465 in all), so half the bytes is 232.
BOOST_DATA_TEST_CASE(leaf_split_keeps_both_halves_filled, bdata::make(corobtree::test::db_matrix()),
                     cfg) {
  corobtree::test::TempDir dir;
  corobtree::Options o = cfg.options();
  o.page_size = 512;
  auto db = BlockingDatabase::open(dir.file("halves.db"), o);
  Model model;
  const std::size_t value_sizes[] = {98, 101, 99, 99};  // cells of 113, 116, 114, 114 bytes
  for (int i = 0; i < 4; ++i) {
    const std::string k = key_of(i);
    BOOST_REQUIRE_EQUAL(k.size(), 7u);
    const std::string v(value_sizes[i], static_cast<char>('a' + i));
    db.put(k, v);
    model[k] = v;
  }
  BOOST_REQUIRE_EQUAL(db.stats().height, 2u);
  require_valid(db, "after a split of large cells");
  require_matches(db, model, "after a split of large cells");
}

// ---- updates ---------------------------------------------------------------

BOOST_DATA_TEST_CASE(update_existing_keys, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed = corobtree::test::test_seed("update_existing_keys " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("update.db"), cfg.options(t));
  Model model;
  auto value_for = [&rng]() {
    const auto r = rng() % 10;
    if (r == 0) return random_bytes(rng, 2500 + rng() % 9000);  // overflow pages
    if (r == 1) return std::string();
    return random_bytes(rng, rng() % 300);
  };
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    const std::string v = value_for();
    db.put(key_of(i), v);
    model[key_of(i)] = v;
  }
  require_valid(db, "after the inserts (seed " + std::to_string(seed) + ")");
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < n; ++i) {
      const std::string k = key_of((i * 7919) % n);
      const std::string v = value_for();
      db.put(k, v);
      model[k] = v;
      BOOST_REQUIRE_MESSAGE(db.count() == static_cast<std::uint64_t>(n),
                            "an update changed the count (seed " << seed << ")");
      require_get(db, model, k, "read back after an update (seed " + std::to_string(seed) + ")");
    }
    require_valid(
        db, "after update round " + std::to_string(round) + " (seed " + std::to_string(seed) + ")");
    require_matches(db, model, "after update round " + std::to_string(round));
  }
  // The same value again, and a key updated many times in a row.
  db.put(key_of(5), model[key_of(5)]);
  for (int i = 0; i < 50; ++i) {
    const std::string v = value_for();
    db.put(key_of(7), v);
    model[key_of(7)] = v;
  }
  require_get(db, model, key_of(7), "repeated update");
  require_valid(db, "after repeated updates");
  require_matches(db, model, "final");
}

// ---- deletes ---------------------------------------------------------------

BOOST_DATA_TEST_CASE(delete_from_leaf, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("del.db"), cfg.options(t));
  Model model;
  const int n = t > 0 ? static_cast<int>(2 * t - 1) : 20;
  for (int i = 0; i < n; ++i) {
    db.put(key_of(i), "value" + std::to_string(i));
    model[key_of(i)] = "value" + std::to_string(i);
  }
  BOOST_REQUIRE_EQUAL(db.stats().height, 1u);
  for (int victim : {n / 2, 0, n - 1}) {
    BOOST_REQUIRE(db.erase(key_of(victim)));
    model.erase(key_of(victim));
    BOOST_REQUIRE(!db.get(key_of(victim)));
    BOOST_REQUIRE(!db.erase(key_of(victim)));  // already gone
    for (const auto& [k, v] : model) require_get(db, model, k, "after deleting from the leaf");
    require_matches(db, model, "after deleting key " + std::to_string(victim));
    require_valid(db, "after deleting from the leaf");
    BOOST_REQUIRE_EQUAL(db.stats().height, 1u);
  }
  BOOST_REQUIRE(!db.erase("never-inserted"));
  BOOST_REQUIRE(!db.erase(""));
  require_matches(db, model, "after erasing absent keys");
}

namespace {

struct RebalanceCounts {
  int separator_deletes = 0;
  int borrow_left = 0;
  int borrow_right = 0;
  int leaf_merges = 0;
  int root_shrinks = 0;
  bool all_seen() const {
    return separator_deletes > 0 && borrow_left + borrow_right > 0 && leaf_merges > 0;
  }
};

// Erases `k` (in the tree whose shape on disk is `before`), checks gets,
// scans, validate() and the leaf level, and classifies what the erase did to
// the leaves: nothing else, a borrow from the left or right sibling, or a
// merge. Anything else (keys appearing from elsewhere) fails the test.
// Returns the shape after the erase.
Shape erase_and_classify(BlockingDatabase& db, Model& model, const std::string& k,
                         const Shape& before, RebalanceCounts& counts, const std::string& when) {
  const std::uint32_t height_before = db.stats().height;
  std::size_t x = 0;
  while (x < before.leaves.size() &&
         !std::binary_search(before.leaves[x].keys.begin(), before.leaves[x].keys.end(), k)) {
    ++x;
  }
  BOOST_REQUIRE_MESSAGE(x < before.leaves.size(), when << ": key not found in any leaf on disk");
  if (before.separators.count(k)) ++counts.separator_deletes;

  BOOST_REQUIRE_MESSAGE(db.erase(k), when << ": erase returned false");
  model.erase(k);
  BOOST_REQUIRE_MESSAGE(!db.get(k), when << ": erased key still found");
  require_valid(db, when);
  const Shape after = read_shape(db);
  BOOST_REQUIRE_MESSAGE(after.height == db.stats().height,
                        when << ": height on disk differs from stats()");
  std::vector<std::string> want;
  for (const auto& [mk, mv] : model) want.push_back(mk);
  BOOST_REQUIRE_MESSAGE(keys_of(after) == want,
                        when << ": the leaves on disk do not hold the model's keys");
  if (db.stats().height < height_before) ++counts.root_shrinks;

  std::vector<std::string> expect = before.leaves[x].keys;
  expect.erase(std::find(expect.begin(), expect.end(), k));
  auto concat = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  if (after.leaves.size() + 1 == before.leaves.size()) {
    // A merge with the left sibling (into it) or the right one (into this leaf).
    const bool into_left = x > 0 && after.leaves[x - 1].id == before.leaves[x - 1].id &&
                           after.leaves[x - 1].keys == concat(before.leaves[x - 1].keys, expect);
    const bool with_right = x + 1 < before.leaves.size() &&
                            after.leaves[x].id == before.leaves[x].id &&
                            after.leaves[x].keys == concat(expect, before.leaves[x + 1].keys);
    BOOST_REQUIRE_MESSAGE(into_left || with_right,
                          when << ": a leaf disappeared but no sibling holds the merged keys");
    ++counts.leaf_merges;
  } else {
    BOOST_REQUIRE_MESSAGE(
        after.leaves.size() == before.leaves.size(),
        when << ": leaf count went from " << before.leaves.size() << " to " << after.leaves.size());
    BOOST_REQUIRE_MESSAGE(after.leaves[x].id == before.leaves[x].id,
                          when << ": the leaf moved without a merge");
    const std::vector<std::string>& got = after.leaves[x].keys;
    if (got != expect) {
      // A borrow: the left sibling's last keys in front of ours, or the right sibling's first keys
      // behind.
      std::size_t front = 0;
      if (expect.empty()) {
        front = !got.empty() && got.front() < k ? got.size() : 0;
      } else {
        const auto mid = std::search(got.begin(), got.end(), expect.begin(), expect.end());
        BOOST_REQUIRE_MESSAGE(mid != got.end(), when << ": the leaf lost keys it should keep");
        front = static_cast<std::size_t>(mid - got.begin());
      }
      const std::size_t back = got.size() - front - expect.size();
      BOOST_REQUIRE_MESSAGE((front > 0) != (back > 0),
                            when << ": keys arrived on both sides of the leaf");
      if (front > 0) {
        BOOST_REQUIRE_MESSAGE(x > 0, when << ": borrowed from a left sibling that does not exist");
        std::vector<std::string> left = before.leaves[x - 1].keys;
        BOOST_REQUIRE(front < left.size());
        const std::vector<std::string> moved(left.end() - static_cast<std::ptrdiff_t>(front),
                                             left.end());
        left.resize(left.size() - front);
        BOOST_REQUIRE_MESSAGE(got == concat(moved, expect) && after.leaves[x - 1].keys == left,
                              when << ": a borrow from the left moved the wrong keys");
        ++counts.borrow_left;
      } else {
        BOOST_REQUIRE_MESSAGE(x + 1 < before.leaves.size(),
                              when << ": borrowed from a right sibling that does not exist");
        std::vector<std::string> right = before.leaves[x + 1].keys;
        BOOST_REQUIRE(back < right.size());
        const std::vector<std::string> moved(right.begin(),
                                             right.begin() + static_cast<std::ptrdiff_t>(back));
        right.erase(right.begin(), right.begin() + static_cast<std::ptrdiff_t>(back));
        BOOST_REQUIRE_MESSAGE(got == concat(expect, moved) && after.leaves[x + 1].keys == right,
                              when << ": a borrow from the right moved the wrong keys");
        ++counts.borrow_right;
      }
    }
  }
  // Neighbours of the erased key, through gets and short scans both ways.
  auto it = model.lower_bound(k);
  if (it != model.end()) require_get(db, model, it->first, when);
  if (it != model.begin()) require_get(db, model, std::prev(it)->first, when);
  ScanOptions fwd;
  fwd.lower = k;
  const Pairs f = db.scan(fwd, 3);
  ScanOptions rev;
  rev.upper = k;
  rev.reverse = true;
  const Pairs r = db.scan(rev, 3);
  auto mf = model.lower_bound(k);
  for (const auto& [fk, fv] : f) {
    BOOST_REQUIRE_MESSAGE(mf != model.end() && fk == mf->first && fv == mf->second,
                          when << ": forward scan");
    ++mf;
  }
  BOOST_REQUIRE_EQUAL(f.size(), std::min<std::size_t>(3, static_cast<std::size_t>(std::distance(
                                                             model.lower_bound(k), model.end()))));
  auto mr = model.lower_bound(k);
  for (const auto& [rk, rv] : r) {
    BOOST_REQUIRE_MESSAGE(mr != model.begin(), when << ": reverse scan went too far");
    --mr;
    BOOST_REQUIRE_MESSAGE(rk == mr->first && rv == mr->second, when << ": reverse scan");
  }
  return after;
}

// Erases every key of the model in `order` that way; the tree ends empty.
void erase_all_and_classify(BlockingDatabase& db, Model& model,
                            const std::vector<std::string>& order, RebalanceCounts& counts,
                            const std::string& what) {
  Shape shape = read_shape(db);
  for (std::size_t step = 0; step < order.size(); ++step) {
    const std::string when = what + ", erase #" + std::to_string(step);
    shape = erase_and_classify(db, model, order[step], shape, counts, when);
    if (step % 16 == 0) require_matches(db, model, when);
  }
  BOOST_REQUIRE_EQUAL(db.count(), 0u);
  BOOST_REQUIRE_EQUAL(db.stats().height, 1u);
  BOOST_REQUIRE(db.scan().empty());
}

}  // namespace

// Small trees (height 3+) emptied in ascending, descending and random order:
// separators get deleted, leaves borrow and merge, the root shrinks back to a
// leaf. (Which side a leaf borrows from is pinned down by the next test.)
BOOST_DATA_TEST_CASE(delete_separators_borrow_merge_shrink, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed =
      corobtree::test::test_seed("delete_separators_borrow_merge_shrink " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("rebalance.db"), cfg.options(t));
  // t = 0: long keys and values keep leaves at a handful of keys and inner nodes small.
  const int n = t > 0 ? 90 : 120;
  const std::size_t pad = t > 0 ? 0 : 250;
  RebalanceCounts counts;
  // Ascending, descending, then random orders until every kind of rebalance was seen.
  for (int order = 0; order < 3 || (!counts.all_seen() && order < 12); ++order) {
    std::vector<std::string> keys;
    for (int i = 0; i < n; ++i) keys.push_back(key_of(i, pad));
    std::shuffle(keys.begin(), keys.end(), rng);
    Model model;
    for (const auto& k : keys) {
      const std::string v = random_bytes(rng, t > 0 ? 4 + rng() % 40 : 40 + rng() % 400);
      db.put(k, v);
      model[k] = v;
    }
    require_valid(db, "after building (seed " + std::to_string(seed) + ")");
    BOOST_REQUIRE_MESSAGE(db.stats().height >= 3,
                          "the tree should be at least 3 high, is " << db.stats().height);
    BOOST_TEST_MESSAGE(label(cfg, t)
                       << " order " << order << ": height " << db.stats().height << ", "
                       << read_shape(db).leaves.size() << " leaves; borrows so far left "
                       << counts.borrow_left << " right " << counts.borrow_right);
    if (order == 0) std::sort(keys.begin(), keys.end());
    if (order == 1) std::sort(keys.rbegin(), keys.rend());
    erase_all_and_classify(
        db, model, keys, counts,
        "order " + std::to_string(order) + " (seed " + std::to_string(seed) + ")");
  }
  BOOST_TEST_MESSAGE(label(cfg, t)
                     << ": separator deletes " << counts.separator_deletes << ", borrows left "
                     << counts.borrow_left << " right " << counts.borrow_right << ", leaf merges "
                     << counts.leaf_merges << ", root shrinks " << counts.root_shrinks);
  BOOST_CHECK_GT(counts.separator_deletes, 0);
  BOOST_CHECK_GT(counts.borrow_left + counts.borrow_right, 0);
  BOOST_CHECK_GT(counts.leaf_merges, 0);
  BOOST_CHECK_GE(counts.root_shrinks, 6);  // from height >= 3 down to 1, at least three times
  // The emptied tree is reusable.
  db.put("again", "yes");
  BOOST_REQUIRE(db.get("again") == std::optional<std::string>("yes"));
  require_valid(db, "reuse after emptying");
}

namespace {

// Two sibling leaves under the root, one of them (`full_side`: 0 left, 1
// right) filled to capacity: 2t-1 keys, or as many 500-byte values as fit.
// Keys are key_of(100 * i) at first, then fillers between them.
Model two_leaves_one_full(BlockingDatabase& db, std::uint32_t t, int full_side) {
  Model model;
  const std::string value(500, 'w');
  for (int i = 0; db.stats().height < 2; ++i) {
    db.put(key_of(100 * i), value);
    model[key_of(100 * i)] = value;
  }
  require_valid(db, "two leaves");
  Shape s = read_shape(db);
  BOOST_REQUIRE_EQUAL(s.leaves.size(), 2u);
  const std::uint32_t usable = corobtree::kDefaultPageSize - corobtree::page::kHeaderSize;
  const std::uint32_t cell =
      Node::leaf_cell_size(key_of(0).size(), value.size()) + corobtree::page::kSlotSize;
  const std::size_t capacity = t > 0 ? 2 * t - 1 : usable / cell;
  // Fillers sort right after the side's first key, so they land in that leaf.
  const int base = std::stoi(s.leaves[static_cast<std::size_t>(full_side)].keys.front().substr(1));
  for (int j = 1; s.leaves[static_cast<std::size_t>(full_side)].keys.size() < capacity; ++j) {
    db.put(key_of(base + j), value);
    model[key_of(base + j)] = value;
    require_valid(db, "filling a leaf");
    s = read_shape(db);
    BOOST_REQUIRE_MESSAGE(s.leaves.size() == 2u,
                          "the leaf split before holding " << capacity << " keys");
  }
  return model;
}

}  // namespace

// A leaf that underflows next to a full sibling cannot merge with it and must
// borrow: the leftmost leaf from its right sibling, any other from its left.
// Then everything is erased (merges, root shrink).
BOOST_DATA_TEST_CASE(borrow_from_the_right_and_from_the_left, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  for (int full_side : {1, 0}) {
    corobtree::test::TempDir dir;
    auto db = BlockingDatabase::open(dir.file("borrow.db"), cfg.options(t));
    Model model = two_leaves_one_full(db, t, full_side);
    Shape shape = read_shape(db);
    // Erase from the other leaf, its largest keys first, until something rebalances.
    const std::vector<std::string> victims(
        shape.leaves[static_cast<std::size_t>(1 - full_side)].keys.rbegin(),
        shape.leaves[static_cast<std::size_t>(1 - full_side)].keys.rend());
    RebalanceCounts counts;
    for (const std::string& k : victims) {
      shape = erase_and_classify(db, model, k, shape, counts, label(cfg, t) + " erase " + k);
      if (counts.borrow_left + counts.borrow_right + counts.leaf_merges > 0) break;
    }
    const std::string side = full_side == 1 ? "right" : "left";
    BOOST_REQUIRE_MESSAGE(counts.leaf_merges == 0,
                          "the underfull leaf merged with a full " << side << " sibling");
    BOOST_REQUIRE_MESSAGE((full_side == 1 ? counts.borrow_right : counts.borrow_left) == 1,
                          "the underfull leaf did not borrow from its full " << side << " sibling");
    BOOST_REQUIRE_EQUAL(shape.leaves.size(), 2u);
    std::vector<std::string> rest;
    for (const auto& [k, v] : model) rest.push_back(k);
    erase_all_and_classify(db, model, rest, counts, label(cfg, t) + " emptying");
    BOOST_REQUIRE_GT(counts.leaf_merges, 0);
  }
}

BOOST_DATA_TEST_CASE(root_shrinks_to_a_leaf, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed = corobtree::test::test_seed("root_shrinks_to_a_leaf " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("shrink.db"), cfg.options(t));
  Model model;
  const int n = corobtree::test::scaled(slow(cfg) ? 1000 : 4000, 1000);
  for (int i = 0; i < n; ++i) {
    const std::string k = key_of(static_cast<int>(rng() % 1000000), 100);
    const std::string v = random_bytes(rng, rng() % 100);
    db.put(k, v);
    model[k] = v;
  }
  const std::uint32_t tall = db.stats().height;
  BOOST_REQUIRE_GE(tall, 3u);
  require_valid(db, "built");
  std::vector<std::string> keys;
  for (const auto& [k, v] : model) keys.push_back(k);
  std::shuffle(keys.begin(), keys.end(), rng);
  keys.pop_back();  // keep one key
  for (const auto& k : keys) {
    BOOST_REQUIRE(db.erase(k));
    model.erase(k);
  }
  BOOST_REQUIRE_EQUAL(db.count(), 1u);
  BOOST_REQUIRE_MESSAGE(db.stats().height == 1, "height " << db.stats().height
                                                          << " with one key left (was " << tall
                                                          << ", seed " << seed << ")");
  require_valid(db, "one key left (seed " + std::to_string(seed) + ")");
  require_matches(db, model, "one key left");
  // Nearly every page is free now, and inserting again reuses them.
  const auto pages = db.stats().pages;
  BOOST_REQUIRE_EQUAL(db.stats().free_pages + 3, pages);  // two meta pages and the root leaf
  for (int i = 0; i < 200; ++i) db.put(key_of(i), std::string(50, 'x'));
  BOOST_REQUIRE_EQUAL(db.stats().pages, pages);
  require_valid(db, "reinserted");
}

// ---- persistence -----------------------------------------------------------

BOOST_DATA_TEST_CASE(persistence_across_reopen, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed = corobtree::test::test_seed("persistence_across_reopen " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("persist.db");
  Model model;
  corobtree::DatabaseStats last;
  for (int session = 0; session < 3; ++session) {
    // The minimum degree only applies at creation: later opens ask for another one.
    auto db = BlockingDatabase::open(path, cfg.options(session == 0 ? t : (t == 3 ? 0 : 3)));
    BOOST_REQUIRE_EQUAL(db.stats().minimum_degree, t);
    if (session > 0) {
      BOOST_REQUIRE_EQUAL(db.stats().height, last.height);
      BOOST_REQUIRE_EQUAL(db.stats().pages, last.pages);
      BOOST_REQUIRE_EQUAL(db.stats().free_pages, last.free_pages);
      require_matches(
          db, model,
          "after reopen " + std::to_string(session) + " (seed " + std::to_string(seed) + ")");
      require_valid(db, "after reopen");
    }
    for (int i = 0; i < corobtree::test::scaled(slow(cfg) ? 800 : 1500, 300); ++i) {
      const std::string k = key_of(static_cast<int>(rng() % 3000));
      if (rng() % 4 == 0) {
        BOOST_REQUIRE_EQUAL(db.erase(k), model.erase(k) == 1);
      } else {
        const std::string v = rng() % 50 == 0 ? random_bytes(rng, 3000 + rng() % 5000)
                                              : random_bytes(rng, rng() % 80);
        db.put(k, v);
        model[k] = v;
      }
    }
    require_valid(db, "session " + std::to_string(session));
    last = db.stats();
    db.close();
  }
  auto db = BlockingDatabase::open(path, cfg.options());
  for (const auto& [k, v] : model) require_get(db, model, k, "final gets");
  require_matches(db, model, "final");
}

// ---- a large workload against std::map --------------------------------------

BOOST_DATA_TEST_CASE(large_insert_delete_workload, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed = corobtree::test::test_seed("large_insert_delete_workload " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("large.db");
  const int inserts = corobtree::test::scaled(slow(cfg) ? (t > 0 ? 2000 : 5000) : 20000, 1000);
  const int deletes = inserts * 3 / 4;
  Model model;
  std::vector<std::string> keys;
  {
    auto db = BlockingDatabase::open(path, cfg.options(t));
    std::vector<int> ids(static_cast<std::size_t>(inserts));
    for (int i = 0; i < inserts; ++i) ids[static_cast<std::size_t>(i)] = i;
    std::shuffle(ids.begin(), ids.end(), rng);
    for (int id : ids) {
      const std::string k = key_of(id);
      const std::string v = rng() % 200 == 0 ? random_bytes(rng, 2100 + rng() % 6000)
                                             : random_bytes(rng, rng() % 120);
      db.put(k, v);
      model[k] = v;
      keys.push_back(k);
    }
    BOOST_REQUIRE_EQUAL(db.count(), static_cast<std::uint64_t>(inserts));
    require_valid(db, "after the inserts (seed " + std::to_string(seed) + ")");
    std::shuffle(keys.begin(), keys.end(), rng);
    for (int i = 0; i < deletes; ++i) {
      BOOST_REQUIRE_MESSAGE(db.erase(keys[static_cast<std::size_t>(i)]),
                            "erase #" << i << " (seed " << seed << ")");
      model.erase(keys[static_cast<std::size_t>(i)]);
    }
    require_valid(db, "after the deletes (seed " + std::to_string(seed) + ")");
    require_matches(db, model, "after the deletes");
    db.close();
  }
  auto db = BlockingDatabase::open(path, cfg.options());
  require_valid(db, "after reopen");
  require_matches(db, model, "after reopen (seed " + std::to_string(seed) + ")");
  for (int i = 0; i < 500; ++i) {
    require_get(db, model, keys[rng() % keys.size()],
                "random get after reopen (seed " + std::to_string(seed) + ")");
  }
}

// ---- cursors -------------------------------------------------------------------

namespace {

// The reference cursor: the model's entries of the range, in scan order.
class ModelCursor {
 public:
  ModelCursor(const Model& m, const ScanOptions& so) : reverse_(so.reverse) {
    for (const auto& kv : m) {
      if (so.lower && kv.first < *so.lower) continue;
      if (so.upper && kv.first >= *so.upper) continue;
      entries_.push_back(&kv);
    }
    if (reverse_) std::reverse(entries_.begin(), entries_.end());
    pos_ = entries_.size();
  }
  bool first() {
    pos_ = 0;
    return valid();
  }
  bool seek(const std::string& k) {
    pos_ = 0;
    while (pos_ < entries_.size() &&
           (reverse_ ? entries_[pos_]->first > k : entries_[pos_]->first < k))
      ++pos_;
    return valid();
  }
  bool next() {
    if (!valid()) return false;
    ++pos_;
    return valid();
  }
  bool prev() {
    if (!valid()) return false;
    if (pos_ == 0) {
      pos_ = entries_.size();
      return false;
    }
    --pos_;
    return true;
  }
  bool valid() const { return pos_ < entries_.size(); }
  const std::pair<const std::string, std::string>& entry() const { return *entries_[pos_]; }

 private:
  bool reverse_;
  std::vector<const std::pair<const std::string, std::string>*> entries_;
  std::size_t pos_;
};

void require_same(bool ok, const Cursor& c, bool want, const ModelCursor& m,
                  const std::string& when) {
  BOOST_REQUIRE_MESSAGE(ok == want, when << ": cursor says " << ok << ", model says " << want);
  BOOST_REQUIRE_MESSAGE(c.valid() == want, when << ": valid() is " << c.valid());
  if (!want) return;
  BOOST_REQUIRE_MESSAGE(c.key() == m.entry().first, when << ": at '" << c.key().substr(0, 20)
                                                         << "', model at '"
                                                         << m.entry().first.substr(0, 20) << "'");
  BOOST_REQUIRE_MESSAGE(c.value() == m.entry().second,
                        when << ": wrong value at '" << m.entry().first.substr(0, 20) << "'");
}

enum class Move { kFirst, kSeek, kNext, kPrev };

// One cursor step on both the real cursor and the model, compared.
void step(Cursor& c, ModelCursor& m, Move mv, const std::string& key, const std::string& when) {
  bool ok = false;
  bool want = false;
  switch (mv) {
    case Move::kFirst:
      ok = sync_wait(c.first());
      want = m.first();
      break;
    case Move::kSeek:
      ok = sync_wait(c.seek(key));
      want = m.seek(key);
      break;
    case Move::kNext:
      ok = sync_wait(c.next());
      want = m.next();
      break;
    case Move::kPrev:
      ok = sync_wait(c.prev());
      want = m.prev();
      break;
  }
  require_same(ok, c, want, m, when);
}

// Even-numbered keys 0, 2, 4, ... so that odd ones fall between entries.
Model fill_even_keys(BlockingDatabase& db, std::mt19937_64& rng, int n, int overflow_percent) {
  Model model;
  for (int i = 0; i < n; ++i) {
    const std::string k = key_of(2 * i);
    const std::string v = static_cast<int>(rng() % 100) < overflow_percent
                              ? random_bytes(rng, 2001 + rng() % 12000)
                              : random_bytes(rng, rng() % 150);
    db.put(k, v);
    model[k] = v;
  }
  return model;
}

std::optional<std::string> random_bound(std::mt19937_64& rng, int n) {
  switch (rng() % 6) {
    case 0: return std::nullopt;
    case 1: return std::string();
    case 2: return std::string("z");
    default: return key_of(static_cast<int>(rng() % static_cast<std::uint64_t>(2 * n + 4)) - 2);
  }
}

}  // namespace

BOOST_DATA_TEST_CASE(cursor_random_walks_match_the_model, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed =
      corobtree::test::test_seed("cursor_random_walks_match_the_model " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("cursor.db"), cfg.options(t));
  const int n = 600;
  const Model model = fill_even_keys(db, rng, n, 3);
  require_valid(db, "built");
  const int sessions = corobtree::test::scaled(slow(cfg) ? 80 : 250, 20);
  for (int s = 0; s < sessions; ++s) {
    ScanOptions so;
    so.lower = random_bound(rng, n);
    so.upper = random_bound(rng, n);
    if (rng() % 3 == 0 && so.lower && so.upper && *so.upper < *so.lower)
      std::swap(so.lower, so.upper);
    so.reverse = rng() % 2 == 0;
    Cursor c = db.async().cursor(so);
    ModelCursor m(model, so);
    for (int i = 0; i < 30; ++i) {
      const auto r = rng() % 100;
      const Move mv = i == 0 || r < 5 ? Move::kFirst
                      : r < 15        ? Move::kSeek
                      : r < 60        ? Move::kNext
                                      : Move::kPrev;
      std::string key = key_of(static_cast<int>(rng() % static_cast<std::uint64_t>(2 * n + 4)) - 2);
      if (rng() % 10 == 0) key.push_back('\0');
      step(c, m, mv, key,
           "session " + std::to_string(s) + " move " + std::to_string(i) + " (seed " +
               std::to_string(seed) + ")");
    }
  }
}

// BlockingDatabase::scan(options, limit, out): one vector reused by scans of
// every length, forward and reverse, equals the owned scan and the model; it
// shrinks to what a scan found (nothing, for an empty range).
BOOST_DATA_TEST_CASE(blocking_scans_into_a_reused_vector, bdata::make(corobtree::test::db_matrix()),
                     cfg) {
  const auto seed = corobtree::test::test_seed("blocking_scans_into_a_reused_vector " + cfg.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("reuse.db"), cfg.options());
  Model model;
  for (int i = 0; i < 600; ++i) {
    const std::string k = key_of(2 * i);
    const std::string v =
        rng() % 100 == 0 ? random_bytes(rng, 3000) : random_bytes(rng, rng() % 90);
    db.put(k, v);
    model[k] = v;
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (int round = 0; round < 200; ++round) {
    ScanOptions so;
    int a = static_cast<int>(rng() % 1300);
    int b = static_cast<int>(rng() % 1300);
    if (b < a) std::swap(a, b);
    so.lower = key_of(a);
    so.upper = key_of(b);
    so.reverse = rng() % 4 == 0;
    const std::size_t limit = round % 10 == 0 ? SIZE_MAX : 1 + rng() % 120;
    std::vector<std::pair<std::string, std::string>> want;
    if (so.reverse) {
      for (auto it = model.lower_bound(*so.upper); it != model.begin() && want.size() < limit;) {
        --it;
        if (it->first < *so.lower) break;
        want.push_back(*it);
      }
    } else {
      for (auto it = model.lower_bound(*so.lower);
           it != model.end() && it->first < *so.upper && want.size() < limit; ++it) {
        want.push_back(*it);
      }
    }
    db.scan(so, limit, out);
    BOOST_REQUIRE_MESSAGE(out == want, "round " << round << " (seed " << seed << "): got "
                                                << out.size() << " want " << want.size());
    BOOST_REQUIRE(db.scan(so, limit) == want);
  }
}

BOOST_DATA_TEST_CASE(cursor_bounds_and_empty_ranges, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("bounds.db"), cfg.options(t));
  Model model;
  for (int i = 0; i < 200; i += 2) {
    db.put(key_of(i), "v" + std::to_string(i));
    model[key_of(i)] = "v" + std::to_string(i);
  }
  auto scan = [&db](std::optional<std::string> lower, std::optional<std::string> upper,
                    bool reverse, std::size_t limit = SIZE_MAX) {
    ScanOptions so;
    so.lower = std::move(lower);
    so.upper = std::move(upper);
    so.reverse = reverse;
    std::vector<std::string> keys;
    for (const auto& kv : db.scan(so, limit)) keys.push_back(kv.first);
    return keys;
  };
  auto range = [](int from, int to, bool reverse) {  // even keys in [from, to)
    std::vector<std::string> keys;
    for (int i = from; i < to; ++i) {
      if (i % 2 == 0) keys.push_back(key_of(i));
    }
    if (reverse) std::reverse(keys.begin(), keys.end());
    return keys;
  };
  // Lower bounds are inclusive, upper bounds exclusive, in both directions.
  BOOST_TEST(scan(key_of(10), key_of(20), false) == range(10, 20, false));
  BOOST_TEST(scan(key_of(10), key_of(20), true) == range(10, 20, true));
  BOOST_TEST(scan(key_of(11), key_of(21), false) == range(11, 21, false));
  BOOST_TEST(scan(key_of(11), key_of(21), true) == range(11, 21, true));
  BOOST_TEST(scan(std::nullopt, key_of(7), false) == range(0, 7, false));
  BOOST_TEST(scan(key_of(191), std::nullopt, true) == range(191, 200, true));
  BOOST_TEST(scan(std::nullopt, std::nullopt, true) == range(0, 200, true));
  BOOST_TEST(scan(std::nullopt, std::nullopt, false, 5) == range(0, 10, false));
  BOOST_TEST(scan(std::nullopt, std::nullopt, true, 3) == range(194, 200, true));
  BOOST_TEST(scan(std::nullopt, std::nullopt, false, 0).empty());
  // Empty ranges.
  for (bool reverse : {false, true}) {
    BOOST_TEST(scan(key_of(10), key_of(10), reverse).empty());          // lower == upper
    BOOST_TEST(scan(key_of(30), key_of(10), reverse).empty());          // lower > upper
    BOOST_TEST(scan(key_of(11), key_of(12), reverse).empty());          // no key in between
    BOOST_TEST(scan(std::string("z"), std::nullopt, reverse).empty());  // past the last key
    BOOST_TEST(scan(std::nullopt, std::string(), reverse).empty());     // before the first key
    BOOST_TEST(scan(std::nullopt, key_of(0), reverse).empty());
  }
  // Seek, and moving off either end.
  {
    ScanOptions so;
    so.lower = key_of(10);
    so.upper = key_of(20);
    Cursor c = db.async().cursor(so);
    BOOST_REQUIRE(sync_wait(c.seek(key_of(13))));
    BOOST_TEST(c.key() == key_of(14));
    BOOST_TEST(c.value() == "v14");
    BOOST_REQUIRE(sync_wait(c.seek(key_of(14))));
    BOOST_TEST(c.key() == key_of(14));
    BOOST_REQUIRE(sync_wait(c.seek(key_of(2))));  // below the range: its first key
    BOOST_TEST(c.key() == key_of(10));
    BOOST_TEST(!sync_wait(c.prev()));
    BOOST_TEST(!c.valid());
    BOOST_TEST(!sync_wait(c.next()));            // an invalid cursor stays invalid
    BOOST_TEST(!sync_wait(c.seek(key_of(19))));  // nothing in [19, 20)
    BOOST_REQUIRE(sync_wait(c.seek(key_of(18))));
    BOOST_TEST(!sync_wait(c.next()));
    BOOST_TEST(!c.valid());
  }
  {
    ScanOptions so;
    so.lower = key_of(10);
    so.upper = key_of(20);
    so.reverse = true;
    Cursor c = db.async().cursor(so);
    BOOST_REQUIRE(sync_wait(c.first()));
    BOOST_TEST(c.key() == key_of(18));
    BOOST_REQUIRE(sync_wait(c.seek(key_of(13))));  // reverse: the last key <= 13
    BOOST_TEST(c.key() == key_of(12));
    BOOST_REQUIRE(sync_wait(c.next()));
    BOOST_TEST(c.key() == key_of(10));
    BOOST_TEST(!sync_wait(c.next()));
    BOOST_REQUIRE(sync_wait(c.seek(key_of(99))));  // above the range: its last key
    BOOST_TEST(c.key() == key_of(18));
    BOOST_TEST(!sync_wait(c.prev()));  // reverse prev walks upwards, out of the range
    BOOST_TEST(!sync_wait(c.seek(key_of(9))));
  }
  {
    corobtree::test::TempDir empty_dir;
    auto empty = BlockingDatabase::open(empty_dir.file("empty.db"), cfg.options(t));
    for (bool reverse : {false, true}) {
      ScanOptions so;
      so.reverse = reverse;
      Cursor c = empty.async().cursor(so);
      BOOST_TEST(!sync_wait(c.first()));
      BOOST_TEST(!sync_wait(c.seek("a")));
      BOOST_TEST(!sync_wait(c.next()));
      BOOST_TEST(!sync_wait(c.prev()));
      BOOST_TEST(empty.scan(so).empty());
    }
  }
}

// next/prev turning around right at the boundary between two leaves, both directions.
BOOST_DATA_TEST_CASE(cursor_turns_around_at_leaf_boundaries, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed =
      corobtree::test::test_seed("cursor_turns_around_at_leaf_boundaries " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("turn.db"), cfg.options(t));
  const Model model = fill_even_keys(db, rng, 400, 5);
  require_valid(db, "built");
  const Shape shape = read_shape(db);
  BOOST_REQUIRE_GE(shape.leaves.size(), 4u);
  const std::size_t boundaries = std::min<std::size_t>(shape.leaves.size() - 1, 25);
  for (std::size_t b = 0; b < boundaries; ++b) {
    const std::size_t i = b * (shape.leaves.size() - 1) / boundaries;
    const std::string& last = shape.leaves[i].keys.back();
    const std::string& first = shape.leaves[i + 1].keys.front();
    const std::string when =
        "boundary after leaf " + std::to_string(i) + " (seed " + std::to_string(seed) + ")";
    for (bool reverse : {false, true}) {
      ScanOptions so;
      so.reverse = reverse;
      Cursor c = db.async().cursor(so);
      ModelCursor m(model, so);
      // Start on the near side of the boundary, cross it, come back, and cross again.
      step(c, m, Move::kSeek, reverse ? first : last, when);
      const Move fwd = Move::kNext;
      const Move back = Move::kPrev;
      for (Move mv : {fwd, back, back, fwd, fwd, fwd, back, back, back, fwd})
        step(c, m, mv, {}, when);
      BOOST_REQUIRE(c.valid());
    }
  }
}

BOOST_DATA_TEST_CASE(cursor_over_overflow_values, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed = corobtree::test::test_seed("cursor_over_overflow_values " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("overflow.db"), cfg.options(t));
  const Model model =
      fill_even_keys(db, rng, slow(cfg) ? 120 : 250, 70);  // values > 2000 bytes mostly
  const ValidationReport r = db.validate();
  BOOST_REQUIRE_MESSAGE(r.ok(), r.summary());
  BOOST_REQUIRE_GT(r.overflow_pages, 0u);
  for (bool reverse : {false, true}) {
    ScanOptions so;
    so.reverse = reverse;
    Cursor c = db.async().cursor(so);
    ModelCursor m(model, so);
    step(c, m, Move::kFirst, {}, "full walk");
    std::size_t seen = 1;
    while (c.valid()) {
      step(c, m, Move::kNext, {}, "full walk (seed " + std::to_string(seed) + ")");
      if (c.valid()) ++seen;
    }
    BOOST_REQUIRE_EQUAL(seen, model.size());
    // Back and forth through a bounded range.
    so.lower = key_of(41);
    so.upper = key_of(160);
    Cursor b = db.async().cursor(so);
    ModelCursor mb(model, so);
    step(b, mb, Move::kFirst, {}, "bounded");
    for (int i = 0; i < 200; ++i) {
      step(b, mb, rng() % 3 == 0 ? Move::kPrev : Move::kNext, {},
           "bounded walk (seed " + std::to_string(seed) + ")");
      if (!b.valid())
        step(b, mb, Move::kSeek, key_of(static_cast<int>(rng() % 170)), "bounded reseek");
    }
  }
  require_matches(db, model, "overflow values by scan");
}

// ---- bulk load -------------------------------------------------------------------

BOOST_DATA_TEST_CASE(bulk_load_50k_sorted_pairs, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed = corobtree::test::test_seed("bulk_load_50k_sorted_pairs " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("bulk.db");
  // 50k everywhere but with t = 3 on the configurations doing real I/O
  // (tall trees of 5-key nodes make every full scan and validate() slow there).
  const int n = corobtree::test::scaled(t > 0 && slow(cfg) ? 10000 : 50000, 2500);
  Pairs pairs;
  Model model;
  for (int i = 0; i < n; ++i) {
    std::string k = key_of(3 * i);
    std::string v = rng() % 1000 == 0 ? random_bytes(rng, 2500 + rng() % 3000)
                                      : random_bytes(rng, 8 + rng() % 32);
    model[k] = v;
    pairs.emplace_back(std::move(k), std::move(v));
  }
  auto db = BlockingDatabase::open(path, cfg.options(t));
  db.bulk_load(pairs);
  BOOST_REQUIRE_EQUAL(db.count(), static_cast<std::uint64_t>(n));
  const ValidationReport r = db.validate();
  BOOST_TEST_MESSAGE(label(cfg, t) << " bulk load: " << r.summary());
  BOOST_REQUIRE_MESSAGE(r.ok(), r.summary());
  BOOST_REQUIRE_EQUAL(r.keys, static_cast<std::uint64_t>(n));
  if (t == 0) {
    BOOST_REQUIRE_MESSAGE(r.fill_factor > 0.9,
                          "fill factor " << r.fill_factor << " after bulk load");
  } else {
    // Classic bounds: leaves packed to 2t-1 keys.
    BOOST_REQUIRE_EQUAL(r.leaves, static_cast<std::uint64_t>((n + 2 * t - 2) / (2 * t - 1)));
  }
  for (int i = 0; i < (slow(cfg) ? 300 : 1500); ++i) {
    const int id = static_cast<int>(rng() % (3 * n + 3));
    require_get(db, model, key_of(id), "get after bulk load (seed " + std::to_string(seed) + ")");
  }
  require_get(db, model, pairs.front().first, "first key");
  require_get(db, model, pairs.back().first, "last key");
  require_matches(db, model, "after bulk load");
  // The packed tree takes ordinary writes afterwards.
  for (int i = 0; i < 2000; ++i) {
    const std::string k = key_of(static_cast<int>(rng() % (3 * n)));
    if (rng() % 2 == 0) {
      const std::string v = random_bytes(rng, rng() % 60);
      db.put(k, v);
      model[k] = v;
    } else {
      BOOST_REQUIRE_EQUAL(db.erase(k), model.erase(k) == 1);
    }
  }
  require_valid(db, "writes after bulk load (seed " + std::to_string(seed) + ")");
  db.close();
  auto again = BlockingDatabase::open(path, cfg.options());
  require_matches(again, model, "after reopen");
}

BOOST_DATA_TEST_CASE(bulk_load_rejects_bad_input, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("bulkbad.db"), cfg.options(t));
  Pairs sorted;
  for (int i = 0; i < 300; ++i) sorted.emplace_back(key_of(i), "v" + std::to_string(i));
  Pairs unsorted = sorted;
  std::swap(unsorted[100], unsorted[200]);
  Pairs duplicate = sorted;
  duplicate[151].first = duplicate[150].first;
  Pairs oversize = sorted;
  oversize[299].first = key_of(299) + std::string(db.max_key_size(), 'x');
  for (const Pairs* bad : {&unsorted, &duplicate, &oversize}) {
    BOOST_REQUIRE(error_code_of([&] { db.bulk_load(*bad); }) == ErrorCode::kInvalidArgument);
    BOOST_REQUIRE_EQUAL(db.count(), 0u);
    BOOST_REQUIRE(db.scan().empty());
    require_valid(db, "after a rejected bulk load");
  }
  const Pairs nothing;
  db.bulk_load(nothing);  // nothing to load is fine
  BOOST_REQUIRE_EQUAL(db.count(), 0u);
  db.put("existing", "1");
  BOOST_REQUIRE(error_code_of([&] { db.bulk_load(sorted); }) == ErrorCode::kInvalidArgument);
  BOOST_REQUIRE_EQUAL(db.count(), 1u);
  BOOST_REQUIRE(db.get("existing") == std::optional<std::string>("1"));
  BOOST_REQUIRE(!db.get(key_of(0)));
  require_valid(db, "after bulk load into a non-empty database");
  // Once empty again, bulk load works.
  BOOST_REQUIRE(db.erase("existing"));
  db.bulk_load(sorted);
  BOOST_REQUIRE_EQUAL(db.count(), sorted.size());
  require_valid(db, "bulk load into an emptied database");
  const Model model(sorted.begin(), sorted.end());
  require_matches(db, model, "bulk load into an emptied database");
}

// ---- keys and values at the limits -----------------------------------------------

// The smallest entries there are, alone in the root leaf, across a reopen.
BOOST_DATA_TEST_CASE(smallest_entries_survive_reopen, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  corobtree::test::TempDir dir;
  const std::string path = dir.file("tiny.db");
  const std::pair<std::string, std::string> entries[] = {
      {"", ""}, {"x", ""}, {"", "y"}, {"xy", ""}};
  for (const auto& [k, v] : entries) {
    const std::string what = "('" + k + "', '" + v + "')";
    {
      auto db = BlockingDatabase::open(path, cfg.options(t));
      BOOST_REQUIRE_EQUAL(db.count(), 0u);
      db.put(k, v);
      BOOST_REQUIRE(db.get(k) == std::optional<std::string>(v));
      db.close();
    }
    auto db = BlockingDatabase::open(path, cfg.options(t));
    BOOST_REQUIRE_EQUAL(db.count(), 1u);
    std::optional<std::string> got;
    try {
      got = db.get(k);
    } catch (const Error& e) {
      BOOST_FAIL(what << " alone in the root leaf cannot be read after a reopen: " << e.what());
    }
    BOOST_REQUIRE_MESSAGE(got == std::optional<std::string>(v), what << " lost across a reopen");
    require_valid(db, what + " after a reopen");
    BOOST_REQUIRE(db.erase(k));
  }
}

// Empty keys and values next to ordinary ones (the tiniest entries alone in a
// page are covered by smallest_entries_survive_reopen above).
BOOST_DATA_TEST_CASE(empty_keys_and_values, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  corobtree::test::TempDir dir;
  const std::string path = dir.file("emptykv.db");
  auto db = BlockingDatabase::open(path, cfg.options(t));
  BOOST_REQUIRE(!db.get(""));
  db.put("b", "bee");
  db.put("", "");
  BOOST_REQUIRE(db.get("") == std::optional<std::string>(""));
  BOOST_REQUIRE_EQUAL(db.count(), 2u);
  db.put("a", "");
  db.put("", "empty key");
  BOOST_REQUIRE(db.get("") == std::optional<std::string>("empty key"));
  BOOST_REQUIRE(db.get("a") == std::optional<std::string>(""));
  Model model{{"", "empty key"}, {"a", ""}, {"b", "bee"}};
  require_matches(db, model, "empty key first");
  ScanOptions rev;
  rev.reverse = true;
  const Pairs r = db.scan(rev);
  BOOST_REQUIRE_EQUAL(r.size(), 3u);
  BOOST_REQUIRE(r.back().first.empty());
  ScanOptions from_empty;
  from_empty.lower = std::string();
  from_empty.upper = std::string("a");
  const Pairs only = db.scan(from_empty);
  BOOST_REQUIRE_EQUAL(only.size(), 1u);
  BOOST_REQUIRE(only[0].first.empty());
  require_valid(db, "with an empty key");
  BOOST_REQUIRE(db.erase(""));
  model.erase("");
  BOOST_REQUIRE(!db.get(""));
  BOOST_REQUIRE(db.get("a") == std::optional<std::string>(""));
  BOOST_REQUIRE_EQUAL(db.count(), 2u);
  require_valid(db, "after erasing the empty key");
  // In a tree of several levels, with many empty values, across a reopen.
  for (int i = 0; i < 400; ++i) {
    const std::string v =
        i % 2 == 0 ? std::string() : std::string(static_cast<std::size_t>(i % 50), 'e');
    db.put(key_of(i), v);
    model[key_of(i)] = v;
  }
  db.put("", "");
  model[""] = "";
  BOOST_REQUIRE_GE(db.stats().height, 2u);
  require_valid(db, "many empty values");
  db.close();
  db = BlockingDatabase::open(path, cfg.options());
  require_matches(db, model, "empty keys and values after a reopen");
  require_get(db, model, "", "empty key after a reopen");
  require_valid(db, "empty keys and values after a reopen");
}

BOOST_DATA_TEST_CASE(oversize_key_is_rejected, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  corobtree::test::TempDir dir;
  auto db = BlockingDatabase::open(dir.file("bigkey.db"), cfg.options(t));
  BOOST_CHECK_MESSAGE(
      db.max_key_size() == 992u,  // as documented in engine/btree/btree.h
      "max_key_size() is " << db.max_key_size() << ", btree.h documents 992 for 4 KiB pages");
  Model model;
  for (int i = 0; i < 50; ++i) {
    db.put(key_of(i), "v");
    model[key_of(i)] = "v";
  }
  const std::string longest = std::string(db.max_key_size() - 1, 'm') + "!";
  const std::string too_long(db.max_key_size() + 1, 'm');
  const std::string huge(10 * db.max_key_size(), 'h');
  const auto pages = db.stats().pages;
  for (const std::string* k : {&too_long, &huge}) {
    BOOST_TEST(static_cast<int>(error_code_of([&] { db.put(*k, "x"); })) ==
               static_cast<int>(ErrorCode::kInvalidArgument));
    BOOST_TEST(static_cast<int>(error_code_of([&] { db.erase(*k); })) ==
               static_cast<int>(ErrorCode::kInvalidArgument));
    BOOST_TEST(static_cast<int>(error_code_of([&] { (void)db.get(*k); })) ==
               static_cast<int>(ErrorCode::kInvalidArgument));
    corobtree::WriteBatch batch;
    batch.put("batch-a", "1");
    batch.put(*k, "2");
    batch.erase(key_of(3));
    BOOST_TEST(static_cast<int>(error_code_of([&] { db.write(batch); })) ==
               static_cast<int>(ErrorCode::kInvalidArgument));
  }
  BOOST_REQUIRE_EQUAL(db.stats().pages, pages);
  require_matches(db, model, "after rejected oversize keys");  // the batch left no trace either
  require_valid(db, "after rejected oversize keys");
  // The longest allowed key works, with an inline and with an overflow value.
  db.put(longest, "short");
  model[longest] = "short";
  require_get(db, model, longest, "longest key");
  const std::string big(5000, 'B');
  db.put(longest, big);
  model[longest] = big;
  require_get(db, model, longest, "longest key, overflow value");
  for (int i = 0; i < 20; ++i) {
    const std::string k = std::to_string(i) + longest.substr(2);
    db.put(k, "long" + std::to_string(i));
    model[k] = "long" + std::to_string(i);
  }
  require_valid(db, "with maximal keys");
  require_matches(db, model, "with maximal keys");
}

BOOST_DATA_TEST_CASE(multi_megabyte_values_round_trip, matrix_x_degrees(), cfg, degree) {
  const std::uint32_t t = degree;  // minimum degree: 3 (classic bounds) or 0 (byte-filled)
  const auto seed = corobtree::test::test_seed("multi_megabyte_values_round_trip " + label(cfg, t));
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("bigvalue.db");
  Model model;
  {
    auto db = BlockingDatabase::open(path, cfg.options(t));
    for (std::size_t size :
         {std::size_t{1} << 20, (std::size_t{2} << 20) + 17, (std::size_t{3} << 20) - 3}) {
      const std::string k = "big" + std::to_string(size);
      const std::string v = random_bytes(rng, size);
      db.put(k, v);
      model[k] = v;
      db.put("small" + std::to_string(size), "s");
      model["small" + std::to_string(size)] = "s";
      require_get(db, model, k, "multi-MB value (seed " + std::to_string(seed) + ")");
    }
    require_valid(db, "with multi-MB values");
    // Replacing one with a small value frees its chain, and a big value reuses it.
    const std::string k = "big" + std::to_string(std::size_t{1} << 20);
    db.put(k, "tiny");
    model[k] = "tiny";
    BOOST_REQUIRE_GE(db.stats().free_pages, (std::size_t{1} << 20) / corobtree::kDefaultPageSize);
    const auto pages = db.stats().pages;
    const std::string v = random_bytes(rng, std::size_t{1} << 20);
    db.put(k, v);
    model[k] = v;
    BOOST_REQUIRE_EQUAL(db.stats().pages, pages);
    require_valid(db, "after replacing multi-MB values");
    db.close();
  }
  auto db = BlockingDatabase::open(path, cfg.options());
  for (const auto& [k, v] : model) require_get(db, model, k, "after reopen");
  require_matches(db, model, "after reopen");
  for (const auto& [k, v] : model) BOOST_REQUIRE(db.erase(k));
  require_valid(db, "after erasing multi-MB values");
  BOOST_REQUIRE_EQUAL(db.count(), 0u);
}

// ---- eviction keeps the tree's upper levels ---------------------------------

// A full scan of a tree many times the pool reads every leaf through the
// engine (none is cached); plain LRU would then have evicted the root and the
// inner pages, read only at the scan's start. With leaf-averse eviction
// (LruReplacer's kept class, docs/engine.md "Inner pages stay") a lookup
// afterwards misses only its leaf: exactly one disk read. Then random gets,
// each at most one miss, and the tree still matches after reopening.
BOOST_DATA_TEST_CASE(a_scan_keeps_the_inner_pages, bdata::make(corobtree::test::all_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  const std::string path = dir.file("keep.db");
  corobtree::test::DbConfig cfg{backend, 32};
  const int n = 8000;
  {
    auto db = BlockingDatabase::open(path, cfg.options());
    corobtree::WriteBatch batch;
    for (int i = 0; i < n; ++i)
      batch.put(key_of(i), std::string(100, static_cast<char>('a' + i % 26)));
    db.write(batch);
    db.close();
  }
  auto db = BlockingDatabase::open(path, cfg.options());
  const corobtree::DatabaseStats before_scan = db.stats();
  BOOST_REQUIRE_GE(before_scan.height, 3u);  // a root and inner pages above the leaves
  BOOST_REQUIRE_GT(before_scan.pages, 4 * cfg.pool_pages);
  BOOST_REQUIRE_EQUAL(db.scan({}).size(), static_cast<std::size_t>(n));
  const std::uint64_t misses = db.stats().pool.misses;
  BOOST_REQUIRE(db.get(key_of(0)) == std::string(100, 'a'));  // the first leaf: evicted long ago
  BOOST_TEST(db.stats().pool.misses - misses == 1u, "a lookup after the scan missed "
                                                        << db.stats().pool.misses - misses
                                                        << " pages, not only its leaf");
  std::mt19937_64 rng(corobtree::test::test_seed("a_scan_keeps_the_inner_pages"));
  for (int i = 0; i < 200; ++i) {
    const int k = static_cast<int>(rng() % n);
    const std::uint64_t m = db.stats().pool.misses;
    BOOST_REQUIRE(db.get(key_of(k)) == std::string(100, static_cast<char>('a' + k % 26)));
    BOOST_REQUIRE_LE(db.stats().pool.misses - m, 1u);
  }
  require_valid(db, "after the scan and the gets");
}
