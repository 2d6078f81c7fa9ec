"""Sparse spatial weights as ``scipy.sparse.csr_array``.

All builders return an ``n x n`` CSR array **without self-weights** (zero diagonal), rows in the
order of the input rows.  Distances are measured in a projected CRS: geographic and Web
Mercator (any normal-aspect Mercator: its units are not ground metres off the equator) input is
reprojected to its estimated UTM zone (UTM 49N, EPSG:32649, at Tianya) with a warning.  Input
without a CRS is taken to be planar metres already (with a warning if its coordinates look like
longitude/latitude).  Missing, empty or NaN geometries are refused with an
:class:`~analytics.errors.AnalyticsError` that says how many rows have them.  Polygons are
represented by their centroids for the distance-based builders (as ArcGIS does).

Functions
---------
knn_weights, distance_band_weights, contiguity_weights
    Build weights from a GeoDataFrame/GeoSeries or an ``(n, 2)`` coordinate array.
transform_weights
    ``"B"`` (binary) or ``"R"`` (row-standardised).
with_self_weight
    Add a diagonal (the Gi* self-neighbour).
to_projected, point_coordinates, check_geometries, missing_geometries
    Helpers shared by the analyses.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

from analytics.errors import AnalyticsError, check_choice, check_positive

__all__ = [
    "CONTIGUITY_RULES",
    "TRANSFORMS",
    "contiguity_weights",
    "distance_band_weights",
    "check_geometries",
    "knn_weights",
    "missing_geometries",
    "point_coordinates",
    "to_projected",
    "transform_weights",
    "with_self_weight",
]

TRANSFORMS = ("B", "R")
CONTIGUITY_RULES = ("queen", "rook")


def _is_normal_mercator(crs) -> bool:
    """Whether ``crs`` is a normal-aspect Mercator (Web Mercator EPSG:3857, World Mercator ...).

    Their "metres" are ground metres only on the equator (or the standard parallel): the scale
    grows as ``1 / cos(latitude)``, so at Tianya (18 deg N) distances come out about 5 % long
    in projected units and areas about 11 % large.  Transverse and oblique Mercator (UTM,
    Gauss-Kruger, Hotine) are local projections and are kept.
    """
    if crs is None or not crs.is_projected:
        return False
    try:
        op = crs.coordinate_operation
    except Exception:  # noqa: BLE001 - unusual CRS definitions: treat as not Mercator
        return False
    name = (op.method_name if op is not None else "").lower()
    return "mercator" in name and "transverse" not in name and "oblique" not in name


def _looks_like_lonlat(gdf) -> bool:
    """Whether the (finite) bounds of ``gdf`` lie within longitude/latitude ranges."""
    b = np.asarray(gdf.total_bounds, dtype=float)
    return bool(
        np.all(np.isfinite(b)) and -180 <= b[0] and b[2] <= 180 and -90 <= b[1] and b[3] <= 90
    )


def missing_geometries(data) -> np.ndarray:
    """Boolean mask of rows whose geometry is missing (None/NaN), empty or has NaN coordinates.

    Parameters
    ----------
    data : GeoDataFrame or GeoSeries

    Returns
    -------
    numpy.ndarray of bool
    """
    geoms = data.geometry if isinstance(data, gpd.GeoDataFrame) else data
    arr = np.asarray(geoms.values, dtype=object)
    bad = shapely.is_missing(arr) | shapely.is_empty(arr)
    ok = np.flatnonzero(~bad)
    if ok.size:
        # a geometry such as POINT (nan nan) is neither missing nor empty for shapely
        coords, index = shapely.get_coordinates(arr[ok], return_index=True)
        nonfinite = ~np.isfinite(coords).all(axis=1)
        if nonfinite.any():
            bad[ok[np.unique(index[nonfinite])]] = True
    return bad


def check_geometries(data, *, coordinates: bool = True) -> None:
    """Raise :class:`AnalyticsError` if some rows have missing, empty or NaN geometries.

    The message says how many rows of how many; the process adapters drop such rows when they
    read a layer, library callers are asked to do the same (no silent row dropping here, as the
    results are aligned with the input rows).  ``coordinates=False`` skips the (slower) NaN
    coordinate scan when no geometry is missing or empty (:func:`point_coordinates` checks the
    coordinates it computes anyway).
    """
    if not coordinates:
        geoms = data.geometry if isinstance(data, gpd.GeoDataFrame) else data
        arr = np.asarray(geoms.values, dtype=object)
        if not (shapely.is_missing(arr) | shapely.is_empty(arr)).any():
            return
    _raise_if_missing(missing_geometries(data))


def _raise_if_missing(bad: np.ndarray) -> None:
    nbad = int(bad.sum())
    if nbad and nbad == bad.size:
        raise AnalyticsError(
            f"there are no features to analyse: all {nbad} rows have a missing or empty "
            "geometry (None, EMPTY or NaN coordinates)"
        )
    if nbad:
        raise AnalyticsError(
            f"{nbad} of {bad.size} rows have a missing or empty geometry (None, EMPTY or NaN "
            "coordinates); drop them first, e.g. "
            "gdf[~analytics.weights.missing_geometries(gdf)]"
        )


def to_projected(gdf, *, stacklevel: int = 2):
    """Return ``gdf`` in a projected CRS whose units are ground metres (locally).

    Parameters
    ----------
    gdf : GeoDataFrame or GeoSeries
        Input.  A geographic CRS (e.g. EPSG:4326 or CGCS2000 EPSG:4490) or a normal-aspect
        Mercator (Web Mercator EPSG:3857, World Mercator EPSG:3395; their units are not ground
        metres away from the equator) is reprojected to the estimated UTM zone (EPSG:32649 for
        Tianya) and a :class:`UserWarning` says so.  No CRS means planar coordinates in metres
        already (returned unchanged), but if the coordinates all lie within longitude/latitude
        ranges a :class:`UserWarning` says that they are taken as metres (set the CRS if they
        are degrees).  Rows with a missing, empty or NaN geometry raise
        :class:`~analytics.errors.AnalyticsError` naming how many.
    stacklevel : int
        Passed to :func:`warnings.warn` so the warning points at the caller's line.

    Returns
    -------
    GeoDataFrame or GeoSeries
    """
    if len(gdf):
        check_geometries(gdf, coordinates=False)
    if gdf.crs is None:
        if len(gdf) and _looks_like_lonlat(gdf):
            warnings.warn(
                "input has no CRS and its coordinates all lie within longitude/latitude "
                "ranges; they are taken as planar metres (set the CRS, e.g. "
                "gdf.set_crs(4326), if they are degrees)",
                UserWarning,
                stacklevel=stacklevel + 1,
            )
        return gdf
    mercator = _is_normal_mercator(gdf.crs)
    if not (gdf.crs.is_geographic or mercator):
        return gdf
    if len(gdf) == 0:
        raise AnalyticsError(
            "there are no features to analyse (the selection is empty: "
            "check the filter and datetime)"
        )
    utm = gdf.estimate_utm_crs()
    kind = "Mercator (its units are not ground metres)" if mercator else "geographic"
    warnings.warn(
        f"input CRS {gdf.crs.to_string()} is {kind}; distances are computed in "
        f"{utm.to_string()} (reproject to a projected CRS such as EPSG:32649 to silence this)",
        UserWarning,
        stacklevel=stacklevel + 1,
    )
    return gdf.to_crs(utm)


def point_coordinates(data, *, stacklevel: int = 2) -> np.ndarray:
    """Return an ``(n, 2)`` float array of planar coordinates.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries or array_like
        Points (their x/y), polygons/lines (their centroids) or an ``(n, 2)`` array taken as planar.
        Missing, empty or NaN geometries (or non-finite coordinates in an array) raise
        :class:`~analytics.errors.AnalyticsError`.
    """
    if isinstance(data, gpd.GeoDataFrame | gpd.GeoSeries):
        geoms = to_projected(data, stacklevel=stacklevel + 1)
        geoms = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
        arr = np.asarray(geoms.values, dtype=object)
        if arr.size and np.all(shapely.get_type_id(arr) == 0):
            coords = shapely.get_coordinates(arr).astype(float)
        else:
            coords = shapely.get_coordinates(shapely.centroid(arr)).astype(float)
        if len(coords) != len(arr) or not np.isfinite(coords).all():
            _raise_if_missing(missing_geometries(geoms))
            raise AnalyticsError(  # e.g. a degenerate polygon without a centroid
                f"{int((~np.isfinite(coords).all(axis=1)).sum())} of {len(arr)} features "
                "have no finite centroid"
            )
        return coords
    coords = np.asarray(data, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise AnalyticsError(f"coordinates must have shape (n, 2), got {coords.shape}")
    nonfinite = int((~np.isfinite(coords).all(axis=1)).sum())
    if nonfinite:
        raise AnalyticsError(f"{nonfinite} of {len(coords)} coordinate rows are NaN or infinite")
    return coords


def knn_weights(data, k: int = 8) -> sparse.csr_array:
    """Binary k-nearest-neighbour weights from a k-d tree (``cKDTree``, all cores).

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries or (n, 2) array
    k : int, default 8
        Number of neighbours, excluding the location itself.  Coincident points are neighbours
        of each other; a point is never its own neighbour.

    Returns
    -------
    scipy.sparse.csr_array
        ``n x n`` with exactly ``k`` ones per row and a zero diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> w = knn_weights(np.array([[0, 0], [1, 0], [3, 0]]), k=1)
    >>> w.toarray().astype(int).tolist()
    [[0, 1, 0], [1, 0, 0], [0, 1, 0]]
    """
    check_positive(k, "k", integer=True)
    coords = point_coordinates(data, stacklevel=3)
    n = len(coords)
    k = int(k)
    if k >= n:
        raise AnalyticsError(f"k must be smaller than the number of locations ({n}), got {k}")
    _, idx = cKDTree(coords).query(coords, k=k + 1, workers=-1)
    is_self = idx == np.arange(n)[:, None]
    missing = ~is_self.any(axis=1)  # self pushed out by more than k coincident points
    is_self[missing, -1] = True
    indices = idx[~is_self].reshape(n, k)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    data_ = np.ones(n * k)
    w = sparse.csr_array((data_, indices.ravel(), indptr), shape=(n, n))
    w.has_sorted_indices = False
    return w


def distance_band_weights(
    data, threshold: float, *, binary: bool = True, alpha: float = -1.0
) -> sparse.csr_array:
    """Fixed distance band weights.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries or (n, 2) array
    threshold : float
        Band in CRS units (metres after the UTM reprojection).  Pairs with distance ``<=
        threshold`` are neighbours.
    binary : bool, default True
        ``True``: weight 1; ``False``: inverse distance ``d ** alpha`` (coincident points, whose
        distance is 0, get the largest finite weight in the matrix).
    alpha : float, default -1
        Distance-decay exponent for ``binary=False`` (``-2`` for inverse distance squared).

    Returns
    -------
    scipy.sparse.csr_array
        Zero diagonal.  Locations with no neighbour within the band have an empty row.
    """
    check_positive(threshold, "threshold")
    coords = point_coordinates(data, stacklevel=3)
    n = len(coords)
    tree = cKDTree(coords)
    pairs = tree.query_pairs(float(threshold), output_type="ndarray")
    i = np.concatenate([pairs[:, 0], pairs[:, 1]])
    j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    if binary:
        vals = np.ones(len(i))
    else:
        d = np.hypot(*(coords[i] - coords[j]).T)
        with np.errstate(divide="ignore"):
            vals = np.where(d > 0, d, np.inf) ** float(alpha)
        finite = np.isfinite(vals) & (vals > 0)
        fill = vals[finite].max() if finite.any() else 1.0
        vals[~finite] = fill
    w = sparse.csr_array((vals, (i, j)), shape=(n, n))
    w.sum_duplicates()
    return w


def contiguity_weights(data, rule: str = "queen") -> sparse.csr_array:
    """Binary polygon contiguity weights (shapely ``STRtree``; no libpysal needed).

    Parameters
    ----------
    data : GeoDataFrame or GeoSeries of polygons
    rule : {"queen", "rook"}
        ``"queen"``: polygons sharing at least one boundary point; ``"rook"``: sharing a boundary
        segment of positive length.

    Returns
    -------
    scipy.sparse.csr_array
    """
    check_choice(rule, "contiguity rule", CONTIGUITY_RULES)
    if not isinstance(data, gpd.GeoDataFrame | gpd.GeoSeries):
        raise AnalyticsError("contiguity weights need a GeoDataFrame or GeoSeries of polygons")
    check_geometries(data)
    geoms = np.asarray(data.geometry.values, dtype=object)
    n = len(geoms)
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = i != j
    i, j = i[keep], j[keep]
    if rule == "rook" and len(i):
        shared = shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j]))
        keep = shapely.length(shared) > 0
        i, j = i[keep], j[keep]
    w = sparse.csr_array((np.ones(len(i)), (i, j)), shape=(n, n))
    w.sum_duplicates()
    w.data[:] = 1.0
    return w


def transform_weights(w, transform: str = "B") -> sparse.csr_array:
    """Return transformed weights.

    Parameters
    ----------
    w : sparse array
    transform : {"B", "R"}
        ``"B"``: every non-zero weight becomes 1; ``"R"``: each row divided by its sum (rows with
        no neighbours stay empty).
    """
    check_choice(transform, "weights transform", TRANSFORMS)
    w = sparse.csr_array(w, copy=True)
    w.eliminate_zeros()
    if transform == "B":
        w.data[:] = 1.0
        return w
    rs = np.asarray(w.sum(axis=1)).ravel()
    scale = np.divide(1.0, rs, out=np.zeros_like(rs), where=rs != 0)
    w.data *= np.repeat(scale, np.diff(w.indptr))
    return w


def with_self_weight(w, value=1.0) -> sparse.csr_array:
    """Return ``w`` with its diagonal set to ``value`` (scalar or length-n array)."""
    w = sparse.csr_array(w).tolil()
    w.setdiag(value)
    return sparse.csr_array(w.tocsr())
