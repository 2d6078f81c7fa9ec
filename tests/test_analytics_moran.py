"""Local and global Moran's I against esda."""

import warnings

import esda
import geopandas as gpd
import numpy as np
import pytest
from libpysal.graph import Graph

from analytics.errors import AnalyticsError
from analytics.moran import global_moran, local_moran, local_moran_i
from analytics.weights import knn_weights


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(21)
    xy = rng.random((1200, 2)) * 5000
    v = rng.normal(size=1200) + np.sin(xy[:, 0] / 800)
    gdf = gpd.GeoDataFrame({"v": v}, geometry=gpd.points_from_xy(*xy.T), crs=32649)
    return gdf, knn_weights(gdf, k=6), Graph.build_knn(gdf, k=6)


def test_local_moran_equals_esda(data):
    gdf, w, g = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = esda.Moran_Local(
            gdf["v"].to_numpy(), g, permutations=999, seed=1, alternative="directed"
        )
    res = local_moran(gdf, "v", weights=w, k=6, permutations=999, seed=2)
    np.testing.assert_allclose(res["lisa_i"], ref.Is, rtol=0, atol=1e-9)
    np.testing.assert_allclose(local_moran_i(gdf["v"], w), ref.Is, rtol=0, atol=1e-9)
    codes = res["lisa_q"].map({"HH": 1, "LH": 2, "LL": 3, "HL": 4}).astype(int)
    assert (codes.to_numpy() == ref.q).all()
    assert np.abs(res["lisa_p_sim"] - ref.p_sim).mean() < 0.02
    assert set(res["lisa_cluster"]) <= {"HH", "LH", "LL", "HL", "ns"}
    assert (res["lisa_cluster"] != "ns").any()


def test_local_moran_seeded(data):
    gdf, w, _ = data
    a = local_moran(gdf, "v", weights=w, permutations=99, seed=4)
    b = local_moran(gdf, "v", weights=w, permutations=99, seed=4)
    np.testing.assert_array_equal(a["lisa_p_sim"], b["lisa_p_sim"])


def test_global_moran_equals_esda(data):
    gdf, w, g = data
    ref = esda.Moran(gdf["v"].to_numpy(), g, permutations=0)
    m = global_moran(gdf["v"].to_numpy(), w)
    assert m.I == pytest.approx(ref.I, abs=1e-12)
    assert m.z_norm == pytest.approx(ref.z_norm, abs=1e-9)
    assert m.z_rand == pytest.approx(ref.z_rand, abs=1e-9)


def test_constant_values_raise(data):
    gdf, w, _ = data
    with pytest.raises(AnalyticsError, match="constant"):
        local_moran_i(np.ones(len(gdf)), w)
    with pytest.raises(AnalyticsError, match="must be one of: two-sided, directed"):
        local_moran(gdf, "v", alternative="folded")
