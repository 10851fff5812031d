// LruReplacer and PageTable: the pool's bookkeeping structures on their own.
#define BOOST_TEST_MODULE lru_replacer
#include <boost/test/unit_test.hpp>

#include <map>
#include <optional>
#include <random>
#include <vector>

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

BOOST_AUTO_TEST_CASE(kept_frames_go_after_every_ordinary_frame) {
  LruReplacer lru(8);
  lru.record_unpinned(0, /*keep=*/true);  // least recent of all, but kept
  for (FrameId f : {1u, 2u}) lru.record_unpinned(f);
  lru.record_unpinned(3, true);
  lru.record_unpinned(4);
  BOOST_TEST(lru.kept_size() == 2u);
  BOOST_TEST(*lru.victim() == 1u);
  BOOST_TEST(*lru.victim() == 2u);
  BOOST_TEST(*lru.victim() == 4u);
  BOOST_TEST(*lru.victim() == 0u);  // no ordinary frame left: kept ones, LRU first
  BOOST_TEST(lru.kept(3));
  BOOST_TEST(*lru.victim() == 3u);
  BOOST_TEST(!lru.victim().has_value());
  lru.record_unpinned(3);  // its class is what the last entry said
  BOOST_TEST(!lru.kept(3));
}

BOOST_AUTO_TEST_CASE(kept_frames_beyond_their_share_go_first) {
  LruReplacer lru(8);  // at most 4 evictable kept frames before they lose priority
  for (FrameId f = 0; f < 5; ++f) lru.record_unpinned(f, true);
  for (FrameId f = 5; f < 8; ++f) lru.record_unpinned(f);
  BOOST_TEST(*lru.victim() == 0u);  // 5 kept > 4: the least recently used kept frame
  BOOST_TEST(*lru.victim() == 5u);  // 4 kept: back to ordinary frames
  lru.remove(6);
  BOOST_TEST(*lru.victim() == 7u);
  BOOST_TEST(*lru.victim() == 1u);
  BOOST_TEST(lru.size() == 3u);
}

// Against a model: two lists of frame ids, most recent at the back.
BOOST_AUTO_TEST_CASE(two_classes_match_a_model_under_random_churn) {
  const std::uint64_t seed = corobtree::test::test_seed("two_classes_match_a_model");
  std::mt19937_64 rng(seed);
  const FrameId n = 64;
  LruReplacer lru(n);
  std::vector<FrameId> lists[2];
  auto erase = [&](FrameId f) {
    for (auto& l : lists) std::erase(l, f);
  };
  for (int i = 0; i < 20000; ++i) {
    const FrameId f = static_cast<FrameId>(rng() % n);
    switch (rng() % 3) {
      case 0: {
        const bool keep = rng() % 4 == 0;
        lru.record_unpinned(f, keep);
        erase(f);
        lists[keep ? 1 : 0].push_back(f);
        break;
      }
      case 1:
        lru.remove(f);
        erase(f);
        break;
      default: {
        std::optional<FrameId> want;
        auto& kept = lists[1];
        auto& ordinary = lists[0];
        if (!kept.empty() && (ordinary.empty() || kept.size() > n / 2)) {
          want = kept.front();
        } else if (!ordinary.empty()) {
          want = ordinary.front();
        }
        if (want) erase(*want);
        BOOST_REQUIRE_MESSAGE(lru.victim() == want, "step " << i << " (seed " << seed << ")");
      }
    }
    BOOST_REQUIRE_EQUAL(lru.size(), lists[0].size() + lists[1].size());
    BOOST_REQUIRE_EQUAL(lru.kept_size(), lists[1].size());
  }
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
