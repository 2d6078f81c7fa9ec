"""What the HTTP benches share: a free port, ``tianya serve`` as a server process waited
for and stopped, and ``wrk`` run and read.

Used by ``bench_server.py``, ``bench_tiles.py``, ``bench_limits.py`` and ``bench_intake.py``
(``from bench.loadkit import …``, with the repository on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import requests


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tianya_serve(port: int, data: str, workers: int, threads: int | None = None) -> list[str]:
    """The command line of ``tianya serve`` (gunicorn) from this interpreter."""
    cmd = [sys.executable, "-m", "tianya.cli", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    return [*cmd, "--data", data]


class Server:
    """One server process in its own process group, started and waited for.

    Ready when ``GET ready`` answers 2xx, within ``wait`` seconds; ``items`` is the path a
    bench loads (``bench_server.py``); ``cwd`` is the process's folder.
    """

    def __init__(
        self,
        name: str,
        cmd: list[str],
        env: dict,
        port: int,
        log: str,
        *,
        ready: str = "/collections?f=json",
        wait: float = 180,
        items: str = "",
        cwd: str | None = None,
    ):
        self.name, self.port, self.items = name, port, items
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )
        deadline = time.time() + wait
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {open(log).read()[-2000:]}")
            try:
                if requests.get(self.url + ready, timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{name} did not start: {open(log).read()[-2000:]}")

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 20 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def load_arguments(ap) -> None:
    """The options every load bench has: ``--pg`` (default ``$TIANYA_TEST_PG``),
    ``--duration`` (s), ``--workers``, ``--threads`` and ``--concurrency`` (a list)."""
    ap.add_argument(
        "--pg",
        default=os.environ.get("TIANYA_TEST_PG"),
        help="postgresql:// URL of the database [$TIANYA_TEST_PG]",
    )
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8])


def save(res: dict, text: str, output: str, raw: str | None = None) -> None:
    """Write the results ``res`` as JSON to ``raw`` (if given) and the report ``text`` to
    ``output``, and print the report."""
    if raw:
        with open(raw, "w") as fh:
            json.dump(res, fh, indent=1)
    with open(output, "w") as fh:
        fh.write(text)
    print(text)


def wrk(url: str, conc: int, duration: float, script: str | None = None) -> dict:
    """``wrk`` at ``conc`` connections (2 threads at most) for ``duration`` seconds, with
    ``--latency`` and a 120 s timeout (and a Lua ``script``, if given), read by
    :func:`parse_wrk`."""
    cmd = ["wrk", f"-t{min(conc, 2)}", f"-c{conc}", f"-d{duration:g}s", "--timeout", "120s"]
    cmd += ["--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    """Requests/s, requests, mean latency (ms), non-2xx/3xx answers and socket errors of a
    ``wrk`` report.

    >>> r = parse_wrk('''Running 1s test @ http://127.0.0.1:1/
    ...   Thread Stats   Avg      Stdev     Max   +/- Stdev
    ...     Latency   250.00us  100.00us   1.00ms   90.00%
    ...   400 requests in 1.00s, 40.00KB read
    ...   Non-2xx or 3xx responses: 3
    ... Requests/sec:    399.50''')
    >>> r["rps"], r["requests"], r["latency_ms"], r["non2xx"], r["socket_errors"]
    (399.5, 400, 0.25, 3, '')
    """
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    reqs = re.search(r"(\d+) requests in", out)
    lat = re.search(r"Latency\s+([\d.]+)(us|ms|s)\s", out)
    if not (rps and reqs and lat):
        raise RuntimeError(f"not a wrk report: {out[-2000:]}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1000.0}[lat.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(rps.group(1)),
        "requests": int(reqs.group(1)),
        "latency_ms": float(lat.group(1)) * scale,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errs.group(1) if errs else "",
    }


# --- stock pygeoapi ------------------------------------------------------------------------------

#: pygeoapi's console script, run by a given interpreter (a peer venv's, or this one).
_PYGEOAPI_CLI = "import sys; from pygeoapi import cli; sys.exit(cli())"


def pygeoapi_data(pg: str) -> str:
    """The SQLAlchemy URL (psycopg 3) of the database of a ``postgresql://`` URL, for
    pygeoapi's PostgreSQL providers."""
    from urllib.parse import urlsplit

    from layers.postgis import split_url

    p = urlsplit(split_url(pg)[0])
    return f"postgresql+psycopg://{p.username}:{p.password}@{p.hostname}:{p.port or 5432}{p.path}"


def pygeoapi_config(port: int, resources: dict) -> dict:
    """A pygeoapi configuration serving ``resources`` on 127.0.0.1:``port`` (errors logged
    only, placeholder metadata)."""
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": 100, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "bench",
                "keywords": ["bench"],
                "terms_of_service": "",
                "url": "http://example.org",
            },
            "license": {"name": "CC-BY 4.0", "url": "http://example.org"},
            "provider": {"name": "bench", "url": "http://example.org"},
            "contact": {"name": "bench"},
        },
        "resources": resources,
    }


def pygeoapi_pg_collection(
    table: str, title: str, key: str, data: str, schema: str, bbox: list[float]
) -> dict:
    """A pygeoapi collection of PostGIS table ``schema.table`` (key ``key``, geometry
    ``geom``) through its ``PostgreSQL`` feature provider, on database ``data``
    (:func:`pygeoapi_data`); more providers can be appended to its ``providers``."""
    return {
        "type": "collection",
        "title": title,
        "description": title,
        "keywords": [table],
        "extents": {
            "spatial": {"bbox": bbox, "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
        },
        "providers": [
            {
                "type": "feature",
                "name": "PostgreSQL",
                "data": data,
                "options": {"search_path": [schema]},
                "id_field": key,
                "table": table,
                "geom_field": "geom",
            }
        ],
    }


def start_pygeoapi(
    cfg: dict,
    folder: str,
    workers: int,
    threads: int,
    python: str = sys.executable,
    **server,
) -> Server:
    """Stock pygeoapi on ``cfg`` (written to ``folder``, its OpenAPI document generated
    there) under gunicorn (``gthread``, 300 s timeout) run by ``python``; ``server``: more
    :class:`Server` arguments."""
    import yaml

    port = cfg["server"]["bind"]["port"]
    path = os.path.join(folder, "pygeoapi.yml")
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh, allow_unicode=True)
    openapi = os.path.join(folder, "pygeoapi-openapi.yml")
    env = dict(os.environ, PYGEOAPI_CONFIG=path, PYGEOAPI_OPENAPI=openapi)
    subprocess.run(
        [python, "-c", _PYGEOAPI_CLI, "openapi", "generate", path, "--output-file", openapi],
        check=True,
        env=env,
        capture_output=True,
    )
    cmd = [python, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    cmd += ["--workers", str(workers), "--threads", str(threads)]
    cmd += ["--worker-class", "gthread", "--timeout", "300", "pygeoapi.flask_app:APP"]
    log = os.path.join(folder, "pygeoapi.log")
    return Server("pygeoapi", cmd, env, port, log, **server)
