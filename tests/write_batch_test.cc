// WriteBatch and the log's encoding of operations (engine/log/batch_format.h):
// the bytes are exactly the documented layout, batches round-trip through
// their encoding (and through a logged payload), and a damaged payload (cut
// anywhere, lengths that overflow, an unknown kind) is rejected with
// kCorruption naming its source, without reading past the bytes (the inputs
// sit in exactly sized heap buffers, so ASan would see an overread).
#define BOOST_TEST_MODULE write_batch
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <corobtree/error.h>
#include <corobtree/write_batch.h>

#include "engine/log/batch_format.h"
#include "engine/log/write_batch_internal.h"
#include "tests/support/random.h"
#include "tests/support/seed.h"

using corobtree::BatchOp;
using corobtree::BatchReader;
using corobtree::Error;
using corobtree::ErrorCode;
using corobtree::OpKind;
using corobtree::OpLayout;
using corobtree::WriteBatch;
using corobtree::WriteBatchInternal;

namespace {

std::vector<std::byte> bytes_of(const WriteBatch& b) {
  const auto c = WriteBatchInternal::contents(b);
  return std::vector<std::byte>(c.begin(), c.end());
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  if (!s.empty()) std::memcpy(v.data(), s.data(), s.size());
  return v;
}

// Decodes `bytes` (held in an exactly sized heap buffer) completely.
std::vector<BatchOp> decode(const std::vector<std::byte>& bytes) {
  BatchReader reader(bytes, "the test's bytes", "/nowhere");
  std::vector<BatchOp> out;
  BatchOp op;
  while (reader.next(op)) out.push_back(op);
  return out;
}

// Runs a decode that must fail with kCorruption naming the source.
void expect_corruption(const std::vector<std::byte>& bytes, const std::string& what) {
  try {
    (void)decode(bytes);
    BOOST_FAIL(what << ": a damaged payload decoded");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == ErrorCode::kCorruption), what << ": " << e.what());
    BOOST_TEST(std::string(e.what()).find("the test's bytes") != std::string::npos, e.what());
    BOOST_TEST(e.path() == "/nowhere");
  }
}

// One operation's header with the given fields, followed by `body` bytes.
std::vector<std::byte> raw_op(std::uint8_t kind, std::uint32_t key_len, std::uint64_t value_len,
                              std::size_t body) {
  std::vector<std::byte> v(OpLayout::kSize + body, std::byte{0x61});
  OpLayout::Kind::set(v.data(), kind);
  OpLayout::KeyLength::set(v.data(), key_len);
  OpLayout::ValueLength::set(v.data(), value_len);
  return v;
}

}  // namespace

// The bytes of a put and an erase, field by field (docs/file-format.md).
BOOST_AUTO_TEST_CASE(encoding_is_the_documented_layout) {
  WriteBatch b;
  b.put("key", "value!");
  b.erase("gone");
  const std::vector<std::byte> v = bytes_of(b);
  const std::vector<unsigned char> expected = {
      1,   3,   0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 'k', 'e', 'y', 'v', 'a', 'l', 'u',
      'e', '!', 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   0,   'g', 'o', 'n', 'e'};
  BOOST_REQUIRE_EQUAL(v.size(), expected.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    BOOST_TEST(static_cast<unsigned>(v[i]) == static_cast<unsigned>(expected[i]), "byte " << i);
  }
}

BOOST_AUTO_TEST_CASE(round_trip) {
  const std::uint64_t seed = corobtree::test::test_seed("write_batch round_trip");
  std::mt19937_64 rng(seed);
  WriteBatch b;
  std::vector<WriteBatch::Op> model;
  BOOST_TEST(b.empty());
  for (int i = 0; i < 500; ++i) {
    const std::string key = corobtree::test::random_bytes(rng, rng() % 40);
    if (rng() % 3 == 0) {
      b.erase(key);
      model.push_back(WriteBatch::Op{true, key, {}});
    } else {
      const std::string value = corobtree::test::random_bytes(rng, rng() % 300);
      b.put(key, value);
      model.push_back(WriteBatch::Op{false, key, value});
    }
  }
  BOOST_TEST(b.size() == model.size());
  const auto check = [&](const WriteBatch& batch) {
    const std::vector<WriteBatch::Op> ops = batch.ops();
    BOOST_REQUIRE_EQUAL(ops.size(), model.size());
    for (std::size_t i = 0; i < ops.size(); ++i) {
      BOOST_TEST(ops[i].erase == model[i].erase, "op " << i);
      BOOST_TEST(ops[i].key == model[i].key, "op " << i);
      BOOST_TEST(ops[i].value == model[i].value, "op " << i);
    }
  };
  check(b);
  // Through a logged payload: the bytes a commit logs make the same batch.
  const auto c = WriteBatchInternal::contents(b);
  std::string rep(reinterpret_cast<const char*>(c.data()), c.size());
  const WriteBatch again = WriteBatchInternal::from_contents(std::move(rep), "a payload", "");
  BOOST_TEST(again.size() == b.size());
  check(again);
  // Copies are equal; a moved-from batch is empty; clear empties.
  WriteBatch copy = b;
  check(copy);
  WriteBatch moved = std::move(copy);
  check(moved);
  BOOST_TEST(copy.empty());  // NOLINT(bugprone-use-after-move): documented
  BOOST_TEST(copy.ops().empty());
  moved.clear();
  BOOST_TEST(moved.empty());
  BOOST_TEST(moved.size() == 0u);
  BOOST_TEST(WriteBatchInternal::contents(moved).empty());
}

