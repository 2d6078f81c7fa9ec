"""OGC API - Common - Part 1 (19-072), class OpenAPI 3.0, against a live server on both stores.

The class's requirements apply to the whole API: its definition (``/openapi``) is served as
JSON and HTML, is valid OpenAPI 3.0, covers every error status the server answers, and
documents how callers authenticate. Checked here on Common's resources (``/``,
``/conformance``, ``/collections``, ``/openapi``) and on the routes our shell serves beside
pygeoapi (tiles and styles, the case workflow, supervision, the screen's data, Open311): every
answer's status, media type, body and headers are the document's (:mod:`oas30kit`). The
Features, Processes and Coverages OpenAPI classes, whose requirement ids are the same, are in
their own modules (``test_conformance_oas30_*.py``: one id is listed once per module).

Left out of the document, and so of these tests: the HTML page ``/screen`` and the static
files under ``/assets/`` (files of the browser application, not API resources; see
``tianya/openapi_routes.yml``).
"""

from __future__ import annotations

import pytest
import requests
from conftest import KEYS
from oas30kit import (
    OPENAPI_JSON,
    Probe,
    document,
    headers,
    landing_links,
    problems,
    resolve,
    spec_errors,
)

from layers.cases import MAX_BODY

pytestmark = pytest.mark.both_stores

#: Conformance classes tested here -> every requirement of each (OGC API - Common - Part 1:
#: Core, 19-072, requirements class OpenAPI 3.0, /req/oas30: the four requirements of its
#: text, 19-072/requirements/oas30/).
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30": (
        "/req/oas30/oas-definition-1",
        "/req/oas30/oas-definition-2",
        "/req/oas30/exceptions-codes",
        "/req/oas30/security",
    ),
}

_TILE = "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
_CTILE = "/collections/incidents/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
_HISTORY = "/cases/{caseNo}/history"
_MOVE = "/cases/{caseNo}/transitions"
_SERVICES = "/open311/v2/services.{format}"
_SERVICE = "/open311/v2/services/{service_code}.{format}"
_REQUESTS = "/open311/v2/requests.{format}"
_REQUEST = "/open311/v2/requests/{service_request_id}.{format}"

#: Answers that succeed, on Common's resources and our routes.
SUCCESSES = [
    Probe("GET", "/?f=json", "/", 200),
    Probe("GET", "/?f=html", "/", 200),
    Probe("GET", "/conformance?f=json", "/conformance", 200),
    Probe("GET", "/collections?f=json", "/collections", 200),
    Probe("GET", "/openapi?f=json", "/openapi", 200, "admin"),
    Probe("GET", "/openapi?f=html", "/openapi", 200),
    Probe("GET", "/TileMatrixSets?f=json", "/TileMatrixSets", 200),
    Probe(
        "GET", "/TileMatrixSets/WebMercatorQuad?f=json", "/TileMatrixSets/{tileMatrixSetId}", 200
    ),
    Probe("GET", "/tiles", "/tiles", 200),
    Probe("GET", "/tiles/WebMercatorQuad", "/tiles/{tileMatrixSetId}", 200),
    Probe("GET", "/tiles/WebMercatorQuad/0/0/0", _TILE, 200),
    Probe("GET", "/tiles/WebMercatorQuad/12/1830/3292", _TILE, 204),  # open sea: empty
    Probe("GET", "/styles", "/styles", 200),
    Probe("GET", "/styles/basemap", "/styles/{styleId}", 200),
    Probe("GET", "/styles/basemap-dark?f=json", "/styles/{styleId}", 200),
    Probe("GET", "/collections/incidents/tiles", "/collections/incidents/tiles", 200),
    Probe(
        "GET",
        "/collections/incidents/tiles/WebMercatorQuad",
        "/collections/incidents/tiles/{tileMatrixSetId}",
        200,
    ),
    Probe("GET", "/collections/incidents/tiles/WebMercatorQuad/0/0/0", _CTILE, 200),
    Probe("GET", "/cases/transitions", "/cases/transitions", 200),
    Probe("GET", "/cases/{case}/history", _HISTORY, 200, "dispatcher"),
    Probe("GET", "/supervision", "/supervision", 200),
    Probe("GET", "/supervision/overdue", "/supervision/overdue", 200, "dispatcher"),
    Probe("GET", "/supervision/key-tasks", "/supervision/key-tasks", 200),
    Probe("GET", "/screen/summary.json", "/screen/summary.json", 200),
    Probe("GET", "/open311/v2/services.json", _SERVICES, 200),
    Probe("GET", "/open311/v2/services/manhole_cover.json", _SERVICE, 200),
    Probe("GET", "/open311/v2/requests.json?limit=2", _REQUESTS, 200),
    Probe("GET", "/open311/v2/requests/{case}.json", _REQUEST, 200),
]

