"""OGC API - Features - Part 3: Filtering (OGC 19-079r2), each requirement, on both stores.

Requirement texts: ``extensions/filtering/standard/requirements/`` of
opengeospatial/ogcapi-features (queryables, queryables-query-parameters, filter and
features-filter). The stored copy of ``features-filter/REQ_filter-param.adoc`` is missing; its
id and text are those the clause includes ("the HTTP GET operation on
``/collections/{collectionId}/items`` SHALL support the ``filter`` parameter"), as for
``filter-lang`` and ``filter-crs``. Results are compared with the same predicate computed
from the sample data (pandas, shapely). The CQL2 language itself is tested in
``tests/test_conformance_cql2.py``.
"""

import json

import pandas as pd
import pyproj
import pytest
import requests
import shapely

from layers.catalogue import LAYERS

pytestmark = pytest.mark.both_stores  # GeoPackage and PostGIS (tests/stores.py)

_PART3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"

#: Conformance classes tested here -> every requirement of each (from the standard's text:
#: OGC 19-079r2, OGC API - Features - Part 3 §6 to §9), one test or more per requirement.
CONFORMANCE = {
    _PART3 + "queryables": (
        "/req/queryables/get-queryables-op",
        "/req/queryables/get-queryables-response",
    ),
    _PART3 + "queryables-query-parameters": ("/req/queryables-query-parameters/parameters",),
    _PART3 + "filter": (
        "/req/filter/filter-param",
        "/req/filter/filter-lang-param",
        "/req/filter/filter-crs-wgs84",
        "/req/filter/filter-crs-param",
        "/req/filter/expression-construction",
        "/req/filter/mixing-expressions",
        "/req/filter/response",
    ),
    _PART3 + "features-filter": (
        "/req/features-filter/get-queryables-op",
        "/req/features-filter/queryables-link",
        "/req/features-filter/filter-param",
        "/req/features-filter/filter-lang-param",
        "/req/features-filter/filter-crs-param",
        "/req/features-filter/response",
    ),
}

QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
#: A point inside a community (CRS84) and a box over part of the district.
POINT = (109.4823, 18.2893)
BOX = (109.45, 18.22, 109.55, 18.32)


def _json(server, path, role=None, **params):
    r = server.get(path, role=role, params=params)
    assert r.status_code == 200, (path, params, r.status_code, r.text[:300])
    return r


def _ids(server, lid, role=None, **params) -> list:
    base = {"f": "json", "limit": 10000, "skipGeometry": "true", "properties": LAYERS[lid].key}
    fc = _json(server, f"/collections/{lid}/items", role, **{**base, **params}).json()
    assert fc["numberMatched"] == len(fc["features"])
    return sorted(f["id"] for f in fc["features"])


def _want(frame, lid, mask) -> list:
    mask = pd.Series(mask, index=frame.index).fillna(False).astype(bool)
    return sorted(frame.loc[mask, LAYERS[lid].key].tolist())


def _status(server, lid, **params) -> int:
    r = requests.get(f"{server.url}/collections/{lid}/items", params=params, timeout=30)
    return r.status_code


@pytest.fixture(scope="module")
def collections(live_server, sample_data):
    """Every collection of features the public sees (coverages have no items) whose sample
    the tests can compute answers from."""
    doc = _json(live_server, "/collections", f="json").json()
    return [c["id"] for c in doc["collections"] if c["id"] in LAYERS and c["id"] in sample_data]


@pytest.fixture(scope="module")
def queryables(live_server, collections):
    out = {}
    for cid in collections:
        r = live_server.get(
            f"/collections/{cid}/queryables", headers={"Accept": "application/schema+json"}
        )
        assert r.status_code == 200, (cid, r.status_code)
        out[cid] = (r, r.json())
    return out


# --- Queryables -----------------------------------------------------------------------------------


