"""Process jobs belong to their caller, are cleaned up and cost constant time (plugins.jobs).

Every test runs on both job stores (``both_stores``): the SQLite file beside a GeoPackage data
store, and the ``tianya_jobs`` table when the data store is PostGIS.  The HTTP tests use a live
server per store; the others a :class:`~tianya.plugins.jobs.JobManager` directly.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid

import pytest
import requests
from conftest import KEYS, LiveServer
from pygeoapi.process.base import BaseProcessor, JobNotFoundError, ProcessorExecuteError
from stores import _SCHEMAS

from layers.access import PUBLIC, Principal
from tianya.plugins.jobs import RETRY_AFTER, JobManager
from tianya.plugins.jobstore import open_job_store
from tianya.request import PRINCIPAL as CURRENT

pytestmark = [pytest.mark.both_stores, pytest.mark.timeout(600)]

DISPATCHER = Principal("command center dispatcher", "dispatcher")  # tests/keys.yml
REPORTER = Principal("grid worker app", "reporter")
ADMIN = Principal("administrator", "admin")
INPUTS = {"collection": "incidents", "cell_size": 400}


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def job_conf(store_kind, tmp_path, request):
    """A manager configuration with a private job store of ``store_kind``."""
    conf = {
        "name": "tianya.plugins.jobs.JobManager",
        "connection": str(tmp_path / "jobs.sqlite"),
        "output_dir": str(tmp_path / "results"),
    }
    if store_kind == "postgis":
        conf["data"] = _fresh_schema(request.getfixturevalue("pg_url"))
    return conf


def _fresh_schema(base_url: str) -> str:
    import psycopg
    from stores import with_options

    from layers.postgis import split_url

    schema = f"jobs_{uuid.uuid4().hex[:10]}"
    conninfo, _ = split_url(base_url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    _SCHEMAS.append(schema)  # dropped at the end of the session
    return with_options(base_url, schema=schema)


class As:
    """Run as ``who`` (the principal the shell would make current)."""

    def __init__(self, who: Principal):
        self.who = who

    def __enter__(self):
        self.token = CURRENT.set(self.who)

    def __exit__(self, *exc):
        CURRENT.reset(self.token)


def _job(job_id: str | None = None, status: str = "accepted") -> dict:
    return {
        "type": "process",
        "identifier": job_id or str(uuid.uuid4()),
        "process_id": "hot-spots",
        "created": "2026-01-01T00:00:00.000000Z",
        "started": "2026-01-01T00:00:00.000000Z",
        "updated": "2026-01-01T00:00:00.000000Z",
        "finished": None,
        "status": status,
        "location": None,
        "mimetype": "application/json",
        "message": "",
        "progress": 5,
    }


def _sql(manager: JobManager, statement: str, args=()) -> None:
    """Run ``statement`` on the manager's job table (``{t}`` is the table)."""
    store = manager.store
    if hasattr(store, "path"):
        store._conn().execute(statement.format(t="jobs").replace("%s", "?"), args)
    else:
        with store._conn() as conn:
            conn.execute(statement.format(t=store.table), args)


def _finish(manager: JobManager, job_id: str, content: bytes | None = None) -> str | None:
    """Finish a job successfully, with a result file when ``content`` is given."""
    location = None
    if content is not None:
        location = str(manager.output_dir / f"hot-spots-{job_id}")
        with open(location, "wb") as fh:
            fh.write(content)
    manager.update_job(
        job_id,
        {"status": "successful", "location": location, "finished": "2026-01-01T00:00:01.000000Z"},
    )
    return location


def _kept(manager: JobManager, job_id: str, path: str) -> bool:
    """Whether the job's result is kept: its file (SQLite), its row's result (PostgreSQL)."""
    if manager.store.keeps_results:
        return manager.store.get(job_id) is not None and manager.store.result(job_id) is not None
    return os.path.exists(path)


