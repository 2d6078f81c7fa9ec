"""The live OGC API Features server, read by real clients and checked independently."""

import json
import os
import subprocess

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import requests
import shapely
from conftest import KEYS
from owslib.ogcapi.features import Features

from layers.catalogue import LAYERS

pytestmark = pytest.mark.both_stores  # GeoPackage and PostGIS (tests/stores.py)

CRS = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def items(server, lid, role=None, **params):
    r = server.get(f"/collections/{lid}/items", role=role, params=dict(f="json", **params))
    assert r.status_code == 200, r.text
    return r.json()


def ids(fc):
    return [f["id"] for f in fc["features"]]


# --- real clients ----------------------------------------------------------------------------


def test_gdal_oapif_reads_every_collection(live_server, sample_data):
    env = dict(os.environ, GDAL_HTTP_HEADERS=f"Authorization: Bearer {KEYS['dispatcher']}")
    out = subprocess.run(
        ["ogrinfo", "-ro", "-so", "-al", f"OAPIF:{live_server.url}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for lid, frame in sample_data.items():
        assert f"Layer name: {lid}" in out.stdout
        block = out.stdout.split(f"Layer name: {lid}\n", 1)[1]
        assert f"Feature Count: {len(frame)}" in block.split("Layer name:", 1)[0], lid


def test_ogr2ogr_copies_a_collection(live_server, sample_data, tmp_path):
    dst = str(tmp_path / "copy.gpkg")
    subprocess.run(
        ["ogr2ogr", "-f", "GPKG", dst, f"OAPIF:{live_server.url}", "communities"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    got = gpd.read_file(dst).sort_values("code").reset_index(drop=True)
    want = sample_data["communities"].sort_values("code").reset_index(drop=True)
    assert got["name"].tolist() == want["name"].tolist()
    assert got.geometry.geom_equals_exact(want.geometry, 1e-9).all()


def test_owslib_reads_collections_and_items(live_server, sample_data):
    w = Features(live_server.url)
    listed = {c["id"] for c in w.collections()["collections"]}
    public = {lid for lid, lay in LAYERS.items() if lay.public}
    assert public <= listed and not (set(LAYERS) - public) & listed  # only what it may read
    for lid in ("incidents", "rivers", "urban_fixtures", "departments"):
        fc = w.collection_items(lid, limit=5)
        assert fc["numberMatched"] == len(sample_data[lid]) and len(fc["features"]) == 5
    q = w.collection_queryables("incidents")
    assert "category" in q["properties"] and "reporter_phone" not in q["properties"]
    # a key lists every collection (plain requests: OWSLib shares headers between clients)
    trusted = live_server.get("/collections?f=json", role="admin").json()["collections"]
    assert set(LAYERS) <= {c["id"] for c in trusted}
    assert "/collections/poverty_relief" not in live_server.get("/collections?f=html").text
    assert (
        "/collections/poverty_relief" in live_server.get("/collections?f=html", role="admin").text
    )


def test_geopandas_reads_items(live_server, sample_data):
    url = f"{live_server.url}/collections/grid_cells/items?f=json&limit=1000"
    gdf = gpd.read_file(url)
    assert len(gdf) == len(sample_data["grid_cells"])
    assert set(gdf["grid_code"]) == set(sample_data["grid_cells"]["grid_code"])


# --- each filter kind, checked independently ---------------------------------------------------


def test_limits_are_not_pygeoapis_ten(live_server):
    fc = items(live_server, "incidents", limit=1000)
    assert len(fc["features"]) == 1000 and fc["numberReturned"] == 1000
    assert len(items(live_server, "incidents")["features"]) == 100  # default page


def test_items_are_labelled_geojson(live_server):
    """OGC API Features /req/geojson/content: items and an item are application/geo+json."""
    for path in (
        "/collections/incidents/items?limit=1",
        "/collections/communities/items?limit=1&f=json",
    ):
        r = live_server.get(path)
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/geo+json"
    one = live_server.get(path).json()["features"][0]["id"]
    r = live_server.get(f"/collections/communities/items/{one}")
    assert r.headers["Content-Type"] == "application/geo+json"
    html = live_server.get("/collections/communities/items?limit=1&f=html")
    assert html.headers["Content-Type"].startswith("text/html")
    bad = live_server.get("/collections/communities/items?limit=0")
    assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("application/json")


def test_paging_follows_next_links(live_server, sample_data):
    seen, url = [], f"{live_server.url}/collections/rivers/items?f=json&limit=7"
    while url:
        fc = requests.get(url, timeout=30).json()
        seen += ids(fc)
        assert fc["numberMatched"] == len(sample_data["rivers"])
        url = next((ln["href"] for ln in fc["links"] if ln["rel"] == "next"), None)
    assert seen == sample_data["rivers"]["segment_code"].tolist()


def test_bbox_and_bbox_crs(live_server, sample_data):
    inc = sample_data["incidents"]
    box = (109.47, 18.28, 109.49, 18.30)
    fc = items(live_server, "incidents", bbox=",".join(map(str, box)), limit=5000)
    want = inc.loc[inc.intersects(shapely.box(*box)), "case_no"]
    assert sorted(ids(fc)) == sorted(want) and len(want) > 10
    t = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:32649", always_xy=True)
    x0, y0 = t.transform(box[0], box[1])
    x1, y1 = t.transform(box[2], box[3])
    fc = items(
        live_server,
        "incidents",
        bbox=f"{x0},{y0},{x1},{y1}",
        **{"bbox-crs": CRS + "32649", "limit": 5000},
    )
    # exact: the incidents whose UTM coordinates fall in the UTM box
    utm = inc.to_crs(32649)
    inside = utm.intersects(shapely.box(x0, y0, x1, y1))
    assert sorted(ids(fc)) == sorted(inc.loc[inside, "case_no"]) and inside.sum() > 10
    # EPSG:4326 takes latitude first
    fc = items(
        live_server,
        "incidents",
        bbox=f"{box[1]},{box[0]},{box[3]},{box[2]}",
        **{"bbox-crs": CRS + "4326", "limit": 5000},
    )
    assert sorted(ids(fc)) == sorted(want)


def test_datetime_instant_and_intervals(live_server, sample_data):
    inc = sample_data["incidents"]
    fc = items(
        live_server, "incidents", datetime="2026-09-12T00:00:00Z/2026-09-13T23:59:59Z", limit=5000
    )
    lo, hi = pd.Timestamp("2026-09-12", tz="UTC"), pd.Timestamp("2026-09-13T23:59:59", tz="UTC")
    want = inc.loc[inc["reported_at"].between(lo, hi), "case_no"].tolist()
    assert ids(fc) == want and want
    fc = items(live_server, "incidents", datetime="2026-11-20T00:00:00Z/..", limit=5000)
    assert (
        ids(fc)
        == inc.loc[inc["reported_at"] >= pd.Timestamp("2026-11-20", tz="UTC"), "case_no"].tolist()
    )
    t = inc["reported_at"].iloc[42].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert inc["case_no"].iloc[42] in ids(items(live_server, "incidents", datetime=t))


def test_property_filters(live_server, sample_data):
    inc = sample_data["incidents"]
    fc = items(live_server, "incidents", category="street_light", channel="wechat", limit=5000)
    m = (inc["category"] == "street_light") & (inc["channel"] == "wechat")
    assert ids(fc) == inc.loc[m, "case_no"].tolist()
    fc = items(live_server, "incidents", territorial="true", limit=5000)
    assert ids(fc) == inc.loc[inc["territorial"], "case_no"].tolist()


@pytest.mark.parametrize("value", ["36893488147419103231", "-9223372036854775809"])
def test_integer_equality_beyond_64_bits_is_a_400(live_server, value):
    # found by the fuzz test: SQLite cannot bind it, which was a 500
    r = requests.get(
        f"{live_server.url}/collections/building_population/items",
        params={"floors": value},
        timeout=30,
    )
    assert r.status_code == 400, r.text
    assert "floors" in r.json()["description"] and "64-bit" in r.json()["description"]


def test_cql2_text_get(live_server, sample_data):
    inc = sample_data["incidents"]
    f = (
        "category IN ('waterlogging','fallen_tree') AND title LIKE '%社区%' AND "
        "satisfaction BETWEEN 4 AND 5 AND closed_at IS NOT NULL"
    )
    fc = items(live_server, "incidents", filter=f, limit=5000)
    m = (
        inc["category"].isin(["waterlogging", "fallen_tree"])
        & inc["title"].str.contains("社区")
        & inc["satisfaction"].between(4, 5).fillna(False).astype(bool)
        & inc["closed_at"].notna()
    )
    assert ids(fc) == inc.loc[m, "case_no"].tolist() and m.sum() > 0
    assert fc["numberMatched"] == m.sum()


def test_cql2_spatial_predicate(live_server, sample_data):
    b = sample_data["building_population"]
    area = shapely.Point(109.48, 18.29).buffer(0.003)
    fc = items(
        live_server,
        "building_population",
        filter=f"S_WITHIN(geometry, {area.wkt})",
        limit=5000,
        skipGeometry="true",
    )
    assert ids(fc) == b.loc[b.within(area), "building_code"].tolist()


def test_cql2_json_get_and_post(live_server, sample_data):
    inc = sample_data["incidents"]
    js = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "channel"}, "public_opinion"]},
            {
                "op": "s_intersects",
                "args": [{"property": "geometry"}, {"bbox": [109.40, 18.25, 109.55, 18.35]}],
            },
        ],
    }
    m = (inc["channel"] == "public_opinion") & inc.intersects(
        shapely.box(109.40, 18.25, 109.55, 18.35)
    )
    want = inc.loc[m, "case_no"].tolist()
    fc = items(
        live_server, "incidents", filter=json.dumps(js), limit=5000, **{"filter-lang": "cql2-json"}
    )
    assert ids(fc) == want and want
    r = requests.post(
        f"{live_server.url}/collections/incidents/items?limit=5000",
        data=json.dumps(js),
        timeout=30,
        headers={"Content-Type": "application/query-cql-json"},
    )
    assert r.status_code == 200, r.text
    assert ids(r.json()) == want


