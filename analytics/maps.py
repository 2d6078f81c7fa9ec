"""Static folium maps: the seven layers, hot spots and community choropleths.

Functions
---------
layers_map
    The seven thematic layers as toggleable overlays, styled from the layer catalogue.
hotspot_map
    Gi* bins (red/blue), emerging hot spot categories and a kernel-density heat layer.
choropleth_map
    Communities shaded by case density, completion rate and overdue share.
community_measures
    The figures behind :func:`choropleth_map` (from :mod:`layers.supervision`).
save_map
    Write a map as one HTML file (Leaflet inlined by default: works offline).

Everything is derived from :mod:`layers.catalogue`: overlay names (zh-CN / en), colours by
each layer's ``style.by`` code list, popup field titles and code labels. Sensitive fields
never reach a map (only :attr:`~layers.catalogue.Layer.public_fields` are read), and the
non-public poverty-relief layer is drawn as counts per community unless ``restricted=True``.

Large layers stay light: above ``max_points`` features a layer is aggregated into square
cells (coloured by the dominant code, popups with the breakdown); the features that need
attention (open overdue incidents, damaged or missing fixtures) stay individual up to
``max_points``.

Base maps (:mod:`analytics.basemaps`): OpenStreetMap by default, 天地图 (CGCS2000) and 高德
(GCJ-02). On a GCJ-02 base map every overlay is converted to GCJ-02 first.

This module builds HTML strings; it never imports a web framework.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.plugins import Fullscreen
from jinja2 import Template

from analytics.basemaps import BaseMap, basemap, to_gcj02, wgs_to_gcj
from analytics.basemaps import bilingual as _title
from analytics.errors import AnalyticsError
from analytics.hotcells import GI_BINS, significant_cells
from analytics.mapassets import finish
from layers import supervision
from layers.catalogue import LAYERS, THEMATIC, Layer
from layers.district import TZ_NAME as TZ
from layers.district import UTM

__all__ = [
    "GI_BINS",
    "EMERGING_COLORS",
    "MEASURES",
    "MapFile",
    "POPUP_FIELDS",
    "choropleth_map",
    "community_measures",
    "hotspot_map",
    "layers_map",
    "render_html",
    "save_map",
]

#: Colour of community outlines drawn under other overlays.
_OUTLINE = "#546e7a"
#: Centre of the district (lat, lon) for the initial view.
CENTRE = (18.33, 109.42)

#: The fields a planner needs in each layer's popup (always filtered by ``public_fields``).
POPUP_FIELDS: dict[str, tuple[str, ...]] = {
    "incidents": (
        "case_no",
        "title",
        "category",
        "channel",
        "status",
        "priority",
        "department",
        "community_code",
        "reported_at",
        "deadline",
    ),
    "party_building": ("name", "org_type", "members", "address"),
    "flood_prevention": (
        "name",
        "facility_type",
        "capacity",
        "threatened_people",
        "response_level",
        "inspected_at",
    ),
    "rivers": ("name", "river_name", "chief_level", "water_quality", "length_m", "last_patrol_at"),
    "poverty_relief": (
        "household_code",
        "household_size",
        "attribute",
        "monitoring_type",
        "community_code",
    ),
    "building_population": ("name", "use", "floors", "households", "resident_pop", "floating_pop"),
    "urban_fixtures": ("component_code", "name", "subclass", "state", "responsible_dept"),
}

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
_HOT = ("#b2182b", "#d6604d", "#67001f", "#e31a1c", "#f4a582", "#fd8d3c", "#fdae61", "#fee090")
_COLD = ("#2166ac", "#4393c3", "#053061", "#1f78b4", "#92c5de", "#6baed6", "#abd9e9", "#e0f3f8")
#: Emerging hot spot category → colour (Esri's 17, "No Pattern Detected" not drawn).
EMERGING_COLORS = {
    **{f"{k} Hot Spot": c for k, c in zip(_EMERGING_ZH, _HOT, strict=True)},
    **{f"{k} Cold Spot": c for k, c in zip(_EMERGING_ZH, _COLD, strict=True)},
}

#: Choropleth measures: column → (zh, en, format, colour ramp low → high).
MEASURES = {
    "case_density": (
        "案件密度(件/平方公里)",
        "Case density (cases/km²)",
        "{:.1f}",
        ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"),
    ),
    "completion_rate": (
        "办结率",
        "Completion rate",
        "{:.1%}",
        ("#f7fcf5", "#c7e9c0", "#74c476", "#238b45", "#00441b"),
    ),
    "overdue_share": (
        "超期占比",
        "Overdue share",
        "{:.1%}",
        ("#fff5f0", "#fcbba1", "#fb6a4a", "#cb181d", "#67000d"),
    ),
}


def _layer_title(layer: Layer, lang: str) -> str:
    return _title(layer.zh, layer.en, lang)


# --- Legend and title ---------------------------------------------------------------------------

_LEGEND = Template("""
{% macro html(this, kwargs) %}
<div class="tianya-legend" style="position:absolute;z-index:1000;bottom:28px;right:10px;
 max-height:60vh;overflow-y:auto;background:rgba(255,255,255,.92);padding:6px 10px;
 font:12px/1.35 'Noto Sans CJK SC','Microsoft YaHei',sans-serif;border-radius:4px;
 box-shadow:0 1px 4px rgba(0,0,0,.3)">
{% for group, items in this.groups %}
 <div class="tianya-legend-group" style="font-weight:bold;margin-top:4px">{{ group|e }}</div>
 {% for label, color, shape in items %}
 <div class="tianya-legend-item"><i style="display:inline-block;width:12px;height:12px;
  margin-right:5px;vertical-align:-2px;background:{{ color }};border:1px solid #555;
  {% if shape == 'circle' %}border-radius:50%{% elif shape == 'line' %}height:3px;
  vertical-align:3px;border:0{% endif %}"></i>{{ label|e }}</div>
 {% endfor %}
{% endfor %}
{% if this.note %}<div style="margin-top:4px;color:#666;max-width:240px">{{ this.note|e }}</div>
{% endif %}
</div>
<div class="tianya-title" style="position:absolute;z-index:1000;top:10px;left:55px;
 background:rgba(255,255,255,.9);padding:4px 10px;border-radius:4px;
 font:bold 15px 'Noto Sans CJK SC','Microsoft YaHei',sans-serif">{{ this.title|e }}</div>
{% endmacro %}
""")


class Legend(MacroElement):
    """Legend box (groups of colour swatches) and title, drawn on top of the map.

    Parameters
    ----------
    title : str
        Map title.
    groups : list of (str, list of (label, colour, shape))
        ``shape`` is ``"circle"``, ``"square"`` or ``"line"``.
    note : str, optional
        Small print under the legend (data source, base-map datum).
    """

    _template = _LEGEND

    def __init__(self, title: str, groups, note: str = ""):
        super().__init__()
        self._name = "TianyaLegend"
        self.title = title
        self.groups = groups
        self.note = note

    def render(self, **kwargs):
        figure = cast(folium.Figure, self.get_root())
        figure.html.add_child(folium.Element(self._template.module.html(self, kwargs)))


# --- Frames -------------------------------------------------------------------------------------


def _frames(source, ids) -> dict[str, gpd.GeoDataFrame]:
    """Frames by layer id from a dict of frames, a store, or a store location."""
    if isinstance(source, dict):
        return {i: source[i] for i in ids if i in source}
    from layers.store import Store
    from layers.stores import open_store

    store = source if isinstance(source, Store) else open_store(source)
    return {i: store.read_frame(LAYERS[i]) for i in ids if store.has_layer(LAYERS[i])}


def _to_wgs(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        return frame.to_crs(4326)
    return frame


def _display(layer: Layer, frame: pd.DataFrame, fields, lang: str) -> pd.DataFrame:
    """Popup values: code labels in ``lang``, Beijing-time datetimes, no NaN."""
    out = pd.DataFrame(index=frame.index)
    for name in fields:
        f = layer.field_map[name]
        s = frame[name]
        if f.codes:
            labels = {c.code: (c.zh if not lang.startswith("en") else c.en) for c in f.codes}
            out[name] = s.map(lambda v, lab=labels: lab.get(v, v)).astype(object)
        elif f.type == "datetime":
            t = pd.to_datetime(s, utc=True, format="ISO8601").dt.tz_convert(TZ)
            out[name] = t.dt.strftime("%Y-%m-%d %H:%M").astype(object)
        elif f.type == "number":
            out[name] = pd.to_numeric(s, errors="coerce").round(1).astype(object)
        else:
            out[name] = s.astype(object)
        out[name] = out[name].where(out[name].notna(), "")
    return out


def _colors(layer: Layer, frame: pd.DataFrame) -> np.ndarray:
    by = layer.style.by
    if by is None or by not in frame:
        return np.full(len(frame), layer.style.color, dtype=object)
    palette = {c.code: c.color or layer.style.color for c in layer.field(by).codes or ()}
    return frame[by].map(palette).fillna(layer.style.color).to_numpy(dtype=object)


def _legend_items(layer: Layer, frame: pd.DataFrame, lang: str, shape: str):
    by = layer.style.by
    if by is None or by not in frame:
        return [(_layer_title(layer, lang), layer.style.color, shape)]
    present = set(frame[by].dropna().unique().tolist())
    return [
        (_title(c.zh, c.en, lang), c.color or layer.style.color, shape)
        for c in layer.field(by).codes or ()
        if c.code in present
    ]


def _shape(layer: Layer) -> str:
    return {"Point": "circle", "LineString": "line", "MultiLineString": "line"}.get(
        layer.geometry_type or "", "square"
    )


def _gj(frame: gpd.GeoDataFrame, **kw) -> folium.GeoJson:
    """A folium GeoJson of ``frame`` with coordinates rounded to 1e-5° (~1 m): half the bytes."""
    out = frame.copy()
    out[out.geometry.name] = shapely.transform(
        frame.geometry.to_numpy(), lambda xy: np.round(xy, 5)
    )
    return folium.GeoJson(out, **kw)


# --- Overlays -----------------------------------------------------------------------------------


def _popup(fields, aliases) -> folium.GeoJsonPopup:
    return folium.GeoJsonPopup(
        fields=list(fields), aliases=list(aliases), localize=False, labels=True, max_width=360
    )


def _feature_layer(layer: Layer, frame: gpd.GeoDataFrame, lang: str, name: str):
    """A GeoJson overlay of individual features with catalogue colours and popups."""
    fields = [
        f
        for f in POPUP_FIELDS.get(layer.id, layer.public_fields)
        if f in layer.public_fields and f in frame
    ]
    props = _display(layer, frame, fields, lang)
    props["_color"] = _colors(layer, frame)
    gj = gpd.GeoDataFrame(props, geometry=frame.geometry.to_numpy(), crs=4326)
    gj = gj.reset_index(drop=True)
    gj["_fid"] = np.arange(len(gj)).astype(str)
    aliases = [_title(layer.field_map[f].zh, layer.field_map[f].en, lang) for f in fields]
    kind = _shape(layer)
    if kind == "circle":

        def style(feat):
            c = feat["properties"]["_color"]
            return {"color": "#333333", "weight": 1, "fillColor": c, "fillOpacity": 0.9}

        marker = folium.CircleMarker(radius=5)
    elif kind == "line":

        def style(feat):
            return {"color": feat["properties"]["_color"], "weight": 4, "opacity": 0.9}

        marker = None
    else:

        def style(feat):
            c = feat["properties"]["_color"]
            return {"color": c, "weight": 1, "fillColor": c, "fillOpacity": 0.6}

        marker = None
    return _gj(
        gj,
        name=name,
        style_function=style,
        marker=marker,
        popup=_popup(fields, aliases) if fields else None,
        embed=True,
        zoom_on_click=False,
        highlight_function=None,
    )


def _cells(layer: Layer, frame: gpd.GeoDataFrame, cell_m: float, lang: str):
    """Square cells (``cell_m`` metres, UTM 49N) with count, dominant code and breakdown."""
    xy = shapely.get_coordinates(frame.to_crs(UTM).geometry.centroid.to_numpy())
    ix = np.floor(xy[:, 0] / cell_m).astype(np.int64)
    iy = np.floor(xy[:, 1] / cell_m).astype(np.int64)
    by = layer.style.by
    codes = (
        frame[by].astype(object).fillna("").to_numpy()
        if by in frame
        else np.full(len(frame), "", dtype=object)
    )
    df = pd.DataFrame({"ix": ix, "iy": iy, "code": codes})
    counts = df.groupby(["ix", "iy", "code"]).size().rename("n").reset_index()
    counts = counts.sort_values(["ix", "iy", "n"], ascending=[True, True, False])
    field = layer.field_map.get(by) if by else None
    palette = {c.code: c.color for c in (field.codes or ())} if field else {}
    rows = []
    for (cx, cy), g in counts.groupby(["ix", "iy"], sort=False):
        parts = [
            f"{field.label(c, lang) if field else c} {n}"
            for c, n in zip(g["code"].head(5), g["n"].head(5), strict=True)
        ]
        top = g["code"].iloc[0]
        rows.append(
            (cx, cy, int(g["n"].sum()), "、".join(parts), palette.get(top) or layer.style.color)
        )
    cells = pd.DataFrame(rows, columns=["ix", "iy", "count", "breakdown", "_color"])
    geoms = shapely.box(
        cells["ix"] * cell_m,
        cells["iy"] * cell_m,
        (cells["ix"] + 1) * cell_m,
        (cells["iy"] + 1) * cell_m,
    )
    out = gpd.GeoDataFrame(cells[["count", "breakdown", "_color"]], geometry=geoms, crs=UTM)
    return out.to_crs(4326)


def _cell_layer(cells: gpd.GeoDataFrame, lang: str, name: str, opacity=(0.25, 0.85)):
    top = max(int(cells["count"].max()), 1) if len(cells) else 1
    lo, hi = opacity

    def style(feat):
        n = feat["properties"]["count"]
        op = lo + (hi - lo) * math.log1p(n) / math.log1p(top)
        return {
            "color": feat["properties"]["_color"],
            "weight": 0.5,
            "fillColor": feat["properties"]["_color"],
            "fillOpacity": round(op, 2),
        }

    return _gj(
        cells,
        name=name,
        style_function=style,
        popup=_popup(
            ["count", "breakdown"],
            [_title("数量", "Count", lang), _title("构成", "Breakdown", lang)],
        ),
        zoom_on_click=False,
    )


def _attention(layer: Layer, frame: gpd.GeoDataFrame, now) -> np.ndarray:
    """Rows drawn individually even when the layer is aggregated."""
    if layer.id == "incidents" and "deadline" in frame:
        return supervision.case_flags(frame, now)["overdue"].to_numpy()
    if layer.id == "urban_fixtures" and "state" in frame:
        return (frame["state"] != "intact").to_numpy()
    return np.zeros(len(frame), dtype=bool)


def _community_counts(
    frame: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, layer: Layer, lang: str
) -> gpd.GeoDataFrame:
    """Counts per community (for restricted layers shown to everyone)."""
    field = layer.field(layer.style.by) if layer.style.by else None
    rows = []
    for code, g in frame.groupby("community_code"):
        parts = []
        if field is not None:
            for c, n in g[field.name].value_counts().items():
                parts.append(f"{field.label(c, lang)} {n}")
        rows.append((code, len(g), "、".join(parts)))
    counts = pd.DataFrame(rows, columns=["code", "count", "breakdown"])
    out = communities[["code", "name", "geometry"]].merge(counts, on="code", how="inner")
    out["_color"] = layer.style.color
    return out[["name", "count", "breakdown", "_color", "geometry"]]


# --- Map scaffolding ----------------------------------------------------------------------------


def _base(
    bm: BaseMap,
    lang: str,
    title: str,
    tiles: Mapping[str, str] | None,
    keys: Mapping[str, str] | None,
) -> folium.Map:
    url, labels = bm.tiles(tiles, keys)
    m = folium.Map(
        location=list(CENTRE), zoom_start=11, tiles=None, control_scale=True, prefer_canvas=True
    )
    folium.TileLayer(
        url,
        attr=bm.attribution,
        name=bm.title(lang),
        overlay=False,
        control=True,
        subdomains=bm.subdomains,
        max_zoom=bm.max_zoom,
    ).add_to(m)
    if labels:
        folium.TileLayer(
            labels,
            attr=bm.attribution,
            name=_title("注记", "Labels", lang),
            overlay=True,
            control=False,
            subdomains=bm.subdomains,
            max_zoom=bm.max_zoom,
        ).add_to(m)
    Fullscreen(
        position="topleft",
        title=_title("全屏", "Full screen", lang),
        title_cancel=_title("退出全屏", "Exit full screen", lang),
    ).add_to(m)
    cast(folium.Figure, m.get_root()).header.add_child(
        folium.Element(
            f"<title>{html.escape(title)}</title>"
            '<meta charset="utf-8"><style>.leaflet-popup-content{font-family:'
            "'Noto Sans CJK SC','Microsoft YaHei',sans-serif}</style>"
        )
    )
    return m


def _prepare(frame: gpd.GeoDataFrame, bm: BaseMap) -> gpd.GeoDataFrame:
    frame = _to_wgs(frame)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    return to_gcj02(frame) if bm.gcj02 else frame


def _note(bm: BaseMap, lang: str) -> str:
    datum = (
        _title("叠加图层已转换为GCJ-02坐标", "overlays converted to GCJ-02", lang)
        if bm.gcj02
        else _title("坐标系", "coordinates", lang) + " WGS84/CGCS2000"
    )
    return f"{bm.title(lang)} · {datum} · " + _title(
        "样例数据为模拟数据", "synthetic sample data", lang
    )


def _finish(m: folium.Map, title: str, groups, bm: BaseMap, lang: str, bounds=None):
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m.add_child(Legend(title, groups, _note(bm, lang)))
    if bounds is not None and np.all(np.isfinite(bounds)):
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m


# --- Public maps --------------------------------------------------------------------------------


def layers_map(
    source=None,
    *,
    layers=THEMATIC,
    lang: str = "both",
    basemap_id: str = "osm",
    max_points: int = 2000,
    cell_m: float = 300.0,
    restricted: bool = False,
    now=None,
    tiles: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
) -> folium.Map:
    """The thematic layers as toggleable overlays.

    Parameters
    ----------
    source : dict of GeoDataFrame, Store or str, optional
        Frames by layer id (as :func:`geodata.sample.generate` returns), a store, or a store
        location (default: :func:`layers.stores.open_store`'s).
    layers : sequence of str
        Layer ids, in overlay order (default the seven thematic layers).
    lang : {"both", "zh", "en"}
        Language of overlay names, legend and popups.
    basemap_id : str
        One of :data:`analytics.basemaps.BASEMAPS`.
    max_points : int, default 2000
        Above this a layer is aggregated into ``cell_m`` cells (see the module docstring).
    cell_m : float, default 300
        Aggregation cell size in metres.
    restricted : bool, default False
        Draw non-public layers (poverty relief) as individual features; otherwise they are
        counts per community. Sensitive fields are never drawn either way.
    now : datetime-like, optional
        Reference instant for "overdue" (default: latest timestamp in the incidents).
    tiles : mapping of str to str, optional
        Tile URL templates by base map id, replacing the defaults (the settings
        ``TIANYA_TILES_<ID>``; see :mod:`analytics.basemaps`).
    keys : mapping of str to str, optional
        Base map keys by id: ``"tianditu"`` (``TIANYA_TIANDITU_KEY``), ``"amap"``
        (``TIANYA_AMAP_KEY``). A base map that needs a missing key is refused.

    Returns
    -------
    folium.Map
    """
    bm = basemap(basemap_id)
    unknown = [i for i in layers if i not in LAYERS or not LAYERS[i].geometry_type]
    if unknown:
        raise AnalyticsError(
            f"not map layers: {', '.join(unknown)}; choose from {', '.join(THEMATIC)}"
        )
    need = list(dict.fromkeys([*layers, "communities"]))
    frames = _frames(source, need)
    title = _title("天涯区联合指挥中心 专题图层", "Tianya command center: thematic layers", lang)
    m = _base(bm, lang, title, tiles, keys)
    groups = []
    total = None
    communities = _prepare(frames["communities"], bm) if "communities" in frames else None
    if communities is not None:
        fg = folium.FeatureGroup(name=_layer_title(LAYERS["communities"], lang), show=True)
        _gj(
            communities[["name", "geometry"]],
            style_function=lambda f: {
                "color": _OUTLINE,
                "weight": 1,
                "fill": False,
                "dashArray": "4 3",
            },
            tooltip=folium.GeoJsonTooltip(["name"], labels=False),
        ).add_to(fg)
        fg.add_to(m)
        total = communities.total_bounds
    for lid in layers:
        if lid not in frames:
            continue
        layer = LAYERS[lid]
        frame = _prepare(frames[lid], bm)
        name = _layer_title(layer, lang)
        fg = folium.FeatureGroup(name=name, show=True)
        if not layer.public and not restricted:
            if communities is None:
                continue
            counts = _community_counts(frame, communities, layer, lang)
            _cell_layer(counts, lang, name, opacity=(0.05, 0.45)).add_to(fg)
            groups.append(
                (
                    name + _title("（按社区汇总）", " (per community)", lang),
                    [(_title("户数", "households", lang), layer.style.color, "square")],
                )
            )
            fg.add_to(m)
            continue
        if len(frame) > max_points:
            flag = _attention(layer, frame, now)
            _cell_layer(_cells(layer, frame, cell_m, lang), lang, name).add_to(fg)
            if flag.any():
                keep = frame[flag]
                keep = keep.iloc[-max_points:]
                _feature_layer(layer, keep, lang, name).add_to(fg)
            label = name + _title(f"（{cell_m:g}米网格汇总）", f" ({cell_m:g} m cells)", lang)
        else:
            _feature_layer(layer, frame, lang, name).add_to(fg)
            label = name
        fg.add_to(m)
        groups.append((label, _legend_items(layer, frame, lang, _shape(layer))))
        if total is None and len(frame):
            total = frame.total_bounds
    return _finish(m, title, groups, bm, lang, total)


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
    rgba = colormaps["YlOrRd"](norm)
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
    basemap_id: str = "osm",
    lang: str = "both",
    emerging: bool = True,
    kde: bool = True,
    time_step: str = "7D",
    tiles: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
) -> folium.Map:
    """Hot spot map: Gi* bins, emerging hot spot categories and a KDE heat layer.

    Parameters
    ----------
    incidents : GeoDataFrame
        Incident points (``reported_at`` needed for the emerging analysis).
    communities : GeoDataFrame, optional
        Community polygons drawn as outlines.
    cell_size : float, default 500
        Fishnet cell in metres for Gi* (:func:`analytics.ohsa.optimized_hot_spots`) and, doubled,
        for the emerging analysis.
    basemap_id, lang, tiles, keys
        As :func:`layers_map`.
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
    pts = _to_wgs(incidents)
    pts = pts[pts.geometry.notna() & ~pts.geometry.is_empty]
    title = _title("事件热点分析", "Incident hot spots", lang)
    m = _base(bm, lang, title, tiles, keys)
    groups = []
    notes = []
    if communities is not None:
        comm = _prepare(communities, bm)
        fg = folium.FeatureGroup(name=_layer_title(LAYERS["communities"], lang))
        _gj(
            comm[["name", "geometry"]],
            style_function=lambda f: {"color": _OUTLINE, "weight": 1, "fill": False},
            tooltip=folium.GeoJsonTooltip(["name"], labels=False),
        ).add_to(fg)
        fg.add_to(m)
    if kde:
        name = _title("核密度热力", "Kernel density heat", lang)
        img, _ = _kde_overlay(pts, bm, name)
        img.add_to(m)
        groups.append(
            (
                name,
                [
                    (_title("低", "low", lang), "#ffffb2", "square"),
                    (_title("高", "high", lang), "#bd0026", "square"),
                ],
            )
        )
    with _quiet():
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
    _gj(
        gi,
        style_function=lambda f: {
            "color": f["properties"]["_color"],
            "weight": 0.5,
            "fillColor": f["properties"]["_color"],
            "fillOpacity": 0.7,
        },
        popup=_popup(
            ["label", "count", "gi_z"],
            [_title("分类", "Class", lang), _title("数量", "Count", lang), "Gi* z"],
        ),
    ).add_to(fg)
    fg.add_to(m)
    groups.append(
        (name, [(_title(zh, en, lang), c, "square") for b, (zh, en, c) in GI_BINS.items()])
    )
    notes.append(f"Gi*: {cell_size:g} m, FDR, band {ohsa.distance_band:.0f} m")
    if emerging:
        try:
            with _quiet():
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
                    "_color": cats.map(EMERGING_COLORS).fillna("#999999").to_numpy(),
                },
                geometry=loc.geometry.to_numpy(),
                crs=4326,
            )
            name = _title("时空热点(新兴热点)", "Emerging hot spots", lang)
            fg = folium.FeatureGroup(name=name, show=False)
            if len(eh):
                _gj(
                    eh,
                    style_function=lambda f: {
                        "color": f["properties"]["_color"],
                        "weight": 1,
                        "fillColor": f["properties"]["_color"],
                        "fillOpacity": 0.65,
                    },
                    popup=_popup(
                        ["label", "total"],
                        [_title("分类", "Category", lang), _title("总数", "Total", lang)],
                    ),
                ).add_to(fg)
            fg.add_to(m)
            present = [c for c in EMERGING_COLORS if c in set(cats)]
            groups.append(
                (
                    name,
                    [(_emerging_label(c, lang), EMERGING_COLORS[c], "square") for c in present]
                    or [(_title("无显著模式", "No pattern detected", lang), "#ffffff", "square")],
                )
            )
    m = _finish(m, title, groups, bm, lang, _prepare(pts, bm).total_bounds)
    m.get_root().html.add_child(
        folium.Element(
            '<div class="tianya-notes" style="display:none">'
            + html.escape("; ".join(notes))
            + "</div>"
        )
    )
    return m


