// salvage (include/corobtree/salvage.h): a database of 100k keys (scaled by
// COROBTREE_TEST_SCALE) with inline and overflow values, some keys deleted
// after a checkpoint freed pages, then N random pages damaged (N = 1, 10,
// 50). Before damaging, the intact file is read page by page to learn which
// leaf holds each key and which overflow pages its value uses. Salvage must
// recover every key whose leaf and overflow chain are intact, with its value,
// and nothing else (no key or value that was never written, no deleted key);
// the output validates. Also: an undamaged database (with a log to replay)
// salvages to what open recovers; a checkpoint cut short is finished from the
// log's images; garbage, empty, truncated files and a wrong page size give
// errors or partial results, never a crash. Both backends. The damage seeds
// are fixed and printed; `-- --seed=N` or COROBTREE_SEED=N replaces them.
#define BOOST_TEST_MODULE salvage
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/salvage.h>
#include <corobtree/sync_wait.h>
#include "engine/format/page_format.h"
#include "io/forwarding_disk.h"
#include "tests/support/backends.h"
#include "tests/support/file_bytes.h"
#include "tests/support/random.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::BlockId;
using corobtree::BlockingDatabase;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::IoBackend;
using corobtree::PageType;
using corobtree::SalvageReport;
using corobtree::test::read_file_bytes;
using corobtree::test::TempDir;
using corobtree::test::write_file_bytes;

namespace {

using Model = std::map<std::string, std::string>;
using Pairs = std::vector<std::pair<std::string, std::string>>;
constexpr std::uint32_t kPage = corobtree::kDefaultPageSize;

using corobtree::test::BackendConfig;
// Both backends, buffered (salvage reads buffered whatever the database used).
const std::vector<BackendConfig> kBackends = {{IoBackend::kUring, false},
                                              {IoBackend::kPread, false}};

// Files live in /dev/shm when it exists: fsync is free there, and these
// tests test what salvage reads, not the disk.

corobtree::Options options_for(IoBackend b) {
  corobtree::Options o;
  o.backend = b;
  o.durability = corobtree::Durability::kRelaxed;  // damage is done to closed files
  return o;
}

corobtree::SalvageOptions salvage_options(IoBackend b) {
  corobtree::SalvageOptions o;
  o.backend = b;
  return o;
}

// The fixed seed `fixed`, unless --seed=N or COROBTREE_SEED=N asks for
// another; printed either way.
std::uint64_t damage_seed(std::uint64_t fixed, const std::string& what) {
  auto& master = boost::unit_test::framework::master_test_suite();
  bool given = std::getenv("COROBTREE_SEED") != nullptr;
  for (int i = 1; i < master.argc; ++i) {
    given = given || std::string_view(master.argv[i]).rfind("--seed=", 0) == 0;
  }
  if (given) return corobtree::test::test_seed(what);
  std::cout << "[seed] " << what << ": " << fixed << "  (replay with -- --seed=" << fixed << ")"
            << std::endl;
  return fixed;
}

Model read_all(const std::string& path, IoBackend b) {
  auto db = BlockingDatabase::open(path, options_for(b));
  const auto report = db.validate();
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  const Pairs all = db.scan();
  db.close();
  return Model(all.begin(), all.end());
}

// Where each key of an intact file lives: its leaf and its overflow pages.
struct Home {
  BlockId leaf;
  std::vector<BlockId> overflow;
};

struct FileMap {
  std::map<std::string, Home> homes;
  std::map<BlockId, PageType> types;  // every page but the meta pages
};

// Reads the intact file page by page (it is the test's own, so a chain is
// followed without more checks than a hop limit).
FileMap map_file(const std::string& bytes) {
  FileMap m;
  const std::uint64_t pages = bytes.size() / kPage;
  auto page = [&](BlockId id) {
    return reinterpret_cast<const std::byte*>(bytes.data()) + id * kPage;
  };
  for (BlockId id = 2; id < pages; ++id) {
    const std::byte* d = page(id);
    corobtree::page::verify(id, std::span<const std::byte>(d, kPage), "intact");
    m.types[id] = corobtree::page::type(d);
    if (m.types[id] != PageType::kLeaf) continue;
    const std::uint32_t n = corobtree::PageHeader::SlotCount::get(d);
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint32_t off = corobtree::le::load<std::uint16_t>(d, 48 + 2 * i);
      const std::byte* cell = d + off;
      const std::uint32_t klen = corobtree::LeafCell::KeyLength::get(cell);
      const std::string key(reinterpret_cast<const char*>(cell + 8), klen);
      Home h{id, {}};
      if ((corobtree::LeafCell::Flags::get(cell) & 1) != 0) {
        BlockId o = corobtree::le::load<std::uint64_t>(cell, 8 + klen);
        for (int hops = 0; o != corobtree::kInvalidBlockId && hops < 100000; ++hops) {
          h.overflow.push_back(o);
          o = corobtree::PageHeader::Link0::get(page(o));
        }
      }
      BOOST_REQUIRE_MESSAGE(m.homes.emplace(key, h).second, "a key in two leaves");
    }
  }
  return m;
}

