"""The suite's own machinery for running on several processes (tests/parallel.py, conftest).

The readers-writer lock that lets an ``exclusive`` test (a PostgreSQL restart) run alone,
the live server's port taken by another server, and the hooks of tests/stores.py.
"""

from __future__ import annotations

import os
import threading
import time

import conftest
import requests
import stores
from parallel import RunLock


def _enter(lock: RunLock, kind: str, seen: list[str], name: str, release: threading.Event):
    with getattr(lock, kind)():
        seen.append(name)
        release.wait(30)


def _thread(*args) -> threading.Thread:
    t = threading.Thread(target=_enter, args=args, daemon=True)
    t.start()
    return t


def _wait_for(seen: list[str], n: int) -> None:
    deadline = time.monotonic() + 10
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.02)


def test_an_exclusive_holder_waits_for_the_shared_ones_and_goes_first(tmp_path):
    """flock locks belong to the open file, so three RunLocks on one folder are three
    processes' worth of holders, here in threads."""
    reader, writer, late = (RunLock(str(tmp_path)) for _ in range(3))
    seen: list[str] = []
    done_reader, done_writer, done_late = threading.Event(), threading.Event(), threading.Event()
    threads = [_thread(reader, "shared", seen, "reader", done_reader)]
    _wait_for(seen, 1)
    threads.append(_thread(writer, "exclusive", seen, "writer", done_writer))
    time.sleep(0.3)
    threads.append(_thread(late, "shared", seen, "late", done_late))
    time.sleep(0.3)
    assert seen == ["reader"]  # the writer waits for the reader; the late reader for the writer
    done_reader.set()
    _wait_for(seen, 2)
    time.sleep(0.3)
    assert seen == ["reader", "writer"]  # the late reader may not slip in beside the writer
    done_writer.set()
    _wait_for(seen, 3)
    assert seen == ["reader", "writer", "late"]
    done_late.set()
    for t in threads:
        t.join(10)


def test_shared_holders_do_not_wait_for_each_other(tmp_path):
    a, b = RunLock(str(tmp_path)), RunLock(str(tmp_path))
    seen: list[str] = []
    release = threading.Event()
    threads = [_thread(a, "shared", seen, "a", release), _thread(b, "shared", seen, "b", release)]
    _wait_for(seen, 2)
    assert sorted(seen) == ["a", "b"]
    release.set()
    for t in threads:
        t.join(10)


def test_a_live_server_whose_port_is_taken_moves_to_another(live_server_gpkg, monkeypatch):
    """Another worker's server took the port between free_port() and gunicorn's bind: the
    answer on that port is not this server's, which starts on a new port instead."""
    taken = live_server_gpkg.port
    ports = iter([taken])
    real = conftest.free_port
    monkeypatch.setattr(conftest, "free_port", lambda: next(ports, None) or real())
    server = conftest.LiveServer(live_server_gpkg.data, workers=1)
    try:
        assert server.ports_taken == [taken] and server.port != taken
        assert conftest._listens(server.proc.pid, server.port)
        assert not conftest._listens(live_server_gpkg.proc.pid, server.port)
        assert requests.get(server.url + "/conformance?f=json", timeout=30).ok
        assert live_server_gpkg.get("/conformance?f=json").ok  # the other one untouched
    finally:
        server.stop()


def test_every_hook_of_stores_reaches_conftest():
    """conftest takes tests/stores.py by ``import *``: a hook missing from ``__all__`` never
    runs (the CI rule that a module skipped at import fails did not)."""
    hooks = {name for name in vars(stores) if name.startswith("pytest_")}
    assert hooks <= set(stores.__all__), hooks - set(stores.__all__)
    for name in hooks:
        assert getattr(conftest, name) is getattr(stores, name)


def test_a_running_test_holds_the_runs_shared_lock(request):
    """Under xdist every test runs holding the shared lock (an exclusive one cannot start);
    in a one-process run there is no lock at all."""
    import fcntl

    import parallel

    lock = parallel._lock()
    if not hasattr(request.config, "workerinput"):
        assert lock is None
        return
    assert lock is not None
    other = RunLock(os.path.dirname(lock.data.name))
    try:
        fcntl.flock(other.data, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = False
    except BlockingIOError:
        held = True
    assert held, "the test runs without the run's shared lock"
    fcntl.flock(other.data, fcntl.LOCK_SH | fcntl.LOCK_NB)  # another shared holder may enter
    fcntl.flock(other.data, fcntl.LOCK_UN)
