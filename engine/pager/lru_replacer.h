// LruReplacer: picks the frame to evict: the least recently unpinned one,
// preferring ordinary frames to kept ones.
//
// Frames enter when their pin count drops to zero (record_unpinned, at the
// most-recently-used end of their class's list) and leave when pinned again
// (remove) or chosen as a victim (victim). Two classes: ordinary frames and
// kept frames (the pool's PageHooks::keep_longer says which: the B+tree's
// inner pages). A victim is the least recently used ordinary frame; a kept
// frame is chosen only when no ordinary frame is evictable, or when more
// than kMaxKeptShare of the capacity are evictable kept frames (then the
// least recently used kept frame goes first). So a scan or a burst of random leaf
// reads cannot push the upper levels of the tree out of a pool that could
// hold them, and a tree whose inner pages alone outgrow the pool still
// evicts them in LRU order.
//
// The lists are intrusive over arrays indexed by frame id, so every operation
// is O(1) and nothing allocates after construction (9 bytes per frame).
//
// Thread-safety: none; owned by one BufferPool on one loop thread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace corobtree {

using FrameId = std::uint32_t;

class LruReplacer {
 public:
  // Kept frames beyond this share of the capacity are evicted before ordinary ones.
  static constexpr double kMaxKeptShare = 0.5;

  explicit LruReplacer(std::size_t capacity);

  // Frame f became evictable: it is now the most recently used of its class.
  void record_unpinned(FrameId f, bool keep = false) noexcept;
  // Frame f is pinned (or gone): no longer a candidate. No-op if absent.
  void remove(FrameId f) noexcept;
  // Removes and returns the frame to evict (see the class comment).
  std::optional<FrameId> victim() noexcept;

  bool contains(FrameId f) const noexcept { return prev_[f] != kAbsent; }
  // The class f had when it last entered.
  bool kept(FrameId f) const noexcept { return kept_[f] != 0; }
  std::size_t size() const noexcept { return lists_[0].size + lists_[1].size; }
  std::size_t kept_size() const noexcept { return lists_[1].size; }
  std::size_t capacity() const noexcept { return prev_.size(); }

 private:
  static constexpr FrameId kAbsent = 0xffffffffu;
  static constexpr FrameId kNil = 0xfffffffeu;

  struct List {
    FrameId head = kNil;  // least recently used
    FrameId tail = kNil;  // most recently used
    std::size_t size = 0;
  };

  void unlink(FrameId f) noexcept;
  FrameId pop_head(List& l) noexcept;

  // prev_[f] == kAbsent means f is in neither list.
  std::vector<FrameId> prev_;
  std::vector<FrameId> next_;
  std::vector<std::uint8_t> kept_;  // 1: f is (or was last) in lists_[1]
  List lists_[2];                   // [0] ordinary frames, [1] kept frames
  std::size_t max_kept_;            // kMaxKeptShare of the capacity
};

}  // namespace corobtree
