"""Cases aggregated per second: single process vs a 2-worker Dask LocalCluster, with peak memory.

The workload is the space-time cube of Emerging Hot Spot Analysis (200 m fishnet x 7-day steps)
on synthetic 5-year histories of 1M, 10M and 50M cases (:func:`geodata.history.synthetic_history`,
GeoParquet partitioned by month and Hilbert order, 1M rows per file at most).  Each run is a
child process; the parent samples the resident memory of the child's whole process tree (the
Dask workers included) every 0.1 s.  The single process reads the whole history into one
GeoDataFrame and calls :func:`analytics.emerging.space_time_cube`; it is only run where the
memory measured at 1M predicts less than ``--single-limit-gib``.  Both engines' cubes are
checked to be identical (a hash of the counts).  Results go to ``bench/results/distributed.md``.

    python bench/bench_distributed.py --sizes 1,10,50
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
GIB = 1024**3
#: time step of the cube: 30 days, 61 steps over 5 years (with 7 days, 261 steps, the
#: Mann-Kendall tie matrix of EHSA, bins x steps x steps, needs several GiB by itself)
STEP = "30D"


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_child(args: list[str], timeout: float) -> tuple[dict | None, list, str]:
    """Run ``args``; return (its JSON result, [(time, tree RSS bytes)], stderr tail)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            samples.append((time.time(), _tree_rss(proc.pid)))
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += f"\ntimed out after {timeout:.0f} s"
    done.set()
    th.join()
    result = None
    for line in out.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
    return result, samples, "\n".join(err.strip().splitlines()[-5:])


