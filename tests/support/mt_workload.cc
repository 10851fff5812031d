#include "tests/support/mt_workload.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <sstream>

namespace corobtree::test::mt {

namespace {

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t hash_of(const std::string& s) { return std::hash<std::string>{}(s); }

// "<key>|<w>|<seq>|": the part of a value before its filler.
std::string value_head(const std::string& key, int w, std::uint64_t seq) {
  return key + "|" + std::to_string(w) + "|" + std::to_string(seq) + "|";
}

// The filler: mostly short, sometimes a page or several (overflow pages with
// 512-byte pages), every byte value included.
std::string filler(const std::string& key, int w, std::uint64_t seq) {
  std::uint64_t x = mix(hash_of(key) ^ mix(static_cast<std::uint64_t>(w) * 1000003 + seq));
  const std::uint64_t pick = x % 100;
  std::size_t n;
  if (pick < 60) {
    n = static_cast<std::size_t>(x >> 8) % 30;
  } else if (pick < 90) {
    n = 30 + static_cast<std::size_t>(x >> 8) % 120;
  } else if (pick < 98) {
    n = 150 + static_cast<std::size_t>(x >> 8) % 550;
  } else {
    n = 700 + static_cast<std::size_t>(x >> 8) % 2300;
  }
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 8 == 0) x = mix(x);
    s[i] = static_cast<char>(x >> (8 * (i % 8)));
  }
  return s;
}

bool in_shared_range(const std::string& key) { return key.rfind(kSharedPrefix, 0) == 0; }

int shared_index(const std::string& key) { return std::stoi(key.substr(2)); }

std::string upper_of_prefix(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);  // "x/" -> "x0"
  return prefix;
}

}  // namespace

std::string own_prefix(int worker) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "o%02d/", worker);
  return buf;
}

std::string own_key(int worker, int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05d", i);
  return own_prefix(worker) + buf;
}

std::string shared_key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "s/%05d", i);
  return buf;
}

int owner_of_shared(int i, int workers) {
  return static_cast<int>(mix(static_cast<std::uint64_t>(i) ^ 0x5eed) %
                          static_cast<std::uint64_t>(workers));
}

std::string make_value(const std::string& key, int w, std::uint64_t seq) {
  return value_head(key, w, seq) + filler(key, w, seq);
}

