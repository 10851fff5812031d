// corobtree-server's protocol and command layers, without sockets
// (docs/server.md):
//  * RespParser: every split of a stream of commands (multibulk with \r\n and
//    NULs inside bulks, inline with quotes) gives the same commands; every
//    malformed frame and every limit throws ProtocolError with redis-server's
//    message; empty commands are skipped;
//  * the reply encoder, parse_int64 and the SCAN glob;
//  * every command against a std::map model (random operations, byte-exact
//    replies), the error replies, INCR and SET NX races from 4 threads (more
//    threads than cores) with exact results, SCAN exactly-once with and
//    without MATCH, FLUSHALL, INFO;
//  * the fixes of the review: MGET stops at the output limit, MATCH patterns
//    and matching work are bounded, MGET/EXISTS never see half an MSET/DEL
//    (4 threads), and FLUSHDB, UNLINK, SETNX, TYPE, CLIENT, HELLO.
// On io_uring and pread.
#define BOOST_TEST_MODULE server_protocol
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <corobtree/database.h>
#include <corobtree/sync_wait.h>
#include "tests/support/backends.h"
#include "tests/support/random.h"
#include "tests/support/seed.h"
#include "tests/support/temp_dir.h"
#include "tools/server/commands.h"
#include "tools/server/glob.h"
#include "tools/server/resp.h"

namespace bdata = boost::unit_test::data;
using corobtree::Database;
using corobtree::IoBackend;
using corobtree::sync_wait;
using corobtree::server::Command;
using corobtree::server::CommandContext;
using corobtree::server::ProtocolError;
using corobtree::server::RespLimits;
using corobtree::server::RespParser;
using corobtree::server::ServerCounters;

namespace {

using namespace std::string_literals;

// Feeds `stream` in the given pieces; returns every command parsed.
std::vector<Command> parse_pieces(const std::vector<std::string_view>& pieces,
                                  RespLimits limits = {}) {
  RespParser p(limits);
  std::vector<Command> cmds;
  for (std::string_view piece : pieces) {
    Command c;
    while (p.next(piece, c)) cmds.push_back(std::move(c));
    BOOST_REQUIRE(piece.empty());
  }
  BOOST_CHECK(p.idle());
  return cmds;
}

std::vector<Command> parse_all(std::string_view s, RespLimits limits = {}) {
  return parse_pieces({s}, limits);
}

// The ProtocolError message the stream raises ("" if none).
std::string parse_error(std::string_view s, RespLimits limits = {}) {
  RespParser p(limits);
  Command c;
  try {
    while (p.next(s, c)) {
    }
  } catch (const ProtocolError& e) {
    return e.what();
  }
  return "";
}

const std::string kStream =
    "*3\r\n$3\r\nSET\r\n$5\r\nk\r\n\0x\r\n$6\r\n\0\0\r\n\r\n\r\n"s  // binary key and value
    "PING\r\n"
    "*0\r\n"                         // empty: skipped
    "  \r\n"                         // blank inline line: skipped
    "set \"a b\\x41\\n\" 'c\\'d'\n"  // inline, quotes, \n only
    "*1\r\n$0\r\n\r\n"               // one empty argument
    "*2\r\n$3\r\nGET\r\n$1\r\n*\r\n"s;

const std::vector<Command> kExpected = {
    {"SET", "k\r\n\0x"s, "\0\0\r\n\r\n"s}, {"PING"}, {"set", "a bA\n", "c'd"}, {""}, {"GET", "*"},
};

}  // namespace

BOOST_AUTO_TEST_CASE(parser_whole_stream) { BOOST_TEST(parse_all(kStream) == kExpected); }

