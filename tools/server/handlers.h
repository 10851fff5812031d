// The command handlers behind execute() (commands.h), shared between
// commands.cc (strings and counters) and keyspace.cc (SCAN, DBSIZE, INFO,
// FLUSHALL). A handler appends its reply to `out`, or throws CommandError
// (its text becomes the error reply) or corobtree::Error (replied as
// "ERR <message>"); execute() checked the arity and the key lengths before.
//
// Thread-safety: as commands.h.
#pragma once

#include <stdexcept>
#include <string>

#include <corobtree/task.h>
#include "tools/server/commands.h"

namespace corobtree::server {

// An error reply's text, e.g. "ERR syntax error".
class CommandError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr const char* kNotInteger = "ERR value is not an integer or out of range";
inline constexpr const char* kSyntaxError = "ERR syntax error";

std::string ascii_lower(std::string_view s);

Task<void> cmd_scan(CommandContext& ctx, const Command& c, std::string* out);
Task<void> cmd_dbsize(CommandContext& ctx, const Command& c, std::string* out);
Task<void> cmd_info(CommandContext& ctx, const Command& c, std::string* out);
Task<void> cmd_flushall(CommandContext& ctx, const Command& c, std::string* out);

}  // namespace corobtree::server
