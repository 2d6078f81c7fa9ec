"""OGC API process ``forecast``: next periods' expected cases per cell, community or major class.

Process ``forecast`` (issue 16, 预判): counts the selected timestamped points of a layer per
series (200 m fishnet cell, community or major class) and local week or day
(:func:`analytics.forecast.count_series`) and forecasts every series 1-4 periods after the
origin with prediction intervals (:func:`analytics.forecast.forecast`).  Synchronous and
asynchronous, as the other analysis processes (:class:`~tianya.plugins.analysis.
AnalysisProcessor`: the layer's read rights, ``filter`` / ``datetime`` on the caller's visible
fields only, the job's restriction).

Inputs beyond ``collection``, ``filter``, ``datetime``: ``level``, ``model``, ``horizon``
(1-4), ``interval_level`` (nominal coverage, 0.5-0.99), ``freq`` (``W``/``D``), ``origin``
(the last observed period's first day, ``YYYY-MM-DD``), ``cell_size`` (cells),
``major_class`` and ``community`` (restrict the cases), ``warnings`` (boolean), each checked
with its choices or bounds.

What it reads: the layer's key, its temporal field, ``community_code`` and ``major_class``
(public fields; the process refuses a layer where the caller cannot see them), never a
personal field; the answer is counts per cell, community or class.

Work budgets (a 400 stating the limit, see :mod:`tianya.plugins.budgets`), checked before any
data is read over the layer's extent and again on the counted panel before the model:

- fishnet cells over the extent within ``MAX_GRID_CELLS`` (level ``cell``);
- periods (weeks or days) within ``MAX_TIME_STEPS``;
- series x periods within ``MAX_CUBE_CELLS``;
- training rows of the model (series x training origins x horizons; the gradient-boosted
  model trains on the last 52 weeks / 182 days of origins) within ``MAX_FORECAST_ROWS``
  (for cells only on the selection: the cells with a case, bounded by the cases).

The run itself executes in :mod:`tianya.plugins.runner`'s bounded pool (memory, time).

Output: GeoJSON, one feature per series and horizon (``key`` and, for communities,
``name``; ``horizon``, ``period``, ``point``, ``mean``, ``lo``, ``hi``, ``recent_mean`` = the
mean of the last four periods up to the origin), cells and communities with their polygon,
major classes without geometry, and ``warning`` (the kind of the series' early warning at
that horizon, or null); the run's ``model``, ``origin`` ... under ``forecast``; with
``warnings`` (default true) the member ``warnings`` lists them, most urgent first, each
explained (:func:`analytics.early_warning.early_warnings`: ``expected`` vs ``usual``, the
``alarm`` level, ``drivers``, ``reason``/``reason_zh``).  Warnings are always computed from
the **ETS** forecast of the same counts (``warnings_model``), as
:mod:`analytics.early_warning` advises: the global gbm forecasts the usual level after a
rise and warns late, while its wider intervals cross the alarm level in ordinary weeks; so
with ``model`` other than ``ets`` a warning's ``expected`` is ETS's, not the feature's
``mean``.
"""

from __future__ import annotations

import math
from typing import cast

from layers.catalogue import LAYERS, MAJOR_CLASSES
from layers.errors import InvalidParameter, choices
from tianya.plugins.analysis import GEOJSON, AnalysisProcessor, feature_collection, json_scalar
from tianya.plugins.budgets import check_cells, require_within, time_span
from tianya.plugins.options import Option

__all__ = ["MAX_HORIZON", "WARNINGS_MODEL", "ForecastProcessor", "forecast_budget"]

#: the process's longest horizon (the library's is longer; issue 16 asks 1-4)
MAX_HORIZON = 4
_LEVELS = ("cell", "community", "category")
_MODELS = ("seasonal_naive", "moving_average", "ets", "gbm", "pooled")
#: the fields a level counts by / the filters read
_KEY_FIELD = {"community": "community_code", "category": "major_class"}
#: training origins of the gradient-boosted model per frequency (analytics.forecast._TRAIN)
_TRAIN = {"W": 52, "D": 182}
_RECENT = 4
#: the model the warnings are computed from, whatever ``model`` is
WARNINGS_MODEL = "ets"


