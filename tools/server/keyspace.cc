// SCAN and its cursor table, DBSIZE, INFO and FLUSHALL (commands.h).
#include <unistd.h>

#include <chrono>
#include <random>
#include <sstream>

#include <corobtree/cursor.h>
#include <corobtree/options.h>
#include <corobtree/version.h>
#include <corobtree/write_batch.h>
#include "tools/server/glob.h"
#include "tools/server/handlers.h"

namespace corobtree::server {

ScanCursors::ScanCursors(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
  // Numbers of an earlier run of the server are unlikely to name a cursor of this one.
  std::random_device rd;
  next_id_ = ((static_cast<std::uint64_t>(rd()) << 20) ^ rd()) % (std::uint64_t{1} << 40) + 1;
}

std::uint64_t ScanCursors::put(std::string last_key) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::uint64_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;  // 0 means "start" and "done"
  while (order_.size() >= capacity_) {
    keys_.erase(order_.front());
    order_.pop_front();
  }
  keys_.emplace(id, std::move(last_key));
  order_.push_back(id);
  return id;
}

std::optional<std::string> ScanCursors::get(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

std::size_t ScanCursors::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_.size();
}

namespace {

bool parse_cursor(std::string_view text, std::uint64_t& id) {
  if (text.empty() || text.size() > 20) return false;
  std::uint64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return false;
    const auto d = static_cast<std::uint64_t>(ch - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  id = v;
  return true;
}

}  // namespace

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]: examines up to COUNT
// keys (default 10, at most kMaxScanCount) after the cursor's last key.
Task<void> cmd_scan(CommandContext& ctx, const Command& c, std::string* out) {
  std::uint64_t id = 0;
  if (!parse_cursor(c[1], id)) throw CommandError("ERR invalid cursor");
  std::optional<std::string> pattern;
  std::int64_t count = 10;
  bool type_ok = true;
  for (std::size_t i = 2; i < c.size(); i += 2) {
    const std::string opt = ascii_lower(c[i]);
    if (i + 1 >= c.size()) throw CommandError(kSyntaxError);
    if (opt == "match") {
      if (c[i + 1].size() > ctx.max_pattern()) {
        throw CommandError("ERR MATCH pattern too long: " + std::to_string(c[i + 1].size()) +
                           " bytes (at most " + std::to_string(ctx.max_pattern()) + ")");
      }
      pattern = c[i + 1];
    } else if (opt == "count") {
      if (!parse_int64(c[i + 1], count)) throw CommandError(kNotInteger);
      if (count < 1) throw CommandError(kSyntaxError);
    } else if (opt == "type") {
      type_ok = ascii_lower(c[i + 1]) == "string";  // every value is a string
    } else {
      throw CommandError(kSyntaxError);
    }
  }
  ScanOptions opts;
  if (id != 0) {
    std::optional<std::string> last = ctx.cursors().get(id);
    if (!last) throw CommandError("ERR invalid cursor");
    last->push_back('\0');  // the smallest key after it
    opts.lower = std::move(*last);
  }
  const auto budget = static_cast<std::size_t>(
      std::min<std::int64_t>(count, static_cast<std::int64_t>(CommandContext::kMaxScanCount)));
  std::vector<std::string> keys;
  std::string last_key;
  std::size_t examined = 0;
  // Matching costs up to key length x pattern length per key: a call stops
  // early (returning a cursor) once it has spent about kMatchWork on it.
  constexpr std::size_t kMatchWork = std::size_t{8} << 20;
  const std::size_t min_len = pattern ? glob_min_length(*pattern) : 0;
  std::size_t work = 0;
  Cursor cursor = ctx.db().cursor(std::move(opts));
  bool ok = co_await cursor.first();
  while (ok) {
    const std::string_view key = cursor.key();
    bool match = type_ok;
    if (match && pattern) {
      match = key.size() >= min_len && glob_match(*pattern, key);
      if (key.size() >= min_len) work += (key.size() + 1) * pattern->size();
    }
    if (match) keys.emplace_back(key);
    if (++examined == budget || work >= kMatchWork) {
      last_key.assign(key);
      break;
    }
    ok = co_await cursor.next();
  }
  // The budget used up: more keys may follow (the next call may find none).
  const std::uint64_t next = ok ? ctx.cursors().put(std::move(last_key)) : 0;
  reply_array(*out, 2);
  reply_bulk(*out, std::to_string(next));
  reply_array(*out, keys.size());
  for (const std::string& k : keys) reply_bulk(*out, k);
}

Task<void> cmd_dbsize(CommandContext& ctx, const Command&, std::string* out) {
  reply_integer(*out, static_cast<std::int64_t>(ctx.db().count()));
  co_return;
}

Task<void> cmd_info(CommandContext& ctx, const Command& c, std::string* out) {
  const std::string section = c.size() > 1 ? ascii_lower(c[1]) : std::string();
  reply_bulk(*out, info_text(ctx, section));
  co_return;
}

