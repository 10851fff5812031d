#!/usr/bin/env bash
# corobtree-server against Debian's redis-server 7.0 under redis-benchmark, the
# same client settings for both (scripts/redis_bench.py has the details):
# -t set,get,mset, 50 clients, pipeline 1 and 16; durable (ours sync vs redis
# appendfsync always) and relaxed (ours relaxed vs appendfsync everysec); a data
# set 4x our pool with both servers' RSS. Writes results/redis_bench.json and
# results/redis_bench.md; scripts/bench_report.py puts the table into summary.md.
#   --quick          quarter-size runs and a 16 MiB pool (about a minute)
#   --server PATH    a corobtree-server binary (default: build-bench's, built here)
# The servers' databases go to $TMPDIR (default /tmp), which should be a disk
# (not tmpfs) for the durable runs to mean anything. About 3 minutes in full.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=()
SERVER=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=(--quick) ;;
    --server) SERVER=$2; shift ;;
    *) echo "usage: $0 [--quick] [--server PATH]" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=scripts/lib/deps.sh
. "$ROOT/scripts/lib/deps.sh"
ensure_packages redis-server redis-tools python3-redis

if [ -z "$SERVER" ]; then
  BUILD=$ROOT/build-bench
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOROBTREE_BUILD_TESTS=OFF \
    -DCOROBTREE_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" --target corobtree_server
  SERVER=$(find "$BUILD" -name corobtree-server -type f -perm -u+x | head -1)
  [ -n "$SERVER" ] || { echo "no corobtree-server binary in $BUILD" >&2; exit 1; }
fi
# A packaged redis-server also runs as a service on 6379: ours are separate
# processes on free ports, started and stopped here.
exec /usr/bin/python3 "$ROOT/scripts/redis_bench.py" --server "$SERVER" \
  --results "$ROOT/results" "${QUICK[@]}"
