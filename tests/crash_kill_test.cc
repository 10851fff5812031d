// The SIGKILL kill loop: a real process (crash_child, COROBTREE_CRASH_CHILD)
// commits the transaction stream of tests/crash_ops.h and acknowledges each
// commit on stdout; the test kills it with SIGKILL a random 5-150 ms after it
// opened the database (one run in six: 5-15 ms after it started, to hit the
// open and its log replay), reopens the database and checks it against a
// std::map model. Then it starts the child again on the same files, from the
// next transaction number, so the crashes and the model accumulate. For
// io_uring and pread, each with kSync and kRelaxed durability.
//
// What must hold after every kill (see crash_ops.h for why it is exact):
//  * open succeeds (it replays the log) and validate() is ok;
//  * every lane of keys equals the model after all its acknowledged
//    transactions, or after those plus the one its writer had in flight:
//    nothing acknowledged is lost, no batch is half applied, no value appears
//    that was never written.
// Every third iteration the parent recovers the files in place (and closes,
// checkpointing); otherwise it checks a copy, so the next child recovers the
// crashed files itself and may be killed while it does. The parent looks at
// the files as soon as waitpid() returns, without waiting: the lock of a
// killed process must be gone by then, also on io_uring, whose ring the
// kernel tears down later (io/file_lock.h). A reopen that fails with kLocked
// counts in `locked` and fails the test.
//
// restart_right_after_sigkill (issue 15): the supervisor's case. 1,000 times
// per backend (times COROBTREE_TEST_SCALE) a child is killed 0-8 ms after it
// opened the database, in the middle of its writes, and the database is
// reopened in place at once with Options::lock_timeout 0: no "locked" error,
// nothing acknowledged lost. To stay small and fast the files start afresh
// every 25 kills. COROBTREE_RESTART_KILLS=N sets the count per backend.
//
// sigkill_with_four_writer_threads (issue 12): the child's four writers are
// std::threads sharing one Database (kSync: their commits share fsyncs); the
// same checks, COROBTREE_CRASH_KILLS / 4 kills per backend.
//
// Total kills: COROBTREE_CRASH_KILLS (default 40, split over the four
// configurations); scripts/crash-test.sh runs 200 or more.
// COROBTREE_CRASH_VERBOSE=1 prints one line per kill. Prints its seed;
// `-- --seed=N` replays the transaction stream and the kill delays (not the
// exact kill points, which depend on timing). On a failure the crashed files
// are kept under $TMPDIR/corobtree-crash-failure-* for reproduction.
#define BOOST_TEST_MODULE crash_kill
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <corobtree/blocking_database.h>
#include "tests/crash_ops.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
namespace crash = corobtree::crash;
using corobtree::BlockingDatabase;
using crash::Model;

namespace {

struct Combo {
  std::string backend;     // crash_child's spelling: uring | pread
  std::string durability;  // sync | relaxed
  std::string name() const { return backend + "/" + durability; }
};

std::ostream& operator<<(std::ostream& os, const Combo& c) { return os << c.name(); }

const std::vector<Combo> kCombos = {
    {"uring", "sync"}, {"uring", "relaxed"}, {"pread", "sync"}, {"pread", "relaxed"}};

struct Totals {
  std::uint64_t kills = 0;
  std::uint64_t kills_before_open = 0;  // the child was still opening (replaying) the files
  std::uint64_t acked = 0;              // acknowledged commits found after the kills
  std::uint64_t unacked_applied = 0;    // in-flight commits that had reached the log
  std::uint64_t replayed = 0;           // log commits the verifying open replayed
  std::uint64_t lost = 0;               // acknowledged commits missing
  std::uint64_t failures = 0;
  std::uint64_t locked = 0;             // reopens right after a kill that got kLocked
  std::uint64_t longest_locked_ms = 0;  // how long those stayed locked
  std::uint64_t longest_reopen_ms = 0;  // the slowest reopen (recovery included)
  std::uint64_t draining = 0;           // reopens that found the dead child's I/O still unfinished

