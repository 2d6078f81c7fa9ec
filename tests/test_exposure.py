"""Flood exposure: the library's figures against an independent plain-numpy computation."""

from __future__ import annotations

import math
from collections import defaultdict

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import requests
import shapely

from analytics.errors import AnalyticsError
from analytics.exposure import assign_shelters, depth_class, flood_exposure
from geodata.rasters import default_dir, raster_files
from layers.catalogue import LAYERS
from layers.gpkg import GeoPackageStore

SCENARIO = "surge_3m"


@pytest.fixture(scope="module")
def frames(sample_gpkg):
    store = GeoPackageStore(sample_gpkg)
    return {
        k: store.read_frame(LAYERS[k])
        for k in ("building_population", "communities", "flood_prevention", "urban_fixtures")
    }


@pytest.fixture(scope="module")
def raster(sample_gpkg):
    return raster_files(default_dir(sample_gpkg))[SCENARIO]


@pytest.fixture(scope="module")
def exposure(frames, raster):
    return flood_exposure(
        frames["building_population"],
        raster,
        communities=frames["communities"],
        flood_points=frames["flood_prevention"],
        fixtures=frames["urban_fixtures"],
    )


def _numpy_depths(buildings: gpd.GeoDataFrame, path: str) -> np.ndarray:
    """Max depth over pixel centres inside each footprint; the centroid's pixel otherwise.

    Plain arithmetic on the affine transform and ``shapely.contains_xy``: no rasterio
    rasterize, windows or sample.
    """
    with rasterio.open(path) as src:
        arr = src.read(1).astype(float)
        x0, y0, res = src.transform.c, src.transform.f, src.transform.a
    arr = np.where(np.isfinite(arr), np.clip(arr, 0, None), 0.0)
    out = np.zeros(len(buildings))
    for i, poly in enumerate(buildings.geometry):
        minx, miny, maxx, maxy = poly.bounds
        cols = np.arange(math.floor((minx - x0) / res), math.ceil((maxx - x0) / res) + 1)
        rows = np.arange(math.floor((y0 - maxy) / res), math.ceil((y0 - miny) / res) + 1)
        xs, ys = np.meshgrid(x0 + (cols + 0.5) * res, y0 - (rows + 0.5) * res)
        inside = shapely.contains_xy(poly, xs, ys)
        if inside.any():
            out[i] = arr[np.ix_(rows, cols)][inside].max()
        else:
            c = poly.centroid
            out[i] = arr[int((y0 - c.y) // res), int((c.x - x0) // res)]
    return out


def _numpy_class(d: float) -> str:
    if d < 0.15:
        return "dry"
    if d < 0.5:
        return "shallow"
    if d < 1.0:
        return "moderate"
    if d < 2.0:
        return "deep"
    return "very_deep"


def test_exposure_equals_numpy_mask(frames, raster, exposure):
    b = frames["building_population"]
    depth = _numpy_depths(b, raster)
    np.testing.assert_allclose(
        exposure.buildings["depth_max"].to_numpy(), depth.round(3), atol=1e-6
    )
    nb, pop, move = defaultdict(int), defaultdict(int), defaultdict(int)
    for code, d, p in zip(b["community_code"], depth, b["resident_pop"].fillna(0), strict=True):
        cls = _numpy_class(round(d, 3))
        nb[code, cls] += 1
        pop[code, cls] += int(p)
        if round(d, 3) >= 0.5 and p > 0:
            move[code] += int(p)
    table = exposure.communities.set_index("community_code")
    assert sum(move.values()) > 1000, "the scenario should put people in water"
    for code, row in table.iterrows():
        for cls in ("dry", "shallow", "moderate", "deep", "very_deep"):
            assert row[f"buildings_{cls}"] == nb[code, cls], (code, cls)
            assert row[f"people_{cls}"] == pop[code, cls], (code, cls)
        assert row["people_to_move"] == move[code], code
    assert table["people"].sum() == int(b["resident_pop"].sum())
    assert exposure.summary["people_to_move"] == sum(move.values())


def test_shelters_respect_capacity_and_dry_sites(exposure):
    sh = exposure.shelters
    assert (sh["assigned"] <= sh["capacity"]).all()
    assert (sh.loc[~sh["usable"], "assigned"] == 0).all()
    assert (sh.loc[~sh["usable"], "depth"] >= 0.15).all()
    b = exposure.buildings
    moved = b[b["evacuate"]]
    assert moved["shelter_code"].notna().sum() + exposure.summary["buildings_unsheltered"] == len(
        moved
    )
    assert b.loc[~b["evacuate"], "shelter_code"].isna().all()


def test_points_at_risk_sampled(exposure, raster):
    pts = exposure.points
    assert set(pts["kind"]) == {"waterlogging_point", "pump_station", "manhole_cover"}
    with rasterio.open(raster) as src:
        arr = src.read(1)
        x0, y0, res = src.transform.c, src.transform.f, src.transform.a
    xy = shapely.get_coordinates(pts.geometry.to_numpy())
    v = arr[((y0 - xy[:, 1]) // res).astype(int), ((xy[:, 0] - x0) // res).astype(int)]
    v = np.where(np.isfinite(v), v.astype(float), 0.0)
    np.testing.assert_allclose(pts["depth"], v.round(3), atol=1e-6)
    assert (pts["at_risk"] == (pts["depth"] >= 0.15)).all()
    assert exposure.summary["points_at_risk"]["manhole_cover"] == int(
        (pts["at_risk"] & (pts["kind"] == "manhole_cover")).sum()
    )


def test_greedy_assignment_nearest_with_room():
    # UTM 49N coordinates: shelters A (cap 100) at x=0 and B (cap 1000) at x=5000
    pts = [shapely.Point(x, 0) for x in (100, 200, 300)]
    movers = gpd.GeoDataFrame({"resident_pop": [60, 50, 30]}, geometry=pts, crs=32649).to_crs(4326)
    shelters = gpd.GeoDataFrame(
        {"facility_code": ["A", "B"], "capacity": [100, 1000]},
        geometry=[shapely.Point(0, 0), shapely.Point(5000, 0)],
        crs=32649,
    ).to_crs(4326)
    out = assign_shelters(movers, shelters)
    # 60 fills A first (nearest pair), 50 no longer fits, 30 still does
    assert out["shelter_code"].tolist() == ["A", "B", "A"]
    assert out["distance_m"].round(0).tolist() == [100, 4800, 300]


def test_depth_classes_and_errors(frames, raster):
    assert depth_class([0.149, 0.15, 0.5, 1.0, 1.999, 2.0, np.nan]).tolist() == [
        "dry",
        "shallow",
        "moderate",
        "deep",
        "deep",
        "very_deep",
        "dry",
    ]
    with pytest.raises(AnalyticsError, match="evacuate_depth"):
        flood_exposure(frames["building_population"], raster, evacuate_depth=-1)
    with pytest.raises(AnalyticsError, match="resident_pop"):
        flood_exposure(frames["building_population"].drop(columns="resident_pop"), raster)


def test_exposure_process_live(live_server, exposure):
    body = {"inputs": {"scenario": SCENARIO}}
    r = requests.post(
        live_server.url + "/processes/flood-exposure/execution", json=body, timeout=120
    )
    assert r.status_code == 200, r.text[:300]
    out = r.json()
    assert out["scenario"]["synthetic"] is True
    assert out["summary"]["people_to_move"] == exposure.summary["people_to_move"]
    assert out["summary"]["people_by_class"] == exposure.summary["people_by_class"]
    assert len(out["communities"]) == 44
    assert not {"manager_name", "manager_phone", "responsible_person", "phone"} & set(
        out["shelters"][0]
    )
    bad = requests.post(
        live_server.url + "/processes/flood-exposure/execution",
        json={"inputs": {"scenario": "surge_9m"}},
        timeout=60,
    )
    assert bad.status_code == 400
    assert "surge_1_5m" in bad.json()["description"]
