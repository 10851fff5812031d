#include "engine/pager/lru_replacer.h"

namespace corobtree {

LruReplacer::LruReplacer(std::size_t capacity) : prev_(capacity, kAbsent), next_(capacity, kNil) {}

void LruReplacer::unlink(FrameId f) noexcept {
  const FrameId p = prev_[f];
  const FrameId n = next_[f];
  if (p == kNil) {
    head_ = n;
  } else {
    next_[p] = n;
  }
  if (n == kNil) {
    tail_ = p;
  } else {
    prev_[n] = p;
  }
  prev_[f] = kAbsent;
  next_[f] = kNil;
  --size_;
}

void LruReplacer::record_unpinned(FrameId f) noexcept {
  if (contains(f)) unlink(f);
  prev_[f] = tail_;
  next_[f] = kNil;
  if (tail_ == kNil) {
    head_ = f;
  } else {
    next_[tail_] = f;
  }
  tail_ = f;
  ++size_;
}

void LruReplacer::remove(FrameId f) noexcept {
  if (contains(f)) unlink(f);
}

std::optional<FrameId> LruReplacer::victim() noexcept {
  if (head_ == kNil) return std::nullopt;
  const FrameId f = head_;
  unlink(f);
  return f;
}

}  // namespace corobtree
