"""The store interface shared by the GeoPackage and PostGIS stores.

A store keeps the catalogue's layers and answers :class:`~layers.query.Query`
requests with :class:`Page` objects of GeoJSON-like features. Both stores pass
the same tests; callers pick one with :func:`layers.stores.open_store` from a path
or a ``postgresql://`` URL, and may use it as a context manager (closed on exit)::

    with open_store(url) as store:
        page = store.query(layer, Query(limit=10))

What the base holds
    The SQL both engines share: the WHERE skeleton (bbox, interval, equality,
    CQL2), ``update``, ``replace``, ``insert`` and ``delete``, written once with
    small dialect hooks (:attr:`Store.param`, :meth:`Store._bbox_sql`,
    :attr:`Store.datetime_param`, :meth:`Store._geometry_value`,
    :meth:`Store._write_rows`…); each store keeps only its engine-specific SQL.

Stored values (one rule for both stores)
    :func:`stored_values` (one feature's properties) and :func:`frame_columns` (a
    whole frame) convert every value written, and :func:`rows_to_frame` every row
    read into a frame:

    * ``datetime``: stored as UTC text with milliseconds and ``Z``
      (:func:`~layers.query.format_datetime`). An aware value is converted to UTC; a
      **naive value is taken as UTC** (as :func:`~layers.query.parse_datetime` and
      the frame writers always did — the HTTP edge refuses naive input before it
      gets here, :func:`layers.cases.check_properties`). Text must be RFC 3339 within
      :data:`~layers.query.DATE_MIN` .. :data:`~layers.query.DATE_MAX`; anything
      else (``'now'``, ``'yesterday'``…) is :class:`~layers.errors.InvalidFeature`.
      Read back as aware UTC ``Timestamp`` columns.
    * ``date``: ``YYYY-MM-DD`` (a datetime gives its own calendar day); text must be
      an ISO date in range.
    * ``boolean``: ``bool`` (SQLite keeps 0/1, read back as booleans).
    * missing values (``None``, ``NaN``, ``NaT``) are NULL.
"""

from __future__ import annotations

import abc
import datetime as dt
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyproj
import shapely

from layers.catalogue import Field, Layer
from layers.errors import InvalidFeature, NotFound
from layers.query import Dialect, Query, check_date, compile_where, format_datetime, parse_datetime

#: The embedded sample GeoPackage: the store when none is named.
DEFAULT_GPKG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "geodata", "tianya.gpkg"
)


@dataclass
class Page:
    """One page of query results.

    Attributes
    ----------
    features : list of dict
        GeoJSON features (``id``, ``geometry``, ``properties``).
    number_matched : int or None
        Features matching the query in all; ``None`` where it was not counted.
    """

    features: list[dict]
    number_matched: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def number_returned(self) -> int:
        return len(self.features)

    def to_geojson(self) -> dict:
        out = {
            "type": "FeatureCollection",
            "features": self.features,
            "numberReturned": self.number_returned,
        }
        if self.number_matched is not None:
            out["numberMatched"] = self.number_matched
        return out


