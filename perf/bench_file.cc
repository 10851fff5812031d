#include "perf/bench_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace corobtree::bench {

BenchFile ensure_bench_file() {
  BenchFile f;
  const char* path = std::getenv("COROBTREE_BENCH_FILE");
  const char* tmp = std::getenv("TMPDIR");
  f.path = path && *path ? path : std::string(tmp && *tmp ? tmp : "/tmp") + "/corobtree-bench.dat";
  const char* mb = std::getenv("COROBTREE_BENCH_FILE_MB");
  f.bytes = (mb && *mb ? std::strtoull(mb, nullptr, 10) : 1024) << 20;
  struct stat st;
  if (::stat(f.path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == f.bytes) {
    return f;
  }
  int fd = ::open(f.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + f.path);
  std::vector<std::uint64_t> chunk((1u << 20) / sizeof(std::uint64_t));
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (std::uint64_t off = 0; off < f.bytes; off += 1u << 20) {
    for (auto& w : chunk) w = (x = x * 6364136223846793005ull + 1442695040888963407ull);
    if (::pwrite(fd, chunk.data(), 1u << 20, static_cast<off_t>(off)) != (1 << 20)) {
      ::close(fd);
      throw std::runtime_error("cannot write " + f.path);
    }
  }
  ::fsync(fd);
  ::close(fd);
  return f;
}

}  // namespace corobtree::bench
