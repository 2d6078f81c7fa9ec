"""OGC API Tiles and Styles: the base map and the point layers' vector tiles, from either store.

Served by the :class:`~tianya.app.Shell` in front of pygeoapi (pygeoapi's own MVT
provider is not used: see :mod:`layers.tiles`).

The base map (:mod:`layers.basemap`), public:

``/tiles``
    The dataset's tilesets (one: the base map in ``WebMercatorQuad``, vector).
``/tiles/WebMercatorQuad``
    That tileset: its zoom levels, its layers (with their attributes and zoom ranges)
    and the templated tile link.
``/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}``
    One tile, ``application/vnd.mapbox-vector-tile`` (zoom 0–18); 204 when it holds no
    feature.
``/styles``
    The styles of the base map: ``basemap`` (light) and ``basemap-dark``.
``/styles/{styleId}``
    A Mapbox GL / MapLibre style, ``application/vnd.mapbox.style+json`` (``f=mapbox``,
    the default; ``f=json`` the same document as ``application/json``).

The point layers' tiles:

``/collections/{id}/tiles``
    The collection's tilesets (one: ``WebMercatorQuad``, vector).
``/collections/{id}/tiles/WebMercatorQuad``
    That tileset's description, with the templated tile link.
``/collections/{id}/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}``
    One tile; 204 when it holds no feature. The caller's role decides, as for items:
    a sensitive layer needs a role that may read it, and only the caller's visible
    fields are in the tiles.

Every tiles answer is ``GET`` or ``HEAD``; an unknown query parameter or ``f`` is a 400,
another tile matrix set or a row/column outside the matrix a 404, a zoom level outside
the set's a 400. Tiles carry ``Cache-Control`` and an ``ETag`` (a hash of the bytes; a
matching ``If-None-Match`` is a 304) and ``X-Tile-Features`` (``X-Tile-Truncated`` when
a layer hit the feature cap).
"""

from __future__ import annotations

import hashlib
import re

from layers import access, basemap
from layers.district import BOUNDS
from layers.errors import InvalidParameter, NotFound, choices
from layers.tiles import MAX_ZOOM, MVT, TMS, TMS_URI, Tile, check_tile, render, tile_layer
from tianya import request
from tianya.web import allow, query, respond, settings_of

_TILES = re.compile(r"^/collections/([^/]+)/tiles(?:/([^/]+)(?:/([^/]+)/([^/]+)/([^/]+))?)?/?$")
_BASE_TILES = re.compile(r"^/tiles(?:/([^/]+)(?:/([^/]+)/([^/]+)/([^/]+))?)?/?$")
_STYLES = re.compile(r"^/styles(?:/([^/]+))?/?$")
#: Media type of a Mapbox GL / MapLibre style.
STYLE_TYPE = "application/vnd.mapbox.style+json"
#: How long clients and proxies may keep a tile or a style, seconds.
MAX_AGE = 60
_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
_TILESETS_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
_STYLESHEET = "stylesheet"


def handles(path: str) -> bool:
    """Whether ``path`` is a tiles or styles resource (any path under ``/tiles`` and
    ``/styles``: one that is not a resource is a 404 of ours, not pygeoapi's)."""
    return (
        bool(_TILES.match(path))
        or path.rstrip("/") in ("/tiles", "/styles")
        or (path.startswith(("/tiles/", "/styles/")))
    )


def _fmt(environ, allowed: tuple[str, ...]) -> str:
    """The request's ``f`` (the first of ``allowed`` when absent); 400 for another one or
    for any other query parameter."""
    f = query(environ, ("f",), "query parameter for tiles").get("f", allowed[0])
    if f not in allowed:
        raise InvalidParameter(choices(f, allowed, "f"))
    return f


def _tile_answer(environ, start_response, tile: Tile):
    """A tile with its caching headers (204 when it is empty, 304 when the client has it)."""
    cache = ("Cache-Control", f"public, max-age={MAX_AGE}")
    if not tile.features:
        return respond(environ, start_response, b"", 204, headers=[cache])
    etag = '"' + hashlib.blake2b(tile.data, digest_size=12).hexdigest() + '"'
    headers = [cache, ("ETag", etag), ("X-Tile-Features", str(tile.features))]
    if tile.truncated:
        headers.append(("X-Tile-Truncated", "true"))
    if etag in [t.strip() for t in environ.get("HTTP_IF_NONE_MATCH", "").split(",")]:
        return respond(environ, start_response, b"", 304, headers=headers)
    return respond(environ, start_response, tile.data, content_type=MVT, headers=headers)


def _links_tms(base: str, href: str) -> list[dict]:
    """A tileset's links: itself, its tile matrix set as this server serves it (OGC API Tiles
    /req/tileset/description: the definition, offline too) and the templated tile."""
    return [
        {"rel": "self", "type": "application/json", "href": href},
        {
            "rel": _TILING_SCHEME,
            "type": "application/json",
            "href": f"{base}/TileMatrixSets/{TMS}?f=json",
        },
        {
            "rel": "item",
            "type": MVT,
            "templated": True,
            "href": f"{href}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
        },
    ]


# --- the base map --------------------------------------------------------------------------------

