"""OGC API - Tiles 1.0 (OGC 20-057): the classes we declare, requirement by requirement.

Our tiles are served by the shell (:mod:`tianya.tiles`): the base map at ``/tiles`` (the
dataset's tilesets) and the point layers at ``/collections/{id}/tiles``, both vector tiles
(Mapbox Vector Tiles) in ``WebMercatorQuad``; pygeoapi serves ``/TileMatrixSets``.
Requirements from the standard's requirement texts and abstract test suite
(opengeospatial/ogcapi-tiles ``core/standard/requirements/`` and ``abstract_tests/``).
Tiles are checked against an independent computation: the tile holding a feature's point
by the Web Mercator formulas, and the point's place in the tile's 4096-unit grid.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import mapbox_vector_tile
import pytest

_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"

#: Conformance classes tested here -> every requirement of each (OGC 20-057, OGC API -
#: Tiles - Part 1: Core 1.0), one test or more per requirement.
CONFORMANCE = {
    _TILES + "core": (
        "/req/core/conformance-success",
        "/req/core/tc-op",
        "/req/core/tc-tilematrix-definition",
        "/req/core/tc-tilerow-definition",
        "/req/core/tc-tilecol-definition",
        "/req/core/tc-success",
        "/req/core/tc-error",
    ),
    _TILES + "tileset": (
        "/req/tileset/conformance-success",
        "/req/tileset/description",
    ),
    _TILES + "tilesets-list": ("/req/tilesets-list/tileset-links",),
    _TILES + "dataset-tilesets": (
        "/req/dataset-tilesets/conformance-success",
        "/req/dataset-tilesets/landingpage",
        "/req/dataset-tilesets/operation",
    ),
    _TILES + "geodata-tilesets": (
        "/req/geodata-tilesets/conformance-success",
        "/req/geodata-tilesets/desc-links",
        "/req/geodata-tilesets/operation",
    ),
    _TILES + "mvt": ("/req/mvt/content",),
}

pytestmark = pytest.mark.both_stores

MVT = "application/vnd.mapbox-vector-tile"
TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
#: The point layers anyone may read, and the zoom of the tiles fetched.
LAYERS = ("incidents", "party_building", "flood_prevention", "urban_fixtures")
Z = 14


def _path(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _link(doc: dict, rel: str) -> dict:
    found = [lk for lk in doc["links"] if lk.get("rel") == rel]
    assert found, f"no {rel} link in {[lk.get('rel') for lk in doc['links']]}"
    return found[0]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, float, float]:
    """(row, col, x, y): the WebMercatorQuad tile holding a point, and the point's place in
    it in MVT units (4096 a side, origin at the top left).

    >>> tile_of(0.0, 0.0, 1)[:2]
    (1, 1)
    """
    n = 2**z
    fx = (lon + 180.0) / 360.0 * n
    lat_r = math.radians(lat)
    fy = (1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n
    col, row = int(fx), int(fy)
    return row, col, (fx - col) * 4096, (fy - row) * 4096


@pytest.fixture
def point(live_server):
    """One incident: its id and (lon, lat), from the items API."""
    r = live_server.get("/collections/incidents/items?f=json&limit=1")
    assert r.status_code == 200
    feature = r.json()["features"][0]
    return feature["id"], tuple(feature["geometry"]["coordinates"][:2])


@pytest.fixture
def tileset(live_server):
    r = live_server.get("/collections/incidents/tiles/WebMercatorQuad")
    assert r.status_code == 200
    return r.json()


def _tile_url(tileset: dict, z: int, row: int, col: int) -> str:
    template = _link(tileset, "item")["href"]
    return _path(
        template.replace("{tileMatrix}", str(z))
        .replace("{tileRow}", str(row))
        .replace("{tileCol}", str(col))
    )


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def _conforms(live_server) -> set[str]:
    return set(live_server.get("/conformance?f=json").json()["conformsTo"])


# --- core -----------------------------------------------------------------------------------


def test_req_core_conformance_success(live_server):
    declared = _conforms(live_server)
    assert _TILES + "core" in declared
    from test_conformance_oas30_tiles import CONFORMANCE as OAS30  # Tiles' OpenAPI class

    ours = {uri for uri in declared if uri.startswith(_TILES)}
    expected = set(CONFORMANCE) | set(OAS30)
    assert ours == expected, "a Tiles class declared without its tests, or not declared"


def test_req_core_tc_op(live_server, tileset, point):
    """The tile URL comes from the tileset's template; its three variables are the tile
    matrix, row and column of WebMercatorQuad (the point's tile, computed here)."""
    _, (lon, lat) = point
    row, col, _, _ = tile_of(lon, lat, Z)
    r = live_server.get(_tile_url(tileset, Z, row, col))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == MVT


def _tile_operation(live_server) -> list[dict]:
    """The parameters of the OpenAPI document's tile operations (``$ref`` resolved)."""
    r = live_server.get("/openapi?f=json", headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text[:300]
    doc = r.json()

    def resolve(node):
        while "$ref" in node:
            target = doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    operations = [
        [resolve(p) for p in item["get"].get("parameters", [])]
        for path, item in doc["paths"].items()
        if path.endswith("/{tileMatrix}/{tileRow}/{tileCol}") and "get" in item
    ]
    assert len(operations) >= 2, "the base map's and the collections' tile operations"
    return operations


def _check_parameter(live_server, name: str, kind: str) -> None:
    for params in _tile_operation(live_server):
        found = [p for p in params if p["name"] == name]
        assert found, f"{name} missing"
        p = found[0]
        assert p["in"] == "path" and p["required"] is True
        assert p["schema"]["type"] == kind


def test_req_core_tc_tilematrix_definition(live_server):
    _check_parameter(live_server, "tileMatrix", "string")


def test_req_core_tc_tilerow_definition(live_server):
    _check_parameter(live_server, "tileRow", "integer")


def test_req_core_tc_tilecol_definition(live_server):
    _check_parameter(live_server, "tileCol", "integer")


def test_req_core_tc_success(live_server, tileset, point):
    """200 in the requested format, holding the elements within the tile (and only them,
    up to the tile's buffer)."""
    fid, (lon, lat) = point
    row, col, _, _ = tile_of(lon, lat, Z)
    r = live_server.get(_tile_url(tileset, Z, row, col))
    assert r.status_code == 200 and r.headers["Content-Type"] == MVT
    layer = _decode(r.content)["incidents"]
    assert layer["features"]
    extent = layer["extent"]
    for f in layer["features"]:
        x, y = f["geometry"]["coordinates"]
        assert -64 <= x <= extent + 64 and -64 <= y <= extent + 64
    assert fid in {f["properties"].get("id") for f in layer["features"]}


def test_req_core_tc_error(live_server, tileset):
    """Out of the tile matrix set: 404 or 400; an empty tile inside it: 204 (or 200)."""
    for z, row, col in ((Z, 2**Z, 0), (Z, 0, 2**Z), (23, 0, 0), (Z, -1, 0)):
        assert live_server.get(_tile_url(tileset, z, row, col)).status_code in (400, 404)
    bad_tms = "/collections/incidents/tiles/WorldCRS84Quad/0/0/0"
    assert live_server.get(bad_tms).status_code == 404
    empty = live_server.get(_tile_url(tileset, Z, 0, 0))  # the Arctic: no incident
    assert empty.status_code in (200, 204)
    if empty.status_code == 204:
        assert empty.content == b""


# --- tileset --------------------------------------------------------------------------------


def test_req_tileset_conformance_success(live_server):
    assert _TILES + "tileset" in _conforms(live_server)


@pytest.mark.parametrize(
    "path", ["/tiles/WebMercatorQuad", "/collections/incidents/tiles/WebMercatorQuad"]
)
def test_req_tileset_description(live_server, path):
    r = live_server.get(path)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    ts = r.json()
    assert ts["dataType"] == "vector" and ts["crs"]
    assert ts["tileMatrixSetURI"] == TMS_URI
    # the tiling scheme: the tile matrix set's definition, on this server
    scheme = _link(ts, TILING_SCHEME)
    assert urlsplit(scheme["href"]).netloc == urlsplit(live_server.url).netloc
    tms = live_server.get(_path(scheme["href"]))
    assert tms.status_code == 200
    definition = tms.json()
    assert definition["id"] == "WebMercatorQuad" and definition["uri"] == TMS_URI
    zooms = {str(z) for z in range(ts["maxZoom"] + 1)}
    assert {m["id"] for m in definition["tileMatrices"]} >= zooms
    item = _link(ts, "item")
    assert item["templated"] is True and item["type"] == MVT
    for var in ("{tileMatrix}", "{tileRow}", "{tileCol}"):
        assert var in item["href"]


# --- tilesets-list --------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["", "/collections/incidents"])
def test_req_tilesets_list_tileset_links(live_server, resource):
    r = live_server.get(f"{resource}/tiles")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    tilesets = r.json()["tilesets"]
    assert tilesets
    for ts in tilesets:
        assert ts["dataType"] and ts["crs"] and ts["tileMatrixSetURI"] == TMS_URI
        _link(ts, TILING_SCHEME)
        self_href = _link(ts, "self")["href"]
        # the URL of the resource, /tiles, and the tile matrix set's id
        assert urlsplit(self_href).path == f"{resource}/tiles/WebMercatorQuad"
        full = live_server.get(_path(self_href))
        assert full.status_code == 200 and full.json()["tileMatrixSetURI"] == TMS_URI


# --- dataset-tilesets -----------------------------------------------------------------------


def test_req_dataset_tilesets_conformance_success(live_server):
    assert _TILES + "dataset-tilesets" in _conforms(live_server)


def test_req_dataset_tilesets_landingpage(live_server):
    root = live_server.get("/?f=json").json()
    link = _link(root, TILESETS_VECTOR)
    assert live_server.get(_path(link["href"])).status_code == 200


def test_req_dataset_tilesets_operation(live_server):
    r = live_server.get("/tiles")
    assert r.status_code == 200 and r.json()["tilesets"]


# --- geodata-tilesets -----------------------------------------------------------------------


def test_req_geodata_tilesets_conformance_success(live_server):
    assert _TILES + "geodata-tilesets" in _conforms(live_server)


def test_req_geodata_tilesets_desc_links(live_server):
    """Each collection served as tiles links its tilesets list (it did not)."""
    for lid in LAYERS:
        doc = live_server.get(f"/collections/{lid}?f=json").json()
        link = _link(doc, TILESETS_VECTOR)
        assert urlsplit(link["href"]).path == f"/collections/{lid}/tiles"
        assert live_server.get(_path(link["href"])).status_code == 200
    rivers = live_server.get("/collections/rivers?f=json").json()
    assert not [lk for lk in rivers["links"] if lk.get("rel") == TILESETS_VECTOR]


def test_req_geodata_tilesets_operation(live_server):
    for lid in LAYERS:
        r = live_server.get(f"/collections/{lid}/tiles")
        assert r.status_code == 200 and r.json()["tilesets"]


# --- mvt ------------------------------------------------------------------------------------


def test_req_mvt_content(live_server, tileset, point):
    """One tile per answer; each feature has a geometry and its type; the MVT grid maps
    linearly to the tile (0,0 its top left): the point lands where Web Mercator puts it."""
    fid, (lon, lat) = point
    row, col, x, y = tile_of(lon, lat, Z)
    r = live_server.get(_tile_url(tileset, Z, row, col))
    assert r.status_code == 200 and r.headers["Content-Type"] == MVT
    tile = _decode(r.content)
    assert set(tile) == {"incidents"}
    layer = tile["incidents"]
    assert layer["extent"] == 4096
    for f in layer["features"]:
        assert f["geometry"]["type"] == "Point" and f["geometry"]["coordinates"]
    mine = [f for f in layer["features"] if f["properties"].get("id") == fid]
    assert len(mine) == 1
    gx, gy = mine[0]["geometry"]["coordinates"]
    assert abs(gx - x) <= 1.5 and abs(gy - y) <= 1.5
