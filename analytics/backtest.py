"""Rolling-origin backtests of the forecast models: MASE, interval coverage and where a model
loses to a baseline.

Functions
---------
backtest
    Forecast from each of the last origins of a :class:`~analytics.forecast.SeriesPanel`
    with every model, score against the held-out periods (:class:`Backtest`).
mase_scale
    The MASE denominator of each series at an origin.

Method (Hyndman & Koehler 2006; Hyndman & Athanasopoulos, *FPP3* 5.10): for each origin
``t`` (the last period a model sees, see :func:`analytics.forecast.forecast`: counts after
``t`` are never handed to a model) and horizon ``h`` with ``t + h`` observed, the scaled
error is ``|y[t+h] - point| / scale[t]`` where ``scale[t]`` is the mean absolute seasonal
difference of the series over periods ``0 .. t`` (its in-sample seasonal naive error, season
:attr:`~analytics.forecast.SeriesPanel.season_length`).  Series whose scale is 0 at an
origin (constant so far, e.g. no case yet) are left out of MASE at that origin and counted in
``excluded``.  MASE of a model and horizon = mean scaled error over series and origins;
coverage = share of held-out periods inside ``[lo, hi]`` (ends included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.errors import AnalyticsError, check_positive
from analytics.forecast import (
    MODELS,
    POOLED_GRID,
    SeriesPanel,
    _calendar,
    _check_args,
    _check_params,
    _predict,
)

__all__ = ["CANDIDATES", "Backtest", "Selection", "backtest", "mase_scale", "select_model"]


def mase_scale(panel: SeriesPanel, origin: int) -> np.ndarray:
    """Mean absolute seasonal difference of each series over periods ``0 .. origin``."""
    m = panel.season_length
    y = panel.counts[:, : origin + 1]
    if y.shape[1] <= m:
        return np.zeros(y.shape[0])
    return np.abs(y[:, m:] - y[:, :-m]).mean(axis=1)


@dataclass
class Backtest:
    """Result of :func:`backtest`.

    Attributes
    ----------
    forecasts : DataFrame
        One row per model, origin, horizon and series: ``model``, ``origin`` (period start),
        ``horizon``, ``key``, ``actual``, ``point``, ``mean``, ``lo``, ``hi``, ``scale``,
        ``scaled_error`` (of ``point``; NaN where ``scale`` is 0), ``scaled_error_mean`` (of
        ``mean``), ``scaled_error_zero`` (of forecasting 0), ``covered``.
    scores : DataFrame
        One row per model and horizon: ``mase`` (of the point forecast), ``mase_mean`` (of
        the mean forecast), ``mase_zero`` (of forecasting 0 everywhere: the reference that
        shows when MASE rewards forecasting nothing, as it does for sparse series), ``mae``,
        ``coverage``, ``n`` (forecasts scored for MASE), ``excluded`` (zero-scale
        forecasts), ``origins``.
    level : float
    level_name : str
        What a series is (``panel.level``).
    freq : str
    """

    forecasts: pd.DataFrame
    scores: pd.DataFrame
    level: float
    level_name: str
    freq: str

    def versus(self, baseline: str = "seasonal_naive") -> pd.DataFrame:
        """MASE of every model relative to ``baseline``, per horizon.

        Returns
        -------
        DataFrame
            ``model``, ``horizon``, ``mase``, ``baseline_mase``, ``improvement``
            (``1 - mase / baseline_mase``: 0.2 = 20 % better than the baseline),
            ``zero_mase`` (forecasting 0 everywhere) and ``improvement_vs_zero``
            (``1 - mase / zero_mase``: at or below 0 where the model's point forecasts show
            no more skill than forecasting nothing, as on sparse series).
        """
        s = self.scores
        if baseline not in set(s["model"]):
            raise AnalyticsError(
                f"{baseline!r} is not in this backtest, one of: {', '.join(s['model'].unique())}"
            )
        base = s[s["model"] == baseline].set_index("horizon")["mase"]
        out = s[["model", "horizon", "mase"]].copy()
        out["baseline_mase"] = out["horizon"].map(base)
        out["improvement"] = 1.0 - out["mase"] / out["baseline_mase"]
        out["zero_mase"] = s["mase_zero"]
        out["improvement_vs_zero"] = 1.0 - out["mase"] / out["zero_mase"]
        return out.reset_index(drop=True)

    def losses(
        self, model: str = "gbm", baseline: str = "seasonal_naive", bands: int = 4
    ) -> pd.DataFrame:
        """Where ``model`` loses to ``baseline``: MASE per horizon and activity band.

        Series are put in ``bands`` bands by their mean count over the backtest's actuals
        (quantiles; ties may merge bands).

        Returns
        -------
        DataFrame
            ``horizon``, ``band`` (mean-count interval), ``series``, ``mase`` (model),
            ``baseline_mase``, ``zero_mase`` (forecasting 0), ``improvement`` and ``loses``
            (``improvement < 0``).
        """
        f = self.forecasts
        for name in (model, baseline):
            if name not in set(f["model"]):
                raise AnalyticsError(f"{name!r} is not in this backtest")
        sub = f[f["model"].isin([model, baseline]) & f["scaled_error"].notna()]
        rate = f[f["model"] == model].groupby("key")["actual"].mean()
        band = pd.qcut(rate, bands, duplicates="drop")
        sub = sub.assign(band=sub["key"].map(band))
        g = (
            sub.groupby(["horizon", "band", "model"], observed=True)["scaled_error"]
            .mean()
            .unstack("model")
        )
        zero = (
            sub[sub["model"] == model]
            .groupby(["horizon", "band"], observed=True)["scaled_error_zero"]
            .mean()
        )
        nser = sub.groupby(["horizon", "band"], observed=True)["key"].nunique()
        out = pd.DataFrame(
            {
                "series": nser,
                "mase": g[model],
                "baseline_mase": g[baseline],
                "zero_mase": zero,
            }
        ).reset_index()
        out["band"] = out["band"].astype(str)
        out["improvement"] = 1.0 - out["mase"] / out["baseline_mase"]
        out["loses"] = out["improvement"] < 0
        return out

    def series_losses(self, model: str = "gbm", baseline: str = "seasonal_naive") -> pd.DataFrame:
        """Series where ``model``'s mean scaled error exceeds ``baseline``'s (all horizons).

        Returns
        -------
        DataFrame
            ``key``, ``mase``, ``baseline_mase``, ``mean_actual``, worst first.
        """
        f = self.forecasts[self.forecasts["scaled_error"].notna()]
        g = f.groupby(["key", "model"])["scaled_error"].mean().unstack("model")
        mean_actual = f[f["model"] == model].groupby("key")["actual"].mean()
        out = pd.DataFrame(
            {"mase": g[model], "baseline_mase": g[baseline], "mean_actual": mean_actual}
        )
        out = out[out["mase"] > out["baseline_mase"]]
        return (
            out.assign(gap=out["mase"] - out["baseline_mase"])
            .sort_values("gap", ascending=False)
            .drop(columns="gap")
            .reset_index()
        )


def backtest(
    panel: SeriesPanel,
    *,
    models=MODELS,
    origins: int = 12,
    horizon: int = 4,
    level: float = 0.8,
    n_threads: int = 1,
    params: dict | None = None,
) -> Backtest:
    """Rolling-origin backtest of ``models`` on ``panel``.

    Parameters
    ----------
    panel : SeriesPanel
    models : sequence of str
        Any of :data:`analytics.forecast.MODELS`.
    origins : int, default 12
        Number of origins: the last ``origins`` periods before the final one (each origin
        forecasts the periods after it that are observed, so the latest origin scores only
        horizon 1).
    horizon : int, default 4
    level : float, default 0.8
    n_threads : int, default 1
        OpenMP threads of the gradient-boosted model.
    params : dict, optional
        Parameters of the ``pooled`` model (see :func:`analytics.forecast.forecast`).

    Returns
    -------
    Backtest
    """
    check_positive(origins, "origins", integer=True)
    models = tuple(models)
    if not models:
        raise AnalyticsError("no model to backtest")
    for m in models:
        _check_args(m, horizon, level)
    pooled_params = _check_params("pooled", params)
    t_all = panel.counts.shape[1]
    first = t_all - 1 - int(origins)
    if first < 1:
        raise AnalyticsError(
            f"{origins} origins need more than {origins + 1} periods, the panel has {t_all}"
        )
    cal = _calendar(panel, horizon).to_numpy(float)
    n = len(panel.keys)
    rows = []
    for t in range(first, t_all - 1):
        hmax = min(horizon, t_all - 1 - t)
        scale = mase_scale(panel, t)
        for m in models:
            point, mean, lo, hi = _predict(
                panel,
                t,
                m,
                horizon,
                float(level),
                cal,
                n_threads,
                pooled_params if m == "pooled" else None,
            )
            for h in range(1, hmax + 1):
                actual = panel.counts[:, t + h]
                p, a, b = point[:, h - 1], lo[:, h - 1], hi[:, h - 1]
                mu = np.asarray(mean, float)[:, h - 1]
                with np.errstate(divide="ignore", invalid="ignore"):
                    se = np.where(scale > 0, np.abs(actual - p) / scale, np.nan)
                    se_mean = np.where(scale > 0, np.abs(actual - mu) / scale, np.nan)
                    se_zero = np.where(scale > 0, actual / scale, np.nan)
                rows.append(
                    pd.DataFrame(
                        {
                            "model": m,
                            "origin": panel.periods[t],
                            "horizon": h,
                            "key": panel.keys.to_numpy(),
                            "actual": actual,
                            "point": p,
                            "mean": mu,
                            "lo": a,
                            "hi": b,
                            "scale": scale,
                            "scaled_error": se,
                            "scaled_error_mean": se_mean,
                            "scaled_error_zero": se_zero,
                            "covered": (actual >= a) & (actual <= b),
                        },
                        index=np.arange(n),
                    )
                )
    f = pd.concat(rows, ignore_index=True)
    f["abs_error"] = (f["actual"] - f["point"]).abs()
    g = f.groupby(["model", "horizon"], sort=False)
    scores = pd.DataFrame(
        {
            "mase": g["scaled_error"].mean(),
            "mase_mean": g["scaled_error_mean"].mean(),
            "mase_zero": g["scaled_error_zero"].mean(),
            "mae": g["abs_error"].mean(),
            "coverage": g["covered"].mean(),
            "n": g["scaled_error"].count(),
            "excluded": g["scaled_error"].size() - g["scaled_error"].count(),
            "origins": g["origin"].nunique(),
        }
    ).reset_index()
    f = f.drop(columns="abs_error")
    return Backtest(f, scores, float(level), panel.level, panel.freq)


@dataclass
class Selection:
    """Result of :func:`select_model`.

    Attributes
    ----------
    model : str
        The chosen model.
    params : dict
        Its parameters (for ``pooled``; empty for the others).
    scores : DataFrame
        One row per candidate, best first: ``model``, ``params``, ``mase`` (1 period ahead,
        on the validation origins), ``improvement`` (over seasonal naive there) and
        ``coverage``.
    validation : DatetimeIndex
        The validation origins (period starts).
    last_seen : Timestamp
        Start of the last period the selection read; the reported backtest's targets all
        come after it.
    """

    model: str
    params: dict
    scores: pd.DataFrame
    validation: pd.DatetimeIndex
    last_seen: pd.Timestamp


#: the candidates of :func:`select_model`: the two per-series / global models and the pooled
#: model with each parameter set of :data:`analytics.forecast.POOLED_GRID`
CANDIDATES: tuple[tuple[str, dict], ...] = (("ets", {}), ("gbm", {})) + tuple(
    ("pooled", dict(p)) for p in POOLED_GRID
)


def select_model(
    panel: SeriesPanel,
    *,
    candidates=CANDIDATES,
    origins: int = 12,
    holdout: int = 12,
    level: float = 0.8,
    n_threads: int = 1,
) -> Selection:
    """Choose a model and its parameters on validation origins before the reported ones.

    The last ``holdout`` periods (the targets of :func:`backtest` with ``origins=holdout``)
    are cut off the panel first, so nothing of them can reach the choice; the candidates
    are then backtested 1 period ahead from the ``origins`` origins before the cut, and the
    lowest MASE wins (ties: the earlier candidate).

    Parameters
    ----------
    panel : SeriesPanel
    candidates : sequence of (str, dict)
        Model names and their parameters (default :data:`CANDIDATES`).
    origins : int, default 12
        Validation origins.
    holdout : int, default 12
        Periods kept out of the selection: those a backtest with ``origins=holdout`` scores.
    level : float, default 0.8
    n_threads : int, default 1

    Returns
    -------
    Selection
    """
    check_positive(holdout, "holdout", integer=True)
    candidates = tuple((str(m), dict(p)) for m, p in candidates)
    if not candidates:
        raise AnalyticsError("no candidate model to select from")
    t_all = panel.counts.shape[1]
    keep = t_all - int(holdout)
    if keep < int(origins) + 2:
        raise AnalyticsError(
            f"{origins} validation origins and {holdout} held-out periods need more than "
            f"{origins + holdout + 1} periods, the panel has {t_all}"
        )
    cut = SeriesPanel(
        panel.counts[:, :keep].copy(),
        panel.keys,
        panel.periods[:keep],
        panel.freq,
        panel.level,
        panel.season_length,
        panel.cells,
    )
    rows, base = [], None
    for model, params in (("seasonal_naive", {}),) + candidates:
        bt = backtest(
            cut,
            models=(model,),
            origins=origins,
            horizon=1,
            level=level,
            n_threads=n_threads,
            params=params or None,
        )
        s = bt.scores.iloc[0]
        if base is None:
            base = float(s["mase"])
            validation = pd.DatetimeIndex(sorted(bt.forecasts["origin"].unique()))
            continue
        rows.append(
            {
                "model": model,
                "params": params,
                "mase": float(s["mase"]),
                "improvement": 1.0 - float(s["mase"]) / base,
                "coverage": float(s["coverage"]),
            }
        )
    scores = pd.DataFrame(rows)
    order = np.argsort(scores["mase"].to_numpy(), kind="stable")
    scores = scores.iloc[order].reset_index(drop=True)
    best = scores.iloc[0]
    return Selection(str(best["model"]), dict(best["params"]), scores, validation, cut.periods[-1])
