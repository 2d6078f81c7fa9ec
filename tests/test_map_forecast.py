"""The early warning map (issue 16 item 4): what warns is drawn in its kind's colour with its
explanation, from the data alone (offline: no other host asked, in a browser too)."""

from __future__ import annotations

import json
import re

import pytest
from test_early_warning import PEAK, _plant
from test_map_offline import remote_references

from analytics.early_warning import early_warnings
from analytics.errors import AnalyticsError
from analytics.forecast import count_series, forecast
from analytics.maps import WARNING_KINDS, forecast_map, render_html, save_map
from analytics.palettes import WARNING_COLORS

pytestmark = pytest.mark.filterwarnings("ignore:input CRS:UserWarning")


def _features(html: str) -> list[dict]:
    """Every GeoJSON feature folium wrote into the page."""
    dec, out = json.JSONDecoder(), []
    for m in re.finditer(r'"features": \[', html):
        feats, _ = dec.raw_decode(html, m.end() - 1)
        out += feats
    return out


@pytest.fixture(scope="module")
def planted(sample_data):
    """The sample with a growing cluster in the middle of a community (as the warning test)."""
    inc = sample_data["incidents"]
    weeks = count_series(inc, level="community").periods
    return _plant(inc, weeks, point=(109.4386, 18.2882)), weeks


def test_the_warned_communities_and_cells_are_drawn_with_their_reasons(planted, sample_data):
    inc, weeks = planted
    origin = weeks[PEAK - 2]
    m = forecast_map(inc, communities=sample_data["communities"], origin=origin, lang="both")
    html = render_html(m)
    feats = _features(html)
    warned = [f for f in feats if f["properties"].get("why")]
    # the same warnings as the library gives, community and cell
    com = count_series(inc, level="community")
    ew_c = early_warnings(com, forecast(com, model="ets", horizon=1, origin=origin))
    cells = count_series(inc, level="cell")
    ew_g = early_warnings(cells, forecast(cells, model="ets", horizon=1, origin=origin))
    names = sample_data["communities"].set_index("code")["name"]
    want_c = {names[k] for k in ew_c.frame["key"]}
    want_g = {f"200 m #{k}" for k in ew_g.frame["key"]}
    assert want_g, "the planted cluster's cells warn two weeks before its peak"
    assert {f["properties"]["name"] for f in warned} == want_c | want_g
    for f in warned:
        p = f["properties"]
        assert p["_color"] in WARNING_COLORS.values()
        assert p["label"] in {f"{zh} {en}" for zh, en in WARNING_KINDS.values()}
        assert "预计" in p["why"] and "Expected" in p["why"] and p["expected"] in p["why"]
    assert remote_references(html) == []


def test_refuses_what_it_cannot_map(sample_data):
    with pytest.raises(AnalyticsError, match="nothing to map"):
        forecast_map(sample_data["incidents"], levels=("community",))
    with pytest.raises(AnalyticsError, match="model"):
        forecast_map(sample_data["incidents"], model="prophet")


def test_forecast_map_offline_in_browser(browser, sample_data, tmp_path):
    from browserkit import OfflinePage

    path = tmp_path / "warnings.html"
    save_map(forecast_map(sample_data["incidents"], communities=sample_data["communities"]), path)
    p = OfflinePage(browser, allow=()).goto(path.as_uri(), ".leaflet-control-layers", pause=300)
    try:
        p.assert_clean()
        overlays = p.texts(".leaflet-control-layers-overlays label")
        assert any("社区预警" in t for t in overlays) and any("网格预警" in t for t in overlays)
    finally:
        p.close()
