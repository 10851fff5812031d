#!/usr/bin/env bash
# Builds and runs the whole test suite, the way CI does:
#   1. g++ (warnings as errors), ctest                    -- default backend (auto)
#   2. the same binaries again with COROBTREE_IO=pread   -- the fallback backend
#   3. g++ with AddressSanitizer + UndefinedBehaviorSanitizer, ctest
#   4. clang++ (warnings as errors) with a shared libcorobtree, ctest
#   5. clang++ with ThreadSanitizer over the cross-thread tests (runtime, sync
#      primitives, tasks, event loop, the multi-thread database tests, the
#      outside-loop hook, the Asio adapter, the server's commands): 0 reports
#   6. the format check (.clang-format) and clang-tidy (.clang-tidy)
#   7. a smoke run of every perf binary with tiny sizes (none may leave a file)
#   8. the libFuzzer targets (clang 14), 15 s each from the seed corpora
# On a fresh Debian 12 machine, run as root, it first installs what is missing.
# Options: --quick (skip the clang pass), --jobs N.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
JOBS=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --jobs) JOBS=$2; shift ;;
    *) echo "usage: $0 [--quick] [--jobs N]" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=scripts/lib/deps.sh
. "$ROOT/scripts/lib/deps.sh"
# The peers' libraries let the perf smoke run build and exercise peer_bench.
ensure_packages cmake ninja-build g++ clang clang-format clang-tidy pkg-config liburing-dev \
  libboost-test-dev libbenchmark-dev liblmdb-dev libsqlite3-dev librocksdb-dev libleveldb-dev \
  clang-14 libclang-rt-14-dev libasio-dev redis-tools python3-redis

declare -a SUMMARY=()
declare -a CTEST_ARGS=()  # extra ctest arguments for the next run_ctest
TOTAL_PASSED=0
TOTAL_FAILED=0
FAILED_PHASES=0

# run_ctest PHASE BUILD_DIR [ENV=VAL ...]: runs ctest and records the counts.
run_ctest() {
  local phase=$1 dir=$2; shift 2
  local log="$dir/ctest-$phase.log"
  echo "=== [$phase] ctest in $dir $*"
  set +e
  env "$@" ctest --test-dir "$dir" --output-on-failure -j "$JOBS" "${CTEST_ARGS[@]}" 2>&1 |
    tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local line passed failed total
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 || true)
  failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
  if [ -z "$line" ]; then failed=1; total=1; fi
  passed=$((total - failed))
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$total" -eq 0 ]; then
    FAILED_PHASES=$((FAILED_PHASES + 1))
    SUMMARY+=("FAIL  $phase: $passed/$total ctest entries passed")
  else
    SUMMARY+=("ok    $phase: $passed/$total ctest entries passed")
  fi
}

