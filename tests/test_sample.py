"""The synthetic sample data: deterministic, realistic, consistent with the catalogue."""

import numpy as np
import pandas as pd
import shapely

from geodata.sample import (
    YEAR_END,
    YEAR_START,
    generate,
    land_area,
    planted_patterns,
)
from layers.catalogue import GEOMETRY_TYPES, LAYERS, OPINION
from layers.district import TZ_NAME, UTM


def test_same_seed_same_data(sample_data):
    again = generate(seed=20261125)
    for lid, frame in sample_data.items():
        if lid in OPINION:  # ingested posts (analytics.opinion), not generate()'s: empty there
            continue
        pd.testing.assert_frame_equal(
            frame.drop(columns="geometry", errors="ignore"),
            again[lid].drop(columns="geometry", errors="ignore"),
        )
        if "geometry" in frame:
            assert frame.geometry.geom_equals_exact(again[lid].geometry, 1e-12).all(), lid


def test_other_seed_other_data(sample_data):
    other = generate(seed=7, n_incidents=300)
    assert len(other["incidents"]) == 300
    assert not np.allclose(
        other["communities"].to_crs(UTM).area.to_numpy(),
        sample_data["communities"].to_crs(UTM).area.to_numpy(),
    )


def test_frames_match_the_catalogue(sample_data):
    assert set(sample_data) == set(LAYERS)
    for lid, frame in sample_data.items():
        layer = LAYERS[lid]
        assert [c for c in frame.columns if c != "geometry"] == [f.name for f in layer.fields]
        assert frame[layer.key].is_unique, lid
        for f in layer.fields:
            if f.codes is not None:
                bad = set(frame[f.name].dropna()) - set(f.code_values)
                assert not bad, (lid, f.name, bad)
        if layer.geometry_type:
            # a post or topic whose place is unknown has no point
            geoms = frame.geometry.dropna() if lid in OPINION else frame.geometry
            types = set(geoms.geom_type)
            if layer.geometry_type == "Geometry":  # any type (key tasks)
                assert types <= set(GEOMETRY_TYPES) - {"Geometry"}, (lid, types)
            else:
                assert types == {layer.geometry_type}, (lid, types)
            assert geoms.is_valid.all(), lid


def test_units_tile_the_land(sample_data):
    units = sample_data["communities"].to_crs(UTM)
    assert len(units) == 44
    assert (units["kind"] == "community").sum() == 25
    land = gpd_area(land_area())
    assert abs(units.area.sum() - land) / land < 1e-6
    union = shapely.union_all(units.geometry.values)
    assert abs(union.area - units.area.sum()) < 1.0  # no overlaps
    assert all(len(c) == 12 and c.startswith("460204") for c in units["code"])


def gpd_area(geom):
    import geopandas as gpd

    return gpd.GeoSeries([geom], crs=4326).to_crs(UTM).area.iloc[0]


def test_grid_and_component_codes(sample_data):
    grids = sample_data["grid_cells"]
    assert grids["grid_code"].str.fullmatch(r"\d{15}").all()
    assert (grids["grid_code"].str[:12] == grids["community_code"]).all()
    per = grids.groupby("community_code").size()
    assert per.between(3, 8).all()
    fx = sample_data["urban_fixtures"]
    assert fx["component_code"].str.fullmatch(r"460204\d{10}").all()
    assert (fx["component_code"].str[6:10] == fx["subclass"]).all()


def test_incidents_year(sample_data):
    inc = sample_data["incidents"]
    assert 5000 <= len(inc) <= 6000
    local = inc["reported_at"].dt.tz_convert(TZ_NAME)
    assert local.min().date() >= YEAR_START and local.max().date() <= YEAR_END
    closed = inc["status"].isin(["closed", "evaluated"]).mean()
    assert 0.97 <= closed <= 1.0
    # lifecycle timestamps are ordered
    ts = inc[["reported_at", "registered_at", "dispatched_at", "handled_at", "closed_at"]].dropna()
    for a, b in zip(ts.columns, ts.columns[1:], strict=False):
        assert (ts[a] <= ts[b]).all(), (a, b)
    # channels and categories are mixed, typhoon season is busier
    assert inc["channel"].nunique() == 6 and inc["category"].nunique() >= 15
    month = local.dt.month
    season = inc[(month >= 6) & (month <= 11)].shape[0] / 6
    rest = inc[(month < 6) | (month == 12)].shape[0] / 6
    assert season > rest * 1.1


def test_planted_patterns_are_in_the_data(sample_data):
    import geopandas as gpd

    inc = sample_data["incidents"].to_crs(UTM)
    land = land_km2()
    for p in planted_patterns():
        cx = gpd.GeoSeries([shapely.Point(p.lon, p.lat)], crs=4326).to_crs(UTM).iloc[0]
        assert land_area().contains(shapely.Point(p.lon, p.lat)), p.name
        start = pd.Timestamp(p.start, tz=TZ_NAME)
        window = inc["reported_at"] >= start
        near = (inc.distance(cx) < p.radius_m) & window
        density_near = near.sum() / (np.pi * (p.radius_m / 1000) ** 2)
        overall = window.sum() / land
        assert density_near > 20 * overall, p.name
        if p.kind == "emerging":  # nothing there before its window: a new cluster
            before = (inc.distance(cx) < p.radius_m) & ~window
            assert before.sum() < near.sum() / 5, p.name


def land_km2():
    return gpd_area(land_area()) / 1e6
