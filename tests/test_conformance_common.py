"""OGC API - Common - Part 1: Core (OGC 19-072) classes Core, Landing Page, JSON and HTML, and
Part 2: Geospatial Data (OGC 20-024, draft) class Collections, requirement by requirement
against a live server on both stores.

Requirement texts: ``opengeospatial/ogcapi-common`` ``19-072/requirements/`` and
``19-072/general/requirements/`` (Part 1; the Core class's list of requirement ids is the
published standard's, https://docs.ogc.org/is/19-072/19-072.html: the texts of
query-param-capitalization, -list-delimiter, -list-escape and -value-decimal are not stored,
their abstract tests in ``19-072/abstract_tests/general/`` are), ``collections/requirements/``
(Part 2: ``requirements_class_collections.adoc`` lists the class). Results are compared with
the sample data computed here, never with the store under test.
"""

from __future__ import annotations

import jsonschema
import pytest
import requests
import shapely
from featureskit import (
    assert_html5,
    assert_links_in_html,
    get,
    get_json,
    links,
    refused,
)

from tianya.conformance import DECLARED

pytestmark = pytest.mark.both_stores

#: Conformance classes tested here -> every requirement of each (OGC 19-072 §8-§9, OGC 20-024
#: Collections), one test or more per requirement.
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core": (
        "/req/core/http",
        "/req/core/query-param-name-unknown",
        "/req/core/query-param-value-invalid",
        "/req/core/query-param-capitalization",
        "/req/core/query-param-list-delimiter",
        "/req/core/query-param-list-escape",
        "/req/core/query-param-list-empty",
        "/req/core/query-param-value-boolean",
        "/req/core/query-param-value-integer",
        "/req/core/query-param-value-decimal",
        "/req/core/query-param-value-double",
    ),
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page": (
        "/req/landing-page/root-op",
        "/req/landing-page/root-success",
        "/req/landing-page/api-definition-op",
        "/req/landing-page/api-definition-success",
        "/req/landing-page/conformance-op",
        "/req/landing-page/conformance-success",
    ),
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json": (
        "/req/json/definition",
        "/req/json/content",
    ),
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/html": (
        "/req/html/definition",
        "/req/html/content",
    ),
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections": (
        "/req/collections/collections-list-op",
        "/req/collections/collections-list-success",
        "/req/collections/collections-list-links",
        "/req/collections/collections-list-collections",
        "/req/collections/description-op",
        "/req/collections/description-success",
        "/req/collections/description-links",
        "/req/collections/description-extent",
        "/req/collections/description-extent-multi",
    ),
}

ITEMS = "/collections/incidents/items"
PAGES = ("/", "/conformance", "/collections", "/collections/incidents")
BOX = (109.45, 18.28, 109.5, 18.32)
CONFORMANCE_REL = "http://www.opengis.net/def/rel/ogc/1.0/conformance"

#: The parts of landingPage.yaml, confClasses.yaml and link.yaml (OGC 19-072) an answer must meet.
_LINK = {
    "type": "object",
    "required": ["href", "rel"],
    "properties": {
        "href": {"type": "string"},
        "rel": {"type": "string"},
        "type": {"type": "string"},
        "hreflang": {"type": "string"},
        "title": {"type": "string"},
        "length": {"type": "integer"},
    },
}
LANDING_PAGE = {
    "type": "object",
    "required": ["links"],
    "properties": {
        "title": {"type": "string"},
        "description": {"type": "string"},
        "attribution": {"type": "string"},
        "links": {"type": "array", "items": _LINK},
    },
}
CONF_CLASSES = {
    "type": "object",
    "required": ["conformsTo"],
    "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
}
#: collections.yaml and collectionDesc.yaml (OGC 20-024): the members an answer must have.
_EXTENT = {
    "type": "object",
    "properties": {
        "spatial": {
            "type": "object",
            "properties": {
                "bbox": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "array",
                        "items": {"type": "number"},
                        "minItems": 4,
                        "maxItems": 6,
                    },
                },
                "crs": {"type": "string"},
            },
        },
        "temporal": {
            "type": "object",
            "properties": {
                "interval": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "items": {"type": ["string", "null"]},
                    },
                },
                "trs": {"type": "string"},
            },
        },
    },
}
COLLECTION_DESC = {
    "type": "object",
    "required": ["id", "links"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "links": {"type": "array", "items": _LINK},
        "extent": _EXTENT,
        "itemType": {"type": "string"},
        "crs": {"type": "array", "items": {"type": "string"}},
    },
}
COLLECTIONS = {
    "type": "object",
    "required": ["links", "collections"],
    "properties": {
        "links": {"type": "array", "items": _LINK},
        "collections": {"type": "array", "items": COLLECTION_DESC},
    },
}


