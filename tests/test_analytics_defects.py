"""Regression tests for the analytics defects D1-D9 (independent checks against esda, libpysal,
scikit-learn, pyproj and hand computations).  Each test reproduces the defect as reported."""

import time
import warnings

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from libpysal.weights import DistanceBand
from pyproj import Geod
from shapely.geometry import Point

from analytics.aggregate import aggregate_points, fishnet_grid
from analytics.density import density_clusters, kernel_density
from analytics.emerging import count_steps, emerging_hot_spots, space_time_cube
from analytics.errors import AnalyticsError
from analytics.gistar import hot_spots
from analytics.moran import global_moran, local_moran
from analytics.ohsa import locational_outliers, optimized_hot_spots
from analytics.weights import (
    distance_band_weights,
    knn_weights,
    point_coordinates,
    to_projected,
)
from layers.errors import InvalidParameter

TIANYA = (109.51, 18.25)  # lon, lat


def _frame(xy, crs=32649, **cols):
    return gpd.GeoDataFrame(cols, geometry=gpd.points_from_xy(*np.asarray(xy).T), crs=crs)


def _values(n=300, seed=3):
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 4000
    y = rng.poisson(3.0, n) + 6.0 * (xy[:, 0] < 1200)
    return xy, y.astype(float)


# --- D1: inverse distance weights -----------------------------------------------------------


def _gi_star_reference(y, w_dense):
    """Gi* (ArcGIS/Getis-Ord 1995) by hand: self weight = the row's largest weight (esda)."""
    w = np.array(w_dense, dtype=float)
    np.fill_diagonal(w, w.max(axis=1))
    n = y.size
    wi = w.sum(axis=1)
    s = np.sqrt((y**2).mean() - y.mean() ** 2)
    return (w @ y - y.mean() * wi) / (s * np.sqrt((n * (w**2).sum(axis=1) - wi**2) / (n - 1)))


def test_d1_inverse_distance_gi_star_uses_1_over_d():
    from tianya.plugins.processes import HotSpotsProcessor

    xy, y = _values()
    gdf = _frame(xy, v=y)
    band = 600.0
    # the weights are libpysal's DistanceBand(binary=False, alpha=-1): 1 / d within the band
    lib = DistanceBand(xy, threshold=band, binary=False, alpha=-1.0, silence_warnings=True)
    w = distance_band_weights(gdf, band, binary=False)
    np.testing.assert_allclose(w.toarray(), lib.sparse.toarray(), rtol=1e-12, atol=0)
    ref = _gi_star_reference(y, lib.sparse.toarray())
    binary = hot_spots(gdf, "v", weights="distance_band", distance=band)["gi_z"].to_numpy()
    assert np.abs(ref - binary).max() > 0.1  # 1/d really differs from the band
    # the library default and the hot-spots process default both keep the distances
    default = hot_spots(gdf, "v", weights="inverse_distance", distance=band)
    np.testing.assert_allclose(default["gi_z"], ref, rtol=1e-9, atol=1e-9)
    process_default = {o.name: o for o in HotSpotsProcessor.OPTIONS}["transform"].default
    via_process = hot_spots(
        gdf, "v", weights="inverse_distance", distance=band, transform=process_default
    )
    np.testing.assert_allclose(via_process["gi_z"], ref, rtol=1e-9, atol=1e-9)
    # binary "B" would silently be the distance band: refused with the way out
    with pytest.raises(AnalyticsError, match="omit transform"):
        hot_spots(gdf, "v", weights="inverse_distance", distance=band, transform="B")
    with pytest.raises(AnalyticsError, match="omit transform"):  # the same for local Moran
        local_moran(gdf, "v", weights="inverse_distance", distance=band, transform="B")


# --- D2: HDBSCAN with fewer points than min_samples -----------------------------------------