# build DIR [cmake args...]
build() {
  local dir=$1; shift
  echo "=== configure + build $dir $*"
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCOROBTREE_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

record_step() {  # record_step NAME CMD...
  local name=$1; shift
  if "$@"; then SUMMARY+=("ok    $name"); else SUMMARY+=("FAIL  $name"); FAILED_PHASES=$((FAILED_PHASES + 1)); fi
}

BUILD=${COROBTREE_BUILD_ROOT:-$ROOT/build-tests}
# The space left where the builds and the tests' files go: a full disk shows up
# as compiler or test failures far from its cause, so the log says it first.
df -h "$ROOT" "${TMPDIR:-/tmp}" || true

build "$BUILD/gcc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++
run_ctest gcc "$BUILD/gcc"
# The pread pass: every database on pread (the backend matrix keeps only its
# pread entries, which the pass above ran too); randomized workloads at half
# size.
run_ctest gcc-pread "$BUILD/gcc" COROBTREE_IO=pread COROBTREE_TEST_SCALE=0.5

build "$BUILD/asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=g++ -DCOROBTREE_SANITIZE=ON \
  -DCOROBTREE_BUILD_PERF=OFF
# Long randomized workloads run at 15% of their size under the sanitizers
# and at half size in the pread and clang passes (the full size runs in the
# gcc pass).
run_ctest gcc-asan-ubsan "$BUILD/asan" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 COROBTREE_TEST_SCALE=0.15

if [ "$QUICK" -eq 0 ]; then
  # The shared library here: the examples and the install test link libcorobtree.so.
  build "$BUILD/clang" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DBUILD_SHARED_LIBS=ON
  run_ctest clang-shared "$BUILD/clang" COROBTREE_TEST_SCALE=0.5
  record_step "clang-tidy (.clang-tidy) over io/, engine/, tools/" \
    env COROBTREE_TIDY_BUILD="$BUILD/clang" bash "$ROOT/scripts/check-tidy.sh"
fi
# ThreadSanitizer over the tests that use several threads (and the primitives
# they share). Only those targets are built; any report fails the test
# (halt_on_error), so the phase passes with 0 reports.
TSAN_TESTS=(runtime_test sync_primitives_test task_test event_loop_test mt_differential_test
  mt_handoff_test cursor_concurrency_test cursor_readahead_test external_loop_test asio_adapter_test
  server_protocol_test concurrent_checkpoint_test pinned_value_concurrency_test
  cursor_zero_copy_test)
echo "=== configure + build $BUILD/tsan (${TSAN_TESTS[*]})"
cmake -S "$ROOT" -B "$BUILD/tsan" -G Ninja -DCOROBTREE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 -DCOROBTREE_BUILD_PERF=OFF -DCOROBTREE_BUILD_EXAMPLES=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
cmake --build "$BUILD/tsan" -j "$JOBS" --target "${TSAN_TESTS[@]}"
CTEST_ARGS=(-R "^($(IFS='|'; echo "${TSAN_TESTS[*]}"))\$")
run_ctest clang-tsan "$BUILD/tsan" TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
CTEST_ARGS=()

record_step "format check (.clang-format)" bash "$ROOT/scripts/check-format.sh"

# Each binary runs with TMPDIR set to a fresh directory, which must be empty
# afterwards but for the kept cold databases (corobtree-cold-*.db): a bench
# that leaves a file (a database's -wal log, say) fails the step.
perf_smoke() {
  local ok=0 tmp left
  tmp=$(mktemp -d)
  mkdir "$tmp/t"
  for b in "$BUILD"/gcc/perf/*_bench; do
    [ -x "$b" ] || continue
    echo "=== perf smoke: $b"
    if ! TMPDIR="$tmp/t" COROBTREE_BENCH_FILE="$tmp/smoke.dat" COROBTREE_BENCH_FILE_MB=16 \
        COROBTREE_BENCH_SMOKE=1 "$b" --benchmark_min_time=0.01 >"$tmp/out.txt" 2>&1; then
      cat "$tmp/out.txt"; ok=1
    fi
    left=$(find "$tmp/t" -mindepth 1 ! -name 'corobtree-cold-*.db' -print)
    if [ -n "$left" ]; then
      echo "$b left files behind in TMPDIR:"; echo "$left"; ok=1
      find "$tmp/t" -mindepth 1 -delete
    fi
  done
  rm -rf "$tmp"
  return $ok
}
record_step "perf smoke run (tiny sizes)" perf_smoke

# Only the fuzz binaries are built here (scripts/fuzz.sh); a crash, leak or
# hang fails the step and prints the input.
record_step "fuzz (libFuzzer, 15 s per target)" \
  env COROBTREE_FUZZ_JOBS="$JOBS" bash "$ROOT/scripts/fuzz.sh" --ci --build "$BUILD/fuzz"

echo
echo "=== summary"
for s in "${SUMMARY[@]}"; do echo "  $s"; done
echo "ctest: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$FAILED_PHASES" -eq 0 ]
