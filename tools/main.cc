// corobtree: the command-line tool. Parses the options before COMMAND,
// dispatches, and turns every failure into a message on stderr and an exit
// code (tools/cli.h): 1 absent key, 2 corruption, 3 anything else.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>

#include <corobtree/error.h>
#include <corobtree/version.h>
#include "tools/cli.h"
#include "tools/escape.h"

namespace corobtree::cli {

namespace {

constexpr const char* kUsage =
    "usage: corobtree [OPTIONS] COMMAND DB [ARGS]\n"
    "options:\n"
    "  --io auto|uring|pread   I/O backend (overrides COROBTREE_IO)\n"
    "  --pool-pages N          buffer pool frames (default 1024)\n"
    "  --page-size N           page size of a new database (default 4096)\n"
    "  --min-degree T          new databases: cap nodes at 2T-1 keys\n"
    "  --direct-io             O_DIRECT\n"
    "  --lock-timeout MS       wait up to MS ms for another process to close DB (default 0)\n"
    "commands:\n"
    "  create DB\n"
    "  put DB KEY VALUE\n"
    "  get DB KEY              prints the value; exit 1 if absent\n"
    "  del DB KEY              exit 1 if absent\n"
    "  scan DB [--from K] [--to K] [--limit N] [--reverse]\n"
    "  dump DB                 KEY<TAB>VALUE lines in key order\n"
    "  load DB [FILE|-]        reads the dump format; creates DB if missing\n"
    "  check DB                exit 0 if sound, 2 if corrupt\n"
    "  stats DB\n"
    "  backup DB DEST          a consistent copy of DB in the new file DEST\n"
    "  compact DB              rewrites DB packed; prints its size before and after\n"
    "  shell DB                one command per line on stdin\n"
    "  salvage DAMAGED OUT     copies every intact pair into the new database OUT;\n"
    "                          exit 0 if all were recovered, 2 if some were lost\n"
    "keys and values take the escapes \\\\ \\t \\n \\r \\xHH; \"\" is the empty string.\n"
    "exit codes: 0 ok, 1 key absent, 2 corrupt, 3 other errors.\n";

template <typename T>
T parse_number(const std::string& text, const char* what) {
  const std::uint64_t v = parse_count(text, what);
  if (v > static_cast<std::uint64_t>(static_cast<T>(-1))) {
    throw UsageError(std::string(what) + " " + text + " is too large");
  }
  return static_cast<T>(v);
}

// Applies the global option at argv[i] (advancing i past its value).
void apply_option(Invocation& inv, int argc, char** argv, int& i) {
  std::string name = argv[i];
  std::string value;
  const bool takes_value = name != "--direct-io";
  if (const auto eq = name.find('='); eq != std::string::npos) {
    value = name.substr(eq + 1);
    name.resize(eq);
  } else if (takes_value) {
    if (i + 1 >= argc) throw UsageError(name + " needs a value");
    value = argv[++i];
  }
  if (name == "--io") {
    try {
      inv.options.backend = parse_backend(value);
    } catch (const Error&) {
      throw UsageError("--io takes auto, uring or pread, not '" + escape(value) + "'");
    }
    ::unsetenv("COROBTREE_IO");  // the command line wins over the environment
  } else if (name == "--pool-pages") {
    inv.options.pool_pages = parse_number<std::size_t>(value, "--pool-pages");
  } else if (name == "--page-size") {
    inv.options.page_size = parse_number<std::uint32_t>(value, "--page-size");
  } else if (name == "--min-degree") {
    inv.options.minimum_degree = parse_number<std::uint32_t>(value, "--min-degree");
  } else if (name == "--direct-io") {
    inv.options.direct_io = true;
  } else if (name == "--lock-timeout") {
    inv.options.lock_timeout =
        std::chrono::milliseconds(parse_number<std::uint32_t>(value, "--lock-timeout"));
  } else {
    throw UsageError("unknown option '" + escape(name) + "'");
  }
}

// Returns nullopt when the invocation was --help or --version (already answered).
std::optional<Invocation> parse_command_line(int argc, char** argv) {
  Invocation inv;
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; ++i) {
    const std::string a = argv[i];
    if (a == "--help") {
      std::fputs(kUsage, stdout);
      return std::nullopt;
    }
    if (a == "--version") {
      std::printf("corobtree %.*s\n", static_cast<int>(version().size()), version().data());
      return std::nullopt;
    }
    apply_option(inv, argc, argv, i);
  }
  if (i < argc && std::string(argv[i]) == "-h") {
    std::fputs(kUsage, stdout);
    return std::nullopt;
  }
  if (i >= argc) throw UsageError("no command given");
  inv.command = argv[i++];
  if (i >= argc) throw UsageError("'" + escape(inv.command) + "' needs a database path");
  inv.db_path = argv[i++];
  inv.args.assign(argv + i, argv + argc);
  return inv;
}

int run(int argc, char** argv) {
  const std::optional<Invocation> inv = parse_command_line(argc, argv);
  if (!inv) return kExitOk;
  if (inv->command == "load") return run_load(*inv);
  if (inv->command == "shell") return run_shell(*inv, stdin, stdout);
  if (inv->command == "salvage") return run_salvage(*inv);
  return run_basic_command(*inv);
}

}  // namespace

}  // namespace corobtree::cli

int main(int argc, char** argv) {
  using namespace corobtree::cli;
  // A closed stdout must end the command through an error (and a clean
  // close of the database), not through SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "corobtree: %s\n(run 'corobtree --help' for usage)\n", e.what());
  } catch (const EscapeError& e) {
    std::fprintf(stderr, "corobtree: %s\n", e.what());
  } catch (const corobtree::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    if (e.code() == corobtree::ErrorCode::kCorruption) return kExitCorrupt;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "corobtree: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corobtree: error: %s\n", e.what());
  }
  return kExitFailure;
}
