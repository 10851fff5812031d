// CRC32C (Castagnoli), as used by the page and meta checksums: SSE4.2
// instructions when the CPU has them, a table otherwise. Same results either way.
#pragma once

#include <cstddef>
#include <cstdint>

namespace corobtree {

// Extends `crc` (start with 0) over n bytes.
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept;

inline std::uint32_t crc32c(const void* data, std::size_t n) noexcept {
  return crc32c_extend(0, data, n);
}

}  // namespace corobtree
