"""OGC API - Features - Part 1: Core (OGC 17-069r4), classes Core, GeoJSON and HTML, requirement
by requirement against a live server on both stores.

Requirement texts: ``opengeospatial/ogcapi-features`` ``core/standard/requirements/`` (core,
geojson, html); what the CITE suite checks: ``opengeospatial/ets-ogcapi-features10``. Results
are compared with the sample data computed here (``sample_data``: the GeoDataFrames the stores
were loaded from), never with the store under test. The OpenAPI 3.0 class is tested by
``tests/test_openapi.py``'s owner, not here.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import requests
import shapely
from featureskit import (
    CRS84,
    GEOJSON,
    anchors,
    assert_html5,
    assert_links_in_html,
    get,
    get_json,
    links,
    refused,
)

pytestmark = pytest.mark.both_stores

#: Conformance classes tested here -> every requirement of each (OGC 17-069r4 §7-§10), one test
#: or more per requirement.
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core": (
        "/req/core/http",
        "/req/core/query-param-unknown",
        "/req/core/query-param-invalid",
        "/req/core/root-op",
        "/req/core/root-success",
        "/req/core/api-definition-op",
        "/req/core/api-definition-success",
        "/req/core/conformance-op",
        "/req/core/conformance-success",
        "/req/core/crs84",
        "/req/core/fc-md-op",
        "/req/core/fc-md-success",
        "/req/core/fc-md-links",
        "/req/core/fc-md-items",
        "/req/core/fc-md-items-links",
        "/req/core/fc-md-extent",
        "/req/core/fc-md-extent-multi",
        "/req/core/sfc-md-op",
        "/req/core/sfc-md-success",
        "/req/core/fc-op",
        "/req/core/fc-limit-definition",
        "/req/core/fc-limit-response-1",
        "/req/core/fc-bbox-definition",
        "/req/core/fc-bbox-response",
        "/req/core/fc-time-definition",
        "/req/core/fc-time-response",
        "/req/core/fc-response",
        "/req/core/fc-links",
        "/req/core/fc-rel-type",
        "/req/core/fc-timeStamp",
        "/req/core/fc-numberMatched",
        "/req/core/fc-numberReturned",
        "/req/core/f-op",
        "/req/core/f-success",
        "/req/core/f-links",
    ),
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson": (
        "/req/geojson/definition",
        "/req/geojson/content",
    ),
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html": (
        "/req/html/definition",
        "/req/html/content",
    ),
}

#: A small box in the district (both Sanya's town and its villages).
BOX = (109.45, 18.28, 109.5, 18.32)
ITEMS = "/collections/incidents/items"


@pytest.fixture(scope="module")
def collections(live_server) -> dict[str, dict]:
    doc = get_json(live_server, "/collections")
    return {c["id"]: c for c in doc["collections"]}


@pytest.fixture(scope="module")
def feature_collections(collections) -> dict[str, dict]:
    return {k: c for k, c in collections.items() if c.get("itemType") == "feature"}


def _matched(server, path=ITEMS, **params) -> int:
    doc = get_json(server, path, resulttype="hits", **params)
    return doc["numberMatched"]


def _ids(server, path=ITEMS, **params) -> set[str]:
    doc = get_json(server, path, limit=10000, skipGeometry="true", **params)
    assert doc["numberReturned"] == doc["numberMatched"] == len(doc["features"])
    return {str(f["id"]) for f in doc["features"]}


def _incidents_in(sample_data, geom) -> set[str]:
    inc = sample_data["incidents"]
    return set(inc.loc[inc.geometry.intersects(geom), "case_no"])


# --- /req/core: HTTP, parameters -------------------------------------------------------------


def test_req_core_http(live_server):
    """/req/core/http: the server conforms to HTTP 1.1 (status line, Content-Length, HEAD)."""
    for path in ("/", "/conformance", "/collections", ITEMS):
        r = get(live_server, path, {"f": "json"}, stream=True)
        assert r.raw.version == 11 and r.status_code == 200, path
        body = r.content
        assert int(r.headers["Content-Length"]) == len(body), path
        head = requests.head(live_server.url + path, params={"f": "json"}, timeout=30)
        assert head.status_code == 200 and head.content == b"", path


@pytest.mark.parametrize(
    "path", ["/", "/conformance", "/collections", "/collections/rivers", ITEMS, f"{ITEMS}/x"]
)
def test_req_core_query_param_unknown(live_server, path):
    """/req/core/query-param-unknown: a parameter the API definition does not name is a 400
    on every resource (pygeoapi ignored it on the landing page, /conformance, /collections
    and a collection), and the message names it and the valid ones."""
    body = refused(live_server, path, {"f": "json", "frobnicate": "1"})
    assert "frobnicate" in body["description"] and "'f'" not in body["description"]
    assert "f" in body["description"].split("frobnicate")[-1]  # the valid ones follow
    if not path.endswith("/x"):
        assert get(live_server, path, {"f": "json"}).status_code == 200, path


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "ten"},
        {"offset": "-1"},
        {"bbox": "109.4,18.3,109.5"},
        {"bbox": "a,b,c,d"},
        {"bbox": "109.4,18.4,109.5,18.3"},  # latitudes reversed (no antimeridian for them)
        {"datetime": "yesterday"},
        {"datetime": "2026-02-30T00:00:00Z"},
        {"f": "xml"},
        {"resulttype": "all"},
    ],
)
def test_req_core_query_param_invalid(live_server, params):
    """/req/core/query-param-invalid: a parameter with an invalid value is a 400."""
    body = refused(live_server, ITEMS, params)
    name = next(iter(params))
    assert name in body["description"] or params[name] in body["description"], body


# --- landing page, API definition, conformance -------------------------------------------------


def test_req_core_root_op(live_server):
    """/req/core/root-op: GET / is supported (both with ``f`` and by content negotiation)."""
    assert get(live_server, "/").status_code == 200
    r = get(live_server, "/", accept="application/json")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")


def test_req_core_root_success(live_server):
    """/req/core/root-success: 200, landingPage.yaml (links), linking the API definition
    (service-desc or service-doc), /conformance (conformance) and /collections (data)."""
    doc = get_json(live_server, "/")
    assert isinstance(doc["links"], list)
    for lk in doc["links"]:
        assert isinstance(lk["href"], str) and isinstance(lk["rel"], str), lk
    assert links(doc, "service-desc") or links(doc, "service-doc")
    assert [lk["href"] for lk in links(doc, "conformance")] == [f"{live_server.url}/conformance"]
    assert [lk["href"] for lk in links(doc, "data")] == [f"{live_server.url}/collections"]


def test_req_core_api_definition_op(live_server):
    """/req/core/api-definition-op: the service-desc/service-doc links answer a GET."""
    doc = get_json(live_server, "/")
    for lk in links(doc, "service-desc") + links(doc, "service-doc"):
        r = requests.get(lk["href"], headers={"Accept": lk["type"]}, timeout=60)
        assert r.status_code == 200, lk


def test_req_core_api_definition_success(live_server):
    """/req/core/api-definition-success: 200 and the API definition in the negotiated media
    type: OpenAPI 3.0 JSON for service-desc, an HTML page for service-doc."""
    doc = get_json(live_server, "/")
    desc = links(doc, "service-desc")[0]
    r = requests.get(desc["href"], headers={"Accept": desc["type"]}, timeout=60)
    assert r.headers["Content-Type"].startswith(desc["type"].split(";")[0])
    api = r.json()
    assert api["openapi"].startswith("3.0") and "/collections/incidents/items" in api["paths"]
    page = requests.get(links(doc, "service-doc")[0]["href"], timeout=60)
    assert_html5(page)


def test_req_core_conformance_op(live_server):
    """/req/core/conformance-op: GET /conformance is supported."""
    assert get(live_server, "/conformance").status_code == 200
    assert get(live_server, "/conformance", accept="application/json").status_code == 200


def test_req_core_conformance_success(live_server):
    """/req/core/conformance-success: 200 and conformsTo listing the classes, among them the
    three of this module."""
    doc = get_json(live_server, "/conformance")
    assert all(isinstance(u, str) for u in doc["conformsTo"])
    assert set(CONFORMANCE) <= set(doc["conformsTo"])  # the whole list: test_conformance_declared


def test_req_core_crs84(live_server, sample_data):
    """/req/core/crs84: geometries are CRS84 longitude/latitude unless another CRS is asked:
    the served coordinates of a feature are the sample's own (lon, lat), and the answer
    says so (Content-Crs)."""
    r = get(live_server, ITEMS, {"f": "json", "limit": "5"})
    assert r.headers.get("Content-Crs") in (None, f"<{CRS84}>")
    inc = sample_data["incidents"].set_index("case_no")
    for feat in r.json()["features"]:
        x, y = feat["geometry"]["coordinates"]
        point = inc.loc[feat["id"], "geometry"]
        assert (round(x, 7), round(y, 7)) == (round(point.x, 7), round(point.y, 7))
        assert 109 < x < 110 and 18 < y < 19  # longitude first


# --- collections -------------------------------------------------------------------------------


def test_req_core_fc_md_op(live_server):
    """/req/core/fc-md-op: GET /collections is supported."""
    assert get(live_server, "/collections", accept="application/json").status_code == 200


def test_req_core_fc_md_success(live_server):
    """/req/core/fc-md-success: 200 and collections.yaml: links and collections (each with
    an id and links)."""
    doc = get_json(live_server, "/collections")
    assert isinstance(doc["links"], list) and isinstance(doc["collections"], list)
    for c in doc["collections"]:
        assert isinstance(c["id"], str) and isinstance(c["links"], list), c.get("id")


def test_req_core_fc_md_links(live_server):
    """/req/core/fc-md-links: a self link and an alternate link per other media type, every
    link with rel and type."""
    doc = get_json(live_server, "/collections")
    self_ = links(doc, "self")
    assert len(self_) == 1 and self_[0]["type"] == "application/json"
    assert {"text/html", "application/ld+json"} <= {lk["type"] for lk in links(doc, "alternate")}
    assert all(lk.get("rel") and lk.get("type") for lk in doc["links"])
    for lk in self_ + links(doc, "alternate"):
        assert requests.get(lk["href"], timeout=60).status_code == 200, lk


def test_req_core_fc_md_items(feature_collections, sample_data):
    """/req/core/fc-md-items: every feature collection of the sample that the public may read
    is described in ``collections`` (the incidents of poverty relief are not public)."""
    public = {k for k in sample_data if k != "poverty_relief"}
    assert set(feature_collections) == public


def test_req_core_fc_md_items_links(feature_collections, live_server):
    """/req/core/fc-md-items-links: each collection links its items (rel items) in every
    encoding, with rel and type; the GeoJSON link answers GeoJSON."""
    for cid, c in feature_collections.items():
        items = links(c, "items")
        assert {GEOJSON, "text/html"} <= {lk["type"] for lk in items}, cid
        assert all(lk.get("rel") and lk.get("type") for lk in c["links"]), cid
        geojson = next(lk for lk in items if lk["type"] == GEOJSON)
        assert geojson["href"].startswith(f"{live_server.url}/collections/{cid}/items"), cid


def _temporal_values(sample_data, cid):
    from layers.catalogue import LAYERS

    field = LAYERS[cid].temporal
    return None if field is None else pd.to_datetime(sample_data[cid][field], utc=True)


def test_req_core_fc_md_extent(feature_collections, sample_data):
    """/req/core/fc-md-extent: the spatial extent includes every geometry, the temporal one
    every temporal value (``null`` bounds are open)."""
    for cid, c in feature_collections.items():
        extent = c["extent"]
        minx, miny, maxx, maxy = extent["spatial"]["bbox"][0]
        gdf = sample_data[cid]
        if "geometry" in gdf:
            x0, y0, x1, y1 = gdf.total_bounds
            assert minx <= x0 and miny <= y0 and x1 <= maxx and y1 <= maxy, cid
        times = _temporal_values(sample_data, cid)
        if "temporal" in extent:
            begin, end = extent["temporal"]["interval"][0]
            if times is not None and begin is not None:
                assert times.min() >= pd.Timestamp(begin), cid
            if times is not None and end is not None:
                assert times.max() <= pd.Timestamp(end), cid


def test_req_core_fc_md_extent_multi(feature_collections, sample_data):
    """/req/core/fc-md-extent-multi (17-069r4): the first box/interval covers all data; any
    further ones each cover a part, inside the first."""
    for cid, c in feature_collections.items():
        boxes = c["extent"]["spatial"]["bbox"]
        assert boxes and all(len(b) in (4, 6) for b in boxes), cid
        first = shapely.box(*boxes[0][:2], *boxes[0][-3:-1] if len(boxes[0]) == 6 else boxes[0][2:])
        gdf = sample_data[cid]
        if "geometry" in gdf:
            assert first.covers(shapely.box(*gdf.total_bounds)), cid
        for other in boxes[1:]:
            assert first.covers(shapely.box(*other[:4])), cid
        intervals = c["extent"].get("temporal", {}).get("interval", [[None, None]])
        assert all(len(i) == 2 for i in intervals), cid


def test_req_core_sfc_md_op(feature_collections, live_server):
    """/req/core/sfc-md-op: GET /collections/{collectionId} answers for every collection."""
    for cid in feature_collections:
        assert get(live_server, f"/collections/{cid}").status_code == 200, cid


def test_req_core_sfc_md_success(feature_collections, live_server):
    """/req/core/sfc-md-success: 200 and the same collection object as in /collections."""
    for cid, c in feature_collections.items():
        one = get_json(live_server, f"/collections/{cid}")
        assert one["id"] == cid and one["extent"] == c["extent"], cid
        assert one.get("title") == c.get("title") and one.get("crs") == c.get("crs"), cid


# --- items -------------------------------------------------------------------------------------


def test_req_core_fc_op(feature_collections, live_server):
    """/req/core/fc-op: GET /collections/{collectionId}/items answers for every collection."""
    for cid in feature_collections:
        r = get(live_server, f"/collections/{cid}/items", {"limit": "1"}, accept=GEOJSON)
        assert r.status_code == 200 and r.json()["type"] == "FeatureCollection", cid


def test_req_core_fc_limit_definition(live_server):
    """/req/core/fc-limit-definition: limit is an integer from 1 (to the maximum, 10000 by
    default); limit=1 and 10000 are accepted, 0 is not."""
    assert len(get_json(live_server, ITEMS, limit=1)["features"]) == 1
    assert get_json(live_server, ITEMS, limit=10000, skipGeometry="true")["numberReturned"] > 1
    refused(live_server, ITEMS, {"limit": "0"})


@pytest.mark.parametrize("limit", [1, 7, 250])
def test_req_core_fc_limit_response_1(live_server, limit):
    """/req/core/fc-limit-response-1: no more features than ``limit`` (when more match)."""
    doc = get_json(live_server, ITEMS, limit=limit)
    assert doc["numberReturned"] == len(doc["features"]) == limit < doc["numberMatched"]


def test_req_core_fc_bbox_definition(live_server, sample_data):
    """/req/core/fc-bbox-definition: bbox of four numbers (CRS84) or six (with heights)."""
    expected = _incidents_in(sample_data, shapely.box(*BOX))
    assert _ids(live_server, bbox=",".join(map(str, BOX))) == expected
    six = f"{BOX[0]},{BOX[1]},-100,{BOX[2]},{BOX[3]},9000"
    assert _ids(live_server, bbox=six) == expected


def test_req_core_fc_bbox_definition_antimeridian(live_server, sample_data):
    """/req/core/fc-bbox-definition (§7.15.3): a box whose lower-left longitude is greater than
    its upper-right one spans the antimeridian; it was a 400. ``109.48 .. 180`` and
    ``-180 .. -179`` hold the incidents east of 109.48."""
    bbox = "109.48,18.2,-179,18.7"
    west, east = shapely.box(109.48, 18.2, 180, 18.7), shapely.box(-180, 18.2, -179, 18.7)
    expected = _incidents_in(sample_data, shapely.MultiPolygon([west, east]))
    assert expected and _ids(live_server, bbox=bbox) == expected
    # the same box as lat/lon in EPSG:4326, and as a CQL2 BBOX, select the same features
    latlon = {
        "bbox": "18.2,109.48,18.7,-179",
        "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326",
    }
    assert _ids(live_server, **latlon) == expected
    cql = "S_INTERSECTS(geometry, BBOX(109.48, 18.2, -179, 18.7))"
    assert _ids(live_server, filter=cql, **{"filter-lang": "cql2-text"}) == expected
    # a box across the antimeridian that misses the district matches nothing
    assert _matched(live_server, bbox="170,-10,-170,10") == 0


def test_req_core_fc_bbox_response(live_server, sample_data):
    """/req/core/fc-bbox-response: exactly the features whose geometry intersects the box
    (points, and polygons that only partly overlap it); a collection without geometries
    (departments) is matched whole."""
    box = shapely.box(*BOX)
    assert _ids(live_server, bbox=",".join(map(str, BOX))) == _incidents_in(sample_data, box)
    com = sample_data["communities"]
    expected = set(com.loc[com.geometry.intersects(box), "code"].astype(str))
    got = _ids(live_server, "/collections/communities/items", bbox=",".join(map(str, BOX)))
    assert got == expected and len(expected) < len(com)
    n = len(sample_data["departments"])
    assert _matched(live_server, "/collections/departments/items", bbox="0,0,1,1") == n


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-01T08:00:00Z",
        "2026-03-01T00:00:00Z/2026-03-31T23:59:59Z",
        "2026-03-01T00:00:00+08:00/..",
        "../2026-03-01T00:00:00Z",
        "/2026-03-01T00:00:00Z",
        "2026-03-01T00:00:00Z/",
        "2026-03-01/2026-03-02",
    ],
)
def test_req_core_fc_time_definition(live_server, value):
    """/req/core/fc-time-definition: datetime takes an instant, a bounded and a half-bounded
    interval (``..`` or empty)."""
    r = get(live_server, ITEMS, {"datetime": value, "limit": "1"})
    assert r.status_code == 200, (value, r.text[:200])


def test_req_core_fc_time_response(live_server, sample_data):
    """/req/core/fc-time-response: exactly the features whose time is in the interval
    (A, D, E, F: bounded and half-bounded)."""
    times = _temporal_values(sample_data, "incidents")
    lo, hi = pd.Timestamp("2026-03-01T00:00:00Z"), pd.Timestamp("2026-03-15T00:00:00Z")
    inc = sample_data["incidents"]
    closed = set(inc.loc[(times >= lo) & (times <= hi), "case_no"])
    got = _ids(live_server, datetime="2026-03-01T00:00:00Z/2026-03-15T00:00:00Z")
    assert closed and got == closed
    after = int((times >= hi).sum())
    assert _matched(live_server, datetime="2026-03-15T00:00:00Z/..") == after
    assert _matched(live_server, datetime="/2026-03-01T00:00:00Z") == int((times <= lo).sum())
    instant = times.iloc[0].isoformat().replace("+00:00", "Z")
    assert _matched(live_server, datetime=instant) == int((times == times.iloc[0]).sum())


def test_req_core_fc_time_response_no_temporal_field(live_server, sample_data):
    """/req/core/fc-time-response C: datetime matches every feature that has no temporal
    geometry, so on a collection without a temporal field it is every feature (was a 400)."""
    for cid in ("party_building", "communities", "departments"):
        path = f"/collections/{cid}/items"
        n = len(sample_data[cid])
        assert _matched(live_server, path, datetime="2026-03-01T00:00:00Z") == n, cid
        assert _matched(live_server, path, datetime="1990-01-01T00:00:00Z/..") == n, cid
    refused(live_server, "/collections/party_building/items", {"datetime": "soon"})


def test_req_core_fc_response(live_server):
    """/req/core/fc-response: type FeatureCollection, features an array of features."""
    doc = get_json(live_server, ITEMS, limit=3, bbox=",".join(map(str, BOX)))
    assert doc["type"] == "FeatureCollection" and isinstance(doc["features"], list)
    assert all(f["type"] == "Feature" for f in doc["features"])
    assert isinstance(doc["links"], list)


def test_req_core_fc_links(live_server):
    """/req/core/fc-links: a self link and an alternate link per other media type, each of
    them answering."""
    doc = get_json(live_server, ITEMS, limit=2)
    self_ = links(doc, "self")
    assert len(self_) == 1 and self_[0]["type"] == GEOJSON
    assert {"text/html", "application/ld+json"} <= {lk["type"] for lk in links(doc, "alternate")}
    for lk in self_ + links(doc, "alternate"):
        r = requests.get(lk["href"], timeout=60)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(
            lk["type"].split(";")[0]
        ), lk


def test_req_core_fc_rel_type(live_server):
    """/req/core/fc-rel-type: every link of an items answer has rel and type."""
    doc = get_json(live_server, ITEMS, limit=2)
    assert doc["links"] and all(lk.get("rel") and lk.get("type") for lk in doc["links"])


def test_req_core_fc_timeStamp(live_server):
    """/req/core/fc-timeStamp: timeStamp, if given, is the RFC 3339 time of the answer."""
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    doc = get_json(live_server, ITEMS, limit=1)
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    stamp = dt.datetime.fromisoformat(doc["timeStamp"].replace("Z", "+00:00"))
    assert stamp.tzinfo is not None and before <= stamp <= after


def test_req_core_fc_numberMatched(live_server, sample_data):
    """/req/core/fc-numberMatched: numberMatched is the number of features matched, whatever
    the page size."""
    n = len(_incidents_in(sample_data, shapely.box(*BOX)))
    assert get_json(live_server, ITEMS, limit=1, bbox=",".join(map(str, BOX)))["numberMatched"] == n
    assert _matched(live_server, "/collections/rivers/items") == len(sample_data["rivers"])


def test_req_core_fc_numberReturned(live_server):
    """/req/core/fc-numberReturned: numberReturned is the number of features in the answer."""
    for params in ({"limit": 4}, {"limit": 4, "offset": 18}, {"bbox": ",".join(map(str, BOX))}):
        doc = get_json(live_server, "/collections/rivers/items", **params)
        assert doc["numberReturned"] == len(doc["features"]), params


# --- one feature -------------------------------------------------------------------------------


def test_req_core_f_op(feature_collections, live_server):
    """/req/core/f-op: GET /collections/{collectionId}/items/{featureId} for a feature of
    every collection."""
    for cid in feature_collections:
        first = get_json(live_server, f"/collections/{cid}/items", limit=1)["features"][0]
        r = get(live_server, f"/collections/{cid}/items/{first['id']}", accept=GEOJSON)
        assert r.status_code == 200, cid


def test_req_core_f_success(live_server, sample_data):
    """/req/core/f-success: 200 and the feature: id, geometry and properties of the sample."""
    row = sample_data["rivers"].iloc[3]
    feat = get_json(live_server, f"/collections/rivers/items/{row['segment_code']}")
    assert feat["type"] == "Feature" and feat["id"] == row["segment_code"]
    assert shapely.geometry.shape(feat["geometry"]).equals_exact(row.geometry, 1e-9)
    assert feat["properties"]["name"] == row["name"]


def test_req_core_f_links(live_server):
    """/req/core/f-links: self, alternate (each other media type) and collection links, each
    with a type."""
    feat = get_json(live_server, "/collections/rivers/items/HD460204001")
    assert len(links(feat, "self")) == 1 and links(feat, "self")[0]["type"] == GEOJSON
    assert "text/html" in {lk["type"] for lk in links(feat, "alternate")}
    coll = links(feat, "collection")
    assert [lk["href"] for lk in coll] == [f"{live_server.url}/collections/rivers"]
    for rel in ("self", "alternate", "collection"):
        assert all(lk.get("type") for lk in links(feat, rel)), rel


# --- GeoJSON -----------------------------------------------------------------------------------


def test_req_geojson_definition(live_server):
    """/req/geojson/definition: items and a feature are served as application/geo+json, by
    Accept and by ``f=json``."""
    for path in (ITEMS, "/collections/rivers/items/HD460204001"):
        for r in (get(live_server, path, accept=GEOJSON), get(live_server, path, {"f": "json"})):
            assert r.status_code == 200 and r.headers["Content-Type"].startswith(GEOJSON), path


def test_req_geojson_content(live_server):
    """/req/geojson/content: a FeatureCollection and a Feature of RFC 7946 with the links as
    the foreign member ``links``."""
    doc = get_json(live_server, "/collections/communities/items", limit=2)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 2
    for feat in doc["features"]:
        assert feat["type"] == "Feature" and isinstance(feat["properties"], dict)
        geom = shapely.geometry.shape(feat["geometry"])
        assert geom.is_valid and geom.geom_type in ("Polygon", "MultiPolygon")
    assert links(doc, "self")
    one = get_json(live_server, "/collections/rivers/items/HD460204001")
    assert one["type"] == "Feature" and one["geometry"]["type"] == "LineString"
    assert links(one, "collection")


# --- HTML --------------------------------------------------------------------------------------

_HTML_PATHS = (
    "/",
    "/conformance",
    "/collections",
    "/collections/rivers",
    "/collections/rivers/items",
    "/collections/rivers/items/HD460204001",
)


@pytest.mark.parametrize("path", _HTML_PATHS)
def test_req_html_definition(live_server, path):
    """/req/html/definition: every resource is served as text/html, by Accept and by f=html."""
    assert_html5(get(live_server, path, accept="text/html"))
    assert_html5(get(live_server, path, {"f": "html"}))


@pytest.mark.parametrize("path", _HTML_PATHS)
def test_req_html_content(live_server, path):
    """/req/html/content: an HTML 5 document with the information of the JSON answer and all
    of its links as ``<a>`` elements (pygeoapi's pages left some out)."""
    page = assert_html5(get(live_server, path, {"f": "html"}))
    doc = get_json(live_server, path)
    assert_links_in_html(doc, page)
    if path == "/conformance":
        assert all(uri in page for uri in doc["conformsTo"])
    if path == "/collections":
        assert {f"{live_server.url}/collections/{c['id']}" for c in doc["collections"]} <= anchors(
            page
        )
    if path.endswith("/items"):
        ids = [str(f["id"]) for f in doc["features"]]
        assert ids and all(i in page for i in ids)
    if path.endswith("HD460204001"):
        assert doc["properties"]["name"] in page
