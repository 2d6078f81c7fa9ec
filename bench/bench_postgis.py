"""Benchmark the PostGIS store on a large incidents table, against PostgreSQL's floor.

Store level (no HTTP): the four requests of issue 5 — first page (limit 100), a 1 km
bbox (limit 1000), offset 500,000 (limit 1000), a category filter (limit 100) — each
through ``PostGISStore.query`` (with numberMatched as the provider asks for it),
against

* the *floor*: the same page as one plain SQL statement (``ST_AsGeoJSON`` rows,
  fetched, no count, no JSON parsing), i.e. what PostgreSQL itself needs;
* the *naive* plan peers use: the same statement with ``OFFSET`` and a
  ``count(*)`` of the whole match (what tipg and pygeoapi's provider pay per page).

Usage::

    eval "$(.ci/postgis.sh)"
    python bench/bench_postgis.py --rows 1000000 [--url $TIANYA_TEST_PG] [--out bench/results]

The table is generated (``geodata.sample.generate``) into schema ``bench`` once and
reused while its row count matches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import psycopg

from layers.catalogue import LAYERS
from layers.postgis import PostGISStore, split_url
from layers.query import Query, parse_filter

LAYER = LAYERS["incidents"]


def ensure_table(store: PostGISStore, rows: int, seed: int) -> None:
    if store.has_layer(LAYER):
        with store.transaction() as c:
            n = c.execute(f"SELECT count(*) FROM {store.table(LAYER)}").fetchone()[0]
        if n == rows:
            return
    from geodata.sample import generate

    t0 = time.perf_counter()
    frame = generate(seed=seed, n_incidents=rows)["incidents"]
    t1 = time.perf_counter()
    store.write_frame(LAYER, frame)
    t2 = time.perf_counter()
    print(
        f"generated {rows:,} incidents in {t1 - t0:.1f} s, loaded in {t2 - t1:.1f} s "
        f"({rows / (t2 - t1):,.0f} rows/s)"
    )


def timed(fn, seconds: float, min_runs: int = 5) -> list[float]:
    fn()  # warm up (and prepare statements)
    out, end = [], time.perf_counter() + seconds
    while len(out) < min_runs or time.perf_counter() < end:
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def concurrent(fn, threads: int, seconds: float) -> float:
    """Requests per second with ``threads`` callers."""
    stop, counts = time.perf_counter() + seconds, [0] * threads

    def work(i):
        while time.perf_counter() < stop:
            fn()
            counts[i] += 1

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--url",
        default=os.environ.get("TIANYA_TEST_PG", "postgresql://tianya:tianya@localhost/tianya"),
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", default=None, help="folder for postgis.md")
    args = ap.parse_args()

    store = PostGISStore(args.url, schema="bench", pool_max=10)
    ensure_table(store, args.rows, args.seed)
    t = store.table(LAYER)
    conninfo, _ = split_url(args.url)
    raw = psycopg.connect(conninfo, autocommit=True)

    # a dense 1 km box (around the busiest 0.01° cell) and the commonest category
    cx, cy = raw.execute(
        f"SELECT round(ST_X(geom)::numeric, 2), round(ST_Y(geom)::numeric, 2) "
        f"FROM {t} GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    dx, dy = 0.5 / 105.6, 0.5 / 110.6  # ~0.5 km in degrees at 18.3°N
    bbox = (float(cx) - dx, float(cy) - dy, float(cx) + dx, float(cy) + dy)
    cat = raw.execute(
        f"SELECT category FROM {t} GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]

    geo = "ST_AsGeoJSON(geom, 15, 0)"
    cols = ", ".join(f'"{f.name}"' for f in LAYER.fields)
    env = "ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
    cases = {
        "first page (limit 100)": (
            Query(limit=100),
            (f"SELECT case_no, {geo}, {cols} FROM {t} ORDER BY fid LIMIT 100", []),
            (f"SELECT count(*) FROM {t}", []),
        ),
        "1 km bbox (limit 1000)": (
            Query(bbox=bbox, limit=1000),
            (
                f"SELECT case_no, {geo}, {cols} FROM {t} WHERE geom && {env} ORDER BY fid "
                "LIMIT 1000",
                list(bbox),
            ),
            (f"SELECT count(*) FROM {t} WHERE geom && {env}", list(bbox)),
        ),
        "offset 500000 (limit 1000)": (
            Query(offset=min(500_000, args.rows // 2), limit=1000),
            (
                f"SELECT case_no, {geo}, {cols} FROM {t} ORDER BY fid LIMIT 1000 OFFSET %s",
                [min(500_000, args.rows // 2)],
            ),
            (f"SELECT count(*) FROM {t}", []),
        ),
        f"category = {cat} (limit 100)": (
            Query(where=parse_filter(f"category = '{cat}'"), limit=100),
            (
                f"SELECT case_no, {geo}, {cols} FROM {t} WHERE category = %s ORDER BY fid "
                "LIMIT 100",
                [cat],
            ),
            (f"SELECT count(*) FROM {t} WHERE category = %s", [cat]),
        ),
    }

    lines = [
        f"# PostGIS store benchmark — {args.rows:,} incidents, store level (no HTTP)",
        "",
        f"{os.cpu_count()} CPUs; median of ≥{args.seconds:g} s per case; c=8 is 8 threads "
        "sharing one process (GIL) and one 10-connection pool.",
        "",
        "| request | store ms | floor ms | store/floor | naive page+count(*) ms | "
        "naive/store | store req/s c=1 | store req/s c=8 | numberMatched |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (q, (fsql, fparams), (csql, cparams)) in cases.items():
        page = store.query(LAYER, q)
        s = statistics.median(timed(lambda q=q: store.query(LAYER, q), args.seconds))
        f = statistics.median(
            timed(lambda a=fsql, b=fparams: raw.execute(a, b).fetchall(), args.seconds)
        )

        def naive(a=fsql, b=fparams, c=csql, d=cparams):
            raw.execute(a, b).fetchall()
            raw.execute(c, d).fetchone()

        n = statistics.median(timed(naive, args.seconds))
        c8 = concurrent(lambda q=q: store.query(LAYER, q), 8, args.seconds)
        lines.append(
            f"| {name} | {s * 1e3:.2f} | {f * 1e3:.2f} | {s / f:.2f} | {n * 1e3:.1f} | "
            f"{n / s:.1f} | {1 / s:,.0f} | {c8:,.0f} | "
            f"{page.number_matched if page.number_matched is not None else 'omitted'} "
            f"({page.number_returned} returned) |"
        )
    print("\n".join(lines))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "postgis.md"), "w") as fh:
            fh.write("\n".join(lines) + "\n")
    store.close()
    raw.close()


if __name__ == "__main__":
    main()
