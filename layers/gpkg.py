"""The embedded GeoPackage store, on stdlib ``sqlite3`` and shapely.

It writes a valid GeoPackage 1.3 (GDAL and QGIS open it) with an R-tree spatial
index per layer kept current by the standard triggers; the ``ST_*`` functions
those triggers call are registered on every connection, so no SpatiaLite is
needed. Connections are per thread, in WAL mode, so readers never block the one
writer and a killed process leaves every committed transaction intact.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import geopandas as gpd
import numpy as np
import shapely

from layers.catalogue import GEOMETRY_TYPES, Layer
from layers.errors import InvalidFeature, NotFound, StoreUnavailable, TianyaError
from layers.query import Dialect, Query, accenti, casefold
from layers.store import (
    Page,
    Store,
    column_definitions,
    frame_columns,
    geometries_to_geojson,
    make_features,
    rows_to_frame,
    transform_geometries,
)

SRS_ID = 4326
_SQL_TYPES = {
    "string": "TEXT",
    "integer": "INTEGER",
    "number": "REAL",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "datetime": "DATETIME",
}
_GPKG_GEOM = {
    "Point": "POINT",
    "LineString": "LINESTRING",
    "MultiLineString": "MULTILINESTRING",
    "Polygon": "POLYGON",
    "MultiPolygon": "MULTIPOLYGON",
    "Geometry": "GEOMETRY",
}
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


# --- GeoPackage geometry blobs ---------------------------------------------------------------


def encode(geoms: np.ndarray) -> list[bytes | None]:
    """Shapely geometries to GeoPackage blobs (little-endian, XY envelope except for points)."""
    wkbs = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
    bounds = shapely.bounds(geoms)
    types = shapely.get_type_id(geoms)
    out: list[bytes | None] = []
    for wkb, b, t in zip(wkbs, bounds, types, strict=True):
        if wkb is None:
            out.append(None)
        elif t == 0:
            out.append(b"GP\x00\x01" + struct.pack("<i", SRS_ID) + wkb)
        elif np.isnan(b[0]):  # empty: no envelope, empty flag set
            out.append(b"GP\x00\x11" + struct.pack("<i", SRS_ID) + wkb)
        else:
            env = struct.pack("<4d", b[0], b[2], b[1], b[3])
            out.append(b"GP\x00\x03" + struct.pack("<i", SRS_ID) + env + wkb)
    return out


def wkb_of(blob: bytes) -> bytes:
    """The WKB inside a GeoPackage blob."""
    return blob[8 + _ENVELOPE_BYTES[(blob[3] >> 1) & 7] :]


def decode(blobs: Sequence[bytes | None]) -> np.ndarray:
    """GeoPackage blobs to an array of shapely geometries (``None`` stays missing)."""
    return shapely.from_wkb([None if b is None else wkb_of(b) for b in blobs])


@lru_cache(maxsize=4096)
def _bounds(blob: bytes) -> tuple[float, float, float, float] | None:
    flags = blob[3]
    if flags & 0x10:
        return None
    if (flags >> 1) & 7:
        fmt = "<4d" if flags & 1 else ">4d"
        minx, maxx, miny, maxy = struct.unpack_from(fmt, blob, 8)
        return minx, miny, maxx, maxy
    wkb = wkb_of(blob)
    if wkb[0] == 1 and struct.unpack_from("<I", wkb, 1)[0] == 1:  # little-endian point
        x, y = struct.unpack_from("<2d", wkb, 5)
        return x, y, x, y
    b = shapely.from_wkb(wkb).bounds
    return None if np.isnan(b[0]) else b


def _st(i):
    def fn(blob):
        if blob is None:
            return None
        b = _bounds(bytes(blob))
        return None if b is None else b[i]

    return fn


def _st_isempty(blob):
    if blob is None:
        return 1
    return 1 if _bounds(bytes(blob)) is None else 0


@lru_cache(maxsize=64)
def _prepared(wkb: bytes):
    g = shapely.from_wkb(wkb)
    shapely.prepare(g)
    return g


def _predicate(op):
    fn = getattr(shapely, op)

    def call(blob, wkb):
        if blob is None:
            return 0
        return int(bool(fn(shapely.from_wkb(wkb_of(bytes(blob))), _prepared(bytes(wkb)))))

    return call


def _intersects_box(blob, minx, miny, maxx, maxy):
    """Exact bbox test; the R-tree only pre-filters (it stores float32 bounds)."""
    if blob is None:
        return 0
    blob = bytes(blob)
    wkb = wkb_of(blob)
    if wkb[0] == 1 and struct.unpack_from("<I", wkb, 1)[0] == 1:  # little-endian point
        x, y = struct.unpack_from("<2d", wkb, 5)
        return int(minx <= x <= maxx and miny <= y <= maxy)
    g = shapely.from_wkb(wkb)
    return int(shapely.intersects(g, shapely.box(minx, miny, maxx, maxy)))


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (so a finished thread's one is freed)."""


