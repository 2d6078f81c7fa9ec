"""The early warning map (预警地图): communities and grid cells that warn for the coming weeks.

Warnings come from :func:`analytics.early_warning.early_warnings` of a forecast
(:mod:`analytics.forecast`) made from the incidents given: communities (``community_code``,
drawn as their polygons) and fishnet cells (200 m by default), each coloured by the kind of
warning (:data:`analytics.palettes.WARNING_COLORS`), its popup the warning's explanation
(expected vs usual, the interval, the alarm level or Gi* z, what drove it). Re-exported by
:mod:`analytics.maps`; offline like the other maps (our base map embedded by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import folium
import geopandas as gpd
import pandas as pd

from analytics.basemaps import DEFAULT, basemap
from analytics.basemaps import bilingual as _title
from analytics.early_warning import KINDS, EarlyWarnings, early_warnings
from analytics.errors import AnalyticsError, check_choice
from analytics.forecast import MODELS, count_series, forecast
from analytics.map_parts import (
    base_map,
    colored_squares,
    community_layer,
    finish_map,
    legend_group,
    prepare,
    quiet,
    to_wgs,
)
from analytics.palettes import NO_PATTERN, WARNING_COLORS

__all__ = ["WARNING_KINDS", "forecast_map"]

#: warning kind -> (zh, en) legend label
WARNING_KINDS: dict[str, tuple[str, str]] = {
    "threshold": ("超出预警线", "Above its alarm level"),
    "new_hot_spot": ("预测新热点", "Forecast new hot spot"),
    "intensifying_hot_spot": ("预测加剧热点", "Forecast intensifying hot spot"),
}
_LEVELS = ("community", "cell")


def _reason(row, lang: str) -> str:
    if lang == "zh":
        return row["reason_zh"]
    if lang == "en":
        return row["reason"]
    return f"{row['reason_zh']} {row['reason']}"


def _warned(ew: EarlyWarnings, geoms: gpd.GeoDataFrame, lang: str) -> gpd.GeoDataFrame:
    """One feature per warned series (its most urgent warning), in WGS84, for the map."""
    first = ew.frame.drop_duplicates("key")  # the frame is most urgent first
    g = geoms.merge(first, on="key", how="inner")
    return gpd.GeoDataFrame(
        {
            "name": g["name"].astype(str),
            "label": [_title(*WARNING_KINDS[k], lang) for k in g["kind"]],
            "week": [pd.Timestamp(p).date().isoformat() for p in g["period"]],
            "expected": g["expected"].round(1).astype(str),
            "interval": [f"{lo:.1f} – {hi:.1f}" for lo, hi in zip(g["lo"], g["hi"], strict=True)],
            "usual": g["usual"].round(1).astype(str),
            "why": [_reason(r, lang) for _, r in g.iterrows()],
            "_color": g["kind"].map(WARNING_COLORS).to_numpy(),
        },
        geometry=g.geometry.to_numpy(),
        crs=geoms.crs,
    ).to_crs(4326)


def forecast_map(
    incidents: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    levels: Sequence[str] = _LEVELS,
    model: str = "ets",
    horizon: int = 1,
    origin=-1,
    cell_size: float = 200.0,
    basemap_id: str = DEFAULT,
    lang: str = "both",
    tiles: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
    base=None,
) -> folium.Map:
    """Map of the early warnings for the weeks after ``origin``.

    Parameters
    ----------
    incidents : GeoDataFrame
        Incident points with ``reported_at`` (and ``community_code`` for communities).
    communities : GeoDataFrame, optional
        Community polygons (``code``, ``name``); without them no community warnings are drawn.
    levels : sequence of {"community", "cell"}, default both
        Which series warn: communities and/or fishnet cells.
    model : {"seasonal_naive", "moving_average", "ets", "gbm"}, default "ets"
        The forecast warned from (ETS: see :mod:`analytics.early_warning`, "Which forecast").
    horizon : int, default 1
        Weeks ahead warned about.
    origin : int or date-like, default -1
        The last week treated as observed (as :func:`analytics.forecast.forecast`).
    cell_size : float, default 200
        Fishnet cell side in metres.
    basemap_id, lang, tiles, keys, base
        As :func:`analytics.map_hotspots.hotspot_map`.

    Returns
    -------
    folium.Map
    """
    check_choice(model, "model", MODELS)
    for level in levels:
        check_choice(level, "level", _LEVELS)
    bm = basemap(basemap_id)
    pts = to_wgs(incidents)
    pts = pts[pts.geometry.notna() & ~pts.geometry.is_empty]
    if not len(pts):
        raise AnalyticsError("there are no incidents to forecast (the selection is empty)")
    if base is None and communities is not None:
        base = {"communities": communities}
    groups, notes, week = [], [], None
    layers = []
    if "community" in levels and communities is not None:
        panel = count_series(pts, level="community")
        fc = forecast(panel, model=model, horizon=horizon, origin=origin)
        ew = early_warnings(panel, fc, horizon=horizon)
        geoms = communities.rename(columns={"code": "key"})[["key", "name", "geometry"]]
        layers.append((_title("社区预警", "Community warnings", lang), ew, geoms))
    if "cell" in levels:
        with quiet():
            panel = count_series(pts, level="cell", cell_size=cell_size)
        fc = forecast(panel, model=model, horizon=horizon, origin=origin)
        with quiet():
            ew = early_warnings(panel, fc, horizon=horizon)
        grid = panel.cells
        assert grid is not None  # a cell panel has its cells
        geoms = gpd.GeoDataFrame(
            {"key": panel.keys.to_numpy(), "name": [f"{cell_size:g} m #{k}" for k in panel.keys]},
            geometry=grid.geometry.to_numpy(),
            crs=grid.crs,
        )
        layers.append(
            (_title(f"{cell_size:g}米网格预警", f"{cell_size:g} m cell warnings", lang), ew, geoms)
        )
    if not layers:
        raise AnalyticsError(
            "nothing to map: levels must include 'cell', or 'community' with communities given"
        )
    for _, ew, _ in layers:
        week = str(pd.Timestamp(fc.frame["period"].min()).date())
        notes.append(f"{ew.series_level}: {len(ew.frame['key'].unique())} of {ew.checked} warn")
    title = _title(
        f"预警：{week} 起 {horizon} 周", f"Warnings: {horizon} week(s) from {week}", lang
    )
    m = base_map(bm, lang, title, tiles, keys, base=base)
    if communities is not None and not bm.embedded:
        community_layer(prepare(communities, bm), lang, dashed=False).add_to(m)
    for name, ew, geoms in layers:
        feats = prepare(_warned(ew, geoms, lang), bm)
        fg = folium.FeatureGroup(name=name)
        if len(feats):
            colored_squares(
                feats,
                ["name", "label", "week", "expected", "interval", "usual", "why"],
                [
                    _title("名称", "Name", lang),
                    _title("预警", "Warning", lang),
                    _title("预测周", "Week of", lang),
                    _title("预计件数", "Expected", lang),
                    _title(f"{round(ew.level * 100)}%区间", f"{ew.level:.0%} interval", lang),
                    _title("平时", "Usual", lang),
                    _title("说明", "Why", lang),
                ],
                weight=1.5,
                opacity=0.6,
            ).add_to(fg)
        fg.add_to(m)
        present = [k for k in KINDS if k in set(ew.frame["kind"])]
        items = [(_title(*WARNING_KINDS[k], lang), WARNING_COLORS[k], "square") for k in present]
        groups.append(
            legend_group(name, items, fg, _title("无预警", "No warning", lang), NO_PATTERN)
        )
    notes.append(f"model {model}, origin {fc.frame['origin'].iloc[0].date()}")
    return finish_map(m, title, groups, bm, lang, prepare(pts, bm).total_bounds, notes)
