// Shared pieces of the benchmarks: the smoke switch and the 8-byte keys /
// 100-byte values the B+tree benchmarks use.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace corobtree::bench {

// COROBTREE_BENCH_SMOKE=1: tiny sizes, for CI's functional run of every binary.
inline bool smoke_mode() {
  const char* s = std::getenv("COROBTREE_BENCH_SMOKE");
  return s != nullptr && *s != '\0' && std::string_view(s) != "0";
}

inline constexpr std::size_t kValueSize = 100;

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

}  // namespace corobtree::bench
