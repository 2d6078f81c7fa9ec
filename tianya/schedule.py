"""The server's periodic tasks: named functions run every so many seconds in a daemon thread.

Each server process (each gunicorn worker: :func:`tianya.app.create_app`) starts one
:class:`Scheduler` from :func:`for_server`. It runs the key-task
supervision clock (:func:`layers.key_tasks.escalate`: overdue milestones and tasks get their
warning, then their accountability entry) every ``TIANYA_ESCALATE_SECONDS`` (default 900 s;
0 runs nothing, e.g. when ``tianya escalate`` runs from cron instead), and the
public-opinion poller when ``TIANYA_OPINION_FEED`` names a feed (every
``TIANYA_OPINION_POLL_SECONDS``, default 20 minutes).

Several server processes (workers, hosts) each run the clock: that is safe, because
escalation records each entry exactly once against the stored history, checked under the
task's row lock (the GeoPackage's write lock, PostgreSQL's ``FOR UPDATE``); a second run at
the same instant records nothing.

A task is ``fn(now)`` with ``now`` an aware UTC :class:`datetime.datetime`: the scheduler's
clock, never read inside the task, so tests drive it (:meth:`Scheduler.tick` with a given
instant, or ``TIANYA_SCHEDULE_CLOCK_FILE`` for a live server). A task that raises is logged
and runs again at its next time; it never stops the thread or the other tasks.

To add a periodic task to the server (for example a feed poller), register it in
:func:`for_server`::

    scheduler.every(settings.some_seconds, "poll opinion", poll_fn)

Examples
--------
>>> import datetime as dt
>>> seen = []
>>> s = Scheduler(clock=lambda: dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
>>> s.every(60, "remember", seen.append)
>>> s.every(0, "never", seen.append)  # 0 seconds: not scheduled
>>> s.names
('remember',)
>>> s.tick()
{'remember': None}
>>> seen
[datetime.datetime(2026, 12, 1, 0, 0, tzinfo=datetime.timezone.utc)]
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from layers.errors import InvalidParameter

__all__ = ["Scheduler", "file_clock", "for_server", "system_clock"]

LOGGER = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """Now, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def file_clock(path: str) -> Clock:
    """A clock reading an ISO 8601 instant with its offset from the file ``path`` at each call
    (for tests of a live server: they write the instant they want it to be).

    A missing, empty or unreadable file, or an instant without an offset, raises
    :class:`~layers.errors.InvalidParameter` naming it: the tick is skipped and logged, never
    run at a guessed time.
    """

    def now() -> dt.datetime:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read().strip()
            at = dt.datetime.fromisoformat(text)
        except (OSError, ValueError) as err:
            raise InvalidParameter(f"schedule clock file {path}: {err}") from None
        if at.tzinfo is None:
            raise InvalidParameter(f"schedule clock file {path}: {text!r} has no UTC offset")
        return at.astimezone(dt.UTC)

    return now


@dataclass
class _Task:
    name: str
    seconds: float
    fn: Callable[[dt.datetime], object]
    due: float = 0.0  # time.monotonic() of its next run
    runs: int = 0
    failures: int = 0


class Scheduler:
    """Named periodic tasks, run one after another in one daemon thread.

    Parameters
    ----------
    clock : callable, optional
        Returns the aware instant handed to the tasks (default :func:`system_clock`).
    """

    def __init__(self, clock: Clock | None = None):
        self.clock: Clock = clock or system_clock
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()  # one tick at a time (the thread's or a caller's)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The registered tasks' names, in registration order."""
        return tuple(self._tasks)

    def every(self, seconds: float, name: str, fn: Callable[[dt.datetime], object]) -> None:
        """Run ``fn(now)`` every ``seconds`` (first at :meth:`start`); 0 leaves it out.

        Raises
        ------
        InvalidParameter
            ``seconds`` negative or not finite, or ``name`` already registered.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise InvalidParameter(f"seconds of task {name!r} must be a number, got {seconds!r}")
        if not math.isfinite(seconds) or seconds < 0:
            raise InvalidParameter(
                f"seconds of task {name!r} must be at least 0 (0: not run), got {seconds!r}"
            )
        if name in self._tasks:
            raise InvalidParameter(f"a periodic task named {name!r} is already scheduled")
        if seconds == 0:
            return
        self._tasks[name] = _Task(name, float(seconds), fn, due=time.monotonic())
        self._wake.set()

    def tick(self, now: dt.datetime | None = None, *, due_only: bool = False) -> dict:
        """Run the tasks at ``now`` (default: the clock's), every one or only those due.

        Returns
        -------
        dict
            Task name → what it returned, or the exception it raised (logged).
        """
        with self._lock:
            at = self.clock() if now is None else now
            if at.tzinfo is None:
                raise InvalidParameter("now must be an aware datetime")
            out: dict[str, object] = {}
            for task in list(self._tasks.values()):
                if due_only and task.due > time.monotonic():
                    continue
                task.due = time.monotonic() + task.seconds
                try:
                    out[task.name] = task.fn(at)
                    task.runs += 1
                except Exception as err:  # a task's failure must not stop the others
                    task.failures += 1
                    LOGGER.exception("periodic task %r failed at %s", task.name, at.isoformat())
                    out[task.name] = err
            return out

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick(due_only=True)
            except Exception:  # the clock itself failed: logged, tried again later
                LOGGER.exception("the scheduler's clock failed")
            nearest = min((t.due for t in self._tasks.values()), default=math.inf)
            wait = max(0.05, min(nearest - time.monotonic(), 60.0))
            self._wake.wait(wait)
            self._wake.clear()

    def start(self) -> Scheduler:
        """Start the daemon thread (once; nothing when no task is registered)."""
        if self._tasks and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tianya-schedule", daemon=True)
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after the tick it may be running."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def for_server(settings) -> Scheduler:
    """The periodic tasks of one server process, as ``settings`` (a
    :class:`tianya.settings.Settings`) ask, not yet started.

    ``escalate``: :func:`layers.key_tasks.escalate` on the server's store every
    :attr:`~tianya.settings.Settings.escalate_seconds`. ``poll opinion``, when
    :attr:`~tianya.settings.Settings.opinion_feed` is set:
    :func:`tianya.opinion_poller.poll_once` every
    :attr:`~tianya.settings.Settings.opinion_poll_seconds` (default 20 minutes; several
    processes polling one feed store each post once: the ingest skips stored posts under
    the state row's lock).
    """
    clock = file_clock(settings.schedule_clock_file) if settings.schedule_clock_file else None
    scheduler = Scheduler(clock)
    location = settings.store_location()

    def escalate(now: dt.datetime) -> list[dict]:
        from layers import key_tasks
        from tianya.plugins.provider import store_for

        made = key_tasks.escalate(store_for(location), now)
        if made:
            LOGGER.warning(
                "key-task supervision clock at %s: %d entr(y/ies) recorded",
                now.isoformat(),
                len(made),
            )
        return made

    scheduler.every(settings.escalate_seconds, "escalate", escalate)
    if settings.opinion_feed:
        feed = settings.opinion_feed

        def poll_opinion(now: dt.datetime):
            from tianya.opinion_poller import poll_once
            from tianya.plugins.provider import store_for

            return poll_once(store_for(location), feed, now=now)

        scheduler.every(settings.opinion_poll_seconds, "poll opinion", poll_opinion)
    return scheduler
