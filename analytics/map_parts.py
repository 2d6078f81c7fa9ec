"""Shared folium building blocks of the maps: base map, legend, layer control, popups, output.

The three maps (:mod:`analytics.map_layers`, :mod:`analytics.map_hotspots`,
:mod:`analytics.map_choropleth`, all re-exported by :mod:`analytics.maps`) are assembled
from these: :func:`base_map` (our base map embedded by :mod:`analytics.map_basemap` — the
default — or an online one's tiles; labels, full screen, page title), :func:`finish_map`
(layer control, :class:`Legend` with the base map's datum note, initial view), :func:`popup`
and :func:`geojson` for overlays, :func:`display_values`, :func:`code_colors` and
:func:`legend_items` for catalogue-styled features, :func:`community_layer` (outlines and
permanent name labels), and :func:`render_html` / :func:`save_map` to write a map as one
HTML file.

Drawing order is fixed by Leaflet panes (:data:`PANES`), not by the order in which layers
happen to be switched on: the base map under everything, areas (cells, choropleth
polygons) at the bottom of the data, then community outlines, lines, and points on top, so
a click on a point always opens that point's popup; the base map's labels above the data
take no clicks (:data:`analytics.map_basemap.BASE_PANES`).
Each pane lets the mouse through where it draws nothing (SVG, ``pointer-events: none`` on
the pane; only the features themselves take clicks). Each legend group follows its overlay:
switching the overlay off in the layer control hides its legend entries.

This module builds HTML strings; it never imports a web framework.
"""

from __future__ import annotations

import html
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
from folium.utilities import JsCode
from jinja2 import Template

from analytics.basemaps import BaseMap, to_gcj02
from analytics.basemaps import bilingual as _title
from analytics.map_basemap import BASE_PANES, TianyaBaseLayer, base_frames
from analytics.map_popup import TextPopup, popup
from analytics.mapassets import finish
from analytics.palettes import OUTLINE
from layers.catalogue import LAYERS, Layer
from layers.district import TZ_NAME as TZ

__all__ = [
    "CENTRE",
    "PANES",
    "Legend",
    "MapFile",
    "TextPopup",
    "base_map",
    "code_colors",
    "code_label",
    "community_layer",
    "display_values",
    "finish_map",
    "geojson",
    "layer_title",
    "legend_items",
    "legend_shape",
    "map_note",
    "popup",
    "prepare",
    "quiet",
    "read_frames",
    "render_html",
    "save_map",
    "to_wgs",
]

#: Centre of the district (lat, lon) for the initial view.
CENTRE = (18.33, 109.42)

#: Leaflet panes of the overlays, bottom to top, with their z-index (Leaflet's own
#: ``overlayPane`` is 400, ``markerPane`` 600, ``tooltipPane`` 650: labels stay above all).
PANES: dict[str, int] = {
    "tianya-areas": 410,
    "tianya-outlines": 415,
    "tianya-lines": 420,
    "tianya-points": 430,
}

#: The pane of each way a layer is drawn (:func:`legend_shape`).
PANE_OF = {"square": "tianya-areas", "line": "tianya-lines", "circle": "tianya-points"}


def layer_title(layer: Layer, lang: str) -> str:
    """The layer's title in ``lang`` (``"both"``: zh and en)."""
    return _title(layer.zh, layer.en, lang)


# --- Legend and title ---------------------------------------------------------------------------

_LEGEND = Template("""
{% macro html(this, kwargs) %}
<div class="tianya-legend" id="{{ this.get_name() }}" style="position:absolute;z-index:1000;
 bottom:28px;right:10px;max-height:60vh;overflow-y:auto;background:rgba(255,255,255,.92);
 padding:6px 10px;font:12px/1.35 'Noto Sans CJK SC','Microsoft YaHei',sans-serif;
 border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3)">
{% for group, items, layer in this.sections %}
 <div class="tianya-legend-section" id="{{ this.get_name() }}_{{ loop.index0 }}"
  {% if layer %}data-layer="{{ layer }}"{% endif %}>
 <div class="tianya-legend-group" style="font-weight:bold;margin-top:4px">{{ group|e }}</div>
 {% for label, color, shape in items %}
 <div class="tianya-legend-item"><i style="display:inline-block;width:12px;height:12px;
  margin-right:5px;vertical-align:-2px;background:{{ color }};border:1px solid #555;
  {% if shape == 'circle' %}border-radius:50%{% elif shape == 'line' %}height:3px;
  vertical-align:3px;border:0{% endif %}"></i>{{ label|e }}</div>
 {% endfor %}
 </div>
{% endfor %}
{% if this.note %}<div style="margin-top:4px;color:#666;max-width:240px">{{ this.note|e }}</div>
{% endif %}
</div>
<div class="tianya-title" style="position:absolute;z-index:1000;top:10px;left:55px;
 background:rgba(255,255,255,.9);padding:4px 10px;border-radius:4px;
 font:bold 15px 'Noto Sans CJK SC','Microsoft YaHei',sans-serif">{{ this.title|e }}</div>
{% endmacro %}
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this.map_name }};
  var sections = {{ this.bindings|tojson }};
  function sync() {
    sections.forEach(function (s) {
      var el = document.getElementById(s[0]), layer = window[s[1]];
      if (el && layer) el.style.display = map.hasLayer(layer) ? "" : "none";
    });
  }
  map.on("overlayadd overlayremove", sync);
  sync();
})();
{% endmacro %}
""")


