"""Synthetic multi-year case histories (millions of cases) written straight to GeoParquet.

For benchmarks and scale tests of :mod:`analytics.distributed`: only the columns the
aggregations need -- point (CRS84), ``reported_at`` (UTC), ``category`` -- generated month by
month (never the whole history in memory) by :func:`synthetic_history`; write them with
:func:`analytics.parquet.write_months`, which gives the layout of an export (one folder per
month, Hilbert-ordered files with a bbox covering column)::

    base = base_locations()
    write_months(path, synthetic_history(n, base=base), total_bounds=history_bounds(base))

Locations: each case is one of ``base`` locations (by default the sample incidents of
:func:`geodata.sample.generate`, which follow residents and the planted hotspots on land)
jittered by a normal error of ~35 m; one planted area grows over the history, so emerging
hot spot analysis has something to find.  Synthetic data, not real cases.
"""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["base_locations", "history_bounds", "synthetic_history"]

#: jitter in degrees (~35 m at 18°N)
_JITTER = 35.0 / 111_000.0
_CATEGORIES = np.array(
    [
        "exposed_garbage",
        "road_cleaning",
        "illegal_parking",
        "street_vending",
        "street_light",
        "manhole_cover",
        "road_dust",
        "garbage_pile",
        "illegal_construction",
        "waterlogging",
    ]
)
_CAT_P = np.array([0.2, 0.15, 0.15, 0.1, 0.08, 0.07, 0.08, 0.07, 0.05, 0.05])


def base_locations(seed: int | None = None) -> np.ndarray:
    """``(n, 2)`` lon/lat of the sample incidents (one year, default seed)."""
    from geodata.sample import DEFAULT_SEED, generate

    inc = generate(DEFAULT_SEED if seed is None else seed)["incidents"]
    return shapely.get_coordinates(inc.geometry.values)


def history_bounds(base: np.ndarray) -> tuple[float, float, float, float]:
    """The extent every case drawn around ``base`` falls in (5 jitter sigmas beyond it)."""
    base = np.asarray(base, dtype=float)
    minx, miny, maxx, maxy = (
        float(v) for v in np.r_[base.min(axis=0) - 5 * _JITTER, base.max(axis=0) + 5 * _JITTER]
    )
    return minx, miny, maxx, maxy


def synthetic_history(
    n: int,
    *,
    seed: int = 0,
    base: np.ndarray | None = None,
    start: str = "2021-01-01",
    months: int = 60,
) -> Iterator[tuple[str, gpd.GeoDataFrame]]:
    """``n`` synthetic cases over ``months`` months, one ``("YYYY-MM", frame)`` per month.

    Parameters
    ----------
    n : int
        Number of cases (spread evenly over the months).
    seed : int
    base : (m, 2) array, optional
        Lon/lat locations to jitter; default :func:`base_locations`.
    start : str
        First month.
    months : int
        Length of the history.

    Yields
    ------
    tuple of (str, GeoDataFrame)
        The month and its cases (``category``, ``reported_at`` in UTC, CRS84 points); months
        without a case are skipped.
    """
    base = base_locations() if base is None else np.asarray(base, dtype=float)
    rng = np.random.default_rng(seed)
    first = pd.Timestamp(start, tz="UTC")
    per = np.full(months, n // months)
    per[: n % months] += 1
    # a growing hotspot: the last base location cluster gains cases month by month
    grow = base[rng.integers(len(base))]
    for m in range(months):
        k = int(per[m])
        if k == 0:
            continue
        lo = first + pd.DateOffset(months=m)
        hi = first + pd.DateOffset(months=m + 1)
        xy = base[rng.integers(len(base), size=k)] + rng.normal(0, _JITTER, (k, 2))
        extra = rng.random(k) < 0.03 * m / max(months - 1, 1)
        xy[extra] = grow + rng.normal(0, 4 * _JITTER, (int(extra.sum()), 2))
        secs = rng.integers(0, int((hi - lo).total_seconds()), size=k)
        times = pd.DatetimeIndex(
            lo.asm8.astype("datetime64[us]") + (secs * 1_000_000).astype("timedelta64[us]"),
            tz="UTC",
        )
        yield (
            lo.strftime("%Y-%m"),
            gpd.GeoDataFrame(
                {
                    "category": _CATEGORIES[rng.choice(len(_CATEGORIES), k, p=_CAT_P)],
                    "reported_at": times,
                },
                geometry=shapely.points(xy),
                crs="OGC:CRS84",
            ),
        )
