"""OGC API - Features - Part 1 (17-069r4 §7.x, Annex A.4), class OpenAPI 3.0, on both stores.

The API definition describes the features resources (collections, items, an item,
queryables, schema; the writes of Part 4 and the case's PATCH) as the server answers them:
each documented operation and parameter works (/req/oas30/oas-impl), each answer's status,
media type, body and headers are the document's (/req/oas30/completeness,
/req/oas30/exceptions-codes, via :mod:`oas30kit`), and the writes say which API keys they
need (/req/oas30/security). The same ids of Common's class are in ``test_conformance_oas30.py``.
"""

from __future__ import annotations

import re

import pytest
import requests
from casekit import GEOJSON, feature, shared_server
from conftest import LiveServer
from oas30kit import (
    OPENAPI_JSON,
    Probe,
    document,
    example,
    headers,
    landing_links,
    no_heavy_reads_server,
    operations,
    problems,
    resolve,
    spec_errors,
    unknown_parameter,
)
from stores import writable_copy

from layers.cases import MAX_BODY

pytestmark = pytest.mark.both_stores

#: Conformance classes tested here -> every requirement of each (OGC API - Features - Part 1:
#: Core, 17-069r4, requirements class OpenAPI 3.0: core/standard/requirements/oas30/).
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30": (
        "/req/oas30/oas-definition-1",
        "/req/oas30/oas-definition-2",
        "/req/oas30/oas-impl",
        "/req/oas30/completeness",
        "/req/oas30/exceptions-codes",
        "/req/oas30/security",
    ),
}

_ITEMS = "/collections/incidents/items"
_ITEM = "/collections/incidents/items/{featureId}"
_CQL = "application/query-cql-json"

#: Answers of the read-only server on the features paths.
SUCCESSES = [
    Probe("GET", "/collections/incidents?f=json", "/collections/incidents", 200),
    Probe("GET", "/collections/incidents?f=html", "/collections/incidents", 200),
    Probe("GET", f"{_ITEMS}?f=json&limit=2", _ITEMS, 200),
    Probe("GET", f"{_ITEMS}?f=html&limit=2", _ITEMS, 200),
    Probe("GET", f"{_ITEMS}?f=csv&limit=2", _ITEMS, 200),
    Probe("GET", f"{_ITEMS}?f=json&limit=2&filter=status%3D%27closed%27", _ITEMS, 200),
    Probe(
        "GET",
        f"{_ITEMS}?f=json&limit=1&filter-lang=cql2-json"
        "&filter=%7B%22op%22%3A%22%3D%22%2C%22args%22%3A%5B%7B%22property%22%3A%22status"
        "%22%7D%2C%22closed%22%5D%7D",
        _ITEMS,
        200,
    ),
    Probe("GET", f"{_ITEMS}/{{case}}?f=json", _ITEM, 200),
    Probe(
        "GET", "/collections/incidents/queryables?f=json", "/collections/incidents/queryables", 200
    ),
    Probe("GET", "/collections/incidents/schema?f=json", "/collections/incidents/schema", 200),
    Probe(
        "POST",
        f"{_ITEMS}?limit=1",
        _ITEMS,
        200,
        body={"op": "=", "args": [{"property": "status"}, "closed"]},
        content_type=_CQL,
    ),
    Probe("OPTIONS", _ITEMS, _ITEMS, 200),
    Probe("OPTIONS", f"{_ITEMS}/{{case}}", _ITEM, 200, "dispatcher"),
    Probe("OPTIONS", f"{_ITEMS}/{{case}}", _ITEM, 200),
    Probe(
        "GET",
        "/collections/poverty_relief/items?f=json&limit=1",
        "/collections/poverty_relief/items",
        200,
        "dispatcher",
    ),
]

_TOO_BIG = b"{" + b" " * (MAX_BODY + 1) + b"}"

