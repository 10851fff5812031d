// RESP2 parsing and encoding (resp.h).
#include "tools/server/resp.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

namespace corobtree::server {

namespace {

bool parse_length(std::string_view text, std::int64_t& value) { return parse_int64(text, value); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}

}  // namespace

bool parse_int64(std::string_view s, std::int64_t& value) noexcept {
  if (s.empty() || s.size() > 20) return false;
  if (s == "0") {
    value = 0;
    return true;
  }
  bool negative = false;
  std::size_t i = 0;
  if (s[0] == '-') {
    negative = true;
    i = 1;
    if (s.size() == 1) return false;
  }
  if (s[i] < '1' || s[i] > '9') return false;
  std::uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const std::uint64_t d = static_cast<std::uint64_t>(s[i] - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  constexpr std::uint64_t kMaxPositive = std::numeric_limits<std::int64_t>::max();
  if (negative) {
    if (v > kMaxPositive + 1) return false;
    value = v == kMaxPositive + 1 ? std::numeric_limits<std::int64_t>::min()
                                  : -static_cast<std::int64_t>(v);
  } else {
    if (v > kMaxPositive) return false;
    value = static_cast<std::int64_t>(v);
  }
  return true;
}

Command split_inline(std::string_view line) {
  Command words;
  std::size_t i = 0;
  const std::size_t n = line.size();
  for (;;) {
    while (i < n && is_space(line[i])) ++i;
    if (i == n) return words;
    std::string word;
    bool in_double = false;
    bool in_single = false;
    for (bool done = false; !done;) {
      if (in_double) {
        if (i == n) throw ProtocolError("unbalanced quotes in request");
        if (line[i] == '\\' && i + 3 < n && line[i + 1] == 'x' && hex_value(line[i + 2]) >= 0 &&
            hex_value(line[i + 3]) >= 0) {
          word.push_back(static_cast<char>(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3])));
          i += 4;
        } else if (line[i] == '\\' && i + 1 < n) {
          char c = line[i + 1];
          switch (c) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'b': c = '\b'; break;
            case 'a': c = '\a'; break;
            default: break;
          }
          word.push_back(c);
          i += 2;
        } else if (line[i] == '"') {
          // A closing quote must be followed by a space or the end.
          if (i + 1 < n && !is_space(line[i + 1])) {
            throw ProtocolError("unbalanced quotes in request");
          }
          ++i;
          done = true;
        } else {
          word.push_back(line[i++]);
        }
      } else if (in_single) {
        if (i == n) throw ProtocolError("unbalanced quotes in request");
        if (line[i] == '\\' && i + 1 < n && line[i + 1] == '\'') {
          word.push_back('\'');
          i += 2;
        } else if (line[i] == '\'') {
          if (i + 1 < n && !is_space(line[i + 1])) {
            throw ProtocolError("unbalanced quotes in request");
          }
          ++i;
          done = true;
        } else {
          word.push_back(line[i++]);
        }
      } else if (i == n || is_space(line[i])) {
        done = true;
      } else if (line[i] == '"') {
        in_double = true;
        ++i;
      } else if (line[i] == '\'') {
        in_single = true;
        ++i;
      } else {
        word.push_back(line[i++]);
      }
    }
    words.push_back(std::move(word));
  }
}

bool RespParser::take_line(std::string_view& input, const char* too_big_message) {
  const std::size_t nl = input.find('\n');
  const std::size_t take = nl == std::string_view::npos ? input.size() : nl + 1;
  if (line_.size() + take > limits_.max_inline + 2) throw ProtocolError(too_big_message);
  line_.append(input.substr(0, take));
  input.remove_prefix(take);
  if (nl == std::string_view::npos) return false;
  line_.pop_back();  // '\n'
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  return true;
}

void RespParser::begin_bulk_header() {
  state_ = State::kBulkHeader;
  line_.clear();
}

void RespParser::finish_command(Command& out) {
  out = std::move(args_);
  args_ = Command();
  state_ = State::kStart;
  line_.clear();
  query_bytes_ = 0;
}

