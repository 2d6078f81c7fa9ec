"""Mapbox vector tiles of the point layers, made by PostGIS.

One tile is one statement: the candidates are found through the layer's GiST
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

Only the tile matrix set ``WebMercatorQuad`` (EPSG:3857, zoom 0–:data:`MAX_ZOOM`)
is offered. A tile holds at most :data:`MAX_FEATURES` features (in ``fid``
order); a tile that hits the cap says so in the ``X-Tile-Truncated`` response
header of the HTTP layer (see :func:`render`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def check_tile(tms: str, z: str | int, y: str | int, x: str | int) -> tuple[int, int, int]:
    """Validated ``(z, y, x)`` of a ``WebMercatorQuad`` tile.

    Raises
    ------
    NotFound
        Another tile matrix set, or a row/column outside the matrix.
    InvalidParameter
        Indices that are not integers, or a zoom level outside 0–:data:`MAX_ZOOM`.
    """
    if tms != TMS:
        raise NotFound(f"tile matrix set {tms!r} is not offered; use {TMS}")
    try:
        zi, yi, xi = int(z), int(y), int(x)
    except (TypeError, ValueError):
        raise InvalidParameter(f"tile indices must be integers, got {z}/{y}/{x}") from None
    if not 0 <= zi <= MAX_ZOOM:
        raise InvalidParameter(f"tileMatrix {zi} is outside 0-{MAX_ZOOM}")
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
        A :class:`~layers.postgis.PostGISStore`; other stores raise :class:`NotFound`.
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
    from layers.postgis import PostGISStore

    if not isinstance(store, PostGISStore):
        raise NotFound(
            "vector tiles are served from the PostGIS store only (TIANYA_DATA=postgresql://…)"
        )
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