_TOO_BIG = b"{" + b" " * (MAX_BODY + 1) + b"}"

#: Error answers (each status a server error situation gives on these paths).
ERRORS = [
    Probe("GET", "/?f=xml", "/", 400),
    Probe("GET", "/?f=json", "/", 401, "nope"),
    Probe("GET", "/conformance?f=xml", "/conformance", 400),
    Probe("GET", "/conformance?f=json", "/conformance", 401, "nope"),
    Probe("GET", "/collections?f=xml", "/collections", 400),
    Probe("GET", "/collections?f=json", "/collections", 401, "nope"),
    Probe("GET", "/openapi?f=json", "/openapi", 401, "nope"),
    Probe("GET", "/openapi?f=xml", "/openapi", 400),  # the public's document: it was a 200
    Probe("GET", "/openapi?f=xml", "/openapi", 400, "admin"),
    Probe("GET", "/TileMatrixSets?f=xml", "/TileMatrixSets", 400),
    Probe("GET", "/TileMatrixSets/Nope?f=json", "/TileMatrixSets/{tileMatrixSetId}", 400),
    Probe("GET", "/tiles?f=xml", "/tiles", 400),
    Probe("GET", "/tiles", "/tiles", 401, "nope"),
    Probe("GET", "/tiles/Nope", "/tiles/{tileMatrixSetId}", 404),
    Probe("GET", "/tiles/WebMercatorQuad/30/0/0", _TILE, 400),
    Probe("GET", "/tiles/WebMercatorQuad/1/5/5", _TILE, 404),
    Probe("GET", "/styles?f=xml", "/styles", 400),
    Probe("GET", "/styles/nope", "/styles/{styleId}", 404),
    Probe("GET", "/collections/incidents/tiles?f=xml", "/collections/incidents/tiles", 400),
    Probe(
        "GET",
        "/collections/poverty_relief/tiles",
        "/collections/poverty_relief/tiles",
        401,
    ),
    Probe(
        "GET",
        "/collections/poverty_relief/tiles",
        "/collections/poverty_relief/tiles",
        403,
        "reporter",
    ),
    Probe("GET", "/collections/incidents/tiles/WebMercatorQuad/1/5/5", _CTILE, 404),
    Probe("GET", "/cases/transitions?x=1", "/cases/transitions", 400),
    Probe("GET", "/cases/{case}/history", _HISTORY, 401),
    Probe("GET", "/cases/{case}/history", _HISTORY, 403, "reporter"),  # not its case
    Probe("GET", "/cases/nope/history", _HISTORY, 404, "dispatcher"),
    Probe("POST", "/cases/{case}/transitions", _MOVE, 400, "dispatcher", {"bogus": 1}),
    Probe("POST", "/cases/{case}/transitions", _MOVE, 401, "nope", {"to": "collected"}),
    Probe("POST", "/cases/nope/transitions", _MOVE, 404, "dispatcher", {"to": "collected"}),
    Probe("POST", "/cases/{case}/transitions", _MOVE, 409, "dispatcher", {"to": "collected"}),
    Probe("POST", "/cases/{case}/transitions", _MOVE, 413, "dispatcher", _TOO_BIG),
    Probe("GET", "/supervision?by=nope", "/supervision", 400),
    Probe("GET", "/supervision/key-tasks?now=nope", "/supervision/key-tasks", 400),
    Probe("GET", "/supervision/overdue", "/supervision/overdue", 401),
    Probe("GET", "/supervision/overdue", "/supervision/overdue", 403, "reporter"),
    Probe("GET", "/screen/summary.json?date=x", "/screen/summary.json", 400),
    Probe("GET", "/open311/v2/services.xml", _SERVICES, 400),
    Probe("GET", "/open311/v2/services.json", _SERVICES, 401, "nope"),
    Probe("GET", "/open311/v2/services/nope.json", _SERVICE, 404),
    Probe("GET", "/open311/v2/requests.json?limit=0", _REQUESTS, 400),
    Probe("GET", "/open311/v2/requests/nope.json", _REQUEST, 404),
    Probe("POST", "/open311/v2/requests.json", _REQUESTS, 400, None, {"lat": 18.3}),
    Probe("POST", "/open311/v2/requests.json", _REQUESTS, 413, "reporter", _TOO_BIG),
]

