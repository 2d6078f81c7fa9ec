"""OGC API - Processes through the live server: every analysis sync and async, errors, restarts.

Each process runs against the session sample GeoPackage on a real gunicorn server (two
workers) with a private job database, and its result is compared with a direct call of the
library on the same (filtered) data.  The planted patterns of :func:`geodata.sample.
planted_patterns` are the ground truth.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import time
import warnings

import numpy as np
import pytest
import requests
import shapely
from conftest import KEYS, LiveServer
from pygeoapi.process.base import BaseProcessor
from shapely.geometry import shape

from geodata.sample import planted_patterns
from layers.catalogue import LAYERS
from layers.errors import StoreUnavailable
from layers.gpkg import GeoPackageStore
from layers.query import Query, parse_filter, parse_interval

pytestmark = pytest.mark.timeout(300)

PROCESS_IDS = (
    "hot-spots",
    "optimized-hot-spots",
    "local-moran",
    "kernel-density",
    "density-clusters",
    "emerging-hot-spots",
)
HOTSPOTS = [p for p in planted_patterns() if p.kind == "hotspot"]
EMERGING = [p for p in planted_patterns() if p.kind == "emerging"]
FILTER = "category <> 'road_cleaning'"
INTERVAL = "2025-12-01T00:00:00Z/.."


def _env(tmp) -> dict:
    # many concurrent anonymous jobs below: the limit of unfinished jobs is tested in test_jobs
    return {
        "TIANYA_JOBS": str(tmp / "jobs.sqlite"),
        "TIANYA_JOB_RESULTS": str(tmp / "results"),
        "TIANYA_JOB_LIMIT_ANONYMOUS": "100",
    }


@pytest.fixture(scope="module")
def jobs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("jobs")


@pytest.fixture(scope="module")
def server(sample_gpkg, jobs_dir):
    """A live server with its own job database (two gunicorn workers)."""
    s = LiveServer(sample_gpkg, extra_env=_env(jobs_dir), workers=2)
    yield s
    s.stop()


def execute(server, pid, inputs, role=None, asynchronous=False):
    headers = {"Prefer": "respond-async"} if asynchronous else {}
    headers.update(_auth(role))
    return requests.post(
        f"{server.url}/processes/{pid}/execution",
        json={"inputs": inputs},
        headers=headers,
        timeout=120,
    )


def _auth(role) -> dict:
    return {"Authorization": f"Bearer {KEYS[role]}"} if role else {}


def wait_for_job(server, job_id, timeout=120, role=None) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(f"{server.url}/jobs/{job_id}?f=json", headers=_auth(role), timeout=30)
        assert r.status_code == 200, r.text
        status = r.json()
        if status["status"] in ("successful", "failed", "dismissed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def run_async(server, pid, inputs, role=None):
    r = execute(server, pid, inputs, role=role, asynchronous=True)
    assert r.status_code == 201, r.text
    job_id = r.json()["jobID"]
    assert r.headers["Location"].endswith(f"/jobs/{job_id}")
    status = wait_for_job(server, job_id, role=role)
    assert status["status"] == "successful", status
    res = requests.get(
        f"{server.url}/jobs/{job_id}/results?f=json", headers=_auth(role), timeout=60
    )
    assert res.status_code == 200, res.text
    return job_id, res


def _frame(sample_gpkg, layer_id="incidents", fields=(), flt=None, interval=None):
    layer = LAYERS[layer_id]
    q = Query(
        properties=[layer.key, *fields],
        limit=0,
        where=parse_filter(flt) if flt else None,
        interval=parse_interval(interval) if interval else None,
    )
    return GeoPackageStore(sample_gpkg).read_frame(layer, q)


def _at(fc, lon, lat) -> list[dict]:
    pt = shapely.Point(lon, lat)
    return [f["properties"] for f in fc["features"] if shape(f["geometry"]).covers(pt)]


def _by(fc, key) -> dict:
    return {f["properties"][key]: f["properties"] for f in fc["features"]}


def _close(a, b):
    a = np.array([np.nan if v is None else v for v in a], dtype=float)
    b = np.asarray(b, dtype=float)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9, equal_nan=True)


# --- the processes ---------------------------------------------------------------------------


def test_processes_are_listed_with_async(server):
    r = requests.get(f"{server.url}/processes?f=json", timeout=30)
    assert r.status_code == 200
    listed = {p["id"]: p for p in r.json()["processes"]}
    assert set(PROCESS_IDS) <= set(listed)
    for pid in PROCESS_IDS:
        assert "async-execute" in listed[pid]["jobControlOptions"]
    desc = requests.get(f"{server.url}/processes/hot-spots?f=json", timeout=30).json()
    assert desc["inputs"]["weights"]["schema"]["enum"][0] == "knn"


def test_hot_spots_sync_equals_library_and_finds_planted(server, sample_gpkg):
    from analytics.aggregate import aggregate_points
    from analytics.gistar import hot_spots

    inputs = {
        "collection": "incidents",
        "cell_size": 250,
        "fdr": True,
        "filter": FILTER,
        "datetime": INTERVAL,
    }
    r = execute(server, "hot-spots", inputs)
    assert r.status_code == 200, r.text
    fc = r.json()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = _frame(sample_gpkg, flt=FILTER, interval=INTERVAL)
        direct = hot_spots(aggregate_points(frame, "fishnet", cell_size=250), fdr=True)
    assert fc["numberFeatures"] == len(frame)
    got = _by(fc, "cell_id")
    assert sorted(got) == sorted(direct["cell_id"].tolist())
    _close([got[c]["gi_z"] for c in direct["cell_id"]], direct["gi_z"])
    assert [got[c]["gi_bin"] for c in direct["cell_id"]] == direct["gi_bin"].tolist()
    for p in HOTSPOTS:
        assert [q["gi_bin"] for q in _at(fc, p.lon, p.lat)] == [3], p.name


def test_optimized_hot_spots_sync_equals_library(server, sample_gpkg):
    from analytics.ohsa import optimized_hot_spots

    r = execute(server, "optimized-hot-spots", {"collection": "incidents"})
    assert r.status_code == 200, r.text
    fc = r.json()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = optimized_hot_spots(_frame(sample_gpkg))
    assert fc["analysis"]["distance_band"] == pytest.approx(direct.distance_band)
    assert fc["analysis"]["scale_method"] == direct.scale_method
    got = _by(fc, "cell_id")
    _close([got[c]["gi_z"] for c in direct.cells["cell_id"]], direct.cells["gi_z"])
    for p in HOTSPOTS:
        assert [q["gi_bin"] for q in _at(fc, p.lon, p.lat)] == [3], p.name
    # the new cluster is one week old: it stands out in that week, not in the year
    r = execute(
        server,
        "optimized-hot-spots",
        {"collection": "incidents", "datetime": f"{EMERGING[0].start}/.."},
    )
    assert r.status_code == 200, r.text
    p = EMERGING[0]
    assert [q["gi_bin"] for q in _at(r.json(), p.lon, p.lat)] == [3], p.name


def test_optimized_hot_spots_by_community(server):
    r = execute(
        server, "optimized-hot-spots", {"collection": "incidents", "aggregation": "communities"}
    )
    assert r.status_code == 200, r.text
    fc = r.json()
    assert fc["analysis"]["cell_size"] is None
    assert {"code", "name", "count", "gi_bin"} <= set(fc["features"][0]["properties"])


def test_local_moran_sync_equals_library(server, sample_gpkg):
    from analytics.aggregate import aggregate_points
    from analytics.moran import local_moran

    inputs = {"collection": "incidents", "cell_size": 250, "permutations": 199, "seed": 11}
    r = execute(server, "local-moran", inputs)
    assert r.status_code == 200, r.text
    fc = r.json()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = aggregate_points(_frame(sample_gpkg), "fishnet", cell_size=250)
        direct = local_moran(cells, permutations=199, seed=11)
    got = _by(fc, "cell_id")
    _close([got[c]["lisa_i"] for c in direct["cell_id"]], direct["lisa_i"])
    _close([got[c]["lisa_p_sim"] for c in direct["cell_id"]], direct["lisa_p_sim"])
    for p in HOTSPOTS:
        assert [q["lisa_cluster"] for q in _at(fc, p.lon, p.lat)] == ["HH"], p.name


def test_kernel_density_geotiff_equals_library(server, sample_gpkg, tmp_path):
    import rasterio
    from rasterio.io import MemoryFile

    from analytics.density import kernel_density

    inputs = {"collection": "incidents", "bandwidth": 400, "cell_size": 50}
    r = execute(server, "kernel-density", inputs)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("image/tiff")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel_density(_frame(sample_gpkg), tmp_path / "d.tif", bandwidth=400, cell_size=50)
    with MemoryFile(r.content) as mem, mem.open() as got, rasterio.open(tmp_path / "d.tif") as d:
        assert got.crs == d.crs and got.transform == d.transform
        a, b = got.read(1), d.read(1)
        np.testing.assert_allclose(a, b, rtol=1e-6)
        # the densest pixel lies at one of the planted hot spots
        row, col = np.unravel_index(np.argmax(a), a.shape)
        x, y = got.xy(row, col)
        from pyproj import Transformer

        t = Transformer.from_crs(4326, got.crs, always_xy=True)
        dist = [np.hypot(*(np.subtract(t.transform(p.lon, p.lat), (x, y)))) for p in HOTSPOTS]
        assert min(dist) < 400


def test_density_clusters_sync_equals_library(server, sample_gpkg):
    from analytics.density import density_clusters

    inputs = {"collection": "incidents", "method": "dbscan", "eps": 120, "min_samples": 15}
    r = execute(server, "density-clusters", inputs)
    assert r.status_code == 200, r.text
    fc = r.json()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = density_clusters(_frame(sample_gpkg), "dbscan", eps=120, min_samples=15)
    got = _by(fc, "cluster")
    assert sorted(got) == direct.clusters["cluster"].tolist()
    counts = direct.clusters["count"].tolist()
    assert [got[c]["count"] for c in direct.clusters["cluster"]] == counts
    assert fc["numberNoise"] == int((direct.points["cluster"] < 0).sum())
    for p in HOTSPOTS:
        assert len(_at(fc, p.lon, p.lat)) == 1, p.name


def test_emerging_hot_spots_sync_equals_library(server, sample_gpkg):
    from analytics.emerging import emerging_hot_spots

    r = execute(server, "emerging-hot-spots", {"collection": "incidents", "cell_size": 250})
    assert r.status_code == 200, r.text
    fc = r.json()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = emerging_hot_spots(
            _frame(sample_gpkg, fields=["reported_at"]), "reported_at", cell_size=250
        ).locations
    got = _by(fc, "cell_id")
    categories = direct["category"].astype(str).tolist()
    assert [got[c]["category"] for c in direct["cell_id"]] == categories
    _close([got[c]["trend_z"] for c in direct["cell_id"]], direct["trend_z"])
    for p in HOTSPOTS:
        [cell] = _at(fc, p.lon, p.lat)
        assert cell["category"].endswith("Hot Spot"), (p.name, cell["category"])
    # 8 weeks of a growing cluster at the end of the year: by Esri's definitions a run of hot
    # final steps never hot before is "Consecutive" (weekly steps); "New" needs a single step
    [cell] = _at(fc, EMERGING[0].lon, EMERGING[0].lat)
    assert cell["category"] in ("New Hot Spot", "Consecutive Hot Spot", "Intensifying Hot Spot")


# --- asynchronous execution --------------------------------------------------------------------


ASYNC_INPUTS = {
    "hot-spots": {"collection": "incidents", "cell_size": 300},
    "optimized-hot-spots": {"collection": "incidents", "aggregation": "hexagon"},
    "local-moran": {"collection": "incidents", "permutations": 99, "seed": 3},
    "kernel-density": {"collection": "incidents", "bandwidth": 500},
    "density-clusters": {"collection": "incidents"},
    "emerging-hot-spots": {"collection": "incidents", "datetime": "2026-01-01/.."},
}


@pytest.mark.parametrize("pid", PROCESS_IDS)
def test_async_result_equals_sync(server, pid):
    inputs = ASYNC_INPUTS[pid]
    sync = execute(server, pid, inputs)
    assert sync.status_code == 200, sync.text
    _, res = run_async(server, pid, inputs)
    if pid == "kernel-density":
        assert res.content == sync.content
    else:
        assert json.loads(res.content) == sync.json()


def test_many_async_jobs_across_workers(server, jobs_dir):
    """Concurrent submissions and polls through both workers: every job is recorded once."""
    inputs = {"collection": "incidents", "cell_size": 400}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: run_async(server, "hot-spots", inputs), range(12)))
    ids = [job_id for job_id, _ in results]
    assert len(set(ids)) == 12
    first = json.loads(results[0][1].content)
    assert all(json.loads(r.content) == first for _, r in results)
    import sqlite3

    with sqlite3.connect(jobs_dir / "jobs.sqlite") as db:
        rows = db.execute("SELECT identifier, pid, doc FROM jobs").fetchall()
    assert set(ids) <= {json.loads(doc)["identifier"] for _, _, doc in rows}
    # the module's jobs were accepted by both workers, and each is recorded once
    assert len({pid for _, pid, _ in rows}) == 2
    assert len({i for i, _, _ in rows}) == len(rows)


def test_job_survives_restart(sample_gpkg, tmp_path):
    env = _env(tmp_path)
    first = LiveServer(sample_gpkg, extra_env=env, workers=2)
    try:
        job_id, res = run_async(first, "hot-spots", {"collection": "incidents"})
        tif_id, tif = run_async(first, "kernel-density", {"collection": "incidents"})
    finally:
        first.stop()
    second = LiveServer(sample_gpkg, extra_env=env, workers=1)
    try:
        status = requests.get(f"{second.url}/jobs/{job_id}?f=json", timeout=30).json()
        assert status["status"] == "successful"
        again = requests.get(f"{second.url}/jobs/{job_id}/results?f=json", timeout=30)
        assert again.status_code == 200 and json.loads(again.content) == json.loads(res.content)
        again = requests.get(f"{second.url}/jobs/{tif_id}/results?f=json", timeout=30)
        assert again.status_code == 200 and again.content == tif.content
        # anonymous jobs are read by id, listed to nobody but admin (tianya.plugins.jobs)
        listed = requests.get(f"{second.url}/jobs?f=json", timeout=30).json()["jobs"]
        assert listed == []
        listed = requests.get(
            f"{second.url}/jobs?f=json", headers=_auth("admin"), timeout=30
        ).json()["jobs"]
        assert {job_id, tif_id} <= {j["jobID"] for j in listed}
    finally:
        second.stop()


def test_interrupted_job_is_marked_failed(tmp_path):
    from tianya.plugins.jobs import JobManager

    conf = {
        "name": "tianya.plugins.jobs.JobManager",
        "connection": str(tmp_path / "j.sqlite"),
        "output_dir": str(tmp_path / "out"),
    }
    manager = JobManager(conf)
    manager.add_job({"identifier": "gone", "status": "running", "process_id": "hot-spots"})
    manager.add_job({"identifier": "alive", "status": "running", "process_id": "hot-spots"})
    dead = subprocess.Popen(["true"])
    dead.wait()
    import sqlite3

    with sqlite3.connect(tmp_path / "j.sqlite") as db:
        db.execute("UPDATE jobs SET pid = ? WHERE identifier = 'gone'", (dead.pid,))
    JobManager(conf)  # a worker starting up
    assert manager.get_job("gone")["status"] == "failed"
    assert "interrupted" in manager.get_job("gone")["message"]
    assert manager.get_job("alive")["status"] == "running"  # its owner (this process) lives


# --- errors ------------------------------------------------------------------------------------


class Boom(BaseProcessor):
    """A process that fails while running: with a store outage, or with a fault of its own."""

    def __init__(self, processor_def):
        super().__init__(
            processor_def,
            {
                "id": "boom",
                "title": "boom",
                "version": "1",
                "jobControlOptions": ["sync-execute"],
                "inputs": {},
                "outputs": {},
            },
        )

    def execute(self, data, outputs=None):
        if data.get("outage"):
            raise StoreUnavailable("PostgreSQL at localhost is unavailable")
        raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize(
    "outage,status,words",
    [
        (True, 503, "PostgreSQL at localhost is unavailable"),
        (False, 500, "process 'boom' failed with an internal error (logged at "),
    ],
)
def test_run_failures_keep_their_status(tmp_path, outage, status, words):
    """pygeoapi answers every failed run with 400; ours keep theirs and stay recorded."""
    from pygeoapi.process.base import ProcessorExecuteError

    from layers.access import Principal
    from tianya.plugins.jobs import JobManager
    from tianya.request import PRINCIPAL as CURRENT

    manager = JobManager(
        {
            "name": "tianya.plugins.jobs.JobManager",
            "connection": str(tmp_path / "j.sqlite"),
            "output_dir": str(tmp_path / "out"),
            "processes": {"boom": {"processor": {"name": f"{__name__}.Boom"}}},
        }
    )
    with pytest.raises(ProcessorExecuteError) as info:
        manager.execute_process("boom", {"outage": outage})
    assert info.value.http_status_code == status and words in info.value.message
    token = CURRENT.set(Principal("ops", "admin"))  # anonymous callers list no jobs
    try:
        assert [j["status"] for j in manager.get_jobs()["jobs"]] == ["failed"]
    finally:
        CURRENT.reset(token)


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize(
    ("pid", "inputs", "message"),
    [
        ("hot-spots", {"collection": "incidentz"}, "must be one of: incidents, party_building"),
        (
            "hot-spots",
            {"collection": "incidents", "weigths": "knn"},
            "'weigths' is not a valid input of process 'hot-spots', must be one of: collection",
        ),
        (
            "hot-spots",
            {"collection": "incidents", "weights": "knn8"},
            "must be one of: knn, distance_band, inverse_distance, queen, rook",
        ),
        (
            "hot-spots",
            {"collection": "incidents", "field": "reporter_phone"},
            "must be one of: satisfaction",
        ),
        (
            "optimized-hot-spots",
            {"collection": "incidents", "aggregation": "hex"},
            "must be one of: fishnet, hexagon, communities",
        ),
        (
            "kernel-density",
            {"collection": "incidents", "units": "per_mile2"},
            "must be one of: per_km2, per_m2, per_ha",
        ),
        (
            "density-clusters",
            {"collection": "incidents", "method": "kmeans"},
            "must be one of: hdbscan, dbscan",
        ),
        ("emerging-hot-spots", {"collection": "communities"}, "must be one of: incidents"),
        (
            "emerging-hot-spots",
            {"collection": "incidents", "shape": "hex"},
            "must be one of: fishnet, hexagon",
        ),
        ("local-moran", {"collection": "incidents", "filter": "colour = 'red'"}, "queryables are:"),
        ("local-moran", {"collection": "incidents", "permutations": -1}, "at least 0"),
        ("hot-spots", {"collection": "incidents", "datetime": "yesterday"}, "datetime"),
    ],
)
def test_invalid_inputs_are_400_with_choices(server, pid, inputs, message, asynchronous):
    r = execute(server, pid, inputs, asynchronous=asynchronous)
    assert r.status_code == 400, r.text
    assert message in r.json()["description"]


def test_data_dependent_failure_is_400(server):
    r = execute(
        server, "emerging-hot-spots", {"collection": "incidents", "datetime": "2026-11-01/.."}
    )
    assert r.status_code == 400
    assert "time steps" in r.json()["description"]


@pytest.mark.parametrize(
    "pid,words",
    [
        ("hot-spots", "no features to analyse"),
        ("optimized-hot-spots", "no features to analyse"),
        ("local-moran", "no features to analyse"),
        ("kernel-density", "at least 2 points"),
        ("density-clusters", "at least 2 points"),
    ],
)
def test_empty_selection_is_a_400_that_says_so(server, pid, words):
    nothing = "category = 'fallen_tree' AND category = 'street_light'"
    r = execute(server, pid, {"collection": "incidents", "filter": nothing})
    assert r.status_code == 400, r.text
    assert words in r.json()["description"]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_poverty_relief_needs_a_trusted_role(server, asynchronous):
    inputs = {"collection": "poverty_relief", "method": "dbscan", "eps": 300}
    r = execute(server, "density-clusters", inputs, asynchronous=asynchronous)
    assert r.status_code == 401, r.text
    assert "poverty_relief" in r.json()["description"]
    r = execute(server, "density-clusters", inputs, role="reporter", asynchronous=asynchronous)
    assert r.status_code == 403, r.text
    if asynchronous:
        job_id, _ = run_async(server, "density-clusters", inputs, role="dispatcher")
        # the job and its result are personal data: hidden from roles that may not see them
        for role in (None, "reporter"):
            auth = _auth(role)
            for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/results"):
                r = requests.get(f"{server.url}{path}?f=json", headers=auth, timeout=30)
                assert r.status_code == 404, (role, path, r.text)
            listed = requests.get(
                f"{server.url}/jobs?f=json&limit=1000", headers=auth, timeout=30
            ).json()["jobs"]
            assert job_id not in {j["jobID"] for j in listed}
            r = requests.delete(f"{server.url}/jobs/{job_id}", headers=auth, timeout=30)
            assert r.status_code == 404
        r = requests.get(
            f"{server.url}/jobs/{job_id}/results?f=json", timeout=30, headers=_auth("admin")
        )
        assert r.status_code == 200 and json.loads(r.content)["features"]
    else:
        r = execute(server, "density-clusters", inputs, role="dispatcher")
        assert r.status_code == 200, r.text


def test_processes_in_server_config():
    from tianya.config import build_config
    from tianya.plugins.processes import PROCESSORS, process_resources

    resources = build_config()["resources"]
    for pid, entry in process_resources().items():
        assert resources[pid] == entry
        assert entry["processor"]["name"].endswith(PROCESSORS[pid].__name__)
    assert build_config()["server"]["manager"]["name"] == "tianya.plugins.jobs.JobManager"


def test_configured_processor_names_load_the_registered_classes():
    """``server_config.yml`` names ``tianya.plugins.processes.<Class>``: pygeoapi's loader
    gets the very class the registry holds, wherever the class is defined."""
    from pygeoapi.plugin import load_plugin

    from tianya.plugins.processes import PROCESSORS, process_resources

    for pid, entry in process_resources().items():
        processor = load_plugin("process", {**entry["processor"]})
        assert type(processor) is PROCESSORS[pid]
        assert processor.metadata["id"] == pid


def test_the_processes_code_is_in_modules_under_600_lines():
    """The processes' code, split by what it does (issue 12: no module over 600 lines)."""
    import importlib
    import inspect

    from tianya.plugins.processes import PROCESSORS

    modules = {"tianya.plugins.processes", "tianya.plugins.options", "tianya.plugins.budgets"}
    modules |= {cls.__module__ for cls in PROCESSORS.values()}
    modules |= {cls.__mro__[1].__module__ for cls in PROCESSORS.values()}
    for name in sorted(modules):
        lines = len(inspect.getsource(importlib.import_module(name)).splitlines())
        assert lines < 600, f"{name} has {lines} lines"
