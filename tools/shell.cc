// shell DB: one command per line on stdin, one reply per command on stdout
// (the protocol table is in tools/README.md).
// A trailing CR on a line is ignored.
//
// Between begin and commit, writes collect in a WriteBatch and in an overlay
// map (key -> value, or nullopt for an erase) so that get, del and scan inside
// the transaction see the transaction's own writes. commit applies the batch
// with BlockingDatabase::write; abort and end of input discard it.
#include <signal.h>

#include <cerrno>
#include <iterator>
#include <map>
#include <optional>
#include <string_view>

#include <corobtree/error.h>
#include "tools/cli.h"
#include "tools/escape.h"
#include "tools/line_reader.h"

namespace corobtree::cli {

namespace {

volatile sig_atomic_t g_interrupted = 0;

extern "C" void on_interrupt(int sig) { g_interrupted = sig; }

// SIGINT/SIGTERM end the session like end of input: without SA_RESTART, a
// blocked read returns EINTR and the loop closes the database cleanly.
void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// A malformed command: the reply is "ERR " + what().
class Malformed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t start = 0;
  while (true) {
    const std::size_t sp = line.find(' ', start);
    words.push_back(line.substr(start, sp - start));
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  return words;
}

// One line, printable: an error message in a reply may not span lines.
std::string one_line(std::string_view s) {
  constexpr std::string_view kPrefix = "corobtree: ";
  if (s.substr(0, kPrefix.size()) == kPrefix) s.remove_prefix(kPrefix.size());
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

class Shell {
 public:
  explicit Shell(BlockingDatabase& db) : db_(db) {}

  // The reply to one command line, ending in '\n'.
  std::string execute(std::string_view line) {
    try {
      return dispatch(split_words(line));
    } catch (const std::exception& e) {
      return "ERR " + one_line(e.what()) + "\n";
    }
  }

 private:
  using Words = std::vector<std::string_view>;

  std::string dispatch(const Words& w) {
    const std::string_view cmd = w[0];
    if (cmd.empty()) throw Malformed(w.size() == 1 ? "empty command" : "leading space");
    for (std::size_t i = 1; i < w.size(); ++i) {
      if (w[i].empty()) throw Malformed("empty argument: arguments are separated by single spaces");
    }
    if (cmd == "put") {
      arity(w, 3, "put K V");
      return put(parse_arg(w[1]), parse_arg(w[2]));
    }
    if (cmd == "get") {
      arity(w, 2, "get K");
      return get(parse_arg(w[1]));
    }
    if (cmd == "del") {
      arity(w, 2, "del K");
      return del(parse_arg(w[1]));
    }
    if (cmd == "scan") {
      arity(w, 3, "scan FROM LIMIT");
      return scan(parse_arg(w[1]), w[2]);
    }
    if (cmd == "backup") {
      arity(w, 2, "backup DEST");
      db_.backup(parse_arg(w[1]));  // the committed state, not an open transaction's writes
      return "OK\n";
    }
    return dispatch_bare(w);
  }

  // The commands without arguments.
  std::string dispatch_bare(const Words& w) {
    const std::string_view cmd = w[0];
    using Handler = std::string (Shell::*)();
    static constexpr std::pair<std::string_view, Handler> kBare[] = {{"begin", &Shell::begin},
                                                                     {"commit", &Shell::commit},
                                                                     {"abort", &Shell::abort},
                                                                     {"check", &Shell::check},
                                                                     {"stats", &Shell::stats}};
    for (const auto& [name, handler] : kBare) {
      if (cmd != name) continue;
      arity(w, 1, name.data());
      return (this->*handler)();
    }
    throw Malformed("unknown command '" + escape(cmd) +
                    "' (commands: put get del scan backup begin commit abort check stats)");
  }

  static void arity(const Words& w, std::size_t n, const char* usage) {
    if (w.size() != n) throw Malformed(std::string("usage: ") + usage);
  }

  void check_sizes(const std::string& key, const std::string& value) const {
    if (key.size() > db_.max_key_size()) {
      throw Malformed("key of " + std::to_string(key.size()) + " bytes exceeds the limit of " +
                      std::to_string(db_.max_key_size()) + " bytes");
    }
    if (value.size() > kMaxValueSize) throw Malformed("value too large");
  }

  std::optional<std::string> lookup(const std::string& key) {
    if (const auto it = overlay_.find(key); it != overlay_.end()) return it->second;
    return db_.get(key);
  }

  std::string put(const std::string& key, const std::string& value) {
    if (!in_txn_) {
      db_.put(key, value);
      return "OK\n";
    }
    check_sizes(key, value);
    batch_.put(key, value);
    overlay_[key] = value;
    return "OK\n";
  }

  std::string get(const std::string& key) {
    const std::optional<std::string> v = lookup(key);
    return v ? "VALUE " + escape_arg(*v) + "\n" : "NOT_FOUND\n";
  }

  std::string del(const std::string& key) {
    if (!in_txn_) return db_.erase(key) ? "DELETED\n" : "NOT_FOUND\n";
    check_sizes(key, {});
    if (!lookup(key)) return "NOT_FOUND\n";
    batch_.erase(key);
    overlay_[key] = std::nullopt;
    return "DELETED\n";
  }

  std::string scan(const std::string& from, std::string_view limit_text) {
    const std::uint64_t limit = parse_count(std::string(limit_text), "scan LIMIT");
    std::string out;
    for (const auto& [k, v] : merged_range(from, limit)) {
      out += escape_arg(k) + "\t" + escape_arg(v) + "\n";
    }
    return out + "END\n";
  }

  // The first `limit` pairs with key >= from, as the transaction sees them.
  // Each overlay entry hides at most one stored pair, so `limit` plus the
  // number of overlay entries in range is enough to read from the tree.
  std::map<std::string, std::string> merged_range(const std::string& from, std::uint64_t limit) {
    const auto first = overlay_.lower_bound(from);
    const auto extra = static_cast<std::uint64_t>(std::distance(first, overlay_.end()));
    const std::uint64_t want = limit > UINT64_MAX - extra ? UINT64_MAX : limit + extra;
    std::map<std::string, std::string> view;
    ScanOptions opts;
    opts.lower = from;
    for (auto& [k, v] : db_.scan(opts, want)) view.emplace(std::move(k), std::move(v));
    for (auto it = first; it != overlay_.end(); ++it) {
      if (it->second) {
        view[it->first] = *it->second;
      } else {
        view.erase(it->first);
      }
    }
    while (view.size() > limit) view.erase(std::prev(view.end()));
    return view;
  }

  std::string begin() {
    if (in_txn_) throw Malformed("a transaction is already open (commit or abort it first)");
    in_txn_ = true;
    return "OK\n";
  }

  std::string commit() {
    if (!in_txn_) throw Malformed("no transaction is open (begin one first)");
    WriteBatch batch = std::move(batch_);
    discard();
    db_.write(batch);  // on failure the transaction is gone: ERR says why
    return "OK\n";
  }

  std::string abort() {
    if (!in_txn_) throw Malformed("no transaction is open (begin one first)");
    discard();
    return "OK\n";
  }

  void discard() {
    in_txn_ = false;
    batch_.clear();
    overlay_.clear();
  }

  std::string check() {
    try {
      const ValidationReport r = db_.validate();
      if (r.ok()) return "OK\n";
      std::string reply = "CORRUPT " + one_line(corruption_reason(r.problems.front()));
      if (r.problems.size() > 1) {
        reply += " (and " + std::to_string(r.problems.size() - 1) + " more)";
      }
      return reply + "\n";
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kCorruption) throw;
      return "CORRUPT " + one_line(corruption_reason(e.what())) + "\n";
    }
  }

  std::string stats() {
    const ValidationReport r = db_.validate();
    std::string line;
    for (const auto& [name, value] : stats_fields(db_, r)) {
      if (!line.empty()) line += ' ';
      line += name + "=" + escape_arg(value);
    }
    return line + "\n";
  }

  BlockingDatabase& db_;
  bool in_txn_ = false;
  WriteBatch batch_;
  std::map<std::string, std::optional<std::string>> overlay_;
};

}  // namespace

int run_shell(const Invocation& inv, std::FILE* in, std::FILE* out) {
  if (!inv.args.empty()) throw UsageError("usage: corobtree shell DB (commands come on stdin)");
  BlockingDatabase db = open_db(inv, false);
  Shell shell(db);
  install_interrupt_handlers();
  LineReader reader(in);
  for (std::string_view line; !g_interrupted && reader.next(line);) {
    write_out(out, shell.execute(line));
    flush_out(out);
  }
  if (reader.failed() && !g_interrupted) throw errno_error(errno, "read", "<stdin>");
  db.close();  // an open transaction is discarded
  return g_interrupted ? 128 + g_interrupted : kExitOk;
}

}  // namespace corobtree::cli
