"""OGC API - Features - Part 4: Create, Replace, Update and Delete (draft OGC 20-002),
requirement by requirement, on the one mutable collection: ``incidents`` (the cases).

Requirement ids and texts: ``opengeospatial/ogcapi-features``,
``extensions/transactions/create-replace-update-delete/standard/requirements/
create-replace-delete/`` and ``.../update/`` (the draft's Requirements Classes
"Create/Replace/Delete" and "Update"), and its abstract tests (``annex_ats_*.adoc``).

Not declared: "Optimistic Locking using ETags" (``/req/optimistic-locking-etags/...``): the
draft's ``ifmatch-put-op``/``ifmatch-patch-op`` make ``If-Match`` mandatory on every PUT and
PATCH (428 without it, ``REQ_ifmatch-missing``), which its own abstract test relaxes to a
permission; we honour ``If-Match`` when sent (412, checked in the write transaction) and send
``ETag`` on GET, PUT and PATCH (tested below), but keep it optional for existing clients.
The "Features" class (GeoJSON bodies with JSON Merge Patch, ``application/merge-patch+json``)
is not declared either: our PATCH changes a case's workflow (``status`` is a transition).
"Update" (PATCH) is not declared: all its requirements pass below (the ``test_req_update_*``
tests) but ``/req/update/patch-content-type`` (a PATCH without ``Content-Type`` is a 400):
our PATCH reads a body without a type as JSON, as clients of the case API send it.

Writes go to a writable copy of the sample (:func:`casekit.shared_server`, or a PostGIS copy).
"""

from __future__ import annotations

import concurrent.futures
import json

import pytest
from casekit import GEOJSON, Client, feature, headers, shared_server
from conftest import LiveServer
from stores import writable_copy

pytestmark = pytest.mark.both_stores

_CLASS = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/{}"
#: Conformance classes tested here -> every requirement of each (draft OGC 20-002).
CONFORMANCE = {
    _CLASS.format("create-replace-delete"): (
        "/req/core/methods",
        "/req/create-replace-delete/options-op",
        "/req/create-replace-delete/options-response",
        "/req/create-replace-delete/options-accept-post",
        "/req/create-replace-delete/post-op",
        "/req/create-replace-delete/post-body",
        "/req/create-replace-delete/post-content-type",
        "/req/create-replace-delete/post-response",
        "/req/create-replace-delete/post-response-rid",
        "/req/create-replace-delete/put-op",
        "/req/create-replace-delete/put-body",
        "/req/create-replace-delete/put-content-type",
        "/req/create-replace-delete/put-response",
        "/req/create-replace-delete/put-rid",
        "/req/create-replace-delete/put-rid-exception",
        "/req/create-replace-delete/delete-op",
        "/req/create-replace-delete/delete-response",
    ),
}

ITEMS = "/collections/incidents/items"
#: What each role may do to a case (layers.lifecycle: EDIT, PATCH and DELETE roles).
WRITES = {
    None: set(),
    "reporter": set(),
    "dispatcher": {"PUT", "PATCH"},
    "admin": {"PUT", "PATCH", "DELETE"},
}


@pytest.fixture(scope="module")
def client(store_kind, sample_gpkg):
    if store_kind == "gpkg":
        yield Client(shared_server(sample_gpkg))
        return
    srv = LiveServer(writable_copy(store_kind, sample_gpkg, "conf_tx"))
    try:
        yield Client(srv)
    finally:
        srv.stop()


def _send(client, method, path, role="dispatcher", body=None, ctype=GEOJSON, **extra):
    hdrs = headers(role, **({"Content-Type": ctype} if ctype else {}), **extra)
    data = None if body is None else json.dumps(body)
    return client.session.request(method, client.url + path, data=data, headers=hdrs, timeout=60)


def _options(client, path, role=None):
    r = _send(client, "OPTIONS", path, role, ctype=None)
    assert r.status_code == 200, r.text
    return {m.strip() for m in r.headers["Allow"].split(",")}, r


def _props(client, case_no, role="dispatcher") -> dict:
    r = client.item(case_no, role)
    assert r.status_code == 200, r.text
    return r.json()["properties"]


# --- OPTIONS ----------------------------------------------------------------------------------


def test_req_core_methods(client):
    """POST on the resources endpoint, PUT and DELETE on a resource endpoint, each declared
    through OPTIONS."""
    case_no = client.create_ok()
    allowed, _ = _options(client, ITEMS, "reporter")
    assert "POST" in allowed
    allowed, _ = _options(client, f"{ITEMS}/{case_no}", "admin")
    assert {"PUT", "DELETE"} <= allowed


