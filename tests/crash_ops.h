// The operation stream of the SIGKILL crash test, shared by the child that
// runs it (tests/crash_child.cc) and the parent that checks what survived
// (tests/crash_kill_test.cc).
//
// Transaction n is a pure function of (seed, n): a single put, a single erase,
// or a WriteBatch of 2-20 puts and erases. Its keys all lie in lane n % kLanes
// ("L2/k0173" belongs to lane 2), and its values name it ("<n>.<i>:" followed
// by random bytes, 0 bytes to 20 KiB, so some take overflow pages). No
// transaction reads the database, so the state after a set of transactions is
// the model built by applying them in increasing n.
//
// The child runs W writers (W divides kLanes): writer w commits n = start + w,
// start + w + W, ... one after another. Every lane thus belongs to one writer,
// whose transactions in that lane commit in increasing order; at most one of
// them (the one after its last acknowledged) can be committed unacknowledged.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace corobtree::crash {

constexpr int kLanes = 4;
constexpr std::uint64_t kKeysPerLane = 300;

using Model = std::map<std::string, std::string>;

struct Change {
  bool erase;
  std::string key;
  std::string value;
};

struct Txn {
  enum Kind { kPut, kErase, kBatch };
  Kind kind;
  std::vector<Change> changes;  // one for kPut and kErase
};

inline std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline int lane_of_txn(std::uint64_t n) { return static_cast<int>(n % kLanes); }

inline std::string lane_key(int lane, std::uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "L%d/k%04llu", lane, static_cast<unsigned long long>(index));
  return buf;
}

// The lane of a key made by lane_key (-1 for anything else).
inline int lane_of_key(const std::string& key) {
  if (key.size() < 3 || key[0] != 'L' || key[2] != '/' || key[1] < '0' || key[1] >= '0' + kLanes) {
    return -1;
  }
  return key[1] - '0';
}

// The key transaction n puts first: later transactions erase it.
inline std::string primary_key(std::uint64_t seed, std::uint64_t n) {
  return lane_key(lane_of_txn(n), mix(seed ^ mix(n)) % kKeysPerLane);
}

inline std::string make_value(std::mt19937_64& rng, std::uint64_t n, int i) {
  std::string v = std::to_string(n) + "." + std::to_string(i) + ":";
  const std::uint64_t r = rng() % 100;
  std::uint64_t extra = 0;
  if (r < 60) {
    extra = rng() % 120;
  } else if (r < 88) {
    extra = 120 + rng() % 900;
  } else if (r < 98) {
    extra = 1100 + rng() % 4000;  // one or two overflow pages
  } else {
    extra = 5000 + rng() % 15000;  // a chain of them
  }
  for (std::uint64_t j = 0; j < extra; ++j) v.push_back(static_cast<char>(rng()));
  return v;
}

// A key of n's lane to erase: mostly one an earlier transaction of the lane put.
inline std::string erase_key(std::mt19937_64& rng, std::uint64_t seed, std::uint64_t n) {
  const std::uint64_t back = kLanes * (1 + rng() % 64);
  if (rng() % 4 != 0 && back <= n) return primary_key(seed, n - back);
  return lane_key(lane_of_txn(n), rng() % kKeysPerLane);
}

inline Txn make_txn(std::uint64_t seed, std::uint64_t n) {
  std::mt19937_64 rng(mix(seed) ^ mix(n * 2 + 1));
  const int lane = lane_of_txn(n);
  const std::uint64_t r = rng() % 100;
  Txn t;
  if (r < 40) {
    t.kind = Txn::kPut;
    t.changes.push_back(Change{false, primary_key(seed, n), make_value(rng, n, 0)});
  } else if (r < 60) {
    t.kind = Txn::kErase;
    t.changes.push_back(Change{true, erase_key(rng, seed, n), {}});
  } else {
    t.kind = Txn::kBatch;
    const int size = 2 + static_cast<int>(rng() % 19);
    t.changes.push_back(Change{false, primary_key(seed, n), make_value(rng, n, 0)});
    for (int i = 1; i < size; ++i) {
      if (rng() % 10 < 3) {
        t.changes.push_back(Change{true, erase_key(rng, seed, n), {}});
      } else {
        // Sometimes a key already in this batch (the last write wins).
        const std::string key = rng() % 8 == 0 ? t.changes[rng() % t.changes.size()].key
                                               : lane_key(lane, rng() % kKeysPerLane);
        t.changes.push_back(Change{false, key, make_value(rng, n, i)});
      }
    }
  }
  return t;
}

inline void apply(Model& model, const Txn& t) {
  for (const Change& c : t.changes) {
    if (c.erase) {
      model.erase(c.key);
    } else {
      model[c.key] = c.value;
    }
  }
}

}  // namespace corobtree::crash
