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

import re

from layers import access
from layers.errors import NotFound
from layers.tiles import MAX_ZOOM, MVT, TMS, TMS_URI, check_tile, render, tile_layer
from tianya import request
from tianya.web import allow, query, respond, settings_of

_TILES = re.compile(r"^/collections/([^/]+)/tiles(?:/([^/]+)(?:/([^/]+)/([^/]+)/([^/]+))?)?/?$")


def handles(path: str) -> bool:
    """Whether ``path`` is a tiles resource."""
    return bool(_TILES.match(path))


def _tileset(base: str, lid: str) -> dict:
    href = f"{base}/collections/{lid}/tiles/{TMS}"
    return {
        "title": f"{lid} ({TMS})",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "minZoom": 0,
        "maxZoom": MAX_ZOOM,
        "layers": [{"id": lid, "dataType": "vector", "geometryDimension": 0}],
        "links": [
            {"rel": "self", "type": "application/json", "href": href},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                "type": "application/json",
                "href": "https://raw.githubusercontent.com/opengeospatial/2D-Tile-Matrix-Set/"
                "master/registry/json/WebMercatorQuad.json",
            },
            {
                "rel": "item",
                "type": MVT,
                "templated": True,
                "href": f"{href}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
            },
        ],
    }


def app(environ, start_response):
    """Answer one tiles request (GET or HEAD)."""
    from tianya.api import store

    path = environ.get("PATH_INFO", "") or "/"
    m = _TILES.match(path)
    if m is None:
        raise NotFound(f"no such resource {path}")
    allow(environ, "GET", "HEAD")
    lid, tms, z, y, x = m.groups()
    # a filter or property here would be silently ignored
    query(environ, ("f",), "query parameter for tiles")
    layer = tile_layer(lid)
    access.require_read(layer, request.principal())
    base = settings_of(environ).url.rstrip("/")
    if tms is None:
        return respond(
            environ,
            start_response,
            {
                "tilesets": [_tileset(base, lid)],
                "links": [
                    {
                        "rel": "self",
                        "type": "application/json",
                        "href": f"{base}/collections/{lid}/tiles",
                    }
                ],
            },
            content_type="application/json",
        )
    if z is None:
        check_tile(tms, 0, 0, 0)
        return respond(
            environ, start_response, _tileset(base, lid), content_type="application/json"
        )
    zi, yi, xi = check_tile(tms, z, y, x)
    tile = render(
        store(environ), layer, zi, yi, xi, access.visible_fields(layer, request.principal())
    )
    cache = ("Cache-Control", "public, max-age=60")
    if not tile.features:
        return respond(environ, start_response, b"", 204, headers=[cache])
    headers = [cache, ("X-Tile-Features", str(tile.features))]
    if tile.truncated:
        headers.append(("X-Tile-Truncated", "true"))
    return respond(environ, start_response, tile.data, content_type=MVT, headers=headers)
