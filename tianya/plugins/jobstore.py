"""Where process jobs are recorded: a SQLite file, or a table beside the PostGIS data.

:class:`tianya.plugins.jobs.JobManager` keeps one row per job: the pygeoapi job document (JSON)
plus the columns it filters on, each indexed, so every bookkeeping step costs the same however
many jobs are kept:

* add (with the owner's count of unfinished jobs, for the per-caller limit): a primary-key
  insert and an index count over that owner's *unfinished* jobs (a partial index);
* update, get, delete: by primary key;
* list: the owner's jobs newest first, through the ``(owner_role, owner_name, created_at)``
  index (all jobs through ``created_at`` for an administrator);
* result bytes (for the per-caller quota of stored results): a sum over the owner's jobs,
  through the same index;
* retention: ``DELETE … WHERE finished_at < cutoff`` through the partial ``finished_at`` index;
* recovery at start-up: the unfinished jobs of this host (a partial index).

Stores
------
:class:`SQLiteJobStore`
    One file (WAL journal, ``synchronous=NORMAL``): every write is one transaction, so a
    worker killed mid-write leaves the previous state, and the workers of one host share it.
:class:`PostgresJobStore`
    Table ``tianya_jobs`` in the data store's database and schema (psycopg 3), so several
    server hosts on one PostGIS database share their jobs.  It keeps the results too
    (``keeps_results``: a ``bytea`` column), so any host answers ``/jobs/{id}/results``.

:func:`open_job_store` picks one: a ``postgresql://`` job connection, else a PostGIS data
store, gives the table; anything else is the SQLite file's path.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FINISHED",
    "UNFINISHED",
    "JobRecord",
    "LimitReached",
    "PostgresJobStore",
    "SQLiteJobStore",
    "is_postgres_url",
    "open_job_store",
]

UNFINISHED = ("accepted", "running")
FINISHED = ("successful", "failed", "dismissed")
TABLE = "tianya_jobs"
_PG_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_UNFINISHED_SQL = "status IN ('accepted', 'running')"


class LimitReached(Exception):  # noqa: N818 - a signal to the manager, never shown as is
    """The owner already has ``count`` unfinished jobs, at or above the limit."""

    def __init__(self, count: int, limit: int):
        super().__init__(f"{count} unfinished jobs, limit {limit}")
        self.count, self.limit = count, limit


@dataclass(frozen=True)
class JobRecord:
    """A job and who it belongs to.

    Attributes
    ----------
    job : dict
        pygeoapi's job document (``identifier``, ``status``, ``location``…).
    owner_name, owner_role : str
        The principal that submitted it (``'anonymous'``, ``'public'`` without a key).
    restricted : bool
        Whether it is on personal data (hidden from roles that may not read it).
    """

    job: dict
    owner_name: str
    owner_role: str
    restricted: bool


def is_postgres_url(value) -> bool:
    """Whether ``value`` is a PostgreSQL URL (as :func:`layers.stores.open_store` accepts)."""
    return isinstance(value, str) and value.startswith(_PG_PREFIXES)


def open_job_store(connection: str | None, data: str | None = None):
    """The job store for a manager's ``connection`` and the data store ``data``.

    Parameters
    ----------
    connection : str or None
        A ``postgresql://`` URL (``?schema=`` as for the data store) or a SQLite file path.
    data : str, optional
        The data store (``TIANYA_DATA``): when it is PostGIS and ``connection`` is not a
        URL, jobs go to a table in its database and schema, so all hosts share them.

    Returns
    -------
    SQLiteJobStore or PostgresJobStore
    """
    if is_postgres_url(connection):
        return PostgresJobStore(connection)
    if is_postgres_url(data):
        return PostgresJobStore(data)
    return SQLiteJobStore(connection or "/tmp/tianya-jobs.sqlite")


def _finished_at(fields: dict) -> float | None:
    return time.time() if fields.get("status") in FINISHED else None


def _list_where(
    owner: tuple[str, str] | None,
    restricted: bool,
    status: str | None,
    mark: str,
    unrestricted: str,
) -> tuple[str, list]:
    """A store's ``list`` filter: the ``WHERE`` clause (or "") and its arguments.

    ``mark`` is the driver's placeholder, ``unrestricted`` the condition on ``restricted``.
    """
    where, args = [], []
    if owner is not None:
        where.append(f"owner_role = {mark} AND owner_name = {mark}")
        args += [owner[1], owner[0]]
    if not restricted:
        where.append(unrestricted)
    if status is not None:
        where.append(f"status = {mark}")
        args.append(status)
    return (f"WHERE {' AND '.join(where)}" if where else ""), args


# --- SQLite --------------------------------------------------------------------------------


_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    identifier TEXT PRIMARY KEY,
    process_id TEXT,
    status TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    owner_role TEXT NOT NULL,
    restricted INTEGER NOT NULL DEFAULT 0,
    host TEXT,
    pid INTEGER,
    created_at REAL NOT NULL,
    finished_at REAL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner_role, owner_name, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_owner_unfinished ON jobs (owner_role, owner_name)
    WHERE {_UNFINISHED_SQL};
CREATE INDEX IF NOT EXISTS jobs_host_unfinished ON jobs (host) WHERE {_UNFINISHED_SQL};
"""