def forecast_budget(
    series: int, periods: int, opts: dict, where: str, *, rows: bool = True
) -> None:
    """Raise a 400 if periods, series x periods or the model's training rows exceed budgets.

    Parameters
    ----------
    series, periods : int
        Size of the panel (an upper bound before the data is read).
    opts : dict
        Checked inputs (``freq``, ``model``, ``horizon``).
    where : str
        What the sizes were estimated over (for the message).
    rows : bool, default True
        Check the training rows too (not over a layer's extent for cells: every cell of the
        extent is far more than the cells with a case, which only the data tells).
    """
    unit = "weeks" if opts["freq"] == "W" else "days"
    require_within(
        f"{unit} of the forecast over {where}",
        periods,
        "MAX_TIME_STEPS",
        "use freq 'W' or a shorter datetime interval",
    )
    require_within(
        f"counts of the forecast ({series:,} series x {periods:,} {unit}) over {where}",
        series * periods,
        "MAX_CUBE_CELLS",
        "use a larger cell_size, level 'community', or a shorter datetime interval",
    )
    if rows and opts["model"] == "gbm":
        origins = min(periods, _TRAIN[opts["freq"]])
        require_within(
            f"training rows of the gbm model ({series:,} series x {origins} origins x "
            f"{opts['horizon']} horizons) over {where}",
            series * origins * opts["horizon"],
            "MAX_FORECAST_ROWS",
            "use a larger cell_size, a shorter horizon, level 'community', or model 'ets'",
        )


def _periods(lo, hi, freq: str) -> int:
    days = (hi - lo).total_seconds() / 86400.0
    return int(math.floor(days / (7 if freq == "W" else 1))) + 2


