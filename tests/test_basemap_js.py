"""The browser's base-map renderer (``tianya/static/basemap.js``) on a fixture, in Chromium.

A small server in this module answers a hand-written style and vector tiles encoded here with
``mapbox_vector_tile`` (a square district, a river, three labels; 204 where a tile is empty;
source maxzoom 12), so the renderer is checked on its own: colours, filters, zoom ranges,
over-zoom, empty tiles, labels across tile edges and Chinese glyphs — offline, with every
other host refused. The server's own base map is checked on the screen (``test_screen.py``).
"""

from __future__ import annotations

import json
import math
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mapbox_vector_tile as mvt
import numpy as np
import pytest
from browserkit import OfflinePage

from analytics.mapassets import VENDOR

STATIC = os.path.join(os.path.dirname(__file__), os.pardir, "tianya", "static")
EXTENT, BUFFER, LABEL_BUFFER = 4096, 64, 2048
SOURCE_MAXZOOM = 12
BACKGROUND, FILL, OUTLINE, RIVER = "#102030", "#2a4060", "#88aacc", "#33ff99"
VILLAGE_TEXT, DISTRICT_TEXT = "#ffffff", "#ffee00"
# a village 4 pixels east of the edge between two tiles at style zoom 11 (Leaflet zoom 12)
EDGE_LON = 1647 / 2048 * 360 - 180
VILLAGE_LON = EDGE_LON + 4 * 360 / 2048 / 512

DISTRICT = [(109.40, 18.20), (109.60, 18.20), (109.60, 18.40), (109.40, 18.40)]
RIVER_LINE = [(109.42, 18.22), (109.48, 18.28)]
LABELS = [
    ("天涯区", "district", 109.45, 18.35),
    ("测试村", "village", VILLAGE_LON, 18.27),
    ("隐藏社区", "community", 109.55, 18.25),  # no layer shows communities
]

STYLE = {
    "version": 8,
    "name": "fixture",
    "sources": {
        "tianya": {
            "type": "vector",
            "tiles": ["/tiles/{z}/{y}/{x}"],
            "maxzoom": SOURCE_MAXZOOM,
            "attribution": "Fixture data",
        }
    },
    "layers": [
        {"id": "bg", "type": "background", "paint": {"background-color": BACKGROUND}},
        {
            "id": "district",
            "type": "fill",
            "source": "tianya",
            "source-layer": "district",
            "paint": {"fill-color": FILL, "fill-opacity": 1, "fill-outline-color": OUTLINE},
        },
        {
            "id": "rivers",
            "type": "line",
            "source": "tianya",
            "source-layer": "rivers",
            "paint": {"line-color": RIVER, "line-width": 4},
        },
        {
            "id": "villages",
            "type": "symbol",
            "source": "tianya",
            "source-layer": "labels",
            "filter": ["==", ["get", "kind"], "village"],
            "layout": {"text-field": ["get", "name"], "text-size": 16},
            "paint": {"text-color": VILLAGE_TEXT},
        },
        {
            "id": "district-name",
            "type": "symbol",
            "source": "tianya",
            "source-layer": "labels",
            "minzoom": 12,
            "filter": ["==", ["get", "kind"], "district"],
            "layout": {"text-field": ["get", "name"], "text-size": 20},
            "paint": {
                "text-color": DISTRICT_TEXT,
                "text-halo-color": "#000000",
                "text-halo-width": 1,
            },
        },
    ],
}


def _merc(lon: float, lat: float) -> tuple[float, float]:
    """Longitude/latitude → fractional world position (0..1, y down)."""
    s = math.sin(math.radians(lat))
    return (lon + 180) / 360, 0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)


def encode_tile(z: int, x: int, y: int) -> bytes:
    """The fixture's tile z/x/y (empty bytes where nothing reaches it)."""
    from shapely.geometry import LineString, Point, Polygon, box

    n = 2**z

    def local(lon, lat):
        fx, fy = _merc(lon, lat)
        return (fx * n - x) * EXTENT, (fy * n - y) * EXTENT

    def clip(geom, buf):
        return geom.intersection(box(-buf, -buf, EXTENT + buf, EXTENT + buf))

    layers = []
    district = clip(Polygon([local(*p) for p in DISTRICT]), BUFFER)
    if not district.is_empty:
        layers.append({"name": "district", "features": [{"geometry": district, "properties": {}}]})
    river = clip(LineString([local(*p) for p in RIVER_LINE]), BUFFER)
    if not river.is_empty:
        layers.append(
            {"name": "rivers", "features": [{"geometry": river, "properties": {"name": "河"}}]}
        )
    labels = []
    for name, kind, lon, lat in LABELS:
        pt = Point(local(lon, lat))
        if not clip(pt, LABEL_BUFFER).is_empty:
            labels.append({"geometry": pt, "properties": {"name": name, "kind": kind, "rank": 1}})
    if labels:
        layers.append({"name": "labels", "features": labels})
    if not layers:
        return b""
    return mvt.encode(layers, default_options={"y_coord_down": True, "extents": EXTENT})


PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/assets/vendor/leaflet/leaflet.css">
<style>body { margin: 0 } #map { width: 1024px; height: 768px }</style></head>
<body><div id="map"></div>
<script src="/assets/vendor/leaflet/leaflet.js"></script>
<script src="/assets/basemap.js"></script>
<script>
window.map = L.map("map", { zoomAnimation: false, fadeAnimation: false });
window.base = L.tianyaBasemap("/style.json");
window.view = (lat, lon, z) => new Promise(ok => {
  map.setView([lat, lon], z);  // no animation: the new tiles are asked for now
  if (base.isLoading()) { base.once("load", () => ok(base.stats)); } else { ok(base.stats); }
});
map.setView([18.30, 109.50], 12);
base.once("load", () => { window.ready = true; });
base.addTo(map);
</script></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes = b"", ctype: str = "text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        type(self).requests.append(path)
        if path == "/page.html":
            return self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        if path == "/style.json":
            return self._send(200, json.dumps(STYLE).encode(), "application/json")
        if path == "/broken-style.json":  # the same style, its tiles failing
            broken = {**STYLE, "sources": {"tianya": {**STYLE["sources"]["tianya"]}}}
            broken["sources"]["tianya"]["tiles"] = ["/broken/{z}/{y}/{x}"]
            return self._send(200, json.dumps(broken).encode(), "application/json")
        if path.startswith("/broken/"):
            return self._send(500, b"tile failed")
        if path.startswith("/tiles/"):
            z, y, x = (int(v) for v in path.split("/")[2:5])
            body = encode_tile(z, x, y)
            if not body:
                return self._send(204)
            return self._send(200, body, "application/vnd.mapbox-vector-tile")
        if path.startswith("/assets/"):
            rel = path[len("/assets/") :]
            roots = [STATIC]
            if rel.startswith("vendor/"):
                rel = rel[len("vendor/") :]
                roots = [os.path.join(STATIC, "vendor"), VENDOR]
            for root in roots:
                full = os.path.join(root, rel)
                if os.path.isfile(full):
                    ctype = "text/css" if full.endswith(".css") else "application/javascript"
                    with open(full, "rb") as fh:
                        return self._send(200, fh.read(), ctype)
        return self._send(404, b"not found")


