// Command dispatch and the string and counter commands (commands.h).
#include "tools/server/commands.h"

#include <algorithm>
#include <exception>
#include <functional>
#include <limits>
#include <set>
#include <utility>

#include <corobtree/error.h>
#include <corobtree/write_batch.h>
#include "tools/server/handlers.h"

namespace corobtree::server {

std::string ascii_lower(std::string_view s) {
  std::string r(s);
  for (char& ch : r) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return r;
}

CommandContext::CommandContext(Database& db, ServerCounters& counters)
    : db_(db),
      counters_(counters),
      cursors_(kScanCursors),
      started_(std::chrono::steady_clock::now()) {}

std::size_t CommandContext::max_pattern() const noexcept {
  return std::max<std::size_t>(256, 4 * db_.max_key_size());
}

std::size_t CommandContext::stripe_of(std::string_view key) const noexcept {
  return std::hash<std::string_view>{}(key) % kStripes;
}

namespace {

using Handler = Task<void> (*)(CommandContext&, const Command&, std::string*);

using Guard = AsyncSharedMutex::Guard;
using Mode = AsyncSharedMutex::Mode;

// Locks the stripes in index order (duplicates once), so that two commands
// locking overlapping sets never wait on each other in a cycle.
Task<std::vector<Guard>> lock_stripes(CommandContext& ctx, std::vector<std::size_t> stripes,
                                      Mode mode) {
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  std::vector<Guard> guards;
  guards.reserve(stripes.size());
  for (std::size_t s : stripes) {
    AsyncSharedMutex& m = ctx.stripe(s);
    if (mode == Mode::kExclusive) {
      Guard g = co_await m.scoped_lock();
      guards.push_back(std::move(g));
    } else {
      Guard g = co_await m.scoped_lock_shared();
      guards.push_back(std::move(g));
    }
  }
  co_return guards;
}

Task<Guard> lock_key(CommandContext& ctx, std::string_view key, Mode mode) {
  AsyncSharedMutex& m = ctx.stripe(ctx.stripe_of(key));
  if (mode == Mode::kExclusive) {
    Guard g = co_await m.scoped_lock();
    co_return g;
  }
  Guard g = co_await m.scoped_lock_shared();
  co_return g;
}

Task<void> cmd_ping(CommandContext&, const Command& c, std::string* out) {
  if (c.size() == 1) {
    reply_simple(*out, "PONG");
  } else {
    reply_bulk(*out, c[1]);
  }
  co_return;
}

Task<void> cmd_echo(CommandContext&, const Command& c, std::string* out) {
  reply_bulk(*out, c[1]);
  co_return;
}

Task<void> cmd_get(CommandContext& ctx, const Command& c, std::string* out) {
  std::string value;
  const bool found = co_await ctx.db().get(c[1], value);
  if (found) {
    reply_bulk(*out, value);
  } else {
    reply_null(*out);
  }
}

Task<void> cmd_set(CommandContext& ctx, const Command& c, std::string* out) {
  bool nx = false;
  bool xx = false;
  bool get = false;
  for (std::size_t i = 3; i < c.size(); ++i) {
    const std::string opt = ascii_lower(c[i]);
    if (opt == "nx") {
      nx = true;
    } else if (opt == "xx") {
      xx = true;
    } else if (opt == "get") {
      get = true;
    } else if (opt == "keepttl") {
      // No key has a time to live: nothing to keep.
    } else if (opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat") {
      throw CommandError("ERR SET with an expiration (EX, PX, EXAT, PXAT) is not supported");
    } else {
      throw CommandError(kSyntaxError);
    }
  }
  if (nx && xx) throw CommandError(kSyntaxError);
  if (!nx && !xx && !get) {  // a blind write: shared with other blind writes
    Guard shared = co_await lock_key(ctx, c[1], Mode::kShared);
    co_await ctx.db().put(c[1], c[2]);
    reply_simple(*out, "OK");
    co_return;
  }
  Guard guard = co_await lock_key(ctx, c[1], Mode::kExclusive);
  std::string old;
  const bool existed = co_await ctx.db().get(c[1], old);
  const bool write = (!nx || !existed) && (!xx || existed);
  if (write) co_await ctx.db().put(c[1], c[2]);
  if (get) {
    if (existed) {
      reply_bulk(*out, old);
    } else {
      reply_null(*out);
    }
  } else if (write) {
    reply_simple(*out, "OK");
  } else {
    reply_null(*out);
  }
}

Task<void> cmd_del(CommandContext& ctx, const Command& c, std::string* out) {
  std::vector<std::size_t> stripes;
  for (std::size_t i = 1; i < c.size(); ++i) stripes.push_back(ctx.stripe_of(c[i]));
  std::vector<Guard> guards = co_await lock_stripes(ctx, std::move(stripes), Mode::kExclusive);
  std::set<std::string_view> seen;
  WriteBatch batch;
  std::string value;
  for (std::size_t i = 1; i < c.size(); ++i) {
    if (!seen.insert(c[i]).second) continue;
    const bool found = co_await ctx.db().get(c[i], value);
    if (found) batch.erase(c[i]);
  }
  if (!batch.empty()) co_await ctx.db().write(batch);
  reply_integer(*out, static_cast<std::int64_t>(batch.size()));
}

// The stripes of c[1..], locked shared (MGET, EXISTS: never half of an MSET or DEL).
Task<std::vector<Guard>> lock_keys_shared(CommandContext& ctx, const Command& c) {
  std::vector<std::size_t> stripes;
  for (std::size_t i = 1; i < c.size(); ++i) stripes.push_back(ctx.stripe_of(c[i]));
  std::vector<Guard> guards = co_await lock_stripes(ctx, std::move(stripes), Mode::kShared);
  co_return guards;
}

void check_output(CommandContext& ctx, const std::string* out) {
  if (out->size() > ctx.output_limit()) throw OutputLimitExceeded();
}

Task<void> cmd_exists(CommandContext& ctx, const Command& c, std::string* out) {
  std::vector<Guard> guards = co_await lock_keys_shared(ctx, c);
  std::int64_t n = 0;
  std::string value;
  for (std::size_t i = 1; i < c.size(); ++i) {
    const bool found = co_await ctx.db().get(c[i], value);
    if (found) ++n;
  }
  reply_integer(*out, n);
}

Task<void> cmd_mget(CommandContext& ctx, const Command& c, std::string* out) {
  std::vector<Guard> guards = co_await lock_keys_shared(ctx, c);
  reply_array(*out, c.size() - 1);
  std::string value;
  for (std::size_t i = 1; i < c.size(); ++i) {
    const bool found = co_await ctx.db().get(c[i], value);
    if (found) {
      reply_bulk(*out, value);
    } else {
      reply_null(*out);
    }
    check_output(ctx, out);
  }
}

Task<void> cmd_mset(CommandContext& ctx, const Command& c, std::string* out) {
  if (c.size() % 2 != 1) throw CommandError("ERR wrong number of arguments for 'mset' command");
  std::vector<std::size_t> stripes;
  WriteBatch batch;
  for (std::size_t i = 1; i < c.size(); i += 2) {
    stripes.push_back(ctx.stripe_of(c[i]));
    batch.put(c[i], c[i + 1]);
  }
  std::vector<Guard> guards = co_await lock_stripes(ctx, std::move(stripes), Mode::kExclusive);
  co_await ctx.db().write(batch);
  reply_simple(*out, "OK");
}

std::int64_t parse_integer_arg(std::string_view text) {
  std::int64_t v = 0;
  if (!parse_int64(text, v)) throw CommandError(kNotInteger);
  return v;
}

// INCR, INCRBY, DECR and DECRBY: a read-modify-write under the key's stripe.
Task<void> incr_by(CommandContext& ctx, const std::string& key, std::int64_t delta,
                   std::string* out) {
  Guard guard = co_await lock_key(ctx, key, Mode::kExclusive);
  std::string old;
  const bool existed = co_await ctx.db().get(key, old);
  std::int64_t value = 0;
  if (existed && !parse_int64(old, value)) throw CommandError(kNotInteger);
  if ((delta > 0 && value > std::numeric_limits<std::int64_t>::max() - delta) ||
      (delta < 0 && value < std::numeric_limits<std::int64_t>::min() - delta)) {
    throw CommandError("ERR increment or decrement would overflow");
  }
  value += delta;
  const std::string text = std::to_string(value);
  co_await ctx.db().put(key, text);
  reply_integer(*out, value);
}

Task<void> cmd_incr(CommandContext& ctx, const Command& c, std::string* out) {
  co_await incr_by(ctx, c[1], 1, out);
}
Task<void> cmd_decr(CommandContext& ctx, const Command& c, std::string* out) {
  co_await incr_by(ctx, c[1], -1, out);
}
Task<void> cmd_incrby(CommandContext& ctx, const Command& c, std::string* out) {
  const std::int64_t delta = parse_integer_arg(c[2]);
  co_await incr_by(ctx, c[1], delta, out);
}
Task<void> cmd_decrby(CommandContext& ctx, const Command& c, std::string* out) {
  const std::int64_t delta = parse_integer_arg(c[2]);
  if (delta == std::numeric_limits<std::int64_t>::min()) {
    throw CommandError("ERR decrement would overflow");
  }
  co_await incr_by(ctx, c[1], -delta, out);
}

Task<void> cmd_select(CommandContext&, const Command& c, std::string* out) {
  if (parse_integer_arg(c[1]) != 0) throw CommandError("ERR DB index is out of range");
  reply_simple(*out, "OK");
  co_return;
}

// CONFIG GET answers an empty list (nothing is configurable at run time), so
// that tools which ask (redis-benchmark) go on; other subcommands are errors.
Task<void> cmd_config(CommandContext&, const Command& c, std::string* out) {
  if (ascii_lower(c[1]) != "get") throw CommandError("ERR CONFIG supports only GET here");
  if (c.size() < 3) throw CommandError("ERR wrong number of arguments for 'config|get' command");
  reply_array(*out, 0);
  co_return;
}

// SETNX key value: SET NX answering 1 (set) or 0.
Task<void> cmd_setnx(CommandContext& ctx, const Command& c, std::string* out) {
  Guard guard = co_await lock_key(ctx, c[1], Mode::kExclusive);
  std::string old;
  const bool existed = co_await ctx.db().get(c[1], old);
  if (!existed) co_await ctx.db().put(c[1], c[2]);
  reply_integer(*out, existed ? 0 : 1);
}

// TYPE key: every value is a string.
Task<void> cmd_type(CommandContext& ctx, const Command& c, std::string* out) {
  std::string value;
  const bool found = co_await ctx.db().get(c[1], value);
  reply_simple(*out, found ? "string" : "none");
}

// CLIENT SETNAME, SETINFO (accepted, not kept) and GETNAME (nil).
Task<void> cmd_client(CommandContext&, const Command& c, std::string* out) {
  const std::string sub = ascii_lower(c[1]);
  if (sub == "setname" && c.size() == 3) {
    reply_simple(*out, "OK");
  } else if (sub == "setinfo" && c.size() == 4) {
    reply_simple(*out, "OK");
  } else if (sub == "getname" && c.size() == 2) {
    reply_null(*out);
  } else {
    throw CommandError("ERR CLIENT supports only SETNAME, SETINFO and GETNAME here");
  }
  co_return;
}

// HELLO [protover [AUTH user pass] [SETNAME name]]: RESP2 only.
Task<void> cmd_hello(CommandContext&, const Command& c, std::string* out) {
  if (c.size() > 1) {
    std::int64_t v = 0;
    if (!parse_int64(c[1], v)) {
      throw CommandError("ERR Protocol version is not an integer or out of range");
    }
    if (v != 2) throw CommandError("NOPROTO sorry, this protocol version is not supported");
  }
  reply_array(*out, 14);
  reply_bulk(*out, "server");
  reply_bulk(*out, "redis");
  reply_bulk(*out, "version");
  reply_bulk(*out, "7.0.0");
  reply_bulk(*out, "proto");
  reply_integer(*out, 2);
  reply_bulk(*out, "id");
  reply_integer(*out, 0);
  reply_bulk(*out, "mode");
  reply_bulk(*out, "standalone");
  reply_bulk(*out, "role");
  reply_bulk(*out, "master");
  reply_bulk(*out, "modules");
  reply_array(*out, 0);
  co_return;
}

// COMMAND (redis-cli asks for the command docs): an empty list.
Task<void> cmd_command(CommandContext&, const Command&, std::string* out) {
  reply_array(*out, 0);
  co_return;
}

struct Spec {
  std::string_view name;
  int arity;  // > 0: exactly; < 0: at least -arity (the name counts)
  Handler handler;
  // Which arguments are keys: from `first_key` to the end (`last_key` 0) or
  // to `last_key`, every `key_step`-th. first_key 0: none.
  std::size_t first_key;
  std::size_t last_key;
  std::size_t key_step;
};

constexpr Spec kCommands[] = {
    {"get", 2, cmd_get, 1, 1, 1},           {"set", -3, cmd_set, 1, 1, 1},
    {"mget", -2, cmd_mget, 1, 0, 1},        {"mset", -3, cmd_mset, 1, 0, 2},
    {"del", -2, cmd_del, 1, 0, 1},          {"exists", -2, cmd_exists, 1, 0, 1},
    {"incr", 2, cmd_incr, 1, 1, 1},         {"decr", 2, cmd_decr, 1, 1, 1},
    {"incrby", 3, cmd_incrby, 1, 1, 1},     {"decrby", 3, cmd_decrby, 1, 1, 1},
    {"ping", -1, cmd_ping, 0, 0, 1},        {"echo", 2, cmd_echo, 0, 0, 1},
    {"scan", -2, cmd_scan, 0, 0, 1},        {"dbsize", 1, cmd_dbsize, 0, 0, 1},
    {"info", -1, cmd_info, 0, 0, 1},        {"flushall", -1, cmd_flushall, 0, 0, 1},
    {"select", 2, cmd_select, 0, 0, 1},     {"config", -2, cmd_config, 0, 0, 1},
    {"command", -1, cmd_command, 0, 0, 1},  {"quit", -1, nullptr, 0, 0, 1},
    {"flushdb", -1, cmd_flushall, 0, 0, 1}, {"unlink", -2, cmd_del, 1, 0, 1},
    {"setnx", 3, cmd_setnx, 1, 1, 1},       {"type", 2, cmd_type, 1, 1, 1},
    {"client", -2, cmd_client, 0, 0, 1},    {"hello", -1, cmd_hello, 0, 0, 1},
};

const Spec* find_spec(std::string_view lower_name) {
  for (const Spec& s : kCommands) {
    if (s.name == lower_name) return &s;
  }
  return nullptr;
}

// redis-server's text: the name and the first arguments, about 128 bytes.
std::string unknown_command_error(const Command& c) {
  std::string args;
  for (std::size_t i = 1; i < c.size() && args.size() < 128; ++i) {
    const std::size_t n = std::min(c[i].size(), 128 - args.size());
    args.push_back('\'');
    args.append(c[i], 0, n);
    args.append("' ");
  }
  std::string msg = "ERR unknown command '";
  msg.append(c[0], 0, std::min<std::size_t>(c[0].size(), 128));
  msg.append("', with args beginning with: ");
  msg.append(args);
  return msg;
}

bool arity_ok(const Spec& s, std::size_t argc) {
  if (s.arity > 0) return argc == static_cast<std::size_t>(s.arity);
  if (s.name == "ping" && argc > 2) return false;
  return argc >= static_cast<std::size_t>(-s.arity);
}

void check_keys(CommandContext& ctx, const Spec& s, const Command& c) {
  if (s.first_key == 0) return;
  const std::size_t limit = ctx.db().max_key_size();
  const std::size_t end = s.last_key == 0 ? c.size() : s.last_key + 1;
  for (std::size_t i = s.first_key; i < end && i < c.size(); i += s.key_step) {
    if (c[i].size() > limit) {
      throw CommandError("ERR key too long: " + std::to_string(c[i].size()) + " bytes (at most " +
                         std::to_string(limit) + ")");
    }
  }
}

}  // namespace

Task<bool> execute(CommandContext& ctx, const Command& cmd, std::string* out) {
  ctx.counters().total_commands.fetch_add(1, std::memory_order_relaxed);
  if (cmd.empty()) co_return true;
  const std::string name = ascii_lower(cmd[0]);
  const Spec* spec = find_spec(name);
  if (spec == nullptr) {
    reply_error(*out, unknown_command_error(cmd));
    co_return true;
  }
  if (!arity_ok(*spec, cmd.size())) {
    reply_error(*out, "ERR wrong number of arguments for '" + name + "' command");
    co_return true;
  }
  if (spec->handler == nullptr) {  // QUIT
    reply_simple(*out, "OK");
    co_return false;
  }
  const std::size_t mark = out->size();
  std::string error;
  try {
    check_keys(ctx, *spec, cmd);
    co_await spec->handler(ctx, cmd, out);
  } catch (const CommandError& e) {
    error = e.what();
  } catch (const Error& e) {
    error = std::string("ERR ") + e.what();
  } catch (const std::bad_alloc&) {
    error = "ERR out of memory";
  }
  if (!error.empty()) {
    out->resize(mark);
    reply_error(*out, error);
  }
  co_return true;
}

namespace {

// Whether `c` is a plain write (SET key value, MSET) that may share one
// WriteBatch with its neighbours in a pipeline: well-formed, keys in bounds.
bool groupable(CommandContext& ctx, const Command& c) {
  if (c.size() < 3 || c.size() % 2 != 1) return false;
  const std::string name = ascii_lower(c[0]);
  if (!(name == "mset" || (name == "set" && c.size() == 3))) return false;
  const std::size_t limit = ctx.db().max_key_size();
  for (std::size_t i = 1; i < c.size(); i += 2) {
    if (c[i].size() > limit) return false;
  }
  return true;
}

// Runs commands[first, last) (each groupable) as one atomic commit: one
// WriteBatch under the stripes of all their keys, one log write (and one
// fsync in sync mode) instead of one per command; each gets its +OK.
Task<void> execute_group(CommandContext& ctx, const std::vector<Command>* commands,
                         std::size_t first, std::size_t last, std::string* out) {
  std::vector<std::size_t> stripes;
  WriteBatch batch;
  for (std::size_t i = first; i < last; ++i) {
    const Command& c = (*commands)[i];
    for (std::size_t k = 1; k < c.size(); k += 2) {
      stripes.push_back(ctx.stripe_of(c[k]));
      batch.put(c[k], c[k + 1]);
    }
  }
  // Separate SETs need no atomicity towards readers (Redis gives none); an
  // MSET among them does (MGET never sees half of it).
  Mode mode = Mode::kShared;
  for (std::size_t i = first; i < last; ++i) {
    if ((*commands)[i].size() > 3) mode = Mode::kExclusive;
  }
  std::string error;
  try {
    std::vector<Guard> guards = co_await lock_stripes(ctx, std::move(stripes), mode);
    co_await ctx.db().write(batch);
  } catch (const Error& e) {
    error = std::string("ERR ") + e.what();
  } catch (const std::bad_alloc&) {
    error = "ERR out of memory";
  }
  ctx.counters().total_commands.fetch_add(last - first, std::memory_order_relaxed);
  for (std::size_t i = first; i < last; ++i) {
    if (error.empty()) {
      reply_simple(*out, "OK");
    } else {
      reply_error(*out, error);
    }
  }
}

constexpr std::size_t kMaxGroupCommands = 1024;
constexpr std::size_t kMaxGroupBytes = std::size_t{16} << 20;

}  // namespace

Task<BatchResult> execute_batch(CommandContext& ctx, const std::vector<Command>* commands,
                                std::size_t first, std::string* out, std::size_t out_limit) {
  BatchResult r;
  r.next = first;
  while (r.next < commands->size() && out->size() < out_limit) {
    // A run of plain writes: one commit.
    std::size_t end = r.next;
    std::size_t bytes = 0;
    while (end < commands->size() && end - r.next < kMaxGroupCommands && bytes < kMaxGroupBytes &&
           groupable(ctx, (*commands)[end])) {
      for (const std::string& a : (*commands)[end]) bytes += a.size();
      ++end;
    }
    if (end - r.next >= 2) {
      co_await execute_group(ctx, commands, r.next, end, out);
      r.next = end;
      continue;
    }
    const bool go_on = co_await execute(ctx, (*commands)[r.next], out);
    ++r.next;
    if (!go_on) {
      r.quit = true;
      break;
    }
  }
  co_return r;
}

}  // namespace corobtree::server
