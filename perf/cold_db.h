// The database of the cold-lookup benchmarks (cold_bench, thread_bench): N
// keys (8-byte big-endian integers, 100-byte values that start with the key),
// N = 9,500,000 (a file of a bit over 1 GiB), COROBTREE_COLD_KEYS=n overrides
// it, COROBTREE_BENCH_SMOKE=1 makes it 50,000.
//
// It is created once, by bulk_load in a child process (so the ~1.3 GB of
// generated pairs never count towards the caller's peak RSS), at
// COROBTREE_COLD_DB or else $TMPDIR/corobtree-cold-<N>.db, and reused while it
// opens and holds N keys. It is written under a temporary name and renamed into
// place, so an interrupted run never leaves a half-built file behind; nothing
// is ever deleted except that temporary file and a database with the wrong key
// count at the default path.
//
// Thread-safety: call from one thread (the benchmark's main thread).
#pragma once

#include <cstdint>
#include <string>

namespace corobtree::bench {

// N, the cold database's key count.
std::uint64_t cold_key_count();

// Returns the path of a database with cold_key_count() keys, building it if
// needed, or an empty path and the reason in `error`. Remembers the outcome.
std::string ensure_cold_db(std::string& error);

}  // namespace corobtree::bench
