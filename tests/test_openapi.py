"""The OpenAPI document the server serves: self-contained, valid OpenAPI 3.0, true to the answers.

pygeoapi 0.24's document ``$ref``s OGC API components on schemas.opengis.net and GitHub;
:func:`tianya.compat.localise_references` replaces each with a component we define in
``tianya/openapi_components.yml``. Checked here: no ``$ref`` leaves the served document and
every local one resolves (a ``$ref`` we do not know fails the edit, loudly), the document is
valid OpenAPI 3.0 (openapi-spec-validator), and what the server answers on the main paths
validates against the schema the document gives for that path and status.
"""

from __future__ import annotations

import json

import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import OpenAPIV30SpecValidator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from tianya import compat

pytestmark = [pytest.mark.both_stores, pytest.mark.timeout(600)]

ROLES = (None, "dispatcher")
_DOC = "urn:tianya:openapi"


def _document(server, role=None) -> dict:
    r = server.get("/openapi?f=json", role=role)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def _refs(node) -> list[str]:
    found, todo = [], [node]
    while todo:
        n = todo.pop()
        if isinstance(n, dict):
            if isinstance(n.get("$ref"), str):
                found.append(n["$ref"])
            todo += n.values()
        elif isinstance(n, list):
            todo += n
    return found


def _walk(doc: dict, ref: str) -> dict:
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


# --- self-contained -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES, ids=["public", "dispatcher"])
def test_no_ref_leaves_the_served_document_and_every_ref_resolves(live_server, role):
    doc = _document(live_server, role)
    refs = _refs(doc)
    assert len(refs) > 100  # pygeoapi's document refers to its components everywhere
    assert compat.reference_problems(doc) == []
    text = json.dumps(doc)
    for host in ("schemas.opengis.net", "raw.githubusercontent.com"):
        assert f'"$ref": "https://{host}' not in text


def test_each_ogc_component_pygeoapi_refers_to_is_ours(live_server):
    """Each external reference we replace became a local component with content of its own,
    and the paths pygeoapi gives another answer's response get their own."""
    doc = _document(live_server, "dispatcher")
    with open(compat.OPENAPI_COMPONENTS, encoding="utf-8") as fh:
        ours = yaml.safe_load(fh)
    for kind, defined in ours["components"].items():
        for name, value in defined.items():
            assert doc["components"][kind][name] == value, f"{kind}/{name}"
    for external, local in ours["replaces"].items():
        assert external.startswith("https://")
        assert _walk(doc, local), local
    used = set(_refs(doc["paths"])) | set(_refs(doc["components"]))
    unused = [
        f"#/components/{kind}/{name}"
        for kind, defined in ours["components"].items()
        for name in defined
        if f"#/components/{kind}/{name}" not in used
    ]
    assert unused == []
    paths = doc["paths"]
    ok = {p: paths[p]["get"]["responses"]["200"]["$ref"] for p in ("/", "/collections")}
    ok["/conformance"] = paths["/conformance"]["get"]["responses"]["200"]["$ref"]
    ok["/collections/dem/coverage"] = paths["/collections/dem/coverage"]["get"]["responses"]["200"][
        "$ref"
    ]
    assert ok == {
        "/": "#/components/responses/LandingPage",
        "/collections": "#/components/responses/Collections",
        "/conformance": "#/components/responses/ConformanceDeclaration",
        "/collections/dem/coverage": "#/components/responses/Coverage",
    }