def test_req_queryables_get_queryables_op(live_server, collections, queryables):
    """/req/queryables/get-queryables-op A, B: GET /collections/{collectionId}/queryables for
    every collection of /collections, as application/schema+json; C: each collection links
    it with rel ``http://www.opengis.net/def/rel/ogc/1.0/queryables``."""
    assert {"incidents", "departments", "communities"} <= set(collections)
    for cid in collections:
        r, _doc = queryables[cid]
        assert r.headers["Content-Type"].startswith("application/schema+json"), cid
        coll = _json(live_server, f"/collections/{cid}", f="json").json()
        links = [ln for ln in coll["links"] if ln["rel"] == QUERYABLES_REL]
        assert links, cid
        hrefs = {ln["href"].split("?")[0] for ln in links}
        assert hrefs == {f"{live_server.url}/collections/{cid}/queryables"}, (cid, hrefs)


def test_req_queryables_get_queryables_response(live_server, collections, queryables):
    """/req/queryables/get-queryables-response A: 200; B: ``$schema`` 2020-12, ``$id`` the URI
    without query, ``type`` object, and each property is a queryable: a filter on it is
    answered (``IS NULL`` on each property, S_INTERSECTS on the geometry), with the type the
    catalogue gives it. ``departments`` has no geometry, so no ``geometry`` queryable
    (pygeoapi listed one, and a filter on it was a 400)."""
    types = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
    for cid in collections:
        _r, doc = queryables[cid]
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"] == f"{live_server.url}/collections/{cid}/queryables"
        assert doc["type"] == "object" and doc["properties"], cid
        layer = LAYERS[cid]
        assert ("geometry" in doc["properties"]) == (layer.geometry_type is not None), cid
        for name, schema in doc["properties"].items():
            if name == "geometry":
                text = "S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*BOX)
            else:
                f = layer.field_map[name]
                if f.type in types:
                    assert schema["type"] == types[f.type], (cid, name, schema)
                else:  # dates and datetimes
                    assert schema["type"] == "string" and schema["format"] in ("date", "date-time")
                text = f'"{name}" IS NULL'
            r = requests.get(
                f"{live_server.url}/collections/{cid}/items",
                params={"filter": text, "resulttype": "hits"},
                timeout=30,
            )
            assert r.status_code == 200, (cid, text, r.text[:200])


# --- Queryables as query parameters ------------------------------------------------------------


def test_req_queryables_query_parameters_parameters(
    live_server, collections, queryables, sample_data
):
    """/req/queryables-query-parameters/parameters A: each queryable with a simple value is a
    query parameter of items; B: the answer holds exactly the features with that value (one
    value of each such queryable, taken from the sample)."""
    for cid in collections:
        _r, doc = queryables[cid]
        frame = sample_data[cid]
        for name, schema in doc["properties"].items():
            if schema.get("type") not in ("string", "integer", "number", "boolean"):
                continue
            values = frame[name].dropna()
            if values.empty:
                continue
            value = values.value_counts().index[-1]  # its rarest value: a page holds them
            if isinstance(value, pd.Timestamp):
                text = value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                mask = frame[name] == value
            elif hasattr(value, "isoformat"):  # a date
                text, mask = value.isoformat(), frame[name] == value
            elif isinstance(value, bool) or str(value) in ("True", "False"):
                text, mask = str(value).lower(), frame[name] == value
            else:
                text, mask = str(value), frame[name] == value
            got = _ids(live_server, cid, **{name: text})
            assert got == _want(frame, cid, mask) and got, (cid, name, text)


# --- Filter ------------------------------------------------------------------------------------


def test_req_filter_filter_param(live_server, sample_data):
    """/req/filter/filter-param: items take ``filter`` (a string, form style); the features
    are those the filter selects."""
    inc = sample_data["incidents"]
    got = _ids(live_server, "incidents", filter="status = 'returned' OR status = 'closed'")
    assert got == _want(inc, "incidents", inc["status"].isin(["returned", "closed"])) and got


def _items_parameters(server) -> dict[str, dict]:
    """The parameters the OpenAPI document gives the items operation of each collection."""
    doc = _json(server, "/openapi", f="json").json()

    def resolve(p):
        while "$ref" in p:
            node = doc
            for part in p["$ref"].lstrip("#/").split("/"):
                node = node[part]
            p = node
        return p

    out = {}
    for cid in LAYERS:
        op = doc["paths"].get(f"/collections/{cid}/items", {}).get("get")
        if op is not None:
            out[cid] = {q["name"]: q for q in map(resolve, op.get("parameters", []))}
    return out


