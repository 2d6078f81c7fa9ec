"""The server's HTML pages (pygeoapi's templates) work offline: nothing from another host.

pygeoapi 0.24's templates load Bootstrap, Leaflet, Swagger UI, ReDoc … from public CDNs and draw
OpenStreetMap tiles; ``tianya/templates`` (searched first: ``server.templates.path``) overrides
each page that did, with the files vendored under ``/assets/vendor/`` and the server's own base
map. Checked two ways:

* plainly: every template the server can render, ours or pygeoapi's, with whatever it extends,
  includes or imports, has no ``http(s)://`` asset URL (``src``/``href`` of ``script``,
  ``link``, ``img`` …); a template pygeoapi adds must be classed as rendered or not;
* in Debian's Chromium (``browserkit``, never ``playwright install``): each page of a live
  server with every request to another host aborted and recorded, every failed request and
  every error answer recorded, and the console's errors: none of them, and a screenshot that is
  not blank.
"""

from __future__ import annotations

import hashlib
import os
import re
from urllib.parse import urlsplit

import pytest
import requests
from browserkit import OfflinePage, not_blank

from tianya import compat
from tianya.config import build_config

pytestmark = [pytest.mark.both_stores, pytest.mark.timeout(600)]


def _pygeoapi_templates() -> str:
    from pygeoapi.util import TEMPLATESDIR

    return str(TEMPLATESDIR)


# --- which templates the server renders -----------------------------------------------------------

#: pygeoapi templates a request to our server can render (the shell passes the path on, and the
#: configuration has what the page needs).
RENDERED = (
    "_base.html",
    "landing_page.html",
    "conformance.html",
    "exception.html",
    "openapi/swagger.html",
    "openapi/redoc.html",
    "collections/index.html",
    "collections/collection.html",
    "collections/queryables.html",
    "collections/schema.html",
    "collections/items/index.html",
    "collections/items/item.html",
    "collections/coverage/index.html",
    "processes/index.html",
    "processes/process.html",
    "jobs/index.html",
    "jobs/job.html",
    "jobs/results/index.html",
    "tilematrixsets/index.html",
    "tilematrixsets/tilematrixset.html",
    "stac/collection.html",  # /stac: the root catalogue, empty here
    "stac/catalog.html",
)
#: pygeoapi templates no request to our server renders, and why.
UNREACHABLE = {
    "admin/index.html": "server.admin is false and the shell refuses /admin",
    "asyncapi.html": "no pubsub is configured: /asyncapi answers 501",
    "collections/edr/instance.html": "no EDR provider; /collections/{id}/instances is 404",
    "collections/edr/instances.html": "no EDR provider; /collections/{id}/instances is 404",
    "collections/edr/query.html": "no EDR provider; the shell answers EDR paths 404",
    "collections/map/metadata.html": "no map provider; /collections/{id}/map is 404",
    "collections/tiles/index.html": "the shell serves /collections/{id}/tiles (tianya.tiles)",
    "collections/tiles/metadata.html": "the shell serves /collections/{id}/tiles (tianya.tiles)",
    "stac/collection_base.html": "no stac-collection resource is configured",
    "stac/item.html": "no stac-collection resource is configured",
}

#: sha256 (first 16 hex digits) of each pygeoapi 0.24.0 template our override was copied from.
COPIED_FROM = {
    "_base.html": "b91b7d6472fc317c",
    "collections/collection.html": "245c96b34b0b4f0c",
    "collections/coverage/index.html": "a5e016a0f09a22cd",
    "collections/items/index.html": "b9f63e39f71e613f",
    "collections/items/item.html": "5506c736a70f36ee",
    "openapi/redoc.html": "6a2adfe57df8dd93",
    "openapi/swagger.html": "c509c8d78c453b2a",
}

_REFERENCE = re.compile(r"""\{%-?\s*(?:extends|include|import|from)\s+["']([^"']+)["']""")
#: An element that makes the browser fetch what one of its attributes names.
_TAG = re.compile(r"<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*>", re.I | re.S)
_ATTR = re.compile(
    r"""\b(src|href|data|poster|srcset)\s*=\s*["']\s*((?:https?:)?//[^"'\s>]*)""", re.I
)
_CSS_URL = re.compile(r"""(?:@import\s+|url\(\s*)["']?((?:https?:)?//[^"')\s]+)""", re.I)
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)


def _source(name: str, paths: list[str]) -> tuple[str, str]:
    """(text, file) of template ``name`` as pygeoapi's loader finds it in ``paths``."""
    for root in paths:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read(), path
    raise FileNotFoundError(name)


