// Typed tables over one database file: an int64 -> string table and a
// (user, timestamp) -> event table, each under its own key prefix.
// Usage: typed_table [FILE]   (the file is removed first)
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <tuple>

#include <corobtree/blocking_database.h>
#include <corobtree/error.h>
#include <corobtree/table.h>

namespace {

using EventKey = std::tuple<std::string, std::int64_t>;  // (user, timestamp)
using Events = corobtree::BlockingTable<EventKey, std::string>;

// All events of `user` with from <= timestamp < to, oldest first (newest first if `reverse`).
void print_events(Events& events, const std::string& user, std::int64_t from, std::int64_t to,
                  bool reverse) {
  std::printf("events of %s in [%lld, %lld)%s:\n", user.c_str(), static_cast<long long>(from),
              static_cast<long long>(to), reverse ? ", newest first" : "");
  for (const auto& [key, event] :
       events.scan(EventKey{user, from}, EventKey{user, to}, 100, reverse)) {
    std::printf("  t=%lld %s\n", static_cast<long long>(std::get<1>(key)), event.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "typed_table.db";
  try {
    std::remove(path.c_str());
    auto db = corobtree::BlockingDatabase::open(path);

    // Signed keys come back in numeric order, negatives first.
    corobtree::BlockingTable<std::int64_t, std::string> numbers(db, "n");
    for (std::int64_t k : {42, -7, 0, 1000000, -1000000, 13})
      numbers.put(k, "number " + std::to_string(k));
    numbers.put(42, "answer");
    std::printf("get(42) = %s\n", numbers.get(42).value_or("(none)").c_str());
    std::printf("get(5) = %s\n", numbers.get(5).value_or("(none)").c_str());
    std::printf("all numbers:\n");
    for (const auto& [k, v] : numbers.scan(std::nullopt, std::nullopt)) {
      std::printf("  %lld -> %s\n", static_cast<long long>(k), v.c_str());
    }
    std::printf("numbers in [-10, 100), largest first:\n");
    for (const auto& [k, v] : numbers.scan(-10, 100, 10, /*reverse=*/true)) {
      std::printf("  %lld -> %s\n", static_cast<long long>(k), v.c_str());
    }
    const bool erased = numbers.erase(13);
    const bool erased_again = numbers.erase(13);
    std::printf("erase(13) = %s, again = %s\n", erased ? "true" : "false",
                erased_again ? "true" : "false");

    // Composite keys sort by user, then by timestamp.
    Events events(db, "e");
    events.put(EventKey{"bob", 300}, "logout");
    events.put(EventKey{"alice", 200}, "upload photo.jpg");
    events.put(EventKey{"bob", 100}, "login");
    events.put(EventKey{"alice", 100}, "login");
    events.put(EventKey{"alice", 250}, "comment");
    events.put(EventKey{"alicia", 50},
               "login");  // "alice" is a prefix: must not leak into her scans
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    print_events(events, "alice", kMin, kMax, false);
    print_events(events, "alice", 150, 300, true);
    print_events(events, "bob", kMin, kMax, false);
    const std::optional<std::string> login = events.get(EventKey{"bob", 100});
    std::printf("bob at t=100: %s\n", login.value_or("(none)").c_str());

    const auto report = db.validate();
    if (!report.ok()) {
      std::fprintf(stderr, "validate: %s\n", report.summary().c_str());
      return 1;
    }
    db.close();
  } catch (const corobtree::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::printf("typed_table ok\n");
  return 0;
}
