"""The server on PostGIS: switching by TIANYA_DATA, the loader CLI, vector tiles, resilience.

Needs ``TIANYA_TEST_PG`` (fails under ``CI`` without it). The PostgreSQL restart
test stops and starts the cluster (``pg_ctlcluster``): it runs under ``CI`` or with
``TIANYA_TEST_PG_RESTART=1``.
"""

from __future__ import annotations

import fcntl
import math
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time

import mapbox_vector_tile
import psycopg
import pytest
import requests
from casekit import Client, feature
from conftest import KEYS, LiveServer
from stores import load_schema, with_options

from layers.postgis import split_url

pytestmark = pytest.mark.postgis


# --- switching by configuration -----------------------------------------------------------------


def test_ogrinfo_reads_every_collection_from_a_postgresql_url(live_server_pg, sample_data):
    assert "://" in live_server_pg.data
    env = dict(os.environ, GDAL_HTTP_HEADERS=f"Authorization: Bearer {KEYS['admin']}")
    out = subprocess.run(
        ["ogrinfo", "-ro", "-so", "-al", f"OAPIF:{live_server_pg.url}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    for lid, frame in sample_data.items():
        block = out.stdout.split(f"Layer name: {lid}\n", 1)[1].split("Layer name:", 1)[0]
        assert f"Feature Count: {len(frame)}" in block, lid
    log = open(live_server_pg.log.name).read()
    assert "generating the sample data" not in log  # a URL is never a GeoPackage to make
    assert f"from {live_server_pg.data}" in log


def _drain(fd: int) -> str:
    """Everything written to a pseudo-terminal whose other end is closed."""
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the writer is gone and nothing is left
            break
        if not chunk:
            break
        out += chunk
    os.close(fd)
    return out.decode("utf-8", "replace")


def test_cli_load_postgis(sample_gpkg, pg_url, sample_data):
    url = with_options(pg_url, schema="cli_load_test")
    conninfo, _ = split_url(pg_url)
    try:
        # stderr on a terminal: the CLI draws progress only there (not in logs or pipes)
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a window
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "tianya.cli",
                "load-postgis",
                url,
                "--data",
                sample_gpkg,
                "--layers",
                "departments,rivers",
            ],
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=120,
        )
        os.close(slave)
        tty = _drain(master)
        assert out.returncode == 0, tty
        assert "100%" in tty  # the tqdm bar
        assert f"{len(sample_data['rivers']):>9,}" in out.stdout
        with psycopg.connect(conninfo) as c:
            n = c.execute("SELECT count(*) FROM cli_load_test.rivers").fetchone()[0]
        assert n == len(sample_data["rivers"])
        bad = subprocess.run(
            [sys.executable, "-m", "tianya.cli", "load-postgis", "--data", sample_gpkg],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k != "TIANYA_DATA"},
        )
        assert bad.returncode == 2 and "postgresql://" in bad.stderr
    finally:
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute("DROP SCHEMA IF EXISTS cli_load_test CASCADE")


