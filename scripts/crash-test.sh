#!/usr/bin/env bash
# The long SIGKILL kill loop: builds crash_kill_test and crash_child (Release,
# into build-crash) and kills the child N times (default 200, at least 200),
# split over io_uring/pread x sync/relaxed durability; see
# tests/crash_kill_test.cc. Prints the kills, the commits verified and the
# acknowledged commits lost (which must be 0). Extra arguments after N go to
# the test binary (e.g. `-- --seed=42` to replay a transaction stream).
#   scripts/crash-test.sh [N] [test args...]
# On a fresh Debian 12 machine, run as root, it first installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KILLS=${1:-200}
[ $# -gt 0 ] && shift
if ! [[ "$KILLS" =~ ^[0-9]+$ ]] || [ "$KILLS" -lt 200 ]; then
  echo "usage: $0 [KILLS >= 200] [test args...]" >&2
  exit 2
fi

# shellcheck source=scripts/lib/deps.sh
. "$ROOT/scripts/lib/deps.sh"
ensure_packages cmake ninja-build g++ pkg-config liburing-dev libboost-test-dev

BUILD=${COROBTREE_CRASH_BUILD:-$ROOT/build-crash}
echo "=== configure + build $BUILD (Release)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOROBTREE_BUILD_TESTS=ON \
  -DCOROBTREE_BUILD_PERF=OFF -DCOROBTREE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target crash_kill_test crash_child

LOG="$BUILD/crash-test.log"
echo "=== crash_kill_test: $KILLS kills (log: $LOG)"
set +e
COROBTREE_CRASH_KILLS=$KILLS "$BUILD/tests/crash_kill_test" --log_level=message \
  --report_level=short "$@" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e

total=$(grep -a '^\[crash\] total:' "$LOG" | tail -1 || true)
field() { sed -nE "s/.* $1=([0-9]+).*/\1/p" <<<"$total"; }
echo
echo "=== summary"
grep -a -o '\[crash\] [a-z]*/[a-z]*: .*' "$LOG" | sed 's/^/  /' || true
if [ -z "$total" ]; then
  echo "  no summary: the test did not finish (exit $rc)"
  exit 1
fi
echo "  kills:                          $(field kills)"
echo "  commits verified:               $(field commits_verified)"
echo "  lost acknowledged commits:      $(field lost_acked)  (must be 0)"
echo "  other failures:                 $(field failures)"
if [ "$rc" -ne 0 ] || [ "$(field lost_acked)" != 0 ] || [ "$(field failures)" != 0 ]; then
  echo "FAIL (exit $rc)"
  exit 1
fi
echo "ok"
