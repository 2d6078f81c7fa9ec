"""No author's handle or personal field reaches the public by any route (issue 14, item 5).

Every post in the server's store carries planted personal values (``tests/opinionkit.py``:
``handle``, ``author_id``, ``profile_url``, ``source_url`` and the @mention of
``original_text`` all contain ``PLANTED``; a topic's ``replied_by`` too). Each public route
that could carry them -- items (JSON, HTML, CSV, JSON-LD), one item, ``properties=``,
``filter=`` (CQL2 text, CQL2 JSON in the query and in a POST), ``sortby=``, a property's own
parameter, queryables, schema, the collection, OpenAPI, vector tiles, the analysis
processes, ``/opinion/topics`` and the screen's figures -- is read as the public (and the
reporter role) and grepped for them; the roles trusted with personal data (dispatcher,
admin) do see them where the catalogue allows. Both stores.
"""

from __future__ import annotations

import json
import math

import pytest
import requests
from conftest import KEYS
from opinionkit import HIDDEN, MARKERS, PLANTED, opinion_server

pytestmark = pytest.mark.both_stores

PUBLIC = (None, "reporter")
HIDDEN_POST = (*HIDDEN, "original_text")
ITEMS = "/collections/public_opinion/items"


@pytest.fixture(scope="module")
def served(store_kind, sample_gpkg, sample_data):
    return opinion_server(store_kind, sample_gpkg, sample_data)


def _headers(role):
    return {"Authorization": f"Bearer {KEYS[role]}"} if role else {}


def _get(srv, path, role=None, **kw):
    return requests.get(srv.url + path, headers=_headers(role), timeout=120, **kw)


def _post(srv, path, body, role=None, ctype="application/json"):
    headers = {**_headers(role), "Content-Type": ctype}
    return requests.post(srv.url + path, data=json.dumps(body), headers=headers, timeout=120)


def _clean(r) -> None:
    """``r`` carries no planted value (nor a hidden field's name in a JSON body)."""
    body = r.content
    for m in MARKERS:
        assert m.encode() not in body, (r.url, r.status_code)
    assert b"PLANTED" not in body


def _placed(posts):
    return posts[posts.geometry.notna()]


# --- items, one item, their formats ----------------------------------------------------------


@pytest.mark.parametrize("role", PUBLIC)
@pytest.mark.parametrize(
    "query",
    [
        "f=json&limit=500",
        "f=html&limit=200",
        "f=csv&limit=500",
        "f=jsonld&limit=50",
        "f=json&limit=500&skipGeometry=true",
        "f=json&limit=200&properties=text,topic_id,category",
        "f=json&limit=200&sortby=-posted_at",
    ],
)
def test_public_items_carry_no_personal_field(served, role, query):
    srv = served[0]
    r = _get(srv, f"{ITEMS}?{query}", role)
    assert r.status_code == 200, r.text[:300]
    _clean(r)
    if query.startswith("f=json&"):
        feats = r.json()["features"]
        assert len(feats) > 0
        for f in feats:
            assert not set(f["properties"]) & set(HIDDEN_POST)


@pytest.mark.parametrize("role", PUBLIC)
@pytest.mark.parametrize("f", ["json", "html", "jsonld"])
def test_public_single_post_carries_no_personal_field(served, role, f):
    srv, posts = served[0], served[1]
    pid = _placed(posts)["post_id"].iloc[0]
    r = _get(srv, f"{ITEMS}/{pid}?f={f}", role)
    assert r.status_code == 200 and pid in r.text
    _clean(r)


@pytest.mark.parametrize("role", ["dispatcher", "admin"])
def test_trusted_roles_see_the_author(served, role):
    srv, posts = served[0], served[1]
    pid = posts["post_id"].iloc[3]
    r = _get(srv, f"{ITEMS}/{pid}?f=json", role)
    props = r.json()["properties"]
    i = posts.index[posts["post_id"] == pid][0]
    assert {k: props[k] for k in HIDDEN_POST} == {k: posts.at[i, k] for k in HIDDEN_POST}
    r = _get(srv, f"{ITEMS}?f=json&limit=5&properties=handle", role)
    assert r.status_code == 200 and PLANTED in r.text


