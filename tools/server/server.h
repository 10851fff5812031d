// The network side of corobtree-server (docs/server.md, "Threads" and
// "Limits"): a TCP acceptor on the calling thread and N I/O threads, each
// running its own asio::io_context with a corobtree::AsioDriver on it (mode 1
// of corobtree/asio.h), so a connection's commands run as corobtree tasks on
// the thread that owns its socket, with no hop to another thread except the
// database's own engine thread.
//
// A connection reads into a fixed 64 KiB buffer, parses every complete
// command in it and runs them in order as one task (execute_batch), then
// writes the replies. It stops reading while its unsent output exceeds
// output_soft_limit, closes when its output makes no progress for
// client_timeout, when it holds part of a command and receives nothing for
// client_timeout, or when a reply would pass output_hard_limit, and closes
// after a protocol error (answered with "-ERR Protocol error: ...") or QUIT.
// The first SIGTERM or SIGINT starts a clean stop and restores the default
// actions, so a second one ends the process at once.
//
// Thread-safety: run() and stop() may be called from different threads;
// stop() may be called more than once. Everything else is internal: each
// connection lives on one I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <corobtree/database.h>
#include "tools/server/commands.h"
#include "tools/server/resp.h"

namespace corobtree::server {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 6379;  // 0: any free port (run() reports it)
  std::size_t threads = 4;
  std::size_t max_clients = 10000;
  std::chrono::seconds client_timeout{60};               // output stalled this long: close
  std::chrono::seconds shutdown_grace{5};                // at stop(): close whatever is still open
  std::size_t output_soft_limit = std::size_t{4} << 20;  // stop reading above this
  std::size_t output_hard_limit = std::size_t{1} << 30;  // close above this
  RespLimits resp;
};

class NetworkServer {
 public:
  NetworkServer(Database& db, ServerCounters& counters, ServerOptions options);
  ~NetworkServer();
  NetworkServer(const NetworkServer&) = delete;
  NetworkServer& operator=(const NetworkServer&) = delete;

  // Binds and listens (throws std::system_error on failure), starts the I/O
  // threads, calls `ready(port)` once listening, and serves until SIGTERM or
  // SIGINT (or stop()): then it stops accepting, lets every connection
  // finish the commands it has read and write their replies (closing what
  // is still open after shutdown_grace), and joins the threads.
  template <typename Ready>
  void run(Ready ready) {
    run_impl(std::make_unique<ReadyFn<Ready>>(std::move(ready)));
  }
  void stop();

 private:
  struct ReadyBase {
    virtual ~ReadyBase() = default;
    virtual void operator()(std::uint16_t port) = 0;
  };
  template <typename F>
  struct ReadyFn final : ReadyBase {
    explicit ReadyFn(F f) : f_(std::move(f)) {}
    void operator()(std::uint16_t port) override { f_(port); }
    F f_;
  };
  void run_impl(std::unique_ptr<ReadyBase> ready);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corobtree::server
