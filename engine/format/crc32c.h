// CRC32C (Castagnoli), as used by the page and meta checksums. Same results on
// every path:
//  * SSE4.2 + PCLMUL: buffers of 3 * 64 bytes and more run as three
//    independent crc32 instruction chains over three equal thirds, combined
//    with a carry-less multiply (the chains hide the instruction's 3-cycle
//    latency: ~3x the throughput of one chain; a 4 KiB page costs ~0.15 us);
//  * SSE4.2 only, or a short buffer: one crc32 instruction chain;
//  * otherwise: a byte-at-a-time table.
//
// Thread-safety: pure functions, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace corobtree {

// Extends `crc` (start with 0) over n bytes: crc32c_extend(crc32c(a), b) ==
// crc32c(a followed by b).
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept;

inline std::uint32_t crc32c(const void* data, std::size_t n) noexcept {
  return crc32c_extend(0, data, n);
}

// The individual implementations, exposed so tests can check them against each
// other. crc32c_extend picks the fastest one the CPU supports.
namespace crc32c_impl {

std::uint32_t extend_table(std::uint32_t crc, const void* data, std::size_t n) noexcept;
// True where the SSE4.2 (resp. SSE4.2 + PCLMUL) versions may be called.
bool have_sse42() noexcept;
bool have_sse42_pclmul() noexcept;
// REQUIRES: have_sse42().
std::uint32_t extend_sse42(std::uint32_t crc, const void* data, std::size_t n) noexcept;
// REQUIRES: have_sse42_pclmul().
std::uint32_t extend_sse42_3way(std::uint32_t crc, const void* data, std::size_t n) noexcept;

}  // namespace crc32c_impl

}  // namespace corobtree