# --- naming a hidden field: properties, filter, sortby, its own parameter ---------------------


def _refusals():
    like = {"op": "like", "args": [{"property": "handle"}, f"{PLANTED}%"]}
    return [
        "properties=handle",
        "properties=text,author_id",
        f"filter=handle LIKE '{PLANTED}%'",
        "filter=profile_url IS NOT NULL",
        f"filter={json.dumps(like)}&filter-lang=cql2-json",
        "sortby=handle",
        "properties=original_text",
        f"filter=original_text LIKE '%{PLANTED}%'",
        "sortby=-source_url",
        f"handle={PLANTED}1",
    ]


@pytest.mark.parametrize("role", PUBLIC)
@pytest.mark.parametrize("query", _refusals())
def test_public_naming_a_hidden_field_is_refused_without_its_values(served, role, query):
    r = _get(served[0], f"{ITEMS}?f=json&{query}", role)
    assert r.status_code == 400, r.text[:300]
    _clean(r)


@pytest.mark.parametrize("role", PUBLIC)
def test_public_post_query_naming_a_hidden_field_is_refused(served, role):
    body = {"op": "like", "args": [{"property": "handle"}, f"{PLANTED}%"]}
    for ctype in ("application/query-cql-json", "application/json"):
        r = _post(served[0], ITEMS, body, role, ctype)
        assert r.status_code == 400, r.text[:300]
        _clean(r)
    body = {"op": "=", "args": [{"property": "category"}, "street_light"]}
    r = _post(served[0], ITEMS, body, role, "application/query-cql-json")
    assert r.status_code == 200 and r.json()["features"]
    _clean(r)


def test_admin_filters_on_the_handle(served):
    srv, posts = served[0], served[1]
    want = posts["handle"].iloc[7]
    r = _get(srv, f"{ITEMS}?f=json&filter=handle='{want}'", "admin")
    assert r.status_code == 200
    assert [f["properties"]["handle"] for f in r.json()["features"]] == [want]


# --- descriptions: queryables, schema, collection, OpenAPI ------------------------------------


@pytest.mark.parametrize("role", PUBLIC)
@pytest.mark.parametrize(
    "path",
    [
        "/collections/public_opinion/queryables?f=json",
        "/collections/public_opinion/schema?f=json",
        "/collections/public_opinion?f=json",
        "/collections/public_opinion/queryables?f=html",
        "/collections/public_opinion/schema?f=html",
        "/collections/public_opinion?f=html",
        "/collections/opinion_topics/schema?f=json",
        "/openapi?f=json",
    ],
)
def test_public_descriptions_name_no_hidden_field(served, role, path):
    r = _get(served[0], path, role)
    assert r.status_code == 200, r.text[:300]
    _clean(r)
    if "f=json" in path and "openapi" not in path and "properties" in r.json():
        assert not set(r.json()["properties"]) & {*HIDDEN_POST, "replied_by"}
    if "openapi" in path:
        doc = r.json()
        for p in ("/collections/public_opinion/items", "/collections/opinion_topics/items"):
            names = {q.get("name") for q in doc["paths"][p]["get"]["parameters"]}
            assert not names & {*HIDDEN_POST, "replied_by"}


# --- tiles ------------------------------------------------------------------------------------


def _tile(lon, lat, z):
    n = 2**z
    col = int((lon + 180) / 360 * n)
    lat_r = math.radians(lat)
    row = int((1 - math.asinh(math.tan(lat_r)) / math.pi) / 2 * n)
    return row, col