_GEOMETRY_DIMENSION = {"point": 0, "line": 1, "polygon": 2}
_PROPERTY_TYPES = {"rank": "integer", "floors": "integer"}


def _basemap_tileset(base: str) -> dict:
    href = f"{base}/tiles/{TMS}"
    w, s, e, n = BOUNDS
    return {
        "title": "Tianya base map",
        "description": "District boundary, coast and sea, communities and villages, grid "
        "cells, rivers, buildings and their names, from the server's own data.",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "minZoom": 0,
        "maxZoom": basemap.MAX_ZOOM,
        "boundingBox": {
            "lowerLeft": [w, s],
            "upperRight": [e, n],
            "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        },
        "attribution": basemap.ATTRIBUTION,
        "layers": [
            {
                "id": s.id,
                "dataType": "vector",
                "geometryDimension": _GEOMETRY_DIMENSION[s.geometry],
                "minTileMatrix": str(s.minzoom),
                "maxTileMatrix": str(s.maxzoom),
                "propertiesSchema": {
                    "type": "object",
                    "properties": {f: {"type": _PROPERTY_TYPES.get(f, "string")} for f in s.fields},
                },
            }
            for s in basemap.SOURCE_LAYERS.values()
        ],
        "links": [
            *_links_tms(base, href),
            *(
                {
                    "rel": _STYLESHEET,
                    "type": STYLE_TYPE,
                    "title": sid,
                    "href": f"{base}/styles/{sid}",
                }
                for sid in basemap.STYLE_IDS.values()
            ),
        ],
    }


def _styles_list(base: str) -> dict:
    return {
        "styles": [
            {
                "id": sid,
                "title": f"Tianya base map ({theme})",
                "links": [
                    {
                        "rel": _STYLESHEET,
                        "type": STYLE_TYPE,
                        "title": f"Mapbox style ({theme})",
                        "href": f"{base}/styles/{sid}?f=mapbox",
                    },
                ],
            }
            for theme, sid in basemap.STYLE_IDS.items()
        ],
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/styles"},
            {"rel": _TILESETS_REL, "type": "application/json", "href": f"{base}/tiles"},
        ],
    }


def _basemap_app(environ, start_response, base: str, m: re.Match):
    from tianya.api import store

    tms, z, y, x = m.groups()
    if tms is None:
        _fmt(environ, ("json",))
        return respond(
            environ,
            start_response,
            {
                "tilesets": [_basemap_tileset(base)],
                "links": [
                    {"rel": "self", "type": "application/json", "href": f"{base}/tiles"},
                    {"rel": "styles", "type": "application/json", "href": f"{base}/styles"},
                ],
            },
        )
    if z is None:
        _fmt(environ, ("json",))
        check_tile(tms, 0, 0, 0)
        return respond(environ, start_response, _basemap_tileset(base))
    _fmt(environ, ("mvt",))
    zi, yi, xi = check_tile(tms, z, y, x, basemap.MAX_ZOOM)
    return _tile_answer(environ, start_response, basemap.render(store(environ), zi, yi, xi))


def _styles_app(environ, start_response, base: str, sid: str | None):
    if sid is None:
        _fmt(environ, ("json",))
        return respond(environ, start_response, _styles_list(base))
    themes = {v: k for k, v in basemap.STYLE_IDS.items()}
    if sid not in themes:
        raise NotFound(choices(sid, tuple(themes), "style"))
    f = _fmt(environ, ("mapbox", "json"))
    return respond(
        environ,
        start_response,
        basemap.style(base, themes[sid]),
        content_type=STYLE_TYPE if f == "mapbox" else "application/json",
        headers=[("Cache-Control", f"public, max-age={MAX_AGE}")],
    )


# --- the point layers ----------------------------------------------------------------------------


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
        "links": _links_tms(base, href),
    }


def app(environ, start_response):
    """Answer one tiles or styles request (GET or HEAD)."""
    from tianya.api import store

    path = environ.get("PATH_INFO", "") or "/"
    base = settings_of(environ).url.rstrip("/")
    m = _BASE_TILES.match(path)
    if m is not None:
        allow(environ, "GET", "HEAD")
        return _basemap_app(environ, start_response, base, m)
    m = _STYLES.match(path)
    if m is not None:
        allow(environ, "GET", "HEAD")
        return _styles_app(environ, start_response, base, m.group(1))
    m = _TILES.match(path)
    if m is None:
        raise NotFound(
            f"no such resource {path}: tiles are /tiles/{TMS}/{{tileMatrix}}/{{tileRow}}/"
            "{tileCol}, styles /styles/{styleId}"
        )
    allow(environ, "GET", "HEAD")
    lid, tms, z, y, x = m.groups()
    # a filter or property here would be silently ignored
    layer = tile_layer(lid)
    access.require_read(layer, request.principal())
    if tms is None:
        _fmt(environ, ("json",))
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
        _fmt(environ, ("json",))
        check_tile(tms, 0, 0, 0)
        return respond(
            environ, start_response, _tileset(base, lid), content_type="application/json"
        )
    _fmt(environ, ("mvt",))
    zi, yi, xi = check_tile(tms, z, y, x)
    tile = render(
        store(environ), layer, zi, yi, xi, access.visible_fields(layer, request.principal())
    )
    return _tile_answer(environ, start_response, tile)
