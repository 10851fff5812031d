// load DB [FILE|-]: reads the dump format and writes it into the database.
//
// The whole input is parsed and checked (escapes, field count, key and value
// sizes) before the first write, so bad input leaves the database untouched
// (and a database file that load itself created is removed again). Sorted
// input into an empty database takes BlockingDatabase::bulk_load; anything
// else goes in WriteBatches of kBatchSize puts (the last write of a key wins).
// Interrupts during the writes are held back until the database is closed.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include <corobtree/error.h>
#include "tools/cli.h"
#include "tools/escape.h"
#include "tools/line_reader.h"

namespace corobtree::cli {

namespace {

constexpr std::size_t kBatchSize = 10000;
using Pairs = std::vector<std::pair<std::string, std::string>>;
using Clock = std::chrono::steady_clock;

// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  Progress() : enabled_(::isatty(STDERR_FILENO) == 1), start_(Clock::now()) {}

  // Redraws at most every 100 ms (and always at done == total).
  void show(const char* phase, std::uint64_t done, std::uint64_t total) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (drawn_ && done != total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    constexpr int kWidth = 30;
    const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.append(static_cast<std::size_t>(kWidth - filled), '.');
    std::fprintf(stderr, "\r\033[Kload: %-8s [%s] %3d%%", phase, bar.c_str(),
                 static_cast<int>(frac * 100));
    std::fflush(stderr);
  }

  void finish(std::size_t pairs, const char* method) {
    if (!enabled_) return;
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    std::fprintf(stderr, "\r\033[Kload: %zu pairs (%s) in %.2f s\n", pairs, method, s);
  }

  void abandon() {
    if (enabled_ && drawn_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_;
  Clock::time_point last_;
};

struct Input {
  std::FILE* file = nullptr;
  std::string name;
  std::uint64_t size = 0;  // 0 when unknown (a pipe)
  ~Input() {
    if (file && file != stdin) std::fclose(file);
  }
};

void open_input(const Invocation& inv, Input& in) {
  if (inv.args.size() > 1) throw UsageError("usage: corobtree load DB [FILE|-]");
  const bool use_stdin = inv.args.empty() || inv.args[0] == "-";
  in.name = use_stdin ? "<stdin>" : inv.args[0];
  in.file = use_stdin ? stdin : std::fopen(in.name.c_str(), "rb");
  if (!in.file) throw errno_error(errno, "open", in.name);
  struct stat st {};
  if (::fstat(::fileno(in.file), &st) == 0 && S_ISREG(st.st_mode)) {
    in.size = static_cast<std::uint64_t>(st.st_size);
  }
}

[[noreturn]] void bad_line(const Input& in, std::uint64_t line, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument,
              in.name + ", line " + std::to_string(line) + ": " + why + "; nothing was loaded");
}

// Parses every line; empty lines are skipped.
Pairs read_pairs(Input& in, std::uint32_t max_key, Progress& progress) {
  Pairs pairs;
  LineReader reader(in.file);
  std::uint64_t line_no = 0;
  for (std::string_view line; reader.next(line);) {
    ++line_no;
    if (line.empty()) continue;
    try {
      pairs.push_back(parse_dump_line(line));
    } catch (const EscapeError& e) {
      bad_line(in, line_no, e.what());
    }
    const auto& [k, v] = pairs.back();
    if (k.size() > max_key) {
      bad_line(in, line_no,
               "key of " + std::to_string(k.size()) + " bytes exceeds the limit of " +
                   std::to_string(max_key) + " bytes");
    }
    if (v.size() > kMaxValueSize) {
      bad_line(in, line_no, "value of " + std::to_string(v.size()) + " bytes is too large");
    }
    if (in.size && (line_no & 0xfff) == 0) progress.show("reading", reader.bytes(), in.size);
  }
  if (reader.failed()) throw errno_error(errno, "read", in.name);
  if (in.size) progress.show("reading", in.size, in.size);
  return pairs;
}

bool strictly_increasing(const Pairs& pairs) {
  for (std::size_t i = 1; i < pairs.size(); ++i) {
    if (!(pairs[i - 1].first < pairs[i].first)) return false;
  }
  return true;
}

void load_batched(BlockingDatabase& db, const Pairs& pairs, Progress& progress) {
  WriteBatch batch;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    batch.put(pairs[i].first, pairs[i].second);
    if (batch.size() == kBatchSize || i + 1 == pairs.size()) {
      db.write(batch);
      batch.clear();
      progress.show("writing", i + 1, pairs.size());
    }
  }
}

// Returns how the pairs went in: "bulk" or "batched".
const char* write_pairs(BlockingDatabase& db, const Pairs& pairs, Progress& progress) {
  if (db.count() == 0 && strictly_increasing(pairs)) {
    progress.show("writing", 0, pairs.size());
    try {
      db.bulk_load(pairs);  // checks its preconditions before it changes anything
      progress.show("writing", pairs.size(), pairs.size());
      return "bulk";
    } catch (const Error& e) {
      // An empty tree that is not a lone leaf: fall back to plain puts.
      if (e.code() != ErrorCode::kInvalidArgument) throw;
    }
  }
  load_batched(db, pairs, progress);
  return "batched";
}

// Holds back SIGINT, SIGTERM and SIGHUP while the database changes, so that
// an interrupt lands after close() (the load complete and checkpointed)
// rather than between two batches.
class DeferSignals {
 public:
  DeferSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
    ::sigprocmask(SIG_BLOCK, &set, &old_);
  }
  ~DeferSignals() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }
  DeferSignals(const DeferSignals&) = delete;
  DeferSignals& operator=(const DeferSignals&) = delete;

 private:
  sigset_t old_;
};

}  // namespace

int run_load(const Invocation& inv) {
  Input in;
  open_input(inv, in);
  struct stat st {};
  const bool existed = ::stat(inv.db_path.c_str(), &st) == 0;
  std::optional<DeferSignals> defer;  // outlives db: a signal never cuts its close
  BlockingDatabase db = open_db(inv, true);
  Progress progress;
  Pairs pairs;
  try {
    pairs = read_pairs(in, db.max_key_size(), progress);
  } catch (...) {
    progress.abandon();
    db.close();
    if (!existed) ::unlink(inv.db_path.c_str());  // nothing of ours may remain
    throw;
  }
  defer.emplace();
  const char* method = write_pairs(db, pairs, progress);
  db.close();
  progress.finish(pairs.size(), method);
  defer.reset();  // a held-back signal takes effect now
  return kExitOk;
}

}  // namespace corobtree::cli
