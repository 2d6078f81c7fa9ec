"""River-chief analytics: patrol compliance by level and water-quality deterioration."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from analytics.errors import AnalyticsError
from analytics.rivers import (
    PATROL_INTERVAL_DAYS,
    QUALITY_ORDER,
    compliance_by_level,
    patrol_compliance,
    quality_changes,
)
from geodata.patrols import AS_OF, synthetic_patrols

T = pd.Timestamp("2026-11-22T00:00:00Z")


def _rivers(levels, last_days_ago, quality=None, before=None):
    n = len(levels)
    return gpd.GeoDataFrame(
        {
            "segment_code": [f"S{i}" for i in range(n)],
            "name": [f"seg {i}" for i in range(n)],
            "river_name": ["r"] * n,
            "chief_level": levels,
            "chief_name": ["张三"] * n,
            "chief_phone": ["13800000000"] * n,
            "length_m": [1000.0] * n,
            "water_quality": quality or ["III"] * n,
            "previous_quality": before or ["III"] * n,
            "community_code": ["c"] * n,
            "last_patrol_at": [T - pd.Timedelta(days=d) for d in last_days_ago],
        },
        geometry=[
            shapely.LineString([(109.4, 18.3 + i / 100), (109.41, 18.3 + i / 100)])
            for i in range(n)
        ],
        crs=4326,
    )


def test_intervals_by_level_documented():
    assert PATROL_INTERVAL_DAYS == {
        "village": 7,
        "township": 30,
        "county": 90,
        "city": 30,
        "province": 90,
    }


def test_overdue_by_level():
    r = _rivers(["village", "village", "township", "county", "city"], [6.9, 7.5, 29, 91, 31])
    c = patrol_compliance(r, as_of=T)
    assert c["overdue"].tolist() == [False, True, False, True, True]
    assert c["days_overdue"].round(1).tolist() == [0.0, 0.5, 0.0, 1.0, 1.0]
    assert not {"chief_name", "chief_phone"} & set(c.columns)
    by = compliance_by_level(c).set_index("chief_level")
    assert by.loc["village", "segments"] == 2 and by.loc["village", "overdue"] == 1
    assert by.loc["village", "share_overdue"] == 0.5


def test_compliance_rate_from_records():
    r = _rivers(["village"], [1])
    rec = pd.DataFrame(
        {
            "segment_code": ["S0"] * 4,
            "patrolled_at": [T - pd.Timedelta(days=d) for d in (1, 8, 9, 20)],
        }
    )
    c = patrol_compliance(r, as_of=T, records=rec, window_days=28).iloc[0]
    # periods of 7 days back from T: [0,7) [7,14) [14,21) [21,28): patrols in the first three
    assert (c["periods"], c["periods_patrolled"], c["patrols"]) == (4, 3, 4)
    assert c["compliance_rate"] == 0.75
    # a record newer than last_patrol_at counts as the last patrol
    rec2 = pd.DataFrame({"segment_code": ["S0"], "patrolled_at": [T - pd.Timedelta(hours=2)]})
    r_old = _rivers(["village"], [10])
    assert not patrol_compliance(r_old, as_of=T, records=rec2)["overdue"].iloc[0]


def test_sample_patrols_consistent(sample_data):
    rivers = sample_data["rivers"]
    rec = synthetic_patrols(rivers)
    latest = rec.groupby("segment_code")["patrolled_at"].max()
    assert (
        latest.reindex(rivers["segment_code"]).to_numpy()
        == pd.to_datetime(rivers["last_patrol_at"], utc=True).to_numpy()
    ).all()
    c = patrol_compliance(rivers, as_of=AS_OF, records=rec)
    assert c["compliance_rate"].between(0, 1).all()
    by = compliance_by_level(c)
    assert set(by["chief_level"]) == set(rivers["chief_level"])
    assert by["segments"].sum() == len(rivers)


def test_quality_changes():
    r = _rivers(
        ["village"] * 4,
        [1] * 4,
        quality=["IV", "II", "black_odorous", "III"],
        before=["III", "III", "IV", "III"],
    )
    q = quality_changes(r)
    assert q["segment_code"].tolist() == ["S2", "S0", "S3", "S1"]
    assert q["steps"].tolist() == [3, 1, 0, -1]
    assert quality_changes(r, only_worse=True)["segment_code"].tolist() == ["S2", "S0"]


def test_sample_quality_matches_ranks(sample_data):
    rivers = sample_data["rivers"]
    q = quality_changes(rivers).set_index("segment_code")
    for code, now, before in zip(
        rivers["segment_code"], rivers["water_quality"], rivers["previous_quality"], strict=True
    ):
        assert q.loc[code, "worse"] == (QUALITY_ORDER.index(now) > QUALITY_ORDER.index(before))


def test_errors_list_choices():
    with pytest.raises(AnalyticsError, match="must be one of: village"):
        patrol_compliance(_rivers(["ward"], [1]), as_of=T)
    with pytest.raises(AnalyticsError, match="must be one of: I, II"):
        quality_changes(_rivers(["village"], [1], quality=["VI"]))