// 100k keys (scaled): 88% short values, 11% up to 900 bytes, 1% overflow.
// Bulk-loaded, checkpointed; then 10% of the keys erased and 1% rewritten
// (freeing leaves and overflow chains), and closed (a checkpoint writes the
// freed pages as free pages).
Model build(const std::string& path, IoBackend b, std::mt19937_64& rng) {
  Model model;
  const int n = corobtree::test::scaled(100000, 2000);
  while (static_cast<int>(model.size()) < n) {
    std::string key = corobtree::test::random_bytes(rng, 6 + rng() % 20);
    const std::uint64_t r = rng() % 100;
    const std::size_t vlen = r < 88   ? 4 + rng() % 60
                             : r < 99 ? 100 + rng() % 800
                                      : 1100 + rng() % 9000;
    model[std::move(key)] = corobtree::test::random_bytes(rng, vlen);
  }
  auto db = BlockingDatabase::open(path, options_for(b));
  db.bulk_load(Pairs(model.begin(), model.end()));
  db.checkpoint();
  // A contiguous 5% of the keys (whole leaves freed), then 5% at random.
  std::vector<std::string> keys;
  for (const auto& kv : model) keys.push_back(kv.first);
  std::vector<std::string> erased(keys.begin() + static_cast<long>(keys.size() * 2 / 5),
                                  keys.begin() + static_cast<long>(keys.size() * 9 / 20));
  keys.erase(keys.begin() + static_cast<long>(keys.size() * 2 / 5),
             keys.begin() + static_cast<long>(keys.size() * 9 / 20));
  std::shuffle(keys.begin(), keys.end(), rng);
  erased.insert(erased.end(), keys.end() - static_cast<long>(keys.size() / 20), keys.end());
  keys.resize(keys.size() - keys.size() / 20);
  // 1% rewritten first (every overflow value among them frees its chain),
  // so that the pages the erases free stay free.
  corobtree::WriteBatch batch;
  for (std::size_t i = 0; i < keys.size() / 100; ++i) {
    const std::string v = corobtree::test::random_bytes(rng, rng() % 2 ? 20 : 3000);
    batch.put(keys[i], v);
    model[keys[i]] = v;
  }
  db.write(batch);
  batch = corobtree::WriteBatch();
  for (const std::string& k : erased) {
    batch.erase(k);
    model.erase(k);
    if (batch.size() == 1000) {
      db.write(batch);
      batch = corobtree::WriteBatch();
    }
  }
  db.write(batch);
  const auto report = db.validate();
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  BOOST_REQUIRE_GT(db.stats().free_pages, 0u);
  BOOST_REQUIRE_GT(report.overflow_pages, 0u);
  db.close();
  return model;
}

// Every pair of `out` is in `model` with its value.
void require_subset(const Model& out, const Model& model) {
  for (const auto& [k, v] : out) {
    const auto it = model.find(k);
    BOOST_REQUIRE_MESSAGE(it != model.end(), "salvage made up (or resurrected) a key");
    BOOST_REQUIRE_MESSAGE(it->second == v, "salvage recovered a wrong value");
  }
}

