#!/usr/bin/env bash
# Cold point lookups against the device's ceiling: builds Release, runs
# perf/cold_bench (a >1 GiB database, the default 64 MiB pool, O_DIRECT, io_uring and
# pread, 1..128 concurrent lookup tasks on one thread), then fio 4 KiB random
# O_DIRECT reads (io_uring engine) on the same database file at the same queue
# depths, then fio sequential 128 KiB O_DIRECT reads for the cold full scan
# (BM_ColdScan), and writes results/cold_bench.json, results/fio_cold.json
# ({"qd": iops}), results/fio_seq.json ({"MBps": ...}), results/cold.md (the
# comparison tables) and results/cold_qd.png.
#   --quick   smoke-size database (50,000 keys) and 2 s fio runs
# COROBTREE_COLD_DB picks the database path (default
# $TMPDIR/corobtree-cold-<keys>.db); it is built once and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/lib/deps.sh
. "$ROOT/scripts/lib/deps.sh"
ensure_packages fio python3-matplotlib
ensure_packages cmake ninja-build g++ pkg-config liburing-dev libbenchmark-dev python3

BUILD=$ROOT/build-bench
RESULTS=$ROOT/results
mkdir -p "$RESULTS"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOROBTREE_BUILD_TESTS=OFF \
  -DCOROBTREE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target cold_bench

if [ "$QUICK" -eq 1 ]; then
  KEYS=50000; MIN_TIME=0.5; FIO_SECONDS=2
else
  KEYS=${COROBTREE_COLD_KEYS:-9500000}; MIN_TIME=2; FIO_SECONDS=5
fi
export COROBTREE_COLD_KEYS=$KEYS
export COROBTREE_COLD_DB=${COROBTREE_COLD_DB:-${TMPDIR:-/tmp}/corobtree-cold-${KEYS}.db}

# Earlier benchmarks leave dirty pages whose write-back would compete with
# these reads for the disk: flush them first. The database is built first if
# it is missing, and untimed random reads (FIO_SECONDS) follow the sync: this VM's
# disk serves the first seconds of reads after heavy writes at a fraction of
# its rate (seen: the cold scan at 284 MB/s in a full run, 771 right after).
if [ ! -f "$COROBTREE_COLD_DB" ]; then
  "$BUILD/perf/cold_bench" --benchmark_filter='BM_ColdGet/uring/tasks:1/' \
    --benchmark_min_time=0.01 >/dev/null
fi
sync
fio --name=warmup --filename="$COROBTREE_COLD_DB" --readonly --rw=randread --bs=4k --direct=1 \
  --ioengine=io_uring --iodepth=32 --runtime="$FIO_SECONDS" --time_based --output-format=terse \
  >/dev/null 2>&1 || true
echo "=== cold_bench: $KEYS keys, default (64 MiB) pool, O_DIRECT ($COROBTREE_COLD_DB)"
"$BUILD/perf/cold_bench" --benchmark_min_time="$MIN_TIME" \
  --benchmark_out="$RESULTS/cold_bench.json" --benchmark_out_format=json
[ -f "$COROBTREE_COLD_DB" ] || { echo "no database at $COROBTREE_COLD_DB" >&2; exit 1; }

echo "=== fio: 4 KiB random O_DIRECT reads (io_uring engine) on the database file"
FIO_JSON=$RESULTS/fio_cold.json
echo "{" >"$FIO_JSON"
first=1
for qd in 1 4 16 64 128; do
  iops=$(fio --name=coldread --filename="$COROBTREE_COLD_DB" --readonly --rw=randread --bs=4k \
    --direct=1 --ioengine=io_uring --iodepth="$qd" --runtime="$FIO_SECONDS" --time_based \
    --output-format=json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["read"]["iops"])')
  echo "  qd $qd: $iops IOPS"
  [ $first -eq 1 ] || echo "," >>"$FIO_JSON"
  first=0
  printf '  "%s": %s' "$qd" "$iops" >>"$FIO_JSON"
done
printf '\n}\n' >>"$FIO_JSON"

# The cold full scan's ceiling: sequential 128 KiB O_DIRECT reads of the file.
echo "=== fio: sequential 128 KiB O_DIRECT reads (io_uring engine, queue depth 8) of the database file"
fio --name=coldseq --filename="$COROBTREE_COLD_DB" --readonly --rw=read --bs=128k \
  --direct=1 --ioengine=io_uring --iodepth=8 --runtime="$FIO_SECONDS" --time_based \
  --output-format=json 2>/dev/null |
  /usr/bin/python3 -c 'import json,sys; print(json.dumps({"MBps": json.load(sys.stdin)["jobs"][0]["read"]["bw_bytes"] / 1e6}))' \
  >"$RESULTS/fio_seq.json"
cat "$RESULTS/fio_seq.json"

/usr/bin/python3 - "$RESULTS" <<'PY'
import json, os, sys

results = sys.argv[1]
with open(os.path.join(results, "cold_bench.json")) as f:
    bench = json.load(f)
with open(os.path.join(results, "fio_cold.json")) as f:
    fio = {int(k): float(v) for k, v in json.load(f).items()}