def remote_assets(names, paths: list[str]) -> list[str]:
    """Every ``http(s)://`` (or ``//``) asset URL of the templates ``names`` and of what they
    extend, include or import, as ``file:line: url`` (templates searched in ``paths``)."""
    found, seen, todo = [], set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        text, path = _source(name, paths)
        todo += _REFERENCE.findall(text)
        text = _JINJA_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        hits = [
            (m.start(), a.group(2)) for m in _TAG.finditer(text) for a in _ATTR.finditer(m.group(0))
        ]
        hits += [(m.start(), m.group(1)) for m in _CSS_URL.finditer(text)]
        found += [f"{path}:{text.count(chr(10), 0, pos) + 1}: {url}" for pos, url in hits]
    return sorted(found)


def _served_paths() -> list[str]:
    return [compat.TEMPLATES, _pygeoapi_templates()]


def test_no_template_the_server_renders_loads_anything_from_another_host():
    assert remote_assets(RENDERED, _served_paths()) == []


def test_each_pygeoapi_template_is_classed_rendered_or_unreachable():
    """A template a new pygeoapi adds fails here until it is classed (and checked above)."""
    root = _pygeoapi_templates()
    names = {
        os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
        for d, _, files in os.walk(root)
        for f in files
        if f.endswith(".html")
    }
    assert not set(RENDERED) & set(UNREACHABLE)
    assert names == set(RENDERED) | set(UNREACHABLE)


def test_the_check_finds_the_cdn_links_of_pygeoapis_own_templates():
    """The check above is not vacuous: on pygeoapi's templates alone (no overrides) it finds
    the CDN links of every template we override, and none in the others."""
    found = remote_assets(RENDERED, [_pygeoapi_templates()])
    root = _pygeoapi_templates() + os.sep
    files = {line.split(":", 1)[0][len(root) :] for line in found}
    assert files == set(compat.OVERRIDDEN_TEMPLATES)
    assert any("unpkg.com/leaflet@1.3.1/dist/leaflet.js" in line for line in found)
    assert any("fonts.googleapis.com" in line for line in found)
    # and the remote base map: the configuration pygeoapi ships names OpenStreetMap
    assert "tile.openstreetmap.org" not in str(build_config()["server"]["map"])