def _emerging_label(category: str, lang: str) -> str:
    kind, _, rest = category.partition(" ")
    zh = _EMERGING_ZH.get(kind, kind) + ("热点" if rest.startswith("Hot") else "冷点")
    return _title(zh, category, lang)


class _quiet:
    """Silence the UserWarnings analytics emits about reprojection inside map building."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", UserWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


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
    data = community_measures(incidents, _to_wgs(communities), now)
    data = _prepare(data, bm)
    title = _title("社区案件专题图", "Cases by community", lang)
    m = _base(bm, lang, title, tiles, keys)
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
        colors = np.where(data[mkey].notna(), [ramp[min(j, len(ramp) - 1)] for j in idx], "#cccccc")
        gj = gpd.GeoDataFrame(
            {**shown, "_color": colors}, geometry=data.geometry.to_numpy(), crs=4326
        )
        fg = folium.FeatureGroup(name=name, overlay=True, show=i == 0)
        _gj(
            gj,
            style_function=lambda f: {
                "color": "#555555",
                "weight": 1,
                "fillColor": f["properties"]["_color"],
                "fillOpacity": 0.75,
            },
            popup=_popup(
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
    return _finish(m, title, groups, bm, lang, data.total_bounds)


# --- Output -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapFile:
    """A written map: ``path``, ``size`` in bytes, ``seconds`` spent rendering and writing."""

    path: str
    size: int
    seconds: float


def render_html(m: folium.Map, assets: str = "inline") -> str:
    """The map's HTML with its assets handled as :func:`analytics.mapassets.finish` says."""
    return finish(m.get_root().render(), assets)


def save_map(m: folium.Map, path, assets: str = "inline") -> MapFile:
    """Write ``m`` to ``path`` as one HTML file; returns its size.

    Parameters
    ----------
    m : folium.Map
    path : str or path-like
    assets : {"inline", "cdn"} or str
        See :mod:`analytics.mapassets`; ``inline`` (default) needs no internet for Leaflet.

    Returns
    -------
    MapFile
    """
    t0 = time.perf_counter()
    text = render_html(m, assets)
    data = text.encode("utf-8")
    with open(path, "wb") as fh:
        fh.write(data)
    return MapFile(str(path), len(data), time.perf_counter() - t0)