  void add(const Totals& o) {
    kills += o.kills;
    kills_before_open += o.kills_before_open;
    acked += o.acked;
    unacked_applied += o.unacked_applied;
    replayed += o.replayed;
    lost += o.lost;
    failures += o.failures;
    locked += o.locked;
    longest_locked_ms = std::max(longest_locked_ms, o.longest_locked_ms);
    longest_reopen_ms = std::max(longest_reopen_ms, o.longest_reopen_ms);
    draining += o.draining;
  }
  std::string summary() const {
    std::ostringstream os;
    os << "kills=" << kills << " (during open: " << kills_before_open << ")"
       << " commits_verified=" << acked + unacked_applied << " (acked " << acked
       << ", unacked in flight " << unacked_applied << ")"
       << " replayed_at_open=" << replayed << " lost_acked=" << lost << " failures=" << failures
       << " locked=" << locked << " (longest " << longest_locked_ms << " ms)"
       << " longest_reopen=" << longest_reopen_ms << " ms"
       << " io_still_draining_at_reopen=" << draining;
    return os.str();
  }
};

Totals g_totals;

struct Environment {
  Environment() {
    ::unsetenv("COROBTREE_IO");  // each run names its backend
  }
  ~Environment() { std::cout << "[crash] total: " << g_totals.summary() << std::endl; }
};
BOOST_TEST_GLOBAL_FIXTURE(Environment);

int kills_per_combo() {
  int total = 40;
  if (const char* env = std::getenv("COROBTREE_CRASH_KILLS"); env && *env) total = std::atoi(env);
  const int n = static_cast<int>(kCombos.size());
  return std::max(1, (total + n - 1) / n);
}

struct ChildRun {
  std::vector<std::string> lines;  // complete stdout lines
  bool killed = false;             // by our SIGKILL
  std::string status;              // how it ended, when not killed
};

// Runs crash_child with `args`, kills it `delay` after it started (or, with
// `after_open`, after it printed "open"), returns what it printed.
ChildRun run_child(const std::vector<std::string>& args, std::chrono::milliseconds delay,
                   bool after_open, const std::string& err_path) {
  int out[2];
  BOOST_REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  BOOST_REQUIRE(err >= 0);
  std::vector<std::string> copy = args;
  std::string exe = COROBTREE_CRASH_CHILD;
  std::vector<char*> argv{exe.data()};
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err);

  ChildRun run;
  std::string pending;
  auto take = [&](const char* data, std::size_t n) {
    pending.append(data, n);
    std::size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      run.lines.push_back(pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
  };
  char buf[65536];
  bool eof = false;
  // A child that takes this long to open has hung: kill it and report.
  auto deadline = started + (after_open ? std::chrono::milliseconds(60000) : delay);
  // Read while it runs (a full pipe would stall the child), until the deadline.
  while (!eof) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r <= 0) continue;
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) {
      eof = true;
    } else {
      const bool was_open = !run.lines.empty();
      take(buf, static_cast<std::size_t>(n));
      if (after_open && !was_open && !run.lines.empty()) {
        deadline = std::chrono::steady_clock::now() + delay;
      }
    }
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Whatever it wrote before dying is still in the pipe.
  while (true) {
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    take(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && !eof) {
    run.killed = true;
  } else if (WIFSIGNALED(status)) {
    run.status = "killed by signal " + std::to_string(WTERMSIG(status));
  } else {
    run.status = "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  return run;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The "<n>.<i>" a value starts with: which write made it.
std::string value_name(const std::string& v) {
  return v.substr(0, std::min(v.find(':'), v.size()));
}

// Up to 5 keys where `got` and `want` differ.
std::string describe_diff(const Model& got, const Model& want) {
  std::ostringstream os;
  int shown = 0;
  auto show = [&](const std::string& key, const std::string& g, const std::string& w) {
    if (shown++ < 5) os << "\n    " << key << ": database " << g << ", model " << w;
  };
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end()) {
      show(k, "absent", value_name(v));
    } else if (it->second != v) {
      const std::string g = value_name(it->second) +
                            (value_name(it->second) == value_name(v) ? " (bytes differ)" : "");
      show(k, g, value_name(v));
    }
  }
  for (const auto& [k, v] : got) {
    if (!want.count(k)) show(k, value_name(v), "absent");
  }
  if (shown > 5) os << "\n    ... " << shown - 5 << " more";
  return os.str();
}