def test_overrides_are_listed_in_compat_and_copied_from_this_pygeoapi():
    """Each override names the pygeoapi file it copies; compat.check() knows each (it refuses
    to start if pygeoapi no longer has one); and pygeoapi's file is still the one it was copied
    from (after an upgrade: diff the two, carry pygeoapi's changes over, update COPIED_FROM)."""
    ours = {
        os.path.relpath(os.path.join(d, f), compat.TEMPLATES).replace(os.sep, "/")
        for d, _, files in os.walk(compat.TEMPLATES)
        for f in files
        if f.endswith(".html") and not d.startswith(os.path.join(compat.TEMPLATES, "tianya"))
    }
    assert ours == set(compat.OVERRIDDEN_TEMPLATES) == set(COPIED_FROM)
    target = next(t for t in compat.TARGETS if t.templates)
    assert set(target.templates) == ours
    changed = []
    for name in sorted(ours):
        text, _ = _source(name, [compat.TEMPLATES])
        assert f"pygeoapi 0.24.0's templates/{name} " in text.split("\n", 2)[0], name
        with open(os.path.join(_pygeoapi_templates(), name), "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:16]
        if digest != COPIED_FROM[name]:
            changed.append(f"{name}: {digest}")
    assert changed == [], "pygeoapi's templates changed since our copies were made"


def test_compat_check_refuses_a_pygeoapi_without_a_template_we_override(monkeypatch, tmp_path):
    import pygeoapi.util

    monkeypatch.setattr(pygeoapi.util, "TEMPLATESDIR", tmp_path)
    with pytest.raises(compat.IncompatiblePygeoapi) as info:
        compat.check()
    for name in compat.OVERRIDDEN_TEMPLATES:
        assert f"pygeoapi's template {name} is gone" in str(info.value)


# --- the base map of the pages' maps ----------------------------------------------------------


def _render_item(map_url: str = "", attribution: str = "") -> str:
    """An item page as pygeoapi renders it with our templates and ``server.map``."""
    from pygeoapi import l10n
    from pygeoapi.util import render_j2_template

    en = l10n.str2locale("en-US")

    config = build_config()
    config["server"]["url"] = "http://gis.example:5000"
    config["server"]["map"] = {"url": map_url, "attribution": attribution}
    feature = {
        "type": "Feature",
        "id": "a1",
        "geometry": {"type": "Point", "coordinates": [109.5, 18.3]},
        "properties": {"name": "x"},
        "links": [],
        "id_field": "id",
        "title_field": "name",
    }
    # pygeoapi caches the translated configuration per locale, for good (l10n._cfg_cache)
    l10n._cfg_cache.clear()
    try:
        return render_j2_template(
            config, {"path": compat.TEMPLATES}, "collections/items/item.html", feature, en
        )
    finally:
        l10n._cfg_cache.clear()


def test_item_pages_draw_the_servers_own_base_map_by_default():
    html = _render_item()
    assert 'src="http://gis.example:5000/assets/basemap.js"' in html
    assert 'src="http://gis.example:5000/assets/vendor/vector-tile/vector-tile.js"' in html
    assert 'L.tianyaBasemap("http://gis.example:5000/styles/basemap")' in html
    assert "TileLayer" not in html and "openstreetmap" not in html


def test_an_online_base_map_is_used_when_the_settings_name_one():
    """TIANYA_MAP_URL (server.map.url): its tiles instead, the URL kept intact in the script
    (pygeoapi wrote it HTML-escaped into a JavaScript string: ``&amp;`` broke Tianditu's)."""
    from tianya.settings import Settings

    url = "https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}&tk=KEY"
    settings = Settings.from_env(
        {"TIANYA_MAP_URL": url, "TIANYA_MAP_ATTRIBUTION": "&copy; <b>天地图</b>"}
    )
    env = compat.placeholder_environment(settings)
    assert env["TIANYA_MAP_URL"] == url
    html = _render_item(env["TIANYA_MAP_URL"], env["TIANYA_MAP_ATTRIBUTION"])
    assert "basemap.js" not in html and "tianyaBasemap" not in html
    m = re.search(
        r"new L\.TileLayer\((\"[^\"]*\"), \{\s*maxZoom: 18,\s*attribution: (\"[^\"]*\")", html
    )
    assert m, html
    import json

    assert json.loads(m.group(1)) == url
    assert json.loads(m.group(2)) == "&copy; <b>天地图</b>"
    # and by default nothing names one
    assert "TIANYA_MAP_URL" not in compat.placeholder_environment(Settings.from_env({}))


def test_a_map_url_that_is_no_tile_template_is_refused():
    """A typo (a base map's name, a style URL) would draw no map at all: refused at start."""
    from tianya.settings import Settings, SettingsError

    for bad in ("osm", "https://tile.openstreetmap.org/", "tile.openstreetmap.org/{z}/{x}/{y}.png"):
        with pytest.raises(SettingsError, match="TIANYA_MAP_URL must be an http"):
            Settings.from_env({"TIANYA_MAP_URL": bad})


# --- in Chromium, against a live server ---------------------------------------------------------


@pytest.fixture
def page(browser):
    opened = []

    def open_(server, path, ready="main"):
        host = urlsplit(server.url).netloc  # this server only, not every local port
        p = OfflinePage(browser, allow=(host,), viewport=(1280, 900))
        p.goto(server.url + path, ready, timeout=60_000)
        opened.append(p)
        return p

    yield open_
    for p in opened:
        p.close()


def _first_id(server, lid: str) -> str:
    r = server.get(f"/collections/{lid}/items?f=json&limit=1")
    r.raise_for_status()
    return r.json()["features"][0]["id"]


def _basemap_drawn(p: OfflinePage) -> int:
    """Canvas tiles of the base map that drew (basemap.js marks each with data-status)."""
    p.page.wait_for_function(
        "() => document.querySelectorAll('canvas[data-status=drawn]').length > 0",
        timeout=60_000,
    )
    return p.count("canvas[data-status=drawn]")


def _map_page(page, server, path: str, map_id: str = "items-map") -> OfflinePage:
    """A page with a Leaflet map (``#map_id``), once its base map has drawn and the network
    is idle, checked offline and clean."""
    p = page(server, path, f"#{map_id}.leaflet-container")
    assert _basemap_drawn(p) > 0
    p.settle()
    p.assert_clean()
    return p


@pytest.mark.parametrize(
    "path,ready",
    [
        ("/?f=html", "main"),
        ("/collections?f=html", "main table"),
        ("/conformance?f=html", "main"),
        ("/collections/incidents/queryables?f=html", "main"),
        ("/collections/incidents/schema?f=html", "main"),
        ("/processes?f=html", "main"),
        ("/jobs?f=html", "main"),
        # pygeoapi rendered these two with its own templates only (Bootstrap from unpkg.com)
        ("/TileMatrixSets?f=html", "main"),
        ("/TileMatrixSets/WebMercatorQuad?f=html", "main"),
    ],
)
def test_pages_without_a_map_load_offline(page, live_server_gpkg, path, ready):
    p = page(live_server_gpkg, path, ready)
    p.settle()
    p.assert_clean()
    # Bootstrap and pygeoapi's own CSS applied: the header bar is styled
    bg = p.page.eval_on_selector(".bg-light", "e => getComputedStyle(e).backgroundColor")
    assert bg == "rgb(248, 249, 250)"  # Bootstrap 5.1's --bs-light
    not_blank(p.screenshot())


def test_a_collection_page_loads_offline_with_its_map(page, live_server_gpkg):
    p = _map_page(page, live_server_gpkg, "/collections/communities?f=html", "collection-map")
    assert p.count("#collection-map path.leaflet-interactive") == 1  # the extent
    not_blank(p.screenshot())


def test_an_items_page_loads_offline_with_the_base_map_and_its_features(page, live_server):
    """On both stores: the Leaflet map, the base map drawn, a marker per feature."""
    p = _map_page(page, live_server, "/collections/incidents/items?f=html&limit=50")
    expected = len(
        live_server.get("/collections/incidents/items?f=json&limit=50").json()["features"]
    )
    assert expected == 50
    assert p.count("#items-map .leaflet-marker-pane img.leaflet-marker-icon") == expected
    assert p.count("#items-map .leaflet-tile-pane canvas[data-status=failed]") == 0
    not_blank(p.screenshot())


def test_an_items_page_popup_is_text_never_markup(page, writable_gpkg):
    """pygeoapi's items page concatenates the popup's title (``title_field``, else the id)
    into HTML; ours sets it as text. With no ``title_field`` configured the id is shown, so a
    title sent by the public with markup must neither show nor run."""
    from conftest import LiveServer

    from layers.catalogue import get_layer
    from layers.gpkg import GeoPackageStore
    from layers.query import Query

    attack = '<img src=x onerror="window.tianyaOwned=1">&<b>井盖</b>'
    store = GeoPackageStore(writable_gpkg)
    fid = str(store.read_frame(get_layer("incidents"), Query(limit=1))["case_no"].iloc[0])
    store.update(get_layer("incidents"), fid, {"title": attack})
    store.close()
    server = LiveServer(writable_gpkg, workers=1)
    try:
        p = _map_page(page, server, f"/collections/incidents/items?f=html&limit=1&case_no={fid}")
        p.page.evaluate("() => items.eachLayer(l => l.openPopup())")
        p.page.wait_for_selector(".leaflet-popup-content a", timeout=10_000)
        assert p.texts(".leaflet-popup-content a") == [fid]
        assert p.page.query_selector(".leaflet-popup-content img, .leaflet-popup-content b") is None
        assert p.page.evaluate("window.tianyaOwned") is None
        href = p.page.get_attribute(".leaflet-popup-content a", "href")
        assert href.endswith(f"/collections/incidents/items/{fid}?f=html")
    finally:
        server.stop()


def test_a_polygon_items_page_draws_its_features(page, live_server_gpkg):
    p = _map_page(page, live_server_gpkg, "/collections/communities/items?f=html&limit=10")
    assert p.count("#items-map path.leaflet-interactive") == 10


def test_an_item_page_loads_offline(page, live_server_gpkg):
    fid = _first_id(live_server_gpkg, "incidents")
    p = _map_page(page, live_server_gpkg, f"/collections/incidents/items/{fid}?f=html")
    assert p.count("#items-map img.leaflet-marker-icon") == 1
    not_blank(p.screenshot())


def test_swagger_ui_renders_every_operation_offline(page, live_server_gpkg):
    """Every operation of the document is drawn. Swagger UI 5.35 virtualises a long list
    (over about 120 operations it draws those in view), so the page is scrolled through."""
    doc = live_server_gpkg.get("/openapi?f=json").json()
    p = page(live_server_gpkg, "/openapi?f=html", ".swagger-ui .opblock")
    p.settle()
    p.assert_clean()
    seen: set[str] = set()
    y = 0
    while y <= p.page.evaluate("document.body.scrollHeight"):
        p.page.evaluate(f"window.scrollTo(0, {y})")
        p.page.wait_for_timeout(50)
        seen |= set(
            p.page.eval_on_selector_all(
                ".swagger-ui .opblock",
                """els => els.map(e => e.querySelector('.opblock-summary-method').textContent
                    + ' ' + e.querySelector('.opblock-summary-path').dataset.path)""",
            )
        )
        y += 400
    p.page.evaluate("window.scrollTo(0, 0)")
    assert seen == _operations(doc)
    not_blank(p.screenshot())


def _external_refs(doc) -> set[str]:
    """The documents other than itself that an OpenAPI document's ``$ref``s name."""
    found: set[str] = set()
    todo = [doc]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                found.add(ref.split("#")[0])
            todo += list(node.values())
        elif isinstance(node, list):
            todo += node
    return found


def _operations(doc) -> set[str]:
    """``METHOD path`` of every operation of an OpenAPI document."""
    methods = {"get", "put", "post", "delete", "patch", "options", "head"}
    return {
        f"{m.upper()} {path}" for path, item in doc["paths"].items() for m in item if m in methods
    }


def test_the_api_docs_ask_no_other_host_with_an_operation_opened(page, live_server_gpkg):
    """The OpenAPI document is self-contained (``tianya/openapi_components.yml`` defines what
    pygeoapi's referred to on schemas.opengis.net and GitHub): Swagger UI with an operation
    opened resolves its parameters and responses, and ReDoc draws every operation, with
    every other host blocked. (pygeoapi's document made Swagger UI fetch those documents
    when an operation was opened, and ReDoc before it drew anything.)"""
    doc = live_server_gpkg.get("/openapi?f=json").json()
    assert _external_refs(doc) == set()
    p = page(live_server_gpkg, "/openapi?f=html", ".swagger-ui .opblock")
    p.settle()
    target = (
        ".swagger-ui .opblock-get .opblock-summary-path[data-path='/collections/incidents/items']"
    )
    y = 0  # Swagger UI 5.35 draws only the operations in view of a long list: scroll to it
    while p.count(target) == 0 and y <= p.page.evaluate("document.body.scrollHeight"):
        p.page.evaluate(f"window.scrollTo(0, {y})")
        p.page.wait_for_timeout(50)
        y += 400
    p.page.click(target)
    opened = ".swagger-ui .opblock.is-open"
    p.page.wait_for_selector(f"{opened} .responses-table", timeout=60_000)
    p.settle()
    names = p.page.eval_on_selector_all(
        f"{opened} .parameters-col_name .parameter__name", "els => els.map(e => e.textContent)"
    )
    # the referenced OGC parameters resolved, by name
    assert {"limit", "datetime", "sortby", "bbox"} <= {n.strip() for n in names}
    statuses = p.page.eval_on_selector_all(
        f"{opened} .responses-table tr.response", "els => els.map(e => e.dataset.code)"
    )
    items = doc["paths"]["/collections/incidents/items"]["get"]["responses"]
    assert statuses == sorted(items) and {"200", "400", "404", "500"} <= set(statuses)
    assert "numberMatched" in p.page.inner_text(f"{opened} .responses-table")
    assert p.count(f"{opened} .errors-wrapper") == 0
    p.assert_clean()
    # ReDoc: every operation drawn, nothing from another host (Redocly's logo left out)
    p = page(live_server_gpkg, "/openapi?f=html&ui=redoc", "[data-section-id^='operation/']")
    p.settle()
    p.assert_clean()
    assert p.count("[data-section-id^='operation/']") == len(_operations(doc))
    assert "Something went wrong" not in p.page.inner_text("body")
    not_blank(p.screenshot())


def test_a_coverage_page_draws_its_grid_offline(page, live_server_gpkg):
    """leaflet-coverage 0.7 (vendored) on Leaflet 1.9.4: the DEM window as a canvas layer."""
    bbox = "109.40,18.30,109.42,18.32"
    p = page(
        live_server_gpkg,
        f"/collections/dem/coverage?f=html&bbox={bbox}",
        "#coverages-map.leaflet-container",
    )
    assert _basemap_drawn(p) > 0
    p.page.wait_for_function("() => window.api && window.api.layers.size > 0", timeout=60_000)
    p.settle()
    p.assert_clean()
    not_blank(p.screenshot())


def test_the_vendored_files_are_served_with_their_licences(live_server_gpkg):
    for lib in (
        "bootstrap",
        "swagger-ui",
        "redoc",
        "leaflet-coverage",
        "covutils",
        "covjson-reader",
    ):
        r = live_server_gpkg.get(f"/assets/vendor/{lib}/LICENSE")
        assert r.ok and len(r.text) > 200, lib
    r = requests.get(live_server_gpkg.url + "/static/css/default.css", timeout=30)
    assert r.ok  # pygeoapi keeps /static/