class SQLiteJobStore:
    """Jobs in a SQLite file (WAL): one connection per thread and process.

    The results stay files in the manager's ``output_dir`` (one host's workers share both).

    Parameters
    ----------
    path : str
        The database file; its folder is created.  A TinyDB JSON file left by the
        previous manager is refused with a message (point ``TIANYA_JOBS`` elsewhere).
    """

    keeps_results = False

    def __init__(self, path: str):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(16)
        except FileNotFoundError:
            head = b""
        if head[:1] in (b"{", b"["):
            raise RuntimeError(
                f"{self.path} is a TinyDB (JSON) job file of the previous job "
                "manager, not SQLite: point TIANYA_JOBS at a new file"
            )
        self._local = threading.local()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SQLITE_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def add(
        self,
        job: dict,
        owner: tuple[str, str],
        *,
        restricted: bool,
        host: str,
        pid: int,
        limit: int | None = None,
    ) -> None:
        """Insert ``job``; :class:`LimitReached` if ``owner`` has ``limit`` unfinished jobs."""
        name, role = owner
        with self._write() as conn:
            if limit is not None and limit > 0:
                (count,) = conn.execute(
                    f"SELECT count(*) FROM jobs WHERE owner_role = ? AND owner_name = ? "
                    f"AND {_UNFINISHED_SQL}",
                    (role, name),
                ).fetchone()
                if count >= limit:
                    raise LimitReached(count, limit)
            conn.execute(
                "INSERT INTO jobs (identifier, process_id, status, owner_name, owner_role, "
                "restricted, host, pid, created_at, finished_at, doc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job["identifier"],
                    job.get("process_id"),
                    job.get("status", "accepted"),
                    name,
                    role,
                    int(bool(restricted)),
                    host,
                    pid,
                    time.time(),
                    _finished_at(job),
                    json.dumps(job),
                ),
            )

    def update(self, job_id: str, fields: dict) -> bool:
        """Merge ``fields`` into the job's document; False if there is no such job."""
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM jobs WHERE identifier = ?", (job_id,)).fetchone()
            if row is None:
                return False
            doc = {**json.loads(row[0]), **fields}
            conn.execute(
                "UPDATE jobs SET doc = ?, status = ?, "
                "finished_at = coalesce(finished_at, ?) WHERE identifier = ?",
                (json.dumps(doc), doc.get("status"), _finished_at(fields), job_id),
            )
        return True

    def get(self, job_id: str) -> JobRecord | None:
        """The job ``job_id``, or None."""
        row = (
            self._conn()
            .execute(
                "SELECT doc, owner_name, owner_role, restricted FROM jobs WHERE identifier = ?",
                (job_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return JobRecord(json.loads(row[0]), row[1], row[2], bool(row[3]))

    def list(
        self,
        owner: tuple[str, str] | None,
        *,
        restricted: bool,
        status: str | None,
        limit: int | None,
        offset: int | None,
    ) -> tuple[list[dict], int]:
        """Jobs newest first (``owner``'s, or all for None) and how many match in all."""
        cond, args = _list_where(owner, restricted, status, "?", "restricted = 0")
        conn = self._conn()
        (matched,) = conn.execute(f"SELECT count(*) FROM jobs {cond}", args).fetchone()
        rows = conn.execute(
            f"SELECT doc FROM jobs {cond} ORDER BY created_at DESC, identifier LIMIT ? OFFSET ?",
            [*args, -1 if not limit else int(limit), int(offset or 0)],
        )
        return [json.loads(r[0]) for r in rows], matched

    def delete(self, job_id: str) -> bool:
        """Remove the job's record; False if there was none."""
        with self._write() as conn:
            return conn.execute("DELETE FROM jobs WHERE identifier = ?", (job_id,)).rowcount > 0

    def result_bytes(self, owner: tuple[str, str]) -> int:
        """Bytes of the results kept for ``owner`` (their jobs' ``result_bytes``)."""
        (total,) = (
            self._conn()
            .execute(
                "SELECT coalesce(sum(json_extract(doc, '$.result_bytes')), 0) FROM jobs "
                "WHERE owner_role = ? AND owner_name = ? AND status = 'successful'",
                (owner[1], owner[0]),
            )
            .fetchone()
        )
        return int(total)

    def purge(self, finished_before: float) -> list[str]:
        """Remove the jobs finished before ``finished_before`` (epoch s); their locations."""
        with self._write() as conn:
            rows = conn.execute(
                "DELETE FROM jobs WHERE finished_at < ? RETURNING doc", (finished_before,)
            ).fetchall()
        return [loc for (doc,) in rows if (loc := json.loads(doc).get("location"))]

    def unfinished_on(self, host: str) -> list[tuple[str, int | None]]:
        """``(identifier, pid)`` of this host's accepted or running jobs."""
        return (
            self._conn()
            .execute(
                f"SELECT identifier, pid FROM jobs WHERE host = ? AND {_UNFINISHED_SQL}", (host,)
            )
            .fetchall()
        )

    def clear(self) -> None:
        """Remove every job record."""
        with self._write() as conn:
            conn.execute("DELETE FROM jobs")

    def __repr__(self):
        return f"<SQLiteJobStore {self.path}>"


# --- PostgreSQL ----------------------------------------------------------------------------


class PostgresJobStore:
    """Jobs in table ``tianya_jobs`` of a PostgreSQL database (psycopg 3, a small pool).

    Parameters
    ----------
    url : str
        ``postgresql://…`` with the data store's options; ``schema`` (default ``public``)
        is where the table lives, the others are ignored.
    """

    keeps_results = True

    def __init__(self, url: str):
        from psycopg_pool import ConnectionPool

        from layers.postgis import split_url

        conninfo, opts = split_url(url)
        self.schema = opts.get("schema") or "public"
        self.table = f"{_ident(self.schema)}.{_ident(TABLE)}"
        self._pool_args = dict(
            conninfo=conninfo,
            min_size=1,
            max_size=4,
            open=False,
            kwargs={"autocommit": True, "application_name": "tianya-jobs"},
            check=ConnectionPool.check_connection,
            timeout=10,
            name="tianya-jobs",
        )
        self._pool = None
        self._pid = None
        self._lock = threading.Lock()
        t = self.table
        with self._conn() as conn, conn.transaction():
            # one creator at a time: CREATE … IF NOT EXISTS races between hosts otherwise
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{t} create"])
            conn.execute(f"""
                CREATE TABLE IF NOT EXISTS {t} (
                    identifier text PRIMARY KEY,
                    process_id text,
                    status text NOT NULL,
                    owner_name text NOT NULL,
                    owner_role text NOT NULL,
                    restricted boolean NOT NULL DEFAULT false,
                    host text,
                    pid integer,
                    created_at double precision NOT NULL,
                    finished_at double precision,
                    doc jsonb NOT NULL,
                    result bytea)""")
            for name, spec in (
                ("owner", "(owner_role, owner_name, created_at)"),
                ("created", "(created_at)"),
                ("finished", "(finished_at) WHERE finished_at IS NOT NULL"),
                ("owner_unfinished", f"(owner_role, owner_name) WHERE {_UNFINISHED_SQL}"),
                ("host_unfinished", f"(host) WHERE {_UNFINISHED_SQL}"),
            ):
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {_ident(f'{TABLE}_{name}')} ON {t} {spec}"
                )

    @contextmanager
    def _conn(self):
        from psycopg_pool import ConnectionPool

        if self._pid != os.getpid():  # first use, or a forked worker: never share sockets
            with self._lock:
                if self._pid != os.getpid():
                    self._pool = ConnectionPool(**self._pool_args)
                    self._pool.open(wait=False)
                    self._pid = os.getpid()
        with self._pool.connection() as conn:
            yield conn

    def add(
        self,
        job: dict,
        owner: tuple[str, str],
        *,
        restricted: bool,
        host: str,
        pid: int,
        limit: int | None = None,
    ) -> None:
        """Insert ``job``; :class:`LimitReached` if ``owner`` has ``limit`` unfinished jobs."""
        from psycopg.types.json import Jsonb

        name, role = owner
        with self._conn() as conn, conn.transaction():
            if limit is not None and limit > 0:
                # the owner's submissions, on every host, are counted one at a time
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{self.table} {role} {name}"]
                )
                (count,) = conn.execute(
                    f"SELECT count(*) FROM {self.table} WHERE owner_role = %s "
                    f"AND owner_name = %s AND {_UNFINISHED_SQL}",
                    [role, name],
                ).fetchone()
                if count >= limit:
                    raise LimitReached(count, limit)
            conn.execute(
                f"INSERT INTO {self.table} (identifier, process_id, status, owner_name, "
                "owner_role, restricted, host, pid, created_at, finished_at, doc) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    job["identifier"],
                    job.get("process_id"),
                    job.get("status", "accepted"),
                    name,
                    role,
                    bool(restricted),
                    host,
                    pid,
                    time.time(),
                    _finished_at(job),
                    Jsonb(job),
                ],
            )

    def update(self, job_id: str, fields: dict, result: bytes | None = None) -> bool:
        """Merge ``fields`` into the job's document (and store ``result`` if given); False
        if there is no such job."""
        from psycopg.types.json import Jsonb

        with self._conn() as conn:
            cur = conn.execute(
                f"UPDATE {self.table} SET doc = doc || %s, "
                "status = coalesce(%s, status), finished_at = coalesce(finished_at, %s), "
                "result = coalesce(%s, result) WHERE identifier = %s",
                [Jsonb(fields), fields.get("status"), _finished_at(fields), result, job_id],
            )
            return cur.rowcount > 0

    def result(self, job_id: str) -> bytes | None:
        """The stored result of ``job_id``, or None."""
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT result FROM {self.table} WHERE identifier = %s", [job_id]
            ).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def get(self, job_id: str) -> JobRecord | None:
        """The job ``job_id``, or None."""
        with self._conn() as conn:
            row = conn.execute(
                f"SELECT doc, owner_name, owner_role, restricted FROM "
                f"{self.table} WHERE identifier = %s",
                [job_id],
            ).fetchone()
        return None if row is None else JobRecord(row[0], row[1], row[2], bool(row[3]))

    def list(
        self,
        owner: tuple[str, str] | None,
        *,
        restricted: bool,
        status: str | None,
        limit: int | None,
        offset: int | None,
    ) -> tuple[list[dict], int]:
        """Jobs newest first (``owner``'s, or all for None) and how many match in all."""
        cond, args = _list_where(owner, restricted, status, "%s", "NOT restricted")
        with self._conn() as conn:
            (matched,) = conn.execute(f"SELECT count(*) FROM {self.table} {cond}", args).fetchone()
            rows = conn.execute(
                f"SELECT doc FROM {self.table} {cond} ORDER BY created_at "
                "DESC, identifier LIMIT %s OFFSET %s",
                [*args, int(limit) if limit else None, int(offset or 0)],
            ).fetchall()
        return [r[0] for r in rows], matched

    def delete(self, job_id: str) -> bool:
        """Remove the job's record; False if there was none."""
        with self._conn() as conn:
            return (
                conn.execute(f"DELETE FROM {self.table} WHERE identifier = %s", [job_id]).rowcount
                > 0
            )

    def result_bytes(self, owner: tuple[str, str]) -> int:
        """Bytes of the results kept for ``owner`` (their jobs' ``result_bytes``)."""
        with self._conn() as conn:
            (total,) = conn.execute(
                f"SELECT coalesce(sum((doc->>'result_bytes')::bigint), 0) FROM {self.table} "
                "WHERE owner_role = %s AND owner_name = %s AND status = 'successful'",
                [owner[1], owner[0]],
            ).fetchone()
        return int(total)

    def purge(self, finished_before: float) -> list[str]:
        """Remove the jobs finished before ``finished_before`` (epoch s); their locations."""
        with self._conn() as conn:
            rows = conn.execute(
                f"DELETE FROM {self.table} WHERE finished_at < %s RETURNING doc->>'location'",
                [finished_before],
            ).fetchall()
        return [loc for (loc,) in rows if loc]

    def unfinished_on(self, host: str) -> list[tuple[str, int | None]]:
        """``(identifier, pid)`` of this host's accepted or running jobs."""
        with self._conn() as conn:
            return conn.execute(
                f"SELECT identifier, pid FROM {self.table} WHERE host = %s AND {_UNFINISHED_SQL}",
                [host],
            ).fetchall()

    def clear(self) -> None:
        """Remove every job record."""
        with self._conn() as conn:
            conn.execute(f"DELETE FROM {self.table}")

    def close(self) -> None:
        """Close this process's connections."""
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
            self._pool, self._pid = None, None

    def __repr__(self):
        return f"<PostgresJobStore {self.table}>"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