class SQLiteDialect(Dialect):
    """Spatial predicates as registered shapely functions behind an R-tree pre-filter."""

    def __init__(self, table: str):
        self.table = table

    def geometry_literal(self, geom):
        return "?", [shapely.to_wkb(geom)]

    def casefold(self, sql):
        return f"casefold({sql})"  # SQLite's lower() folds ASCII only

    def accenti(self, sql):
        return f"accenti({sql})"

    def spatial(self, op, column, geom):
        sql = f"ST_{op.capitalize()}({column}, ?)"
        params = [shapely.to_wkb(geom)]
        if op != "disjoint":  # every other predicate implies the envelopes intersect
            minx, miny, maxx, maxy = geom.bounds
            sql = (
                f'(fid IN (SELECT id FROM "rtree_{self.table}_geom" WHERE minx <= ? AND '
                f"maxx >= ? AND miny <= ? AND maxy >= ?) AND {sql})"
            )
            params = [maxx, minx, maxy, miny] + params
        return sql, params


# --- The store ---------------------------------------------------------------------------------


class GeoPackageStore(Store):
    """Layers in one GeoPackage file.

    Parameters
    ----------
    path : str
        The ``.gpkg`` file; created on first write if missing.
    """

    def __init__(self, path: str):
        self.url = self.path = os.path.abspath(path)
        self._local = threading.local()
        self._cons: weakref.WeakSet = weakref.WeakSet()  # every live thread's, for close()
        self._cons_lock = threading.Lock()
        self._generation = 0  # bumped by close(): threads then reconnect

    # connections ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(
                self.path,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
                factory=_Connection,
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open GeoPackage {self.path}: {exc}") from None
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA cache_size=-65536")
        con.execute("PRAGMA case_sensitive_like=ON")  # CQL2 LIKE is case-sensitive
        for i, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
            con.create_function(name, 1, _st(i), deterministic=True)
        con.create_function("ST_IsEmpty", 1, _st_isempty, deterministic=True)
        con.create_function("casefold", 1, casefold, deterministic=True)  # CQL2 CASEI
        con.create_function("accenti", 1, accenti, deterministic=True)  # CQL2 ACCENTI
        for op in (
            "intersects",
            "disjoint",
            "contains",
            "within",
            "touches",
            "crosses",
            "overlaps",
            "equals",
        ):
            con.create_function(f"ST_{op.capitalize()}", 2, _predicate(op), deterministic=True)
        con.create_function("ST_IntersectsBox", 5, _intersects_box, deterministic=True)
        return con

    @property
    def con(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again after :meth:`close`)."""
        con = getattr(self._local, "con", None)
        if con is None or self._local.generation != self._generation:
            con = self._connect()
            with self._cons_lock:
                self._cons.add(con)
                self._local.con, self._local.generation = con, self._generation
        return con

    def close(self) -> None:
        """Close every thread's connection (idempotent; the next use opens a new one)."""
        with self._cons_lock:
            cons, self._cons = list(self._cons), weakref.WeakSet()
            self._generation += 1
        for con in cons:
            con.close()
        self._local.con = None

    # dialect hooks (see :class:`~layers.store.Store`) -----------------------------------------

    def _table(self, layer: Layer) -> str:
        return f'"{layer.id}"'

    def _location(self) -> str:
        return f"the GeoPackage {self.path}"

    def _dialect(self, layer: Layer) -> Dialect:
        return SQLiteDialect(layer.id)

    def _bbox_sql(self, layer, bbox):
        minx, miny, maxx, maxy = bbox
        # the R-tree's float32 envelopes only pre-filter: check the geometry itself
        return (
            [
                f'fid IN (SELECT id FROM "rtree_{layer.id}_geom" WHERE minx <= ? AND '
                "maxx >= ? AND miny <= ? AND maxy >= ?)",
                "ST_IntersectsBox(geom, ?, ?, ?, ?)",
            ],
            [maxx, minx, maxy, miny, minx, miny, maxx, maxy],
        )

    def _geometry_value(self, layer: Layer, geom) -> bytes | None:
        """A write's geometry as a blob, refusing a type the layer does not hold."""
        if geom is None:
            return None
        if geom.geom_type != layer.geometry_type and not (
            layer.geometry_type == "Geometry" and geom.geom_type in GEOMETRY_TYPES
        ):
            raise InvalidFeature(
                f"{layer.id} holds {layer.geometry_type} geometries, got {geom.geom_type}"
            )
        return encode(np.array([geom]))[0]

    def _write_rows(self, layer: Layer, sql: str, rows) -> int:
        n = 0
        with self.transaction() as con:
            for row in rows:
                try:
                    n += con.execute(sql, row).rowcount
                except sqlite3.IntegrityError as exc:
                    raise _integrity(layer, exc) from None
        return n

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        con = self.con
        if con.in_transaction:  # nested: the outer transaction decides
            yield con
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # schema -------------------------------------------------------------------------------------

    def _init_gpkg(self, con: sqlite3.Connection) -> None:
        con.execute("PRAGMA application_id=1196444487")  # 'GPKG'
        con.execute("PRAGMA user_version=10300")
        ddl = """
        CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
          srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
          organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
        CREATE TABLE IF NOT EXISTS gpkg_contents (
          table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
          description TEXT DEFAULT '',
          last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
          min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
          CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
        CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
          table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
          srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
          CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
          CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
          CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
        CREATE TABLE IF NOT EXISTS gpkg_extensions (
          table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL,
          definition TEXT NOT NULL, scope TEXT NOT NULL,
          CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))
        """
        for stmt in ddl.split(";"):  # executescript would commit the open transaction
            con.execute(stmt)
        wgs84 = (
            'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,'
            'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,'
            'AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG",'
            '"9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
        )
        con.executemany(
            "INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)",
            [
                ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian"),
                ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic"),
                ("WGS 84 geodetic", 4326, "EPSG", 4326, wgs84, "longitude/latitude WGS 84"),
            ],
        )

    def _ddl(self, layer: Layer) -> list[str]:
        t = layer.id
        cols = ["fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"]
        if layer.geometry_type:
            cols.append(f"geom {_GPKG_GEOM[layer.geometry_type]}")
        cols += column_definitions(layer, _SQL_TYPES)
        stmts = [f'CREATE TABLE "{t}" ({", ".join(cols)})']
        for f in layer.fields:
            if f.indexed and f.name != layer.key:
                stmts.append(f'CREATE INDEX "idx_{t}_{f.name}" ON "{t}" ("{f.name}")')
        return stmts

    def _rtree_triggers(self, t: str) -> list[str]:
        r = f'"rtree_{t}_geom"'
        ins = (
            f"INSERT OR REPLACE INTO {r} VALUES (NEW.fid, ST_MinX(NEW.geom), "
            "ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom));"
        )
        return [
            f'CREATE TRIGGER "rtree_{t}_geom_insert" AFTER INSERT ON "{t}" WHEN (new.geom NOT '
            f"NULL AND NOT ST_IsEmpty(NEW.geom)) BEGIN {ins} END",
            f'CREATE TRIGGER "rtree_{t}_geom_update1" AFTER UPDATE OF geom ON "{t}" WHEN '
            "OLD.fid = NEW.fid AND (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom)) BEGIN "
            f"{ins} END",
            f'CREATE TRIGGER "rtree_{t}_geom_update2" AFTER UPDATE OF geom ON "{t}" WHEN '
            "OLD.fid = NEW.fid AND (NEW.geom ISNULL OR ST_IsEmpty(NEW.geom)) BEGIN DELETE FROM "
            f"{r} WHERE id = OLD.fid; END",
            f'CREATE TRIGGER "rtree_{t}_geom_update3" AFTER UPDATE ON "{t}" WHEN OLD.fid != '
            "NEW.fid AND (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom)) BEGIN DELETE FROM "
            f"{r} WHERE id = OLD.fid; {ins} END",
            f'CREATE TRIGGER "rtree_{t}_geom_update4" AFTER UPDATE ON "{t}" WHEN OLD.fid != '
            "NEW.fid AND (NEW.geom ISNULL OR ST_IsEmpty(NEW.geom)) BEGIN DELETE FROM "
            f"{r} WHERE id IN (OLD.fid, NEW.fid); END",
            f'CREATE TRIGGER "rtree_{t}_geom_delete" AFTER DELETE ON "{t}" WHEN old.geom NOT '
            f"NULL BEGIN DELETE FROM {r} WHERE id = OLD.fid; END",
        ]

    def has_layer(self, layer: Layer) -> bool:
        if not os.path.exists(self.path):
            return False
        row = self.con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (layer.id,)
        ).fetchone()
        return row is not None

    def write_frame(self, layer: Layer, frame: gpd.GeoDataFrame) -> int:
        t = layer.id
        names = [f.name for f in layer.fields]
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise InvalidFeature(f"frame for {t!r} lacks columns: {', '.join(missing)}")
        columns = frame_columns(layer, frame)
        rows = [list(r) for r in zip(*columns, strict=True)] if columns else []
        with self.transaction() as con:
            self._init_gpkg(con)
            self._drop(con, t)
            for stmt in self._ddl(layer):
                con.execute(stmt)
            if layer.geometry_type:
                frame = frame.to_crs(4326) if frame.crs is not None else frame
                blobs = encode(np.asarray(frame.geometry.values))
                cols = ", ".join(["geom"] + [f'"{n}"' for n in names])
                marks = ", ".join("?" * (len(names) + 1))
                con.executemany(
                    f'INSERT INTO "{t}" ({cols}) VALUES ({marks})',
                    ([b, *r] for b, r in zip(blobs, rows, strict=True)),
                )
                con.execute(
                    f'CREATE VIRTUAL TABLE "rtree_{t}_geom" USING rtree(id, minx, maxx, miny, maxy)'
                )
                fids = [r[0] for r in con.execute(f'SELECT fid FROM "{t}" ORDER BY fid')]
                b = shapely.bounds(np.asarray(frame.geometry.values))
                ok = ~np.isnan(b[:, 0])
                con.executemany(
                    f'INSERT INTO "rtree_{t}_geom" VALUES (?,?,?,?,?)',
                    (
                        (fid, x0, x1, y0, y1)
                        for fid, (x0, y0, x1, y1), k in zip(fids, b.tolist(), ok, strict=True)
                        if k
                    ),
                )
                for stmt in self._rtree_triggers(t):
                    con.execute(stmt)
                env = [float(v) for v in frame.total_bounds] if len(frame) else [None] * 4
                con.execute(
                    "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
                    "min_x, min_y, max_x, max_y, srs_id) VALUES (?, 'features', ?, ?, ?,?,?,?, ?)",
                    (t, layer.en, layer.description_en, *env, SRS_ID),
                )
                con.execute(
                    "INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)",
                    (t, _GPKG_GEOM[layer.geometry_type], SRS_ID),
                )
                con.execute(
                    "INSERT INTO gpkg_extensions VALUES (?, 'geom', 'gpkg_rtree_index', "
                    "'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')",
                    (t,),
                )
            else:
                cols = ", ".join(f'"{n}"' for n in names)
                con.executemany(
                    f'INSERT INTO "{t}" ({cols}) VALUES ({", ".join("?" * len(names))})', rows
                )
                con.execute(
                    "INSERT INTO gpkg_contents (table_name, data_type, identifier, "
                    "description) VALUES (?, 'attributes', ?, ?)",
                    (t, layer.en, layer.description_en),
                )
        return len(rows)

    def _drop(self, con, t: str) -> None:
        if con.execute("SELECT 1 FROM sqlite_master WHERE name='gpkg_contents'").fetchone():
            con.execute("DELETE FROM gpkg_contents WHERE table_name=?", (t,))
            con.execute("DELETE FROM gpkg_geometry_columns WHERE table_name=?", (t,))
            con.execute("DELETE FROM gpkg_extensions WHERE table_name=?", (t,))
        con.execute(f'DROP TABLE IF EXISTS "rtree_{t}_geom"')
        con.execute(f'DROP TABLE IF EXISTS "{t}"')

    # reading ------------------------------------------------------------------------------------

    def _where(self, layer: Layer, q: Query) -> tuple[str, list]:
        parts, params = self._where_parts(layer, q)
        return (" WHERE " + " AND ".join(parts)) if parts else "", params

    def _select(self, layer: Layer, q: Query) -> tuple[list[str], str]:
        names = q.properties if q.properties is not None else [f.name for f in layer.fields]
        cols = ['"' + layer.key + '"']
        if layer.geometry_type and not q.skip_geometry:
            cols.append("geom")
        cols += [f'"{n}"' for n in names]
        return list(names), ", ".join(cols)

    def _rows_to_features(self, layer: Layer, q: Query, rows, names, target_crs):
        keys = [r[0] for r in rows]
        if layer.geometry_type and not q.skip_geometry:
            geoms = decode([r[1] for r in rows])
            geoms = transform_geometries(geoms, target_crs)
            gj = geometries_to_geojson(geoms)
            props = [r[2:] for r in rows]
        else:
            gj = [None] * len(rows)
            props = [r[1:] for r in rows]
        return make_features(layer, keys, gj, props, names)

    def query(
        self, layer: Layer, q: Query, *, count: bool = True, target_crs: str | None = None
    ) -> Page:
        self.require_layer(layer)
        where, params = self._where(layer, q)
        names, cols = self._select(layer, q)
        order = ", ".join(f'"{n}" {"ASC" if asc else "DESC"}' for n, asc in q.sortby)
        order = f"{order}, fid" if order else "fid"
        sql = f'SELECT {cols} FROM "{layer.id}"{where} ORDER BY {order} LIMIT ? OFFSET ?'
        con = self.con
        rows = con.execute(sql, params + [q.limit, q.offset]).fetchall()
        matched = None
        if count:
            if q.offset == 0 and len(rows) < q.limit:
                matched = len(rows)
            else:
                matched = con.execute(
                    f'SELECT count(*) FROM "{layer.id}"{where}', params
                ).fetchone()[0]
        return Page(self._rows_to_features(layer, q, rows, names, target_crs), matched)

    def get(self, layer: Layer, key: str, *, target_crs: str | None = None) -> dict:
        self.require_layer(layer)
        q = Query(limit=1)
        names, cols = self._select(layer, q)
        rows = self.con.execute(
            f'SELECT {cols} FROM "{layer.id}" WHERE "{layer.key}" = ?', (key,)
        ).fetchall()
        if not rows:
            raise NotFound(f"{layer.id} has no feature {key!r}")
        return self._rows_to_features(layer, q, rows, names, target_crs)[0]

    def read_frame(self, layer: Layer, q: Query | None = None) -> gpd.GeoDataFrame:
        self.require_layer(layer)
        q = q or Query(limit=0)
        where, params = self._where(layer, q)
        names = [f.name for f in layer.fields] if q.properties is None else list(q.properties)
        cols = ", ".join((["geom"] if layer.geometry_type else []) + [f'"{n}"' for n in names])
        rows = self.con.execute(
            f'SELECT {cols} FROM "{layer.id}"{where} ORDER BY fid', params
        ).fetchall()
        off = 1 if layer.geometry_type else 0
        geom = decode([r[0] for r in rows]) if layer.geometry_type else None
        return rows_to_frame(layer, names, [r[off:] for r in rows], geom)

    def extent(self, layer: Layer):
        self.require_layer(layer)
        bbox = None
        if layer.geometry_type:
            r = self.con.execute(
                f'SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "rtree_{layer.id}_geom"'
            ).fetchone()
            bbox = None if r[0] is None else list(r)
        temporal = None
        if layer.temporal:
            c = f'"{layer.temporal}"'
            temporal = list(
                self.con.execute(f'SELECT min({c}), max({c}) FROM "{layer.id}"').fetchone()
            )
        return bbox, temporal


def _integrity(layer: Layer, exc: sqlite3.IntegrityError) -> TianyaError:
    msg = str(exc)
    if "UNIQUE" in msg:
        from layers.errors import Conflict

        return Conflict(f"{layer.id} already has a feature with this {layer.key}")
    return InvalidFeature(f"{layer.id}: {msg}")