def test_our_routes_and_their_components_are_in_the_document(live_server):
    """Issue 17, /req/oas30/completeness: the routes our shell serves beside pygeoapi's are
    in the document (each point layer's tiles from one template), with the components they
    and the error answers use, each of them used."""
    from layers.tiles import point_layers

    doc = _document(live_server, "dispatcher")
    with open(compat.OPENAPI_ROUTES, encoding="utf-8") as fh:
        ours = yaml.safe_load(fh)
    for kind, defined in ours["components"].items():
        for name, value in defined.items():
            assert doc["components"][kind][name] == value, f"{kind}/{name}"
    for path, item in ours["paths"].items():
        concrete = (
            [path.replace("{collectionId}", lay.id) for lay in point_layers()]
            if "{collectionId}" in path
            else [path]
        )
        for p in concrete:
            assert set(item) <= set(doc["paths"][p]), p
    assert not any("{collectionId}" in p for p in doc["paths"])
    used = set(_refs(doc["paths"])) | set(_refs(doc["components"]))
    unused = [
        f"#/components/{kind}/{name}"
        for kind, defined in ours["components"].items()
        if kind != "securitySchemes"
        for name in defined
        if f"#/components/{kind}/{name}" not in used
    ]
    assert unused == []
    assert set(ours["components"]["securitySchemes"]) <= {k for s in doc["security"] for k in s}


def test_a_route_of_ours_pygeoapi_documents_itself_fails_the_edit():
    doc = _pygeoapi_like("#/components/responses/x")
    doc["paths"]["/tiles"] = {"get": {"responses": {}}}
    with pytest.raises(compat.IncompatiblePygeoapi, match="has GET /tiles itself"):
        compat.document_routes(doc)


