"""The base map: its layers, tiles from both stores, the routes, the styles.

Tiles are decoded with ``mapbox-vector-tile`` and checked against the sample's frames
(areas, attributes), against each other (GeoPackage and PostGIS), and the styles
against the tiles they draw.
"""

from __future__ import annotations

import math

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from geodata import sample
from layers import access, basemap, district, tiles
from layers.catalogue import LAYERS
from layers.stores import open_store

pytestmark = pytest.mark.both_stores

TMS = "WebMercatorQuad"
#: The urban centre, where every layer has features.
CENTRE = (109.485, 18.290)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """``(z, y, x)`` of the tile holding a point (independent of :mod:`layers.tiles`)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, y, x


def to_tile_units(geom, z: int, y: int, x: int):
    """A lon/lat geometry in the tile's units (4096 across, y down), by the textbook formula."""
    n = 2**z

    def fn(c):
        tx = ((c[:, 0] + 180) / 360 * n - x) * 4096
        lat = np.radians(c[:, 1])
        ty = ((1 - np.arcsinh(np.tan(lat)) / np.pi) / 2 * n - y) * 4096
        return np.column_stack((tx, ty))

    return shapely.transform(geom, fn)


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def feats(tile: dict, layer: str) -> list[dict]:
    return tile.get(layer, {}).get("features", [])


def area(fs: list[dict], clip: bool = False) -> float:
    box = shapely.box(0, 0, 4096, 4096)
    return sum(
        (shape(f["geometry"]).intersection(box) if clip else shape(f["geometry"])).area for f in fs
    )


#: Tiles over the district at several zoom levels (z, lon, lat).
SPOTS = [
    (9, 109.36, 18.41),
    (11, *CENTRE),
    (12, *district.COASTLINE[5]),
    (13, 109.43, 18.30),
    (14, *CENTRE),
    (15, *CENTRE),
    (16, 109.48, 18.30),
]


# --- the library -------------------------------------------------------------------------------


def test_source_layers_carry_public_fields_only():
    used = basemap.public_columns()
    assert set(used) == {"communities", "grid_cells", "rivers", "building_population"}
    for lid, cols in used.items():
        layer = LAYERS[lid]
        assert access.can_read(layer, access.PUBLIC)
        assert set(cols) <= set(access.visible_fields(layer, access.PUBLIC)), lid
        assert not set(cols) & set(layer.sensitive_fields), lid
    # the contract's names and attributes
    assert {k: s.fields for k, s in basemap.SOURCE_LAYERS.items()} == {
        "sea": (),
        "district": ("name",),
        "communities": ("code", "name", "kind"),
        "grid_cells": ("grid_code", "name"),
        "rivers": ("name",),
        "buildings": ("use", "floors"),
        "labels": ("name", "kind", "rank"),
    }


def test_the_coast_is_a_district_fact():
    from geodata import rasters

    assert sample.COASTLINE is district.COASTLINE
    assert not hasattr(rasters, "_sea_polygon")
    sea = district.sea_polygon()
    # the sea lies south of every coast vertex, the land north of it
    for lon, lat in district.COASTLINE[1:-1]:
        assert sea.contains(shapely.Point(lon, lat - 0.005))
        assert not sea.contains(shapely.Point(lon, lat + 0.005))


def test_frames_have_the_layers_and_attributes(gpkg_store, sample_data):
    frames = basemap.basemap_frames(gpkg_store)
    assert list(frames) == list(basemap.SOURCE_LAYERS)
    for name, f in frames.items():
        assert list(f.columns) == [*basemap.SOURCE_LAYERS[name].fields, "geometry"], name
        assert f.crs.to_epsg() == 4326
    assert len(frames["communities"]) == len(sample_data["communities"])
    assert len(frames["buildings"]) == len(sample_data["building_population"])
    assert sorted(frames["rivers"]["name"]) == sorted(sample_data["rivers"]["river_name"])
    lab = frames["labels"]
    comm = sample_data["communities"]
    assert set(lab.loc[lab["kind"] != "river", "name"]) == {district.NAME, *comm["name"]}
    assert set(lab.loc[lab["kind"] == "river", "name"]) == set(sample_data["rivers"]["river_name"])
    # each community's label lies on it, and the district's on land
    on = comm.set_index("name").geometry
    for _, r in lab[lab["kind"].isin(["community", "village"])].iterrows():
        assert on[r["name"]].contains(r.geometry), r["name"]
    assert not district.sea_polygon().contains(lab.geometry[lab["kind"] == "district"].iloc[0])
    # a bbox keeps what meets it
    box = (109.45, 18.25, 109.5, 18.3)
    part = basemap.basemap_frames(gpkg_store, bbox=box)
    b = shapely.box(*box)
    assert 0 < len(part["buildings"]) < len(frames["buildings"])
    assert shapely.intersects(part["buildings"].geometry.values, b).all()
    assert shapely.intersects(part["labels"].geometry.values, b).all()