def test_req_filter_filter_lang_param(live_server, sample_data):
    """/req/filter/filter-lang-param A: ``filter-lang`` is a parameter of the items operation
    (the OpenAPI document describes it with ``filter``); B: its enum lists the encodings the
    server supports, cql2-text and cql2-json, each answered; C: its default is the encoding
    assumed without it, cql2-text. An encoding not supported is a 400."""
    params = _items_parameters(live_server)
    assert params, "the OpenAPI document has no items operation"
    for cid, ps in params.items():
        assert "filter" in ps and ps["filter"]["schema"]["type"] == "string", cid
        lang = ps.get("filter-lang")
        assert lang is not None, f"{cid}: no filter-lang parameter in the OpenAPI document"
        assert set(lang["schema"]["enum"]) == {"cql2-text", "cql2-json"}, cid
        assert lang["schema"]["default"] == "cql2-text", cid
    inc = sample_data["incidents"]
    want = _want(inc, "incidents", inc["channel"] == "wechat")
    text, js = (
        "channel = 'wechat'",
        json.dumps({"op": "=", "args": [{"property": "channel"}, "wechat"]}),
    )
    assert _ids(live_server, "incidents", filter=text) == want  # the default: text
    assert _ids(live_server, "incidents", filter=text, **{"filter-lang": "cql2-text"}) == want
    assert _ids(live_server, "incidents", filter=js, **{"filter-lang": "cql2-json"}) == want
    assert _status(live_server, "incidents", filter=text, **{"filter-lang": "cql-text"}) == 400
    # text is not JSON nor JSON text
    assert _status(live_server, "incidents", filter=text, **{"filter-lang": "cql2-json"}) == 400
    assert _status(live_server, "incidents", filter=js, **{"filter-lang": "cql2-text"}) == 400


def test_req_filter_filter_crs_wgs84(live_server, sample_data):
    """/req/filter/filter-crs-wgs84: without ``filter-crs`` a geometry literal is CRS84
    (longitude, latitude): the point is in one community; coordinates beyond CRS84's range
    (the same numbers as latitude, longitude; the abstract test's 1000000) are a 400."""
    c = sample_data["communities"]
    pt = shapely.Point(*POINT)
    want = _want(c, "communities", c.intersects(pt))
    assert len(want) == 1
    assert _ids(live_server, "communities", filter=f"S_INTERSECTS(geometry, {pt.wkt})") == want
    # the same numbers read as latitude, longitude: latitude 109 is no place in CRS84
    swapped = f"S_INTERSECTS(geometry, POINT({POINT[1]} {POINT[0]}))"
    assert _status(live_server, "communities", filter=swapped) == 400
    # no place in CRS84 (the abstract test's second step): a 400, also as a BBOX and in JSON
    huge = "S_INTERSECTS(geometry, BBOX(1000000, 1000000, 2000000, 2000000))"
    assert _status(live_server, "communities", filter=huge) == 400
    js = {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [1e6, 1e6, 2e6, 2e6]}]}
    assert (
        _status(live_server, "communities", filter=json.dumps(js), **{"filter-lang": "cql2-json"})
        == 400
    )
    # and as a CQL2 JSON POST body (it was answered as an empty page)
    r = requests.post(
        f"{live_server.url}/collections/communities/items",
        data=json.dumps(js),
        headers={"Content-Type": "application/query-cql-json"},
        timeout=30,
    )
    assert r.status_code == 400 and "-180..180" in r.json()["description"], r.text
    # the same numbers in a projected filter-crs are a place (here: none of ours)
    assert _ids(live_server, "communities", filter=huge, **{"filter-crs": EPSG + "3857"}) == []
    box = shapely.box(*BOX)
    inc = sample_data["incidents"]
    got = _ids(
        live_server, "incidents", filter="S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*BOX)
    )
    assert got == _want(inc, "incidents", inc.intersects(box)) and got


