// crash_child: the process tests/crash_kill_test.cc kills with SIGKILL.
//
//   crash_child DB_PATH uring|pread sync|relaxed SEED START_SEQ [WRITERS [tasks|threads]]
//
// Opens (or creates) the database with a small buffer pool (64 frames: pages
// are written back and read again all the time) and a small checkpoint
// threshold (256 KiB: checkpoints run every few dozen commits), prints
// "open", then commits the transactions of tests/crash_ops.h from START_SEQ
// on, forever, with WRITERS (1, 2 or 4; default 4) concurrent tasks. After
// each commit returns it prints "ack <n>" with one unbuffered write(2), so
// every line the parent reads is a commit the database acknowledged.
// With `threads`, the writers are std::threads sharing the one Database (each
// drives its own loop with sync_wait) instead of tasks on the main thread.
// Any error is printed to stderr and exits with status 2.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/error.h>
#include <corobtree/sync_wait.h>
#include <corobtree/task.h>
#include <corobtree/when_all.h>
#include "tests/crash_ops.h"

namespace {

using corobtree::Database;
using corobtree::Task;
namespace crash = corobtree::crash;

void say(const std::string& line) {
  const std::string text = line + "\n";
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "crash_child: writing stdout failed: %s\n", std::strerror(errno));
      std::_Exit(2);
    }
    done += static_cast<std::size_t>(n);
  }
}

Task<void> commit(Database& db, const crash::Txn& txn) {
  const crash::Change& first = txn.changes.front();
  if (txn.kind == crash::Txn::kPut) {
    co_await db.put(first.key, first.value);
  } else if (txn.kind == crash::Txn::kErase) {
    const bool existed = co_await db.erase(first.key);
    (void)existed;
  } else {
    corobtree::WriteBatch batch;
    for (const crash::Change& c : txn.changes) {
      if (c.erase) {
        batch.erase(c.key);
      } else {
        batch.put(c.key, c.value);
      }
    }
    co_await db.write(batch);
  }
}

Task<void> writer(Database& db, std::uint64_t seed, std::uint64_t first, std::uint64_t stride) {
  for (std::uint64_t n = first;; n += stride) {
    const crash::Txn txn = crash::make_txn(seed, n);
    co_await commit(db, txn);
    say("ack " + std::to_string(n));
  }
}

Task<void> run(Database& db, std::uint64_t seed, std::uint64_t start, int writers) {
  std::vector<Task<void>> tasks;
  for (int w = 0; w < writers; ++w) {
    tasks.push_back(writer(db, seed, start + static_cast<std::uint64_t>(w),
                           static_cast<std::uint64_t>(writers)));
  }
  co_await corobtree::when_all(std::move(tasks));
}

// Each writer on a thread of its own, all on the same database.
void run_threads(Database& db, std::uint64_t seed, std::uint64_t start, int writers) {
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&db, seed, start, w, writers] {
      try {
        corobtree::sync_wait(writer(db, seed, start + static_cast<std::uint64_t>(w),
                                    static_cast<std::uint64_t>(writers)));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "crash_child: writer thread %d: %s\n", w, e.what());
        std::_Exit(2);
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

int usage() {
  std::fprintf(stderr,
               "usage: crash_child DB_PATH uring|pread sync|relaxed SEED START_SEQ "
               "[WRITERS [tasks|threads]]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6 || argc > 8) return usage();
  const std::string path = argv[1];
  const std::string backend = argv[2];
  const std::string durability = argv[3];
  corobtree::Options options;
  if (backend == "uring") {
    options.backend = corobtree::IoBackend::kUring;
  } else if (backend == "pread") {
    options.backend = corobtree::IoBackend::kPread;
  } else {
    return usage();
  }
  if (durability == "sync") {
    options.durability = corobtree::Durability::kSync;
  } else if (durability == "relaxed") {
    options.durability = corobtree::Durability::kRelaxed;
  } else {
    return usage();
  }
  const int writers = argc >= 7 ? std::atoi(argv[6]) : 4;
  if (writers <= 0 || crash::kLanes % writers != 0) return usage();
  const std::string mode = argc == 8 ? argv[7] : "tasks";
  if (mode != "tasks" && mode != "threads") return usage();
  options.pool_pages = 64;
  options.wal_checkpoint_bytes = 256 * 1024;
  // The backend is the one asked for, whatever COROBTREE_IO says.
  ::unsetenv("COROBTREE_IO");
  try {
    const std::uint64_t seed = std::stoull(argv[4]);
    const std::uint64_t start = std::stoull(argv[5]);
    std::unique_ptr<Database> db = corobtree::sync_wait(Database::open(path, options));
    say("open");
    if (mode == "threads") {
      run_threads(*db, seed, start, writers);
    } else {
      corobtree::sync_wait(run(*db, seed, start, writers));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash_child: %s\n", e.what());
    return 2;
  }
  return 0;
}
