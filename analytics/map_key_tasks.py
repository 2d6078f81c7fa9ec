"""The key tasks map (重点工作督办地图): every supervised task in its status's colour.

One overlay per status (已交办, 推进中, 待验收, 已验收, 退回整改), coloured by the catalogue's
``key_tasks`` status code list (:mod:`layers.catalogue`): areas filled, river sections and
roads as thick lines, sites as circles, each in its own pane (points above lines above
areas); a task on the accountability list (问责) is edged in :data:`OVERDUE` red, a warned one
dashed. Popups show public fields only (labels, never codes), the milestone figures of the
task as of ``now`` (:mod:`layers.key_task_figures`) and, when ``counts`` are given
(:func:`layers.key_task_figures.area_counts`), the cases (or opinion topics) inside its area
before and after its start. Re-exported by :mod:`analytics.maps`; offline like the other
maps (our base map embedded by default); popup values are text, never markup
(:class:`analytics.map_parts.TextPopup`).
"""

from __future__ import annotations

from collections.abc import Mapping

import folium
import geopandas as gpd
import pandas as pd

from analytics.basemaps import DEFAULT, basemap
from analytics.basemaps import bilingual as _title
from analytics.errors import AnalyticsError
from analytics.map_parts import (
    PANE_OF,
    base_map,
    community_layer,
    display_values,
    finish_map,
    geojson,
    popup,
    prepare,
    to_wgs,
)
from analytics.palettes import FEATURE_EDGE, OVERDUE
from layers import key_task_figures as ktf
from layers.catalogue import LAYERS

__all__ = ["KEY_TASK_FIELDS", "key_tasks_map"]

#: The fields of a task's popup (public ones only are read).
KEY_TASK_FIELDS = (
    "task_no",
    "title",
    "kind",
    "lead_department",
    "co_departments",
    "start_date",
    "deadline",
    "status",
    "progress",
    "escalation",
)
_SHAPES = {"Point": "circle", "MultiPoint": "circle", "LineString": "line"}
_SHAPES["MultiLineString"] = "line"


def _style(feat) -> dict:
    p = feat["properties"]
    esc = p["_escalation"]
    return {
        "color": OVERDUE if esc == "accountability" else p["_edge"],
        "weight": p["_weight"] + (1.5 if esc == "accountability" else 0),
        "dashArray": "6 4" if esc == "warning" else None,
        "fill": p["_shape"] != "line",
        "fillColor": p["_color"],
        "fillOpacity": 0.9 if p["_shape"] == "circle" else 0.45,
        "opacity": 0.95,
    }


