"""Bounded, isolated execution of process runs: a child process per run, a host-wide slot count.

Every process run (synchronous or asynchronous) executes in a child process of the gunicorn
worker that accepted it, so that a run cannot take the server with it:

* **Bounded per host.**  At most ``TIANYA_PROCESS_WORKERS`` runs execute at the same time on
  one host, whatever the number of gunicorn workers: a run holds one of that many slot files
  in ``TIANYA_RUN_DIR`` locked (``flock``; the kernel releases the lock if the worker dies).
* **Beyond the bound.**  A synchronous run waits up to ``TIANYA_PROCESS_WAIT_SECONDS`` for a
  slot (first come, first served), then is refused with 429 and a ``Retry-After``
  (:class:`ProcessBusy`); when ``TIANYA_PROCESS_QUEUE`` synchronous runs already wait in
  that worker it is refused at once, so waiting runs never take all the worker's threads.  An
  asynchronous job waits in its worker's queue (its status stays ``accepted``) for one of that
  worker's ``TIANYA_PROCESS_WORKERS`` dispatcher threads, which waits for a host slot; when
  ``TIANYA_PROCESS_QUEUE`` jobs already wait in that worker the submission is refused with 429
  and a ``Retry-After`` before the job is created.
* **Memory.**  The child's address space is limited (``RLIMIT_AS``) to what it had when it
  started (the preloaded libraries) plus ``TIANYA_PROCESS_MEMORY_MB``; an allocation beyond
  that fails with ``MemoryError`` and the run answers 400 naming the limit
  (:class:`RunLimitExceeded`).  Numeric libraries run one thread per child.
* **Time.**  A run still going after ``TIANYA_PROCESS_SECONDS`` is killed; 400 naming the limit.
* **Client gone, job dismissed.**  A synchronous run whose client disconnects, or a run
  whose job is dismissed (``DELETE /jobs/{id}``, :mod:`tianya.plugins.jobs`), is killed within about
  a second (:class:`RunCancelled`), and its slot freed; a dismissed job still queued in this
  worker is withdrawn from the queue (:func:`withdraw`).  The WSGI shell tells this module
  how to ask through :data:`CLIENT` (a callable returning whether the client is still there).
* **Own processor.**  The child builds its own processor from the plugin definition, with the
  caller's principal current; nothing mutable is shared between runs.

Children are forked from a ``forkserver`` (started once per gunicorn worker with the
analytics libraries preloaded, so a run starts in milliseconds, never forked from a threaded
worker).  A child exits when the worker that started it dies.

Settings (fields of :func:`tianya.settings.current`, named here by their environment variables;
a child process is handed the server's settings object):

* ``TIANYA_PROCESS_WORKERS`` (2): runs at the same time on this host;
* ``TIANYA_PROCESS_MEMORY_MB`` (4096): address space a run may add, MiB;
* ``TIANYA_PROCESS_SECONDS`` (600): wall-clock limit of a run;
* ``TIANYA_PROCESS_WAIT_SECONDS`` (30): how long a synchronous run waits for a slot;
* ``TIANYA_PROCESS_QUEUE`` (16): asynchronous jobs waiting per gunicorn worker, and
  synchronous runs waiting per gunicorn worker (each holds one of its threads);
* ``TIANYA_RUN_DIR`` (``/tmp/tianya-runs-<uid>``): the slot and waiter files (one host);
* ``TIANYA_PROCESS_SCHEDULER`` (unset): ``tcp://host:8786`` sends runs to that Dask cluster.

With ``TIANYA_PROCESS_SCHEDULER`` set, runs are submitted to an existing Dask distributed
scheduler instead of local children (the workers' own memory limit applies; a started task
cannot be stopped, so a cancelled or timed-out run is abandoned and finishes on its worker);
the slot bound still counts this host's runs.

The defaults suit a 2-core, 24 GiB machine: two runs (one per core) of at most 4 GiB each
leave the rest to gunicorn, the page cache and PostgreSQL.  This module imports no web
framework.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import math
import multiprocessing
import os
import pickle
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import forkserver

from layers.errors import TianyaError, TooManyRequests
from tianya import settings as tianya_settings

__all__ = [
    "CLIENT",
    "Limits",
    "ProcessBusy",
    "RunCancelled",
    "RunFailed",
    "RunLimitExceeded",
    "Ticket",
    "limits",
    "peer_present",
    "reserve",
    "run",
    "run_processor",
    "slots_in_use",
    "withdraw",
]

#: How often (s) a waiting run checks its child, its deadline and its client.
POLL = 0.2
#: "Is the client still there?" for the current request (set by the WSGI shell), or None.
CLIENT: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "tianya_client_present", default=None
)
#: Modules the forkserver imports once, so that children start ready.
PRELOAD = [
    "tianya.plugins.runner",
    "tianya.plugins.options",
    "tianya.plugins.budgets",
    "tianya.plugins.analysis",
    "tianya.plugins.hotspots",
    "tianya.plugins.density",
    "tianya.plugins.processes",
    "analytics.gistar",
    "analytics.moran",
    "analytics.density",
    "analytics.emerging",
    "analytics.ohsa",
    "layers.store",
    "layers.gpkg",
    "pygeoapi.plugin",
]


class ProcessBusy(TooManyRequests):
    """Every run slot is taken, or the job queue is full (HTTP 429 with ``Retry-After``)."""


class RunLimitExceeded(TianyaError, ValueError):
    """A run went over the memory or time limit (HTTP 400: narrow the inputs)."""

    status = 400
    ogc_code = "InvalidParameterValue"


class RunCancelled(TianyaError):
    """A synchronous run was cancelled because its client disconnected."""

    status = 503
    ogc_code = "NoApplicableCode"


class RunFailed(TianyaError):
    """A run's child process died (killed by a signal, crashed) or failed in a way we cannot
    pass back (HTTP 500)."""


@dataclass(frozen=True)
class Limits:
    """The pool's settings (see the module docstring)."""

    workers: int = 2
    memory_mb: int = 4096
    seconds: float = 600.0
    wait_seconds: float = 30.0
    queue: int = 16
    run_dir: str = ""
    scheduler: str = ""

    @classmethod
    def from_settings(cls, settings) -> Limits:
        """The pool's settings from a :class:`tianya.settings.Settings` (checked there)."""
        return cls(
            workers=settings.process_workers,
            memory_mb=settings.process_memory_mb,
            seconds=settings.process_seconds,
            wait_seconds=settings.process_wait_seconds,
            queue=settings.process_queue,
            run_dir=settings.run_dir,
            scheduler=settings.process_scheduler or "",
        )


