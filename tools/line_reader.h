// LineReader: reads a stream line by line with getline(3), so lines may hold
// any bytes (NULs included) and be of any length.
//
// Thread-safety: one thread, like the FILE it reads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace corobtree::cli {

class LineReader {
 public:
  explicit LineReader(std::FILE* in) : in_(in) {}
  ~LineReader() { std::free(buf_); }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its '\n' (and without a '\r' before it); false at
  // end of input or on a read error (see failed()). The view lives until the
  // next call.
  bool next(std::string_view& line) {
    const ssize_t n = ::getline(&buf_, &cap_, in_);
    if (n < 0) return false;
    bytes_ += static_cast<std::uint64_t>(n);
    line = std::string_view(buf_, static_cast<std::size_t>(n));
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  }

  bool failed() const { return std::ferror(in_) != 0; }
  // Bytes consumed so far, line ends included.
  std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  std::FILE* in_;
  char* buf_ = nullptr;
  std::size_t cap_ = 0;
  std::uint64_t bytes_ = 0;
};

}  // namespace corobtree::cli
