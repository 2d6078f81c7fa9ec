"""Gi*, weights and FDR: equality with esda/scipy, planted and random patterns, bad input."""

import warnings

import esda
import geopandas as gpd
import numpy as np
import pytest
from libpysal.graph import Graph
from scipy import stats

from analytics.errors import AnalyticsError
from analytics.fdr import bh_adjust, fdr_reject
from analytics.gistar import confidence_bins, gi_star_z, hot_spots
from analytics.weights import (
    contiguity_weights,
    distance_band_weights,
    knn_weights,
    transform_weights,
)


def _points(n=1500, seed=1):
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 10_000
    y = rng.poisson(3.0, n).astype(float)
    return gpd.GeoDataFrame({"count": y}, geometry=gpd.points_from_xy(*xy.T), crs=32649)


def _esda_gi(y, graph, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return esda.G_Local(y, graph, star=True, transform="B", **kw)


def test_knn_weights_equal_libpysal():
    gdf = _points()
    w = knn_weights(gdf, k=8)
    g = Graph.build_knn(gdf, k=8)
    assert abs(w - g.sparse).max() == 0
    assert np.all(np.diff(w.indptr) == 8) and not w.diagonal().any()


def test_gi_star_z_equals_esda_knn():
    gdf = _points()
    y = gdf["count"].to_numpy()
    z = gi_star_z(y, knn_weights(gdf, k=8))
    ref = _esda_gi(y, Graph.build_knn(gdf, k=8), permutations=0).Zs
    np.testing.assert_allclose(z, ref, rtol=0, atol=1e-9)


def test_gi_star_z_equals_esda_distance_band():
    gdf = _points()
    y = gdf["count"].to_numpy()
    w = distance_band_weights(gdf, 600.0)
    g = Graph.build_distance_band(gdf, 600.0)
    ref = _esda_gi(y, g, permutations=0).Zs
    np.testing.assert_allclose(gi_star_z(y, w), ref, rtol=0, atol=1e-9)


def test_row_standardisation_does_not_change_gi_star():
    # ArcGIS: "results from Hot Spot Analysis would be identical with or without row
    # standardization" -- true of the general Gi* formula used here
    gdf = _points(500)
    y = gdf["count"].to_numpy()
    w = distance_band_weights(gdf, 800.0)
    np.testing.assert_allclose(gi_star_z(y, w, transform="R"), gi_star_z(y, w), atol=1e-12)


def test_planted_hotspot_is_found():
    rng = np.random.default_rng(7)
    gdf = _points(2000, seed=7)
    xy = np.c_[gdf.geometry.x, gdf.geometry.y]
    inside = np.hypot(xy[:, 0] - 3000, xy[:, 1] - 7000) < 800
    gdf.loc[inside, "count"] += rng.poisson(6.0, inside.sum())
    res = hot_spots(gdf, fdr=True)
    assert (res.loc[inside, "gi_bin"] == 3).mean() > 0.6
    assert (res.loc[~inside, "gi_bin"] == 3).mean() < 0.02
    assert set(res.columns) >= {"gi_z", "gi_p", "gi_bin", "n_neighbors"}


def test_random_data_false_positive_rate():
    gdf = _points(4000, seed=11)
    res = hot_spots(gdf)
    assert (res["gi_p"] <= 0.05).mean() < 0.075
    assert (res["gi_bin"].abs() >= 2).mean() < 0.075
    res_fdr = hot_spots(gdf, fdr=True)
    assert (res_fdr["gi_bin"].abs() >= 2).mean() < 0.01


def test_permutations_seeded_and_consistent_with_esda():
    rng = np.random.default_rng(3)
    gdf = _points(800, seed=3)
    gdf["v"] = rng.normal(size=len(gdf)) + gdf.geometry.x / 4000
    a = hot_spots(gdf, "v", permutations=199, seed=5, alternative="directed")
    b = hot_spots(gdf, "v", permutations=199, seed=5, alternative="directed")
    np.testing.assert_array_equal(a["gi_p_sim"], b["gi_p_sim"])
    ref = _esda_gi(
        gdf["v"].to_numpy(),
        Graph.build_knn(gdf, k=8),
        permutations=999,
        seed=1,
        alternative="directed",
    )
    ours = hot_spots(gdf, "v", permutations=999, seed=9, alternative="directed")["gi_p_sim"]
    # same null distribution: Monte Carlo error only
    assert np.abs(ours - ref.p_sim).mean() < 0.02
    assert np.abs(ours - ref.p_sim).max() < 0.15
    assert np.corrcoef(ours, ref.p_sim)[0, 1] > 0.98


def test_general_weights_permutation_path():
    gdf = _points(600, seed=4)
    w = distance_band_weights(gdf, 900.0, binary=False)
    res = hot_spots(gdf, weights=w, permutations=99, seed=1)
    assert res["gi_p_sim"].between(0.01, 1).all()


def test_bh_equals_scipy():
    p = np.random.default_rng(0).random(500) ** 3
    np.testing.assert_allclose(bh_adjust(p), stats.false_discovery_control(p, method="bh"))
    assert fdr_reject(p, 0.05).sum() == (stats.false_discovery_control(p) <= 0.05).sum()


def test_confidence_bins():
    z = np.array([3.0, -2.2, 1.7, 0.5, -3.5])
    p = 2 * stats.norm.sf(np.abs(z))
    assert confidence_bins(z, p).tolist() == [3, -2, 1, 0, -3]


def test_contiguity_queen_and_rook():
    from analytics.aggregate import fishnet_grid

    grid = fishnet_grid((0, 0, 299, 299), 100)
    queen = contiguity_weights(grid, "queen")
    rook = contiguity_weights(grid, "rook")
    centre = int(grid.index[(grid["row"] == 1) & (grid["col"] == 1)][0])
    assert queen[[centre], :].nnz == 8 and rook[[centre], :].nnz == 4
    assert transform_weights(rook, "R").sum(axis=1).round(12).tolist() == [1.0] * 9


def test_geographic_input_warns_and_matches_utm():
    gdf = _points(300).set_crs(32649, allow_override=True)
    geo = gdf.to_crs(4326)
    with pytest.warns(UserWarning, match="EPSG:32649"):
        w = knn_weights(geo, k=4)
    assert abs(w - knn_weights(gdf, k=4)).max() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": "knn8"}, "must be one of: knn, distance_band, inverse_distance, queen, rook"),
        ({"transform": "X"}, "must be one of: B, R"),
        ({"alternative": "less"}, "must be one of: two-sided, directed"),
        ({"field": "nope"}, "must be one of: count"),
        ({"permutations": -1}, "non-negative integer"),
        ({"weights": "distance_band"}, "needs a distance"),
        ({"k": 0}, "positive integer"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(AnalyticsError, match=message):
        hot_spots(_points(100), **kwargs)
    assert issubclass(AnalyticsError, ValueError)


def test_binary_csr_fast_path_equals_general_path():
    gdf = _points(800)
    w = knn_weights(gdf, k=8)
    y = gdf["count"].to_numpy()
    fast = gi_star_z(y, w)
    general = gi_star_z(y, w.tocoo())  # not CSR: the copying path
    np.testing.assert_allclose(fast, general, rtol=0, atol=1e-12)
    diag = w.tolil()
    diag.setdiag(1.0)
    with pytest.raises(AnalyticsError, match="zero diagonal"):
        gi_star_z(y, diag.tocsr())


def test_analytics_error_is_an_invalid_parameter():
    from layers.errors import InvalidParameter, TianyaError

    assert issubclass(AnalyticsError, InvalidParameter)
    assert issubclass(AnalyticsError, TianyaError) and AnalyticsError.status == 400
