"""Shared fixtures: the sample GeoPackage, stores, and a live gunicorn server.

The sample GeoPackage is generated once per test session into a temporary
folder (never the user's ``geodata/tianya.gpkg``). ``live_server`` runs the real
``tianya serve`` (gunicorn) on a free port against it, with API keys for each
role from ``tests/keys.yml``. ``browser`` is headless Chromium for the browser tests
(``tests/browserkit.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from parallel import *  # noqa: F403 - pytest-xdist: exclusive tests run alone (tests/parallel.py)
from stores import *  # noqa: F403 - fixtures and hooks for both stores (tests/stores.py)

from geodata.sample import DEFAULT_SEED, generate, write_sample
from layers.gpkg import GeoPackageStore

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS_FILE = os.path.join(HERE, "keys.yml")
# Every server of this test session keeps its jobs in a folder of its own: the default
# /tmp job database is shared by every server on the machine.
_JOBS_DIR = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tianya-test-jobs-{os.getpid()}")
os.environ.setdefault("TIANYA_JOBS", os.path.join(_JOBS_DIR, "jobs.sqlite"))
os.environ.setdefault("TIANYA_JOB_RESULTS", os.path.join(_JOBS_DIR, "results"))
# No server of the session runs the key-task supervision clock (it would write escalations
# into the shared sample at today's date); tests/test_key_task_schedule.py turns it on.
os.environ.setdefault("TIANYA_ESCALATE_SECONDS", "0")
#: API keys in tests/keys.yml, by role.
KEYS = {
    "reporter": "test-reporter-key",
    "dispatcher": "test-dispatcher-key",
    "department": "test-water-key",
    "admin": "test-admin-key",
    "leadership": "test-leadership-key",
}


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """The sample layers as GeoDataFrames (default seed, one year of incidents), with the
    opinion posts and topics ``tianya generate`` ingests."""
    from opinionfeedkit import sample_opinion_frames

    data = generate(seed=DEFAULT_SEED)
    data.update(sample_opinion_frames(data, str(tmp_path_factory.mktemp("op") / "op.gpkg")))
    return data


@pytest.fixture(scope="session")
def sample_gpkg(tmp_path_factory):
    """Path of a freshly generated sample GeoPackage (read-only by convention)."""
    path = str(tmp_path_factory.mktemp("data") / "tianya.gpkg")
    write_sample(path, seed=DEFAULT_SEED)
    from tianya.opinion_poller import ingest_sample  # the posts, as `tianya generate` does

    with GeoPackageStore(path) as store:
        ingest_sample(store, DEFAULT_SEED)
    # the DEM and flood COGs once per session, shared by every server (tianya serve reads
    # $TIANYA_RASTERS; without it each copied GeoPackage would regenerate them)
    from geodata.rasters import write_rasters_from_store

    rasters = os.path.join(os.path.dirname(path), "rasters")
    write_rasters_from_store(path, rasters)
    os.environ["TIANYA_RASTERS"] = rasters
    return path


@pytest.fixture
def writable_gpkg(sample_gpkg, tmp_path):
    """A private copy of the sample GeoPackage that a test may change."""
    path = str(tmp_path / "tianya.gpkg")
    GeoPackageStore(sample_gpkg).con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(sample_gpkg, path)
    return path


@pytest.fixture
def gpkg_store(store_kind, request):
    """The read-only sample store: the GeoPackage, or its PostGIS copy in ``both_stores`` runs."""
    if store_kind == "postgis":
        from tianya.plugins.provider import store_for

        return store_for(request.getfixturevalue("pg_sample_url"))
    return GeoPackageStore(request.getfixturevalue("sample_gpkg"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` (a gunicorn arbiter) listens on ``port``."""
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


class LiveServer:
    """A ``tianya serve`` process; ``url`` is its base URL."""

    def __init__(self, data: str, extra_env: dict | None = None, workers: int = 2):
        self.data = data
        #: ports that another server held when this one tried them
        self.ports_taken: list[int] = []
        # a port taken between free_port() and gunicorn's bind (by a server of another
        # pytest-xdist worker): a new port, twice at most
        for attempt in range(3):
            if self._start(data, extra_env, workers, last=attempt == 2):
                return
            self.ports_taken.append(self.port)

    def _start(self, data: str, extra_env: dict | None, workers: int, last: bool) -> bool:
        """Start the server on a free port: True once it answers, False if the port was
        taken (then ``last`` raises instead)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            TIANYA_DATA=data,
            TIANYA_URL=self.url,
            TIANYA_KEYS=KEYS_FILE,
            **(extra_env or {}),
        )
        log_dir = (
            os.path.dirname(data)
            if "://" not in data
            else (os.environ.get("TIANYA_RASTERS") or "/tmp")
        )
        log = os.path.join(log_dir, f"server-{self.port}.log")
        while os.path.exists(log):  # the log of another server that had this port
            log = log[: -len(".log")] + "+.log"
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tianya.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--data",
                data,
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                out = open(self.log.name).read()
                if "Connection in use" in out and not last:
                    return False
                raise RuntimeError(f"server exited: {out[-3000:]}")
            try:
                # the answer must come from this server, not from one that holds the port
                answer = requests.get(self.url + "/conformance?f=json", timeout=2)
                if answer.ok and _listens(self.proc.pid, self.port):
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("server did not start within 90 s")

    def get(self, path: str, role: str | None = None, **kw):
        headers = kw.pop("headers", {})
        if role:
            headers["Authorization"] = f"Bearer {KEYS[role]}"
        return requests.get(self.url + path, headers=headers, timeout=60, **kw)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def live_server_gpkg(sample_gpkg):
    """A live server on the (read-only) session sample GeoPackage."""
    server = LiveServer(sample_gpkg)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_server(store_kind, request):
    """The live server on the session sample: the GeoPackage one, or in a ``both_stores``
    module also the PostGIS one (see ``tests/stores.py``)."""
    return request.getfixturevalue(f"live_server_{'pg' if store_kind == 'postgis' else 'gpkg'}")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through playwright-python, one a module (``tests/browserkit.py``)."""
    from browserkit import chromium

    with chromium() as b:
        yield b
