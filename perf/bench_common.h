// Shared pieces of the benchmarks: the smoke switch and the 8-byte keys /
// 100-byte values the B+tree benchmarks use.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "perf/bench_random.h"

namespace corobtree::bench {

// COROBTREE_BENCH_SMOKE=1: tiny sizes, for CI's functional run of every binary.
inline bool smoke_mode() {
  const char* s = std::getenv("COROBTREE_BENCH_SMOKE");
  return s != nullptr && *s != '\0' && std::string_view(s) != "0";
}

inline constexpr std::size_t kValueSize = 100;
inline constexpr std::size_t kScanLength = 100;  // entries per scan in the cached workloads

// Keys in the cached workloads: 1M, or COROBTREE_BENCH_KEYS=n (20k when smoking).
inline std::uint64_t key_count() {
  static const std::uint64_t n = [] {
    const char* s = std::getenv("COROBTREE_BENCH_KEYS");
    const std::uint64_t v = s != nullptr ? std::strtoull(s, nullptr, 10) : 0;
    if (v >= 2 * kScanLength) return v;
    return smoke_mode() ? std::uint64_t{20'000} : std::uint64_t{1'000'000};
  }();
  return n;
}

// CPU time the whole process has used (user + system, every thread: the
// kernel's io_uring workers are threads of the process too), in seconds.
inline double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  const auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// The p-quantile (0..1) of `v` (reorders it).
inline double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const std::size_t i =
      std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

// An 8-byte big-endian key (byte order == numeric order), held inline so
// making one never allocates.
class Key {
 public:
  explicit Key(std::uint64_t v) noexcept {
    for (int i = 7; i >= 0; --i) {
      bytes_[i] = static_cast<char>(v & 0xff);
      v >>= 8;
    }
  }
  std::string_view view() const noexcept { return {bytes_, sizeof bytes_}; }

 private:
  char bytes_[8];
};

// kValueSize bytes that start with the key, so a read can be checked cheaply.
inline std::string make_value(std::uint64_t k) {
  std::string v(kValueSize, 'v');
  const Key key(k);
  std::memcpy(v.data(), key.view().data(), 8);
  return v;
}

inline bool value_matches(std::string_view value, std::uint64_t k) {
  const Key key(k);
  return value.size() == kValueSize && value.substr(0, 8) == key.view();
}

// The durable-commit benchmarks' starting data, the same for corobtree and
// every peer: 100,000 random keys (smoke: 2,000) spread over the whole key
// space, so that the writers' keys land in every leaf, not after the last
// one. Sorted and distinct.
inline std::vector<std::uint64_t> commit_preload_keys() {
  constexpr std::uint64_t kPreloadSeed = 99;
  std::vector<std::uint64_t> keys(smoke_mode() ? 2'000 : 100'000);
  SplitMix64 rng(kPreloadSeed);
  for (std::uint64_t& k : keys) k = rng.next();
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

// commit_preload_keys() as key/value pairs (for Database::bulk_load).
inline std::vector<std::pair<std::string, std::string>> commit_preload_pairs() {
  std::vector<std::pair<std::string, std::string>> p;
  for (const std::uint64_t k : commit_preload_keys()) {
    p.emplace_back(std::string(Key(k).view()), make_value(k));
  }
  return p;
}

}  // namespace corobtree::bench