def test_every_operation_lists_the_errors_any_request_may_get():
    """400 (a bad parameter, a body on a GET), 401 (an unknown key) and 500 on every
    operation; Open311's as GeoReport errors."""
    doc = compat.document_routes(
        {"paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}}}
    )
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert {"400", "401", "500"} <= set(op["responses"]), (method, path)
    post = doc["paths"]["/open311/v2/requests.{format}"]["post"]["responses"]
    assert post["400"] == {"$ref": "#/components/responses/Open311Error"}


def _pygeoapi_like(ref: str) -> dict:
    return {
        "openapi": "3.0.2",
        "info": {"title": "t", "version": "1"},
        "components": {"parameters": {}},
        "paths": {"/x": {"get": {"responses": {"200": {"$ref": ref}}}}},
    }


def test_a_ref_to_another_host_we_do_not_define_fails_the_edit():
    unknown = "https://schemas.opengis.net/ogcapi/features/part1/1.0/openapi/x.yaml#/Nope"
    with pytest.raises(compat.IncompatiblePygeoapi, match=r"unknown \$ref https://.*x\.yaml#/Nope"):
        compat.localise_references(_pygeoapi_like(unknown))


def test_a_local_ref_to_nothing_fails_the_edit():
    with pytest.raises(compat.IncompatiblePygeoapi, match=r"#/components/responses/Gone resolves"):
        compat.localise_references(_pygeoapi_like("#/components/responses/Gone"))


def test_a_component_of_pygeoapi_under_one_of_our_names_fails_the_edit():
    doc = _pygeoapi_like("#/components/parameters/datetime")
    doc["components"]["parameters"]["datetime"] = {"name": "datetime", "in": "query"}
    with pytest.raises(compat.IncompatiblePygeoapi, match="components/parameters/datetime"):
        compat.localise_references(doc)


def test_the_edit_replaces_a_known_ref_and_keeps_local_ones():
    known = "https://schemas.opengis.net/cql2/1.0/cql2.json"
    doc = compat.localise_references(_pygeoapi_like(known))
    assert doc["paths"]["/x"]["get"]["responses"]["200"] == {"$ref": "#/components/schemas/cql2"}
    assert "description" in doc["components"]["schemas"]["cql2"]
    assert "21-065" in doc["components"]["schemas"]["cql2"]["description"]


# --- valid OpenAPI 3.0 ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES, ids=["public", "dispatcher"])
def test_the_served_document_is_valid_openapi_3_0(live_server, role):
    doc = _document(live_server, role)
    assert doc["openapi"].startswith("3.0.")
    errors = [
        f"{'/'.join(map(str, e.path))}: {e.message[:300]}"
        for e in OpenAPIV30SpecValidator(doc).iter_errors()
    ]
    assert errors == []


def test_a_binary_process_output_is_a_binary_string_not_content_encoding(live_server):
    """Issue 17: ``contentEncoding`` (JSON Schema 2019-09) in the kernel-density response
    made the document invalid OpenAPI 3.0; 3.0 says ``format: binary``."""
    doc = _document(live_server, "dispatcher")
    response = doc["paths"]["/processes/kernel-density/execution"]["post"]["responses"]["200"]
    assert response["content"]["image/tiff"]["schema"] == {"type": "string", "format": "binary"}
    assert "contentEncoding" not in json.dumps(doc)


def test_items_lists_no_free_form_parameters_since_it_refuses_unknown_ones(live_server):
    """Issue 17: the document declared free-form ``vendorSpecificParameters`` on items,
    whose answer to a parameter it does not list is a 400."""
    doc = _document(live_server, "dispatcher")
    items = [p for p in doc["paths"] if p.endswith("/items")]
    assert items
    for path in items:
        for param in doc["paths"][path]["get"]["parameters"]:
            param = _walk(doc, param["$ref"]) if "$ref" in param else param
            assert param["schema"].get("type") != "object", (path, param["name"])
    assert "vendorSpecificParameters" not in doc["components"]["parameters"]
    r = live_server.get("/collections/incidents/items?f=json&vendorSpecificParameters=1")
    assert r.status_code == 400


# --- true to the answers --------------------------------------------------------------------------

#: (path in the document, request, method's status): answers checked against the document.
ANSWERS = [
    ("/", "/?f=json", 200),
    ("/collections", "/collections?f=json", 200),
    ("/conformance", "/conformance?f=json", 200),
    ("/collections/incidents", "/collections/incidents?f=json", 200),
    ("/collections/dem", "/collections/dem?f=json", 200),
    ("/collections/incidents/items", "/collections/incidents/items?f=json&limit=5", 200),
    (
        "/collections/communities/items",
        "/collections/communities/items?f=json&limit=2&skipGeometry=true",
        200,
    ),
    ("/collections/incidents/items", "/collections/incidents/items?f=json&limit=abc", 400),
    ("/collections/incidents/items", "/collections/incidents/items?f=json&sortby=nope", 400),
    ("/collections/incidents/items/{featureId}", "/collections/incidents/items/{id}?f=json", 200),
    ("/collections/incidents/items/{featureId}", "/collections/incidents/items/nope?f=json", 404),
    ("/collections/incidents", "/collections/incidents?f=xml", 400),
    (
        "/collections/dem/coverage",
        "/collections/dem/coverage?f=json&bbox=109.40,18.30,109.401,18.301",
        200,
    ),
    (
        "/collections/dem/coverage",
        "/collections/dem/coverage?f=json&subset=Height(1:2),Long(109.4:109.5)",
        400,
    ),
    ("/processes", "/processes?f=json", 200),
    ("/jobs/{jobId}", "/jobs/nope?f=json", 404),
    # our routes beside pygeoapi's (tianya/openapi_routes.yml)
    ("/openapi", "/openapi?f=json", 200),
    ("/collections/incidents/queryables", "/collections/incidents/queryables?f=json", 200),
    ("/tiles", "/tiles", 200),
    ("/tiles/{tileMatrixSetId}", "/tiles/Nope", 404),
    ("/styles/{styleId}", "/styles/basemap", 200),
    ("/collections/incidents/tiles", "/collections/incidents/tiles?f=xml", 400),
    ("/cases/transitions", "/cases/transitions", 200),
    ("/cases/{caseNo}/history", "/cases/{id}/history", 200),
    ("/supervision", "/supervision", 200),
    ("/supervision/overdue", "/supervision/overdue", 200),
    ("/supervision/key-tasks", "/supervision/key-tasks?now=2026-11-22T12:00:00%2B08:00", 200),
    ("/supervision/key-tasks", "/supervision/key-tasks?now=soon", 400),
    ("/key-tasks/transitions", "/key-tasks/transitions", 200),
    ("/key-tasks/{taskNo}/history", "/key-tasks/{task}/history", 200),
    ("/key-tasks/{taskNo}/history", "/key-tasks/KT1999-001/history", 404),
    ("/screen/summary.json", "/screen/summary.json?date=x", 400),
    ("/opinion/topics", "/opinion/topics?limit=3", 200),
    ("/opinion/topics", "/opinion/topics?order=hottest", 400),
    ("/open311/v2/services.{format}", "/open311/v2/services.json", 200),
    ("/open311/v2/requests/{service_request_id}.{format}", "/open311/v2/requests/x.json", 404),
]


#: Our routes whose every GET operation must be probed in :data:`ANSWERS` (issue 15: the
#: key-task routes were documented but never checked against an answer).
PROBED = ("/key-tasks/", "/supervision")


def test_every_documented_get_of_the_key_task_and_supervision_routes_is_probed():
    with open(compat.OPENAPI_ROUTES, encoding="utf-8") as fh:
        ours = yaml.safe_load(fh)
    documented = {p for p, item in ours["paths"].items() if "get" in item and p.startswith(PROBED)}
    assert {"/key-tasks/transitions", "/key-tasks/{taskNo}/history"} <= documented
    assert documented - {a[0] for a in ANSWERS} == set()


@pytest.mark.parametrize(("path", "url", "status"), ANSWERS, ids=[a[1] for a in ANSWERS])
def test_the_answer_validates_against_the_schema_the_document_gives(live_server, path, url, status):
    doc = _document(live_server, "dispatcher")
    if "{id}" in url:
        first = live_server.get("/collections/incidents/items?f=json&limit=1", role="dispatcher")
        url = url.replace("{id}", str(first.json()["features"][0]["id"]))
    if "{task}" in url:
        first = live_server.get("/collections/key_tasks/items?f=json&limit=1", role="dispatcher")
        url = url.replace("{task}", str(first.json()["features"][0]["id"]))
    r = live_server.get(url, role="dispatcher")
    assert r.status_code == status, r.text[:300]
    responses = doc["paths"][path]["get"]["responses"]
    response = responses.get(str(status)) or responses["default"]
    response = _walk(doc, response["$ref"]) if "$ref" in response else response
    media = r.headers["Content-Type"].split(";")[0].strip()
    if media not in response["content"]:  # a media type with its parameters (OpenAPI's)
        media = r.headers["Content-Type"].replace(" ", "")
    assert media in response["content"], (media, list(response["content"]))
    schema = response["content"][media]["schema"]
    assert schema, "an empty schema checks nothing"
    registry = Registry().with_resource(_DOC, DRAFT4.create_resource(doc))
    if "$ref" in schema:
        schema = {"$ref": _DOC + schema["$ref"]}
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in OAS30Validator(schema, registry=registry).iter_errors(r.json())
    ]
    assert errors == []


def test_the_schemas_refuse_what_the_server_does_not_answer(live_server):
    """The schemas the answers are checked against are not empty: a feature is not a feature
    collection, an exception needs its ``type``."""
    doc = _document(live_server, "dispatcher")
    registry = Registry().with_resource(_DOC, DRAFT4.create_resource(doc))

    def valid(name, value):
        schema = {"$ref": f"{_DOC}#/components/schemas/{name}"}
        return OAS30Validator(schema, registry=registry).is_valid(value)

    feature = {"type": "Feature", "geometry": None, "properties": {}}
    assert valid("featureGeoJSON", feature)
    assert not valid("featureCollectionGeoJSON", feature)
    assert not valid("featureCollectionGeoJSON", {"type": "FeatureCollection", "features": {}})
    assert not valid("exception", {"description": "no type"})
    assert not valid("exception", {"type": "NotFound"})  # every answer has code, description
    assert valid("exception", {"type": "NotFound", "code": "NotFound", "description": "x"})
    assert not valid("collectionInfo", {"id": "incidents"})  # no links
    assert not valid("statusInfo", {"jobID": "1", "type": "process", "status": "done"})
