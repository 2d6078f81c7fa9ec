"""Service coverage and relief follow-up by community."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from analytics.coverage import (
    nearest_distance,
    party_service_coverage,
    relief_followup,
    service_coverage,
    shelter_coverage,
    with_communities,
)
from analytics.errors import AnalyticsError
from geodata.sample import YEAR_END
from layers.catalogue import LAYERS

AS_OF = pd.Timestamp(YEAR_END, tz="UTC")


def test_toy_coverage():
    b = gpd.GeoDataFrame(
        {"community_code": ["a", "a", "b"], "resident_pop": [10, 30, 5]},
        geometry=[shapely.Point(0, 0), shapely.Point(3000, 0), shapely.Point(0, 999)],
        crs=32649,
    )
    f = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=32649)
    out = service_coverage(b, f, 1000).set_index("community_code")
    assert out.loc["a", ["people", "people_within"]].tolist() == [40, 10]
    assert out.loc["a", "share_within"] == 0.25
    assert out.loc["b", "share_within"] == 1.0
    assert np.isinf(nearest_distance(b, f.iloc[:0])).all()
    with pytest.raises(AnalyticsError, match="distance_m"):
        service_coverage(b, f, 0)


def test_party_coverage_equals_brute_force(sample_data):
    b = sample_data["building_population"]
    party = sample_data["party_building"]
    out = party_service_coverage(b, party, 1000).set_index("community_code")
    centres = party[party["org_type"] == "service_center"].to_crs(32649).geometry
    cent = b.to_crs(32649).geometry.centroid
    within = np.array([centres.distance(c).min() <= 1000 for c in cent])
    pop = b["resident_pop"].fillna(0).to_numpy()
    expect = pd.Series(np.where(within, pop, 0)).groupby(b["community_code"].to_numpy()).sum()
    assert (out["people_within"] == expect.reindex(out.index)).all()
    assert out["people"].sum() == pop.sum()
    assert 0 < out["people_within"].sum() < pop.sum()


def test_shelter_coverage_grows_with_distance(sample_data):
    b, fp = sample_data["building_population"], sample_data["flood_prevention"]
    near = shelter_coverage(b, fp, 500)["people_within"].sum()
    far = shelter_coverage(b, fp, 3000)["people_within"].sum()
    assert near < far


def test_relief_followup_counts_only(sample_data):
    h = sample_data["poverty_relief"]
    out = relief_followup(h, as_of=AS_OF, max_days=30)
    personal = set(LAYERS["poverty_relief"].sensitive_fields) | {"household_code"}
    assert not personal & set(out.columns)
    age = (AS_OF - pd.to_datetime(h["last_visit_at"], utc=True)).dt.total_seconds() / 86400
    stale = age > 30
    mon = h["monitoring_type"] != "none"
    assert out["households"].sum() == len(h)
    assert out["not_visited"].sum() == stale.sum()
    assert out["monitored_not_visited"].sum() == (stale & mon).sum()
    assert out["monitored_without_cadre"].sum() == (mon & h["cadre_name"].isna()).sum()
    # a public caller's frame has no cadre_name: the column is simply absent
    public = relief_followup(
        h.drop(columns=list(LAYERS["poverty_relief"].sensitive_fields)), as_of=AS_OF
    )
    assert "monitored_without_cadre" not in public


def test_with_communities_keeps_all(sample_data):
    out = with_communities(
        party_service_coverage(sample_data["building_population"], sample_data["party_building"]),
        sample_data["communities"],
    )
    assert len(out) == 44 and out.crs is not None
    assert out["people"].dtype.kind == "i"