def test_sortby_properties_skipgeometry(live_server, sample_data):
    fc = items(
        live_server,
        "building_population",
        sortby="-resident_pop,building_code",
        properties="resident_pop,use",
        skipGeometry="true",
        limit=20,
    )
    b = sample_data["building_population"].sort_values(
        ["resident_pop", "building_code"], ascending=[False, True]
    )
    assert ids(fc) == b["building_code"].head(20).tolist()
    assert all(
        set(f["properties"]) == {"resident_pop", "use"} and f["geometry"] is None
        for f in fc["features"]
    )


@pytest.mark.parametrize("code", [None, "4326", "4490", "3857", "32649"])
def test_crs_output_matches_pyproj(live_server, sample_data, code):
    params = {"limit": 50} if code is None else {"limit": 50, "crs": CRS + code}
    r = live_server.get("/collections/incidents/items", params=dict(f="json", **params))
    assert r.status_code == 200
    want_crs = CRS84 if code is None else CRS + code
    assert r.headers["Content-Crs"] == f"<{want_crs}>"
    xy = np.array([f["geometry"]["coordinates"] for f in r.json()["features"]])
    inc = sample_data["incidents"].head(50)
    t = pyproj.Transformer.from_crs("OGC:CRS84", "OGC:CRS84" if code is None else f"EPSG:{code}")
    a, b = t.transform(inc.geometry.x.to_numpy(), inc.geometry.y.to_numpy())
    np.testing.assert_allclose(xy[:, 0], a, atol=1e-6)
    np.testing.assert_allclose(xy[:, 1], b, atol=1e-6)


