"""Real clients of the OGC API (issue 13, item 7): GDAL's OAPIF driver, coverage clients and
the items HTML, on both stores.

- GDAL lists exactly the feature collections: it skips a collection only when its document
  says ``layerDataType: Coverage`` (it reads neither ``itemType`` nor the links), so without
  that the DEM and the flood scenarios were vector layers failing with "Invalid provider type".
- A coverage client still reaches the DEM and the flood scenarios at ``/coverage``.
- GDAL (3.8 and later) sizes its pages from the ``limit`` parameter the OpenAPI document
  references from the items path: the document says our default and maximum there, and an
  export with GDAL's default options is within 2x of one with ``PAGE_SIZE=1000``.
- Items and item HTML in ``lang=zh-CN`` show the catalogue's labels of code-list values;
  JSON keeps the codes.
"""

from __future__ import annotations

import html as htmllib
import re
import shutil
import subprocess
import time

import pytest
import requests

from layers.catalogue import LAYERS
from layers.district import SCENARIOS
from layers.query import MAX_LIMIT
from tianya.config import DEFAULT_ITEMS

pytestmark = pytest.mark.both_stores  # GeoPackage and PostGIS (tests/stores.py)

COVERAGES = ["dem", *(s.collection for s in SCENARIOS.values())]
#: A bbox with a few thousand incidents of the sample (a QGIS export of a map view).
BBOX = (109.3, 18.2, 109.5, 18.4)


def feature_collections(server) -> list[str]:
    """The public collections whose documents say they hold features."""
    doc = server.get("/collections?f=json").json()
    return [c["id"] for c in doc["collections"] if c.get("itemType") == "feature"]


