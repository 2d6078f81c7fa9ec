"""Offline by default: what ``tianya map`` and ``tianya report`` write asks no other host.

Every map kind the CLI has is written by the CLI with its default options from each store
and opened from ``file://`` in Chromium with **every** request to a host (anything but
``file:``, ``data:``, ``blob:``; ``browserkit``) blocked and recorded: none may be made,
none may fail, the console stays clean, and the screenshot shows our base map — the sea and
the communities in the colours of the style the server publishes
(:func:`layers.basemap.style`, ``light``), the district's boundary drawn — under the data.
"""

from __future__ import annotations

import re
import socket

import numpy as np
import pytest
import shapely
from browserkit import OfflinePage, not_blank
from click.testing import CliRunner

from analytics.basemaps import BASEMAPS, DEFAULT
from layers import basemap as lb
from layers.catalogue import LAYERS
from layers.district import district_boundary
from layers.stores import open_store
from tianya.cli import main

pytestmark = pytest.mark.both_stores

#: Every kind ``tianya map`` writes (read from the command, so a new kind is tested too).
KINDS = tuple(next(p for p in main.commands["map"].params if p.name == "kind").type.choices)


@pytest.fixture(scope="module")
def written(store_url, tmp_path_factory):
    """Each map kind written by ``tianya map KIND --data STORE -o FILE`` (defaults)."""
    folder = tmp_path_factory.mktemp("offline")
    out = {}
    for kind in KINDS:
        path = folder / f"{kind}.html"
        res = CliRunner().invoke(
            main, ["--quiet", "map", kind, "--data", store_url, "-o", str(path)]
        )
        assert res.exit_code == 0, res.output
        out[kind] = path
    return out


@pytest.fixture(scope="module")
def base_frames(store_url):
    with open_store(store_url) as store:
        return lb.basemap_frames(store)


def _map_name(html: str) -> str:
    found = re.search(r"var (map_[0-9a-f]+) = L\.map\(", html)
    assert found, "no Leaflet map in the file"
    return found.group(1)


def _base_name(html: str) -> str:
    found = re.search(r"var (tianya_base_map_[0-9a-f]+) = ", html)
    assert found, "no embedded base map in the file"
    return found.group(1)


#: Remote references that would make a browser ask another host (attribution anchors
#: ``<a href="https://…">`` only navigate when clicked and are allowed).
_REMOTE = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*\\?["']?|url\(\s*["']?|@import\s+["']?)https?://"""
)
_TILES = re.compile(r"""L\.tileLayer\(\s*["']https?://""")


def remote_references(html: str) -> list[str]:
    """The remote ``src``/``href``/``url()``/``@import`` and tile templates in ``html``,
    leaving out the ``href`` of ``<a>`` anchors."""
    out = []
    for m in _REMOTE.finditer(html):
        tag = html[html.rfind("<", 0, m.start()) : m.start()]
        if re.match(r"<a\s", tag) and "href" in m.group(0):
            continue
        out.append(html[m.start() : m.start() + 80])
    out += [html[m.start() : m.start() + 80] for m in _TILES.finditer(html)]
    return out


def test_remote_references_are_found():
    """The check below finds what it must (and lets attribution anchors through)."""
    bad = [
        '<script src="https://cdn.example/leaflet.js"></script>',
        "<link rel='stylesheet' href='http://cdn.example/x.css'/>",
        "<img src=https://tile.example/1.png>",
        ".x{background:url(https://cdn.example/a.png)}",
        'L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {})',
        '"<img src=\\"https://a.example/i.png\\">"',
    ]
    for text in bad:
        assert remote_references(text), text
    assert not remote_references('<a href="https://leafletjs.com" title="x">Leaflet</a>')
    assert not remote_references('<a\n href="https://example.org">x</a> <img src="data:,">')


@pytest.mark.parametrize("kind", KINDS)
def test_default_map_has_no_remote_reference(written, kind):
    html = written[kind].read_text(encoding="utf-8")
    assert remote_references(html) == []
    assert "tianya_base_map_" in html  # drawn from our data, in the file


def test_online_choices_still_refer_to_their_hosts(sample_gpkg, tmp_path):
    """``--basemap osm`` and ``--assets cdn`` stay explicit online choices."""
    path = tmp_path / "osm.html"
    args = ["--quiet", "map", "choropleth", "--data", sample_gpkg, "-o", str(path)]
    res = CliRunner().invoke(main, [*args, "--basemap", "osm", "--assets", "cdn"])
    assert res.exit_code == 0, res.output
    html = path.read_text(encoding="utf-8")
    refs = remote_references(html)
    assert any("tile.openstreetmap.org" in r for r in refs)
    assert any(r.startswith("src=") and "leaflet" in r for r in refs)
    assert "tianya_base_map_" not in html