def test_tile_matches_the_sample(gpkg_store, sample_data):
    """Buildings and communities of a tile cover what the sample's frames cover there."""
    z, y, x = tile_of(*CENTRE, 16)
    t = decode(basemap.render(gpkg_store, z, y, x).data)
    assert set(t) == {"district", "communities", "grid_cells", "buildings", "labels"}
    box, grown = shapely.box(0, 0, 4096, 4096), shapely.box(-64, -64, 4160, 4160)
    for lid, name, tol in (
        ("building_population", "buildings", 0.01),
        ("communities", "communities", 0.001),
    ):
        g = to_tile_units(sample_data[lid].geometry.values, z, y, x)
        assert len(feats(t, name)) == shapely.intersects(g, grown).sum(), name
        expected = shapely.area(shapely.intersection(g, box)).sum()
        assert area(feats(t, name), clip=True) == pytest.approx(expected, rel=tol), name
    # attributes are the sample's
    blds = sample_data["building_population"]
    got = sorted((f["properties"]["use"], f["properties"]["floors"]) for f in feats(t, "buildings"))
    g = to_tile_units(blds.geometry.values, z, y, x)
    inside = blds[shapely.intersects(g, grown)]
    assert got == sorted(zip(inside["use"], inside["floors"].astype(int), strict=True))


def test_layers_follow_their_zoom_ranges(gpkg_store):
    for z in (8, 10, 14, 15):
        zz, y, x = tile_of(*CENTRE, z)
        t = decode(basemap.render(gpkg_store, zz, y, x).data)
        for name in t:
            s = basemap.SOURCE_LAYERS[name]
            assert s.minzoom <= z <= s.maxzoom, (name, z)
        kinds = {f["properties"]["kind"] for f in feats(t, "labels")}
        assert kinds <= {k for k, (_, mz) in basemap.LABEL_KINDS.items() if mz <= z}
    assert "buildings" in t and "grid_cells" in t


def test_labels_reach_across_tile_edges(gpkg_store, sample_data):
    """A label near an edge is in both tiles, at the same place (so a renderer draws it
    whole), up to LABEL_BUFFER units beyond the tile."""
    z = 14
    lab = basemap.basemap_frames(gpkg_store)["labels"]
    found = 0
    for _, r in lab[lab["kind"] == "community"].iterrows():
        zz, y, x = tile_of(r.geometry.x, r.geometry.y, z)
        p = to_tile_units(r.geometry, zz, y, x)
        if p.x > 4096 - basemap.LABEL_BUFFER + 50:  # near the east edge
            here = decode(basemap.render(gpkg_store, zz, y, x).data)
            east = decode(basemap.render(gpkg_store, zz, y, x + 1).data)
            a = next(f for f in feats(here, "labels") if f["properties"]["name"] == r["name"])
            b = next(f for f in feats(east, "labels") if f["properties"]["name"] == r["name"])
            ax, ay = a["geometry"]["coordinates"]
            bx, by = b["geometry"]["coordinates"]
            assert (bx + 4096, by) == (ax, ay)
            assert bx < 0 and abs(ax - p.x) <= 1 and abs(ay - p.y) <= 1
            found += 1
    assert found, "no community label near a tile edge at z14"


def test_a_tile_stops_at_the_feature_cap(gpkg_store):
    z, y, x = tile_of(*CENTRE, 15)
    full = basemap.render(gpkg_store, z, y, x)
    assert not full.truncated and len(feats(decode(full.data), "buildings")) > 100
    capped = basemap.render(gpkg_store, z, y, x, max_features=10)
    assert capped.truncated
    t = decode(capped.data)
    assert all(len(feats(t, name)) <= 10 for name in t)
    assert len(feats(t, "buildings")) == 10


