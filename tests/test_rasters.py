"""The synthetic DEM and flood scenarios: COG layout, metadata and plausibility."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely

from geodata.rasters import SCENARIOS, default_dir, raster_files
from geodata.sample import COASTLINE, land_area


@pytest.fixture(scope="module")
def files(sample_gpkg):
    return raster_files(default_dir(sample_gpkg))


@pytest.fixture(scope="module")
def dem(files):
    with rasterio.open(files["dem"]) as src:
        return src.read(1), src.transform


def test_cog_layout_and_metadata(files):
    for key, path in files.items():
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 4326
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert src.block_shapes == [(512, 512)]
            assert src.overviews(1) == [2, 4, 8, 16]
            tags = src.tags()
            assert tags["SYNTHETIC"] == "yes" and "synthetic" in tags["NOTE"].lower()
            assert src.units == ("m",)
            assert src.descriptions == ("elevation" if key == "dem" else "flood_depth",)


def _sample(arr, t, lon, lat):
    return arr[int((t.f - lat) / -t.e), int((lon - t.c) / t.a)]


def test_dem_high_north_low_coast(dem):
    arr, t = dem
    land = land_area()
    rows = np.arange(0, arr.shape[0], 200)
    cols = np.arange(0, arr.shape[1], 200)
    xs, ys = np.meshgrid(t.c + (cols + 0.5) * t.a, t.f + (rows + 0.5) * t.e)
    on_land = shapely.contains_xy(land, xs, ys)
    vals = arr[np.ix_(rows, cols)]
    north = vals[on_land & (ys > 18.50)]
    coast = vals[on_land & (ys < 18.33)]
    assert np.median(north) > 150 > 20 > np.median(coast)
    # the sea (south of the coastline) is below 0
    assert _sample(arr, t, 109.35, 18.25) < 0
    assert _sample(arr, t, COASTLINE[5][0], COASTLINE[5][1] - 0.01) < 0


def test_rivers_follow_valleys(dem, sample_data):
    arr, t = dem
    rivers = sample_data["rivers"]
    for line in rivers.geometry:
        mid = line.interpolate(0.5, normalized=True)
        on = _sample(arr, t, mid.x, mid.y)
        # 1.5 km east and west of the river's midpoint the ground is higher
        sides = [_sample(arr, t, mid.x + dx, mid.y) for dx in (-0.015, 0.015)]
        assert on < max(sides)


def test_flood_scenarios_nested_and_nan_at_sea(files):
    def read(sid):
        with rasterio.open(files[sid]) as src:
            return src.read(1)

    s1, s3 = read("surge_1_5m"), read("surge_3m")
    r2, r4 = read("rain_200mm"), read("rain_400mm")
    sea = np.isnan(s1)
    assert sea.any() and np.array_equal(sea, np.isnan(r4))
    land = ~sea
    for low, high in ((s1, s3), (r2, r4)):
        wet_low, wet_high = land & (low >= 0.15), land & (high >= 0.15)
        assert wet_low.sum() < wet_high.sum()
        assert (wet_low & ~wet_high).sum() < 0.01 * wet_low.sum()  # higher level: more water
    assert 0 < np.nanmax(s1) < 1.5 and 1.5 < np.nanmax(s3) < 3.0  # friction loss inland
    assert set(SCENARIOS) == {"surge_1_5m", "surge_3m", "rain_200mm", "rain_400mm"}


@pytest.mark.slow
def test_cli_rasters_deterministic(sample_gpkg, files, tmp_path):
    from click.testing import CliRunner

    from tianya.cli import main

    out = tmp_path / "rasters"
    res = CliRunner().invoke(main, ["rasters", "--data", sample_gpkg, "-o", str(out)])
    assert res.exit_code == 0, res.output
    again = raster_files(str(out))
    for key in ("dem", "surge_3m"):
        with rasterio.open(files[key]) as a, rasterio.open(again[key]) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
