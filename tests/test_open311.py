"""Open311 GeoReport v2 facade against the live server."""

from __future__ import annotations

import pytest
from casekit import URBAN, Client, shared_server
from conftest import KEYS

from layers.catalogue import CATEGORIES

V2 = "/open311/v2"


@pytest.fixture(scope="module")
def client(sample_gpkg):
    return Client(shared_server(sample_gpkg))


def _post(client, **data):
    return client.session.post(client.url + V2 + "/requests.json", data=data, timeout=60)


def test_services_are_the_categories(client):
    r = client.get(V2 + "/services.json")
    assert r.status_code == 200
    codes = [s["service_code"] for s in r.json()]
    assert codes == [c.code for c in CATEGORIES]
    zh = client.get(V2 + "/services.json?lang=zh-CN").json()
    assert zh[0]["service_name"] == CATEGORIES[0].zh
    assert client.get(V2 + "/services/street_light.json").json()["attributes"] == []
    assert client.get(V2 + "/services/nope.json").status_code == 404


def test_post_then_follow_the_request(client):
    r = _post(
        client,
        api_key=KEYS["reporter"],
        service_code="street_light",
        lat=URBAN[1],
        long=URBAN[0],
        description="十盏路灯不亮",
        phone="13900000000",
        address_string="三亚湾路",
    )
    assert r.status_code == 201, r.text
    body = r.json()
    rid = body[0]["service_request_id"]
    assert "Power supply bureau" in body[0]["service_notice"]
    one = client.get(f"{V2}/requests/{rid}.json").json()
    assert len(one) == 1
    req = one[0]
    assert req["status"] == "open" and req["service_code"] == "street_light"
    assert req["agency_responsible"] == "Power supply bureau"
    assert req["expected_datetime"] and req["requested_datetime"]
    assert req["lat"] == pytest.approx(URBAN[1]) and req["long"] == pytest.approx(URBAN[0])
    assert "13900000000" not in str(req)
    listed = client.get(f"{V2}/requests.json?service_request_id={rid}").json()
    assert [x["service_request_id"] for x in listed] == [rid]
    # worked through the case API, the Open311 status follows
    for to, role, note in (
        ("handling", "admin", None),
        ("feedback", "admin", "fixed"),
        ("closed", "dispatcher", None),
    ):
        assert client.move(rid, to, role, note=note).status_code == 200
    req = client.get(f"{V2}/requests/{rid}.json").json()[0]
    assert req["status"] == "closed" and req["status_notes"] == "Verified and closed"
    closed = client.get(f"{V2}/requests.json?status=closed&service_code=street_light").json()
    assert rid in [x["service_request_id"] for x in closed]
    assert all(x["status"] == "closed" for x in closed)


def test_post_json_body(client):
    r = client.session.post(
        client.url + V2 + "/requests.json",
        json={
            "api_key": KEYS["reporter"],
            "service_code": "road_damage",
            "lat": URBAN[1],
            "long": URBAN[0],
        },
        timeout=60,
    )
    assert r.status_code == 201, r.text


def test_list_by_date_window(client):
    r = client.get(
        f"{V2}/requests.json?start_date=2026-03-01T00:00:00Z"
        "&end_date=2026-03-02T00:00:00Z&status=closed"
    )
    assert r.status_code == 200
    rows = r.json()
    assert rows and all("2026-03-01" <= x["requested_datetime"] <= "2026-03-02" for x in rows)


@pytest.mark.parametrize(
    "data, status, match",
    [
        ({"service_code": "street_light", "lat": 18.29, "long": 109.46}, 401, "API key"),
        ({"api_key": "k", "service_code": "street_light"}, 401, "unknown API key"),
        (
            {"api_key": KEYS["reporter"], "service_code": "ufo", "lat": 18.29, "long": 109.46},
            400,
            "'ufo' is not a valid service_code",
        ),
        (
            {"api_key": KEYS["reporter"], "service_code": "street_light", "long": 109.46},
            400,
            "'lat' is required",
        ),
        (
            {"api_key": KEYS["reporter"], "service_code": "street_light", "lat": "x", "long": 1},
            400,
            "'lat' must be a number",
        ),
        (
            {
                "api_key": KEYS["reporter"],
                "service_code": "street_light",
                "lat": 40.0,
                "long": 116.4,
            },
            400,
            "outside Tianya District",
        ),
        (
            {
                "api_key": KEYS["reporter"],
                "service_code": "street_light",
                "lat": 18.29,
                "long": 109.46,
                "colour": "red",
            },
            400,
            "'colour' is not a valid Open311 parameter",
        ),
        (
            {
                "api_key": KEYS["department"],
                "service_code": "street_light",
                "lat": 18.29,
                "long": 109.46,
            },
            403,
            "role 'department'",
        ),
    ],
)
def test_post_refusals_in_georeport_format(client, data, status, match):
    r = _post(client, **data)
    assert r.status_code == status, r.text
    err = r.json()
    assert err[0]["code"] == status and match in err[0]["description"]


def test_get_refusals(client):
    assert client.get(V2 + "/requests.xml").status_code == 400
    assert client.get(V2 + "/requests/NOPE-1.json").status_code == 404
    assert client.get(V2 + "/requests.json?status=pending").status_code == 400
    assert client.get(V2 + "/requests.json?jurisdiction_id=beijing").status_code == 400
    assert client.get(V2 + "/requests.json?service_request_id=a'b").status_code == 400
    assert client.get(V2 + "/nothing.json").status_code == 404