class Legend(MacroElement):
    """Legend box (groups of colour swatches) and title, drawn on top of the map.

    A group given with its overlay is shown only while that overlay is on the map (it
    follows the layer control, as in QGIS and ArcGIS, where a layer's legend goes with it).

    Parameters
    ----------
    title : str
        Map title.
    groups : list of (str, list of (label, colour, shape)[, layer])
        ``shape`` is ``"circle"``, ``"square"`` or ``"line"``; ``layer`` (optional) is the
        folium layer (a ``FeatureGroup``, ``ImageOverlay``…) whose legend this is.
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

    @property
    def sections(self):
        """``(title, items, layer variable name or "")`` of each group."""
        out = []
        for g in self.groups:
            layer = g[2] if len(g) > 2 else None
            out.append((g[0], g[1], layer.get_name() if layer is not None else ""))
        return out

    @property
    def bindings(self):
        """``[legend section id, layer variable name]`` of the groups that follow a layer."""
        return [
            [f"{self.get_name()}_{i}", layer]
            for i, (_, _, layer) in enumerate(self.sections)
            if layer
        ]

    @property
    def map_name(self) -> str:
        """The JavaScript name of the map the legend is on."""
        parent = self._parent
        if parent is None:
            raise ValueError("the legend is not on a map")
        return parent.get_name()

    def render(self, **kwargs):
        figure = cast(folium.Figure, self.get_root())
        figure.html.add_child(folium.Element(self._template.module.html(self, kwargs)))
        figure.script.add_child(
            folium.Element(self._template.module.script(self, kwargs)),
            name=self.get_name() + "_sync",
        )


# --- Frames -------------------------------------------------------------------------------------


def read_frames(source, ids) -> dict[str, gpd.GeoDataFrame]:
    """Frames by layer id from a dict of frames, a store, or a store location."""
    if isinstance(source, dict):
        return {i: source[i] for i in ids if i in source}
    from layers.store import Store
    from layers.stores import open_store

    store = source if isinstance(source, Store) else open_store(source)
    return {i: store.read_frame(LAYERS[i]) for i in ids if store.has_layer(LAYERS[i])}


def to_wgs(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` in EPSG:4326 (unchanged when it is already, or has no CRS)."""
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        return frame.to_crs(4326)
    return frame


