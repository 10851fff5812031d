// Byte strings as text: the escaping shared by the corobtree tool's command
// line, its dump format and its shell protocol.
//
// Escapes: \\ \t \n \r and \xHH (two hex digits, either case). Writing
// escapes every byte that could split a field or a line or that is not
// printable ASCII: space (\x20), tab, newline, CR, backslash, double quote
// (\x22), bytes below 0x20, 0x7f and bytes of 0x80 and above. So escaped text
// is printable ASCII without spaces, tabs or quotes, and unescape(escape(b))
// == b for every byte string b.
//
// Reading is lenient about raw bytes (a raw space or quote is taken as
// itself) but strict about escapes: an unknown escape or a trailing
// backslash throws EscapeError.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace corobtree::cli {

// Malformed escaped text (the message says what and where).
class EscapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The escaped form of `bytes`; empty for empty input.
std::string escape(std::string_view bytes);

// Like escape(), but the empty string is written as "" (two double quotes):
// the form used on the command line and in the shell.
std::string escape_arg(std::string_view bytes);

// Decodes escaped text. Throws EscapeError on a bad escape.
std::string unescape(std::string_view text);

// Decodes an argument: exactly "" is the empty string, anything else is
// unescape()d. Throws EscapeError on a bad escape.
std::string parse_arg(std::string_view text);

// The dump format: one pair per line, KEY<TAB>VALUE, both escape()d (an
// empty key or value is an empty field). Returns the line without '\n'.
std::string format_dump_line(std::string_view key, std::string_view value);

// Parses one dump line (without its '\n'; a trailing '\r' is ignored).
// Throws EscapeError when the line is not exactly two fields or a field has
// a bad escape.
std::pair<std::string, std::string> parse_dump_line(std::string_view line);

}  // namespace corobtree::cli