def child(engine: str, path: str) -> None:
    """One measured run (in a child process): print a JSON line."""
    warnings.simplefilter("ignore")
    import numpy as np
    import psutil

    from analytics import distributed as D
    from analytics.emerging import emerging_hot_spots_from_cube

    base_rss = psutil.Process().memory_info().rss
    kw = dict(cell_size=200.0, time_step=STEP, shape="fishnet")
    res = {"engine": engine, "base_rss": base_rss}
    if engine == "single":
        import geopandas as gpd

        t0 = time.perf_counter()
        pts = gpd.read_parquet(path, columns=["geometry", "reported_at"])
        res["read_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        cube = D.space_time_cube(pts, "reported_at", engine="single", **kw)
        res["cube_s"] = time.perf_counter() - t1
        res["total_s"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        with D.dask_client(
            None, n_workers=2, threads_per_worker=1, memory_limit="2.5GiB"
        ) as client:
            client.run(lambda: __import__("analytics.distributed"))  # warm the workers
            res["cluster_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            cube = D.space_time_cube(path, "reported_at", engine="dask", scheduler=client, **kw)
            res["cube_s"] = res["total_s"] = time.perf_counter() - t1
    res["cube_end"] = time.time()
    t2 = time.perf_counter()
    ehsa = emerging_hot_spots_from_cube(cube)
    res["ehsa_s"] = time.perf_counter() - t2
    res["cases"] = int(cube.counts.sum())
    res["bins"] = int(cube.counts.shape[0])
    res["steps"] = int(cube.counts.shape[1])
    res["hot"] = int((ehsa.locations["category"] != "No Pattern Detected").sum())
    res["hash"] = hashlib.sha256(
        np.ascontiguousarray(cube.counts).tobytes() + cube.bins["cell_id"].to_numpy().tobytes()
    ).hexdigest()[:16]
    print(json.dumps(res), flush=True)


def ensure_history(root: str, millions: int) -> tuple[str, float]:
    from analytics.parquet import write_months
    from geodata.history import history_bounds, synthetic_history

    path = os.path.join(root, f"h{millions}m")
    done = os.path.join(path, "_done")
    if os.path.exists(done):
        return path, float(open(done).read() or 0)
    import shutil

    import numpy as np

    if os.path.exists(path):
        shutil.rmtree(path)
    base_file = os.path.join(root, "base.npy")
    if not os.path.exists(base_file):
        from geodata.history import base_locations

        np.save(base_file, base_locations())
    t0 = time.perf_counter()
    base = np.load(base_file)
    write_months(
        path,
        synthetic_history(millions * 1_000_000, base=base, months=60),
        total_bounds=history_bounds(base),
        rows_per_file=1_000_000,
        progress=True,
        expected=60,
    )
    dt = time.perf_counter() - t0
    with open(done, "w") as fh:
        fh.write(f"{dt:.1f}")
    return path, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,50", help="Millions of cases [1,10,50].")
    ap.add_argument(
        "--dir",
        default=os.environ.get("TIANYA_BENCH_DIR", "/tmp/tianya-bench"),
        help="Where the synthetic histories are written (kept between runs).",
    )
    ap.add_argument(
        "--single-limit-gib",
        type=float,
        default=7.0,
        help="Skip single-process runs predicted to need more [7].",
    )
    ap.add_argument("--timeout", type=float, default=1800, help="Per run, seconds [1800].")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "distributed.md"))
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    os.makedirs(a.dir, exist_ok=True)
    sizes = [int(s) for s in a.sizes.split(",")]
    rows, slope, base = [], None, None
    for m in sizes:
        path, gen_s = ensure_history(a.dir, m)
        print(f"{m}M cases at {path} (generated in {gen_s:.0f} s)", flush=True)
        for engine in ("single", "dask"):
            predicted = None if slope is None else (base + slope * m) / GIB
            if engine == "single" and predicted is not None and predicted > a.single_limit_gib:
                rows.append({"m": m, "engine": engine, "skipped": predicted})
                print(f"  single: skipped (predicted peak {predicted:.1f} GiB)", flush=True)
                continue
            res, samples, err = run_child(
                [sys.executable, __file__, "--child", engine, path], a.timeout
            )
            if res is None:
                rows.append({"m": m, "engine": engine, "failed": err})
                print(f"  {engine}: FAILED {err}", flush=True)
                continue
            peak = max(r for t, r in samples if t <= res["cube_end"])
            res.update(m=m, peak=peak, peak_all=max(r for _, r in samples))
            rows.append(res)
            if engine == "single" and slope is None:
                base = res["base_rss"]
                slope = (peak - base) / m
            print(
                f"  {engine}: {res['total_s']:.1f} s, {m * 1e6 / res['total_s']:,.0f} "
                f"cases/s, peak {peak / GIB:.2f} GiB, hash {res['hash']}",
                flush=True,
            )
    write_report(a.out, rows, slope, base, a.dir)


def write_report(out: str, rows: list[dict], slope, base, root) -> None:
    import psutil

    lines = [
        "# Distributed aggregation: single process vs 2-worker Dask LocalCluster",
        "",
        f"Machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / GIB:.0f} GiB, "
        f"shared with other work; Python {platform.python_version()}.  Workload: the "
        "space-time cube of Emerging Hot Spot Analysis (200 m fishnet x 30-day steps, 61 "
        "steps) on synthetic 5-year histories (`geodata.history`), GeoParquet partitioned by "
        "month, Hilbert-ordered, <= 1M rows per file.  `python bench/bench_distributed.py`.",
        "",
        "Single process = `geopandas.read_parquet` of the whole history + "
        "`analytics.emerging.space_time_cube`; Dask = `analytics.distributed.space_time_cube` "
        "(2 passes over the files: extent, then binning; 2 worker processes x 1 thread, "
        "2.5 GiB limit each), cluster start-up excluded and reported separately.  Peak = "
        "resident memory of the whole process tree (driver + workers), sampled every 0.1 s, "
        'until the cube is back ("peak") and including the EHSA that follows ("peak with '
        'EHSA").  '
        "EHSA = `emerging_hot_spots_from_cube` on the returned cube (the same code either way).",
        "",
        "| cases | engine | read s | cube s | total s | cases/s | peak GiB | EHSA s | "
        "peak with EHSA GiB | bins x steps | same cube |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    hashes = {}
    for r in rows:
        if "hash" in r:
            hashes.setdefault(r["m"], set()).add(r["hash"])
    for r in rows:
        m = f"{r['m']}M"
        if "skipped" in r:
            lines.append(
                f"| {m} | {r['engine']} | | | | | (~{r['skipped']:.1f} predicted) | | "
                "| | not run: over the memory budget |"
            )
            continue
        if "failed" in r:
            lines.append(
                f"| {m} | {r['engine']} | | | | | | | | | failed: "
                f"{r['failed'].splitlines()[-1] if r['failed'] else ''} |"
            )
            continue
        same = "yes" if len(hashes.get(r["m"], ())) == 1 else "n/a"
        lines.append(
            f"| {m} | {r['engine']} | {r.get('read_s', 0):.1f} | "
            f"{r['cube_s']:.1f} | {r['total_s']:.1f} | "
            f"{r['m'] * 1e6 / r['total_s']:,.0f} | {r['peak'] / GIB:.2f} | {r['ehsa_s']:.1f} | "
            f"{r['peak_all'] / GIB:.2f} | "
            f"{r['bins']:,} x {r['steps']} | {same} |"
        )
    if slope:
        hold = (24 * GIB - base) / slope  # slope is per million cases
        lines += [
            "",
            f"Single-process memory: {base / GIB:.2f} GiB after imports + "
            f"{slope / GIB:.2f} GiB per million cases (measured at the first size), so the "
            f"single process can hold about **{hold:.0f}M cases** in 24 GiB (less in practice: "
            "the machine is shared).",
        ]
    dask_rows = [r for r in rows if r.get("engine") == "dask" and "cluster_s" in r]
    if dask_rows:
        lines += [
            "",
            "Dask cluster start-up: "
            + ", ".join(f"{r['cluster_s']:.1f} s" for r in dask_rows)
            + ".",
        ]
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