class Store(abc.ABC):
    """A place the layers live. All writes are transactional: all or nothing."""

    url: str

    @abc.abstractmethod
    def query(
        self, layer: Layer, q: Query, *, count: bool = True, target_crs: str | None = None
    ) -> Page:
        """Features of ``layer`` matching ``q`` (coordinates in ``target_crs``, default CRS84)."""

    @abc.abstractmethod
    def get(self, layer: Layer, key: str, *, target_crs: str | None = None) -> dict:
        """One feature by its key; :class:`~layers.errors.NotFound` if absent."""

    @abc.abstractmethod
    def read_frame(self, layer: Layer, q: Query | None = None) -> gpd.GeoDataFrame:
        """All features matching ``q`` (no paging) as a GeoDataFrame in EPSG:4326."""

    @abc.abstractmethod
    def write_frame(self, layer: Layer, frame: gpd.GeoDataFrame) -> int:
        """Create (or recreate) ``layer`` holding exactly ``frame``; returns the row count."""

    @abc.abstractmethod
    def extent(self, layer: Layer) -> tuple[list[float] | None, list[str | None] | None]:
        """Spatial extent (CRS84) and temporal extent (ISO strings) of the layer's data."""

    @abc.abstractmethod
    def has_layer(self, layer: Layer) -> bool:
        """Whether the layer's table exists."""

    @abc.abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[object]:
        """A write transaction; everything inside commits together or not at all."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; safe to call more than once."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # Dialect hooks: what each engine spells its own way. ---------------------------------------

    #: How the engine writes a statement parameter.
    param = "?"
    #: A parameter holding :func:`~layers.query.format_datetime` text, for comparisons.
    datetime_param = "?"
    #: A parameter holding a geometry as :meth:`_geometry_value` gives it.
    geometry_param = "?"

    @abc.abstractmethod
    def _table(self, layer: Layer) -> str:
        """The layer's quoted (qualified) table name."""

    @abc.abstractmethod
    def _location(self) -> str:
        """Where the layers are, for messages ("the GeoPackage /x.gpkg")."""

    @abc.abstractmethod
    def _dialect(self, layer: Layer) -> Dialect:
        """The CQL2 dialect for filters on ``layer``."""

    @abc.abstractmethod
    def _bbox_sql(self, layer: Layer, bbox: Sequence[float]) -> tuple[list[str], list]:
        """Conditions (and their parameters) for features intersecting ``bbox`` (CRS84)."""

    @abc.abstractmethod
    def _geometry_value(self, layer: Layer, geom) -> object:
        """A written geometry as the parameter :attr:`geometry_param` expects."""

    @abc.abstractmethod
    def _write_rows(self, layer: Layer, sql: str, rows: Sequence[Sequence]) -> int:
        """Run ``sql`` once per row in one write; the rows changed in all.

        Translates the engine's constraint errors: a repeated key is
        :class:`~layers.errors.Conflict`, any other :class:`InvalidFeature`.
        """

    def _check_values(  # noqa: B027 - an optional hook
        self,
        layer: Layer,
        names: Sequence[str],
        values: Sequence,
    ) -> None:
        """Refuse values the engine would not (say, a code outside its list) before writing."""

    # Shared SQL. -------------------------------------------------------------------------------

    def require_layer(self, layer: Layer) -> None:
        """Raise :class:`~layers.errors.NotFound` if ``layer`` is not in the store.

        The message names the collection and where the store looked
        ("collection 'x' is not in the GeoPackage /data/x.gpkg").
        """
        if not self.has_layer(layer):
            raise NotFound(f"collection {layer.id!r} is not in {self._location()}")

    def _where_parts(self, layer: Layer, q: Query) -> tuple[list[str], list]:
        """The conditions of ``q`` (ANDed) and their parameters."""
        parts: list[str] = []
        params: list = []
        if q.bbox is not None and layer.geometry_type:
            minx, miny, maxx, maxy = q.bbox
            if minx > maxx:  # across the antimeridian (Features §7.15.3): the box either side
                west, wps = self._bbox_sql(layer, (minx, miny, 180.0, maxy))
                east, eps = self._bbox_sql(layer, (-180.0, miny, maxx, maxy))
                parts.append(f"(({' AND '.join(west)}) OR ({' AND '.join(east)}))")
                params += wps + eps
            else:
                conds, ps = self._bbox_sql(layer, q.bbox)
                parts += conds
                params += ps
        if q.interval is not None and layer.temporal:
            col = quote(layer.temporal)
            for op, bound in zip((">=", "<="), q.interval, strict=True):
                if bound is not None:
                    parts.append(f"{col} {op} {self.datetime_param}")
                    params.append(format_datetime(bound))
        for name, value in q.equals.items():
            layer.field(name)  # refuses unknown names
            parts.append(f"{quote(name)} = {self.param}")
            params.append(value)
        if q.where is not None:
            sql, ps = compile_where(q.where, layer, self._dialect(layer))
            parts.append(sql)
            params += ps
        return parts, params

    def insert(self, layer: Layer, features: Sequence[dict]) -> list[str]:
        """Add features (``{'geometry': shapely, 'properties': {...}}``); returns their keys."""
        self.require_layer(layer)
        names = [f.name for f in layer.fields]
        cols = (["geom"] if layer.geometry_type else []) + [quote(n) for n in names]
        marks = ([self.geometry_param] if layer.geometry_type else []) + [self.param] * len(names)
        rows: list[list] = []
        keys: list = []
        for feat in features:
            props = feat.get("properties") or {}
            row = stored_values(layer, props)
            self._check_values(layer, names, row)
            if layer.geometry_type:
                row = [self._geometry_value(layer, feat.get("geometry")), *row]
            rows.append(row)
            keys.append(props.get(layer.key))
        self._write_rows(
            layer,
            f"INSERT INTO {self._table(layer)} ({', '.join(cols)}) VALUES ({', '.join(marks)})",
            rows,
        )
        return keys

    def replace(self, layer: Layer, key: str, feature: dict) -> None:
        """Replace a feature's geometry and every property."""
        props = dict(feature.get("properties") or {})
        props[layer.key] = key
        full = {f.name: props.get(f.name) for f in layer.fields}
        self.update(layer, key, full, feature.get("geometry"))

    def update(
        self, layer: Layer, key: str, properties: dict, geometry: shapely.Geometry | None = None
    ) -> None:
        """Change some properties (and optionally the geometry) of one feature."""
        self.require_layer(layer)
        names = list(properties)
        for name in names:
            layer.field(name)  # refuses unknown names
        params = stored_values(layer, properties, only=names)
        self._check_values(layer, names, params)
        sets = [f"{quote(n)} = {self.param}" for n in names]
        if geometry is not None and layer.geometry_type:
            sets.append(f"geom = {self.geometry_param}")
            params.append(self._geometry_value(layer, geometry))
        if not sets:
            return
        sql = (
            f"UPDATE {self._table(layer)} SET {', '.join(sets)} WHERE "
            f"{quote(layer.key)} = {self.param}"
        )
        if self._write_rows(layer, sql, [params + [key]]) == 0:
            raise NotFound(f"{layer.id} has no feature {key!r}")

    def delete(self, layer: Layer, key: str) -> None:
        """Remove one feature; :class:`~layers.errors.NotFound` if absent."""
        self.require_layer(layer)
        sql = f"DELETE FROM {self._table(layer)} WHERE {quote(layer.key)} = {self.param}"
        if self._write_rows(layer, sql, [[key]]) == 0:
            raise NotFound(f"{layer.id} has no feature {key!r}")

    # Defaults built on the interface above; a store may override them. ----------------------

    def ensure_layer(self, layer: Layer) -> None:
        """Create ``layer`` empty if it does not exist yet (safe against concurrent callers).

        Used for tables outside the published catalogue, such as the case history.
        """
        if self.has_layer(layer):
            return
        with self.transaction():
            if not self.has_layer(layer):  # re-checked under the write lock
                self.write_frame(layer, empty_frame(layer))

    def get_for_update(self, layer: Layer, key: str) -> dict:
        """:meth:`get` inside a write transaction, with the row locked until it ends.

        The default suits a store whose write transactions are exclusive (the
        GeoPackage's ``BEGIN IMMEDIATE``); a server store locks the row
        (``SELECT … FOR UPDATE``), so concurrent writers of it take turns.
        """
        return self.get(layer, key)