// FLUSHALL [ASYNC|SYNC] (and FLUSHDB): erases every key up to the last key
// present when it starts, in batches of up to 1000 keys in key order (each
// batch one atomic commit), each starting after the previous batch's last
// key, so that it ends even while others insert keys; keys written
// meanwhile may survive.
Task<void> cmd_flushall(CommandContext& ctx, const Command& c, std::string* out) {
  if (c.size() > 2) throw CommandError(kSyntaxError);
  if (c.size() == 2) {
    const std::string mode = ascii_lower(c[1]);
    if (mode != "async" && mode != "sync") throw CommandError(kSyntaxError);
  }
  constexpr std::size_t kBatch = 1000;
  std::optional<std::string> end;  // the last key at the start, plus "\0"
  {
    ScanOptions ropts;
    ropts.reverse = true;
    Cursor last_cursor = ctx.db().cursor(std::move(ropts));
    const bool any = co_await last_cursor.first();
    if (any) {
      end.emplace(last_cursor.key());
      end->push_back('\0');
    }
  }
  std::optional<std::string> from;
  while (end) {
    ScanOptions opts;
    opts.lower = from;
    opts.upper = end;
    WriteBatch batch;
    std::string last;
    Cursor cursor = ctx.db().cursor(std::move(opts));
    bool ok = co_await cursor.first();
    while (ok && batch.size() < kBatch) {
      batch.erase(cursor.key());
      last.assign(cursor.key());
      ok = co_await cursor.next();
    }
    if (batch.empty()) break;
    co_await ctx.db().write(batch);
    if (!ok) break;
    last.push_back('\0');
    from = std::move(last);
  }
  reply_simple(*out, "OK");
}

std::string info_text(CommandContext& ctx, std::string_view section) {
  const bool all =
      section.empty() || section == "all" || section == "default" || section == "everything";
  const DatabaseStats st = ctx.db().stats();
  ServerCounters& sc = ctx.counters();
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - ctx.started())
                          .count();
  std::ostringstream o;
  auto head = [&](std::string_view name, std::string_view title) {
    if (!all && section != name) return false;
    if (o.tellp() > 0) o << "\r\n";
    o << "# " << title << "\r\n";
    return true;
  };
  if (head("server", "Server")) {
    o << "redis_version:7.0.0-compatible\r\n"
      << "server_name:corobtree-server\r\n"
      << "corobtree_version:" << COROBTREE_VERSION_MAJOR << '.' << COROBTREE_VERSION_MINOR << '.'
      << COROBTREE_VERSION_PATCH << "\r\n"
      << "process_id:" << ::getpid() << "\r\n"
      << "tcp_bind:" << sc.bind << "\r\n"
      << "tcp_port:" << sc.port << "\r\n"
      << "io_threads:" << sc.threads << "\r\n"
      << "durability:" << sc.durability << "\r\n"
      << "uptime_in_seconds:" << uptime << "\r\n"
      << "database_path:" << ctx.db().path() << "\r\n";
  }
  if (head("clients", "Clients")) {
    o << "connected_clients:" << sc.connected_clients.load() << "\r\n";
  }
  if (head("stats", "Stats")) {
    o << "total_connections_received:" << sc.total_connections.load() << "\r\n"
      << "total_commands_processed:" << sc.total_commands.load() << "\r\n"
      << "rejected_connections:" << sc.rejected_connections.load() << "\r\n"
      << "protocol_errors:" << sc.protocol_errors.load() << "\r\n"
      << "client_timeouts:" << sc.timed_out_clients.load() << "\r\n"
      << "client_output_limit_closes:" << sc.output_limit_closes.load() << "\r\n"
      << "scan_cursors:" << ctx.cursors().size() << "\r\n";
  }
  if (head("keyspace", "Keyspace")) {
    o << "db0:keys=" << st.keys << ",expires=0,avg_ttl=0\r\n";
  }
  if (head("engine", "Engine")) {
    o << "backend:" << backend_name(st.backend) << "\r\n";
    if (!st.fallback_reason.empty())
      o << "backend_fallback_reason:" << st.fallback_reason << "\r\n";
    o << "keys:" << st.keys << "\r\n"
      << "tree_height:" << st.height << "\r\n"
      << "page_size:" << st.page_size << "\r\n"
      << "file_pages:" << st.pages << "\r\n"
      << "free_pages:" << st.free_pages << "\r\n"
      << "checkpoints:" << st.checkpoints << "\r\n"
      << "max_key_size:" << ctx.db().max_key_size() << "\r\n";
  }
  if (head("pool", "Pool")) {
    o << "pool_hits:" << st.pool.hits << "\r\n"
      << "pool_misses:" << st.pool.misses << "\r\n"
      << "pool_hit_rate:" << st.pool.hit_rate() << "\r\n"
      << "pool_disk_reads:" << st.pool.disk_reads << "\r\n"
      << "pool_disk_writes:" << st.pool.disk_writes << "\r\n"
      << "pool_evictions:" << st.pool.evictions << "\r\n"
      << "pool_dirty_writebacks:" << st.pool.dirty_writebacks << "\r\n"
      << "pool_free_frame_waits:" << st.pool.free_frame_waits << "\r\n"
      << "pool_pinned:" << st.pool.pinned << "\r\n";
  }
  if (head("wal", "Wal")) {
    o << "wal_commits:" << st.wal.commits << "\r\n"
      << "wal_writes:" << st.wal.writes << "\r\n"
      << "wal_syncs:" << st.wal.syncs << "\r\n"
      << "wal_largest_group:" << st.wal.largest_group << "\r\n"
      << "wal_bytes:" << st.wal.bytes << "\r\n"
      << "wal_pages:" << st.wal.pages << "\r\n";
  }
  return o.str();
}

}  // namespace corobtree::server
