// The database test matrix: every backend (io_uring, pread; buffered and
// O_DIRECT) crossed with pool sizes 0 (direct), small (forces eviction) and large.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <corobtree/database.h>
#include "tests/support/backends.h"

namespace corobtree::test {

struct DbConfig {
  BackendConfig backend;
  std::size_t pool_pages;
  std::string name() const { return backend.name() + "/pool" + std::to_string(pool_pages); }
  Options options(std::uint32_t minimum_degree = 0) const {
    Options o;
    o.backend = backend.backend;
    o.direct_io = backend.direct_io;
    o.pool_pages = pool_pages;
    o.minimum_degree = minimum_degree;
    // These suites test the tree, not the fsync: commits are written to the
    // log but not synced. tests/durability_test.cc covers synced commits.
    o.durability = Durability::kRelaxed;
    return o;
  }
};

inline std::ostream& operator<<(std::ostream& os, const DbConfig& c) { return os << c.name(); }

// Both backends (buffered) x pool sizes {0, 16, 4096}, plus O_DIRECT with a small pool.
inline std::vector<DbConfig> db_matrix() {
  std::vector<DbConfig> out;
  for (IoBackend b : {IoBackend::kUring, IoBackend::kPread}) {
    for (std::size_t pool : {std::size_t{0}, std::size_t{16}, std::size_t{4096}}) {
      out.push_back(DbConfig{BackendConfig{b, false}, pool});
    }
    out.push_back(DbConfig{BackendConfig{b, true}, 16});
  }
  return out;
}

}  // namespace corobtree::test
