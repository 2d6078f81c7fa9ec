"""Access control in front of pygeoapi, against a live server with a real HTTP client."""

from __future__ import annotations

import pytest
from casekit import Client, feature, shared_server


@pytest.fixture(scope="module")
def client(sample_gpkg):
    return Client(shared_server(sample_gpkg))


def test_public_reads_incidents_without_contacts(client):
    r = client.get("/collections/incidents/items?limit=5&f=json")
    assert r.status_code == 200
    for f in r.json()["features"]:
        assert "reporter_name" not in f["properties"]
        assert "reporter_phone" not in f["properties"]
    r = client.get("/collections/incidents/items?limit=5&f=json", role="dispatcher")
    assert "reporter_phone" in r.json()["features"][0]["properties"]
    r = client.get("/collections/incidents/items?limit=5&f=json", role="reporter")
    assert "reporter_phone" not in r.json()["features"][0]["properties"]


def test_sensitive_layers_need_trusted_role(client):
    path = "/collections/poverty_relief/items?limit=1&f=json"
    assert client.get(path).status_code == 401
    assert client.get(path, role="reporter").status_code == 403
    assert client.get(path, role="dispatcher").status_code == 200
    r = client.get("/collections/building_population/items?limit=1&f=json")
    assert r.status_code == 200 and "manager_phone" not in r.json()["features"][0]["properties"]


def test_unknown_key_is_401(client):
    r = client.session.get(
        client.url + "/collections/incidents/items?limit=1",
        headers={"Authorization": "Bearer nope"},
    )
    assert r.status_code == 401 and "unknown API key" in r.json()["description"]


def test_writes_need_a_role(client):
    assert client.create(feature(), role=None).status_code == 401
    case_no = client.create_ok()
    assert client.patch(case_no, {"description": "x"}, None).status_code == 401
    assert client.patch(case_no, {"description": "x"}, "reporter").status_code == 403
    r = client.session.patch(
        f"{client.url}/collections/incidents/items/{case_no}", json={"status": "handling"}
    )
    assert r.status_code == 401
    r = client.session.delete(f"{client.url}/collections/incidents/items/{case_no}")
    assert r.status_code == 401
    r = client.session.delete(
        f"{client.url}/collections/incidents/items/{case_no}",
        headers={"Authorization": "Bearer test-reporter-key"},
    )
    assert r.status_code == 403 and "admin" in r.json()["description"]
    r = client.session.delete(
        f"{client.url}/collections/incidents/items/{case_no}",
        headers={"Authorization": "Bearer test-admin-key"},
    )
    assert r.status_code == 200
    assert client.item(case_no).status_code == 404


def test_other_collections_are_read_only(client):
    r = client.session.post(
        client.url + "/collections/rivers/items",
        data="{}",
        headers={"Authorization": "Bearer test-admin-key", "Content-Type": "application/geo+json"},
    )
    assert r.status_code == 400


def test_each_role_only_its_transitions(client):
    case_no = client.create_ok()
    r = client.move(case_no, "handling", "reporter")
    assert r.status_code == 403 and "allowed roles: department, admin" in r.json()["description"]
    r = client.move(case_no, "handling", None)
    assert r.status_code == 401
    r = client.move(case_no, "closed", "dispatcher")
    assert r.status_code == 409 and "legal next stages" in r.json()["description"]
    assert client.move(case_no, "handling", "department").status_code == 200
    r = client.patch(case_no, {"status": "feedback", "note": "done"}, "department")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "feedback"
    r = client.move(case_no, "closed", "department")
    assert r.status_code == 403
    assert client.move(case_no, "closed", "dispatcher").status_code == 200


def test_history_and_overdue_need_roles(client):
    case_no = client.create_ok()
    assert client.history(case_no, role=None).status_code == 401
    assert client.history(case_no, role="reporter").status_code == 200
    assert client.history("TY1999010100001").status_code == 404
    assert client.get("/supervision/overdue").status_code == 401
    assert client.get("/supervision/overdue", role="reporter").status_code == 403
    r = client.get("/supervision/overdue", role="department")
    assert r.status_code == 200
    assert {c["department"] for c in r.json()["cases"]} <= {"water"}


def test_supervision_resource(client):
    r = client.get("/supervision?by=department")
    assert r.status_code == 200
    body = r.json()
    assert body["by"] == "department" and "completion_rate" in body["figures"][0]
    total = client.get("/supervision").json()["figures"][0]
    assert 0.95 < total["completion_rate"] <= 1 and 0.985 < total["due_completion_rate"] <= 1
    r = client.get("/supervision?by=street")
    assert r.status_code == 400 and "must be one of" in r.json()["description"]
    r = client.get("/supervision?colour=1")
    assert r.status_code == 400
    r = client.get("/supervision?by=week&datetime=2026-01-01T00:00:00Z/2026-02-01T00:00:00Z")
    assert r.status_code == 200 and len(r.json()["figures"]) in (5, 6)


def test_no_admin_api_and_no_debug_pages(client):
    assert client.get("/admin/config", role="admin").status_code == 404
    r = client.get("/collections/incidents/items/%00?f=html")
    assert r.status_code < 500 and "Traceback" not in r.text and "Werkzeug" not in r.text
    r = client.get("/console")
    assert r.status_code == 404