BOOST_AUTO_TEST_CASE(parser_every_split_point) {
  const std::string_view s = kStream;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    for (std::size_t j = i; j <= s.size(); j += 7) {
      BOOST_TEST_CONTEXT("split at " << i << " and " << j) {
        BOOST_TEST(parse_pieces({s.substr(0, i), s.substr(i, j - i), s.substr(j)}) == kExpected);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(parser_byte_by_byte) {
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < kStream.size(); ++i)
    bytes.push_back(std::string_view(kStream).substr(i, 1));
  BOOST_TEST(parse_pieces(bytes) == kExpected);
}

BOOST_AUTO_TEST_CASE(parser_partial_command_waits) {
  RespParser p;
  std::string_view in = "*2\r\n$3\r\nGET\r\n$4\r\nab";
  Command c;
  BOOST_TEST(!p.next(in, c));
  BOOST_TEST(in.empty());
  BOOST_TEST(!p.idle());
  std::string_view rest = "cd\r\n";
  BOOST_TEST(p.next(rest, c));
  BOOST_TEST(c == (Command{"GET", "abcd"}));
  BOOST_TEST(p.idle());
}

BOOST_AUTO_TEST_CASE(parser_malformed_frames) {
  BOOST_TEST(parse_error("*abc\r\n") == "invalid multibulk length");
  BOOST_TEST(parse_error("*1x\r\n") == "invalid multibulk length");
  BOOST_TEST(parse_error("*\r\n") == "invalid multibulk length");
  BOOST_TEST(parse_error("*01\r\n") == "invalid multibulk length");
  BOOST_TEST(parse_error("*2\r\nX3\r\n") == "expected '$', got 'X'");
  BOOST_TEST(parse_error("*2\r\n\r\n") == "expected '$', got ' '");
  BOOST_TEST(parse_error("*1\r\n$-5\r\n") == "invalid bulk length");
  BOOST_TEST(parse_error("*1\r\n$x\r\n") == "invalid bulk length");
  BOOST_TEST(parse_error("*1\r\n$3\r\nabcXY") == "expected CRLF after bulk data");
  BOOST_TEST(parse_error("*1\r\n$3\r\nabc\rX") == "expected CRLF after bulk data");
  BOOST_TEST(parse_error("SET \"abc\n") == "unbalanced quotes in request");
  BOOST_TEST(parse_error("SET \"abc\"x\n") == "unbalanced quotes in request");
  BOOST_TEST(parse_error("SET 'abc\n") == "unbalanced quotes in request");
  // -1 and 0 are empty commands, skipped, as redis-server does.
  BOOST_TEST(parse_all("*-1\r\n*0\r\nPING\r\n") == (std::vector<Command>{{"PING"}}));
}

BOOST_AUTO_TEST_CASE(parser_limits) {
  RespLimits small;
  small.max_bulk = 10;
  small.max_args = 3;
  small.max_inline = 32;
  small.max_query_bytes = 25;
  BOOST_TEST(parse_all("*1\r\n$10\r\n0123456789\r\n", small).size() == 1u);
  BOOST_TEST(parse_error("*1\r\n$11\r\n", small) == "invalid bulk length");
  BOOST_TEST(parse_all("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", small).size() == 1u);
  BOOST_TEST(parse_error("*4\r\n", small) == "invalid multibulk length");
  BOOST_TEST(parse_error("*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n", small) ==
             "command larger than the query limit");
  BOOST_TEST(parse_error(std::string(40, 'a'), small) == "too big inline request");
  BOOST_TEST(parse_error("*" + std::string(40, '1'), small) == "too big mbulk count string");
  BOOST_TEST(parse_error("*1\r\n$" + std::string(40, '1'), small) == "too big bulk count string");
  // The defaults: Redis's 512 MiB bulks and 1,048,576 arguments.
  BOOST_TEST(parse_error("*1\r\n$536870913\r\n") == "invalid bulk length");
  BOOST_TEST(parse_error("*1\r\n$536870912\r\n") == "");
  BOOST_TEST(parse_error("*1048577\r\n") == "invalid multibulk length");
  BOOST_TEST(parse_error("*1048576\r\n") == "");
  BOOST_TEST(parse_error("*1\r\n$99999999999999999999999\r\n") == "invalid bulk length");
}

BOOST_AUTO_TEST_CASE(encoder) {
  using namespace corobtree::server;
  std::string o;
  reply_simple(o, "OK");
  reply_error(o, "ERR bad\r\nthing");
  reply_integer(o, -42);
  reply_integer(o, INT64_MIN);
  reply_bulk(o, "a\0\r\n"s);
  reply_bulk(o, "");
  reply_null(o);
  reply_array(o, 3);
  BOOST_TEST(o ==
             "+OK\r\n-ERR bad  thing\r\n:-42\r\n:-9223372036854775808\r\n$4\r\na\0\r\n\r\n"
             "$0\r\n\r\n$-1\r\n*3\r\n"s);
}

BOOST_AUTO_TEST_CASE(integers) {
  using corobtree::server::parse_int64;
  std::int64_t v = 0;
  BOOST_TEST((parse_int64("0", v) && v == 0));
  BOOST_TEST((parse_int64("-17", v) && v == -17));
  BOOST_TEST((parse_int64("9223372036854775807", v) && v == INT64_MAX));
  BOOST_TEST((parse_int64("-9223372036854775808", v) && v == INT64_MIN));
  for (const char* bad : {"", "-", "-0", "01", "+1", " 1", "1 ", "1a", "9223372036854775808",
                          "-9223372036854775809", "99999999999999999999", "0x10"}) {
    BOOST_TEST_CONTEXT(bad) { BOOST_TEST(!parse_int64(bad, v)); }
  }
}

BOOST_AUTO_TEST_CASE(glob) {
  using corobtree::server::glob_match;
  BOOST_TEST(glob_match("*", ""));
  BOOST_TEST(glob_match("*", "abc"));
  BOOST_TEST(glob_match("a*c", "abbbc"));
  BOOST_TEST(!glob_match("a*c", "abbbd"));
  BOOST_TEST(glob_match("h?llo", "hello"));
  BOOST_TEST(!glob_match("h?llo", "hllo"));
  BOOST_TEST(glob_match("h[ae]llo", "hallo"));
  BOOST_TEST(!glob_match("h[ae]llo", "hillo"));
  BOOST_TEST(glob_match("h[^e]llo", "hallo"));
  BOOST_TEST(!glob_match("h[^e]llo", "hello"));
  BOOST_TEST(glob_match("h[a-c]llo", "hbllo"));
  BOOST_TEST(glob_match("h[c-a]llo", "hbllo"));
  BOOST_TEST(glob_match("a\\*b", "a*b"));
  BOOST_TEST(!glob_match("a\\*b", "axb"));
  BOOST_TEST(glob_match("*x*y*z*", "__x__y__z__"));
  BOOST_TEST(!glob_match("*x*y*z*", "__x__z__y__"));
  BOOST_TEST(glob_match("k\0*"s, "k\0\xff"s));
  BOOST_TEST(!glob_match("a*a*a*a*a*a*a*a*b", std::string(200, 'a')));  // no blow-up
}

// ---- Commands ----------------------------------------------------------------

namespace server_test {

std::vector<corobtree::test::BackendConfig> backends() {
  return {{IoBackend::kUring, false}, {IoBackend::kPread, false}};
}

// A database and a command context over it.
struct Server {
  explicit Server(const corobtree::test::BackendConfig& b) {
    corobtree::Options o;
    o.backend = b.backend;
    o.direct_io = b.direct_io;
    o.pool_pages = 256;
    o.durability = corobtree::Durability::kRelaxed;
    db = sync_wait(Database::open(dir.file("s.db"), o));
    ctx = std::make_unique<CommandContext>(*db, counters);
  }
  // The reply to one command.
  std::string run(Command c) {
    std::string out;
    sync_wait(corobtree::server::execute(*ctx, c, &out));
    return out;
  }
  corobtree::test::TempDir dir;
  std::unique_ptr<Database> db;
  ServerCounters counters;
  std::unique_ptr<CommandContext> ctx;
};

std::string bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}
std::string integer(std::int64_t v) { return ":" + std::to_string(v) + "\r\n"; }
const std::string kOk = "+OK\r\n";
const std::string kNull = "$-1\r\n";

// A SCAN reply: the next cursor and the keys.
std::pair<std::string, std::vector<std::string>> parse_scan_reply(const std::string& reply) {
  // Both levels are bulks and arrays: reuse the request parser's bulk reader
  // by turning "*2 $c cursor *n $k..." into two multibulk "requests".
  BOOST_REQUIRE(reply.substr(0, 4) == "*2\r\n");
  const std::string cursor_part = "*1\r\n" + reply.substr(4, reply.find("*", 4) - 4);
  const std::string keys_part = reply.substr(reply.find("*", 4));
  std::pair<std::string, std::vector<std::string>> r;
  std::vector<Command> c1 = parse_all(cursor_part);
  BOOST_REQUIRE(c1.size() == 1u);
  r.first = c1[0][0];
  if (keys_part != "*0\r\n") {
    std::vector<Command> c2 = parse_all(keys_part);
    BOOST_REQUIRE(c2.size() == 1u);
    r.second = c2[0];
  }
  return r;
}

// Runs SCAN with `count` until cursor 0; returns the keys in order.
std::vector<std::string> scan_all(Server& s, const std::string& count,
                                  const std::string& match = "") {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    Command c{"SCAN", cursor, "COUNT", count};
    if (!match.empty()) {
      c.push_back("MATCH");
      c.push_back(match);
    }
    auto [next, page] = parse_scan_reply(s.run(c));
    keys.insert(keys.end(), page.begin(), page.end());
    cursor = next;
  } while (cursor != "0");
  return keys;
}

}  // namespace server_test
using namespace server_test;

