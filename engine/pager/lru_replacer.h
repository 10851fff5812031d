// LruReplacer: picks the least recently unpinned frame to evict.
//
// Frames enter when their pin count drops to zero (record_unpinned, at the
// most-recently-used end) and leave when pinned again (remove) or chosen as a
// victim (victim). The list is intrusive over two arrays indexed by frame id,
// so every operation is O(1) and nothing allocates after construction
// (8 bytes per frame).
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
  explicit LruReplacer(std::size_t capacity);

  // Frame f became evictable: it is now the most recently used.
  void record_unpinned(FrameId f) noexcept;
  // Frame f is pinned (or gone): no longer a candidate. No-op if absent.
  void remove(FrameId f) noexcept;
  // Removes and returns the least recently used evictable frame.
  std::optional<FrameId> victim() noexcept;

  bool contains(FrameId f) const noexcept { return prev_[f] != kAbsent; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return prev_.size(); }

 private:
  static constexpr FrameId kAbsent = 0xffffffffu;
  static constexpr FrameId kNil = 0xfffffffeu;

  void unlink(FrameId f) noexcept;

  // prev_[f] == kAbsent means f is not in the list.
  std::vector<FrameId> prev_;
  std::vector<FrameId> next_;
  FrameId head_ = kNil;  // least recently used
  FrameId tail_ = kNil;  // most recently used
  std::size_t size_ = 0;
};

}  // namespace corobtree
