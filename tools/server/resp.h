// RESP2, the Redis wire protocol: an incremental request parser and a reply
// encoder (docs/server.md, "Protocol").
//
// RespParser takes the bytes a connection reads, in any split, and yields
// whole commands (each a vector of binary-safe arguments). It accepts the two
// request forms redis-server accepts: multibulk (`*N\r\n$len\r\nbytes\r\n`...)
// and inline (a line of space-separated words, with "..." and '...' quoting).
// A bulk's bytes are copied into its argument as they arrive, so the caller
// never has to keep more than one read's worth of input: the memory of a
// command in progress is bounded by Limits::max_query_bytes. Anything
// malformed, and every limit exceeded, throws ProtocolError, after which the
// parser is unusable (the server answers `-ERR Protocol error: ...` and closes
// the connection, as redis-server does).
//
// The encoder functions append one RESP2 reply to a string.
//
// Thread-safety: a RespParser is a plain value, used by one connection at a
// time; the encoder functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace corobtree::server {

// One command: its name and arguments, as sent (binary-safe).
using Command = std::vector<std::string>;

// A malformed frame or an exceeded limit. what() is the text after
// "Protocol error: " in the reply.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RespLimits {
  std::size_t max_bulk = std::size_t{512}
                         << 20;                 // bytes of one argument (Redis: proto-max-bulk-len)
  std::size_t max_args = std::size_t{1} << 20;  // arguments of one multibulk command
  std::size_t max_inline = std::size_t{64} << 10;      // bytes of an inline line or a header line
  std::size_t max_query_bytes = std::size_t{1} << 30;  // argument bytes of one command
};

class RespParser {
 public:
  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  // Consumes bytes from the front of `input` (advancing it) until one command
  // is complete, then stores it in `out` and returns true. Returns false when
  // `input` is used up before a command ends (the partial command is kept;
  // call again with the following bytes). Empty commands (`*0`, `*-1`, a
  // blank line) are skipped, as redis-server does. Throws ProtocolError.
  bool next(std::string_view& input, Command& out);

  // True between commands (no partial command held).
  bool idle() const noexcept { return state_ == State::kStart && line_.empty(); }

 private:
  enum class State { kStart, kInline, kMultibulkCount, kBulkHeader, kBulkData, kBulkEnd };

  // Appends to line_ up to and including '\n'; true once a line is complete
  // (line_ then holds it without the line ending).
  bool take_line(std::string_view& input, const char* too_big_message);
  void begin_bulk_header();
  void finish_command(Command& out);

  RespLimits limits_;
  State state_ = State::kStart;
  std::string line_;  // a header or inline line collected so far
  Command args_;      // the command being assembled
  std::int64_t expected_args_ = 0;
  std::size_t bulk_len_ = 0;
  std::size_t query_bytes_ = 0;
  std::size_t crlf_seen_ = 0;  // bytes of the \r\n after a bulk seen so far
};

// Splits an inline request line into words the way redis-server does:
// whitespace separates; "..." takes the escapes \n \r \t \b \a \\ \" \xHH;
// '...' takes \'; a closing quote must be followed by a space or the end.
// Throws ProtocolError("unbalanced quotes in request").
Command split_inline(std::string_view line);

// Parses a whole decimal int64 the way Redis's string2ll does: an optional
// '-', no leading zeros (except "0"), no spaces or '+', within range.
bool parse_int64(std::string_view text, std::int64_t& value) noexcept;

// ---- Replies ----
void reply_simple(std::string& out, std::string_view text);  // +text (no CR/LF in it)
void reply_error(std::string& out, std::string_view text);   // -text (CR/LF become spaces)
void reply_integer(std::string& out, std::int64_t value);
void reply_bulk(std::string& out, std::string_view bytes);
void reply_null(std::string& out);                      // the null bulk string, $-1
void reply_array(std::string& out, std::size_t count);  // header; the elements follow

}  // namespace corobtree::server
