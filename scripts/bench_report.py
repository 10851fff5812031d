#!/usr/bin/env python3
"""Turns results/*.json into results/summary.md and PNG plots.

Reads disk_bench.json (Google Benchmark) and fio_randread.json ({qd: iops}).
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
