"""Getis-Ord Gi* hot spot analysis (ArcGIS "Hot Spot Analysis").

Functions
---------
gi_star_z
    Array-level analytical Gi* z-scores for values ``y`` and weights ``w``.
confidence_bins
    ArcGIS ``Gi_Bin`` (-3..3) from z and p, optionally FDR-corrected.
hot_spots
    GeoDataFrame in, GeoDataFrame out: Gi* with the chosen weights, p-values, bins.

Formula
-------
For weights ``w_ij`` *including* the self weight ``w_ii``, ArcGIS (Getis & Ord 1992/1995)::

    z_i = (sum_j w_ij x_j - xbar * W_i) / (S * sqrt((n * sum_j w_ij**2 - W_i**2) / (n - 1)))

with ``W_i = sum_j w_ij``, ``xbar`` the mean and ``S`` the population standard deviation of
``x``.  For binary weights this is algebraically identical to esda's
``G_Local(y, w, star=True, transform="B").Zs`` (tested to 1e-9).  For row-standardised or
inverse-distance weights we keep the ArcGIS formula (esda's moments assume binary weights).

Weights are used **as built** by default (``transform=None``): binary for k-nearest neighbours,
distance band and contiguity, ``1 / d`` for ``"inverse_distance"`` (libpysal's
``DistanceBand(binary=False, alpha=-1)``; ArcGIS's *Inverse distance* with standardisation
*None*), the given values for a sparse array.  ``transform="B"`` replaces every weight by 1, so
it is refused with ``weights="inverse_distance"`` (it would be the distance band exactly).

Gi* is undefined for a lone feature, for constant values and where a neighbourhood holds every
feature with equal weights: :func:`hot_spots` refuses the first two and a result where every
z-score is undefined, and warns when only some are.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import sparse, stats

from analytics._permutation import permutation_counts, pseudo_p
from analytics.errors import AnalyticsError, check_choice
from analytics.fdr import fdr_reject
from analytics.weights import (
    contiguity_weights,
    distance_band_weights,
    knn_weights,
    transform_weights,
)

__all__ = [
    "ALTERNATIVES",
    "CONFIDENCE_LEVELS",
    "WEIGHT_KINDS",
    "build_weights",
    "check_transform_for",
    "confidence_bins",
    "gi_star_z",
    "hot_spots",
    "self_weight_values",
]

WEIGHT_KINDS = ("knn", "distance_band", "inverse_distance", "queen", "rook")
ALTERNATIVES = ("two-sided", "directed")
#: (bin magnitude, p threshold) pairs as in ArcGIS: 99 %, 95 %, 90 % confidence
CONFIDENCE_LEVELS = ((3, 0.01), (2, 0.05), (1, 0.10))


def build_weights(
    gdf, weights: str = "knn", *, k: int = 8, distance: float | None = None
) -> sparse.csr_array:
    """Build weights by name (see :data:`WEIGHT_KINDS`); returns zero-diagonal CSR."""
    check_choice(weights, "weights", WEIGHT_KINDS)
    if weights == "knn":
        return knn_weights(gdf, k=k)
    if weights in ("queen", "rook"):
        return contiguity_weights(gdf, rule=weights)
    if distance is None:
        raise AnalyticsError(f"weights={weights!r} needs a distance (metres)")
    return distance_band_weights(gdf, distance, binary=weights == "distance_band")


def self_weight_values(w: sparse.csr_array) -> np.ndarray:
    """Gi* self weight per row: 1 for binary rows, else the row's largest weight (as esda)."""
    w = sparse.csr_array(w)
    if w.nnz == 0 or np.all(w.data == 1.0):
        return np.ones(w.shape[0])
    rowmax = np.asarray(w.max(axis=1).todense()).ravel()
    return np.where(rowmax > 0, rowmax, 1.0)


def _star_parts(w, transform):
    """Return (w_off, self_w) after adding the self weight and applying the transform.

    ``transform=None`` keeps the weights as given (self weight: :func:`self_weight_values`).
    """
    w = sparse.csr_array(w)
    if w.diagonal().any():
        raise AnalyticsError("weights must have a zero diagonal; the self weight is added here")
    if transform == "B":
        w = transform_weights(w, "B")
        return w, np.ones(w.shape[0])
    if transform is None:
        w = sparse.csr_array(w, copy=True)
        w.eliminate_zeros()
        return w, self_weight_values(w)
    selfw = self_weight_values(w)
    rs = np.asarray(w.sum(axis=1)).ravel() + selfw
    scale = 1.0 / rs
    w = sparse.csr_array(w, copy=True)
    w.data *= np.repeat(scale, np.diff(w.indptr))
    return w, selfw * scale