#: Error answers on the features paths (the read-only server: nothing here writes).
ERRORS = [
    Probe("GET", "/collections/incidents?f=xml", "/collections/incidents", 400),
    Probe("GET", "/collections/incidents?f=json", "/collections/incidents", 401, "nope"),
    Probe("GET", f"{_ITEMS}?f=json&limit=abc", _ITEMS, 400),
    Probe("GET", f"{_ITEMS}?f=json&bbox=1,2", _ITEMS, 400),
    Probe("GET", f"{_ITEMS}?f=json&nope=1", _ITEMS, 400),
    Probe("GET", f"{_ITEMS}?f=json&filter=nope%3D1", _ITEMS, 400),
    Probe("GET", f"{_ITEMS}?f=json&filter-lang=cql2-text", _ITEMS, 400),
    Probe("GET", f"{_ITEMS}?f=json", _ITEMS, 401, "nope"),
    Probe(
        "GET", "/collections/poverty_relief/items?f=json", "/collections/poverty_relief/items", 401
    ),
    Probe(
        "GET",
        "/collections/poverty_relief/items?f=json",
        "/collections/poverty_relief/items",
        403,
        "reporter",
    ),
    Probe("GET", f"{_ITEMS}/nope?f=json", _ITEM, 404),
    Probe("GET", f"{_ITEMS}/{{case}}?f=json", _ITEM, 401, "nope"),
    Probe(
        "GET", "/collections/incidents/queryables?f=xml", "/collections/incidents/queryables", 400
    ),
    Probe("POST", _ITEMS, _ITEMS, 400, body={"op": "nope"}, content_type=_CQL),
    Probe("POST", _ITEMS, _ITEMS, 413, "reporter", _TOO_BIG, GEOJSON),
    Probe("POST", _ITEMS, _ITEMS, 401, body=feature(), content_type=GEOJSON),
    Probe("POST", _ITEMS, _ITEMS, 403, "department", feature(), GEOJSON),
    Probe("PUT", f"{_ITEMS}/{{case}}", _ITEM, 401, body=feature(), content_type=GEOJSON),
    Probe("PUT", f"{_ITEMS}/{{case}}", _ITEM, 403, "reporter", feature(), GEOJSON),
    Probe("PUT", f"{_ITEMS}/{{case}}", _ITEM, 413, "dispatcher", _TOO_BIG, GEOJSON),
    Probe(
        "PUT",
        f"{_ITEMS}/{{case}}",
        _ITEM,
        412,
        "dispatcher",
        feature(),
        GEOJSON,
        {"If-Match": '"not-its-etag"'},
    ),
    Probe("PATCH", f"{_ITEMS}/{{case}}", _ITEM, 401, body={"properties": {}}),
    Probe("PATCH", f"{_ITEMS}/{{case}}", _ITEM, 400, "dispatcher", {"properties": 1}),
    Probe(
        "PATCH",
        f"{_ITEMS}/{{case}}",
        _ITEM,
        412,
        "dispatcher",
        {"type": "Feature", "properties": {"title": "x"}},
        "application/json",
        {"If-Match": '"not-its-etag"'},
    ),
    Probe("DELETE", f"{_ITEMS}/{{case}}", _ITEM, 401),
    Probe("DELETE", f"{_ITEMS}/{{case}}", _ITEM, 403, "reporter"),
    Probe("DELETE", f"{_ITEMS}/nope", _ITEM, 404, "admin"),
    Probe("DELETE", f"{_ITEMS}/{{case}}", _ITEM, 412, "admin", extra={"If-Match": '"x"'}),
]


@pytest.fixture(scope="module")
def doc(live_server):
    return document(live_server, "admin")


@pytest.fixture(scope="module")
def values(live_server):
    r = live_server.get(f"{_ITEMS}?f=json&limit=1&sortby=-reported_at", role="dispatcher")
    assert r.status_code == 200, r.text[:300]
    return {"case": r.json()["features"][0]["id"]}


@pytest.fixture(scope="module")
def writer(store_kind, sample_gpkg):
    """A writable live server (the GeoPackage one the case tests share, or a PostGIS copy)."""
    if store_kind == "gpkg":
        yield shared_server(sample_gpkg)
        return
    srv = LiveServer(writable_copy(store_kind, sample_gpkg, "oas30"))
    try:
        yield srv
    finally:
        srv.stop()


def _collections(doc: dict) -> list[str]:
    return sorted(
        {m.group(1) for p in doc["paths"] if (m := re.fullmatch(r"/collections/([^/]+)/items", p))}
    )


# --- /req/oas30/oas-definition-1 and -2 ----------------------------------------------------------


def test_req_oas30_oas_definition_1(live_server):
    """The definition is served as JSON (``application/vnd.oai.openapi+json;version=3.0``)
    and as HTML, linked from the landing page, and describes the features resources."""
    links = landing_links(live_server)
    r = requests.get(links["service-desc"]["href"], timeout=60)
    assert r.status_code == 200
    assert r.headers["Content-Type"].replace(" ", "").lower() == OPENAPI_JSON.lower()
    paths = r.json()["paths"]
    for p in ("/", "/conformance", "/collections", "/collections/incidents", _ITEMS, _ITEM):
        assert "get" in paths[p], p
    html = requests.get(links["service-doc"]["href"], timeout=60)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")