def test_cli_basemap_choices_are_the_library_ones():
    opt = next(p for p in main.commands["map"].params if p.name == "basemap_id")
    assert list(opt.type.choices) == list(BASEMAPS)
    assert opt.default == DEFAULT == "tianya" and BASEMAPS[DEFAULT].embedded
    assert "TIANYA_TIANDITU_KEY" in opt.help and "TIANYA_TILES_<ID>" in opt.help


def test_inline_assets_refuse_an_unvendored_link():
    from analytics.mapassets import finish

    page = '<script src="https://cdn.example/plugin.js"></script>'
    with pytest.raises(ValueError, match="not vendored"):
        finish(page, "inline")
    assert finish(page, "cdn") == page


# --- In the browser -----------------------------------------------------------------------------


def _fills(style: dict, source: str, kind: str | None) -> list[tuple[str, float]]:
    """(colour, opacity) of the style's fills drawn over a feature of ``source``."""
    out = []
    for layer in style["layers"]:
        if layer["type"] != "fill" or layer.get("source-layer") != source:
            continue
        f = layer.get("filter")
        if f and (f[0] != "==" or f[1] != ["get", "kind"] or f[2] != kind):
            continue
        p = layer["paint"]
        out.append((p["fill-color"], float(p.get("fill-opacity", 1))))
    return out


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _composite(style: dict, *stack: tuple[str, str | None]) -> np.ndarray:
    """The colour of the style's background under the fills of ``stack`` (source, kind)."""
    bg = next(x for x in style["layers"] if x["type"] == "background")
    c = _rgb(bg["paint"]["background-color"])
    for source, kind in stack:
        for color, alpha in _fills(style, source, kind):
            c = c * (1 - alpha) + _rgb(color) * alpha
    return c


def _inside(p, name: str, region, shrink: float = 0.02):
    """A point of ``region`` inside the visible map (not at its edges), or None."""
    w, s, e, n = p.page.evaluate(
        "(m) => { const b = window[m].getBounds(); "
        "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }",
        name,
    )
    view = shapely.box(w + shrink, s + shrink, e - shrink, n - shrink)
    part = region.intersection(view)
    return None if part.is_empty else part.representative_point()


def _pixel(p, name: str, img: np.ndarray, point) -> np.ndarray:
    x, y = p.page.evaluate(
        "([m, lat, lon]) => { const q = window[m].latLngToContainerPoint([lat, lon]);"
        " const r = window[m].getContainer().getBoundingClientRect();"
        " return [Math.round(r.left + q.x), Math.round(r.top + q.y)]; }",
        [name, point.y, point.x],
    )
    return img[y, x].astype(float)


@pytest.mark.parametrize("kind", KINDS)
def test_default_map_offline_in_browser(browser, written, base_frames, kind):
    html = written[kind].read_text(encoding="utf-8")
    name, base = _map_name(html), _base_name(html)
    style = lb.style("", "light")
    # no host at all (file:, data:, blob:): nothing blocked, failed or in the console
    p = OfflinePage(browser, allow=()).goto(
        written[kind].as_uri(), ".leaflet-control-layers", pause=500
    )
    try:
        p.assert_clean()
        assert p.texts(".leaflet-control-layers-base label") == ["天涯区底图 Tianya base map"]
        # the base map is under every data pane and takes no clicks
        z = p.page.evaluate(
            "(m) => { const map = window[m], out = {}; ['tianya-base', 'tianya-areas', "
            "'overlayPane', 'tianya-points', 'tianya-base-labels'].forEach(n => { "
            "const el = map.getPane(n); out[n] = [Number(getComputedStyle(el).zIndex), "
            "getComputedStyle(el).pointerEvents]; }); return out; }",
            name,
        )
        assert z["tianya-base"][0] < min(z[k][0] for k in ("tianya-areas", "overlayPane"))
        assert z["tianya-base"][1] == z["tianya-base-labels"][1] == "none"
        comm = base_frames["communities"]
        # the sea and the communities in the style's colours, the boundary drawn
        p.page.evaluate(
            "() => document.querySelectorAll('.leaflet-control-layers-overlays input')"
            ".forEach(i => { if (i.checked) i.click(); })"
        )
        p.page.add_style_tag(
            content=".leaflet-control-container,.tianya-legend,.tianya-title,"
            ".tianya-base-label{visibility:hidden!important}"
        )
        p.page.wait_for_timeout(300)
        img = p.screenshot()
        not_blank(img)
        district = district_boundary()
        rivers = base_frames["rivers"].geometry.union_all().buffer(0.003)
        sea = lb.sea().difference(district.buffer(0.01)).buffer(-0.005)
        at = _inside(p, name, sea)
        assert at is not None, "no sea in view"
        want = _composite(style, ("sea", None))
        got = _pixel(p, name, img, at)
        assert np.abs(got - want).max() <= 2, ("sea", got, want)
        checked = 0
        for kind_ in ("village", "community"):
            polys = comm[comm["kind"] == kind_].to_crs(3857)
            poly = comm.loc[polys.area.idxmax()].geometry
            at = _inside(p, name, poly.buffer(-0.002).difference(rivers))
            if at is None:
                continue
            want = _composite(style, ("district", None), ("communities", kind_))
            got = _pixel(p, name, img, at)
            assert np.abs(got - want).max() <= 2, (kind_, got, want)
            checked += 1
        assert checked == 2
        line = next(
            x for x in style["layers"] if x["type"] == "line" and x["source-layer"] == "district"
        )
        edge = _rgb(line["paint"]["line-color"])
        assert int((np.abs(img - edge).max(axis=2) <= 24).sum()) > 300, "no district boundary"
        # the communities' names, each once (the base map's labels, no second set), from
        # the style's zoom of community labels on
        p.page.evaluate(
            "(m) => { window[m].setView([18.35, 109.40], 12, {animate: false}); }", name
        )
        p.page.wait_for_timeout(200)
        labels = p.texts(".tianya-label")
        assert sorted(x for x in labels if x in set(comm["name"])) == sorted(comm["name"])
        # what is drawn follows the style's zoom ranges (grid cells and buildings zoomed in),
        # style zoom z at Leaflet's z + 1 as in MapLibre and the server's basemap.js
        for zoom in (11, 16):
            p.page.evaluate(
                "([m, z]) => { window[m].setView([18.30, 109.50], z, {animate: false}); }",
                [name, zoom],
            )
            p.page.wait_for_timeout(200)
            shown = p.page.evaluate("(b) => window[b].shown()", base)
            want_ids = [
                x["id"]
                for x in style["layers"]
                if x["type"] != "background"
                and x.get("minzoom", 0) <= zoom - 1 < x.get("maxzoom", 99)
            ]
            assert shown == want_ids, zoom
            assert ("buildings" in shown) == (zoom == 16)
        assert p.errors == [], p.errors
    finally:
        p.close()