std::optional<ValueId> parse_value(const std::string& key, const std::string& value) {
  if (value.size() < key.size() + 1 || value.compare(0, key.size(), key) != 0 ||
      value[key.size()] != '|') {
    return std::nullopt;
  }
  const std::size_t w_at = key.size() + 1;
  const std::size_t w_end = value.find('|', w_at);
  if (w_end == std::string::npos || w_end == w_at || w_end - w_at > 3) return std::nullopt;
  const std::size_t seq_end = value.find('|', w_end + 1);
  if (seq_end == std::string::npos || seq_end == w_end + 1 || seq_end - w_end > 20) {
    return std::nullopt;
  }
  ValueId id{};
  try {
    id.worker = std::stoi(value.substr(w_at, w_end - w_at));
    id.seq = std::stoull(value.substr(w_end + 1, seq_end - w_end - 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (id.worker < 0 || value != make_value(key, id.worker, id.seq)) return std::nullopt;
  return id;
}

Rows initial_rows(int workers, const Sizes& sizes, std::uint64_t seed) {
  std::mt19937_64 rng(mix(seed ^ 0x1417));
  Rows rows;
  for (int w = 0; w < workers; ++w) {
    for (int i = 0; i < sizes.own_keys; ++i) {
      if (rng() % 2 == 0) {
        const std::string k = own_key(w, i);
        rows.emplace_back(k, make_value(k, w, 0));
      }
    }
  }
  for (int i = 0; i < sizes.shared_keys; ++i) {
    if (rng() % 2 == 0) {
      const std::string k = shared_key(i);
      rows.emplace_back(k, make_value(k, owner_of_shared(i, workers), 0));
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

void Counts::add(const Counts& o) {
  puts += o.puts;
  erases += o.erases;
  batches += o.batches;
  gets += o.gets;
  scans += o.scans;
  rows += o.rows;
  foreign_values += o.foreign_values;
}

Worker::Worker(int id, int workers, const Sizes& sizes, std::uint64_t seed, Shared& shared,
               Model model)
    : id_(id),
      workers_(workers),
      sizes_(sizes),
      shared_(shared),
      rng_(mix(seed) ^ mix(static_cast<std::uint64_t>(id) + 77)),
      model_(std::move(model)) {
  for (int i = 0; i < sizes_.shared_keys; ++i) {
    if (owner_of_shared(i, workers_) == id_) owned_shared_.push_back(i);
  }
}

std::string Worker::random_shared_key(bool owned_only) {
  if (owned_only && !owned_shared_.empty()) {
    return shared_key(owned_shared_[rng_() % owned_shared_.size()]);
  }
  return shared_key(static_cast<int>(rng_() % static_cast<std::uint64_t>(sizes_.shared_keys)));
}

std::string Worker::random_owned_key() {
  if (rng_() % 10 < 7 || owned_shared_.empty()) {
    return own_key(id_, static_cast<int>(rng_() % static_cast<std::uint64_t>(sizes_.own_keys)));
  }
  return random_shared_key(true);
}

Op Worker::next() {
  Op op;
  const std::uint64_t r = rng_() % 100;
  if (r < 22) {
    op.kind = Op::kPut;
    op.key = random_owned_key();
    op.value = make_value(op.key, id_, ++seq_);
  } else if (r < 30) {
    op.kind = Op::kErase;
    op.key = random_owned_key();
  } else if (r < 40) {
    op.kind = Op::kBatch;
    const int n = 2 + static_cast<int>(rng_() % 7);
    for (int i = 0; i < n; ++i) {
      WriteBatch::Op b;
      // Sometimes a key already in the batch: the last write wins.
      b.key = !op.batch_ops.empty() && rng_() % 6 == 0
                  ? op.batch_ops[rng_() % op.batch_ops.size()].key
                  : random_owned_key();
      b.erase = rng_() % 4 == 0;
      if (b.erase) {
        op.batch.erase(b.key);
      } else {
        b.value = make_value(b.key, id_, ++seq_);
        op.batch.put(b.key, b.value);
      }
      op.batch_ops.push_back(std::move(b));
    }
  } else if (r < 75) {
    op.kind = Op::kGet;
    op.key =
        rng_() % 2 == 0
            ? own_key(id_, static_cast<int>(rng_() % static_cast<std::uint64_t>(sizes_.own_keys)))
            : random_shared_key(false);
  } else {
    op.kind = Op::kScan;
    op.shared_range = rng_() % 2 == 0;
    const int n = op.shared_range ? sizes_.shared_keys : sizes_.own_keys;
    auto bound = [&]() -> std::optional<std::string> {
      if (rng_() % 10 < 3) return std::nullopt;
      const int i = static_cast<int>(rng_() % static_cast<std::uint64_t>(n));
      return op.shared_range ? shared_key(i) : own_key(id_, i);
    };
    std::optional<std::string> lo = bound();
    std::optional<std::string> hi = bound();
    if (lo && hi && *hi < *lo) std::swap(lo, hi);
    // The own range is always bounded by its prefix (the rest is others').
    const std::string prefix = op.shared_range ? kSharedPrefix : own_prefix(id_);
    op.scan.lower = lo ? *lo : prefix;
    op.scan.upper = hi ? *hi : upper_of_prefix(prefix);
    op.scan.reverse = rng_() % 10 < 3;
    const std::uint64_t l = rng_() % 10;
    op.limit = l < 6   ? 1 + static_cast<std::size_t>(rng_() % 40)
               : l < 9 ? 41 + static_cast<std::size_t>(rng_() % 160)
                       : SIZE_MAX;
  }
  shared_.issued[static_cast<std::size_t>(id_)].store(seq_, std::memory_order_release);
  return op;
}

void Worker::fail(const std::string& what) {
  if (failures_.size() < 10) {
    failures_.push_back("worker " + std::to_string(id_) + " (seq " + std::to_string(seq_) +
                        "): " + what);
  }
}

void Worker::check_foreign(const std::string& key, const std::string& value, const char* what) {
  ++counts_.foreign_values;
  const std::optional<ValueId> id = parse_value(key, value);
  if (!id) {
    fail(std::string(what) + " of '" + key + "': a value never written for this key (" +
         std::to_string(value.size()) + " bytes, starts '" + value.substr(0, 24) + "')");
    return;
  }
  const int owner = owner_of_shared(shared_index(key), workers_);
  if (id->worker != owner) {
    fail(std::string(what) + " of '" + key + "': written by worker " + std::to_string(id->worker) +
         ", but only worker " + std::to_string(owner) + " writes it");
    return;
  }
  const std::uint64_t issued =
      shared_.issued[static_cast<std::size_t>(owner)].load(std::memory_order_acquire);
  if (id->seq > issued) {
    fail(std::string(what) + " of '" + key + "': seq " + std::to_string(id->seq) +
         " which worker " + std::to_string(owner) + " had not written yet (issued " +
         std::to_string(issued) + ")");
  }
}

void Worker::check_get(const Op& op, const Result& r) {
  ++counts_.gets;
  const bool mine =
      !in_shared_range(op.key) || owner_of_shared(shared_index(op.key), workers_) == id_;
  if (!mine) {
    if (r.got) check_foreign(op.key, *r.got, "get");
    return;
  }
  const auto it = model_.find(op.key);
  const std::optional<std::string> want =
      it == model_.end() ? std::nullopt : std::optional<std::string>(it->second);
  if (r.got != want) {
    fail("get('" + op.key + "') returned " +
         (r.got ? "a value of " + std::to_string(r.got->size()) + " bytes, '" +
                      r.got->substr(0, 24) + "'"
                : std::string("nothing")) +
         "; the model has " + (want ? "'" + want->substr(0, 24) + "'" : std::string("nothing")));
  }
}

void Worker::check_scan(const Op& op, const Result& r) {
  ++counts_.scans;
  counts_.rows += r.rows.size();
  const std::string& lo = *op.scan.lower;
  const std::string& hi = *op.scan.upper;
  std::ostringstream where;
  where << (op.scan.reverse ? "reverse " : "") << "scan ['" << lo << "', '" << hi << "') limit "
        << (op.limit == SIZE_MAX ? std::string("none") : std::to_string(op.limit));
  if (r.rows.size() > op.limit) fail(where.str() + ": more rows than the limit");
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    const std::string& k = r.rows[i].first;
    if (k < lo || k >= hi) return fail(where.str() + ": key '" + k + "' out of bounds");
    if (i > 0) {
      const std::string& prev = r.rows[i - 1].first;
      const bool ordered = op.scan.reverse ? prev > k : prev < k;
      if (!ordered) {
        return fail(where.str() + ": '" + prev + "' then '" + k + "' (not strictly ordered)");
      }
    }
  }
  // The window the scan covered: all of [lo, hi) unless the limit cut it.
  const bool cut = r.rows.size() == op.limit && !r.rows.empty();
  auto in_window = [&](const std::string& k) {
    if (k < lo || k >= hi) return false;
    if (!cut) return true;
    return op.scan.reverse ? k >= r.rows.back().first : k <= r.rows.back().first;
  };
  // This worker's keys in the window: exactly the model's. Others': valid values.
  Model seen;
  for (const auto& [k, v] : r.rows) {
    const bool mine = !in_shared_range(k) || owner_of_shared(shared_index(k), workers_) == id_;
    if (mine) {
      seen.emplace(k, v);
    } else {
      check_foreign(k, v, "scan");
    }
  }
  Model want;
  for (auto it = model_.lower_bound(lo); it != model_.end() && it->first < hi; ++it) {
    if (in_window(it->first)) want.insert(*it);
  }
  if (seen != want) {
    std::string diff;
    for (const auto& [k, v] : want) {
      const auto s = seen.find(k);
      if (s == seen.end()) {
        diff = "'" + k + "' missing";
      } else if (s->second != v) {
        diff = "'" + k + "' has another value";
      }
      if (!diff.empty()) break;
    }
    if (diff.empty()) {
      for (const auto& [k, v] : seen) {
        if (!want.count(k)) {
          diff = "'" + k + "' is not in the model";
          break;
        }
      }
    }
    fail(where.str() + ": " + std::to_string(seen.size()) + " of this worker's keys, the model " +
         std::to_string(want.size()) + "; first difference: " + diff);
  }
}

void Worker::check(const Op& op, const Result& r) {
  switch (op.kind) {
    case Op::kPut:
      ++counts_.puts;
      model_[op.key] = op.value;
      break;
    case Op::kErase: {
      ++counts_.erases;
      const bool had = model_.erase(op.key) > 0;
      if (r.existed != had) {
        fail("erase('" + op.key + "') returned " + (r.existed ? "true" : "false") + "; the model " +
             (had ? "has" : "lacks") + " the key");
      }
      break;
    }
    case Op::kBatch:
      ++counts_.batches;
      for (const WriteBatch::Op& b : op.batch_ops) {
        if (b.erase) {
          model_.erase(b.key);
        } else {
          model_[b.key] = b.value;
        }
      }
      break;
    case Op::kGet: check_get(op, r); break;
    case Op::kScan: check_scan(op, r); break;
  }
}

}  // namespace corobtree::test::mt
