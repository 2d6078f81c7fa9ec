"""Bounded process runs: work budgets, the run pool's limits, concurrency, cancellation.

Each finding of the "safe to deploy" review is reproduced as it was reported, against a live
gunicorn server (two workers) and/or the library, and must now answer quickly and safely:

* ``emerging-hot-spots`` with ``time_step`` "1ns" (a list of ~3e16 timestamps) or "1h"
  (500 MemoryError) -> 400 naming MAX_TIME_STEPS;
* ``kernel-density`` with ``cell_size`` 5 and ``bandwidth`` 1500 (eight of them froze every
  request), local Moran with k 100 and 9999 permutations, DBSCAN with a 10 km eps -> 400
  naming the budget;
* concurrent runs shared one processor object (400s naming the other process, 500s);
* ``subscriber: "x"`` and ``outputs: "x"`` answered 500;
* runs are bounded across the workers, killed beyond their memory limit, and cancelled
  when their client disconnects.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import socket
import threading
import time

import numpy as np
import psutil
import pytest
import requests
from conftest import KEYS, LiveServer

from layers.errors import InvalidParameter
from tianya.plugins import runner
from tianya.plugins.processes import PROCESSORS

pytestmark = pytest.mark.timeout(600)

INCIDENTS = {"collection": "incidents"}
#: The reported inputs, each with the budget that now refuses it.
FINDINGS = [
    ("emerging-hot-spots", {**INCIDENTS, "time_step": "1ns"}, "MAX_TIME_STEPS"),
    ("emerging-hot-spots", {**INCIDENTS, "time_step": "1h"}, "MAX_TIME_STEPS"),
    ("kernel-density", {**INCIDENTS, "cell_size": 5, "bandwidth": 1500}, "MAX_RASTER_CELLS"),
    ("local-moran", {**INCIDENTS, "k": 100, "permutations": 9999}, "MAX_DRAWS_PER_UNIT"),
    ("density-clusters", {**INCIDENTS, "method": "dbscan", "eps": 10_000}, "MAX_EPS_AREA_SHARE"),
    # the smallest bounded cells ran into the 4 GB memory limit after 21-24 s
    (
        "optimized-hot-spots",
        {**INCIDENTS, "aggregation": "hexagon", "bounded": True, "cell_size": 90},
        "MAX_NEIGHBOUR_PAIRS",
    ),
    (
        "optimized-hot-spots",
        {**INCIDENTS, "aggregation": "fishnet", "bounded": True, "cell_size": 81},
        "MAX_NEIGHBOUR_PAIRS",
    ),
]
#: Small valid runs of every process (the concurrency test's mix).
SMALL = [
    ("hot-spots", {**INCIDENTS, "cell_size": 500}),
    ("local-moran", {**INCIDENTS, "cell_size": 500, "permutations": 49, "seed": 1}),
    ("kernel-density", {**INCIDENTS, "bandwidth": 800, "cell_size": 400}),
    ("density-clusters", {**INCIDENTS, "method": "dbscan", "eps": 150, "min_samples": 20}),
    ("optimized-hot-spots", {**INCIDENTS, "cell_size": 1000}),
    ("emerging-hot-spots", {**INCIDENTS, "cell_size": 1000, "time_step": "30D"}),
]


def _env(tmp, **extra) -> dict:
    env = {
        "TIANYA_JOBS": str(tmp / "jobs.sqlite"),
        "TIANYA_JOB_RESULTS": str(tmp / "results"),
        "TIANYA_RUN_DIR": str(tmp / "runs"),
        "TIANYA_JOB_LIMIT_ANONYMOUS": "1000",
        "TIANYA_JOB_LIMIT": "1000",
        "TIANYA_PROCESS_WORKERS": "2",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def server(sample_gpkg, tmp_path_factory):
    """Two gunicorn workers, two run slots; a synchronous run may wait 2 min for a slot."""
    tmp = tmp_path_factory.mktemp("limits")
    s = LiveServer(sample_gpkg, extra_env=_env(tmp, TIANYA_PROCESS_WAIT_SECONDS=120), workers=2)
    s.run_dir = str(tmp / "runs")
    yield s
    s.stop()


def execute(server, pid, inputs, asynchronous=False, body=None, timeout=300):
    headers = {"Prefer": "respond-async"} if asynchronous else {}
    return requests.post(
        f"{server.url}/processes/{pid}/execution",
        json={"inputs": inputs} if body is None else body,
        headers=headers,
        timeout=timeout,
    )


def run_children(server) -> list[psutil.Process]:
    """The server's run processes: children of a forkserver of a gunicorn worker."""
    found = []
    try:
        procs = psutil.Process(server.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return found
    for p in procs:
        try:
            parent = p.parent()
            if parent is not None and _forkserver(parent) and _forkserver(p):
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


def _forkserver(p: psutil.Process) -> bool:
    try:
        return "forkserver" in " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


# --- budgets -------------------------------------------------------------------------------


def _use_data(monkeypatch, data: str) -> None:
    """Make the settings of this process read ``data`` (as the server's would), for the test."""
    from tianya import settings

    monkeypatch.setattr(settings, "_CURRENT", settings.Settings.from_env(data=data))


@pytest.mark.parametrize("pid,inputs,budget", FINDINGS)
def test_findings_refused_by_the_library_check(sample_gpkg, monkeypatch, pid, inputs, budget):
    """check_inputs refuses each reported input before reading any data, naming the limit."""
    _use_data(monkeypatch, sample_gpkg)
    started = time.monotonic()
    with pytest.raises(InvalidParameter) as info:
        PROCESSORS[pid]({"name": pid}).check_inputs(inputs)
    assert time.monotonic() - started < 5
    assert budget in str(info.value) and "more than the limit of" in str(info.value)


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("pid,inputs,budget", FINDINGS)
def test_findings_are_a_quick_400(server, pid, inputs, budget, asynchronous):
    started = time.monotonic()
    r = execute(server, pid, inputs, asynchronous=asynchronous, timeout=60)
    assert r.status_code == 400, r.text
    assert time.monotonic() - started < 10
    text = r.json()["description"]
    assert budget in text and "more than the limit of" in text


def test_eight_heavy_kernel_densities_do_not_freeze_the_server(server):
    """The reported 8 x (cell_size 5, bandwidth 1500) are refused at once; items stay fast."""
    inputs = {**INCIDENTS, "cell_size": 5, "bandwidth": 1500}
    with concurrent.futures.ThreadPoolExecutor(9) as pool:
        runs = [
            pool.submit(execute, server, "kernel-density", inputs, timeout=60) for _ in range(8)
        ]
        started = time.monotonic()
        probe = requests.get(f"{server.url}/collections/incidents/items?limit=1&f=json", timeout=30)
        probe_s = time.monotonic() - started
        answers = [f.result() for f in runs]
    assert probe.status_code == 200 and probe_s < 5
    assert [a.status_code for a in answers] == [400] * 8
    assert all("MAX_RASTER_CELLS" in a.json()["description"] for a in answers)


def test_kernel_stencil_is_refused_after_reading_with_the_default_cell(server):
    """A default cell size is data-dependent: a 50 km bandwidth is refused before the grid."""
    r = execute(server, "kernel-density", {**INCIDENTS, "bandwidth": 50_000}, timeout=60)
    assert r.status_code == 400, r.text
    assert "MAX_KERNEL_VISITS" in r.json()["description"]


def test_budgets_allow_the_existing_runs(sample_gpkg, monkeypatch):
    """The inputs of tests/test_processes.py and the option examples pass the checks."""
    _use_data(monkeypatch, sample_gpkg)
    legit = [
        ("hot-spots", {**INCIDENTS, "cell_size": 250, "fdr": True}),
        ("local-moran", {**INCIDENTS, "cell_size": 250, "permutations": 199, "seed": 11}),
        ("local-moran", {**INCIDENTS, "permutations": 9999}),
        ("kernel-density", {**INCIDENTS, "bandwidth": 400, "cell_size": 50}),
        ("kernel-density", {**INCIDENTS, "bandwidth": 500}),
        ("density-clusters", {**INCIDENTS, "method": "dbscan", "eps": 120, "min_samples": 15}),
        ("emerging-hot-spots", {**INCIDENTS, "cell_size": 250}),
        ("emerging-hot-spots", {**INCIDENTS, "time_step": "12h"}),
        (
            "emerging-hot-spots",
            {**INCIDENTS, "time_step": "1h", "datetime": "2026-11-01/2026-11-22"},
        ),
        ("optimized-hot-spots", {**INCIDENTS, "distance_band": 5000}),
        *SMALL,
    ]
    for pid, inputs in legit:
        PROCESSORS[pid]({"name": pid}).check_inputs(inputs)


@pytest.mark.parametrize(
    "body,words",
    [
        ({"inputs": INCIDENTS, "subscriber": "x"}, "'subscriber' must be a JSON object"),
        ({"inputs": INCIDENTS, "outputs": "x"}, "'outputs' of the execute request must be"),
        ({"inputs": INCIDENTS, "subscriber": {"successUri": 5}}, "must be a URL string"),
        (
            {"inputs": INCIDENTS, "subscriber": {"successUri": "file:///etc/passwd"}},
            "must be an http(s) URL with a host",
        ),
        (
            {"inputs": INCIDENTS, "subscriber": {"successUri": "http://[::1/cb"}},
            "must be an http(s) URL with a host",
        ),
        ({"inputs": INCIDENTS, "response": "everything"}, "'raw' or 'document'"),
        (["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_malformed_execute_requests_are_400(server, body, words):
    r = execute(server, "hot-spots", None, body=body, timeout=60)
    assert r.status_code == 400, r.text
    assert words in r.json()["description"]


#: A subscriber whose host does not resolve (what schemathesis sent: a 500 before).
UNRESOLVABLE = {"successUri": "https://0.com", "inProgressUri": "https://0.com"}


def test_a_subscriber_that_cannot_be_notified_does_not_fail_a_synchronous_run(server):
    body = {"inputs": {**INCIDENTS, "cell_size": 500}, "subscriber": UNRESOLVABLE}
    r = execute(server, "hot-spots", None, body=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "FeatureCollection"


def test_a_subscriber_that_cannot_be_notified_does_not_stall_an_asynchronous_job(server):
    body = {"inputs": {**INCIDENTS, "cell_size": 500}, "subscriber": UNRESOLVABLE}
    r = execute(server, "hot-spots", None, body=body, asynchronous=True, timeout=60)
    assert r.status_code == 201, r.text
    job = r.headers["Location"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = requests.get(job, params={"f": "json"}, timeout=10).json()["status"]
        if status not in ("accepted", "running"):
            break
        time.sleep(0.5)
    assert status == "successful"


def test_a_silent_subscriber_holds_a_notification_for_the_timeout_only(monkeypatch, caplog):
    """A subscriber that accepts the connection and never answers held pygeoapi's
    notification (no timeout) and with it the run's thread, for ever."""
    import types

    from tianya.plugins import jobs

    tarpit = socket.socket()
    tarpit.bind(("127.0.0.1", 0))
    tarpit.listen(1)
    monkeypatch.setattr(jobs, "is_request_allowed", lambda url, allow_internal: True)
    url = f"http://127.0.0.1:{tarpit.getsockname()[1]}/callback"
    t0 = time.monotonic()
    with caplog.at_level("WARNING", logger=jobs.LOGGER.name):
        jobs.JobManager._notify(types.SimpleNamespace(processor=None), url, {})
    elapsed = time.monotonic() - t0
    tarpit.close()
    assert elapsed < sum(jobs.NOTIFY_TIMEOUT) + 1
    assert "subscriber 127.0.0.1 not notified: ReadTimeout" in caplog.text


# --- concurrency -----------------------------------------------------------------------------


def _digest(r: requests.Response):
    if r.headers["Content-Type"].startswith("image/tiff"):
        return ("tiff", r.content)
    return ("json", json.dumps(r.json(), sort_keys=True))


def test_concurrent_mixed_runs_each_get_their_own_processor(server):
    """8 threads, 96 valid runs of six processes: all succeed with their own process's output.

    With one processor shared by the worker's threads, 28 of 96 failed (400s naming the
    other process, 500 AttributeErrors)."""
    expected = {}
    for pid, inputs in SMALL:
        r = execute(server, pid, inputs)
        assert r.status_code == 200, (pid, r.text)
        expected[pid] = _digest(r)
    assert len({d for d in expected.values()}) == len(SMALL)  # outputs tell processes apart
    plan = [SMALL[i % len(SMALL)] for i in range(96)]

    def one(item):
        pid, inputs = item
        r = execute(server, pid, inputs)
        return pid, r.status_code, (_digest(r) if r.status_code == 200 else r.text)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, plan))
    failures = [(pid, status, body[:200]) for pid, status, body in results if status != 200]
    assert failures == []
    assert all(body == expected[pid] for pid, _, body in results)


def test_concurrent_same_process_runs(server):
    """16 of 80 same-process runs failed with the shared processor."""
    pid, inputs = SMALL[0]
    first = _digest(execute(server, pid, inputs))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: execute(server, pid, inputs), range(80)))
    assert [r.status_code for r in results] == [200] * 80
    assert all(_digest(r) == first for r in results)


# --- the pool's limits -------------------------------------------------------------------------


def test_runs_are_bounded_across_workers_async(server):
    """Asynchronous jobs through both workers: never more than 2 run processes at once."""
    inputs = {**INCIDENTS, "bandwidth": 900, "cell_size": 50}  # about 1 s each
    peak, stop = [0], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], len(run_children(server)))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            submitted = list(
                pool.map(
                    lambda _: execute(server, "kernel-density", inputs, asynchronous=True),
                    range(10),
                )
            )
        assert [r.status_code for r in submitted] == [201] * 10, [r.text for r in submitted]
        ids = [r.json()["jobID"] for r in submitted]
        deadline = time.time() + 300
        while time.time() < deadline:
            states = [
                requests.get(f"{server.url}/jobs/{i}?f=json", timeout=30).json()["status"]
                for i in ids
            ]
            if all(s in ("successful", "failed") for s in states):
                break
            time.sleep(0.5)
    finally:
        stop.set()
        watcher.join()
    assert states == ["successful"] * 10
    assert 1 <= peak[0] <= 2, peak[0]


def test_async_queue_beyond_its_bound_is_429(sample_gpkg, tmp_path):
    """One worker, one slot, a queue of one: a third waiting job is refused with Retry-After,
    and at most one run process exists."""
    s = LiveServer(
        sample_gpkg,
        workers=1,
        extra_env=_env(tmp_path, TIANYA_PROCESS_WORKERS=1, TIANYA_PROCESS_QUEUE=1),
    )
    try:
        inputs = {**INCIDENTS, "bandwidth": 900, "cell_size": 50}
        answers = [execute(s, "kernel-density", inputs, asynchronous=True) for _ in range(5)]
        codes = [r.status_code for r in answers]
        assert codes[:2] == [201, 201] and 429 in codes, codes
        refused = answers[codes.index(429)]
        assert int(refused.headers["Retry-After"]) > 0
        assert "TIANYA_PROCESS_QUEUE" in refused.json()["description"]
        assert len(run_children(s)) <= 1
    finally:
        s.stop()


def test_memory_limit_stops_a_run(sample_gpkg, tmp_path):
    """A valid run over a 200 MB limit is stopped with a 400 naming the limit."""
    s = LiveServer(sample_gpkg, workers=1, extra_env=_env(tmp_path, TIANYA_PROCESS_MEMORY_MB=200))
    try:
        heavy = {**INCIDENTS, "cell_size": 75}  # 240,000 fishnet cells: within the budget
        r = execute(s, "hot-spots", heavy)
        assert r.status_code == 400, r.text
        assert "memory limit of 200 MB (TIANYA_PROCESS_MEMORY_MB)" in r.json()["description"]
        r = execute(s, "hot-spots", {**INCIDENTS, "cell_size": 500})  # the server goes on
        assert r.status_code == 200, r.text
    finally:
        s.stop()


def _child_memory(n):
    return np.ones(n).sum()


def test_memory_limit_in_the_library(tmp_path):
    lim = runner.Limits(workers=1, memory_mb=100, seconds=60, run_dir=str(tmp_path))
    with pytest.raises(runner.RunLimitExceeded, match="memory limit of 100 MB"):
        runner.run(_child_memory, (50_000_000,), lim=lim)  # 400 MB
    assert runner.run(_child_memory, (1_000_000,), lim=lim) == 1_000_000
    assert runner.slots_in_use(lim) == 0


def _child_settings():
    from tianya import settings

    s = settings.current()
    return s.data, s.max_grid_cells


def test_a_run_gets_the_servers_settings_object(tmp_path, monkeypatch):
    """The child had the parent's TIANYA_* environment; it gets the settings object now, so a
    server whose settings were not read from the environment runs with its own."""
    from tianya import settings

    given = settings.Settings.from_env(data=str(tmp_path / "x.gpkg"), max_grid_cells=123)
    monkeypatch.setattr(settings, "_CURRENT", given)
    monkeypatch.delenv("TIANYA_MAX_GRID_CELLS", raising=False)
    lim = runner.Limits(workers=1, memory_mb=200, seconds=60, run_dir=str(tmp_path))
    assert runner.run(_child_settings, lim=lim) == (given.data, 123)


def test_a_dask_run_gets_the_servers_settings_object(tmp_path, monkeypatch):
    """The Dask path sent the TIANYA_* environment; a worker now uses the settings object."""
    from distributed import LocalCluster

    from tianya import settings

    def probe():  # a closure: pickled by value, so the worker needs no test module
        from tianya import settings as worker_settings

        s = worker_settings.current()
        return s.data, s.max_grid_cells

    given = settings.Settings.from_env(data=str(tmp_path / "x.gpkg"), max_grid_cells=77)
    monkeypatch.setattr(settings, "_CURRENT", given)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        lim = runner.Limits(
            workers=1, seconds=60, run_dir=str(tmp_path), scheduler=cluster.scheduler_address
        )
        assert runner.run(probe, lim=lim) == (given.data, 77)


def test_the_pool_limits_follow_the_settings(tmp_path, monkeypatch):
    from tianya import settings

    monkeypatch.setattr(
        settings,
        "_CURRENT",
        settings.Settings.from_env(process_workers=3, process_queue=5, run_dir=str(tmp_path)),
    )
    lim = runner.limits()
    assert (lim.workers, lim.queue, lim.run_dir) == (3, 5, str(tmp_path))
    settings._CURRENT = settings._CURRENT.replace(process_workers=1)
    assert runner.limits().workers == 1  # a new settings object applies to the next run


def test_budgets_are_read_from_the_current_settings(sample_gpkg, monkeypatch):
    """The budgets were module constants read from the environment once, at import."""
    from tianya import settings

    monkeypatch.setattr(
        settings, "_CURRENT", settings.Settings.from_env(data=sample_gpkg, max_grid_cells=1000)
    )
    with pytest.raises(InvalidParameter, match=r"more than the limit of 1,000 \(MAX_GRID_CELLS"):
        PROCESSORS["hot-spots"]({"name": "hot-spots"}).check_inputs(
            {"collection": "incidents", "cell_size": 250}
        )


def test_time_limit_in_the_library(tmp_path):
    lim = runner.Limits(workers=1, memory_mb=100, seconds=1, run_dir=str(tmp_path))
    started = time.monotonic()
    with pytest.raises(runner.RunLimitExceeded, match="time limit of 1 s"):
        runner.run(time.sleep, (60,), lim=lim)
    assert time.monotonic() - started < 10
    assert runner.slots_in_use(lim) == 0


def test_waiting_synchronous_runs_are_bounded(tmp_path):
    """Beyond ``queue`` waiting synchronous runs, one more is refused at once (429)."""
    lim = runner.Limits(
        workers=1, memory_mb=100, seconds=60, wait_seconds=30, queue=1, run_dir=str(tmp_path)
    )
    threads = [
        threading.Thread(target=runner.run, args=(time.sleep, (2,)), kwargs={"lim": lim})
        for _ in range(2)
    ]  # one runs, one waits
    for t in threads:
        t.start()
        time.sleep(0.3)
    try:
        started = time.monotonic()
        with pytest.raises(runner.ProcessBusy, match="TIANYA_PROCESS_QUEUE"):
            runner.run(time.sleep, (0,), lim=lim)
        assert time.monotonic() - started < 1
    finally:
        for t in threads:
            t.join()
    assert runner.run(time.sleep, (0,), lim=lim) is None


def test_waiting_runs_take_slots_in_arrival_order(tmp_path):
    """One slot, five runs arriving 0.2 s apart while it is held: they start in that order."""
    lim = runner.Limits(
        workers=1, memory_mb=100, seconds=60, wait_seconds=60, run_dir=str(tmp_path)
    )
    order = []
    threads = [
        threading.Thread(
            target=runner.run,
            args=(time.sleep, (1.0 if i == 0 else 0.3,)),
            kwargs={"lim": lim, "on_start": lambda pid, i=i: order.append(i)},
        )
        for i in range(5)
    ]
    for t in threads:
        t.start()
        time.sleep(0.2)
    for t in threads:
        t.join()
    assert order == [0, 1, 2, 3, 4]
    assert [n for n in os.listdir(tmp_path) if n.startswith("wait-")] == []


def test_busy_slots_refuse_a_synchronous_run(tmp_path):
    lim = runner.Limits(
        workers=1, memory_mb=100, seconds=60, wait_seconds=0.5, run_dir=str(tmp_path)
    )
    holder = threading.Thread(target=runner.run, args=(time.sleep, (3,)), kwargs={"lim": lim})
    holder.start()
    try:
        deadline = time.time() + 30
        while runner.slots_in_use(lim) == 0 and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(runner.ProcessBusy) as info:
            runner.run(time.sleep, (0,), lim=lim)
        assert info.value.status == 429 and info.value.retry_after > 0
    finally:
        holder.join()


@pytest.fixture(scope="module")
def unbudgeted(sample_gpkg, tmp_path_factory):
    """A server whose kernel density budgets are lifted (the reported run is accepted again)
    and whose runs stop after 15 s: what remains between a heavy run and the host are the
    pool's limits."""
    tmp = tmp_path_factory.mktemp("unbudgeted")
    s = LiveServer(
        sample_gpkg,
        workers=1,
        extra_env=_env(
            tmp,
            TIANYA_MAX_RASTER_CELLS=10**10,
            TIANYA_MAX_KERNEL_VISITS=10**16,
            TIANYA_PROCESS_SECONDS=15,
        ),
    )
    s.run_dir = str(tmp / "runs")
    yield s
    s.stop()


HEAVY_KDE = {**INCIDENTS, "cell_size": 5, "bandwidth": 1500}  # hours of work without limits


def _jobs(server) -> list[dict]:
    r = requests.get(
        f"{server.url}/jobs?f=json&limit=1000",
        headers={"Authorization": f"Bearer {KEYS['admin']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["jobs"]


def test_run_stops_when_the_client_disconnects(unbudgeted):
    """The reported heavy run, its client gone: the run's process is killed, the slot freed
    and the job recorded as cancelled (runs used to go on after the client left)."""
    server = unbudgeted
    body = json.dumps({"inputs": HEAVY_KDE}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    before = {p.pid for p in run_children(server)}
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        b"POST /processes/kernel-density/execution HTTP/1.1\r\n"
        b"Host: " + host.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    child, deadline = None, time.time() + 60
    while child is None and time.time() < deadline:
        new = [p for p in run_children(server) if p.pid not in before]
        child = new[0] if new else None
        time.sleep(0.05)
    assert child is not None, "the run did not start"
    time.sleep(0.5)
    sock.close()
    started = time.monotonic()
    gone = psutil.wait_procs([child], timeout=10)[0]
    assert gone, "the run's process outlived its client"
    assert time.monotonic() - started < 5
    lim = runner.Limits(workers=2, run_dir=server.run_dir)
    deadline = time.time() + 10
    while runner.slots_in_use(lim) and time.time() < deadline:
        time.sleep(0.1)
    assert runner.slots_in_use(lim) == 0
    messages = [
        j.get("message", "")
        for j in _jobs(server)
        if j.get("processID", j.get("process_id")) == "kernel-density"
    ]
    assert any("client disconnected" in m for m in messages), messages


def test_time_limit_stops_a_run(unbudgeted):
    started = time.monotonic()
    r = execute(unbudgeted, "kernel-density", HEAVY_KDE, timeout=120)
    assert r.status_code == 400, r.text
    assert "time limit of 15 s (TIANYA_PROCESS_SECONDS)" in r.json()["description"]
    assert time.monotonic() - started < 30
    assert run_children(unbudgeted) == []


def _fail_with_a_400():
    raise InvalidParameter("no features to analyse")


def test_runs_on_a_dask_scheduler(tmp_path):
    """TIANYA_PROCESS_SCHEDULER: the same calls, errors and time limit on a Dask cluster."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        lim = runner.Limits(
            workers=1, seconds=120, run_dir=str(tmp_path), scheduler=cluster.scheduler_address
        )
        assert runner.run(_child_memory, (1000,), lim=lim) == 1000
        with pytest.raises(InvalidParameter, match="no features"):
            runner.run(_fail_with_a_400, lim=lim)
        lim = dataclasses.replace(lim, seconds=2)
        started = time.monotonic()
        with pytest.raises(runner.RunLimitExceeded, match="time limit of 2 s"):
            runner.run(time.sleep, (30,), lim=lim)
        assert time.monotonic() - started < 10
        assert runner.slots_in_use(lim) == 0


# --- robustness review: permutations, dismissal, result files, execute bodies -----------------


def _alarm(seconds: int):
    """Fail (instead of hanging for ever) a call still going after ``seconds``."""
    import signal

    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


@pytest.mark.parametrize("n,width", [(44, 20), (44, 25), (44, 44), (44, 43), (200, 150)])
def test_distinct_permutation_ids_are_drawn_in_bounded_time(n, width):
    """_draw_ids redrew every row with a duplicate: (44, 25) took 9 s, (44, 44) never ended."""
    import signal

    from analytics._permutation import _draw_ids

    _alarm(10)
    try:
        started = time.monotonic()
        ids = _draw_ids(n, width, 999, np.random.default_rng(7))
        assert time.monotonic() - started < 2
    finally:
        signal.alarm(0)
    assert ids.shape == (999, width) and ids.min() >= 0 and ids.max() < n
    s = np.sort(ids, axis=1)
    assert not (s[:, 1:] == s[:, :-1]).any()
    # each id is as likely in every column (a uniform draw): first and last column
    for col in (0, width - 1):
        counts = np.bincount(ids[:, col], minlength=n)
        assert counts.max() < 999 / n * 3 + 10


#: The reported inputs that never finished (anonymous, within every budget).
ENDLESS = [
    ("local-moran", {**INCIDENTS, "weights": "distance_band", "distance": 1900}),
    ("local-moran", {**INCIDENTS, "aggregation": "communities", "weights": "knn", "k": 43}),
    ("hot-spots", {**INCIDENTS, "aggregation": "communities", "k": 30, "permutations": 99}),
    (
        "local-moran",
        {
            **INCIDENTS,
            "aggregation": "none",
            "field": "satisfaction",
            "k": 100,
            "permutations": 99,
            "filter": "community_code = '460204002001'",
        },
    ),
]


@pytest.mark.parametrize("pid,inputs", ENDLESS)
def test_reported_endless_permutation_runs_finish(server, pid, inputs):
    r = execute(server, pid, inputs, timeout=120)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:  # more neighbours than there are other units
        assert "k must be smaller than the number of" in r.json()["description"]
    else:
        assert r.json()["features"]


@pytest.mark.parametrize(
    "body,words",
    [
        (b'{"inputs": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, "nests JSON too deeply"),
        (b'{"inputs": {"collection": "incidents", "k": ' + b"9" * 4301 + b"}}", "4,300 digits"),
        (b'{"inputs": {"collection": "incidents\xff\xfe"}}', "not UTF-8"),
        (b'{"inputs": {"collection": ', "not valid JSON"),
    ],
)
def test_unreadable_execute_bodies_are_400(server, body, words):
    """They were 500s: RecursionError, pygeoapi's ValueError, UnicodeDecodeError."""
    r = requests.post(
        f"{server.url}/processes/hot-spots/execution",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 400, r.text
    assert words in r.json()["description"]


def _results(server) -> list[str]:
    path = server.results
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_dismissing_running_and_queued_jobs_stops_them(unbudgeted):
    """DELETE answered 200 but the run went on holding its slot (and its child)."""
    server = unbudgeted
    lim = runner.Limits(workers=2, run_dir=server.run_dir)
    before = {p.pid for p in run_children(server)}
    ids = []
    for _ in range(3):  # two run (two slots), one waits in the worker's queue
        r = execute(server, "kernel-density", HEAVY_KDE, asynchronous=True, timeout=60)
        assert r.status_code == 201, r.text
        ids.append(r.json()["jobID"])
    children, deadline = [], time.time() + 60
    while len(children) < 2 and time.time() < deadline:
        children = [p for p in run_children(server) if p.pid not in before]
        time.sleep(0.05)
    assert len(children) == 2, "the runs did not start"
    for job_id in reversed(ids):
        r = requests.delete(f"{server.url}/jobs/{job_id}?f=json", timeout=30)
        assert r.status_code == 200, r.text
    started = time.monotonic()
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, "a dismissed job's run went on"
    deadline = time.time() + 5
    while runner.slots_in_use(lim) and time.time() < deadline:
        time.sleep(0.1)
    assert runner.slots_in_use(lim) == 0
    assert time.monotonic() - started < 6
    time.sleep(1.5)  # the queued one never starts
    assert [p for p in run_children(server) if p.pid not in before] == []
    for job_id in ids:
        assert requests.get(f"{server.url}/jobs/{job_id}?f=json", timeout=30).status_code == 404
    # the records go once the runs have ended (they counted until then)
    deadline = time.time() + 10
    while time.time() < deadline and any(j["jobID"] in ids for j in _jobs(server)):
        time.sleep(0.2)
    assert not any(j["jobID"] in ids for j in _jobs(server))


@pytest.fixture(scope="module")
def results_server(sample_gpkg, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("results")
    s = LiveServer(sample_gpkg, workers=1, extra_env=_env(tmp))
    s.results = str(tmp / "results")
    yield s
    s.stop()


def test_results_are_compact_and_only_kept_for_asynchronous_jobs(results_server):
    """Every run (sync too) wrote its result indented by 4: 45.6 MB a hot-spot map."""
    server = results_server
    inputs = {**INCIDENTS, "cell_size": 500}
    r = execute(server, "hot-spots", inputs, timeout=120)
    assert r.status_code == 200, r.text
    assert _results(server) == []  # the response is the result: nothing kept on disk
    r = execute(server, "hot-spots", inputs, asynchronous=True, timeout=120)
    assert r.status_code == 201, r.text
    url = f"{server.url}/jobs/{r.json()['jobID']}"
    deadline = time.time() + 120
    while time.time() < deadline:
        job = requests.get(f"{url}?f=json", timeout=30).json()
        if job["status"] not in ("accepted", "running"):
            break
        time.sleep(0.2)
    assert job["status"] == "successful", job
    (name,) = _results(server)
    with open(os.path.join(server.results, name), "rb") as fh:
        stored = fh.read()
    assert b"\n" not in stored and b", " not in stored and b'": ' not in stored
    result = requests.get(f"{url}/results?f=json", timeout=60)
    assert result.status_code == 200 and result.json() == json.loads(stored)