BOOST_DATA_TEST_CASE(damaged_pages_lose_only_their_keys, bdata::make(kBackends), config) {
  const IoBackend backend = config.backend;
  TempDir dir(corobtree::test::fast_temp_base());
  std::mt19937_64 build_rng(20261127);
  const std::string intact = dir.file("intact.db");
  const Model model = build(intact, backend, build_rng);
  const std::string bytes = read_file_bytes(intact);
  const FileMap map = map_file(bytes);
  BOOST_REQUIRE_EQUAL(map.homes.size(), model.size());
  const std::uint64_t pages = bytes.size() / kPage;

  // Undamaged: everything, and the report says so.
  {
    const std::string out = dir.file("clean-out.db");
    const SalvageReport r = corobtree::salvage_blocking(intact, out, salvage_options(backend));
    BOOST_TEST_MESSAGE("undamaged:\n" << r.summary());
    BOOST_TEST(r.complete());
    BOOST_TEST(r.keys_recovered == model.size());
    BOOST_TEST(r.leaves_orphan == 0u);
    BOOST_TEST(r.pages == pages);
    BOOST_TEST((read_all(out, backend) == model));
  }

  // One inner page: its leaves become orphans, and every key comes back.
  {
    std::mt19937_64 rng(damage_seed(999, "damage of an inner page"));
    std::vector<BlockId> inner;
    for (const auto& [id, t] : map.types) {
      if (t == PageType::kInner) inner.push_back(id);
    }
    BOOST_REQUIRE(!inner.empty());
    const BlockId victim = inner[rng() % inner.size()];
    std::string broken = bytes;
    broken[victim * kPage + 100 + rng() % (kPage - 100)] ^= 0x5a;
    const std::string path = dir.file("inner.db");
    const std::string out = dir.file("inner-out.db");
    write_file_bytes(path, broken);
    const SalvageReport r = corobtree::salvage_blocking(path, out, salvage_options(backend));
    BOOST_TEST_MESSAGE("inner page " << victim << " damaged:\n" << r.summary());
    BOOST_TEST(r.pages_unreadable == 1u);
    BOOST_TEST(r.leaves_orphan > 0u);
    BOOST_TEST(!r.complete());
    BOOST_TEST(r.keys_recovered == model.size());
    BOOST_TEST((read_all(out, backend) == model));
    std::cout << "salvage " << corobtree::backend_name(backend)
              << ", inner page damaged: " << r.keys_recovered << " of " << model.size()
              << " keys recovered, " << r.leaves_orphan << " orphan leaves" << std::endl;
  }

  for (const std::uint64_t n : {std::uint64_t{1}, std::uint64_t{10}, std::uint64_t{50}}) {
    std::mt19937_64 rng(damage_seed(1000 + n, "damage of " + std::to_string(n) + " pages"));
    std::set<BlockId> damaged;
    while (damaged.size() < std::min<std::uint64_t>(n, pages)) damaged.insert(rng() % pages);
    std::string broken = bytes;
    for (const BlockId id : damaged) {
      for (std::uint64_t flips = 1 + rng() % 4; flips > 0; --flips) {
        broken[id * kPage + rng() % kPage] ^= static_cast<char>(1 + rng() % 255);
      }
    }
    const std::string path = dir.file("damaged" + std::to_string(n) + ".db");
    const std::string out = dir.file("out" + std::to_string(n) + ".db");
    write_file_bytes(path, broken);
    const SalvageReport r = corobtree::salvage_blocking(path, out, salvage_options(backend));
    BOOST_TEST_MESSAGE(n << " damaged pages:\n" << r.summary());

    // What must come back: keys whose leaf and overflow pages are intact.
    std::uint64_t recoverable = 0;
    std::uint64_t lost_overflow = 0;
    bool lost_tree_page = false;
    for (const BlockId id : damaged) {
      const auto t = map.types.find(id);
      if (t != map.types.end() && t->second != PageType::kFree) lost_tree_page = true;
    }
    const Model got = read_all(out, backend);
    require_subset(got, model);
    for (const auto& [key, home] : map.homes) {
      if (damaged.count(home.leaf)) continue;
      const bool chain_ok = std::none_of(home.overflow.begin(), home.overflow.end(),
                                         [&](BlockId o) { return damaged.count(o) > 0; });
      if (!chain_ok) {
        ++lost_overflow;
        BOOST_TEST(!got.count(key));
        continue;
      }
      ++recoverable;
      BOOST_TEST_REQUIRE(got.count(key), "a key of an intact leaf was not recovered");
    }
    BOOST_TEST(got.size() == recoverable);
    BOOST_TEST(r.keys_recovered == recoverable);
    BOOST_TEST(r.keys_lost_overflow == lost_overflow);
    // Keys of damaged leaves, as the meta page's count tells (both meta pages
    // describe the closed file, so any one that survived counts right).
    if (r.meta_pages_valid > 0) {
      BOOST_TEST(r.keys_missing == model.size() - recoverable - lost_overflow);
    }
    const auto tree_pages = static_cast<std::uint64_t>(
        std::count_if(damaged.begin(), damaged.end(), [](BlockId id) { return id >= 2; }));
    BOOST_TEST(r.pages_unreadable == tree_pages);
    if (lost_tree_page) BOOST_TEST(!r.complete());
    std::cout << "salvage " << corobtree::backend_name(backend) << ", " << n
              << " damaged pages: " << recoverable << " of " << model.size() << " keys recovered, "
              << model.size() - recoverable << " lost (" << lost_overflow
              << " to broken overflow chains), " << r.leaves_orphan << " orphan leaves"
              << std::endl;
  }
}

