"""Moran's I: local (LISA, Anselin 1995) and global.

Functions
---------
local_moran
    GeoDataFrame in, GeoDataFrame out: local Moran's I, HH/LL/HL/LH quadrant, permutation
    pseudo p-values and significant cluster labels.
local_moran_i
    Array-level local Moran's I, identical to ``esda.Moran_Local(y, w).Is``.
global_moran
    Global Moran's I with z-scores under the normality and randomisation assumptions
    (:class:`GlobalMoran`), used by incremental spatial autocorrelation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from analytics._permutation import permutation_counts, pseudo_p
from analytics.errors import AnalyticsError, check_choice
from analytics.gistar import ALTERNATIVES, WEIGHT_KINDS, build_weights, check_transform_for
from analytics.weights import TRANSFORMS, transform_weights

__all__ = ["QUADRANTS", "GlobalMoran", "global_moran", "local_moran", "local_moran_i"]

#: quadrant labels by esda's ``q`` code (1 HH, 2 LH, 3 LL, 4 HL)
QUADRANTS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}


def _check_finite(y, what: str = "the values") -> np.ndarray:
    """``y`` as floats; raise :class:`AnalyticsError` naming how many are missing or infinite."""
    y = np.asarray(y, dtype=float)
    bad = ~np.isfinite(y)
    if bad.any():
        nan = int(np.isnan(y).sum())
        inf = int(bad.sum()) - nan
        parts = ([f"{nan} missing (NaN/None or non-numeric)"] if nan else []) + (
            [f"{inf} infinite"] if inf else []
        )
        raise AnalyticsError(
            f"{what} has {' and '.join(parts)} of {y.size} values; Moran's I "
            "needs a number for every feature (drop or fill them first)"
        )
    return y


def _standardise(y, what: str = "the values"):
    y = _check_finite(y, what)
    sd = y.std()
    if not sd > 0:
        raise AnalyticsError("values are constant; Moran's I is undefined")
    return (y - y.mean()) / sd


def local_moran_i(y, w, *, transform: str = "R") -> np.ndarray:
    """Local Moran's I ``I_i = (n - 1) z_i sum_j w_ij z_j / sum_k z_k**2``.

    ``z`` is ``y`` standardised with the population standard deviation, ``w`` (zero diagonal)
    is transformed with ``transform``; equal to ``esda.Moran_Local(y, w, transformation=...).Is``.

    Examples
    --------
    >>> import numpy as np
    >>> from analytics.weights import knn_weights
    >>> xy = np.array([[0, 0], [1, 0], [2, 0], [10, 0], [11, 0], [12, 0]])
    >>> local_moran_i([5, 6, 5, 1, 0, 1], knn_weights(xy, k=2)).round(2).tolist()
    [0.74, 0.88, 0.74, 0.74, 0.88, 0.74]
    """
    check_choice(transform, "weights transform", TRANSFORMS)
    z = _standardise(y)
    w = transform_weights(w, transform)
    return (z.size - 1) * z * (w @ z) / (z @ z)


def local_moran(
    gdf,
    field: str | None = None,
    *,
    weights="knn",
    k: int = 8,
    distance: float | None = None,
    transform: str = "R",
    permutations: int = 999,
    seed: int | None = None,
    alpha: float = 0.05,
    alternative: str = "directed",
):
    """Local Moran's I (LISA) with conditional permutation inference.

    Parameters
    ----------
    gdf : GeoDataFrame
    field : str, optional
        Numeric column; ``None`` means ``"count"``.
    weights : {"knn", "distance_band", "inverse_distance", "queen", "rook"} or sparse array
        As in :func:`analytics.gistar.hot_spots`.
    k, distance : see :func:`analytics.gistar.hot_spots`
    transform : {"R", "B"}, default "R"
    permutations : int, default 999
        ``0`` skips inference (``lisa_p_sim`` is NaN, every ``lisa_cluster`` is ``"ns"``).
    seed : int, optional
        Seed for ``numpy.random.default_rng``.
    alpha : float, default 0.05
        Significance level for ``lisa_cluster``.
    alternative : {"directed", "two-sided"}, default "directed"
        ``"directed"``: one-tailed in the observed direction (esda's ``"directed"``, GeoDa);
        ``"two-sided"``: twice that.

    Returns
    -------
    GeoDataFrame
        Copy of ``gdf`` with ``lisa_i`` (local I), ``lisa_q`` (HH, LH, LL, HL quadrant of the
        value and its lag), ``lisa_p_sim`` (pseudo p-value) and ``lisa_cluster`` (the quadrant
        where ``lisa_p_sim <= alpha``, else ``"ns"``).
    """
    check_choice(transform, "weights transform", TRANSFORMS)
    check_choice(alternative, "alternative", ALTERNATIVES)
    check_transform_for(weights, transform)
    if not 0 < alpha < 1:
        raise AnalyticsError(f"alpha must lie in (0, 1), got {alpha!r}")
    col = "count" if field is None else field
    if col not in gdf.columns:
        raise AnalyticsError(
            f"{col!r} is not a column, must be one of: "
            f"{', '.join(str(c) for c in gdf.columns if c != gdf.geometry.name)}"
        )
    y = pd.to_numeric(gdf[col], errors="coerce").to_numpy(dtype=float)
    _check_finite(y, f"column {col!r}")
    if isinstance(weights, str):
        w = build_weights(gdf, weights, k=k, distance=distance)
    elif sparse.issparse(weights):
        # scipy-stubs: issparse narrows to SparseABC, which csr_array's overloads leave out
        w = sparse.csr_array(weights)  # type: ignore[call-overload]
    else:
        raise AnalyticsError(
            f"{weights!r} is not a valid weights, must be one of: {', '.join(WEIGHT_KINDS)}"
        )
    z = _standardise(y, f"column {col!r}")
    wt = transform_weights(w, transform)
    lag = wt @ z
    n = z.size
    lisa = (n - 1) * z * lag / (z @ z)
    q = np.where(z > 0, np.where(lag > 0, 1, 4), np.where(lag > 0, 2, 3))
    out = gdf.copy()
    out["lisa_i"] = lisa
    # pandas-stubs want an Index of categories; pandas documents a list-like
    out["lisa_q"] = pd.Categorical.from_codes(q - 1, ["HH", "LH", "LL", "HL"])  # type: ignore[call-overload]
    if permutations:
        rng = np.random.default_rng(seed)
        n_ge, n_le = permutation_counts(wt, z, lag, int(permutations), rng)
        # I_rand = c z_i L_rand: the direction flips where z_i < 0
        ge = np.where(z >= 0, n_ge, n_le)
        le = np.where(z >= 0, n_le, n_ge)
        p = pseudo_p(ge, le, int(permutations), alternative)
    else:
        p = np.full(n, np.nan)
    out["lisa_p_sim"] = p
    cluster = np.where(np.nan_to_num(p, nan=1.0) <= alpha, out["lisa_q"].astype(str), "ns")
    out["lisa_cluster"] = cluster
    return out


@dataclass(frozen=True)
class GlobalMoran:
    """Global Moran's I and its inference.

    Attributes
    ----------
    I : float
        Moran's I.
    EI : float
        Expectation ``-1 / (n - 1)``.
    z_norm, p_norm : float
        z-score and two-sided p-value under the normality assumption.
    z_rand, p_rand : float
        z-score and two-sided p-value under the randomisation assumption (ArcGIS's choice).
    """

    I: float  # noqa: E741 - the statistic's name
    EI: float
    z_norm: float
    p_norm: float
    z_rand: float
    p_rand: float


def global_moran(y, w, *, transform: str = "R") -> GlobalMoran:
    """Global Moran's I (Cliff & Ord) with normality and randomisation inference.

    Equal to ``esda.Moran(y, w, transformation=transform)`` (``I``, ``z_norm``, ``z_rand``).
    """
    check_choice(transform, "weights transform", TRANSFORMS)
    z = _check_finite(y)
    z = z - z.mean()
    n = z.size
    w = transform_weights(w, transform)
    s0 = w.sum()
    if not s0 > 0 or not (z @ z) > 0:
        raise AnalyticsError("global Moran's I is undefined (no neighbours or constant values)")
    i_stat = n / s0 * (z @ (w @ z)) / (z @ z)
    ei = -1.0 / (n - 1)
    wt = w + w.T
    s1 = 0.5 * (wt.multiply(wt)).sum()
    s2 = ((np.asarray(w.sum(axis=1)).ravel() + np.asarray(w.sum(axis=0)).ravel()) ** 2).sum()
    s02 = s0 * s0
    v_norm = (n * n * s1 - n * s2 + 3 * s02) / ((n * n - 1) * s02) - ei * ei
    kurt = n * (z**4).sum() / (z @ z) ** 2
    a = n * ((n * n - 3 * n + 3) * s1 - n * s2 + 3 * s02)
    b = kurt * ((n * n - n) * s1 - 2 * n * s2 + 6 * s02)
    v_rand = (a - b) / ((n - 1) * (n - 2) * (n - 3) * s02) - ei * ei
    z_norm = (i_stat - ei) / np.sqrt(v_norm)
    z_rand = (i_stat - ei) / np.sqrt(v_rand)
    return GlobalMoran(
        I=float(i_stat),
        EI=ei,
        z_norm=float(z_norm),
        p_norm=float(2 * stats.norm.sf(abs(z_norm))),
        z_rand=float(z_rand),
        p_rand=float(2 * stats.norm.sf(abs(z_rand))),
    )
