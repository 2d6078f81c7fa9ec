"""The process job manager: pygeoapi's TinyDB manager, made safe for gunicorn and restarts.

Configured in ``server.manager`` (``name: analytics.jobs.JobManager``; ``connection`` is the
TinyDB file, ``${TIANYA_JOBS:-/tmp/tianya-jobs.db}``; ``output_dir`` holds the results,
``${TIANYA_JOB_RESULTS:-/tmp/tianya-job-results}``).  Jobs and results are files, so a job's
status and result can be read from any gunicorn worker and after the server restarts.

What it changes in :class:`pygeoapi.process.manager.tinydb_.TinyDBManager` (pygeoapi 0.24):

* **Inputs are checked before the job exists.**  pygeoapi turns every exception raised inside a
  processor into a failed job answered with HTTP 400 (sync) or 201 and a failed job (async).
  :meth:`JobManager.execute_process` first calls the processor's ``check_inputs`` and answers a
  :class:`~layers.errors.TianyaError` with its own status: 400 with the valid choices, 401/403
  for a layer the caller may not read.
* **Atomic writes.**  TinyDB's JSON storage rewrites the file in place (seek, write,
  truncate): a worker killed mid-write leaves a corrupt database and every later request fails.
  :class:`AtomicJSONStorage` writes a temporary file and renames it over the database.  Every
  access still holds pygeoapi's cross-process file lock (``<connection>.lock``), so the
  workers of one server (or several servers sharing the file) see one consistent history; the
  lock object is per access, not shared between the threads of a worker.
* **Interrupted jobs are marked failed.**  An asynchronous job runs in a thread of the worker
  that accepted it; if that process dies (restart, crash) the job would stay ``running``
  forever.  Each job's owner (host and pid) is recorded in a side table; when a manager starts
  (every worker, at start-up) jobs still ``accepted``/``running`` whose owner process on this
  host is gone are marked ``failed`` with a message asking to resubmit.

* **Jobs on personal data are hidden.**  pygeoapi lists every job (``/jobs``) and serves
  every result to anyone who knows its id.  A job on a non-public layer (poverty relief,
  building population) or one whose inputs name a sensitive field is recorded as
  ``restricted`` and is invisible (404, left out of ``/jobs``) to roles that may not read
  personal data; they cannot dismiss it either.

Not solved here: jobs are not resumed after a restart (they are marked failed), results are never
cleaned up, and several *hosts* need a shared database (pygeoapi's ``PostgreSQL`` manager)
instead of a file.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import tinydb
from filelock import FileLock
from pygeoapi.process.base import JobNotFoundError, ProcessorExecuteError
from pygeoapi.process.manager.tinydb_ import TinyDBManager
from pygeoapi.util import JobStatus, get_current_datetime
from tinydb.storages import Storage

from layers import access
from layers.errors import TianyaError

__all__ = ["AtomicJSONStorage", "JobManager", "ProcessInputError"]

OWNERS = "owners"
#: Per-thread note from execute_process to add_job: is the job being added restricted?
_PENDING = threading.local()


class AtomicJSONStorage(Storage):
    """TinyDB storage that replaces the JSON file atomically on every write."""

    def __init__(self, path: str, **kwargs):
        self.path = str(path)

    def read(self):
        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            return None
        return json.loads(text) if text.strip() else None

    def write(self, data) -> None:
        tmp = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        pass


class ProcessInputError(ProcessorExecuteError):
    """A :class:`~layers.errors.TianyaError` raised while checking inputs, with its status."""

    def __init__(self, err: TianyaError):
        super().__init__(str(err), user_msg=str(err))
        self.http_status_code = err.status
        self.ogc_exception_code = err.ogc_code


class ProcessRunError(ProcessorExecuteError):
    """A synchronous run that failed: the error's own status, or 500 for a fault of ours."""

    def __init__(self, process_id: str, err: Exception):
        if isinstance(err, TianyaError):
            msg, status, code = str(err), err.status, err.ogc_code
        else:
            msg = f"process {process_id!r} failed: {type(err).__name__}: {err}"
            status, code = 500, "NoApplicableCode"
        super().__init__(msg, user_msg=msg)
        self.http_status_code = status
        self.ogc_exception_code = code


