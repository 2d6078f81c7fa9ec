"""Early warnings from a forecast (预警): series whose next periods look unusually busy.

Functions
---------
early_warnings
    Warnings of one :class:`~analytics.forecast.Forecast` of a
    :class:`~analytics.forecast.SeriesPanel` (:class:`EarlyWarnings`).
weekly_outlook
    One coming week's expected cases per major category and in all, and the communities
    that warn, as a JSON-ready dict (the weekly report's outlook, the screen's panel).

Rules
-----
``threshold`` (the upper bound crosses a level)
    A series warns at horizon ``h`` when the upper end ``hi`` of its forecast interval exceeds
    its alarm level.  By default the level is **relative to the series' usual level**:
    ``usual`` is the mean count of the ``usual_window`` periods up to the origin (13 weeks: a
    quarter, long enough not to follow last week's noise, short enough to follow a season),
    and the alarm level is the count a Poisson series at that mean exceeds only with
    probability ``exceedance`` (1 %), but at least ``min_count`` cases (3).  So a warning
    says: *the forecast gives a count that the series would reach in one period out of a
    hundred at its usual level at least a ``(1 - level) / 2`` chance* (10 % for 80 %
    intervals).  Why relative: the series of one city differ by two orders of magnitude (a
    200 m cell sees 0.07 cases a week, a major category 12), so one absolute number either
    never fires on cells or always fires on categories; why Poisson: case counts of a series
    are close to Poisson at their mean (the gbm's intervals assume the same spread), so the
    level grows as ``sqrt(usual)`` rather than in proportion to it (a ratio such as 1.5 x
    usual fires on every quiet series and never on a busy one); why ``min_count``: without it
    a cell with no case in 13 weeks would warn for one case.  An absolute ``threshold`` (cases
    a period, the same for every series) replaces the relative level when given.
``new_hot_spot`` / ``intensifying_hot_spot`` (cell and cube panels, ``hotspots=True``)
    Getis-Ord Gi* (:func:`analytics.gistar.gi_star_z`, ``k`` nearest neighbours, binary) of
    the forecast mean surface of horizon ``h`` and of the usual-level surfaces (the mean of
    the ``usual_window`` periods) at each of the ``recent`` origins up to this one -- smooth
    surfaces compared with a smooth one: a week's raw counts in 200 m cells (0.07 cases a
    cell-week in the sample) are rarely significant anywhere, so against them any forecast
    would look "new".  The sequence (recent surfaces, then the forecast) is classified with
    Esri's emerging hot spot rules (:func:`analytics.emerging.classify_pattern`, significance
    ``alpha``, Mann-Kendall trend of the z-scores).  A cell warns when the forecast makes it
    a *New Hot Spot* (hot only in the forecast) or an *Intensifying Hot Spot* (hot in at
    least 90 % of the steps, its z rising significantly), **and** its own forecast mean rises
    significantly above its usual level (``expected - usual > z * sqrt(usual / window)``, the
    standard error of the usual mean, ``usual`` at least one case a window): cells on the
    edge of an old hot spot flicker across the significance line with no change of their own
    (without this test about 13 cells in 1,600 warned every week of the sample; with it 1.4).

Which forecast
--------------
Any model's forecast is accepted; **per-series ETS** is the one to warn from.  On the sample
history with a growing cluster planted (``tests/test_early_warning.py``), ETS forecasts
follow the series' own rise and warn before the peak, with about one false alarm in 1,400
community-weeks; the global ``gbm`` has learnt from the sample that a busy week is followed
by an ordinary one (true of the sample's bursts) and forecasts the usual level even after
three rising weeks, so it warns late or not at all, while its wider conformal intervals
cross the alarm level in ~7 % of ordinary community-weeks.  Use gbm's forecast for expected
load; warn from ETS.
Explanation
-----------
Every warning carries ``expected`` (the forecast mean), ``usual``, ``ratio`` (expected /
usual), the interval ``lo``-``hi`` at the forecast's level, the ``alarm`` level it crossed,
and ``drivers``: what moved the forecast away from the usual level, in cases.  For the
global model (``gbm``) this is a **group ablation** on the model fitted at the origin (the
same fit as :func:`analytics.forecast.forecast`, refitted here: a :class:`Forecast` does not
keep its model): the forecast mean with the features of one group set to their value in a
*usual period* (recent counts -- the lags -- and the rolling means and the mean to date all
at ``usual``; the calendar at its median over the history: an ordinary period, for weeks five
working days, no holiday) is subtracted from the full forecast mean.  Groups:
``recent_counts`` (``lag_*``), ``rolling_means`` (``mean_*``), ``calendar`` (working days,
holidays, typhoon season of the target and origin periods; the median week is half in
typhoon season, June to November, so weeks in it get a calendar push).  The contributions are
not additive in a tree model (interactions): their sum need not equal ``expected - usual``.
For the per-series models (``ets``, ``moving_average``,
``seasonal_naive``) the whole move comes from the series' own recent counts, so
``drivers = {"recent_counts": expected - usual}``.  ``reason`` and ``reason_zh`` say it in
one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import stats

from analytics.errors import AnalyticsError, check_positive
from analytics.forecast import Forecast, SeriesPanel

__all__ = ["KINDS", "OUTLOOK_MIN_WEEKS", "EarlyWarnings", "early_warnings", "weekly_outlook"]

#: what a warning is about
KINDS = ("threshold", "new_hot_spot", "intensifying_hot_spot")

_COLUMNS = [
    "key",
    "kind",
    "origin",
    "period",
    "horizon",
    "expected",
    "lo",
    "hi",
    "usual",
    "ratio",
    "alarm",
    "gi_z",
    "drivers",
    "reason",
    "reason_zh",
]


@dataclass
class EarlyWarnings:
    """Warnings of one forecast.

    Attributes
    ----------
    frame : DataFrame
        One row per warning (a series may warn by more than one rule, one row each), most
        urgent first (highest ``expected / alarm``): ``key``, ``kind`` (:data:`KINDS`),
        ``origin`` and ``period`` (period starts), ``horizon``, ``expected`` (forecast mean),
        ``lo``, ``hi`` (interval at ``level``), ``usual`` (mean of the ``usual_window``
        periods up to the origin), ``ratio`` (``expected / usual``, inf where ``usual`` is
        0), ``alarm`` (the level ``hi`` crossed; NaN for hot spot warnings), ``gi_z`` (Gi* z
        of the forecast surface; NaN for non-cell panels), ``drivers`` (dict: feature group
        -> cases), ``reason``, ``reason_zh``.
    model : str
        The forecast's model.
    level : float
        Nominal coverage of ``[lo, hi]``.
    freq : str
    series_level : str
        What a series is (``panel.level``: cell, community, category or cube).
    params : dict
        The rule's parameters as used (for the record and for display).
    areas : GeoDataFrame or None
        For cell and cube panels: the warned cells (``key``, geometry, projected CRS).
    checked : int
        Series examined (every series of the panel).
    """

    frame: pd.DataFrame
    model: str
    level: float
    freq: str
    series_level: str
    params: dict = field(default_factory=dict)
    areas: gpd.GeoDataFrame | None = field(default=None, repr=False)
    checked: int = 0

    def __len__(self) -> int:
        return len(self.frame)


def _usual(panel: SeriesPanel, t: int, window: int) -> np.ndarray:
    y = panel.counts[:, max(0, t + 1 - window) : t + 1]
    return y.mean(axis=1)


def _alarm_level(usual: np.ndarray, exceedance: float, min_count: float) -> np.ndarray:
    return np.maximum(stats.poisson.ppf(1.0 - exceedance, np.maximum(usual, 1e-12)), min_count)


def early_warnings(
    panel: SeriesPanel,
    forecast: Forecast,
    *,
    horizon: int = 1,
    threshold: float | None = None,
    usual_window: int = 13,
    exceedance: float = 0.01,
    min_count: float = 3.0,
    hotspots: bool = True,
    recent: int = 4,
    k: int = 8,
    alpha: float = 0.05,
    explain: bool = True,
) -> EarlyWarnings:
    """Warn of series whose forecast is unusually high, or that become hot spots.

    Parameters
    ----------
    panel : SeriesPanel
        The counts the forecast was made from (:func:`analytics.forecast.count_series`).
    forecast : Forecast
        :func:`analytics.forecast.forecast` of ``panel`` (any model, one origin).
    horizon : int, default 1
        Warn about horizons ``1 .. horizon`` (at most the forecast's).
    threshold : float, optional
        Absolute alarm level (cases per period, every series).  Default: relative to each
        series' usual level (see the module docstring).
    usual_window : int, default 13
        Periods up to the origin whose mean is a series' usual level.
    exceedance : float, default 0.01
        The relative alarm level is the count a Poisson series at its usual mean exceeds
        with this probability.
    min_count : float, default 3
        The relative alarm level is at least this many cases.
    hotspots : bool, default True
        Also warn of new and intensifying Gi* hot spots (cell and cube panels only; ignored
        for communities and categories, which have no neighbours here).
    recent : int, default 4
        Observed periods up to the origin the forecast surface is compared with.
    k : int, default 8
        Nearest neighbours of the Gi* weights.
    alpha : float, default 0.05
        Significance of a hot spot (two-sided Gi* p) and of its trend.
    explain : bool, default True
        Compute ``drivers`` (for ``gbm`` this refits the model at the origin).

    Returns
    -------
    EarlyWarnings

    Raises
    ------
    AnalyticsError
        If the forecast is not of this panel, or a parameter is out of range (the message
        says which and its range).
    """
    t, fc = _check(
        panel, forecast, horizon, threshold, usual_window, exceedance, min_count, recent, k, alpha
    )
    usual = _usual(panel, t, int(usual_window))
    if threshold is None:
        alarm = _alarm_level(usual, float(exceedance), float(min_count))
    else:
        alarm = np.full(len(panel.keys), float(threshold))
    pos = panel.keys.get_indexer(fc["key"])
    fc = fc.assign(usual=usual[pos], alarm=alarm[pos], _pos=pos)
    rows = [fc[fc["hi"] > fc["alarm"]].assign(kind="threshold", gi_z=np.nan)]
    cells = panel.cells is not None and panel.level in ("cell", "cube")
    if hotspots and cells and len(panel.keys) > k:
        rows.append(
            _hotspot_rows(panel, fc, t, int(recent), int(usual_window), int(k), float(alpha))
        )
    out = pd.concat(rows, ignore_index=True)
    out.loc[out["kind"] != "threshold", "alarm"] = np.nan
    out = out.rename(columns={"mean": "expected"})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = np.where(out["usual"] > 0, out["expected"] / out["usual"], np.inf)
    out["drivers"] = _drivers(panel, forecast, t, out, usual) if explain else [{}] * len(out)
    out["reason"], out["reason_zh"] = _reasons(out, forecast.level, panel.freq)
    urgency = out["expected"] / out["alarm"].fillna(out["usual"].clip(lower=min_count))
    out = out.assign(_u=urgency).sort_values(["_u", "horizon"], ascending=[False, True])
    frame = out[_COLUMNS].reset_index(drop=True)
    areas = None
    if cells and panel.cells is not None and len(frame):
        warned = pd.Index(frame["key"].unique())
        areas = panel.cells.iloc[panel.keys.get_indexer(warned)][["geometry"]].copy()
        areas.insert(0, "key", warned.to_numpy())
        areas = areas.reset_index(drop=True)
    params = {
        "horizon": int(horizon),
        "threshold": None if threshold is None else float(threshold),
        "usual_window": int(usual_window),
        "exceedance": float(exceedance),
        "min_count": float(min_count),
        "hotspots": bool(hotspots and cells),
        "recent": int(recent),
        "k": int(k),
        "alpha": float(alpha),
    }
    return EarlyWarnings(
        frame,
        forecast.model,
        forecast.level,
        panel.freq,
        panel.level,
        params,
        areas,
        len(panel.keys),
    )


def _check(
    panel, forecast, horizon, threshold, usual_window, exceedance, min_count, recent, k, alpha
):
    """The origin index and the forecast rows of horizons ``1 .. horizon``, or an error."""
    if not isinstance(panel, SeriesPanel) or not isinstance(forecast, Forecast):
        raise AnalyticsError("early_warnings needs a SeriesPanel and a Forecast of it")
    if forecast.freq != panel.freq:
        raise AnalyticsError(
            f"the forecast is of {forecast.freq!r} periods, the panel of {panel.freq!r}"
        )
    f = forecast.frame
    origins = pd.DatetimeIndex(f["origin"].unique())
    if len(origins) != 1:
        raise AnalyticsError(f"the forecast must have one origin, it has {len(origins)}")
    t = int(panel.periods.get_indexer(origins)[0])
    if t < 0:
        raise AnalyticsError(f"the forecast's origin {origins[0].date()} is not a panel period")
    if panel.keys.get_indexer(pd.Index(f["key"].unique())).min(initial=0) < 0:
        raise AnalyticsError("the forecast has series that are not in the panel")
    h_max = int(f["horizon"].max())
    if not isinstance(horizon, (int, np.integer)) or not 1 <= horizon <= h_max:
        raise AnalyticsError(
            f"horizon must be an integer from 1 to {h_max} (the forecast's), got {horizon!r}"
        )
    for value, name, integer in (
        (usual_window, "usual_window", True),
        (min_count, "min_count", False),
        (k, "k", True),
        (threshold, "threshold", False),
    ):
        check_positive(value, name, integer=integer)
    if not isinstance(recent, (int, np.integer)) or recent < 2:
        raise AnalyticsError(f"recent must be an integer of at least 2 periods, got {recent!r}")
    for value, name in ((exceedance, "exceedance"), (alpha, "alpha")):
        if not isinstance(value, (int, float)) or not 0 < float(value) < 0.5:
            raise AnalyticsError(f"{name} must be between 0 and 0.5 (e.g. 0.01), got {value!r}")
    return t, f[f["horizon"] <= horizon].reset_index(drop=True)


def _hotspot_rows(panel, fc, t, recent, window, k, alpha):
    """Cells the forecast surface makes new or intensifying Gi* hot spots."""
    from analytics.emerging import classify_pattern, mann_kendall
    from analytics.gistar import gi_star_z
    from analytics.weights import knn_weights

    w = knn_weights(panel.cells, k=k)
    z_crit = stats.norm.isf(alpha / 2.0)
    # the recent surfaces are smoothed as the forecast is: the usual level (mean of the
    # ``usual_window`` periods) at each of the ``recent`` origins up to ``t``; raw weekly
    # counts of sparse cells are rarely significant anywhere, so any smooth surface would
    # look "new" against them
    cs = np.concatenate([np.zeros((len(panel.keys), 1)), np.cumsum(panel.counts, axis=1)], axis=1)
    ends = np.arange(max(0, t + 1 - recent), t + 1)
    starts = np.maximum(ends + 1 - window, 0)
    past = (cs[:, ends + 1] - cs[:, starts]) / (ends + 1 - starts)
    z_past = np.column_stack([gi_star_z(past[:, j], w) for j in range(past.shape[1])])
    out = []
    for _h, g in fc.groupby("horizon", sort=True):
        surface = np.zeros(len(panel.keys))
        surface[g["_pos"].to_numpy()] = g["mean"].to_numpy()
        z_f = gi_star_z(surface, w)
        z = np.nan_to_num(np.column_stack([z_past, z_f]))
        _, mk_z, mk_p, _ = mann_kendall(z)
        hot, cold = z >= z_crit, z <= -z_crit
        zi = z_f[g["_pos"].to_numpy()]
        kinds = []
        for row, i in enumerate(g["_pos"].to_numpy()):
            pattern = (
                "" if not hot[i, -1] else classify_pattern(hot[i], cold[i], mk_z[i], mk_p[i], alpha)
            )
            u = g["usual"].iat[row]
            up = g["mean"].iat[row] - u > z_crit * np.sqrt(max(u, 1.0 / window) / window)
            kinds.append(_PATTERN_KIND.get(pattern) if up else None)
        sel = np.array([kd is not None for kd in kinds], dtype=bool)
        out.append(g[sel].assign(kind=[kd for kd in kinds if kd is not None], gi_z=zi[sel]))
    return pd.concat(out, ignore_index=True) if out else fc.iloc[:0]


_PATTERN_KIND = {"New Hot Spot": "new_hot_spot", "Intensifying Hot Spot": "intensifying_hot_spot"}


#: feature groups of the global model, by name prefix, for the ablation
GROUPS = {
    "recent_counts": ("lag_", "same_weekday_"),
    "rolling_means": ("mean_",),
    "calendar": ("target_", "origin_"),
}
_GROUP_ZH = {"recent_counts": "近期件数", "rolling_means": "滑动均值", "calendar": "日历"}


class _Capture:
    """A regressor factory that keeps the model it made (to reuse the forecast's fit)."""

    def __init__(self):
        self.model = None

    def __call__(self, **params):
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.model = HistGradientBoostingRegressor(**params)
        return self.model


def _gbm_model(panel: SeriesPanel, t: int, horizon: int, level: float):
    """The global model :func:`analytics.forecast.forecast` fits at origin ``t``, and the
    calendar table it used."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from analytics.forecast import _calendar, _gbm_fit_predict

    cal = _calendar(panel, horizon).to_numpy(float)
    cap = _Capture()
    with threadpool_limits(limits=1, user_api="openmp"):
        _gbm_fit_predict(cap, panel.counts[:, : t + 1].copy(), panel, horizon, level, cal)
    return cap.model, cal


def _drivers(panel, forecast, t, rows, usual) -> list[dict]:
    """Per warning: feature group -> cases it adds to the forecast mean (see the module)."""
    if not len(rows):
        return []
    if forecast.model != "gbm":
        return [
            {"recent_counts": round(float(e - u), 3)}
            for e, u in zip(rows["expected"], rows["usual"], strict=True)
        ]
    from analytics.forecast import _feature_names, _features

    h_max = int(forecast.frame["horizon"].max())
    model, cal = _gbm_model(panel, t, h_max, forecast.level)
    names = _feature_names(panel.freq, _calendar_columns(panel))
    usual_cal = np.median(cal[: t + 1], axis=0)  # an ordinary period
    y = panel.counts[:, : t + 1]
    out: list[dict] = [{}] * len(rows)
    for h, idx in rows.groupby("horizon").indices.items():
        pos = rows["_pos"].to_numpy()[idx]
        x = _features(y, np.array([t]), int(h), cal, panel.freq)[pos]
        full = model.predict(x)
        contrib = {}
        for group, prefixes in GROUPS.items():
            cols = [j for j, n in enumerate(names) if n.startswith(prefixes)]
            xa = x.copy()
            if group == "calendar":
                xa[:, cols] = np.concatenate([usual_cal, usual_cal])[None, :]  # target, origin
            else:
                xa[:, cols] = usual[pos][:, None]
            contrib[group] = full - model.predict(xa)
        for r, i in enumerate(idx):
            out[i] = {g: round(float(v[r]), 3) for g, v in contrib.items()}
    return out


def _calendar_columns(panel: SeriesPanel):
    from analytics.forecast import _calendar

    return _calendar(panel, 1).columns


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def _reasons(rows, level: float, freq: str) -> tuple[list[str], list[str]]:
    """One sentence per warning, English and Chinese."""
    unit_en, unit_zh = ("week of", "当周") if freq == "W" else ("day", "当日")
    pct = f"{round(level * 100)} %"
    en, zh = [], []
    for r in rows.itertuples(index=False):
        day = pd.Timestamp(r.period).date().isoformat()
        ratio = "" if not np.isfinite(r.ratio) else f" (x{r.ratio:.1f})"
        ratio_zh = "" if not np.isfinite(r.ratio) else f"（{r.ratio:.1f} 倍）"
        head = (
            f"expected {_fmt(r.expected)} cases in the {unit_en} {day} ({pct} interval "
            f"{_fmt(r.lo)}-{_fmt(r.hi)}) against a usual {_fmt(r.usual)}{ratio}"
        )
        head_zh = (
            f"预计 {day} {unit_zh} {_fmt(r.expected)} 件（{pct} 区间 {_fmt(r.lo)}–{_fmt(r.hi)}），"
            f"平时 {_fmt(r.usual)} 件{ratio_zh}"
        )
        if r.kind == "threshold":
            why = f"; the upper end crosses the alarm level {_fmt(r.alarm)}"
            why_zh = f"；区间上限超过预警线 {_fmt(r.alarm)} 件"
        else:
            new = r.kind == "new_hot_spot"
            why = (
                f"; the forecast makes it {'a new' if new else 'an intensifying'} hot spot "
                f"(Gi* z {r.gi_z:.2f})"
            )
            why_zh = f"；预测使其成为{'新' if new else '加剧'}热点（Gi* z {r.gi_z:.2f}）"
        drivers = r.drivers or {}
        if drivers:
            parts = sorted(drivers.items(), key=lambda kv: -abs(kv[1]))
            why += "; drivers: " + ", ".join(f"{g.replace('_', ' ')} {v:+.1f}" for g, v in parts)
            why_zh += "；主要因素：" + "，".join(f"{_GROUP_ZH[g]} {v:+.1f}" for g, v in parts)
        en.append(head[0].upper() + head[1:] + why + ".")
        zh.append(head_zh + why_zh + "。")
    return en, zh


#: the outlook's defaults: per-series ETS (see "Which forecast"), 80 % intervals, and the weeks
#: of history it needs
OUTLOOK_MODEL, OUTLOOK_LEVEL, OUTLOOK_MIN_WEEKS = "ets", 0.8, 8
_OUTLOOK_COLS = (("expected", "mean"), ("lo", "lo"), ("hi", "hi"))


def weekly_outlook(
    cases: pd.DataFrame,
    origin,
    *,
    horizon: int = 1,
    model: str = OUTLOOK_MODEL,
    level: float = OUTLOOK_LEVEL,
    names: dict | None = None,
    tz: str = "Asia/Shanghai",
) -> dict:
    """The expected cases of one coming week per major category and in all, and the warnings.

    What the weekly report's outlook and the screen's forecast panel show.

    Parameters
    ----------
    cases : DataFrame
        Incidents (``reported_at``, ``major_class``, ``community_code``); only those reported
        before the end of the ``origin`` week (local time) are read.
    origin : date-like
        Monday of the last week treated as observed (local).
    horizon : int, default 1
        Which week after ``origin`` (1: the next one).
    model : str, default "ets"
        Forecast model (:data:`analytics.forecast.MODELS`).
    level : float, default 0.8
        Interval coverage.
    names : dict, optional
        Community code -> name, for the warnings.
    tz : str, default "Asia/Shanghai"

    Returns
    -------
    dict
        JSON-ready: ``week_start`` (ISO date), ``categories`` (``major_class``, ``label``,
        ``label_en``, ``color``, ``expected``, ``lo``, ``hi``, ``usual``; busiest first),
        ``total`` (its own forecast of all cases, not a sum), ``warnings`` (communities:
        ``community_code``, ``community``, ``kind``, ``expected``, ``lo``, ``hi``, ``usual``,
        ``alarm``, ``reason``, ``reason_zh``).  Figures rounded to 0.1.

    Raises
    ------
    AnalyticsError
        With fewer than :data:`OUTLOOK_MIN_WEEKS` weeks of cases up to the origin.
    """
    from analytics.forecast import count_series, forecast
    from layers.catalogue import LAYERS

    start = pd.Timestamp(origin).normalize()
    if start.tzinfo is not None:
        start = start.tz_localize(None)
    cut = (start + pd.Timedelta(days=7)).tz_localize(tz).tz_convert("UTC")
    times = pd.to_datetime(cases["reported_at"], utc=True, format="ISO8601")
    frame = cases[times < cut].assign(_all="all")
    if not len(frame):
        raise AnalyticsError(f"there are no cases up to the week of {start.date()}")
    names = names or {}
    field_ = LAYERS["incidents"].field("major_class")
    colors = {c.code: c.color for c in field_.codes or ()}

    def run(lvl, key_field=None):
        panel = count_series(frame, level=lvl, key_field=key_field, tz=tz)
        if panel.periods[-1] != start:
            raise AnalyticsError(f"there are no cases in the week of {start.date()}")
        if len(panel.periods) < OUTLOOK_MIN_WEEKS:
            raise AnalyticsError(
                f"the outlook needs at least {OUTLOOK_MIN_WEEKS} weeks of cases up to the week "
                f"of {start.date()}, there are {len(panel.periods)}"
            )
        fc = forecast(panel, model=model, horizon=horizon, level=level, origin=start)
        rows = fc.frame[fc.frame["horizon"] == horizon]
        return panel, fc, rows, _usual(panel, len(panel.periods) - 1, 13)

    def figures(r, u) -> dict:
        return {k: round(float(r[c]), 1) for k, c in _OUTLOOK_COLS} | {"usual": round(float(u), 1)}

    _, _, rows, usual = run("category", "_all")
    out: dict = {
        "week_start": (start + pd.Timedelta(days=7 * horizon)).date().isoformat(),
        "total": figures(rows.iloc[0], usual[0]),
        "categories": [],
        "warnings": [],
    }
    _, _, rows, usual = run("category")
    rows = rows.assign(_usual=usual).sort_values("mean", ascending=False, kind="stable")
    for _, r in rows.iterrows():
        out["categories"].append(
            {
                "major_class": r["key"],
                "label": field_.label(r["key"], "zh"),
                "label_en": field_.label(r["key"], "en"),
                "color": colors.get(r["key"]),
            }
            | figures(r, r["_usual"])
        )
    panel, fc, _, _ = run("community")
    ew = early_warnings(panel, fc, horizon=horizon, explain=False)
    for w in ew.frame[ew.frame["horizon"] == horizon].to_dict("records"):
        out["warnings"].append(
            {
                "community_code": w["key"],
                "community": names.get(w["key"], w["key"]),
                "kind": w["kind"],
                **{k: round(float(w[k]), 1) for k in ("expected", "lo", "hi", "usual")},
                "alarm": None if pd.isna(w["alarm"]) else round(float(w["alarm"]), 1),
                "reason": w["reason"],
                "reason_zh": w["reason_zh"],
            }
        )
    return out