_OURS = ("/TileMatrixSets", "/tiles", "/styles", "/cases", "/supervision", "/screen", "/open311")


@pytest.fixture(scope="module")
def doc(live_server):
    return document(live_server, "admin")


@pytest.fixture(scope="module")
def values(live_server):
    """A case the probes name: the latest reported (``{case}``)."""
    r = live_server.get(
        "/collections/incidents/items?f=json&limit=1&sortby=-reported_at", role="dispatcher"
    )
    assert r.status_code == 200, r.text[:300]
    return {"case": r.json()["features"][0]["id"]}


def _json_type(r: requests.Response) -> str:
    return r.headers.get("Content-Type", "").replace(" ", "").lower()


# --- /req/oas30/oas-definition-1 -----------------------------------------------------------------


@pytest.mark.parametrize("role", [None, "dispatcher"], ids=["public", "dispatcher"])
def test_req_oas30_oas_definition_1(live_server, role):
    """The definition is available as ``application/vnd.oai.openapi+json;version=3.0`` and
    as ``text/html``, by ``f`` and by ``Accept``."""
    url = f"{live_server.url}/openapi"
    r = requests.get(url, params={"f": "json"}, headers=headers(role), timeout=60)
    assert r.status_code == 200 and _json_type(r) == OPENAPI_JSON.lower(), r.headers
    assert r.json()["openapi"].startswith("3.0.") and r.json()["paths"]
    r = requests.get(url, headers=headers(role, Accept=OPENAPI_JSON), timeout=60)
    assert r.status_code == 200 and _json_type(r) == OPENAPI_JSON.lower()
    html = requests.get(url, params={"f": "html"}, headers=headers(role), timeout=60)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert "<html" in html.text.lower()
    html = requests.get(url, headers=headers(role, Accept="text/html"), timeout=60)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")


