// The workload of tests/mt_differential_test.cc: one Worker per thread (or per
// coroutine) draws a seeded random mix of put / erase / write(WriteBatch) /
// get / scan and checks every result against what it can know.
//
// Keys: each worker w has its own range "o<w>/<i>" (nobody else touches it),
// and all workers share the range "s/<i>". A shared key is written only by its
// owner (owner_of_shared(i)), so every key has one writer and the last value
// of every key is known; everybody reads everything, and the shared range's
// keys of all owners sit interleaved in the same leaves.
//
// Values name their key, their writer and the writer's sequence number
// ("<key>|<w>|<seq>|<filler>", the filler a pure function of the three, from
// 0 bytes to a few overflow pages). A reader can thus tell whether a value it
// sees for a key of another worker is one the owner wrote for that key (and
// not garbage, a torn value or another key's value), and that the owner had
// started writing it (seq <= the owner's published sequence).
//
// What a worker checks:
//  * its own keys (own range, owned shared keys): every get, erase result and
//    scan window equals its model exactly, at every step;
//  * other workers' shared keys: every value is one the owner wrote for them;
//  * every scan: strictly ordered in scan order, within its bounds, at most
//    `limit` rows.
// At the end the union of the workers' models is the whole database.
//
// Thread-safety: a Worker is used by one thread (or task) at a time; the
// Shared block is read and written by all.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <corobtree/cursor.h>
#include <corobtree/write_batch.h>

namespace corobtree::test::mt {

using Model = std::map<std::string, std::string>;
using Rows = std::vector<std::pair<std::string, std::string>>;

struct Sizes {
  int own_keys = 600;      // per worker
  int shared_keys = 1200;  // in all
};

std::string own_prefix(int worker);
std::string own_key(int worker, int i);
inline constexpr const char* kSharedPrefix = "s/";
std::string shared_key(int i);
int owner_of_shared(int i, int workers);

// The value worker `w` writes to `key` as its write number `seq`.
std::string make_value(const std::string& key, int w, std::uint64_t seq);

struct ValueId {
  int worker;
  std::uint64_t seq;
};
// Parses a value and re-derives its filler: nullopt unless `value` is exactly
// make_value(key, w, seq) for some w and seq.
std::optional<ValueId> parse_value(const std::string& key, const std::string& value);

// The initial contents (bulk_load): half the keys of every range, each with
// its owner's seq 0 value, sorted.
Rows initial_rows(int workers, const Sizes& sizes, std::uint64_t seed);

// What all workers share: each one's published write sequence.
struct Shared {
  explicit Shared(int workers) : issued(static_cast<std::size_t>(workers)) {}
  std::vector<std::atomic<std::uint64_t>> issued;  // highest seq a worker began to write
};

struct Op {
  enum Kind { kPut, kErase, kBatch, kGet, kScan };
  Kind kind = kGet;
  std::string key;
  std::string value;
  WriteBatch batch;
  std::vector<WriteBatch::Op> batch_ops;  // the batch, for the model
  ScanOptions scan;
  std::size_t limit = SIZE_MAX;
  bool shared_range = false;  // a scan of the shared range (else of the own range)
};

struct Result {
  std::optional<std::string> got;
  bool existed = false;
  Rows rows;
};

struct Counts {
  std::uint64_t puts = 0, erases = 0, batches = 0, gets = 0, scans = 0, rows = 0;
  std::uint64_t foreign_values = 0;  // values of other workers' keys checked
  void add(const Counts& o);
};

class Worker {
 public:
  // `model` starts as this worker's part of initial_rows().
  Worker(int id, int workers, const Sizes& sizes, std::uint64_t seed, Shared& shared, Model model);

  // The next operation; a write is published in Shared before it is returned.
  Op next();
  // Checks `r` against the model (recording a failure) and applies a write.
  void check(const Op& op, const Result& r);
  // Records an exception thrown by an operation.
  void fail(const std::string& what);

  int id() const noexcept { return id_; }
  const Model& model() const noexcept { return model_; }
  const std::vector<std::string>& failures() const noexcept { return failures_; }
  const Counts& counts() const noexcept { return counts_; }

 private:
  std::string random_owned_key();
  std::string random_shared_key(bool owned_only);
  void check_get(const Op& op, const Result& r);
  void check_scan(const Op& op, const Result& r);
  void check_foreign(const std::string& key, const std::string& value, const char* what);

  const int id_;
  const int workers_;
  const Sizes sizes_;
  Shared& shared_;
  std::mt19937_64 rng_;
  std::uint64_t seq_ = 0;
  Model model_;  // own range and owned shared keys, exactly
  std::vector<int> owned_shared_;
  std::vector<std::string> failures_;
  Counts counts_;
};

}  // namespace corobtree::test::mt
