// One client connection of corobtree-server and the I/O thread (Worker) it
// lives on (server.h has the overview; docs/server.md, "Limits").
//
// State machine, all on the worker's thread (pump() decides the next step):
//   read -> parse into pending_ -> run pending_[next_..] as one task
//   (execute_batch, through corobtree::async_run) -> write out_ -> read ...
// Reads stop while a batch runs, while commands are pending, and while the
// unsent output exceeds the soft limit; a batch stops early when the output
// reaches the soft limit and resumes once it has drained. The connection
// closes after QUIT or a protocol error once its output is written, when
// the peer goes away (after the commands already read have run, so their
// writes are done whether or not the reply arrives), when the output stalls
// for client_timeout, when it holds part of a command and no input arrives
// for client_timeout, or when a reply would take it past the hard limit. When
// a write fails (the peer is gone), the commands already read still run,
// their replies dropped, before it closes.
//
// Thread-safety: a Connection and its Worker's connection set belong to the
// worker's thread; Worker::ioc is thread-safe as asio::io_context is.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <asio.hpp>

#include "tools/server/commands.h"
#include "tools/server/resp.h"
#include "tools/server/server.h"

namespace corobtree::server {

class Connection;

struct Worker {
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  // On the worker's thread only:
  std::unordered_set<std::shared_ptr<Connection>> connections;
  bool stopping = false;

  // On the worker's thread: closes nothing yet, asks each connection to
  // finish; releases the guard once the last one is gone.
  void begin_stop();
  void remove(const std::shared_ptr<Connection>& c);
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::ip::tcp::socket socket, Worker& worker, CommandContext& ctx,
             const ServerOptions& options);
  void start();
  // Stop reading; finish what was read, write it, close (within the grace).
  void begin_shutdown();

 private:
  std::size_t unsent() const noexcept { return out_.size() + (writing_.size() - write_pos_); }
  bool commands_pending() const noexcept { return next_ < pending_.size(); }
  void pump();
  void start_read();
  void on_read(const asio::error_code& ec, std::size_t n);
  void start_batch();
  void on_batch(std::exception_ptr error, BatchResult result);
  void start_write();
  void on_write(const asio::error_code& ec, std::size_t n);
  void arm_stall_timer();
  void arm_input_timer();
  void close();

  asio::ip::tcp::socket socket_;
  Worker& worker_;
  CommandContext& ctx_;
  const ServerOptions& options_;
  asio::steady_timer stall_timer_;
  asio::steady_timer input_timer_;
  asio::steady_timer grace_timer_;
  RespParser parser_;
  std::array<char, 64 * 1024> read_buf_;
  std::vector<Command> pending_;  // parsed, run from next_ on
  std::size_t next_ = 0;
  std::optional<std::string> protocol_error_;  // answered after pending_ ran
  std::string out_;                            // replies not yet handed to a write
  std::string writing_;                        // the write in flight: writing_[write_pos_..]
  std::size_t write_pos_ = 0;
  std::chrono::steady_clock::time_point last_progress_;
  std::chrono::steady_clock::time_point last_input_;  // the last read completed
  bool reading_ = false;
  bool batch_running_ = false;
  bool write_in_flight_ = false;
  bool stall_timer_armed_ = false;
  bool input_timer_armed_ = false;
  bool discard_output_ = false;  // a write failed: run what was read, drop the replies
  bool eof_ = false;             // the peer closed its side (or the read failed)
  bool closing_ = false;         // QUIT or a protocol error: close once written
  bool stopping_ = false;
  bool closed_ = false;
};

}  // namespace corobtree::server