def _bulk(manager: JobManager, n: int, start: int) -> None:
    """Add ``n`` finished jobs of several owners straight into the store (fast)."""
    import json

    owners = [
        ("command center dispatcher", "dispatcher"),
        ("administrator", "admin"),
        ("anonymous", "public"),
        ("water bureau", "department"),
    ]
    now = time.time()
    rows = []
    for i in range(start, start + n):
        job = _job(f"bulk-{i:06d}", "successful")
        name, role = owners[i % len(owners)]
        rows.append(
            (
                job["identifier"],
                "hot-spots",
                "successful",
                name,
                role,
                False,
                manager.host,
                os.getpid(),
                now - 1000 + i * 1e-3,
                now,
                json.dumps(job),
            )
        )
    store = manager.store
    if hasattr(store, "path"):
        conn = store._conn()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    else:
        with (
            store._conn() as conn,
            conn.cursor() as cur,
            cur.copy(
                f"COPY {store.table} (identifier, process_id, status, owner_name, owner_role, "
                "restricted, host, pid, created_at, finished_at, doc) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        with store._conn() as conn:
            conn.execute(f"ANALYZE {store.table}")


def _status(exc_info) -> int:
    return exc_info.value.http_status_code


# --- ownership -------------------------------------------------------------------------------


def test_a_dispatchers_job_is_theirs(job_conf):
    """Without a key one could list, read and dismiss a dispatcher's job (pygeoapi managers)."""
    m = JobManager(job_conf)
    with As(DISPATCHER):
        m.add_job(_job("d1"))
    _finish(m, "d1", b'{"a": 1}')
    for who in (PUBLIC, REPORTER, Principal("another dispatcher", "dispatcher")):
        with As(who):
            assert "d1" not in {j["identifier"] for j in m.get_jobs()["jobs"]}
            with pytest.raises(JobNotFoundError):
                m.get_job("d1")
            with pytest.raises(JobNotFoundError):
                m.get_job_result("d1")
            with pytest.raises(JobNotFoundError):
                m.delete_job("d1")
    for who in (DISPATCHER, ADMIN):
        with As(who):
            assert [j["identifier"] for j in m.get_jobs()["jobs"]] == ["d1"]
            assert m.get_jobs()["numberMatched"] == 1
            assert m.get_job("d1")["status"] == "successful"
            assert m.get_job_result("d1") == ("application/json", {"a": 1})
    with As(DISPATCHER):
        assert m.delete_job("d1")
    assert m.store.get("d1") is None
    assert list(m.output_dir.iterdir()) == []


def test_an_anonymous_job_is_read_by_id_only(job_conf):
    m = JobManager(job_conf)
    with As(PUBLIC):
        m.add_job(_job("a1"))
        assert m.get_jobs() == {"jobs": [], "numberMatched": 0}
        assert m.get_job("a1")["identifier"] == "a1"
    with As(DISPATCHER):
        assert m.get_jobs()["jobs"] == []
        assert m.get_job("a1")["identifier"] == "a1"  # the id is the capability
        with pytest.raises(JobNotFoundError):
            m.delete_job("a1")  # only the owner (the anonymous public) or admin dismisses
    with As(ADMIN):
        assert [j["identifier"] for j in m.get_jobs()["jobs"]] == ["a1"]
    with As(PUBLIC):
        assert m.delete_job("a1")


def test_restricted_jobs_stay_hidden_from_untrusted_roles(job_conf):
    from tianya.plugins import jobs

    m = JobManager(job_conf)
    jobs._PENDING.restricted = True  # what execute_process notes for a job on personal data
    try:
        with As(DISPATCHER):
            m.add_job(_job("r1"))
    finally:
        jobs._PENDING.restricted = False
    with As(Principal("command center dispatcher", "reporter")):  # same name, other role
        with pytest.raises(JobNotFoundError):
            m.get_job("r1")
    with As(ADMIN):
        assert m.get_job("r1")["identifier"] == "r1"


def test_job_ids_are_random_uuid4(job_conf):
    """pygeoapi names jobs uuid1 (MAC address and clock): guessable, yet an id reads a job."""
    m = JobManager(job_conf)
    m.processes["noop"] = {"processor": {"name": f"{__name__}.Noop"}}
    with As(DISPATCHER):
        ids = [m.execute_process("noop", {})[0] for _ in range(3)]
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert len(set(ids)) == 3


class Noop(BaseProcessor):
    """A process that answers at once (loaded by name by the manager)."""

    def __init__(self, processor_def):
        super().__init__(
            processor_def,
            {
                "id": "noop",
                "title": "noop",
                "version": "1",
                "jobControlOptions": ["sync-execute"],
                "inputs": {},
                "outputs": {},
            },
        )

    def execute(self, data, outputs=None):
        return "application/json", {"ok": True}


# --- limits ----------------------------------------------------------------------------------


def test_unfinished_jobs_per_caller_are_limited(job_conf):
    m = JobManager({**job_conf, "max_jobs_per_caller": "2", "max_anonymous_jobs": "3"})
    with As(DISPATCHER):
        m.add_job(_job("d1"))
        m.add_job(_job("d2"))
        with pytest.raises(ProcessorExecuteError) as info:
            m.add_job(_job("d3"))
        assert _status(info) == 429
        assert "the limit is 2 per caller" in info.value.message
        assert m.store.get("d3") is None
    with As(REPORTER):  # another caller is not held back
        m.add_job(_job("r1"))
    _finish(m, "d1")
    with As(DISPATCHER):  # one finished: room for one more
        m.add_job(_job("d3"))
    with As(PUBLIC):  # anonymous callers share one small limit
        for i in range(3):
            m.add_job(_job(f"a{i}"))
        with pytest.raises(ProcessorExecuteError) as info:
            m.add_job(_job("a3"))
        assert _status(info) == 429 and "anonymous callers together" in info.value.message


# --- retention and result size -----------------------------------------------------------------


def test_retention_removes_old_jobs_and_their_files(job_conf):
    """Job records and result files were kept forever."""
    m = JobManager({**job_conf, "retention_hours": "24"})
    with As(DISPATCHER):
        for job_id in ("old", "new", "old-unfinished"):
            m.add_job(_job(job_id))
    old_file = _finish(m, "old", b"x" * 100)
    new_file = _finish(m, "new", b"y" * 100)
    _sql(m, "UPDATE {t} SET finished_at = finished_at - 25 * 3600 WHERE identifier = %s", ["old"])
    _sql(
        m,
        "UPDATE {t} SET created_at = created_at - 48 * 3600 WHERE identifier = %s",
        ["old-unfinished"],
    )
    m._purged_at = float("-inf")  # the last sweep was more than a minute ago
    with As(DISPATCHER):
        m.add_job(_job("trigger"))
    assert m.store.get("old") is None and not _kept(m, "old", old_file)
    assert not os.path.exists(old_file)
    assert m.store.get("new") is not None and _kept(m, "new", new_file)
    assert m.store.get("old-unfinished") is not None  # unfinished: never removed
    # at most one sweep a minute: an add right after does not sweep again
    _sql(m, "UPDATE {t} SET finished_at = finished_at - 25 * 3600 WHERE identifier = %s", ["new"])
    with As(DISPATCHER):
        _finish(m, "trigger")
        m.add_job(_job("again"))
    assert m.store.get("new") is not None
    m._purged_at -= 61
    with As(DISPATCHER):
        _finish(m, "again")
        m.add_job(_job("later"))
    assert m.store.get("new") is None and not _kept(m, "new", new_file)
    assert not os.path.exists(new_file)


def test_old_orphan_result_files_are_swept_at_start(job_conf, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "hot-spots-lost").write_bytes(b"x")
    (results / "hot-spots-recent").write_bytes(b"y")
    old = time.time() - 200 * 3600
    os.utime(results / "hot-spots-lost", (old, old))
    JobManager(job_conf)  # a worker starting (retention 168 h)
    assert sorted(p.name for p in results.iterdir()) == ["hot-spots-recent"]


def test_a_result_over_the_cap_is_not_kept(job_conf):
    m = JobManager({**job_conf, "max_result_bytes": "50"})
    with As(DISPATCHER):
        m.add_job(_job("big"))
        m.add_job(_job("small"))
    big = _finish(m, "big", b"z" * 51)
    small = _finish(m, "small", b"z" * 50)
    with As(DISPATCHER):
        job = m.get_job("big")
        assert job["status"] == "failed" and "larger than the 50 bytes" in job["message"]
        assert not os.path.exists(big) and _kept(m, "small", small)
        assert m.get_job("small")["status"] == "successful"


# --- constant time -----------------------------------------------------------------------------


def _time_adds(m: JobManager, n: int = 60) -> float:
    """Median seconds of one add_job (as a caller with many jobs), each then finished."""
    times = []
    with As(DISPATCHER):
        for _ in range(n):
            job = _job()
            t0 = time.perf_counter()
            m.add_job(job)
            times.append(time.perf_counter() - t0)
            m.update_job(job["identifier"], {"status": "successful"})
    return statistics.median(times)


def test_add_job_time_does_not_grow_with_the_jobs_kept(job_conf, store_kind, capsys):
    """pygeoapi's TinyDB manager: add_job 0.67 s at 10,000 jobs, 2.9 s at 50,000."""
    m = JobManager(job_conf)
    _bulk(m, 1_000, 0)
    _time_adds(m, 10)  # warm up (connections, statement caches)
    small = _time_adds(m)
    _bulk(m, 19_000, 1_000)
    large = _time_adds(m)
    with capsys.disabled():
        print(
            f"\n[{store_kind}] add_job median: {small * 1e3:.2f} ms at 1k jobs, "
            f"{large * 1e3:.2f} ms at 20k jobs (ratio {large / small:.2f})"
        )
    assert large / small < 2.5, (small, large)
    with As(DISPATCHER):  # the caller's own page is an index range too
        page = m.get_jobs(limit=10)
    assert len(page["jobs"]) == 10 and page["numberMatched"] == 5_000 + 130


# --- two hosts on one PostgreSQL -----------------------------------------------------------


@pytest.mark.postgis
def test_two_hosts_share_jobs_on_postgresql(pg_url, tmp_path):
    job_conf = {
        "name": "tianya.plugins.jobs.JobManager",
        "connection": str(tmp_path / "unused"),
        "output_dir": str(tmp_path / "results"),
        "data": _fresh_schema(pg_url),
    }
    a = JobManager(job_conf)
    b = JobManager({**job_conf, "output_dir": str(tmp_path / "other-host-results")})
    b.host = "other-host"
    with As(DISPATCHER):
        a.add_job(_job("from-a"))
        b.add_job(_job("from-b"))
        assert b.get_job("from-a")["status"] == "accepted"
        b.update_job("from-a", {"status": "running", "progress": 50})
        assert a.get_job("from-a")["progress"] == 50
        assert {j["identifier"] for j in a.get_jobs()["jobs"]} == {"from-a", "from-b"}
        assert {j["identifier"] for j in b.get_jobs()["jobs"]} == {"from-a", "from-b"}
        # a result written on one host is read on the other (kept in the table, not a file)
        _finish(a, "from-a", b'{"cells": 3}')
        assert b.get_job_result("from-a") == ("application/json", {"cells": 3})
        assert list(a.output_dir.iterdir()) == []
        # the limit counts the caller's unfinished jobs on every host
        a.add_job(_job("a2"))  # with from-b: 2 unfinished, 2 to go
        b.add_job(_job("b2"))
        b.add_job(_job("b3"))
        with pytest.raises(ProcessorExecuteError) as info:
            a.add_job(_job("a3"))
        assert _status(info) == 429
    # recovery only touches its own host's jobs: b's worker pid is alive here, a's too
    assert a.recover() == 0 and b.recover() == 0
    _sql(a, "UPDATE {t} SET pid = %s WHERE identifier = %s", [_dead_pid(), "from-b"])
    assert a.recover() == 0  # another host's job: its pid means nothing here
    assert b.recover() == 1
    with As(ADMIN):
        assert a.get_job("from-b")["status"] == "failed"
        b.delete_job("from-a")
        with pytest.raises(JobNotFoundError):
            a.get_job("from-a")


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_a_tinydb_file_is_refused_with_a_message(tmp_path):
    path = tmp_path / "jobs.db"
    path.write_text('{"_default": {}}')
    with pytest.raises(RuntimeError, match="TinyDB"):
        JobManager({"name": "x", "connection": str(path), "output_dir": str(tmp_path / "r")})


# --- through the live server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server(store_kind, request, tmp_path_factory):
    """A live server whose jobs are a SQLite file (GeoPackage data) or a table (PostGIS)."""
    tmp = tmp_path_factory.mktemp(f"jobs-{store_kind}")
    env = {"TIANYA_JOBS": str(tmp / "jobs.sqlite"), "TIANYA_JOB_RESULTS": str(tmp / "results")}
    if store_kind == "postgis":
        data = _fresh_data_schema(request)
    else:
        data = request.getfixturevalue("sample_gpkg")
    s = LiveServer(data, extra_env=env, workers=2)
    s.jobs = env["TIANYA_JOBS"]
    yield s
    s.stop()


def _fresh_data_schema(request) -> str:
    from stores import load_schema

    return load_schema(
        request.getfixturevalue("sample_gpkg"), request.getfixturevalue("pg_url"), prefix="jobs"
    )


def _auth(role) -> dict:
    return {"Authorization": f"Bearer {KEYS[role]}"} if role else {}


def _submit(server, role=None):
    return requests.post(
        f"{server.url}/processes/hot-spots/execution",
        json={"inputs": INPUTS},
        headers={"Prefer": "respond-async", **_auth(role)},
        timeout=60,
    )


def _wait(server, job_id, role):
    deadline = time.time() + 120
    while time.time() < deadline:
        r = requests.get(f"{server.url}/jobs/{job_id}?f=json", headers=_auth(role), timeout=30)
        assert r.status_code == 200, r.text
        if r.json()["status"] not in ("accepted", "running"):
            return r.json()
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def _listed(server, role) -> set[str]:
    r = requests.get(f"{server.url}/jobs?f=json&limit=1000", headers=_auth(role), timeout=30)
    assert r.status_code == 200, r.text
    return {j["jobID"] for j in r.json()["jobs"]}


def test_http_only_the_owner_and_admin_see_a_dispatchers_job(server):
    r = _submit(server, "dispatcher")
    assert r.status_code == 201, r.text
    job_id = r.json()["jobID"]
    assert uuid.UUID(job_id).version == 4
    assert _wait(server, job_id, "dispatcher")["status"] == "successful"
    for role in (None, "reporter"):
        assert job_id not in _listed(server, role)
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/results"):
            r = requests.get(f"{server.url}{path}?f=json", headers=_auth(role), timeout=30)
            assert r.status_code == 404, (role, path, r.text)
        r = requests.delete(f"{server.url}/jobs/{job_id}", headers=_auth(role), timeout=30)
        assert r.status_code == 404, (role, r.text)
    for role in ("dispatcher", "admin"):
        assert job_id in _listed(server, role)
        r = requests.get(
            f"{server.url}/jobs/{job_id}/results?f=json", headers=_auth(role), timeout=30
        )
        assert r.status_code == 200 and r.json()["features"], role
    r = requests.delete(f"{server.url}/jobs/{job_id}", headers=_auth("dispatcher"), timeout=30)
    assert r.status_code == 200, r.text
    r = requests.get(f"{server.url}/jobs/{job_id}?f=json", headers=_auth("admin"), timeout=30)
    assert r.status_code == 404


def test_http_an_anonymous_job_is_read_by_id_and_listed_to_nobody(server):
    r = _submit(server)
    assert r.status_code == 201, r.text
    job_id = r.json()["jobID"]
    assert _wait(server, job_id, None)["status"] == "successful"
    r = requests.get(f"{server.url}/jobs/{job_id}/results?f=json", timeout=30)
    assert r.status_code == 200 and r.json()["features"]
    assert _listed(server, None) == set()
    assert job_id not in _listed(server, "dispatcher")
    assert job_id in _listed(server, "admin")
    r = requests.delete(f"{server.url}/jobs/{job_id}", headers=_auth("dispatcher"), timeout=30)
    assert r.status_code == 404
    r = requests.delete(f"{server.url}/jobs/{job_id}", timeout=30)
    assert r.status_code == 200


def test_http_too_many_unfinished_jobs_is_429(server):
    """A caller over the limit (4 unfinished) is told so, with Retry-After."""
    store = open_job_store(server.jobs, server.data)  # the server's job store
    held = []
    try:
        for _ in range(4):  # four jobs of the dispatcher still running (on this host)
            job = _job(f"held-{uuid.uuid4()}", "running")
            store.add(
                job,
                (DISPATCHER.name, DISPATCHER.role),
                restricted=False,
                host="test-host",
                pid=os.getpid(),
            )
            held.append(job["identifier"])
        r = _submit(server, "dispatcher")
        assert r.status_code == 429, r.text
        assert r.headers["Retry-After"] == str(RETRY_AFTER)
        assert "the limit is 4 per caller" in r.json()["description"]
        r = _submit(server, "department")  # another caller is not held back
        assert r.status_code == 201, r.text
        _wait(server, r.json()["jobID"], "department")
        store.update(held[0], {"status": "successful"})
        r = _submit(server, "dispatcher")  # room for one again
        assert r.status_code == 201, r.text
        _wait(server, r.json()["jobID"], "dispatcher")
    finally:
        for job_id in held:
            store.delete(job_id)


# --- OGC API - Processes 1.0: exception types, results document, monitor link ---------------

PROCESSES_EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"


def test_http_req_core_exception_types_are_the_spec_uris(server):
    """/req/core/process-exception/no-such-process, /req/core/job-exception-no-such-job,
    /req/core/job-results-exception/no-such-job, /req/core/job-results-exception/results-not-ready:
    404 with the spec's exception ``type`` URI (pygeoapi answered its code names as the type);
    ``code`` and ``description`` stay."""
    missing = str(uuid.uuid4())
    cases = [
        ("/processes/no-such-thing", None, "NoSuchProcess", "no-such-process"),
        (f"/jobs/{missing}", None, "NoSuchJob", "no-such-job"),
        (f"/jobs/{missing}/results", None, "NoSuchJob", "no-such-job"),
    ]
    store = open_job_store(server.jobs, server.data)  # the server's job store
    running = _job(f"running-{uuid.uuid4()}", "running")
    store.add(
        running,
        (DISPATCHER.name, DISPATCHER.role),
        restricted=False,
        host="test-host",
        pid=os.getpid(),
    )
    cases.append(
        (
            f"/jobs/{running['identifier']}/results",
            "dispatcher",
            "ResultNotReady",
            "result-not-ready",
        )
    )
    try:
        for path, role, code, name in cases:
            r = requests.get(f"{server.url}{path}?f=json", headers=_auth(role), timeout=30)
            assert r.status_code == 404, (path, r.text)
            body = r.json()
            assert body["type"] == PROCESSES_EXCEPTIONS + name, (path, body)
            assert body["code"] == code and body["description"], (path, body)
    finally:
        store.delete(running["identifier"])


def test_http_req_core_process_execute_sync_document_is_the_results_document(server):
    """/req/core/process-execute-sync-document: ``response: document`` answers the results
    document, ``{"<output id>": value}`` (it was ``{"outputs": [...]}``); the GeoJSON result
    is the qualified value of the process's one output, ``result``."""
    url = f"{server.url}/processes/hot-spots/execution"
    raw = requests.post(url, json={"inputs": INPUTS}, timeout=120)
    assert raw.status_code == 200, raw.text
    r = requests.post(url, json={"inputs": INPUTS, "response": "document"}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"result"}, list(body)
    assert body["result"]["mediaType"] == raw.headers["Content-Type"].split(";")[0]
    assert body["result"]["value"]["features"] == raw.json()["features"]


def test_http_req_core_job_results_success_sync_links_its_job_as_monitor(server):
    """/req/core/job-results-success-sync: the job created for a synchronous run is linked
    from the response with ``Link: <.../jobs/{id}>; rel="monitor"``, and that job is the
    successful run."""
    r = requests.post(
        f"{server.url}/processes/hot-spots/execution",
        json={"inputs": INPUTS},
        headers=_auth("dispatcher"),
        timeout=120,
    )
    assert r.status_code == 200, r.text
    monitor = r.links.get("monitor")
    assert monitor, r.headers.get("Link")
    assert monitor["url"] == r.headers["Location"]
    job = requests.get(f"{monitor['url']}?f=json", headers=_auth("dispatcher"), timeout=30)
    assert job.status_code == 200, job.text
    assert job.json()["status"] == "successful"
    assert monitor["url"].endswith(f"/jobs/{job.json()['jobID']}")
    # its result was this answer and is not kept: no results link, and /results says so
    # (pygeoapi linked them and answered 500 JobResultNotFound)
    assert not [ln for ln in job.json()["links"] if ln["rel"].endswith("/results")]
    results = requests.get(
        f"{monitor['url']}/results?f=json", headers=_auth("dispatcher"), timeout=30
    )
    assert results.status_code == 404, results.text
    assert "not kept" in results.json()["description"]


# --- robustness review: dismissal and the result quota -------------------------------------


def test_a_dismissed_running_job_counts_until_its_run_ends(job_conf):
    """DELETE of a running job removed it at once: its run went on, no longer counted, so one
    anonymous client could keep queuing runs."""
    m = JobManager({**job_conf, "max_anonymous_jobs": "1"})
    with As(PUBLIC):
        m.add_job(_job("busy"))
        m.update_job("busy", {"status": "running"})
        wanted = m._wanted("busy")
        assert wanted()
        assert m.delete_job("busy")
        with pytest.raises(JobNotFoundError):
            m.get_job("busy")
        with pytest.raises(JobNotFoundError):
            m.delete_job("busy")
        time.sleep(1.1)  # the run checks its job about once a second
        assert not wanted()  # the run cancels itself
        with pytest.raises(ProcessorExecuteError) as info:  # it still counts
            m.add_job(_job("next"))
        assert _status(info) == 429
    # the run ends (cancelled): the job goes, and stops counting
    m.update_job("busy", {"status": "failed", "message": "cancelled"})
    assert m.store.get("busy") is None
    with As(PUBLIC):
        m.add_job(_job("next"))


def test_stored_results_have_a_quota_per_caller(job_conf):
    """Results were kept (168 h) without any bound on their total: ~28 GB/hour."""
    from layers.errors import TooManyRequests

    m = JobManager({**job_conf, "result_quota_bytes": "100"})
    with As(PUBLIC):
        for job_id in ("a1", "a2", "a3"):
            m.add_job(_job(job_id))
        m._check_quota()  # nothing stored yet
    kept = _finish(m, "a1", b"x" * 60)
    over = _finish(m, "a2", b"x" * 60)
    with As(PUBLIC):
        assert m.get_job("a1")["status"] == "successful" and _kept(m, "a1", kept)
        job = m.get_job("a2")
        assert job["status"] == "failed" and "TIANYA_JOB_RESULT_QUOTA" in job["message"]
        assert "anonymous callers' (together)" in job["message"]
        assert not os.path.exists(over)
    with As(DISPATCHER):  # another caller has a quota of their own
        m.add_job(_job("d1"))
        m._check_quota()
    d1 = _finish(m, "d1", b"x" * 90)
    with As(DISPATCHER):
        assert m.get_job("d1")["status"] == "successful" and _kept(m, "d1", d1)
    _finish(m, "a3", b"x" * 40)  # anonymous callers at the quota: submissions refused
    with As(PUBLIC), pytest.raises(TooManyRequests) as info:
        m._check_quota()
    assert info.value.status == 429 and "quota of 100 bytes" in str(info.value)
    with As(PUBLIC):
        m.delete_job("a1")  # dismissing frees it
        m._check_quota()