def test_req_oas30_oas_definition_2(live_server):
    doc = document(live_server, "dispatcher")
    assert doc["openapi"].startswith("3.0.") and spec_errors(doc) == []


# --- /req/oas30/oas-impl -------------------------------------------------------------------------


def test_req_oas30_oas_impl_every_collection_resource(live_server, doc):
    """Every documented features resource of every collection answers its documented 200,
    body against its schema: the collection, a page of items, the first item, queryables
    and schema."""
    found = []
    for cid in _collections(doc):
        page = live_server.get(f"/collections/{cid}/items?f=json&limit=1", role="admin")
        assert page.status_code == 200, (cid, page.text[:200])
        fid = page.json()["features"][0]["id"]
        for url, path in (
            (f"/collections/{cid}?f=json", f"/collections/{cid}"),
            (f"/collections/{cid}/items?f=json&limit=1", f"/collections/{cid}/items"),
            (f"/collections/{cid}/items/{fid}?f=json", f"/collections/{cid}/items/{{featureId}}"),
            (f"/collections/{cid}/queryables?f=json", f"/collections/{cid}/queryables"),
            (f"/collections/{cid}/schema?f=json", f"/collections/{cid}/schema"),
        ):
            probe = Probe("GET", url, path, 200, "admin")
            found += problems(doc, probe, probe.send(live_server))
    assert found == []


