"""OGC API - Coverages - Part 1 (19-087), class OpenAPI 3.0, against a live server on both stores.

The text of the Coverages class (``/conf/oas30``) is not stored with the draft's requirements
(opengeospatial/ogcapi-coverages ``standard/requirements`` has no ``oas30`` folder, and the
CITE suite ets-ogcapi-coverages10 tests no OpenAPI requirement): the draft takes the class
from OGC API - Common, whose OpenAPI 3.0 requirements are the ones the Features (17-069r4)
and Processes (18-062r2) classes spell out. Listed here: those six ids, checked on the
coverage resources (each coverage collection, its coverage as CoverageJSON and GeoTIFF, its
parameters and errors) through :mod:`oas30kit`.
"""

from __future__ import annotations

import re

import pytest
import requests
from oas30kit import (
    OPENAPI_JSON,
    Probe,
    document,
    example,
    landing_links,
    no_heavy_reads_server,
    operations,
    problems,
    resolve,
    spec_errors,
    unknown_parameter,
)

pytestmark = pytest.mark.both_stores

#: Conformance classes tested here -> every requirement of each (see the module docstring).
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/oas30": (
        "/req/oas30/oas-definition-1",
        "/req/oas30/oas-definition-2",
        "/req/oas30/oas-impl",
        "/req/oas30/completeness",
        "/req/oas30/exceptions-codes",
        "/req/oas30/security",
    ),
}

_COV = "/collections/dem/coverage"
_BOX = "bbox=109.40,18.30,109.402,18.302"

SUCCESSES = [
    Probe("GET", "/collections/dem?f=json", "/collections/dem", 200),
    Probe("GET", "/collections/dem/schema?f=json", "/collections/dem/schema", 200),
    Probe("GET", "/collections/dem/queryables?f=json", "/collections/dem/queryables", 200),
    Probe("GET", f"{_COV}?f=json&{_BOX}", _COV, 200),
    Probe("GET", f"{_COV}?f=GTiff&{_BOX}", _COV, 200),
    Probe("GET", f"{_COV}?f=json&subset=Lat(18.30:18.302),Long(109.40:109.402)", _COV, 200),
    Probe("GET", f"{_COV}?f=json&{_BOX}&scale-size=Long(3),Lat(2)", _COV, 200),
]

ERRORS = [
    Probe("GET", "/collections/dem?f=xml", "/collections/dem", 400),
    Probe("GET", f"{_COV}?f=json&bbox=1,2", _COV, 400),
    Probe("GET", f"{_COV}?f=json&{_BOX}&nope=1", _COV, 400),
    Probe("GET", f"{_COV}?f=json&{_BOX}&subset=Lat(18.30:18.302)", _COV, 400),
    Probe("GET", f"{_COV}?f=json&{_BOX}", _COV, 401, "nope"),
    Probe("GET", f"{_COV}?f=json", _COV, 413),  # the whole DEM as CoverageJSON
]

#: Values for the coverage parameters whose schema gives none (with a small bbox).
_VALUES = {
    "bbox": "109.40,18.30,109.402,18.302",
    "bbox-crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "subset": "Lat(18.30:18.302),Long(109.40:109.402)",
    "scale-size": "Long(2),Lat(2)",
}


@pytest.fixture(scope="module")
def doc(live_server):
    return document(live_server, "admin")


def _coverages(doc: dict) -> list[str]:
    return sorted(p for p in doc["paths"] if re.fullmatch(r"/collections/[^/]+/coverage", p))


def test_req_oas30_oas_definition_1(live_server):
    """The landing page links the JSON and HTML definitions, which describe every coverage
    collection the landing page's collections list."""
    links = landing_links(live_server)
    r = requests.get(links["service-desc"]["href"], timeout=60)
    assert r.status_code == 200
    assert r.headers["Content-Type"].replace(" ", "").lower() == OPENAPI_JSON.lower()
    collections = requests.get(f"{live_server.url}/collections?f=json", timeout=60).json()
    coverage_ids = {
        c["id"]
        for c in collections["collections"]
        if any(link["rel"].endswith("/coverage") for link in c["links"])
    }
    assert coverage_ids
    for cid in coverage_ids:
        assert f"/collections/{cid}/coverage" in r.json()["paths"], cid
    html = requests.get(links["service-doc"]["href"], timeout=60)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")


def test_req_oas30_oas_definition_2(live_server):
    doc = document(live_server, None)
    assert doc["openapi"].startswith("3.0.") and spec_errors(doc) == []


def test_req_oas30_oas_impl(live_server, doc):
    """Every documented coverage answers a small bbox with its documented 200, and every
    parameter the document lists for it is taken (never refused as unknown, never a fault)."""
    found, refused = [], []
    for path in _coverages(doc):
        probe = Probe("GET", f"{path}?f=json&{_BOX}", path, 200)
        found += problems(doc, probe, probe.send(live_server))
        collection = path.removesuffix("/coverage")
        for resource in ("", "/schema", "/queryables"):  # the collection links each
            probe = Probe("GET", f"{collection}{resource}?f=json", collection + resource, 200)
            found += problems(doc, probe, probe.send(live_server))
        for param in doc["paths"][path]["get"].get("parameters", []):
            param = resolve(doc, param)
            name = param["name"]
            value = _VALUES.get(name) or example(doc, param)
            if value is None:
                continue
            params = {name: value}
            if name not in ("bbox", "subset"):
                params["bbox"] = _VALUES["bbox"]
            r = requests.get(live_server.url + path, params=params, timeout=120)
            if unknown_parameter(r, name) or r.status_code >= 500:
                refused.append(f"{path} {name}={value}: {r.status_code} {r.text[:150]}")
    assert found == [] and refused == []


@pytest.mark.parametrize("probe", SUCCESSES, ids=str)
def test_req_oas30_completeness(live_server, doc, probe):
    """A coverage's answers (CoverageJSON, GeoTIFF) are the document's."""
    assert problems(doc, probe, probe.send(live_server)) == []


@pytest.mark.parametrize("probe", ERRORS, ids=str)
def test_req_oas30_exceptions_codes(live_server, doc, probe):
    """A coverage's errors (a malformed or unknown parameter, a subset without both axes, an
    unknown key, an answer over the size limit) are documented."""
    assert problems(doc, probe, probe.send(live_server)) == []


def test_req_oas30_exceptions_codes_429(store_kind, request):
    """An unscaled coverage is a heavy read: over the caller's limit (a server allowing none)
    it is the documented 429 with ``Retry-After``."""
    server = no_heavy_reads_server(store_kind, request)
    doc = document(server, "admin")
    probe = Probe("GET", f"{_COV}?f=json&{_BOX}", _COV, 429)
    r = probe.send(server)
    assert problems(doc, probe, r) == []
    assert int(r.headers["Retry-After"]) > 0


def test_req_oas30_exceptions_codes_every_coverage_operation(doc):
    missing = []
    for path, _, op in operations(doc, r"/collections/[^/]+/coverage"):
        lacking = {"400", "401", "404", "413", "429", "500"} - set(op["responses"])
        if lacking:
            missing.append(f"{path}: {sorted(lacking)}")
    assert missing == []


def test_req_oas30_security(live_server, doc):
    """The coverages are public: the document requires no key for them (the API's security
    has the anonymous ``{}``, no coverage operation overrides it), and none is needed."""
    assert {} in doc["security"]
    for path in _coverages(doc):
        assert "security" not in doc["paths"][path]["get"], path
    r = requests.get(f"{live_server.url}{_COV}?f=json&{_BOX}", timeout=60)
    assert r.status_code == 200
