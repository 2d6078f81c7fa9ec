"""Forecasts of case counts per grid cell, community or major category, 1-4 periods ahead,
with prediction intervals (预判).

Functions
---------
count_series
    Weekly or daily counts of cases per cell / community / category (:class:`SeriesPanel`).
panel_from_cube
    The same from a :class:`~analytics.emerging.SpaceTimeCube` built elsewhere.
forecast
    Forecasts of every series from one origin with one model (:class:`Forecast`).
gbm_features
    The feature table of the global model at one origin (what the model sees).

Models (:data:`MODELS`)
-----------------------
``seasonal_naive``
    The value one season earlier (season length :attr:`SeriesPanel.season_length`: 7 for
    days, 1 for weeks -- a year of weeks has no earlier year to copy -- so for weeks it is
    last week's count).  Interval: normal, with the spread of the series' in-sample seasonal
    differences, growing with the number of seasons ahead.
``moving_average``
    Mean of the last :data:`MA_WINDOW` periods (4 weeks, 28 days).  Interval: normal, with
    the spread of the series' in-sample one-step errors.
``ets``
    Exponential smoothing per series: ETS(A,N,N) for weeks, ETS(A,N,A) with a weekly season
    for days (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, ch. 8), the
    smoothing parameters chosen per series by least squares over a grid, intervals from the
    model's analytical forecast variance.
``gbm``
    One global gradient-boosted model across all series
    (:class:`sklearn.ensemble.HistGradientBoostingRegressor`, Poisson loss), direct
    multi-horizon (the horizon is a feature).  Features of series ``s`` at origin ``t`` for
    target period ``t + h``: recent counts (lags), rolling means over short and long windows
    and the series' mean to date -- all from counts up to ``t`` only -- and the calendar of
    the target and origin periods (:mod:`analytics.calendar_features`: working days,
    statutory holidays and make-up working days from ``chinese-calendar``, typhoon-season
    share, the weekday for days).  Point forecast: the median of a Poisson with the model's
    mean (the forecast that minimises absolute error, which MASE measures); the mean is
    reported too.  Intervals: **split conformal** (normalised): the model is fitted on
    targets up to ``t - calibration``, the scores ``|y - mu| / sqrt(max(mu, 0.25))`` of the
    held-back last ``calibration`` periods (targets still at or before the origin) give, per
    horizon, the finite-sample ``level`` quantile ``q``, and the interval is
    ``mu -/+ q * sqrt(max(mu, 0.25))`` clipped at 0.

``pooled``
    Top-down from the panel total (historical proportions, *FPP3* 11.2; Gross & Sohl 1990):
    each series' share of all cases over the last ``share_weeks`` weeks times the panel
    total expected next, the mean of the total's last ``total_weeks`` values at the target's
    place in the season (the same weekday for days).  The sample's rhythms are city-wide
    (weekends, the typhoon season, typhoons), so a series' own noisy history adds little
    beyond its share, which pooling estimates from months of cases.  Point forecast: the
    Poisson median of the mean (as the gbm); intervals: split conformal, as the gbm, on the
    model's own forecasts from the last ``calibration`` origins whose targets are observed.
    Parameters :data:`POOLED_PARAMS`, chosen on validation origins before the reported ones
    (:func:`analytics.backtest.select_model`).  The model chosen on the backtest, and so the
    default of :func:`forecast`, ``tianya forecast`` and the ``forecast`` process.

No look-ahead: :func:`forecast` hands each model only ``counts[:, :t + 1]`` (the periods up
to the origin); the calendar of later periods is public in advance.

Known limits (measured in ``bench/results/forecast_backtest.md``): on sparse series (200 m
cells of the sample year, 0.07 cases a cell-week; daily communities) the median point
forecasts (gbm, pooled) are mostly 0 and score the same MASE as forecasting 0 everywhere, so
MASE says little there (the backtest reports the zero forecast beside it) -- use ``mean`` for
expected load; with few series (9 major classes) the global model is worse than ETS; on days
it can learn coincidences of the calendar (two of the sample's three typhoons began on a
Saturday, and it then forecasts busy Saturdays).  The pooled model follows the city's total,
not a series' own recent rise (its share is a year's): it is the model for next week's
expected load, not for warnings, which :mod:`analytics.early_warning` computes from ETS.

Libraries (why): the gradient-boosted model is scikit-learn's histogram GBM, already a
dependency (LightGBM's algorithm; lightgbm would add a compiled dependency for no accuracy
we need at these sizes, and mlforecast would add it plus its own feature machinery whose
look-ahead we would have to audit).  ETS is fitted here, vectorised over all series with
numpy, because the per-series libraries are too slow or too heavy for thousands of cells:
statsmodels fits one series at a time (tens of milliseconds each: 2,500 cells x 12 backtest
origins is most of an hour) and statsforecast brings numba and llvmlite (a large install and
JIT compilation on every fresh CI machine); the recursions are the textbook ones and are
tested against a direct loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import stats

from analytics.aggregate import fishnet_cells, fishnet_grid
from analytics.calendar_features import FREQS, period_features
from analytics.errors import AnalyticsError, check_choice, check_positive
from analytics.weights import point_coordinates, to_projected

__all__ = [
    "LEVELS",
    "MA_WINDOW",
    "MAX_HORIZON",
    "MODELS",
    "POOLED_GRID",
    "POOLED_PARAMS",
    "Forecast",
    "SeriesPanel",
    "count_series",
    "forecast",
    "gbm_features",
    "panel_from_cube",
]

#: what a series counts: fishnet cells, communities, major categories
LEVELS = ("cell", "grid", "community", "category")
MODELS = ("seasonal_naive", "moving_average", "ets", "gbm", "pooled")
#: the longest horizon (periods ahead)
MAX_HORIZON = 8
#: window of the moving average, per frequency
MA_WINDOW = {"W": 4, "D": 28}
_KEY_FIELD = {"grid": "grid_code", "community": "community_code", "category": "major_class"}
#: gbm: lags (periods back from the origin) and rolling windows, per frequency
_LAGS = {"W": (0, 1, 2, 3), "D": (0, 1, 2, 3, 4, 5, 6, 13)}
_WINDOWS = {"W": (4, 13), "D": (7, 28)}
#: gbm: origins used for training (periods before the origin) and held back for conformal
_TRAIN = {"W": 52, "D": 182}
_CALIBRATION = {"W": 8, "D": 28}
_MIN_HISTORY = {"W": 4, "D": 14}
#: scikit-learn's defaults (learning rate 0.1, 100 trees of 31 leaves, 20 samples a leaf), not
#: tuned; Poisson loss for counts; no early stopping (its random validation split would hold
#: back recent periods and make the fit depend on the split)
_GBM_PARAMS = dict(loss="poisson", early_stopping=False, random_state=0)
#: pooled: the parameters :func:`forecast` uses, in weeks (the series' share of the panel over
#: the last ``share_weeks``; the panel total as the mean of its last ``total_weeks`` values at
#: the target's place in the season).  Chosen by :func:`analytics.backtest.select_model` from
#: :data:`POOLED_GRID` on validation origins that end before the 12 reported ones (on the
#: sample's community weeks; ``tests/test_forecast.py`` checks the choice is still this one)
POOLED_PARAMS = {"share_weeks": 52, "total_weeks": 13}
#: pooled: the candidate parameters :func:`analytics.backtest.select_model` chooses from
POOLED_GRID = tuple({"share_weeks": s, "total_weeks": w} for s in (13, 26, 52) for w in (4, 13, 26))


@dataclass
class SeriesPanel:
    """Counts of cases per series (cell, community or category) and period.

    Attributes
    ----------
    counts : ndarray, shape (n_series, n_periods)
        Float counts, oldest period first.
    keys : Index
        Series identifiers (``cell_id``, community code or major class).
    periods : DatetimeIndex
        First local day of each period (naive local dates).
    freq : {"W", "D"}
    level : str
        What a series counts (:data:`LEVELS`, or ``"cube"``).
    season_length : int
        Periods per season of the seasonal naive baseline and the MASE scale (7 for days,
        1 for weeks).
    cells : GeoDataFrame or None
        For ``level="cell"``: the cells (``cell_id``, projected CRS), in the order of ``keys``.
    """

    counts: np.ndarray
    keys: pd.Index
    periods: pd.DatetimeIndex
    freq: str
    level: str
    season_length: int
    cells: gpd.GeoDataFrame | None = field(default=None, repr=False)

    def frame(self) -> pd.DataFrame:
        """The counts as a long table: ``key``, ``period``, ``count``."""
        n, t = self.counts.shape
        return pd.DataFrame(
            {
                "key": np.repeat(self.keys.to_numpy(), t),
                "period": np.tile(self.periods.to_numpy(), n),
                "count": self.counts.ravel(),
            }
        )


def _season(freq: str) -> int:
    return 7 if freq == "D" else 1


def count_series(
    cases,
    time_field: str = "reported_at",
    *,
    level: str = "community",
    freq: str = "W",
    key_field: str | None = None,
    cell_size: float = 200.0,
    tz: str = "Asia/Shanghai",
) -> SeriesPanel:
    """Count cases per series and calendar period.

    Parameters
    ----------
    cases : DataFrame or GeoDataFrame
        One row per case; points for ``level="cell"``.
    time_field : str, default "reported_at"
        Datetime column (timezone-aware, or naive UTC).
    level : {"cell", "grid", "community", "category"}
        Series per fishnet cell, per grid cell of the grid-management layer ``grid_cells``
        (网格, ``grid_code``), per community (``community_code``) or per major category
        (``major_class``).
    freq : {"W", "D"}
        Local Monday-to-Sunday weeks or local days.
    key_field : str, optional
        Column naming the series for ``community``/``category`` (default as above).
    cell_size : float, default 200
        Fishnet cell side in metres (``level="cell"``); only cells with a case are kept.
    tz : str, default "Asia/Shanghai"
        Time zone of the calendar (weeks, days, holidays).

    Returns
    -------
    SeriesPanel
        Every period from the first case's to the last case's (empty periods count 0).
    """
    check_choice(level, "level", LEVELS)
    check_choice(freq, "freq", FREQS)
    if time_field not in cases.columns:
        raise AnalyticsError(
            f"{time_field!r} is not a column, must be one of: {', '.join(map(str, cases.columns))}"
        )
    if len(cases) == 0:
        raise AnalyticsError("there are no cases to count (the selection is empty)")
    times = pd.to_datetime(cases[time_field])
    if times.isna().any():
        raise AnalyticsError(f"column {time_field!r} has {int(times.isna().sum())} missing values")
    if times.dt.tz is None:
        times = times.dt.tz_localize("UTC")
    day = times.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    if freq == "W":
        day = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    step = np.timedelta64(7 if freq == "W" else 1, "D")
    first, last = day.min(), day.max()
    n_periods = int((last - first) / step) + 1
    periods = pd.DatetimeIndex(first + np.arange(n_periods) * step)
    tidx = ((day - first) / step).to_numpy().astype(np.int64)
    cells = None
    if level == "cell":
        check_positive(cell_size, "cell_size")
        pts = to_projected(cases, stacklevel=3)
        xy = point_coordinates(pts)
        bounds = np.r_[xy.min(axis=0), xy.max(axis=0)]
        grid = fishnet_grid(bounds, cell_size, pts.crs)
        ncol = int(grid["col"].max()) + 1
        row, col = fishnet_cells(xy, bounds, cell_size)
        codes, keys_arr = np.unique(row * ncol + col, return_inverse=True)
        keys = pd.Index(codes, name="cell_id")
        cells = grid.iloc[codes].reset_index(drop=True)
        sidx = keys_arr
    else:
        kf = key_field or _KEY_FIELD[level]
        if kf not in cases.columns:
            raise AnalyticsError(f"{kf!r} is not a column (the series key of level {level!r})")
        k = cases[kf]
        if k.isna().any():
            raise AnalyticsError(f"column {kf!r} has {int(k.isna().sum())} missing values")
        uniq, sidx = np.unique(k.astype(str).to_numpy(), return_inverse=True)
        keys = pd.Index(uniq, name=kf)
    counts = np.zeros((len(keys), n_periods))
    np.add.at(counts, (sidx, tidx), 1.0)
    return SeriesPanel(counts, keys, periods, freq, level, _season(freq), cells)


def panel_from_cube(cube) -> SeriesPanel:
    """A :class:`SeriesPanel` of a space-time cube's bins (7-day or 1-day steps).

    The cube's steps end at its latest timestamp (:func:`analytics.emerging.space_time_cube`),
    so a "week" is the seven days before a step edge, not a calendar week; the calendar
    features take the first day of each step.
    """
    step = pd.Timedelta(cube.edges[1] - cube.edges[0])
    if step == pd.Timedelta(days=7):
        freq = "W"
    elif step == pd.Timedelta(days=1):
        freq = "D"
    else:
        raise AnalyticsError(f"a cube to forecast must have 7-day or 1-day steps, not {step}")
    starts = pd.DatetimeIndex(cube.edges[:-1])
    if starts.tz is not None:
        starts = starts.tz_convert("Asia/Shanghai").tz_localize(None)
    return SeriesPanel(
        np.asarray(cube.counts, dtype=float),
        pd.Index(cube.bins["cell_id"].to_numpy(), name="cell_id"),
        (starts + pd.Timedelta(days=1)).normalize(),  # the step's first whole local day
        freq,
        "cube",
        _season(freq),
        cube.bins,
    )


# --- models ------------------------------------------------------------------------------
# Each takes the observed counts ``y`` (n_series, t + 1) -- nothing after the origin -- and
# returns ``(point, mean, lo, hi)``, each (n_series, horizon).


def _normal(mean, sd, level):
    z = stats.norm.ppf(0.5 + level / 2.0)
    return np.maximum(mean - z * sd, 0.0), mean + z * sd


def _seasonal_naive(y, panel, horizon, level):
    m = panel.season_length
    n, t = y.shape
    h = np.arange(1, horizon + 1)
    k = (h - 1) // m + 1  # seasons ahead
    src = t - 1 + h - k * m
    if t <= m:
        raise AnalyticsError(
            f"the seasonal naive forecast needs at least {m + 1} periods up to the origin, "
            f"there are {t}"
        )
    point = y[:, src]
    diff = y[:, m:] - y[:, :-m]
    sd = np.sqrt((diff**2).mean(axis=1))[:, None] * np.sqrt(k)[None, :]
    lo, hi = _normal(point, sd, level)
    return point, point, lo, hi


def _moving_average(y, panel, horizon, level):
    w = min(MA_WINDOW[panel.freq], y.shape[1])
    mean = np.repeat(y[:, -w:].mean(axis=1, keepdims=True), horizon, axis=1)
    cs = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y, axis=1)], axis=1)
    if y.shape[1] > w:
        fitted = (cs[:, w:-1] - cs[:, : -w - 1]) / w  # mean of the w periods before each
        sd = np.sqrt(((y[:, w:] - fitted) ** 2).mean(axis=1))
    else:
        sd = y.std(axis=1)
    lo, hi = _normal(mean, sd[:, None] * np.ones(horizon), level)
    return mean, mean, lo, hi


_ALPHAS = np.linspace(0.02, 0.98, 25)
_GAMMAS = np.array([0.01, 0.05, 0.1, 0.2, 0.3])


def _ets_fit(y: np.ndarray, m: int) -> tuple[np.ndarray, ...]:
    """Least-squares ETS(A,N,N) (``m == 1``) or ETS(A,N,A) with season ``m``, every series.

    Returns ``(alpha, gamma, level, season, sigma2)``: per series, the final level, the last
    ``m`` seasonal states (oldest first) and the one-step error variance.
    """
    n, t = y.shape
    if m > 1:
        grid = np.array([(a, g) for a in _ALPHAS for g in _GAMMAS if g <= 1 - a])
    else:
        grid = np.array([(a, 0.0) for a in _ALPHAS])
    a, g = grid[:, 0][None, :], grid[:, 1][None, :]
    # initial states: level = mean of the first season(s), season = deviations from it
    k0 = min(t, max(m, 4) if m == 1 else 2 * m)
    lev = np.repeat(y[:, :k0].mean(axis=1, keepdims=True), len(grid), axis=1)
    season = np.zeros((n, len(grid), m))
    if m > 1:
        first = y[:, : (k0 // m) * m].reshape(n, -1, m).mean(axis=1) - lev[:, :1]
        season[:] = first[:, None, :]
    sse = np.zeros((n, len(grid)))
    for i in range(t):
        s = season[:, :, i % m]
        e = y[:, i : i + 1] - lev - s
        sse += e * e
        season[:, :, i % m] = s + g * e
        lev = lev + a * e
    best = sse.argmin(axis=1)
    rows = np.arange(n)
    # seasonal states in time order: the next period t uses slot t % m
    order = (t + np.arange(m)) % m
    seas = season[rows, best][:, order]
    return (
        grid[best, 0],
        grid[best, 1],
        lev[rows, best],
        seas,
        sse[rows, best] / t,
    )


def _ets(y, panel, horizon, level):
    m = panel.season_length
    alpha, gamma, lev, seas, s2 = _ets_fit(y, m)
    h = np.arange(1, horizon + 1)
    mean = lev[:, None] + seas[:, (h - 1) % m]
    var = s2[:, None] * (
        1.0
        + (h - 1)[None, :] * alpha[:, None] ** 2
        + (gamma * (2 * alpha + gamma))[:, None] * ((h - 1) // m)[None, :]
    )
    lo, hi = _normal(mean, np.sqrt(var), level)
    return mean, mean, lo, hi


def _features(y: np.ndarray, origins: np.ndarray, h: int, cal: np.ndarray, freq: str):
    """Feature rows of every series at each origin in ``origins`` for target ``origin + h``.

    ``y`` holds the counts up to the latest origin at most; row order: series-major within
    each origin (origin 0's series, then origin 1's ...).  ``cal`` is the calendar table of
    all periods (known in advance).
    """
    n = y.shape[0]
    cs = np.concatenate([np.zeros((n, 1)), np.cumsum(y, axis=1)], axis=1)
    cols = []
    for lag in _LAGS[freq]:
        src = origins - lag
        v = np.where(src >= 0, y[:, np.maximum(src, 0)], np.nan)
        cols.append(v)
    for w in _WINDOWS[freq]:
        lo = np.maximum(origins + 1 - w, 0)
        cols.append((cs[:, origins + 1] - cs[:, lo]) / (origins + 1 - lo))
    cols.append(cs[:, origins + 1] / (origins + 1))  # mean to date
    if freq == "D":  # the target's weekday over the last four weeks
        acc = np.zeros((n, len(origins)))
        cnt = np.zeros(len(origins))
        for k in range(1, 5):
            src = origins + h - 7 * k
            ok = (src >= 0) & (src <= origins)
            acc += np.where(ok, y[:, np.clip(src, 0, None)], 0.0)
            cnt += ok
        cols.append(acc / np.maximum(cnt, 1))
    x = np.stack([c.T.ravel() for c in cols], axis=1)  # (origins * n, features)
    hcol = np.full((x.shape[0], 1), float(h))
    target_cal = np.repeat(cal[origins + h], n, axis=0)
    origin_cal = np.repeat(cal[origins], n, axis=0)
    return np.hstack([x, hcol, target_cal, origin_cal])


def _feature_names(freq: str, cal_cols) -> list[str]:
    names = [f"lag_{lag}" for lag in _LAGS[freq]]
    names += [f"mean_{w}" for w in _WINDOWS[freq]] + ["mean_to_date"]
    if freq == "D":
        names.append("same_weekday_mean_4")
    names.append("horizon")
    names += [f"target_{c}" for c in cal_cols] + [f"origin_{c}" for c in cal_cols]
    return names


def _calendar(panel: SeriesPanel, horizon: int) -> pd.DataFrame:
    step = pd.Timedelta(days=7 if panel.freq == "W" else 1)
    starts = pd.DatetimeIndex(
        list(panel.periods) + [panel.periods[-1] + step * (i + 1) for i in range(horizon)]
    )
    return period_features(starts, panel.freq)


def gbm_features(panel: SeriesPanel, origin: int = -1, horizon: int = 4) -> pd.DataFrame:
    """The global model's features of every series at ``origin`` for horizons 1..``horizon``.

    Only ``panel.counts[:, :origin + 1]`` is read (and the calendar).

    Returns
    -------
    DataFrame
        One row per series and horizon: ``key``, ``horizon`` and the named features.
    """
    t = _origin_index(panel, origin)
    cal = _calendar(panel, horizon)
    y = panel.counts[:, : t + 1]
    names = _feature_names(panel.freq, cal.columns)
    out = []
    for h in range(1, horizon + 1):
        x = _features(y, np.array([t]), h, cal.to_numpy(float), panel.freq)
        df = pd.DataFrame(x, columns=names)
        df.insert(0, "key", panel.keys.to_numpy())
        out.append(df)
    return pd.concat(out, ignore_index=True)


def _gbm(y, panel, horizon, level, cal, n_threads=1):
    from sklearn.ensemble import HistGradientBoostingRegressor  # loads OpenMP first
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=int(n_threads), user_api="openmp"):
        return _gbm_fit_predict(HistGradientBoostingRegressor, y, panel, horizon, level, cal)


def _gbm_fit_predict(regressor, y, panel, horizon, level, cal):
    f = panel.freq
    n, t1 = y.shape
    t = t1 - 1
    c = _CALIBRATION[f]
    first = max(_MIN_HISTORY[f] - 1, t - _TRAIN[f])
    xs, ys, target_at = [], [], []
    for h in range(1, horizon + 1):
        origins = np.arange(first, t - h + 1)
        if origins.size == 0:
            continue
        xs.append(_features(y, origins, h, cal, f))
        ys.append(y[:, origins + h].T.ravel())
        target_at.append(np.repeat(origins + h, n))
    too_short = AnalyticsError(
        f"too short a history for the gbm model: {t1} periods up to the origin, it needs at "
        f"least {_MIN_HISTORY[f] + c + 1} (more with few series); use another model"
    )
    if not xs:
        raise too_short
    x, yy, when = np.vstack(xs), np.concatenate(ys), np.concatenate(target_at)
    fit = when <= t - c
    calib = ~fit
    if fit.sum() < 50 or calib.sum() < 20:
        raise too_short
    model = regressor(**_GBM_PARAMS)
    model.fit(x[fit], yy[fit])
    # split-conformal quantile per horizon on the held-back targets
    mu_c = model.predict(x[calib])
    score = np.abs(yy[calib] - mu_c) / np.sqrt(np.maximum(mu_c, 0.25))
    h_c = x[calib][:, len(_feature_names(f, [])) - 1]
    q = np.empty(horizon)
    for h in range(1, horizon + 1):
        s = np.sort(score[h_c == h])
        if s.size == 0:
            s = np.sort(score)
        k = min(int(np.ceil((s.size + 1) * level)), s.size) - 1
        q[h - 1] = s[k]
    xo = np.vstack([_features(y, np.array([t]), h, cal, f) for h in range(1, horizon + 1)])
    mean = model.predict(xo).reshape(horizon, n).T
    point = stats.poisson.median(np.maximum(mean, 1e-9))
    sd = np.sqrt(np.maximum(mean, 0.25))
    return point, mean, np.maximum(mean - q * sd, 0.0), mean + q * sd


def _pooled_mean(y, o: int, horizon: int, m: int, per_week: int, share_weeks, total_weeks):
    """Mean forecasts ``(n_series, horizon)`` of the pooled model from origin ``o``.

    Reads ``y[:, :o + 1]`` only: each series' share of the panel total over the last
    ``share_weeks`` weeks times the mean of the total's last ``total_weeks`` values at the
    target's place in the season (season ``m``).
    """
    lo = max(0, o + 1 - int(share_weeks) * per_week)
    win = y[:, lo : o + 1]
    total = y[:, : o + 1].sum(axis=0)
    share = win.sum(axis=1) / max(float(win.sum()), 1e-12)
    h = np.arange(1, horizon + 1)
    back = m * ((h - 1) // m + 1)  # the latest period at the target's place in the season
    k = np.arange(int(total_weeks) * per_week // m)
    src = (o + h - back)[:, None] - m * k[None, :]  # (horizon, seasons)
    tot = np.where(src >= 0, total[np.maximum(src, 0)], np.nan)
    level = np.nanmean(tot, axis=1)
    return share[:, None] * level[None, :]


def _pooled(y, panel, horizon, level, share_weeks=None, total_weeks=None):
    f = panel.freq
    m, per_week = panel.season_length, 7 if f == "D" else 1
    sw = POOLED_PARAMS["share_weeks"] if share_weeks is None else share_weeks
    tw = POOLED_PARAMS["total_weeks"] if total_weeks is None else total_weeks
    n, t1 = y.shape
    t, c = t1 - 1, _CALIBRATION[f]
    if t1 < m + c + horizon:
        raise AnalyticsError(
            f"too short a history for the pooled model: {t1} periods up to the origin, it "
            f"needs at least {m + c + horizon} for {horizon} periods ahead; use another model"
        )
    # split conformal (as the gbm): the model's own forecasts from the last origins whose
    # targets are observed (origin o, target o + h <= t), scores |y - mu| / sqrt(max(mu, 1/4))
    q = np.empty(horizon)
    for h in range(1, horizon + 1):
        scores = []
        for o in range(t - h - c + 1, t - h + 1):
            mu = _pooled_mean(y, o, h, m, per_week, sw, tw)[:, h - 1]
            scores.append(np.abs(y[:, o + h] - mu) / np.sqrt(np.maximum(mu, 0.25)))
        s = np.sort(np.concatenate(scores))
        q[h - 1] = s[min(int(np.ceil((s.size + 1) * level)), s.size) - 1]
    mean = _pooled_mean(y, t, horizon, m, per_week, sw, tw)
    point = stats.poisson.median(np.maximum(mean, 1e-9))
    sd = np.sqrt(np.maximum(mean, 0.25))
    return point, mean, np.maximum(mean - q * sd, 0.0), mean + q * sd


_MODEL_FUNCS = {
    "seasonal_naive": _seasonal_naive,
    "moving_average": _moving_average,
    "ets": _ets,
    "pooled": _pooled,
}


@dataclass
class Forecast:
    """Forecasts of every series from one origin.

    Attributes
    ----------
    frame : DataFrame
        One row per series and horizon: ``key``, ``origin`` (start of the origin period, the
        last one observed), ``horizon``, ``period`` (start of the forecast period), ``point``,
        ``mean``, ``lo``, ``hi``.
    model : str
    level : float
        Nominal coverage of ``[lo, hi]``.
    freq : str
    """

    frame: pd.DataFrame
    model: str
    level: float
    freq: str


def _origin_index(panel: SeriesPanel, origin) -> int:
    t = panel.counts.shape[1]
    if isinstance(origin, (int, np.integer)):
        i = int(origin) + t if origin < 0 else int(origin)
        if not 0 <= i < t:
            raise AnalyticsError(f"origin {origin} is outside the {t} periods")
        return i
    pos = panel.periods.get_indexer(pd.DatetimeIndex([pd.Timestamp(origin)]))[0]
    if pos < 0:
        raise AnalyticsError(
            f"origin {origin} is not a period start; periods run from "
            f"{panel.periods[0].date()} to {panel.periods[-1].date()} ({panel.freq})"
        )
    return int(pos)


def _check_args(model: str, horizon: int, level: float) -> None:
    check_choice(model, "model", MODELS)
    if not isinstance(horizon, (int, np.integer)) or not 1 <= horizon <= MAX_HORIZON:
        raise AnalyticsError(f"horizon must be an integer from 1 to {MAX_HORIZON}, got {horizon!r}")
    if not 0 < float(level) < 1:
        raise AnalyticsError(f"level must be between 0 and 1 (e.g. 0.8), got {level!r}")


def _check_params(model: str, params) -> dict:
    params = dict(params or {})
    if params and model != "pooled":
        raise AnalyticsError(f"model {model!r} takes no parameters, got {sorted(params)}")
    unknown = sorted(set(params) - set(POOLED_PARAMS))
    if unknown:
        raise AnalyticsError(
            f"unknown parameters of the pooled model: {', '.join(unknown)}; "
            f"it takes: {', '.join(POOLED_PARAMS)}"
        )
    for k, v in params.items():
        check_positive(v, k, integer=True)
    return params


def _predict(
    panel: SeriesPanel,
    t: int,
    model: str,
    horizon: int,
    level: float,
    cal=None,
    n_threads=1,
    params=None,
):
    """``(point, mean, lo, hi)`` from origin index ``t``; the model sees counts up to ``t``."""
    y = panel.counts[:, : t + 1].copy()  # a copy: nothing after the origin is reachable
    if model == "gbm":
        if cal is None:
            cal = _calendar(panel, horizon).to_numpy(float)
        return _gbm(y, panel, horizon, level, cal, n_threads)
    return _MODEL_FUNCS[model](y, panel, horizon, level, **(params or {}))


def forecast(
    panel: SeriesPanel,
    *,
    model: str = "pooled",
    horizon: int = 4,
    level: float = 0.8,
    origin=-1,
    n_threads: int = 1,
    params: dict | None = None,
) -> Forecast:
    """Forecast every series of ``panel`` 1..``horizon`` periods after ``origin``.

    Parameters
    ----------
    panel : SeriesPanel
        From :func:`count_series` or :func:`panel_from_cube`.
    model : {"seasonal_naive", "moving_average", "ets", "gbm", "pooled"}
        See the module docstring.
    horizon : int, default 4
        Periods ahead (1 .. :data:`MAX_HORIZON`).
    level : float, default 0.8
        Nominal coverage of the prediction intervals.
    origin : int or date-like, default -1
        The last period treated as observed: an index into ``panel.periods`` (negative from
        the end) or a period start.  Counts after it are never read.
    n_threads : int, default 1
        OpenMP threads of the gradient-boosted model (one by default: on a machine shared with
        other work, OpenMP threads that wait for a core slow the fit down many times over).
    params : dict, optional
        Parameters of the ``pooled`` model (``share_weeks``, ``total_weeks``; default
        :data:`POOLED_PARAMS`); the other models take none.

    Returns
    -------
    Forecast
    """
    _check_args(model, horizon, level)
    params = _check_params(model, params)
    t = _origin_index(panel, origin)
    check_positive(n_threads, "n_threads", integer=True)
    point, mean, lo, hi = _predict(panel, t, model, horizon, float(level), None, n_threads, params)
    n = len(panel.keys)
    step = pd.Timedelta(days=7 if panel.freq == "W" else 1)
    hs = np.tile(np.arange(1, horizon + 1), n)
    frame = pd.DataFrame(
        {
            "key": np.repeat(panel.keys.to_numpy(), horizon),
            "origin": panel.periods[t],
            "horizon": hs,
            "period": panel.periods[t] + step * hs,
            "point": np.asarray(point, float).ravel(),
            "mean": np.asarray(mean, float).ravel(),
            "lo": np.asarray(lo, float).ravel(),
            "hi": np.asarray(hi, float).ravel(),
        }
    )
    return Forecast(frame, model, float(level), panel.freq)
