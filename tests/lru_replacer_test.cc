// LruReplacer and PageTable: the pool's bookkeeping structures on their own.
#define BOOST_TEST_MODULE lru_replacer
#include <boost/test/unit_test.hpp>

#include <map>
#include <random>

#include "engine/pager/lru_replacer.h"
#include "engine/pager/page_table.h"
#include "tests/support/seed.h"

using corobtree::FrameId;
using corobtree::LruReplacer;
using corobtree::PageTable;

BOOST_AUTO_TEST_CASE(victims_come_in_least_recently_unpinned_order) {
  LruReplacer lru(8);
  for (FrameId f : {3u, 1u, 4u, 5u}) lru.record_unpinned(f);
  lru.record_unpinned(1);  // touched again: now most recent
  BOOST_TEST(lru.size() == 4u);
  BOOST_TEST(*lru.victim() == 3u);
  BOOST_TEST(*lru.victim() == 4u);
  BOOST_TEST(*lru.victim() == 5u);
  BOOST_TEST(*lru.victim() == 1u);
  BOOST_TEST(!lru.victim().has_value());
}

BOOST_AUTO_TEST_CASE(pinned_frames_are_never_victims) {
  LruReplacer lru(4);
  for (FrameId f = 0; f < 4; ++f) lru.record_unpinned(f);
  lru.remove(0);
  lru.remove(2);
  lru.remove(2);  // absent: no-op
  BOOST_TEST(!lru.contains(0));
  BOOST_TEST(lru.contains(1));
  BOOST_TEST(*lru.victim() == 1u);
  BOOST_TEST(*lru.victim() == 3u);
  BOOST_TEST(lru.size() == 0u);
}

BOOST_AUTO_TEST_CASE(page_table_matches_a_map_under_random_churn) {
  const auto seed = corobtree::test::test_seed("page table churn");
  std::mt19937_64 rng(seed);
  PageTable table(64);
  std::map<std::uint64_t, FrameId> model;
  for (int i = 0; i < 200000; ++i) {
    const std::uint64_t page = rng() % 500;
    if (rng() % 2 == 0) {
      if (!model.count(page)) {
        model[page] = static_cast<FrameId>(i);
        table.insert(page, static_cast<FrameId>(i));
      }
    } else {
      BOOST_REQUIRE_EQUAL(table.erase(page), model.erase(page) == 1);
    }
    if (i % 997 == 0) {
      for (std::uint64_t p = 0; p < 500; ++p) {
        auto found = table.find(p);
        auto it = model.find(p);
        BOOST_REQUIRE_MESSAGE(found.has_value() == (it != model.end()),
                              "page " << p << " at op " << i << " seed " << seed);
        if (found) BOOST_REQUIRE_EQUAL(*found, it->second);
      }
    }
  }
  BOOST_TEST(table.size() == model.size());
}