def test_req_create_replace_delete_options_op(client):
    case_no = client.create_ok()
    for role in WRITES:
        for path in (ITEMS, f"{ITEMS}/{case_no}"):
            _options(client, path, role)


@pytest.mark.parametrize("role", list(WRITES))
def test_req_create_replace_delete_options_response(client, role):
    """``Allow`` lists the methods this caller may use on the case now, and only those: each
    listed write is taken, each other one refused (401/403). pygeoapi listed ``PUT, DELETE``
    to everyone."""
    case_no = client.create_ok()
    allowed, _ = _options(client, f"{ITEMS}/{case_no}", role)
    assert {"GET", "HEAD", "OPTIONS"} <= allowed
    assert allowed - {"GET", "HEAD", "OPTIONS"} == WRITES[role]
    for method in ("PATCH", "PUT", "DELETE"):
        if method in allowed:
            continue
        r = _send(client, method, f"{ITEMS}/{case_no}", role, body=feature())
        assert r.status_code == (401 if role is None else 403), (method, r.text)
    if "PATCH" in allowed:
        r = _send(client, "PATCH", f"{ITEMS}/{case_no}", role, {"address": "x"})
        assert r.status_code == 200, r.text
    assert _send(client, "GET", f"{ITEMS}/{case_no}?f=json", role, ctype=None).status_code == 200


def test_req_create_replace_delete_options_response_department_own_cases(client):
    """A department may patch only the cases dispatched to it: ``Allow`` says so per case
    (the test department key is the water bureau's, tests/keys.yml)."""
    for department in ("water", "housing"):
        case_no = client.create_ok(feature(department=department), role="dispatcher")
        assert _props(client, case_no)["department"] == department
        allowed, _ = _options(client, f"{ITEMS}/{case_no}", "department")
        own = department == "water"
        assert ("PATCH" in allowed) == own, department
        body = {"status": "handling"}  # a department's move, on its own cases only
        r = _send(client, "PATCH", f"{ITEMS}/{case_no}", "department", body)
        assert (r.status_code != 403) == own, r.text


def test_req_create_replace_delete_options_accept_post(client):
    """With POST allowed, ``Accept-Post`` lists the media types a POST takes: the intake's
    GeoJSON for a role that creates cases; CQL2 JSON queries for everyone."""
    for role, creates in ((None, False), ("reporter", True), ("dispatcher", True)):
        allowed, r = _options(client, ITEMS, role)
        assert "POST" in allowed
        accept = {t.strip() for t in r.headers["Accept-Post"].split(",")}
        assert ("application/geo+json" in accept) == creates, role
        assert "application/query-cql-json" in accept
    r = _send(client, "POST", ITEMS, None, feature())
    assert r.status_code == 401  # the public may not create (no geo+json in its Accept-Post)


# --- CREATE -----------------------------------------------------------------------------------


def test_req_create_replace_delete_post_op(client):
    r = _send(client, "POST", ITEMS, "reporter", feature())
    assert r.status_code == 201, r.text


def test_req_create_replace_delete_post_body(client):
    """The body is a representation of the new case (a GeoJSON Feature); another body is
    refused and nothing is created."""
    r = _send(client, "POST", ITEMS, "reporter", {"type": "FeatureCollection", "features": []})
    assert r.status_code == 400, r.text
    r = _send(client, "POST", ITEMS, "reporter", feature(title="正文"))
    assert r.status_code == 201
    case_no = r.headers["Location"].rsplit("/", 1)[-1]
    assert _props(client, case_no)["title"] == "正文"


def test_req_create_replace_delete_post_content_type(client):
    r = _send(client, "POST", ITEMS, "reporter", feature(), ctype=None)
    assert r.status_code == 400, r.text


def test_req_create_replace_delete_post_response(client):
    """201 with ``Location``; the case there is the one submitted."""
    doc = feature(title="路灯不亮", category="street_light")
    r = _send(client, "POST", ITEMS, "reporter", doc)
    assert r.status_code == 201, r.text
    got = client.session.get(r.headers["Location"], params={"f": "json"}, timeout=60)
    assert got.status_code == 200
    body = got.json()
    assert body["properties"]["title"] == "路灯不亮"
    assert body["properties"]["category"] == "street_light"
    assert body["geometry"]["coordinates"] == pytest.approx(doc["geometry"]["coordinates"])


