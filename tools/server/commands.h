// The server's commands, as corobtree Tasks over one Database (docs/server.md,
// "Commands"). The network layer (server.h) parses requests, hands each
// pipelined batch to execute_batch() and writes what it appended; tests call
// the same functions under sync_wait, without sockets.
//
// Atomicity: each key maps to one of CommandContext::kStripes
// AsyncSharedMutexes (locked in index order, so two commands never deadlock),
// held from a command's first read to its commit. Read-modify-writes (SET
// with NX, XX or GET; INCR and friends; DEL, which counts) hold their stripes
// exclusively. Blind writes (plain SET, MSET) hold them shared: they exclude
// the read-modify-writes but not each other, so concurrent SETs of one key
// still share a log write and an fsync (group commit; the engine orders
// them). MSET and DEL, which write several keys, hold their stripes
// exclusively, and MGET and EXISTS hold theirs shared: a multi-key read never
// sees half of a multi-key write. GET and SCAN take no lock: each sees a
// committed state of each key. MSET and DEL commit one WriteBatch (all or
// nothing, also across a crash). A pipelined run of separate SETs is one
// commit but, as in Redis, not atomic for readers.
//
// Thread-safety: a CommandContext is shared by every connection on every
// thread; its members are safe to use concurrently (the stripes are
// AsyncSharedMutexes, the SCAN table and the counters are synchronized). A batch
// runs on the thread that awaits it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/task.h>
#include "io/async_shared_mutex.h"
#include "tools/server/resp.h"

namespace corobtree::server {

// Thrown by a command whose reply would take the connection's output past
// CommandContext::output_limit(); execute() lets it through, and the
// connection is then closed (counted in output_limit_closes).
class OutputLimitExceeded : public std::exception {
 public:
  const char* what() const noexcept override { return "client output limit exceeded"; }
};

// What INFO reports about the server itself; the network layer fills it in.
struct ServerCounters {
  std::string bind;
  std::uint16_t port = 0;
  std::size_t threads = 0;
  std::string durability;
  std::atomic<std::uint64_t> connected_clients{0};
  std::atomic<std::uint64_t> total_connections{0};
  std::atomic<std::uint64_t> rejected_connections{0};
  std::atomic<std::uint64_t> total_commands{0};
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> timed_out_clients{0};
  std::atomic<std::uint64_t> output_limit_closes{0};
};

// SCAN's cursors: the client sees a decimal number; the server keeps, for each
// number it handed out, the last key that call examined. Bounded: the oldest
// entry goes when the table is full (its number then gets "invalid cursor").
class ScanCursors {
 public:
  explicit ScanCursors(std::size_t capacity);
  std::uint64_t put(std::string last_key);
  std::optional<std::string> get(std::uint64_t id);
  std::size_t size();

 private:
  std::mutex mu_;  // held briefly, never across a co_await
  std::unordered_map<std::uint64_t, std::string> keys_;
  std::deque<std::uint64_t> order_;
  std::uint64_t next_id_;
  std::size_t capacity_;
};

class CommandContext {
 public:
  static constexpr std::size_t kStripes = 1024;
  static constexpr std::size_t kScanCursors = 16384;
  static constexpr std::size_t kMaxScanCount = 10000;  // keys examined per SCAN call, at most

  CommandContext(Database& db, ServerCounters& counters);
  Database& db() noexcept { return db_; }
  ServerCounters& counters() noexcept { return counters_; }
  ScanCursors& cursors() noexcept { return cursors_; }
  std::size_t stripe_of(std::string_view key) const noexcept;
  AsyncSharedMutex& stripe(std::size_t i) noexcept { return stripes_[i]; }
  std::chrono::steady_clock::time_point started() const noexcept { return started_; }
  // The most output a connection may hold (ServerOptions::output_hard_limit);
  // a command whose reply passes it throws OutputLimitExceeded.
  std::size_t output_limit() const noexcept { return output_limit_; }
  void set_output_limit(std::size_t bytes) noexcept { output_limit_ = bytes; }
  // The longest SCAN MATCH pattern accepted.
  std::size_t max_pattern() const noexcept;

 private:
  Database& db_;
  ServerCounters& counters_;
  ScanCursors cursors_;
  std::array<AsyncSharedMutex, kStripes> stripes_;
  std::chrono::steady_clock::time_point started_;
  std::size_t output_limit_ = SIZE_MAX;
};

// Runs one command, appending its reply (an error reply for a bad command or
// a failed database call) to `out`. Returns false for QUIT (after appending
// +OK): the connection is to be closed once its output is written.
Task<bool> execute(CommandContext& ctx, const Command& cmd, std::string* out);

// How far execute_batch() got.
struct BatchResult {
  std::size_t next = 0;  // index of the first command not run
  bool quit = false;     // a QUIT ran (the last one run)
};

// Runs commands[first..] in order, appending the replies to `out`; stops
// after a QUIT, or before the next command once out->size() reaches
// `out_limit` (the caller runs the rest when its output has drained).
// REQUIRES: `ctx`, `commands` and `out` outlive the task and are not
// touched meanwhile.
Task<BatchResult> execute_batch(CommandContext& ctx, const std::vector<Command>* commands,
                                std::size_t first, std::string* out,
                                std::size_t out_limit = SIZE_MAX);

// The INFO text (sections "server", "clients", "stats", "keyspace",
// "engine", "pool", "wal"); `section` empty, "all", "default" or
// "everything" for all of them.
std::string info_text(CommandContext& ctx, std::string_view section);

}  // namespace corobtree::server
