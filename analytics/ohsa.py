"""Optimized Hot Spot Analysis (after ArcGIS's tool of the same name).

Workflow (each decision is recorded in :class:`OptimizedHotSpots`):

1. **Locational outliers** -- incidents whose nearest-neighbour distance exceeds the mean
   nearest-neighbour distance by more than three standard deviations are excluded when the cell
   size and grid extent are derived (they are still counted if they fall in a kept cell).
2. **Aggregation** -- incidents are counted in a fishnet, hexagons or given polygons
   (communities).  Without bounding polygons only grid cells with at least one incident are
   analysed; with ``bounding_polygons`` every cell that intersects them is kept, zeros included.
3. **Cell size** (grids, when not given) -- the larger of the mean nearest-neighbour distance of
   the non-outlier incidents and 1/100 of the longer side of their extent (so the grid has at most
   about 100 cells along its longer side).  This is our reading of ArcGIS's rule; ArcGIS does
   not publish the exact formula.
4. **Scale of analysis** -- incremental spatial autocorrelation: global Moran's I (randomisation
   z) of the counts for 10 distance bands starting at the distance where every (non-outlier)
   cell has a neighbour and growing by the mean nearest-neighbour distance of the cells; the
   first statistically significant (p < 0.05) local peak of z is used.  **Fallback** when there
   is no peak: the average distance to the ``K``-th nearest neighbour with ``K = 0.05 * n``
   clamped to ``[3, 30]`` (as ArcGIS documents).
5. **Gi*** with binary fixed-distance-band weights at that scale and FDR-corrected bins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from analytics.aggregate import AGGREGATIONS, aggregate_points
from analytics.errors import AnalyticsError, check_choice, check_positive
from analytics.gistar import hot_spots
from analytics.moran import global_moran
from analytics.weights import distance_band_weights, point_coordinates, to_projected

__all__ = [
    "OptimizedHotSpots",
    "incremental_spatial_autocorrelation",
    "locational_outliers",
    "optimized_hot_spots",
    "optimized_hot_spots_cells",
]

MIN_FEATURES = 30


@dataclass
class OptimizedHotSpots:
    """Result of :func:`optimized_hot_spots`.

    Attributes
    ----------
    cells : GeoDataFrame
        Analysed cells/polygons with ``count``, ``gi_z``, ``gi_p``, ``gi_bin`` (FDR) and
        ``n_neighbors``.
    cell_size : float or None
        Grid cell size in metres (``None`` for communities).
    distance_band : float
        Scale of analysis in metres.
    scale_method : str
        ``"peak"`` (first ISA peak), ``"fallback"`` (K-nearest-neighbour distance) or ``"user"``.
    n_outliers : int or None
        Locational outliers found among the incidents (``None`` when they were not counted).
    isa : DataFrame
        Incremental spatial autocorrelation table: ``distance``, ``moran_i``, ``z``, ``p``.
    """

    cells: gpd.GeoDataFrame
    cell_size: float | None
    distance_band: float
    scale_method: str
    n_outliers: int | None
    isa: pd.DataFrame


def locational_outliers(coords: np.ndarray) -> np.ndarray:
    """Boolean mask: nearest-neighbour distance > mean + 3 standard deviations."""
    d, _ = cKDTree(coords).query(coords, k=2, workers=-1)
    nn = d[:, 1]
    return nn > nn.mean() + 3.0 * nn.std()


def incremental_spatial_autocorrelation(
    coords: np.ndarray, values: np.ndarray, start: float, increment: float, n_bands: int = 10
) -> pd.DataFrame:
    """Global Moran's I (randomisation z) of ``values`` for ``n_bands`` distance bands.

    Returns a DataFrame with ``distance``, ``moran_i``, ``z``, ``p`` and ``peak`` (local maxima of
    ``z`` with ``p < 0.05``; a band is a peak if its z exceeds both neighbours', the last band
    never is).
    """
    rows = []
    for b in range(n_bands):
        dist = start + b * increment
        w = distance_band_weights(coords, dist)
        if w.nnz == 0:
            rows.append((dist, np.nan, np.nan, np.nan))
            continue
        m = global_moran(values, w, transform="R")
        rows.append((dist, m.I, m.z_rand, m.p_rand))
    isa = pd.DataFrame(rows, columns=["distance", "moran_i", "z", "p"])
    z = isa["z"].to_numpy()
    peak = np.zeros(len(z), dtype=bool)
    for i in range(len(z) - 1):
        left = z[i - 1] if i > 0 else -np.inf
        peak[i] = z[i] > left and z[i] > z[i + 1] and isa["p"].iloc[i] < 0.05
    isa["peak"] = peak
    return isa


def optimized_hot_spots(
    points,
    aggregation: str = "fishnet",
    *,
    cell_size: float | None = None,
    polygons=None,
    bounding_polygons=None,
    distance_band: float | None = None,
) -> OptimizedHotSpots:
    """Optimized Hot Spot Analysis of incident points (see the module docstring).

    Parameters
    ----------
    points : GeoDataFrame of incident points
    aggregation : {"fishnet", "hexagon", "communities"}
    cell_size : float, optional
        Grid cell size in metres; derived when omitted.
    polygons : GeoDataFrame, optional
        Community polygons, required for ``"communities"``.
    bounding_polygons : GeoDataFrame, optional
        Where incidents are possible (grids only): cells with zero incidents inside are kept.
    distance_band : float, optional
        Scale of analysis in metres; chosen by incremental spatial autocorrelation if omitted.

    Returns
    -------
    OptimizedHotSpots
    """
    check_choice(aggregation, "aggregation", AGGREGATIONS)
    check_positive(cell_size, "cell_size")
    check_positive(distance_band, "distance_band")
    pts = to_projected(points, stacklevel=3)
    if len(pts) < MIN_FEATURES:
        raise AnalyticsError(f"at least {MIN_FEATURES} incidents are needed, got {len(pts)}")
    xy = point_coordinates(pts)
    outliers = locational_outliers(xy)
    core = xy[~outliers]
    if aggregation == "communities":
        if polygons is None:
            raise AnalyticsError("aggregation='communities' needs polygons")
        cells = aggregate_points(pts, "communities", polygons=polygons)
        size = None
    else:
        if cell_size is None:
            d, _ = cKDTree(core).query(core, k=2, workers=-1)
            nn = d[:, 1]
            nn_mean = nn[nn > 0].mean() if (nn > 0).any() else 0.0
            extent = float(np.max(core.max(axis=0) - core.min(axis=0)))
            cell_size = max(nn_mean, extent / 100.0)
            if not cell_size > 0:
                raise AnalyticsError("all incidents are coincident; give cell_size")
        size = float(cell_size)
        kept = pts if bounding_polygons is not None else pts[~outliers]
        cells = aggregate_points(kept, aggregation, cell_size=size, polygons=bounding_polygons)
    return optimized_hot_spots_cells(
        cells, cell_size=size, distance_band=distance_band, n_outliers=int(outliers.sum())
    )


def optimized_hot_spots_cells(
    cells,
    *,
    cell_size: float | None,
    distance_band: float | None = None,
    n_outliers: int | None = 0,
) -> OptimizedHotSpots:
    """Steps 4 and 5 of :func:`optimized_hot_spots` on cells already counted.

    :func:`optimized_hot_spots` aggregates the incidents and calls this; cells counted
    elsewhere (e.g. over Dask partitions by :mod:`analytics.distributed`) get exactly the
    same scale of analysis and Gi*.

    Parameters
    ----------
    cells : GeoDataFrame
        Cells or polygons with a ``count`` column (projected CRS).
    cell_size : float or None
        Grid cell size in metres (``None`` for communities), recorded in the result.
    distance_band : float, optional
        Scale of analysis in metres; chosen by incremental spatial autocorrelation if omitted.
    n_outliers : int or None
        Locational outliers among the incidents, recorded in the result.

    Returns
    -------
    OptimizedHotSpots
    """
    check_positive(distance_band, "distance_band")
    size = cell_size
    if len(cells) < MIN_FEATURES:
        raise AnalyticsError(
            f"only {len(cells)} cells to analyse (at least {MIN_FEATURES} needed); "
            "use a smaller cell_size or more incidents"
        )
    counts = cells["count"].to_numpy(dtype=float)
    if np.all(counts == counts[0]):
        raise AnalyticsError("every cell has the same count; there is no pattern to analyse")
    cxy = point_coordinates(cells)
    d, _ = cKDTree(cxy).query(cxy, k=2, workers=-1)
    nn = d[:, 1]
    cell_out = nn > nn.mean() + 3.0 * nn.std()
    start = float(nn[~cell_out].max())
    increment = float(nn.mean())
    isa = incremental_spatial_autocorrelation(cxy, counts, start, increment)
    if distance_band is not None:
        band, method = float(distance_band), "user"
    elif isa["peak"].any():
        peak: Any = isa.at[isa["peak"].idxmax(), "distance"]
        band, method = float(peak), "peak"
    else:
        k = int(np.clip(round(0.05 * len(cxy)), 3, min(30, len(cxy) - 1)))
        dk, _ = cKDTree(cxy).query(cxy, k=k + 1, workers=-1)
        band, method = float(dk[:, k].mean()), "fallback"
    w = distance_band_weights(cxy, band)
    result = hot_spots(cells, "count", weights=w, fdr=True)
    return OptimizedHotSpots(
        cells=result,
        cell_size=size,
        distance_band=band,
        scale_method=method,
        n_outliers=n_outliers,
        isa=isa,
    )
