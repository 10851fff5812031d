#include "engine/pager/lru_replacer.h"

namespace corobtree {

LruReplacer::LruReplacer(std::size_t capacity)
    : prev_(capacity, kAbsent),
      next_(capacity, kNil),
      kept_(capacity, 0),
      max_kept_(static_cast<std::size_t>(static_cast<double>(capacity) * kMaxKeptShare)) {}

void LruReplacer::unlink(FrameId f) noexcept {
  List& l = lists_[kept_[f]];
  const FrameId p = prev_[f];
  const FrameId n = next_[f];
  if (p == kNil) {
    l.head = n;
  } else {
    next_[p] = n;
  }
  if (n == kNil) {
    l.tail = p;
  } else {
    prev_[n] = p;
  }
  prev_[f] = kAbsent;
  next_[f] = kNil;
  --l.size;
}

void LruReplacer::record_unpinned(FrameId f, bool keep) noexcept {
  if (contains(f)) unlink(f);
  kept_[f] = keep ? 1 : 0;
  List& l = lists_[kept_[f]];
  prev_[f] = l.tail;
  next_[f] = kNil;
  if (l.tail == kNil) {
    l.head = f;
  } else {
    next_[l.tail] = f;
  }
  l.tail = f;
  ++l.size;
}

void LruReplacer::remove(FrameId f) noexcept {
  if (contains(f)) unlink(f);
}

FrameId LruReplacer::pop_head(List& l) noexcept {
  const FrameId f = l.head;
  unlink(f);
  return f;
}

std::optional<FrameId> LruReplacer::victim() noexcept {
  List& ordinary = lists_[0];
  List& kept = lists_[1];
  if (kept.size > 0 && (ordinary.size == 0 || kept.size > max_kept_)) return pop_head(kept);
  if (ordinary.size > 0) return pop_head(ordinary);
  return std::nullopt;
}

}  // namespace corobtree