def test_req_oas30_oas_impl_every_documented_parameter(live_server, doc):
    """Each query parameter the document lists for a features GET is one the server takes:
    sent alone with a value from its schema (or the first item's value of that property), it
    is never refused as unknown, and the answer is not a fault."""
    refused = []
    with_items = "|".join(_collections(doc))
    for path, _, op in operations(doc, rf"/collections/({with_items})(/items(/\{{featureId\}})?)?"):
        cid = path.split("/")[2]
        first = live_server.get(f"/collections/{cid}/items?f=json&limit=1", role="admin").json()
        props = first["features"][0]["properties"]
        url = path.replace("{featureId}", str(first["features"][0]["id"]))
        for param in op.get("parameters", []):
            param = (
                doc["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
                if "$ref" in param
                else param
            )
            if param["in"] != "query":
                continue
            value = example(doc, param)
            if value is None:
                value = props.get(param["name"])
            if value is None:
                continue
            value = ",".join(map(str, value)) if isinstance(value, list) else value
            r = requests.get(
                live_server.url + url,
                params={param["name"]: str(value).lower() if isinstance(value, bool) else value},
                headers=headers("admin"),
                timeout=60,
            )
            if unknown_parameter(r, param["name"]) or r.status_code >= 500:
                refused.append(f"{path} {param['name']}={value}: {r.status_code} {r.text[:150]}")
    assert refused == []


def test_req_oas30_oas_impl_every_documented_format(live_server, doc, values):
    """Each format a features GET documents (``f``'s enum) is answered, with one of the
    media types its 200 response lists."""
    failed = []
    for path, _, op in operations(doc, r"/collections/incidents(/items(/\{featureId\})?)?"):
        url = path.replace("{featureId}", values["case"])
        for param in op["parameters"]:
            param = resolve(doc, param)
            if param["name"] != "f":
                continue
            for f in resolve(doc, param["schema"])["enum"]:
                probe = Probe(
                    "GET",
                    f"{url}?f={f}&limit=1" if url.endswith("/items") else f"{url}?f={f}",
                    path,
                    200,
                )
                failed += problems(doc, probe, probe.send(live_server))
    assert failed == []


def test_req_oas30_oas_impl_filter_parameters_are_documented_on_items(doc):
    """Issue 17: items takes ``filter``, ``filter-lang`` and ``filter-crs`` (Part 3), and
    the document lists them on every items path."""
    for path, _, op in operations(doc, r"/collections/[^/]+/items"):
        names = {p.get("$ref", "").rsplit("/", 1)[-1] for p in op["parameters"]}
        assert {"filter", "filter-lang", "filter-crs"} <= names, path
    assert doc["components"]["parameters"]["filter-lang"]["schema"]["enum"] == [
        "cql2-text",
        "cql2-json",
    ]


# --- /req/oas30/completeness and /req/oas30/exceptions-codes -------------------------------------


@pytest.mark.parametrize("probe", SUCCESSES, ids=str)
def test_req_oas30_completeness(live_server, doc, values, probe):
    """A successful answer on a features path is the document's (status, media type,
    schema, headers)."""
    assert problems(doc, probe, probe.send(live_server, values)) == []


def test_req_oas30_completeness_writes(writer):
    """The writes' answers (Part 4 and the case's PATCH) are the document's: create 201,
    replace 204, change 200, delete 200, and a move the stage machine refuses, 409."""
    doc = document(writer, "admin")
    create = Probe("POST", _ITEMS, _ITEMS, 201, "reporter", feature(), GEOJSON)
    r = create.send(writer)
    assert problems(doc, create, r) == []
    case = r.headers["Location"].rsplit("/", 1)[-1]
    item = requests.get(f"{writer.url}{_ITEMS}/{case}?f=json", headers=headers("dispatcher"))
    etag, body = item.headers["ETag"], item.json()
    body["properties"]["title"] = "井盖缺失"
    steps = [
        Probe(
            "PUT", f"{_ITEMS}/{case}", _ITEM, 204, "dispatcher", body, GEOJSON, {"If-Match": etag}
        ),
        Probe(
            "PATCH",
            f"{_ITEMS}/{case}",
            _ITEM,
            200,
            "dispatcher",
            {"type": "Feature", "properties": {"title": "x"}},
        ),
        Probe(
            "PATCH",
            f"{_ITEMS}/{case}",
            _ITEM,
            409,
            "dispatcher",
            {"status": "collected"},
        ),
        Probe("DELETE", f"{_ITEMS}/{case}", _ITEM, 200, "admin"),
        Probe("DELETE", f"{_ITEMS}/{case}", _ITEM, 404, "admin"),
    ]
    found = []
    for probe in steps:
        found += problems(doc, probe, probe.send(writer))
    assert found == []


@pytest.mark.parametrize("probe", ERRORS, ids=str)
def test_req_oas30_exceptions_codes(live_server, doc, values, probe):
    """Each error a features path answers has its own documented response (an exception;
    ``WWW-Authenticate`` on a 401)."""
    assert problems(doc, probe, probe.send(live_server, values)) == []


@pytest.mark.parametrize(
    "probe",
    [
        Probe("GET", f"{_ITEMS}?f=json&limit=1001", _ITEMS, 429),
        Probe("GET", f"{_ITEMS}?f=csv&limit=1", _ITEMS, 429),
    ],
    ids=str,
)
def test_req_oas30_exceptions_codes_429(store_kind, request, probe):
    """A heavy read over the caller's limit (here a server allowing none) is the documented
    429 with ``Retry-After``."""
    server = no_heavy_reads_server(store_kind, request)
    doc = document(server, "admin")
    r = probe.send(server)
    assert problems(doc, probe, r) == []
    assert int(r.headers["Retry-After"]) > 0


def test_req_oas30_exceptions_codes_on_every_features_operation(doc):
    """The statuses every features operation may answer are listed on each: 400, 401, 500;
    404 on a collection's resources; 403 on a collection of personal data."""
    missing = []
    for path, method, op in operations(
        doc, r"/collections/[^/]+(/.*)?", ("get", "post", "put", "patch", "delete")
    ):
        if "/tiles" in path or path.endswith("/coverage"):
            continue
        need = {"400", "401", "404", "500"}
        if path.startswith("/collections/poverty_relief"):
            need.add("403")
        if method in ("post", "put", "patch"):
            need |= {"408", "413"}
        if method in ("put", "patch", "delete"):
            need |= {"403", "412"}
        lacking = need - set(op["responses"])
        if lacking:
            missing.append(f"{method.upper()} {path}: {sorted(lacking)}")
    assert missing == []


# --- /req/oas30/security -------------------------------------------------------------------------


def test_req_oas30_security(live_server, doc, values):
    """The writes of a case need a key, and the document says so (no anonymous ``{}`` among
    their security requirements); a write without one is the documented 401 naming the
    bearer scheme."""
    schemes = set(doc["components"]["securitySchemes"])
    for method in ("put", "patch", "delete"):
        security = doc["paths"][_ITEM][method]["security"]
        assert security and {} not in security, method
        assert {name for req in security for name in req} <= schemes
    r = requests.delete(f"{live_server.url}{_ITEMS}/{values['case']}", timeout=60)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer ")
    assert doc["paths"][_ITEM]["delete"]["responses"]["401"] == {
        "$ref": "#/components/responses/NotAuthenticated"
    }
