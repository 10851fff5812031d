// The corobtree command-line tool: shared declarations of its commands.
//
// Every command works through BlockingDatabase (engine/blocking_database.h)
// and reports failure by throwing: corobtree::Error from the engine,
// UsageError for a bad command line, EscapeError for malformed text.
// main() (tools/main.cc) maps those to exit codes and stderr messages.
//
// Thread-safety: single-threaded, like BlockingDatabase.
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <corobtree/blocking_database.h>
#include <corobtree/database.h>

namespace corobtree::cli {

// Exit codes of the tool.
enum ExitCode : int {
  kExitOk = 0,
  kExitAbsent = 1,   // get/del: the key is not there
  kExitCorrupt = 2,  // check found damage, or the file is damaged / not a database
  kExitFailure = 3,  // anything else: usage, bad escape, locked, missing file, I/O error
};

// A malformed command line.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The options before COMMAND, and the database path.
struct Invocation {
  Options options;
  std::string command;
  std::string db_path;
  std::vector<std::string> args;  // after DB
};

// Opens `inv.db_path`; creates it only if `create`.
BlockingDatabase open_db(const Invocation& inv, bool create);

// Runs one command (not "load" or "shell"); returns the exit code.
int run_basic_command(const Invocation& inv);
// load DB [FILE|-]
int run_load(const Invocation& inv);
// salvage DAMAGED OUT: exit 0 if everything was recovered, 2 if anything was lost.
int run_salvage(const Invocation& inv);
// shell DB: reads commands from `in`, replies on `out`.
int run_shell(const Invocation& inv, std::FILE* in, std::FILE* out);

// Name/value pairs describing the database, for `stats` and the shell.
std::vector<std::pair<std::string, std::string>> stats_fields(BlockingDatabase& db,
                                                              const ValidationReport& report);

// An engine message without the "corobtree: " and "corruption: " prefixes
// that corobtree::Error puts in what() (for CORRUPT lines).
std::string corruption_reason(std::string_view what);

// Strict parse of a non-negative decimal number; throws UsageError naming `what`.
std::uint64_t parse_count(const std::string& text, const char* what);

// Writes `text` to `out`; throws Error(kIoError) if the stream failed.
void write_out(std::FILE* out, std::string_view text);
// Flushes `out`; throws Error(kIoError) if that or an earlier write failed.
void flush_out(std::FILE* out);

}  // namespace corobtree::cli
