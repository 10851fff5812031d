// The acceptor, the signals and the I/O threads (server.h).
#include "tools/server/server.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>
#include <vector>

#include <corobtree/asio.h>
#include <asio.hpp>

#include "tools/server/connection.h"

namespace corobtree::server {

struct NetworkServer::Impl {
  Impl(Database& db, ServerCounters& counters, ServerOptions opts)
      : options(std::move(opts)), ctx(db, counters), acceptor(control), signals(control) {
    ctx.set_output_limit(options.output_hard_limit);
  }

  void accept_next();
  void on_accept(const asio::error_code& ec, asio::ip::tcp::socket socket, Worker& w);
  void stop_all();

  ServerOptions options;
  CommandContext ctx;
  asio::io_context control{1};  // the acceptor and the signals, on run()'s thread
  asio::ip::tcp::acceptor acceptor;
  asio::signal_set signals;
  std::unique_ptr<asio::steady_timer> retry_timer;
  std::vector<std::unique_ptr<Worker>> workers;
  std::size_t next_worker = 0;
  bool stopped = false;
};

void NetworkServer::Impl::accept_next() {
  Worker& w = *workers[next_worker];
  next_worker = (next_worker + 1) % workers.size();
  acceptor.async_accept(w.ioc, [this, &w](const asio::error_code& ec, asio::ip::tcp::socket s) {
    on_accept(ec, std::move(s), w);
  });
}

void NetworkServer::Impl::on_accept(const asio::error_code& ec, asio::ip::tcp::socket socket,
                                    Worker& w) {
  if (stopped || ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors or memory: try again shortly rather than spin.
    std::fprintf(stderr, "corobtree-server: accept: %s\n", ec.message().c_str());
    retry_timer->expires_after(std::chrono::milliseconds(100));
    retry_timer->async_wait([this](const asio::error_code& e) {
      if (!e && !stopped) accept_next();
    });
    return;
  }
  ServerCounters& counters = ctx.counters();
  counters.total_connections.fetch_add(1, std::memory_order_relaxed);
  if (counters.connected_clients.load() >= options.max_clients) {
    counters.rejected_connections.fetch_add(1, std::memory_order_relaxed);
    static constexpr char kFull[] = "-ERR max number of clients reached\r\n";
    asio::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(kFull, sizeof(kFull) - 1), ignored);
    socket.close(ignored);
  } else {
    counters.connected_clients.fetch_add(1, std::memory_order_relaxed);
    // The socket already belongs to the worker's io_context (accept_next).
    asio::post(w.ioc, [this, &w, s = std::move(socket)]() mutable {
      auto c = std::make_shared<Connection>(std::move(s), w, ctx, options);
      c->start();
    });
  }
  accept_next();
}

void NetworkServer::Impl::stop_all() {
  if (stopped) return;
  stopped = true;
  asio::error_code ignored;
  acceptor.close(ignored);
  // Removes Asio's handlers (the default action comes back): a second
  // SIGTERM or SIGINT ends the process even if a command holds it up.
  signals.cancel(ignored);
  signals.clear(ignored);
  retry_timer->cancel();
  for (auto& w : workers) {
    Worker* wp = w.get();
    asio::post(wp->ioc, [wp] { wp->begin_stop(); });
  }
}

NetworkServer::NetworkServer(Database& db, ServerCounters& counters, ServerOptions options)
    : impl_(std::make_unique<Impl>(db, counters, std::move(options))) {}

NetworkServer::~NetworkServer() = default;

void NetworkServer::stop() {
  asio::post(impl_->control, [impl = impl_.get()] { impl->stop_all(); });
}

void NetworkServer::run_impl(std::unique_ptr<ReadyBase> ready) {
  Impl& s = *impl_;
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(s.options.bind), s.options.port);
  s.acceptor.open(endpoint.protocol());
  s.acceptor.set_option(asio::socket_base::reuse_address(true));
  s.acceptor.bind(endpoint);
  s.acceptor.listen(asio::socket_base::max_listen_connections);
  s.retry_timer = std::make_unique<asio::steady_timer>(s.control);
  // Before any connection can ask INFO for it.
  s.ctx.counters().port = s.acceptor.local_endpoint().port();
  s.signals.add(SIGTERM);
  s.signals.add(SIGINT);
  s.signals.async_wait([&s](const asio::error_code& ec, int) {
    if (ec) return;
    std::fprintf(stderr, "corobtree-server: stopping (a second signal ends it at once)\n");
    s.stop_all();
  });

  const std::size_t n = s.options.threads == 0 ? 1 : s.options.threads;
  for (std::size_t i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->guard.emplace(w->ioc.get_executor());
    s.workers.push_back(std::move(w));
  }
  for (auto& w : s.workers) {
    Worker* wp = w.get();
    wp->thread = std::thread([wp] {
      // The driver lives while the io_context runs, on its thread; its
      // destructor waits for batches still in flight.
      try {
        AsioDriver driver(wp->ioc);
        wp->ioc.run();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "corobtree-server: I/O thread failed: %s\n", e.what());
        std::abort();  // every acknowledged write is in the log already
      }
    });
  }
  s.accept_next();
  (*ready)(s.acceptor.local_endpoint().port());
  s.control.run();
  for (auto& w : s.workers) w->thread.join();
}

}  // namespace corobtree::server
