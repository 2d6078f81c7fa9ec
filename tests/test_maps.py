"""Maps and the weekly report, checked in headless Chromium (the screen: ``test_screen.py``).

Debian's ``/usr/bin/chromium`` is driven by playwright-python (``browserkit``, never
``playwright install``). There is no internet here: every request that leaves the machine
(map tiles) is aborted and only the console errors those aborted requests cause are ignored.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from browserkit import OfflinePage, not_blank

from analytics import maps, palettes
from analytics.basemaps import to_gcj02, wgs_to_gcj
from analytics.report import weekly_report
from layers.catalogue import LAYERS, THEMATIC
from layers.district import TZ_NAME as TZ


def _open(browser, url: str, ready: str = ".leaflet-control-layers") -> OfflinePage:
    """A map or report at ``url`` with every request to another host refused (the online
    tiles a map offers), ignoring only the console errors those refusals cause."""
    return OfflinePage(browser, ignore_blocked_errors=True).goto(url, ready, pause=300)


def _save(m, tmp_path, name) -> str:
    out = maps.save_map(m, tmp_path / name)
    assert out.size > 0
    return "file://" + out.path


def _sensitive_values(data) -> list[str]:
    vals = []
    for lid in THEMATIC:
        frame = data[lid]
        for f in LAYERS[lid].sensitive_fields:
            v = frame[f].dropna().astype(str)
            vals += [x for x in v.unique()[:200].tolist() if len(x) >= 7]  # phones
    return vals


# --- Layers map ---------------------------------------------------------------------------------


def test_layers_map_in_browser(browser, sample_data, tmp_path):
    m = maps.layers_map(sample_data)
    url = _save(m, tmp_path, "layers.html")
    text = open(url[7:], encoding="utf-8").read()
    assert "cdn.jsdelivr" not in text and "jquery" not in text.lower()
    for v in _sensitive_values(sample_data):
        assert v not in text, "a sensitive value reached the map"
    p = _open(browser, url)
    try:
        overlays = p.texts(".leaflet-control-layers-overlays label")
        expected = [f"{LAYERS[i].zh} {LAYERS[i].en}" for i in THEMATIC]
        assert overlays == expected  # communities and their names: in the base map
        assert p.texts(".leaflet-control-layers-base label") == ["天涯区底图 Tianya base map"]
        groups = p.texts(".tianya-legend-group")
        for title in expected:
            assert any(g.startswith(title) for g in groups), title
        items = p.texts(".tianya-legend-item")
        assert "暴露垃圾 Exposed garbage" in items  # incidents by category
        assert "破损 Damaged" in items  # fixtures by state
        assert p.page.query_selector(".leaflet-control-scale")
        assert p.page.query_selector(".leaflet-control-fullscreen, .fullscreen-icon")
        # a popup shows planner fields and no personal ones
        assert p.errors == [], p.errors
        not_blank(p.screenshot())
    finally:
        p.close()


@pytest.fixture(scope="module")
def layers_page(browser, sample_data, tmp_path_factory):
    """The default layers map, opened once: (page, map variable name)."""
    m = maps.layers_map(sample_data)
    url = _save(m, tmp_path_factory.mktemp("layers"), "layers.html")
    p = _open(browser, url)  # on the default base map: ours, embedded, under the points
    yield p, m.get_name()
    p.close()


def _hex(color: str) -> str:
    return color.lower()


def test_markers_are_filled_in_their_category_colours(layers_page, sample_data):
    """Every point was a hollow grey ring (CircleMarker without ``fill``): now each is a filled
    circle in its code's catalogue colour, as the legend says."""
    p, name = layers_page
    got = p.page.evaluate(
        """(map) => { const out = []; window[map].eachLayer(l => {
            if (l.feature && l instanceof L.CircleMarker && l._path) out.push({
                props: l.feature.properties, fill: l._path.getAttribute('fill'),
                opacity: Number(l._path.getAttribute('fill-opacity')),
                pane: l.options.pane}); }); return out; }""",
        name,
    )
    inc = sample_data["incidents"].set_index("case_no")
    palette = {c.code: c.color for c in LAYERS["incidents"].field("category").codes or ()}
    cases = [g for g in got if "case_no" in g["props"]]
    assert len(cases) > 10  # the overdue ones: incidents are aggregated into cells
    for g in cases:
        want = palette[inc.loc[g["props"]["case_no"], "category"]]
        assert g["fill"] is not None and _hex(g["fill"]) == _hex(want), g
        assert g["opacity"] >= 0.8 and g["pane"] == "tianya-points"
    fp = sample_data["flood_prevention"]
    kinds = {c.code: c.color for c in LAYERS["flood_prevention"].field("facility_type").codes or ()}
    by_name = fp.drop_duplicates("name", keep=False).set_index("name")["facility_type"]
    shelters = [g for g in got if g["props"].get("name") in by_name.index]
    assert shelters
    for g in shelters:
        assert _hex(g["fill"]) == _hex(kinds[by_name[g["props"]["name"]]]), g
    # and the legend shows exactly those colours, as filled swatches
    swatches = p.page.eval_on_selector_all(
        ".tianya-legend-item i", "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )
    rgb = {
        "rgb({}, {}, {})".format(*(int(c[i : i + 2], 16) for i in (1, 3, 5)))
        for c in {g["fill"] for g in got}
    }
    assert rgb <= set(swatches)


def _lonely(frame, others, metres: float = 15.0):
    """Rows of ``frame`` with no other point of ``others`` within ``metres``."""
    from layers.district import UTM

    pts = frame.to_crs(UTM)
    allp = others.to_crs(UTM)
    keep = []
    for i, g in zip(pts.index, pts.geometry, strict=True):
        d = allp.distance(g)
        if int((d < metres).sum()) <= 1:
            keep.append(i)
    return frame.loc[keep]


def _click_at(p, name, lat, lon, zoom=18) -> str:
    """Centre the map on (lat, lon), click there with the mouse, return the popup's text."""
    p.page.evaluate(
        """([map, lat, lon, z]) => { window[map].closePopup();
            window[map].setView([lat, lon], z, {animate: false}); }""",
        [name, lat, lon, zoom],
    )
    p.page.wait_for_timeout(300)
    x, y = p.page.evaluate(
        """([map, lat, lon]) => { const m = window[map];
            const pt = m.latLngToContainerPoint([lat, lon]);
            const r = m.getContainer().getBoundingClientRect();
            return [r.left + pt.x, r.top + pt.y]; }""",
        [name, lat, lon],
    )
    p.page.mouse.click(x, y)
    p.page.wait_for_selector(".leaflet-popup-content", timeout=5_000)
    return p.texts(".leaflet-popup-content")[0]


def _toggle(p, title: str):
    p.page.click(f".leaflet-control-layers-overlays label:has-text('{title}') input")
    p.page.wait_for_timeout(100)


def test_click_on_a_case_or_shelter_opens_its_own_popup(layers_page, sample_data):
    """Cell layers sat above the points: a click on a case opened a fixtures-cell popup."""
    import geopandas as gpd

    p, name = layers_page
    shown = p.page.evaluate(
        """(map) => { const out = []; window[map].eachLayer(l => {
            if (l.feature && l.feature.properties.case_no) out.push(l.feature.properties.case_no);
            }); return out; }""",
        name,
    )
    points = pd.concat([sample_data[i].to_crs(4326).geometry for i in THEMATIC if i != "rivers"])
    points = gpd.GeoDataFrame(geometry=points[points.geom_type == "Point"].to_numpy(), crs=4326)
    inc = sample_data["incidents"].to_crs(4326)
    inc = inc[inc["case_no"].isin(shown)]
    # cases among the fixtures, i.e. under the fixtures' 300 m cells
    fixtures = sample_data["urban_fixtures"].to_crs(inc.crs).geometry.union_all()
    near = inc.geometry.within(fixtures.convex_hull)
    cases = _lonely(inc[near], points).head(3)
    assert len(cases)
    comm = sample_data["communities"]
    names = dict(zip(comm["code"], comm["name"], strict=True))
    category = LAYERS["incidents"].field("category")
    # the order the layers were switched on in must not matter: fixtures (cells) last
    for lid in ("incidents", "urban_fixtures"):
        _toggle(p, LAYERS[lid].en)
        _toggle(p, LAYERS[lid].en)
    for _, case in cases.iterrows():
        text = _click_at(p, name, case.geometry.y, case.geometry.x)
        assert case["case_no"] in text, text
        c = next(c for c in category.codes or () if c.code == case["category"])
        assert f"{c.zh} {c.en}" in text  # bilingual label, not the code
        assert case["category"] not in text and case["community_code"] not in text
        assert names[case["community_code"]] in text
    fp = sample_data["flood_prevention"].to_crs(4326)
    shelters = _lonely(fp[fp["facility_type"] == "shelter"], points).head(2)
    kinds = LAYERS["flood_prevention"].field("facility_type").codes or ()
    shelter = next(c for c in kinds if c.code == "shelter")
    assert len(shelters)
    for _, s in shelters.iterrows():
        text = _click_at(p, name, s.geometry.y, s.geometry.x)
        assert s["name"] in text and f"{shelter.zh} {shelter.en}" in text, text
    p.page.evaluate("(map) => { window[map].closePopup(); }", name)


def test_legend_follows_the_layer_control(layers_page):
    p, _ = layers_page
    section = ".tianya-legend-section:has(.tianya-legend-group:text-matches('^{}'))"
    for lid in ("incidents", "urban_fixtures", "poverty_relief"):
        title = f"{LAYERS[lid].zh} {LAYERS[lid].en}"
        sel = section.format(title.replace("(", "\\\\(").replace(")", "\\\\)"))
        assert p.page.is_visible(sel), title
        _toggle(p, LAYERS[lid].en)
        assert p.page.is_hidden(sel), f"{title}: legend still shown with its layer off"
        _toggle(p, LAYERS[lid].en)
        assert p.page.is_visible(sel), title


def test_community_names_are_permanent_labels(layers_page, sample_data):
    p, name = layers_page
    p.page.evaluate(
        "(map) => { window[map].setView([18.30, 109.50], 12, {animate: false}); }", name
    )
    p.page.mouse.move(1, 1)  # nowhere near a community
    p.page.wait_for_timeout(300)
    labels = p.page.eval_on_selector_all(
        ".tianya-label",
        """els => els.map(e => { const r = e.getBoundingClientRect();
            return {text: e.textContent, visible: getComputedStyle(e).visibility !== 'hidden'
                    && r.width > 0, box: [r.left, r.top, r.right, r.bottom]}; })""",
    )
    names = set(sample_data["communities"]["name"])
    mine = [x for x in labels if x["text"] in names]  # the base map also names rivers
    assert sorted(x["text"] for x in mine) == sorted(names)  # each once: no duplicates
    visible = [x for x in labels if x["visible"]]
    assert len([x for x in mine if x["visible"]]) >= len(mine) // 2
    for i, a in enumerate(visible):  # the labels that would collide are the ones left out
        for b in visible[i + 1 :]:
            l1, t1, r1, b1 = a["box"]
            l2, t2, r2, b2 = b["box"]
            assert not (l1 < r2 and r1 > l2 and t1 < b2 and b1 > t2), (a, b)
    hidden = [x["text"] for x in mine if not x["visible"]]
    if hidden:  # zooming in on a crowded one shows it
        comm = sample_data["communities"].to_crs(4326).set_index("name")
        c = comm.loc[hidden[0]].geometry.representative_point()
        p.page.evaluate(
            "([map, lat, lon]) => { window[map].setView([lat, lon], 16, {animate: false}); }",
            [name, c.y, c.x],
        )
        p.page.wait_for_timeout(300)
        now = p.page.eval_on_selector_all(
            ".tianya-label",
            "els => els.filter(e => getComputedStyle(e).visibility !== 'hidden')"
            ".map(e => e.textContent)",
        )
        assert hidden[0] in now


def test_popups_show_labels_never_codes(layers_page, sample_data):
    p, name = layers_page
    props = p.page.evaluate(
        """(map) => { const out = []; window[map].eachLayer(l => {
            if (l.feature && l.getPopup && (l.getPopup() || (l._eventParents &&
                Object.values(l._eventParents).some(g => g.getPopup && g.getPopup()))))
                out.push(l.feature.properties); }); return out; }""",
        name,
    )
    assert len(props) > 100
    raw = set(sample_data["communities"]["code"])
    labels = set()
    for lid in THEMATIC:
        for f in LAYERS[lid].fields:
            for c in f.codes or ():
                raw.add(c.code)
                labels.add(f"{c.zh} {c.en}")
    for pr in props:
        for k, v in pr.items():
            if k.startswith("_") or not isinstance(v, str):
                continue
            assert v not in raw, (k, v)
            if k == "breakdown":  # "label n、label n"
                for part in v.split("、"):
                    assert part.rsplit(" ", 1)[0] in labels, part


def test_popup_values_are_text_never_markup(browser, sample_data, tmp_path):
    """folium wrote popup values into innerHTML: a case title from the public (Open311, the
    hotline) ran as script in every saved map showing it."""
    data = dict(sample_data)
    inc = data["incidents"].head(1).copy()
    attack = '<img src=x onerror="window.tianyaOwned=1">&<b>井盖</b>'
    inc["title"] = attack
    data["incidents"] = inc
    m = maps.layers_map(data, layers=["incidents"])
    p = _open(browser, _save(m, tmp_path, "markup.html"))
    try:
        pt = inc.to_crs(4326).geometry.iloc[0]
        text = _click_at(p, m.get_name(), pt.y, pt.x)
        assert attack in text  # shown as the text it is
        assert p.page.query_selector(".leaflet-popup-content img, .leaflet-popup-content b") is None
        assert p.page.evaluate("window.tianyaOwned") is None
    finally:
        p.close()


def test_layers_map_aggregates_large_layers(sample_data):
    small = maps.render_html(
        maps.layers_map(sample_data, layers=("incidents",), max_points=100_000)
    )
    light = maps.render_html(maps.layers_map(sample_data, layers=("incidents",), max_points=500))
    assert len(light) < len(small) / 2
    assert "300 m cells" in light


def test_restricted_layer_is_per_community_by_default(sample_data):
    html = maps.render_html(maps.layers_map(sample_data, layers=("poverty_relief",)))
    codes = sample_data["poverty_relief"]["household_code"].head(20)
    assert not any(c in html for c in codes)
    html = maps.render_html(
        maps.layers_map(sample_data, layers=("poverty_relief",), restricted=True)
    )
    assert all(c in html for c in codes)
    for f in LAYERS["poverty_relief"].sensitive_fields:
        for v in sample_data["poverty_relief"][f].dropna().astype(str).head(20):
            assert f'"{v}"' not in html


# --- GCJ-02 -------------------------------------------------------------------------------------

#: Published WGS84 → GCJ-02 test vectors (eviltransform's test suite): lat, lon, lat, lon.
PUBLISHED = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


def _metres(lon1, lat1, lon2, lat2) -> float:
    k = math.pi / 180
    dx = (lon2 - lon1) * k * 6378137 * math.cos(lat1 * k)
    dy = (lat2 - lat1) * k * 6378137
    return math.hypot(dx, dy)


def test_gcj02_published_points():
    for lat, lon, glat, glon in PUBLISHED:
        x, y = wgs_to_gcj([lon], [lat])
        assert abs(x[0] - glon) < 1e-6 and abs(y[0] - glat) < 1e-6


def test_gcj02_offset_at_tianya_matches_a_second_implementation():
    evil = pytest.importorskip("eviltransform")
    lon, lat = 109.5029, 18.2940  # Sanya downtown
    x, y = wgs_to_gcj([lon], [lat])
    elat, elon = evil.wgs2gcj(lat, lon)
    assert _metres(x[0], y[0], elon, elat) < 0.5
    offset = _metres(lon, lat, x[0], y[0])
    assert 350 < offset < 600, offset  # "about 466 m at Tianya"


def test_gcj_overlay_lands_on_the_converted_spot(browser, sample_data, tmp_path):
    """A party-building point drawn on the Amap base map sits at its GCJ-02 position."""
    evil = pytest.importorskip("eviltransform")
    pb = sample_data["party_building"].to_crs(4326)
    name = pb["name"].iloc[0]
    wgs = pb.geometry.iloc[0]
    elat, elon = evil.wgs2gcj(wgs.y, wgs.x)  # independent reference conversion
    js = """([name, map]) => { const out = []; window[map].eachLayer(l => {
              if (l.feature && l.feature.properties.name === name && l.getLatLng)
                  out.push([l.getLatLng().lat, l.getLatLng().lng]); }); return out; }"""
    for bm, (lat, lon) in (("amap", (elat, elon)), ("osm", (wgs.y, wgs.x))):
        m = maps.layers_map(sample_data, layers=("party_building",), basemap_id=bm)
        p = _open(browser, _save(m, tmp_path, f"pb-{bm}.html"))
        try:
            got = p.page.evaluate(js, [name, m.get_name()])
            assert len(got) == 1
            assert _metres(got[0][1], got[0][0], lon, lat) < 2.0, (bm, got, lat, lon)
            assert p.errors == []
        finally:
            p.close()
    assert _metres(wgs.x, wgs.y, elon, elat) > 300  # the shift the conversion corrects


def test_to_gcj02_moves_polygons(sample_data):
    comm = sample_data["communities"].to_crs(4326).head(3)
    moved = to_gcj02(comm)
    import shapely

    a = shapely.get_coordinates(comm.geometry.iloc[0])[0]
    b = tuple(shapely.get_coordinates(moved.geometry.iloc[0])[0])
    x, y = wgs_to_gcj([a[0]], [a[1]])
    assert b == pytest.approx((x[0], y[0]), abs=1e-12)


def test_tianditu_needs_a_key(sample_data, monkeypatch):
    from analytics.errors import AnalyticsError

    with pytest.raises(AnalyticsError, match="TIANYA_TIANDITU_KEY"):
        maps.layers_map(sample_data, layers=("rivers",), basemap_id="tianditu")
    with pytest.raises(AnalyticsError, match="TIANYA_TIANDITU_KEY"):  # another map's key
        maps.layers_map(sample_data, layers=("rivers",), basemap_id="tianditu", keys={"amap": "a1"})
    html = maps.render_html(
        maps.layers_map(
            sample_data, layers=("rivers",), basemap_id="tianditu", keys={"tianditu": "k123"}
        )
    )
    assert "tk=k123" in html and "cva_w" in html
    tiles = {"osm": "http://tiles.example/{z}/{x}/{y}.png"}
    html = maps.render_html(
        maps.layers_map(sample_data, layers=("rivers",), basemap_id="osm", tiles=tiles)
    )
    assert "tiles.example" in html
    # the environment is not read: the settings object passes tiles and keys
    monkeypatch.setenv("TIANYA_TIANDITU_KEY", "k123")
    monkeypatch.setenv("TIANYA_TILES_OSM", "http://env.example/{z}/{x}/{y}.png")
    with pytest.raises(AnalyticsError, match="TIANYA_TIANDITU_KEY"):
        maps.hotspot_map(sample_data["incidents"], basemap_id="tianditu_img")
    html = maps.render_html(maps.layers_map(sample_data, layers=("rivers",), basemap_id="osm"))
    assert "env.example" not in html and "tile.openstreetmap.org" in html


def test_hot_and_choropleth_maps_take_tiles_and_keys(sample_data):
    inc, comm = sample_data["incidents"], sample_data["communities"]
    keys = {"tianditu": "kk9"}
    html = maps.render_html(
        maps.hotspot_map(inc, basemap_id="tianditu_img", keys=keys, emerging=False, kde=False)
    )
    assert "tk=kk9" in html and "img_w" in html
    tiles = {"osm": "http://tiles.example/{z}/{x}/{y}.png"}
    html = maps.render_html(maps.choropleth_map(inc, comm, basemap_id="osm", tiles=tiles))
    assert "tiles.example" in html


# --- Hot spots and choropleths ------------------------------------------------------------------


def test_hotspot_map_in_browser(browser, sample_data, tmp_path):
    m = maps.hotspot_map(sample_data["incidents"], communities=sample_data["communities"])
    p = _open(browser, _save(m, tmp_path, "hot.html"))
    try:
        overlays = p.texts(".leaflet-control-layers-overlays label")
        assert "Gi*热点冷点 Gi* hot and cold spots" in overlays
        assert "核密度热力 Kernel density heat" in overlays
        assert "时空热点(新兴热点) Emerging hot spots" in overlays
        items = p.texts(".tianya-legend-item")
        assert "热点 99%置信度 Hot spot, 99% confidence" in items
        red = p.page.evaluate(
            """(map) => { let n = 0; window[map].eachLayer(l => {
            if (l.feature && l.options.fillColor === '#d62f27') n++; }); return n; }""",
            m.get_name(),
        )
        assert red > 0
        assert p.page.query_selector(".leaflet-image-layer")
        # the emerging overlay starts off, and so does its legend, until it is switched on
        sel = ".tianya-legend-section:has(.tianya-legend-group:text('Emerging hot spots'))"
        assert p.page.is_hidden(sel)
        _toggle(p, "Emerging hot spots")
        assert p.page.is_visible(sel)
        assert p.errors == [], p.errors
        not_blank(p.screenshot())
    finally:
        p.close()


def test_choropleth_map_in_browser(browser, sample_data, tmp_path):
    inc, comm = sample_data["incidents"], sample_data["communities"]
    m = maps.choropleth_map(inc, comm)
    p = _open(browser, _save(m, tmp_path, "choro.html"))
    try:
        overlays = p.texts(".leaflet-control-layers-overlays label")
        assert overlays == [
            "案件密度(件/平方公里) Case density (cases/km²)",
            "办结率 Completion rate",
            "超期占比 Overdue share",
        ]  # the communities' names are the base map's labels
        assert len(p.texts(".tianya-legend-item")) >= 9
        # the legend names the classification; its class counts add up to the communities
        groups = p.texts(".tianya-legend-section:not([style*='none']) .tianya-legend-group")
        method = "自然断点(Jenks)分级 natural breaks (Jenks)"
        assert groups == [f"案件密度(件/平方公里) Case density (cases/km²) · {method}"]
        density = p.texts(".tianya-legend-section:not([style*='none']) .tianya-legend-item")
        counts = [int(t.rsplit("(", 1)[1].rstrip(")")) for t in density]
        assert sum(counts) == len(comm) and all(n > 0 for n in counts)
        # every class has its own colour, spread over the whole ramp (darkest included)
        fills = p.page.evaluate(
            """(map) => { const out = []; window[map].eachLayer(l => {
                if (l.feature && l.options.pane === 'tianya-areas') out.push(l.options.fillColor);
            }); return out; }""",
            m.get_name(),
        )
        assert len(fills) == len(comm)
        assert len(set(fills)) == len(counts) and palettes.ORANGES_5[-1] in fills
        assert p.errors == [], p.errors
        not_blank(p.screenshot())
    finally:
        p.close()


def test_natural_breaks_are_the_least_squares_partition():
    """Jenks classes checked against every possible partition (brute force)."""
    from itertools import combinations

    from analytics.map_choropleth import natural_breaks

    rng = np.random.default_rng(7)
    for n, k in ((12, 4), (10, 3), (9, 5), (14, 5)):
        v = np.sort(np.round(rng.lognormal(1.0, 1.0, n), 2))

        def sse(cuts, v=v):
            parts = np.split(v, list(cuts))
            return sum(((p - p.mean()) ** 2).sum() for p in parts)

        best = min(combinations(range(1, n), k - 1), key=sse)
        want = [v[c - 1] for c in best] + [v[-1]]
        got = natural_breaks(rng.permutation(v), k)
        assert sse(np.searchsorted(v, got[:-1], side="right")) == pytest.approx(sse(best))
        assert got.tolist() == pytest.approx(want)
    # ties: never more classes than distinct values, each tie in one class
    assert natural_breaks([0, 0, 0, 0, 0, 0.5, 0.5, 1.0], 5).tolist() == [0, 0.5, 1.0]
    assert natural_breaks([np.nan, 2.0], 5).tolist() == [2.0]


def test_community_measures_independent(sample_data):
    inc, comm = sample_data["incidents"], sample_data["communities"]
    got = maps.community_measures(inc, comm).set_index("code")
    now = max(inc[c].max() for c in ("reported_at", "dispatched_at", "handled_at", "closed_at"))
    done = inc["status"].isin(["closed", "evaluated"])
    overdue = ~done & (inc["deadline"] < now)
    g = pd.DataFrame({"c": inc["community_code"], "done": done, "od": overdue}).groupby("c")
    for code, row in got.iterrows():
        if code not in g.groups:
            assert row["cases"] == 0
            continue
        sub = g.get_group(code)
        assert row["cases"] == len(sub)
        assert row["completion_rate"] == pytest.approx(sub["done"].mean())
        assert row["overdue_share"] == pytest.approx(sub["od"].mean())
        area = comm.set_index("code").loc[code, "area_km2"]
        assert row["case_density"] == pytest.approx(len(sub) / area)


# --- Weekly report ------------------------------------------------------------------------------


def _independent_week(inc: pd.DataFrame, week: str) -> dict:
    """The report's headline figures from timestamps alone (no layers.supervision)."""
    year, w = int(week[:4]), int(week[-2:])
    import datetime as dt

    start = pd.Timestamp(dt.date.fromisocalendar(year, w, 1)).tz_localize(TZ).tz_convert("UTC")
    end = start + pd.Timedelta(days=7)
    rep = inc["reported_at"]
    wk = inc[(rep >= start) & (rep < end)]
    done = wk["closed_at"].notna() & (wk["closed_at"] <= end)
    handled = wk["handled_at"].where(wk["handled_at"] <= end)
    elig = done & wk["deadline"].notna() & handled.notna()
    before = inc[rep < end]
    open_then = ~(before["closed_at"].notna() & (before["closed_at"] <= end))
    overdue = open_then & (before["deadline"] < end)
    by_channel = wk.groupby("channel").size().to_dict()
    online = wk["channel"].isin(["public_opinion", "wechat"])
    return {
        "received": len(wk),
        "closed": int(((inc["closed_at"] >= start) & (inc["closed_at"] < end)).sum()),
        "completion_rate": done.mean(),
        "on_time_rate": (handled[elig] <= wk["deadline"][elig]).mean(),
        "overdue_total": int(overdue.sum()),
        "by_channel": by_channel,
        "online": int(online.sum()),
        "overdue_cases": set(before.loc[overdue, "case_no"]),
    }


@pytest.mark.parametrize("week", ["2026-W47", "2026-W40"])
def test_weekly_report_figures_independent(sample_data, week):
    inc = sample_data["incidents"]
    r = weekly_report(inc, sample_data["communities"], week, charts=False)
    f, ind = r.figures, _independent_week(inc, week)
    assert f["received"] == ind["received"] > 0
    assert f["closed"] == ind["closed"]
    assert f["completion_rate"] == pytest.approx(ind["completion_rate"], abs=1e-4)
    assert f["on_time_rate"] == pytest.approx(ind["on_time_rate"], abs=1e-4)
    assert f["overdue_total"] == ind["overdue_total"]
    assert {r["channel"]: r["cases"] for r in f["by"]["channel"]} == ind["by_channel"]
    assert f["public_opinion"]["cases"] == ind["online"]
    assert {r["case_no"] for r in f["overdue_list"]} <= ind["overdue_cases"]
    prev = _independent_week(inc, f["previous_week"])
    assert f["previous"]["received"] == prev["received"]
    assert f["week_over_week"]["received"] == ind["received"] - prev["received"]
    assert sum(r["cases"] for r in f["by"]["community"]) == ind["received"]
    assert sum(r["cases"] for r in f["by"]["department"]) == ind["received"]
    assert f["hotspots"] and all(h["gi_bin"] > 0 for h in f["hotspots"])
    assert f'id="received">{ind["received"]}<' in r.html


def test_weekly_report_in_browser(browser, sample_data, tmp_path):
    r = weekly_report(sample_data["incidents"], sample_data["communities"], "2026-W47")
    path = tmp_path / "report.html"
    path.write_text(r.html, encoding="utf-8")
    p = _open(browser, f"file://{path}", ready="#kpi")
    try:
        imgs = p.page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        assert len(imgs) == 5 and all(w > 100 for w in imgs)
        assert p.texts("#received") == [str(r.figures["received"])]
        assert p.errors == [], p.errors
        not_blank(p.screenshot())
    finally:
        p.close()
    for v in _sensitive_values(sample_data):
        assert v not in r.html


def test_weekly_report_pdf(sample_data, tmp_path):
    pytest.importorskip("weasyprint")
    r = weekly_report(
        sample_data["incidents"], sample_data["communities"], "2026-W47", charts=False
    )
    out = r.pdf(tmp_path / "r.pdf")
    with open(out, "rb") as fh:
        assert fh.read(5) == b"%PDF-"


def test_report_week_errors(sample_data):
    from analytics.errors import AnalyticsError

    with pytest.raises(AnalyticsError, match="2026-W47"):
        weekly_report(sample_data["incidents"], week="2026-47")
    with pytest.raises(AnalyticsError, match="ISO week"):
        weekly_report(sample_data["incidents"], week="2026-W60")


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_map_and_report(sample_gpkg, tmp_path):
    from click.testing import CliRunner

    from tianya.cli import main

    runner = CliRunner()
    out = tmp_path / "m.html"
    res = runner.invoke(
        main,
        [
            "map",
            "layers",
            "--data",
            sample_gpkg,
            "-o",
            str(out),
            "--basemap",
            "amap",
            "--days",
            "30",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "MB" in res.output and out.stat().st_size > 100_000
    res = runner.invoke(
        main, ["map", "hotspots", "--data", sample_gpkg, "-o", str(tmp_path / "h.html")]
    )
    assert res.exit_code == 0, res.output
    rep = tmp_path / "r.html"
    res = runner.invoke(
        main,
        [
            "report",
            "--week",
            "2026-W47",
            "--data",
            sample_gpkg,
            "-o",
            str(rep),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "2026-W47" in res.output and rep.exists()
    res = runner.invoke(main, ["report", "--week", "nonsense", "--data", sample_gpkg])
    assert res.exit_code != 0 and "2026-W47" in res.output
