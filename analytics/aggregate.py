"""Aggregate incident points to fishnet squares, hexagons or given polygons (communities).

Functions
---------
fishnet_grid, hexagon_grid
    Regular tessellations covering a bounding box.
fishnet_shape, fishnet_cells
    The fishnet's ``(nrow, ncol)`` and each point's ``(row, col)``, computed with the same
    arithmetic so that every point of the bounding box (its far edges included) is in exactly
    one cell.
aggregate_points
    Count points per cell; returns polygons with a ``count`` column.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from scipy.spatial import cKDTree

from analytics.errors import AnalyticsError, check_choice, check_positive
from analytics.weights import point_coordinates, to_projected

__all__ = [
    "AGGREGATIONS",
    "aggregate_points",
    "fishnet_cells",
    "fishnet_grid",
    "fishnet_shape",
    "hexagon_grid",
]

AGGREGATIONS = ("fishnet", "hexagon", "communities")


def fishnet_shape(bounds, cell_size: float) -> tuple[int, int]:
    """``(nrow, ncol)`` of the fishnet of :func:`fishnet_grid`.

    ``floor(extent / cell_size) + 1`` along each axis: the cell index of the far edge
    (``maxx``, ``maxy``) computed exactly as :func:`fishnet_cells` computes it, plus one, so a
    point on the far edge always has a cell, also when the extent is a whole number of cells
    (where ``ceil`` and a float ``%`` test disagreed and the point was dropped).
    """
    minx, miny, maxx, maxy = map(float, bounds)
    cs = float(cell_size)
    ncol = max(1, int(np.floor((maxx - minx) / cs)) + 1)
    nrow = max(1, int(np.floor((maxy - miny) / cs)) + 1)
    return nrow, ncol


def fishnet_cells(xy, bounds, cell_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (int64) of the fishnet cell of each point of ``xy`` (``(n, 2)``).

    Cell ``(row, col)`` is ``[minx + col * cell_size, minx + (col + 1) * cell_size)`` by
    ``[miny + row * cell_size, ...)`` (half-open, so a point on an inner edge is in exactly one
    cell); points of the bounding box's far edges are in the last row/column.  Points outside
    ``bounds`` get indices outside ``0 .. nrow - 1`` / ``0 .. ncol - 1``.
    """
    xy = np.asarray(xy, dtype=float)
    minx, miny = float(bounds[0]), float(bounds[1])
    cs = float(cell_size)
    col = np.floor((xy[:, 0] - minx) / cs).astype(np.int64)
    row = np.floor((xy[:, 1] - miny) / cs).astype(np.int64)
    return row, col


def fishnet_grid(bounds, cell_size: float, crs=None) -> gpd.GeoDataFrame:
    """Square cells of side ``cell_size`` covering ``bounds = (minx, miny, maxx, maxy)``.

    Returns a GeoDataFrame with ``cell_id``, ``row``, ``col``; cells are anchored at
    ``(minx, miny)``; there are :func:`fishnet_shape` rows and columns, so the far edges are
    inside the last row and column (use :func:`fishnet_cells` to find a point's cell).
    """
    check_positive(cell_size, "cell_size")
    minx, miny, maxx, maxy = map(float, bounds)
    nrow, ncol = fishnet_shape(bounds, cell_size)
    rows, cols = np.divmod(np.arange(nrow * ncol), ncol)
    x0 = minx + cols * cell_size
    y0 = miny + rows * cell_size
    geoms = shapely.box(x0, y0, x0 + cell_size, y0 + cell_size)
    return gpd.GeoDataFrame(
        {"cell_id": np.arange(rows.size), "row": rows, "col": cols}, geometry=geoms, crs=crs
    )


def _hex_centres(bounds, cell_size):
    minx, miny, maxx, maxy = map(float, bounds)
    side = cell_size / np.sqrt(3.0)
    dy = 1.5 * side
    nrow = int(np.ceil((maxy - miny) / dy)) + 2
    ncol = int(np.ceil((maxx - minx) / cell_size)) + 2
    r, c = np.divmod(np.arange(nrow * ncol), ncol)
    cx = minx + c * cell_size + (r % 2) * cell_size / 2.0
    cy = miny + r * dy
    return cx, cy, r, c, side


def _hexagons(cx, cy, side):
    ang = np.deg2rad(30 + 60 * np.arange(6))  # pointy-top hexagon
    xs = cx[:, None] + side * np.cos(ang)
    ys = cy[:, None] + side * np.sin(ang)
    coords = np.stack([xs, ys], axis=-1)
    return shapely.polygons(np.concatenate([coords, coords[:, :1]], axis=1))