BOOST_AUTO_TEST_CASE(empty_keys_and_values) {
  WriteBatch b;
  b.put("", "");
  b.erase("");
  b.put("k", "");
  const auto ops = b.ops();
  BOOST_REQUIRE_EQUAL(ops.size(), 3u);
  BOOST_TEST(!ops[0].erase);
  BOOST_TEST(ops[0].key.empty());
  BOOST_TEST(ops[1].erase);
  BOOST_TEST(ops[2].key == "k");
  BOOST_TEST(bytes_of(b).size() == 3 * OpLayout::kSize + 1);
}

// Every cut that is not at an operation's end is damage; a cut at one is a
// shorter, valid batch.
BOOST_AUTO_TEST_CASE(truncated_payloads_are_rejected) {
  WriteBatch b;
  b.put("alpha", "one");
  b.erase("beta");
  b.put("gamma", std::string(40, 'g'));
  const std::vector<std::byte> full = bytes_of(b);
  const std::vector<std::size_t> ends = {OpLayout::kSize + 8, 2 * OpLayout::kSize + 12,
                                         full.size()};
  for (std::size_t cut = 0; cut <= full.size(); ++cut) {
    const std::vector<std::byte> part(full.begin(), full.begin() + static_cast<long>(cut));
    std::size_t whole = 0;
    bool at_end = cut == 0;
    for (std::size_t i = 0; i < ends.size(); ++i) {
      if (cut >= ends[i]) whole = i + 1;
      if (cut == ends[i]) at_end = true;
    }
    if (at_end) {
      BOOST_TEST(decode(part).size() == whole, "cut at " << cut);
    } else {
      expect_corruption(part, "cut at " + std::to_string(cut));
    }
  }
}

// Lengths near their types' limits: the decoder compares each with the bytes
// left instead of adding them up, so nothing overflows or reads past the end.
BOOST_AUTO_TEST_CASE(overflowing_lengths_are_rejected) {
  constexpr auto kMaxKey = std::numeric_limits<std::uint32_t>::max();
  constexpr auto kMaxValue = std::numeric_limits<std::uint64_t>::max();
  expect_corruption(raw_op(1, kMaxKey, 0, 16), "key length 2^32-1");
  expect_corruption(raw_op(1, 4, kMaxValue, 16), "value length 2^64-1");
  expect_corruption(raw_op(1, 4, kMaxValue - 3, 16), "key + value lengths wrap to 0");
  expect_corruption(raw_op(1, kMaxKey, kMaxValue - kMaxKey + 1, 16), "lengths sum to 2^64");
  expect_corruption(raw_op(1, 8, 9, 16), "one byte short");
  BOOST_TEST(decode(raw_op(1, 8, 8, 16)).size() == 1u);
  // A valid operation followed by one whose lengths overflow.
  std::vector<std::byte> two = raw_op(1, 2, 2, 4);
  const std::vector<std::byte> bad = raw_op(1, 1, kMaxValue, 3);
  two.insert(two.end(), bad.begin(), bad.end());
  expect_corruption(two, "second operation");
}

BOOST_AUTO_TEST_CASE(unknown_kinds_and_erase_values_are_rejected) {
  expect_corruption(raw_op(0, 1, 0, 1), "kind 0");
  expect_corruption(raw_op(3, 1, 0, 1), "kind 3");
  expect_corruption(raw_op(255, 1, 0, 1), "kind 255");
  expect_corruption(raw_op(2, 1, 2, 3), "an erase with a value");
  BOOST_TEST(decode(raw_op(2, 1, 0, 1)).size() == 1u);
  // A rebuilt batch checks the whole payload.
  try {
    (void)WriteBatchInternal::from_contents(std::string("\x01\x05\x00", 3), "transaction 9",
                                            "/x-wal");
    BOOST_FAIL("a damaged payload made a batch");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == ErrorCode::kCorruption));
    BOOST_TEST(std::string(e.what()).find("transaction 9") != std::string::npos, e.what());
    BOOST_TEST(e.path() == "/x-wal");
  }
}

// Random bytes never crash the decoder: each input decodes or is kCorruption.
BOOST_AUTO_TEST_CASE(random_bytes_never_read_out_of_bounds) {
  const std::uint64_t seed = corobtree::test::test_seed("write_batch random bytes");
  std::mt19937_64 rng(seed);
  int rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = corobtree::test::random_bytes(rng, rng() % 64);
    if (!s.empty() && rng() % 2 == 0) s[0] = static_cast<char>(1 + rng() % 2);  // a valid kind
    const std::vector<std::byte> v = bytes_of(s);
    try {
      (void)decode(v);
    } catch (const Error& e) {
      BOOST_REQUIRE(e.code() == ErrorCode::kCorruption);
      ++rejected;
    }
  }
  BOOST_TEST(rejected > 0);
}