@pytest.mark.parametrize("code", ["4326", "4490", "3857", "32649"])
def test_req_filter_filter_crs_param(live_server, sample_data, code):
    """/req/filter/filter-crs-param A, B: with ``filter-crs`` the literals are in that CRS (in
    its axis order: latitude first for EPSG:4326 and 4490), giving the features of the same
    area in CRS84; C: a CRS the collection does not offer is a 400."""
    c = sample_data["communities"]
    poly = shapely.box(109.47, 18.27, 109.50, 18.30)
    t = pyproj.Transformer.from_crs("OGC:CRS84", f"EPSG:{code}")  # the CRS's own axis order
    there = shapely.transform(
        poly, lambda xy: shapely.get_coordinates(shapely.points(*t.transform(xy[:, 0], xy[:, 1])))
    )
    # the literal's vertices come back to CRS84 as the server transforms them: compare with that
    back = pyproj.Transformer.from_crs(f"EPSG:{code}", "OGC:CRS84")
    here = shapely.transform(
        there,
        lambda xy: shapely.get_coordinates(shapely.points(*back.transform(xy[:, 0], xy[:, 1]))),
    )
    want = _want(c, "communities", c.intersects(here))
    assert want
    got = _ids(
        live_server,
        "communities",
        filter=f"S_INTERSECTS(geometry, {shapely.to_wkt(there, rounding_precision=10)})",
        **{"filter-crs": EPSG + code},
    )
    assert got == want
    # a BBOX is a geometry of the filter too: its corners are in filter-crs
    lo, hi = there.bounds[:2], there.bounds[2:]
    box_back = shapely.transform(
        shapely.box(*lo, *hi),
        lambda xy: shapely.get_coordinates(shapely.points(*back.transform(xy[:, 0], xy[:, 1]))),
    )
    got = _ids(
        live_server,
        "communities",
        filter="S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*lo, *hi),
        **{"filter-crs": EPSG + code},
    )
    assert got == _want(c, "communities", c.intersects(box_back)) and got
    assert (
        _status(live_server, "communities", filter="TRUE", **{"filter-crs": EPSG + "27700"}) == 400
    )


def test_req_filter_expression_construction(live_server, collections):
    """/req/filter/expression-construction: only queryables may be used; a filter naming any
    other property is a 400 on every collection (also a field the caller may not see)."""
    for cid in collections:
        assert _status(live_server, cid, filter="this_is_not_a_queryable IS NULL") == 400, cid
    assert _status(live_server, "incidents", filter="reporter_phone IS NULL") == 400
    ok = requests.get(
        f"{live_server.url}/collections/incidents/items",
        params={"filter": "reporter_phone IS NULL", "resulttype": "hits"},
        headers={"Authorization": "Bearer test-admin-key"},
        timeout=30,
    )
    assert ok.status_code == 200  # a queryable of a trusted role


def test_req_filter_mixing_expressions(live_server, sample_data):
    """/req/filter/mixing-expressions: ``bbox``, ``datetime`` and property parameters are
    ANDed with ``filter``."""
    inc = sample_data["incidents"]
    start, end = pd.Timestamp("2026-06-01T00:00:00Z"), pd.Timestamp("2026-09-30T23:59:59Z")
    mask = (
        inc.intersects(shapely.box(*BOX))
        & inc["reported_at"].between(start, end)
        & (inc["status"] == "evaluated")
        & ((inc["channel"] == "wechat") | (inc["priority"] == "urgent"))
    )
    got = _ids(
        live_server,
        "incidents",
        filter="channel = 'wechat' OR priority = 'urgent'",
        bbox=",".join(map(str, BOX)),
        datetime="2026-06-01T00:00:00Z/2026-09-30T23:59:59Z",
        status="evaluated",
    )
    assert got == _want(inc, "incidents", mask) and got


def test_req_filter_response(live_server, sample_data):
    """/req/filter/response A, B, C: the filter is evaluated for each item: those where it is
    TRUE are in the result, those where it is FALSE are not (a filter and its negation
    partition a property without NULLs)."""
    b = sample_data["building_population"]
    yes = _ids(live_server, "building_population", filter="floors > 10")
    no = _ids(live_server, "building_population", filter="NOT (floors > 10)")
    assert yes == _want(b, "building_population", b["floors"] > 10) and yes
    assert no == _want(b, "building_population", b["floors"] <= 10) and no
    assert sorted(yes + no) == sorted(b["building_code"])


