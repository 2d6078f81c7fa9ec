"""The store interface shared by the GeoPackage and PostGIS stores.

A store keeps the catalogue's layers and answers :class:`~layers.query.Query`
requests with :class:`Page` objects of GeoJSON-like features. Both stores pass
the same tests (``tests/test_store.py``); callers pick one with
:func:`layers.stores.open_store` from a path or a ``postgresql://`` URL.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import geopandas as gpd
import numpy as np
import orjson
import pyproj
import shapely

from layers.catalogue import Layer
from layers.query import Query

#: Environment variable naming the store: a GeoPackage path or a PostgreSQL URL.
STORE_ENV = "TIANYA_DATA"
DEFAULT_GPKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "geodata", "tianya.gpkg")


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
        out = {"type": "FeatureCollection", "features": self.features,
               "numberReturned": self.number_returned}
        if self.number_matched is not None:
            out["numberMatched"] = self.number_matched
        return out


class Store(abc.ABC):
    """A place the layers live. All writes are transactional: all or nothing."""

    url: str

    @abc.abstractmethod
    def query(self, layer: Layer, q: Query, *, count: bool = True,
              target_crs: str | None = None) -> Page:
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
    def insert(self, layer: Layer, features: Sequence[dict]) -> list[str]:
        """Add features (``{'geometry': shapely, 'properties': {...}}``); returns their keys."""

    @abc.abstractmethod
    def replace(self, layer: Layer, key: str, feature: dict) -> None:
        """Replace a feature's geometry and every property."""

    @abc.abstractmethod
    def update(self, layer: Layer, key: str, properties: dict,
               geometry: shapely.Geometry | None = None) -> None:
        """Change some properties (and optionally the geometry) of one feature."""

    @abc.abstractmethod
    def delete(self, layer: Layer, key: str) -> None:
        """Remove one feature; :class:`~layers.errors.NotFound` if absent."""

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
        """Release connections."""

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


@lru_cache(maxsize=64)
def transformer(target_crs: str, source_crs: str = "OGC:CRS84") -> pyproj.Transformer:
    """A cached transformer from storage CRS to ``target_crs`` in the target's axis order."""
    return pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(source_crs),
                                       pyproj.CRS.from_user_input(target_crs), always_xy=False)


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
    if not needs_transform(target_crs) or len(geoms) == 0:
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


def make_features(layer: Layer, keys: Sequence, geometries: list, rows: Sequence[Sequence],
                  names: Sequence[str]) -> list[dict]:
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