@pytest.fixture(scope="module")
def collections(live_server) -> dict[str, dict]:
    return {c["id"]: c for c in get_json(live_server, "/collections")["collections"]}


def _matched(server, **params) -> int:
    return get_json(server, ITEMS, resulttype="hits", **params)["numberMatched"]


def _raw(server, path: str, query: str) -> requests.Response:
    """A request whose query string is sent as written (no escaping by requests)."""
    return requests.get(f"{server.url}{path}?{query}", timeout=60)


# --- Core: HTTP and query parameters -----------------------------------------------------------


def test_req_core_http(live_server):
    """/req/core/http: HTTP 1.1 (RFC 2616/9110): status line, Content-Length, HEAD."""
    for path in PAGES:
        r = get(live_server, path, {"f": "json"}, stream=True)
        assert r.raw.version == 11 and r.status_code == 200, path
        assert int(r.headers["Content-Length"]) == len(r.content), path
        head = requests.head(live_server.url + path, params={"f": "json"}, timeout=30)
        assert head.status_code == 200 and not head.content, path


@pytest.mark.parametrize("path", [*PAGES, ITEMS])
def test_req_core_query_param_name_unknown(live_server, path):
    """/req/core/query-param-name-unknown: a parameter name the API does not specify is a 400
    naming it (pygeoapi ignored it on all but items)."""
    body = refused(live_server, path, {"f": "json", "colour": "red"})
    assert "colour" in body["description"]
    assert get(live_server, path, {"f": "json"}).status_code == 200


@pytest.mark.parametrize(
    "path, params",
    [
        ("/", {"f": "xml"}),
        ("/conformance", {"f": "pdf"}),
        ("/collections", {"f": "gml"}),
        ("/collections/incidents", {"f": "txt"}),
        (ITEMS, {"limit": "many"}),
        (ITEMS, {"skipGeometry": "maybe"}),
    ],
)
def test_req_core_query_param_value_invalid(live_server, path, params):
    """/req/core/query-param-value-invalid: a parameter with an invalid value is a 400."""
    refused(live_server, path, params)


@pytest.mark.parametrize(
    "path, params",
    [
        ("/", {"F": "json"}),
        ("/collections", {"F": "json"}),
        (ITEMS, {"LIMIT": "1"}),
        (ITEMS, {"Bbox": "109.4,18.3,109.5,18.4"}),
        (ITEMS, {"CATEGORY": "street_light"}),
    ],
)
def test_req_core_query_param_capitalization(live_server, path, params):
    """/req/core/query-param-capitalization: names are as the API definition spells them; the
    inverse capitalisation is a 400, the right one a 200."""
    refused(live_server, path, params)
    right = {k.lower(): v for k, v in params.items()}
    assert get(live_server, path, right).status_code == 200


