// corobtree-server: a Redis-protocol (RESP2) server over one corobtree
// database. Parses the options, opens the database, serves until SIGTERM or
// SIGINT, then checkpoints and closes it (docs/server.md).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <system_error>

#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include "tools/server/server.h"

namespace {

constexpr const char* kUsage =
    "usage: corobtree-server --db PATH [OPTIONS]\n"
    "options:\n"
    "  --db PATH               the database file (created if missing; required)\n"
    "  --port N                TCP port (default 6379; 0: any free port)\n"
    "  --bind ADDR             address to listen on (default 127.0.0.1)\n"
    "  --threads N             I/O threads (default 4)\n"
    "  --durability MODE       sync: a write is fsynced before its reply (default);\n"
    "                          relaxed: written to the log, not fsynced\n"
    "  --pool-mb N             buffer pool size in MiB (default 64)\n"
    "  --io auto|uring|pread   I/O backend (default auto; COROBTREE_IO overrides)\n"
    "  --max-bulk-bytes N      largest argument accepted (default 536870912)\n"
    "  --max-clients N         connections beyond this get an error (default 10000)\n"
    "  --client-timeout S      close a client whose replies make no progress, or\n"
    "                          which sent part of a command and then nothing, for\n"
    "                          S seconds (default 60)\n"
    "  --max-output-mb N       close a client whose unsent replies exceed N MiB\n"
    "                          (default 1024)\n"
    "  --help                  this text\n"
    "Prints \"corobtree-server ready on ADDR:PORT\" once listening. SIGTERM/SIGINT:\n"
    "finish the commands in flight, checkpoint, close, exit 0. Exit 1 on errors.\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::uint64_t parse_number(const std::string& name, const std::string& text, std::uint64_t max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
      text.size() > 19) {
    throw UsageError(name + ": not a number: '" + text + "'");
  }
  const std::uint64_t v = std::stoull(text);
  if (v > max) throw UsageError(name + ": " + text + " is too large");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using corobtree::server::NetworkServer;
  using corobtree::server::ServerCounters;
  using corobtree::server::ServerOptions;
  std::string path;
  ServerOptions so;
  corobtree::Options dbo;
  std::string durability = "sync";
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string name = argv[i];
      if (name == "--help" || name == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      }
      if (i + 1 >= argc)
        throw UsageError(name == "--db" || name.rfind("--", 0) == 0 ? name + " needs a value"
                                                                    : "unknown argument " + name);
      const std::string value = argv[++i];
      if (name == "--db") {
        path = value;
      } else if (name == "--port") {
        so.port = static_cast<std::uint16_t>(parse_number(name, value, 65535));
      } else if (name == "--bind") {
        so.bind = value;
      } else if (name == "--threads") {
        so.threads = parse_number(name, value, 1024);
        if (so.threads == 0) throw UsageError("--threads must be at least 1");
      } else if (name == "--durability") {
        if (value == "sync") {
          dbo.durability = corobtree::Durability::kSync;
        } else if (value == "relaxed") {
          dbo.durability = corobtree::Durability::kRelaxed;
        } else {
          throw UsageError("--durability is sync or relaxed, not " + value);
        }
        durability = value;
      } else if (name == "--pool-mb") {
        dbo.pool_bytes = parse_number(name, value, std::uint64_t{1} << 40) << 20;
      } else if (name == "--io") {
        dbo.backend = corobtree::parse_backend(value);
      } else if (name == "--max-bulk-bytes") {
        so.resp.max_bulk = parse_number(name, value, corobtree::kMaxValueSize);
        if (so.resp.max_bulk == 0) throw UsageError("--max-bulk-bytes must be positive");
      } else if (name == "--max-clients") {
        so.max_clients = parse_number(name, value, 1u << 30);
        if (so.max_clients == 0) throw UsageError("--max-clients must be positive");
      } else if (name == "--client-timeout") {
        so.client_timeout = std::chrono::seconds(parse_number(name, value, 1u << 30));
        if (so.client_timeout.count() == 0) throw UsageError("--client-timeout must be positive");
      } else if (name == "--max-output-mb") {
        so.output_hard_limit = parse_number(name, value, std::uint64_t{1} << 30) << 20;
        if (so.output_hard_limit == 0) throw UsageError("--max-output-mb must be positive");
      } else {
        throw UsageError("unknown option " + name);
      }
    }
    if (path.empty()) throw UsageError("--db PATH is required");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corobtree-server: %s\n%s", e.what(), kUsage);
    return 1;
  }
  // A command may hold two bulks of the maximum size (SET key value).
  so.resp.max_query_bytes = std::max<std::size_t>(so.resp.max_query_bytes, 2 * so.resp.max_bulk);
  ::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<corobtree::Database> db;
  try {
    db = corobtree::sync_wait(corobtree::Database::open(path, dbo));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corobtree-server: cannot open %s: %s\n", path.c_str(), e.what());
    return 1;
  }
  ServerCounters counters;
  counters.bind = so.bind;
  counters.threads = so.threads;
  counters.durability = durability;
  try {
    NetworkServer server(*db, counters, so);
    server.run([&](std::uint16_t port) {
      std::printf("corobtree-server ready on %s:%u\n", so.bind.c_str(), unsigned{port});
      std::fflush(stdout);
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corobtree-server: %s\n", e.what());
    try {
      corobtree::sync_wait(db->close());
    } catch (const std::exception&) {
      // Reported above; the log keeps every commit anyway.
    }
    return 1;
  }
  try {
    corobtree::sync_wait(db->close());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corobtree-server: closing %s: %s\n", path.c_str(), e.what());
    return 1;
  }
  std::fputs("corobtree-server: closed cleanly\n", stderr);
  return 0;
}
