// PoolCase: a backend x pool-size matrix for tests of what the buffer pool
// does under the engine (pinned values, zero-copy cursors): direct mode (no
// pool), a tiny pool that evicts all the time, and the default pool, on every
// backend io_backends() lists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <corobtree/options.h>

#include "tests/support/backends.h"

namespace corobtree::test {

struct PoolCase {
  IoBackend backend;
  std::size_t pool;  // 0: direct mode; SIZE_MAX: the default pool
  std::string name() const {
    return std::string(backend == IoBackend::kUring ? "uring" : "pread") +
           (pool == SIZE_MAX ? "/pool=default" : "/pool=" + std::to_string(pool));
  }
};
inline std::ostream& operator<<(std::ostream& os, const PoolCase& c) { return os << c.name(); }

// Pools of 0, 16 and the default, on every backend.
inline std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> out;
  for (const IoBackend b : io_backends()) {
    for (const std::size_t pool : {std::size_t{0}, std::size_t{16}, SIZE_MAX}) {
      out.push_back({b, pool});
    }
  }
  return out;
}

// 512-byte pages (a few entries per leaf: writes near a key split and merge
// its leaf), the case's backend and pool, relaxed durability.
inline Options small_page_options(const PoolCase& c) {
  Options o;
  o.backend = c.backend;
  o.page_size = 512;
  if (c.pool != SIZE_MAX) o.pool_pages = c.pool;
  o.durability = Durability::kRelaxed;
  return o;
}

}  // namespace corobtree::test
