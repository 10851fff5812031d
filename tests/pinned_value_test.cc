// PinnedValue (include/corobtree/pinned_value.h): values read without a copy
// stay byte-identical while the same thread overwrites and erases their keys,
// splits and merges their leaves and evicts their pages; fresh gets see the
// new state. Differential against std::map, with validate() and a reopen.
// Both backends; pools of 0 (direct: copies), 16 frames (more pins than
// frames, constant eviction) and the default.
#define BOOST_TEST_MODULE pinned_value
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstdio>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/pinned_value.h>
#include "engine/pager/buffer_pool.h"

#include "tests/support/backends.h"
#include "tests/support/pool_cases.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
using corobtree::BlockingDatabase;
using corobtree::IoBackend;
using corobtree::Options;
using corobtree::PinnedValue;

namespace {

using Case = corobtree::test::PoolCase;

std::string key_of(std::uint32_t i) {
  char k[16];
  std::snprintf(k, sizeof k, "k%05u", i);
  return k;
}

// A value that names its key and version; now and then one too large to
// stay in the leaf (overflow pages: the guard copies).
std::string value_of(std::mt19937_64& rng, std::uint32_t key, std::uint64_t version) {
  std::string v = key_of(key) + "#" + std::to_string(version) + ":";
  const std::size_t len = rng() % 16 == 0 ? 700 : rng() % 60;
  for (std::size_t i = 0; i < len; ++i) v.push_back(static_cast<char>('a' + (version + i) % 26));
  return v;
}

// A pinned get that must answer from the pool when it can (a pooled database
// whose pages are cached pins); falls back to the engine otherwise.
bool pinned_get(BlockingDatabase& db, const std::string& key, PinnedValue& out) {
  return db.get_pinned(key, out);
}

struct Held {
  std::string key;
  std::string expected;  // the bytes the guard showed when it was taken
  PinnedValue guard;
};

void check_held(const std::vector<Held>& held) {
  for (const Held& h : held) {
    if (h.guard.view() != h.expected) {
      BOOST_FAIL("the pinned value of " << h.key << " changed: '" << h.guard.view().substr(0, 40)
                                        << "' instead of '" << h.expected.substr(0, 40) << "'");
    }
  }
}

}  // namespace

BOOST_DATA_TEST_CASE(differential_with_pins_held, bdata::make(corobtree::test::pool_cases()), c) {
  const std::uint64_t seed = corobtree::test::test_seed("pinned_value differential " + c.name());
  std::mt19937_64 rng(seed);
  corobtree::test::TempDir dir;
  const std::string path = dir.file("pin.db");
  std::map<std::string, std::string> model;
  std::vector<Held> held;
  std::uint64_t version = 0;
  std::uint64_t pinned_hits = 0;
  {
    BlockingDatabase db = BlockingDatabase::open(path, corobtree::test::small_page_options(c));
    constexpr std::uint32_t kKeys = 1500;
    const int ops = corobtree::test::scaled(12000, 2000);
    for (int op = 0; op < ops; ++op) {
      const auto k = static_cast<std::uint32_t>(rng() % kKeys);
      const std::string key = key_of(k);
      const std::uint64_t r = rng() % 100;
      if (r < 45) {
        const std::string v = value_of(rng, k, ++version);
        db.put(key, v);
        model[key] = v;
      } else if (r < 60) {
        const bool existed = db.erase(key);
        BOOST_REQUIRE_EQUAL(existed, model.erase(key) == 1);
      } else {
        PinnedValue g;
        const bool found = pinned_get(db, key, g);
        const auto it = model.find(key);
        BOOST_REQUIRE_EQUAL(found, it != model.end());
        if (found) {
          BOOST_REQUIRE(g.view() == it->second);
          if (g.pinned()) ++pinned_hits;
          // Keep up to 48 guards (three times the small pool's frames).
          if (held.size() < 48) {
            held.push_back({key, it->second, std::move(g)});
          } else {
            Held& slot = held[rng() % held.size()];
            slot = Held{key, it->second, std::move(g)};
          }
        } else {
          BOOST_REQUIRE(g.view().empty());
        }
      }
      if (op % 64 == 0) check_held(held);
      if (op % 4000 == 3999) {
        const corobtree::ValidationReport report = db.validate();
        BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
      }
    }
    check_held(held);
    // The pins hold; a get of every key sees the model's state now.
    for (std::uint32_t k = 0; k < kKeys; ++k) {
      PinnedValue g;
      const auto it = model.find(key_of(k));
      BOOST_REQUIRE_EQUAL(pinned_get(db, key_of(k), g), it != model.end());
      if (it != model.end()) BOOST_REQUIRE(g.view() == it->second);
    }
    check_held(held);
    const corobtree::ValidationReport report = db.validate();
    BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
    const corobtree::DatabaseStats stats = db.stats();
    BOOST_TEST_MESSAGE(c.name() << ": " << pinned_hits << " pinned hits, "
                                << stats.pool.view_relocations << " relocations");
    if (c.pool != 0) {
      BOOST_CHECK_GT(pinned_hits, 0U);
      BOOST_CHECK_GT(stats.pool.view_relocations, 0U);
    } else {
      BOOST_CHECK_EQUAL(pinned_hits, 0U);  // direct mode: the guard copies
    }
    db.close();
    check_held(held);  // guards outlive the database's close
  }
  check_held(held);  // ... and the database itself
  held.clear();
  BlockingDatabase db = BlockingDatabase::open(path, corobtree::test::small_page_options(c));
  std::string v;
  std::uint64_t n = 0;
  for (const auto& [key, value] : model) {
    BOOST_REQUIRE(db.get(key, v));
    BOOST_REQUIRE(v == value);
    ++n;
  }
  BOOST_CHECK_EQUAL(db.count(), n);
  db.close();
}

