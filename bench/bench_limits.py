"""Bounded process runs under load: does the server stay responsive, do runs stay in memory?

Starts ``tianya serve`` (gunicorn, ``--workers``) on the sample GeoPackage, then for
``--seconds`` runs ``--clients`` clients that each submit, one after the other, the heaviest
kernel density the budgets allow (cell_size 50 m and the largest bandwidth whose pixel visits
fit :data:`tianya.plugins.budgets.MAX_KERNEL_VISITS`), while a probe client requests
``GET /collections/incidents/items?limit=1`` every ``--probe-interval`` seconds.  A sampler
records the resident memory of every run process (the children of the workers'
forkservers) every 20 ms.

Reports the probe's latency (p50, p99, max), the runs' answers and latencies, the number of
run processes alive at once and their peak RSS against ``TIANYA_PROCESS_MEMORY_MB``; writes
``bench/results/limits.md``.

    .venv/bin/python bench/bench_limits.py --seconds 60
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.loadkit import free_port, tianya_serve  # noqa: E402


def sample_data(folder: Path) -> str:
    path = folder / "tianya.gpkg"
    if not path.exists():
        from geodata.rasters import write_rasters_from_store
        from geodata.sample import DEFAULT_SEED, write_sample

        write_sample(str(path), seed=DEFAULT_SEED)
        write_rasters_from_store(str(path), str(folder / "rasters"))
    return str(path)


def heaviest_kde(gpkg: str, cell: float = 50.0) -> dict:
    """The largest bandwidth (50 m steps) whose kernel work fits the budgets at ``cell``."""
    from layers.catalogue import LAYERS
    from tianya.plugins import budgets as B
    from tianya.settings import Settings, use

    use(Settings.from_env(data=gpkg))

    width, height = B.extent_m(LAYERS["incidents"])
    best = None
    for bw in range(100, 20_000, 50):
        pixels, visits = B.kernel_work(width, height, bw, cell)
        if pixels > B.MAX_RASTER_CELLS or visits > B.MAX_KERNEL_VISITS:
            break
        best = bw
    return {"collection": "incidents", "cell_size": cell, "bandwidth": best}


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, math.ceil(q / 100 * len(values)) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "tianya-bench-limits"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--probe-interval", type=float, default=0.1)
    ap.add_argument(
        "--slow-bodies",
        type=int,
        default=8,
        help="connections that announce a 100-byte body and send one byte "
        "(reopened when the server closes them)",
    )
    ap.add_argument("--out", default=str(HERE / "results" / "limits.md"))
    args = ap.parse_args()

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    gpkg = sample_data(folder)
    inputs = heaviest_kde(gpkg)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        TIANYA_DATA=gpkg,
        TIANYA_URL=url,
        TIANYA_JOBS=str(folder / "jobs.sqlite"),
        TIANYA_JOB_RESULTS=str(folder / "results"),
        TIANYA_RUN_DIR=str(folder / "runs"),
        TIANYA_JOB_LIMIT_ANONYMOUS="1000",
        TIANYA_RASTERS=str(folder / "rasters"),
    )
    memory_mb = int(env.get("TIANYA_PROCESS_MEMORY_MB", 4096))
    slots = int(env.get("TIANYA_PROCESS_WORKERS", 2))
    log = open(folder / f"server-{port}.log", "w")
    server = subprocess.Popen(
        tianya_serve(port, gpkg, args.workers),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                if requests.get(url + "/conformance?f=json", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start; see " + log.name)
            time.sleep(0.3)
        # warm every worker's forkserver (the first run of a worker preloads the libraries)
        small = {"collection": "incidents", "bandwidth": 800, "cell_size": 400}
        for _ in range(2 * args.workers):
            requests.post(
                f"{url}/processes/kernel-density/execution", json={"inputs": small}, timeout=120
            )
        idle = [_probe(url) for _ in range(50)]

        stop = threading.Event()
        runs: list[tuple[int, float]] = []
        probes: list[float] = []
        rss: list[int] = []
        alive: list[int] = []

        def client():
            while not stop.is_set():
                t = time.perf_counter()
                r = requests.post(
                    f"{url}/processes/kernel-density/execution",
                    json={"inputs": inputs},
                    timeout=900,
                )
                runs.append((r.status_code, time.perf_counter() - t))

        def probe():
            while not stop.is_set():
                probes.append(_probe(url))
                time.sleep(args.probe_interval)

        slow_answers: list[bytes] = []

        def slow_body():
            while not stop.is_set():
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                sock.sendall(
                    b"POST /collections/incidents/items HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100\r\n"
                    b"\r\n{"
                )
                try:
                    slow_answers.append(sock.recv(64)[:12])
                except OSError as err:
                    slow_answers.append(type(err).__name__.encode())
                sock.close()

        def sampler():
            while not stop.is_set():
                children = run_children(server.pid)
                alive.append(len(children))
                for p in children:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.NoSuchProcess:
                        pass
                time.sleep(0.02)

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        threads += [threading.Thread(target=slow_body) for _ in range(args.slow_bodies)]
        threads += [threading.Thread(target=probe), threading.Thread(target=sampler)]
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        log.close()

    ok = [s for c, s in runs if c == 200]
    codes = {c: sum(1 for cc, _ in runs if cc == c) for c, _ in runs}
    lines = [
        "# Bounded process runs under load (`bench_limits.py`)",
        "",
        f"{args.clients} clients each running kernel density {inputs} (the heaviest the budgets "
        f"allow at 50 m cells) for {args.seconds:g} s against `tianya serve --workers "
        f"{args.workers}` (TIANYA_PROCESS_WORKERS={slots}, TIANYA_PROCESS_MEMORY_MB="
        f"{memory_mb}, TIANYA_PROCESS_WAIT_SECONDS="
        f"{env.get('TIANYA_PROCESS_WAIT_SECONDS', 30)}); a probe requests "
        f"`/collections/incidents/items?limit=1` every "
        f"{args.probe_interval:g} s; {args.slow_bodies} slow clients each announce a "
        "100-byte body and send one byte, again as soon as the server answers them. "
        f"{os.cpu_count()} cores, shared with other work.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| probe, idle server: p50 / p99 / max | {_ms(pct(idle, 50))} / {_ms(pct(idle, 99))} "
        f"/ {_ms(max(idle))} |",
        f"| probe under load: p50 / p99 / max ({len(probes)} requests) | "
        f"{_ms(pct(probes, 50))} / {_ms(pct(probes, 99))} / {_ms(max(probes))} |",
        f"| runs finished (by status) | {codes} |",
        f"| run latency p50 / max (s), waiting for a slot included | "
        f"{pct(ok, 50):.1f} / {max(ok, default=float('nan')):.1f} |",
        f"| slow-body connections answered (first bytes) | "
        f"{ {a.decode(errors='replace'): slow_answers.count(a) for a in set(slow_answers)} } |",
        f"| run processes alive at once (max) | {max(alive, default=0)} (bound {slots}) |",
        f"| peak RSS of a run process | {max(rss, default=0) / 2**20:.0f} MiB "
        f"(limit: start + {memory_mb} MiB of address space) |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n", encoding="utf-8")


def _probe(url: str) -> float:
    t = time.perf_counter()
    r = requests.get(f"{url}/collections/incidents/items?limit=1&f=json", timeout=60)
    r.raise_for_status()
    return time.perf_counter() - t


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def run_children(root: int) -> list[psutil.Process]:
    """Run processes under ``root``: children of a forkserver of a gunicorn worker."""

    def forkserver(p):
        try:
            return "forkserver" in " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False

    out = []
    try:
        procs = psutil.Process(root).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for p in procs:
        try:
            parent = p.parent()
        except psutil.NoSuchProcess:
            continue
        if parent is not None and forkserver(parent) and forkserver(p):
            out.append(p)
    return out


if __name__ == "__main__":
    main()
