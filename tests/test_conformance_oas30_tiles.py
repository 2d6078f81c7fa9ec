"""OGC API - Tiles - Part 1 (20-057), class OpenAPI 3.0, against a live server on both stores.

The class's two requirements (core/standard/requirements/oas30/): the definition has a path
for every tilesets list, tileset and tile resource the server offers, consistent with the
links that lead to them (landing page, collections, tilesets lists, tilesets) and describing
the parameters they take (/req/oas30/completeness A, B, C); and its tiles operations carry the
standard's operationId suffixes (/req/oas30/operation-id). The resources are found by
following the server's links, not from a list in the test.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from oas30kit import Probe, document, landing_links, problems, resolve, template

pytestmark = pytest.mark.both_stores

#: Conformance classes tested here -> every requirement of each (OGC API - Tiles - Part 1:
#: Core, 20-057, requirements class OpenAPI 3.0).
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30": (
        "/req/oas30/completeness",
        "/req/oas30/operation-id",
    ),
}

_TILESETS = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
#: The operationId suffix of each kind of tiles resource (20-057, Table "OpenAPI operation
#: id suffixes"), as the ets and implementations spell them.
_SUFFIXES = {
    "dataset-list": ".dataset.vector.getTileSetsList",
    "dataset-tileset": ".dataset.vector.getTileSet",
    "dataset-tile": ".dataset.vector.getTile",
    "collection-list": ".collection.vector.getTileSetsList",
    "collection-tileset": ".collection.vector.getTileSet",
    "collection-tile": ".collection.vector.getTile",
}


@pytest.fixture(scope="module")
def doc(live_server):
    return document(live_server, "admin")


def _path(doc: dict, href: str) -> str | None:
    """The documented path whose template ``href`` is an instance of (literal paths first)."""
    url = urlsplit(href).path.rstrip("/") or "/"
    if url in doc["paths"]:
        return url
    return next((p for p in doc["paths"] if template(p).fullmatch(url)), None)


@pytest.fixture(scope="module")
def resources(live_server):
    """Every tiles resource reached by links: ``(kind, href, documented-by-the-link)``, with
    the tile templates filled at zoom 0."""
    admin = {"Authorization": "Bearer test-admin-key"}
    lists = [("dataset", landing_links(live_server)[_TILESETS]["href"])]
    collections = requests.get(f"{live_server.url}/collections?f=json", headers=admin).json()
    for c in collections["collections"]:
        lists += [("collection", lk["href"]) for lk in c["links"] if lk["rel"] == _TILESETS]
    found = []
    for kind, href in lists:
        found.append((f"{kind}-list", href))
        listing = requests.get(href, headers=admin, timeout=60)
        assert listing.status_code == 200, href
        for tileset in listing.json()["tilesets"]:
            for link in tileset["links"]:
                if link["rel"] == "self":
                    found.append((f"{kind}-tileset", link["href"]))
                    ts = requests.get(link["href"], headers=admin, timeout=60).json()
                    for tl in ts["links"]:
                        if tl["rel"] == "item" and tl.get("templated"):
                            fill = {"tileMatrix": "0", "tileRow": "0", "tileCol": "0"}
                            found.append((f"{kind}-tile", tl["href"].format(**fill)))
                            found.append((f"{kind}-template", tl["href"]))
    assert {k for k, _ in found} >= {
        "dataset-list",
        "dataset-tileset",
        "dataset-tile",
        "collection-list",
        "collection-tileset",
        "collection-tile",
    }
    return found


def test_req_oas30_completeness(live_server, doc, resources):
    """A: every tilesets list, tileset and tile the links lead to has a path in the document;
    B: the path is the one the link names (the link's URL is an instance of it), and what
    the resource answers is what the path documents (status, media type, schema)."""
    missing, wrong = [], []
    for kind, href in resources:
        if kind.endswith("-template"):
            continue
        path = _path(doc, href)
        if path is None:
            missing.append(f"{kind}: {href}")
            continue
        r = requests.get(href, headers={"Authorization": "Bearer test-admin-key"}, timeout=60)
        probe = Probe("GET", urlsplit(href).path, path, r.status_code, "admin")
        wrong += problems(doc, probe, r)
    assert missing == [] and wrong == []


def test_req_oas30_completeness_parameters(doc, resources):
    """C: the tile paths describe the parameters a tile needs: each variable of the tilesets'
    templated links is a required path parameter of the documented path (an integer for the
    row, column), with ``tileMatrixSetId`` naming the offered set."""
    problems_ = []
    for kind, href in resources:
        if not kind.endswith("-template"):
            continue
        names = re.findall(r"\{(\w+)\}", href)
        filled = href.format(**{n: "0" for n in names})
        path = _path(doc, filled)
        assert path is not None, href
        params = {
            p["name"]: p
            for p in (resolve(doc, x) for x in doc["paths"][path]["get"]["parameters"])
            if p["in"] == "path"
        }
        for name in names:
            if name not in params or not params[name].get("required"):
                problems_.append(f"{path}: {name} is not a required path parameter")
        for name in ("tileRow", "tileCol"):
            if resolve(doc, params[name]["schema"]).get("type") != "integer":
                problems_.append(f"{path}: {name} is not an integer")
        tms = resolve(doc, params["tileMatrixSetId"]["schema"])
        if "WebMercatorQuad" not in tms.get("enum", []):
            problems_.append(f"{path}: tileMatrixSetId does not name WebMercatorQuad")
    assert problems_ == []


def test_req_oas30_operation_id(doc, resources):
    """Every tiles operation's operationId ends with the standard's suffix for its kind of
    resource, and operationIds are unique."""
    wrong = []
    for kind, href in resources:
        if kind.endswith("-template"):
            continue
        path = _path(doc, href)
        op_id = doc["paths"][path]["get"].get("operationId", "")
        if not f".{op_id}".endswith(_SUFFIXES[kind]):  # the suffix may be the whole id
            wrong.append(f"{path}: {op_id!r} does not end with {_SUFFIXES[kind]}")
    ids = [
        op["operationId"]
        for item in doc["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert wrong == [] and len(ids) == len(set(ids))


def test_req_oas30_operation_id_tile_matrix_sets(doc):
    """The tiling schemes the tilesets link carry their operationIds too."""
    assert doc["paths"]["/TileMatrixSets"]["get"]["operationId"] == "getTileMatrixSetsList"
    tms = doc["paths"]["/TileMatrixSets/{tileMatrixSetId}"]["get"]["operationId"]
    assert tms == "getTileMatrixSet"
