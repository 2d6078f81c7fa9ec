"""Queryables and schemas are JSON Schema 2020-12 documents that name themselves (issue 17).

OGC API Features Part 3, /req/queryables/get-queryables-response: the queryables of a
collection are a JSON Schema whose ``$schema`` is
``https://json-schema.org/draft/2020-12/schema`` and whose ``$id`` is the URI of the resource
without query parameters. Part 5 (schemas, /req/schemas/...) says the same of
``/collections/{id}/schema``. pygeoapi 0.24 wrote draft 2019-09 and an ``$id`` carrying the
request's query (``?f=json``); :mod:`tianya.compat` rewrites both members.
"""

import pytest
from jsonschema import Draft202012Validator

pytestmark = pytest.mark.both_stores  # GeoPackage and PostGIS (tests/stores.py)

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _collections(server):
    r = server.get("/collections?f=json", role="admin")
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["collections"]]


def _document(server, path, role="admin", **params):
    r = server.get(path, role=role, params=params)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("application/schema+json")
    return r.json()


@pytest.mark.parametrize("resource", ["queryables", "schema"])
def test_req_queryables_get_queryables_response_json_schema_2020_12(live_server, resource):
    """/req/queryables/get-queryables-response (and Part 5's schema): every collection's
    document declares JSON Schema 2020-12, is a valid 2020-12 schema, and its ``$id`` is the
    resource's URI without the ``?f=json`` it was asked with."""
    for cid in _collections(live_server):
        doc = _document(live_server, f"/collections/{cid}/{resource}", f="json")
        assert doc["$schema"] == DRAFT_2020_12, (cid, doc["$schema"])
        assert doc["$id"] == f"{live_server.url}/collections/{cid}/{resource}", cid
        Draft202012Validator.check_schema(doc)  # raises SchemaError, naming the fault
        assert doc["type"] == "object" and doc["properties"], cid


def test_req_queryables_get_queryables_response_id_has_no_query(live_server):
    """/req/queryables/get-queryables-response: ``$id`` is the URI without query parameters,
    whatever the request's query (``properties`` and ``profile`` still select the content)."""
    path = "/collections/incidents/queryables"
    doc = _document(live_server, path, f="json", properties="category", profile="actual-domain")
    assert doc["$id"] == f"{live_server.url}{path}"
    assert set(doc["properties"]) == {"geometry", "category"}
    # without any query, anonymously: the same $id, and still only what the public may query
    plain = _document(live_server, path, role=None)
    assert plain["$id"] == doc["$id"] and plain["$schema"] == DRAFT_2020_12
    assert "category" in plain["properties"] and "reporter_phone" not in plain["properties"]


def test_queryables_and_schema_html_pages_still_render(live_server):
    """The HTML pages of both resources are pygeoapi's, unchanged by the rewrite."""
    for resource in ("queryables", "schema"):
        r = live_server.get(f"/collections/incidents/{resource}?f=html")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
        assert "category" in r.text


def test_unknown_collection_queryables_is_still_404(live_server):
    """A missing collection's error answer is passed through untouched."""
    for resource in ("queryables", "schema"):
        r = live_server.get(f"/collections/no_such_layer/{resource}?f=json")
        assert r.status_code == 404
        assert "$schema" not in r.json()