def display_values(
    layer: Layer,
    frame: pd.DataFrame,
    fields,
    lang: str,
    names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Popup values: code labels, community names, Beijing-time datetimes, no NaN.

    Parameters
    ----------
    layer : Layer
    frame : DataFrame
    fields : sequence of str
    lang : {"both", "zh", "en"}
        A coded value is shown as its catalogue label in ``lang`` (``"both"``: zh and en,
        ``"垃圾满溢 Overflowing garbage"``), never as the raw code.
    names : mapping of str to str, optional
        Community code → name: ``community_code`` is shown as the community's name.

    Returns
    -------
    DataFrame
    """
    out = pd.DataFrame(index=frame.index)
    for name in fields:
        f = layer.field_map[name]
        s = frame[name]
        if f.codes:
            labels = {c.code: _title(c.zh, c.en, lang) for c in f.codes}
            out[name] = s.map(lambda v, lab=labels: lab.get(v, v)).astype(object)
        elif name == "community_code" and names:
            out[name] = s.map(lambda v: names.get(v, v)).astype(object)
        elif f.type == "datetime":
            t = pd.to_datetime(s, utc=True, format="ISO8601").dt.tz_convert(TZ)
            out[name] = t.dt.strftime("%Y-%m-%d %H:%M").astype(object)
        elif f.type == "number":
            out[name] = pd.to_numeric(s, errors="coerce").round(1).astype(object)
        else:
            out[name] = s.astype(object)
        out[name] = out[name].where(out[name].notna(), "")
    return out


def code_label(layer: Layer, field: str | None, code, lang: str) -> str:
    """The catalogue label of ``code`` of ``field`` in ``lang`` (``"both"``: zh and en)."""
    f = layer.field_map.get(field) if field else None
    for c in (f.codes or ()) if f else ():
        if c.code == code:
            return _title(c.zh, c.en, lang)
    return str(code)


def code_colors(layer: Layer, frame: pd.DataFrame) -> np.ndarray:
    """Each row's colour: its ``style.by`` code's catalogue colour, else the layer's."""
    by = layer.style.by
    if by is None or by not in frame:
        return np.full(len(frame), layer.style.color, dtype=object)
    palette = {c.code: c.color or layer.style.color for c in layer.field(by).codes or ()}
    return frame[by].map(palette).fillna(layer.style.color).to_numpy(dtype=object)


def legend_items(layer: Layer, frame: pd.DataFrame, lang: str, shape: str):
    """Legend entries (label, colour, shape) of the codes present in ``frame``."""
    by = layer.style.by
    if by is None or by not in frame:
        return [(layer_title(layer, lang), layer.style.color, shape)]
    present = set(frame[by].dropna().unique().tolist())
    return [
        (_title(c.zh, c.en, lang), c.color or layer.style.color, shape)
        for c in layer.field(by).codes or ()
        if c.code in present
    ]


def legend_shape(layer: Layer) -> str:
    """``"circle"``, ``"line"`` or ``"square"``: how the layer's geometry is drawn."""
    return {"Point": "circle", "LineString": "line", "MultiLineString": "line"}.get(
        layer.geometry_type or "", "square"
    )


def geojson(frame: gpd.GeoDataFrame, **kw) -> folium.GeoJson:
    """A folium GeoJson of ``frame`` with coordinates rounded to 1e-5° (~1 m): half the bytes."""
    out = frame.copy()
    out[out.geometry.name] = shapely.transform(
        frame.geometry.to_numpy(), lambda xy: np.round(xy, 5)
    )
    return folium.GeoJson(out, **kw)


#: One permanent label per feature (a tooltip bound to the whole GeoJson would open one);
#: the name goes in as text, never as HTML.
_LABEL = JsCode("""function (feature, layer) {
  var el = document.createElement("span");
  el.textContent = feature.properties.name;
  layer.bindTooltip(el, {permanent: true, direction: "center", className: "tianya-label",
                         interactive: false, opacity: 1});
}""")


class _Declutter(MacroElement):
    """Hide a permanent label that would overlap one already placed (QGIS's and ArcGIS's
    labelling engines drop conflicting labels the same way), the more important first
    (``data-rank``, 1 first; community labels without one count as 2); re-run on every zoom
    and pan."""

    _template = Template("""
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }}, pending = false;
  function declutter() {
    pending = false;
    var kept = [], els = Array.prototype.slice.call(document.querySelectorAll(".tianya-label"));
    function rank(el) { return Number(el.dataset.rank || 2); }
    els.sort(function (a, b) { return rank(a) - rank(b); });  // stable: DOM order within a rank
    els.forEach(function (el) {
      el.style.visibility = "";
      var r = el.getBoundingClientRect();
      var hit = kept.some(function (k) {
        return r.left < k.right && r.right > k.left && r.top < k.bottom && r.bottom > k.top;
      });
      if (hit) el.style.visibility = "hidden"; else kept.push(r);
    });
  }
  function later() { if (!pending) { pending = true; setTimeout(declutter, 0); } }
  map.on("zoomend moveend layeradd layerremove", later);
  later();
})();
{% endmacro %}
""")


def community_layer(
    communities: gpd.GeoDataFrame, lang: str, *, dashed: bool = True, show: bool = True
) -> folium.FeatureGroup:
    """Community outlines with their names as permanent labels, as one overlay.

    The outlines take no clicks (the features under and over them do); the labels are
    Leaflet tooltips that stay open, centred on each community, text with a white halo.
    """
    fg = folium.FeatureGroup(name=layer_title(LAYERS["communities"], lang), show=show)
    style = {"color": OUTLINE, "weight": 1.2, "fill": False}
    if dashed:
        style["dashArray"] = "4 3"
    geojson(
        communities[["name", "geometry"]],
        style_function=lambda f: style,
        on_each_feature=_LABEL,
        pane="tianya-outlines",
        interactive=False,
    ).add_to(fg)
    return fg


# --- Map scaffolding ----------------------------------------------------------------------------


def base_map(
    bm: BaseMap,
    lang: str,
    title: str,
    tiles: Mapping[str, str] | None,
    keys: Mapping[str, str] | None,
    base=None,
) -> folium.Map:
    """A map centred on the district with its base map, full screen and ``title``.

    Parameters
    ----------
    bm : BaseMap
        The embedded ``tianya`` base map (drawn from ``base``) or an online one (tiles).
    lang : {"both", "zh", "en"}
    title : str
    tiles, keys : mapping of str to str, optional
        Tile templates and keys of the online base maps (:mod:`analytics.basemaps`).
    base : Store, str or mapping of str to GeoDataFrame, optional
        Where the embedded base map is drawn from (:func:`analytics.map_basemap.base_frames`:
        a store, its location, frames by catalogue layer id, or the base map's own frames
        from :func:`layers.basemap.basemap_frames`); default: the district's boundary and
        sea alone.
    """
    # SVG, not canvas: a canvas per pane would swallow the clicks meant for the panes below
    # (the base map's one canvas is the bottom pane: nothing lies under it)
    m = folium.Map(location=list(CENTRE), zoom_start=11, tiles=None, control_scale=True)
    panes = {**BASE_PANES, **PANES} if bm.embedded else PANES
    for pane, z in panes.items():
        folium.map.CustomPane(pane, z_index=z, pointer_events=False).add_to(m)
    m.add_child(_Declutter())
    labels = None
    if bm.embedded:
        from layers.basemap import style

        frames = base_frames({} if base is None else base)
        TianyaBaseLayer(frames, style("", "light"), bm.title(lang), bm.attribution).add_to(m)
    else:
        url, labels = bm.tiles(tiles, keys)
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
            "'Noto Sans CJK SC','Microsoft YaHei',sans-serif}"
            ".leaflet-tooltip.tianya-label{background:none;border:0;box-shadow:none;padding:0;"
            "color:#263238;font:12px 'Noto Sans CJK SC','Microsoft YaHei',sans-serif;"
            "text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff}</style>"
        )
    )
    return m


