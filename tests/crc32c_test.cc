// CRC32C: published check values, every implementation (table, one SSE4.2
// chain, three interleaved chains) agreeing on random lengths and alignments,
// and crc32c_extend composing over split buffers.
#define BOOST_TEST_MODULE crc32c
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/format/crc32c.h"
#include "tests/support/seed.h"

using corobtree::crc32c;
using corobtree::crc32c_extend;
namespace impl = corobtree::crc32c_impl;

namespace {

using ExtendFn = std::uint32_t (*)(std::uint32_t, const void*, std::size_t) noexcept;

struct Impl {
  const char* name;
  ExtendFn fn;
};

// The implementations this CPU can run, the table first (the reference).
std::vector<Impl> available_impls() {
  std::vector<Impl> v{{"table", impl::extend_table}};
  if (impl::have_sse42()) v.push_back({"sse42", impl::extend_sse42});
  if (impl::have_sse42_pclmul()) v.push_back({"sse42_3way", impl::extend_sse42_3way});
  return v;
}

std::vector<unsigned char> random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<unsigned char> v(n);
  for (auto& b : v) b = static_cast<unsigned char>(rng());
  return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(known_vectors) {
  BOOST_TEST_MESSAGE("sse4.2: " << impl::have_sse42()
                                << ", sse4.2+pclmul: " << impl::have_sse42_pclmul());
  const std::string check = "123456789";
  std::vector<unsigned char> zeros(32, 0x00);
  std::vector<unsigned char> ones(32, 0xff);
  std::vector<unsigned char> up(32);
  std::vector<unsigned char> down(32);
  for (int i = 0; i < 32; ++i) {
    up[static_cast<std::size_t>(i)] = static_cast<unsigned char>(i);
    down[static_cast<std::size_t>(i)] = static_cast<unsigned char>(31 - i);
  }
  for (const Impl& im : available_impls()) {
    BOOST_TEST_CONTEXT(im.name) {
      BOOST_TEST(im.fn(0, check.data(), check.size()) == 0xE3069283u);
      BOOST_TEST(im.fn(0, nullptr, 0) == 0u);
      // RFC 3720 (iSCSI), appendix B.4.
      BOOST_TEST(im.fn(0, zeros.data(), zeros.size()) == 0x8A9136AAu);
      BOOST_TEST(im.fn(0, ones.data(), ones.size()) == 0x62A8AB43u);
      BOOST_TEST(im.fn(0, up.data(), up.size()) == 0x46DD794Eu);
      BOOST_TEST(im.fn(0, down.data(), down.size()) == 0x113FDB5Cu);
    }
  }
  BOOST_TEST(crc32c(check.data(), check.size()) == 0xE3069283u);
}

// Every length up to a few rounds of the interleaved version (its round and
// stream boundaries, and the tail after them), at every alignment mod 8.
BOOST_AUTO_TEST_CASE(implementations_agree_on_all_short_lengths) {
  std::mt19937_64 rng(corobtree::test::test_seed("crc32c short lengths"));
  const std::vector<unsigned char> buf = random_bytes(rng, 2200 + 8);
  const std::vector<Impl> impls = available_impls();
  for (std::size_t n = 0; n <= 2200; ++n) {
    const std::size_t align = n % 8;
    const auto seed = static_cast<std::uint32_t>(rng());
    const std::uint32_t want = impl::extend_table(seed, buf.data() + align, n);
    for (const Impl& im : impls) {
      BOOST_TEST_CONTEXT(im.name << " n=" << n << " align=" << align) {
        BOOST_TEST(im.fn(seed, buf.data() + align, n) == want);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(implementations_agree_on_random_lengths_and_alignments) {
  std::mt19937_64 rng(corobtree::test::test_seed("crc32c random lengths"));
  const std::vector<unsigned char> buf = random_bytes(rng, 20000 + 64);
  const std::vector<Impl> impls = available_impls();
  std::uniform_int_distribution<std::size_t> len(0, 20000);
  std::uniform_int_distribution<std::size_t> off(0, 63);
  for (int round = 0; round < 400; ++round) {
    const std::size_t n = len(rng);
    const std::size_t o = off(rng);
    const auto seed = static_cast<std::uint32_t>(round % 2 == 0 ? 0 : rng());
    const std::uint32_t want = impl::extend_table(seed, buf.data() + o, n);
    for (const Impl& im : impls) {
      BOOST_TEST_CONTEXT(im.name << " n=" << n << " offset=" << o) {
        BOOST_TEST(im.fn(seed, buf.data() + o, n) == want);
      }
    }
    BOOST_TEST(crc32c_extend(seed, buf.data() + o, n) == want);
  }
  // A page checksum's shape: an 8-byte id, then a 4 KiB page less 4 bytes.
  const std::uint32_t id_crc = crc32c(buf.data(), 8);
  BOOST_TEST(crc32c_extend(id_crc, buf.data() + 12, 4092) ==
             impl::extend_table(impl::extend_table(0, buf.data(), 8), buf.data() + 12, 4092));
}

BOOST_AUTO_TEST_CASE(extend_composes_over_splits) {
  std::mt19937_64 rng(corobtree::test::test_seed("crc32c extend"));
  const std::vector<unsigned char> buf = random_bytes(rng, 20000);
  const std::uint32_t whole = crc32c(buf.data(), buf.size());
  std::uniform_int_distribution<std::size_t> cut(0, buf.size());
  for (int round = 0; round < 200; ++round) {
    std::size_t a = cut(rng);
    std::size_t b = cut(rng);
    if (a > b) std::swap(a, b);
    std::uint32_t crc = crc32c(buf.data(), a);
    crc = crc32c_extend(crc, buf.data() + a, b - a);
    crc = crc32c_extend(crc, buf.data() + b, buf.size() - b);
    BOOST_TEST(crc == whole, "cuts at " << a << " and " << b);
  }
  // Byte by byte through the public entry point.
  std::uint32_t crc = 0;
  for (std::size_t i = 0; i < 3000; ++i) crc = crc32c_extend(crc, buf.data() + i, 1);
  BOOST_TEST(crc == crc32c(buf.data(), 3000));
}
