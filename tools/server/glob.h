// Redis-style glob matching for SCAN's MATCH (docs/server.md, "SCAN").
//
// `*` any run of bytes, `?` one byte, `[abc]`, `[^abc]`, `[a-z]` a class,
// `\x` the byte x literally. Binary-safe; time is O(pattern x text) (the
// last `*` is backtracked to, never an exponential search).
//
// Thread-safety: a pure function.
#pragma once

#include <cstddef>
#include <string_view>

namespace corobtree::server {

bool glob_match(std::string_view pattern, std::string_view text) noexcept;

// The fewest bytes a text matching `pattern` has (its elements other than
// `*`): a shorter text never matches.
std::size_t glob_min_length(std::string_view pattern) noexcept;

}  // namespace corobtree::server
