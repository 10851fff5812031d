// The corobtree command-line tool, end to end: each test runs the built
// binary (COROBTREE_CLI) with fork + exec on files in a temp dir, feeds its
// stdin and checks stdout, stderr and the exit code; every database test runs
// once with --io uring and once with --io pread. The escaping functions of
// tools/escape.h are unit-tested directly. Prints its seed; `-- --seed=N`
// replays the randomized round trips.
#define BOOST_TEST_MODULE cli
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"
#include "tools/escape.h"

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using corobtree::cli::escape;
using corobtree::cli::escape_arg;
using corobtree::cli::EscapeError;
using corobtree::cli::format_dump_line;
using corobtree::cli::parse_arg;
using corobtree::cli::parse_dump_line;
using corobtree::cli::unescape;
using corobtree::test::TempDir;

namespace {

const std::vector<std::string> kBackends = {"uring", "pread"};

// The test process must survive a child that exits before reading its stdin.
struct IgnoreSigpipe {
  IgnoreSigpipe() {
    ::signal(SIGPIPE, SIG_IGN);
    ::unsetenv("COROBTREE_IO");
    // A sanitizer report in the tool must not pass for an expected exit 1.
    ::setenv("ASAN_OPTIONS", "exitcode=99", 0);
  }
};
BOOST_TEST_GLOBAL_FIXTURE(IgnoreSigpipe);

struct Result {
  int code = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
  return os << "exit " << r.code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

std::string all_bytes() {
  std::string s;
  for (int c = 0; c < 256; ++c) s.push_back(static_cast<char>(c));
  return s;
}

// A running tool process with pipes on stdin, stdout and stderr (or a
// terminal on stderr when `tty_err` is a pty slave).
class Process {
 public:
  explicit Process(const std::vector<std::string>& args, int tty_err = -1) {
    int in[2], out[2], err[2];
    BOOST_REQUIRE(::pipe2(in, O_CLOEXEC) == 0 && ::pipe2(out, O_CLOEXEC) == 0 &&
                  ::pipe2(err, O_CLOEXEC) == 0);
    std::vector<char*> argv;
    std::string exe = COROBTREE_CLI;
    argv.push_back(exe.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(tty_err >= 0 ? tty_err : err[1], 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
  }
  ~Process() {
    close_stdin();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
    if (err_ >= 0) ::close(err_);
  }

  void send(const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(in_, text.data() + done, text.size() - done);
      BOOST_REQUIRE_MESSAGE(n > 0, "writing to the tool failed");
      done += static_cast<std::size_t>(n);
    }
  }

  // One line of stdout without its '\n' (waits up to 20 s).
  std::string read_line() {
    std::string line;
    char c;
    while (true) {
      pollfd p{out_, POLLIN, 0};
      BOOST_REQUIRE_MESSAGE(::poll(&p, 1, 20000) == 1, "no reply from the tool");
      BOOST_REQUIRE_MESSAGE(::read(out_, &c, 1) == 1, "the tool closed stdout");
      if (c == '\n') return line;
      line += c;
    }
  }

  void close_stdin() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }

  // Writes `input`, closes stdin, reads stdout and stderr (and `extra`, a
  // pty master, into err) to the end, and waits for the exit.
  Result finish(const std::string& input = "", int extra = -1) {
    Result r;
    std::size_t sent = 0;
    ::fcntl(in_, F_SETFL, O_NONBLOCK);
    if (input.empty()) close_stdin();
    while (out_ >= 0 || err_ >= 0 || extra >= 0) {
      pollfd p[4] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}, {extra, POLLIN, 0}, {in_, POLLOUT, 0}};
      BOOST_REQUIRE(::poll(p, 4, 60000) > 0);
      drain(p[0], out_, r.out);
      drain(p[1], err_, r.err);
      drain(p[2], extra, r.err);
      if (in_ >= 0 && p[3].revents) {
        const ssize_t n = ::write(in_, input.data() + sent, input.size() - sent);
        if (n > 0) sent += static_cast<std::size_t>(n);
        if (n < 0 && errno != EAGAIN) close_stdin();  // EPIPE: the tool stopped reading
        if (sent == input.size()) close_stdin();
      }
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
  }

