// salvage (include/corobtree/salvage.h): after the first pass
// (engine/db/salvage_pages.cc), one pair per key, values from their overflow
// chains, the log's transactions on top, and the new database.
// docs/engine.md, "Salvage".
#include <corobtree/salvage.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>

#include <corobtree/database.h>
#include <corobtree/error.h>

#include "engine/db/salvager.h"
#include "engine/format/page_format.h"
#include "engine/log/log_format.h"
#include "io/aligned_buffer.h"

namespace corobtree {

// Is the value's whole chain there, from pages that verified? The chain is
// followed through what the first pass recorded, at most once per overflow
// page, and must end exactly with the value.
bool Salvager::chain_intact(const Candidate& c, std::string& why) const {
  BlockId id = c.overflow;
  std::uint64_t bytes = 0;
  std::uint64_t hops = 0;
  while (id != kInvalidBlockId) {
    const auto it = overflow_.find(id);
    if (it != overflow_.end() && it->second.claimed) {
      why = "its overflow chain reaches page " + std::to_string(id) +
            ", which holds another key's value";
      return false;
    }
    if (it == overflow_.end()) {
      why = "its overflow chain reaches page " + std::to_string(id) +
            ", which is not an intact overflow page";
      return false;
    }
    bytes += it->second.payload;
    if (++hops > overflow_.size() || bytes > c.length) {
      why = "its overflow chain runs past the value's " + std::to_string(c.length) + " bytes";
      return false;
    }
    id = it->second.next;
  }
  if (bytes != c.length) {
    why = "its overflow chain ends after " + std::to_string(bytes) + " of the value's " +
          std::to_string(c.length) + " bytes";
    return false;
  }
  return true;
}

Task<bool> Salvager::read_chain(const Candidate& c, std::string& value) {
  value.clear();
  value.reserve(c.length);  // chain_intact(): the file holds that many bytes
  AlignedBuffer buf(page_size_);
  std::uint64_t hops = 0;
  for (BlockId id = c.overflow; id != kInvalidBlockId;) {
    if (++hops > overflow_.size()) co_return false;
    bool ok = true;
    try {
      co_await read_page(id, buf.span());
      page::verify(id, buf.span(), path_);
    } catch (const Error&) {
      ok = false;
    }
    const std::byte* d = buf.data();
    const std::uint64_t n = PageHeader::Payload::get(d);
    if (!ok || page::type(d) != PageType::kOverflow || value.size() + n > c.length) {
      co_return false;  // changed since the first pass
    }
    value.append(reinterpret_cast<const char*>(d + page::kHeaderSize), n);
    if (const auto it = overflow_.find(id); it != overflow_.end()) it->second.claimed = true;
    id = PageHeader::Link0::get(d);
  }
  co_return value.size() == c.length;
}

// One pair per key: the copy from the leaf with the higher LSN, then a
// reachable one; its value read from its overflow chain if need be.
Task<std::vector<std::pair<std::string, std::string>>> Salvager::resolve() {
  std::vector<std::size_t> order(candidates_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Candidate& x = candidates_[a];
    const Candidate& y = candidates_[b];
    if (const int c = x.key.compare(y.key); c != 0) return c < 0;
    if (x.lsn != y.lsn) return x.lsn > y.lsn;
    return reachable_[x.page] && !reachable_[y.page];
  });
  std::vector<std::pair<std::string, std::string>> pairs;
  for (std::size_t i = 0; i < order.size(); ++i) {
    Candidate& c = candidates_[order[i]];
    if (i > 0 && candidates_[order[i - 1]].key == c.key) {
      ++r_.duplicate_keys;
      continue;
    }
    if (c.overflow != kInvalidBlockId) {
      std::string why;
      bool ok = chain_intact(c, why);
      if (ok) ok = co_await read_chain(c, c.value);
      if (!ok) {
        ++r_.keys_lost_overflow;
        problem("the value of a key in leaf page " + std::to_string(c.page) + " is lost: " +
                (why.empty() ? std::string("its overflow chain changed while read") : why));
        continue;
      }
    }
    pairs.emplace_back(std::move(c.key), std::move(c.value));
  }
  candidates_.clear();
  r_.keys_from_pages = pairs.size();
  co_return pairs;
}

// The log's committed transactions newer than the checkpoint, over the pairs.
void Salvager::apply_log(std::vector<std::pair<std::string, std::string>>& pairs) {
  if (!log_.header) return;
  LogEffect e = log_effect(log_, replay_after_, page::max_key(page_size_), path_ + "-wal");
  r_.log_transactions_applied = e.transactions;
  r_.log_operations_applied = e.operations;
  if (!e.error.empty()) problem("the log's later transactions are lost: " + e.error);
  if (e.last.empty()) return;
  std::vector<std::pair<std::string, std::string>> merged;
  merged.reserve(pairs.size() + e.last.size());
  auto it = e.last.begin();
  for (auto& p : pairs) {
    for (; it != e.last.end() && it->first < p.first; ++it) {
      if (it->second) merged.emplace_back(it->first, std::move(*it->second));
    }
    if (it != e.last.end() && it->first == p.first) {
      if (it->second) merged.emplace_back(std::move(p.first), std::move(*it->second));
      ++it;
      continue;
    }
    merged.push_back(std::move(p));
  }
  for (; it != e.last.end(); ++it) {
    if (it->second) merged.emplace_back(it->first, std::move(*it->second));
  }
  pairs = std::move(merged);
}