def test_req_create_replace_delete_post_response_rid(client):
    """A new, unique identifier; an ``id`` in the body (even an existing case's) is not it."""
    existing = client.create_ok()
    before = _props(client, existing)
    r = _send(client, "POST", ITEMS, "reporter", {**feature(title="另一件"), "id": existing})
    assert r.status_code == 201, r.text
    new = r.headers["Location"].rsplit("/", 1)[-1]
    assert new != existing and new != client.create_ok()
    assert _props(client, new)["title"] == "另一件"
    assert _props(client, existing) == before


# --- REPLACE ----------------------------------------------------------------------------------


def _replacement(client, case_no, **props):
    doc = client.item(case_no).json()
    doc["properties"].update(props)
    return doc


def test_req_create_replace_delete_put_op(client):
    case_no = client.create_ok()
    r = _send(client, "PUT", f"{ITEMS}/{case_no}", body=_replacement(client, case_no))
    assert r.status_code == 204, r.text


def test_req_create_replace_delete_put_body(client):
    """The body is the new content (a GeoJSON Feature); anything else is refused unchanged."""
    case_no = client.create_ok()
    before = _props(client, case_no)
    r = _send(client, "PUT", f"{ITEMS}/{case_no}", body={"type": "Point", "coordinates": [0, 0]})
    assert r.status_code == 400, r.text
    for props in (5, "ab"):  # a 500 once PUT was the shell's (dict() of them raised)
        r = _send(
            client, "PUT", f"{ITEMS}/{case_no}", body={"type": "Feature", "properties": props}
        )
        assert r.status_code == 400, r.text
    assert _props(client, case_no) == before


def test_req_create_replace_delete_put_content_type(client):
    """No ``Content-Type``: 400 and nothing changes (pygeoapi took the body as it came)."""
    case_no = client.create_ok()
    before = _props(client, case_no)
    doc = _replacement(client, case_no, title="无类型")
    r = _send(client, "PUT", f"{ITEMS}/{case_no}", body=doc, ctype=None)
    assert r.status_code == 400, r.text
    assert "Content-Type" in r.json()["description"]
    assert _props(client, case_no) == before


def test_req_create_replace_delete_put_response(client):
    """204; the case then holds the new content, and the answer's ``ETag`` is the one a GET
    now gives."""
    case_no = client.create_ok()
    doc = _replacement(client, case_no, title="已替换", address="海边路 1 号")
    r = _send(client, "PUT", f"{ITEMS}/{case_no}", body=doc)
    assert r.status_code == 204, r.text
    got = client.item(case_no)
    assert got.json()["properties"]["title"] == "已替换"
    assert got.json()["properties"]["address"] == "海边路 1 号"
    assert r.headers["ETag"] == got.headers["ETag"]


def test_req_create_replace_delete_put_rid(client):
    """An ``id`` in the body is ignored: the case keeps its id, the case named is untouched."""
    case_no, other = client.create_ok(), client.create_ok()
    before = _props(client, other)
    doc = {**_replacement(client, case_no, title="换了"), "id": other}
    r = _send(client, "PUT", f"{ITEMS}/{case_no}", body=doc)
    assert r.status_code == 204, r.text
    got = client.item(case_no).json()
    assert got["id"] == case_no and got["properties"]["title"] == "换了"
    assert _props(client, other) == before


def test_req_create_replace_delete_put_rid_exception(client):
    """A PUT to no case is 404 (PUT creates nothing); with ``If-Match`` it is 412; neither
    creates a case."""
    doc = feature()
    r = _send(client, "PUT", f"{ITEMS}/TY-NONE-1", body=doc)
    assert r.status_code == 404, r.text
    r = _send(client, "PUT", f"{ITEMS}/TY-NONE-2", body=doc, **{"If-Match": '"xyz"'})
    assert r.status_code == 412, r.text
    for missing in ("TY-NONE-1", "TY-NONE-2"):
        assert client.item(missing).status_code == 404


# --- DELETE -----------------------------------------------------------------------------------


def test_req_create_replace_delete_delete_op(client):
    case_no = client.create_ok()
    r = _send(client, "DELETE", f"{ITEMS}/{case_no}", "admin", ctype=None)
    assert r.status_code in (200, 204), r.text


def test_req_create_replace_delete_delete_response(client):
    case_no = client.create_ok()
    r = _send(client, "DELETE", f"{ITEMS}/{case_no}", "admin", ctype=None)
    assert r.status_code in (200, 204), r.text
    assert client.item(case_no).status_code == 404


