"""Aggregation, Optimized Hot Spot Analysis, kernel density and density clusters."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point

from analytics.aggregate import aggregate_points, fishnet_grid, hexagon_grid
from analytics.density import density_clusters, kernel_density, silverman_bandwidth
from analytics.errors import AnalyticsError
from analytics.ohsa import optimized_hot_spots


def _clustered(seed=0, n_bg=3000, n_cl=600):
    rng = np.random.default_rng(seed)
    xy = np.vstack([rng.random((n_bg, 2)) * 5000, rng.normal([1500, 3500], 150, (n_cl, 2))])
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=32649)


@pytest.mark.parametrize("kind", ["fishnet", "hexagon"])
def test_aggregate_counts_every_point(kind):
    pts = _clustered()
    cells = aggregate_points(pts, kind, cell_size=200)
    assert cells["count"].sum() == len(pts) and (cells["count"] > 0).all()


def test_aggregate_communities():
    pts = _clustered()
    polys = fishnet_grid((-100, -100, 5100, 5100), 1300, crs=32649)
    out = aggregate_points(pts, "communities", polygons=polys)
    assert out["count"].sum() == len(pts) and len(out) == len(polys)


def test_hexagon_area():
    grid = hexagon_grid((0, 0, 1000, 1000), 100)
    assert np.allclose(grid.area, np.sqrt(3) / 2 * 100**2)


def test_aggregation_error_lists_choices():
    with pytest.raises(
        AnalyticsError,
        match="'hexagon2' is not a valid aggregation, must be one of: fishnet, hexagon, "
        "communities",
    ):
        aggregate_points(_clustered(), "hexagon2", cell_size=100)


@pytest.mark.parametrize("kind", ["fishnet", "hexagon"])
def test_ohsa_finds_planted_cluster(kind):
    res = optimized_hot_spots(_clustered(), kind)
    hot = res.cells[res.cells["gi_bin"] == 3].geometry.centroid
    assert len(hot) > 20
    assert np.hypot(hot.x.mean() - 1500, hot.y.mean() - 3500) < 150
    assert res.scale_method in {"peak", "fallback"} and res.distance_band > 0
    assert len(res.isa) == 10


def test_ohsa_random_points_no_hotspots():
    rng = np.random.default_rng(3)
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(*(rng.random((3000, 2)) * 5000).T), crs=32649
    )
    res = optimized_hot_spots(pts, "fishnet")
    assert (res.cells["gi_bin"] != 0).mean() < 0.01


def test_kde_geotiff(tmp_path):
    pts = _clustered(n_bg=1000, n_cl=300)
    out = kernel_density(pts, tmp_path / "kde.tif", units="per_km2")
    with rasterio.open(out.path) as src:
        assert src.crs.to_epsg() == 32649
        assert src.transform == out.transform
        assert src.transform.a == pytest.approx(out.cell_size)
        dens = src.read(1)
    total = dens.sum() * out.cell_size**2 / 1e6  # per km2 -> count
    assert total == pytest.approx(len(pts), rel=0.01)
    xy = np.c_[pts.geometry.x, pts.geometry.y]
    assert out.bandwidth == pytest.approx(silverman_bandwidth(xy))


def test_kde_bad_units(tmp_path):
    with pytest.raises(AnalyticsError, match="must be one of: per_m2, per_km2, per_ha"):
        kernel_density(_clustered(), tmp_path / "k.tif", units="km2")


@pytest.mark.parametrize(
    ("method", "kw"),
    [("dbscan", {"eps": 60.0, "min_samples": 15}), ("hdbscan", {"min_cluster_size": 100})],
)
@pytest.mark.parametrize("hull", ["convex", "concave"])
def test_density_clusters(method, kw, hull):
    res = density_clusters(_clustered(n_bg=800), method, hull=hull, **kw)
    big = res.clusters.sort_values("count").iloc[-1]
    # HDBSCAN may absorb some background around the planted cluster: check containment
    assert big.geometry.contains(Point(1500, 3500)) and big["count"] >= 300
    assert res.points["cluster"].max() + 1 == len(res.clusters)
    assert res.clusters["count"].sum() == (res.points["cluster"] >= 0).sum()


def test_density_cluster_errors():
    with pytest.raises(AnalyticsError, match="must be one of: dbscan, hdbscan"):
        density_clusters(_clustered(), "optics")
    with pytest.raises(AnalyticsError, match="needs eps"):
        density_clusters(_clustered(), "dbscan")
