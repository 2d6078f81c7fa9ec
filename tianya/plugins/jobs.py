"""The process job manager: pygeoapi's manager made safe for gunicorn, hosts and strangers.

Configured in ``server.manager`` (``name: tianya.plugins.jobs.JobManager``); a key left out
takes its value from the settings object (:func:`tianya.settings.current`, the variable named):

``connection``
    The SQLite job file, ``${TIANYA_JOBS:-/tmp/tianya-jobs.sqlite}``, or a ``postgresql://``
    URL.  When the data store (``data: ${TIANYA_DATA:-…}``) is PostGIS the jobs are a table
    (``tianya_jobs``) in its database and schema instead, so several hosts share them
    (:mod:`tianya.plugins.jobstore`).
``output_dir``
    The result files, ``${TIANYA_JOB_RESULTS:-/tmp/tianya-job-results}``.  With the
    PostgreSQL job table a finished result moves from its file into the job's row, so every
    host answers ``/jobs/{id}/results``.
``retention_hours`` (``TIANYA_JOB_RETENTION_HOURS``, default 168)
    Finished jobs and their result files older than this are removed.
``max_jobs_per_caller`` (``TIANYA_JOB_LIMIT``, default 4) and ``max_anonymous_jobs``
    (``TIANYA_JOB_LIMIT_ANONYMOUS``, default 4, shared by all anonymous callers)
    Unfinished (accepted or running) jobs allowed at once; 0 means no limit.
``max_result_bytes`` (``TIANYA_JOB_MAX_RESULT_BYTES``, default 64 MiB)
    A larger result is not kept: its job is recorded as failed with a message saying so.
``result_quota_bytes`` (``TIANYA_JOB_RESULT_QUOTA``, default 512 MiB; 0: no quota)
    Bytes of stored results a caller may keep at once (all anonymous callers share one
    quota).  A result that would go over it is not kept (its job fails with a message naming
    the quota); an asynchronous submission by a caller already at the quota is refused with
    429 naming it.  Results are freed by dismissing jobs (``DELETE /jobs/{id}``) or when they
    expire (``retention_hours``).

Results on disk: only asynchronous jobs keep a result (written compact, without pygeoapi's
indentation: a hot-spot map took 45.6 MB indented); a synchronous run's result is the
response itself and is not written (its job is recorded; ``/jobs/{id}/results`` has none).

What it changes in pygeoapi's managers (0.24):

* **Inputs are checked before the job exists.**  pygeoapi turns every exception raised inside a
  processor into a failed job answered with HTTP 400 (sync) or 201 and a failed job (async).
  :meth:`JobManager.execute_process` first calls the processor's ``check_inputs`` and answers a
  :class:`~layers.errors.TianyaError` with its own status: 400 with the valid choices, 401/403
  for a layer the caller may not read.
* **Constant-time, crash-safe bookkeeping.**  pygeoapi's TinyDB manager rewrites one JSON file
  on every write and reads all of it on every read (adding a job took 0.67 s at 10,000 jobs).
  Jobs are rows of an indexed SQLite (WAL) or PostgreSQL table; every write is one transaction.
* **Jobs belong to their caller.**  Each job records its owner (the principal's name and role
  at submission).  ``/jobs`` lists the caller's own jobs (an administrator's: all; an
  anonymous caller's: none).  A job is read by its owner and by admin, and an *anonymous* job
  by anyone holding its id (ids are random uuid4, not pygeoapi's time-based uuid1).  A job is
  dismissed (DELETE) only by its owner (for an anonymous job: any anonymous caller holding
  the id) or admin; anyone else gets 404, as for a job that does not exist, so ids of other
  callers' jobs cannot be probed.
* **Dismissing an unfinished job stops it.**  A job still queued in the worker that answers
  the DELETE is taken off its queue and removed.  Otherwise (running, or queued in another
  worker or host) it is marked dismissed (404 from then on) and its run is cancelled: the
  run polls its job about once a second, and its child process is killed and its slot freed.
  The job's record is removed when its run has really ended, and until then it still counts
  against its owner's limit of unfinished jobs.
* **Jobs on personal data are hidden.**  A job on a non-public layer (poverty relief,
  building population) or one whose inputs name a sensitive field is recorded as
  ``restricted`` and is invisible (404, left out of ``/jobs``) to roles that may not read
  personal data, whoever submitted it.
* **A caller has a bounded number of unfinished jobs.**  Submitting one more answers 429
  (:class:`~layers.errors.TooManyRequests`, with ``Retry-After``) naming the limit.  A
  synchronous job counts while it runs, as it is unfinished too.
* **Old jobs go.**  At most once a minute, adding a job removes the finished jobs older than
  the retention and their result files (an indexed delete).  At start-up, result files older
  than the retention that no job names any more are removed too.
* **Runs are bounded.**  Every run (synchronous or asynchronous) executes in a child process
  of :mod:`tianya.plugins.runner` (a slot count per host, memory and time limits, a synchronous
  run stopped when its client goes); asynchronous jobs wait in a bounded queue of the worker
  instead of starting a thread each.  Each call has its own processor instance (pygeoapi's
  manager shared one between the threads of a worker).
* **Interrupted jobs are marked failed.**  An asynchronous job runs in a thread of the worker
  that accepted it; if that process dies (restart, crash) the job would stay ``running``
  forever.  Each job's host and pid are recorded; when a manager starts (every worker, at
  start-up) jobs still ``accepted``/``running`` whose process on this host is gone are marked
  ``failed`` with a message asking to resubmit.

Not solved here: jobs are not resumed after a restart (they are marked failed); an unfinished
job of a host that never comes back stays unfinished (and counts against its owner's limit).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from pygeoapi.formats import F_JSON, F_JSONLD, FORMAT_TYPES
from pygeoapi.process.base import JobNotFoundError, JobResultNotFoundError
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import (
    JobStatus,
    ProcessExecutionMode,
    RequestedProcessExecutionMode,
    get_current_datetime,
    is_request_allowed,
)

from layers import access
from layers.errors import TianyaError, TooManyRequests, choices
from tianya import request
from tianya import settings as tianya_settings
from tianya.compat import pygeoapi_error
from tianya.plugins import runner
from tianya.plugins.jobstore import LimitReached, open_job_store

__all__ = ["RETRY_AFTER", "JobManager", "new_job_id", "results_document", "run_error"]

LOGGER = logging.getLogger(__name__)
#: Per-thread note from execute_process to add_job: is the job being added restricted?
_PENDING = threading.local()
#: Seconds between two retention sweeps of one manager.
PURGE_EVERY = 60.0
#: Seconds between two checks of a running job's record (dismissed?) by its run.
WANTED_EVERY = 1.0
#: ``Retry-After`` (seconds) of a submission over its caller's limit of unfinished jobs.
RETRY_AFTER = 15
#: A job's ``location`` when its result is kept in the PostgreSQL job table, not a file.
IN_TABLE = "postgresql:tianya_jobs.result"


def new_job_id() -> str:
    """A job id nobody can guess: a random (uuid4, 122 bits from ``os.urandom``) uuid."""
    return str(uuid.uuid4())


def run_error(process_id: str, err: Exception, message: str | None = None):
    """A failed synchronous run as pygeoapi's exception: the error's own status, or 500 for a
    fault of ours.

    A fault of ours (not a :class:`~layers.errors.TianyaError`) is not described to the
    client: its text may hold SQL, schema names or paths.  It is logged with its traceback
    and the client is told when (see :func:`internal_failure`).

    Parameters
    ----------
    process_id : str
    err : Exception
        What the run raised.
    message : str, optional
        The generic message already logged and recorded for ``err`` (else it is logged here).
    """
    if not isinstance(err, TianyaError):
        err = TianyaError(message or internal_failure(process_id, err))
    return pygeoapi_error(err, "process")


#: Seconds a subscriber's callback may take to connect and to answer.
NOTIFY_TIMEOUT = (2.0, 3.0)


def internal_failure(process_id: str, err: BaseException, job_id: str | None = None) -> str:
    """Log a run's unexpected exception (ERROR, traceback); the message for client and job.

    The message names the process and the time of the log record, nothing of ``err``.
    """
    when = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    LOGGER.error("process %r (job %s) failed at %s", process_id, job_id, when, exc_info=err)
    return f"process {process_id!r} failed with an internal error (logged at {when})"


class JobManager(BaseManager):
    """pygeoapi job manager: input checks, owned jobs, retention, limits, restart recovery."""

    def __init__(self, manager_def: dict):
        super().__init__(manager_def)
        self.is_async = True
        self.supports_subscribing = True
        self.store = open_job_store(self.connection, manager_def.get("data"))
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        conf = tianya_settings.current()  # a key of manager_def wins over the settings
        self.retention = 3600 * float(
            _setting(manager_def, "retention_hours", conf.job_retention_hours)
        )
        self.max_jobs_per_caller = int(_setting(manager_def, "max_jobs_per_caller", conf.job_limit))
        self.max_anonymous_jobs = int(
            _setting(manager_def, "max_anonymous_jobs", conf.job_limit_anonymous)
        )
        self.max_result_bytes = int(
            _setting(manager_def, "max_result_bytes", conf.job_max_result_bytes)
        )
        self.result_quota = int(_setting(manager_def, "result_quota_bytes", conf.job_result_quota))
        self.host = socket.gethostname()
        self._purged_at = float("-inf")
        self._purge_lock = threading.Lock()
        self.recover()
        self.sweep_results()

    def destroy(self) -> bool:
        self.store.clear()
        return True

    # --- bookkeeping ------------------------------------------------------------------------

    def add_job(self, job_metadata: dict) -> str:
        """Record a job for the current principal; 429 if they have too many unfinished."""
        self.purge()
        who = request.principal()
        anonymous = _anonymous(who)
        limit = self.max_anonymous_jobs if anonymous else self.max_jobs_per_caller
        try:
            self.store.add(
                job_metadata,
                (who.name, who.role),
                restricted=bool(getattr(_PENDING, "restricted", False)),
                host=self.host,
                pid=os.getpid(),
                limit=limit,
            )
        except LimitReached as err:
            if anonymous:
                msg = (
                    f"too many unfinished jobs: anonymous callers together have "
                    f"{err.count} accepted or running jobs, the limit is {limit}; "
                    f"retry in {RETRY_AFTER} s, or send an API key"
                )
            else:
                msg = (
                    f"too many unfinished jobs: {who.name!r} ({who.role}) has {err.count} "
                    f"accepted or running jobs, the limit is {limit} per caller; wait for "
                    f"one to finish (GET /jobs) or dismiss one, then retry"
                )
            raise pygeoapi_error(TooManyRequests(msg, retry_after=RETRY_AFTER), "process") from None
        return job_metadata["identifier"]

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        """Merge ``update_dict`` into the job; a result over ``max_result_bytes`` or over its
        owner's ``result_quota`` is dropped; a dismissed job that ends is removed."""
        update = dict(update_dict)
        location = update.get("location")
        ending = update.get("status") in (
            JobStatus.successful.value,
            JobStatus.failed.value,
            JobStatus.dismissed.value,
        )
        record = self.store.get(job_id) if ending else None
        if record is not None and record.job.get("dismissed"):
            # dismissed while it ran: its run has ended now, so it stops counting
            if location:
                self._unlink(location)
            self.store.delete(job_id)
            return False
        if update.get("status") == JobStatus.successful.value and location:
            size = _size(location)
            message = None
            if self.max_result_bytes > 0 and size > self.max_result_bytes:
                message = (
                    f"the result ({size} bytes) is larger than the "
                    f"{self.max_result_bytes} bytes kept per job, so it was "
                    "not stored; narrow the request (a filter, a datetime, "
                    "a larger cell size)"
                )
            elif self.result_quota > 0 and record is not None:
                owner = (record.owner_name, record.owner_role)
                used = self.store.result_bytes(owner)
                if used + size > self.result_quota:
                    message = (
                        f"the result ({size} bytes) was not stored: {_whose(owner)} "
                        f"stored results ({used} bytes) would go over the quota of "
                        f"{self.result_quota} bytes (TIANYA_JOB_RESULT_QUOTA); dismiss "
                        "finished jobs (DELETE /jobs/{id}) or wait for them to expire"
                    )
            if message is not None:
                self._unlink(location)
                update.update(
                    status=JobStatus.failed.value,
                    location=None,
                    mimetype="application/octet-stream",
                    message=message,
                )
            else:
                update["result_bytes"] = size
        result = None
        if (
            self.store.keeps_results
            and update.get("status") == JobStatus.successful.value
            and update.get("location")
        ):
            try:
                with open(location, "rb") as fh:
                    result = fh.read()
                update["location"] = IN_TABLE  # any host reads it from the table
            except OSError:
                result = None
        if (
            self.store.update(job_id, update, result=result)
            if result is not None
            else self.store.update(job_id, update)
        ):
            if result is not None:
                self._unlink(location)
            return True
        if location:  # dismissed while it ran: nobody can fetch the result any more
            self._unlink(location)
        return False

    def purge(self, force: bool = False) -> int:
        """Remove finished jobs older than the retention, and their result files.

        Runs at most once every :data:`PURGE_EVERY` seconds per manager unless ``force``.

        Returns
        -------
        int
            Jobs removed.
        """
        now = time.monotonic()
        if not force and now - self._purged_at < PURGE_EVERY:
            return 0
        if not self._purge_lock.acquire(blocking=False):
            return 0  # another thread of this worker is at it
        try:
            self._purged_at = now
            locations = self.store.purge(time.time() - self.retention)
        finally:
            self._purge_lock.release()
        for location in locations:
            self._unlink(location)
        return len(locations)

    def sweep_results(self) -> int:
        """Remove result files older than the retention (left by removed or lost jobs).

        Returns
        -------
        int
            Files removed.
        """
        if self.output_dir is None:
            return 0
        cutoff, removed = time.time() - self.retention, 0
        with os.scandir(self.output_dir) as entries:
            for entry in entries:
                try:
                    if entry.is_file() and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    pass  # another worker swept it first
        return removed

    def _unlink(self, location: str) -> None:
        """Remove a result file, only ever inside ``output_dir``."""
        if self.output_dir is None or location == IN_TABLE:
            return
        path = Path(location)
        if path.resolve().parent != self.output_dir.resolve():
            LOGGER.warning("not removing %s: outside the results folder", location)
            return
        path.unlink(missing_ok=True)

    # --- visibility (called in the request's thread, where the principal is current) ---------

    def _visible(self, job_id: str, *, dismiss: bool = False) -> dict:
        """The job, if the current caller may read it (``dismiss``: may delete it); else 404."""
        record = self.store.get(job_id)
        who = request.principal()
        if record is None or (record.restricted and not who.trusted) or record.job.get("dismissed"):
            raise JobNotFoundError()
        owner = (record.owner_name, record.owner_role)
        own = owner == (who.name, who.role)
        if who.role == "admin" or own or (_public(owner) and not dismiss):
            return record.job
        raise JobNotFoundError()

    def get_jobs(self, status=None, limit=None, offset=None) -> dict:
        who = request.principal()
        if _anonymous(who):
            return {"jobs": [], "numberMatched": 0}  # anonymous jobs are read by id only
        owner = None if who.role == "admin" else (who.name, who.role)
        if isinstance(status, JobStatus):
            status = status.value
        jobs, matched = self.store.list(
            owner, restricted=who.trusted, status=status, limit=limit, offset=offset
        )
        return {"jobs": jobs, "numberMatched": matched}

    def get_job(self, job_id: str) -> dict:
        return self._visible(job_id)

    def failure(self, job_id: str) -> dict | None:
        """The exception a failed job's results answer (OGC API - Processes 1.0,
        /req/core/job-results-failed: the status and type of the failure's reason), ``None``
        unless the job (visible to the caller) has failed.

        A run that raised one of our errors recorded its status and OGC code; a failure
        without a recorded reason (an interrupted job, a result too large to keep) is a
        server fault (500, ``NoApplicableCode``) described by the job's message.
        """
        job = self.get_job(job_id)
        if job.get("status") != JobStatus.failed.value:
            return None
        recorded = job.get("exception")
        if isinstance(recorded, dict) and recorded.get("code"):
            return recorded
        message = job.get("message") or "the job failed"
        return {"status": 500, "code": "NoApplicableCode", "description": message}

    def get_job_result(self, job_id: str):
        """pygeoapi's TinyDB manager's: the mimetype and the result file's content."""
        job = self.get_job(job_id)
        if JobStatus[job["status"]] != JobStatus.successful:
            return (None,)
        location, mimetype = job.get("location"), job.get("mimetype")
        if not location:
            raise JobResultNotFoundError()
        as_json = mimetype in (None, FORMAT_TYPES[F_JSON], FORMAT_TYPES[F_JSONLD])
        if location == IN_TABLE:
            data = self.store.result(job_id)
            if data is None:
                raise JobResultNotFoundError()
            return mimetype, (json.loads(data) if as_json else data)
        try:
            if as_json:
                with open(location, encoding="utf-8") as fh:
                    return mimetype, json.load(fh)
            with open(location, "rb") as fh:
                return mimetype, fh.read()
        except (TypeError, FileNotFoundError, json.JSONDecodeError):
            raise JobResultNotFoundError() from None

    def delete_job(self, job_id: str) -> bool:
        """Dismiss a job: a finished one is removed; an unfinished one is stopped.

        A job queued in this worker is withdrawn and removed; a running one (or one queued
        elsewhere) is marked dismissed, its run cancels itself (:class:`_Run`) and
        :meth:`update_job` removes it when the run has ended, so it counts against its
        owner's limit until then.
        """
        job = self._visible(job_id, dismiss=True)
        if job.get("status") in (JobStatus.accepted.value, JobStatus.running.value):
            if runner.withdraw(job_id):
                return self.store.delete(job_id)
            self.store.update(
                job_id, {"dismissed": True, "message": "dismissed: its run is being stopped"}
            )
            record = self.store.get(job_id)
            if record is None or record.job.get("status") in (
                JobStatus.accepted.value,
                JobStatus.running.value,
            ):
                return True
            job = record.job  # it ended meanwhile: remove it now
        if job.get("location"):
            self._unlink(job["location"])
        return self.store.delete(job_id)

    def _wanted(self, job_id: str):
        """A callable: False once ``job_id`` is dismissed or gone (checked at most once a
        second; a store that cannot answer counts as wanted)."""
        state = {"at": float("-inf"), "wanted": True}

        def wanted() -> bool:
            now = time.monotonic()
            if now - state["at"] >= WANTED_EVERY:
                state["at"] = now
                try:
                    record = self.store.get(job_id)
                except Exception:  # noqa: BLE001 - never cancel a run for a store hiccup
                    return state["wanted"]
                state["wanted"] = record is not None and not record.job.get("dismissed")
            return state["wanted"]

        return wanted

    def recover(self) -> int:
        """Mark failed the unfinished jobs whose owner process (on this host) is gone.

        Returns
        -------
        int
            Jobs marked failed.
        """
        marked = 0
        for job_id, pid in self.store.unfinished_on(self.host):
            if pid is not None and _alive(pid):
                continue
            now = get_current_datetime()
            marked += self.update_job(
                job_id,
                {
                    "status": JobStatus.failed.value,
                    "finished": now,
                    "updated": now,
                    "message": "interrupted: the server stopped before the job finished; "
                    "submit it again",
                },
            )
        return marked

    def execute_process(
        self,
        process_id,
        data_dict,
        execution_mode=None,
        requested_outputs=None,
        subscriber=None,
        requested_response="raw",
    ):
        """Check the inputs, record the job, run it in the bounded pool (:mod:`.runner`).

        pygeoapi's ``BaseManager.execute_process`` keeps the processor in ``self.processor``,
        shared by every thread of the worker: concurrent runs executed each other's
        processors.  Here each call has its own processor instance, and the run itself builds
        another one in its child process.  Returns pygeoapi's ``(job_id, media type, outputs,
        status, headers)``.
        """
        processor = self.get_processor(process_id)  # this call's own instance
        check = getattr(processor, "check_inputs", None)
        restricted = False
        try:
            _check_request(requested_outputs, requested_response, processor.metadata)
            if check is not None:
                restricted = processor.restricted(check(data_dict))
        except TianyaError as err:
            raise pygeoapi_error(err, "process") from None
        job_id = new_job_id()
        processor.set_job_id(job_id)
        options = processor.metadata.get("jobControlOptions", [])
        wants_async = execution_mode == RequestedProcessExecutionMode.respond_async
        asynchronous = (
            wants_async and ProcessExecutionMode.async_execute.value in options
        ) or ProcessExecutionMode.sync_execute.value not in options
        if asynchronous:
            headers = {"Preference-Applied": RequestedProcessExecutionMode.respond_async.value}
        elif execution_mode == RequestedProcessExecutionMode.wait:
            headers = None
        else:
            headers = {"Preference-Applied": RequestedProcessExecutionMode.wait.value}
        try:
            if asynchronous:
                self._check_quota()
            ticket = runner.reserve() if asynchronous else None  # before the job exists
        except TianyaError as err:
            raise pygeoapi_error(err, "process") from None
        run = _Run(
            processor,
            self.processes[process_id]["processor"],
            asynchronous=asynchronous,
            wanted=self._wanted(job_id),
        )
        # pygeoapi reads self.processor only in its subscriber notifications (for
        # allow_internal_requests, the same for every process here); runs never use it
        self.processor = processor
        now = get_current_datetime()
        _PENDING.restricted = restricted  # read by add_job, in this thread
        try:
            self.add_job(
                {
                    "type": "process",
                    "identifier": job_id,
                    "process_id": process_id,
                    "created": now,
                    "started": now,
                    "updated": now,
                    "finished": None,
                    "status": JobStatus.accepted.value,
                    "location": None,
                    "mimetype": "application/octet-stream",
                    "message": "Job accepted and ready for execution",
                    "progress": 5,
                }
            )
        except BaseException:
            if ticket is not None:
                ticket.cancel()
            raise
        finally:
            _PENDING.restricted = False
        extra = {"requested_response": requested_response}
        if self.supports_subscribing:
            extra["subscriber"] = subscriber
        if asynchronous:
            mime, outputs, status = self._execute_handler_async(
                run, job_id, data_dict, requested_outputs, ticket=ticket, **extra
            )
        else:
            mime, outputs, status = self._execute_handler_sync(
                run, job_id, data_dict, requested_outputs, **extra
            )
            if status == JobStatus.failed and run.failure is not None:
                # pygeoapi would answer every failure with 400; the job stays recorded failed
                raise run_error(
                    process_id, run.failure, getattr(run, "failure_message", None)
                ) from None
        return job_id, mime, outputs, status, headers

    def _execute_handler_sync(self, p, job_id, data_dict, *args, **kwargs):
        """pygeoapi's run and bookkeeping, the run itself in a child process of the pool.

        ``p`` is this run's :class:`_Run` (or a processor, wrapped in one): its ``execute``
        goes through :func:`tianya.plugins.runner.run` (slot, memory and time limits, cancelled
        when the client goes) and it remembers the exception of a failed run.
        """
        if not isinstance(p, _Run):
            p = _Run(p, self.processes[p.metadata["id"]]["processor"], wanted=self._wanted(job_id))
        return self._handle(p, job_id, data_dict, *args, **kwargs)

    def _handle(
        self,
        p: _Run,
        job_id: str,
        data_dict: dict,
        requested_outputs=None,
        subscriber=None,
        requested_response="raw",
    ):
        """pygeoapi 0.24's ``BaseManager._execute_handler_sync``, except for the result file:
        only an asynchronous job's result is written, compact (pygeoapi indented it by 4)."""
        extra = {"outputs": requested_outputs} if p.supports_outputs else {}
        self._send_in_progress_notification(subscriber)
        try:
            current_status = JobStatus.running
            jfmt, outputs = p.execute(data_dict, **extra)
            if isinstance(outputs, bytes) and outputs.isascii():
                outputs = outputs.decode("utf-8")
            if requested_response == "document":
                jfmt, outputs = "application/json", results_document(p.metadata, jfmt, outputs)
            self.update_job(
                job_id,
                {
                    "updated": get_current_datetime(),
                    "status": current_status.value,
                    "message": "Writing job output",
                    "progress": 95,
                },
            )
            location = None
            if self.output_dir is not None and p.asynchronous:
                location = self.output_dir / f"{p.metadata['id']}-{job_id}"
                if isinstance(outputs, (dict, list)):
                    data = json.dumps(
                        outputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                    ).encode("utf-8")
                elif isinstance(outputs, str):
                    data = outputs.encode("utf-8")
                else:
                    data = outputs
                with location.open("wb") as fh:
                    fh.write(data)
            current_status = JobStatus.successful
            self.update_job(
                job_id,
                {
                    "finished": get_current_datetime(),
                    "updated": get_current_datetime(),
                    "status": current_status.value,
                    "location": None if location is None else str(location),
                    "mimetype": jfmt,
                    "message": "Job complete",
                    "progress": 100,
                },
            )
            self._send_success_notification(subscriber, outputs=outputs)
        except Exception as err:
            current_status = JobStatus.failed
            if isinstance(err, TianyaError):
                LOGGER.exception(err)
                code, status = err.ogc_code, err.status
                text = f"Error executing process: {err}"
            else:  # a fault of ours: the detail goes to the log only
                code, status = "NoApplicableCode", 500
                text = p.failure_message = internal_failure(p.metadata["id"], err, job_id)
            outputs = {"type": code, "code": code, "description": text}
            jfmt = "application/json"
            self.update_job(
                job_id,
                {
                    "finished": get_current_datetime(),
                    "updated": get_current_datetime(),
                    "status": current_status.value,
                    "location": None,
                    "mimetype": "application/octet-stream",
                    "message": f"{code}: {outputs['description']}",
                    # what /jobs/{id}/results answers (/req/core/job-results-failed)
                    "exception": {"status": status, **outputs},
                },
            )
            self._send_failed_notification(subscriber, outputs)
        return jfmt, outputs, current_status

    # --- subscriber callbacks: best effort, bounded, never the run's outcome -----------------

    def _send_in_progress_notification(self, subscriber):
        if subscriber and subscriber.in_progress_uri:
            self._notify(subscriber.in_progress_uri, {})

    def _send_success_notification(self, subscriber, outputs):
        if subscriber and subscriber.success_uri:
            self._notify(subscriber.success_uri, outputs if isinstance(outputs, dict) else {})

    def _send_failed_notification(self, subscriber, exception: dict | None = None):
        """POST the failure's exception document (what the job's results answer) to the
        subscriber's ``failedUri`` (pygeoapi posted ``{}``)."""
        if subscriber and subscriber.failed_uri:
            self._notify(subscriber.failed_uri, exception or {})

    def _notify(self, url: str, data: dict) -> None:
        """POST ``data`` to a subscriber's ``url``, as pygeoapi does, but never failing the run.

        pygeoapi's notification raised out of the run when the host did not resolve (a 500
        for a synchronous run, a job left ``accepted`` for ever for an asynchronous one) and
        waited without a timeout for the subscriber's answer (a silent host held the run's
        thread for ever). Here an unresolvable, internal or silent subscriber costs at most
        :data:`NOTIFY_TIMEOUT` and one WARNING line naming its host.
        """
        import requests

        allow_internal = bool(
            getattr(getattr(self, "processor", None), "allow_internal_requests", False)
        )
        host = urlsplit(url).hostname
        try:
            if not is_request_allowed(url, allow_internal):
                LOGGER.warning("subscriber %s not notified: an internal address", host)
                return
            requests.post(url, json=data, allow_redirects=False, timeout=NOTIFY_TIMEOUT)
        except Exception as err:  # the subscriber's trouble, not the run's
            LOGGER.warning("subscriber %s not notified: %s", host, type(err).__name__)

    def _check_quota(self) -> None:
        """429 if the current caller's stored results are at their quota already."""
        if self.result_quota <= 0:
            return
        who = request.principal()
        owner = (who.name, who.role)
        used = self.store.result_bytes(owner)
        if used >= self.result_quota:
            raise TooManyRequests(
                f"{_whose(owner)} stored job results ({used} bytes) are at the quota of "
                f"{self.result_quota} bytes (TIANYA_JOB_RESULT_QUOTA); dismiss finished jobs "
                "(DELETE /jobs/{id}) or wait for them to expire, or run synchronously",
                retry_after=60,
            )

    def _execute_handler_async(
        self,
        p,
        job_id,
        data_dict,
        requested_outputs=None,
        subscriber=None,
        requested_response="raw",
        ticket=None,
    ):
        """Queue the run on this worker's bounded dispatcher (not one thread per job).

        ``ticket`` is the queue place taken before the job was recorded (else one is taken
        here: 429 when the queue is full).
        """
        if ticket is None:
            try:
                ticket = runner.reserve()
            except TianyaError as err:
                raise pygeoapi_error(err, "process") from None
        kwargs = {"requested_response": requested_response}
        if self.supports_subscribing:
            kwargs["subscriber"] = subscriber
        ticket.start(self._run_queued, p, job_id, data_dict, requested_outputs, kwargs, key=job_id)
        return "application/json", None, JobStatus.accepted

    def _run_queued(self, p, job_id, data_dict, requested_outputs, kwargs) -> None:
        """A dispatcher thread's job: the run, unless the job was dismissed while queued."""
        try:
            record = self.store.get(job_id)
            if record is None:
                return
            if record.job.get("dismissed"):  # dismissed while queued in another worker
                self.store.delete(job_id)
                return
            self._execute_handler_sync(p, job_id, data_dict, requested_outputs, **kwargs)
        except Exception:  # noqa: BLE001 - a dispatcher thread must survive any job
            LOGGER.exception("asynchronous job %s failed outside its run", job_id)

    def __repr__(self):
        return f"<JobManager> {self.store!r}"


