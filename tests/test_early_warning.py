"""Early warnings (issue 16 item 3): the rules, their explanations, and a warning that fires
before a planted growing cluster peaks while the unplanted history stays quiet."""

from __future__ import annotations

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
    assert sorted(zip(f["key"], f["horizon"])) == sorted(zip(expect["key"], expect["horizon"]))
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