def key_tasks_map(
    tasks: gpd.GeoDataFrame,
    milestones: pd.DataFrame | None = None,
    *,
    now=None,
    counts: pd.DataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    basemap_id: str = DEFAULT,
    lang: str = "both",
    tiles: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
    base=None,
) -> folium.Map:
    """Map of the key tasks coloured by status.

    Parameters
    ----------
    tasks : GeoDataFrame
        Rows of the ``key_tasks`` layer (points, lines and polygons together).
    milestones : DataFrame, optional
        Rows of ``key_task_milestones``: each popup then gives the task's milestones due,
        on time and overdue as of ``now`` (required with ``milestones``).
    now : datetime-like, optional
        The instant of the milestone figures.
    counts : DataFrame, optional
        :func:`layers.key_task_figures.area_counts` of the tasks (indexed by ``task_no``):
        the popups give the points inside each area before and after its start.
    communities : GeoDataFrame, optional
        Community polygons (outlines and names).
    basemap_id, lang, tiles, keys, base
        As :func:`analytics.map_hotspots.hotspot_map`.

    Returns
    -------
    folium.Map
    """
    layer = LAYERS["key_tasks"]
    bm = basemap(basemap_id)
    frame = to_wgs(tasks)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if not len(frame):
        raise AnalyticsError("there are no key tasks with a geometry to map")
    fields = [f for f in KEY_TASK_FIELDS if f in layer.public_fields and f in frame]
    props = display_values(layer, frame, fields, lang)
    aliases = [_title(layer.field_map[f].zh, layer.field_map[f].en, lang) for f in fields]
    if "progress" in props:
        props["progress"] = [f"{v}%" if v != "" else "" for v in props["progress"]]
    if milestones is not None:
        flags = ktf.milestone_flags(milestones, frame, now)
        g = flags.groupby("task_no")
        per = pd.DataFrame({"due": g["due"].sum(), "on_time": g["on_time"].sum()})
        per["overdue"] = g["overdue"].sum()
        per = per.reindex(frame["task_no"]).fillna(0).astype(int)
        props["milestones"] = [
            f"{o}/{d}" + (_title(f"，超期{od}", f", {od} overdue", lang) if od else "")
            for d, o, od in zip(per["due"], per["on_time"], per["overdue"], strict=True)
        ]
        fields.append("milestones")
        aliases.append(
            _title("按期/应完成节点", "Milestones on time / due", lang)
            + f" ({ktf.today(now).date()})"
        )
    if counts is not None:
        c = counts.reindex(frame["task_no"])
        w = int(c["window_days"].dropna().iloc[0]) if c["window_days"].notna().any() else 0
        partial = _title("（数据未满窗口）", " (data end within the window)", lang)
        props["area_counts"] = [
            ""
            if pd.isna(b)
            else f"{int(b)} → {int(a)}" + ("" if not pd.isna(done) and bool(done) else partial)
            for b, a, done in zip(c["before"], c["after"], c["after_complete"], strict=True)
        ]
        fields.append("area_counts")
        aliases.append(
            _title(f"区域内案件 开始前/后{w}天", f"Cases inside, {w} days before → after", lang)
        )
    colors = {c.code: c.color or layer.style.color for c in layer.field("status").codes or ()}
    status = frame["status"].astype(object)
    props["_color"] = status.map(colors).fillna(layer.style.color).to_numpy()
    props["_escalation"] = (
        frame["escalation"].astype(object).fillna("none").to_numpy()
        if "escalation" in frame
        else "none"
    )
    shapes = [_SHAPES.get(t, "square") for t in frame.geometry.geom_type]
    props["_shape"] = shapes
    props["_status"] = status.to_numpy()
    props["_edge"] = [
        c if s == "line" else FEATURE_EDGE for c, s in zip(props["_color"], shapes, strict=True)
    ]
    props["_weight"] = [5 if s == "line" else 1 for s in shapes]
    gj = gpd.GeoDataFrame(props, geometry=frame.geometry.to_numpy(), crs=4326)
    gj = prepare(gj.reset_index(drop=True), bm)
    title = _title("重点工作督办", "Key tasks", lang)
    if base is None and communities is not None:
        base = {"communities": communities}
    m = base_map(bm, lang, title, tiles, keys, base=base)
    if communities is not None and not bm.embedded:
        community_layer(prepare(communities, bm), lang, dashed=False).add_to(m)
    groups: list[tuple] = []
    status_field = layer.field("status")
    for code in status_field.codes or ():
        part = gj[gj["_status"] == code.code]
        if not len(part):
            continue
        name = _title(code.zh, code.en, lang) + f" ({len(part)})"
        fg = folium.FeatureGroup(name=name)
        for shape in ("square", "line", "circle"):
            sub = part[part["_shape"] == shape]
            if not len(sub):
                continue
            kw = {}
            if shape == "circle":
                marker = folium.CircleMarker(radius=7, fill=True)
                marker.options["pane"] = PANE_OF["circle"]
                kw["marker"] = marker
            geojson(
                sub,
                style_function=_style,
                popup=popup(fields, aliases),
                pane=PANE_OF[shape],
                **kw,
            ).add_to(fg)
        fg.add_to(m)
        shapes_present = sorted(set(part["_shape"]), key=["square", "line", "circle"].index)
        items = [(_title(code.zh, code.en, lang), colors[code.code], s) for s in shapes_present[:1]]
        groups.append((name, items, fg))
    esc = layer.field("escalation")
    marks = [
        (_title(esc.label(k, "zh") + zh, esc.label(k, "en") + en, lang), color, "line")
        for k, zh, en, color in (
            ("warning", "(虚线边)", " (dashed edge)", FEATURE_EDGE),
            ("accountability", "(红边)", " (red edge)", OVERDUE),
        )
        if (gj["_escalation"] == k).any()
    ]
    if marks:
        groups.append((_title("督办等级", "Escalation", lang), marks))
    return finish_map(m, title, groups, bm, lang, gj.total_bounds)