// The database's files: the data file and its two logs.
constexpr const char* kFileSuffixes[] = {"", "-wal", "-wal2"};

void copy_db(const std::string& from, const std::string& to) {
  for (const char* suffix : kFileSuffixes) {
    fs::remove(to + suffix);
    if (fs::exists(from + suffix)) fs::copy_file(from + suffix, to + suffix);
  }
}

corobtree::Options options_for(const Combo& combo) {
  corobtree::Options options;
  options.backend =
      combo.backend == "uring" ? corobtree::IoBackend::kUring : corobtree::IoBackend::kPread;
  options.durability =
      combo.durability == "sync" ? corobtree::Durability::kSync : corobtree::Durability::kRelaxed;
  return options;
}

// Whether a process's description of `path` still holds its OFD lock (see
// io/file_lock.h): a killed child's unfinished io_uring requests keep it.
bool io_draining(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  const bool held = ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  ::close(fd);
  return held;
}

bool any_io_draining(const std::string& path) {
  for (const char* suffix : kFileSuffixes) {
    if (io_draining(path + suffix)) return true;
  }
  return false;
}

// One configuration's kill loop; the cumulative model lives here.
class KillLoop {
 public:
  // `max_delay_ms` > 0: every kill comes 0..max_delay_ms after the start
  // (instead of the usual 5-150 ms).
  KillLoop(const Combo& combo, std::uint64_t seed, int max_delay_ms = 0)
      : combo_(combo), seed_(seed), rng_(seed), max_delay_ms_(max_delay_ms) {
    path_ = dir_.file("crash.db");
    snapshot_ = dir_.file("snapshot.db");
  }

  // Creates the (empty) database, so that the kills hit an existing one.
  void create() {
    BlockingDatabase db = BlockingDatabase::open(path_, options_for(combo_));
    db.close();
  }

  const Totals& totals() const { return totals_; }

  // The restart case: kills 0-8 ms after the child opened the database, and
  // reopens the crashed files in place at once, without copying them first.
  void restart_mode() { restart_ = true; }
  // Four writers, each a thread of its own in the child (not a task).
  void threads_mode() { threads_ = true; }

  // Returns false after a failure (the model no longer describes the files).
  bool iterate(int iteration, bool last) {
    iteration_ = iteration;
    pristine_ = path_;
    // Mostly 5-150 ms after the open; one run in six dies 5-15 ms after it
    // started, often while it is still opening (replaying) the files.
    const bool early = !restart_ && (max_delay_ms_ > 0 || rng_() % 6 == 0);
    std::uint64_t ms = early ? 5 + rng_() % 11 : 5 + rng_() % 146;
    if (max_delay_ms_ > 0) ms = rng_() % static_cast<std::uint64_t>(max_delay_ms_ + 1);
    if (restart_) ms = rng_() % 9;
    const auto delay = std::chrono::milliseconds(ms);
    const int drawn = std::array<int, 3>{1, 2, 4}[rng_() % 3];
    const int writers = threads_ ? 4 : drawn;
    std::vector<std::string> args = {path_,
                                     combo_.backend,
                                     combo_.durability,
                                     std::to_string(seed_),
                                     std::to_string(start_),
                                     std::to_string(writers)};
    if (threads_) args.push_back("threads");
    const std::string err_path = dir_.file("child.err");
    ChildRun run = run_child(args, delay, !early, err_path);
    if (!run.killed) {
      return fail("crash_child " + run.status + " before the kill; stderr:\n" +
                  read_file(err_path));
    }
    ++totals_.kills;
    std::vector<std::uint64_t> acked;
    std::vector<std::uint64_t> next;  // per writer: the transaction after its last ack
    bool opened = false;
    if (!parse_acks(run.lines, writers, &acked, &next, &opened)) return false;
    if (!opened) ++totals_.kills_before_open;

    if (std::getenv("COROBTREE_CRASH_VERBOSE")) {
      std::cout << "[crash] " << combo_.name() << " #" << iteration << " start " << start_
                << " writers " << writers << " after " << delay.count()
                << " ms: " << (opened ? "" : "(still opening) ") << acked.size() << " acks, db "
                << (fs::exists(path_) ? fs::file_size(path_) : 0) << " bytes, wal "
                << (fs::exists(path_ + "-wal") ? fs::file_size(path_ + "-wal") : 0) << " bytes"
                << std::endl;
    }
    if (!fs::exists(path_)) {
      // Killed before it created the file: nothing can have committed.
      if (!acked.empty()) return fail("acknowledged commits, but no database file");
      start_ = *std::max_element(next.begin(), next.end()) + 1;
      return true;
    }
    const bool in_place = restart_ || iteration % 3 == 0 || last;
    if (!restart_) {
      // A raw copy takes no lock, so it waits as open() does for the dead
      // child's unfinished writes (io/file_lock.h, wait_for_io_drain).
      if (!wait_for_drain()) return fail("the killed child's I/O stayed unfinished for 10 s");
      copy_db(path_, snapshot_);
    }
    pristine_ = restart_ ? path_ : in_place ? snapshot_ : path_;  // kept on failure
    const bool ok = check(in_place ? path_ : snapshot_, acked, next, writers);
    if (!in_place && !restart_) {
      for (const char* suffix : kFileSuffixes) fs::remove(snapshot_ + suffix);
    }
    start_ = *std::max_element(next.begin(), next.end()) + 1;
    return ok;
  }