 private:
  static void drain(const pollfd& p, int& fd, std::string& to) {
    if (fd < 0 || p.revents == 0) return;
    char buf[65536];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      to.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {  // EOF, or EIO from a pty whose slave closed
      if (fd != -1) ::close(fd);
      fd = -1;
    }
  }

  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  int err_ = -1;
};

// The tool with one backend: cli({"get", db, "k"}) runs `corobtree --io B get DB k`.
struct Cli {
  std::string io;
  Result operator()(std::vector<std::string> args, const std::string& input = "") const {
    args.insert(args.begin(), {"--io", io});
    return Process(args).finish(input);
  }
  std::vector<std::string> with_io(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--io", io});
    return args;
  }
};

// Evaluates `expr` once (it usually runs the tool) and checks the exit code.
#define CHECK_RUN(expr, expected_code)                             \
  do {                                                             \
    const Result result_ = (expr);                                 \
    BOOST_CHECK_MESSAGE(result_.code == (expected_code), result_); \
  } while (0)

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string dump_text(const std::map<std::string, std::string>& model) {
  std::string text;
  for (const auto& [k, v] : model) text += format_dump_line(k, v) + "\n";
  return text;
}

std::string reversed_dump_text(const std::map<std::string, std::string>& model) {
  std::string text;
  for (auto it = model.rbegin(); it != model.rend(); ++it) {
    text += format_dump_line(it->first, it->second) + "\n";
  }
  return text;
}

// n rows "key000000"..., each with a 20-byte value.
std::map<std::string, std::string> numbered_rows(int n) {
  std::map<std::string, std::string> rows;
  char key[32];
  for (int i = 0; i < n; ++i) {
    std::snprintf(key, sizeof key, "key%06d", i);
    rows[key] = "value-" + std::to_string(i) + std::string(14, 'v');
  }
  return rows;
}

// Creates `db` holding `rows` through `load`.
void make_db(const Cli& cli, const std::string& db,
             const std::map<std::string, std::string>& rows) {
  const Result r = cli({"load", db}, dump_text(rows));
  BOOST_REQUIRE_MESSAGE(r.code == 0, r);
}

std::string stat_value(const std::string& stats_out, const std::string& name) {
  std::istringstream in(stats_out);
  for (std::string n, v; in >> n >> v;) {
    if (n == name) return v;
  }
  return "";
}

std::uint64_t pages_used(const Cli& cli, const std::string& db) {
  return std::stoull(stat_value(cli({"stats", db}).out, "pages_used"));
}

// Flips bytes in the middle of page `page` of a 4 KiB-page file.
void damage_page(const std::string& path, std::uint64_t page) {
  const int fd = ::open(path.c_str(), O_RDWR);
  BOOST_REQUIRE(fd >= 0);
  char bytes[16];
  const off_t off = static_cast<off_t>(page * 4096 + 2000);
  BOOST_REQUIRE(::pread(fd, bytes, sizeof bytes, off) == sizeof bytes);
  for (char& b : bytes) b = static_cast<char>(~b);
  BOOST_REQUIRE(::pwrite(fd, bytes, sizeof bytes, off) == sizeof bytes);
  ::close(fd);
}

}  // namespace

// ---- escape.h ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(escape_writes_the_documented_forms) {
  BOOST_TEST(escape("plain-text_09") == "plain-text_09");
  BOOST_TEST(escape("a b") == "a\\x20b");
  BOOST_TEST(escape("\"") == "\\x22");
  BOOST_TEST(escape("\\") == "\\\\");
  BOOST_TEST(escape("\t\n\r") == "\\t\\n\\r");
  BOOST_TEST(escape(std::string("\0\x01\x7f\x80\xff", 5)) == "\\x00\\x01\\x7f\\x80\\xff");
  BOOST_TEST(escape("") == "");
  BOOST_TEST(escape_arg("") == "\"\"");
  BOOST_TEST(escape_arg("x") == "x");
  // Escaped text is printable ASCII without spaces, tabs or quotes.
  for (char c : escape(all_bytes())) {
    BOOST_TEST((c > 0x20 && c < 0x7f && c != '"'));
  }
}

BOOST_AUTO_TEST_CASE(unescape_reads_every_escape) {
  BOOST_TEST(unescape("a\\\\b\\tc\\nd\\re") == "a\\b\tc\nd\re");
  BOOST_TEST(unescape("\\x41\\x6a\\x6A\\x00") == std::string("Ajj\0", 4));
  BOOST_TEST(unescape("raw \"quote\" and space") == "raw \"quote\" and space");
  BOOST_TEST(unescape("") == "");
  BOOST_TEST(parse_arg("\"\"") == "");
  BOOST_TEST(parse_arg("\"x\"") == "\"x\"");
  BOOST_TEST(unescape(escape(all_bytes())) == all_bytes());
}

