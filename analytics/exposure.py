"""Flood exposure: buildings, people, shelters and fixtures under a flood-depth raster.

The flood-depth rasters are the synthetic scenarios of :mod:`geodata.rasters`
(metres, ``NaN`` or nodata = no water), but any single-band depth raster in a
geographic or projected CRS works; the vector layers are read in EPSG:4326 and
transformed to the raster's CRS.

Method
------
Building depth (zonal statistics over footprints)
    Each footprint is rasterised on the raster's grid (``rasterio.features.rasterize``,
    pixels whose centre lies inside the footprint). Overlapping footprints are
    rasterised in separate passes (a greedy colouring of the overlap graph), so
    every building gets all of its own pixels. ``depth_max`` and ``depth_mean``
    are taken over those pixels (no water counts as 0 m). A footprint smaller
    than a pixel, covering no pixel centre, is **point-sampled** at its centroid
    (``DatasetReader.sample``) and flagged ``sampled``.
Depth classes
    ``dry`` (< 0.15 m, below the 15 cm road-waterlogging threshold of GB 51222),
    ``shallow`` 0.15-0.5 m, ``moderate`` 0.5-1 m, ``deep`` 1-2 m, ``very_deep``
    >= 2 m, by the building's maximum depth (lower bounds inclusive).
People to move
    The resident population (``resident_pop``) of every building whose maximum
    depth is at least ``evacuate_depth`` (default 0.5 m). Everyone moves, upper
    floors included: a conservative planning figure.
Shelters
    ``flood_prevention`` features of type ``shelter`` with their ``capacity``
    (people). A shelter whose own site is wet (depth >= ``risk_depth``) is not
    usable. Each building to evacuate is assigned, whole, to the **nearest shelter
    with room**, greedily by distance: all (building, usable shelter) pairs are
    visited in order of straight-line distance (UTM 49N metres; no road network)
    and a building is placed in the first shelter of its pairs that still has
    room for all its residents. Buildings placed nowhere are ``unsheltered``.
    This is the classic greedy heuristic, not an optimal transport plan.
Points at risk
    Waterlogging-prone points and pumping stations (``flood_prevention``) and
    manhole covers (``urban_fixtures`` subclasses 0101-0108) are point-sampled;
    depth >= ``risk_depth`` (default 0.15 m) means at risk (flooded pumping
    stations, covers lifted by the water).

Examples
--------
>>> depth_class([0.0, 0.15, 0.7, 3.0]).tolist()
['dry', 'shallow', 'moderate', 'very_deep']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import rasterio.windows
import shapely
from rasterio.transform import Affine

from analytics.errors import AnalyticsError, check_positive
from layers.district import UTM

__all__ = [
    "CLASSES",
    "CLASS_LABELS",
    "FloodExposure",
    "MANHOLE_SUBCLASSES",
    "assign_shelters",
    "building_depths",
    "depth_class",
    "exposure_by_community",
    "flood_exposure",
    "points_at_risk",
    "sample_points",
]

#: Depth classes: id, lower bound (m, inclusive).
CLASSES = (("dry", 0.0), ("shallow", 0.15), ("moderate", 0.5), ("deep", 1.0), ("very_deep", 2.0))
CLASS_LABELS = {
    "dry": ("< 0.15 m", "无积水(<0.15米)"),
    "shallow": ("0.15-0.5 m", "0.15-0.5米"),
    "moderate": ("0.5-1 m", "0.5-1米"),
    "deep": ("1-2 m", "1-2米"),
    "very_deep": (">= 2 m", "2米以上"),
}
#: Manhole-cover subclasses (GB/T 30428 01xx: water, sewage, storm, power, street-light,
#: telecom, gas).
MANHOLE_SUBCLASSES = ("0101", "0102", "0103", "0104", "0105", "0106", "0107", "0108")


def depth_class(depth) -> np.ndarray:
    """Class id of each depth (metres; NaN counts as dry)."""
    d = np.nan_to_num(np.asarray(depth, float), nan=0.0)
    bounds = np.array([b for _, b in CLASSES[1:]])
    ids = np.array([c for c, _ in CLASSES], dtype=object)
    return ids[np.searchsorted(bounds, d, side="right")]


def _in_crs(gdf: gpd.GeoDataFrame, crs) -> np.ndarray:
    if gdf.crs is None:
        raise AnalyticsError("the features have no CRS; set one (EPSG:4326 for the layers)")
    return np.asarray(gdf.to_crs(crs).geometry.values)


def _colours(geoms: np.ndarray) -> np.ndarray:
    """Greedy colouring of the overlap graph: overlapping footprints get different colours."""
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    nbrs: dict[int, list[int]] = {}
    for a, b in zip(left[keep].tolist(), right[keep].tolist(), strict=True):
        nbrs.setdefault(b, []).append(a)
    colour = np.zeros(len(geoms), int)
    for i in sorted(nbrs):
        used = {colour[j] for j in nbrs[i]}
        c = 0
        while c in used:
            c += 1
        colour[i] = c
    return colour


@dataclass
class FootprintPixels:
    """Pixels (rows, cols on the raster grid) under each footprint, as parallel arrays."""

    building: np.ndarray
    row: np.ndarray
    col: np.ndarray
    window: rasterio.windows.Window


def footprint_pixels(
    geoms: np.ndarray, transform: Affine, shape: tuple[int, int]
) -> FootprintPixels:
    """Raster pixels whose centre lies inside each footprint (``geoms`` in the raster's CRS).

    Footprints are rasterised with ``rasterio.features.rasterize`` in one pass per
    colour of the overlap graph, within the window covering them all.
    """
    empty = FootprintPixels(
        np.empty(0, int), np.empty(0, int), np.empty(0, int), rasterio.windows.Window(0, 0, 0, 0)
    )
    if len(geoms) == 0:
        return empty
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    win = rasterio.windows.from_bounds(minx, miny, maxx, maxy, transform)
    col0 = max(0, int(np.floor(win.col_off)) - 1)
    row0 = max(0, int(np.floor(win.row_off)) - 1)
    col1 = min(shape[1], int(np.ceil(win.col_off + win.width)) + 1)
    row1 = min(shape[0], int(np.ceil(win.row_off + win.height)) + 1)
    if col1 <= col0 or row1 <= row0:
        return empty
    window = rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)
    colour = _colours(geoms)
    parts_b, parts_r, parts_c = [], [], []
    for c in range(colour.max() + 1):
        idx = np.flatnonzero(colour == c)
        # each pass only over the part of the window its footprints cover
        bx0, by0, bx1, by1 = shapely.total_bounds(geoms[idx])
        c0 = max(col0, int(np.floor((bx0 - transform.c) / transform.a)) - 1)
        c1 = min(col1, int(np.ceil((bx1 - transform.c) / transform.a)) + 1)
        r0 = max(row0, int(np.floor((by1 - transform.f) / transform.e)) - 1)
        r1 = min(row1, int(np.ceil((by0 - transform.f) / transform.e)) + 1)
        if c1 <= c0 or r1 <= r0:
            continue
        sub = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
        labels = rasterio.features.rasterize(
            ((geoms[i], int(i) + 1) for i in idx),
            out_shape=(sub.height, sub.width),
            transform=rasterio.windows.transform(sub, transform),
            fill=0,
            all_touched=False,
            dtype="int32",
        )
        r, cc = np.nonzero(labels)
        parts_b.append(labels[r, cc] - 1)
        parts_r.append(r + r0)
        parts_c.append(cc + c0)
    if not parts_b:
        return empty
    return FootprintPixels(
        np.concatenate(parts_b), np.concatenate(parts_r), np.concatenate(parts_c), window
    )


def _depth_values(values: np.ndarray, nodata) -> np.ndarray:
    v = np.asarray(values, float)
    bad = ~np.isfinite(v)
    if nodata is not None and np.isfinite(nodata):
        bad |= v == nodata
    return np.where(bad, 0.0, np.clip(v, 0.0, None))


def sample_points(points: gpd.GeoDataFrame, raster: str) -> np.ndarray:
    """Depth (m) at each point, sampled with rasterio (outside the raster or no water: 0)."""
    with rasterio.open(raster) as src:
        geoms = _in_crs(points, src.crs)
        if len(geoms) == 0:
            return np.zeros(0)
        xy = shapely.get_coordinates(shapely.centroid(geoms))
        inside = (
            (xy[:, 0] >= src.bounds.left)
            & (xy[:, 0] < src.bounds.right)
            & (xy[:, 1] > src.bounds.bottom)
            & (xy[:, 1] <= src.bounds.top)
        )
        out = np.zeros(len(xy))
        if inside.any():
            vals = np.array([v[0] for v in src.sample(map(tuple, xy[inside]), indexes=1)])
            out[inside] = _depth_values(vals, src.nodata)
    return out


def building_depths(
    buildings: gpd.GeoDataFrame, raster: str, pixels: FootprintPixels | None = None
) -> pd.DataFrame:
    """Zonal depth statistics over each footprint (see the module docstring).

    Parameters
    ----------
    buildings : GeoDataFrame
        Footprint polygons (any CRS with a definition).
    raster : str
        Path of a single-band flood-depth raster (metres).
    pixels : FootprintPixels, optional
        Precomputed :func:`footprint_pixels` for this raster grid (reuse across scenarios
        that share a grid).

    Returns
    -------
    DataFrame
        Indexed like ``buildings``: ``depth_max``, ``depth_mean``, ``n_pixels`` and
        ``sampled`` (True where the centroid was point-sampled).
    """
    n = len(buildings)
    with rasterio.open(raster) as src:
        geoms = _in_crs(buildings, src.crs)
        if pixels is None:
            pixels = footprint_pixels(geoms, src.transform, src.shape)
        w = pixels.window
        depth_max = np.zeros(n)
        depth_sum = np.zeros(n)
        count = np.bincount(pixels.building, minlength=n)
        if len(pixels.building):
            block = src.read(1, window=w)
            vals = _depth_values(block[pixels.row - w.row_off, pixels.col - w.col_off], src.nodata)
            np.maximum.at(depth_max, pixels.building, vals)
            depth_sum = np.bincount(pixels.building, weights=vals, minlength=n)
    sampled = count == 0
    mean = np.divide(depth_sum, count, out=np.zeros(n), where=count > 0)
    if sampled.any():
        d = sample_points(buildings.iloc[np.flatnonzero(sampled)], raster)
        depth_max[sampled] = d
        mean[sampled] = d
    return pd.DataFrame(
        {"depth_max": depth_max, "depth_mean": mean, "n_pixels": count, "sampled": sampled},
        index=buildings.index,
    )


def assign_shelters(
    movers: gpd.GeoDataFrame,
    shelters: gpd.GeoDataFrame,
    people: str = "resident_pop",
    capacity: str = "capacity",
) -> pd.DataFrame:
    """Assign each building to evacuate, whole, to the nearest shelter with room (greedy).

    Parameters
    ----------
    movers : GeoDataFrame
        Buildings to evacuate, with the number of people in column ``people``.
    shelters : GeoDataFrame
        Usable shelters with ``capacity`` (people) and ``facility_code``.
    people, capacity : str
        Column names.

    Returns
    -------
    DataFrame
        Indexed like ``movers``: ``shelter_code`` (None when no shelter had room) and
        ``distance_m`` (straight line, UTM 49N).

    Notes
    -----
    All (building, shelter) pairs are visited by increasing distance; a building goes to the
    first shelter of its pairs that can take all its people. Ties keep the input order.
    """
    n, m = len(movers), len(shelters)
    out = pd.DataFrame(
        {
            "shelter_code": pd.Series([None] * n, index=movers.index, dtype=object),
            "distance_m": np.full(n, np.nan),
        },
        index=movers.index,
    )
    if n == 0 or m == 0:
        return out
    pop = movers[people].fillna(0).to_numpy(float)
    room = shelters[capacity].fillna(0).to_numpy(float).copy()
    b = shapely.get_coordinates(shapely.centroid(_in_crs(movers, UTM)))
    s = shapely.get_coordinates(_in_crs(shelters, UTM))
    dist = np.hypot(b[:, None, 0] - s[None, :, 0], b[:, None, 1] - s[None, :, 1])
    order = np.argsort(dist, axis=None, kind="stable")
    shelter_of = np.full(n, -1)
    left = n
    for k in order.tolist():
        i, j = divmod(k, m)
        if shelter_of[i] >= 0 or room[j] < pop[i]:
            continue
        shelter_of[i] = j
        room[j] -= pop[i]
        left -= 1
        if left == 0:
            break
    ok = shelter_of >= 0
    codes = shelters["facility_code"].to_numpy(object)
    out.loc[ok, "shelter_code"] = codes[shelter_of[ok]]
    out.loc[ok, "distance_m"] = dist[np.flatnonzero(ok), shelter_of[ok]]
    return out


def exposure_by_community(
    buildings: pd.DataFrame,
    communities: gpd.GeoDataFrame | None = None,
    people: str = "resident_pop",
) -> pd.DataFrame:
    """Buildings and people per depth class, to move and unsheltered, per community.

    ``buildings`` needs ``community_code``, ``depth_class``, ``people``, ``evacuate`` and
    ``shelter_code``; with ``communities`` the result is a GeoDataFrame of their polygons
    (every community, zeros included) with ``name``.
    """
    b = buildings
    cls = [c for c, _ in CLASSES]
    g = b.groupby(["community_code", "depth_class"])
    nb = g.size().unstack(fill_value=0).reindex(columns=cls, fill_value=0)
    pop = g[people].sum().unstack(fill_value=0).reindex(columns=cls, fill_value=0)
    table = pd.concat([nb.add_prefix("buildings_"), pop.add_prefix("people_")], axis=1)
    table.columns = [str(c) for c in table.columns]
    mv = b[b["evacuate"]]
    table["buildings_to_move"] = mv.groupby("community_code").size()
    table["people_to_move"] = mv.groupby("community_code")[people].sum()
    un = mv[mv["shelter_code"].isna()]
    table["people_unsheltered"] = un.groupby("community_code")[people].sum()
    table = table.fillna(0).astype(int)
    table["buildings"] = nb.sum(axis=1)
    table["people"] = pop.sum(axis=1)
    table["share_people_wet"] = (
        (1 - table["people_dry"] / table["people"].where(table["people"] > 0)).fillna(0.0).round(4)
    )
    table.index.name = "community_code"
    if communities is None:
        return table.reset_index()
    c = communities[["code", "name", "geometry"]].rename(columns={"code": "community_code"})
    out = c.merge(table.reset_index(), on="community_code", how="left")
    num = [col for col in table.columns if col != "share_people_wet"]
    out[num] = out[num].fillna(0).astype(int)
    out["share_people_wet"] = out["share_people_wet"].fillna(0.0)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=communities.crs)


def points_at_risk(
    flood_points: gpd.GeoDataFrame | None,
    fixtures: gpd.GeoDataFrame | None,
    raster: str,
    risk_depth: float = 0.15,
) -> gpd.GeoDataFrame:
    """Waterlogging points, pumping stations and manhole covers with their depth.

    Returns
    -------
    GeoDataFrame
        ``source`` (layer), ``code``, ``kind`` (``waterlogging_point``, ``pump_station`` or
        ``manhole_cover``), ``subclass`` (fixtures only),
        ``community_code``, ``depth`` (m) and ``at_risk`` (depth >= ``risk_depth``), EPSG:4326.
    """
    parts = []
    if flood_points is not None and len(flood_points):
        f = flood_points[flood_points["facility_type"].isin(["waterlogging_point", "pump_station"])]
        parts.append(
            gpd.GeoDataFrame(
                {
                    "source": "flood_prevention",
                    "code": f["facility_code"].to_numpy(),
                    "kind": f["facility_type"].to_numpy(),
                    "community_code": f["community_code"].to_numpy(),
                },
                geometry=f.geometry.to_crs(4326).to_numpy(),
                crs=4326,
            )
        )
    if fixtures is not None and len(fixtures):
        f = fixtures[fixtures["subclass"].isin(MANHOLE_SUBCLASSES)]
        parts.append(
            gpd.GeoDataFrame(
                {
                    "source": "urban_fixtures",
                    "code": f["component_code"].to_numpy(),
                    "kind": "manhole_cover",
                    "subclass": f["subclass"].to_numpy(),
                    "community_code": f["community_code"].to_numpy(),
                },
                geometry=f.geometry.to_crs(4326).to_numpy(),
                crs=4326,
            )
        )
    if not parts:
        return gpd.GeoDataFrame(
            {
                "source": [],
                "code": [],
                "kind": [],
                "community_code": [],
                "depth": [],
                "at_risk": [],
            },
            geometry=[],
            crs=4326,
        )
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=4326)
    out["depth"] = sample_points(out, raster).round(3)
    out["at_risk"] = out["depth"] >= risk_depth
    return out


@dataclass
class FloodExposure:
    """Result of :func:`flood_exposure`.

    Attributes
    ----------
    buildings : GeoDataFrame
        One row per building: ``building_code``, ``community_code``, ``use``, people,
        ``depth_max``, ``depth_mean``, ``n_pixels``, ``sampled``, ``depth_class``,
        ``evacuate``, ``shelter_code``, ``distance_m``.
    communities : GeoDataFrame or DataFrame
        :func:`exposure_by_community`.
    shelters : GeoDataFrame
        Every shelter: ``capacity``, ``depth``, ``usable``, ``assigned``, ``remaining``.
    points : GeoDataFrame
        :func:`points_at_risk`.
    summary : dict
        District totals.
    """

    buildings: gpd.GeoDataFrame
    communities: pd.DataFrame
    shelters: gpd.GeoDataFrame
    points: gpd.GeoDataFrame
    summary: dict = field(default_factory=dict)


def flood_exposure(
    buildings: gpd.GeoDataFrame,
    raster: str,
    *,
    communities: gpd.GeoDataFrame | None = None,
    flood_points: gpd.GeoDataFrame | None = None,
    fixtures: gpd.GeoDataFrame | None = None,
    evacuate_depth: float = 0.5,
    risk_depth: float = 0.15,
    people: str = "resident_pop",
    pixels: FootprintPixels | None = None,
) -> FloodExposure:
    """Exposure of buildings, people, shelters and fixtures to one flood-depth raster.

    Parameters
    ----------
    buildings : GeoDataFrame
        The ``building_population`` layer (footprints, ``community_code``, ``people``).
    raster : str
        Flood-depth raster (metres), e.g. ``geodata.rasters.raster_files(dir)['surge_3m']``.
    communities : GeoDataFrame, optional
        The ``communities`` layer: the per-community table then carries their polygons.
    flood_points : GeoDataFrame, optional
        The ``flood_prevention`` layer: shelters, waterlogging points, pumping stations.
    fixtures : GeoDataFrame, optional
        The ``urban_fixtures`` layer (manhole covers).
    evacuate_depth : float
        Buildings at least this deep (maximum over the footprint) are evacuated.
    risk_depth : float
        Points (and shelter sites) at least this deep are at risk (not usable).
    people : str
        Population column of ``buildings``.
    pixels : FootprintPixels, optional
        Precomputed footprint pixels for the raster's grid.

    Returns
    -------
    FloodExposure
    """
    check_positive(evacuate_depth, "evacuate_depth")
    check_positive(risk_depth, "risk_depth")
    for col in ("community_code", people):
        if col not in buildings.columns:
            raise AnalyticsError(
                f"buildings need a {col!r} column; they have: "
                f"{', '.join(map(str, buildings.columns))}"
            )
    depths = building_depths(buildings, raster, pixels)
    keep = [c for c in ("building_code", "community_code", "use", people) if c in buildings]
    b = gpd.GeoDataFrame(
        buildings[keep].copy(), geometry=buildings.geometry.to_numpy(), crs=buildings.crs
    )
    b[people] = b[people].fillna(0).astype(int)
    b = b.join(depths)
    b["depth_max"] = b["depth_max"].round(3)
    b["depth_mean"] = b["depth_mean"].round(3)
    b["depth_class"] = depth_class(b["depth_max"])
    b["evacuate"] = (b["depth_max"] >= evacuate_depth) & (b[people] > 0)

    if flood_points is not None and len(flood_points):
        sh = flood_points[flood_points["facility_type"] == "shelter"]
    else:
        sh = gpd.GeoDataFrame(
            {"facility_code": [], "capacity": [], "community_code": []}, geometry=[], crs=4326
        )
    shelters = gpd.GeoDataFrame(
        sh[
            ["facility_code", "name", "community_code", "capacity"]
            if "name" in sh
            else ["facility_code", "community_code", "capacity"]
        ].copy(),
        geometry=sh.geometry.to_numpy(),
        crs=sh.crs,
    )
    shelters["capacity"] = shelters["capacity"].fillna(0).astype(int)
    shelters["depth"] = sample_points(shelters, raster).round(3) if len(shelters) else []
    shelters["usable"] = shelters["depth"] < risk_depth
    movers = b[b["evacuate"]]
    assigned = assign_shelters(movers, shelters[shelters["usable"]], people=people)
    b["shelter_code"] = pd.Series([None] * len(b), index=b.index, dtype=object)
    b["distance_m"] = np.nan
    b.loc[assigned.index, "shelter_code"] = assigned["shelter_code"]
    b.loc[assigned.index, "distance_m"] = assigned["distance_m"].round(1)
    load = b[b["shelter_code"].notna()].groupby("shelter_code")[people].sum()
    shelters["assigned"] = shelters["facility_code"].map(load).fillna(0).astype(int)
    shelters["remaining"] = np.where(
        shelters["usable"], shelters["capacity"] - shelters["assigned"], 0
    )

    table = exposure_by_community(b, communities, people=people)
    points = points_at_risk(flood_points, fixtures, raster, risk_depth)
    moving = b["evacuate"]
    unsheltered = moving & b["shelter_code"].isna()
    summary = {
        "buildings": int(len(b)),
        "people": int(b[people].sum()),
        "buildings_by_class": {c: int((b["depth_class"] == c).sum()) for c, _ in CLASSES},
        "people_by_class": {c: int(b.loc[b["depth_class"] == c, people].sum()) for c, _ in CLASSES},
        "evacuate_depth_m": evacuate_depth,
        "risk_depth_m": risk_depth,
        "buildings_to_move": int(moving.sum()),
        "people_to_move": int(b.loc[moving, people].sum()),
        "shelters": int(len(shelters)),
        "shelters_usable": int(shelters["usable"].sum()),
        "shelter_capacity_usable": int(shelters.loc[shelters["usable"], "capacity"].sum()),
        "people_sheltered": int(b.loc[moving & ~unsheltered, people].sum()),
        "people_unsheltered": int(b.loc[unsheltered, people].sum()),
        "buildings_unsheltered": int(unsheltered.sum()),
        "mean_distance_m": (
            round(float(b.loc[moving & ~unsheltered, "distance_m"].mean()), 1)
            if (moving & ~unsheltered).any()
            else None
        ),
        "max_distance_m": (
            round(float(b.loc[moving & ~unsheltered, "distance_m"].max()), 1)
            if (moving & ~unsheltered).any()
            else None
        ),
        "points_at_risk": {
            k: int(v) for k, v in points[points["at_risk"]].groupby("kind").size().items()
        },
        "buildings_point_sampled": int(b["sampled"].sum()),
    }
    return FloodExposure(
        buildings=b, communities=table, shelters=shelters, points=points, summary=summary
    )