 private:
  // Acks of writer w must be start + w, start + w + W, ... in order.
  bool parse_acks(const std::vector<std::string>& lines, int writers,
                  std::vector<std::uint64_t>* acked, std::vector<std::uint64_t>* next,
                  bool* opened) {
    const auto stride = static_cast<std::uint64_t>(writers);
    for (std::uint64_t w = 0; w < stride; ++w) next->push_back(start_ + w);
    for (const std::string& line : lines) {
      if (line == "open") {
        *opened = true;
        continue;
      }
      if (line.rfind("ack ", 0) != 0) return fail("crash_child printed '" + line + "'");
      const std::uint64_t n = std::stoull(line.substr(4));
      if (n < start_ || n != (*next)[(n - start_) % stride]) {
        return fail("ack " + std::to_string(n) + " out of order");
      }
      (*next)[(n - start_) % stride] += stride;
      acked->push_back(n);
    }
    std::sort(acked->begin(), acked->end());
    return true;
  }

  // Opens `path`, validates it and compares it with the model lane by lane.
  bool check(const std::string& path, const std::vector<std::uint64_t>& acked,
             const std::vector<std::uint64_t>& in_flight, int writers) {
    corobtree::Options options = options_for(combo_);
    options.create_if_missing = false;
    options.lock_timeout = std::chrono::milliseconds(0);  // no waiting for the dead
    // It validates below anyway; the restart case keeps each kill cheap.
    if (restart_) options.validate_after_recovery = false;
    std::array<Model, crash::kLanes> got;
    try {
      BlockingDatabase db = open_after_kill(path, options);
      totals_.replayed += db.stats().recovery.commits;
      const corobtree::ValidationReport report = db.validate();
      if (!report.ok()) return fail("validate() after reopening: " + report.summary());
      for (auto& [k, v] : db.scan()) {
        const int lane = crash::lane_of_key(k);
        if (lane < 0) return fail("a key that was never written: '" + k + "'");
        got[static_cast<std::size_t>(lane)].emplace(std::move(k), std::move(v));
      }
      db.close();
    } catch (const std::exception& e) {
      return fail(std::string("reopening after the kill: ") + e.what());
    }

    bool ok = true;
    for (int lane = 0; lane < crash::kLanes; ++lane) {
      const std::size_t l = static_cast<std::size_t>(lane);
      std::vector<crash::Txn> txns;  // this lane's acknowledged transactions, in order
      for (std::uint64_t n : acked) {
        if (crash::lane_of_txn(n) == lane) txns.push_back(crash::make_txn(seed_, n));
      }
      Model base = model_[l];
      for (const crash::Txn& t : txns) crash::apply(base, t);
      if (got[l] == base) {
        model_[l] = std::move(base);
        totals_.acked += txns.size();
        continue;
      }
      // The lane's writer may have committed one more before the kill.
      std::optional<std::uint64_t> candidate;
      for (int w = 0; w < writers; ++w) {
        const std::uint64_t c = in_flight[static_cast<std::size_t>(w)];
        if (crash::lane_of_txn(c) == lane) candidate = c;
      }
      if (candidate) {
        Model with = base;
        crash::apply(with, crash::make_txn(seed_, *candidate));
        if (got[l] == with) {
          model_[l] = std::move(with);
          totals_.acked += txns.size();
          ++totals_.unacked_applied;
          continue;
        }
      }
      ok = false;
      // How many acknowledged transactions does the database hold?
      Model prefix = model_[l];
      std::optional<std::size_t> held;
      if (got[l] == prefix) held = 0;
      for (std::size_t i = 0; i < txns.size() && !held; ++i) {
        crash::apply(prefix, txns[i]);
        if (got[l] == prefix) held = i + 1;
      }
      const std::size_t lost = held ? txns.size() - *held : 0;
      totals_.lost += lost;
      std::ostringstream os;
      os << "lane " << lane << " matches neither the model after its " << txns.size()
         << " acknowledged transactions nor that plus the one in flight ("
         << (candidate ? std::to_string(*candidate) : std::string("none")) << "); ";
      if (held) {
        os << "it holds only the first " << *held << ": " << lost << " acknowledged commits lost";
      } else {
        os << "it matches no prefix of them";
      }
      os << describe_diff(got[l], base);
      fail(os.str());
    }
    return ok;
  }