# --- Helpers both stores use ----------------------------------------------------------------


def quote(name: str) -> str:
    """A quoted SQL identifier.

    >>> quote('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def column_definitions(layer: Layer, sql_types: Mapping[str, str]) -> list[str]:
    """``CREATE TABLE`` column definitions of ``layer``'s fields (types by field type).

    The key is ``NOT NULL UNIQUE`` and a coded field ``CHECK``-s its code list.
    """
    out = []
    for f in layer.fields:
        c = f"{quote(f.name)} {sql_types[f.type]}"
        if f.name == layer.key:
            c += " NOT NULL UNIQUE"
        if f.codes is not None:
            codes = ", ".join("'" + v.replace("'", "''") + "'" for v in f.code_values or ())
            c += f" CHECK ({quote(f.name)} IN ({codes}))"
        out.append(c)
    return out


def stored_value(f: Field, v):
    """One value in stored form (see the module docstring for the rule).

    Examples
    --------
    >>> from layers.catalogue import Field
    >>> when = Field("t", "datetime", "时间", "Time")
    >>> utc8 = dt.timezone(dt.timedelta(hours=8))
    >>> stored_value(when, dt.datetime(2026, 11, 16, 16, 0, tzinfo=utc8))
    '2026-11-16T08:00:00.000Z'
    >>> stored_value(when, "2026-11-16T08:00:00")  # naive: taken as UTC
    '2026-11-16T08:00:00.000Z'
    >>> stored_value(Field("d", "date", "日期", "Day"), dt.datetime(2026, 11, 16, 23, 0))
    '2026-11-16'
    """
    if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
        return None
    if f.type == "boolean":
        return bool(v)
    if f.type not in ("datetime", "date"):
        return v
    try:
        if f.type == "date":
            if isinstance(v, str):
                return check_date(
                    dt.date.fromisoformat(v), f"property {f.name!r}", InvalidFeature
                ).isoformat()
            return v.isoformat()[:10]
        if isinstance(v, str):
            return format_datetime(parse_datetime(v))
        if not isinstance(v, dt.datetime):  # a date: its midnight, UTC
            v = dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
        return format_datetime(check_date(v, f"property {f.name!r}", InvalidFeature))
    except InvalidFeature:
        raise
    except (ValueError, TypeError, AttributeError, OverflowError):
        kind = "an RFC 3339 date-time" if f.type == "datetime" else "an ISO date (YYYY-MM-DD)"
        raise InvalidFeature(f"property {f.name!r} must be {kind}, got {v!r}"[:200]) from None


def stored_values(layer: Layer, props: Mapping, only: Sequence[str] | None = None) -> list:
    """Property values in stored form, in field order (or ``only``'s order)."""
    fmap = layer.field_map
    return [stored_value(fmap[n], props.get(n)) for n in (only or [f.name for f in layer.fields])]


def frame_columns(layer: Layer, frame: pd.DataFrame) -> list[list]:
    """``frame``'s field columns in stored form (vectorised :func:`stored_value`)."""
    return [_column(f, frame[f.name]) for f in layer.fields]


def _column(f: Field, s: pd.Series) -> list:
    missing = s.isna().to_numpy()
    if f.type in ("datetime", "date") and pd.api.types.is_datetime64_any_dtype(s):
        if s.dt.tz is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        a = s.to_numpy()
        if f.type == "datetime":
            out = np.char.add(np.datetime_as_string(a.astype("datetime64[ms]"), unit="ms"), "Z")
        else:
            out = np.datetime_as_string(a.astype("datetime64[D]"), unit="D")
        out = out.astype(object)
    elif f.type in ("datetime", "date", "boolean"):
        out = np.array(
            [None if m else stored_value(f, v) for v, m in zip(s.tolist(), missing, strict=True)],
            object,
        )
    elif f.type == "integer":
        out = np.array(
            [None if m else int(v) for v, m in zip(s.tolist(), missing, strict=True)], object
        )
    elif f.type == "number":
        out = s.astype("float64").to_numpy().astype(object)
    else:
        out = s.astype(object).to_numpy(copy=True)
    out[missing] = None
    return out.tolist()


def rows_to_frame(
    layer: Layer, names: Sequence[str], rows: Sequence[Sequence], geometries: np.ndarray | None
) -> gpd.GeoDataFrame:
    """A frame of stored rows (``names`` columns): datetimes aware UTC, booleans nullable."""
    df = pd.DataFrame(rows, columns=list(names))
    for n in names:
        f = layer.field_map[n]
        if f.type == "datetime":
            df[n] = pd.to_datetime(df[n], utc=True, format="ISO8601")
        elif f.type == "boolean":
            df[n] = df[n].astype("boolean")
    if layer.geometry_type:
        return gpd.GeoDataFrame(df, geometry=geometries, crs=4326)
    return gpd.GeoDataFrame(df, geometry=None, crs=None)


@lru_cache(maxsize=64)
def transformer(target_crs: str, source_crs: str = "OGC:CRS84") -> pyproj.Transformer:
    """A cached transformer from storage CRS to ``target_crs`` in the target's axis order."""
    return pyproj.Transformer.from_crs(
        pyproj.CRS.from_user_input(source_crs),
        pyproj.CRS.from_user_input(target_crs),
        always_xy=False,
    )


def needs_transform(target_crs: str | None) -> bool:
    return target_crs is not None and normalize_crs(target_crs) != "OGC:CRS84"


def normalize_crs(uri: str) -> str:
    """``http://www.opengis.net/def/crs/EPSG/0/4326`` → ``EPSG:4326``; CRS84 → ``OGC:CRS84``."""
    u = uri.strip()
    if u.endswith("/CRS84") or u.upper() in ("CRS84", "OGC:CRS84"):
        return "OGC:CRS84"
    if "/def/crs/EPSG/" in u:
        return "EPSG:" + u.rstrip("/").rsplit("/", 1)[-1]
    return u


def transform_geometries(geoms: np.ndarray, target_crs: str | None) -> np.ndarray:
    """Geometries (CRS84) reprojected to ``target_crs`` (axis order of that CRS)."""
    if target_crs is None or not needs_transform(target_crs) or len(geoms) == 0:
        return geoms
    t = transformer(normalize_crs(target_crs))

    def fn(coords):
        x, y = t.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, fn)