def hexagon_grid(bounds, cell_size: float, crs=None) -> gpd.GeoDataFrame:
    """Pointy-top hexagons of width ``cell_size`` (flat-to-flat = centre spacing) covering bounds.

    Hexagon area is ``sqrt(3) / 2 * cell_size**2`` (0.866 of the fishnet cell of the same size).
    """
    check_positive(cell_size, "cell_size")
    cx, cy, r, c, side = _hex_centres(bounds, cell_size)
    minx, miny, maxx, maxy = map(float, bounds)
    keep = (cx + cell_size / 2 >= minx) & (cx - cell_size / 2 <= maxx) & (cy + side >= miny)
    keep &= cy - side <= maxy
    cx, cy, r, c = cx[keep], cy[keep], r[keep], c[keep]
    return gpd.GeoDataFrame(
        {"cell_id": np.arange(cx.size), "row": r, "col": c},
        geometry=_hexagons(cx, cy, side),
        crs=crs,
    )


def aggregate_points(
    points,
    aggregation: str = "fishnet",
    *,
    cell_size: float | None = None,
    polygons=None,
    keep_empty: bool = False,
) -> gpd.GeoDataFrame:
    """Count points per cell.

    Parameters
    ----------
    points : GeoDataFrame of points
        Geographic CRS is reprojected to UTM (warning); the output is in the projected CRS.
    aggregation : {"fishnet", "hexagon", "communities"}
        Square cells, hexagons, or the given ``polygons``.
    cell_size : float
        Cell side (fishnet) or width (hexagon) in metres; required for grids.
    polygons : GeoDataFrame, optional
        Required for ``"communities"``: each point is counted in the polygon containing it
        (points on a shared edge go to the first polygon).  For grids, if given, only cells
        intersecting these polygons are kept (zero counts included): ArcGIS's *bounding
        polygons defining where incidents are possible*.
    keep_empty : bool, default False
        Keep grid cells with no point when no ``polygons`` are given.

    Returns
    -------
    GeoDataFrame
        Polygons with ``cell_id`` (or the polygon's columns) and ``count`` (int).
    """
    check_choice(aggregation, "aggregation", AGGREGATIONS)
    pts = to_projected(points, stacklevel=3)
    xy = point_coordinates(pts)
    crs = pts.crs
    if aggregation == "communities":
        if polygons is None:
            raise AnalyticsError("aggregation='communities' needs polygons")
        polys = polygons.to_crs(crs) if crs is not None and polygons.crs != crs else polygons
        polys = polys.reset_index(drop=True)
        tree = shapely.STRtree(np.asarray(polys.geometry.values, dtype=object))
        pi, gi = tree.query(shapely.points(xy), predicate="intersects")
        first = np.unique(pi, return_index=True)[1]
        counts = np.bincount(gi[first], minlength=len(polys))
        out = polys.copy()
        out["count"] = counts.astype(np.int64)
        return out
    check_positive(cell_size, "cell_size")
    if cell_size is None:
        raise AnalyticsError(f"aggregation={aggregation!r} needs a cell_size in metres")
    if polygons is not None:
        polys = polygons.to_crs(crs) if crs is not None and polygons.crs != crs else polygons
        bounds = polys.total_bounds
    else:
        bounds = np.r_[xy.min(axis=0), xy.max(axis=0)]
    if aggregation == "fishnet":
        grid = fishnet_grid(bounds, cell_size, crs)
        ncol = int(grid["col"].max()) + 1
        nrow = int(grid["row"].max()) + 1
        row, col = fishnet_cells(xy, bounds, cell_size)
        ok = (col >= 0) & (col < ncol) & (row >= 0) & (row < nrow)
        counts = np.bincount(row[ok] * ncol + col[ok], minlength=len(grid))
    else:
        grid = hexagon_grid(bounds, cell_size, crs)
        centres = shapely.get_coordinates(shapely.centroid(grid.geometry.values))
        _, idx = cKDTree(centres).query(xy, workers=-1)
        counts = np.bincount(idx, minlength=len(grid))
    grid["count"] = counts.astype(np.int64)
    if polygons is not None:
        union = shapely.union_all(np.asarray(polys.geometry.values, dtype=object))
        grid = grid[shapely.intersects(grid.geometry.values, union)]
    elif not keep_empty:
        grid = grid[grid["count"] > 0]
    return grid.reset_index(drop=True)
