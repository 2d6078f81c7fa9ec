"""The hot spot map: Gi* bins, emerging hot spot categories and a kernel-density heat layer.

Gi* cells come from :func:`analytics.hotcells.significant_cells` (the summary the report and
the screen show too), emerging categories from :func:`analytics.emerging.emerging_hot_spots`,
the heat layer from :func:`analytics.density.kernel_density`; colours from
:mod:`analytics.palettes`. Re-exported by :mod:`analytics.maps`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping

import folium
import geopandas as gpd
import numpy as np

from analytics.basemaps import DEFAULT, BaseMap, basemap, to_gcj02, wgs_to_gcj
from analytics.basemaps import bilingual as _title
from analytics.errors import AnalyticsError
from analytics.hotcells import GI_BINS, significant_cells
from analytics.map_parts import (
    PANE_OF,
    base_map,
    colored_squares,
    community_layer,
    finish_map,
    geojson,
    legend_group,
    popup,
    prepare,
    quiet,
    to_wgs,
)
from analytics.palettes import (
    EMERGING_COLORS,
    KDE_COLORMAP,
    KDE_HIGH,
    KDE_LOW,
    NO_PATTERN,
    UNCLASSIFIED,
)
from layers.district import UTM

__all__ = ["EMERGING_COLORS", "GI_BINS", "hotspot_map"]

_EMERGING_ZH = {
    "New": "新增",
    "Consecutive": "连续",
    "Intensifying": "加剧",
    "Persistent": "持续",
    "Diminishing": "减弱",
    "Sporadic": "零星",
    "Oscillating": "振荡",
    "Historical": "历史",
}


def _kde_overlay(points: gpd.GeoDataFrame, bm: BaseMap, name: str, bandwidth=None):
    """Kernel density (analytics.density) as a PNG image overlay in Web Mercator."""
    import rasterio
    from matplotlib import colormaps
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

    from analytics.density import kernel_density

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kde.tif")
        kde = kernel_density(points.to_crs(UTM), path, bandwidth=bandwidth)
        with rasterio.open(path) as src:
            dst_t, w, h = calculate_default_transform(
                src.crs, "EPSG:3857", src.width, src.height, *src.bounds
            )
            dst = np.zeros((h, w), dtype=np.float32)
            reproject(
                rasterio.band(src, 1),
                dst,
                dst_transform=dst_t,
                dst_crs="EPSG:3857",
                resampling=Resampling.bilinear,
            )
            left, top = dst_t.c, dst_t.f
            right, bottom = dst_t.c + dst_t.a * w, dst_t.f + dst_t.e * h
            west, south, east, north = transform_bounds(
                "EPSG:3857", "EPSG:4326", left, bottom, right, top
            )
    vmax = float(np.nanpercentile(dst[dst > 0], 99.5)) if (dst > 0).any() else 1.0
    norm = np.clip(dst / vmax, 0, 1)
    rgba = colormaps[KDE_COLORMAP](norm)
    rgba[..., 3] = np.where(norm > 0.02, 0.25 + 0.6 * norm, 0.0)
    if bm.gcj02:
        gx, gy = wgs_to_gcj([(west + east) / 2], [(south + north) / 2])
        dx, dy = gx[0] - (west + east) / 2, gy[0] - (south + north) / 2
        west, east, south, north = west + dx, east + dx, south + dy, north + dy
    img = folium.raster_layers.ImageOverlay(
        (rgba * 255).astype(np.uint8),
        bounds=[[south, west], [north, east]],
        name=name,
        mercator_project=False,
        interactive=False,
        zindex=2,
    )
    return img, kde


def hotspot_map(
    incidents: gpd.GeoDataFrame,
    *,
    communities: gpd.GeoDataFrame | None = None,
    cell_size: float = 500.0,
    basemap_id: str = DEFAULT,
    lang: str = "both",
    emerging: bool = True,
    kde: bool = True,
    time_step: str = "7D",
    tiles: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
    base=None,
) -> folium.Map:
    """Hot spot map: Gi* bins, emerging hot spot categories and a KDE heat layer.

    Parameters
    ----------
    incidents : GeoDataFrame
        Incident points (``reported_at`` needed for the emerging analysis).
    communities : GeoDataFrame, optional
        Community polygons: on the default base map they are drawn by it (with their names),
        on an online one as outlines with names.
    cell_size : float, default 500
        Fishnet cell in metres for Gi* (:func:`analytics.ohsa.optimized_hot_spots`) and, doubled,
        for the emerging analysis.
    basemap_id, lang, tiles, keys
        As :func:`analytics.map_layers.layers_map`: the default ``"tianya"`` is our own base
        map, embedded (no other host); ``"osm"``, ``"tianditu"``, ``"amap"``… are online.
    base : Store, str or dict of GeoDataFrame, optional
        What the ``tianya`` base map is drawn from (a store gives it rivers, grid cells and
        buildings too; default: the district, the sea and ``communities``; see
        :func:`analytics.map_basemap.base_frames`).
    emerging : bool, default True
        Add :func:`analytics.emerging.emerging_hot_spots` (skipped with a legend note when the
        data span fewer than 10 time steps).
    kde : bool, default True
        Add the :func:`analytics.density.kernel_density` heat layer.
    time_step : str, default "7D"
        Time step of the emerging analysis.

    Returns
    -------
    folium.Map
    """
    from analytics.emerging import emerging_hot_spots
    from analytics.ohsa import optimized_hot_spots

    bm = basemap(basemap_id)
    pts = to_wgs(incidents)
    pts = pts[pts.geometry.notna() & ~pts.geometry.is_empty]
    title = _title("事件热点分析", "Incident hot spots", lang)
    if base is None and communities is not None:
        base = {"communities": communities}
    m = base_map(bm, lang, title, tiles, keys, base=base)
    groups = []
    notes = []
    if communities is not None and not bm.embedded:
        community_layer(prepare(communities, bm), lang, dashed=False).add_to(m)
    if kde:
        name = _title("核密度热力", "Kernel density heat", lang)
        img, _ = _kde_overlay(pts, bm, name)
        img.add_to(m)
        groups.append(
            (
                name,
                [
                    (_title("低", "low", lang), KDE_LOW, "square"),
                    (_title("高", "high", lang), KDE_HIGH, "square"),
                ],
                img,
            )
        )
    with quiet():
        ohsa = optimized_hot_spots(pts.to_crs(UTM), cell_size=cell_size)
    cells = ohsa.cells.to_crs(4326)
    cells = to_gcj02(cells) if bm.gcj02 else cells
    sig = significant_cells(cells, "significant")
    gi = gpd.GeoDataFrame(
        {
            "count": sig["count"],
            "gi_z": sig["gi_z"],
            "gi_bin": sig["gi_bin"],
            "label": [_title(zh, en, lang) for zh, en in zip(sig["zh"], sig["en"], strict=True)],
            "_color": sig["color"],
        },
        geometry=sig.geometry.to_numpy(),
        crs=4326,
    )
    name = _title("Gi*热点冷点", "Gi* hot and cold spots", lang)
    fg = folium.FeatureGroup(name=name)
    geojson(
        gi,
        style_function=lambda f: {
            "color": f["properties"]["_color"],
            "weight": 0.5,
            "fillColor": f["properties"]["_color"],
            "fillOpacity": 0.7,
        },
        popup=popup(
            ["label", "count", "gi_z"],
            [_title("分类", "Class", lang), _title("数量", "Count", lang), "Gi* z"],
        ),
        pane=PANE_OF["square"],
    ).add_to(fg)
    fg.add_to(m)
    groups.append(
        (name, [(_title(zh, en, lang), c, "square") for b, (zh, en, c) in GI_BINS.items()], fg)
    )
    notes.append(f"Gi*: {cell_size:g} m, FDR, band {ohsa.distance_band:.0f} m")
    if emerging:
        try:
            with quiet():
                ehs = emerging_hot_spots(
                    pts.to_crs(UTM), "reported_at", cell_size=2 * cell_size, time_step=time_step
                )
        except AnalyticsError as err:
            notes.append(_title("未做时空热点分析：", "no emerging analysis: ", lang) + str(err))
        else:
            loc = ehs.locations
            loc = loc[loc["category"].astype(str) != "No Pattern Detected"].to_crs(4326)
            loc = to_gcj02(loc) if bm.gcj02 else loc
            cats = loc["category"].astype(str)
            eh = gpd.GeoDataFrame(
                {
                    "label": [_emerging_label(c, lang) for c in cats],
                    "total": loc["total"].astype(int),
                    "_color": cats.map(EMERGING_COLORS).fillna(UNCLASSIFIED).to_numpy(),
                },
                geometry=loc.geometry.to_numpy(),
                crs=4326,
            )
            name = _title("时空热点(新兴热点)", "Emerging hot spots", lang)
            fg = folium.FeatureGroup(name=name, show=False)
            if len(eh):
                colored_squares(
                    eh,
                    ["label", "total"],
                    [_title("分类", "Category", lang), _title("总数", "Total", lang)],
                    weight=1,
                    opacity=0.65,
                ).add_to(fg)
            fg.add_to(m)
            present = [c for c in EMERGING_COLORS if c in set(cats)]
            groups.append(
                legend_group(
                    name,
                    [(_emerging_label(c, lang), EMERGING_COLORS[c], "square") for c in present],
                    fg,
                    _title("无显著模式", "No pattern detected", lang),
                    NO_PATTERN,
                )
            )
    return finish_map(m, title, groups, bm, lang, prepare(pts, bm).total_bounds, notes)


def _emerging_label(category: str, lang: str) -> str:
    kind, _, rest = category.partition(" ")
    zh = _EMERGING_ZH.get(kind, kind) + ("热点" if rest.startswith("Hot") else "冷点")
    return _title(zh, category, lang)
