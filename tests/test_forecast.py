"""Forecasts and their backtest (issue 16): counts per series, the calendar, the models, no
look-ahead, and the backtest figures on the sample year against the issue's targets.

Targets (issue 16, "What must show"), 1 week ahead on the sample history: the chosen model
beats seasonal naive by >= 20 % MASE at community level and >= 10 % at cell level, and its
80 % intervals cover 75-85 % of the held-out weeks.  12 rolling origins (the sample's weeks
40-51 of 52).  The chosen model (``pooled`` with :data:`analytics.forecast.POOLED_PARAMS`) is
what :func:`analytics.backtest.select_model` picks on the 12 origins before those (weeks
28-39, targets up to week 40), which never see the reported targets.  "Cell" is the grid cell
of the grid-management layer ``grid_cells`` (网格, 171 of them): on 200 m fishnet cells (0.07
cases a cell-week) forecasting 0 everywhere scores the same MASE as any model, so there the
figures are stated against the zero forecast too and no skill is claimed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.backtest import backtest, mase_scale, select_model
from analytics.calendar_features import day_features, period_features
from analytics.emerging import space_time_cube
from analytics.errors import AnalyticsError
from analytics.forecast import (
    MODELS,
    POOLED_PARAMS,
    SeriesPanel,
    _calendar,
    _ets_fit,
    _features,
    count_series,
    forecast,
    gbm_features,
    panel_from_cube,
)
from geodata.sample import generate

pytestmark = pytest.mark.filterwarnings("ignore:input CRS:UserWarning")


@pytest.fixture(scope="module")
def incidents():
    return generate()["incidents"]


@pytest.fixture(scope="module")
def community(incidents):
    return count_series(incidents, level="community")


@pytest.fixture(scope="module")
def community_backtest(community):
    return backtest(community)


@pytest.fixture(scope="module")
def cell_backtest(incidents):
    return backtest(
        count_series(incidents, level="cell", cell_size=200.0),
        models=("seasonal_naive", "gbm", "pooled"),
        horizon=1,
    )


@pytest.fixture(scope="module")
def grid_backtest(incidents):
    return backtest(
        count_series(incidents, level="grid"), models=("seasonal_naive", "pooled"), horizon=1
    )


# --- calendar ----------------------------------------------------------------------------


def test_calendar_holidays_makeup_days_and_typhoon_season():
    f = day_features(["2026-10-01", "2026-10-10", "2026-05-01", "2026-03-02"])
    # National Day (a Thursday), the Saturday worked after it, Labour Day, an ordinary Monday
    assert f["holiday"].tolist() == [1, 0, 1, 0]
    assert f["workday"].tolist() == [0, 1, 0, 1]
    assert f["makeup"].tolist() == [0, 1, 0, 0]
    assert f["typhoon_season"].tolist() == [1, 1, 0, 0]
    w = period_features(["2026-09-28", "2026-03-02"], "W")
    assert w["workdays"].tolist() == [3, 5]  # Sep 28-30 worked, Oct 1-4 off
    assert w["typhoon_season"].tolist() == [1.0, 0.0]


def test_calendar_outside_the_schedule_falls_back_to_weekends_with_a_warning():
    with pytest.warns(UserWarning, match="no holiday schedule"):
        w = period_features(["2099-10-05"], "W")  # a Monday
    assert w["workdays"].tolist() == [5] and w["holidays"].tolist() == [0]


# --- counting ----------------------------------------------------------------------------


def test_weeks_are_local_monday_to_sunday():
    t = pd.to_datetime(
        ["2026-03-01 15:30", "2026-03-01 16:30", "2026-03-02 03:00", "2026-03-15 12:00"], utc=True
    )
    cases = pd.DataFrame({"reported_at": t, "community_code": ["a", "a", "b", "a"]})
    p = count_series(cases, level="community", freq="W")
    # 2026-03-01 15:30 UTC is Sunday 23:30 in Beijing (week of Feb 23), 16:30 UTC is Monday
    # 00:30 (week of Mar 2); 2026-03-15 12:00 UTC is Sunday 20:00 (week of Mar 9)
    assert list(p.periods.strftime("%Y-%m-%d")) == ["2026-02-23", "2026-03-02", "2026-03-09"]
    assert p.keys.tolist() == ["a", "b"]
    assert p.counts.tolist() == [[1, 1, 1], [0, 1, 0]]
    d = count_series(cases, level="community", freq="D")
    assert d.season_length == 7 and d.counts.sum() == 4 and d.counts.shape[1] == 15


def test_counts_per_level_add_up(incidents, community):
    assert community.counts.sum() == len(incidents)
    assert community.periods[0] == pd.Timestamp("2025-11-24")
    assert community.counts.shape == (incidents["community_code"].nunique(), 52)
    cat = count_series(incidents, level="category")
    assert set(cat.keys) == set(incidents["major_class"])
    cells = count_series(incidents, level="cell", cell_size=500.0)
    assert cells.counts.sum() == len(incidents) and (cells.counts.sum(axis=1) > 0).all()
    assert len(cells.cells) == len(cells.keys)


def test_invalid_options_name_the_choices(incidents, community):
    with pytest.raises(AnalyticsError, match="community, category"):
        count_series(incidents, level="district")
    with pytest.raises(AnalyticsError, match="W, D"):
        count_series(incidents, freq="M")
    with pytest.raises(AnalyticsError, match="seasonal_naive, moving_average, ets, gbm"):
        forecast(community, model="prophet")
    with pytest.raises(AnalyticsError, match="horizon must be an integer from 1 to 8"):
        forecast(community, horizon=9)
    with pytest.raises(AnalyticsError, match="not a period start"):
        forecast(community, origin="2026-06-03")
    with pytest.raises(AnalyticsError, match="9 periods up to the origin, it needs at least 13"):
        forecast(community, model="gbm", origin=8)
    with pytest.raises(AnalyticsError, match="at least 2 periods up to the origin, there are 1"):
        forecast(community, model="seasonal_naive", origin=0)
    with pytest.raises(AnalyticsError, match="pooled model: 6 periods .* at least 13 for 4"):
        forecast(community, model="pooled", origin=5)
    with pytest.raises(AnalyticsError, match="cell, grid, community, category"):
        count_series(incidents, level="district")


# --- models ------------------------------------------------------------------------------


def test_ets_recursion_matches_a_direct_loop():
    rng = np.random.default_rng(3)
    y = rng.poisson(5 + 3 * (np.arange(70) % 7 >= 5), size=(3, 70)).astype(float)
    for m in (1, 7):
        alpha, gamma, lev, seas, s2 = _ets_fit(y, m)
        for i in range(3):
            k0 = max(m, 4) if m == 1 else 2 * m
            level = y[i, :k0].mean()
            s = np.zeros(m)
            if m > 1:
                s = y[i, :k0].reshape(-1, m).mean(axis=0) - level
            sse = 0.0
            for t in range(70):
                e = y[i, t] - level - s[t % m]
                sse += e * e
                s[t % m] += gamma[i] * e
                level += alpha[i] * e
            assert level == pytest.approx(lev[i])
            assert sse / 70 == pytest.approx(s2[i])
            assert np.allclose(seas[i], s[(70 + np.arange(m)) % m])


def test_daily_models_follow_the_weekday_rhythm(incidents):
    # the sample has 25 % fewer cases on Saturdays and Sundays.  The global model is checked
    # before the typhoons: two of the sample's three typhoons began on a Saturday, and from the
    # end of the year it forecasts busy Saturdays (a known weakness, see the module notes)
    p = count_series(incidents, level="category", freq="D")
    q = count_series(incidents, level="community", freq="D")
    for panel, model, origin in (
        (p, "ets", -1),
        (q, "ets", -1),
        (q, "gbm", "2026-06-28"),
        (q, "pooled", -1),
    ):
        f = forecast(panel, model=model, horizon=7, origin=origin).frame
        by_day = f.groupby(f["period"].dt.day_of_week)["mean"].sum()
        assert by_day[[5, 6]].mean() < 0.9 * by_day[[0, 1, 2, 3, 4]].mean(), model
    # seasonal naive copies the same weekday of the last week
    f = forecast(p, model="seasonal_naive", horizon=7, origin=-8).frame
    t = p.counts.shape[1] - 8
    assert np.array_equal(f["point"].to_numpy().reshape(-1, 7), p.counts[:, t - 6 : t + 1])


def test_forecast_frame_and_intervals(community):
    for model in MODELS:
        f = forecast(community, model=model, horizon=4, origin="2026-10-05").frame
        assert len(f) == 4 * len(community.keys)
        assert (f["origin"] == pd.Timestamp("2026-10-05")).all()
        assert set(f["period"]) == {
            pd.Timestamp("2026-10-05") + pd.Timedelta(weeks=h) for h in range(1, 5)
        }
        assert (
            (f["lo"] >= 0).all() and (f["lo"] <= f["mean"]).all() and (f["mean"] <= f["hi"]).all()
        )
        wide = forecast(community, model=model, level=0.95, origin="2026-10-05").frame
        assert (wide["hi"] - wide["lo"] >= f["hi"] - f["lo"] - 1e-9).all(), model


def test_forecast_of_a_space_time_cube(incidents):
    cube = space_time_cube(incidents, "reported_at", cell_size=1000.0, time_step="7D")
    p = panel_from_cube(cube)
    assert p.freq == "W" and p.counts.shape == cube.counts.shape
    f = forecast(p, model="gbm").frame
    assert set(f["key"]) == set(cube.bins["cell_id"]) and f["point"].notna().all()


# --- no look-ahead -----------------------------------------------------------------------


def _perturbed(panel: SeriesPanel, t: int, seed: int) -> SeriesPanel:
    """``panel`` with every count after period ``t`` replaced (spikes, zeros, noise)."""
    rng = np.random.default_rng(seed)
    c = panel.counts.copy()
    future = c[:, t + 1 :]
    c[:, t + 1 :] = rng.choice([0.0, 50.0, 500.0], size=future.shape) + rng.poisson(3, future.shape)
    return SeriesPanel(
        c, panel.keys, panel.periods, panel.freq, panel.level, panel.season_length, panel.cells
    )


@pytest.mark.parametrize("freq", ["W", "D"])
def test_no_feature_or_forecast_uses_data_after_the_origin(incidents, freq):
    p = count_series(incidents, level="community", freq=freq)
    t = p.counts.shape[1] - (10 if freq == "W" else 40)
    q = _perturbed(p, t, seed=1)
    assert not np.array_equal(p.counts, q.counts)
    fa, fb = gbm_features(p, origin=t), gbm_features(q, origin=t)
    pd.testing.assert_frame_equal(fa, fb)
    for model in MODELS:
        a = forecast(p, model=model, origin=t).frame
        b = forecast(q, model=model, origin=t).frame
        pd.testing.assert_frame_equal(a, b, obj=f"{model} forecast at the origin")
    # and the forecast does move when the past moves (the check can see a change)
    r = SeriesPanel(p.counts.copy(), p.keys, p.periods, p.freq, p.level, p.season_length)
    r.counts[:, t - 2 : t + 1] += 20
    moved = forecast(r, model="gbm", origin=t).frame
    assert not np.allclose(moved["mean"], forecast(p, model="gbm", origin=t).frame["mean"])


@pytest.mark.parametrize("freq", ["W", "D"])
def test_training_rows_use_nothing_after_their_own_origin(incidents, freq):
    # the gbm trains on feature rows at every earlier origin o with target o + h: a feature
    # reading past o would leak the target.  Here the features see the whole year.
    p = count_series(incidents, level="community", freq=freq)
    cal = _calendar(p, 4).to_numpy(float)
    n_periods = p.counts.shape[1]
    for o in (5, n_periods // 2, n_periods - 6):
        q = _perturbed(p, o, seed=o)
        for h in range(1, 5):
            a = _features(p.counts, np.array([o]), h, cal, freq)
            b = _features(q.counts, np.array([o]), h, cal, freq)
            np.testing.assert_array_equal(a, b, err_msg=f"origin {o}, horizon {h}")


def test_backtest_forecasts_at_an_origin_ignore_later_weeks(community):
    t = community.counts.shape[1] - 3  # origins t-? .. : the first origin is T-1-2
    q = _perturbed(community, t, seed=2)
    a = backtest(community, origins=2, models=("ets", "gbm")).forecasts
    b = backtest(q, origins=2, models=("ets", "gbm")).forecasts
    first = a["origin"] == a["origin"].min()
    cols = ["model", "origin", "horizon", "key", "point", "lo", "hi", "scale"]
    pd.testing.assert_frame_equal(a.loc[first, cols], b.loc[first, cols])


# --- backtest ----------------------------------------------------------------------------


def test_mase_scale_is_the_in_sample_seasonal_naive_error(community):
    t = 20
    y = community.counts[:, : t + 1]
    assert np.allclose(mase_scale(community, t), np.abs(np.diff(y, axis=1)).mean(axis=1))


def _report(bt) -> str:
    v = bt.versus().merge(bt.scores[["model", "horizon", "coverage"]])
    return "\n" + v.to_string()


def test_backtest_bookkeeping(community_backtest):
    s = community_backtest.scores
    assert set(s["model"]) == set(MODELS)
    h1 = s[s["horizon"] == 1]
    assert (h1["origins"] == 12).all() and (h1["n"] + h1["excluded"] == 12 * 44).all()
    assert (s[s["horizon"] == 4]["origins"] == 9).all()
    f = community_backtest.forecasts
    assert f["covered"].equals((f["actual"] >= f["lo"]) & (f["actual"] <= f["hi"]))
    one = f[(f["model"] == "ets") & (f["horizon"] == 2)]
    row = s[(s["model"] == "ets") & (s["horizon"] == 2)]
    assert row["mase"].item() == pytest.approx(
        (one["actual"] - one["point"]).abs().div(one["scale"]).mean()
    )
    assert row["mase_zero"].item() == pytest.approx(one["actual"].div(one["scale"]).mean())
    losses = community_backtest.losses()
    assert {"band", "mase", "baseline_mase", "loses"} <= set(losses.columns)


def _one_week(bt, model: str = "pooled"):
    v = bt.versus().merge(bt.scores[["model", "horizon", "coverage"]])
    return v[(v["model"] == model) & (v["horizon"] == 1)].iloc[0]


def test_target_community_chosen_model_beats_seasonal_naive_by_20_percent(community_backtest):
    # measured +22.8 % (MASE 0.950 vs 1.231); before this model: gbm +19.4 %, ets +20.1 %
    assert _one_week(community_backtest)["improvement"] >= 0.20, _report(community_backtest)


def test_target_cell_level_beats_seasonal_naive_and_the_zero_forecast(grid_backtest):
    # grid cells (网格, 0.63 cases a cell-week): measured +28.2 % against seasonal naive and
    # +12.0 % against forecasting 0 everywhere -- skill the zero forecast does not have
    row = _one_week(grid_backtest)
    assert row["improvement"] >= 0.10, _report(grid_backtest)
    assert row["improvement_vs_zero"] >= 0.10, _report(grid_backtest)


def test_200m_cells_show_no_skill_over_the_zero_forecast(cell_backtest):
    # 200 m fishnet cells (0.07 cases a cell-week): the models "beat" seasonal naive by ~60 %,
    # but only as forecasting 0 does (within 1 %): MASE rewards forecasting nothing there, and
    # the backtest reports the zero forecast beside it so that nobody reads it as skill
    for model in ("gbm", "pooled"):
        row = _one_week(cell_backtest, model)
        assert row["improvement"] >= 0.10, _report(cell_backtest)
        assert abs(row["improvement_vs_zero"]) < 0.02, _report(cell_backtest)


@pytest.mark.parametrize("which", ["community_backtest", "grid_backtest", "cell_backtest"])
def test_target_80_percent_intervals_cover_75_to_85_percent(request, which):
    bt = request.getfixturevalue(which)
    assert 0.75 <= _one_week(bt)["coverage"] <= 0.85, _report(bt)


# --- model selection ---------------------------------------------------------------------


def test_the_chosen_model_is_what_validation_before_the_reported_weeks_selects(community):
    sel = select_model(community, origins=12, holdout=12)
    assert (sel.model, sel.params) == ("pooled", POOLED_PARAMS), sel.scores.to_string()
    # the validation origins (weeks 28-39) and every period the selection read come before
    # the reported backtest's first target (week 41: origins weeks 40-51)
    reported = backtest(community, origins=12, models=("seasonal_naive",), horizon=1)
    first_target = community.periods.get_loc(reported.forecasts["origin"].min()) + 1
    assert sel.last_seen < community.periods[first_target]
    assert len(sel.validation) == 12 and sel.validation[-1] < sel.last_seen
    assert set(sel.scores["model"]) == {"ets", "gbm", "pooled"}


def test_selection_never_sees_the_evaluated_weeks(community):
    # replace every held-out week (the reported targets) with spikes and zeros: the choice and
    # every validation score stay the same, to the bit
    t_all = community.counts.shape[1]
    q = _perturbed(community, t_all - 12 - 1, seed=5)
    a = select_model(community, candidates=(("ets", {}), ("gbm", {}), ("pooled", {})))
    b = select_model(q, candidates=(("ets", {}), ("gbm", {}), ("pooled", {})))
    pd.testing.assert_frame_equal(a.scores, b.scores)
    assert (a.model, a.params) == (b.model, b.params)
    # and the check can see a change: moving the last validation target moves a score
    r = _perturbed(community, t_all - 12 - 2, seed=5)
    c = select_model(r, candidates=(("ets", {}), ("gbm", {}), ("pooled", {})))
    assert not np.allclose(a.scores["mase"], c.scores["mase"])


def test_pooled_model_is_the_share_times_the_recent_total(community):
    t = 40
    f = forecast(community, model="pooled", horizon=2, origin=t).frame
    y = community.counts[:, : t + 1]
    share = y.sum(axis=1) / y.sum()  # 52 weeks of shares: the whole history to week 40
    total = y.sum(axis=0)[-13:].mean()
    assert np.allclose(f["mean"].to_numpy().reshape(-1, 2), (share * total)[:, None])
    g = forecast(
        community, model="pooled", origin=t, params={"share_weeks": 4, "total_weeks": 1}
    ).frame
    share4 = y[:, -4:].sum(axis=1) / y[:, -4:].sum()
    assert np.allclose(g[g["horizon"] == 1]["mean"], share4 * y[:, -1].sum())
    with pytest.raises(AnalyticsError, match="takes: share_weeks, total_weeks"):
        forecast(community, model="pooled", params={"window": 3})
    with pytest.raises(AnalyticsError, match="model 'ets' takes no parameters"):
        forecast(community, model="ets", params={"share_weeks": 3})


def test_grid_level_counts_per_grid_cell(incidents):
    g = count_series(incidents, level="grid")
    assert g.keys.name == "grid_code" and set(g.keys) == set(incidents["grid_code"])
    assert g.counts.sum() == len(incidents)