@pytest.fixture(scope="module")
def fixture_page(browser):
    """The fixture page, open in Chromium with other hosts refused: (OfflinePage, base URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    page = OfflinePage(browser, viewport=(1024, 768))
    try:
        page.goto(url + "/page.html", "#map")
        page.page.wait_for_function("() => window.ready === true", timeout=30_000)
        yield page, url
    finally:
        page.close()
        server.shutdown()


def _rgb(hex_: str) -> np.ndarray:
    return np.array([int(hex_[i : i + 2], 16) for i in (1, 3, 5)])


def _at(p, lat: float, lon: float) -> tuple[int, int]:
    x, y = p.page.evaluate(
        "([a, b]) => { const q = map.latLngToContainerPoint([a, b]);"
        " return [Math.round(q.x), Math.round(q.y)]; }",
        [lat, lon],
    )
    return x, y


def _view(p, lat: float, lon: float, z: int) -> dict:
    return p.page.evaluate("([a, b, z]) => view(a, b, z)", [lat, lon, z])


def _near(img, x, y, colour: str, r: int = 0, tol: int = 6) -> int:
    """Pixels within ``r`` of (x, y) of ``colour`` (channel differences summing to ``tol``
    at most: a 1-pixel line is antialiased over two)."""
    win = img[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1].astype(int)
    return int((np.abs(win - _rgb(colour)).sum(axis=2) <= tol).sum())


def test_fills_lines_and_background(fixture_page):
    p, _ = fixture_page
    _view(p, 18.30, 109.50, 12)
    img = p.screenshot()
    assert _near(img, *_at(p, 18.32, 109.56), FILL) == 1  # inside the district
    assert _near(img, *_at(p, 18.30, 109.65), BACKGROUND) == 1  # outside it
    assert _near(img, *_at(p, 18.25, 109.45), RIVER, r=2) >= 5  # on the river
    # the outline runs along the district's edge
    x, y = _at(p, 18.30, 109.40)
    assert _near(img, x, y, OUTLINE, r=2, tol=60) >= 1
    canvases = p.page.eval_on_selector_all(
        ".leaflet-tile", "els => els.map(e => [e.tagName, e.dataset.status])"
    )
    assert canvases and all(tag == "CANVAS" for tag, _ in canvases)
    assert {s for _, s in canvases} <= {"drawn", "empty"} and ["CANVAS", "drawn"] in canvases
    assert "Fixture data" in p.texts(".leaflet-control-attribution")[0]
    p.assert_clean()


def test_label_across_a_tile_edge_is_drawn_whole(fixture_page):
    p, _ = fixture_page
    _view(p, 18.30, 109.50, 12)  # style zoom 11: the village sits on a tile edge
    img = p.screenshot()
    x, y = _at(p, 18.27, EDGE_LON)  # the tile edge
    left = _near(img[:, :x], x - 20, y, VILLAGE_TEXT, r=20)
    right = _near(img[:, x:], 20, y, VILLAGE_TEXT, r=20)
    # both parts of the centred text are there: the west tile, which does not hold the point,
    # draws its part from its buffer
    assert left >= 5 and right >= 5, (left, right)
    # the filter: the community label is drawn by no layer
    assert _near(img, *_at(p, 18.25, 109.55), VILLAGE_TEXT, r=30) == 0
    p.assert_clean()


def test_layer_zoom_range(fixture_page):
    p, _ = fixture_page
    _view(p, 18.30, 109.50, 12)  # style zoom 11 < the district name's minzoom 12
    img = p.screenshot()
    assert _near(img, *_at(p, 18.35, 109.45), DISTRICT_TEXT, r=25) == 0
    _view(p, 18.30, 109.50, 13)
    img = p.screenshot()
    assert _near(img, *_at(p, 18.35, 109.45), DISTRICT_TEXT, r=25) > 20
    p.assert_clean()


def test_over_zoom_past_the_source_maxzoom(fixture_page):
    p, _ = fixture_page
    p.page.evaluate("() => base._cache.clear()")  # decoded tiles the earlier views kept
    _Handler.requests.clear()
    _view(p, 18.3195, 109.5995, 17)  # style zoom 16, the source stops at 12
    tiles = [r for r in _Handler.requests if r.startswith("/tiles/")]
    assert tiles and all(int(t.split("/")[2]) <= SOURCE_MAXZOOM for t in tiles), tiles
    img = p.screenshot()
    assert _near(img, *_at(p, 18.319, 109.599), FILL) == 1
    x, y = _at(p, 18.3195, 109.60)  # the district's east edge, enlarged 16 times
    assert _near(img, x - 20, y, FILL) == 1 and _near(img, x + 20, y, BACKGROUND) == 1
    p.assert_clean()


def test_empty_tiles_draw_the_background(fixture_page):
    p, _ = fixture_page
    _Handler.requests.clear()
    stats = _view(p, 10.0, 100.0, 12)  # far from the district: every tile is 204
    img = p.screenshot()
    assert _near(img, 384, 512, BACKGROUND) == 1
    statuses = p.page.eval_on_selector_all(".leaflet-tile", "els => els.map(e => e.dataset.status)")
    assert statuses and set(statuses) == {"empty"}
    assert stats["failed"] == 0
    p.assert_clean()


def test_chinese_labels_have_glyphs(fixture_page):
    """Two different characters drawn in the renderer's font are different pictures (a font
    without CJK glyphs draws the same box for both)."""
    p, _ = fixture_page
    differ = p.page.evaluate(
        """() => { const draw = (ch) => { const c = document.createElement("canvas");
            c.width = c.height = 40; const g = c.getContext("2d");
            g.font = "30px " + base.options.fontFamily; g.fillText(ch, 2, 32);
            return Array.from(g.getImageData(0, 0, 40, 40).data).join(","); };
          return draw("天") !== draw("涯") && draw("涯") !== draw("村"); }"""
    )
    assert differ


def test_failing_tiles_draw_the_background_and_raise_nothing(fixture_page):
    p, url = fixture_page
    _view(p, 18.30, 109.50, 12)
    stats = p.page.evaluate(
        """() => new Promise(ok => { base.remove();
            window.broken = L.tianyaBasemap("/broken-style.json");
            broken.once("load", () => ok(broken.stats)); broken.addTo(map); })"""
    )
    try:
        assert stats["failed"] > 0 and stats["drawn"] == 0
        img = p.screenshot()
        assert _near(img, *_at(p, 18.32, 109.56), BACKGROUND) == 1  # no district: background
        # the browser's own network line for each failed request, nothing from the renderer
        assert all(e.startswith("Failed to load resource") and "/broken/" in e for e in p.errors)
        assert all("/broken/" in f for f in p.failed) and p.failed
    finally:
        p.page.evaluate("() => { broken.remove(); base.addTo(map); }")
        p.errors.clear()
        p.failed.clear()