def prepare(frame: gpd.GeoDataFrame, bm: BaseMap) -> gpd.GeoDataFrame:
    """``frame`` in WGS84 without empty geometries, in GCJ-02 on a GCJ-02 base map."""
    frame = to_wgs(frame)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    return to_gcj02(frame) if bm.gcj02 else frame


def map_note(bm: BaseMap, lang: str) -> str:
    """The legend's small print: base map, datum of the overlays, synthetic data."""
    datum = (
        _title("叠加图层已转换为GCJ-02坐标", "overlays converted to GCJ-02", lang)
        if bm.gcj02
        else _title("坐标系", "coordinates", lang) + " WGS84/CGCS2000"
    )
    return f"{bm.title(lang)} · {datum} · " + _title(
        "样例数据为模拟数据", "synthetic sample data", lang
    )


def finish_map(m: folium.Map, title: str, groups, bm: BaseMap, lang: str, bounds=None, notes=None):
    """Add the layer control and the legend, and fit the view to ``bounds``.

    ``notes`` (strings), when given, are joined into the page's hidden ``tianya-notes``
    block: what the map was made from (parameters, what was skipped and why).
    """
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m.add_child(Legend(title, groups, map_note(bm, lang)))
    if bounds is not None and np.all(np.isfinite(bounds)):
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    if notes is not None:
        cast(folium.Figure, m.get_root()).html.add_child(
            folium.Element(
                '<div class="tianya-notes" style="display:none">'
                + html.escape("; ".join(notes))
                + "</div>"
            )
        )
    return m


def legend_group(name: str, items, layer, empty: str, empty_color: str):
    """A legend group ``(name, items, layer)``; one ``empty`` entry when ``items`` is empty."""
    return (name, list(items) or [(empty, empty_color, "square")], layer)


def colored_squares(
    frame: gpd.GeoDataFrame, fields, aliases, *, weight: float, opacity: float
) -> folium.GeoJson:
    """Polygons filled with their ``_color`` column, a popup of ``fields``, on the square pane."""
    return geojson(
        frame,
        style_function=lambda f: {
            "color": f["properties"]["_color"],
            "weight": weight,
            "fillColor": f["properties"]["_color"],
            "fillOpacity": opacity,
        },
        popup=popup(fields, aliases),
        pane=PANE_OF["square"],
    )


class quiet:
    """Silence the UserWarnings analytics emits about reprojection inside map building."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", UserWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


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