// A data file that fails every write once armed (the log is not wrapped):
// a checkpoint then stops after its images and checkpoint record are durable
// in the log, before the data file changes.
class FailDataWrites final : public corobtree::ForwardingDiskManager {
 public:
  FailDataWrites(std::unique_ptr<DiskManager> inner, std::shared_ptr<bool> armed)
      : ForwardingDiskManager(std::move(inner)), armed_(std::move(armed)) {}
  corobtree::Task<void> write_block(BlockId id, std::span<const std::byte> data) override {
    if (*armed_) throw Error(ErrorCode::kIoError, "injected write failure");
    return inner().write_block(id, data);
  }

 private:
  std::shared_ptr<bool> armed_;
};

void copy_file(const std::string& from, const std::string& to) {
  write_file_bytes(to, read_file_bytes(from));
}

Model random_model(std::mt19937_64& rng, int n) {
  Model m;
  while (static_cast<int>(m.size()) < n) {
    const std::size_t vlen = rng() % 30 == 0 ? 2000 + rng() % 6000 : 1 + rng() % 200;
    m[corobtree::test::random_bytes(rng, 4 + rng() % 12)] =
        corobtree::test::random_bytes(rng, vlen);
  }
  return m;
}

// Committed transactions in the log (the database dropped without close(),
// as a crash leaves it) come back; on an undamaged file salvage gives what
// open recovers; with a damaged leaf, its keys come back only if the log
// rewrote them. Salvage changes neither file.
BOOST_DATA_TEST_CASE(log_transactions_are_replayed, bdata::make(kBackends), config) {
  const IoBackend backend = config.backend;
  TempDir dir(corobtree::test::fast_temp_base());
  std::mt19937_64 rng(damage_seed(77, "log transactions"));
  const std::string path = dir.file("a.db");
  Model model = random_model(rng, corobtree::test::scaled(4000, 500));
  {
    auto db = BlockingDatabase::open(path, options_for(backend));
    db.bulk_load(Pairs(model.begin(), model.end()));
    db.close();
  }
  const FileMap map = map_file(read_file_bytes(path));
  std::set<std::string> touched;
  std::uint64_t txns = 0;
  {
    std::unique_ptr<corobtree::Database> db =
        corobtree::sync_wait(corobtree::Database::open(path, options_for(backend)));
    for (int i = 0; i < 150; ++i, ++txns) {  // new keys and overwrites
      std::string k =
          rng() % 2 ? corobtree::test::random_bytes(rng, 10)
                    : std::next(model.begin(), static_cast<long>(rng() % model.size()))->first;
      const std::string v = corobtree::test::random_bytes(rng, rng() % 10 == 0 ? 5000 : 30);
      corobtree::sync_wait(db->put(k, v));
      model[k] = v;
      touched.insert(k);
    }
    for (int i = 0; i < 100; ++i, ++txns) {
      const std::string k =
          std::next(model.begin(), static_cast<long>(rng() % model.size()))->first;
      BOOST_REQUIRE(corobtree::sync_wait(db->erase(k)));
      model.erase(k);
      touched.insert(k);
    }
    db.reset();  // no close(): the log keeps the commits
  }
  BOOST_REQUIRE(std::filesystem::exists(path + "-wal"));
  const std::string data_before = read_file_bytes(path);
  const std::string log_before = read_file_bytes(path + "-wal");
  const std::string log2_before = read_file_bytes(path + "-wal2");

  const SalvageReport r =
      corobtree::salvage_blocking(path, dir.file("out.db"), salvage_options(backend));
  BOOST_TEST_MESSAGE("undamaged, with a log:\n" << r.summary());
  BOOST_TEST(r.complete());
  BOOST_TEST(r.log_used);
  BOOST_TEST(r.log_transactions_applied == txns);
  const Model salvaged = read_all(dir.file("out.db"), backend);
  BOOST_TEST((salvaged == model));
  BOOST_TEST((read_file_bytes(path) == data_before));
  BOOST_TEST((read_file_bytes(path + "-wal") == log_before));
  BOOST_TEST((read_file_bytes(path + "-wal2") == log2_before));
  // What open recovers from a copy of the files (open changes them).
  copy_file(path, dir.file("copy.db"));
  copy_file(path + "-wal", dir.file("copy.db-wal"));
  copy_file(path + "-wal2", dir.file("copy.db-wal2"));
  BOOST_TEST((read_all(dir.file("copy.db"), backend) == salvaged));

  // A damaged leaf: its keys are lost unless the log wrote them afterwards.
  std::vector<BlockId> leaves;
  for (const auto& [id, t] : map.types) {
    if (t == PageType::kLeaf) leaves.push_back(id);
  }
  const BlockId victim = leaves[rng() % leaves.size()];
  std::string broken = data_before;
  broken[victim * kPage + 60] ^= 0x11;
  write_file_bytes(path, broken);
  const SalvageReport d =
      corobtree::salvage_blocking(path, dir.file("out2.db"), salvage_options(backend));
  BOOST_TEST_MESSAGE("leaf " << victim << " damaged, with a log:\n" << d.summary());
  BOOST_TEST(!d.complete());
  BOOST_TEST(d.log_transactions_applied == txns);
  const Model got = read_all(dir.file("out2.db"), backend);
  require_subset(got, model);
  for (const auto& [k, v] : model) {
    const auto home = map.homes.find(k);
    const bool lost = home != map.homes.end() && home->second.leaf == victim && !touched.count(k);
    BOOST_TEST(got.count(k) == (lost ? 0u : 1u));
  }
}