def test_req_core_query_param_list_delimiter(live_server, sample_data):
    """/req/core/query-param-list-delimiter: list values are comma-delimited (bbox, properties,
    sortby); another delimiter is a 400."""
    inc = sample_data["incidents"]
    n = int(inc.geometry.intersects(shapely.box(*BOX)).sum())
    assert _matched(live_server, bbox=",".join(map(str, BOX))) == n
    doc = get_json(live_server, ITEMS, limit=2, properties="category,channel")
    assert all(set(f["properties"]) == {"category", "channel"} for f in doc["features"])
    for query in ("bbox=109.45;18.28;109.5;18.32", "bbox=109.45|18.28|109.5|18.32"):
        assert _raw(live_server, ITEMS, query).status_code == 400, query
    assert _raw(live_server, ITEMS, "properties=category;channel").status_code == 400


def test_req_core_query_param_list_escape(live_server, sample_data):
    """/req/core/query-param-list-escape: percent-escaped commas are read as the commas they
    are; a list written with spaces instead is a 400."""
    inc = sample_data["incidents"]
    n = int(inc.geometry.intersects(shapely.box(*BOX)).sum())
    escaped = "bbox=" + "%2C".join(map(str, BOX)) + "&resulttype=hits&f=json"
    r = _raw(live_server, ITEMS, escaped)
    assert r.status_code == 200 and r.json()["numberMatched"] == n
    assert _raw(live_server, ITEMS, "bbox=" + "%20".join(map(str, BOX))).status_code == 400


def test_req_core_query_param_list_empty(live_server):
    """/req/core/query-param-list-empty: an empty entry is the empty string, which is no
    number of a bbox and no property name: 400."""
    assert _raw(live_server, ITEMS, "bbox=109.45,,109.5,18.32").status_code == 400
    assert _raw(live_server, ITEMS, "bbox=109.45,18.28,109.5,18.32,").status_code == 400
    refused(live_server, ITEMS, {"sortby": "category,,channel"})


def test_req_core_query_param_value_boolean(live_server):
    """/req/core/query-param-value-boolean: ``true`` and ``false`` are the Boolean values."""
    with_geometry = get_json(live_server, ITEMS, limit=2, skipGeometry="false")["features"]
    without = get_json(live_server, ITEMS, limit=2, skipGeometry="true")["features"]
    assert all(f["geometry"] is not None for f in with_geometry)
    assert all(f["geometry"] is None for f in without)
    for value in ("yes", "1", ""):
        refused(live_server, ITEMS, {"skipGeometry": value})


def test_req_core_query_param_value_integer(live_server):
    """/req/core/query-param-value-integer: decimal digits with an optional leading ``-``: a
    negative number is read as one (and refused by its minimum), a fraction is no integer."""
    assert len(get_json(live_server, ITEMS, limit=3)["features"]) == 3
    assert "at least" in refused(live_server, ITEMS, {"limit": "-3"})["description"]
    assert "at least" in refused(live_server, ITEMS, {"offset": "-1"})["description"]
    for value in ("3.0", "3e0", "three"):
        assert "integer" in refused(live_server, ITEMS, {"limit": value})["description"]


def test_req_core_query_param_value_decimal(live_server):
    """/req/core/query-param-value-decimal: decimal numbers (trailing zeros, a leading sign)
    mean their values: the same bbox written two ways selects the same features."""
    plain = _matched(live_server, bbox="109.45,18.28,109.5,18.32")
    assert plain > 0
    assert _matched(live_server, bbox="109.450,18.2800,+109.50,18.320") == plain


def test_req_core_query_param_value_double(live_server):
    """/req/core/query-param-value-double: a mantissa with an optional exponent (``e``); no
    exponent is exponent 0."""
    plain = _matched(live_server, bbox="109.45,18.28,109.5,18.32")
    assert _matched(live_server, bbox="1.0945e2,1828e-2,1.095E2,18.32e0") == plain


# --- Landing page ------------------------------------------------------------------------------


def test_req_landing_page_root_op(live_server):
    """/req/landing-page/root-op: GET / (and its HEAD)."""
    assert get(live_server, "/").status_code == 200
    assert requests.head(live_server.url + "/", timeout=30).status_code == 200