class ForecastProcessor(AnalysisProcessor):
    """Forecasts of case counts per cell, community or major class (issue 16)."""

    ID = "forecast"
    TITLE = {"en": "Case forecast", "zh": "案件预判（预测）"}
    DESCRIPTION = {
        "en": "Counts of the timestamped points per 200 m cell, community or major class and "
        "local week (or day), forecast 1-4 periods after the origin with prediction "
        "intervals: seasonal naive, moving average, exponential smoothing (ETS) or a global "
        "gradient-boosted model with Chinese-calendar features.",
        "zh": "按网格、社区或大类与自然周（日）统计案件数，预测起点之后 1-4 期的案件量及预测区间"
        "（季节朴素、移动平均、指数平滑、含节假日特征的全局梯度提升模型）。",
    }
    TEMPORAL_ONLY = True
    OPTIONS = (
        Option(
            "level",
            "string",
            "What a series counts: fishnet cells, communities or major classes.",
            "community",
            choices=_LEVELS,
        ),
        Option(
            "model",
            "string",
            "Forecast model (gbm: global gradient-boosted model; ets: exponential smoothing; "
            "pooled: each series' share of the total times the recent total, the model chosen "
            "on the backtest and the default; the baselines seasonal_naive and moving_average).",
            "pooled",
            choices=_MODELS,
        ),
        Option("horizon", "integer", "Periods ahead.", 1, minimum=1, maximum=MAX_HORIZON),
        Option(
            "interval_level",
            "number",
            "Nominal coverage of the prediction intervals [lo, hi].",
            0.8,
            minimum=0.5,
            maximum=0.99,
        ),
        Option("freq", "string", "Local Monday-Sunday weeks or days.", "W", choices=("W", "D")),
        Option(
            "origin",
            "string",
            "First day (YYYY-MM-DD; a Monday for weeks) of the last period treated as "
            "observed; default: the last period with a selected case.",
        ),
        Option(
            "cell_size",
            "number",
            "Fishnet cell side in metres (level 'cell').",
            200.0,
            minimum=100.0,
            maximum=5_000.0,
        ),
        Option(
            "major_class",
            "string",
            "Only cases of this major class.",
            choices=tuple(c.code for c in MAJOR_CLASSES),
        ),
        Option("community", "string", "Only cases of this community (its code)."),
        Option(
            "warnings",
            "boolean",
            "Also warn of series whose forecast is unusually high or that become hot spots "
            "(analytics.early_warning; best from model 'ets').",
            True,
        ),
    )
    EXAMPLE = {"collection": "incidents", "level": "community", "model": "gbm", "horizon": 1}

    @classmethod
    def valid_collections(cls) -> list[str]:
        """Point layers with a temporal field and the community and major class fields."""
        need = set(_KEY_FIELD.values())
        return [
            lid
            for lid in super().valid_collections()
            if need <= {f.name for f in LAYERS[lid].fields}
        ]

    def check_options(self, layer, opts):
        hidden = sorted(set(_KEY_FIELD.values()) - opts["visible"])
        if hidden:  # catalogue change: never counted by fields the caller cannot see
            raise InvalidParameter(
                f"collection {layer.id!r} does not show {', '.join(hidden)} to this caller; "
                "the forecast counts by them"
            )
        opts["time_field"] = layer.temporal
        if opts["origin"] is not None:
            import pandas as pd

            try:
                origin = pd.Timestamp(opts["origin"])
            except (ValueError, TypeError):
                origin = None
            if origin is None or origin is pd.NaT or origin != origin.normalize():
                raise InvalidParameter(
                    f"input 'origin' must be a date YYYY-MM-DD, got {opts['origin']!r}"
                )
            if origin.tzinfo is not None:
                raise InvalidParameter(
                    f"input 'origin' is a local date without time zone, got {opts['origin']!r}"
                )
            if opts["freq"] == "W" and origin.day_of_week != 0:
                raise InvalidParameter(
                    f"input 'origin' must be a Monday (the first day of a week) with freq "
                    f"'W', got {opts['origin']} ({origin.day_name()})"
                )
            opts["origin_ts"] = origin
        if opts["community"] is not None and len(opts["community"]) > 64:
            raise InvalidParameter("input 'community' must be a community code (e.g. 'C01')")
        if opts["level"] == "cell":
            series = check_cells(layer, opts["cell_size"], "fishnet")
        elif opts["level"] == "category":
            series = len(MAJOR_CLASSES)
        else:
            series = 0  # communities: counted on the data (see run)
        span = time_span(layer, opts)
        if span is not None:
            periods = _periods(span[0], span[1], opts["freq"])
            forecast_budget(
                max(series, 1),
                periods,
                opts,
                f"the time extent of {layer.id!r}",
                rows=opts["level"] != "cell",
            )

    def run(self, opts):
        import numpy as np
        import pandas as pd

        from analytics.forecast import count_series, forecast

        tf, level = opts["time_field"], opts["level"]
        frame = self.read(opts, [tf, *_KEY_FIELD.values()])
        frame = frame[frame[tf].notna()]
        if opts["major_class"] is not None:
            frame = frame[frame["major_class"] == opts["major_class"]]
        if opts["community"] is not None:
            known = sorted(self.communities()["code"].astype(str))
            if opts["community"] not in known:
                raise InvalidParameter(choices(opts["community"], known, "community"))
            frame = frame[frame["community_code"] == opts["community"]]
        if len(frame) == 0:
            raise InvalidParameter(
                "no timestamped case matches the selection (collection, filter, datetime, "
                "major_class, community); widen it"
            )
        times = pd.to_datetime(frame[tf])
        if level == "cell":
            from analytics.weights import point_coordinates

            xy = point_coordinates(frame, stacklevel=3)
            w, h = xy.max(axis=0) - xy.min(axis=0)
            series = min(
                len(frame),
                (int(w // opts["cell_size"]) + 1) * (int(h // opts["cell_size"]) + 1),
            )
        else:
            series = int(frame[_KEY_FIELD[level]].nunique())
        forecast_budget(
            series,
            _periods(times.min(), times.max(), opts["freq"]),
            opts,
            "the selected cases",
        )
        panel = count_series(frame, tf, level=level, freq=opts["freq"], cell_size=opts["cell_size"])
        origin = opts.get("origin_ts", -1)
        if "origin_ts" in opts and origin not in panel.periods:
            raise InvalidParameter(
                f"origin {opts['origin']} is outside the selected cases' periods, "
                f"{panel.periods[0].date()} .. {panel.periods[-1].date()}"
            )
        fc = forecast(
            panel,
            model=opts["model"],
            horizon=int(opts["horizon"]),
            level=float(opts["interval_level"]),
            origin=origin,
        )
        out = fc.frame
        t = int(panel.periods.get_indexer(pd.DatetimeIndex([out["origin"].iloc[0]]))[0])
        recent = panel.counts[:, max(0, t + 1 - _RECENT) : t + 1].mean(axis=1)
        out = out.assign(
            recent_mean=np.repeat(recent, int(opts["horizon"])),
            origin=out["origin"].dt.strftime("%Y-%m-%d"),
            period=out["period"].dt.strftime("%Y-%m-%d"),
        )
        warned = self._warnings(panel, fc, opts) if opts["warnings"] else None
        kinds: dict[tuple[str, int], str] = {}
        if warned is not None:
            for w in warned:
                kinds.setdefault((str(w["key"]), w["horizon"]), w["kind"])
        out["warning"] = [
            kinds.get((str(k), int(h))) for k, h in zip(out["key"], out["horizon"], strict=True)
        ]
        cols = ["key", "horizon", "period", "point", "mean", "lo", "hi", "recent_mean", "warning"]
        if level == "cell":
            import geopandas as gpd

            grid = cast(gpd.GeoDataFrame, panel.cells)  # set for level 'cell'
            cells = grid.assign(key=panel.keys.to_numpy())[["key", "geometry"]]
            gdf = gpd.GeoDataFrame(cells.merge(out, on="key"), crs=grid.crs)
        elif level == "community":
            import geopandas as gpd

            com = self.communities().rename(columns={"code": "key"})
            com["key"] = com["key"].astype(str)
            gdf = gpd.GeoDataFrame(out.merge(com, on="key", how="left"), crs=com.crs)
            cols.insert(1, "name")
        else:
            import geopandas as gpd

            gdf = gpd.GeoDataFrame(out, geometry=[None] * len(out), crs=4326)
        return GEOJSON, feature_collection(
            gdf,
            cols,
            numberFeatures=int(len(frame)),
            forecast={
                "level": level,
                "model": fc.model,
                "freq": fc.freq,
                "interval": fc.level,
                "origin": str(out["origin"].iloc[0]),
                "horizon": int(opts["horizon"]),
                "series": int(len(panel.keys)),
                "periods": int(panel.counts.shape[1]),
                "first_period": str(panel.periods[0].date()),
            },
            warnings=warned,
            warnings_model=WARNINGS_MODEL if warned is not None else None,
        )

    @staticmethod
    def _warnings(panel, fc, opts) -> list[dict]:
        """The early warnings (every horizon) of the ETS forecast from the same origin,
        JSON-ready, most urgent first."""
        import pandas as pd

        from analytics.early_warning import early_warnings

        if fc.model != WARNINGS_MODEL:  # warn from ETS (see the module docstring)
            from analytics.forecast import forecast

            t = int(panel.periods.get_indexer(pd.DatetimeIndex([fc.frame["origin"].iloc[0]]))[0])
            fc = forecast(
                panel, model=WARNINGS_MODEL, horizon=int(opts["horizon"]), level=fc.level, origin=t
            )
        ew = early_warnings(panel, fc, horizon=int(opts["horizon"]))
        out = []
        for w in ew.frame.to_dict("records"):
            out.append(
                {
                    "key": json_scalar(w["key"]),
                    "kind": w["kind"],
                    "horizon": int(w["horizon"]),
                    "period": _date(w["period"]),
                    **{k: _finite(w[k]) for k in ("expected", "lo", "hi", "usual", "ratio")},
                    "alarm": _finite(w["alarm"]),
                    "gi_z": _finite(w["gi_z"]),
                    "drivers": {g: _finite(v) for g, v in (w["drivers"] or {}).items()},
                    "reason": w["reason"],
                    "reason_zh": w["reason_zh"],
                }
            )
        return out


def _date(ts) -> str:
    """``YYYY-MM-DD`` of a period start."""
    import pandas as pd

    return pd.Timestamp(ts).strftime("%Y-%m-%d")


def _finite(v):
    """A float for JSON: NaN and infinities (a ratio to a usual level of 0) become None."""
    v = json_scalar(v)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None