BOOST_DATA_TEST_CASE(command_errors, bdata::make(backends()), backend) {
  Server s(backend);
  BOOST_TEST(s.run({"FOO", "a", "b"}) ==
             "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
  BOOST_TEST(s.run({"nope"}) == "-ERR unknown command 'nope', with args beginning with: \r\n");
  BOOST_TEST(s.run({"GET"}) == "-ERR wrong number of arguments for 'get' command\r\n");
  BOOST_TEST(s.run({"get", "a", "b"}) == "-ERR wrong number of arguments for 'get' command\r\n");
  BOOST_TEST(s.run({"PING", "a", "b"}) == "-ERR wrong number of arguments for 'ping' command\r\n");
  BOOST_TEST(s.run({"MSET", "a", "1", "b"}) ==
             "-ERR wrong number of arguments for 'mset' command\r\n");
  BOOST_TEST(s.run({"SET", "k", "v", "NX", "XX"}) == "-ERR syntax error\r\n");
  BOOST_TEST(s.run({"SET", "k", "v", "BOGUS"}) == "-ERR syntax error\r\n");
  BOOST_TEST(s.run({"SET", "k", "v", "EX", "10"}).substr(0, 5) == "-ERR ");
  BOOST_TEST(s.run({"GET", "k"}) == kNull);  // nothing was written by the failures
  BOOST_TEST(s.run({"INCRBY", "n", "x"}) == "-ERR value is not an integer or out of range\r\n");
  BOOST_TEST(s.run({"INCRBY", "n", "1.5"}) == "-ERR value is not an integer or out of range\r\n");
  BOOST_TEST(s.run({"SET", "t", "text"}) == kOk);
  BOOST_TEST(s.run({"INCR", "t"}) == "-ERR value is not an integer or out of range\r\n");
  BOOST_TEST(s.run({"SET", "n", "9223372036854775807"}) == kOk);
  BOOST_TEST(s.run({"INCR", "n"}) == "-ERR increment or decrement would overflow\r\n");
  BOOST_TEST(s.run({"GET", "n"}) == bulk("9223372036854775807"));
  const std::string long_key(s.db->max_key_size() + 1, 'k');
  for (const Command& c : std::vector<Command>{{"SET", long_key, "v"},
                                               {"GET", long_key},
                                               {"MSET", "a", "1", long_key, "2"},
                                               {"DEL", "a", long_key},
                                               {"INCR", long_key}}) {
    BOOST_TEST(s.run(c).substr(0, 19) == "-ERR key too long: ");
  }
  BOOST_TEST(s.run({"GET", "a"}) == kNull);  // MSET with a long key wrote nothing
  const std::string max_key(s.db->max_key_size(), 'k');
  BOOST_TEST(s.run({"SET", max_key, "v"}) == kOk);
  BOOST_TEST(s.run({"SCAN", "abc"}) == "-ERR invalid cursor\r\n");
  BOOST_TEST(s.run({"SCAN", "12345"}) == "-ERR invalid cursor\r\n");
  BOOST_TEST(s.run({"SCAN", "0", "COUNT", "0"}) == "-ERR syntax error\r\n");
  BOOST_TEST(s.run({"SCAN", "0", "COUNT"}) == "-ERR syntax error\r\n");
  BOOST_TEST(s.run({"SELECT", "1"}) == "-ERR DB index is out of range\r\n");
}

BOOST_DATA_TEST_CASE(simple_commands, bdata::make(backends()), backend) {
  Server s(backend);
  BOOST_TEST(s.run({"PING"}) == "+PONG\r\n");
  BOOST_TEST(s.run({"ping", "hi\r\n"}) == bulk("hi\r\n"));
  BOOST_TEST(s.run({"EcHo", "\0x"s}) == bulk("\0x"s));
  BOOST_TEST(s.run({"SET", "", "empty key"}) == kOk);
  BOOST_TEST(s.run({"GET", ""}) == bulk("empty key"));
  BOOST_TEST(s.run({"SET", "k", "v1", "GET"}) == kNull);
  BOOST_TEST(s.run({"SET", "k", "v2", "get"}) == bulk("v1"));
  BOOST_TEST(s.run({"SET", "k", "v3", "NX"}) == kNull);
  BOOST_TEST(s.run({"SET", "k", "v3", "NX", "GET"}) == bulk("v2"));
  BOOST_TEST(s.run({"SET", "x", "v", "XX"}) == kNull);
  BOOST_TEST(s.run({"EXISTS", "x"}) == integer(0));
  BOOST_TEST(s.run({"SET", "k", "v4", "xx"}) == kOk);
  BOOST_TEST(s.run({"SET", "k", "v5", "KEEPTTL"}) == kOk);
  BOOST_TEST(s.run({"EXISTS", "k", "k", "x", ""}) == integer(3));
  BOOST_TEST(s.run({"DBSIZE"}) == integer(2));
  BOOST_TEST(s.run({"DEL", "k", "k", "x"}) == integer(1));
  BOOST_TEST(s.run({"DBSIZE"}) == integer(1));
  BOOST_TEST(s.run({"INCRBY", "c", "-5"}) == integer(-5));
  BOOST_TEST(s.run({"DECRBY", "c", "5"}) == integer(-10));
  BOOST_TEST(s.run({"DECR", "c"}) == integer(-11));
  BOOST_TEST(s.run({"GET", "c"}) == bulk("-11"));
  BOOST_TEST(s.run({"SELECT", "0"}) == kOk);
  const std::string info = s.run({"INFO"});
  BOOST_TEST(info.find("db0:keys=2,") != std::string::npos);
  BOOST_TEST(info.find("pool_hits:") != std::string::npos);
  BOOST_TEST(s.run({"INFO", "keyspace"}).find("pool_hits") == std::string::npos);
  BOOST_TEST(s.run({"FLUSHALL"}) == kOk);
  BOOST_TEST(s.run({"DBSIZE"}) == integer(0));
  BOOST_TEST(s.run({"GET", "c"}) == kNull);
  std::string out;
  const std::vector<Command> batch{{"SET", "a", "1"}, {"QUIT"}, {"SET", "b", "2"}};
  const corobtree::server::BatchResult r =
      sync_wait(corobtree::server::execute_batch(*s.ctx, &batch, 0, &out));
  BOOST_TEST(r.quit);
  BOOST_TEST(r.next == 2u);
  BOOST_TEST(out == kOk + kOk);
  BOOST_TEST(s.run({"GET", "b"}) == kNull);  // not run after QUIT
  // A pipelined run of plain SETs and MSETs commits as one batch; the
  // replies and the effects are those of running them one by one.
  out.clear();
  const std::string too_long(s.db->max_key_size() + 1, 'k');
  const std::vector<Command> writes{
      {"SET", "g1", "1"},     {"set", "g2", "2"},       {"MSET", "g3", "3", "g1", "4"},
      {"GET", "g1"},          {"SET", "g1", "5", "NX"}, {"SET", "g2", "6"},
      {"SET", too_long, "x"}, {"SET", "g2", "7"},       {"SET", "g2", "8"}};
  const corobtree::server::BatchResult r3 =
      sync_wait(corobtree::server::execute_batch(*s.ctx, &writes, 0, &out));
  BOOST_TEST(r3.next == writes.size());
  BOOST_TEST(out.substr(0, 3 * kOk.size()) == kOk + kOk + kOk);
  BOOST_TEST(out.substr(3 * kOk.size()) ==
             bulk("4") + kNull + kOk + s.run({"SET", too_long, "x"}) + kOk + kOk);
  BOOST_TEST(s.run({"MGET", "g1", "g2", "g3"}) == "*3\r\n" + bulk("4") + bulk("8") + bulk("3"));
  // The output limit: stops before the next command once reached.
  out.clear();
  const std::vector<Command> pings{{"PING"}, {"PING"}, {"PING"}};
  const corobtree::server::BatchResult r2 =
      sync_wait(corobtree::server::execute_batch(*s.ctx, &pings, 1, &out, 1));
  BOOST_TEST(!r2.quit);
  BOOST_TEST(r2.next == 2u);
  BOOST_TEST(out == "+PONG\r\n");
}

// Random commands against a std::map model; replies compared byte for byte.
BOOST_DATA_TEST_CASE(model, bdata::make(backends()), backend) {
  Server s(backend);
  std::mt19937_64 rng(corobtree::test::test_seed("server model"));
  std::map<std::string, std::string> m;
  auto key = [&] {
    const int k = static_cast<int>(rng() % 40);
    return k < 3 ? std::string("bin\0\r\n"s) + char(k) : "key" + std::to_string(k);
  };
  auto value = [&] {
    return corobtree::test::random_bytes(rng, rng() % 3 == 0 ? 3000 : rng() % 20);
  };
  const int ops = corobtree::test::scaled(4000, 300);
  for (int i = 0; i < ops; ++i) {
    const int op = static_cast<int>(rng() % 9);
    Command c;
    std::string want;
    if (op == 0) {
      const std::string k = key();
      c = {"GET", k};
      want = m.count(k) ? bulk(m[k]) : kNull;
    } else if (op == 1) {
      const std::string k = key();
      const std::string v = value();
      const int mode = static_cast<int>(rng() % 4);  // plain, NX, XX, GET
      c = {"SET", k, v};
      const bool existed = m.count(k) > 0;
      const std::string old = existed ? m[k] : "";
      if (mode == 0) {
        want = kOk;
        m[k] = v;
      } else if (mode == 1) {
        c.push_back("NX");
        want = existed ? kNull : kOk;
        if (!existed) m[k] = v;
      } else if (mode == 2) {
        c.push_back("XX");
        want = existed ? kOk : kNull;
        if (existed) m[k] = v;
      } else {
        c.push_back("GET");
        want = existed ? bulk(old) : kNull;
        m[k] = v;
      }
    } else if (op == 2) {
      c = {"DEL"};
      std::set<std::string> ks;
      for (int j = 0; j < 1 + static_cast<int>(rng() % 4); ++j) c.push_back(key());
      std::int64_t n = 0;
      for (std::size_t j = 1; j < c.size(); ++j) {
        if (ks.insert(c[j]).second && m.erase(c[j])) ++n;
      }
      want = integer(n);
    } else if (op == 3) {
      c = {"EXISTS"};
      std::int64_t n = 0;
      for (int j = 0; j < 1 + static_cast<int>(rng() % 4); ++j) {
        c.push_back(key());
        n += static_cast<std::int64_t>(m.count(c.back()));
      }
      want = integer(n);
    } else if (op == 4) {
      c = {"MGET"};
      const int n = 1 + static_cast<int>(rng() % 5);
      want = "*" + std::to_string(n) + "\r\n";
      for (int j = 0; j < n; ++j) {
        c.push_back(key());
        want += m.count(c.back()) ? bulk(m[c.back()]) : kNull;
      }
    } else if (op == 5) {
      c = {"MSET"};
      for (int j = 0; j < 1 + static_cast<int>(rng() % 4); ++j) {
        c.push_back(key());
        c.push_back(value());
      }
      for (std::size_t j = 1; j < c.size(); j += 2) m[c[j]] = c[j + 1];  // last one wins
      want = kOk;
    } else if (op == 6 || op == 7) {
      const std::string k = "n" + std::to_string(rng() % 5);
      const std::int64_t by = static_cast<std::int64_t>(rng() % 2001) - 1000;
      c = op == 6 ? Command{"INCR", k} : Command{"INCRBY", k, std::to_string(by)};
      const std::int64_t now = (m.count(k) ? std::stoll(m[k]) : 0) + (op == 6 ? 1 : by);
      m[k] = std::to_string(now);
      want = integer(now);
    } else {
      c = {"DBSIZE"};
      want = integer(static_cast<std::int64_t>(m.size()));
    }
    BOOST_TEST_CONTEXT("op " << i << ": " << c[0]) { BOOST_REQUIRE(s.run(c) == want); }
  }
  std::vector<std::string> model_keys;
  for (const auto& kv : m) model_keys.push_back(kv.first);
  BOOST_TEST(scan_all(s, "3") == model_keys);
}

BOOST_DATA_TEST_CASE(scan_exactly_once, bdata::make(backends()), backend) {
  Server s(backend);
  std::set<std::string> all;
  std::set<std::string> matching;
  Command mset{"MSET"};
  for (int i = 0; i < 2500; ++i) {
    std::string k = (i % 3 == 0 ? "user:" : "item:") + std::to_string(i) + "\0\r\n"s;
    mset.push_back(k);
    mset.push_back(std::to_string(i));
    if (i % 3 == 0) matching.insert(k);
    all.insert(std::move(k));
  }
  BOOST_REQUIRE(s.run(mset) == kOk);
  for (const char* count : {"1", "10", "999", "100000"}) {
    BOOST_TEST_CONTEXT("COUNT " << count) {
      const std::vector<std::string> keys = scan_all(s, count);
      BOOST_TEST(keys.size() == all.size());
      BOOST_TEST((std::set<std::string>(keys.begin(), keys.end()) == all));
      const std::vector<std::string> users = scan_all(s, count, "user:*");
      BOOST_TEST(users.size() == matching.size());
      BOOST_TEST((std::set<std::string>(users.begin(), users.end()) == matching));
    }
  }
  // A cursor can be resumed twice (the table keeps it).
  const auto first = parse_scan_reply(s.run({"SCAN", "0", "COUNT", "5"}));
  BOOST_TEST(first.second.size() == 5u);
  const auto again1 = parse_scan_reply(s.run({"SCAN", first.first}));
  const auto again2 = parse_scan_reply(s.run({"SCAN", first.first}));
  BOOST_TEST(again1.second.size() == 10u);
  BOOST_TEST(again1.second == again2.second);
  BOOST_TEST(again1.first != "0");
}

// INCR from 4 threads at once (more threads than this machine has cores), and
// SET NX races: the counts are exact.
BOOST_DATA_TEST_CASE(incr_races, bdata::make(backends()), backend) {
  Server s(backend);
  const int per_thread = corobtree::test::scaled(500, 50);
  constexpr int kThreads = 4;
  std::atomic<int> nx_wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        std::string out;
        Command incr{"INCR", "counter"};
        sync_wait(corobtree::server::execute(*s.ctx, incr, &out));
        Command incrby{"INCRBY", "by" + std::to_string(i % 2), std::to_string(t + 1)};
        sync_wait(corobtree::server::execute(*s.ctx, incrby, &out));
        Command nx{"SET", "nx" + std::to_string(i), std::to_string(t), "NX"};
        std::string r;
        sync_wait(corobtree::server::execute(*s.ctx, nx, &r));
        if (r == kOk) nx_wins.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  BOOST_TEST(s.run({"GET", "counter"}) == bulk(std::to_string(kThreads * per_thread)));
  const int per_key = (1 + 2 + 3 + 4) * (per_thread / 2);
  BOOST_TEST(s.run({"GET", "by0"}) == bulk(std::to_string(per_key + (per_thread % 2) * 10)));
  BOOST_TEST(s.run({"GET", "by1"}) == bulk(std::to_string(per_key)));
  BOOST_TEST(nx_wins.load() == per_thread);
}

// A reply over the output limit stops the command as soon as it passes the
// limit (OutputLimitExceeded, the connection then closes) instead of being
// built whole: one small MGET could otherwise take the server's memory.
BOOST_DATA_TEST_CASE(mget_output_limit, bdata::make(backends()), backend) {
  Server s(backend);
  const std::string big(256 * 1024, 'v');
  BOOST_TEST(s.run({"SET", "big", big}) == kOk);
  s.ctx->set_output_limit(std::size_t{1} << 20);
  Command mget{"MGET"};
  for (int i = 0; i < 1500; ++i) mget.push_back("big");
  std::string out;
  BOOST_CHECK_THROW(sync_wait(corobtree::server::execute(*s.ctx, mget, &out)),
                    corobtree::server::OutputLimitExceeded);
  BOOST_TEST(out.size() <= (std::size_t{1} << 20) + big.size() + 64);
  // Under the limit it answers as before.
  BOOST_TEST(s.run({"MGET", "big", "nope"}) == "*2\r\n" + bulk(big) + kNull);
}

// MATCH patterns are bounded, and a pattern needing more bytes than a key
// has fails at once; a call's matching work is bounded (it returns early
// with a cursor).
BOOST_DATA_TEST_CASE(scan_match_bounded, bdata::make(backends()), backend) {
  Server s(backend);
  BOOST_TEST(corobtree::server::glob_min_length("*a?[bc]\\d*") == 4u);
  BOOST_TEST(corobtree::server::glob_min_length("***") == 0u);
  BOOST_TEST(corobtree::server::glob_min_length("[^x-z]") == 1u);
  const std::string long_pattern(s.ctx->max_pattern() + 1, 'a');
  const std::string r = s.run({"SCAN", "0", "MATCH", long_pattern});
  BOOST_TEST(r.rfind("-ERR MATCH pattern too long", 0) == 0u, r);
  const std::size_t key_len = std::min<std::size_t>(s.db->max_key_size(), 200);
  for (int i = 0; i < 20; ++i) {
    std::string key(key_len, 'a');
    key.replace(0, 2, std::to_string(10 + i));
    BOOST_TEST(s.run({"SET", key, "v"}) == kOk);
  }
  // Longer than any key: no match, no work.
  const std::string impossible = "*" + std::string(key_len + 1, '?');
  auto t0 = std::chrono::steady_clock::now();
  auto [cursor, keys] = parse_scan_reply(s.run({"SCAN", "0", "MATCH", impossible, "COUNT", "100"}));
  BOOST_TEST(cursor == "0");
  BOOST_TEST(keys.empty());
  // The worst pattern allowed: each call is bounded, the scan still completes.
  const std::string worst = "*[" + std::string(s.ctx->max_pattern() - 3, 'b') + "]";
  const std::vector<std::string> found = scan_all(s, "50", worst);
  BOOST_TEST(found.empty());
  const bool quick = std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20);
  BOOST_TEST(quick);
  BOOST_TEST(scan_all(s, "50", "1*").size() == 10u);
  BOOST_TEST(scan_all(s, "50", "2?a*").size() == 10u);
}

