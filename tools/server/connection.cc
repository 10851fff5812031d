// A client connection and its I/O thread (connection.h).
#include "tools/server/connection.h"

#include <exception>
#include <string_view>
#include <utility>

#include <corobtree/asio.h>

namespace corobtree::server {

void Worker::begin_stop() {
  stopping = true;
  // Copy: a connection may remove itself from the set meanwhile.
  const std::vector<std::shared_ptr<Connection>> all(connections.begin(), connections.end());
  for (const auto& c : all) c->begin_shutdown();
  if (connections.empty()) guard.reset();
}

void Worker::remove(const std::shared_ptr<Connection>& c) {
  connections.erase(c);
  if (stopping && connections.empty()) guard.reset();
}

Connection::Connection(asio::ip::tcp::socket socket, Worker& worker, CommandContext& ctx,
                       const ServerOptions& options)
    : socket_(std::move(socket)),
      worker_(worker),
      ctx_(ctx),
      options_(options),
      stall_timer_(worker.ioc),
      input_timer_(worker.ioc),
      grace_timer_(worker.ioc),
      parser_(options.resp),
      last_input_(std::chrono::steady_clock::now()) {}

void Connection::start() {
  asio::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  worker_.connections.insert(shared_from_this());
  if (worker_.stopping) {
    close();
    return;
  }
  pump();
}

void Connection::begin_shutdown() {
  if (closed_ || stopping_) return;
  stopping_ = true;
  if (reading_) {
    // Ends the pending read with EOF; on_read then finishes up.
    asio::error_code ignored;
    socket_.shutdown(asio::socket_base::shutdown_receive, ignored);
  }
  grace_timer_.expires_after(options_.shutdown_grace);
  grace_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (!ec) self->close();
  });
  pump();
}

// Decides what to do next; called after every event.
void Connection::pump() {
  if (closed_) return;
  if (!batch_running_ && commands_pending() && unsent() < options_.output_soft_limit) {
    start_batch();
  }
  if (!batch_running_ && !commands_pending() && protocol_error_) {
    reply_error(out_, "ERR Protocol error: " + *protocol_error_);
    protocol_error_.reset();
    closing_ = true;
  }
  if (discard_output_) out_.clear();
  if (!write_in_flight_ && !out_.empty()) start_write();
  const bool idle = !batch_running_ && !commands_pending() && !write_in_flight_ && out_.empty();
  if (idle && (closing_ || eof_ || stopping_)) {
    close();
    return;
  }
  if (!reading_ && !batch_running_ && !commands_pending() && !closing_ && !eof_ && !stopping_ &&
      unsent() < options_.output_soft_limit) {
    start_read();  // read the next requests while the replies are written
  }
}

void Connection::start_read() {
  reading_ = true;
  if (!parser_.idle()) arm_input_timer();  // a partial command: bound the wait for the rest
  socket_.async_read_some(asio::buffer(read_buf_),
                          [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                            self->on_read(ec, n);
                          });
}

void Connection::on_read(const asio::error_code& ec, std::size_t n) {
  reading_ = false;
  if (closed_) return;
  last_input_ = std::chrono::steady_clock::now();
  if (ec) {
    eof_ = true;  // EOF, a reset, or our own shutdown_receive
    pump();
    return;
  }
  std::string_view in(read_buf_.data(), n);
  pending_.clear();
  next_ = 0;
  try {
    Command c;
    while (parser_.next(in, c)) pending_.push_back(std::move(c));
  } catch (const ProtocolError& e) {
    ctx_.counters().protocol_errors.fetch_add(1, std::memory_order_relaxed);
    protocol_error_ = e.what();
  } catch (const std::bad_alloc&) {
    ctx_.counters().protocol_errors.fetch_add(1, std::memory_order_relaxed);
    protocol_error_ = "out of memory";
  }
  pump();
}

void Connection::start_batch() {
  batch_running_ = true;
  // The soft limit counts the write in flight too (pump() starts a batch
  // only below it, so this is at least 1).
  const std::size_t in_flight = writing_.size() - write_pos_;
  const std::size_t limit =
      options_.output_soft_limit > in_flight ? options_.output_soft_limit - in_flight : 1;
  corobtree::async_run(AsioRunner::this_thread(),
                       execute_batch(ctx_, &pending_, next_, &out_, limit),
                       [self = shared_from_this()](std::exception_ptr error, BatchResult result) {
                         self->on_batch(std::move(error), result);
                       });
}

