#include "tools/escape.h"

namespace corobtree::cli {

namespace {

constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The text around a bad escape as typed, with unprintable bytes shown as
// \xHH so that the message stays one printable line.
std::string where(std::string_view text, std::size_t pos) {
  std::string s = " at byte " + std::to_string(pos) + " of '";
  for (const char ch : text.substr(0, 64)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      s += ch;
    } else {
      s += "\\x";
      s += kHex[c >> 4];
      s += kHex[c & 0xf];
    }
  }
  if (text.size() > 64) s += "...";
  return s + "'";
}

}  // namespace

std::string escape(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\': out += "\\\\"; continue;
      case '\t': out += "\\t"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      default: break;
    }
    if (c > 0x20 && c < 0x7f && c != '"') {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string escape_arg(std::string_view bytes) {
  return bytes.empty() ? std::string("\"\"") : escape(bytes);
}

std::string unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (i + 1 == text.size()) throw EscapeError("trailing backslash" + where(text, i));
    const char e = text[i + 1];
    switch (e) {
      case '\\': out += '\\'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'x': {
        const int hi = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
        const int lo = i + 3 < text.size() ? hex_value(text[i + 3]) : -1;
        if (hi < 0 || lo < 0) {
          const std::string_view bad = text.substr(i, 4);
          throw EscapeError("bad escape '" + std::string(bad) + "' (\\x needs two hex digits)" +
                            where(text, i));
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        throw EscapeError("bad escape '\\" + escape(std::string_view(&e, 1)) + "'" +
                          where(text, i) + " (known: \\\\ \\t \\n \\r \\xHH)");
    }
    ++i;
  }
  return out;
}

std::string parse_arg(std::string_view text) {
  if (text == "\"\"") return {};
  return unescape(text);
}

std::string format_dump_line(std::string_view key, std::string_view value) {
  std::string line = escape(key);
  line += '\t';
  line += escape(value);
  return line;
}

std::pair<std::string, std::string> parse_dump_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const std::size_t tab = line.find('\t');
  if (tab == std::string_view::npos) {
    throw EscapeError("expected KEY<TAB>VALUE, found no tab in '" + escape(line.substr(0, 64)) +
                      "'");
  }
  if (line.find('\t', tab + 1) != std::string_view::npos) {
    throw EscapeError(
        "expected KEY<TAB>VALUE, found more than one tab (a tab inside a key or "
        "value must be written \\t)");
  }
  return {parse_arg(line.substr(0, tab)), parse_arg(line.substr(tab + 1))};
}

}  // namespace corobtree::cli
