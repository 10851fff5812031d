// A large data file shared by the I/O benchmarks: created once (real data, not
// sparse, so reads hit the device) and reused while its size matches.
// COROBTREE_BENCH_FILE picks the path (default $TMPDIR/corobtree-bench.dat)
// and COROBTREE_BENCH_FILE_MB its size (default 1024).
#pragma once

#include <cstdint>
#include <string>

namespace corobtree::bench {

struct BenchFile {
  std::string path;
  std::uint64_t bytes;
};

// Returns the file, creating or resizing it when needed.
BenchFile ensure_bench_file();

}  // namespace corobtree::bench