class JobManager(TinyDBManager):
    """pygeoapi TinyDB job manager with input checks, atomic writes and restart recovery."""

    def __init__(self, manager_def: dict):
        super().__init__(manager_def)
        Path(self.connection).parent.mkdir(parents=True, exist_ok=True)
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.host = socket.gethostname()
        self.recover()

    @contextmanager
    def _db(self):
        lock = FileLock(f"{self.connection}.lock")  # per access: threads never share it
        with lock:
            with tinydb.TinyDB(self.connection, storage=AtomicJSONStorage) as db:
                yield db

    def destroy(self) -> bool:
        with self._db() as db:
            db.drop_tables()
        return True

    def add_job(self, job_metadata: dict) -> str:
        with self._db() as db:
            doc_id = db.insert(job_metadata)
            db.table(OWNERS).insert({"identifier": job_metadata["identifier"],
                                     "host": self.host, "pid": os.getpid(),
                                     "restricted": bool(getattr(_PENDING, "restricted", False))})
        return doc_id

    # --- visibility (called in the request's thread, where the principal is current) ---------

    def _hidden(self) -> set[str]:
        """Ids of the restricted jobs, if the current caller may not see them."""
        if access.CURRENT.get().trusted:
            return set()
        with self._db() as db:
            return {o["identifier"] for o in db.table(OWNERS).all() if o.get("restricted")}

    def get_jobs(self, status=None, limit=None, offset=None) -> dict:
        hidden = self._hidden()
        with self._db() as db:
            jobs = [j for j in db.all() if j.get("identifier") not in hidden]
        matched = len(jobs)
        if offset:
            jobs = jobs[offset:]
        if limit:
            jobs = jobs[:limit]
        return {"jobs": jobs, "numberMatched": matched}

    def get_job(self, job_id: str) -> dict:
        if job_id in self._hidden():
            raise JobNotFoundError()
        return super().get_job(job_id)

    def delete_job(self, job_id: str) -> bool:
        removed = super().delete_job(job_id)  # get_job first: hidden jobs are not found
        with self._db() as db:
            db.table(OWNERS).remove(tinydb.where("identifier") == job_id)
        return removed

    def recover(self) -> int:
        """Mark failed the unfinished jobs whose owner process (on this host) is gone.

        Returns
        -------
        int
            Jobs marked failed.
        """
        unfinished = (JobStatus.accepted.value, JobStatus.running.value)
        marked = 0
        with self._db() as db:
            owners = {o["identifier"]: o for o in db.table(OWNERS).all()}
            for job in db.all():
                if job.get("status") not in unfinished:
                    continue
                owner = owners.get(job.get("identifier"))
                if owner is None or owner.get("host") != self.host or _alive(owner["pid"]):
                    continue
                now = get_current_datetime()
                db.update({"status": JobStatus.failed.value, "finished": now, "updated": now,
                           "message": "interrupted: the server stopped before the job "
                                      "finished; submit it again"},
                          tinydb.where("identifier") == job["identifier"])
                marked += 1
        return marked

    def execute_process(self, process_id, data_dict, execution_mode=None,
                        requested_outputs=None, subscriber=None,
                        requested_response="raw"):
        """Check the inputs (see the module docstring), then pygeoapi's execution."""
        processor = self.get_processor(process_id)
        check = getattr(processor, "check_inputs", None)
        restricted = False
        if check is not None:
            try:
                restricted = processor.restricted(check(data_dict))
            except TianyaError as err:
                raise ProcessInputError(err) from None
        _PENDING.restricted = restricted  # read by add_job, in this thread
        _PENDING.failure = None
        try:
            result = super().execute_process(process_id, data_dict,
                                             execution_mode=execution_mode,
                                             requested_outputs=requested_outputs,
                                             subscriber=subscriber,
                                             requested_response=requested_response)
        finally:
            _PENDING.restricted = False
        failure, _PENDING.failure = _PENDING.failure, None
        if failure is not None and result[3] == JobStatus.failed:
            # a synchronous run (an asynchronous one fails in its own thread): pygeoapi
            # would answer every failure with 400; the job stays recorded as failed
            raise ProcessRunError(process_id, failure) from None
        return result

    def _execute_handler_sync(self, p, job_id, data_dict, *args, **kwargs):
        """pygeoapi's run, remembering the exception (in this thread) when it fails."""
        run = p.execute

        def execute(*a, **kw):
            try:
                return run(*a, **kw)
            except Exception as err:
                _PENDING.failure = err
                raise

        p.execute = execute
        try:
            return super()._execute_handler_sync(p, job_id, data_dict, *args, **kwargs)
        finally:
            del p.execute  # the instance attribute; the class's method shows again

    def __repr__(self):
        return f"<JobManager> {self.connection}"


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