// MGET and EXISTS never see half of an MSET or a multi-key DEL (4 threads).
BOOST_DATA_TEST_CASE(multi_key_atomicity, bdata::make(backends()), backend) {
  Server s(backend);
  constexpr int kKeys = 8;
  const int rounds = corobtree::test::scaled(1500, 150);
  std::atomic<int> torn{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        Command c;
        std::string out;
        if (t == 0) {
          c = {"MSET"};
          for (int k = 0; k < kKeys; ++k) {
            c.push_back("k" + std::to_string(k));
            c.push_back(std::to_string(i));
          }
        } else if (t == 1) {
          c = {i % 4 == 0 ? "DEL" : "EXISTS"};
          for (int k = 0; k < kKeys; ++k) c.push_back("k" + std::to_string(k));
        } else {
          c = {"MGET"};
          for (int k = 0; k < kKeys; ++k) c.push_back("k" + std::to_string(k));
        }
        sync_wait(corobtree::server::execute(*s.ctx, c, &out));
        if (t == 1 && c[0] == "EXISTS" && out != integer(0) && out != integer(kKeys)) ++torn;
        if (t >= 2) {
          // The MGET reply's elements ("-" for nil): all the same, or torn.
          std::vector<std::string> vals;
          std::size_t pos = out.find("\r\n") + 2;
          while (pos < out.size()) {
            const std::size_t eol = out.find("\r\n", pos);
            const long len = std::stol(out.substr(pos + 1, eol - pos - 1));
            if (len < 0) {
              vals.push_back("-");
              pos = eol + 2;
            } else {
              vals.push_back(out.substr(eol + 2, static_cast<std::size_t>(len)));
              pos = eol + 2 + static_cast<std::size_t>(len) + 2;
            }
          }
          if (vals.size() != kKeys || std::count(vals.begin(), vals.end(), vals[0]) != kKeys)
            ++torn;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  BOOST_TEST(torn.load() == 0);
}

// The commands clients commonly send on connecting or use as aliases.
BOOST_DATA_TEST_CASE(client_compat_commands, bdata::make(backends()), backend) {
  Server s(backend);
  BOOST_TEST(s.run({"SETNX", "a", "1"}) == integer(1));
  BOOST_TEST(s.run({"SETNX", "a", "2"}) == integer(0));
  BOOST_TEST(s.run({"GET", "a"}) == bulk("1"));
  BOOST_TEST(s.run({"TYPE", "a"}) == "+string\r\n");
  BOOST_TEST(s.run({"TYPE", "nope"}) == "+none\r\n");
  BOOST_TEST(s.run({"SET", "b", "2"}) == kOk);
  BOOST_TEST(s.run({"UNLINK", "a", "b", "c"}) == integer(2));
  BOOST_TEST(s.run({"SET", "c", "3"}) == kOk);
  BOOST_TEST(s.run({"FLUSHDB"}) == kOk);
  BOOST_TEST(s.run({"DBSIZE"}) == integer(0));
  BOOST_TEST(s.run({"CLIENT", "SETNAME", "x"}) == kOk);
  BOOST_TEST(s.run({"CLIENT", "SETINFO", "lib-name", "redis-py"}) == kOk);
  BOOST_TEST(s.run({"CLIENT", "GETNAME"}) == kNull);
  BOOST_TEST(s.run({"CLIENT", "KILL", "x"}).rfind("-ERR", 0) == 0u);
  const std::string hello = s.run({"HELLO"});
  BOOST_TEST(hello.rfind("*14\r\n$6\r\nserver\r\n", 0) == 0u);
  BOOST_TEST(s.run({"HELLO", "2"}) == hello);
  BOOST_TEST(s.run({"HELLO", "3"}).rfind("-NOPROTO", 0) == 0u);
  BOOST_TEST(s.run({"HELLO", "x"}).rfind("-ERR Protocol version", 0) == 0u);
  BOOST_TEST(s.run({"CONFIG", "GET"}).rfind("-ERR wrong number", 0) == 0u);
  BOOST_TEST(s.run({"CONFIG", "GET", "save"}) == "*0\r\n");
}

// FLUSHALL ends while another thread keeps inserting ever larger keys (it
// stops at the last key present when it started).
BOOST_DATA_TEST_CASE(flushall_ends_under_appends, bdata::make(backends()), backend) {
  Server s(backend);
  Command preload{"MSET"};
  for (int i = 0; i < 3000; ++i) {
    preload.push_back("a" + std::to_string(100000 + i));
    preload.push_back("v");
  }
  BOOST_TEST(s.run(preload) == kOk);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    std::uint64_t n = 0;
    while (!done.load() && std::chrono::steady_clock::now() < deadline) {
      Command mset{"MSET"};
      for (int i = 0; i < 2000; ++i) {
        mset.push_back("z" + std::to_string(1000000000 + n++));
        mset.push_back("v");
      }
      std::string out;
      sync_wait(corobtree::server::execute(*s.ctx, mset, &out));
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(s.run({"FLUSHALL"}) == kOk);
  const auto took = std::chrono::steady_clock::now() - t0;
  done.store(true);
  writer.join();
  const bool ended_early = took < std::chrono::milliseconds(2500);
  BOOST_TEST(ended_early);
  BOOST_TEST(s.run({"EXISTS", "a100000", "a102999"}) == integer(0));
}
