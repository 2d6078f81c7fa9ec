"""OGC API - Features - Part 2: Coordinate Reference Systems by Reference (OGC 18-058), class
CRS, requirement by requirement against a live server on both stores.

Requirement texts: ``opengeospatial/ogcapi-features`` ``extensions/crs/standard/requirements/``
(the published 1.0 requirements, and those the repository's text adds: default values,
exceptions, storageCrs valid value, the CRS URI format model). Left out: the
``ogc-crs-header-axis-*`` files, a draft's ``OGC-CRS`` header with an ``axisOrder`` parameter
that the standard replaced by ``Content-Crs`` (/req/crs/ogc-crs-header). Coordinates are
checked against the sample data transformed here with pyproj, never against the store.
"""

from __future__ import annotations

import pyproj
import pytest
import shapely
from featureskit import CRS84, GEOJSON, get, get_json, refused

pytestmark = pytest.mark.both_stores

#: Conformance classes tested here -> every requirement of each (OGC 18-058 §6-§7), one test or
#: more per requirement.
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs": (
        "/req/crs/crs-uri",
        "/req/crs/crs-format-model",
        "/req/crs/fc-md-crs-list",
        "/req/crs/fc-md-crs-list-defaultCrs",
        "/req/crs/fc-md-storageCrs",
        "/req/crs/fc-md-storageCrs-valid-value",
        "/req/crs/fc-md-crs-list-global",
        "/req/crs/fc-bbox-crs-definition",
        "/req/crs/fc-bbox-crs-valid-value",
        "/req/crs/fc-bbox-crs-valid-defaultValue",
        "/req/crs/fc-bbox-crs-action",
        "/req/crs/bbox-crs-exception",
        "/req/crs/fc-crs-definition",
        "/req/crs/fc-crs-valid-value",
        "/req/crs/fc-crs-default-value",
        "/req/crs/fc-crs-action",
        "/req/crs/crs-exception",
        "/req/crs/ogc-crs-header",
        "/req/crs/ogc-crs-header-value",
        "/req/crs/geojson",
    ),
}

ITEMS = "/collections/incidents/items"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
#: A box in the district (CRS84) and a feature to follow through the CRSs.
BOX = (109.45, 18.28, 109.5, 18.32)
RIVER = "/collections/rivers/items/HD460204001"


@pytest.fixture(scope="module")
def spatial(live_server) -> dict[str, dict]:
    """The spatial feature collections (those with geometries) by id."""
    doc = get_json(live_server, "/collections")
    return {
        c["id"]: c
        for c in doc["collections"]
        if c.get("itemType") == "feature" and c["id"] != "departments"
    }


def _transformer(uri: str) -> pyproj.Transformer:
    """CRS84 -> ``uri``, in ``uri``'s authority axis order (EPSG:4326: latitude first)."""
    target = "OGC:CRS84" if uri == CRS84 else "EPSG:" + uri.rsplit("/", 1)[-1]
    return pyproj.Transformer.from_crs("OGC:CRS84", target)


def _ids(server, **params) -> set[str]:
    doc = get_json(server, ITEMS, limit=10000, skipGeometry="true", **params)
    assert doc["numberReturned"] == doc["numberMatched"]
    return {f["id"] for f in doc["features"]}


def test_req_crs_crs_uri(spatial):
    """/req/crs/crs-uri: every CRS offered is referenced by a URI."""
    for cid, c in spatial.items():
        assert c["crs"], cid
        for uri in c["crs"]:
            assert uri.startswith("http://www.opengis.net/def/crs/"), (cid, uri)


def test_req_crs_crs_format_model(spatial, live_server):
    """/req/crs/crs-format-model: identifiers of the form
    ``http://www.opengis.net/def/crs/{authority}/{version}/{code}`` are handled: each one a
    collection lists is understood as a ``crs`` value."""
    for uri in spatial["rivers"]["crs"]:
        authority, version, code = uri.removeprefix("http://www.opengis.net/def/crs/").split("/")
        assert authority in ("OGC", "EPSG") and version.replace(".", "").isdigit() and code
        r = get(live_server, RIVER, {"f": "json", "crs": uri})
        assert r.status_code == 200 and r.headers["Content-Crs"] == f"<{uri}>", uri


def test_req_crs_fc_md_crs_list(spatial):
    """/req/crs/fc-md-crs-list: each spatial collection lists its CRSs (A), the Part 1
    default CRS84 among them (B)."""
    for cid, c in spatial.items():
        assert isinstance(c["crs"], list) and CRS84 in c["crs"], cid


