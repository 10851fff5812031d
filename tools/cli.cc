// The one-shot commands: create, put, get, del, scan, dump, check, stats,
// backup, compact.
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstring>

#include <corobtree/error.h>
#include "tools/cli.h"
#include "tools/escape.h"

namespace corobtree::cli {

namespace {

void expect_args(const Invocation& inv, std::size_t n, const char* usage) {
  if (inv.args.size() != n) throw UsageError(std::string("usage: corobtree ") + usage);
}

std::string format_double(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", d);
  return buf;
}

int cmd_create(const Invocation& inv) {
  expect_args(inv, 0, "create DB");
  Invocation fresh = inv;
  fresh.options.error_if_exists = true;
  BlockingDatabase db = open_db(fresh, true);
  db.close();
  return kExitOk;
}

int cmd_put(const Invocation& inv) {
  expect_args(inv, 2, "put DB KEY VALUE");
  const std::string key = parse_arg(inv.args[0]);
  const std::string value = parse_arg(inv.args[1]);
  BlockingDatabase db = open_db(inv, false);
  db.put(key, value);
  db.close();
  return kExitOk;
}

int cmd_get(const Invocation& inv) {
  expect_args(inv, 1, "get DB KEY");
  const std::string key = parse_arg(inv.args[0]);
  BlockingDatabase db = open_db(inv, false);
  const std::optional<std::string> value = db.get(key);
  db.close();
  if (!value) {
    std::fprintf(stderr, "corobtree: key %s not found\n", escape_arg(key).c_str());
    return kExitAbsent;
  }
  write_out(stdout, escape_arg(*value) + "\n");
  flush_out(stdout);
  return kExitOk;
}

int cmd_del(const Invocation& inv) {
  expect_args(inv, 1, "del DB KEY");
  const std::string key = parse_arg(inv.args[0]);
  BlockingDatabase db = open_db(inv, false);
  const bool existed = db.erase(key);
  db.close();
  if (!existed) {
    std::fprintf(stderr, "corobtree: key %s not found\n", escape_arg(key).c_str());
    return kExitAbsent;
  }
  return kExitOk;
}

// Writes up to `limit` pairs of the range as dump lines, a chunk at a time
// (each chunk resumes just past the previous one), so memory stays bounded.
void stream_pairs(BlockingDatabase& db, ScanOptions opts, std::uint64_t limit) {
  constexpr std::uint64_t kChunk = 4096;
  std::uint64_t done = 0;
  while (done < limit) {
    const std::uint64_t want = std::min(kChunk, limit - done);
    const auto chunk = db.scan(opts, want);
    std::string text;
    for (const auto& [k, v] : chunk) text += format_dump_line(k, v) + "\n";
    write_out(stdout, text);
    done += chunk.size();
    if (chunk.size() < want) break;
    const std::string& last = chunk.back().first;
    if (opts.reverse) {
      opts.upper = last;  // exclusive
    } else {
      opts.lower = last + '\0';  // the smallest key after `last`
    }
  }
  flush_out(stdout);
}

int cmd_scan(const Invocation& inv) {
  ScanOptions opts;
  std::uint64_t limit = UINT64_MAX;
  const char* usage = "scan DB [--from K] [--to K] [--limit N] [--reverse]";
  for (std::size_t i = 0; i < inv.args.size(); ++i) {
    const std::string& a = inv.args[i];
    const bool has_value = i + 1 < inv.args.size();
    if (a == "--reverse") {
      opts.reverse = true;
    } else if (a == "--from" && has_value) {
      opts.lower = parse_arg(inv.args[++i]);
    } else if (a == "--to" && has_value) {
      opts.upper = parse_arg(inv.args[++i]);
    } else if (a == "--limit" && has_value) {
      limit = parse_count(inv.args[++i], "--limit");
    } else {
      throw UsageError("unexpected scan argument '" + escape(a) + "'; usage: corobtree " + usage);
    }
  }
  BlockingDatabase db = open_db(inv, false);
  stream_pairs(db, std::move(opts), limit);
  db.close();
  return kExitOk;
}

int cmd_dump(const Invocation& inv) {
  expect_args(inv, 0, "dump DB");
  BlockingDatabase db = open_db(inv, false);
  stream_pairs(db, ScanOptions{}, UINT64_MAX);
  db.close();
  return kExitOk;
}

std::string report_line(const ValidationReport& r) {
  return "height " + std::to_string(r.height) + ", " + std::to_string(r.keys) + " keys, " +
         std::to_string(r.leaves) + " leaves, " + std::to_string(r.inner_nodes) + " inner, " +
         std::to_string(r.overflow_pages) + " overflow, " + std::to_string(r.free_pages) +
         " free pages, fill factor " + format_double(r.fill_factor);
}

int cmd_check(const Invocation& inv) {
  expect_args(inv, 0, "check DB");
  ValidationReport r;
  try {
    BlockingDatabase db = open_db(inv, false);
    r = db.validate();
    db.close();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption) throw;
    write_out(stdout, "CORRUPT: " + corruption_reason(e.what()) + "\n");
    flush_out(stdout);
    return kExitCorrupt;
  }
  if (r.ok()) {
    write_out(stdout, "OK: " + report_line(r) + "\n");
    flush_out(stdout);
    return kExitOk;
  }
  std::string text = "CORRUPT: " + std::to_string(r.problems.size()) + " problem(s)\n";
  for (const std::string& p : r.problems) text += "  " + corruption_reason(p) + "\n";
  write_out(stdout, text);
  flush_out(stdout);
  return kExitCorrupt;
}

int cmd_stats(const Invocation& inv) {
  expect_args(inv, 0, "stats DB");
  BlockingDatabase db = open_db(inv, false);
  const ValidationReport r = db.validate();
  std::string text;
  for (const auto& [name, value] : stats_fields(db, r)) {
    char line[64];
    std::snprintf(line, sizeof line, "%-22s ", name.c_str());
    text += line + value + "\n";
  }
  write_out(stdout, text);
  flush_out(stdout);
  db.close();
  if (!r.ok()) {
    std::fprintf(stderr, "corobtree: the database has %zu problem(s); run 'corobtree check'\n",
                 r.problems.size());
    return kExitCorrupt;
  }
  return kExitOk;
}

// backup DB DEST: Database::backup, which refuses an existing DEST. (For a
// database another process has open, the shell's `backup DEST` does it.)
int cmd_backup(const Invocation& inv) {
  expect_args(inv, 1, "backup DB DEST");
  BlockingDatabase db = open_db(inv, false);
  db.backup(inv.args[0]);
  db.close();
  return kExitOk;
}

std::uint64_t file_bytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// Rewrites the database packed (Database::compact) and reports the data
// file's size before and after, and the keys it holds.
int cmd_compact(const Invocation& inv) {
  expect_args(inv, 0, "compact DB");
  BlockingDatabase db = open_db(inv, false);
  const std::uint64_t before = file_bytes(db.path());
  db.compact();
  const std::uint64_t keys = db.count();
  db.close();
  const std::uint64_t after = file_bytes(inv.db_path);
  write_out(stdout, "size_before " + std::to_string(before) + "\nsize_after " +
                        std::to_string(after) + "\nkeys " + std::to_string(keys) + "\n");
  flush_out(stdout);
  return kExitOk;
}

}  // namespace

