// Random test data.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace corobtree::test {

// n random bytes (every byte value, embedded zeros included).
inline std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t r = rng();
    std::memcpy(s.data() + i, &r, n - i < 8 ? n - i : 8);
  }
  return s;
}

}  // namespace corobtree::test