BOOST_AUTO_TEST_CASE(unescape_rejects_bad_escapes) {
  for (const char* bad : {"\\xZZ", "\\x4", "\\x", "abc\\", "\\", "\\q", "\\0", "a\\\"b", "\\x4g"}) {
    BOOST_CHECK_THROW(unescape(bad), EscapeError);
  }
  try {
    unescape("abc\\");
    BOOST_FAIL("no exception");
  } catch (const EscapeError& e) {
    BOOST_TEST(std::string(e.what()).find("trailing backslash") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(dump_lines_round_trip_any_bytes) {
  const auto seed = corobtree::test::test_seed("dump_lines_round_trip_any_bytes");
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    std::string k(rng() % 40, '\0'), v(rng() % 200, '\0');
    for (char& c : k) c = static_cast<char>(rng());
    for (char& c : v) c = static_cast<char>(rng());
    const std::string line = format_dump_line(k, v);
    BOOST_TEST(line.find('\n') == std::string::npos);
    const auto [k2, v2] = parse_dump_line(line);
    BOOST_TEST(k2 == k);
    BOOST_TEST(v2 == v);
  }
  BOOST_TEST(format_dump_line("", "") == "\t");
  BOOST_TEST((parse_dump_line("\t") == std::pair<std::string, std::string>{"", ""}));
  BOOST_TEST((parse_dump_line("k\tv\r") == std::pair<std::string, std::string>{"k", "v"}));
  BOOST_CHECK_THROW(parse_dump_line("no tab"), EscapeError);
  BOOST_CHECK_THROW(parse_dump_line("a\tb\tc"), EscapeError);
  BOOST_CHECK_THROW(parse_dump_line("a\\q\tb"), EscapeError);
}

// ---- the binary ---------------------------------------------------------------

BOOST_DATA_TEST_CASE(binary_keys_and_values_round_trip, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  CHECK_RUN(cli({"create", db}), 0);
  const std::string bytes = all_bytes();
  std::map<std::string, std::string> model = {
      {bytes, std::string(bytes.rbegin(), bytes.rend())},
      {"", "value of the empty key"},
      {"empty value", ""},
      {std::string("\0", 1), "\xff\xfe \"quoted\" \\ \t\n\r"},
  };
  for (const auto& [k, v] : model) CHECK_RUN(cli({"put", db, escape_arg(k), escape_arg(v)}), 0);
  for (const auto& [k, v] : model) {
    const Result r = cli({"get", db, escape_arg(k)});
    CHECK_RUN(r, 0);
    BOOST_TEST(r.out == escape_arg(v) + "\n");
    BOOST_TEST(parse_arg(r.out.substr(0, r.out.size() - 1)) == v);
  }
  // Every single-byte key, through the shell, with the byte as a value too.
  std::string script;
  for (int c = 0; c < 256; ++c) {
    const std::string k(1, static_cast<char>(c));
    const std::string v = "<" + k + k + ">";
    model[k] = v;
    script += "put " + escape_arg(k) + " " + escape_arg(v) + "\n";
  }
  const Result sh = cli({"shell", db}, script);
  CHECK_RUN(sh, 0);
  std::string oks;
  for (int c = 0; c < 256; ++c) oks += "OK\n";
  BOOST_TEST(sh.out == oks);

  const Result dump = cli({"dump", db});
  CHECK_RUN(dump, 0);
  BOOST_TEST(dump.out == dump_text(model));
  // dump | load into a fresh database gives the same dump.
  const std::string copy = dir.file("copy.db");
  CHECK_RUN(cli({"load", copy, "-"}, dump.out), 0);
  const Result dump2 = cli({"dump", copy});
  CHECK_RUN(dump2, 0);
  BOOST_TEST(dump2.out == dump.out);
  // ... and from a file into a non-empty database (batched, last write wins).
  write_file(dir.file("dump.txt"), dump.out);
  CHECK_RUN(cli({"put", copy, "extra", "1"}), 0);
  CHECK_RUN(cli({"load", copy, dir.file("dump.txt")}), 0);
  model["extra"] = "1";
  BOOST_TEST(cli({"dump", copy}).out == dump_text(model));
}

BOOST_DATA_TEST_CASE(get_del_and_scan, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  const auto rows = numbered_rows(300);
  make_db(cli, db, rows);

  Result r = cli({"get", db, "nope"});
  CHECK_RUN(r, 1);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(r.err.find("not found") != std::string::npos);
  CHECK_RUN(cli({"del", db, "nope"}), 1);
  CHECK_RUN(cli({"del", db, "key000007"}), 0);
  CHECK_RUN(cli({"get", db, "key000007"}), 1);
  auto model = rows;
  model.erase("key000007");

  auto range = [&](const std::string& from, const std::string& to) {
    return std::map<std::string, std::string>(model.lower_bound(from), model.lower_bound(to));
  };
  r = cli({"scan", db, "--from", "key000005", "--to", "key000010"});  // [from, to)
  CHECK_RUN(r, 0);
  BOOST_TEST(r.out == dump_text(range("key000005", "key000010")));
  r = cli({"scan", db, "--from", "key000290", "--limit", "3"});
  BOOST_TEST(r.out == dump_text(range("key000290", "key000293")));
  r = cli({"scan", db, "--reverse", "--to", "key000010", "--limit", "4"});
  CHECK_RUN(r, 0);
  BOOST_TEST(r.out == "key000009\t" + rows.at("key000009") + "\nkey000008\t" +
                          rows.at("key000008") + "\nkey000006\t" + rows.at("key000006") +
                          "\nkey000005\t" + rows.at("key000005") + "\n");
  r = cli({"scan", db});
  BOOST_TEST(r.out == dump_text(model));
  r = cli({"scan", db, "--reverse", "--limit", "0"});
  CHECK_RUN(r, 0);
  BOOST_TEST(r.out.empty());
  CHECK_RUN(cli({"scan", db, "--limit", "x"}), 3);
  CHECK_RUN(cli({"scan", db, "--sideways"}), 3);
}

BOOST_DATA_TEST_CASE(shell_protocol, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  CHECK_RUN(cli({"create", db}), 0);
  const std::string script =
      "put a 1\n"
      "put b\\x20b \"\"\n"
      "put \"\" empty\\tkey\n"
      "get a\n"
      "get b\\x20b\n"
      "get \"\"\n"
      "get zz\n"
      "scan \"\" 10\n"
      "scan a 1\n"
      "scan zz 5\n"
      "del a\n"
      "del a\n"
      "check\n"
      "frobnicate x\n"
      "put onlykey\n"
      "put a  b\n"
      "\n"
      "get bad\\xZZ\n"
      "get trailing\\\n"
      "scan a many\n"
      "commit\n"
      "abort\n"
      "begin\n"
      "begin\n"
      "put t 1\n"
      "get t\n"
      "del b\\x20b\n"
      "get b\\x20b\n"
      "scan \"\" 10\n"
      "abort\n"
      "get t\n"
      "get b\\x20b\n"
      "begin\n"
      "put u 2\n"
      "del \"\"\n"
      "commit\n"
      "get u\n"
      "get \"\"\n"
      "begin\n"
      "put pending 1\n";
  const Result r = cli({"shell", db}, script);
  CHECK_RUN(r, 0);
  std::istringstream lines(r.out);
  std::vector<std::string> got;
  for (std::string l; std::getline(lines, l);) got.push_back(l);
  const std::vector<std::string> want = {"OK",
                                         "OK",
                                         "OK",
                                         "VALUE 1",
                                         "VALUE \"\"",
                                         "VALUE empty\\tkey",
                                         "NOT_FOUND",
                                         "\"\"\tempty\\tkey",
                                         "a\t1",
                                         "b\\x20b\t\"\"",
                                         "END",  // scan "" 10
                                         "a\t1",
                                         "END",  // scan a 1
                                         "END",  // scan zz 5
                                         "DELETED",
                                         "NOT_FOUND",
                                         "OK",
                                         "ERR unknown command",
                                         "ERR usage: put K V",
                                         "ERR empty argument",
                                         "ERR empty command",
                                         "ERR bad escape",
                                         "ERR trailing backslash",
                                         "ERR scan LIMIT",
                                         "ERR no transaction",
                                         "ERR no transaction",
                                         "OK",
                                         "ERR a transaction is already open",
                                         "OK",
                                         "VALUE 1",
                                         "DELETED",
                                         "NOT_FOUND",
                                         "\"\"\tempty\\tkey",
                                         "t\t1",
                                         "END",  // the scan sees the transaction's writes
                                         "OK",
                                         "NOT_FOUND",
                                         "VALUE \"\"",  // abort discarded both
                                         "OK",
                                         "OK",
                                         "DELETED",
                                         "OK",
                                         "VALUE 2",
                                         "NOT_FOUND",
                                         "OK",
                                         "OK"};
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    // ERR replies are matched on their start, everything else exactly.
    const bool err = want[i].rfind("ERR ", 0) == 0;
    BOOST_TEST((err ? got[i].rfind(want[i], 0) == 0 : got[i] == want[i]),
               "reply " << i << ": got '" << got[i] << "', want '" << want[i] << "'");
  }
  // End of input closed the database cleanly and discarded the open transaction.
  CHECK_RUN(cli({"get", db, "pending"}), 1);
  const Result dump = cli({"dump", db});
  BOOST_TEST(dump.out == "b\\x20b\t\nu\t2\n");
  CHECK_RUN(cli({"check", db}), 0);
}

BOOST_DATA_TEST_CASE(shell_stats_check_and_size_limits, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  CHECK_RUN(cli({"create", db}), 0);
  const Result st = cli({"stats", db});
  CHECK_RUN(st, 0);
  for (const char* name : {"file_size", "page_size", "pages_used", "pages_free", "height", "keys",
                           "fill_factor", "backend", "pool_hits", "pool_misses"}) {
    BOOST_TEST(!stat_value(st.out, name).empty(), name);
  }
  BOOST_TEST(stat_value(st.out, "backend") == io);
  BOOST_TEST(stat_value(st.out, "page_size") == "4096");
  const std::size_t max_key = std::stoul(stat_value(st.out, "max_key_size"));
  BOOST_REQUIRE(max_key > 0);

  const std::string big(max_key + 1, 'k');
  const std::string fits(max_key, 'k');
  Result r = cli({"put", db, big, "v"});
  CHECK_RUN(r, 3);
  BOOST_TEST(r.err.find("exceeds the limit") != std::string::npos);
  CHECK_RUN(cli({"put", db, fits, "v"}), 0);
  const Result sh = cli({"shell", db}, "put " + big + " v\nbegin\nput " + big +
                                           " v\ncommit\nstats\ncheck\nget " + fits + "\n");
  CHECK_RUN(sh, 0);
  std::istringstream lines(sh.out);
  std::vector<std::string> got;
  for (std::string l; std::getline(lines, l);) got.push_back(l);
  BOOST_REQUIRE_EQUAL(got.size(), 7u);
  BOOST_TEST(got[0].find("ERR") == 0);
  BOOST_TEST(got[0].find("exceeds the limit") != std::string::npos);
  BOOST_TEST(got[1] == "OK");
  BOOST_TEST(got[2].find("ERR") == 0);
  BOOST_TEST(got[3] == "OK");
  BOOST_TEST(got[4].find("keys=1 ") != std::string::npos);
  BOOST_TEST(got[4].find("backend=" + io) != std::string::npos);
  BOOST_TEST(got[4].find('\t') == std::string::npos);
  BOOST_TEST(got[5] == "OK");
  BOOST_TEST(got[6] == "VALUE v");
  BOOST_TEST(cli({"dump", db}).out == fits + "\tv\n");
}

BOOST_DATA_TEST_CASE(check_reports_a_damaged_copy, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  make_db(cli, db, numbered_rows(5000));
  Result r = cli({"check", db});
  CHECK_RUN(r, 0);
  BOOST_TEST(r.out.find("OK") == 0);

  const std::string copy = dir.file("copy.db");
  fs::copy_file(db, copy);
  damage_page(copy, 5);
  r = cli({"check", copy});
  CHECK_RUN(r, 2);
  BOOST_TEST(r.out.find("CORRUPT") == 0);
  BOOST_TEST(r.out.find("page 5") != std::string::npos, r.out);
  // Reading through the damaged page fails with exit 2 and names it.
  r = cli({"dump", copy});
  CHECK_RUN(r, 2);
  BOOST_TEST(r.err.find("page 5") != std::string::npos, r.err);
  r = cli({"shell", copy}, "check\n");
  CHECK_RUN(r, 0);
  BOOST_TEST(r.out.find("CORRUPT ") == 0);
  BOOST_TEST(r.out.find("page 5") != std::string::npos);
  // The original is untouched.
  CHECK_RUN(cli({"check", db}), 0);

  // Both meta pages damaged: the file cannot even be opened.
  const std::string metas = dir.file("metas.db");
  fs::copy_file(db, metas);
  damage_page(metas, 0);
  r = cli({"check", metas});
  CHECK_RUN(r, 2);  // the other meta page still serves, but the damage is reported
  BOOST_TEST(r.out.find("meta page 0") != std::string::npos, r.out);
  r = cli({"get", metas, "key000001"});
  CHECK_RUN(r, 0);        // ... and a read-only run rewrites nothing
  damage_page(metas, 1);  // page 0 is still damaged
  r = cli({"check", metas});
  CHECK_RUN(r, 2);
  BOOST_TEST(r.out.find("no valid meta page") != std::string::npos, r.out);
  CHECK_RUN(cli({"get", metas, "key000001"}), 2);
}

BOOST_DATA_TEST_CASE(a_locked_database_is_refused, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  make_db(cli, db, {{"k", "v"}});
  Process holder(cli.with_io({"shell", db}));
  holder.send("get k\n");
  BOOST_REQUIRE_EQUAL(holder.read_line(), "VALUE v");  // it has the database open now
  for (const std::vector<std::string>& args : {std::vector<std::string>{"get", db, "k"},
                                               {"put", db, "k", "other"},
                                               {"check", db},
                                               {"load", db},
                                               {"shell", db}}) {
    const Result r = cli(args, "x\ty\n");
    CHECK_RUN(r, 3);
    BOOST_TEST(r.err.find("locked") != std::string::npos, r.err);
  }
  holder.send("put k2 v2\n");
  BOOST_TEST(holder.read_line() == "OK");
  const Result end = holder.finish();
  CHECK_RUN(end, 0);
  BOOST_TEST(cli({"dump", db}).out == "k\tv\nk2\tv2\n");
}

BOOST_DATA_TEST_CASE(bad_inputs_fail_cleanly, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  // A missing file: an error, and no file appears.
  const std::string missing = dir.file("missing.db");
  for (const std::vector<std::string>& args : {std::vector<std::string>{"get", missing, "k"},
                                               {"put", missing, "k", "v"},
                                               {"check", missing},
                                               {"stats", missing},
                                               {"shell", missing},
                                               {"dump", missing}}) {
    const Result r = cli(args);
    CHECK_RUN(r, 3);
    BOOST_TEST(r.err.find("does not exist") != std::string::npos, r.err);
  }
  BOOST_TEST(!fs::exists(missing));

  // Files that are not databases: reported, exit 2, and left as they were.
  std::mt19937_64 rng(7);
  std::string garbage(3 * 4096, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  for (const auto& [name, bytes] : std::map<std::string, std::string>{
           {"garbage.db", garbage}, {"empty.db", ""}, {"text.db", "hello\n"}}) {
    const std::string path = dir.file(name);
    write_file(path, bytes);
    for (const char* cmd : {"get", "check"}) {
      std::vector<std::string> args = {cmd, path};
      if (std::string(cmd) == "get") args.push_back("k");
      const Result r = cli(args);
      CHECK_RUN(r, 2);
      BOOST_TEST((r.err + r.out).find("not a corobtree database") != std::string::npos, r);
    }
    BOOST_TEST(read_file(path) == bytes);
  }

  // Bad escapes and usage errors change nothing.
  const std::string db = dir.file("a.db");
  make_db(cli, db, {{"a", "1"}});
  for (const std::vector<std::string>& args : {std::vector<std::string>{"put", db, "k\\xZZ", "v"},
                                               {"put", db, "k", "trailing\\"},
                                               {"get", db, "\\q"},
                                               {"del", db, "\\x1"},
                                               {"scan", db, "--from", "\\"},
                                               {"put", db, "k"},
                                               {"frob", db},
                                               {"get", db},
                                               {"--pool-pages", "x", "get", db, "a"},
                                               {"--bogus", "get", db, "a"}}) {
    const Result r = cli(args);
    CHECK_RUN(r, 3);
    BOOST_TEST(!r.err.empty());
    BOOST_TEST((r.err.find('\n') == r.err.size() - 1 || r.err.find("--help") != std::string::npos));
  }
  CHECK_RUN(Process({"--io", "sideways", "get", db, "a"}).finish(), 3);
  CHECK_RUN(Process({}).finish(), 3);
  const Result help = Process({"--help"}).finish();
  CHECK_RUN(help, 0);
  BOOST_TEST(help.out.find("usage: corobtree") == 0);
  BOOST_TEST(cli({"dump", db}).out == "a\t1\n");
  CHECK_RUN(cli({"create", db}), 3);  // create refuses an existing database
  BOOST_TEST(cli({"dump", db}).out == "a\t1\n");
}

BOOST_DATA_TEST_CASE(load_is_all_or_nothing, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  make_db(cli, db, {{"a", "1"}});
  std::string many;
  for (int i = 0; i < 20000; ++i) many += "k" + std::to_string(i) + "\tv\n";
  const std::string big_key(5000, 'x');
  const std::vector<std::string> bad_tails = {"bad\\xZZ\tv\n", "k\tv\\\n", "no tab here\n",
                                              "a\tb\tc\n", big_key + "\tv\n"};
  for (const std::string& bad_tail : bad_tails) {
    const Result r = cli({"load", db}, many + bad_tail + "z\tlast\n");
    CHECK_RUN(r, 3);
    BOOST_TEST(r.err.find("line 20001") != std::string::npos, r.err);
    BOOST_TEST(cli({"dump", db}).out == "a\t1\n");
    // Into a new path: no file is left behind.
    const std::string fresh = dir.file("fresh.db");
    CHECK_RUN(cli({"load", fresh}, many + bad_tail), 3);
    BOOST_TEST(!fs::exists(fresh));
  }
  CHECK_RUN(cli({"load", db, dir.file("no-such-input")}), 3);
  CHECK_RUN(cli({"load", db, "a", "b"}), 3);
  BOOST_TEST(cli({"dump", db}).out == "a\t1\n");
  // An empty input creates an empty database; blank lines are skipped.
  const std::string empty = dir.file("empty.db");
  CHECK_RUN(cli({"load", empty}, "\n\n"), 0);
  CHECK_RUN(cli({"check", empty}), 0);
  BOOST_TEST(cli({"dump", empty}).out.empty());
}

BOOST_DATA_TEST_CASE(sorted_load_takes_the_bulk_path, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const auto rows = numbered_rows(20000);
  const std::string sorted = dump_text(rows);
  std::vector<std::string> lines;
  std::istringstream in(sorted);
  for (std::string l; std::getline(in, l);) lines.push_back(l + "\n");
  std::shuffle(lines.begin(), lines.end(), std::mt19937_64(1));
  std::string shuffled;
  for (const auto& l : lines) shuffled += l;

  const std::string bulk = dir.file("bulk.db"), batched = dir.file("batched.db");
  const Result r = cli({"load", bulk}, sorted);
  CHECK_RUN(r, 0);
  BOOST_TEST(r.err.empty());  // no progress bar when stderr is not a terminal
  CHECK_RUN(cli({"load", batched}, shuffled), 0);
  BOOST_TEST(cli({"dump", bulk}).out == sorted);
  BOOST_TEST(cli({"dump", batched}).out == sorted);
  CHECK_RUN(cli({"check", bulk}), 0);
  CHECK_RUN(cli({"check", batched}), 0);
  // Output comes in chunks; a reverse scan crosses their boundaries too.
  BOOST_TEST(cli({"scan", bulk, "--reverse"}).out == reversed_dump_text(rows));
  // Bulk loading packs the leaves: fewer pages than inserting one by one.
  BOOST_TEST(pages_used(cli, bulk) < pages_used(cli, batched));
}

BOOST_DATA_TEST_CASE(load_draws_a_progress_bar_only_on_a_terminal, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  BOOST_REQUIRE(master >= 0);
  BOOST_REQUIRE(::grantpt(master) == 0 && ::unlockpt(master) == 0);
  const int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  BOOST_REQUIRE(slave >= 0);
  Process p(cli.with_io({"load", dir.file("a.db")}), slave);
  ::close(slave);
  const Result r = p.finish(dump_text(numbered_rows(50000)), master);
  CHECK_RUN(r, 0);
  BOOST_TEST(r.err.find("load:") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("50000 pairs (bulk)") != std::string::npos, r.err);
  BOOST_TEST(r.out.empty());
}

BOOST_DATA_TEST_CASE(scans_resume_after_keys_of_the_maximum_size, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  std::map<std::string, std::string> rows;
  for (int i = 0; i < 4200; ++i) {  // more than one output chunk of 4096 pairs
    char prefix[8];
    std::snprintf(prefix, sizeof prefix, "%04d", i);
    rows[prefix + std::string(992 - 4, 'k')] = std::to_string(i);
  }
  make_db(cli, db, rows);
  BOOST_TEST(cli({"dump", db}).out == dump_text(rows));
  BOOST_TEST(cli({"scan", db, "--reverse"}).out == reversed_dump_text(rows));
}

BOOST_DATA_TEST_CASE(global_options_reach_the_database, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  CHECK_RUN(cli({"--page-size", "8192", "--min-degree", "3", "create", db}), 0);
  Result r = cli({"--pool-pages=0", "stats", db});
  CHECK_RUN(r, 0);
  BOOST_TEST(stat_value(r.out, "page_size") == "8192");
  BOOST_TEST(stat_value(r.out, "min_degree") == "3");
  const std::string rows = dump_text(numbered_rows(100));
  CHECK_RUN(cli({"--direct-io", "--pool-pages", "4", "load", db}, rows), 0);
  r = cli({"--direct-io", "get", db, "key000042"});
  CHECK_RUN(r, 0);
  BOOST_TEST(r.out == numbered_rows(100).at("key000042") + "\n");
  r = cli({"--page-size", "4096", "get", db, "key000042"});  // not the file's page size
  CHECK_RUN(r, 3);
  BOOST_TEST(r.err.find("8192") != std::string::npos);
  CHECK_RUN(cli({"--page-size", "1000", "create", dir.file("b.db")}), 3);
  BOOST_TEST(!fs::exists(dir.file("b.db")));
  CHECK_RUN(cli({"--min-degree", "1", "create", dir.file("c.db")}), 3);
  CHECK_RUN(cli({"check", db}), 0);
}

namespace {

// The value after `name` on its own line of a salvage report.
std::string report_value(const std::string& report, const std::string& name) {
  std::istringstream in(report);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string n, v;
    if (words >> n >> v && n == name) return v;
  }
  return "";
}

}  // namespace

BOOST_DATA_TEST_CASE(salvage_copies_what_is_intact_and_reports_the_rest, bdata::make(kBackends),
                     io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  const auto rows = numbered_rows(3000);
  make_db(cli, db, rows);

  // Undamaged: exit 0, the same pairs.
  Result r = cli({"salvage", db, dir.file("whole.db")});
  CHECK_RUN(r, 0);
  BOOST_TEST(r.out.find("OK: every pair was recovered") != std::string::npos);
  BOOST_TEST(report_value(r.out, "keys_recovered") == "3000");
  BOOST_TEST(cli({"dump", dir.file("whole.db")}).out == dump_text(rows));

  // One damaged leaf: exit 2, its keys missing, everything else there.
  damage_page(db, 5);
  CHECK_RUN(cli({"check", db}), 2);
  const std::string out = dir.file("out.db");
  r = cli({"salvage", db, out});
  CHECK_RUN(r, 2);
  BOOST_TEST(r.out.find("INCOMPLETE") != std::string::npos);
  BOOST_TEST(report_value(r.out, "pages_unreadable") == "1");
  BOOST_TEST(r.out.find("page 5 of") != std::string::npos);
  CHECK_RUN(cli({"check", out}), 0);
  const Result dump = cli({"dump", out});
  CHECK_RUN(dump, 0);
  std::istringstream lines(dump.out);
  std::size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    const auto [k, v] = parse_dump_line(line);
    BOOST_TEST_REQUIRE(rows.count(k) == 1u);
    BOOST_TEST(rows.at(k) == v);
  }
  BOOST_TEST(n > 2500u);
  BOOST_TEST(n < 3000u);
  BOOST_TEST(report_value(r.out, "keys_recovered") == std::to_string(n));

  // OUT exists, no OUT, garbage in: errors, and OUT is left alone.
  r = cli({"salvage", db, out});
  CHECK_RUN(r, 3);
  BOOST_TEST(r.err.find("already exists") != std::string::npos);
  CHECK_RUN(cli({"check", out}), 0);
  CHECK_RUN(cli({"salvage", db}), 3);
  write_file(dir.file("junk"), std::string(20000, 'x'));
  r = cli({"salvage", dir.file("junk"), dir.file("junk-out.db")});
  CHECK_RUN(r, 2);
  BOOST_TEST(r.err.find("not a corobtree database") != std::string::npos);
  BOOST_TEST(!fs::exists(dir.file("junk-out.db")));
}