def test_d2_hdbscan_fewer_points_than_min_samples_is_a_400():
    from sklearn.cluster import HDBSCAN

    xy = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    with pytest.raises(ValueError):  # what scikit-learn says (raw, a 500 before)
        HDBSCAN(min_samples=5, copy=True).fit(xy)
    with pytest.raises(InvalidParameter, match=r"min_samples \(5\).*number of points \(4\)") as e:
        density_clusters(_frame(xy), "hdbscan", min_samples=5)
    assert isinstance(e.value, AnalyticsError) and e.value.status == 400


# --- D3: kernel density with missing population values --------------------------------------


def test_d3_kernel_density_skips_missing_population_and_sets_nodata(tmp_path):
    rng = np.random.default_rng(5)
    xy = rng.normal(2000, 300, (200, 2))
    pop = rng.integers(1, 9, 200).astype(float)
    pop[[3, 50, 120]] = np.nan
    gdf = _frame(xy, pop=pop)
    with pytest.warns(UserWarning, match="3 of 200 points have no 'pop' value"):
        res = kernel_density(
            gdf, tmp_path / "k.tif", population_field="pop", bandwidth=400, cell_size=50
        )
    ok = ~np.isnan(pop)
    ref = kernel_density(
        gdf[ok], tmp_path / "ref.tif", population_field="pop", bandwidth=400, cell_size=50
    )
    with rasterio.open(res.path) as src, rasterio.open(ref.path) as rsrc:
        band = src.read(1)
        assert src.nodata is not None and np.isnan(src.nodata)
        assert not np.isnan(band).any()
        assert res.skipped == 3 and src.tags()["skipped_null_population"] == "3"
        assert src.transform == rsrc.transform
        np.testing.assert_array_equal(band, rsrc.read(1))
        # the surface integrates to the population that was counted
        mass = band.sum() * res.cell_size**2 / 1e6
        assert mass == pytest.approx(pop[ok].sum(), rel=0.01)
    with pytest.raises(AnalyticsError, match="all 200 are missing"):
        kernel_density(gdf.assign(pop=np.nan), tmp_path / "none.tif", population_field="pop")


# --- D4: NaN in Moran's field ---------------------------------------------------------------


def test_d4_moran_nan_is_reported_as_missing_not_constant():
    xy, y = _values(120)
    y[[7, 8]] = np.nan
    gdf = _frame(xy, v=y)
    with pytest.raises(AnalyticsError, match=r"'v' has 2 missing") as e:
        local_moran(gdf, "v", permutations=0)
    assert "constant" not in str(e.value)
    with pytest.raises(AnalyticsError, match="2 missing") as e:
        global_moran(y, knn_weights(gdf, k=6))
    assert "constant" not in str(e.value)


# --- D5: time steps ---------------------------------------------------------------------------


def _batches(freq, n_batches, per_batch=40, seed=11):
    rng = np.random.default_rng(seed)
    starts = pd.date_range("2026-01-05", periods=n_batches, freq=freq)
    times = np.repeat(starts, per_batch)
    xy = rng.random((times.size, 2)) * 3000
    return _frame(xy, t=times), starts


@pytest.mark.parametrize(("freq", "n_batches"), [("7D", 12), ("1D", 10)])
def test_d5_exact_multiple_span_gives_one_step_per_batch(freq, n_batches):
    pts, starts = _batches(freq, n_batches)
    assert count_steps(starts[0], starts[-1], freq) == n_batches
    cube = space_time_cube(pts, "t", cell_size=500, time_step=freq)
    assert cube.counts.shape[1] == n_batches
    # every batch is alone in its own step, in order
    np.testing.assert_array_equal(cube.counts.sum(axis=0), np.full(n_batches, 40))
    assert cube.edges[-1] == starts[-1] and cube.edges[0] < starts[0]
    if n_batches == 10:  # EHSA needs 10 steps: ten dailies are enough
        res = emerging_hot_spots(pts, "t", cell_size=500, time_step=freq)
        assert res.gi_z.shape[1] == 10