# --- The weekly report --------------------------------------------------------------------------


def test_report_asks_no_other_host(store_url, browser, tmp_path, monkeypatch):
    """``tianya report`` (HTML, PDF, JSON) refers to no remote URL and fetches none."""
    attempts: list[object] = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)  # PostGIS goes through libpq
    html, pdf, js = tmp_path / "r.html", tmp_path / "r.pdf", tmp_path / "r.json"
    args = ["--quiet", "report", "--week", "2026-W47", "--data", store_url, "-o", str(html)]
    have_pdf = _has_weasyprint()
    if have_pdf:
        args += ["--pdf", str(pdf)]
    res = CliRunner().invoke(main, [*args, "--json", str(js)])
    assert res.exit_code == 0, res.output
    assert attempts == []
    monkeypatch.undo()
    text = html.read_text(encoding="utf-8")
    assert remote_references(text) == []
    assert not re.search(r"https?://", js.read_text(encoding="utf-8"))
    if have_pdf:
        assert pdf.read_bytes()[:5] == b"%PDF-"
    p = OfflinePage(browser, allow=())  # no host at all (file:, data:, blob:)
    try:
        p.goto(html.as_uri(), "#kpi", pause=300)
        assert p.blocked == [] and p.failed == []
    finally:
        p.close()


def _has_weasyprint() -> bool:
    try:
        import weasyprint  # noqa: F401
    except ImportError:
        return False
    return True


def test_embedded_base_map_stays_small(store_url):
    """Grid cells and buildings are in the file; the encoded base map stays well under 1 MB."""
    from analytics.map_basemap import TianyaBaseLayer

    with open_store(store_url) as store:
        frames = lb.basemap_frames(store)
        n_buildings = len(store.read_frame(LAYERS["building_population"]))
    layer = TianyaBaseLayer(frames, lb.style("", "light"), "x")
    assert len(layer.data["buildings"]) == n_buildings > 1000
    assert layer.size < 600_000, layer.size


def _base_layer(m):
    from analytics.map_basemap import TianyaBaseLayer

    found = [c for c in m._children.values() if isinstance(c, TianyaBaseLayer)]
    assert len(found) == 1
    return found[0]


def test_library_maps_draw_the_base_map_from_what_they_are_given(sample_data):
    """Frames by layer id (in any CRS) give the base map what they hold; nothing else
    gives the district and the sea alone."""
    from analytics import maps
    from layers.district import UTM

    data = _base_layer(maps.layers_map(sample_data, layers=("party_building",))).data
    assert {"sea", "district", "communities", "rivers", "grid_cells", "buildings"} <= set(data)
    assert len(data["buildings"]) == len(sample_data["building_population"])
    comm = sample_data["communities"]
    inc = sample_data["incidents"]
    plain = _base_layer(maps.hotspot_map(inc, kde=False, emerging=False)).data
    assert len(plain["district"]) == 1 and len(plain["communities"]) == 0
    assert [r[0]["name"] for r in plain["labels"]] == ["天涯区"]
    a = _base_layer(maps.choropleth_map(inc, comm)).data["labels"]
    b = _base_layer(maps.choropleth_map(inc, comm.to_crs(UTM))).data["labels"]
    assert len(a) == len(comm) + 1 and a == b  # label points in degrees either way