BOOST_DATA_TEST_CASE(backup_writes_a_consistent_copy, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  const std::string copy = dir.file("copy.db");
  const auto rows = numbered_rows(3000);
  make_db(cli, db, rows);
  CHECK_RUN(cli({"put", db, "extra", "1"}), 0);
  Result r = cli({"backup", db, copy});
  CHECK_RUN(r, 0);
  BOOST_TEST(r.out.empty());
  BOOST_TEST(!fs::exists(copy + "-wal"));
  CHECK_RUN(cli({"check", copy}), 0);
  BOOST_TEST(cli({"dump", copy}).out == cli({"dump", db}).out);
  // An existing destination, the database itself and bad usage are refused.
  r = cli({"backup", db, copy});
  CHECK_RUN(r, 3);
  BOOST_TEST(r.err.find("exists") != std::string::npos, r.err);
  CHECK_RUN(cli({"backup", db, db}), 3);
  CHECK_RUN(cli({"backup", db}), 3);
  CHECK_RUN(cli({"backup", db, dir.file("x.db"), "y"}), 3);
  CHECK_RUN(cli({"backup", dir.file("missing.db"), dir.file("y.db")}), 3);
  BOOST_TEST(!fs::exists(dir.file("missing.db")));
  BOOST_TEST(!fs::exists(dir.file("y.db")));
  // From a shell that holds the database open (and writes around the backup).
  const std::string online = dir.file("online.db");
  Process shell(cli.with_io({"shell", db}));
  shell.send("put before 1\n");
  BOOST_TEST(shell.read_line() == "OK");
  shell.send("begin\nput uncommitted 1\nbackup " + online + "\n");
  BOOST_TEST(shell.read_line() == "OK");
  BOOST_TEST(shell.read_line() == "OK");
  BOOST_TEST(shell.read_line() == "OK");
  shell.send("commit\nput after 1\nbackup " + online + "\n");
  BOOST_TEST(shell.read_line() == "OK");
  BOOST_TEST(shell.read_line() == "OK");
  BOOST_TEST(shell.read_line().starts_with("ERR invalid argument: cannot back up to"));
  CHECK_RUN(shell.finish(), 0);
  CHECK_RUN(cli({"check", online}), 0);
  auto expected = rows;
  expected["extra"] = "1";
  expected["before"] = "1";  // committed before the backup; the open transaction's write is not
  BOOST_TEST(cli({"dump", online}).out == dump_text(expected));
}