bool RespParser::next(std::string_view& input, Command& out) {
  while (!input.empty()) {
    switch (state_) {
      case State::kStart:
        state_ = input.front() == '*' ? State::kMultibulkCount : State::kInline;
        line_.clear();
        break;
      case State::kInline: {
        if (!take_line(input, "too big inline request")) return false;
        Command words = split_inline(line_);
        state_ = State::kStart;
        line_.clear();
        if (!words.empty()) {
          out = std::move(words);
          return true;
        }
        break;
      }
      case State::kMultibulkCount: {
        if (!take_line(input, "too big mbulk count string")) return false;
        std::int64_t count = 0;
        if (!parse_length(std::string_view(line_).substr(1), count) ||
            count > static_cast<std::int64_t>(limits_.max_args)) {
          throw ProtocolError("invalid multibulk length");
        }
        if (count <= 0) {  // an empty command: skipped
          state_ = State::kStart;
          line_.clear();
          break;
        }
        expected_args_ = count;
        args_.clear();
        args_.reserve(static_cast<std::size_t>(std::min<std::int64_t>(count, 1024)));
        query_bytes_ = 0;
        begin_bulk_header();
        break;
      }
      case State::kBulkHeader: {
        if (!take_line(input, "too big bulk count string")) return false;
        if (line_.empty() || line_[0] != '$') {
          std::string msg = "expected '$', got '";
          msg.push_back(line_.empty() ? ' ' : line_[0]);
          msg += "'";
          throw ProtocolError(msg);
        }
        std::int64_t len = 0;
        if (!parse_length(std::string_view(line_).substr(1), len) || len < 0 ||
            static_cast<std::uint64_t>(len) > limits_.max_bulk) {
          throw ProtocolError("invalid bulk length");
        }
        bulk_len_ = static_cast<std::size_t>(len);
        query_bytes_ += bulk_len_;
        if (query_bytes_ > limits_.max_query_bytes) {
          throw ProtocolError("command larger than the query limit");
        }
        args_.emplace_back();
        args_.back().reserve(std::min<std::size_t>(bulk_len_, std::size_t{64} << 10));
        state_ = State::kBulkData;
        line_.clear();
        break;
      }
      case State::kBulkData: {
        std::string& arg = args_.back();
        const std::size_t want = bulk_len_ - arg.size();
        const std::size_t take = std::min(want, input.size());
        if (arg.size() + take > arg.capacity()) {
          // Grow geometrically but never past the announced length.
          arg.reserve(std::min(bulk_len_, std::max(arg.capacity() * 2, arg.size() + take)));
        }
        arg.append(input.substr(0, take));
        input.remove_prefix(take);
        if (arg.size() == bulk_len_) {
          state_ = State::kBulkEnd;
          crlf_seen_ = 0;
        }
        break;
      }
      case State::kBulkEnd: {
        const char expected = crlf_seen_ == 0 ? '\r' : '\n';
        if (input.front() != expected) throw ProtocolError("expected CRLF after bulk data");
        input.remove_prefix(1);
        if (++crlf_seen_ < 2) break;
        if (static_cast<std::int64_t>(args_.size()) == expected_args_) {
          finish_command(out);
          return true;
        }
        begin_bulk_header();
        break;
      }
    }
  }
  return false;
}

void reply_simple(std::string& out, std::string_view text) {
  out.push_back('+');
  for (char c : text) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  out += "\r\n";
}

void reply_error(std::string& out, std::string_view text) {
  out.push_back('-');
  for (char c : text) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  out += "\r\n";
}

namespace {
void append_number(std::string& out, char type, std::int64_t value) {
  char buf[24];
  buf[0] = type;
  auto r = std::to_chars(buf + 1, buf + sizeof(buf), value);
  out.append(buf, r.ptr);
  out += "\r\n";
}
}  // namespace

void reply_integer(std::string& out, std::int64_t value) { append_number(out, ':', value); }

void reply_bulk(std::string& out, std::string_view bytes) {
  append_number(out, '$', static_cast<std::int64_t>(bytes.size()));
  out.append(bytes);
  out += "\r\n";
}

void reply_null(std::string& out) { out += "$-1\r\n"; }

void reply_array(std::string& out, std::size_t count) {
  append_number(out, '*', static_cast<std::int64_t>(count));
}

}  // namespace corobtree::server