def gi_star_z(y, w, *, transform: str | None = None) -> np.ndarray:
    """Analytical Getis-Ord Gi* z-scores.

    Parameters
    ----------
    y : array_like, shape (n,)
        Values (counts or a numeric field).
    w : sparse array, shape (n, n)
        Weights with a zero diagonal (as returned by :mod:`analytics.weights`); the self weight
        is added here (1 for ``"B"``, the row maximum for non-binary rows).
    transform : {None, "B", "R"}, default None
        ``None``: the weights as given (binary weights: the same as ``"B"``; inverse distance:
        the ``1 / d`` values).  ``"B"``: every weight becomes 1 (ArcGIS and
        ``esda.G_Local(star=True, transform="B")``).  ``"R"``: row-standardised.

    Returns
    -------
    numpy.ndarray
        z-scores; NaN everywhere if ``y`` is constant.

    Examples
    --------
    >>> import numpy as np
    >>> from analytics.weights import knn_weights
    >>> xy = np.array([[0, 0], [1, 0], [2, 0], [10, 0], [11, 0], [12, 0]])
    >>> gi_star_z([5, 6, 5, 1, 0, 1], knn_weights(xy, k=2)).round(2).tolist()
    [2.19, 2.19, 2.19, -2.19, -2.19, -2.19]
    """
    if transform is not None:
        check_choice(transform, "weights transform", TRANSFORMS_)
    y = np.asarray(y, dtype=float)
    n = y.size
    if w.shape != (n, n):
        raise AnalyticsError(f"weights shape {w.shape} does not match {n} values")
    binary = transform in ("B", None) and _is_binary_csr(w)
    if binary:
        # fast path (the weights builders' output): no defensive copy, no re-binarisation;
        # the zero-diagonal guard stays (it costs ~1 % of a 1M-point run)
        if w.diagonal().any():
            raise AnalyticsError("weights must have a zero diagonal; the self weight is added here")
        lag = w @ y + y
        row_sum = np.diff(w.indptr).astype(float) + 1.0
    else:
        w_off, selfw = _star_parts(w, transform)
        lag = w_off @ y + selfw * y
        row_sum = np.asarray(w_off.sum(axis=1)).ravel() + selfw
    if transform == "B" or binary:
        row_sq = row_sum
    else:
        row_sq = np.asarray(w_off.multiply(w_off).sum(axis=1)).ravel() + selfw**2
    mean = y.mean()
    s = np.sqrt(max((y * y).mean() - mean * mean, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        den = s * np.sqrt((n * row_sq - row_sum**2) / (n - 1))
        return (lag - mean * row_sum) / den


TRANSFORMS_ = ("B", "R")


def _is_binary_csr(w) -> bool:
    """Whether ``w`` is a CSR array whose stored values are all exactly 1 (binary weights).

    Such weights need no copy for ``transform="B"``: there are no explicit zeros, so each row's
    weight sum is its ``indptr`` difference (duplicate entries count twice, as in the general
    path).
    """
    return (
        isinstance(w, sparse.csr_array | sparse.csr_matrix)
        and w.nnz > 0
        and bool(np.all(w.data == 1.0))
    )


def check_transform_for(weights, transform) -> None:
    """Raise :class:`AnalyticsError` for an unknown transform or one that discards the weights.

    ``transform`` must be ``None``, ``"B"`` or ``"R"``; ``"B"`` with
    ``weights="inverse_distance"`` would replace every ``1 / d`` by 1 (the distance band
    exactly), so it is refused.
    """
    if transform is None:
        return
    check_choice(transform, "weights transform", TRANSFORMS_)
    if transform == "B" and isinstance(weights, str) and weights == "inverse_distance":
        raise AnalyticsError(
            "transform 'B' with weights 'inverse_distance' would replace every 1/d weight by 1 "
            "(the same as weights 'distance_band'); omit transform to use the 1/d weights, or "
            "use transform 'R' to row-standardise them"
        )


def confidence_bins(z, p, *, fdr: bool = False) -> np.ndarray:
    """ArcGIS ``Gi_Bin``: ``+-3`` (99 %), ``+-2`` (95 %), ``+-1`` (90 %) confidence, else 0.

    Parameters
    ----------
    z, p : array_like
        z-scores (sign) and two-sided p-values.
    fdr : bool, default False
        Apply the Benjamini–Hochberg correction separately at each confidence level, as ArcGIS's
        *Apply False Discovery Rate (FDR) Correction* option does.

    Returns
    -------
    numpy.ndarray of int8
    """
    z = np.asarray(z, dtype=float)
    p = np.asarray(p, dtype=float)
    bins = np.zeros(z.shape, dtype=np.int8)
    for level, alpha in reversed(CONFIDENCE_LEVELS):
        sig = fdr_reject(p, alpha) if fdr else np.nan_to_num(p, nan=1.0) <= alpha
        bins[sig] = level
    return (bins * np.sign(np.nan_to_num(z))).astype(np.int8)


def hot_spots(
    gdf,
    field: str | None = None,
    *,
    weights="knn",
    k: int = 8,
    distance: float | None = None,
    transform: str | None = None,
    fdr: bool = False,
    permutations: int = 0,
    seed: int | None = None,
    alternative: str = "two-sided",
):
    """Getis-Ord Gi* hot spot analysis.

    Parameters
    ----------
    gdf : GeoDataFrame
        Points or polygons.
    field : str, optional
        Numeric column analysed; ``None`` analyses a column named ``"count"``.
    weights : {"knn", "distance_band", "inverse_distance", "queen", "rook"} or sparse array
        Neighbourhood; a sparse ``n x n`` array with zero diagonal is used as given.
    k : int, default 8
        Neighbours for ``"knn"``.
    distance : float, optional
        Band in metres for ``"distance_band"``/``"inverse_distance"``.
    transform : {None, "B", "R"}, default None
        ``None``: the weights as built (binary for ``"knn"``, ``"distance_band"`` and
        contiguity, ``1 / d`` for ``"inverse_distance"``, the given values of a sparse array);
        ``"B"``: every weight 1 (refused with ``"inverse_distance"``, where it would discard
        the distances); ``"R"``: row-standardised.
    fdr : bool, default False
        FDR-corrected confidence bins.
    permutations : int, default 0
        If positive, conditional permutation inference (seeded by ``seed``); the bins then use
        the permutation p-values.
    seed : int, optional
        Seed for ``numpy.random.default_rng``.
    alternative : {"two-sided", "directed"}, default "two-sided"
        How the permutation pseudo p-value is computed (see ``_permutation.pseudo_p``).

    Returns
    -------
    GeoDataFrame
        A copy of ``gdf`` with added columns ``gi_z`` (Gi* z-score), ``gi_p`` (two-sided normal
        p-value), ``gi_p_sim`` (pseudo p-value, only with permutations), ``gi_bin`` (-3..3) and
        ``n_neighbors`` (excluding self).

    Raises
    ------
    AnalyticsError
        For a lone feature, constant values, or weights where every feature's neighbourhood
        holds all features (Gi* is undefined: esda returns NaN, ArcGIS refuses).  If only some
        z-scores are undefined a :class:`UserWarning` says how many.
    """
    check_transform_for(weights, transform)
    check_choice(alternative, "alternative", ALTERNATIVES)
    if isinstance(permutations, bool) or int(permutations) != permutations or permutations < 0:
        raise AnalyticsError(f"permutations must be a non-negative integer, got {permutations!r}")
    col = "count" if field is None else field
    if col not in gdf.columns:
        raise AnalyticsError(
            f"{col!r} is not a column, must be one of: "
            f"{', '.join(str(c) for c in gdf.columns if c != gdf.geometry.name)}"
        )
    y = pd.to_numeric(gdf[col], errors="coerce").to_numpy(dtype=float)
    if np.isnan(y).any():
        raise AnalyticsError(f"column {col!r} has missing or non-numeric values")
    n = y.size
    if n == 0:
        raise AnalyticsError(
            "there are no features to analyse (the selection is empty: "
            "check the filter and datetime)"
        )
    if n == 1:
        raise AnalyticsError(
            "Gi* needs at least 2 features, got 1: a lone feature has nothing "
            "to be compared with, its z-score is undefined"
        )
    if np.all(y == y[0]):
        raise AnalyticsError(
            f"all {n} values of {col!r} are equal ({y[0]:g}): Gi* z-scores are "
            "undefined (zero variance), there is no pattern to analyse"
        )
    if isinstance(weights, str):
        w = build_weights(gdf, weights, k=k, distance=distance)
    elif sparse.issparse(weights):
        # scipy-stubs: issparse narrows to SparseABC, which csr_array's overloads leave out
        w = sparse.csr_array(weights)  # type: ignore[call-overload]
    else:
        raise AnalyticsError(
            f"{weights!r} is not a valid weights, must be one of: {', '.join(WEIGHT_KINDS)}"
            " or a scipy sparse array"
        )
    z = gi_star_z(y, w, transform=transform)
    undefined = int((~np.isfinite(z)).sum())
    if undefined == n:
        raise AnalyticsError(
            f"Gi* is undefined for all {n} features: every neighbourhood holds "
            "all features with equal weights; use a smaller distance or k"
        )
    if undefined:
        warnings.warn(
            f"Gi* is undefined for {undefined} of {n} features (their neighbourhood "
            "holds all features with equal weights); their gi_z is NaN, gi_bin 0",
            UserWarning,
            stacklevel=2,
        )
    p = 2.0 * stats.norm.sf(np.abs(z))
    out = gdf.copy()
    out["gi_z"] = z
    out["gi_p"] = p
    p_bins = p
    if permutations:
        w_off, _ = _star_parts(w, transform)
        rng = np.random.default_rng(seed)
        n_ge, n_le = permutation_counts(w_off, y, w_off @ y, int(permutations), rng)
        p_bins = pseudo_p(n_ge, n_le, int(permutations), alternative)
        out["gi_p_sim"] = p_bins
    out["gi_bin"] = confidence_bins(z, p_bins, fdr=fdr)
    out["n_neighbors"] = np.diff(sparse.csr_array(w).indptr)
    return out
