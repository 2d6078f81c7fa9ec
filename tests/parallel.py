"""The suite on several processes (pytest-xdist): tests marked ``exclusive`` run alone.

``make test`` runs ``pytest -n 2 --dist loadfile``: each test module runs whole on one
worker process, so its module-scoped servers start once; every worker has its own
session sample, temporary folders (``tmp_path_factory``), job database (by process id),
PostGIS schemas (random names) and server ports (``free_port``, retried when taken).

What the workers do share is the machine: the PostgreSQL cluster, above all. A test that
stops or restarts it, or that measures wall time, is marked ``@pytest.mark.exclusive``: it
waits until no test of another worker is running, and no test starts anywhere until it is
done. Every other test holds a shared lock while it runs (setup, call and teardown), and
so does each worker's end of session (dropping its schemas). The locks are ``flock`` on
two files in the run's common temporary folder, with a gate that a waiting exclusive test
closes, so that a stream of shared holders cannot starve it. Without xdist (one process)
nothing is locked.

Imported by ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

import pytest

__all__ = ["pytest_runtest_protocol", "pytest_sessionstart", "shared_run"]


class RunLock:
    """A readers-writer lock between the worker processes of one run."""

    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        self.gate = open(os.path.join(folder, "tianya-run.gate"), "a+")  # noqa: SIM115
        self.data = open(os.path.join(folder, "tianya-run.lock"), "a+")  # noqa: SIM115

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        fcntl.flock(self.gate, fcntl.LOCK_EX)  # waits while an exclusive test waits or runs
        try:
            fcntl.flock(self.data, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self.gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self.data, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        fcntl.flock(self.gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self.data, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.data, fcntl.LOCK_UN)
        finally:
            fcntl.flock(self.gate, fcntl.LOCK_UN)


_LOCK: list[RunLock] = []
_CONFIG: list[pytest.Config] = []


def pytest_sessionstart(session):
    if hasattr(session.config, "workerinput"):
        _CONFIG.append(session.config)


def _lock() -> RunLock | None:
    """The run's lock in an xdist worker, else None (made on first use)."""
    if not _LOCK and _CONFIG:
        # the run's common folder is the parent of each worker's basetemp (popen-gwN)
        base = _CONFIG[0]._tmp_path_factory.getbasetemp().parent
        _LOCK.append(RunLock(str(base)))
    return _LOCK[0] if _LOCK else None


@contextlib.contextmanager
def shared_run() -> Iterator[None]:
    """Hold the run's shared lock (nothing to hold in a one-process run)."""
    lock = _lock()
    if lock is None:
        yield
        return
    with lock.shared():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    lock = _lock()
    if lock is None:
        yield
        return
    alone = item.get_closest_marker("exclusive") is not None
    with lock.exclusive() if alone else lock.shared():
        yield