def test_req_landing_page_root_success(live_server):
    """/req/landing-page/root-success: 200, landingPage.yaml, links to the API definition
    (service-desc or service-doc) and to the conformance declaration with the relation
    http://www.opengis.net/def/rel/ogc/1.0/conformance (pygeoapi wrote only "conformance")."""
    doc = get_json(live_server, "/")
    jsonschema.validate(doc, LANDING_PAGE)
    assert links(doc, "service-desc") or links(doc, "service-doc")
    conf = links(doc, CONFORMANCE_REL)
    assert [lk["href"] for lk in conf] == [f"{live_server.url}/conformance"]
    assert requests.get(conf[0]["href"], timeout=30).json()["conformsTo"]


def test_req_landing_page_api_definition_op(live_server):
    """/req/landing-page/api-definition-op: the API definition answers a GET at its link."""
    doc = get_json(live_server, "/")
    for lk in links(doc, "service-desc") + links(doc, "service-doc"):
        assert requests.get(lk["href"], timeout=60).status_code == 200, lk


def test_req_landing_page_api_definition_success(live_server):
    """/req/landing-page/api-definition-success: 200, an API definition, in the media type
    negotiated (Accept or ``f``)."""
    oas = "application/vnd.oai.openapi+json;version=3.0"
    r = get(live_server, "/openapi", accept=oas)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith(oas.split(";")[0])
    assert r.json()["openapi"].startswith("3.0") and r.json()["paths"]
    assert get(live_server, "/openapi", {"f": "json"}).json()["info"]["title"]
    assert_html5(get(live_server, "/openapi", {"f": "html"}))


def test_req_landing_page_conformance_op(live_server):
    """/req/landing-page/conformance-op: GET /conformance."""
    assert get(live_server, "/conformance").status_code == 200


def test_req_landing_page_conformance_success(live_server):
    """/req/landing-page/conformance-success: 200, confClasses.yaml, listing the classes the
    API conforms to: those of this module among them, and exactly the declared list."""
    doc = get_json(live_server, "/conformance")
    jsonschema.validate(doc, CONF_CLASSES)
    assert set(CONFORMANCE) <= set(doc["conformsTo"])
    assert set(CONFORMANCE) <= set(DECLARED)


# --- JSON and HTML -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/conformance"])
def test_req_json_definition(live_server, path):
    """/req/json/definition: the landing page and /conformance as application/json."""
    for r in (
        get(live_server, path, accept="application/json"),
        get(live_server, path, {"f": "json"}),
    ):
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")


def test_req_json_content(live_server):
    """/req/json/content: the JSON answers follow their schemas (landingPage.yaml,
    confClasses.yaml)."""
    jsonschema.validate(get_json(live_server, "/"), LANDING_PAGE)
    jsonschema.validate(get_json(live_server, "/conformance"), CONF_CLASSES)


@pytest.mark.parametrize("path", ["/", "/conformance"])
def test_req_html_definition(live_server, path):
    """/req/html/definition: the landing page and /conformance as text/html."""
    assert_html5(get(live_server, path, accept="text/html"))
    assert_html5(get(live_server, path, {"f": "html"}))


def test_req_html_content(live_server):
    """/req/html/content: HTML 5 with the content of the JSON answers and all their links as
    ``<a>`` elements (the landing page's tiles and styles links were missing)."""
    landing = assert_html5(get(live_server, "/", {"f": "html"}))
    doc = get_json(live_server, "/")
    assert_links_in_html(doc, landing)
    assert doc["title"] in landing
    conformance = assert_html5(get(live_server, "/conformance", {"f": "html"}))
    assert all(uri in conformance for uri in get_json(live_server, "/conformance")["conformsTo"])


# --- Part 2: Collections -----------------------------------------------------------------------


def test_req_collections_collections_list_op(live_server):
    """/req/collections/collections-list-op: GET /collections."""
    assert get(live_server, "/collections").status_code == 200


def test_req_collections_collections_list_success(live_server):
    """/req/collections/collections-list-success: 200 and collections.yaml."""
    jsonschema.validate(get_json(live_server, "/collections"), COLLECTIONS)


