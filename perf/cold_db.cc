#include "perf/cold_db.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include "perf/bench_common.h"

namespace corobtree::bench {

std::uint64_t cold_key_count() {
  static const std::uint64_t n = [] {
    const char* s = std::getenv("COROBTREE_COLD_KEYS");
    const std::uint64_t v = s != nullptr ? std::strtoull(s, nullptr, 10) : 0;
    if (v > 0) return v;
    return smoke_mode() ? std::uint64_t{50'000} : std::uint64_t{9'500'000};
  }();
  return n;
}

namespace {

constexpr std::size_t kBuildPoolPages = 65536;  // for bulk_load only

struct DbPath {
  std::string path;
  bool is_default;
};

DbPath db_path() {
  const char* p = std::getenv("COROBTREE_COLD_DB");
  if (p != nullptr && *p != '\0') return {p, false};
  const char* tmp = std::getenv("TMPDIR");
  return {std::string(tmp && *tmp ? tmp : "/tmp") + "/corobtree-cold-" +
              std::to_string(cold_key_count()) + ".db",
          true};
}

// The key count of the database at `path`, or nullopt if there is none or it
// does not open as a database.
std::optional<std::uint64_t> existing_keys(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  try {
    Options o;
    o.create_if_missing = false;
    o.pool_pages = 64;
    std::unique_ptr<Database> db = corobtree::sync_wait(Database::open(path, o));
    const std::uint64_t keys = db->stats().keys;
    corobtree::sync_wait(db->close());
    return keys;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corobtree-cold: %s does not open as a database: %s\n", path.c_str(),
                 e.what());
    return std::nullopt;
  }
}

Task<void> build_database(std::string path, std::uint64_t n) {
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(n);
  for (std::uint64_t k = 0; k < n; ++k) {
    const Key key(k);
    pairs.emplace_back(std::string(key.view()), make_value(k));
  }
  Options o;
  o.pool_pages = kBuildPoolPages;
  o.durability = corobtree::Durability::kRelaxed;
  o.error_if_exists = true;
  std::unique_ptr<Database> db = co_await Database::open(path, o);
  co_await db->bulk_load(pairs);
  co_await db->close();
}

// Builds the database at `tmp` in a child process (its memory dies with it).
bool build_in_child(const std::string& tmp, std::uint64_t n) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int rc = 0;
    try {
      corobtree::sync_wait(build_database(tmp, n));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "corobtree-cold: building %s failed: %s\n", tmp.c_str(), e.what());
      rc = 1;
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

std::string ensure_cold_db(std::string& error) {
  static std::string ready;
  static std::string failure;
  if (!ready.empty() || !failure.empty()) {
    error = failure;
    return ready;
  }
  const DbPath p = db_path();
  const std::uint64_t n = cold_key_count();
  struct stat st;
  const bool exists = ::stat(p.path.c_str(), &st) == 0;
  const std::optional<std::uint64_t> have = existing_keys(p.path);
  if (have && *have == n) return ready = p.path;
  if (exists && !(have && p.is_default)) {
    // Never replace a file we did not name, nor one that is not a database.
    failure = p.path + " exists but is not a database of " + std::to_string(n) + " keys";
    error = failure;
    return {};
  }
  std::fprintf(stderr, "corobtree-cold: building %s (%llu keys)...\n", p.path.c_str(),
               static_cast<unsigned long long>(n));
  const std::string tmp = p.path + ".tmp-" + std::to_string(::getpid());
  std::remove(tmp.c_str());
  if (!build_in_child(tmp, n) || ::rename(tmp.c_str(), p.path.c_str()) != 0) {
    std::remove(tmp.c_str());
    failure = "could not build " + p.path;
    error = failure;
    return {};
  }
  return ready = p.path;
}

}  // namespace corobtree::bench