def test_req_oas30_oas_definition_1_from_the_landing_page(live_server):
    """The landing page links both (``service-desc``, ``service-doc``) with their media types,
    and each link answers its type."""
    links = landing_links(live_server)
    desc, doc_ = links["service-desc"], links["service-doc"]
    assert desc["type"].replace(" ", "") == OPENAPI_JSON
    assert doc_["type"] == "text/html"
    r = requests.get(desc["href"], timeout=60)
    assert r.status_code == 200 and _json_type(r) == OPENAPI_JSON.lower()
    r = requests.get(doc_["href"], timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")


# --- /req/oas30/oas-definition-2 -----------------------------------------------------------------


@pytest.mark.parametrize("role", [None, "reporter", "admin"])
def test_req_oas30_oas_definition_2(live_server, role):
    """The JSON definition is valid OpenAPI 3.0 (openapi-spec-validator), for each role's
    document (the public's leaves out the collections it may not read)."""
    doc = document(live_server, role)
    assert doc["openapi"].startswith("3.0.")
    assert spec_errors(doc) == []


# --- /req/oas30/exceptions-codes -----------------------------------------------------------------


@pytest.mark.parametrize("probe", ERRORS, ids=str)
def test_req_oas30_exceptions_codes(live_server, doc, values, probe):
    """Each error the server answers on Common's resources and our routes has its own
    response object in the document (status, media type, exception schema, headers such as
    ``WWW-Authenticate``)."""
    assert problems(doc, probe, probe.send(live_server, values)) == []


def test_req_oas30_exceptions_codes_every_operation(doc):
    """What any request may answer is on every operation: 400 (a malformed or unknown
    parameter, a body on a GET), 401 (an unknown API key) and 500, each an exception."""
    missing = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for status in ("400", "401", "500"):
                response = op["responses"].get(status)
                if response is None:
                    missing.append(f"{method.upper()} {path}: {status}")
                    continue
                content = resolve(doc, response).get("content") or {}
                if "application/json" not in content:
                    missing.append(f"{method.upper()} {path}: {status} without a JSON body")
    assert missing == []


def test_an_unknown_key_is_401_everywhere_as_documented(live_server, doc):
    """The 401 of every operation is real: an unknown key on any path is refused."""
    r = requests.get(f"{live_server.url}/tiles/WebMercatorQuad/0/0/0", headers=headers("nope"))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["type"] == "NotAuthenticated"


# --- /req/oas30/security -------------------------------------------------------------------------

#: Operations that need an API key, and a request to each.
SECURED = [
    ("get", _HISTORY, "/cases/{case}/history"),
    ("get", "/supervision/overdue", "/supervision/overdue"),
    ("get", "/collections/poverty_relief/items", "/collections/poverty_relief/items?limit=1"),
]


def test_req_oas30_security(live_server, doc, values):
    """The API keys are documented as security schemes (a bearer token, or ``X-API-Key``):
    optional for the API as a whole (the public reads the public data), required where a
    role is; and they work as documented: no key is a 401 naming the scheme, either way of
    sending the key is accepted."""
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerKey"]["type"] == "http" and schemes["bearerKey"]["scheme"] == "bearer"
    assert schemes["apiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["apiKeyHeader"]["description"],
    }
    assert {} in doc["security"]
    assert {"bearerKey": []} in doc["security"] and {"apiKeyHeader": []} in doc["security"]
    for method, path, _ in SECURED:
        assert {} not in doc["paths"][path][method]["security"], path
    for _, _path, url in SECURED:
        url = live_server.url + url.format(**values)
        anonymous = requests.get(url, timeout=60)
        assert anonymous.status_code == 401, url
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        for h in (headers("admin"), {"X-API-Key": KEYS["admin"]}):
            r = requests.get(url, headers=h, timeout=60)
            assert r.status_code == 200, (url, r.text[:200])


def test_req_oas30_security_public_reads_need_no_key(live_server, doc):
    """An operation documented without a required key answers the public."""
    public = document(live_server, None)
    assert "/collections/incidents/items" in public["paths"]
    assert "/collections/poverty_relief/items" not in public["paths"]
    r = requests.get(f"{live_server.url}/collections/incidents/items?f=json&limit=1", timeout=60)
    assert r.status_code == 200


# --- what succeeds, and that every route of ours is described --------------------------------


@pytest.mark.parametrize("probe", SUCCESSES, ids=str)
def test_successful_answers_are_the_documents(live_server, doc, values, probe):
    """Each success on Common's resources and our routes is documented: status, media type,
    body against its schema, headers (a tile's ``ETag``)."""
    assert problems(doc, probe, probe.send(live_server, values)) == []


def test_a_tile_the_client_has_is_the_documented_304(live_server, doc):
    first = requests.get(f"{live_server.url}/tiles/WebMercatorQuad/0/0/0", timeout=60)
    etag = first.headers["ETag"]
    probe = Probe("GET", "/tiles/WebMercatorQuad/0/0/0", _TILE, 304, extra={"If-None-Match": etag})
    assert problems(doc, probe, probe.send(live_server)) == []


def test_every_operation_of_our_routes_is_probed(doc):
    """The tables above cover each operation the document gives our routes (PATCH of a case
    is in the Features module): a route added to ``tianya/openapi_routes.yml`` needs its
    answers in :data:`SUCCESSES` and :data:`ERRORS`."""
    probed = {(p.method.lower(), p.path) for p in SUCCESSES + ERRORS}
    ours = {
        (method, path)
        for path, item in doc["paths"].items()
        if path.startswith(_OURS) or "/tiles" in path
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    # each collection's tiles are one template; incidents and poverty_relief stand for all
    ours = {
        (m, p)
        for m, p in ours
        if not p.startswith("/collections/") or p.startswith("/collections/incidents/")
    }
    assert sorted(ours - probed) == []


def test_every_documented_format_of_every_plain_path_is_answered(live_server, doc):
    """/req/oas30/oas-impl of the Features and Processes classes, over the whole API: each
    value of ``f`` a GET without path parameters documents is answered with its 200 and one
    of the media types the 200 lists (a coverage over a small box)."""
    failed = []
    for path, item in doc["paths"].items():
        op = item.get("get")
        if op is None or "{" in path:
            continue
        for param in op.get("parameters", []):
            param = resolve(doc, param)
            if param["name"] != "f" or param["in"] != "query":
                continue
            for f in resolve(doc, param["schema"]).get("enum", []):
                query = f"f={f}"
                if path.endswith("/coverage"):
                    query += "&bbox=109.40,18.30,109.402,18.302"
                elif path.endswith("/items"):
                    query += "&limit=1"
                probe = Probe("GET", f"{path}?{query}", path, 200, "admin")
                failed += problems(doc, probe, probe.send(live_server))
    assert failed == []
