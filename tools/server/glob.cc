// Glob matching (glob.h).
#include "tools/server/glob.h"

#include <cstddef>

namespace corobtree::server {

namespace {

// Matches the element of `pattern` at `p` (not '*') against byte `c`;
// sets `next` to the index after the element.
bool match_one(std::string_view pattern, std::size_t p, char c, std::size_t& next) noexcept {
  const std::size_t n = pattern.size();
  if (pattern[p] == '?') {
    next = p + 1;
    return true;
  }
  if (pattern[p] == '\\' && p + 1 < n) {
    next = p + 2;
    return pattern[p + 1] == c;
  }
  if (pattern[p] != '[') {
    next = p + 1;
    return pattern[p] == c;
  }
  std::size_t i = p + 1;
  bool negate = false;
  if (i < n && pattern[i] == '^') {
    negate = true;
    ++i;
  }
  bool matched = false;
  const auto uc = static_cast<unsigned char>(c);
  while (i < n && pattern[i] != ']') {
    if (pattern[i] == '\\' && i + 1 < n) {
      if (pattern[i + 1] == c) matched = true;
      i += 2;
    } else if (i + 2 < n && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      auto lo = static_cast<unsigned char>(pattern[i]);
      auto hi = static_cast<unsigned char>(pattern[i + 2]);
      if (lo > hi) {
        const unsigned char t = lo;
        lo = hi;
        hi = t;
      }
      if (uc >= lo && uc <= hi) matched = true;
      i += 3;
    } else {
      if (pattern[i] == c) matched = true;
      ++i;
    }
  }
  next = i < n ? i + 1 : i;  // past ']' (an unclosed class runs to the end)
  return matched != negate;
}

// The index after the element of `pattern` at `p` (not '*'), as match_one.
std::size_t element_end(std::string_view pattern, std::size_t p) noexcept {
  const std::size_t n = pattern.size();
  if (pattern[p] == '\\') return p + 1 < n ? p + 2 : p + 1;
  if (pattern[p] != '[') return p + 1;
  std::size_t i = p + 1;
  if (i < n && pattern[i] == '^') ++i;
  while (i < n && pattern[i] != ']') {
    if (pattern[i] == '\\' && i + 1 < n) {
      i += 2;
    } else if (i + 2 < n && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      i += 3;
    } else {
      ++i;
    }
  }
  return i < n ? i + 1 : i;
}

}  // namespace

std::size_t glob_min_length(std::string_view pattern) noexcept {
  std::size_t count = 0;
  std::size_t p = 0;
  while (p < pattern.size()) {
    if (pattern[p] == '*') {
      ++p;
      continue;
    }
    p = element_end(pattern, p);
    ++count;
  }
  return count;
}

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star_p = std::string_view::npos;  // index after the last '*'
  std::size_t star_t = 0;                       // text position it matched up to
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      if (p == pattern.size()) return true;
      star_p = p;
      star_t = t;
      continue;
    }
    std::size_t next = 0;
    if (p < pattern.size() && match_one(pattern, p, text[t], next)) {
      p = next;
      ++t;
      continue;
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace corobtree::server