_LIMITS: tuple[object, Limits] | None = None
_LOCK = threading.Lock()


def limits() -> Limits:
    """The settings of this process's pool, from :func:`tianya.settings.current`."""
    global _LIMITS
    settings = tianya_settings.current()
    with _LOCK:
        if _LIMITS is None or _LIMITS[0] is not settings:
            _LIMITS = (settings, Limits.from_settings(settings))
        return _LIMITS[1]


def peer_present(sock) -> Callable[[], bool] | None:
    """ "Is the client still there?" for a connected socket (None: cannot tell).

    The request has been read whole, so a peer that closed its end reads ``b""``; peeking
    never consumes what a pipelining client sent next.
    """
    if sock is None or not hasattr(sock, "recv"):
        return None
    import select
    import socket

    gone = select.POLLHUP | select.POLLERR | select.POLLNVAL

    def present() -> bool:
        try:
            poller = select.poll()  # first: recv on a socket with a timeout would wait
            poller.register(sock.fileno(), select.POLLIN | gone)
            events = poller.poll(0)
            if not events:
                return True
            if events[0][1] & gone:
                return False
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except (BlockingIOError, InterruptedError, TimeoutError):
            return True
        except (OSError, ValueError):  # closed, or fileno() -1
            return False

    return present


# --- host-wide slots ---------------------------------------------------------------------------