# --- vector tiles --------------------------------------------------------------------------------


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    n = 2**z

    def lat(row):
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def test_vector_tile_holds_the_features_inside_it(live_server_pg, sample_data):
    inc = sample_data["incidents"]
    z = 14
    x, y = tile_of(109.4695, 18.2963, z)
    r = live_server_pg.get(f"/collections/incidents/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    tile = mapbox_vector_tile.decode(r.content)
    feats = tile["incidents"]["features"]
    x0, y0, x1, y1 = tile_bounds(z, x, y)
    px, py = inc.geometry.x, inc.geometry.y
    inside = inc.loc[(px >= x0) & (px < x1) & (py > y0) & (py <= y1), "case_no"]
    assert len(inside) > 20
    assert sorted(f["properties"]["id"] for f in feats) == sorted(inside)
    # tile coordinates match the points (4096 units per tile, y down in MVT)
    by_id = inc.set_index("case_no")
    for f in feats[:50]:
        g = by_id.loc[f["properties"]["id"], "geometry"]
        tx, ty = f["geometry"]["coordinates"]
        mx = (g.x + 180) / 360 * 2**z - x
        my = (1 - math.asinh(math.tan(math.radians(g.y))) / math.pi) / 2 * 2**z - y
        assert abs(tx - mx * 4096) <= 1 and abs(ty - (4096 - my * 4096)) <= 1
    # properties follow the caller's role
    props = feats[0]["properties"]
    assert "category" in props and "reporter_phone" not in props
    r = live_server_pg.get(
        f"/collections/incidents/tiles/WebMercatorQuad/{z}/{y}/{x}", role="dispatcher"
    )
    assert (
        "reporter_phone"
        in mapbox_vector_tile.decode(r.content)["incidents"]["features"][0]["properties"]
    )


def test_tiles_metadata_and_errors(live_server_pg):
    ts = live_server_pg.get("/collections/urban_fixtures/tiles").json()["tilesets"]
    assert ts[0]["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    item = next(ln for ln in ts[0]["links"] if ln["rel"] == "item")
    assert item["href"].endswith("/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}")
    meta = live_server_pg.get("/collections/urban_fixtures/tiles/WebMercatorQuad").json()
    assert meta["dataType"] == "vector"
    g = live_server_pg.get
    assert g("/collections/incidents/tiles/WebMercatorQuad/3/0/0").status_code == 204  # empty
    assert g("/collections/rivers/tiles/WebMercatorQuad/3/3/6").status_code == 404  # not points
    assert g("/collections/incidents/tiles/WorldCRS84Quad/3/3/6").status_code == 404
    assert g("/collections/incidents/tiles/WebMercatorQuad/3/9/0").status_code == 404
    r = g("/collections/incidents/tiles/WebMercatorQuad/a/0/0")
    assert r.status_code == 400 and "integers" in r.json()["description"]
    assert g("/collections/poverty_relief/tiles/WebMercatorQuad/0/0/0").status_code == 401
    assert (
        g("/collections/poverty_relief/tiles/WebMercatorQuad/0/0/0", role="admin").status_code
        == 200
    )


# --- resilience ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def writable_pg(sample_gpkg, pg_url):
    """A private copy of the sample in its own schema."""
    return load_schema(sample_gpkg, pg_url, prefix="resil")


def test_server_restart_keeps_data_and_serves(writable_pg):
    srv = LiveServer(writable_pg)
    try:
        case_no = Client(srv).create_ok(feature())
    finally:
        srv.stop()
    srv = LiveServer(writable_pg)
    try:
        r = Client(srv).item(case_no)
        assert r.status_code == 200 and r.json()["properties"]["category"] == "manhole_cover"
    finally:
        srv.stop()


def test_statement_timeout_is_a_clear_503_not_a_hung_worker(writable_pg):
    conninfo, opts = split_url(writable_pg)
    srv = LiveServer(with_options(writable_pg, statement_timeout=1))
    try:
        assert srv.get("/collections/incidents/items", params={"limit": 5}).status_code == 200
        locker = psycopg.connect(conninfo)
        try:
            locker.execute(f'LOCK TABLE "{opts["schema"]}".incidents IN ACCESS EXCLUSIVE MODE')
            results = []

            def hit():
                t0 = time.perf_counter()
                r = srv.get("/collections/incidents/items", params={"limit": 5, "offset": 3})
                results.append((r.status_code, r.json(), time.perf_counter() - t0))

            threads = [threading.Thread(target=hit) for _ in range(6)]  # more than one worker
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert len(results) == 6
            for status, body, secs in results:
                assert status == 503, body
                assert (
                    "timed out" in body["description"]
                    and "statement_timeout" in body["description"]
                )
                assert secs < 10
            # other collections still answer while the incidents table is locked
            assert srv.get("/collections/rivers/items", params={"limit": 2}).status_code == 200
        finally:
            locker.close()  # rolls back: the lock goes
        r = srv.get("/collections/incidents/items", params={"limit": 5, "offset": 3})
        assert r.status_code == 200 and len(r.json()["features"]) == 5
    finally:
        srv.stop()


def _pg_ctl(action: str) -> None:
    cmd = [
        "pg_ctlcluster",
        os.environ.get("PG_VERSION", "15"),
        os.environ.get("PG_CLUSTER", "main"),
        action,
    ]
    if os.geteuid() != 0:
        cmd = ["sudo", *cmd]
    subprocess.run(cmd, check=True, timeout=120)


def _wait_pg(conninfo: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            psycopg.connect(conninfo, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.3)
    raise RuntimeError("PostgreSQL did not come back")


@pytest.mark.exclusive  # restarts PostgreSQL: no other test may use it meanwhile
@pytest.mark.skipif(
    not (os.environ.get("CI") or os.environ.get("TIANYA_TEST_PG_RESTART")),
    reason="restarts the PostgreSQL server: set TIANYA_TEST_PG_RESTART=1",
)
def test_postgresql_restart_while_the_server_runs(writable_pg):
    conninfo, _ = split_url(writable_pg)
    srv = LiveServer(writable_pg)
    session = requests.Session()

    def get(lid="incidents"):
        return session.get(f"{srv.url}/collections/{lid}/items", params={"limit": 3}, timeout=60)

    try:
        for _ in range(8):  # every worker holds pooled connections
            assert get().status_code == 200
        _pg_ctl("restart")
        _wait_pg(conninfo)
        for lid in ("incidents", "rivers", "incidents", "communities") * 3:
            r = get(lid)
            assert r.status_code == 200, r.text[:300]  # stale connections replaced
        _pg_ctl("stop")
        try:
            t0 = time.perf_counter()
            r = get()
            assert r.status_code == 503 and "unavailable" in r.json()["description"]
            assert time.perf_counter() - t0 < 30
        finally:
            _pg_ctl("start")
            _wait_pg(conninfo)
        for _ in range(6):
            assert get().status_code == 200
    finally:
        srv.stop()