def test_d5_step_count_is_checked_before_allocating():
    t0 = time.perf_counter()
    with pytest.raises(AnalyticsError, match=r"31,536,000,000,000,001 time steps.*1,000"):
        count_steps("2025-01-01", "2026-01-01", "1ns")
    pts = _frame([[0, 0], [100, 100]], t=pd.to_datetime(["2025-01-01", "2026-01-01"]))
    with pytest.raises(AnalyticsError, match="more than the 1,000 allowed"):
        space_time_cube(pts, "t", cell_size=100, time_step="1ns")
    with pytest.raises(AnalyticsError, match="more than the 1,000 allowed"):
        emerging_hot_spots(pts, "t", cell_size=100, time_step="1ns")
    assert time.perf_counter() - t0 < 5
    assert count_steps("2025-01-01", "2026-01-01", "1D", max_steps=366) == 366
    with pytest.raises(AnalyticsError, match="365"):
        count_steps("2025-01-01", "2026-01-01", "1D", max_steps=365)


# --- D6: the fishnet's far edge ---------------------------------------------------------------


def test_d6_fishnet_keeps_points_on_the_far_edge():
    rng = np.random.default_rng(2026)
    for _ in range(60):
        n = int(rng.integers(50, 400))
        xy = rng.random((n, 2)) * rng.uniform(500, 20_000) + rng.uniform(-1e6, 1e6, 2)
        extent = float(np.max(xy.max(axis=0) - xy.min(axis=0)))
        cell = extent / int(rng.integers(5, 120))  # extent / cell is whole
        pts = _frame(xy)
        cells = aggregate_points(pts, "fishnet", cell_size=cell)
        assert cells["count"].sum() == n
        # each point lies in exactly one cell of the grid (checked geometrically, half-open)
        grid = fishnet_grid(np.r_[xy.min(axis=0), xy.max(axis=0)], cell)
        b = grid.geometry.bounds.to_numpy()
        inside = (
            (xy[:, None, 0] >= b[None, :, 0])
            & (xy[:, None, 1] >= b[None, :, 1])
            & (
                (xy[:, None, 0] < b[None, :, 2])
                | np.isclose(xy[:, None, 0], b[None, :, 2])
                & (b[None, :, 2] >= xy[:, 0].max() - 1e-9 * extent)
            )
            & (
                (xy[:, None, 1] < b[None, :, 3])
                | np.isclose(xy[:, None, 1], b[None, :, 3])
                & (b[None, :, 3] >= xy[:, 1].max() - 1e-9 * extent)
            )
        )
        assert (inside.sum(axis=1) >= 1).all()


def test_d6_ohsa_automatic_cell_size_loses_no_incident():
    rng = np.random.default_rng(7)
    for _ in range(3):
        # dense enough that the automatic cell size is extent / 100 (a whole number of cells)
        xy = rng.random((4000, 2)) * 10_000
        pts = _frame(xy)
        res = optimized_hot_spots(pts, "fishnet")
        kept = len(pts) - res.n_outliers
        core = xy[~locational_outliers(xy)]
        extent = float(np.max(core.max(axis=0) - core.min(axis=0)))
        assert res.cell_size == pytest.approx(extent / 100)
        assert res.cells["count"].sum() == kept


# --- D7: Gi* on constant values or a lone point -----------------------------------------------