// --lock-timeout reaches the engine: against a shell that holds the database,
// the open waits that long and names the wait; a wait longer than the holder
// keeps it open lets the command in.
BOOST_DATA_TEST_CASE(lock_timeout_option_reaches_the_database, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  make_db(cli, db, {{"k", "v"}});
  Process holder(cli.with_io({"shell", db}));
  holder.send("get k\n");
  BOOST_REQUIRE_EQUAL(holder.read_line(), "VALUE v");  // it has the database open now
  Result r = cli({"--lock-timeout", "150", "get", db, "k"});
  CHECK_RUN(r, 3);
  BOOST_TEST(r.err.find("locked") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("150 ms") != std::string::npos, r.err);
  CHECK_RUN(cli({"--lock-timeout=soon", "get", db, "k"}), 3);
  // Waits (up to 60 s) while the holder finishes.
  Process waiter(cli.with_io({"--lock-timeout=60000", "get", db, "k2"}));
  holder.send("put k2 v2\n");
  BOOST_TEST(holder.read_line() == "OK");
  CHECK_RUN(holder.finish(), 0);
  r = waiter.finish();
  CHECK_RUN(r, 0);
  BOOST_TEST(r.out == "v2\n");
}

// Issue 15's report: SIGKILL a shell that is writing, then dump at once. The
// lock of the killed shell must already be gone (no --lock-timeout).
BOOST_DATA_TEST_CASE(dump_right_after_killing_a_writing_shell, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  make_db(cli, db, {{"k", "v"}});
  std::string script;
  for (int i = 0; i < 2000; ++i) script += "put key" + std::to_string(i) + " value\n";
  const int kills = corobtree::test::scaled(20, 4);
  for (int i = 0; i < kills; ++i) {
    {
      Process shell(cli.with_io({"shell", db}));
      shell.send(script.substr(0, 4096));
      BOOST_REQUIRE_EQUAL(shell.read_line(), "OK");  // it is writing now
    }                                                // SIGKILL and waitpid
    const Result r = cli({"dump", db});
    BOOST_REQUIRE_MESSAGE(r.code == 0, "kill " << i << ": " << r);
    BOOST_TEST(r.out.find("k\tv\n") != std::string::npos);
  }
}

