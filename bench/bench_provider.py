"""Our provider versus pygeoapi's own file providers, side by side in one run.

One pygeoapi server (gunicorn, 1 worker, 1 thread, behind our shell) serves the
same incidents four ways: our provider on the GeoPackage, pygeoapi's OGR provider
on the same GeoPackage, its Parquet provider on a GeoParquet export (with a bbox
covering column) and its GeoJSON provider on a GeoJSON export. Each request is
timed sequentially (concurrency 1) after a warm-up; every answer's feature count
is checked against the others, so a peer that ignores a filter is caught.

    python bench/bench_provider.py --incidents 100000 --repeat 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import requests
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from layers.catalogue import LAYERS  # noqa: E402
from layers.gpkg import GeoPackageStore  # noqa: E402
from tianya.config import build_config  # noqa: E402

REQUESTS = {
    "page of 1000": "limit=1000",
    "1 km bbox, limit 1000": "bbox=109.480,18.285,109.4895,18.294&limit=1000",
    "attribute filter (category), limit 1000": "category=street_light&limit=1000",
}


def peers_config(gpkg: str, parquet: str, geojson: str) -> dict:
    cfg = build_config()
    ours = cfg["resources"]["incidents"]
    cfg["resources"] = {"incidents": ours}
    cfg["server"]["limits"] = {"default_items": 100, "max_items": 10000}
    base = {k: v for k, v in ours.items() if k != "providers"}
    common = {"type": "feature", "id_field": "case_no"}
    cfg["resources"]["incidents_ogr"] = dict(
        base,
        providers=[
            dict(
                common,
                name="OGR",
                layer="incidents",
                data={
                    "source_type": "GPKG",
                    "source": gpkg,
                    "source_capabilities": {"paging": True},
                    "source_options": {},
                    "gdal_ogr_options": {},
                },
            )
        ],
    )
    cfg["resources"]["incidents_parquet"] = dict(
        base, providers=[dict(common, name="Parquet", data={"source": parquet})]
    )
    cfg["resources"]["incidents_geojson"] = dict(
        base, providers=[dict(common, name="GeoJSON", data=geojson)]
    )
    return cfg


def prepare(workdir: str, n: int) -> tuple[str, str, str]:
    gpkg = os.path.join(workdir, "incidents.gpkg")
    if not os.path.exists(gpkg):
        subprocess.run(
            [sys.executable, "-m", "tianya.cli", "generate", "--incidents", str(n), "-o", gpkg],
            check=True,
            cwd=ROOT,
        )
    frame = GeoPackageStore(gpkg).read_frame(LAYERS["incidents"])
    for col in frame.columns:  # exports keep datetimes as the same ISO text
        if str(frame[col].dtype).startswith("datetime"):
            frame[col] = frame[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str[:23] + "Z"
    for col in frame.columns:  # plain strings: pygeoapi's Parquet provider skips large_string
        if col != "geometry" and frame[col].dtype.kind not in "biufcM":
            frame[col] = frame[col].astype(object)
    parquet = os.path.join(workdir, "incidents.parquet")
    frame.to_parquet(parquet, write_covering_bbox=True, index=False)
    geojson = os.path.join(workdir, "incidents.geojson")
    if not os.path.exists(geojson):
        frame.to_file(geojson, driver="GeoJSON")
    return gpkg, parquet, geojson


def serve(cfg_path: str, gpkg: str, port: int) -> subprocess.Popen:
    # the server's settings by its environment (create_app reads them)
    env = dict(os.environ, TIANYA_DATA=gpkg, TIANYA_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--threads",
            "1",
            "--timeout",
            "300",
            f"tianya.app:create_app({cfg_path!r})",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/conformance?f=json", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def timed(session, url: str, repeat: int) -> tuple[float, int]:
    r = session.get(url, timeout=600)
    r.raise_for_status()
    n = len(r.json()["features"])
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = session.get(url, timeout=600)
        r.content  # noqa: B018 - read the whole body
        times.append(time.perf_counter() - t0)
    return statistics.median(times), n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "tianya-bench"))
    ap.add_argument("--port", type=int, default=5091)
    ap.add_argument("--output", default=os.path.join(HERE, "results", "provider.md"))
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    gpkg, parquet, geojson = prepare(args.workdir, args.incidents)
    cfg_path = os.path.join(args.workdir, "bench_config.yml")
    with open(cfg_path, "w") as fh:
        yaml.safe_dump(peers_config(gpkg, parquet, geojson), fh, allow_unicode=True)
    proc = serve(cfg_path, gpkg, args.port)
    base = f"http://127.0.0.1:{args.port}/collections"
    rows = []
    try:
        s = requests.Session()
        for name, q in REQUESTS.items():
            res = {}
            for coll in ("incidents", "incidents_ogr", "incidents_parquet", "incidents_geojson"):
                # GeoJSON is slow: fewer repeats keep the run short without changing medians much
                rep = max(3, args.repeat // 5) if coll.endswith("geojson") else args.repeat
                res[coll] = timed(s, f"{base}/{coll}/items?f=json&{q}", rep)
            ours, n = res["incidents"]
            peers = {k: v for k, v in res.items() if k != "incidents"}
            best = min(t for t, _ in peers.values())
            wrong = [k for k, (_, m) in peers.items() if m != n]
            rows.append((name, ours, peers, best / ours, n, wrong))
    finally:
        proc.terminate()
        proc.wait()
    lines = [
        f"# Provider benchmark: {args.incidents:,} incidents, concurrency 1, median of "
        f"{args.repeat} (GeoJSON: {max(3, args.repeat // 5)})",
        "",
        "| request | ours (ms) | OGR (ms) | Parquet (ms) | GeoJSON (ms) | "
        "best peer / ours | features |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ours, peers, ratio, n, wrong in rows:
        cells = [
            f"{peers[k][0] * 1e3:.1f}" + (" ✗" if k in wrong else "")
            for k in ("incidents_ogr", "incidents_parquet", "incidents_geojson")
        ]
        lines.append(f"| {name} | {ours * 1e3:.1f} | {' | '.join(cells)} | {ratio:.1f}× | {n} |")
    lines += [
        "",
        "✗: the peer returned a different number of features than ours "
        "(a filter it ignored or applied differently).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