def test_collection_documents_say_what_each_collection_is(live_server):
    doc = live_server.get("/collections?f=json").json()
    by_id = {c["id"]: c for c in doc["collections"]}
    for cid in COVERAGES:
        c = by_id[cid]
        rels = {link["rel"] for link in c["links"]}
        assert c["layerDataType"] == "Coverage" and c["dataType"] == "coverage"
        assert "itemType" not in c and "items" not in rels
        assert "http://www.opengis.net/def/rel/ogc/1.0/coverage" in rels
        assert live_server.get(f"/collections/{cid}?f=json").json()["layerDataType"] == "Coverage"
    vectors = feature_collections(live_server)
    assert set(vectors) == {lid for lid in by_id if lid in LAYERS}
    for lid in vectors:
        c = by_id[lid]
        assert "layerDataType" not in c and "dataType" not in c
        assert c["defaultItemsPageSize"] == DEFAULT_ITEMS
        assert c["maximumItemsPageSize"] == MAX_LIMIT


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL's ogrinfo is not installed")
def test_ogrinfo_lists_exactly_the_vector_collections(live_server):
    run = subprocess.run(
        ["ogrinfo", "-ro", "-q", f"OAPIF:{live_server.url}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    listed = re.findall(r"^\d+: (\S+)", run.stdout, flags=re.M)
    assert run.returncode == 0, run.stderr
    assert "ERROR" not in run.stderr, run.stderr  # was: "Invalid provider type" per coverage
    assert listed == feature_collections(live_server)
    assert not set(listed) & set(COVERAGES)


def test_gdal_of_the_python_stack_lists_exactly_the_vector_collections(live_server):
    pyogrio = pytest.importorskip("pyogrio")
    layers = [name for name, _ in pyogrio.list_layers(f"OAPIF:{live_server.url}")]
    assert layers == feature_collections(live_server)


def test_coverage_clients_still_reach_the_dem_and_the_floods(live_server):
    small = "bbox=109.40,18.30,109.41,18.31"
    cov = live_server.get(f"/collections/dem/coverage?f=json&{small}")
    assert cov.status_code == 200, cov.text
    assert cov.headers["Content-Type"].startswith("application/prs.coverage+json")
    assert cov.json()["type"] == "Coverage" and cov.json()["ranges"]
    for cid in COVERAGES[1:]:
        tif = live_server.get(f"/collections/{cid}/coverage?f=GTiff&{small}")
        assert tif.status_code == 200, (cid, tif.text[:300])
        assert tif.content[:4] in (b"II*\x00", b"MM\x00*")
    owslib = pytest.importorskip("owslib.ogcapi.coverages")
    api = owslib.Coverages(live_server.url)
    assert set(COVERAGES) <= set(api.coverages())


def gdal_page_size(openapi: dict, items_path: str, gdal_default: int = 1000) -> int | None:
    """The page size GDAL's OAPIF driver (3.8+, ``DeterminePageSizeFromAPI``) takes from an
    OpenAPI document: only a ``$ref`` parameter of the items path whose reference names
    ``limit`` counts; ``None`` when it finds none (it keeps its own default)."""
    params = openapi["paths"][items_path]["get"]["parameters"]
    for param in params:
        ref = param.get("$ref", "")
        if "limit" in ref and ref.startswith("#/"):
            node = openapi
            for part in ref[2:].split("/"):
                node = node[part]
            default = node["schema"].get("default", -1)
            maximum = node["schema"].get("maximum", -1)
            if default > 0 and maximum > 0:
                return min(max(gdal_default, default), maximum)
            return max(gdal_default, default) if default > 0 else maximum
    return None


def test_openapi_tells_gdal_our_page_limits(live_server):
    openapi = live_server.get("/openapi?f=json").json()
    for lid in feature_collections(live_server):
        assert gdal_page_size(openapi, f"/collections/{lid}/items") == min(1000, MAX_LIMIT)
    limit = openapi["components"]["parameters"]["limit"]["schema"]
    assert (limit["default"], limit["maximum"], limit["minimum"]) == (DEFAULT_ITEMS, MAX_LIMIT, 1)
    over = requests.get(
        f"{live_server.url}/collections/rivers/items?f=json&limit={MAX_LIMIT + 5}", timeout=60
    )
    assert over.status_code == 200 and over.json()["numberReturned"] <= MAX_LIMIT


def _export_seconds(url: str, **open_options) -> tuple[float, int]:
    pyogrio = pytest.importorskip("pyogrio")
    best, count = float("inf"), -1
    for _ in range(3):
        t = time.perf_counter()
        frame = pyogrio.read_dataframe(url, layer="incidents", bbox=BBOX, **open_options)
        best = min(best, time.perf_counter() - t)
        count = len(frame)
    return best, count


def test_gdal_export_with_default_paging_is_within_2x_of_page_size_1000(live_server):
    """The export QGIS does of a map view, through the venv's GDAL (pyogrio's)."""
    url = f"OAPIF:{live_server.url}"
    default, n_default = _export_seconds(url)
    paged, n_paged = _export_seconds(url, PAGE_SIZE="1000")
    assert n_default == n_paged > 1000
    assert default <= 2 * paged, f"default {default:.2f} s vs PAGE_SIZE=1000 {paged:.2f} s"


def test_items_html_in_chinese_shows_labels_json_keeps_codes(live_server):
    layer = LAYERS["incidents"]
    coded = [f for f in layer.fields if f.codes is not None]
    query = "/collections/incidents/items?limit=20&lang=zh-CN&sortby=case_no"
    data = live_server.get(query + "&f=json").json()["features"]
    html = live_server.get(query + "&f=html").content.decode("utf-8")
    for f in coded:
        codes = {ft["properties"][f.name] for ft in data if ft["properties"].get(f.name)}
        assert codes <= set(f.code_values), f.name  # JSON: the codes
        cells = re.findall(rf'<td data-label="{f.name}">\s*(.*?)\s*</td>', html, flags=re.S)
        assert len(cells) == len(data) and cells, f.name
        shown = [ft["properties"].get(f.name) for ft in data]
        for cell, code in zip(cells, shown, strict=True):
            if code is not None:
                assert htmllib.unescape(cell) == f.label(code, "zh") != code, (f.name, cell)
    one = data[0]
    page = live_server.get(f"/collections/incidents/items/{one['id']}?f=html&lang=zh-CN")
    page = page.content.decode("utf-8")
    for f in coded:
        code = one["properties"].get(f.name)
        if code is not None:
            assert re.search(rf"<td>{f.name}</td>\s*<td>\s*{re.escape(f.label(code, 'zh'))}", page)
    english = live_server.get(query.replace("zh-CN", "en-US") + "&f=html").content.decode()
    first = next(f for f in coded if data[0]["properties"].get(f.name))
    label = first.label(data[0]["properties"][first.name], "en")
    assert re.search(rf'<td data-label="{first.name}">\s*{re.escape(label)}\s*</td>', english)


def test_html_answers_name_their_charset(live_server):
    # pygeoapi sends text/html alone: requests then decoded the Chinese labels as Latin-1
    for path in (
        "/?f=html",
        "/collections?f=html&lang=zh-CN",
        "/collections/incidents/items?limit=2&f=html&lang=zh-CN",
    ):
        r = live_server.get(path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].lower() == "text/html; charset=utf-8", path
        assert r.encoding.lower() == "utf-8", path
        assert "zh-CN" not in path or "事件" in r.text, path