def _lock_slot(lim: Limits, i: int) -> int | None:
    """Slot file ``i`` open and locked by this call, or None if someone holds it."""
    fd = os.open(os.path.join(lim.run_dir, f"slot-{i}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _try_slot(lim: Limits):
    """An open, locked slot file, or None when all ``lim.workers`` are taken."""
    os.makedirs(lim.run_dir, exist_ok=True)
    for i in range(lim.workers):
        fd = _lock_slot(lim, i)
        if fd is not None:
            return fd
    return None


#: Synchronous runs of this process waiting for a slot (each holds a server thread).
_SYNC_WAITING = 0


@contextmanager
def _slot(lim: Limits, wait: float | None, present: Callable[[], bool] | None):
    """Hold a host slot for the block; wait up to ``wait`` s (None: forever).

    Waiters take free slots in their order of arrival (first come, first served across the
    workers): each waiter holds a locked ``wait-<time>-…`` file in the run directory, and only
    the ``workers`` oldest live waiters may take a slot.  A waiter whose process died leaves
    an unlocked file, which the others remove.
    """
    global _SYNC_WAITING
    deadline = None if wait is None else time.monotonic() + wait
    fd = _try_slot(lim) if not _waiters(lim) else None
    ticket = None
    counted = False
    try:
        if fd is None and wait is not None:  # a synchronous run holds a server thread
            with _LOCK:
                if _SYNC_WAITING >= lim.queue:
                    raise ProcessBusy(
                        f"all {lim.workers} process slots of this server are "
                        f"busy and {_SYNC_WAITING} runs already wait in this "
                        "server process (TIANYA_PROCESS_QUEUE); retry later",
                        retry_after=max(5, math.ceil(lim.wait_seconds)),
                    )
                _SYNC_WAITING += 1
                counted = True
        while fd is None:
            if ticket is None:
                ticket = _queue_up(lim)
            if _ahead(lim, os.path.basename(ticket[1])) < lim.workers:
                fd = _try_slot(lim)
                if fd is not None:
                    break
            if present is not None and not present():
                raise RunCancelled(
                    "cancelled while the run waited: the client disconnected "
                    "or the job was dismissed"
                )
            if deadline is not None and time.monotonic() >= deadline:
                raise ProcessBusy(
                    f"all {lim.workers} process slots of this server are busy "
                    f"(TIANYA_PROCESS_WORKERS); retry later",
                    retry_after=max(5, math.ceil(lim.wait_seconds)),
                )
            time.sleep(POLL / 2)
    finally:
        if ticket is not None:
            _leave(*ticket)
        if counted:
            with _LOCK:
                _SYNC_WAITING -= 1
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def _queue_up(lim: Limits) -> tuple[int, str]:
    """A locked waiter file named by arrival time: ``(fd, path)``."""
    name = f"wait-{time.time_ns():020d}-{os.getpid()}-{threading.get_ident()}"
    tmp = os.path.join(lim.run_dir, f".{name}")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # before it is visible: a visible unlocked file is dead
    path = os.path.join(lim.run_dir, name)
    os.rename(tmp, path)
    return fd, path


def _leave(fd: int, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(fd)


def _waiters(lim: Limits) -> list[str]:
    """Live waiter files, oldest first (files of dead waiters are removed)."""
    try:
        names = sorted(n for n in os.listdir(lim.run_dir) if n.startswith("wait-"))
    except FileNotFoundError:
        return []
    live = []
    for name in names:
        path = os.path.join(lim.run_dir, name)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            live.append(name)  # its waiter holds it
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # its waiter died
        finally:
            os.close(fd)
    return live


def _ahead(lim: Limits, name: str) -> int:
    """Live waiters that arrived before ``name``."""
    return sum(1 for n in _waiters(lim) if n < name)


def slots_in_use(lim: Limits | None = None) -> int:
    """Slots currently held on this host (for tests and monitoring)."""
    lim = lim or limits()
    held = 0
    os.makedirs(lim.run_dir, exist_ok=True)
    for i in range(lim.workers):
        fd = _lock_slot(lim, i)
        if fd is None:
            held += 1
        else:
            os.close(fd)
    return held


# --- the child ---------------------------------------------------------------------------------

_CONTEXT = None


def _context():
    global _CONTEXT
    with _LOCK:
        if _CONTEXT is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _CONTEXT = ctx
        return _CONTEXT


def _vm_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _watch_parent() -> None:
    """Exit when the process that started this run dies (its sentinel becomes readable)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch():
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="tianya-parent-watch").start()


def _child(conn, target, args: tuple, memory_mb: int, settings) -> None:
    """Body of a run's child process: limits, the call, and its outcome sent on ``conn``.

    ``settings`` are the server's (:class:`tianya.settings.Settings`, pickled): made this
    process's own, so the run sees what the server sees.
    """
    tianya_settings.use(settings)
    _watch_parent()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    cap = _vm_bytes() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        outcome = ("ok", target(*args))
    except MemoryError:
        outcome = ("memory", None)
    except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
        # C++ libraries (GEOS, PROJ) report a failed allocation as their own exception
        memory = any(m in str(err) for m in _OUT_OF_MEMORY)
        outcome = ("memory", None) if memory else ("error", _portable(err))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        conn.send((*outcome, peak))
    except MemoryError:
        conn.send(("memory", None, peak))
    conn.close()


#: Messages of a failed allocation in a library that does not raise MemoryError.
_OUT_OF_MEMORY = ("std::bad_alloc", "Cannot allocate memory", "Unable to allocate", "out of memory")


def _portable(err: BaseException):
    """``err`` if it survives pickling, else its type name and message."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:  # noqa: BLE001
        return (type(err).__name__, str(err))


class _Remote(Exception):
    """An exception of the child that could not be pickled (keeps its type name)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.remote_name = name


def run(
    target: Callable,
    args: tuple = (),
    *,
    present: Callable[[], bool] | None = None,
    wait: float | None = -1.0,
    lim: Limits | None = None,
    on_start=None,
):
    """Run ``target(*args)`` in a child process within the limits; return its result.

    Parameters
    ----------
    target : callable
        A module-level function (it is pickled by reference); its result must pickle.
    args : tuple
        Its arguments (pickled).
    present : callable, optional
        Returns False once the client has gone: the run is then cancelled (child killed).
    wait : float or None, default: the ``wait_seconds`` setting
        Seconds to wait for a host slot (None: as long as it takes).
    lim : Limits, optional
        Settings (default :func:`limits`).
    on_start : callable, optional
        Called with the child's pid once it runs (tests, monitoring).

    Raises
    ------
    ProcessBusy
        No slot within ``wait`` seconds (429, Retry-After).
    RunLimitExceeded
        The child ran out of its memory or time limit (400).
    RunCancelled
        ``present()`` turned False.
    RunFailed
        The child died without an answer.
    Exception
        What ``target`` raised (a :class:`TianyaError` keeps its class and status).
    """
    lim = lim or limits()
    if wait is not None and wait < 0:
        wait = lim.wait_seconds
    if lim.scheduler:
        with _slot(lim, wait, present):
            return _run_dask(target, args, lim, present, on_start)
    ctx = _context()
    forkserver.ensure_running()  # the first run of a worker preloads outside any slot
    with _slot(lim, wait, present):
        rx, tx = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child,
            name="tianya-run",
            daemon=True,
            args=(tx, target, args, lim.memory_mb, tianya_settings.current()),
        )
        proc.start()
        tx.close()
        if on_start is not None:
            on_start(proc.pid)
        try:
            outcome = _wait(proc, rx, lim, present)
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
            rx.close()
    kind, value, _peak = outcome
    if kind == "ok":
        return value
    if kind == "memory":
        raise RunLimitExceeded(
            f"the run needed more than its memory limit of {lim.memory_mb} "
            "MB (TIANYA_PROCESS_MEMORY_MB); narrow the selection (filter, "
            "datetime) or use coarser inputs"
        )
    if isinstance(value, tuple):
        raise _Remote(*value)
    raise value


def _wait(proc, rx, lim: Limits, present):
    deadline = time.monotonic() + lim.seconds
    while True:
        if rx.poll(POLL):
            try:
                return rx.recv()
            except EOFError:
                break
        if not proc.is_alive() and not rx.poll(0):
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise RunLimitExceeded(
                f"the run took longer than its time limit of "
                f"{lim.seconds:g} s (TIANYA_PROCESS_SECONDS) and was "
                "stopped; narrow the selection (filter, datetime) or use "
                "coarser inputs"
            )
        if present is not None and not present():
            proc.kill()
            raise RunCancelled("cancelled: the client disconnected or the job was dismissed")
    proc.join(5)
    code = proc.exitcode
    if code is not None and code < 0 and -code == 9:
        raise RunFailed("the run was killed (SIGKILL; out of memory on the host?)")
    raise RunFailed(f"the run's process ended without an answer (exit code {code})")


# --- a Dask cluster instead of local children ----------------------------------------------------

_DASK_CLIENTS: dict = {}


def _dask_client(address: str):
    from distributed import Client

    with _LOCK:
        client = _DASK_CLIENTS.get(address)
        if client is None or client.status not in ("running", "connecting"):
            client = Client(address, set_as_default=False, timeout=10)
            _DASK_CLIENTS[address] = client
        return client


def _dask_task(target, args: tuple, settings):
    """On a Dask worker: the server's settings (data location, budgets), then the call."""
    tianya_settings.use(settings)
    return target(*args)


def _run_dask(target, args: tuple, lim: Limits, present, on_start):
    """:func:`run` on the Dask scheduler at ``lim.scheduler`` (``TIANYA_PROCESS_SCHEDULER``).

    The slot bound still counts this host's runs; memory is the cluster workers' limit.  Dask
    cannot stop a task that has started: on the time limit or a disconnected client the run
    is abandoned (its future cancelled, the slot freed) but it finishes on its worker.
    """
    from distributed import KilledWorker

    client = _dask_client(lim.scheduler)
    future = client.submit(_dask_task, target, args, tianya_settings.current(), pure=False)
    if on_start is not None:
        on_start(None)
    deadline = time.monotonic() + lim.seconds
    try:
        while not future.done():
            time.sleep(POLL)
            if time.monotonic() > deadline:
                raise RunLimitExceeded(
                    f"the run took longer than its time limit of "
                    f"{lim.seconds:g} s (TIANYA_PROCESS_SECONDS); narrow "
                    "the selection (filter, datetime) or use coarser inputs"
                )
            if present is not None and not present():
                raise RunCancelled("cancelled: the client disconnected or the job was dismissed")
        try:
            return future.result()
        except MemoryError:
            raise RunLimitExceeded(
                "the run ran out of memory on the Dask cluster; narrow the "
                "selection (filter, datetime) or use coarser inputs"
            ) from None
        except KilledWorker:
            raise RunFailed("the Dask worker running it died (out of memory?)") from None
    finally:
        if not future.done():
            future.cancel()


# --- processors ----------------------------------------------------------------------------------


def run_processor(plugin_def: dict, principal, data: dict, kwargs: dict):
    """In the child: build the processor (the caller current) and execute it.

    Returns pygeoapi's ``(media type, outputs)``.
    """
    from pygeoapi.plugin import load_plugin

    from tianya import request

    token = request.PRINCIPAL.set(principal)
    try:
        processor = load_plugin("process", plugin_def)
        return processor.execute(data, **kwargs)
    finally:
        request.PRINCIPAL.reset(token)


# --- asynchronous jobs ---------------------------------------------------------------------------

_EXECUTOR: ThreadPoolExecutor | None = None
_WAITING = 0
#: Queued (maybe started) asynchronous jobs of this worker by key: their futures.
_QUEUED: dict = {}


class Ticket:
    """A place in this worker's queue of asynchronous jobs (see :func:`reserve`)."""

    def __init__(self):
        self._open = True

    def start(self, fn: Callable, *args, key: str | None = None) -> None:
        """Queue ``fn(*args)`` on the dispatcher threads; the place is freed when it ends.

        ``key`` (a job id) lets :func:`withdraw` take it off the queue before it starts.
        """
        global _EXECUTOR
        lim = limits()
        with _LOCK:
            if _EXECUTOR is None:
                _EXECUTOR = ThreadPoolExecutor(lim.workers, thread_name_prefix="tianya-job")
        self._open = False

        def job():
            try:
                fn(*args)
            finally:
                if key is not None:
                    with _LOCK:
                        _QUEUED.pop(key, None)
                _release()

        with _LOCK:
            future = _EXECUTOR.submit(job)
            if key is not None and not future.done():
                _QUEUED[key] = future

    def cancel(self) -> None:
        """Give the place back (the job was not started)."""
        if self._open:
            self._open = False
            _release()


def withdraw(key: str) -> bool:
    """Take the queued job ``key`` off this worker's queue if it has not started yet.

    Returns
    -------
    bool
        True if it was withdrawn (it will never run; its queue place is free).
    """
    with _LOCK:
        future = _QUEUED.pop(key, None)
    if future is None or not future.cancel():
        return False
    _release()
    return True


def _release() -> None:
    global _WAITING
    with _LOCK:
        _WAITING -= 1


def reserve() -> Ticket:
    """A place for one asynchronous job in this worker's queue.

    At most ``workers`` dispatcher threads per gunicorn worker run jobs, one at a time each
    (a job still waits for a host slot in :func:`run`); at most ``queue`` more jobs wait.

    Raises
    ------
    ProcessBusy
        The queue is full (429 with Retry-After); take it before creating the job.
    """
    global _WAITING
    lim = limits()
    with _LOCK:
        if _WAITING >= lim.queue + lim.workers:
            raise ProcessBusy(
                f"{_WAITING} asynchronous jobs are already queued or running in "
                f"this server process (TIANYA_PROCESS_QUEUE={lim.queue}); retry "
                "later",
                retry_after=30,
            )
        _WAITING += 1
    return Ticket()