# --- UPDATE -----------------------------------------------------------------------------------


def test_req_update_methods(client):
    case_no = client.create_ok()
    allowed, _ = _options(client, f"{ITEMS}/{case_no}", "dispatcher")
    assert "PATCH" in allowed


def test_req_update_options_accept_patch(client):
    case_no = client.create_ok()
    _, r = _options(client, f"{ITEMS}/{case_no}", "dispatcher")
    accept = [t.strip() for t in r.headers["Accept-Patch"].split(",") if t.strip()]
    assert "application/json" in accept
    r = _send(client, "PATCH", f"{ITEMS}/{case_no}", body={"address": "y"}, ctype=accept[0])
    assert r.status_code != 415


def test_req_update_update_patch_op(client):
    case_no = client.create_ok()
    r = _send(client, "PATCH", f"{ITEMS}/{case_no}", body={"address": "a"})
    assert r.status_code == 200, r.text


def test_req_update_update_patch_body(client):
    """The body names the parts to change: those change, every other part stays."""
    case_no = client.create_ok()
    before = client.item(case_no).json()
    r = _send(
        client,
        "PATCH",
        f"{ITEMS}/{case_no}",
        body={"type": "Feature", "properties": {"description": "补充"}},
    )
    assert r.status_code == 200, r.text
    after = client.item(case_no).json()
    assert after["properties"]["description"] == "补充"
    assert after["geometry"] == before["geometry"]
    changed = {k for k, v in after["properties"].items() if before["properties"].get(k) != v}
    assert changed == {"description"}


def test_req_update_update_patch_response(client):
    """200 (with the case) and the new ``ETag``, the one a GET now gives."""
    case_no = client.create_ok()
    etag = client.item(case_no).headers["ETag"]
    r = _send(client, "PATCH", f"{ITEMS}/{case_no}", body={"address": "b"})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["address"] == "b"
    assert r.headers["ETag"] != etag
    assert r.headers["ETag"] == client.item(case_no).headers["ETag"]


def test_req_update_rid(client):
    """An ``id`` in the body that is not the case's is ignored."""
    case_no, other = client.create_ok(), client.create_ok()
    before = _props(client, other)
    body = {"type": "Feature", "id": other, "properties": {"address": "d"}}
    r = _send(client, "PATCH", f"{ITEMS}/{case_no}", body=body)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == case_no and _props(client, case_no)["address"] == "d"
    assert _props(client, other) == before


# --- If-Match in the write: two writers holding one ETag --------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_two_writers_with_the_same_etag_only_one_writes(client, method):
    """Issue 17 ("HTTP"): the ``If-Match`` check was made before the write transaction, so
    two writers sending the same ETag at once could both pass. Now the condition is checked
    against the row the write locks: of each pair, one writes (2xx) and the other is 412, and
    the case holds the one write, with one history row for it."""
    pairs = 6
    for _ in range(pairs):
        case_no = client.create_ok()
        got = client.item(case_no)
        etag, history_before = got.headers["ETag"], len(client.history(case_no).json()["history"])

        def write(i, case_no=case_no, base=got.json(), etag=etag):
            if method == "PUT":
                body = dict(base, properties={**base["properties"], "title": f"写者{i}"})
            else:
                body = {"title": f"写者{i}"}
            return _send(client, method, f"{ITEMS}/{case_no}", body=body, **{"If-Match": etag})

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(write, range(2)))
        codes = sorted(r.status_code for r in answers)
        assert codes == sorted([200 if method == "PATCH" else 204, 412]), [
            (r.status_code, r.text[:200]) for r in answers
        ]
        winner = next(i for i, r in enumerate(answers) if r.status_code != 412)
        assert _props(client, case_no)["title"] == f"写者{winner}"
        history = client.history(case_no).json()["history"]
        assert len(history) == history_before + 1


def test_if_match_is_checked_in_the_write_itself(client):
    """The store-level write refuses a stale ETag even when the quick check before it
    passed (a change between the two): :func:`layers.lifecycle.locked_case`."""
    from layers import lifecycle

    case = {"id": "x", "properties": {"title": "a"}, "geometry": None}
    lifecycle.require_match(case, lifecycle.etag(case), "x")
    changed = dict(case, properties={"title": "b"})
    with pytest.raises(lifecycle.PreconditionFailed):
        lifecycle.require_match(changed, lifecycle.etag(case), "x")
    with pytest.raises(lifecycle.PreconditionFailed):
        lifecycle.require_match(None, "*", "x")