class _Run:
    """One run of a processor: pygeoapi's processor interface, executed by the pool.

    ``execute`` sends the plugin definition, the caller and the inputs to a child process
    (:func:`tianya.plugins.runner.run_processor`), which builds its own processor; ``failure`` is
    the exception of a failed run.  Other attributes are the processor's.
    """

    def __init__(self, processor, plugin_def: dict, asynchronous: bool = False, wanted=None):
        self._processor = processor
        self._plugin_def = dict(plugin_def)
        self._principal = getattr(processor, "principal", None) or request.principal()
        self.asynchronous = asynchronous
        # a synchronous run waits briefly for a slot and stops when its client goes
        # (tianya.plugins.runner.CLIENT is set in the request's context); a queued job waits;
        # either stops when its job is dismissed (``wanted`` turns False)
        client = None if asynchronous else runner.CLIENT.get()
        if client is not None and wanted is not None:
            self._present = lambda: client() and wanted()
        else:
            self._present = client or wanted
        self._wait = None if asynchronous else -1.0
        self.failure: Exception | None = None

    def __getattr__(self, name):
        return getattr(self._processor, name)

    def execute(self, data, **kwargs):
        try:
            return runner.run(
                runner.run_processor,
                (self._plugin_def, self._principal, data, kwargs),
                present=self._present,
                wait=self._wait,
            )
        except Exception as err:
            self.failure = err
            raise