def test_single_item_in_a_crs(live_server, sample_data):
    row = sample_data["rivers"].iloc[3]
    r = live_server.get(
        f"/collections/rivers/items/{row['segment_code']}",
        params={"f": "json", "crs": CRS + "32649"},
    )
    assert r.status_code == 200
    got = shapely.geometry.shape(r.json()["geometry"])
    want = gpd.GeoSeries([row.geometry], crs=4326).to_crs(32649).iloc[0]
    assert got.equals_exact(want, 1e-3)


def test_languages(live_server):
    zh = live_server.get("/collections/incidents", params={"f": "json", "lang": "zh-CN"}).json()
    en = live_server.get("/collections/incidents", params={"f": "json", "lang": "en"}).json()
    assert zh["title"] == "事件处置" and en["title"] == "Incidents"


# --- access ------------------------------------------------------------------------------------


def test_personal_fields_and_layers_need_a_role(live_server):
    pub = items(live_server, "incidents", limit=3)
    assert "reporter_phone" not in pub["features"][0]["properties"]
    disp = items(live_server, "incidents", role="dispatcher", limit=3)
    assert "reporter_phone" in disp["features"][0]["properties"]
    r = live_server.get("/collections/poverty_relief/items")
    assert r.status_code == 401 and "personal data" in r.json()["description"]
    assert live_server.get("/collections/poverty_relief/items", role="reporter").status_code == 403
    assert items(live_server, "poverty_relief", role="admin", limit=2)["numberMatched"] == 320
    r = live_server.get("/collections/incidents/items", params={"properties": "reporter_name"})
    assert r.status_code == 400 and "reporter_name" in r.json()["description"]
    r = live_server.get("/collections/incidents/items", headers={"X-API-Key": "wrong"})
    assert r.status_code == 401
    assert live_server.get("/admin/config").status_code == 404


