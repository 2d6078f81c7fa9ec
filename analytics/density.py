"""Kernel density surfaces (GeoTIFF) and density-based clusters (DBSCAN / HDBSCAN).

Functions
---------
silverman_bandwidth
    ArcGIS's default search radius (Silverman's rule of thumb adapted to two dimensions).
kernel_density
    Quartic-kernel density written as a single-band float32 GeoTIFF (:class:`KernelDensity`).
density_clusters
    DBSCAN or HDBSCAN clusters of points with convex/concave hull polygons
    (:class:`DensityClusters`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.transform import Affine, from_origin

from analytics.errors import AnalyticsError, check_choice, check_positive
from analytics.weights import point_coordinates, to_projected

__all__ = [
    "CLUSTER_METHODS",
    "DENSITY_UNITS",
    "HULLS",
    "DensityClusters",
    "KernelDensity",
    "density_clusters",
    "kernel_density",
    "silverman_bandwidth",
]

CLUSTER_METHODS = ("dbscan", "hdbscan")
HULLS = ("convex", "concave")
#: output units -> multiplier applied to points per square metre
DENSITY_UNITS = {"per_m2": 1.0, "per_km2": 1e6, "per_ha": 1e4}


def silverman_bandwidth(coords: np.ndarray, weights: np.ndarray | None = None) -> float:
    """ArcGIS default search radius for kernel density, in CRS units (metres).

    ``0.9 * min(SD, sqrt(1 / ln 2) * Dm) * n ** -0.2`` where ``SD`` is the (weighted) standard
    distance, ``Dm`` the (weighted) median distance to the (weighted) mean centre and ``n`` the
    number of points (the sum of the weights when a population field is used).
    """
    coords = np.asarray(coords, dtype=float)
    wts = np.ones(len(coords)) if weights is None else np.asarray(weights, dtype=float)
    n = wts.sum()
    centre = (coords * wts[:, None]).sum(axis=0) / n
    d = np.hypot(*(coords - centre).T)
    sd = np.sqrt((wts * d * d).sum() / n)
    order = np.argsort(d)
    cum = np.cumsum(wts[order])
    dm = d[order][np.searchsorted(cum, 0.5 * n)]
    h = 0.9 * min(sd, np.sqrt(1.0 / np.log(2.0)) * dm) * n**-0.2
    if not h > 0:
        raise AnalyticsError("cannot derive a bandwidth from coincident points; give bandwidth")
    return float(h)


@dataclass(frozen=True)
class KernelDensity:
    """Result of :func:`kernel_density`.

    Attributes
    ----------
    path : str
        GeoTIFF written.
    bandwidth : float
        Search radius in metres.
    cell_size : float
        Pixel size in metres.
    units : str
        Density units (see :data:`DENSITY_UNITS`).
    crs : str
        CRS of the raster (projected).
    transform : Affine
        Pixel-to-CRS transform.
    shape : tuple of int
        ``(rows, cols)``.
    skipped : int
        Points left out because their population value is missing (also the GeoTIFF tag
        ``skipped_null_population``).
    """

    path: str
    bandwidth: float
    cell_size: float
    units: str
    crs: str
    transform: Affine
    shape: tuple[int, int]
    skipped: int = 0


def kernel_density(
    points,
    path,
    *,
    population_field: str | None = None,
    bandwidth: float | None = None,
    cell_size: float | None = None,
    units: str = "per_km2",
) -> KernelDensity:
    """Quartic-kernel density of points written as a GeoTIFF.

    The kernel is ArcGIS's (Silverman 1986, eq. 4.5):
    ``K(d) = 3 / (pi r**2) * (1 - (d / r)**2)**2`` for ``d < r``, so each point contributes a
    mass of 1 (or its population value) and the raster integrates to about the number of points.

    Parameters
    ----------
    points : GeoDataFrame of points
        Geographic input is reprojected to UTM (warning).
    path : str or path-like
        Output GeoTIFF (float32, one band, deflate-compressed).
    population_field : str, optional
        Numeric weight per point.  Points whose value is missing (None/NaN) are skipped with a
        :class:`UserWarning` saying how many (as ArcGIS skips null populations); non-numeric or
        infinite values, or no value at all, raise :class:`~analytics.errors.AnalyticsError`.
    bandwidth : float, optional
        Search radius ``r`` in metres; default :func:`silverman_bandwidth`.
    cell_size : float, optional
        Pixel size in metres; default the shorter side of the points' extent / 250 (ArcGIS's
        default), but never coarser than ``r / 4``.
    units : {"per_km2", "per_m2", "per_ha"}, default "per_km2"
        Density units: points (or population) per square kilometre / metre / hectare.

    Returns
    -------
    KernelDensity
        The raster covers the points' extent padded by ``r`` so no kernel mass is cut off.  Its
        nodata value is NaN (every pixel is computed, so none is nodata; readers that honour
        nodata will never mistake a zero density for "no data").
    """
    check_choice(units, "density units", DENSITY_UNITS)
    check_positive(bandwidth, "bandwidth")
    check_positive(cell_size, "cell_size")
    pts = to_projected(points, stacklevel=3)
    xy = point_coordinates(pts)
    if len(xy) == 0:
        raise AnalyticsError("no points to estimate a density from")
    skipped = 0
    if population_field is None:
        wts = np.ones(len(xy))
    elif population_field in pts.columns:
        raw = pts[population_field]
        wts = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        missing = raw.isna().to_numpy()
        invalid = (np.isnan(wts) & ~missing) | np.isinf(wts)
        if invalid.any():
            raise AnalyticsError(
                f"population field {population_field!r} has {int(invalid.sum())} non-numeric "
                f"or infinite values of {len(wts)}"
            )
        if missing.all():
            raise AnalyticsError(
                f"population field {population_field!r} has no value: all {len(wts)} are missing"
            )
        if missing.any():
            warnings.warn(
                f"{int(missing.sum())} of {len(wts)} points have no {population_field!r} value "
                "and are skipped (as ArcGIS skips null populations)",
                UserWarning,
                stacklevel=2,
            )
            xy, wts = xy[~missing], wts[~missing]
            skipped = int(missing.sum())
    else:
        raise AnalyticsError(
            f"{population_field!r} is not a column, must be one of: "
            f"{', '.join(str(c) for c in pts.columns if c != pts.geometry.name)}"
        )
    r = float(bandwidth) if bandwidth is not None else silverman_bandwidth(xy, wts)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    if cell_size is None:
        side = float(np.min(hi - lo))
        cell_size = min(side / 250.0 if side > 0 else r / 4.0, r / 4.0)
    cs = float(cell_size)
    minx, miny = lo - r
    ncol = int(np.ceil((hi[0] + r - minx) / cs))
    nrow = int(np.ceil((hi[1] + r - miny) / cs))
    maxy = miny + nrow * cs
    grid = np.zeros(nrow * ncol)
    # column/row of the pixel containing each point; visit the stencil of pixels within r
    pc = np.floor((xy[:, 0] - minx) / cs).astype(np.int64)
    pr = np.floor((maxy - xy[:, 1]) / cs).astype(np.int64)
    reach = int(np.ceil(r / cs)) + 1
    norm = 3.0 / (np.pi * r * r)
    for dr in range(-reach, reach + 1):
        for dc in range(-reach, reach + 1):
            c = pc + dc
            rr = pr + dr
            ok = (c >= 0) & (c < ncol) & (rr >= 0) & (rr < nrow)
            cx = minx + (c + 0.5) * cs
            cy = maxy - (rr + 0.5) * cs
            u2 = ((cx - xy[:, 0]) ** 2 + (cy - xy[:, 1]) ** 2) / (r * r)
            ok &= u2 < 1.0
            if ok.any():
                k = norm * (1.0 - u2[ok]) ** 2 * wts[ok]
                grid += np.bincount(rr[ok] * ncol + c[ok], weights=k, minlength=grid.size)
    dens = (grid.reshape(nrow, ncol) * DENSITY_UNITS[units]).astype(np.float32)
    transform = from_origin(minx, maxy, cs, cs)
    crs = pts.crs.to_wkt() if pts.crs is not None else None
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=nrow,
        width=ncol,
        count=1,
        dtype="float32",
        crs=crs,
        transform=transform,
        compress="deflate",
        nodata=np.nan,
    ) as dst:
        dst.write(dens, 1)
        dst.update_tags(
            units=units,
            bandwidth_m=f"{r:.3f}",
            kernel="quartic",
            skipped_null_population=str(skipped),
        )
    return KernelDensity(
        path=str(path),
        bandwidth=r,
        cell_size=cs,
        units=units,
        crs=pts.crs.to_string() if pts.crs is not None else "",
        transform=transform,
        shape=(nrow, ncol),
        skipped=skipped,
    )


@dataclass
class DensityClusters:
    """Result of :func:`density_clusters`.

    Attributes
    ----------
    points : GeoDataFrame
        Input points with a ``cluster`` column (-1 = noise).
    clusters : GeoDataFrame
        One polygon per cluster: ``cluster``, ``count``, ``area_m2``; projected CRS.
    """

    points: gpd.GeoDataFrame
    clusters: gpd.GeoDataFrame


def density_clusters(
    points,
    method: str = "hdbscan",
    *,
    eps: float | None = None,
    min_samples: int = 5,
    min_cluster_size: int = 10,
    hull: str = "convex",
    concave_ratio: float = 0.3,
) -> DensityClusters:
    """Density-based clusters of points with hull polygons.

    Parameters
    ----------
    points : GeoDataFrame of points
    method : {"hdbscan", "dbscan"}
        scikit-learn's ``HDBSCAN`` or ``DBSCAN``.
    eps : float
        DBSCAN neighbourhood radius in metres (required for ``"dbscan"``).
    min_samples : int, default 5
        Core-point neighbourhood size (both methods); HDBSCAN refuses more than the number of
        points (:class:`~analytics.errors.AnalyticsError`, HTTP 400).
    min_cluster_size : int, default 10
        HDBSCAN's smallest cluster (at least 2).
    hull : {"convex", "concave"}
        Polygon per cluster: ``shapely.convex_hull`` or ``shapely.concave_hull`` with
        ``concave_ratio``.

    Returns
    -------
    DensityClusters
    """
    check_choice(method, "cluster method", CLUSTER_METHODS)
    check_choice(hull, "hull", HULLS)
    check_positive(min_samples, "min_samples", integer=True)
    check_positive(min_cluster_size, "min_cluster_size", integer=True)
    from sklearn.cluster import DBSCAN, HDBSCAN

    pts = to_projected(points, stacklevel=3)
    xy = point_coordinates(pts)
    n = len(xy)
    if n == 0:
        raise AnalyticsError(
            "there are no points to cluster (the selection is empty: check the filter and datetime)"
        )
    if method == "hdbscan":
        if int(min_cluster_size) < 2:
            raise AnalyticsError(
                f"min_cluster_size must be at least 2 for HDBSCAN, got {min_cluster_size}"
            )
        if n < 2:
            raise AnalyticsError("HDBSCAN needs at least 2 points, got 1")
        if int(min_samples) > n:
            raise AnalyticsError(
                f"min_samples ({int(min_samples)}) is larger than the number of points ({n}); "
                f"HDBSCAN needs min_samples <= {n}: use a smaller min_samples or select more "
                "points"
            )
    if method == "dbscan":
        if eps is None:
            raise AnalyticsError("method='dbscan' needs eps (metres)")
        check_positive(eps, "eps")
        labels = DBSCAN(eps=float(eps), min_samples=int(min_samples)).fit_predict(xy)
    else:
        labels = HDBSCAN(
            min_cluster_size=int(min_cluster_size), min_samples=int(min_samples), copy=True
        ).fit_predict(xy)
    out = pts.copy()
    out["cluster"] = labels
    ids = np.unique(labels[labels >= 0])
    polys, counts = [], []
    for cid in ids:
        mp = shapely.multipoints(xy[labels == cid])
        poly = (
            shapely.convex_hull(mp)
            if hull == "convex"
            else shapely.concave_hull(mp, ratio=concave_ratio)
        )
        polys.append(poly)
        counts.append(int((labels == cid).sum()))
    clusters = gpd.GeoDataFrame(
        {"cluster": ids.astype(int), "count": np.asarray(counts, dtype=int)},
        geometry=polys,
        crs=pts.crs,
    )
    clusters["area_m2"] = clusters.area
    return DensityClusters(points=out, clusters=clusters)