  // Waits until neither file is held by the killed child's unfinished I/O.
  bool wait_for_drain() {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (any_io_draining(path_)) {
      if (std::chrono::steady_clock::now() > give_up) return false;
      ::usleep(1000);
    }
    return true;
  }

  // Opens the killed child's files at once. A kLocked there counts in
  // `locked` (and fails the test); then it polls, so that the loop can go on
  // and count them all.
  BlockingDatabase open_after_kill(const std::string& path, const corobtree::Options& options) {
    const auto t0 = std::chrono::steady_clock::now();
    auto since_t0 = [&] {
      return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - t0)
                                            .count());
    };
    if (any_io_draining(path)) ++totals_.draining;
    bool was_locked = false;
    while (true) {
      try {
        BlockingDatabase db = BlockingDatabase::open(path, options);
        if (was_locked) {
          totals_.longest_locked_ms = std::max(totals_.longest_locked_ms, since_t0());
        } else {
          totals_.longest_reopen_ms = std::max(totals_.longest_reopen_ms, since_t0());
        }
        return db;
      } catch (const corobtree::Error& e) {
        if (e.code() != corobtree::ErrorCode::kLocked || since_t0() > 10000) throw;
        if (!was_locked) {
          was_locked = true;
          if (++totals_.locked == 1) {
            std::cout << "[crash] " << combo_.name() << " iteration " << iteration_
                      << ": reopening at once after the kill: " << e.what() << std::endl;
          }
        }
      }
      ::usleep(1000);
    }
  }

  bool fail(const std::string& what) {
    ++totals_.failures;
    const fs::path keep =
        fs::temp_directory_path() /
        ("corobtree-crash-failure-" + std::to_string(seed_) + "-" + combo_.backend + "-" +
         combo_.durability + "-" + std::to_string(iteration_));
    std::error_code ec;
    fs::create_directories(keep, ec);
    if (fs::exists(pristine_)) {
      for (const char* suffix : kFileSuffixes) {
        if (!fs::exists(pristine_ + suffix)) continue;
        fs::copy_file(pristine_ + suffix, keep / (std::string("crash.db") + suffix),
                      fs::copy_options::overwrite_existing, ec);
      }
    }
    BOOST_ERROR(combo_.name() << " seed " << seed_ << " iteration " << iteration_ << " (start "
                              << start_ << "): " << what << "\n  crashed files kept in "
                              << keep.string());
    return false;
  }

  const Combo combo_;
  const std::uint64_t seed_;
  std::mt19937_64 rng_;
  const int max_delay_ms_;
  bool restart_ = false;
  bool threads_ = false;
  corobtree::test::TempDir dir_;
  std::string path_;
  std::string snapshot_;
  std::string pristine_;
  std::uint64_t start_ = 0;
  int iteration_ = 0;
  std::array<Model, crash::kLanes> model_;
  Totals totals_;
};

}  // namespace