ours = {"uring": {}, "pread": {}, "uring_pool32m": {}}
reads = {}  # disk reads per lookup
extra = {}
for b in bench["benchmarks"]:
    if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
        continue
    if not b["name"].startswith("BM_ColdGet/"):
        continue
    parts = b["name"].split("/")  # BM_ColdGet/<variant>/tasks:N/real_time
    variant, n = parts[1], int(parts[2].split(":")[1])
    ours.setdefault(variant, {})[n] = b["items_per_second"]
    reads[(variant, n)] = b.get("reads_per_lookup", 0.0)
    extra[(variant, n)] = b

ns = sorted(set(fio) | set(ours["uring"]) | set(ours["pread"]))
fmt = lambda v: f"{v:,.0f}" if v is not None else "n/a"
pct = lambda a, b: f"{a / b:.0%}" if a and b else "n/a"
lines = [
    "| N | ours io_uring lookups/s | ours pread lookups/s | fio IOPS | ours/fio |",
    "|---:|---:|---:|---:|---:|",
]
for n in ns:
    u, p, q = ours["uring"].get(n), ours["pread"].get(n), fio.get(n)
    lines.append(f"| {n} | {fmt(u)} | {fmt(p)} | {fmt(q)} | {pct(u, q)} |")
lines.append("")
lines.append("ours/fio = ours io_uring lookups/s (default options: 64 MiB pool) over fio IOPS at queue depth N.")
lines.append("")
lines.append("Diagnostics: device reads/s of the io_uring runs (lookups/s x reads per lookup), and")
lines.append("io_uring with a 32 MiB pool that holds every inner page (about one read per lookup).")
lines.append("")
lines.append("| N | 64 MiB pool: reads/lookup | reads/s | reads/fio | 32 MiB pool: lookups/s | reads/lookup | lookups/fio |")
lines.append("|---:|---:|---:|---:|---:|---:|---:|")
for n in ns:
    u, q = ours["uring"].get(n), fio.get(n)
    r = reads.get(("uring", n))
    rs = u * r if u and r else None
    b = ours.get("uring_pool32m", {}).get(n)
    rb = reads.get(("uring_pool32m", n))
    lines.append(f"| {n} | {r:.2f} | {fmt(rs)} | {pct(rs, q)} | {fmt(b)} | "
                 f"{rb if rb is None else f'{rb:.2f}'} | {pct(b, q)} |" if r is not None else
                 f"| {n} | n/a | n/a | n/a | {fmt(b)} | n/a | {pct(b, q)} |")
rows = [
    f"- {variant} N={n}: hit_rate {b.get('hit_rate', 0):.3f}, "
    f"reads/lookup {b.get('reads_per_lookup', 0):.3f}, peak RSS {b.get('peak_rss_mib', 0):.1f} MiB"
    + (f", max in flight {b['max_in_flight']:.0f}, completions/enter "
       f"{b['completions_per_enter']:.1f}" if "max_in_flight" in b else "")
    for (variant, n), b in sorted(extra.items())
]
# The cold full scan (BM_ColdScan/<variant>) against fio's sequential reads.
seq_path = os.path.join(results, "fio_seq.json")
fio_seq = json.load(open(seq_path))["MBps"] if os.path.exists(seq_path) else None
scan_rows = [b for b in bench["benchmarks"]
             if b["name"].startswith("BM_ColdScan/") and not b.get("error_occurred")]
if scan_rows:
    rows += ["", "Cold full scan: one Cursor over the whole database, first() to the end, O_DIRECT, "
             "64 MiB pool (variants without read-ahead stop after 4 s); MB/s = pages read x page "
             "size / time; fio = sequential 128 KiB O_DIRECT reads at queue depth 8.", "",
             "| variant | entries/s | MB/s | whole file | fio MB/s | ours/fio |",
             "|---|---:|---:|---|---:|---:|"]
    for b in scan_rows:
        variant = b["name"].split("/")[1]
        mbps = b.get("MB_per_s", 0.0)
        rows.append(f"| {variant} | {fmt(b['items_per_second'])} | {mbps:,.0f} | "
                    f"{'yes' if b.get('complete') else 'no'} | {fmt(fio_seq)} | "
                    f"{pct(mbps, fio_seq)} |")
table = "\n".join(lines + [""] + rows) + "\n"
with open(os.path.join(results, "cold.md"), "w") as f:
    f.write(table)
print(table)

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib missing: no plot")
    sys.exit(0)
fig, ax = plt.subplots(figsize=(7, 4.5))
for label, series in (("ours io_uring", ours["uring"]), ("ours pread", ours["pread"]),
                      ("ours io_uring, 32 MiB pool", ours.get("uring_pool32m", {})),
                      ("fio io_uring (IOPS)", fio)):
    if not series:
        continue
    xs = sorted(series)
    ax.plot(xs, [series[x] for x in xs], marker="o", label=label)
ax.set_xscale("log", base=2)
ax.set_xlabel("concurrent lookups N (fio: queue depth)")
ax.set_ylabel("lookups/s (fio: 4 KiB reads/s)")
ax.set_title("cold point lookups, default 64 MiB pool, O_DIRECT")
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(results, "cold_qd.png"), dpi=120)
print("plot:", os.path.join(results, "cold_qd.png"))
PY
echo "=== results in $RESULTS/ (cold.md, cold_bench.json, fio_cold.json)"
