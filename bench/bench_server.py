"""HTTP benchmark: our server vs stock pygeoapi (PostgreSQL provider) vs tipg on one table.

One 1M-incident PostGIS table (schema ``bench``, made with ``tianya generate
--incidents 1000000`` + ``tianya load-postgis`` when missing), four items
requests — first page (limit 100), a 1 km bbox (limit 1000), offset 500000
(limit 1000), a category filter (limit 100) — plus ``/collections``, each at
concurrency 1 and 8 with ``wrk``; one server at a time, all with the same
worker count. PostgreSQL's own time for the same pages (plain SQL from psycopg,
median) is the floor.

Usage::

    eval "$(bash .ci/postgis.sh)"
    python bench/bench_server.py --pg "$TIANYA_TEST_PG" [--duration 10] [--workers 2]

Needs ``wrk`` (``apt-get install wrk``), ``sqlalchemy``/``geoalchemy2`` in this venv
for stock pygeoapi, and tipg + uvicorn in a separate venv (``--tipg-venv``,
default ``/work/tipg-venv``). Writes ``bench/results/server.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from bench import loadkit  # noqa: E402
from layers.catalogue import LAYERS  # noqa: E402
from layers.postgis import split_url  # noqa: E402

SCHEMA = "bench"
N = 1_000_000
BBOX = (109.4648, 18.2918, 109.4742, 18.3008)  # about 1 km x 1 km in the urban core
CATEGORY = "exposed_garbage"
#: name -> (items query, SQL condition and tail for the floor)
REQUESTS = {
    "first page (limit 100)": ("limit=100", "", "LIMIT 100"),
    "1 km bbox (limit 1000)": (
        "bbox=" + ",".join(map(str, BBOX)) + "&limit=1000",
        "WHERE geom && ST_MakeEnvelope({}, {}, {}, {}, 4326)".format(*BBOX),
        "LIMIT 1000",
    ),
    "offset 500000 (limit 1000)": ("offset=500000&limit=1000", "", "LIMIT 1000 OFFSET 500000"),
    f"category = {CATEGORY} (limit 100)": (
        f"category={CATEGORY}&limit=100",
        f"WHERE category = '{CATEGORY}'",
        "LIMIT 100",
    ),
}
COLLECTIONS = "/collections"


# --- data ---------------------------------------------------------------------------------------


def ensure_table(pg: str) -> None:
    """The 1M-incident table (and the other sample layers) in schema ``bench``."""
    conninfo, _ = split_url(pg)
    with psycopg.connect(conninfo) as c:
        n = c.execute(
            "SELECT COALESCE((SELECT reltuples::bigint FROM pg_class WHERE oid = "
            "to_regclass('bench.incidents')), 0)"
        ).fetchone()[0]
        others = c.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", [SCHEMA]
        ).fetchone()[0]
    if n >= N * 0.99 and others >= len(LAYERS):
        return
    tmp = tempfile.mkdtemp(prefix="bench-")
    gpkg = os.path.join(tmp, "bench.gpkg")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tianya.cli",
            "generate",
            "-o",
            gpkg,
            "--incidents",
            str(N),
            "--no-rasters",
        ],
        check=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tianya.cli",
            "load-postgis",
            f"{pg}?schema={SCHEMA}",
            "--data",
            gpkg,
        ],
        check=True,
    )
    shutil.rmtree(tmp)


def floor_ms(pg: str, repeat: int = 30) -> dict[str, float]:
    """Median time of the plain page SQL (all columns, GeoJSON geometry), per request."""
    conninfo, _ = split_url(pg)
    cols = ", ".join(f'"{f.name}"' for f in LAYERS["incidents"].fields)
    out = {}
    with psycopg.connect(conninfo) as c:
        for name, (_, cond, tail) in REQUESTS.items():
            sql = (
                f"SELECT case_no, ST_AsGeoJSON(geom), {cols} FROM {SCHEMA}.incidents "
                f"{cond} ORDER BY fid {tail}"
            )
            times = []
            for i in range(repeat + 3):
                t0 = time.perf_counter()
                c.execute(sql).fetchall()
                if i >= 3:
                    times.append((time.perf_counter() - t0) * 1000)
            out[name] = statistics.median(times)
    return out


# --- servers ------------------------------------------------------------------------------------


def start_tianya(pg: str, workers: int, threads: int, tmp: str) -> loadkit.Server:
    port = loadkit.free_port()
    url = f"{pg}?schema={SCHEMA}"
    env = dict(
        os.environ,
        TIANYA_DATA=url,
        TIANYA_URL=f"http://127.0.0.1:{port}",
        TIANYA_RASTERS=os.path.join(tmp, "rasters"),
    )
    cmd = loadkit.tianya_serve(port, url, workers, threads)
    return _server("tianya", cmd, env, "/collections/incidents/items?f=json", port, tmp)


def _server(
    name: str, cmd: list[str], env: dict, items: str, port: int, tmp: str
) -> loadkit.Server:
    log = os.path.join(tmp, f"{name}.log")
    return loadkit.Server(
        name, cmd, env, port, log, ready=COLLECTIONS, wait=120, items=items, cwd=tmp
    )


def start_pygeoapi(pg: str, workers: int, threads: int, tmp: str) -> loadkit.Server:
    """Stock pygeoapi 0.24, PostgreSQL provider on psycopg 3 (``postgresql+psycopg://``)."""
    port = loadkit.free_port()
    data = loadkit.pygeoapi_data(pg)
    # every table with a geometry, as tipg lists them (the same /collections work)
    resources = {
        lay.id: loadkit.pygeoapi_pg_collection(
            lay.id, lay.en, lay.key, data, SCHEMA, [109.18, 18.19, 109.54, 18.63]
        )
        for lay in LAYERS.values()
        if lay.geometry_type
    }
    return loadkit.start_pygeoapi(
        loadkit.pygeoapi_config(port, resources),
        tmp,
        workers,
        threads,
        items="/collections/incidents/items?f=json",
        ready=COLLECTIONS,
        wait=120,
        cwd=tmp,
    )


def start_tipg(pg: str, workers: int, venv: str, tmp: str) -> loadkit.Server:
    port = loadkit.free_port()
    env = dict(
        os.environ,
        DATABASE_URL=split_url(pg)[0],
        TIPG_DB_SCHEMAS=json.dumps([SCHEMA]),
        TIPG_MAX_FEATURES_PER_QUERY="10000",
    )
    cmd = [
        os.path.join(venv, "bin", "uvicorn"),
        "tipg.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    return _server("tipg", cmd, env, f"/collections/{SCHEMA}.incidents/items?f=geojson", port, tmp)


# --- load ---------------------------------------------------------------------------------------


def check(server: loadkit.Server, path: str) -> dict:
    """One request before the load: status, size and what came back."""
    t0 = time.perf_counter()
    r = requests.get(server.url + path, timeout=300)
    dt = (time.perf_counter() - t0) * 1000
    info = {"status": r.status_code, "bytes": len(r.content), "ms": dt}
    if r.ok and "items" in path:
        doc = r.json()
        info["returned"] = len(doc.get("features", []))
        info["matched"] = doc.get("numberMatched")
        info["first"] = doc["features"][0]["id"] if doc.get("features") else None
    elif r.ok:
        info["collections"] = len(r.json().get("collections", []))
    return info


def run(args) -> dict:
    ensure_table(args.pg)
    floors = floor_ms(args.pg)
    tmp = tempfile.mkdtemp(prefix="bench-server-")
    results: dict = {"floor_ms": floors, "servers": {}}
    starters = {
        "tianya": lambda: start_tianya(args.pg, args.workers, args.threads, tmp),
        "pygeoapi": lambda: start_pygeoapi(args.pg, args.workers, args.threads, tmp),
        "tipg": lambda: start_tipg(args.pg, args.workers, args.tipg_venv, tmp),
    }
    for name in args.servers:
        print(f"== {name}", flush=True)
        srv = starters[name]()
        res = results["servers"][name] = {}
        try:
            paths = {k: f"{srv.items}&{q}" for k, (q, _, _) in REQUESTS.items()}
            paths["/collections"] = COLLECTIONS + "?f=json"
            for label, path in paths.items():
                info = check(srv, path)
                check(srv, path)  # warm both workers' caches
                cell = res[label] = {"check": info}
                print(f"  {label}: {info}", flush=True)
                if info["status"] != 200:
                    continue
                for c in args.concurrency:
                    cell[f"c{c}"] = w = loadkit.wrk(srv.url + path, c, args.duration)
                    print(
                        f"    c={c}: {w['rps']:.1f} req/s, {w['latency_ms']:.1f} ms "
                        f"({w['requests']} requests, non-2xx {w['non2xx']})",
                        flush=True,
                    )
        finally:
            srv.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return results


# --- report -------------------------------------------------------------------------------------


def report(res: dict, args) -> str:
    s = res["servers"]
    labels = list(REQUESTS) + ["/collections"]
    lines = [
        "# HTTP benchmark — 1,000,000 incidents in PostGIS, three servers",
        "",
        f"`python bench/bench_server.py` ({time.strftime('%Y-%m-%d')}); {os.cpu_count()} CPUs "
        "shared by wrk, the server and PostgreSQL 15; each server with "
        f"{args.workers} worker processes ({args.threads} threads each for the gunicorn "
        "servers; tipg: uvicorn workers); one server at a time; wrk "
        f"{args.duration:g} s per cell after two warm-up requests. Requests/s; higher is "
        "better.",
        "",
        "| request | c | tianya | pygeoapi | tipg | tianya / best peer | tianya ms (c=1) | "
        "floor ms | tianya / floor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(name, label, c):
        return s.get(name, {}).get(label, {}).get(f"c{c}")

    for label in labels:
        for c in args.concurrency:
            row = [label, str(c)]
            vals = {}
            for name in ("tianya", "pygeoapi", "tipg"):
                w = cell(name, label, c)
                st = s.get(name, {}).get(label, {}).get("check", {}).get("status")
                if w is None:
                    row.append(f"HTTP {st}" if st else "—")
                    continue
                vals[name] = w["rps"]
                bad = f" ({w['non2xx']} non-2xx)" if w["non2xx"] else ""
                row.append(f"{w['rps']:,.1f}{bad}")
            peers = [v for k, v in vals.items() if k != "tianya"]
            row.append(
                f"{vals['tianya'] / max(peers):,.1f}×" if peers and "tianya" in vals else "—"
            )
            t = cell("tianya", label, 1)
            fl = res["floor_ms"].get(label)
            if c == args.concurrency[0] and t and fl:
                row += [f"{t['latency_ms']:.2f}", f"{fl:.2f}", f"{t['latency_ms'] / fl:.1f}×"]
            else:
                row += ["", "", ""]
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "What each server returned (one request before the load):",
        "",
        "| request | server | HTTP | features | numberMatched | first id | bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in labels:
        for name in ("tianya", "pygeoapi", "tipg"):
            ch = s.get(name, {}).get(label, {}).get("check")
            if ch:
                lines.append(
                    f"| {label} | {name} | {ch['status']} | "
                    f"{ch.get('returned', ch.get('collections', ''))} | "
                    f"{ch.get('matched', '')} | {ch.get('first', '')} | "
                    f"{ch['bytes']:,} |"
                )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    loadkit.load_arguments(ap)
    ap.add_argument(
        "--servers", type=lambda s: s.split(","), default=["tianya", "pygeoapi", "tipg"]
    )
    ap.add_argument("--tipg-venv", default="/work/tipg-venv")
    ap.add_argument("--output", default=os.path.join(HERE, "results", "server.md"))
    ap.add_argument("--json", default=None, help="also write the raw results here")
    args = ap.parse_args(argv)
    if not args.pg:
        ap.error("--pg or $TIANYA_TEST_PG is required")
    res = run(args)
    loadkit.save(res, report(res, args), args.output, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
