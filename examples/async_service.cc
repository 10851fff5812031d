// Many clients of one Database on one thread: each client is a coroutine, all
// of them run together on the thread's loop (when_all), and each one works on
// its own key range with a mix of puts, batched updates, gets, erases and
// scans. Clients yield to the loop now and then, as a service handling
// requests would, so their operations interleave in the tree.
// Usage: async_service [FILE]   (default async_service.db; the file is replaced)
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include <corobtree/yield.h>

namespace {

using corobtree::Database;
using corobtree::Task;

constexpr int kClients = 64;
constexpr int kKeysPerClient = 200;

std::string client_prefix(int client) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "client%02d/", client);
  return buf;
}

std::string client_key(int client, int i) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%05d", i);
  return client_prefix(client) + buf;
}

std::string client_value(int client, int i, int version) {
  return "value " + std::to_string(i) + " of client " + std::to_string(client) + " v" +
         std::to_string(version);
}

struct ClientSummary {
  int client = 0;
  int puts = 0;
  int batched = 0;
  int gets_ok = 0;
  int erased = 0;
  std::size_t scanned = 0;
  std::string first_key;
  std::string last_key;
  int errors = 0;  // results that disagreed with what this client wrote
};

Task<ClientSummary> run_client(Database& db, int client) {
  ClientSummary s;
  s.client = client;
  for (int i = 0; i < kKeysPerClient; ++i) {  // single puts
    const std::string key = client_key(client, i);
    const std::string value = client_value(client, i, 1);
    co_await db.put(key, value);
    ++s.puts;
    if (i % 16 == 0) co_await corobtree::yield();
  }
  corobtree::WriteBatch batch;  // rewrite every even key atomically
  for (int i = 0; i < kKeysPerClient; i += 2) {
    batch.put(client_key(client, i), client_value(client, i, 2));
  }
  co_await db.write(batch);
  s.batched = static_cast<int>(batch.size());
  co_await corobtree::yield();
  for (int i = 0; i < kKeysPerClient; ++i) {  // read back
    const std::string key = client_key(client, i);
    const std::optional<std::string> v = co_await db.get(key);
    const int version = i % 2 == 0 ? 2 : 1;
    if (v && *v == client_value(client, i, version)) {
      ++s.gets_ok;
    } else {
      ++s.errors;
    }
    if (i % 32 == 0) co_await corobtree::yield();
  }
  for (int i = 0; i < kKeysPerClient; i += 3) {  // erase every third key
    const std::string key = client_key(client, i);
    const bool found = co_await db.erase(key);
    if (found) {
      ++s.erased;
    } else {
      ++s.errors;
    }
  }
  co_await corobtree::yield();
  corobtree::ScanOptions range;  // [clientNN/, clientNN0): this client's keys only
  range.lower = client_prefix(client);
  range.upper = client_prefix(client);
  range.upper->back() = '0';  // '/' + 1
  std::vector<std::pair<std::string, std::string>> rows = co_await db.scan(range);
  s.scanned = rows.size();
  if (!rows.empty()) {
    s.first_key = rows.front().first;
    s.last_key = rows.back().first;
  }
  if (rows.size() != static_cast<std::size_t>(kKeysPerClient - s.erased)) ++s.errors;
  co_return s;
}

struct ServiceResult {
  std::vector<ClientSummary> clients;
  corobtree::ValidationReport report;
  std::uint64_t keys = 0;
};

Task<ServiceResult> run_service(std::string path) {
  corobtree::Options options;
  options.pool_pages = 256;
  std::unique_ptr<Database> db = co_await Database::open(path, options);
  std::vector<Task<ClientSummary>> clients;
  for (int c = 0; c < kClients; ++c) clients.push_back(run_client(*db, c));
  ServiceResult result;
  result.clients = co_await corobtree::when_all(std::move(clients));
  result.report = co_await db->validate();
  result.keys = db->count();
  co_await db->close();
  co_return result;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "async_service.db";
  std::remove(path.c_str());
  try {
    const ServiceResult r = corobtree::sync_wait(run_service(path));
    std::uint64_t expected_keys = 0;
    int errors = 0;
    for (const ClientSummary& s : r.clients) {
      std::printf(
          "client %2d: %d puts, %d batched, %d gets ok, %d erased, scanned %zu [%s .. %s]%s\n",
          s.client, s.puts, s.batched, s.gets_ok, s.erased, s.scanned, s.first_key.c_str(),
          s.last_key.c_str(), s.errors ? " ERRORS" : "");
      expected_keys += static_cast<std::uint64_t>(kKeysPerClient - s.erased);
      errors += s.errors;
    }
    std::printf("validate: %s\n", r.report.summary().c_str());
    if (errors != 0 || !r.report.ok() || r.keys != expected_keys ||
        r.report.keys != expected_keys) {
      std::fprintf(stderr, "async_service: %d client errors, %llu keys (expected %llu)\n", errors,
                   static_cast<unsigned long long>(r.keys),
                   static_cast<unsigned long long>(expected_keys));
      return 1;
    }
  } catch (const corobtree::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::printf("async_service ok\n");
  return 0;
}