void Connection::on_batch(std::exception_ptr error, BatchResult result) {
  batch_running_ = false;
  if (closed_) return;
  if (error) {
    // execute() turns command failures into replies; what gets here is a
    // reply over the hard output limit (or something unexpected).
    try {
      std::rethrow_exception(error);
    } catch (const OutputLimitExceeded&) {
      ctx_.counters().output_limit_closes.fetch_add(1, std::memory_order_relaxed);
    } catch (...) {
    }
    close();
    return;
  }
  next_ = result.next;
  if (discard_output_) out_.clear();  // the peer is gone: the rest only runs
  if (result.quit) {
    pending_.clear();
    next_ = 0;
    protocol_error_.reset();
    closing_ = true;
  }
  if (unsent() > options_.output_hard_limit) {
    ctx_.counters().output_limit_closes.fetch_add(1, std::memory_order_relaxed);
    close();
    return;
  }
  if (!commands_pending()) {
    pending_.clear();
    next_ = 0;
  }
  pump();
}

void Connection::start_write() {
  writing_.swap(out_);
  out_.clear();
  if (out_.capacity() > options_.output_soft_limit) out_.shrink_to_fit();
  write_pos_ = 0;
  write_in_flight_ = true;
  last_progress_ = std::chrono::steady_clock::now();
  arm_stall_timer();
  socket_.async_write_some(asio::buffer(writing_),
                           [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                             self->on_write(ec, n);
                           });
}

void Connection::on_write(const asio::error_code& ec, std::size_t n) {
  if (closed_) return;
  if (ec) {
    // The peer is gone: nothing more can be delivered, but the commands
    // already read still run (their replies discarded), then it closes.
    write_in_flight_ = false;
    writing_.clear();
    write_pos_ = 0;
    out_.clear();
    eof_ = true;
    discard_output_ = true;
    pump();
    return;
  }
  write_pos_ += n;
  last_progress_ = std::chrono::steady_clock::now();
  if (write_pos_ < writing_.size()) {
    socket_.async_write_some(
        asio::buffer(writing_.data() + write_pos_, writing_.size() - write_pos_),
        [self = shared_from_this()](const asio::error_code& e, std::size_t m) {
          self->on_write(e, m);
        });
    return;
  }
  write_in_flight_ = false;
  writing_.clear();
  write_pos_ = 0;
  if (writing_.capacity() > options_.output_soft_limit) writing_.shrink_to_fit();
  pump();
}

// Closes the connection when a write makes no progress for client_timeout.
void Connection::arm_stall_timer() {
  if (stall_timer_armed_) return;
  stall_timer_armed_ = true;
  stall_timer_.expires_at(last_progress_ + options_.client_timeout);
  stall_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    self->stall_timer_armed_ = false;
    if (ec || self->closed_ || !self->write_in_flight_) return;
    if (std::chrono::steady_clock::now() - self->last_progress_ >= self->options_.client_timeout) {
      self->ctx_.counters().timed_out_clients.fetch_add(1, std::memory_order_relaxed);
      self->close();
      return;
    }
    self->arm_stall_timer();
  });
}

// Closes the connection when its parser holds part of a command and no input
// arrives for client_timeout.
void Connection::arm_input_timer() {
  if (input_timer_armed_) return;
  input_timer_armed_ = true;
  input_timer_.expires_at(last_input_ + options_.client_timeout);
  input_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    self->input_timer_armed_ = false;
    if (ec || self->closed_ || !self->reading_ || self->parser_.idle()) return;
    if (std::chrono::steady_clock::now() - self->last_input_ >= self->options_.client_timeout) {
      self->ctx_.counters().timed_out_clients.fetch_add(1, std::memory_order_relaxed);
      self->close();
      return;
    }
    self->arm_input_timer();
  });
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  auto self = shared_from_this();  // the set may hold the last reference
  asio::error_code ignored;
  socket_.close(ignored);
  stall_timer_.cancel();
  input_timer_.cancel();
  grace_timer_.cancel();
  // A batch still running finishes (its writes commit); its replies are dropped.
  if (!batch_running_) {
    pending_.clear();
    out_.clear();
  }
  ctx_.counters().connected_clients.fetch_sub(1, std::memory_order_relaxed);
  worker_.remove(self);
}

}  // namespace corobtree::server
