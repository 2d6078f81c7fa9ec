"""The Tianya base map inside a saved folium map: our own data, no tiles, no other host.

A map written to a file has no server behind it, so the base map that the server publishes
as vector tiles (:mod:`layers.basemap`: ``GET /tiles/WebMercatorQuad/{z}/{y}/{x}`` drawn by
the style ``GET /styles/basemap``) is embedded in the HTML instead: the same source layers
(:func:`layers.basemap.basemap_frames`: sea, district, communities, grid cells, rivers,
buildings, labels) drawn with the same style (:func:`layers.basemap.style`, theme
``"light"``: one definition of colours and zoom ranges for the server and the files).

How the style is read (the subset the contract allows):

- ``background`` → the colour of the map container;
- ``fill`` → a polygon filled with ``fill-color`` at ``fill-opacity``, edged by
  ``fill-outline-color`` (1 px) when it has one;
- ``line`` → ``line-color``, ``line-width`` px, ``line-dasharray`` (in line widths, as in
  MapLibre);
- ``symbol`` → a text label (``text-field`` ``["get", "name"]``), ``text-size`` px in
  ``text-color`` with a ``text-halo-color`` halo of ``text-halo-width`` px, centred on the
  label point; labels that would overlap one already placed are hidden, in the style's
  ``rank`` (1 first: district, then communities, villages, rivers), as MapLibre's and
  QGIS's labelling drop colliding labels;
- ``minzoom`` (inclusive) / ``maxzoom`` (exclusive) are style zoom levels, as in MapLibre
  and in the server's renderer (``/assets/basemap.js``): style zoom z is Leaflet's zoom
  z + 1 (:data:`ZOOM_OFFSET`; a 512-pixel world at zoom 0, Leaflet's is 256 pixels), so a
  layer appears at the same scale in a saved map and on the server's pages; a filter is of
  the form ``["==", ["get", "kind"], value]``.

Fills and lines are drawn on one canvas in the pane ``tianya-base`` below every data pane
(:data:`analytics.map_parts.PANES`); the labels in ``tianya-base-labels``, above the data
(as a MapLibre map inserts data layers under the style's first symbol layer), and take no
clicks. The base map is the layer control's base layer.

Size: geometry is simplified for the embedded copy (:data:`SIMPLIFY_M`, metres, in UTM 49N,
topology kept) and coordinates are rounded to 1e-5° (about 1 m); only the properties the
style reads are kept; lines and rings are encoded polylines (:func:`encode_line`), decoded
by a few lines of script. On the sample the whole base map is about 0.37 MB of a file, the
9,770 buildings 0.34 MB of it (2.0 MB as GeoJSON); grid cells and buildings are drawn from
their ``minzoom`` on, as the served tiles carry them.

This module builds HTML strings; it never imports a web framework.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import folium
import geopandas as gpd
import numpy as np
import shapely
from jinja2 import Template

from layers.district import UTM

__all__ = [
    "BASE_PANES",
    "ZOOM_OFFSET",
    "SIMPLIFY_M",
    "FrameSource",
    "TianyaBaseLayer",
    "base_frames",
    "embedded_style",
]

#: Leaflet's zoom minus the style's zoom at the same scale (MapLibre's zoom levels are those
#: of a 512-pixel world, Leaflet's of a 256-pixel one).
ZOOM_OFFSET = 1

#: Panes of the embedded base map: fills and lines under the data, labels above (no clicks).
BASE_PANES: dict[str, int] = {"tianya-base": 250, "tianya-base-labels": 450}

#: Simplification tolerance of each source layer's embedded copy, metres (0: kept as is).
#: 5 m is below a pixel up to zoom 14 (9.6 m/px at 18°N) and keeps the district's outline
#: and the communities' shared edges visibly exact; buildings (a few metres wide) are kept.
SIMPLIFY_M: dict[str, float] = {
    "sea": 10.0,
    "district": 5.0,
    "communities": 5.0,
    "grid_cells": 5.0,
    "rivers": 5.0,
    "buildings": 0.0,
    "labels": 0.0,
}

_FONT = "'Noto Sans CJK SC','Microsoft YaHei',sans-serif"


class FrameSource:
    """Frames by catalogue layer id seen as a read-only store (``read_frame``, ``has_layer``).

    Lets :func:`layers.basemap.basemap_frames` read the frames a caller already holds (the
    ``dict`` a map function was given) as it reads a store: whole frames in EPSG:4326 (the
    query's columns and bounding box are not applied; the base map picks its columns).
    """

    def __init__(self, frames: Mapping[str, gpd.GeoDataFrame]):
        self.frames = frames

    def has_layer(self, layer) -> bool:
        return layer.id in self.frames

    def read_frame(self, layer, q=None) -> gpd.GeoDataFrame:
        from layers.errors import NotFound

        if layer.id not in self.frames:
            raise NotFound(f"no layer {layer.id!r} among the frames given")
        frame = self.frames[layer.id]
        if frame.crs is not None and frame.crs.to_epsg() != 4326:
            frame = frame.to_crs(4326)
        return frame


def base_frames(source) -> dict[str, gpd.GeoDataFrame]:
    """The base map's frames (EPSG:4326) from a store, a store location or frames by layer id.

    Parameters
    ----------
    source : Store, str or mapping of str to GeoDataFrame
        A store or its location: :func:`layers.basemap.basemap_frames` of it; frames by
        catalogue layer id (``communities``, ``rivers``, ``grid_cells``,
        ``building_population``): the same, from the frames there are; frames already by
        base-map source layer (``sea``, ``district``, …): as they are.

    Returns
    -------
    dict of str to GeoDataFrame
    """
    from layers import basemap as lb

    if isinstance(source, Mapping):
        if "district" in source or "labels" in source:
            return dict(source)
        return lb.basemap_frames(FrameSource(source))
    from layers.store import Store
    from layers.stores import open_store

    if isinstance(source, Store):
        return lb.basemap_frames(source)
    store = open_store(source)
    try:
        return lb.basemap_frames(store)
    finally:
        store.close()


def _get(layer: Mapping, key: str, default=None):
    for part in ("paint", "layout"):
        v = (layer.get(part) or {}).get(key)
        if v is not None:
            return v
    return default


def _filter(layer: Mapping) -> list | None:
    """``[property, value]`` of a ``["==", ["get", p], v]`` filter, else None."""
    f = layer.get("filter")
    if not f:
        return None
    if (
        isinstance(f, list)
        and len(f) == 3
        and f[0] == "=="
        and isinstance(f[1], list)
        and f[1][:1] == ["get"]
    ):
        return [f[1][1], f[2]]
    raise ValueError(f"style layer {layer.get('id')!r}: unsupported filter {f!r}")


def embedded_style(style: Mapping) -> dict:
    """The parts of a MapLibre style (version 8) the embedded base map draws.

    Returns
    -------
    dict
        ``background`` (colour or None), ``attribution``, ``zoom_offset``
        (:data:`ZOOM_OFFSET`) and ``layers``: one entry per
        ``fill`` / ``line`` / ``symbol`` layer, in order, with ``source`` (the source
        layer), ``type``, ``min``/``max`` zoom, ``filter`` (``[property, value]`` or
        None) and Leaflet options (``path``) or label CSS (``css``).
    """
    background = None
    out = []
    for layer in style.get("layers", []):
        kind = layer.get("type")
        if kind == "background":
            background = _get(layer, "background-color")
            continue
        if kind not in ("fill", "line", "symbol"):
            continue
        entry = {
            "id": layer.get("id"),
            "source": layer["source-layer"],
            "type": kind,
            "min": layer.get("minzoom", 0),
            "max": layer.get("maxzoom", 99),
            "filter": _filter(layer),
        }
        if kind == "fill":
            outline = _get(layer, "fill-outline-color")
            entry["path"] = {
                "fill": True,
                "fillColor": _get(layer, "fill-color", "#000000"),
                "fillOpacity": _get(layer, "fill-opacity", 1),
                "stroke": outline is not None,
                "color": outline or _get(layer, "fill-color", "#000000"),
                "weight": 1,
                "opacity": 1,
            }
        elif kind == "line":
            width = _get(layer, "line-width", 1)
            dash = _get(layer, "line-dasharray")
            entry["path"] = {
                "fill": False,
                "color": _get(layer, "line-color", "#000000"),
                "weight": width,
                "opacity": _get(layer, "line-opacity", 1),
                "dashArray": " ".join(f"{d * width:g}" for d in dash) if dash else None,
                "lineCap": "butt" if dash else "round",
            }
        else:
            halo = _get(layer, "text-halo-color")
            hw = float(_get(layer, "text-halo-width", 0) or 0)
            shadow = ""
            if halo and hw > 0:
                r = f"{hw:g}px"
                offsets = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b]
                shadow = ",".join(f"{a * hw:g}px {b * hw:g}px {r} {halo}" for a, b in offsets)
            entry["css"] = (
                f"color:{_get(layer, 'text-color', '#000000')};"
                f"font-size:{_get(layer, 'text-size', 12)}px;"
                + (f"text-shadow:{shadow};" if shadow else "")
            )
        out.append(entry)
    sources = style.get("sources") or {}
    attribution = next((s.get("attribution") for s in sources.values() if s.get("attribution")), "")
    return {
        "background": background,
        "attribution": attribution,
        "zoom_offset": ZOOM_OFFSET,
        "layers": out,
    }


def encode_line(coords) -> str:
    """Coordinates as an encoded polyline (Google's algorithm, 1e-5°, longitude first).

    Each value is the difference from the previous one in units of 1e-5°, zig-zag signed
    and written as 5-bit groups in printable characters: 2–4 bytes per coordinate instead
    of ~10 in GeoJSON.

    Google's published example, longitude first:

    >>> encode_line([(-120.2, 38.5), (-120.95, 40.7), (-126.453, 43.252)])
    '~ps|U_p~iFnnqC_ulLvxq`@_mqN'
    """
    xy = np.round(np.asarray(coords, dtype=float)[:, :2] * 1e5).astype(np.int64)
    deltas = np.diff(xy, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).ravel().tolist()
    out = []
    for v in deltas:
        v = ~(v << 1) if v < 0 else v << 1
        while v >= 0x20:
            out.append(chr((0x20 | (v & 0x1F)) + 63))
            v >>= 5
        out.append(chr(v + 63))
    return "".join(out)


def _rings(poly: shapely.Polygon) -> list[str]:
    rings = [poly.exterior, *poly.interiors]
    return [encode_line(np.asarray(r.coords)[:-1]) for r in rings]  # Leaflet closes rings


def _geometry(g) -> tuple[str, object] | None:
    """``(kind, coordinates)``: ``P`` [lon, lat], ``L`` lines, ``A`` polygons of rings."""
    kind = g.geom_type
    if kind == "Point":
        return "P", [round(g.x, 5), round(g.y, 5)]
    if kind in ("LineString", "MultiLineString"):
        parts = [g] if kind == "LineString" else list(g.geoms)
        return "L", [encode_line(np.asarray(p.coords)) for p in parts if len(p.coords) > 1]
    if kind in ("Polygon", "MultiPolygon"):
        polys = [g] if kind == "Polygon" else list(g.geoms)
        return "A", [_rings(p) for p in polys if not p.is_empty]
    if kind == "GeometryCollection":
        parts = [_geometry(p) for p in g.geoms]
        polys = [c for k, cs in filter(None, parts) if k == "A" for c in cs]
        return ("A", polys) if polys else None
    return None


def _compact(frame: gpd.GeoDataFrame, keep: list[str], tolerance_m: float) -> list:
    """``frame`` as ``[properties or null, kind, coordinates]`` rows (see :func:`_geometry`):
    simplified by ``tolerance_m`` metres, encoded polylines, ``keep`` properties only."""
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    geoms = frame.geometry
    if tolerance_m > 0 and len(frame):
        geoms = geoms.to_crs(UTM).simplify(tolerance_m, preserve_topology=True).to_crs(4326)
    props = frame[[k for k in keep if k in frame]]
    rows = []
    for i, g in enumerate(geoms.to_numpy()):
        geom = None if g is None or g.is_empty else _geometry(g)
        if geom is None:
            continue
        p = {
            k: (v.item() if isinstance(v, np.generic) else v)
            for k, v in props.iloc[i].items()
            if v is not None and v == v
        }
        rows.append([p or None, *geom])
    return rows


_TEMPLATE = Template("""
{% macro header(this, kwargs) %}
<style>
.tianya-base-label{background:none;border:0;width:auto!important;height:auto!important}
.tianya-base-label .tianya-label{position:absolute;left:0;top:0;transform:translate(-50%,-50%);
 white-space:nowrap;font-family:{{ this.font }};line-height:1.2;pointer-events:none}
</style>
{% endmacro %}
{% macro script(this, kwargs) %}
var {{ this.get_name() }} = (function () {
  var spec = {{ this.spec|tojson }};
  var data = {{ this.data_json }};
  var renderer = L.canvas({pane: "tianya-base", padding: 0.5});
  function decode(s) {  // an encoded polyline (1e-5 degrees, lon first) to LatLngs
    var out = [], i = 0, x = 0, y = 0;
    while (i < s.length) {
      var v = [0, 0];
      for (var j = 0; j < 2; j++) {
        var shift = 0, r = 0, b;
        do { b = s.charCodeAt(i++) - 63; r |= (b & 31) << shift; shift += 5; } while (b >= 32);
        v[j] = (r & 1) ? ~(r >> 1) : (r >> 1);
      }
      x += v[0]; y += v[1];
      out.push([y / 1e5, x / 1e5]);
    }
    return out;
  }
  function props(row) { return row[0] || {}; }
  function keep(filter) {
    return function (row) { return !filter || props(row)[filter[0]] === filter[1]; };
  }
  function label(row, css) {
    var span = document.createElement("span");
    span.className = "tianya-label";
    span.setAttribute("style", css);
    span.dataset.rank = props(row).rank || 9;
    span.textContent = props(row).name;
    return L.marker([row[2][1], row[2][0]], {
      pane: "tianya-base-labels", interactive: false, keyboard: false,
      icon: L.divIcon({className: "tianya-base-label", html: span, iconSize: null})
    });
  }
  function shape(row, opts) {
    if (row[1] === "L") return L.polyline(row[2].map(decode), opts);
    return L.polygon(row[2].map(function (p) { return p.map(decode); }), opts);
  }
  var entries = spec.layers.map(function (s) {
    var rows = (data[s.source] || []).filter(keep(s.filter));
    var layers;
    if (s.type === "symbol") {
      rows = rows.filter(function (r) { return r[1] === "P" && props(r).name; });
      layers = rows.map(function (r) { return label(r, s.css); });
    } else {
      var opts = Object.assign({renderer: renderer, interactive: false}, s.path);
      layers = rows.filter(function (r) { return r[1] !== "P"; }).map(function (r) {
        return shape(r, opts); });
    }
    return {id: s.id, layer: L.layerGroup(layers), min: s.min, max: s.max};
  });
  var Base = L.Layer.extend({
    options: {attribution: spec.attribution},
    onAdd: function (map) {
      this._shown = [];
      this._background = map.getContainer().style.background;
      if (spec.background) map.getContainer().style.background = spec.background;
      map.on("zoomend", this._sync, this);
      map.whenReady(this._sync, this);
    },
    onRemove: function (map) {
      map.off("zoomend", this._sync, this);
      this._shown.forEach(function (e) { map.removeLayer(e.layer); });
      this._shown = [];
      map.getContainer().style.background = this._background;
    },
    shown: function () {  // ids of the style layers drawn at this zoom (tests)
      return this._shown.map(function (e) { return e.id; });
    },
    _sync: function () {
      var map = this._map, z = map.getZoom() - spec.zoom_offset, on = this._shown;
      var want = entries.filter(function (e) { return z >= e.min && z < e.max; });
      if (want.length === on.length && want.every(function (e, i) { return e === on[i]; }))
        return;
      on.forEach(function (e) { map.removeLayer(e.layer); });  // re-added in style order
      want.forEach(function (e) { map.addLayer(e.layer); });
      this._shown = want;
    }
  });
  return new Base();
})();
{% endmacro %}
""")


class TianyaBaseLayer(folium.map.Layer):
    """The Tianya base map embedded in a folium map (a base layer of the layer control).

    Parameters
    ----------
    frames : mapping of str to GeoDataFrame
        The base map's source layers (:func:`base_frames`).
    style : mapping
        A MapLibre style of them (:func:`layers.basemap.style`, theme ``"light"``).
    name : str
        Its name in the layer control.
    attribution : str, optional
        Shown in the attribution control when the style's source has none.
    """

    _template = _TEMPLATE

    def __init__(
        self,
        frames: Mapping[str, gpd.GeoDataFrame],
        style: Mapping,
        name: str,
        attribution: str = "",
    ):
        super().__init__(name=name, overlay=False, control=True, show=True)
        self._name = "TianyaBaseMap"
        self.font = _FONT
        self.spec = embedded_style(style)
        self.spec["attribution"] = self.spec["attribution"] or attribution
        keep: dict[str, set[str]] = {}
        for entry in self.spec["layers"]:
            props = keep.setdefault(entry["source"], set())
            if entry["filter"]:
                props.add(entry["filter"][0])
            if entry["type"] == "symbol":
                props.update(("name", "rank"))
        self.data = {
            source: _compact(frames[source], sorted(props), SIMPLIFY_M.get(source, 5.0))
            for source, props in keep.items()
            if source in frames
        }

    @property
    def data_json(self) -> str:
        """The embedded data as compact JSON, safe inside a ``<script>`` and in branca's
        templates (which render a map's script text again: ``{{``, ``{%``, ``{#`` in an
        encoded polyline would be read as Jinja)."""
        text = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        for c, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(c, esc)
        return re.sub(r"\{(?=[{%#])", r"\\u007b", text)

    @property
    def size(self) -> int:
        """Bytes of the embedded data."""
        return len(self.data_json.encode())
