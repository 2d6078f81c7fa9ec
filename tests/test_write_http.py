"""HTTP semantics of the writes (issue 17, "HTTP"): RFC 9110 on OGC API Features Part 4.

Part 4 (class /req/create-replace-delete) is built on HTTP; these are the HTTP rules the writes
must keep: a 401 names its scheme, and ``If-Match`` preconditions are honoured.
"""

from __future__ import annotations

import json

import pytest
from casekit import GEOJSON, Client, feature, headers, shared_server
from conftest import LiveServer
from stores import writable_copy

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def client(store_kind, sample_gpkg):
    if store_kind == "gpkg":
        yield Client(shared_server(sample_gpkg))
        return
    srv = LiveServer(writable_copy(store_kind, sample_gpkg, "write_http"))
    try:
        yield Client(srv)
    finally:
        srv.stop()


def _url(client, case_no):
    return f"{client.url}/collections/incidents/items/{case_no}"


def _put(client, case_no, doc, role="dispatcher", **extra):
    return client.session.put(
        _url(client, case_no),
        data=json.dumps(doc),
        headers=headers(role, **{"Content-Type": GEOJSON, **extra}),
        timeout=60,
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_req_create_replace_delete_anonymous_write_401_has_www_authenticate(client, method):
    """Class /req/create-replace-delete (its writes are HTTP) and RFC 9110 §15.5.2: a 401
    SHALL carry ``WWW-Authenticate`` with a challenge (Bearer, realm "tianya")."""
    case_no = client.create_ok()
    url = client.url + "/collections/incidents/items"
    if method != "POST":
        url += f"/{case_no}"
    body = json.dumps(feature())
    r = client.session.request(
        method, url, data=body, headers={"Content-Type": GEOJSON}, timeout=60
    )
    assert r.status_code == 401, r.text
    challenge = r.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer") and 'realm="tianya"' in challenge


def test_req_create_replace_delete_put_if_match_mismatch_412(client):
    """Class /req/create-replace-delete, its optimistic locking by ETag (replace with
    ``If-Match``), and RFC 9110 §13.1.1: a PUT whose ``If-Match`` does not match the item's
    current ETag is 412 and changes nothing."""
    case_no = client.create_ok()
    r = client.item(case_no)
    etag = r.headers.get("ETag")
    assert etag, "an item GET carries an ETag"
    full = r.json()
    full["properties"]["title"] = "不该写入"
    r = _put(client, case_no, full, **{"If-Match": '"not-the-etag"'})
    assert r.status_code == 412, r.text
    after = client.item(case_no)
    assert after.json()["properties"]["title"] == "井盖丢失"
    assert after.headers["ETag"] == etag
    # the matching ETag (and "*") lets it through; the ETag changes with the item
    r = _put(client, case_no, full, **{"If-Match": etag})
    assert r.status_code == 204, r.text
    after = client.item(case_no)
    assert after.json()["properties"]["title"] == "不该写入"
    assert after.headers["ETag"] != etag
    full["properties"]["title"] = "再改"
    r = _put(client, case_no, full, **{"If-Match": "*"})
    assert r.status_code == 204, r.text
    # the old ETag no longer matches
    r = _put(client, case_no, full, **{"If-Match": etag})
    assert r.status_code == 412, r.text


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_req_create_replace_delete_if_match_on_missing_id_412(client, method):
    """RFC 9110 §13.1.1: ``If-Match`` on a resource that does not exist SHALL fail (412),
    for ``PUT``, ``DELETE`` (class /req/create-replace-delete) and ``PATCH``."""
    body = json.dumps(feature())
    for tag in ('"abc"', "*"):
        r = client.session.request(
            method,
            _url(client, "NO-SUCH-CASE"),
            data=body,
            headers=headers("admin", **{"Content-Type": GEOJSON, "If-Match": tag}),
            timeout=60,
        )
        assert r.status_code == 412, (tag, r.text)