def test_tiles_carry_no_hidden_value(gpkg_store, sample_data):
    z, y, x = tile_of(*CENTRE, 16)
    data = basemap.render(gpkg_store, z, y, x).data
    blds = sample_data["building_population"]
    g = to_tile_units(blds.geometry.values, z, y, x)
    inside = blds[shapely.intersects(g, shapely.box(0, 0, 4096, 4096))]
    assert len(inside)
    for col in ("manager_name", "manager_phone", "address", "building_code"):
        assert not any(str(v).encode() in data for v in inside[col]), col
    t = decode(data)
    for name, layer in t.items():
        for f in layer["features"]:
            assert set(f["properties"]) <= set(basemap.SOURCE_LAYERS[name].fields), name


# --- both stores ---------------------------------------------------------------------------------


def _compare(a: dict, b: dict, where) -> None:
    assert set(a) == set(b), where
    for name in a:
        fa, fb = feats(a, name), feats(b, name)
        key = sorted(tuple(sorted(f["properties"].items())) for f in fa)
        assert key == sorted(tuple(sorted(f["properties"].items())) for f in fb), (where, name)
        kind = basemap.SOURCE_LAYERS[name].geometry
        if kind == "polygon":
            assert area(fa) == pytest.approx(area(fb), rel=2e-3, abs=64), (where, name)
        elif kind == "line":
            la = sum(shape(f["geometry"]).length for f in fa)
            assert la == pytest.approx(sum(shape(f["geometry"]).length for f in fb), rel=5e-3)
        else:
            pa = {f["properties"]["name"]: f["geometry"]["coordinates"] for f in fa}
            pb = {f["properties"]["name"]: f["geometry"]["coordinates"] for f in fb}
            for n, (px, py) in pa.items():
                assert abs(px - pb[n][0]) <= 2 and abs(py - pb[n][1]) <= 2, (where, n)


@pytest.mark.postgis
def test_both_stores_make_the_same_tiles(sample_gpkg, pg_sample_url):
    gpkg, pg = open_store(sample_gpkg), open_store(pg_sample_url)
    try:
        seen = set()
        for z, lon, lat in SPOTS:
            zz, y, x = tile_of(lon, lat, z)
            for dy, dx in ((0, 0), (0, 1), (1, 0)):
                ta = basemap.render(gpkg, zz, y + dy, x + dx)
                tb = basemap.render(pg, zz, y + dy, x + dx)
                assert ta.features == tb.features and ta.truncated == tb.truncated
                a, b = decode(ta.data), decode(tb.data)
                _compare(a, b, (zz, y + dy, x + dx))
                seen |= set(a)
        assert seen == set(basemap.SOURCE_LAYERS)
        # capped alike
        z, y, x = tile_of(*CENTRE, 15)
        ca, cb = (basemap.render(s, z, y, x, max_features=25) for s in (gpkg, pg))
        assert ca.truncated and cb.truncated
        assert len(feats(decode(ca.data), "buildings")) == 25
        _compare(decode(ca.data), decode(cb.data), "capped")
    finally:
        gpkg.close()
        pg.close()


@pytest.mark.postgis
def test_both_stores_make_the_same_point_tiles(sample_gpkg, pg_sample_url):
    gpkg, pg = open_store(sample_gpkg), open_store(pg_sample_url)
    try:
        for lid, z in (("incidents", 14), ("urban_fixtures", 15), ("flood_prevention", 12)):
            layer = LAYERS[lid]
            zz, y, x = tile_of(*CENTRE, z)
            for who in (access.PUBLIC, access.Principal("d", "dispatcher")):
                fields = access.visible_fields(layer, who)
                ta = tiles.render(gpkg, layer, zz, y, x, fields)
                tb = tiles.render(pg, layer, zz, y, x, fields)
                a, b = decode(ta.data)[lid]["features"], decode(tb.data)[lid]["features"]
                assert ta.features == len(a) > 0
                key = {f["properties"]["id"]: f for f in b}
                mine = {f["properties"]["id"]: f for f in a}
                # the stores' float32 index boxes may differ on a point a few cm off the edge
                for f in [
                    *(mine[i] for i in set(mine) - set(key)),
                    *(key[i] for i in set(key) - set(mine)),
                ]:
                    px, py = f["geometry"]["coordinates"]
                    assert min(px, py, 4096 - px, 4096 - py) <= 1, (lid, f["properties"]["id"])
                assert len(set(mine) ^ set(key)) <= 2
                for f in a:
                    if f["properties"]["id"] not in key:
                        continue
                    g = key[f["properties"]["id"]]
                    assert f["properties"] == g["properties"], (lid, who.role)
                    assert f["geometry"] == g["geometry"] and f["id"] == g["id"]
                if who is access.PUBLIC:
                    assert not set(a[0]["properties"]) & set(layer.sensitive_fields)
    finally:
        gpkg.close()
        pg.close()


