#!/usr/bin/env python3
"""Turns results/*.json into results/summary.md and PNG plots.

Reads disk_bench.json (Google Benchmark) and fio_randread.json ({qd: iops});
when present, buffer_pool_bench.json, btree_bench.json, and peer_bench.json /
commit_bench.json for the comparison with LMDB, SQLite, RocksDB and LevelDB, and
thread_bench.json for the thread-scaling table, durable_ab/ (corobtree and SQLite,
one durable writer, in alternating rounds) and redis_bench.json
(scripts/redis-bench.sh) for corobtree-server vs redis-server.
"""
import json
import os
import re
import sys


def load_disk(results):
    with open(os.path.join(results, "disk_bench.json")) as f:
        data = json.load(f)
    iops = {}  # (backend, qd) -> items/s
    for b in data["benchmarks"]:
        m = re.match(r"BM_RandomRead4K/(\w+)/qd:(\d+)", b["name"])
        if m and b.get("run_type", "iteration") == "iteration":
            iops[(m.group(1), int(m.group(2)))] = b["items_per_second"]
    return iops, data.get("context", {})


def pool_lines(results):
    path = os.path.join(results, "buffer_pool_bench.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        data = json.load(f)
    rows = {b["name"]: b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"}
    out = ["", "### Buffer pool", ""]
    for name in ("BM_HotFetch", "BM_HotFetchTryCached"):
        b = rows.get(name)
        if b:
            out.append(
                f"- `{name}`: {b['cpu_time']:.1f} ns CPU per fetch+release "
                f"({b['real_time']:.1f} ns wall); metadata {b['metadata_bytes_per_frame']:.0f} bytes/frame"
            )
    out += [
        "",
        "Zipf (theta 0.99) over 16384 pages with 1638 frames, 32 tasks on one thread, O_DIRECT:",
        "",
        "| backend | fetches/s | hit rate | ideal hit rate (hottest pages cached) | disk reads |",
        "|---|---:|---:|---:|---:|",
    ]
    for backend in ("uring", "pread"):
        b = rows.get(f"BM_Zipf/{backend}/real_time")
        if b:
            out.append(
                f"| {backend} | {b['items_per_second']:,.0f} | {b['hit_rate']:.3f} | "
                f"{b['ideal_hit_rate']:.3f} | {b['disk_reads']:,.0f} |"
            )
    return out


def seed_table(seed):
    """The seed project's table, per backend: one run of 50,000 searches."""
    by = {b["name"].split("/")[1]: b for b in seed}
    out = []
    searches = 50000
    for backend, label in (("uring", "io_uring"), ("pread", "pread")):
        pooled = by.get(f"{backend}_pool256")
        direct = by.get(f"{backend}_direct")
        if not pooled or not direct:
            continue
        out += [
            "",
            f"The seed's benchmark on {label} (20,000 inserts, 50,000 searches, minimum degree 32, "
            "4096-byte blocks, 256-frame pool):",
            "",
            "| Configuration | Total Search Time | Avg/Search | Found Keys |",
            "|---|---:|---:|---:|",
        ]
        for name, b in (("Without Buffer Pool", direct), ("With Buffer Pool", pooled)):
            runs = max(1, b.get("iterations", 1))
            us = b["us_per_search"]
            out.append(
                f"| {name} | {us * searches / 1e6:.6f} s | {us:.3f} µs | "
                f"{b.get('found', 0) / runs:,.0f} |"
            )
        runs = max(1, pooled.get("iterations", 1))
        out += [
            "",
            f"Buffer pool statistics ({label}, per run): cache hits {pooled['hits'] / runs:,.0f}, "
            f"cache misses {pooled['misses'] / runs:,.0f}, disk reads {pooled['disk_reads'] / runs:,.0f}, "
            f"disk writes during search {pooled.get('disk_writes', 0) / runs:,.0f}, "
            f"hit rate {100 * pooled['hit_rate']:.2f}%, "
            f"speedup {direct['us_per_search'] / pooled['us_per_search']:.2f}x",
            "",
            f"{label} with buffer pool: {pooled['us_per_search']:.3f} µs/search "
            f"(the Python seed: 52.684 µs/search with, 223.527 µs without, 92.88% hits, 4.24x)",
        ]
    return out


def btree_lines(results):
    path = os.path.join(results, "btree_bench.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        data = json.load(f)
    rows = [b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    out = ["", "### B+tree, everything cached, one thread", ""]
    out += ["| workload | ops/s | notes |", "|---|---:|---|"]
    for b in rows:
        name = b["name"]
        if name.startswith("BM_SeedSearch") or name.startswith("BM_SeedPoolSweep"):
            continue
        notes = []
        for k in ("height", "fill_factor", "keys"):
            if k in b:
                notes.append(f"{k} {b[k]:.3g}" if k == "fill_factor" else f"{k} {b[k]:,.0f}")
        label = name.split("/")[0].replace("BM_", "")
        out.append(f"| {label} | {b.get('items_per_second', 0):,.0f} | {', '.join(notes)} |")
    seed = [b for b in rows if b["name"].startswith("BM_SeedSearch")]
    out += seed_table(seed)
    return out


PEERS = ("lmdb", "sqlite", "rocksdb", "leveldb")
# (label, unit, our benchmark, the peers' family): the pairs of the same workload.
CACHED_PAIRS = (
    ("random gets", "gets/s", "BM_RandomGet", "BM_PeerGet"),
    ("random gets into a reused string", "gets/s", "BM_RandomGetInto", "BM_PeerGet"),
    ("random gets, value pinned (no copy)", "gets/s", "BM_RandomGetPinned", "BM_PeerGet"),
    ("random inserts, batches of 1000", "inserts/s", "BM_RandomInsertBatch1000", "BM_PeerInsertBatch"),
    ("scans of 100", "entries/s", "BM_Scan100", "BM_PeerScan"),
)


def load_rows(results, name):
    """The iteration rows of a Google Benchmark JSON file, or None if it is missing."""
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    return [b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"]


def rate(b, counter="items_per_second"):
    if b is None or b.get("error_occurred"):
        return None
    return b.get(counter)


def fmt_rate(v):
    return "n/a" if v is None else f"{v:,.0f}"


def fmt_cpu(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_ratio(us, peer):
    return "n/a" if not us or not peer else f"{us / peer:.2f}"


def peer_lines(results):
    peer_rows = load_rows(results, "peer_bench.json")
    if peer_rows is None:
        return []
    ours = {b["name"].split("/")[0]: b for b in load_rows(results, "btree_bench.json") or []}
    peer = {}  # (family, peer) -> row
    commits = {}  # (peer, writers) -> row
    for b in peer_rows:
        parts = b["name"].split("/")
        m = re.match(r"BM_PeerCommit/(\w+)/writers:(\d+)", b["name"])
        if m:
            commits[(m.group(1), int(m.group(2)))] = b
        elif len(parts) > 1:
            peer[(parts[0], parts[1])] = b
    peers = [p for p in PEERS if any(k[1] == p for k in peer) or any(k[0] == p for k in commits)]
    head = "| " + " | ".join(peers) + " | " + " | ".join(f"us / {p}" for p in peers) + " |"
    align = "|---:" * (2 * len(peers)) + "|"

    out = ["", "### Cached workloads vs peers", ""]
    keys = {int(b["keys"]) for (fam, _), b in peer.items() if fam == "BM_PeerGet" and "keys" in b}
    our_insert = ours.get("BM_RandomInsertBatch1000")
    our_keys = int(our_insert["keys"]) if our_insert and "keys" in our_insert else None
    out.append(
        f"One thread, everything cached, {', '.join(f'{k:,}' for k in sorted(keys)) or '?'} keys "
        "(8-byte keys, 100-byte values), the same keys, seeds and batches as btree_bench. "
        "LMDB with MDB_NOSYNC, SQLite in WAL mode with synchronous=NORMAL and a 1 GiB cache, "
        "RocksDB and LevelDB with sync=false and a 1 GiB block cache: commits do not sync (SQLite's WAL "
        "checkpoints, every 1000 pages, still do; corobtree, with Durability::kRelaxed, writes each batch's operations to its log and syncs only at its checkpoints). "
        "us / peer > 1: corobtree is faster."
    )
    if our_keys is not None and keys and keys != {our_keys}:
        out += ["", f"**Warning:** btree_bench ran with {our_keys:,} keys: the ratios compare different sizes."]
    out += ["", "| workload | unit | corobtree " + head, "|---|---|---:" + align]
    for label, unit, ours_name, family in CACHED_PAIRS:
        us = rate(ours.get(ours_name))
        rates = [rate(peer.get((family, p))) for p in peers]
        out.append(
            f"| {label} | {unit} | {fmt_rate(us)} | "
            + " | ".join(fmt_rate(r) for r in rates)
            + " | "
            + " | ".join(fmt_ratio(us, r) for r in rates)
            + " |"
        )

    # The seed's searches: microseconds per search (lower is faster), so the ratio is peer / us.
    our_seed = next((b for b in load_rows(results, "btree_bench.json") or []
                     if b["name"].startswith("BM_SeedSearch/uring_cached")), None)
    us = rate(our_seed, "us_per_search")
    times = [rate(peer.get(("BM_PeerSeedSearch", p)), "us_per_search") for p in peers]
    if us is not None or any(t is not None for t in times):
        def fmt_us(v):
            return "n/a" if v is None else f"{v:.3f}"

        out.append(
            "| seed searches, 20k keys, cached | µs/search | " + fmt_us(us) + " | "
            + " | ".join(fmt_us(t) for t in times)
            + " | "
            + " | ".join(fmt_ratio(t, us) for t in times)
            + " |"
        )
        out += [
            "",
            "Seed searches: the seed's shape (20,000 even keys of [0, 40000) put in random order, "
            "50,000 gets of uniform keys, half present); corobtree's figure is btree_bench's "
            "BM_SeedSearch/uring_cached (all pages cached; values: the keys in decimal), the peers' values are "
            "100 bytes. Time per search, so its ratio is peer / us (> 1: corobtree is faster).",
        ]

    our_commits = {}
    commit_rows = load_rows(results, "commit_bench.json")
    for b in commit_rows or []:
        m = re.match(r"BM_DurableCommit/writers:(\d+)", b["name"])
        if m:
            our_commits[int(m.group(1))] = b
    out += [
        "",
        "### Durable commits",
        "",
        "Commits per second, each one put of a fresh random 8-byte key with a 100-byte value, "
        "durable before the writer's next, into a store preloaded with the same 100,000 random "
        "keys: corobtree with N writer tasks on one thread; "
        "the peers with N threads (SQLite in WAL mode with synchronous=FULL, one connection "
        "per thread; LMDB with its default syncs; RocksDB and LevelDB with sync=true, group commit). "
        "us / peer > 1: corobtree is faster.",
    ]
    if commit_rows is None:
        out += ["", "commit_bench.json not found: our durable commits were not measured."]
    out += ["", "| writers | corobtree " + head, "|---:|---:" + align]
    for w in sorted({w for (_, w) in commits} | set(our_commits)):
        us = rate(our_commits.get(w), "commits_per_s")
        rates = [rate(commits.get((p, w)), "commits_per_s") for p in peers]
        out.append(
            f"| {w} | {fmt_rate(us)} | "
            + " | ".join(fmt_rate(r) for r in rates)
            + " | "
            + " | ".join(fmt_ratio(us, r) for r in rates)
            + " |"
        )
    out += [
        "",
        "CPU per commit: the process's CPU time (user + system, every thread, the kernel's "
        "io_uring workers included) over the commits, in microseconds. peer / us > 1: "
        "corobtree uses less.",
        "",
        "| writers | corobtree | "
        + " | ".join(peers)
        + " | "
        + " | ".join(f"{p} / us" for p in peers)
        + " |",
        "|---:|---:" + align,
    ]
    for w in sorted({w for (_, w) in commits} | set(our_commits)):
        us = rate(our_commits.get(w), "cpu_us_per_commit")
        cpus = [rate(commits.get((p, w)), "cpu_us_per_commit") for p in peers]
        out.append(
            f"| {w} | {fmt_cpu(us)} | "
            + " | ".join(fmt_cpu(c) for c in cpus)
            + " | "
            + " | ".join(fmt_ratio(c, us) for c in cpus)
            + " |"
        )
    return out


def variant_runs(rows, pattern):
    """{(variant, writers): row} for the rows whose name matches `pattern`
    (group 1 the variant, group 2 the writer count)."""
    runs = {}
    for b in rows:
        m = re.match(pattern, b["name"])
        if m:
            runs[(m.group(1), int(m.group(2)))] = b
    return runs


def commit_lines(results):
    """Our commit variants side by side, with the group commit's average group."""
    rows = load_rows(results, "commit_bench.json")
    if not rows:
        return []
    runs = variant_runs(rows, r"BM_(DurableCommit|DurableCommitPread|RelaxedCommit)/writers:(\d+)")

    def cell(variant, w, key, fmt):
        b = runs.get((variant, w))
        return fmt(b[key]) if b and key in b and not b.get("error_occurred") else "n/a"

    out = [
        "",
        "corobtree's commits by backend and durability: commits/s, median latency, and the "
        "average group (commits acknowledged by one log fsync; relaxed: by one log write). "
        "The log's fsync latency on a shared VM varies by 10x or more between runs.",
        "",
        "| writers | io_uring | pread | relaxed (io_uring) | p50 µs io_uring / pread / relaxed "
        "| commits per fsync io_uring / pread | commits per write, relaxed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rate_fmt = lambda v: f"{v:,.0f}"
    for w in sorted({w for (_, w) in runs}):
        p50 = " / ".join(cell(v, w, "p50_us", rate_fmt) for v in ("DurableCommit", "DurableCommitPread", "RelaxedCommit"))
        grp = " / ".join(cell(v, w, "commits_per_sync", lambda v: f"{v:.1f}") for v in ("DurableCommit", "DurableCommitPread"))
        out.append(
            f"| {w} | {cell('DurableCommit', w, 'commits_per_s', rate_fmt)} "
            f"| {cell('DurableCommitPread', w, 'commits_per_s', rate_fmt)} "
            f"| {cell('RelaxedCommit', w, 'commits_per_s', rate_fmt)} | {p50} | {grp} "
            f"| {cell('RelaxedCommit', w, 'commits_per_write', lambda v: f'{v:.1f}')} |"
        )
    return out


def durable_ab_lines(results):
    """One durable writer, corobtree and SQLite in alternating rounds (durable_ab/)."""
    d = os.path.join(results, "durable_ab")
    if not os.path.isdir(d):
        return []
    rounds = []
    r = 1
    while True:
        try:
            ours = load_rows(d, f"corobtree_{r}.json")
            peer = load_rows(d, f"sqlite_{r}.json")
        except ValueError:  # a round that failed left a partial file
            ours = peer = []
        if ours is None or peer is None:
            break
        rounds.append((ours[0] if ours else None, peer[0] if peer else None))
        r += 1
    if not rounds:
        return []

    def median(values):
        v = sorted(x for x in values if x is not None)
        if not v:
            return None
        mid = len(v) // 2
        return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2

    out = [
        "",
        "### Durable commits, 1 writer, alternating rounds",
        "",
        "The same two runs as the tables above (commit_bench's BM_DurableCommit/writers:1, peer_bench's "
        "SQLite in WAL mode with synchronous=FULL), run in turn, corobtree first in each round, so that "
        "both see the same phases of the disk (its fdatasync latency swings 2x within minutes here). "
        "Commits/s and CPU µs per commit; the target compares the medians.",
        "",
        "| round | corobtree | SQLite | us / SQLite | CPU µs corobtree | CPU µs SQLite |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for i, (a, b) in enumerate(rounds, 1):
        ua, ub = rate(a, "commits_per_s"), rate(b, "commits_per_s")
        out.append(f"| {i} | {fmt_rate(ua)} | {fmt_rate(ub)} | {fmt_ratio(ua, ub)} "
                   f"| {fmt_cpu(rate(a, 'cpu_us_per_commit'))} | {fmt_cpu(rate(b, 'cpu_us_per_commit'))} |")
    ma = median(rate(a, "commits_per_s") for a, _ in rounds)
    mb = median(rate(b, "commits_per_s") for _, b in rounds)
    ca = median(rate(a, "cpu_us_per_commit") for a, _ in rounds)
    cb = median(rate(b, "cpu_us_per_commit") for _, b in rounds)
    out.append(f"| median | {fmt_rate(ma)} | {fmt_rate(mb)} | {fmt_ratio(ma, mb)} | {fmt_cpu(ca)} | {fmt_cpu(cb)} |")
    if ma and mb and ca and cb:
        met = ma >= mb and ca <= cb
        out += ["", f"Target (issue 13): 1 writer >= 1.0x SQLite with no more CPU per commit: "
                    f"{ma / mb:.2f}x, CPU {ca:,.0f} against {cb:,.0f} µs: "
                    f"{'**met**' if met else '**missed**'}."]
    return out


def checkpoint_commit_lines(results):
    """Commit latency over runs that include checkpoints (issue 13: p99 <= 3x p50)."""
    rows = load_rows(results, "commit_bench.json")
    if not rows:
        return []
    runs = {k: b for k, b in variant_runs(rows, r"BM_(CheckpointCommit|CheckpointCommitRelaxed)/writers:(\d+)").items()
            if not b.get("error_occurred")}
    if not runs:
        return []
    out = [
        "",
        "### Commit latency across checkpoints",
        "",
        "commit_bench's BM_CheckpointCommit (durable, io_uring) and BM_CheckpointCommitRelaxed: "
        "the durable-commit workload above with `wal_checkpoint_bytes` = 1 MiB, so that "
        "checkpoints fall due every few thousand commits. A checkpoint holds the writer mutex for "
        "its cut only (dirty pages and a checkpoint record logged and synced, then commits switch "
        "to the other log file); the copy into the data file runs while commits go on. "
        "Latency of every commit in the window, in µs. Target: p99 <= 3x p50.",
        "",
        "| durability | writers | commits/s | checkpoints | p50 | p99 | p99.9 | max | p99 / p50 | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for variant, label in (("CheckpointCommit", "sync"), ("CheckpointCommitRelaxed", "relaxed")):
        for w in sorted(wr for (v, wr) in runs if v == variant):
            b = runs[(variant, w)]
            ratio = b.get("p99_over_p50", 0.0)
            out.append(
                f"| {label} | {w} | {b.get('commits_per_s', 0):,.0f} | {b.get('checkpoints', 0):.0f} "
                f"| {b.get('p50_us', 0):,.0f} | {b.get('p99_us', 0):,.0f} | {b.get('p999_us', 0):,.0f} "
                f"| {b.get('max_us', 0):,.0f} | {ratio:.1f}x | {'met' if 0 < ratio <= 3 else 'missed'} |"
            )
    return out


# thread_bench's workloads: (family regex key, label, unit).
THREAD_WORKLOADS = (
    ("Get", "cached gets", "gets/s"),
    ("Scan", "scans of 100", "entries/s"),
    ("Insert", "inserts, batches of 1000", "inserts/s"),
)
THREAD_ENGINES = ("corobtree", "corobtree_blocking") + PEERS


def thread_lines(results):
    """The scaling table of thread_bench.json: rows workload x engine, columns T."""
    rows = load_rows(results, "thread_bench.json")
    if rows is None:
        return []
    cached = {}  # (workload, engine, T) -> row
    commits = {}  # (engine, W, T) -> row
    cold = {}  # (T, N) -> row
    for b in rows:
        name = b["name"]
        m = re.match(r"BM_Thread(Get|Scan|Insert)/(\w+)/threads:(\d+)", name)
        if m:
            cached[(m.group(1), m.group(2), int(m.group(3)))] = b
            continue
        m = re.match(r"BM_ThreadCommit/(\w+)/threads:(\d+)/writers:(\d+)", name)
        if m:
            commits[(m.group(1), int(m.group(3)), int(m.group(2)))] = b
            continue
        m = re.match(r"BM_ThreadColdGet/threads:(\d+)/tasks:(\d+)", name)
        if m:
            cold[(int(m.group(1)), int(m.group(2)))] = b
    threads = sorted({k[2] for k in cached} | {k[2] for k in commits} | {k[0] for k in cold})
    keys = {int(b["keys"]) for b in cached.values() if "keys" in b}

    def ratio(a, b):
        return f"{a / b:.2f}" if a and b else "n/a"

    out = [
        "",
        "### Thread scaling",
        "",
        f"thread_bench, one run: T threads share one database (corobtree: one BlockingDatabase, "
        f"each thread running its loop (gets, or a Cursor's seek and next) in one coroutine; "
        f"corobtree_blocking: BlockingDatabase::get into a reused string, or ::scan of 100 into a reused vector, per call; "
        f"LMDB: one env, a read transaction per thread; "
        f"RocksDB, LevelDB: one DB; SQLite in WAL mode: a connection per thread). Cached: "
        f"{', '.join(f'{k:,}' for k in sorted(keys)) or '?'} keys (8-byte keys, 100-byte values), "
        "all in memory; inserts: each thread fills its own key range, one commit per 1000 "
        "keys, no sync. Durable commits: corobtree with W writer tasks per thread, the peers "
        "with one writer per thread. Rates are totals over all threads. 2T/1T: scaling from "
        "1 to 2 threads; vs LMDB at 2T: this row over LMDB's at 2 threads.",
        "",
        "| workload | engine | " + " | ".join(f"{t}T" for t in threads) + " | 2T/1T | vs LMDB at 2T |",
        "|---|---|" + "---:|" * (len(threads) + 2),
    ]

    def add_row(label, engine, series, lmdb2):
        if not any(v is not None for v in series.values()):
            return
        cells = " | ".join(fmt_rate(series.get(t)) for t in threads)
        out.append(
            f"| {label} | {engine} | {cells} | {ratio(series.get(2), series.get(1))} | "
            f"{ratio(series.get(2), lmdb2)} |"
        )

    for fam, label, unit in THREAD_WORKLOADS:
        lmdb2 = rate(cached.get((fam, "lmdb", 2)))
        for engine in THREAD_ENGINES:
            series = {t: rate(cached.get((fam, engine, t))) for t in threads}
            add_row(f"{label} ({unit})", engine, series, lmdb2)
    lmdb2 = rate(commits.get(("lmdb", 1, 2)), "commits_per_s")
    for engine in THREAD_ENGINES:
        for w in sorted({k[1] for k in commits if k[0] == engine}):
            series = {t: rate(commits.get((engine, w, t)), "commits_per_s") for t in threads}
            per = "writer" if w == 1 else "writers"
            add_row(f"durable commits, {w} {per}/thread (commits/s)", engine, series, lmdb2)

    if cold:
        out += [
            "",
            "Cold lookups: T threads x N lookup tasks on one database much larger than its pool "
            "(O_DIRECT; the pool holds the inner pages, so a lookup costs about one leaf read), "
            "then fio 4 KiB random O_DIRECT reads (io_uring) at queue depth T x N on the same "
            "file, in the same run.",
            "",
            "| T x N | lookups/s | fio IOPS at T x N | ours/fio | reads/lookup | device reads/fio | pool MiB | file MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for (t, n), b in sorted(cold.items()):
            fio = b.get("fio_iops")
            pct = lambda k: f"{b[k]:.0%}" if k in b else "n/a"
            out.append(
                f"| {t} x {n} | {fmt_rate(rate(b))} | {fmt_rate(fio)} | {pct('ours_over_fio')} | "
                f"{b.get('reads_per_lookup', 0):.2f} | {pct('reads_over_fio')} | "
                f"{b.get('pool_MiB', 0):.0f} | {b.get('file_MiB', 0):.0f} |"
            )

    g1 = rate(cached.get(("Get", "corobtree", 1)))
    g2 = rate(cached.get(("Get", "corobtree", 2)))
    l2 = rate(cached.get(("Get", "lmdb", 2)))
    c = cold.get((2, 32))
    out += [
        "",
        "Targets (issue 12): cached gets with 2 threads >= 1.7x one thread: "
        f"{ratio(g2, g1)}; >= 1.0x LMDB with 2 threads: {ratio(g2, l2)}; cold lookups with "
        "2 threads x 32 tasks >= 85% of fio at queue depth 64: "
        + (f"{c['ours_over_fio']:.0%}." if c and "ours_over_fio" in c else "n/a."),
    ]
    return out


def redis_lines(results):
    """scripts/redis-bench.sh's comparison: corobtree-server vs redis-server
    under redis-benchmark, with the issue's targets met or missed."""
    path = os.path.join(results, "redis_bench.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        data = json.load(f)
    cfg = data["config"]
    runs = {(r["mode"], r["pipeline"], r["test"], r["server"]): r for r in data["runs"]}
    ours, redis = "corobtree-server", "redis-server"
    out = [
        "",
        "### corobtree-server vs redis-server (redis-benchmark)",
        "",
        f"redis-benchmark, the same settings for both: {cfg['clients']} clients, "
        f"{cfg['client_threads']} client thread{'s' if cfg['client_threads'] > 1 else ''}, "
        f"-r {cfg['keyspace']:,}, -d {cfg['value_bytes']}; "
        f"corobtree-server with {cfg['our_threads']} threads and a {cfg['pool_mb']} MiB pool; "
        f"{cfg.get('redis_version', 'redis-server')} single-threaded. Durable: ours `--durability sync` vs "
        "redis `appendonly yes` + `appendfsync always`; relaxed: ours `relaxed` vs `appendfsync everysec`. "
        f"{cfg.get('cpus', '?')} CPUs shared by server and client"
        + (" (--quick sizes)." if cfg.get("quick") else "."),
        "",
        "| mode | pipeline | test | corobtree-server req/s | redis-server req/s | ours / redis | p99 ms ours / redis |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    get_ratios, set_ratios, large_get_ratios = [], [], []
    for mode in ("durable", "relaxed"):
        for pipeline in (1, 16):
            for test in ("set", "get", "mset"):
                a, b = runs.get((mode, pipeline, test, ours)), runs.get((mode, pipeline, test, redis))
                if not a or not b:
                    continue
                ratio = a["rps"] / b["rps"] if b["rps"] else 0.0
                if test == "get":
                    get_ratios.append(ratio)
                if test == "set" and mode == "durable":
                    set_ratios.append(ratio)
                label = "MSET (10 keys)" if test == "mset" else test.upper()
                out.append(f"| {mode} | {pipeline} | {label} | {a['rps']:,.0f} | {b['rps']:,.0f} | "
                           f"{ratio:.2f} | {a['p99_ms']:.1f} / {b['p99_ms']:.1f} |")
    large = data.get("large", {})
    mib = lambda kib: kib / 1024
    rss_ok = None
    if large:
        out += [
            "",
            f"Large data set: {cfg['large_keys']:,} keys x {cfg['large_value_bytes']} bytes (4x our "
            f"{cfg['pool_mb']} MiB pool), loaded with `redis-cli --pipe`, relaxed mode; then GETs over "
            "all keys. RSS from /proc/PID/status.",
            "",
            "| server | load SET/s | GET P1 req/s | GET P16 req/s | VmRSS after load MiB | "
            "VmRSS after GETs MiB | VmHWM MiB | files MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name in (ours, redis):
            e = large.get(name)
            if not e:
                continue
            out.append(f"| {name} | {e['load_sets_per_s']:,.0f} | {e['get_p1']['rps']:,.0f} | "
                       f"{e['get_p16']['rps']:,.0f} | {mib(e['rss_after_load']['vmrss_kib']):.0f} | "
                       f"{mib(e['rss_after_get']['vmrss_kib']):.0f} | "
                       f"{mib(e['rss_after_get']['vmhwm_kib']):.0f} | {mib(e['disk_kib']):.0f} |")
        if ours in large and redis in large:
            for p in (1, 16):
                b = large[redis][f"get_p{p}"]["rps"]
                if b:
                    large_get_ratios.append(f"P{p} {large[ours][f'get_p{p}']['rps'] / b:.2f}")
        if ours in large:
            e = large[ours]
            rss_mib = mib(max(e["rss_after_load"]["vmrss_kib"], e["rss_after_get"]["vmrss_kib"]))
            rss_ok = (rss_mib, rss_mib <= cfg["pool_mb"] + 64, mib(e["rss_after_get"]["vmhwm_kib"]))

    def verdict(ok):
        return "**met**" if ok else "**missed**"

    out += ["", "Targets (issue 14):", ""]
    if get_ratios:
        m = min(get_ratios)
        large_note = (f"; with the large data set, ours from disk, redis from RAM: {', '.join(large_get_ratios)}"
                      if large_get_ratios else "")
        out.append(f"- GET >= 0.8x redis-server: lowest ratio {m:.3f} over the {len(get_ratios)} GET runs above "
                   f"(highest {max(get_ratios):.3f}): {verdict(m >= 0.8)}{large_note}")
    if set_ratios:
        m = min(set_ratios)
        out.append(f"- durable SET >= 1.0x redis (appendfsync always): lowest ratio {m:.3f} "
                   f"(pipeline 1 and 16): {verdict(m >= 1.0)}")
    if rss_ok:
        out.append(f"- RSS with the large data set <= pool + 64 MiB = {cfg['pool_mb'] + 64} MiB: "
                   f"VmRSS {rss_ok[0]:.0f} MiB (VmHWM {rss_ok[2]:.0f} MiB): {verdict(rss_ok[1])}")
    return out


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else "results"
    iops, ctx = load_disk(results)
    with open(os.path.join(results, "fio_randread.json")) as f:
        fio = {int(k): v for k, v in json.load(f).items()}
    qds = sorted({qd for (_, qd) in iops})
    lines = [
        "### 4 KiB random O_DIRECT reads from one thread (IOPS)",
        "",
        f"Host: {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs, {ctx.get('date', '')}",
        "",
        "| queue depth | corobtree io_uring | corobtree pread | fio (io_uring) | io_uring / fio | io_uring / pread |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for qd in qds:
        u = iops.get(("uring", qd), 0.0)
        p = iops.get(("pread", qd), 0.0)
        fv = fio.get(qd, 0.0)
        lines.append(
            f"| {qd} | {u:,.0f} | {p:,.0f} | {fv:,.0f} | "
            f"{(u / fv if fv else 0):.2f} | {(u / p if p else 0):.2f} |"
        )
    lines += pool_lines(results)
    lines += btree_lines(results)
    lines += peer_lines(results)
    lines += commit_lines(results)
    lines += durable_ab_lines(results)
    lines += checkpoint_commit_lines(results)
    lines += thread_lines(results)
    lines += redis_lines(results)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plots")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(qds, [iops.get(("uring", q), 0) for q in qds], "o-", label="corobtree io_uring")
    ax.plot(qds, [iops.get(("pread", q), 0) for q in qds], "s-", label="corobtree pread")
    ax.plot(qds, [fio.get(q, 0) for q in qds], "^--", label="fio io_uring")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("queue depth (reads in flight, one thread)")
    ax.set_ylabel("4 KiB random reads / s")
    ax.set_title("O_DIRECT random reads")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(results, "disk_qd.png"), dpi=110)
    print(f"plot: {os.path.join(results, 'disk_qd.png')}")
    seed_plots(results, plt)


def seed_plots(results, plt):
    path = os.path.join(results, "btree_bench.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        rows = [b for b in json.load(f)["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    by = {b["name"].split("/")[1]: b for b in rows if b["name"].startswith("BM_SeedSearch")}
    if all(k in by for k in ("uring_pool256", "uring_direct", "pread_pool256", "pread_direct")):
        fig, ax = plt.subplots(figsize=(6, 4))
        labels = ["io_uring", "pread"]
        direct = [by["uring_direct"]["us_per_search"], by["pread_direct"]["us_per_search"]]
        pooled = [by["uring_pool256"]["us_per_search"], by["pread_pool256"]["us_per_search"]]
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], direct, width=0.4, label="without buffer pool")
        ax.bar([x + 0.2 for x in xs], pooled, width=0.4, label="with buffer pool (256 frames)")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels)
        ax.set_ylabel("µs per search")
        ax.set_title("The seed's benchmark: pooled vs direct")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(results, "seed_pooled_vs_direct.png"), dpi=110)
        print(f"plot: {os.path.join(results, 'seed_pooled_vs_direct.png')}")
    sweep = sorted(
        ((int(b["name"].split("pool:")[1].split("/")[0]), b) for b in rows if b["name"].startswith("BM_SeedPoolSweep")),
        key=lambda p: p[0],
    )
    if sweep:
        fig, ax1 = plt.subplots(figsize=(6, 4))
        sizes = [p for p, _ in sweep]
        ax1.plot(sizes, [100 * b["hit_rate"] for _, b in sweep], "o-", color="tab:blue", label="hit rate")
        ax1.set_xscale("log", base=2)
        ax1.set_xlabel("pool size (frames)")
        ax1.set_ylabel("hit rate (%)", color="tab:blue")
        ax2 = ax1.twinx()
        ax2.plot(sizes, [b["us_per_search"] for _, b in sweep], "s--", color="tab:red", label="µs/search")
        ax2.set_ylabel("µs per search", color="tab:red")
        ax1.set_title("The seed's searches on io_uring against pool size")
        fig.tight_layout()
        fig.savefig(os.path.join(results, "seed_pool_sweep.png"), dpi=110)
        print(f"plot: {os.path.join(results, 'seed_pool_sweep.png')}")


if __name__ == "__main__":
    main()
