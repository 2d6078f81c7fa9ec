"""The community choropleth: communities shaded by case density, completion rate and overdue share.

:func:`community_measures` computes the figures (from :mod:`layers.supervision`),
:func:`choropleth_map` draws each :data:`MEASURES` entry as an overlay in up to five
classes of its ColorBrewer ramp (:mod:`analytics.palettes`). Re-exported by
:mod:`analytics.maps`.

Class breaks are Jenks natural breaks (:func:`natural_breaks`, Fisher's exact optimisation),
the default classification of ArcGIS and one of QGIS's graduated modes: the district has
a few dozen communities whose case densities and shares are skewed (many near zero, a few
high), and natural breaks put the class limits in the gaps of that distribution. Quantiles
(the previous choice) split tied values and lump the long tail into one class, so two
communities with the same rate could get different colours. When a measure has fewer
distinct values than classes, each value is a class of its own, and the ramp's colours are
spread over the classes there are (never only its lightest ones). The legend names the
method and each class's range and count of communities.
"""

from __future__ import annotations

from collections.abc import Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from analytics.basemaps import DEFAULT, basemap
from analytics.basemaps import bilingual as _title
from analytics.errors import AnalyticsError
from analytics.map_parts import (
    PANE_OF,
    base_map,
    community_layer,
    finish_map,
    geojson,
    popup,
    prepare,
    to_wgs,
)
from analytics.palettes import CHOROPLETH_EDGE, GREENS_5, NO_DATA, ORANGES_5, REDS_5
from layers import supervision
from layers.district import UTM

__all__ = ["MEASURES", "choropleth_map", "community_measures", "natural_breaks"]

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


def natural_breaks(values, k: int = 5) -> np.ndarray:
    """Jenks natural breaks: the upper limit of each of ``k`` classes.

    Fisher's (1958) exact dynamic programme: the grouping of the sorted values into ``k``
    contiguous classes with the least total within-class sum of squared deviations (what
    ArcGIS's *Natural Breaks (Jenks)* and QGIS's *Natural Breaks (Jenks)* approximate or
    compute). O(k·n²), meant for tens to a few thousand values (communities, not points).

    Parameters
    ----------
    values : array-like of float
        NaN are ignored.
    k : int, default 5
        Number of classes; fewer when there are fewer distinct values.

    Returns
    -------
    ndarray
        Increasing upper limits, one per class, the last being the maximum (empty when
        there are no values). A value belongs to the first class whose limit it does not
        exceed.

    Examples
    --------
    >>> natural_breaks([1, 2, 3, 10, 11, 12, 30], k=3).tolist()
    [3.0, 12.0, 30.0]
    >>> natural_breaks([0, 0, 0, 0.5], k=5).tolist()
    [0.0, 0.5]
    """
    v = np.sort(np.asarray(values, dtype=float))
    v = v[~np.isnan(v)]
    distinct = np.unique(v)
    if len(distinct) <= k:
        return distinct
    n = len(v)
    s1 = np.concatenate([[0.0], np.cumsum(v)])
    s2 = np.concatenate([[0.0], np.cumsum(v * v)])

    def ssd(i, j):  # sum of squared deviations of v[i:j] (vectorised over i)
        m = j - i
        return s2[j] - s2[i] - (s1[j] - s1[i]) ** 2 / m

    # cost[c, j]: best cost of v[:j] in c + 1 classes; start[c, j]: where its last class begins
    cost = np.full((k, n + 1), np.inf)
    start = np.zeros((k, n + 1), dtype=np.int64)
    j = np.arange(1, n + 1)
    cost[0, 1:] = ssd(np.zeros(n, dtype=np.int64), j)
    for c in range(1, k):
        for jj in range(c + 1, n + 1):
            i = np.arange(c, jj)
            total = cost[c - 1, i] + ssd(i, jj)
            best = int(np.argmin(total))
            cost[c, jj] = total[best]
            start[c, jj] = i[best]
    limits = []
    jj = n
    for c in range(k - 1, -1, -1):
        limits.append(v[jj - 1])
        jj = start[c, jj]
    return np.unique(limits)  # a tie split across two classes would repeat a limit


def _spread(ramp, k: int) -> list[str]:
    """``k`` colours spread over ``ramp`` from its lightest to its darkest."""
    if k <= 1:
        return [ramp[len(ramp) // 2]]
    return [ramp[int(round(i))] for i in np.linspace(0, len(ramp) - 1, k)]


def choropleth_map(
    incidents: pd.DataFrame,
    communities: gpd.GeoDataFrame,
    *,
    now=None,
    basemap_id: str = DEFAULT,
    lang: str = "both",
    measures=tuple(MEASURES),
    tiles: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
    base=None,
) -> folium.Map:
    """Communities shaded by case density, completion rate and overdue share.

    Each measure is one overlay (the first shown), in Jenks natural-breaks classes
    (:func:`natural_breaks`; the module docstring says why) with a legend of each class's
    range and number of communities; popups show every measure. The communities' names are
    the base map's labels, above the measures (on an online base map: an overlay of
    outlines and names of their own).

    Parameters
    ----------
    incidents : DataFrame
    communities : GeoDataFrame
    now : datetime-like, optional
    basemap_id, lang, tiles, keys
        As :func:`analytics.map_layers.layers_map`: the default ``"tianya"`` is our own base
        map, embedded (no other host); ``"osm"``, ``"tianditu"``, ``"amap"``… are online.
    base : Store, str or dict of GeoDataFrame, optional
        What the ``tianya`` base map is drawn from (default: the district, the sea and
        ``communities``; see :func:`analytics.map_basemap.base_frames`).
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
    base = {"communities": communities} if base is None else base
    m = base_map(bm, lang, title, tiles, keys, base=base)
    shown = {"name": data["name"].astype(str), "cases": data["cases"].astype(int)}
    for mkey, (_, _, fmt, _) in MEASURES.items():
        shown[mkey] = [fmt.format(v) if pd.notna(v) else "—" for v in data[mkey]]
    groups = []
    method = _title("自然断点(Jenks)分级", "natural breaks (Jenks)", lang)
    for i, mkey in enumerate(measures):
        zh, en, fmt, ramp = MEASURES[mkey]
        name = _title(zh, en, lang)
        values = data[mkey].to_numpy(dtype=float)
        limits = natural_breaks(values)
        k = len(limits)
        colors = _spread(ramp, k)
        has = ~np.isnan(values)
        idx = np.clip(np.searchsorted(limits, values, side="left"), 0, max(k - 1, 0))
        fill = np.array(
            [colors[j] if ok else NO_DATA for j, ok in zip(idx, has, strict=True)], dtype=object
        )
        gj = gpd.GeoDataFrame(
            {**shown, "_color": fill}, geometry=data.geometry.to_numpy(), crs=4326
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
            pane=PANE_OF["square"],
        ).add_to(fg)
        fg.add_to(m)
        items = []
        for j in range(k):
            members = values[has & (idx == j)]
            lo = members.min() if len(members) else limits[j]
            span = (
                fmt.format(lo) if lo == limits[j] else f"{fmt.format(lo)} – {fmt.format(limits[j])}"
            )
            items.append((f"{span} ({len(members)})", colors[j], "square"))
        if not has.all():
            items.append(
                (_title("无数据", "no data", lang) + f" ({int((~has).sum())})", NO_DATA, "square")
            )
        groups.append((f"{name} · {method}", items, fg))
    if not bm.embedded:  # on ours, the base map names the communities
        community_layer(data, lang, dashed=False).add_to(m)
    return finish_map(m, title, groups, bm, lang, data.total_bounds)