def test_req_crs_fc_md_crs_list_defaultCrs(live_server, sample_data):
    """/req/crs/fc-md-crs-list-defaultCrs: without ``crs`` the coordinates are CRS84 (the
    sample's longitude, latitude) and the answer says so."""
    r = get(live_server, RIVER, {"f": "json"})
    assert r.headers["Content-Crs"] == f"<{CRS84}>"
    river = sample_data["rivers"].set_index("segment_code").loc["HD460204001", "geometry"]
    assert shapely.geometry.shape(r.json()["geometry"]).equals_exact(river, 1e-9)


def test_req_crs_fc_md_storageCrs(spatial):
    """/req/crs/fc-md-storageCrs: the stores hold every feature in CRS84: storageCrs says it."""
    for cid, c in spatial.items():
        assert c["storageCrs"] == CRS84, cid


def test_req_crs_fc_md_storageCrs_valid_value(spatial):
    """/req/crs/fc-md-storageCrs-valid-value: storageCrs is one of the listed CRSs."""
    for cid, c in spatial.items():
        assert c["storageCrs"] in c["crs"], cid


def test_req_crs_fc_md_crs_list_global(live_server, spatial):
    """/req/crs/fc-md-crs-list-global: a collection whose list points at the global one
    (``#/crs``) may use every CRS of /collections' ``crs``; each collection's CRSs, global or
    its own, answer items."""
    doc = get_json(live_server, "/collections")
    for cid, c in spatial.items():
        crs = list(c["crs"])
        if "#/crs" in crs:
            assert doc.get("crs"), "a #/crs reference without a global list"
            crs = [u for u in crs if u != "#/crs"] + doc["crs"]
        for uri in crs:
            r = get(live_server, f"/collections/{cid}/items", {"limit": "1", "crs": uri})
            assert r.status_code == 200, (cid, uri, r.text[:200])


def test_req_crs_fc_bbox_crs_definition(live_server):
    """/req/crs/fc-bbox-crs-definition: items take a ``bbox-crs`` URI."""
    r = get(live_server, ITEMS, {"bbox": ",".join(map(str, BOX)), "bbox-crs": CRS84})
    assert r.status_code == 200 and r.json()["type"] == "FeatureCollection"


def test_req_crs_fc_bbox_crs_valid_value(live_server, spatial):
    """/req/crs/fc-bbox-crs-valid-value: each listed CRS is a valid bbox-crs, an unlisted one
    is not (400)."""
    for uri in spatial["incidents"]["crs"]:
        x0, y0, x1, y1 = _transformer(uri).transform_bounds(*BOX)
        r = get(live_server, ITEMS, {"bbox": f"{x0},{y0},{x1},{y1}", "bbox-crs": uri, "limit": "1"})
        assert r.status_code == 200, (uri, r.text[:200])
    refused(live_server, ITEMS, {"bbox": "0,0,1,1", "bbox-crs": EPSG.format(27700)})


def test_req_crs_fc_bbox_crs_valid_defaultValue(live_server, sample_data):
    """/req/crs/fc-bbox-crs-valid-defaultValue: without bbox-crs the box is CRS84."""
    inc = sample_data["incidents"]
    expected = set(inc.loc[inc.geometry.intersects(shapely.box(*BOX)), "case_no"])
    bbox = ",".join(map(str, BOX))
    assert (
        _ids(live_server, bbox=bbox)
        == expected
        == _ids(live_server, bbox=bbox, **{"bbox-crs": CRS84})
    )


@pytest.mark.parametrize("code", [3857, 32649, 4326, 4490])
def test_req_crs_fc_bbox_crs_action(live_server, sample_data, code):
    """/req/crs/fc-bbox-crs-action: a bbox in bbox-crs selects the features inside that box of
    that CRS (the sample's points transformed here; EPSG:4326/4490 boxes are latitude first)."""
    uri = EPSG.format(code)
    t = _transformer(uri)
    x0, y0, x1, y1 = t.transform_bounds(*BOX)
    inc = sample_data["incidents"]
    xs, ys = t.transform(inc.geometry.x.to_numpy(), inc.geometry.y.to_numpy())
    inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    expected = set(inc.loc[inside, "case_no"])
    assert (
        expected and _ids(live_server, bbox=f"{x0},{y0},{x1},{y1}", **{"bbox-crs": uri}) == expected
    )


@pytest.mark.parametrize(
    "value", [EPSG.format(999999), "EPSG:3857", "urn:ogc:def:crs:EPSG::3857", ""]
)
def test_req_crs_bbox_crs_exception(live_server, value):
    """/req/crs/bbox-crs-exception: an invalid or unknown bbox-crs is a 400 with a message."""
    body = refused(live_server, ITEMS, {"bbox": "0,0,1,1", "bbox-crs": value})
    assert "bbox-crs" in body["description"]


