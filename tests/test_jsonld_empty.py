"""Items as JSON-LD when nothing matches: valid JSON with an empty ``features`` list.

pygeoapi 0.24's ``collections/items/index.jsonld`` left a comma before the closing brace when
there were no features: an empty collection (the sample's opinion layers before their posts are
ingested, a fresh store) or a filter that matched nothing answered invalid JSON with a 200.
"""

import pytest
import requests

pytestmark = pytest.mark.both_stores


@pytest.mark.parametrize(
    "query",
    [
        "/collections/incidents/items?f=jsonld&filter=title%3D%27no%20such%20title%27",
        "/collections/incidents/items?f=jsonld&bbox=0,0,1,1",
        "/collections/incidents/items?f=jsonld&limit=2",
    ],
)
def test_items_jsonld_is_json_with_or_without_features(live_server, query):
    r = requests.get(live_server.url + query, timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    want = 2 if query.endswith("limit=2") else 0
    assert len(doc["features"]) == want
    assert all(f["@id"].startswith(live_server.url) for f in doc["features"])


def test_items_csv_with_no_feature_has_its_header(live_server):
    """pygeoapi's CSV of no feature was an empty body: now the header of the fields the caller
    may see (the requested ``properties`` when given), personal ones never for the public."""
    from conftest import KEYS

    from layers import access
    from layers.catalogue import get_layer

    none = "/collections/incidents/items?f=csv&filter=title%3D%27no%20such%20title%27"
    r = requests.get(live_server.url + none, timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    inc = get_layer("incidents")
    assert r.text == ",".join(access.visible_fields(inc, access.PUBLIC)) + "\r\n"
    assert "reporter_name" not in r.text
    auth = {"Authorization": f"Bearer {KEYS['dispatcher']}"}
    r = requests.get(live_server.url + none, headers=auth, timeout=60)
    assert r.text.split("\r\n")[0].split(",") == [f.name for f in inc.fields]
    r = requests.get(f"{live_server.url}{none}&properties=category,title", timeout=60)
    assert r.text == "category,title\r\n"
