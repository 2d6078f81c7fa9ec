"""Concurrent writers lose and duplicate nothing; a SIGKILL mid-write loses no acknowledged case."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from casekit import GEOJSON, copy_sample, feature, headers, shared_server
from conftest import LiveServer

WRITERS = 8
CASES_PER_WRITER = 130  # each case: one create and one transition → 2,080 writes


def _count(path: str, sql: str) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _writer(url: str, n: int, errors: list) -> list[str]:
    s = requests.Session()
    made = []
    for i in range(n):
        doc = feature(
            category=("street_light", "exposed_garbage", "other")[i % 3],
            title=f"并发测试 {threading.get_ident()} {i}",
        )
        r = s.post(
            url + "/collections/incidents/items",
            json=doc,
            headers=headers("reporter", **{"Content-Type": GEOJSON}),
            timeout=60,
        )
        if r.status_code != 201:
            errors.append((r.status_code, r.text[:200]))
            continue
        case_no = r.headers["Location"].rsplit("/", 1)[-1]
        made.append(case_no)
        r = s.post(
            f"{url}/cases/{case_no}/transitions",
            json={"to": "handling"},
            headers=headers("admin"),
            timeout=60,
        )
        if r.status_code != 200:
            errors.append((r.status_code, r.text[:200]))
    return made


def test_concurrent_writers_lose_and_duplicate_nothing(sample_gpkg):
    path = copy_sample(sample_gpkg, "concurrency")
    before = _count(path, "SELECT count(*) FROM incidents")
    server = LiveServer(path, workers=3)
    try:
        errors: list = []
        t0 = time.perf_counter()
        with ThreadPoolExecutor(WRITERS) as pool:
            futures = [
                pool.submit(_writer, server.url, CASES_PER_WRITER, errors) for _ in range(WRITERS)
            ]
            made = [c for f in futures for c in f.result()]
        elapsed = time.perf_counter() - t0
    finally:
        server.stop()
    assert not errors, errors[:5]
    assert len(made) == WRITERS * CASES_PER_WRITER
    assert len(set(made)) == len(made), "duplicate case numbers acknowledged"
    assert _count(path, "SELECT count(*) FROM incidents") == before + len(made)
    assert _count(path, "SELECT count(DISTINCT case_no) FROM incidents") == before + len(made)
    assert _count(
        path, "SELECT count(*) FROM incidents WHERE title LIKE '并发测试%' AND status = 'handling'"
    ) == len(made)
    assert _count(path, "SELECT count(*) FROM incident_history") == 4 * len(made)
    assert _count(path, "PRAGMA integrity_check") == "ok"
    print(f"{2 * len(made)} writes in {elapsed:.1f} s")


def test_racing_transitions_on_one_case_apply_once(sample_gpkg):
    server = shared_server(sample_gpkg)
    path = os.path.join(os.path.dirname(sample_gpkg), "cases_live.gpkg")
    r = requests.post(
        server.url + "/collections/incidents/items",
        json=feature(),
        headers=headers("reporter", **{"Content-Type": GEOJSON}),
        timeout=30,
    )
    case_no = r.headers["Location"].rsplit("/", 1)[-1]
    barrier = threading.Barrier(WRITERS)

    def move(_):
        barrier.wait()
        return requests.post(
            f"{server.url}/cases/{case_no}/transitions",
            json={"to": "handling"},
            headers=headers("admin"),
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(WRITERS) as pool:
        codes = sorted(pool.map(move, range(WRITERS)))
    assert codes == [200] + [409] * (WRITERS - 1)
    assert (
        _count(
            path,
            f"SELECT count(*) FROM incident_history WHERE case_no = '{case_no}' "
            "AND to_status = 'handling'",
        )
        == 1
    )


def test_sigkill_mid_writes_keeps_every_acknowledged_case(sample_gpkg):
    path = copy_sample(sample_gpkg, "sigkill")
    server = LiveServer(path, workers=2)
    acked: list[str] = []
    stop = threading.Event()

    def writer():
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.post(
                    server.url + "/collections/incidents/items",
                    json=feature(),
                    headers=headers("reporter", **{"Content-Type": GEOJSON}),
                    timeout=10,
                )
            except requests.RequestException:
                return  # the server died under us
            if r.status_code == 201:
                acked.append(r.headers["Location"].rsplit("/", 1)[-1])

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while len(acked) < 150 and time.time() < deadline:
        time.sleep(0.05)
    server.stop(sig=signal.SIGKILL)  # the whole process group, mid-write
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 150
    # the file is sound and holds every acknowledged case, before and after a restart
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in con.execute("SELECT case_no FROM incidents")}
        hist = {r[0] for r in con.execute("SELECT DISTINCT case_no FROM incident_history")}
    finally:
        con.close()
    assert set(acked) <= stored
    assert set(acked) <= hist
    server = LiveServer(path, workers=1)
    try:
        r = requests.get(f"{server.url}/collections/incidents/items/{acked[-1]}?f=json", timeout=30)
        assert r.status_code == 200
        r = requests.post(
            server.url + "/collections/incidents/items",
            json=feature(),
            headers=headers("reporter", **{"Content-Type": GEOJSON}),
            timeout=30,
        )
        assert r.status_code == 201
        assert r.headers["Location"].rsplit("/", 1)[-1] not in acked
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_leftover_threads():
    yield
    assert threading.active_count() < 20
