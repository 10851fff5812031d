// The page and escape targets and their restamping (tests/fuzz/fuzz_targets.h).
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <corobtree/error.h>

#include "engine/btree/node.h"
#include "engine/format/meta.h"
#include "engine/format/page_format.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tools/escape.h"

namespace corobtree::fuzz {
namespace {

// The page target's page id (its checksum covers it). 0 lets the same bytes
// also decode as a meta page.
constexpr BlockId kPageId = 0;

// Reads every byte a Node hands out, so that a view past the page is an ASan
// report (the sum keeps the reads from being optimised away).
std::uint64_t touch(std::string_view s) {
  std::uint64_t sum = 0;
  for (char c : s) sum += static_cast<unsigned char>(c);
  return sum;
}

void check_verifies(std::span<std::byte> page, const char* after) {
  page::stamp_checksum(kPageId, page);
  try {
    page::verify(kPageId, page, "fuzz");
  } catch (const Error& e) {
    fail(std::string("a verified page no longer verifies after ") + after + ": " + e.what());
  }
}

}  // namespace

// Input: the page (the first kFuzzPageSize bytes, zero-padded), then a probe
// key (up to 64 bytes) for searches and inserts.
int page_one_input(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> buf(kFuzzPageSize);
  std::memcpy(buf.data(), data, std::min<std::size_t>(size, kFuzzPageSize));
  const std::string probe(
      reinterpret_cast<const char*>(data) + std::min<std::size_t>(size, kFuzzPageSize),
      std::min<std::size_t>(size - std::min<std::size_t>(size, kFuzzPageSize), 64));
  const std::span<std::byte> page(buf);

  const DecodedMeta meta = decode_meta(kPageId, page);
  (void)meta;
  try {
    page::verify(kPageId, page, "fuzz");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption) fail(std::string("verify threw ") + e.what());
    return 0;
  }
  Node n(page);
  if (n.type() != PageType::kLeaf && n.type() != PageType::kInner) return 0;
  std::uint64_t sum = 0;
  for (std::uint32_t i = 0; i < n.count(); ++i) {
    sum += touch(n.key(i));
    sum += n.cell(i).size();
    if (n.is_leaf()) {
      const Node::Value v = n.value(i);
      if (!v.overflow) sum += touch(v.inline_bytes);
    }
  }
  if (!n.is_leaf()) {
    for (std::uint32_t i = 0; i <= n.count(); ++i) sum += n.child(i);
  }
  if (n.used_bytes() > n.usable()) fail("used bytes exceed the page");
  const std::uint32_t pos = n.lower_bound(probe);
  if (pos > n.count() || n.upper_bound(probe) > n.count() || n.child_index(probe) > n.count()) {
    fail("a search returned a slot past the end");
  }
  // Mutations keep the page valid: remove, compact, insert.
  if (n.count() > 0) {
    n.remove(static_cast<std::uint32_t>(sum % n.count()));
    check_verifies(page, "remove");
  }
  n.compact();
  check_verifies(page, "compact");
  if (probe.size() <= page::max_key(kFuzzPageSize)) {
    const std::vector<std::byte> cell =
        n.is_leaf() ? Node::leaf_cell(probe, std::string_view(probe).substr(0, probe.size() / 2))
                    : Node::inner_cell(probe, 5);
    if (cell.size() <= page::max_cell(kFuzzPageSize) && n.fits(cell.size())) {
      n.insert_cell(n.lower_bound(probe), cell);
      check_verifies(page, "insert_cell");
    }
  }
  return 0;
}

// Checks the CLI's text formats (tools/escape.h) on arbitrary text: every
// parse works or throws EscapeError, escaped text is printable ASCII without
// spaces or quotes, and every round trip gives back what went in.
int escape_one_input(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string e = cli::escape(in);
  for (char c : e) {
    if (c <= ' ' || c > '~' || c == '"') fail("escape wrote a byte that needs escaping");
  }
  if (cli::unescape(e) != in) fail("unescape(escape(b)) != b");
  if (cli::parse_arg(cli::escape_arg(in)) != in) fail("parse_arg(escape_arg(b)) != b");
  try {
    const std::string u = cli::unescape(in);
    if (cli::unescape(cli::escape(u)) != u) fail("round trip of unescape()d text");
  } catch (const cli::EscapeError&) {
  }
  try {
    (void)cli::parse_arg(in);
  } catch (const cli::EscapeError&) {
  }
  try {
    const auto [k, v] = cli::parse_dump_line(in);
    if (cli::parse_dump_line(cli::format_dump_line(k, v)) != std::pair{k, v}) {
      fail("parse_dump_line(format_dump_line(parsed line)) differs");
    }
  } catch (const cli::EscapeError&) {
  }
  // Any two byte strings: the input split at its middle.
  const std::string_view key = in.substr(0, size / 2);
  const std::string_view value = in.substr(size / 2);
  const std::string line = cli::format_dump_line(key, value);
  if (line.find('\n') != std::string::npos) fail("a dump line holds a newline");
  if (cli::parse_dump_line(line) != std::pair{std::string(key), std::string(value)}) {
    fail("parse_dump_line(format_dump_line(k, v)) != (k, v)");
  }
  return 0;
}

void page_restamp(std::uint8_t* data, std::size_t size) {
  if (size < kFuzzPageSize) return;
  page::stamp_checksum(kPageId,
                       std::span<std::byte>(reinterpret_cast<std::byte*>(data), kFuzzPageSize));
}

void escape_restamp(std::uint8_t*, std::size_t) {}

}  // namespace corobtree::fuzz