BOOST_DATA_TEST_CASE(sigkill_loses_no_acknowledged_commit, bdata::make(kCombos), combo) {
  const std::uint64_t seed = corobtree::test::test_seed("crash_kill " + combo.name());
  const int kills = kills_per_combo();
  KillLoop loop(combo, seed);
  loop.create();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kills; ++i) {
    if (!loop.iterate(i, i + 1 == kills)) break;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_totals.add(loop.totals());
  BOOST_TEST_MESSAGE("[crash] " << combo.name() << ": " << loop.totals().summary() << " in " << secs
                                << " s");
  BOOST_TEST(loop.totals().failures == 0u);
  BOOST_TEST(loop.totals().lost == 0u);
  BOOST_TEST(loop.totals().locked == 0u);
}

// A kill while open() creates a new database must leave either no file or one
// that opens as a database (creation builds the file under a temporary name
// and links it into place).
BOOST_AUTO_TEST_CASE(sigkill_while_creating) {
  const std::uint64_t seed = corobtree::test::test_seed("sigkill_while_creating");
  const int kills = kills_per_combo();
  for (const Combo& combo : kCombos) {
    Totals totals;
    for (int i = 0; i < kills; ++i) {
      KillLoop loop(combo, seed + static_cast<std::uint64_t>(i), /*max_delay_ms=*/10);
      const bool ok = loop.iterate(0, true);
      totals.add(loop.totals());
      if (!ok) break;
    }
    BOOST_TEST_MESSAGE("[crash] creating " << combo.name() << ": " << totals.summary());
    BOOST_TEST(totals.failures == 0u);
  }
}

// Issue 15, "restart right after a crash": kill a writing child during its
// I/O and reopen at once with lock_timeout 0, 1,000 times per backend.
BOOST_DATA_TEST_CASE(restart_right_after_sigkill,
                     bdata::make(std::vector<std::string>{"uring", "pread"}), backend) {
  const Combo combo{backend, "sync"};
  const std::uint64_t seed = corobtree::test::test_seed("restart_right_after_sigkill " + backend);
  int kills = corobtree::test::scaled(1000, 8);
  if (const char* env = std::getenv("COROBTREE_RESTART_KILLS"); env && *env) {
    kills = std::max(1, std::atoi(env));
  }
  constexpr int kFreshEvery = 25;  // keeps the files small
  Totals totals;
  const auto t0 = std::chrono::steady_clock::now();
  for (int first = 0; first < kills && totals.failures == 0; first += kFreshEvery) {
    KillLoop loop(combo, seed + static_cast<std::uint64_t>(first));
    loop.restart_mode();
    loop.create();
    const int end = std::min(kills, first + kFreshEvery);
    for (int i = first; i < end; ++i) {
      if (!loop.iterate(i, i + 1 == end)) break;
    }
    totals.add(loop.totals());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_totals.add(totals);
  std::cout << "[crash] restart " << combo.name() << ": " << totals.summary() << " in " << secs
            << " s" << std::endl;
  BOOST_TEST(totals.kills == static_cast<std::uint64_t>(kills));
  BOOST_TEST(totals.failures == 0u);
  BOOST_TEST(totals.lost == 0u);
  BOOST_TEST(totals.locked == 0u);
}

// Issue 12: the child's four writers are threads sharing one database
// (kSync), each acknowledging its own commits; 0 may be lost.
BOOST_DATA_TEST_CASE(sigkill_with_four_writer_threads,
                     bdata::make(std::vector<std::string>{"uring", "pread"}), backend) {
  const Combo combo{backend, "sync"};
  const std::uint64_t seed =
      corobtree::test::test_seed("sigkill_with_four_writer_threads " + backend);
  const int kills = kills_per_combo();
  KillLoop loop(combo, seed);
  loop.threads_mode();
  loop.create();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kills; ++i) {
    if (!loop.iterate(i, i + 1 == kills)) break;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_totals.add(loop.totals());
  std::cout << "[crash] 4 writer threads " << combo.name() << ": " << loop.totals().summary()
            << " in " << secs << " s" << std::endl;
  BOOST_TEST(loop.totals().kills == static_cast<std::uint64_t>(kills));
  BOOST_TEST(loop.totals().failures == 0u);
  BOOST_TEST(loop.totals().lost == 0u);
  BOOST_TEST(loop.totals().locked == 0u);
}
