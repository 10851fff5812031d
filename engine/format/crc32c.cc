#include "engine/format/crc32c.h"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace corobtree {

namespace {

constexpr std::uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}

constexpr std::array<std::uint32_t, 256> kTable = make_table();

#if defined(__x86_64__)

// ---- the three-stream version ---------------------------------------------------
//
// Notation: a 32-bit CRC register r stands for the polynomial sum r_i x^(31-i)
// (bit-reflected), and everything is mod P, the Castagnoli polynomial.
//  * crc32_u64(r, v) = r * x^64 + V * x^32, where V = sum v_i x^(63-i).
//  * Running the register over k zero bytes multiplies it by x^(8k); running it
//    over a buffer from state s equals running it from 0, plus s * x^(8k). So
//    for a buffer A|B|C of three equal parts of L bytes, started from s:
//      reg(s, A|B|C) = reg(s, A) * x^(16L) + reg(0, B) * x^(8L) + reg(0, C),
//    and the three reg() chains are independent.
//  * A carry-less multiply of two reflected 32-bit values a, b gives a 63-bit
//    value whose reading as V above is x * a * b; so
//      crc32_u64(0, clmul(a, k)) = a * k * x^33,
//    and with k = x^(8L - 33) that is a * x^(8L). Both shifts share the one
//    reduction, since crc32_u64(0, .) is linear.

// Stream lengths, in 8-byte words: longer streams amortise the combine (~20
// cycles) but need a longer constants table.
constexpr std::size_t kMinStreamWords = 8;
constexpr std::size_t kMaxStreamWords = 256;  // 2 KiB per stream, 6 KiB per round

// kShift[w] = x^(64w - 33) mod P, reflected, for w >= 1: multiplies a register
// by x^(64w), i.e. moves it past w words of zeros (see above).
constexpr std::array<std::uint32_t, 2 * kMaxStreamWords + 1> make_shift_table() {
  std::array<std::uint32_t, 2 * kMaxStreamWords + 1> t{};
  std::uint32_t r = 1;  // x^31 (bit 0 is the coefficient of x^31)
  for (std::size_t w = 1; w < t.size(); ++w) {
    t[w] = r;
    for (int k = 0; k < 64; ++k) r = (r & 1) ? (r >> 1) ^ kPoly : r >> 1;  // r *= x
  }
  return t;
}

constexpr std::array<std::uint32_t, 2 * kMaxStreamWords + 1> kShift = make_shift_table();

inline std::uint64_t load64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// One crc32 chain over a raw register (no pre/post inversion).
__attribute__((target("sse4.2"))) std::uint32_t chain_sse42(std::uint32_t reg,
                                                            const unsigned char* p,
                                                            std::size_t n) noexcept {
  std::uint64_t c = reg;
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, load64(p));
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, *p);
  return c32;
}

__attribute__((target("sse4.2,pclmul"))) std::uint32_t chain_3way(std::uint32_t reg,
                                                                  const unsigned char* p,
                                                                  std::size_t n) noexcept {
  std::uint64_t c0 = reg;
  while (n >= 3 * 8 * kMinStreamWords) {
    const std::size_t words = std::min(n / 24, kMaxStreamWords);
    const std::size_t len = 8 * words;
    const unsigned char* p1 = p + len;
    const unsigned char* p2 = p1 + len;
    std::uint64_t c1 = 0;
    std::uint64_t c2 = 0;
    for (std::size_t i = 0; i < len; i += 8) {
      c0 = _mm_crc32_u64(c0, load64(p + i));
      c1 = _mm_crc32_u64(c1, load64(p1 + i));
      c2 = _mm_crc32_u64(c2, load64(p2 + i));
    }
    const __m128i a = _mm_cvtsi32_si128(static_cast<int>(c0));
    const __m128i b = _mm_cvtsi32_si128(static_cast<int>(c1));
    const __m128i ka = _mm_cvtsi32_si128(static_cast<int>(kShift[2 * words]));
    const __m128i kb = _mm_cvtsi32_si128(static_cast<int>(kShift[words]));
    const __m128i m =
        _mm_xor_si128(_mm_clmulepi64_si128(a, ka, 0x00), _mm_clmulepi64_si128(b, kb, 0x00));
    c0 = _mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(m))) ^ c2;
    p += 3 * len;
    n -= 3 * len;
  }
  return chain_sse42(static_cast<std::uint32_t>(c0), p, n);
}

#endif  // __x86_64__

using ExtendFn = std::uint32_t (*)(std::uint32_t, const void*, std::size_t) noexcept;

ExtendFn pick_extend() noexcept {
  if (crc32c_impl::have_sse42_pclmul()) return crc32c_impl::extend_sse42_3way;
  if (crc32c_impl::have_sse42()) return crc32c_impl::extend_sse42;
  return crc32c_impl::extend_table;
}

}  // namespace

namespace crc32c_impl {

std::uint32_t extend_table(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)

bool have_sse42() noexcept {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}

bool have_sse42_pclmul() noexcept {
  static const bool have = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
  return have;
}

std::uint32_t extend_sse42(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return ~chain_sse42(~crc, static_cast<const unsigned char*>(data), n);
}

std::uint32_t extend_sse42_3way(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return ~chain_3way(~crc, static_cast<const unsigned char*>(data), n);
}

#else  // no x86: the hardware entry points are never picked; keep them defined

bool have_sse42() noexcept { return false; }
bool have_sse42_pclmul() noexcept { return false; }

std::uint32_t extend_sse42(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return extend_table(crc, data, n);
}

std::uint32_t extend_sse42_3way(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return extend_table(crc, data, n);
}

#endif

}  // namespace crc32c_impl

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  static const ExtendFn extend = pick_extend();
  return extend(crc, data, n);
}

}  // namespace corobtree
