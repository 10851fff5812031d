#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang 14, ASan + UBSan) and runs
# each for its share of the time (docs/contributing.md, "Fuzzing").
#   scripts/fuzz.sh [MINUTES]   run long (default 10 minutes in all, split
#                               across the targets); the corpus grows in
#                               $COROBTREE_FUZZ_WORK/corpus/<target> (default
#                               build-fuzz/work, outside git), seeded from
#                               tests/fuzz/corpus/<target>
#   scripts/fuzz.sh --ci        CI: 15 s per target from the seeds alone, in a
#                               fresh temporary corpus
# Options: --targets "data_file wal" (default: all), --build DIR (default
# build-fuzz). Prints per target the executions and libFuzzer's coverage
# (cov: edges, ft: features) at start (the loaded corpus) and at the end.
# Exits 1 if any target found a crash, leak, timeout or out-of-memory; the
# input is in $WORK/artifacts/<target>/ (how to reproduce: docs/contributing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MINUTES=10
CI=0
TARGETS="data_file wal page escape"
BUILD_DIR=$ROOT/build-fuzz
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) CI=1 ;;
    --targets) TARGETS=$2; shift ;;
    --build) BUILD_DIR=$2; shift ;;
    [0-9]*) MINUTES=$1 ;;
    *) echo "usage: $0 [MINUTES] [--ci] [--targets \"T...\"] [--build DIR]" >&2; exit 2 ;;
  esac
  shift
done

CXX=${COROBTREE_FUZZ_CXX:-clang++-14}
command -v "$CXX" >/dev/null || CXX=clang++

echo "=== build the fuzz targets in $BUILD_DIR ($CXX)"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX" "${launcher[@]}" -DCOROBTREE_FUZZ=ON -DCOROBTREE_WERROR=ON \
  -DCOROBTREE_BUILD_TESTS=OFF -DCOROBTREE_BUILD_PERF=OFF -DCOROBTREE_BUILD_EXAMPLES=OFF >/dev/null
build_targets=()
for t in $TARGETS; do build_targets+=("fuzz_$t"); done
cmake --build "$BUILD_DIR" -j "${COROBTREE_FUZZ_JOBS:-$(nproc)}" --target "${build_targets[@]}"

# The targets' scratch files (one directory per process inside), in tmpfs when
# there is one; removed at the end even if a target crashed.
SCRATCH=$(mktemp -d "$([ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/corobtree-fuzz-run.XXXXXX")
export COROBTREE_FUZZ_TMPDIR=$SCRATCH
trap 'rm -rf "$SCRATCH"' EXIT
if [ "$CI" -eq 1 ]; then
  WORK=$(mktemp -d)
  trap 'rm -rf "$SCRATCH" "$WORK"' EXIT
  SECONDS_EACH=15
else
  WORK=${COROBTREE_FUZZ_WORK:-$BUILD_DIR/work}
  n=$(wc -w <<<"$TARGETS")
  SECONDS_EACH=$((MINUTES * 60 / n))
  [ "$SECONDS_EACH" -ge 1 ] || SECONDS_EACH=1
fi

# The largest input per target: a few 512-byte pages, one page and a key, text.
max_len() {
  case "$1" in
    data_file|wal) echo 8192 ;;
    page) echo 600 ;;
    *) echo 512 ;;
  esac
}

declare -a REPORT=()
FAILED=0
for t in $TARGETS; do
  corpus=$WORK/corpus/$t
  artifacts=$WORK/artifacts/$t
  log=$WORK/logs/$t.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  echo "=== fuzz_$t for ${SECONDS_EACH}s (corpus $corpus)"
  set +e
  # Leaks are reported (ASan's default); -timeout: one input taking 10 s is a hang.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    COROBTREE_IO=pread "$BUILD_DIR/tests/fuzz/fuzz_$t" "$corpus" "$ROOT/tests/fuzz/corpus/$t" \
    -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  start=$(grep -m1 -E 'INITED' "$log" | grep -oE 'cov: [0-9]+ ft: [0-9]+' || echo "cov: ? ft: ?")
  end=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || echo "$start")
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  [ -n "$execs" ] || execs=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -E 's/^#([0-9]+).*/\1/')
  line=$(printf '%-9s %9s execs  start %-20s end %s' "$t" "${execs:-?}" "$start" "$end")
  if [ "$rc" -ne 0 ]; then
    FAILED=1
    # What went wrong, in the summary (the last lines a CI report shows).
    why=$(grep -m1 -E 'ERROR|corobtree fuzz target|deadly signal' "$log" | cut -c1-160 || true)
    REPORT+=("FAIL  $line (exit $rc; see $log)" "        ${why:-no error line in the log}")
    if [ "$CI" -eq 1 ]; then
      # The temporary work dir goes away: keep the input, then the log's end.
      for f in "$artifacts"/*; do [ -f "$f" ] && { echo "input $f (base64):"; base64 -w0 "$f"; echo; }; done
      tail -60 "$log"
    fi
    grep -E 'ERROR|SUMMARY|corobtree fuzz target|Test unit written|#[0-9]+ 0x' "$log" | head -24 || true
  else
    REPORT+=("ok    $line")
  fi
done

echo
echo "=== fuzz summary (${SECONDS_EACH}s per target)"
for r in "${REPORT[@]}"; do echo "  $r"; done
exit "$FAILED"