def test_req_crs_fc_crs_definition(live_server):
    """/req/crs/fc-crs-definition: items and a feature take a ``crs`` URI."""
    for path in (ITEMS, RIVER):
        r = get(
            live_server,
            path,
            {"crs": EPSG.format(3857), "limit": "1"}
            if path == ITEMS
            else {"crs": EPSG.format(3857)},
        )
        assert r.status_code == 200, path


def test_req_crs_fc_crs_valid_value(live_server, spatial):
    """/req/crs/fc-crs-valid-value: each listed CRS is a valid crs, an unlisted one is not."""
    for uri in spatial["rivers"]["crs"]:
        assert get(live_server, RIVER, {"crs": uri, "f": "json"}).status_code == 200, uri
    refused(live_server, RIVER, {"crs": EPSG.format(27700)})
    refused(live_server, ITEMS, {"crs": EPSG.format(27700)})


def test_req_crs_fc_crs_default_value(live_server, sample_data):
    """/req/crs/fc-crs-default-value: without crs, CRS84 coordinates (longitude first)."""
    doc = get_json(live_server, ITEMS, limit=3)
    inc = sample_data["incidents"].set_index("case_no")
    for feat in doc["features"]:
        p = inc.loc[feat["id"], "geometry"]
        assert feat["geometry"]["coordinates"] == pytest.approx([p.x, p.y], abs=1e-9)


@pytest.mark.parametrize("code", [3857, 32649, 4326])
def test_req_crs_fc_crs_action(live_server, sample_data, code):
    """/req/crs/fc-crs-action: with crs, every coordinate is in that CRS (its own axis order:
    latitude first for EPSG:4326), for items and for one feature."""
    uri = EPSG.format(code)
    t = _transformer(uri)
    river = sample_data["rivers"].set_index("segment_code").loc["HD460204001", "geometry"]
    want = [t.transform(x, y) for x, y in river.coords]
    got = get_json(live_server, RIVER, crs=uri)["geometry"]["coordinates"]
    tol = 1e-3 if code != 4326 else 1e-9
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(list(w), abs=tol)
    doc = get_json(live_server, ITEMS, limit=3, crs=uri)
    inc = sample_data["incidents"].set_index("case_no")
    for feat in doc["features"]:
        p = inc.loc[feat["id"], "geometry"]
        assert feat["geometry"]["coordinates"] == pytest.approx(
            list(t.transform(p.x, p.y)), abs=tol
        )


def test_req_crs_crs_exception(live_server):
    """/req/crs/crs-exception: an invalid or unknown crs is a 400 with a message."""
    for value in (EPSG.format(999999), "EPSG:4326", "north-up"):
        body = refused(live_server, ITEMS, {"crs": value})
        assert "crs" in body["description"], value


@pytest.mark.parametrize("uri", [None, EPSG.format(3857), EPSG.format(4326)])
def test_req_crs_ogc_crs_header(live_server, uri):
    """/req/crs/ogc-crs-header: a Content-Crs header asserts the CRS of items and features."""
    params = {"f": "json"} | ({"crs": uri} if uri else {})
    for path in (ITEMS, RIVER):
        r = get(live_server, path, params)
        assert r.status_code == 200 and "Content-Crs" in r.headers, path


@pytest.mark.parametrize("uri", [CRS84, EPSG.format(3857), EPSG.format(32649)])
def test_req_crs_ogc_crs_header_value(live_server, uri):
    """/req/crs/ogc-crs-header-value: the header is ``<URI>`` of the CRS used."""
    for path in (ITEMS, RIVER):
        r = get(live_server, path, {"f": "json", "crs": uri})
        assert r.headers["Content-Crs"] == f"<{uri}>", path


def test_req_crs_geojson(live_server):
    """/req/crs/geojson: GeoJSON in another CRS only by prior arrangement: the client asked for
    it (crs) and the answer states it (Content-Crs); unasked, it is CRS84 as RFC 7946 says."""
    asked = get(live_server, RIVER, {"f": "json", "crs": EPSG.format(3857)})
    assert asked.headers["Content-Type"].startswith(GEOJSON)
    assert asked.headers["Content-Crs"] == f"<{EPSG.format(3857)}>"
    x, y = asked.json()["geometry"]["coordinates"][0]
    assert abs(x) > 1e6 and abs(y) > 1e6  # metres, not degrees
    plain = get(live_server, RIVER, {"f": "json"})
    assert plain.headers["Content-Crs"] == f"<{CRS84}>"
