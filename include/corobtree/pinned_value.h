// PinnedValue: a value read without copying it (RocksDB's PinnableSlice).
//
// Database::try_get_pinned / get_pinned fill a PinnedValue. When the value
// was found in a cached leaf, view() points into that leaf's bytes in the
// buffer pool and pinned() is true: no allocation, no copy. The bytes stay
// exactly as they were read for as long as the guard lives, whatever writers
// do meanwhile (overwrite or erase the key, split or merge its leaf, evict or
// reload its page): a writer about to change a page whose bytes a guard pins
// moves the page to another buffer instead (docs/engine.md, "Pinned values").
// A guard never blocks a writer, so holding one and then writing the same key
// on the same thread is fine. Otherwise (direct mode, a value in overflow
// pages, a page that was not cached, every pin slot in use) the guard owns a
// copy of the value and pinned() is false; view() works the same.
//
// Lifetime: a guard may outlive its Database. The pinned bytes stay valid;
// the pool's page memory is then freed when the last such guard dies.
//
// Thread-safety: a guard belongs to one thread at a time; it may be moved to
// and destroyed on any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <corobtree/export.h>

namespace corobtree {

namespace detail {
class PinAccess;
}  // namespace detail

class COROBTREE_EXPORT PinnedValue {
 public:
  PinnedValue() noexcept = default;
  PinnedValue(PinnedValue&& o) noexcept { take(o); }
  PinnedValue& operator=(PinnedValue&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  PinnedValue(const PinnedValue&) = delete;
  PinnedValue& operator=(const PinnedValue&) = delete;
  ~PinnedValue() { reset(); }

  // The value (empty after reset() or a miss).
  std::string_view view() const noexcept { return view_; }
  // True when view() points into a pinned page rather than into a copy.
  bool pinned() const noexcept { return pins_ != nullptr; }
  // Releases the pin (or the copy); view() is empty afterwards.
  void reset() noexcept;

 private:
  friend class detail::PinAccess;
  void take(PinnedValue& o) noexcept {
    pins_ = std::exchange(o.pins_, nullptr);
    slot_ = o.slot_;
    if (pins_ != nullptr) {
      view_ = std::exchange(o.view_, {});
    } else {
      copy_ = std::move(o.copy_);
      view_ = copy_;
      o.view_ = {};
    }
  }

  std::string_view view_;
  std::string copy_;      // the value when not pinned
  void* pins_ = nullptr;  // the pool's pin table (engine/pager/view_pins.h) when pinned
  std::uint32_t slot_ = 0;
};

}  // namespace corobtree
