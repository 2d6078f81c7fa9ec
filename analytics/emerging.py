"""Emerging Hot Spot Analysis (after ArcGIS's tool): space-time cube, space-time Gi*,
Mann–Kendall trends and the 17 pattern categories.

Functions
---------
count_steps
    Number of time steps between two timestamps, by arithmetic (no allocation), refused above
    ``max_steps`` (default :data:`MAX_STEPS`): the budget check for callers.
space_time_cube
    Count timestamped points in fishnet/hexagon bins x time steps (:class:`SpaceTimeCube`).
space_time_gi_star
    Gi* z-scores for every bin and time step with space and time-lag neighbours.
mann_kendall
    Vectorised Mann–Kendall trend test (tie-corrected), one series per row.
classify_pattern
    One location's category from its hot/cold series and trend (Esri's definitions).
emerging_hot_spots
    The whole analysis (:class:`EmergingHotSpots`).
emerging_hot_spots_from_cube
    The analysis of a cube built elsewhere (e.g. over Dask partitions).

Categories (Esri, *How Emerging Hot Spot Analysis works*; ``hot``/``cold`` means a
statistically significant hot/cold spot bin, "90 %" means at least 90 % of the time steps):

- **New**: hot in the final step, never hot before.
- **Consecutive**: a single uninterrupted run of at least two hot bins ending in the final step,
  never hot before that run, and less than 90 % of the steps hot.
- **Intensifying**: hot in >= 90 % of the steps including the final one, and the Gi* z-scores
  have a statistically significant increasing Mann–Kendall trend.
- **Persistent**: hot in >= 90 % of the steps including the final one, no significant trend.
- **Diminishing**: as Intensifying with a significant decreasing trend.
- **Sporadic**: hot in the final step, less than 90 % of the steps hot, on-and-off history
  (hot before the final run), never cold.
- **Oscillating**: hot in the final step, cold in some earlier step, less than 90 % hot.
- **Historical**: not hot in the final step, but hot in >= 90 % of the steps.
- The same eight for cold spots, and **No Pattern Detected** otherwise.

Precedence where the published wording overlaps: the 90 % patterns first; Persistent,
Intensifying and Diminishing require the final step to be hot (otherwise Historical); then New,
Consecutive, Oscillating, Sporadic in that order (so a location cold earlier and hot for the
first time in the final step is New).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse, stats

from analytics.aggregate import fishnet_cells, fishnet_grid, hexagon_grid
from analytics.errors import AnalyticsError, check_choice, check_positive
from analytics.fdr import fdr_reject
from analytics.weights import distance_band_weights, point_coordinates, to_projected

__all__ = [
    "BIN_SHAPES",
    "CATEGORIES",
    "MAX_STEPS",
    "EmergingHotSpots",
    "SpaceTimeCube",
    "classify_pattern",
    "count_steps",
    "emerging_hot_spots",
    "emerging_hot_spots_from_cube",
    "mann_kendall",
    "space_time_cube",
    "space_time_gi_star",
]

BIN_SHAPES = ("fishnet", "hexagon")
#: default largest number of time steps of a cube (:func:`count_steps`)
MAX_STEPS = 1000
_KINDS = (
    "New",
    "Consecutive",
    "Intensifying",
    "Persistent",
    "Diminishing",
    "Sporadic",
    "Oscillating",
    "Historical",
)
#: the 17 categories, in Esri's order
CATEGORIES = (
    tuple(f"{k} Hot Spot" for k in _KINDS)
    + tuple(f"{k} Cold Spot" for k in _KINDS)
    + ("No Pattern Detected",)
)


def mann_kendall(x) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mann–Kendall trend test of each row of ``x`` (time along axis 1).

    Returns ``(s, z, p, tau)``: the S statistic, the tie-corrected normal score
    ``(S - sign(S)) / sqrt(Var S)``, its two-sided p-value and Kendall's tau-a ``S / (T(T-1)/2)``
    -- equal to ``pymannkendall.original_test``.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    t = x.shape[1]
    if t < 3:
        raise AnalyticsError(f"the Mann–Kendall test needs at least 3 time steps, got {t}")
    # O(rows x T) memory whatever T (pairs and tie matrices would be rows x T**2)
    s = np.zeros(x.shape[0])
    for lag in range(1, t):
        s += np.sign(x[:, lag:] - x[:, :-lag]).sum(axis=1)
    xs = np.sort(x, axis=1)
    starts = np.ones(xs.shape, dtype=bool)
    starts[:, 1:] = xs[:, 1:] != xs[:, :-1]
    run = np.cumsum(starts.ravel()) - 1  # tie group of every value, numbered across rows
    size = np.bincount(run).astype(float)
    row_of_run = np.repeat(np.arange(x.shape[0]), starts.sum(axis=1))
    tie_term = np.bincount(
        row_of_run, weights=size * (size - 1) * (2 * size + 5), minlength=x.shape[0]
    )
    var = (t * (t - 1) * (2 * t + 5) - tie_term) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, (s - np.sign(s)) / np.sqrt(var), 0.0)
    p = 2.0 * stats.norm.sf(np.abs(z))
    tau = s / (t * (t - 1) / 2.0)
    return s, z, p, tau


def classify_pattern(hot, cold, trend_z: float, trend_p: float, alpha: float = 0.05) -> str:
    """Esri's emerging hot spot category of one location.

    Parameters
    ----------
    hot, cold : sequence of bool
        Significant hot / cold spot per time step, oldest first.
    trend_z, trend_p : float
        Mann–Kendall z and p of the location's Gi* z-scores.
    alpha : float
        Trend significance level.

    Examples
    --------
    >>> classify_pattern([0, 0, 0, 0, 1], [0] * 5, 1.0, 0.3)
    'New Hot Spot'
    >>> classify_pattern([0, 0, 0, 0, 0], [1, 1, 1, 1, 1], 0.0, 1.0)
    'Persistent Cold Spot'
    """
    hot = np.asarray(hot, dtype=bool)
    cold = np.asarray(cold, dtype=bool)
    for kind, sig, other, up in (("Hot", hot, cold, 1), ("Cold", cold, hot, -1)):
        t = sig.size
        share = sig.sum() / t
        if share >= 0.9:
            if not sig[-1]:
                return f"Historical {kind} Spot"
            if trend_p < alpha and trend_z * up > 0:
                return f"Intensifying {kind} Spot"
            if trend_p < alpha and trend_z * up < 0:
                return f"Diminishing {kind} Spot"
            return f"Persistent {kind} Spot"
        if not sig[-1]:
            continue
        # length of the final uninterrupted run
        before = np.flatnonzero(~sig)
        run_start = before[-1] + 1 if before.size else 0
        earlier = sig[:run_start].any()
        if not earlier and t - run_start == 1:
            return f"New {kind} Spot"
        if not earlier and t - run_start >= 2:
            return f"Consecutive {kind} Spot"
        if other[:-1].any():
            return f"Oscillating {kind} Spot"
        return f"Sporadic {kind} Spot"
    return "No Pattern Detected"


def _parse_step(time_step) -> pd.Timedelta:
    """``time_step`` as a positive fixed-length :class:`pandas.Timedelta`."""
    try:
        step = pd.Timedelta(time_step)
    except (TypeError, ValueError):
        raise AnalyticsError(
            f"{time_step!r} is not a valid time step, use a fixed length like '1D', '7D', '12h'"
        ) from None
    if not step > pd.Timedelta(0):
        raise AnalyticsError(f"time_step must be positive, got {time_step!r}")
    return step


def count_steps(start, end, time_step, *, max_steps: int | None = MAX_STEPS) -> int:
    """Number of time steps of a cube whose timestamps run from ``start`` to ``end``.

    Steps are aligned to the end (as ArcGIS does): step ``t`` of ``n`` covers
    ``(end - (n - t) * time_step, end - (n - t - 1) * time_step]``, and ``n`` is the smallest
    count whose first step still holds ``start``: ``floor((end - start) / time_step) + 1``
    (integer nanoseconds, nothing is allocated).  Twelve weekly batches give 12 steps, ten
    midnight dailies 10.

    Parameters
    ----------
    start, end : datetime-like
        Earliest and latest timestamp.
    time_step : str or timedelta
        Fixed step length ("1D", "7D", "12h" ...).
    max_steps : int or None, default :data:`MAX_STEPS`
        Refuse more steps than this (``None``: no limit).

    Returns
    -------
    int

    Raises
    ------
    AnalyticsError
        For an invalid step, ``end`` before ``start``, or more than ``max_steps`` steps (the
        message gives the count and the shortest step that fits).

    Examples
    --------
    >>> count_steps("2026-01-05", "2026-03-23", "7D")
    12
    >>> count_steps("2026-01-01", "2026-01-01 12:00", "12h")
    2
    """
    step = _parse_step(time_step)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    span = (end - start).value  # integer nanoseconds
    if span < 0:
        raise AnalyticsError(f"the time span ends ({end}) before it starts ({start})")
    n = span // step.value + 1
    if max_steps is not None and n > max_steps:
        need = span // int(max_steps) + 1  # shortest step (ns) giving <= max_steps steps
        if need >= 10**9:
            need = -(-need // 10**9) * 10**9  # rounded up to whole seconds
        raise AnalyticsError(
            f"time_step {time_step!r} over {pd.Timedelta(span, unit='ns')} "
            f"({start} .. {end}) gives {n:,} time steps, more than the {int(max_steps):,} "
            f"allowed; use a time_step of at least {pd.Timedelta(need, unit='ns')}"
        )
    return int(n)


def _step_index(times: pd.Series, end: pd.Timestamp, step: pd.Timedelta, n_steps: int):
    """Step (0 .. n_steps - 1) of each timestamp, in integer nanoseconds (see count_steps)."""
    offset = (end - times).to_numpy().astype("timedelta64[ns]").astype(np.int64)
    return (n_steps - 1) - offset // step.value


@dataclass
class SpaceTimeCube:
    """Counts of points per bin and time step.

    Attributes
    ----------
    bins : GeoDataFrame
        Bin polygons (projected CRS) with ``cell_id`` and ``total`` (count over all steps);
        only bins with at least one point are kept.
    counts : ndarray, shape (n_bins, n_steps)
    edges : DatetimeIndex
        ``n_steps + 1`` step boundaries; step ``t`` covers ``(edges[t], edges[t + 1]]``
        (the last step ends at the latest timestamp, as ArcGIS aligns to the end; the first
        starts less than a step before the earliest, see :func:`count_steps`).
    cell_size : float
    """

    bins: gpd.GeoDataFrame
    counts: np.ndarray
    edges: pd.DatetimeIndex
    cell_size: float


def space_time_cube(
    points,
    time_field: str,
    *,
    cell_size: float,
    time_step: str = "7D",
    shape: str = "fishnet",
    max_steps: int | None = MAX_STEPS,
) -> SpaceTimeCube:
    """Build a space-time cube from timestamped points.

    Parameters
    ----------
    points : GeoDataFrame of points
    time_field : str
        Datetime column.
    cell_size : float
        Bin size in metres (fishnet side or hexagon width).
    time_step : str, default "7D"
        pandas offset alias of the step length (fixed-length: "1D", "7D", "12h" ...).
    shape : {"fishnet", "hexagon"}
    max_steps : int or None, default :data:`MAX_STEPS`
        Refuse cubes with more time steps (checked by :func:`count_steps` before anything is
        allocated); ``None``: no limit.
    """
    check_choice(shape, "bin shape", BIN_SHAPES)
    check_positive(cell_size, "cell_size")
    if time_field not in points.columns:
        raise AnalyticsError(
            f"{time_field!r} is not a column, must be one of: "
            f"{', '.join(str(c) for c in points.columns if c != points.geometry.name)}"
        )
    step = _parse_step(time_step)
    times = pd.to_datetime(points[time_field])
    if len(times) == 0:
        raise AnalyticsError(
            "there are no points to analyse (the selection is empty: check the filter and datetime)"
        )
    if times.isna().any():
        raise AnalyticsError(
            f"column {time_field!r} has {int(times.isna().sum())} missing timestamps"
        )
    tmax, tmin = times.max(), times.min()
    n_steps = count_steps(tmin, tmax, time_step, max_steps=max_steps)
    pts = to_projected(points, stacklevel=3)
    xy = point_coordinates(pts)
    edges = pd.DatetimeIndex([tmax - step * (n_steps - i) for i in range(n_steps + 1)])
    tidx = _step_index(times, tmax, step, n_steps)
    bounds = np.r_[xy.min(axis=0), xy.max(axis=0)]
    if shape == "fishnet":
        grid = fishnet_grid(bounds, cell_size, pts.crs)
        ncol = int(grid["col"].max()) + 1
        row, col = fishnet_cells(xy, bounds, cell_size)
        cell = row * ncol + col
    else:
        from scipy.spatial import cKDTree

        grid = hexagon_grid(bounds, cell_size, pts.crs)
        import shapely

        centres = shapely.get_coordinates(shapely.centroid(grid.geometry.values))
        cell = cKDTree(centres).query(xy, workers=-1)[1]
    counts = np.zeros((len(grid), n_steps))
    np.add.at(counts, (cell, tidx), 1.0)
    keep = counts.sum(axis=1) > 0
    bins = grid[keep].reset_index(drop=True)
    bins["total"] = counts[keep].sum(axis=1).astype(np.int64)
    return SpaceTimeCube(bins=bins, counts=counts[keep], edges=edges, cell_size=float(cell_size))


def space_time_gi_star(
    counts: np.ndarray, w: sparse.csr_array, neighborhood_time_step: int = 1
) -> np.ndarray:
    """Gi* z-scores for every bin and time step.

    The neighbours of bin ``i`` at step ``t`` are the bins within the distance band (``w``,
    binary, zero diagonal) and ``i`` itself, at steps ``t - neighborhood_time_step`` .. ``t``.
    Mean and standard deviation are those of the whole cube (``n = bins x steps``), as in ArcGIS.
    """
    x = np.asarray(counts, dtype=float)
    nb, nt = x.shape
    n = x.size
    wb = sparse.csr_array(w, copy=True)
    wb.data[:] = 1.0
    k = np.diff(wb.indptr) + 1.0
    spatial = wb @ x + x  # (nb, nt): sum over spatial neighbours incl. self at each step
    lag = np.zeros_like(x)
    steps = np.zeros(nt)
    for tau in range(int(neighborhood_time_step) + 1):
        lag[:, tau:] += spatial[:, : nt - tau]
        steps[tau:] += 1
    wsum = k[:, None] * steps[None, :]
    mean = x.mean()
    s = np.sqrt(max((x * x).mean() - mean * mean, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (lag - mean * wsum) / (s * np.sqrt((n * wsum - wsum**2) / (n - 1)))


@dataclass
class EmergingHotSpots:
    """Result of :func:`emerging_hot_spots`.

    Attributes
    ----------
    locations : GeoDataFrame
        One row per bin: ``category``, ``n_hot``, ``n_cold``, ``final_z`` (Gi* z of the final
        step), ``trend_z``/``trend_p`` (Mann–Kendall on the Gi* z-scores), ``count_trend_z``/
        ``count_trend_p`` (Mann–Kendall on the counts) and ``total``.
    cube : SpaceTimeCube
    gi_z : ndarray, shape (n_bins, n_steps)
    hot, cold : ndarray of bool, shape (n_bins, n_steps)
    distance_band : float
    """

    locations: gpd.GeoDataFrame
    cube: SpaceTimeCube
    gi_z: np.ndarray
    hot: np.ndarray
    cold: np.ndarray
    distance_band: float


def emerging_hot_spots(
    points,
    time_field: str,
    *,
    cell_size: float,
    time_step: str = "7D",
    shape: str = "fishnet",
    distance_band: float | None = None,
    neighborhood_time_step: int = 1,
    alpha: float = 0.05,
    fdr: bool = True,
    max_steps: int | None = MAX_STEPS,
) -> EmergingHotSpots:
    """Emerging Hot Spot Analysis of timestamped incident points.

    Parameters
    ----------
    points : GeoDataFrame of points
    time_field : str
        Datetime column.
    cell_size : float
        Bin size in metres.
    time_step : str, default "7D"
        Step length (pandas fixed-length offset).
    shape : {"fishnet", "hexagon"}
    distance_band : float, optional
        Spatial neighbourhood in metres; default ``1.5 * cell_size`` (the 8 surrounding squares
        or the 6 surrounding hexagons).
    neighborhood_time_step : int, default 1
        Previous time steps included in each bin's neighbourhood (ArcGIS's *Neighborhood Time
        Step*): 1 means the bin's own step and the one before.
    alpha : float, default 0.05
        Significance level for hot/cold bins and for the trend test.
    fdr : bool, default True
        Benjamini–Hochberg correction across all bins of the cube for the hot/cold decision.
    max_steps : int or None, default :data:`MAX_STEPS`
        Largest number of time steps (see :func:`count_steps`).

    Returns
    -------
    EmergingHotSpots
    """
    if not 0 < alpha < 1:
        raise AnalyticsError(f"alpha must lie in (0, 1), got {alpha!r}")
    if int(neighborhood_time_step) != neighborhood_time_step or neighborhood_time_step < 0:
        raise AnalyticsError("neighborhood_time_step must be a non-negative integer")
    cube = space_time_cube(
        points,
        time_field,
        cell_size=cell_size,
        time_step=time_step,
        shape=shape,
        max_steps=max_steps,
    )
    return emerging_hot_spots_from_cube(
        cube,
        distance_band=distance_band,
        neighborhood_time_step=neighborhood_time_step,
        alpha=alpha,
        fdr=fdr,
    )


def emerging_hot_spots_from_cube(
    cube: SpaceTimeCube,
    *,
    distance_band: float | None = None,
    neighborhood_time_step: int = 1,
    alpha: float = 0.05,
    fdr: bool = True,
) -> EmergingHotSpots:
    """Emerging Hot Spot Analysis of an already built space-time cube.

    The analysis half of :func:`emerging_hot_spots` (which builds the cube from points and
    calls this): a cube counted elsewhere -- e.g. by :mod:`analytics.distributed` over
    partitions -- gets exactly the same analysis.

    Parameters
    ----------
    cube : SpaceTimeCube
    distance_band, neighborhood_time_step, alpha, fdr
        As in :func:`emerging_hot_spots`.

    Returns
    -------
    EmergingHotSpots
    """
    if not 0 < alpha < 1:
        raise AnalyticsError(f"alpha must lie in (0, 1), got {alpha!r}")
    if int(neighborhood_time_step) != neighborhood_time_step or neighborhood_time_step < 0:
        raise AnalyticsError("neighborhood_time_step must be a non-negative integer")
    cell_size = cube.cell_size
    nb, nt = cube.counts.shape
    if nt < 10:
        raise AnalyticsError(
            f"the cube has {nt} time steps; at least 10 are needed (use a shorter time_step)"
        )
    band = 1.5 * cell_size if distance_band is None else float(distance_band)
    check_positive(band, "distance_band")
    w = distance_band_weights(point_coordinates(cube.bins), band)
    z = space_time_gi_star(cube.counts, w, int(neighborhood_time_step))
    p = 2.0 * stats.norm.sf(np.abs(z))
    sig = fdr_reject(p.ravel(), alpha).reshape(p.shape) if fdr else p <= alpha
    sig &= np.isfinite(z)
    hot = sig & (z > 0)
    cold = sig & (z < 0)
    _, tz, tp, _ = mann_kendall(np.nan_to_num(z))
    _, cz, cp, _ = mann_kendall(cube.counts)
    cats = [classify_pattern(hot[i], cold[i], tz[i], tp[i], alpha) for i in range(nb)]
    loc = cube.bins.copy()
    loc["category"] = pd.Categorical(cats, categories=CATEGORIES)
    loc["n_hot"] = hot.sum(axis=1)
    loc["n_cold"] = cold.sum(axis=1)
    loc["final_z"] = z[:, -1]
    loc["trend_z"] = tz
    loc["trend_p"] = tp
    loc["count_trend_z"] = cz
    loc["count_trend_p"] = cp
    return EmergingHotSpots(
        locations=loc, cube=cube, gi_z=z, hot=hot, cold=cold, distance_band=band
    )
