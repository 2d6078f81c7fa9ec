"""Early warnings (issue 16 item 3): the rules, their explanations, and a warning that fires
before a planted growing cluster peaks while the unplanted history stays quiet."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from analytics.early_warning import KINDS, early_warnings
from analytics.errors import AnalyticsError
from analytics.forecast import count_series, forecast
from geodata.sample import generate

pytestmark = pytest.mark.filterwarnings("ignore:input CRS:UserWarning")


@pytest.fixture(scope="module")
def incidents():
    return generate()["incidents"]


@pytest.fixture(scope="module")
def community(incidents):
    return count_series(incidents, level="community")


def test_threshold_warning_explains_itself(community):
    fc = forecast(community, model="ets", horizon=2)
    ew = early_warnings(community, fc, horizon=2, threshold=5.0)
    f = ew.frame
    # an absolute threshold: exactly the series whose upper bound exceeds it
    expect = fc.frame[fc.frame["hi"] > 5.0]
    pairs = sorted(f[["key", "horizon"]].itertuples(index=False, name=None))
    assert pairs == sorted(expect[["key", "horizon"]].itertuples(index=False, name=None))
    assert set(f["kind"]) <= set(KINDS) and (f["alarm"] == 5.0).all()
    row = f.iloc[0]
    usual = community.counts[community.keys.get_loc(row["key"]), -13:].mean()
    assert row["usual"] == pytest.approx(usual)
    assert row["drivers"] == {"recent_counts": pytest.approx(row["expected"] - usual, abs=1e-3)}
    assert f"{row['expected']:.1f}" in row["reason"] and f"{usual:.1f}" in row["reason_zh"]
    assert ew.params["threshold"] == 5.0 and ew.checked == len(community.keys)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 3}, "horizon must be an integer from 1 to 2"),
        ({"exceedance": 0.7}, "exceedance must be between 0 and 0.5"),
        ({"usual_window": 0}, "usual_window must be a positive integer"),
        ({"recent": 1}, "recent must be an integer of at least 2"),
    ],
)
def test_parameters_are_checked(community, kwargs, message):
    fc = forecast(community, model="moving_average", horizon=2)
    with pytest.raises(AnalyticsError, match=message):
        early_warnings(community, fc, **kwargs)


def test_a_forecast_of_another_panel_is_refused(incidents, community):
    days = count_series(incidents, level="community", freq="D")
    with pytest.raises(AnalyticsError, match="the forecast is of 'W' periods"):
        early_warnings(days, forecast(community, model="moving_average"))


# --- planted future pattern ---------------------------------------------------------------
#: extra cases a week of the planted cluster, weeks PEAK - 5 .. PEAK + 2 (grows, peaks, fades)
PLANT = (1, 2, 3, 5, 7, 10, 6, 3)
PEAK = 40  # the sample's weeks run 0 .. 51 (2025-11-24 .. 2026-11-16)


def _plant(incidents, weeks, *, community=None, point=None, seed=0):
    """A copy of ``incidents`` with the planted cluster's cases added: copies of random rows
    moved into the planted weeks (uniform in each local week) and, with ``community``, into
    that community; with ``point`` (lon, lat), within ~60 m of it."""
    rng = np.random.default_rng(seed)
    pool = incidents if community is None else incidents[incidents["community_code"] == community]
    added = []
    for i, n in enumerate(PLANT):
        start = weeks[PEAK - 5 + i].tz_localize("Asia/Shanghai")
        rows = pool.sample(n, replace=True, random_state=seed + i).copy()
        rows["reported_at"] = (start + pd.to_timedelta(rng.uniform(0, 7, n), unit="D")).tz_convert(
            "UTC"
        )
        if point is not None:
            d = rng.uniform(-0.0006, 0.0006, (n, 2))
            rows["geometry"] = gpd.points_from_xy(point[0] + d[:, 0], point[1] + d[:, 1])
        added.append(rows)
    out = pd.concat([incidents, *added], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=incidents.crs)


def _first_warning(panel, near, origins, **kw):
    """Origins (in order) at which a warning names a series for which ``near(key)`` holds,
    and the number of the other warnings."""
    hits, others = [], 0
    for o in origins:
        ew = early_warnings(panel, forecast(panel, model="ets", horizon=1, origin=o), **kw)
        mine = ew.frame["key"].map(near).astype(bool)
        if mine.any():
            hits.append(o)
        others += int((~mine).sum())
    return hits, others


@pytest.mark.parametrize("quantile", [0.1, 0.5, 0.9])
def test_warning_fires_before_a_planted_community_cluster_peaks(incidents, community, quantile):
    # a quiet, a middling and a busy community (about 1.4, 2 and 3.2 cases a week)
    order = np.argsort(community.counts.mean(axis=1))
    target = community.keys[order[int(quantile * (len(order) - 1))]]
    planted = count_series(_plant(incidents, community.periods, community=target))
    j = planted.keys.get_loc(target)
    assert planted.counts[j, PEAK] == community.counts[j, PEAK] + max(PLANT)
    origins = range(PEAK - 6, PEAK)  # origins before the peak week
    hits, _ = _first_warning(planted, lambda k: k == target, origins, explain=False)
    assert hits and hits[0] < PEAK, "no warning before the planted cluster peaked"
    clean_hits, _ = _first_warning(community, lambda k: k == target, origins, explain=False)
    assert clean_hits == []  # the warning is the plant's, not the community's own


def test_few_false_alarms_on_the_unplanted_history(community):
    """31 origins (weeks 20-50) x 44 communities: at most 1 % warn (measured: 1 of 1,364)."""
    _, false_alarms = _first_warning(community, lambda k: False, range(20, 51), explain=False)
    assert false_alarms <= 0.01 * 31 * len(community.keys)


def test_hot_spot_warning_fires_before_a_planted_cell_cluster_peaks(incidents):
    cells = count_series(incidents, level="cell")
    # the centre of a quiet cell (70th percentile of activity, about 0.06 cases a week)
    i0 = np.argsort(cells.counts.mean(axis=1))[int(len(cells.keys) * 0.7)]
    centre = gpd.GeoSeries([cells.cells.geometry.iloc[i0].centroid], crs=cells.cells.crs)
    lonlat = centre.to_crs(4326).iloc[0]
    planted = count_series(
        _plant(incidents, cells.periods, point=(lonlat.x, lonlat.y)), level="cell"
    )

    def near(panel):
        dist = panel.cells.geometry.distance(centre.iloc[0])
        close = set(panel.keys[(dist < 300).to_numpy()])
        return lambda k: k in close

    origins = range(PEAK - 6, PEAK)
    hits, _ = _first_warning(planted, near(planted), origins, explain=False)
    assert hits and hits[0] <= PEAK - 2, f"warned only at {hits}"
    clean_hits, false_alarms = _first_warning(cells, near(cells), origins, explain=False)
    assert clean_hits == []
    assert false_alarms <= 0.002 * len(origins) * len(cells.keys)


def test_gbm_drivers_are_of_the_model_that_made_the_forecast(community):
    from analytics.early_warning import GROUPS, _gbm_model
    from analytics.forecast import _features

    fc = forecast(community, model="gbm", horizon=2)
    t = len(community.periods) - 1
    model, cal = _gbm_model(community, t, 2, fc.level)
    mean = model.predict(_features(community.counts, np.array([t]), 1, cal, "W"))
    h1 = fc.frame[fc.frame["horizon"] == 1]
    np.testing.assert_allclose(mean, h1["mean"].to_numpy(), rtol=1e-9)
    ew = early_warnings(community, fc, threshold=float(h1["hi"].median()))
    assert len(ew) and all(set(d) == set(GROUPS) for d in ew.frame["drivers"])
    assert all(
        "drivers: " in r and "主要因素" in z
        for r, z in zip(ew.frame["reason"], ew.frame["reason_zh"], strict=True)
    )


def test_weekly_outlook_reads_up_to_its_origin_and_needs_history(incidents, community):
    from analytics.early_warning import weekly_outlook

    origin = community.periods[40]
    o = weekly_outlook(incidents, origin)
    cut = (origin + pd.Timedelta(days=7)).tz_localize("Asia/Shanghai").tz_convert("UTC")
    assert weekly_outlook(incidents[incidents["reported_at"] < cut], origin) == o
    assert o["week_start"] == str((origin + pd.Timedelta(days=7)).date())
    assert [c["expected"] for c in o["categories"]] == sorted(
        (c["expected"] for c in o["categories"]), reverse=True
    )
    with pytest.raises(AnalyticsError, match="at least 8 weeks"):
        weekly_outlook(incidents, community.periods[3])