// A checkpoint whose images and record reached the log but not the data
// file (here, the bulk load's): salvage takes the pages from the log's images.
BOOST_DATA_TEST_CASE(an_unfinished_checkpoint_comes_from_the_log, bdata::make(kBackends), config) {
  const IoBackend backend = config.backend;
  TempDir dir(corobtree::test::fast_temp_base());
  std::mt19937_64 rng(damage_seed(78, "unfinished checkpoint"));
  const std::string path = dir.file("a.db");
  const Model model = random_model(rng, corobtree::test::scaled(3000, 500));
  auto armed = std::make_shared<bool>(false);
  corobtree::Options o = options_for(backend);
  o.wrap_disk =
      [armed](
          std::unique_ptr<corobtree::DiskManager> d) -> std::unique_ptr<corobtree::DiskManager> {
    if (d->path().find("-wal") != std::string::npos) return d;  // NAME-wal, NAME-wal2
    return std::make_unique<FailDataWrites>(std::move(d), armed);
  };
  {
    std::unique_ptr<corobtree::Database> db =
        corobtree::sync_wait(corobtree::Database::open(path, o));
    *armed = true;
    const Pairs pairs(model.begin(), model.end());
    bool failed = false;
    try {
      corobtree::sync_wait(db->bulk_load(pairs));
    } catch (const Error&) {
      failed = true;
    }
    BOOST_REQUIRE(failed);
  }
  const SalvageReport r =
      corobtree::salvage_blocking(path, dir.file("out.db"), salvage_options(backend));
  BOOST_TEST_MESSAGE("unfinished checkpoint:\n" << r.summary());
  BOOST_TEST(r.log_checkpoint_pages > 0u);
  BOOST_TEST(r.complete());
  BOOST_TEST((read_all(dir.file("out.db"), backend) == model));
  BOOST_TEST((read_all(path, backend) == model));  // open finishes the checkpoint the same way
}