BOOST_DATA_TEST_CASE(compact_gives_space_back, bdata::make(kBackends), io) {
  const Cli cli{io};
  TempDir dir;
  const std::string db = dir.file("a.db");
  const auto rows = numbered_rows(3000);
  make_db(cli, db, rows);
  std::map<std::string, std::string> left;
  std::string dels;
  int i = 0;
  for (const auto& [k, v] : rows) {
    if (i++ % 10 == 0) {
      left[k] = v;
    } else {
      dels += "del " + k + "\n";
    }
  }
  CHECK_RUN(cli({"shell", db}, dels), 0);
  const std::uint64_t before = fs::file_size(db);
  const Result r = cli({"compact", db});
  CHECK_RUN(r, 0);
  const std::uint64_t after = fs::file_size(db);
  BOOST_TEST(stat_value(r.out, "size_before") == std::to_string(before), r);
  BOOST_TEST(stat_value(r.out, "size_after") == std::to_string(after), r);
  BOOST_TEST(stat_value(r.out, "keys") == std::to_string(left.size()), r);
  BOOST_TEST(after < before / 4);
  BOOST_TEST(!fs::exists(db + ".compacting"));
  BOOST_TEST(cli({"dump", db}).out == dump_text(left));
  CHECK_RUN(cli({"check", db}), 0);
  BOOST_TEST(stat_value(cli({"stats", db}).out, "pages_free") == "0");
  CHECK_RUN(cli({"compact", dir.file("missing.db")}), 3);
  CHECK_RUN(cli({"compact", db, "extra"}), 3);
  BOOST_TEST(cli({"dump", db}).out == dump_text(left));
}