@pytest.mark.parametrize("z", [10, 14])
def test_public_tiles_carry_no_personal_field(served, z):
    srv, posts = served[0], served[1]
    pt = _placed(posts).geometry.iloc[0]
    row, col = _tile(pt.x, pt.y, z)
    r = _get(srv, f"/collections/public_opinion/tiles/WebMercatorQuad/{z}/{row}/{col}?f=mvt")
    assert r.status_code == 200 and len(r.content) > 0
    assert b"OP" in r.content  # the posts are in the tile
    _clean(r)
    for name in HIDDEN_POST:
        assert name.encode() not in r.content


# --- processes -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", PUBLIC)
@pytest.mark.parametrize(
    "inputs",
    [
        {"aggregation": "communities"},
        {"aggregation": "fishnet", "cell_size": 1000},
        {"aggregation": "none", "field": "confidence", "datetime": "2026-11-15/2026-11-22"},
    ],
)
def test_public_hot_spots_of_posts_carry_no_personal_field(served, role, inputs):
    body = {"inputs": {"collection": "public_opinion", **inputs}}
    r = _post(served[0], "/processes/hot-spots/execution", body, role)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["features"]
    _clean(r)


@pytest.mark.parametrize("role", PUBLIC)
@pytest.mark.parametrize(
    "inputs",
    [
        {"filter": f"handle LIKE '{PLANTED}%'"},
        {"filter": "author_id IS NOT NULL", "aggregation": "communities"},
        {"aggregation": "none", "field": "handle"},
    ],
)
def test_public_process_naming_a_hidden_field_is_refused(served, role, inputs):
    body = {"inputs": {"collection": "public_opinion", **inputs}}
    r = _post(served[0], "/processes/hot-spots/execution", body, role)
    assert r.status_code == 400, r.text[:300]
    _clean(r)


# --- topics: items, the hot-topics view; the screen --------------------------------------------


@pytest.mark.parametrize("role", PUBLIC)
@pytest.mark.parametrize(
    "path",
    [
        "/collections/opinion_topics/items?f=json&limit=500",
        "/collections/opinion_topics/items?f=html&limit=100",
        "/opinion/topics?limit=50",
        "/opinion/topics?limit=50&f=html",
        "/opinion/topics?limit=50&since=2026-11-10T00:00:00Z&until=2026-11-17T00:00:00Z",
        "/screen/summary.json",
        "/screen/summary.json?date=2026-11-20",
    ],
)
def test_public_topics_and_screen_carry_no_personal_field(served, role, path):
    r = _get(served[0], path, role)
    assert r.status_code == 200, r.text[:300]
    _clean(r)
    if path.startswith("/opinion/topics") and "html" not in path:
        assert r.json()["topics"]
        for t in r.json()["topics"]:
            assert "replied_by" not in t


def test_admin_sees_who_replied(served):
    r = _get(served[0], "/opinion/topics?limit=5", "admin")
    assert r.json()["topics"]
    assert all(t["replied_by"].startswith(PLANTED) for t in r.json()["topics"])
    r = _get(served[0], "/collections/opinion_topics/items?f=json&limit=5", "admin")
    assert all("replied_by" in f["properties"] for f in r.json()["features"])


def test_public_async_hot_spots_job_and_its_results_carry_no_personal_field(served):
    import time

    srv = served[0]
    body = {"inputs": {"collection": "public_opinion", "aggregation": "communities"}}
    r = requests.post(
        srv.url + "/processes/hot-spots/execution",
        json=body,
        headers={"Prefer": "respond-async"},
        timeout=60,
    )
    assert r.status_code == 201, r.text[:300]
    job = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    deadline = time.time() + 120
    while time.time() < deadline:
        status = _get(srv, f"/jobs/{job}?f=json")
        if status.json()["status"] not in ("accepted", "running"):
            break
        time.sleep(0.3)
    assert status.json()["status"] == "successful", status.text
    _clean(status)
    res = _get(srv, f"/jobs/{job}/results?f=json")
    assert res.status_code == 200 and b"gi_z" in res.content
    _clean(res)
    _clean(_get(srv, "/jobs?f=json"))
