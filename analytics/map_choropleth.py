"""The community choropleth: communities shaded by case density, completion rate and overdue share.

:func:`community_measures` computes the figures (from :mod:`layers.supervision`),
:func:`choropleth_map` draws each :data:`MEASURES` entry as an overlay in quantile classes
of its ColorBrewer ramp (:mod:`analytics.palettes`). Re-exported by :mod:`analytics.maps`.
"""

from __future__ import annotations

from collections.abc import Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from analytics.basemaps import basemap
from analytics.basemaps import bilingual as _title
from analytics.errors import AnalyticsError
from analytics.map_parts import base_map, finish_map, geojson, popup, prepare, to_wgs
from analytics.palettes import CHOROPLETH_EDGE, GREENS_5, NO_DATA, ORANGES_5, REDS_5
from layers import supervision
from layers.district import UTM

__all__ = ["MEASURES", "choropleth_map", "community_measures"]

#: Choropleth measures: column → (zh, en, format, colour ramp low → high).
MEASURES = {
    "case_density": (
        "案件密度(件/平方公里)",
        "Case density (cases/km²)",
        "{:.1f}",
        ORANGES_5,
    ),
    "completion_rate": (
        "办结率",
        "Completion rate",
        "{:.1%}",
        GREENS_5,
    ),
    "overdue_share": (
        "超期占比",
        "Overdue share",
        "{:.1%}",
        REDS_5,
    ),
}


def community_measures(
    incidents: pd.DataFrame, communities: gpd.GeoDataFrame, now=None
) -> gpd.GeoDataFrame:
    """Communities with ``cases``, ``case_density``, ``completion_rate`` and ``overdue_share``.

    Parameters
    ----------
    incidents : DataFrame
        Incident rows (``community_code`` and the supervision columns).
    communities : GeoDataFrame
        Community polygons (``code``, ``name``, ``area_km2``).
    now : datetime-like, optional
        Reference instant for "overdue" (see :func:`layers.supervision.figures`).

    Returns
    -------
    GeoDataFrame
        ``case_density`` = cases / km²; ``completion_rate`` from
        :func:`layers.supervision.figures`; ``overdue_share`` = overdue / cases.
    """
    fig = supervision.figures(incidents, by="community", now=now)
    out = communities[["code", "name", "area_km2", "geometry"]].copy()
    out = out.merge(
        fig[["cases", "completed", "overdue", "completion_rate"]],
        left_on="code",
        right_index=True,
        how="left",
    )
    out[["cases", "completed", "overdue"]] = out[["cases", "completed", "overdue"]].fillna(0)
    area = out["area_km2"].where(out["area_km2"] > 0)
    if area.isna().any():
        area = area.fillna(out.to_crs(UTM).area / 1e6)
    out["case_density"] = out["cases"] / area
    out["overdue_share"] = (out["overdue"] / out["cases"]).where(out["cases"] > 0)
    return out


def _classes(values: pd.Series, k: int = 5) -> np.ndarray:
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return np.zeros(k + 1)
    return np.unique(np.quantile(v, np.linspace(0, 1, k + 1)))


def choropleth_map(
    incidents: pd.DataFrame,
    communities: gpd.GeoDataFrame,
    *,
    now=None,
    basemap_id: str = "osm",
    lang: str = "both",
    measures=tuple(MEASURES),
    tiles: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
) -> folium.Map:
    """Communities shaded by case density, completion rate and overdue share.

    Each measure is one overlay (the first shown), in quantile classes with a legend of the
    class breaks; popups show every measure.

    Parameters
    ----------
    incidents : DataFrame
    communities : GeoDataFrame
    now : datetime-like, optional
    basemap_id, lang, tiles, keys
        As :func:`layers_map`.
    measures : sequence of str
        Keys of :data:`MEASURES`.

    Returns
    -------
    folium.Map
    """
    bm = basemap(basemap_id)
    for mkey in measures:
        if mkey not in MEASURES:
            raise AnalyticsError(
                f"{mkey!r} is not a measure, must be one of: {', '.join(MEASURES)}"
            )
    data = community_measures(incidents, to_wgs(communities), now)
    data = prepare(data, bm)
    title = _title("社区案件专题图", "Cases by community", lang)
    m = base_map(bm, lang, title, tiles, keys)
    shown = {"name": data["name"].astype(str), "cases": data["cases"].astype(int)}
    for mkey, (_, _, fmt, _) in MEASURES.items():
        shown[mkey] = [fmt.format(v) if pd.notna(v) else "—" for v in data[mkey]]
    groups = []
    for i, mkey in enumerate(measures):
        zh, en, fmt, ramp = MEASURES[mkey]
        name = _title(zh, en, lang)
        breaks = _classes(data[mkey])
        idx = np.clip(
            np.searchsorted(breaks, data[mkey].to_numpy(dtype=float), "right") - 1,
            0,
            max(len(breaks) - 2, 0),
        )
        colors = np.where(data[mkey].notna(), [ramp[min(j, len(ramp) - 1)] for j in idx], NO_DATA)
        gj = gpd.GeoDataFrame(
            {**shown, "_color": colors}, geometry=data.geometry.to_numpy(), crs=4326
        )
        fg = folium.FeatureGroup(name=name, overlay=True, show=i == 0)
        geojson(
            gj,
            style_function=lambda f: {
                "color": CHOROPLETH_EDGE,
                "weight": 1,
                "fillColor": f["properties"]["_color"],
                "fillOpacity": 0.75,
            },
            popup=popup(
                ["name", "cases", *MEASURES],
                [
                    _title("社区(村)", "Community", lang),
                    _title("案件", "Cases", lang),
                    *[_title(v[0], v[1], lang) for v in MEASURES.values()],
                ],
            ),
            tooltip=folium.GeoJsonTooltip(["name"], labels=False),
        ).add_to(fg)
        fg.add_to(m)
        items = [
            (f"{fmt.format(lo)} – {fmt.format(hi)}", ramp[min(j, len(ramp) - 1)], "square")
            for j, (lo, hi) in enumerate(zip(breaks[:-1], breaks[1:], strict=True))
        ]
        groups.append((name, items))
    return finish_map(m, title, groups, bm, lang, data.total_bounds)