# --- served --------------------------------------------------------------------------------------


def test_tilesets_and_tiles_are_served(live_server):
    g = live_server.get
    r = g("/tiles")
    assert r.status_code == 200
    ts = r.json()["tilesets"]
    assert [t["dataType"] for t in ts] == ["vector"]
    meta = g(f"/tiles/{TMS}").json()
    assert [lay["id"] for lay in meta["layers"]] == list(basemap.SOURCE_LAYERS)
    assert meta["maxZoom"] == basemap.MAX_ZOOM
    item = next(ln for ln in meta["links"] if ln["rel"] == "item")
    assert item["href"] == f"{live_server.url}/tiles/{TMS}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
    styles = [ln["href"] for ln in meta["links"] if ln["rel"] == "stylesheet"]
    assert styles == [f"{live_server.url}/styles/basemap", f"{live_server.url}/styles/basemap-dark"]
    z, y, x = tile_of(*CENTRE, 15)
    r = g(f"/tiles/{TMS}/{z}/{y}/{x}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert "max-age" in r.headers["Cache-Control"]
    assert "buildings" in decode(r.content)
    assert int(r.headers["X-Tile-Features"]) == sum(
        len(v["features"]) for v in decode(r.content).values()
    )
    # the same bytes for any role (only public fields)
    assert g(f"/tiles/{TMS}/{z}/{y}/{x}", role="admin").content == r.content
    # HEAD, ETag
    h = live_server.get(f"/tiles/{TMS}/{z}/{y}/{x}", headers={})
    import requests

    head = requests.head(f"{live_server.url}/tiles/{TMS}/{z}/{y}/{x}", timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(r.content))
    assert head.headers["ETag"] == h.headers["ETag"]
    again = g(f"/tiles/{TMS}/{z}/{y}/{x}", headers={"If-None-Match": h.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    # a tile of nothing (the far Pacific at zoom 12)
    assert g(f"/tiles/{TMS}/12/1000/100").status_code == 204


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        (f"/tiles/{TMS}/15/0/0?bbox=1,2,3,4", 400, "bbox"),
        (f"/tiles/{TMS}/15/0/0?f=png", 400, "mvt"),
        ("/tiles?f=html", 400, "json"),
        (f"/tiles/{TMS}?limit=1", 400, "limit"),
        ("/tiles/WorldCRS84Quad/3/3/6", 404, "WebMercatorQuad"),
        ("/tiles/WorldCRS84Quad", 404, "WebMercatorQuad"),
        (f"/tiles/{TMS}/19/0/0", 400, "0-18"),
        (f"/tiles/{TMS}/-1/0/0", 400, "0-18"),
        (f"/tiles/{TMS}/3/8/0", 404, "0-7"),
        (f"/tiles/{TMS}/3/0/8", 404, "0-7"),
        (f"/tiles/{TMS}/a/0/0", 400, "integers"),
        (f"/tiles/{TMS}/3/0", 404, ""),
        ("/styles/basemap?f=sld", 400, "mapbox"),
        ("/styles/nope", 404, "basemap-dark"),
        ("/styles?x=1", 400, "x"),
    ],
)
def test_tile_and_style_errors(live_server, path, status, words):
    r = live_server.get(path)
    assert r.status_code == status, (path, r.text[:200])
    assert words in r.json()["description"]


def test_landing_page_links_tiles_and_styles(live_server):
    links = live_server.get("/?f=json").json()["links"]
    href = {ln["href"]: ln for ln in links}
    assert href[f"{live_server.url}/tiles"]["rel"].endswith("/tilesets-vector")
    assert href[f"{live_server.url}/styles"]["type"] == "application/json"
    for ln in links:  # pygeoapi's own links are still there
        if ln["href"].endswith("/collections"):
            break
    else:
        raise AssertionError("the landing page lost pygeoapi's links")


def test_tiles_take_only_get_and_head(live_server):
    import requests

    r = requests.post(f"{live_server.url}/tiles/{TMS}/3/3/6", timeout=30)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_styles_are_served(live_server):
    r = live_server.get("/styles")
    assert r.status_code == 200
    ids = [s["id"] for s in r.json()["styles"]]
    assert ids == ["basemap", "basemap-dark"]
    for sid in ids:
        r = live_server.get(f"/styles/{sid}")
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/vnd.mapbox.style+json"
        st = r.json()
        assert st["sources"]["tianya"]["tiles"] == [
            f"{live_server.url}/tiles/{TMS}/{{z}}/{{y}}/{{x}}"
        ]
        j = live_server.get(f"/styles/{sid}?f=json")
        assert j.headers["Content-Type"] == "application/json" and j.json() == st


def test_collection_tiles_on_both_stores(live_server, store_kind):
    """The point layers' tiles answer on the GeoPackage too, with the caller's fields."""
    z, y, x = tile_of(109.4695, 18.2963, 14)
    path = f"/collections/incidents/tiles/{TMS}/{z}/{y}/{x}"
    r = live_server.get(path)
    assert r.status_code == 200, r.text[:200]
    props = decode(r.content)["incidents"]["features"][0]["properties"]
    assert "category" in props and "reporter_phone" not in props
    trusted = decode(live_server.get(path, role="dispatcher").content)
    assert "reporter_phone" in trusted["incidents"]["features"][0]["properties"]
    assert (
        live_server.get(f"/collections/poverty_relief/tiles/{TMS}/{z}/{y}/{x}").status_code == 401
    )
    assert live_server.get(f"/collections/rivers/tiles/{TMS}/{z}/{y}/{x}").status_code == 404
    assert live_server.get(path + "?f=json").status_code == 400


# --- the styles ----------------------------------------------------------------------------------

#: What the contract allows a style to use (the renderer of /assets/basemap.js reads these).
LAYER_TYPES = {"background", "fill", "line", "symbol"}
PAINT = {
    "background": {"background-color"},
    "fill": {"fill-color", "fill-opacity", "fill-outline-color"},
    "line": {"line-color", "line-width", "line-dasharray"},
    "symbol": {"text-color", "text-halo-color", "text-halo-width"},
}


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_style_is_valid_and_draws_what_the_tiles_hold(theme, gpkg_store):
    st = basemap.style("http://h", theme)
    assert st["version"] == 8 and set(st["sources"]) == {"tianya"}
    src = st["sources"]["tianya"]
    assert src["type"] == "vector" and src["maxzoom"] == basemap.MAX_ZOOM
    assert st["layers"][0]["type"] == "background"
    ids = [lay["id"] for lay in st["layers"]]
    assert len(ids) == len(set(ids))
    hexcolor = __import__("re").compile(r"^#[0-9a-f]{6}$")
    for lay in st["layers"]:
        assert lay["type"] in LAYER_TYPES, lay["id"]
        assert set(lay.get("paint", {})) <= PAINT[lay["type"]], lay["id"]
        for k, v in lay.get("paint", {}).items():
            if k.endswith("color"):
                assert hexcolor.match(v), (lay["id"], k, v)
            else:
                assert isinstance(v, (int, float, list)), (lay["id"], k)
        if lay["type"] == "background":
            continue
        assert lay["source"] == "tianya"
        s = basemap.SOURCE_LAYERS[lay["source-layer"]]
        assert lay.get("minzoom", 0) >= s.minzoom, lay["id"]
        if "filter" in lay:
            op, get, value = lay["filter"]
            assert op == "==" and get == ["get", "kind"] and isinstance(value, str)
        if lay["type"] == "symbol":
            assert lay["layout"]["text-field"] == ["get", "name"]
            assert isinstance(lay["layout"]["text-size"], (int, float))
    # every source layer the style draws is in the tiles it points at
    drawn = {lay["source-layer"] for lay in st["layers"] if "source-layer" in lay}
    held: set[str] = set()
    kinds: set[str] = set()
    rivers = basemap.basemap_frames(gpkg_store)["labels"]
    river = rivers[rivers["kind"] == "river"].geometry.iloc[0]
    for z, lon, lat in [*SPOTS, (13, river.x, river.y)]:
        t = decode(basemap.render(gpkg_store, *tile_of(lon, lat, z)).data)
        held |= set(t)
        kinds |= {f["properties"]["kind"] for f in feats(t, "labels")}
    assert drawn <= held
    filtered = {lay["filter"][2] for lay in st["layers"] if "filter" in lay}
    assert filtered <= kinds | {"village"}
