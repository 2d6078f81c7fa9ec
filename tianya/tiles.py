"""OGC API Tiles for the point layers: Mapbox vector tiles from PostGIS.

Served by the :class:`~tianya.app.Shell` in front of pygeoapi (pygeoapi's own
MVT provider is not used: see :mod:`layers.tiles`):

``/collections/{id}/tiles``
    The collection's tilesets (one: ``WebMercatorQuad``, vector).
``/collections/{id}/tiles/WebMercatorQuad``
    That tileset's description, with the templated tile link.
``/collections/{id}/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}``
    One tile, ``application/vnd.mapbox-vector-tile``; 204 when it holds no feature.

The caller's role decides, as for items: a sensitive layer needs a role that may
read it, and only the caller's visible fields are in the tiles. On the
GeoPackage store the tile paths answer 404 with a message naming PostGIS.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qs

import orjson

from layers import access
from layers.errors import InvalidParameter, NotFound
from layers.tiles import MAX_ZOOM, MVT, TMS, TMS_URI, check_tile, render, tile_layer
from tianya import request

_TILES = re.compile(r"^/collections/([^/]+)/tiles(?:/([^/]+)(?:/([^/]+)/([^/]+)/([^/]+))?)?/?$")


def handles(path: str) -> bool:
    """Whether ``path`` is a tiles resource."""
    return bool(_TILES.match(path))


def _base(environ) -> str:
    return os.environ.get("TIANYA_URL", "").rstrip("/")


def _tileset(base: str, lid: str) -> dict:
    href = f"{base}/collections/{lid}/tiles/{TMS}"
    return {
        "title": f"{lid} ({TMS})",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "minZoom": 0, "maxZoom": MAX_ZOOM,
        "layers": [{"id": lid, "dataType": "vector", "geometryDimension": 0}],
        "links": [
            {"rel": "self", "type": "application/json", "href": href},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
             "type": "application/json",
             "href": "https://raw.githubusercontent.com/opengeospatial/2D-Tile-Matrix-Set/"
                     "master/registry/json/WebMercatorQuad.json"},
            {"rel": "item", "type": MVT, "templated": True,
             "href": f"{href}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"},
        ],
    }


def _json(start_response, doc: dict):
    body = orjson.dumps(doc)
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    """Answer one tiles request (GET or HEAD)."""
    from tianya.api import MethodNotAllowed, store

    path = environ.get("PATH_INFO", "") or "/"
    m = _TILES.match(path)
    if m is None:
        raise NotFound(f"no such resource {path}")
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"method {method} is not allowed here; allowed: GET, HEAD")
    lid, tms, z, y, x = m.groups()
    for name in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        if name != "f":  # a filter or property here would be silently ignored
            raise InvalidParameter(f"unknown query parameter {name!r} for tiles; valid "
                                   "parameters are: f")
    layer = tile_layer(lid)
    access.require_read(layer, request.principal())
    base = _base(environ)
    if tms is None:
        return _json(start_response, {
            "tilesets": [_tileset(base, lid)],
            "links": [{"rel": "self", "type": "application/json",
                       "href": f"{base}/collections/{lid}/tiles"}]})
    if z is None:
        check_tile(tms, 0, 0, 0)
        return _json(start_response, _tileset(base, lid))
    zi, yi, xi = check_tile(tms, z, y, x)
    tile = render(store(), layer, zi, yi, xi, access.visible_fields(layer, request.principal()))
    headers = [("Content-Type", MVT), ("Content-Length", str(len(tile.data))),
               ("Cache-Control", "public, max-age=60"),
               ("X-Tile-Features", str(tile.features))]
    if tile.truncated:
        headers.append(("X-Tile-Truncated", "true"))
    if not tile.features:
        start_response("204 No Content", [("Cache-Control", "public, max-age=60")])
        return [b""]
    start_response("200 OK", headers)
    return [b"" if method == "HEAD" else tile.data]