def geometries_to_geojson(geoms: np.ndarray) -> list[dict | None]:
    """GeoJSON geometry objects for an array of shapely geometries (vectorised)."""
    out: list[dict | None] = [None] * len(geoms)
    if len(geoms) == 0:
        return out
    types = shapely.get_type_id(geoms)
    is_point = (types == 0) & ~shapely.is_empty(geoms)
    if is_point.any():
        xy = shapely.get_coordinates(geoms[is_point]).tolist()
        for i, c in zip(np.flatnonzero(is_point).tolist(), xy, strict=True):
            out[i] = {"type": "Point", "coordinates": c}
    rest = np.flatnonzero(~is_point & (types >= 0))
    if len(rest):
        texts = shapely.to_geojson(geoms[rest])
        for i, t in zip(rest.tolist(), texts.tolist(), strict=True):
            out[i] = orjson.loads(t) if t is not None else None
    return out


def make_features(
    layer: Layer, keys: Sequence, geometries: list, rows: Sequence[Sequence], names: Sequence[str]
) -> list[dict]:
    """GeoJSON features from parallel key / geometry / row sequences."""
    bools = [i for i, n in enumerate(names) if layer.field_map[n].type == "boolean"]
    feats = []
    for key, geom, row in zip(keys, geometries, rows, strict=True):
        props = dict(zip(names, row, strict=True))
        for i in bools:
            v = row[i]
            if v is not None:
                props[names[i]] = bool(v)
        feats.append({"type": "Feature", "id": key, "geometry": geom, "properties": props})
    return feats


def empty_frame(layer: Layer) -> gpd.GeoDataFrame:
    """A frame with ``layer``'s columns and no rows."""
    import pandas as pd

    cols = {f.name: pd.Series([], dtype=object) for f in layer.fields}
    if layer.geometry_type:
        return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    return gpd.GeoDataFrame(pd.DataFrame(cols))
