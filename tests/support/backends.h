// The backend matrix: every disk test runs once per entry, through
// BOOST_DATA_TEST_CASE(name, corobtree::test::all_backends(), backend).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "io/disk_manager.h"

namespace corobtree::test {

struct BackendConfig {
  IoBackend backend;
  bool direct_io;
  std::string name() const;
  // DiskOptions that force this backend, ignoring COROBTREE_IO.
  DiskOptions options(std::uint32_t page_size = kDefaultPageSize) const;
};

std::ostream& operator<<(std::ostream& os, const BackendConfig& c);

// io_uring and pread, each buffered and O_DIRECT. With COROBTREE_IO=pread in
// the environment (the suite's pread pass) only the pread entries: a
// database opened with the io_uring entries would run on pread anyway
// (COROBTREE_IO overrides Options::backend), and the io_uring entries' own
// pass is the one without the variable.
std::vector<BackendConfig> all_backends();

// The two backends alone, for tests that set the rest of the Options
// themselves: BOOST_DATA_TEST_CASE(name, bdata::make(io_backends()), backend).
inline std::vector<IoBackend> io_backends() { return {IoBackend::kUring, IoBackend::kPread}; }

}  // namespace corobtree::test

namespace corobtree {
// How Boost.Test names an IoBackend in a data test case's label.
inline std::ostream& boost_test_print_type(std::ostream& os, IoBackend b) {
  return os << backend_name(b);
}
}  // namespace corobtree