// Bulk-loads the pairs into the new database and validates it. On failure
// the new files are removed.
Task<void> Salvager::write_out(std::string out,
                               std::vector<std::pair<std::string, std::string>> pairs) {
  Options o;
  o.page_size = page_size_;
  o.backend = options_.backend;
  o.create_if_missing = true;
  o.error_if_exists = true;
  const std::uint32_t t = meta_ ? meta_->state.tree.minimum_degree : 0;
  if (t >= 2 && t < (1u << 16)) o.minimum_degree = t;
  std::unique_ptr<Database> db = co_await Database::open(out, o);
  std::exception_ptr error;
  try {
    if (!pairs.empty()) co_await db->bulk_load(pairs);
    const ValidationReport v = co_await db->validate();
    if (!v.ok()) {
      throw Error(ErrorCode::kCorruption,
                  "the salvaged database '" + out + "' fails validation: " + v.summary(), 0, out);
    }
    co_await db->close();
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    db.reset();
    ::unlink(out.c_str());
    for (const char* suffix : kLogSuffixes) ::unlink((out + suffix).c_str());
    std::rethrow_exception(error);
  }
  r_.keys_recovered = pairs.size();
}

Task<SalvageReport> Salvager::run(std::string out) {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      throw Error(ErrorCode::kNotFound, "'" + path_ + "' does not exist", ENOENT, path_);
    }
    throw errno_error(errno, "stat", path_);
  }
  if (st.st_size == 0) not_a_database(path_, "the file is empty (0 bytes)");
  if (::stat(out.c_str(), &st) == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + out + "' already exists: salvage writes a new database", EEXIST, out);
  }
  if (errno != ENOENT) throw errno_error(errno, "stat", out);
  ::stat(path_.c_str(), &st);
  const std::uint32_t probed =
      probe_salvage_page_size(path_, static_cast<std::uint64_t>(st.st_size));
  page_size_ = options_.page_size ? options_.page_size : probed;
  if (!valid_page_size(page_size_) || page_size_ != probed) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + path_ + "' has " + std::to_string(probed) + "-byte pages, not " +
                    std::to_string(options_.page_size),
                0, path_);
  }
  r_.page_size = page_size_;
  DiskOptions o;
  o.page_size = page_size_;
  o.backend = options_.backend;
  o.create_if_missing = false;
  disk_ = DiskManager::open(path_, o);
  co_await read_meta();
  co_await read_log();
  co_await read_pages();
  r_.pages = disk_->block_count();
  if (meta_) r_.meta_key_count = meta_->state.tree.key_count;
  walk_free_list();
  walk_tree();
  const auto leaves =
      static_cast<std::uint64_t>(std::count(seen_.begin(), seen_.end(), Seen::kLeaf));
  r_.leaves_orphan = leaves - r_.leaves_reachable;
  count_unreadable();
  std::vector<std::pair<std::string, std::string>> pairs = co_await resolve();
  disk_->close();
  const std::uint64_t found = r_.keys_from_pages + r_.keys_lost_overflow;
  if (meta_ && found < meta_->state.tree.key_count) {
    r_.keys_missing = meta_->state.tree.key_count - found;
  }
  if (meta_ && found != meta_->state.tree.key_count) {
    problem("the meta page counts " + std::to_string(meta_->state.tree.key_count) +
            " keys; the leaves that verify hold " +
            std::to_string(r_.keys_from_pages + r_.keys_lost_overflow));
  }
  apply_log(pairs);
  co_await write_out(std::move(out), std::move(pairs));
  co_return std::move(r_);
}

Task<SalvageReport> salvage(std::string damaged, std::string out, SalvageOptions options) {
  Salvager s(std::move(damaged), options);
  SalvageReport r = co_await s.run(std::move(out));
  co_return r;
}

std::string SalvageReport::summary() const {
  std::string s;
  auto line = [&s](const char* name, const std::string& value) {
    std::string n = name;
    n.resize(std::max<std::size_t>(n.size(), 26), ' ');
    s += n + " " + value + "\n";
  };
  auto num = [](std::uint64_t v) { return std::to_string(v); };
  line("page_size", num(page_size));
  line("pages", num(pages));
  line("meta_pages_valid", num(meta_pages_valid) + " of 2");
  line("meta_key_count", num(meta_key_count));
  std::string ids;
  for (const std::uint64_t id : unreadable_ids) {
    if (!ids.empty()) ids += ' ';
    ids += num(id);  // not `sep + num(id)`: GCC 12 -O2 warns (-Wrestrict) on that insert
  }
  if (unreadable_ids.size() < pages_unreadable) ids += " ...";
  line("pages_unreadable", num(pages_unreadable) + (ids.empty() ? "" : " (" + ids + ")"));
  line("pages_unreadable_free", num(unreadable_free));
  line("pages_missing", num(pages_missing));
  line("inner_pages", num(inner_pages));
  line("leaves_reachable", num(leaves_reachable));
  line("leaves_orphan", num(leaves_orphan));
  line("overflow_pages", num(overflow_pages));
  line("free_pages", num(free_pages));
  line("duplicate_keys", num(duplicate_keys));
  line("keys_from_pages", num(keys_from_pages));
  line("keys_lost_overflow", num(keys_lost_overflow));
  line("keys_missing", num(keys_missing));
  line("log", !log_found ? "none" : !log_used ? "found, not this database's or empty" : "used");
  line("log_transactions_applied", num(log_transactions_applied));
  line("log_operations_applied", num(log_operations_applied));
  line("log_checkpoint_pages", num(log_checkpoint_pages));
  line("keys_recovered", num(keys_recovered));
  line("problems", num(problem_count));
  for (const std::string& p : problems) s += "  " + p + "\n";
  if (problems.size() < problem_count) {
    s += "  ... and " + num(problem_count - problems.size()) + " more\n";
  }
  return s;
}

}  // namespace corobtree
