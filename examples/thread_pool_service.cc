// A thread pool serving requests against one Database. The service owns a
// corobtree::Runtime (4 worker threads); submit() turns each request (get,
// put or scan) into a coroutine on a worker, which co_awaits the database and
// fulfils a std::future. Client threads, as the request handlers of a server
// would, submit requests and wait for the replies; they keep up to 32 in
// flight each, so the workers have many at once, and concurrent puts share
// log fsyncs (group commit). Every client checks what it reads back.
// Usage: thread_pool_service [FILE]   (default thread_pool_service.db; replaced)
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/runtime.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>

namespace {

using corobtree::Database;
using corobtree::Task;
using Rows = std::vector<std::pair<std::string, std::string>>;

struct Request {
  enum Kind { kGet, kPut, kScan };
  Kind kind = kGet;
  std::string key;          // get and put; a scan's lower bound (inclusive)
  std::string value;        // put; a scan's upper bound (exclusive)
  std::size_t limit = 100;  // scan
};

struct Reply {
  std::optional<std::string> value;  // get
  Rows rows;                         // scan
};

// Serves requests on a Runtime's workers. Thread-safe: submit() from any thread.
class Service {
 public:
  Service(Database& db, std::size_t threads) : db_(db), runtime_(threads) {}

  std::future<Reply> submit(Request request) {
    std::promise<Reply> promise;
    std::future<Reply> reply = promise.get_future();
    runtime_.spawn(serve(std::move(request), std::move(promise)));
    return reply;
  }

  std::uint64_t served() const { return served_.load(); }
  std::size_t worker_threads_used() {
    std::lock_guard<std::mutex> lock(mutex_);
    return workers_seen_.size();
  }

 private:
  // Runs on a worker; parameters by value (they live in the coroutine frame).
  Task<void> serve(Request request, std::promise<Reply> promise) {
    Reply reply;
    std::exception_ptr error;
    try {
      if (request.kind == Request::kGet) {
        std::optional<std::string> v = co_await db_.get(request.key);
        reply.value = std::move(v);
      } else if (request.kind == Request::kPut) {
        co_await db_.put(request.key, request.value);
      } else {
        corobtree::ScanOptions range;
        range.lower = request.key;
        range.upper = request.value;
        Rows rows = co_await db_.scan(range, request.limit);
        reply.rows = std::move(rows);
      }
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      workers_seen_.insert(std::this_thread::get_id());
    }
    served_.fetch_add(1);
    if (error) {
      promise.set_exception(error);
    } else {
      promise.set_value(std::move(reply));
    }
  }

  Database& db_;
  std::atomic<std::uint64_t> served_{0};
  std::mutex mutex_;
  std::set<std::thread::id> workers_seen_;
  corobtree::Runtime runtime_;  // last: its workers stop before the rest goes
};

constexpr int kClients = 4;
constexpr int kKeysPerClient = 400;
constexpr std::size_t kWindow = 32;  // requests a client keeps in flight

std::string key_of(int client, int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "client%d/%05d", client, i);
  return buf;
}

std::string value_of(int client, int i) {
  return "value " + std::to_string(i) + " from client " + std::to_string(client);
}

struct ClientResult {
  int puts = 0, gets_ok = 0, scans_ok = 0, errors = 0;
};

// Puts its keys, reads them back, then scans its range in pages of 50.
ClientResult run_client(Service& service, int client) {
  ClientResult r;
  std::deque<std::future<Reply>> pending;
  for (int i = 0; i < kKeysPerClient; ++i) {
    pending.push_back(service.submit({Request::kPut, key_of(client, i), value_of(client, i)}));
    if (pending.size() == kWindow) {
      pending.front().get();  // rethrows a failed put
      pending.pop_front();
    }
  }
  for (auto& f : pending) f.get();
  pending.clear();
  r.puts = kKeysPerClient;

  std::deque<std::pair<int, std::future<Reply>>> gets;
  for (int i = 0; i < kKeysPerClient; ++i) {
    gets.emplace_back(i, service.submit({Request::kGet, key_of(client, i), ""}));
    while (gets.size() == kWindow || (i + 1 == kKeysPerClient && !gets.empty())) {
      const Reply reply = gets.front().second.get();
      if (reply.value == value_of(client, gets.front().first)) {
        ++r.gets_ok;
      } else {
        ++r.errors;
      }
      gets.pop_front();
    }
  }

  std::string from = key_of(client, 0);
  const std::string end = "client" + std::to_string(client) + "0";  // '/' + 1
  int seen = 0;
  while (true) {
    const Reply page = service.submit({Request::kScan, from, end, 50}).get();
    for (const auto& [k, v] : page.rows) {
      if (k != key_of(client, seen) || v != value_of(client, seen)) ++r.errors;
      ++seen;
    }
    ++r.scans_ok;
    if (page.rows.size() < 50) break;
    from = page.rows.back().first + '\0';  // just after the last key
  }
  if (seen != kKeysPerClient) ++r.errors;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "thread_pool_service.db";
  std::remove(path.c_str());
  try {
    corobtree::Options options;
    options.pool_pages = 256;
    std::unique_ptr<Database> db = corobtree::sync_wait(Database::open(path, options));
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<ClientResult> results(kClients);
    std::uint64_t served = 0;
    std::size_t workers = 0;
    {
      Service service(*db, 4);
      std::vector<std::thread> clients;
      for (int c = 0; c < kClients; ++c) {
        clients.emplace_back([&service, &results, c] {
          try {
            results[static_cast<std::size_t>(c)] = run_client(service, c);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "client %d: %s\n", c, e.what());
            results[static_cast<std::size_t>(c)].errors = 1;
          }
        });
      }
      for (std::thread& t : clients) t.join();
      served = service.served();
      workers = service.worker_threads_used();
    }  // the workers stop here
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const corobtree::ValidationReport report = corobtree::sync_wait(db->validate());
    const corobtree::DatabaseStats stats = db->stats();
    int errors = 0;
    for (int c = 0; c < kClients; ++c) {
      const ClientResult& r = results[static_cast<std::size_t>(c)];
      std::printf("client %d: %d puts, %d gets ok, %d scan pages%s\n", c, r.puts, r.gets_ok,
                  r.scans_ok, r.errors ? " ERRORS" : "");
      errors += r.errors;
    }
    std::printf(
        "served %llu requests on %zu worker threads in %.0f ms; %llu commits in %llu "
        "log fsyncs\n",
        static_cast<unsigned long long>(served), workers, ms,
        static_cast<unsigned long long>(stats.wal.commits),
        static_cast<unsigned long long>(stats.wal.syncs));
    std::printf("validate: %s\n", report.summary().c_str());
    corobtree::sync_wait(db->close());
    const std::uint64_t expected = std::uint64_t{kClients} * kKeysPerClient;
    if (errors != 0 || !report.ok() || report.keys != expected) {
      std::fprintf(stderr, "thread_pool_service: %d errors, %llu keys (expected %llu)\n", errors,
                   static_cast<unsigned long long>(report.keys),
                   static_cast<unsigned long long>(expected));
      return 1;
    }
  } catch (const corobtree::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::printf("thread_pool_service ok\n");
  return 0;
}
