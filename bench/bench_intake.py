"""Case intake benchmark: creates/s with automatic dispatch, and latency, at concurrency 1 and 8.

Run: ``python bench/bench_intake.py [--creates 2000] [--http-creates 2000]``

On a fresh sample GeoPackage (the embedded store), each create validates the
feature, places it (district, unit grid, community, grid worker), applies the
dispatch rule and the working-time deadline, numbers the case and writes it with
three history rows in one transaction. Two ways in:

- ``library``: :func:`layers.cases.create_case` called from 1 or 8 threads;
- ``http``: ``POST /collections/incidents/items`` through the full stack
  (gunicorn, 3 workers x 4 threads, the shell, pygeoapi, the provider) from 1
  or 8 client threads.

The table is printed and written to ``bench/results/intake.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadkit import free_port, tianya_serve  # noqa: E402
from geodata.sample import write_sample  # noqa: E402
from layers import access, cases  # noqa: E402
from layers.catalogue import CATEGORIES, get_layer  # noqa: E402
from layers.gpkg import GeoPackageStore  # noqa: E402

KEY = "bench-reporter-key"


def _docs(store: GeoPackageStore, n: int, seed: int = 7) -> list[dict]:
    """``n`` intake features at sample incident locations inside the district."""
    pts = store.read_frame(get_layer("incidents")).geometry
    loc = cases.locator_for(store)
    pts = pts[[loc.inside(p) for p in pts]]  # a few sample points lie just off the boundary
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pts), n)
    cats = rng.choice([c.code for c in CATEGORIES], n)
    return [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [pts.iloc[i].x, pts.iloc[i].y]},
            "properties": {"title": f"bench {k}", "category": str(c), "channel": "grid_app"},
        }
        for k, (i, c) in enumerate(zip(idx, cats, strict=True))
    ]


def _run(fn, docs: list[dict], concurrency: int) -> tuple[float, np.ndarray]:
    lat = np.empty(len(docs))
    chunks = np.array_split(np.arange(len(docs)), concurrency)

    def work(ix):
        for i in ix:
            t = time.perf_counter()
            fn(docs[i])
            lat[i] = time.perf_counter() - t

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, chunks))
    return time.perf_counter() - t0, lat


def bench_library(path: str, n: int, concurrency: int) -> dict:
    store = GeoPackageStore(path)
    who = access.Principal("bench", "reporter")
    cases.locator_for(store)  # the grids are loaded once per process: not part of a create
    cases.create_case(store, _docs(store, 1)[0], who)  # warm-up (history table, caches)
    docs = _docs(store, n, seed=concurrency)
    wall, lat = _run(lambda d: cases.create_case(store, d, who), docs, concurrency)
    return _row("library", concurrency, n, wall, lat)


def bench_http(path: str, n: int, levels) -> list[dict]:
    keys = Path(path).with_name("keys.yml")
    keys.write_text(f"keys:\n  - {{key: {KEY}, role: reporter, name: bench}}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, TIANYA_DATA=path, TIANYA_URL=url, TIANYA_KEYS=str(keys))
    log = open(Path(path).with_name("server.log"), "w")
    proc = subprocess.Popen(
        tianya_serve(port, path, workers=3, threads=4),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if requests.get(url + "/conformance?f=json", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise RuntimeError("server did not start")
        local = threading.local()
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/geo+json"}

        def post(doc):
            s = getattr(local, "s", None) or requests.Session()
            local.s = s
            r = s.post(url + "/collections/incidents/items", json=doc, headers=headers, timeout=60)
            if r.status_code != 201:
                raise RuntimeError(f"{r.status_code}: {r.text[:200]}")

        store = GeoPackageStore(path)
        for d in _docs(store, 24, seed=99):  # warm every worker
            post(d)
        rows = []
        for c in levels:
            docs = _docs(store, n, seed=100 + c)
            wall, lat = _run(post, docs, c)
            rows.append(_row("http", c, n, wall, lat))
        return rows
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _row(way, c, n, wall, lat) -> dict:
    return {
        "way": way,
        "concurrency": c,
        "creates": n,
        "per_s": n / wall,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--creates", type=int, default=2000, help="creates per library level")
    ap.add_argument("--http-creates", type=int, default=2000, help="creates per HTTP level")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "intake.md"))
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="tianya-bench-intake-")
    path = os.path.join(tmp, "tianya.gpkg")
    write_sample(path)
    rows = [bench_library(path, args.creates, c) for c in args.levels]
    if args.http_creates:
        rows += bench_http(path, args.http_creates, args.levels)
    lines = [
        "# Case intake (create with automatic dispatch) on the embedded GeoPackage",
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}; sample data (5,600 incidents, 44 communities, "
        "grids); each create = validation + point-in-polygon + rule + working-time "
        "deadline + case number + 1 case row and 3 history rows in one transaction.",
        "",
        "| way | concurrency | creates | creates/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['way']} | {r['concurrency']} | {r['creates']} | {r['per_s']:.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        )
    lines += [
        "",
        "`http`: gunicorn with 3 workers x 4 threads (gthread), the shell, pygeoapi "
        "and the provider; client threads on the same machine.",
        "Reproduce: `python bench/bench_intake.py`.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
