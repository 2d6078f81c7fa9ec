"""The PostGIS store: the scale-up twin of the GeoPackage store, on psycopg 3.

It answers the same :class:`~layers.query.Query` with the same features as
:class:`~layers.gpkg.GeoPackageStore` (ids are the layer key, properties in
field order, datetimes as ``YYYY-MM-DDTHH:MM:SS.sssZ`` (whatever
:func:`~layers.query.format_datetime` gives) text, dates as
``YYYY-MM-DD``, insertion (``fid``) order unless sorted) and raises the same
errors, but keeps the data in PostgreSQL and does the heavy work there.

Schema
    One table per catalogue layer, derived from the catalogue only:
    ``fid bigserial primary key``, ``geom geometry(<type>, 4326)`` with a GiST
    index, the key column ``UNIQUE NOT NULL``, ``CHECK`` constraints for code
    lists and b-tree indexes for ``indexed`` fields. Text columns use the
    ``"C"`` collation, so comparisons and sorting follow byte order exactly as
    SQLite (and so the GeoPackage store) does. NULLs sort first ascending, last
    descending, as in SQLite.

GeoJSON in the database
    Geometries are written as GeoJSON by PostGIS (``ST_AsGeoJSON``, 15 decimals)
    and a page's geometries are parsed by ``orjson`` in one call; properties
    arrive as typed columns (datetimes already formatted by ``to_char``). No
    per-geometry work in Python. (Building whole features with
    ``json_build_object``/``json_agg`` was measured 1.7× slower: it looks up
    every argument's type for every row.) ``target_crs`` is applied with ``ST_Transform``
    and, for CRSs whose authority axis order is latitude first (EPSG:4326,
    EPSG:4490), ``ST_FlipCoordinates``; CRSs that are not EPSG codes known to
    ``spatial_ref_sys`` fall back to the shared pyproj path.

numberMatched (OGC API Features: optional, but correct whenever given)
    * exact without another query when the page itself proves it: a first page
      shorter than ``limit`` (``len(rows)``), or any non-empty short page
      (``offset + len(rows)``);
    * otherwise the planner's estimate of the matching rows is looked at first
      (``pg_class.reltuples`` for an unfiltered query, ``EXPLAIN`` for a
      filtered one); above the bound numberMatched is **omitted** (``None``) —
      never estimated. The bound is ``count_limit`` (default 50,000) for a whole
      table and ``filtered_count_limit`` (default 10,000, at most ``count_limit``)
      for a filtered query, whose matches are read from the heap at random;
    * else an exact count bounded to the bound + 1 rows runs under
      ``SET LOCAL statement_timeout`` of ``count_timeout`` (default 100 ms);
      when it hits the bound or the time budget numberMatched is omitted.
    So a count never costs more than a small, fixed budget, and a page of a
    large table is never slow because of it. (Counting 10,000 points of a 1 km
    box on the 1M-row table costs ~40 ms on 2 cores, about what the 1000-row page
    itself costs; with a 50,000 bound the count took 100 ms and was thrown away.)

Deep pages
    With ``offset > 0`` the page is a *deferred join*: the inner query selects
    only ``fid`` in the requested order (an index-only scan of the primary key
    or a sort index for the skipped rows), and only the ``limit`` returned rows
    are joined back for their properties and geometry. Offset 500,000 therefore
    costs an index walk, not 500,000 geometries.

Connections
    A lazily opened :class:`psycopg_pool.ConnectionPool` whose connections are
    checked before use (``ConnectionPool.check_connection``), so a PostgreSQL
    restart costs at most the requests in flight (reads are retried once on a
    fresh connection). The pool opens on first use and is rebuilt in a forked
    child (gunicorn ``--preload``), so workers never share a socket. Each
    connection runs with ``TimeZone=UTC`` and
    ``statement_timeout`` (default 30 s) and ``max_parallel_workers_per_gather`` of
    ``parallel_workers`` (default 0: a page is a short LIMIT query, and starting
    parallel workers cost ~70 ms per request under load); a timeout, an unreachable server or a
    lost connection raise :class:`~layers.errors.StoreUnavailable` (HTTP 503)
    with a clear message. :meth:`PostGISStore.transaction` pins one connection
    to the calling thread for the whole with-block; every store call inside it
    uses that connection, and nested blocks join the outer one.

Extent
    ``extent()`` is exact (``ST_Extent``, ``min``/``max``) and cached for
    ``extent_ttl`` seconds (default 60); this store's own writes clear the cache.

URL options
    Besides libpq's own, the URL may carry ``schema`` (default ``public``),
    ``statement_timeout`` (seconds), ``count_limit``, ``filtered_count_limit``,
    ``count_timeout`` (ms), ``parallel_workers`` and ``pool_max``; they are removed
    before connecting, e.g.
    ``postgresql://tianya:tianya@localhost/tianya?schema=demo&statement_timeout=10``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import psycopg
import pyproj
import shapely
from psycopg import errors as pgerr
from psycopg_pool import ConnectionPool, PoolTimeout

from layers.catalogue import Layer
from layers.errors import (
    Conflict,
    InvalidFeature,
    InvalidParameter,
    NotFound,
    StoreUnavailable,
    TianyaError,
    choices,
)
from layers.query import Dialect, Query, format_datetime
from layers.store import (
    Page,
    Store,
    column_definitions,
    empty_frame,
    frame_columns,
    geometries_to_geojson,
    needs_transform,
    normalize_crs,
    quote,
    rows_to_frame,
    transform_geometries,
)

SRID = 4326
_SQL_TYPES = {
    "string": 'text COLLATE "C"',
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamptz",
}
#: ``to_char`` format giving exactly :func:`~layers.query.format_datetime`'s text
#: (second or millisecond precision, whichever the stores use).
_MS = format_datetime(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).endswith(".000Z")
_TS_FORMAT = '\'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\'' if _MS else '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\''
_STORE_OPTIONS = (
    "schema",
    "statement_timeout",
    "count_limit",
    "filtered_count_limit",
    "count_timeout",
    "pool_max",
    "pool_min",
    "parallel_workers",
)


_ident = quote


class PostgresDialect(Dialect):
    """CQL2 for PostgreSQL: ``%s`` parameters and PostGIS predicates (GiST-indexed)."""

    param = "%s"

    def geometry_literal(self, geom):
        return f"ST_GeomFromWKB(%s, {SRID})", [shapely.to_wkb(geom)]

    def spatial(self, op, column, geom):
        return f"ST_{op.capitalize()}({column}, ST_GeomFromWKB(%s, {SRID}))", [shapely.to_wkb(geom)]


@lru_cache(maxsize=64)
def _lat_first(crs: str) -> bool:
    """Whether ``crs``'s authority axis order puts latitude (northing) first."""
    axes = pyproj.CRS.from_user_input(crs).axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Separate this store's options from a PostgreSQL URL.

    Returns
    -------
    conninfo : str
        The URL libpq understands (``postgresql://``, without our options).
    options : dict
        ``schema``, ``statement_timeout``… as strings.
    """
    if url.startswith("postgresql+psycopg://"):
        url = "postgresql://" + url[len("postgresql+psycopg://") :]
    parts = urlsplit(url)
    keep: list[tuple[str, str]] = []
    opts: dict[str, str] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        (opts.__setitem__(k, v) if k in _STORE_OPTIONS else keep.append((k, v)))
    return urlunsplit(parts._replace(query=urlencode(keep))), opts


class PostGISStore(Store):
    """Layers in a PostGIS database.

    Parameters
    ----------
    url : str
        ``postgresql://user:password@host:port/dbname`` (options: see the module docstring).
    schema : str, optional
        Schema holding the tables (default: the URL's ``schema`` or ``public``).
    statement_timeout : float, optional
        Seconds any one statement may run (default 30).
    count_limit : int, optional
        Largest numberMatched this store counts exactly for a whole table (default
        50,000); above, it is omitted.
    filtered_count_limit : int, optional
        The same for a filtered query (default 10,000; at most ``count_limit``).
    count_timeout : float, optional
        Milliseconds a count may take before numberMatched is omitted (default 100).
    pool_max : int, optional
        Most connections kept open (default 10).
    connect_timeout : float
        Seconds to wait for a connection before :class:`StoreUnavailable`.
    extent_ttl : float
        Seconds an :meth:`extent` result is reused.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        statement_timeout: float | None = None,
        count_limit: int | None = None,
        count_timeout: float | None = None,
        pool_max: int | None = None,
        filtered_count_limit: int | None = None,
        connect_timeout: float = 10.0,
        extent_ttl: float = 60.0,
    ):
        conninfo, opts = split_url(url)
        self._conninfo = conninfo
        self.url = url
        self.schema = schema or opts.get("schema") or "public"
        self.statement_timeout = float(
            statement_timeout
            if statement_timeout is not None
            else opts.get("statement_timeout", 30)
        )
        self.count_limit = int(
            count_limit if count_limit is not None else opts.get("count_limit", 50_000)
        )
        self.filtered_count_limit = min(
            self.count_limit,
            int(
                filtered_count_limit
                if filtered_count_limit is not None
                else opts.get("filtered_count_limit", 10_000)
            ),
        )
        self.count_timeout = float(
            count_timeout if count_timeout is not None else opts.get("count_timeout", 100)
        )
        self.parallel_workers = int(opts.get("parallel_workers", 0))
        self.connect_timeout = connect_timeout
        self.extent_ttl = extent_ttl
        p = urlsplit(conninfo)
        self._where_text = f"{p.hostname or 'localhost'}:{p.port or 5432}{p.path}"
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, int(connect_timeout)),
        }
        if "application_name" not in p.query:
            kwargs["application_name"] = "tianya"
        self._pool_args: dict[str, Any] = dict(
            conninfo=conninfo,
            min_size=int(opts.get("pool_min", 1)),
            max_size=int(pool_max or opts.get("pool_max", "10")),
            open=False,
            kwargs=kwargs,
            configure=self._configure,
            check=ConnectionPool.check_connection,
            timeout=connect_timeout,
            name=f"tianya-{self._where_text}",
        )
        self._pool = ConnectionPool(**self._pool_args)
        self._pid = os.getpid()
        self._opened = False
        self._open_lock = threading.Lock()
        self._local = threading.local()
        self._tables: set[str] = set()
        self._extents: dict[str, tuple[float, object]] = {}
        self._rows: dict[str, tuple[float, float]] = {}
        self._srids: dict[str, int | None] = {}

    # connections ------------------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection) -> None:
        # psycopg prepares a statement run 5 times, and PostgreSQL then switches to a
        # generic plan that ignores the bbox's selectivity (1 km box: 38 ms -> 105 ms);
        # custom plans keep the parameters in view for one planning a request
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false), "
            "set_config('TimeZone', 'UTC', false), "
            "set_config('plan_cache_mode', 'force_custom_plan', false), "
            "set_config('max_parallel_workers_per_gather', %s, false)",
            [f"{int(self.statement_timeout * 1000)}ms", str(self.parallel_workers)],
        )

    def _open(self) -> None:
        if self._pid != os.getpid():  # forked (gunicorn --preload): never share sockets
            self._pool = ConnectionPool(**self._pool_args)
            self._pid, self._opened = os.getpid(), False
            self._open_lock = threading.Lock()
        if not self._opened:
            with self._open_lock:
                if not self._opened:
                    self._pool.open(wait=False)
                    self._opened = True

    @contextmanager
    def _pooled(self) -> Iterator[psycopg.Connection]:
        self._open()
        pool = self._pool
        try:
            conn = pool.getconn()
        except PoolTimeout:
            pool = self._renewed(pool)
            try:
                conn = pool.getconn()
            except PoolTimeout:
                raise self._unavailable() from None
        try:
            with conn:  # as ConnectionPool.connection(): commit, or roll back on error
                yield conn
        finally:
            pool.putconn(conn)

    def _unavailable(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"PostgreSQL at {self._where_text} is unavailable: no connection within "
            f"{self.connect_timeout:g} s"
        )

    def _renewed(self, stale: ConnectionPool) -> ConnectionPool:
        """A new pool when ``stale`` gave no connection in time but PostgreSQL answers one.

        After an outage psycopg_pool reconnects with doubling delays (1, 2, 4, 8… s), so a
        pool may stay empty many seconds after the server is back (a 13 s restart left one
        answering 503 for 20 s more).  A direct connection tells the two apart: refused, the
        outage goes on (:class:`~layers.errors.StoreUnavailable`); accepted, the pool is
        replaced and the request served.
        """
        args = self._pool_args
        try:
            psycopg.connect(args["conninfo"], **args["kwargs"]).close()
        except psycopg.OperationalError:
            raise self._unavailable() from None
        with self._open_lock:
            if self._pool is stale:
                self._pool = ConnectionPool(**args)
                self._pool.open(wait=False)
                stale.close(timeout=0.1)  # connections still out are closed when returned
        return self._pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self._pooled() as conn:
            yield conn

    def fetch_one(self, sql: str, params: Sequence = ()) -> tuple | None:
        """The first row of one read-only statement ``sql`` with bound ``params``.

        Runs like every read of the store: the store's statement timeout, errors mapped to
        :mod:`layers.errors` (:class:`~layers.errors.StoreUnavailable` for an outage) and one
        retry on a fresh connection if the old one was lost.  ``sql`` uses ``%s``
        placeholders; quote identifiers with :func:`layers.store.quote` and name tables
        with :meth:`table`.
        """
        return self._read(lambda conn: conn.execute(sql, params).fetchone())

    def _read(self, fn):
        """Run ``fn(conn)``; retried once on a fresh connection if the old one was lost."""
        in_tx = getattr(self._local, "conn", None) is not None
        for attempt in (0, 1):
            try:
                with self._errors(), self._connection() as conn:
                    return fn(conn)
            except StoreUnavailable as exc:
                lost = isinstance(exc.__cause__, psycopg.OperationalError) and not isinstance(
                    exc.__cause__, pgerr.QueryCanceled
                )
                if attempt or in_tx or not lost:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _errors(self, writing: bool = False) -> Iterator[None]:
        """Translate psycopg errors into the project's errors."""
        bad = InvalidFeature if writing else InvalidParameter
        try:
            yield
        except TianyaError:
            raise
        except pgerr.QueryCanceled as exc:
            raise StoreUnavailable(
                f"PostgreSQL statement timed out after {self.statement_timeout:g} s "
                "(statement_timeout); narrow the request (bbox, filter, smaller limit) or "
                "try again later"
            ) from exc
        except pgerr.UndefinedTable as exc:
            self._tables.clear()
            raise NotFound(
                f"a collection's table is missing from PostgreSQL "
                f"{self._where_text}: {_first_line(exc)}"
            ) from None
        except pgerr.UniqueViolation:
            raise Conflict("a feature with this key already exists") from None
        except (pgerr.IntegrityError, pgerr.DataError) as exc:
            raise bad(_first_line(exc)) from None
        except (
            pgerr.UndefinedFunction,
            pgerr.DatatypeMismatch,
            pgerr.InvalidParameterValue,
        ) as exc:
            raise bad(f"not applicable to this collection's types: {_first_line(exc)}") from None
        except pgerr.ProgrammingError as exc:
            # a filter PostgreSQL cannot type or parse (PostGIS's HINTs may quote stored
            # values: the message is not passed on)
            raise bad(
                "the filter cannot be evaluated on this collection: a value or "
                f"geometry of the wrong type ({type(exc).__name__})"
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(
                f"PostgreSQL at {self._where_text} is unavailable: {_first_line(exc)}"
            ) from exc

    def close(self) -> None:
        """Close the connection pool (idempotent; the next call opens a new one)."""
        if self._opened:
            self._pool.close()
            self._pool = ConnectionPool(**self._pool_args)  # a closed pool cannot reopen
            self._opened = False

    # dialect hooks (see :class:`~layers.store.Store`) -----------------------------------------

    param = "%s"
    datetime_param = "%s::timestamptz"
    geometry_param = f"ST_GeomFromWKB(%s, {SRID})"

    def _table(self, layer: Layer) -> str:
        return self.table(layer)

    def _location(self) -> str:
        return f"the PostGIS database {self._where_text} (schema {self.schema})"

    def _dialect(self, layer: Layer) -> Dialect:
        return PostgresDialect()

    def _bbox_sql(self, layer, bbox):
        env = f"ST_MakeEnvelope(%s, %s, %s, %s, {SRID})"
        box = [float(v) for v in bbox]
        if layer.geometry_type == "Point":
            # ``&&`` alone compares float4-rounded boxes (points just outside match): the
            # index finds candidates, exact coordinate bounds decide, as in the GeoPackage.
            # Inside a CASE the bounds don't shrink the planner's row estimate (plain
            # BETWEENs made it 1 row and turned a 26 ms pk walk into an 800 ms bitmap+sort)
            return (
                [
                    f"geom && {env} AND CASE WHEN ST_X(geom) BETWEEN %s AND %s "
                    "AND ST_Y(geom) BETWEEN %s AND %s THEN true ELSE false END"
                ],
                box + [box[0], box[2], box[1], box[3]],
            )
        return [f"ST_Intersects(geom, {env})"], box

    def _geometry_value(self, layer: Layer, geom) -> bytes | None:
        return _wkb(geom)

    def _check_values(self, layer: Layer, names, values) -> None:
        self._check_codes(layer, names, [values])

    def _write_rows(self, layer: Layer, sql: str, rows) -> int:
        n = 0
        with self._write(layer) as conn, conn.cursor() as cur:
            for row in rows:
                try:
                    cur.execute(sql, row)
                except pgerr.UniqueViolation:
                    raise Conflict(
                        f"{layer.id} already has a feature with this {layer.key}"
                    ) from None
                except pgerr.NotNullViolation as exc:
                    raise InvalidFeature(f"{layer.id}: {_first_line(exc)}") from None
                n += cur.rowcount
        return n

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:  # nested: the outer transaction decides
            yield conn
            return
        with self._errors(writing=True), self._pooled() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def _write(self, layer: Layer | None = None) -> Iterator[psycopg.Connection]:
        """A write: its own transaction, or a savepoint inside the caller's."""
        outer = getattr(self._local, "conn", None)
        with self._errors(writing=True):
            if outer is not None:
                with outer.transaction():
                    yield outer
            else:
                with self.transaction() as conn:
                    yield conn
        if layer is not None:
            self._extents.pop(layer.id, None)

    # schema -------------------------------------------------------------------------------------

    def table(self, layer: Layer) -> str:
        """The layer's qualified, quoted table name."""
        return f"{_ident(self.schema)}.{_ident(layer.id)}"

    def ddl(self, layer: Layer) -> list[str]:
        """``CREATE TABLE`` and ``CREATE INDEX`` statements derived from the catalogue."""
        t, cols = self.table(layer), ["fid bigserial PRIMARY KEY"]
        if layer.geometry_type:
            cols.append(f"geom geometry({layer.geometry_type}, {SRID})")
        cols += column_definitions(layer, _SQL_TYPES)
        return [f"CREATE TABLE {t} ({', '.join(cols)})", *self.index_ddl(layer)]

    def index_ddl(self, layer: Layer) -> list[str]:
        t, out = self.table(layer), []
        if layer.geometry_type:
            out.append(f"CREATE INDEX {_ident(f'{layer.id}_geom_gist')} ON {t} USING gist (geom)")
        for f in layer.fields:
            if f.indexed and f.name != layer.key:
                out.append(
                    f"CREATE INDEX {_ident(f'idx_{layer.id}_{f.name}')} ON {t} ({_ident(f.name)})"
                )
        return out

    def ensure_layer(self, layer: Layer) -> None:
        """Create ``layer`` empty if it does not exist yet, safe against concurrent callers in
        any process: the check is made again under a transaction-scoped advisory lock on the
        table's name (the base class's "write lock" is the GeoPackage's; here 8 writers of a
        store without ``key_task_counters`` each created it, and the losers got
        ``DuplicateTable``/unique-violation errors, or dropped the winner's table and rows)."""
        if self.has_layer(layer):
            return
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self.table(layer)])
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [self.table(layer)]).fetchone()
            if not (row and row[0]):
                self.write_frame(layer, empty_frame(layer))
        self._tables.add(layer.id)

    def has_layer(self, layer: Layer) -> bool:
        if layer.id in self._tables:
            return True
        found = self._read(
            lambda c: c.execute(
                "SELECT to_regclass(%s) IS NOT NULL", [self.table(layer)]
            ).fetchone()[0]
        )
        if found:
            self._tables.add(layer.id)
        return bool(found)

    def create_layer(self, conn: psycopg.Connection, layer: Layer, *, indexes: bool = True) -> None:
        """Drop and recreate ``layer``'s table on ``conn`` (inside the caller's transaction)."""
        if layer.geometry_type:
            has = conn.execute("SELECT 1 FROM pg_extension WHERE extname='postgis'").fetchone()
            if not has:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        if self.schema != "public":
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(self.schema)}")
        conn.execute(f"DROP TABLE IF EXISTS {self.table(layer)}")
        stmts = self.ddl(layer)
        for stmt in stmts if indexes else stmts[:1]:
            conn.execute(stmt)
        self._tables.discard(layer.id)
        self._extents.pop(layer.id, None)
        self._rows.pop(layer.id, None)

    def copy_rows(
        self,
        conn: psycopg.Connection,
        layer: Layer,
        rows: Iterable[Sequence],
        *,
        with_fid: bool = False,
        freeze: bool = False,
    ) -> int:
        """``COPY`` rows into ``layer``'s table.

        Each row is ``[fid,] [hex EWKB geometry,] *field values`` (field order); values
        are in stored form (datetimes as RFC 3339 text or datetimes, booleans, numbers).
        ``freeze`` (only for a table created in the same transaction) writes the rows
        frozen and all-visible, so index-only scans need no ``VACUUM`` first.
        """
        cols = (["fid"] if with_fid else []) + (["geom"] if layer.geometry_type else [])
        cols += [_ident(f.name) for f in layer.fields]
        n = 0
        opts = " WITH (FREEZE)" if freeze else ""
        with conn.cursor().copy(
            f"COPY {self.table(layer)} ({', '.join(cols)}) FROM STDIN{opts}"
        ) as cp:
            for row in rows:
                cp.write_row(row)
                n += 1
        return n

    def finish_layer(
        self,
        conn: psycopg.Connection,
        layer: Layer,
        *,
        indexes: bool = False,
        fid_synced: bool = False,
    ) -> None:
        """Create the indexes (if deferred), set the fid sequence and ``ANALYZE``."""
        if indexes:
            conn.execute("SELECT set_config('maintenance_work_mem', '256MB', true)")
            for stmt in self.index_ddl(layer):
                conn.execute(stmt)
        if fid_synced:
            conn.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'fid'), "
                f"greatest((SELECT max(fid) FROM {self.table(layer)}), 1))",
                [self.table(layer)],
            )
        conn.execute(f"ANALYZE {self.table(layer)}")

    def write_frame(self, layer: Layer, frame: gpd.GeoDataFrame) -> int:
        names = [f.name for f in layer.fields]
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise InvalidFeature(f"frame for {layer.id!r} lacks columns: {', '.join(missing)}")
        self._check_frame_codes(layer, frame)
        cols = frame_columns(layer, frame)
        if layer.geometry_type:
            if frame.crs is not None:
                frame = frame.to_crs(SRID)
            cols.insert(0, ewkb_hex(np.asarray(frame.geometry.values)))
        rows = zip(*cols, strict=True) if cols else iter(())
        with self._write(layer) as conn:
            self.create_layer(conn, layer, indexes=False)
            n = self.copy_rows(conn, layer, rows, freeze=True)
            self.finish_layer(conn, layer, indexes=True)
        return n

    def vacuum(self, layer: Layer) -> None:
        """``VACUUM (ANALYZE)`` a table: fresh statistics and a visibility map for
        index-only scans (deep pages, counts). Outside any transaction."""
        with self._errors(), self._pooled() as conn:
            conn.execute(f"VACUUM (ANALYZE) {self.table(layer)}")

    # reading ------------------------------------------------------------------------------------

    def _where(self, layer: Layer, q: Query) -> tuple[list[str], list]:
        return self._where_parts(layer, q)

    def _order(self, layer: Layer, q: Query, alias: str = "") -> str:
        out = []
        for name, asc in q.sortby:
            layer.field(name)
            out.append(
                f"{alias}{_ident(name)} " + ("ASC NULLS FIRST" if asc else "DESC NULLS LAST")
            )
        out.append(f"{alias}fid")
        return ", ".join(out)

    def _srid(self, crs: str) -> int | None:
        """The PostGIS SRID for an ``EPSG:n`` CRS, or None (then pyproj does the work)."""
        if crs not in self._srids:
            srid = None
            if crs.upper().startswith("EPSG:") and crs[5:].isdigit():
                row = self._read(
                    lambda c: c.execute(
                        "SELECT srid FROM spatial_ref_sys WHERE auth_name = 'EPSG' AND "
                        "auth_srid = %s",
                        [int(crs[5:])],
                    ).fetchone()
                )
                srid = row[0] if row else None
            self._srids[crs] = srid
        return self._srids[crs]

    def _prepare_crs(self, target_crs: str | None) -> None:
        """Look the CRS up before a page borrows its connection (no nested borrowing)."""
        if target_crs is not None and needs_transform(target_crs):
            crs = normalize_crs(target_crs)
            try:
                _lat_first(crs)
            except pyproj.exceptions.CRSError:
                raise InvalidParameter(f"unknown CRS {target_crs!r}") from None
            self._srid(crs)

    def _geometry_sql(self, target_crs: str | None, alias: str) -> tuple[str | None, bool]:
        """SQL for a row's GeoJSON geometry, and whether Python must transform instead."""
        g = f"{alias}geom"
        if target_crs is None or not needs_transform(target_crs):
            return f"ST_AsGeoJSON({g}, 15, 0)", False
        crs = normalize_crs(target_crs)
        srid = self._srid(crs)
        if srid is None:
            return None, True
        g = f"ST_Transform({g}, {int(srid)})"
        if _lat_first(crs):
            g = f"ST_FlipCoordinates({g})"
        return f"ST_AsGeoJSON({g}, 15, 0)", False

    def property_sql(self, layer: Layer, name: str, alias: str = "") -> str:
        """The SQL expression of property ``name`` as the items responses carry it.

        Datetimes become RFC 3339 text in UTC and dates ``YYYY-MM-DD``; other fields are
        the quoted column. ``alias`` prefixes the column (``"t."``).

        Parameters
        ----------
        layer : Layer
        name : str
            A field of ``layer`` (:meth:`layers.catalogue.Layer.field` raises otherwise).
        alias : str, default ""
            Table alias with its dot, or empty.
        """
        f = layer.field(name)
        col = f"{alias}{_ident(name)}"
        if f.type == "datetime":
            return f"to_char({col} AT TIME ZONE 'UTC', {_TS_FORMAT})"
        if f.type == "date":
            return f"to_char({col}, 'YYYY-MM-DD')"
        return col

    def _page_sql(
        self,
        layer: Layer,
        q: Query,
        target_crs: str | None,
        where: list[str],
        params: list,
        limit: int | None,
        offset: int,
    ) -> tuple[str, list, list[str], str | None]:
        """The page statement: key, geometry (GeoJSON text or WKB), then the properties.

        Returns the SQL, its parameters, the property names and the geometry mode
        (``'json'``: GeoJSON text from PostGIS, ``'wkb'``: pyproj transforms, None).
        """
        t = self.table(layer)
        names = list(q.properties) if q.properties is not None else [f.name for f in layer.fields]
        cols, mode = [f"r.{_ident(layer.key)}"], None
        if layer.geometry_type and not q.skip_geometry:
            sql, python_geom = self._geometry_sql(target_crs, "r.")
            mode = "wkb" if python_geom else "json"
            cols.append("ST_AsBinary(r.geom)" if python_geom or sql is None else sql)
        cols += [self.property_sql(layer, n, "r.") for n in names]
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        tail, tail_params = "", []
        if limit is not None:
            tail += " LIMIT %s"
            tail_params.append(limit)
        if offset:
            tail += " OFFSET %s"
            tail_params.append(offset)
        if offset:  # deferred join: skipped rows cost an index walk, not their columns
            inner = f"SELECT fid FROM {t}{cond} ORDER BY {self._order(layer, q)}{tail}"
            src = f"{t} r JOIN ({inner}) p ON r.fid = p.fid"
        else:  # columns and geometry are computed for the page's rows only
            src = f"(SELECT * FROM {t}{cond} ORDER BY {self._order(layer, q)}{tail}) r"
        sql = f"SELECT {', '.join(cols)} FROM {src} ORDER BY {self._order(layer, q, 'r.')}"
        return sql, params + tail_params, names, mode

    def _features(
        self,
        conn,
        layer: Layer,
        q: Query,
        target_crs: str | None,
        where: list[str],
        params: list,
        limit: int | None,
        offset: int,
    ) -> list[dict]:
        sql, ps, names, mode = self._page_sql(layer, q, target_crs, where, params, limit, offset)
        rows = conn.execute(sql, ps).fetchall()
        if mode == "json":  # PostGIS wrote the GeoJSON; one parse for the whole page
            geoms = orjson.loads(
                b"[" + b",".join(b"null" if r[1] is None else r[1].encode() for r in rows) + b"]"
            )
        elif mode == "wkb":
            geoms = geometries_to_geojson(
                transform_geometries(shapely.from_wkb([r[1] for r in rows]), target_crs)
            )
        else:
            geoms = [None] * len(rows)
        off = 1 if mode is None else 2
        return [
            {
                "type": "Feature",
                "id": r[0],
                "geometry": g,
                "properties": dict(zip(names, r[off:], strict=True)),
            }
            for r, g in zip(rows, geoms, strict=True)
        ]

    def query(
        self, layer: Layer, q: Query, *, count: bool = True, target_crs: str | None = None
    ) -> Page:
        self.require_layer(layer)
        self._prepare_crs(target_crs)
        where, params = self._where(layer, q)

        def run(conn):
            feats = self._features(conn, layer, q, target_crs, where, params, q.limit, q.offset)
            matched = None
            if count:
                n = len(feats)
                if n < q.limit and (q.offset == 0 or n > 0):
                    matched = q.offset + n
                else:
                    matched = self._count(conn, layer, where, params)
            return Page(feats, matched)

        return self._read(run)

    def _estimate(self, conn, layer: Layer, where: list[str], params: list) -> float:
        t = self.table(layer)
        if not where:
            now = time.monotonic()
            hit = self._rows.get(layer.id)
            if hit is None or now - hit[0] > 30:
                est = conn.execute(
                    "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [t]
                ).fetchone()[0]
                self._rows[layer.id] = hit = (now, float(est))
            return hit[1]  # -1: never analysed, unknown
        plan = conn.execute(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {t} WHERE " + " AND ".join(where), params
        ).fetchone()[0]
        if isinstance(plan, str):
            plan = orjson.loads(plan)
        return float(plan[0]["Plan"]["Plan Rows"])

    def _count(self, conn, layer: Layer, where: list[str], params: list) -> int | None:
        """Exact count when it is cheap, else None (see the module docstring)."""
        bound = self.filtered_count_limit if where else self.count_limit
        if self._estimate(conn, layer, where, params) > bound:
            return None
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        sql = f"SELECT count(*) FROM (SELECT 1 FROM {self.table(layer)}{cond} LIMIT %s) s"
        outer = getattr(self._local, "conn", None) is conn
        try:
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true)",
                    [f"{int(self.count_timeout)}ms"],
                )
                n = conn.execute(sql, params + [bound + 1]).fetchone()[0]
                if outer:  # SET LOCAL would last until the caller's transaction ends
                    conn.execute(
                        "SELECT set_config('statement_timeout', %s, true)",
                        [f"{int(self.statement_timeout * 1000)}ms"],
                    )
        except pgerr.QueryCanceled:
            return None
        return None if n > bound else int(n)

    def get(self, layer: Layer, key: str, *, target_crs: str | None = None) -> dict:
        self.require_layer(layer)
        self._prepare_crs(target_crs)
        q = Query(limit=1)
        feats = self._read(
            lambda c: self._features(
                c, layer, q, target_crs, [f"{_ident(layer.key)} = %s"], [key], 1, 0
            )
        )
        if not feats:
            raise NotFound(f"{layer.id} has no feature {key!r}")
        return feats[0]

    def get_for_update(self, layer: Layer, key: str) -> dict:
        self.require_layer(layer)
        with self.transaction() as conn:  # the caller's: the lock lasts until it ends
            conn.execute(
                f"SELECT 1 FROM {self.table(layer)} WHERE {_ident(layer.key)} = %s FOR UPDATE",
                [key],
            )
        return self.get(layer, key)

    def read_frame(self, layer: Layer, q: Query | None = None) -> gpd.GeoDataFrame:
        self.require_layer(layer)
        q = q or Query(limit=0)
        where, params = self._where(layer, q)
        names = [f.name for f in layer.fields] if q.properties is None else list(q.properties)
        cols = ["ST_AsBinary(geom)"] if layer.geometry_type else []
        cols += [self.property_sql(layer, n, "") for n in names]
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        sql = f"SELECT {', '.join(cols)} FROM {self.table(layer)}{cond} ORDER BY fid"
        rows = self._read(lambda c: c.execute(sql, params).fetchall())
        off = 1 if layer.geometry_type else 0
        geom = shapely.from_wkb([r[0] for r in rows]) if layer.geometry_type else None
        return rows_to_frame(layer, names, [r[off:] for r in rows], geom)

    def extent(self, layer: Layer):
        self.require_layer(layer)
        hit = self._extents.get(layer.id)
        if hit is not None and time.monotonic() - hit[0] < self.extent_ttl:
            return hit[1]
        if not layer.geometry_type and not layer.temporal:
            return None, None
        e = "ST_Extent(geom)" if layer.geometry_type else "NULL::box2d"
        c = _ident(layer.temporal) if layer.temporal else "NULL::timestamptz"
        sql = (
            f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), "
            f"to_char(lo AT TIME ZONE 'UTC', {_TS_FORMAT}), "
            f"to_char(hi AT TIME ZONE 'UTC', {_TS_FORMAT}) FROM "
            f"(SELECT {e} AS e, min({c}) AS lo, max({c}) AS hi FROM {self.table(layer)}) x"
        )
        row = self._read(lambda conn: conn.execute(sql).fetchone())
        bbox = None
        if layer.geometry_type and row[0] is not None:
            bbox = [float(v) for v in row[:4]]
        temporal = [row[4], row[5]] if layer.temporal else None
        result = (bbox, temporal)
        self._extents[layer.id] = (time.monotonic(), result)
        return result

    # writing ------------------------------------------------------------------------------------

    def _check_codes(self, layer: Layer, names: Sequence[str], rows: Iterable[Sequence]) -> None:
        fmap = layer.field_map
        coded = [
            (i, fmap[n], set(fmap[n].code_values or ()))
            for i, n in enumerate(names)
            if fmap[n].codes is not None
        ]
        if not coded:
            return
        for row in rows:
            for i, f, ok in coded:
                v = row[i]
                if v is not None and v not in ok:
                    raise InvalidFeature(
                        f"{layer.id}: " + choices(v, f.code_values, f"{f.name} code")
                    )

    def _check_frame_codes(self, layer: Layer, frame: pd.DataFrame) -> None:
        for f in layer.fields:
            if f.codes is None:
                continue
            s = frame[f.name]
            bad = s.notna() & ~s.isin(f.code_values or ())
            if bad.any():
                v = s[bad].iloc[0]
                raise InvalidFeature(f"{layer.id}: " + choices(v, f.code_values, f"{f.name} code"))


# --- helpers -------------------------------------------------------------------------------------


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _wkb(geom) -> bytes | None:
    """2-D WKB of a shapely geometry (or a GeoJSON mapping); None stays NULL."""
    if geom is None:
        return None
    if isinstance(geom, dict):
        geom = shapely.geometry.shape(geom)
    return shapely.to_wkb(shapely.force_2d(geom))


def ewkb_hex(geoms: np.ndarray) -> list[str | None]:
    """Hex EWKB (SRID 4326, 2-D) for ``COPY``; missing geometries stay None."""
    geoms = shapely.set_srid(shapely.force_2d(geoms), SRID)
    return shapely.to_wkb(geoms, hex=True, include_srid=True, flavor="extended").tolist()
