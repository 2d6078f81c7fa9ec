"""The thematic layers map: every layer as a toggleable overlay, styled from the catalogue.

Colours follow each layer's ``style.by`` code list (:mod:`layers.catalogue`); popups show
:data:`POPUP_FIELDS` (only public fields). Above ``max_points`` features a layer is drawn as
square cells coloured by the dominant code, the features that need attention staying
individual; the non-public poverty-relief layer is counts per community unless
``restricted=True``. Re-exported by :mod:`analytics.maps`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from analytics.basemaps import DEFAULT, basemap
from analytics.basemaps import bilingual as _title
from analytics.errors import AnalyticsError
from analytics.map_parts import (
    PANE_OF,
    base_map,
    code_colors,
    code_label,
    community_layer,
    display_values,
    finish_map,
    geojson,
    layer_title,
    legend_items,
    legend_shape,
    popup,
    prepare,
    read_frames,
)
from analytics.palettes import FEATURE_EDGE
from layers import supervision
from layers.catalogue import LAYERS, THEMATIC, Layer
from layers.district import UTM

__all__ = ["POPUP_FIELDS", "layers_map"]

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


def _feature_layer(
    layer: Layer,
    frame: gpd.GeoDataFrame,
    lang: str,
    name: str,
    names: Mapping[str, str] | None = None,
):
    """A GeoJson overlay of individual features with catalogue colours and popups.

    Points are filled circles in their code's colour (edged dark grey) in the top pane,
    lines in the pane under them, areas at the bottom (:data:`analytics.map_parts.PANES`).
    """
    fields = [
        f
        for f in POPUP_FIELDS.get(layer.id, layer.public_fields)
        if f in layer.public_fields and f in frame
    ]
    props = display_values(layer, frame, fields, lang, names)
    props["_color"] = code_colors(layer, frame)
    gj = gpd.GeoDataFrame(props, geometry=frame.geometry.to_numpy(), crs=4326)
    gj = gj.reset_index(drop=True)
    gj["_fid"] = np.arange(len(gj)).astype(str)
    aliases = [_title(layer.field_map[f].zh, layer.field_map[f].en, lang) for f in fields]
    kind = legend_shape(layer)
    if kind == "circle":

        def style(feat):
            c = feat["properties"]["_color"]
            return {
                "color": FEATURE_EDGE,
                "weight": 1,
                "fill": True,
                "fillColor": c,
                "fillOpacity": 0.9,
            }

        marker = folium.CircleMarker(radius=5, fill=True)
        marker.options["pane"] = PANE_OF[kind]  # folium's path options drop ``pane``
    elif kind == "line":

        def style(feat):
            return {"color": feat["properties"]["_color"], "weight": 4, "opacity": 0.9}

        marker = None
    else:

        def style(feat):
            c = feat["properties"]["_color"]
            return {"color": c, "weight": 1, "fillColor": c, "fillOpacity": 0.6}

        marker = None
    return geojson(
        gj,
        name=name,
        style_function=style,
        marker=marker,
        popup=popup(fields, aliases) if fields else None,
        pane=PANE_OF[kind],
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
            f"{code_label(layer, by, c, lang)} {n}"
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
    """Cells (or communities) shaded by their count, in the bottom pane; popup: breakdown."""
    fields = ["count", "breakdown"]
    aliases = [_title("数量", "Count", lang), _title("构成", "Breakdown", lang)]
    if "name" in cells:
        fields.insert(0, "name")
        aliases.insert(0, _title("社区(村)", "Community", lang))
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

    return geojson(
        cells,
        name=name,
        style_function=style,
        popup=popup(fields, aliases),
        pane=PANE_OF["square"],
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
    by = layer.style.by
    rows = []
    for code, g in frame.groupby("community_code"):
        parts = []
        if by is not None:
            for c, n in g[by].value_counts().items():
                parts.append(f"{code_label(layer, by, c, lang)} {n}")
        rows.append((code, len(g), "、".join(parts)))
    counts = pd.DataFrame(rows, columns=["code", "count", "breakdown"])
    out = communities[["code", "name", "geometry"]].merge(counts, on="code", how="inner")
    out["_color"] = layer.style.color
    return out[["name", "count", "breakdown", "_color", "geometry"]]


def layers_map(
    source=None,
    *,
    layers=THEMATIC,
    lang: str = "both",
    basemap_id: str = DEFAULT,
    max_points: int = 2000,
    cell_m: float = 300.0,
    restricted: bool = False,
    now=None,
    tiles: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
    base=None,
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
    basemap_id : str, default "tianya"
        One of :data:`analytics.basemaps.BASEMAPS`. The default, ``"tianya"``, is our own
        base map (district, sea, communities and villages with their names, rivers, grid
        cells, buildings) embedded in the map: it needs no internet and asks no other host.
        An online base map is chosen by its id: ``"osm"``, ``"tianditu"`` /
        ``"tianditu_img"`` (key ``keys["tianditu"]``, setting ``TIANYA_TIANDITU_KEY``),
        ``"amap"`` / ``"amap_img"`` (overlays moved to GCJ-02; ``TIANYA_AMAP_KEY`` if its
        template has ``{key}``); ``tiles`` replaces a tile template (``TIANYA_TILES_<ID>``).
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
    base : Store, str or dict of GeoDataFrame, optional
        What the ``tianya`` base map is drawn from (default: ``source``, or the frames read
        from the default store; see :func:`analytics.map_basemap.base_frames`).

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
    frames = read_frames(source, need)
    title = _title("天涯区联合指挥中心 专题图层", "Tianya command center: thematic layers", lang)
    if base is None:  # the store (or frames) the layers come from
        base = frames if source is None else source
    m = base_map(bm, lang, title, tiles, keys, base=base)
    groups = []
    total = None
    communities = prepare(frames["communities"], bm) if "communities" in frames else None
    names = None
    if communities is not None:
        if not bm.embedded:  # on ours, the base map draws them and their names
            community_layer(communities, lang).add_to(m)
        names = dict(zip(communities["code"], communities["name"].astype(str), strict=True))
        total = communities.total_bounds
    for lid in layers:
        if lid not in frames:
            continue
        layer = LAYERS[lid]
        frame = prepare(frames[lid], bm)
        name = layer_title(layer, lang)
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
                    fg,
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
                _feature_layer(layer, keep, lang, name, names).add_to(fg)
            label = name + _title(f"（{cell_m:g}米网格汇总）", f" ({cell_m:g} m cells)", lang)
        else:
            _feature_layer(layer, frame, lang, name, names).add_to(fg)
            label = name
        fg.add_to(m)
        groups.append((label, legend_items(layer, frame, lang, legend_shape(layer)), fg))
        if total is None and len(frame):
            total = frame.total_bounds
    return finish_map(m, title, groups, bm, lang, total)