# --- bad input: a 400 that names the problem ----------------------------------------------------

BAD = [
    ({"colour": "red"}, "colour"),
    ({"filter": "category = "}, "malformed"),
    ({"filter": "nosuch = 1"}, "nosuch"),
    ({"filter": "A_CONTAINS(category, category)"}, "filter"),  # not implemented: refused
    ({"filter": '{"op": "=", "args": [', "filter-lang": "cql2-json"}, "cql2-json"),
    ({"filter": "category = 'x'", "filter-lang": "cql3"}, "filter-lang"),
    ({"sortby": "-nosuch"}, "nosuch"),
    ({"properties": "title,nosuch"}, "nosuch"),
    ({"bbox": "1,2,3"}, "bbox"),
    ({"bbox": "109.5,18.3,109.4,18.2"}, "bbox"),
    ({"bbox": "109,18,110,19", "bbox-crs": CRS + "2000"}, "bbox-crs"),
    ({"crs": CRS + "27700"}, "crs"),
    ({"datetime": "yesterday"}, "datetime"),
    ({"datetime": "2026-02-01/2026-01-01"}, "datetime"),
    ({"limit": "abc"}, "limit"),
    ({"limit": "0"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"offset": "15121357413572981812725836414976"}, "at most"),
    ({"skipGeometry": "maybe"}, "skipGeometry"),
    ({"category": "not_a_category"}, "category"),
    ({"satisfaction": "five"}, "satisfaction"),
    ({"resulttype": "all"}, "resulttype"),
]


@pytest.mark.parametrize("params, named", BAD)
def test_bad_input_gets_400_naming_it(live_server, params, named):
    r = live_server.get("/collections/incidents/items", params=params)
    assert r.status_code == 400, (params, r.status_code, r.text[:200])
    assert named in r.json()["description"], r.json()


def test_duplicate_parameters_and_unknown_collection(live_server):
    r = requests.get(f"{live_server.url}/collections/incidents/items?limit=1&limit=2", timeout=30)
    assert r.status_code == 400 and "limit" in r.json()["description"]
    assert live_server.get("/collections/nosuch/items").status_code == 404
    r = live_server.get("/collections/incidents/items/NOSUCH", params={"f": "json"})
    assert r.status_code == 404
    r = live_server.get("/collections/incidents/items/TY2025112400001", params={"limit": "3"})
    assert r.status_code == 400 and "limit" in r.json()["description"]
