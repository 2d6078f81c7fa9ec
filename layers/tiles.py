"""Mapbox vector tiles of the point layers, from PostGIS or the GeoPackage.

On PostGIS one tile is one statement: the candidates are found through the layer's GiST
index with the tile's envelope transformed to the storage CRS (a Web Mercator
tile is a longitude/latitude rectangle, so the transformed envelope is exact),
projected with ``ST_AsMVTGeom`` and encoded with ``ST_AsMVT``. ``z``/``x``/``y``
and the feature cap are bound parameters, never formatted into the SQL; property
columns come from the catalogue (datetimes and dates as the same text the items
responses carry).

Why not pygeoapi's ``MVT-postgresql`` provider: it needs a second provider per
collection with a PostgreSQL-only ``data`` (our ``server_config.yml`` is the same
for both stores), it reads every column of the table (the incidents' personal
fields would reach anonymous map clients) and it does not share our pool, our
schema option or our error handling.

On the GeoPackage the candidates come from the layer's R-tree and the tile is made in
Python with the same steps (:func:`tile_geometries`: projected to tile units, simplified,
clipped to the tile and its buffer, snapped to the tile grid) and encoded with
``mapbox-vector-tile`` (:func:`encode`): the same layer, attributes and feature ids.
The base map (:mod:`layers.basemap`) uses the same helpers.

Only the tile matrix set ``WebMercatorQuad`` (EPSG:3857, zoom 0–:data:`MAX_ZOOM`)
is offered. A tile holds at most :data:`MAX_FEATURES` features (in ``fid``
order); a tile that hits the cap says so in the ``X-Tile-Truncated`` response
header of the HTTP layer (see :func:`render`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from layers.catalogue import LAYERS, Layer
from layers.errors import InvalidParameter, NotFound
from layers.store import Store, quote

TMS = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
MVT = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = 22
#: Tile extent in tile coordinates and the buffer around it (MVT conventions).
EXTENT, BUFFER = 4096, 64
#: Most features one tile carries.
MAX_FEATURES = 50_000


def point_layers() -> list[Layer]:
    """The catalogue layers served as vector tiles (the point layers)."""
    return [lay for lay in LAYERS.values() if lay.geometry_type == "Point"]


def tile_layer(layer_id: str) -> Layer:
    """The point layer ``layer_id``; :class:`NotFound` for other collections."""
    lay = LAYERS.get(layer_id)
    if lay is None or lay.geometry_type != "Point":
        raise NotFound(
            f"collection {layer_id!r} has no vector tiles (only the point layers: "
            f"{', '.join(p.id for p in point_layers())})"
        )
    return lay


def check_tile(
    tms: str, z: str | int, y: str | int, x: str | int, max_zoom: int = MAX_ZOOM
) -> tuple[int, int, int]:
    """Validated ``(z, y, x)`` of a ``WebMercatorQuad`` tile.

    Raises
    ------
    NotFound
        Another tile matrix set, or a row/column outside the matrix.
    InvalidParameter
        Indices that are not integers, or a zoom level outside 0–``max_zoom``.
    """
    if tms != TMS:
        raise NotFound(f"tile matrix set {tms!r} is not offered; use {TMS}")
    try:
        zi, yi, xi = int(z), int(y), int(x)
    except (TypeError, ValueError):
        raise InvalidParameter(f"tile indices must be integers, got {z}/{y}/{x}") from None
    if not 0 <= zi <= max_zoom:
        raise InvalidParameter(f"tileMatrix {zi} is outside 0-{max_zoom}")
    n = 1 << zi
    if not (0 <= xi < n and 0 <= yi < n):
        raise NotFound(f"tile {zi}/{yi}/{xi} is outside the tile matrix (0-{n - 1})")
    return zi, yi, xi


@dataclass
class Tile:
    """An encoded tile: the MVT bytes and how many features they hold."""

    data: bytes
    features: int
    truncated: bool


def render(store: Store, layer: Layer, z: int, y: int, x: int, fields: Sequence[str]) -> Tile:
    """The MVT tile ``z/y/x`` (``WebMercatorQuad``) of ``layer`` with properties ``fields``.

    Parameters
    ----------
    store : Store
        A :class:`~layers.postgis.PostGISStore` (one statement) or a
        :class:`~layers.gpkg.GeoPackageStore` (R-tree, encoded in Python).
    layer : Layer
        A point layer (:func:`tile_layer`).
    z, y, x : int
        Tile matrix, row and column (:func:`check_tile`).
    fields : sequence of str
        Property names to carry (the caller's visible fields); the MVT layer is
        named after the collection and each feature's id is its ``fid``, the key
        is the ``id`` property.

    Returns
    -------
    Tile
    """
    from layers.gpkg import GeoPackageStore
    from layers.postgis import PostGISStore

    if isinstance(store, GeoPackageStore):
        return _render_gpkg(store, layer, z, y, x, fields)
    if not isinstance(store, PostGISStore):
        raise NotFound(f"vector tiles are not made from a {type(store).__name__}")
    store.require_layer(layer)
    t = store.table(layer)
    props = [
        f"{store.property_sql(layer, n, 't.')} AS {quote(n)}" for n in fields if n != layer.key
    ]
    cols = ", ".join([f"t.{quote(layer.key)} AS id", *props])
    sql = (
        "WITH env AS (SELECT ST_TileEnvelope(%s, %s, %s) AS e), "
        "cand AS ("
        f" SELECT t.fid, {cols}, ST_AsMVTGeom(ST_Transform(t.geom, 3857), env.e, %s, %s, true)"
        "   AS mvtgeom"
        f" FROM {t} t, env"
        "  WHERE t.geom && ST_Transform(env.e, 4326)"
        "  ORDER BY t.fid LIMIT %s) "
        f"SELECT ST_AsMVT(cand.*, %s, %s, 'mvtgeom', 'fid'), count(*) "
        "FROM cand WHERE mvtgeom IS NOT NULL"
    )
    params = [z, x, y, EXTENT, BUFFER, MAX_FEATURES + 1, layer.id, EXTENT]
    data, n = store.fetch_one(sql, params) or (None, 0)
    truncated = n > MAX_FEATURES
    if truncated:  # re-run at the cap: the extra row only told us there were more
        params[5] = MAX_FEATURES
        data, n = store.fetch_one(sql, params) or (None, 0)
    return Tile(bytes(data or b""), int(n), truncated)


def _render_gpkg(store, layer: Layer, z: int, y: int, x: int, fields: Sequence[str]) -> Tile:
    """:func:`render` on the GeoPackage: R-tree candidates, encoded in Python."""
    store.require_layer(layer)
    names = [n for n in fields if n != layer.key]
    # candidates in the tile itself, not its buffer (as the PostGIS statement's envelope)
    rows = gpkg_candidates(
        store, layer, [layer.key, *names], tile_lonlat_bounds(z, x, y), MAX_FEATURES + 1
    )
    truncated = len(rows) > MAX_FEATURES
    rows = rows[:MAX_FEATURES]
    geoms = tile_geometries(decode_blobs([r[1] for r in rows]), z, x, y, "point", BUFFER)
    conv = [_value_of(layer.field(n).type) for n in names]
    feats = []
    for r, g in zip(rows, geoms, strict=True):
        if g is None:
            continue
        props = {"id": r[2]}
        props.update((n, c(v)) for n, c, v in zip(names, conv, r[3:], strict=True))
        feats.append({"id": r[0], "geometry": g, "properties": props})
    return Tile(encode([(layer.id, feats)]), len(feats), truncated)


def _value_of(kind: str):
    """The converter of a stored GeoPackage value to the value a tile carries (as PostGIS)."""
    if kind == "boolean":
        return lambda v: None if v is None else bool(v)
    return lambda v: v


# --- Shared by the Python tiles (GeoPackage, base map) -------------------------------------------

#: Half the Web Mercator world's width, metres.
ORIGIN = math.pi * 6378137.0


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The tile's envelope in EPSG:3857 (as PostGIS's ``ST_TileEnvelope``).

    >>> tile_bounds(0, 0, 0) == (-ORIGIN, -ORIGIN, ORIGIN, ORIGIN)
    True
    """
    size = 2 * ORIGIN / (1 << z)
    minx, maxy = -ORIGIN + x * size, ORIGIN - y * size
    return minx, maxy - size, minx + size, maxy


def _lat(ym: float) -> float:
    return math.degrees(2 * math.atan(math.exp(ym / 6378137.0)) - math.pi / 2)


def tile_lonlat_bounds(z: int, x: int, y: int, buffer: float = 0) -> tuple[float, ...]:
    """West, south, east, north (degrees) of the tile grown by ``buffer`` tile units.

    >>> [round(v, 4) for v in tile_lonlat_bounds(1, 1, 0)]
    [0.0, 0.0, 180.0, 85.0511]
    """
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    pad = (maxx - minx) * buffer / EXTENT
    w, e = (max(-ORIGIN, minx - pad), min(ORIGIN, maxx + pad))
    s, n = (max(-ORIGIN, miny - pad), min(ORIGIN, maxy + pad))
    return math.degrees(w / 6378137.0), _lat(s), math.degrees(e / 6378137.0), _lat(n)


def _projector(z: int, x: int, y: int):
    """Longitude/latitude arrays → tile units (x right, y down), as ``ST_AsMVTGeom`` maps."""
    minx, _, maxx, maxy = tile_bounds(z, x, y)
    scale = EXTENT / (maxx - minx)

    def fn(c: np.ndarray) -> np.ndarray:
        lat = np.clip(np.radians(c[:, 1]), -1.4844222297453324, 1.4844222297453324)
        xm = 6378137.0 * np.radians(c[:, 0])
        ym = 6378137.0 * np.log(np.tan(np.pi / 4 + lat / 2))
        return np.column_stack(((xm - minx) * scale, (maxy - ym) * scale))

    return fn


_DIM = {"point": 0, "line": 1, "polygon": 2}


def _of_dimension(g, dim: int):
    """The parts of ``g`` of dimension ``dim`` (a clip or a snap can leave lower ones)."""
    if g is None or g.is_empty:
        return None
    if shapely.get_dimensions(g) == dim and g.geom_type != "GeometryCollection":
        return g
    parts = [p for p in shapely.get_parts(g) if shapely.get_dimensions(p) == dim]
    parts = [q for p in parts for q in shapely.get_parts(p)]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return (shapely.MultiPoint, shapely.MultiLineString, shapely.MultiPolygon)[dim](parts)


def tile_geometries(
    geoms: np.ndarray, z: int, x: int, y: int, kind: str, buffer: int = BUFFER
) -> list:
    """Geometries (EPSG:4326) as a tile carries them: tile units, ``None`` where none is left.

    Projected to the tile's units (:data:`EXTENT` across, y down), lines and polygons
    simplified with a tolerance of one unit (topology preserving), clipped to the tile
    grown by ``buffer`` units and snapped to whole units (polygons stay valid); parts of
    another dimension than ``kind`` ('point', 'line' or 'polygon') are dropped — the steps
    of PostGIS's ``ST_AsMVTGeom``.
    """
    if len(geoms) == 0:
        return []
    g = shapely.transform(np.asarray(geoms, dtype=object), _projector(z, x, y))
    lo, hi = -buffer, EXTENT + buffer
    if kind == "point":
        xy = np.column_stack((shapely.get_x(g), shapely.get_y(g)))  # NaN for no point
        with np.errstate(invalid="ignore"):
            inside = (xy[:, 0] >= lo) & (xy[:, 0] <= hi) & (xy[:, 1] >= lo) & (xy[:, 1] <= hi)
        pts = np.asarray(shapely.points(np.where(np.isnan(xy), 0, np.rint(xy))), dtype=object)
        return [p if ok else None for p, ok in zip(pts, inside, strict=True)]
    g = shapely.simplify(g, 1.0, preserve_topology=True)
    g = shapely.clip_by_rect(g, lo, lo, hi, hi)
    # snapped vertex by vertex (fast); the few polygons that leaves invalid (a clip's
    # slivers, collapsed rings) are snapped again by GEOS's topology-keeping reducer
    snapped = shapely.set_precision(g, 1.0, mode="pointwise")
    if kind == "polygon":
        bad = ~shapely.is_valid(snapped) & ~shapely.is_missing(snapped)
        if bad.any():
            snapped[bad] = shapely.set_precision(g[bad], 1.0)
        # exterior rings clockwise on screen (y down), as the MVT specification asks
        snapped = shapely.orient_polygons(snapped, exterior_cw=False)
    dim = _DIM[kind]
    return [_of_dimension(p, dim) for p in snapped]


def encode(layers: Iterable[tuple[str, list[dict]]]) -> bytes:
    """A tile of ``(name, features)`` layers; an empty layer is left out.

    The features' geometries are those of :func:`tile_geometries` (tile units, y down,
    valid, polygons already oriented: the encoder's own per-feature check is skipped).
    """
    from mapbox_vector_tile import encode as mvt_encode  # type: ignore[import-untyped]

    todo = [{"name": n, "features": f} for n, f in layers if f]
    if not todo:
        return b""
    options = {"y_coord_down": True, "extents": EXTENT, "check_winding_order": False}
    return mvt_encode(todo, default_options=options)


def decode_blobs(blobs: Sequence[bytes | None]) -> np.ndarray:
    """Shapely geometries of GeoPackage geometry blobs."""
    from layers.gpkg import decode

    return decode(list(blobs))


def gpkg_candidates(store, layer: Layer, columns: Sequence[str], bbox, limit: int) -> list:
    """``(fid, geom blob, *columns)`` rows of ``layer`` whose R-tree box meets ``bbox``
    (west, south, east, north), in ``fid`` order, at most ``limit``."""
    w, s, e, n = bbox
    cols = "".join(f", {quote(c)}" for c in columns)
    t = layer.id
    sql = (
        f"SELECT fid, geom{cols} FROM {quote(t)} WHERE fid IN (SELECT id FROM "
        f"{quote(f'rtree_{t}_geom')} WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)"
        " ORDER BY fid LIMIT ?"
    )
    return store.con.execute(sql, (e, w, n, s, limit)).fetchall()