def test_d7_gi_star_refuses_constant_values_and_a_lone_point():
    xy, _ = _values(50)
    const = np.full(50, 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from libpysal.graph import Graph

        ref = esda.G_Local(
            const, Graph.build_knn(_frame(xy), k=8), star=True, transform="B", permutations=0
        ).Zs
    assert np.isnan(ref).all()  # esda: undefined
    with pytest.raises(AnalyticsError, match=r"all 50 values of 'v' are equal \(4\)"):
        hot_spots(_frame(xy, v=const), "v")
    with pytest.raises(AnalyticsError, match="at least 2 features, got 1"):
        hot_spots(_frame([[0.0, 0.0]], v=[3.0]), "v", weights="distance_band", distance=100)
    # every neighbourhood holds every feature: undefined everywhere
    with pytest.raises(AnalyticsError, match="undefined for all 50 features"):
        hot_spots(_frame(xy, v=np.arange(50.0)), "v", weights="distance_band", distance=1e6)


# --- D8: Web Mercator and CRS-less lon/lat ----------------------------------------------------


def test_d8_web_mercator_is_reprojected_to_utm():
    geod = Geod(ellps="WGS84")
    lon2, lat2, _ = geod.fwd(*TIANYA, 90.0, 1000.0)  # 1000 m east on the ellipsoid
    ll = gpd.GeoDataFrame(geometry=[Point(*TIANYA), Point(lon2, lat2)], crs=4326)
    merc = ll.to_crs(3857)
    merc_len = merc.geometry.iloc[0].distance(merc.geometry.iloc[1])
    assert merc_len > 1050  # Web Mercator "metres" are 5 % long at 18 deg N
    with pytest.warns(UserWarning, match="EPSG:32649"):
        proj = to_projected(merc)
    assert proj.crs.to_epsg() == 32649
    with pytest.warns(UserWarning):
        xy = point_coordinates(merc)
    assert np.hypot(*(xy[1] - xy[0])) == pytest.approx(1000.0, abs=1.0)
    with pytest.warns(UserWarning):
        w = distance_band_weights(merc, 1010.0)  # ground distance 1000 m: neighbours
    assert w.nnz == 2


def test_d8_web_mercator_density_is_per_ground_km2(tmp_path):
    rng = np.random.default_rng(8)
    ll = _frame(np.asarray(TIANYA) + rng.normal(0, 0.01, (100, 2)), crs=4326)
    with pytest.warns(UserWarning):
        a = kernel_density(ll, tmp_path / "ll.tif", bandwidth=800, cell_size=50)
    with pytest.warns(UserWarning, match="Mercator"):
        b = kernel_density(ll.to_crs(3857), tmp_path / "wm.tif", bandwidth=800, cell_size=50)
    assert b.crs == a.crs == "EPSG:32649"
    with rasterio.open(a.path) as sa, rasterio.open(b.path) as sb:
        np.testing.assert_allclose(sb.read(1), sa.read(1), rtol=1e-4, atol=1e-3)


def test_d8_lonlat_without_crs_warns():
    rng = np.random.default_rng(9)
    lonlat = np.asarray(TIANYA) + rng.normal(0, 0.05, (40, 2))
    with pytest.warns(UserWarning, match="no CRS.*longitude/latitude"):
        knn_weights(_frame(lonlat, crs=None), k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # metres without a CRS: no warning
        knn_weights(_frame(lonlat * 1000 + 5e5, crs=None), k=3)


# --- D9: missing / empty / NaN geometries -----------------------------------------------------


def _with_bad_geometries():
    xy, y = _values(60)
    geoms = list(shapely.points(xy))
    geoms[5], geoms[17], geoms[40] = None, Point(), Point(np.nan, np.nan)
    return gpd.GeoDataFrame({"v": y, "count": y}, geometry=geoms, crs=32649)


@pytest.mark.parametrize(
    "call",
    [
        lambda g, p: hot_spots(g, "v"),
        lambda g, p: hot_spots(g, "v", weights="distance_band", distance=500),
        lambda g, p: local_moran(g, "v", permutations=0),
        lambda g, p: kernel_density(g, p / "k.tif"),
        lambda g, p: density_clusters(g, "hdbscan"),
        lambda g, p: density_clusters(g, "dbscan", eps=200),
        lambda g, p: aggregate_points(g, "fishnet", cell_size=200),
        lambda g, p: aggregate_points(g, "hexagon", cell_size=200),
        lambda g, p: knn_weights(g.to_crs(4326), k=4),
    ],
    ids=[
        "gi-knn",
        "gi-band",
        "moran",
        "kde",
        "hdbscan",
        "dbscan",
        "fishnet",
        "hexagon",
        "knn-4326",
    ],
)
def test_d9_missing_geometries_are_refused_with_a_count(call, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(AnalyticsError, match="3 of 60 rows have a missing or empty geometry"):
            call(_with_bad_geometries(), tmp_path)