// The error `f` throws; fails the test if it throws nothing.
template <typename F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    BOOST_TEST_MESSAGE("expected error: " << e.what());
    return e;
  }
  BOOST_FAIL("expected a corobtree::Error");
  throw std::logic_error("unreachable");
}

std::string code_name(ErrorCode c) { return std::string(corobtree::error_code_name(c)); }

BOOST_DATA_TEST_CASE(bad_files_give_errors_or_partial_results, bdata::make(kBackends), config) {
  const IoBackend backend = config.backend;
  const corobtree::SalvageOptions so = salvage_options(backend);
  TempDir dir(corobtree::test::fast_temp_base());
  std::mt19937_64 rng(damage_seed(79, "bad files"));
  const std::string path = dir.file("a.db");
  const Model model = random_model(rng, corobtree::test::scaled(6000, 1000));
  {
    auto db = BlockingDatabase::open(path, options_for(backend));
    db.bulk_load(Pairs(model.begin(), model.end()));
    db.close();
  }
  const std::string bytes = read_file_bytes(path);
  const FileMap map = map_file(bytes);
  auto out = [&dir](const std::string& name) { return dir.file(name); };

  BOOST_TEST(code_name(error_of([&] {
                         corobtree::salvage_blocking(out("none.db"), out("x.db"), so);
                       }).code()) == code_name(ErrorCode::kNotFound));
  write_file_bytes(out("exists.db"), "keep me");
  BOOST_TEST(code_name(error_of([&] {
                         corobtree::salvage_blocking(path, out("exists.db"), so);
                       }).code()) == code_name(ErrorCode::kInvalidArgument));
  BOOST_TEST(read_file_bytes(out("exists.db")) == "keep me");
  write_file_bytes(out("empty.db"), "");
  BOOST_TEST(code_name(error_of([&] {
                         corobtree::salvage_blocking(out("empty.db"), out("x.db"), so);
                       }).code()) == code_name(ErrorCode::kCorruption));
  write_file_bytes(out("garbage.db"), corobtree::test::random_bytes(rng, 100000));
  const Error g =
      error_of([&] { corobtree::salvage_blocking(out("garbage.db"), out("x.db"), so); });
  BOOST_TEST(code_name(g.code()) == code_name(ErrorCode::kCorruption));
  BOOST_TEST(std::string(g.what()).find("not a corobtree database") != std::string::npos);
  corobtree::SalvageOptions wrong = so;
  wrong.page_size = 8192;
  BOOST_TEST(code_name(error_of([&] {
                         corobtree::salvage_blocking(path, out("x.db"), wrong);
                       }).code()) == code_name(ErrorCode::kInvalidArgument));
  BOOST_TEST(!std::filesystem::exists(out("x.db")));

  // Truncated mid-page: the pages before the cut come back.
  const std::uint64_t keep = bytes.size() / 2 + 100;
  write_file_bytes(out("cut.db"), bytes.substr(0, keep));
  const SalvageReport r = corobtree::salvage_blocking(out("cut.db"), out("cut-out.db"), so);
  BOOST_TEST_MESSAGE("truncated:\n" << r.summary());
  BOOST_TEST(!r.complete());
  BOOST_TEST(r.pages_missing > 0u);
  const Model cut = read_all(out("cut-out.db"), backend);
  require_subset(cut, model);
  const std::uint64_t whole = keep / kPage;
  for (const auto& [k, home] : map.homes) {
    const bool intact = home.leaf < whole && std::all_of(home.overflow.begin(), home.overflow.end(),
                                                         [&](BlockId o) { return o < whole; });
    BOOST_TEST(cut.count(k) == (intact ? 1u : 0u));
  }

  // Both meta pages damaged: the page size comes from the checksums, and
  // every leaf is an orphan, recovered all the same.
  std::string nometa = bytes;
  nometa[10] ^= 1;
  nometa[kPage + 10] ^= 1;
  write_file_bytes(out("nometa.db"), nometa);
  const SalvageReport m = corobtree::salvage_blocking(out("nometa.db"), out("nometa-out.db"), so);
  BOOST_TEST_MESSAGE("no meta page:\n" << m.summary());
  BOOST_TEST(m.meta_pages_valid == 0u);
  BOOST_TEST(m.leaves_reachable == 0u);
  BOOST_TEST(m.leaves_orphan == static_cast<std::uint64_t>(std::count_if(
                                    map.types.begin(), map.types.end(),
                                    [](const auto& t) { return t.second == PageType::kLeaf; })));
  BOOST_TEST(m.page_size == kPage);
  BOOST_TEST(!m.complete());
  BOOST_TEST((read_all(out("nometa-out.db"), backend) == model));

  // A log that is not this database's: reported, not applied.
  write_file_bytes(path + "-wal", corobtree::test::random_bytes(rng, 3 * kPage));
  const SalvageReport w = corobtree::salvage_blocking(path, out("wal-out.db"), so);
  BOOST_TEST(w.log_found);
  BOOST_TEST(!w.log_used);
  BOOST_TEST(!w.complete());
  BOOST_TEST(w.keys_recovered == model.size());
}