# --- Features Filter ---------------------------------------------------------------------------


def test_req_features_filter_get_queryables_op(live_server, collections, queryables):
    """/req/features-filter/get-queryables-op A, B: every feature collection of /collections
    has its Queryables resource."""
    for cid in collections:
        r, doc = queryables[cid]
        assert r.status_code == 200 and doc["properties"], cid


def test_req_features_filter_queryables_link(live_server, collections):
    """/req/features-filter/queryables-link: each Collection resource links its Queryables
    (rel ``…/ogc/1.0/queryables``), and the link resolves to them."""
    for cid in collections:
        coll = _json(live_server, f"/collections/{cid}", f="json").json()
        link = next(ln for ln in coll["links"] if ln["rel"] == QUERYABLES_REL)
        r = requests.get(link["href"], timeout=30)
        assert r.status_code == 200 and r.json()["$id"].endswith(f"/collections/{cid}/queryables")


def test_req_features_filter_filter_param(live_server, collections, sample_data):
    """/req/features-filter/filter-param: items of every collection take ``filter``."""
    for cid in collections:
        frame = sample_data[cid]
        key = LAYERS[cid].key
        value = frame[key].iloc[0]
        got = _ids(live_server, cid, filter=f"{key} = '{value}'")
        assert got == _want(frame, cid, frame[key] == value) and len(got) == 1, cid


def test_req_features_filter_filter_lang_param(live_server, sample_data):
    """/req/features-filter/filter-lang-param: items take ``filter-lang`` (both encodings
    give the same features; see /req/filter/filter-lang-param for the document)."""
    c = sample_data["communities"]
    js = {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": list(BOX)}]}
    want = _want(c, "communities", c.intersects(shapely.box(*BOX)))
    text = "S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*BOX)
    assert _ids(live_server, "communities", filter=text, **{"filter-lang": "cql2-text"}) == want
    assert (
        _ids(live_server, "communities", filter=json.dumps(js), **{"filter-lang": "cql2-json"})
        == want
    )
    assert want


def test_req_features_filter_filter_crs_param(live_server, sample_data):
    """/req/features-filter/filter-crs-param: items take ``filter-crs`` (the server offers
    other CRSs, Part 2): the point in latitude, longitude order for EPSG:4326 finds its
    community."""
    c = sample_data["communities"]
    want = _want(c, "communities", c.intersects(shapely.Point(*POINT)))
    got = _ids(
        live_server,
        "communities",
        filter=f"S_INTERSECTS(geometry, POINT({POINT[1]} {POINT[0]}))",
        **{"filter-crs": EPSG + "4326"},
    )
    assert got == want and len(want) == 1


def test_req_features_filter_response(live_server, sample_data):
    """/req/features-filter/response A–D: the filter and the other filtering parameters are
    evaluated for each feature, and a feature is returned when all are TRUE; E: an invalid
    ``filter``, ``filter-lang`` or ``filter-crs`` is a 400."""
    inc = sample_data["incidents"]
    mask = (
        (inc["category"] == "waterlogging")
        & inc.intersects(shapely.box(*BOX))
        & (inc["channel"] != "wechat")
    )
    got = _ids(
        live_server,
        "incidents",
        filter="NOT channel = 'wechat'",
        bbox=",".join(map(str, BOX)),
        category="waterlogging",
    )
    assert got == _want(inc, "incidents", mask) and got
    for params in (
        {"filter": "THIS IS NOT A FILTER"},
        {"filter": "status = 'x'", "filter-lang": "cql3"},
        {"filter": "S_INTERSECTS(geometry, POINT(1 2))", "filter-crs": "EPSG:bogus"},
    ):
        r = requests.get(
            f"{live_server.url}/collections/incidents/items", params=params, timeout=30
        )
        assert r.status_code == 400, params
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["description"], params
