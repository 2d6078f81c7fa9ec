"""Emerging Hot Spot Analysis: Mann–Kendall, the category definitions, a planted cluster."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pymannkendall as mk
import pytest
from scipy import stats

from analytics.emerging import (
    CATEGORIES,
    classify_pattern,
    emerging_hot_spots,
    mann_kendall,
    space_time_cube,
)
from analytics.errors import AnalyticsError


def test_mann_kendall_equals_pymannkendall_and_kendalltau():
    rng = np.random.default_rng(5)
    x = np.vstack([rng.integers(0, 4, (20, 15)), rng.normal(size=(20, 15)).cumsum(axis=1)])
    s, z, p, tau = mann_kendall(x)
    for i, row in enumerate(x):
        ref = mk.original_test(row)
        assert s[i] == ref.s
        assert z[i] == pytest.approx(ref.z, abs=1e-12)
        assert p[i] == pytest.approx(ref.p, abs=1e-12)
        assert tau[i] == pytest.approx(ref.Tau, abs=1e-12)
    # without ties the S statistic is Kendall's tau-b against time times T(T-1)/2
    kt = stats.kendalltau(np.arange(15), x[25]).statistic
    assert tau[25] == pytest.approx(kt, abs=1e-12)


T, F = True, False
NONE = [F] * 10
UP, DOWN, FLAT = (3.0, 0.001), (-3.0, 0.001), (0.5, 0.6)


@pytest.mark.parametrize(
    ("hot", "cold", "trend", "expected"),
    [
        ([F] * 9 + [T], NONE, FLAT, "New Hot Spot"),
        ([F] * 7 + [T] * 3, NONE, UP, "Consecutive Hot Spot"),
        ([F] + [T] * 9, NONE, UP, "Intensifying Hot Spot"),
        ([T] * 10, NONE, FLAT, "Persistent Hot Spot"),
        ([T] * 10, NONE, DOWN, "Diminishing Hot Spot"),
        ([T, F, T, F, F, T, F, F, T, T], NONE, FLAT, "Sporadic Hot Spot"),
        ([F, F, F, F, F, T, F, F, F, T], [T, T] + [F] * 8, FLAT, "Oscillating Hot Spot"),
        ([T] * 9 + [F], NONE, DOWN, "Historical Hot Spot"),
        (NONE, [F] * 9 + [T], FLAT, "New Cold Spot"),
        (NONE, [F] * 8 + [T] * 2, DOWN, "Consecutive Cold Spot"),
        (NONE, [T] * 10, DOWN, "Intensifying Cold Spot"),
        (NONE, [T] * 10, FLAT, "Persistent Cold Spot"),
        (NONE, [F] + [T] * 9, UP, "Diminishing Cold Spot"),
        (NONE, [T, F, F, T, F, F, F, F, T, T], FLAT, "Sporadic Cold Spot"),
        ([F, T] + [F] * 8, [T, F, F, F, T, F, F, F, F, T], FLAT, "Oscillating Cold Spot"),
        (NONE, [T] * 9 + [F], FLAT, "Historical Cold Spot"),
        ([T, F, T, F, F, F, F, F, T, F], NONE, FLAT, "No Pattern Detected"),
        # edge cases of the definitions
        ([F] * 8 + [T, T], [T] + [F] * 9, FLAT, "Consecutive Hot Spot"),  # never hot before run
        ([T] * 7 + [F, F, T], NONE, FLAT, "Sporadic Hot Spot"),  # 8 of 10 < 90 %
        ([T] * 8 + [F, T], NONE, FLAT, "Persistent Hot Spot"),  # 9 of 10 = 90 %
        ([F] + [T] * 9, NONE, DOWN, "Diminishing Hot Spot"),  # exactly 90 %
    ],
)
def test_category_definitions(hot, cold, trend, expected):
    assert classify_pattern(hot, cold, *trend) == expected
    assert expected in CATEGORIES


def test_seventeen_categories():
    assert len(CATEGORIES) == 17 and CATEGORIES[-1] == "No Pattern Detected"


def _incidents(seed=0):
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2026-01-01")
    xy = rng.random((6000, 2)) * 5000
    days = rng.random(6000) * 140
    emerging = rng.normal([3500, 1500], 150, (800, 2))  # appears in the last 10 days
    xy = np.vstack([xy, emerging])
    days = np.r_[days, 130 + rng.random(800) * 10]
    ts = t0 + pd.to_timedelta(days, unit="D")
    return gpd.GeoDataFrame({"t": ts}, geometry=gpd.points_from_xy(*xy.T), crs=32649)


def test_planted_emerging_cluster_is_new_or_intensifying():
    res = emerging_hot_spots(_incidents(), "t", cell_size=250, time_step="10D")
    loc = res.locations
    centre = loc.geometry.centroid
    near = np.hypot(centre.x - 3500, centre.y - 1500) < 200
    assert near.sum() >= 1
    assert loc.loc[near, "category"].isin(["New Hot Spot", "Intensifying Hot Spot"]).all()
    far = np.hypot(centre.x - 3500, centre.y - 1500) > 1200
    assert (loc.loc[far, "category"] == "No Pattern Detected").mean() > 0.97
    assert res.gi_z.shape == res.cube.counts.shape == (len(loc), 14)


def test_cube_counts_all_points():
    pts = _incidents(1)
    cube = space_time_cube(pts, "t", cell_size=500, time_step="7D")
    assert cube.counts.sum() == len(pts)
    assert cube.edges[-1] == pts["t"].max()


def test_bad_parameters():
    pts = _incidents(2)
    with pytest.raises(AnalyticsError, match="must be one of: fishnet, hexagon"):
        emerging_hot_spots(pts, "t", cell_size=250, shape="hex")
    with pytest.raises(AnalyticsError, match="must be one of: t"):
        emerging_hot_spots(pts, "when", cell_size=250)
    with pytest.raises(AnalyticsError, match="at least 10"):
        emerging_hot_spots(pts, "t", cell_size=250, time_step="30D")
    with pytest.raises(AnalyticsError, match="valid time step"):
        emerging_hot_spots(pts, "t", cell_size=250, time_step="weekly")