// A guard pins, the same thread then overwrites, erases and rewrites the key
// through BlockingDatabase (no deadlock: a pin never holds a latch), and
// splits the leaf around it; the view stays, a fresh get sees the change.
BOOST_DATA_TEST_CASE(same_thread_writes_under_a_pin, bdata::make(corobtree::test::io_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  BlockingDatabase db = BlockingDatabase::open(
      dir.file("pin.db"), corobtree::test::small_page_options(Case{backend, SIZE_MAX}));
  db.put("key", "first value");
  PinnedValue g;
  BOOST_REQUIRE(db.get_pinned("key", g));
  BOOST_REQUIRE(g.pinned());
  BOOST_REQUIRE_EQUAL(g.view(), "first value");
  db.put("key", "second value, longer");
  BOOST_CHECK_EQUAL(g.view(), "first value");
  PinnedValue fresh;
  BOOST_REQUIRE(db.get_pinned("key", fresh));
  BOOST_CHECK_EQUAL(fresh.view(), "second value, longer");
  BOOST_REQUIRE(db.erase("key"));
  BOOST_CHECK_EQUAL(g.view(), "first value");
  BOOST_CHECK_EQUAL(fresh.view(), "second value, longer");
  BOOST_CHECK(!db.get_pinned("key", fresh));
  BOOST_CHECK(fresh.view().empty() && !fresh.pinned());
  for (int i = 0; i < 400; ++i) db.put("k" + std::to_string(i), std::string(40, 'x'));  // splits
  BOOST_CHECK_EQUAL(g.view(), "first value");
  // Moving a guard keeps its view; reset() drops it.
  PinnedValue moved = std::move(g);
  BOOST_CHECK_EQUAL(moved.view(), "first value");
  // The moved-from guard is empty (that is what this checks).
  // NOLINTNEXTLINE(bugprone-use-after-move)
  BOOST_CHECK(moved.pinned() && !g.pinned() && g.view().empty());
  moved.reset();
  BOOST_CHECK(!moved.pinned() && moved.view().empty());
  BOOST_CHECK_GT(db.stats().pool.view_relocations, 0U);
  db.close();
}

// More guards than the pool has frames, each on a different leaf, then reads
// of every page (each evicts one of the pinned pages) and writes to every
// key: nothing waits (a pin does not hold a frame), every view stays.
BOOST_DATA_TEST_CASE(more_pins_than_frames, bdata::make(corobtree::test::io_backends()), backend) {
  corobtree::test::TempDir dir;
  BlockingDatabase db = BlockingDatabase::open(
      dir.file("pin.db"), corobtree::test::small_page_options(Case{backend, 16}));
  constexpr std::uint32_t kKeys = 3000;
  for (std::uint32_t k = 0; k < kKeys; ++k) db.put(key_of(k), key_of(k) + "/v1");
  std::vector<Held> held;
  for (std::uint32_t k = 0; k < kKeys; k += 37) {
    Held h{key_of(k), key_of(k) + "/v1", PinnedValue()};
    // Cached once the engine read it: the second try pins.
    BOOST_REQUIRE(db.get_pinned(h.key, h.guard));
    if (!h.guard.pinned()) BOOST_REQUIRE(db.get_pinned(h.key, h.guard));
    BOOST_REQUIRE_EQUAL(h.guard.view(), h.expected);
    held.push_back(std::move(h));
  }
  std::size_t pinned = 0;
  for (const Held& h : held) pinned += h.guard.pinned() ? 1 : 0;
  BOOST_TEST_MESSAGE(pinned << " of " << held.size() << " guards pinned");
  BOOST_CHECK_GT(pinned, 16U);  // more than the frames
  std::string v;
  for (std::uint32_t k = 0; k < kKeys; ++k) {
    BOOST_REQUIRE(db.get(key_of(k), v));
    BOOST_REQUIRE_EQUAL(v, key_of(k) + "/v1");
  }
  check_held(held);
  for (std::uint32_t k = 0; k < kKeys; ++k) db.put(key_of(k), key_of(k) + "/v2");
  for (std::uint32_t k = 0; k < kKeys; k += 2) db.erase(key_of(k));
  check_held(held);
  for (std::uint32_t k = 1; k < kKeys; k += 2) {
    BOOST_REQUIRE(db.get(key_of(k), v));
    BOOST_REQUIRE_EQUAL(v, key_of(k) + "/v2");
  }
  const corobtree::ValidationReport report = db.validate();
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  const corobtree::DatabaseStats stats = db.stats();
  BOOST_CHECK_GT(stats.pool.view_relocations, 0U);
  BOOST_CHECK_EQUAL(stats.pool.pinned, 0U);  // no frame held by a view
  held.clear();
  // Once released, the detached buffers are reused (no growth without pins).
  for (std::uint32_t k = 1; k < kKeys; k += 2) db.put(key_of(k), key_of(k) + "/v3");
  db.close();
}

// Guards outlive their database: close() does not wait for them and their
// views stay valid until they die (ASan: the memory is still owned).
BOOST_DATA_TEST_CASE(guards_outlive_the_database, bdata::make(corobtree::test::io_backends()),
                     backend) {
  corobtree::test::TempDir dir;
  std::vector<PinnedValue> guards(8);
  {
    BlockingDatabase db = BlockingDatabase::open(
        dir.file("pin.db"), corobtree::test::small_page_options(Case{backend, SIZE_MAX}));
    for (int i = 0; i < 8; ++i) db.put("k" + std::to_string(i), "value " + std::to_string(i));
    for (int i = 0; i < 8; ++i) BOOST_REQUIRE(db.get_pinned("k" + std::to_string(i), guards[i]));
    BOOST_REQUIRE(guards[0].pinned());
    db.close();
  }  // the Database is gone
  guards[3].reset();
  for (int i = 0; i < 8; ++i) {
    if (i != 3) BOOST_CHECK_EQUAL(guards[i].view(), "value " + std::to_string(i));
  }
  guards.clear();  // the last one frees the pool's memory
}

// The count of live pins: after a burst of pins that are all released, a
// write window finds nothing pinned and moves no page (no relocation), and a
// new pin sees the write; a pin then held across a write window still sees
// the bytes it pinned (the window sees the count and moves the page). With
// the count's skip wrong (a window skipping with a pin held), the held view
// changes and no page moves.
BOOST_DATA_TEST_CASE(released_pins_cost_writers_nothing,
                     bdata::make(corobtree::test::io_backends()), backend) {
  corobtree::test::TempDir dir;
  BlockingDatabase db = BlockingDatabase::open(
      dir.file("pin.db"), corobtree::test::small_page_options(Case{backend, SIZE_MAX}));
  db.put("key", "first value");
  for (std::uint32_t k = 0; k < 100; ++k) db.put(key_of(k), key_of(k) + "/v1");
  {
    // A burst: 3,000 pins at once (slots in most of the bitmap's words),
    // then all released.
    std::vector<PinnedValue> burst(3000);
    for (std::size_t i = 0; i < burst.size(); ++i) {
      BOOST_REQUIRE(db.get_pinned(i % 2 == 0 ? std::string("key") : key_of(i % 100), burst[i]));
      BOOST_REQUIRE(burst[i].pinned());
    }
  }
  const std::uint64_t relocations = db.stats().pool.view_relocations;
  db.put("key", "second value, longer");
  for (std::uint32_t k = 0; k < 100; k += 3) db.put(key_of(k), key_of(k) + "/v2");
  BOOST_CHECK_EQUAL(db.stats().pool.view_relocations, relocations);  // nothing was pinned
  PinnedValue fresh;
  BOOST_REQUIRE(db.get_pinned("key", fresh));
  BOOST_REQUIRE(fresh.pinned());
  BOOST_CHECK_EQUAL(fresh.view(), "second value, longer");
  // Held across windows: the pool moves the page, the view stays.
  db.put("key", "third value, longer still");
  for (std::uint32_t k = 0; k < 100; k += 5) db.put(key_of(k), key_of(k) + "/v3");
  BOOST_CHECK_EQUAL(fresh.view(), "second value, longer");
  BOOST_CHECK_GT(db.stats().pool.view_relocations, relocations);
  PinnedValue again;
  BOOST_REQUIRE(db.get_pinned("key", again));
  BOOST_CHECK_EQUAL(again.view(), "third value, longer still");
  fresh.reset();
  again.reset();
  const corobtree::ValidationReport report = db.validate();
  BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
  db.close();
}

// A write window needs a spare buffer for each pinned page it may change;
// when none can be allocated the write fails with std::bad_alloc before
// anything changed: the pin keeps its bytes, the database stays open, the
// old value stays (also after a reopen), and the next write succeeds.
BOOST_DATA_TEST_CASE(no_memory_for_a_pinned_page_fails_the_write_cleanly,
                     bdata::make(corobtree::test::io_backends()), backend) {
  corobtree::test::TempDir dir;
  const Options o = corobtree::test::small_page_options(Case{backend, SIZE_MAX});
  {
    BlockingDatabase db = BlockingDatabase::open(dir.file("pin.db"), o);
    for (std::uint32_t k = 0; k < 50; ++k) db.put(key_of(k), key_of(k) + "/v1");
    PinnedValue g;
    BOOST_REQUIRE(db.get_pinned(key_of(3), g));
    BOOST_REQUIRE(g.pinned());
    corobtree::BufferPool::fail_spare_allocations_for_testing(1000);
    BOOST_CHECK_THROW(db.put(key_of(3), "never written"), std::bad_alloc);
    corobtree::BufferPool::fail_spare_allocations_for_testing(0);
    BOOST_CHECK_EQUAL(g.view(), key_of(3) + "/v1");
    std::string v;
    BOOST_REQUIRE(db.get(key_of(3), v));
    BOOST_CHECK_EQUAL(v, key_of(3) + "/v1");
    db.put(key_of(3), key_of(3) + "/v2");  // memory again: it works
    BOOST_CHECK_EQUAL(g.view(), key_of(3) + "/v1");
    BOOST_REQUIRE(db.get(key_of(3), v));
    BOOST_CHECK_EQUAL(v, key_of(3) + "/v2");
    const corobtree::ValidationReport report = db.validate();
    BOOST_REQUIRE_MESSAGE(report.ok(), report.summary());
    db.close();
  }
  BlockingDatabase db = BlockingDatabase::open(dir.file("pin.db"), o);
  std::string v;
  for (std::uint32_t k = 0; k < 50; ++k) {
    BOOST_REQUIRE(db.get(key_of(k), v));
    BOOST_CHECK_EQUAL(v, key_of(k) + (k == 3 ? "/v2" : "/v1"));
  }
  db.close();
}
