// detail::InFlight: one call of a Database counted as in flight, so that the
// Database's destructor waits for it (docs/engine.md, "Threads"). Internal to
// the library and to the awaitables of database.h and cursor.h, which count
// their call from await_ready on and hand the count to the call's engine part
// when they suspend: that part ends it on the engine thread, before the hop
// back, so a destructor running on the caller's own thread never waits for a
// hop that only that thread could run.
//
// Thread-safety: an InFlight belongs to one task at a time; it may be
// released on another thread than the one that counted it.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include <corobtree/export.h>

namespace corobtree {

class DatabaseHost;

namespace detail {

class COROBTREE_EXPORT InFlight {
 public:
  InFlight() noexcept = default;
  // Counts a call of `host`'s database. Throws Error(kClosed) when its
  // destructor has started.
  explicit InFlight(DatabaseHost& host);
  InFlight(InFlight&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)) {}
  InFlight& operator=(InFlight&& o) noexcept {
    if (this != &o) {
      release();
      slot_ = std::exchange(o.slot_, nullptr);
    }
    return *this;
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight() { release(); }

  bool counts() const noexcept { return slot_ != nullptr; }
  // Ends the call's count (the destructor may go on).
  void release() noexcept {
    if (slot_ != nullptr) std::exchange(slot_, nullptr)->fetch_sub(1, std::memory_order_release);
  }

 private:
  std::atomic<std::int64_t>* slot_ = nullptr;
};

}  // namespace detail
}  // namespace corobtree
