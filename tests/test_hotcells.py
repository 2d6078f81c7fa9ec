"""One hot-cell summary (:mod:`analytics.hotcells`) behind the maps, the report and the screen."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics import maps
from analytics.errors import AnalyticsError
from analytics.hotcells import GI_BINS, gi_cells, significant_cells
from analytics.report import weekly_report
from analytics.screen import screen_summary


def _window(inc, days, end):
    t = pd.to_datetime(inc["reported_at"], utc=True)
    return inc[(t >= end - pd.Timedelta(days=days)) & (t < end)]


def test_screen_hotspots_are_the_summary(sample_data):
    inc = sample_data["incidents"]
    out = screen_summary(
        inc, sample_data["communities"], day="2026-11-20", now="2026-11-20T12:00:00Z"
    )
    end = pd.Timestamp("2026-11-20", tz="Asia/Shanghai").tz_convert("UTC") + pd.Timedelta(days=1)
    hot = significant_cells(gi_cells(_window(inc, 28, end)), "hot")
    props = [f["properties"] for f in out["hotspots"]["features"]]
    assert len(props) == len(hot) > 0
    assert props == [
        {"count": n, "gi_bin": b, "gi_z": z, "color": c}
        for n, b, z, c in zip(hot["count"], hot["gi_bin"], hot["gi_z"], hot["color"], strict=True)
    ]


def test_report_hotspots_are_the_summary_top(sample_data):
    inc = sample_data["incidents"]
    rep = weekly_report(inc, sample_data["communities"], "2026-W46", charts=False, top=3)
    end = pd.Timestamp(rep.figures["end"])
    snap_frame = _window(inc, 28, end)
    top = significant_cells(gi_cells(snap_frame), "hot", top=3)
    rows = rep.figures["hotspots"]
    assert [(r["count"], r["gi_z"], r["gi_bin"]) for r in rows] == list(
        zip(top["count"], top["gi_z"], top["gi_bin"], strict=True)
    )
    assert rows == sorted(rows, key=lambda r: (r["count"], r["gi_z"]), reverse=True)


def test_map_draws_every_significant_cell_in_its_bin_colour(sample_data):
    html = maps.render_html(
        maps.hotspot_map(sample_data["incidents"], kde=False, emerging=False, lang="en")
    )
    for b, (_, en, colour) in GI_BINS.items():
        if b:
            assert en in html and colour in html


def test_summary_choices_and_small_inputs():
    cells = pd.DataFrame({"count": [3, 8, 8], "gi_z": [-2.5, 1.7, 2.9], "gi_bin": [-2, 1, 3]})
    assert significant_cells(cells, "cold")["zh"].tolist() == ["冷点 95%置信度"]
    assert significant_cells(cells, top=1)["gi_bin"].tolist() == [3]  # tie on count: |z|
    with pytest.raises(AnalyticsError, match="hot, cold, significant"):
        significant_cells(cells, "warm")
    import geopandas as gpd
    import shapely

    few = gpd.GeoDataFrame(geometry=[shapely.Point(109.5, 18.3)] * 5, crs=4326)
    assert gi_cells(few) is None
    assert gi_cells(few, min_points=0) is None  # too few for the analysis: no cells, no error