BlockingDatabase open_db(const Invocation& inv, bool create) {
  Options o = inv.options;
  o.create_if_missing = create;
  try {
    return BlockingDatabase::open(inv.db_path, o);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error(ErrorCode::kNotFound,
                "'" + inv.db_path +
                    "' does not exist (create it with 'corobtree create' or 'corobtree load')",
                ENOENT, inv.db_path);
  }
}

int run_basic_command(const Invocation& inv) {
  const std::string& c = inv.command;
  if (c == "create") return cmd_create(inv);
  if (c == "put") return cmd_put(inv);
  if (c == "get") return cmd_get(inv);
  if (c == "del") return cmd_del(inv);
  if (c == "scan") return cmd_scan(inv);
  if (c == "dump") return cmd_dump(inv);
  if (c == "check") return cmd_check(inv);
  if (c == "stats") return cmd_stats(inv);
  if (c == "backup") return cmd_backup(inv);
  if (c == "compact") return cmd_compact(inv);
  throw UsageError("unknown command '" + escape(c) + "'");
}

std::vector<std::pair<std::string, std::string>> stats_fields(BlockingDatabase& db,
                                                              const ValidationReport& r) {
  const DatabaseStats s = db.stats();
  struct stat st {};
  const std::uint64_t file_size =
      ::stat(db.path().c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  const std::uint64_t used = s.pages >= s.free_pages + 2 ? s.pages - s.free_pages - 2 : 0;
  auto n = [](std::uint64_t v) { return std::to_string(v); };
  std::vector<std::pair<std::string, std::string>> f = {
      {"file_size", n(file_size)},
      {"page_size", n(s.page_size)},
      {"pages", n(s.pages)},
      {"pages_meta", "2"},
      {"pages_used", n(used)},
      {"pages_free", n(s.free_pages)},
      {"leaves", n(r.leaves)},
      {"inner_nodes", n(r.inner_nodes)},
      {"overflow_pages", n(r.overflow_pages)},
      {"height", n(s.height)},
      {"keys", n(s.keys)},
      {"fill_factor", format_double(r.fill_factor)},
      {"min_degree", n(s.minimum_degree)},
      {"max_key_size", n(db.max_key_size())},
      {"backend", std::string(backend_name(s.backend))},
  };
  if (!s.fallback_reason.empty()) f.emplace_back("fallback_reason", s.fallback_reason);
  f.insert(f.end(), {
                        {"pool_hits", n(s.pool.hits)},
                        {"pool_misses", n(s.pool.misses)},
                        {"pool_hit_rate", format_double(s.pool.hit_rate())},
                        {"pool_disk_reads", n(s.pool.disk_reads)},
                        {"pool_disk_writes", n(s.pool.disk_writes)},
                        {"pool_evictions", n(s.pool.evictions)},
                        {"pool_dirty_writebacks", n(s.pool.dirty_writebacks)},
                        {"pool_free_frame_waits", n(s.pool.free_frame_waits)},
                        {"pool_pinned", n(s.pool.pinned)},
                        {"problems", n(r.problems.size())},
                    });
  return f;
}

std::string corruption_reason(std::string_view what) {
  for (const std::string_view prefix : {"corobtree: ", "corruption: "}) {
    if (what.substr(0, prefix.size()) == prefix) what.remove_prefix(prefix.size());
  }
  return std::string(what);
}

std::uint64_t parse_count(const std::string& text, const char* what) {
  std::uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end) {
    throw UsageError(std::string(what) + " needs a non-negative decimal number, not '" +
                     escape(text) + "'");
  }
  return v;
}

namespace {

[[noreturn]] void output_failed(int err) {
  throw Error(ErrorCode::kIoError, std::string("writing the output failed: ") + std::strerror(err),
              err);
}

}  // namespace

void write_out(std::FILE* out, std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), out) != text.size() || std::ferror(out)) {
    output_failed(errno);
  }
}

void flush_out(std::FILE* out) {
  if (std::fflush(out) != 0 || std::ferror(out)) output_failed(errno);
}

}  // namespace corobtree::cli