// Pages rewritten at random with their checksums re-stamped (a crafted or
// buggy file): salvage never crashes, and what it writes validates.
BOOST_DATA_TEST_CASE(restamped_garbage_never_crashes_it, bdata::make(kBackends), config) {
  const IoBackend backend = config.backend;
  TempDir dir(corobtree::test::fast_temp_base());
  std::mt19937_64 rng(damage_seed(80, "restamped garbage"));
  const std::string path = dir.file("a.db");
  const Model model = random_model(rng, 800);
  {
    auto db = BlockingDatabase::open(path, options_for(backend));
    db.bulk_load(Pairs(model.begin(), model.end()));
    db.close();
  }
  const std::string bytes = read_file_bytes(path);
  const std::uint64_t pages = bytes.size() / kPage;
  const int rounds = corobtree::test::scaled(40, 10);
  int salvaged = 0;
  for (int i = 0; i < rounds; ++i) {
    std::string broken = bytes;
    for (std::uint64_t n = 1 + rng() % 3; n > 0; --n) {
      const BlockId id = rng() % pages;
      auto* p = reinterpret_cast<std::byte*>(broken.data()) + id * kPage;
      // Header fields, slots and cells, small and large values alike.
      for (std::uint64_t k = 1 + rng() % 8; k > 0; --k) {
        const std::uint64_t at = rng() % 2 ? 4 + rng() % 120 : 4 + rng() % (kPage - 4);
        p[at] = static_cast<std::byte>(rng() % 3 == 0 ? 0xff : rng() % 256);
      }
      corobtree::page::stamp_checksum(id, std::span<std::byte>(p, kPage));
    }
    const std::string damaged = dir.file("g" + std::to_string(i) + ".db");
    const std::string out = dir.file("g" + std::to_string(i) + "-out.db");
    write_file_bytes(damaged, broken);
    try {
      const SalvageReport r = corobtree::salvage_blocking(damaged, out, salvage_options(backend));
      BOOST_TEST(read_all(out, backend).size() == r.keys_recovered);  // opens and validates
      ++salvaged;
    } catch (const Error& e) {
      BOOST_TEST_MESSAGE("round " << i << ": " << e.what());
    }
    std::filesystem::remove(damaged);
    std::filesystem::remove(out);
  }
  BOOST_TEST(salvaged > rounds / 2);
}

}  // namespace