def test_req_collections_collections_list_links(live_server):
    """/req/collections/collections-list-links: self, alternate per other media type (each
    answering in it), every link with rel and type."""
    doc = get_json(live_server, "/collections")
    assert all(lk.get("rel") and lk.get("type") for lk in doc["links"])
    assert [lk["type"] for lk in links(doc, "self")] == ["application/json"]
    alternates = links(doc, "alternate")
    assert "text/html" in {lk["type"] for lk in alternates}
    for lk in alternates:
        r = requests.get(lk["href"], timeout=60)
        assert r.headers["Content-Type"].startswith(lk["type"].split(";")[0]), lk


def test_req_collections_collections_list_collections(collections, sample_data):
    """/req/collections/collections-list-collections: every collection the public may read is
    described: the sample's layers (less the non-public poverty relief) and the rasters the
    configuration serves."""
    from tianya.config import coverage_resources

    public = {k for k in sample_data if k != "poverty_relief"}
    assert set(collections) == public | set(coverage_resources())


def test_req_collections_description_op(collections, live_server):
    """/req/collections/description-op: GET /collections/{collectionId} for every collection."""
    for cid in collections:
        assert get(live_server, f"/collections/{cid}").status_code == 200, cid


def test_req_collections_description_success(collections, live_server):
    """/req/collections/description-success: 200 and collectionDesc.yaml, the same
    description as in the list."""
    for cid, c in collections.items():
        one = get_json(live_server, f"/collections/{cid}")
        jsonschema.validate(one, COLLECTION_DESC)
        assert one["id"] == cid and one.get("extent") == c.get("extent"), cid


def test_req_collections_description_links(collections, live_server):
    """/req/collections/description-links: self and alternate links, all with rel and type."""
    for cid in collections:
        one = get_json(live_server, f"/collections/{cid}")
        assert all(lk.get("rel") and lk.get("type") for lk in one["links"]), cid
        assert [lk["type"] for lk in links(one, "self")] == ["application/json"], cid
        assert "text/html" in {lk["type"] for lk in links(one, "alternate")}, cid


def test_req_collections_description_extent(collections, sample_data):
    """/req/collections/description-extent: the extent encloses the data: every geometry of
    the sample in the CRS84 bbox, every temporal value in the interval (``null``: open)."""
    import pandas as pd

    from layers.catalogue import LAYERS

    for cid, c in collections.items():
        extent = c["extent"]
        assert (
            extent["spatial"]
            .get("crs", "http://www.opengis.net/def/crs/OGC/1.3/CRS84")
            .endswith("CRS84")
        )
        box = shapely.box(*extent["spatial"]["bbox"][0][:4])
        if cid in sample_data and "geometry" in sample_data[cid]:
            assert box.covers(shapely.box(*sample_data[cid].total_bounds)), cid
        field = LAYERS[cid].temporal if cid in LAYERS else None
        if field and "temporal" in extent:
            begin, end = extent["temporal"]["interval"][0]
            times = pd.to_datetime(sample_data[cid][field], utc=True)
            assert begin is None or times.min() >= pd.Timestamp(begin), cid
            assert end is None or times.max() <= pd.Timestamp(end), cid


def test_req_collections_description_extent_multi(collections):
    """/req/collections/description-extent-multi: the first bbox/interval encloses the others
    (each component is in one of them)."""
    for cid, c in collections.items():
        boxes = [
            shapely.box(*b[:2], *b[-3:-1]) if len(b) == 6 else shapely.box(*b)
            for b in c["extent"]["spatial"]["bbox"]
        ]
        assert all(boxes[0].covers(b) for b in boxes[1:]), cid
        intervals = c["extent"].get("temporal", {}).get("interval", [[None, None]])
        first = intervals[0]
        for begin, end in intervals[1:]:
            assert first[0] is None or (begin is not None and begin >= first[0]), cid
            assert first[1] is None or (end is not None and end <= first[1]), cid