def results_document(metadata: dict, media_type: str, value) -> dict:
    """A run's result as the results document of ``response: document``.

    OGC API - Processes 1.0, /req/core/process-execute-sync-document: an object whose keys
    are the output ids (each of our processes has one output).  A JSON object, bytes or
    non-JSON text is a qualified value (``value`` with its ``mediaType``; bytes base64).

    Examples
    --------
    >>> results_document({"outputs": {"result": {}}}, "application/json", {"n": 1})
    {'result': {'value': {'n': 1}, 'mediaType': 'application/json'}}
    >>> results_document({"outputs": {"result": {}}}, "image/tiff", b"II*")
    {'result': {'value': 'SUkq', 'mediaType': 'image/tiff', 'encoding': 'base64'}}
    """
    output_id = next(iter(metadata.get("outputs") or {}), "result")
    if isinstance(value, str) and "json" in (media_type or ""):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, (bytes, bytearray)):
        value = {
            "value": base64.b64encode(value).decode("ascii"),
            "mediaType": media_type,
            "encoding": "base64",
        }
    elif isinstance(value, (dict, str)):
        value = {"value": value, "mediaType": media_type}
    return {output_id: value}


def _check_request(outputs, response, metadata: dict | None = None) -> None:
    """The execute request's ``outputs`` (an object naming outputs of the process, each by a
    transmission mode it offers) and ``response`` (raw or document).

    ``metadata`` is the process description: an output it does not describe, or a
    ``transmissionMode`` outside its ``outputTransmission`` (``reference`` when only
    ``value`` is offered), is refused rather than answered by value.

    Examples
    --------
    >>> meta = {"outputs": {"result": {}}, "outputTransmission": ["value"]}
    >>> _check_request({"result": {"transmissionMode": "value"}}, "raw", meta)
    >>> _check_request({"result": {"transmissionMode": "reference"}}, "raw", meta)
    Traceback (most recent call last):
    ...
    layers.errors.InvalidParameter: output 'result': transmissionMode 'reference' is not offered ...
    """
    from layers.errors import InvalidParameter

    if outputs is not None and not isinstance(outputs, dict):
        raise InvalidParameter(
            f"'outputs' must be a JSON object (output id -> transmission), got {outputs!r}"
        )
    if response not in ("raw", "document"):
        raise InvalidParameter(f"'response' must be 'raw' or 'document', got {response!r}")
    if not outputs or metadata is None:
        return
    described = list(metadata.get("outputs") or {})
    offered = list(metadata.get("outputTransmission") or ["value"])
    for name, spec in outputs.items():
        if name not in described:
            raise InvalidParameter(choices(name, described, "output of this process"))
        mode = spec.get("transmissionMode") if isinstance(spec, dict) else None
        if mode is not None and mode not in offered:
            raise InvalidParameter(
                f"output {name!r}: transmissionMode {mode!r} is not offered by this process; "
                f"its outputTransmission: {', '.join(offered)}"[:300]
            )


def _public(owner: tuple[str, str]) -> bool:
    """Whether ``owner`` is the anonymous caller (all anonymous callers share it)."""
    return owner == (access.PUBLIC.name, access.PUBLIC.role)


def _whose(owner: tuple[str, str]) -> str:
    if _public(owner):
        return "anonymous callers' (together)"
    return f"{owner[0]!r}'s ({owner[1]})"


def _anonymous(who: access.Principal) -> bool:
    return _public((who.name, who.role))


def _setting(manager_def: dict, key: str, default):
    """A manager setting: its configuration key, else ``default`` (the settings object's)."""
    value = manager_def.get(key)
    return default if value in (None, "") else value


def _size(location: str) -> int:
    try:
        return os.path.getsize(location)
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
