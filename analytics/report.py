"""The weekly report (每周通报): figures, charts and an HTML (or PDF) document.

:func:`weekly_report` takes the incidents, the communities and an ISO week in Beijing time
(``"2026-W47"``: Monday 2026-11-16 00:00 to the next Monday 00:00, UTC+8, printed as
"2026-11-16 – 2026-11-22") and returns a :class:`WeeklyReport` with

* ``figures``: a JSON-ready dict: received (reported in the week), closed in the week
  (``closed_at`` in the week, whatever the intake week), the completion and on-time rates of
  the week's cases, the same by channel, category, department and community, week over week,
  the 12-week trend, the overdue list, top hot spots and the public-opinion section, the
  rate :data:`DEFINITIONS` and the instant they are taken at (``as_of``);
* ``html``: the document, charts (matplotlib) embedded as PNG data URIs, so one file;
* :meth:`WeeklyReport.pdf`: the same document through WeasyPrint (optional dependency).

Completion (办结率), one definition
-----------------------------------
A command center's weekly 通报 compares weeks, departments and communities and is a record
once issued, so its rate must be taken at the same horizon for every week and must not move
afterwards. The report's completion rate is therefore the **completion by week end** (当周办结率):
the share of the week's cases completed (核查结案 or 综合评价) by Sunday 24:00 of that week.
It is the rate of the overview, the group tables, the week-over-week table, public opinion
and the trend chart's solid line: they agree. The same cases' **completion to date**
(累计办结率, taken at the report's instant ``as_of``: for the latest week the data day) rises
towards 100 % as older weeks' cases get closed; it is printed next to it (labelled, dashed in
the trend) to follow up earlier weeks, never compared across weeks. (Before issue 13 the
trend plotted the latter under the plain name 办结率: 2026-W46 showed 99 % in the chart
and 67.0 % in the table.)

Every rate comes from :mod:`layers.supervision` (one definition for the API, the screen and
the report), computed on the state of the cases at an instant (:func:`snapshot`): timestamps
after it are dropped and a case closed later counts as open then. The report's instant
``as_of`` is the end of the week, or the end of the data day (the Beijing day of the latest
timestamp) if the data stop earlier; a week entirely after the data day is refused.

Hot spots: Gi* (:func:`analytics.hotcells.gi_cells`, 500 m fishnet, FDR) over the four weeks
ending with the report week — one week of cases is too thin for a stable pattern. Public
opinion: the week's monitored posts and topics when given (``opinion``: placed and unknown
posts, the top topics by posts in the week and growth, case and reply; issue 14), and the cases
from online channels (:data:`ONLINE_CHANNELS`). Outlook (预判, ``outlook=True``):
next week's expected cases per major category and in all, with 80 % intervals, and the
communities that warn (:func:`analytics.early_warning.early_warnings`), from per-series ETS
forecasts (:mod:`analytics.forecast`; ETS: the best or level with the best at category level
in the backtests, and the model that warns of a rising series, see
:mod:`analytics.early_warning`) of the snapshot's weekly counts up to the report week -- a
partial report week is not used as an origin: the forecast is then made from the week before,
two weeks ahead. No sensitive field is read.
Codes of the catalogue's code lists appear only in ``figures`` (data); the document and the
charts print their zh/en labels.
"""

from __future__ import annotations

import base64
import datetime as dt
import html as html_mod
import io
import re
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
from jinja2 import Template

from analytics.errors import AnalyticsError
from analytics.hotcells import gi_cells, significant_cells
from analytics.palettes import CHART_COLORS, FEATURE_EDGE, MUTED
from layers import supervision
from layers.catalogue import LAYERS
from layers.district import TZ_NAME as TZ
from layers.district import UTM

__all__ = [
    "DEFINITIONS",
    "ONLINE_CHANNELS",
    "WeeklyReport",
    "data_until",
    "snapshot",
    "week_bounds",
    "weekly_report",
]

#: Intake channels counted as online public opinion (舆情): monitoring of Weibo/forums and WeChat.
ONLINE_CHANNELS = ("public_opinion", "wechat")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_INC = LAYERS["incidents"]
_STAMPS = (
    "reported_at",
    "registered_at",
    "dispatched_at",
    "handled_at",
    "closed_at",
    "evaluated_at",
)
_DAY = pd.Timedelta(days=1)
_WEEKDAYS = ("周一 Mon", "周二 Tue", "周三 Wed", "周四 Thu", "周五 Fri", "周六 Sat", "周日 Sun")
TREND_WEEKS = 12

#: The rates the report prints: name (zh, en) and definition (zh, en). Each is printed with
#: the instant it is taken at (``figures["as_of"]``).
DEFINITIONS: dict[str, dict[str, str]] = {
    "completion_rate": {
        "zh": "当周办结率",
        "en": "Completion by week end",
        "zh_text": "本周受理的案件中，截至本周日24:00(数据未到周末时截至数据日)已办结"
        "(核查结案或综合评价)的占比。每周在同一时点计算，周与周、部门与部门可比，"
        "通报发出后不再改变；总体情况、分组表格、环比、网络舆情和趋势图实线均用此口径。",
        "en_text": "share of the cases received in the week that were completed (stage Verified "
        "and closed, or Evaluated) by Sunday 24:00 of that week (by the data day if the data stop "
        "earlier). Taken at the same horizon every week, so weeks, departments and communities "
        "compare and a published figure never changes; used by the overview, the group tables, "
        "week over week, public opinion and the trend's solid line.",
    },
    "completion_rate_as_of": {
        "zh": "累计办结率",
        "en": "Completion to date",
        "zh_text": "同一周受理的案件截至本报告统计时点(本周日24:00，数据未到周末时为数据日)"
        "的办结占比。往周案件随时间推移陆续办结，"
        "此比率趋近100%，只用于跟踪往周案件的后续办结(趋势图虚线)，不作周间比较。",
        "en_text": "share of the same week's cases completed by this report's instant "
        "(Sunday 24:00 of the report week, or the data day if the data stop earlier). It rises "
        "towards 100 % for older weeks as their cases get completed: a follow-up of earlier "
        "weeks (the trend's dashed line), not a comparison between weeks.",
    },
    "on_time_rate": {
        "zh": "按期办结率",
        "en": "On time",
        "zh_text": "本周受理、截至本周日24:00已办结且有处置时限的案件中，"
        "处置完成不晚于时限的占比。",
        "en_text": "among the week's cases completed by Sunday 24:00 that have a time "
        "limit, the share the department had dealt with by the deadline.",
    },
    "closed": {
        "zh": "本周结案",
        "en": "Closed in week",
        "zh_text": "本周内核查结案的案件数，含往周受理的案件(流量，不是办结率的分子)。",
        "en_text": "cases that reached the stage Verified and closed during the week, "
        "whatever week they were "
        "received in (a flow, not the numerator of the completion rate).",
    },
}


def week_bounds(week: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC start and end of ISO ``week`` (``"2026-W47"``) in Beijing time.

    Returns
    -------
    start, end : pandas.Timestamp
        ``[start, end)``; Monday 00:00 Beijing time is Sunday 16:00 UTC, so print the days
        with :func:`_days` (Beijing dates), never the UTC dates of these instants.

    Examples
    --------
    >>> start, end = week_bounds("2026-W47")
    >>> str(start), str(end)
    ('2026-11-15 16:00:00+00:00', '2026-11-22 16:00:00+00:00')
    >>> _days(start, end)
    ('2026-11-16', '2026-11-22')
    """
    m = _WEEK.match(str(week))
    if not m:
        raise AnalyticsError(f"week must look like 2026-W47, got {week!r}")
    try:
        monday = dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as err:
        raise AnalyticsError(f"{week!r} is not an ISO week: {err}") from None
    start = pd.Timestamp(monday).tz_localize(TZ).tz_convert("UTC")
    return start, start + pd.Timedelta(days=7)


def _days(start, end) -> tuple[str, str]:
    """First and last Beijing day of ``[start, end)`` as ``YYYY-MM-DD``."""
    first = pd.Timestamp(start).tz_convert(TZ)
    last = pd.Timestamp(end).tz_convert(TZ) - pd.Timedelta(microseconds=1)
    return first.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")


def _week_label(ts: pd.Timestamp) -> str:
    y, w, _ = ts.tz_convert(TZ).isocalendar()
    return f"{y}-W{w:02d}"


def _local(ts) -> str:
    """An instant as Beijing ISO time (``2026-11-16T00:00:00+08:00``)."""
    return pd.Timestamp(ts).tz_convert(TZ).isoformat()


def _as_of_text(ts) -> str:
    """``2026-11-22 24:00`` for a Beijing midnight (the end of that day), else the minute."""
    t = pd.Timestamp(ts).tz_convert(TZ)
    if t == t.normalize():
        return (t - _DAY).strftime("%Y-%m-%d") + " 24:00"
    return t.strftime("%Y-%m-%d %H:%M")


def data_until(incidents: pd.DataFrame) -> pd.Timestamp | None:
    """The latest timestamp of the incidents (UTC), ``None`` if there is none."""
    stamps = [
        pd.to_datetime(incidents[c], utc=True, format="ISO8601").max()
        for c in _STAMPS
        if c in incidents
    ]
    stamps = [s for s in stamps if not pd.isna(s)]
    return max(stamps) if stamps else None


def snapshot(incidents: pd.DataFrame, at) -> pd.DataFrame:
    """The incidents as they stood at instant ``at`` (UTC).

    Rows reported at or after ``at`` are dropped; timestamps after ``at`` become missing; a
    case whose completion (``closed_at`` / ``evaluated_at``) lies after ``at`` gets status
    ``closed`` if it was closed by then, else ``handling`` (or ``feedback`` when handled).
    """
    at = pd.Timestamp(at)
    df = incidents.copy()
    for c in (*_STAMPS, "deadline"):
        if c in df:
            df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
    df = df[df["reported_at"] < at].copy()
    for c in _STAMPS[1:]:
        if c in df:
            df[c] = df[c].where(df[c] <= at)
    status = df["status"].astype(object).copy()
    ev = status.eq("evaluated") & df["evaluated_at"].isna()
    status[ev] = "closed"
    cl = status.eq("closed") & df["closed_at"].isna()
    status[cl & df["handled_at"].notna()] = "feedback"
    status[cl & df["handled_at"].isna()] = "handling"
    df["status"] = status
    return df


def _in(s: pd.Series, start, end) -> pd.Series:
    t = pd.to_datetime(s, utc=True, format="ISO8601")
    return (t >= start) & (t < end)


def _num(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.integer | int):
        return int(v)
    return round(float(v), 6)


def _labels(field_name: str, code) -> tuple[str, str]:
    """The catalogue's zh and en labels of a code (``—`` for a missing one)."""
    if code is None or (isinstance(code, float) and np.isnan(code)) or code == "":
        return "—", "—"
    f = _INC.field(field_name)
    return f.label(code, "zh"), f.label(code, "en")


def _table(frame: pd.DataFrame, by: str, now) -> list[dict]:
    fig = supervision.figures(frame, by=by, now=now)
    rows = supervision.to_records(fig)
    for r, (_, row) in zip(rows, fig.iterrows(), strict=True):
        for c in ("completion_rate", "due_completion_rate", "on_time_rate"):
            r[c] = _num(row[c])  # 6 digits: 4 would round 0.48551 to "48.5%" when printed
        if by in ("channel", "category", "department"):
            r["label"], r["label_en"] = _labels(by, r[by])
        else:
            r["label"], r["label_en"] = r[by], ""
    return sorted(rows, key=lambda r: (-r["cases"], str(r[by])))


def _summary(frame_all: pd.DataFrame, start, end, as_of) -> dict:
    """Headline figures of the week ``[start, end)`` from the snapshot at ``as_of``."""
    snap = snapshot(frame_all, as_of)
    week = snap[_in(snap["reported_at"], start, end)]
    fig = cast(pd.Series, supervision.figures(week, now=as_of).loc["all"])
    closed = int(_in(snap["closed_at"], start, end).sum())
    overdue_all = supervision.open_cases(snap, now=as_of, overdue_only=True)
    return {
        "received": int(len(week)),
        "closed": closed,
        "completed": int(fig["completed"]),
        "open": int(fig["open"]),
        "overdue": int(fig["overdue"]),
        "completion_rate": _num(fig["completion_rate"]),
        "on_time_rate": _num(fig["on_time_rate"]),
        "median_dispatch_h": _num(fig["median_dispatch_h"]),
        "median_close_h": _num(fig["median_close_h"]),
        "overdue_total": int(len(overdue_all)),
        "as_of": _local(as_of),
        "as_of_text": _as_of_text(as_of),
        "_snap": snap,
        "_week": week,
        "_overdue": overdue_all,
    }


def _completion(snap: pd.DataFrame, start, end, at) -> float | None:
    week = snap[_in(snap["reported_at"], start, end)]
    if not len(week):
        return None
    return _num(supervision.figures(week, now=at).loc["all", "completion_rate"])


def _trend(incidents, snap, start, as_of, first_reported) -> list[dict]:
    """The :data:`TREND_WEEKS` weeks ending with the report week (none before the data)."""
    rows = []
    for k in range(TREND_WEEKS - 1, -1, -1):
        ws = start - pd.Timedelta(days=7 * k)
        we = ws + pd.Timedelta(days=7)
        if first_reported is not None and we <= first_reported:
            continue
        at = min(we, as_of)
        first, last = _days(ws, we)
        rows.append(
            {
                "week": _week_label(ws),
                "first_day": first,
                "last_day": last,
                "received": int(_in(snap["reported_at"], ws, we).sum()),
                "completion_rate": _completion(snapshot(incidents, at), ws, we, at),
                "completion_rate_as_of": _completion(snap, ws, we, as_of),
                "as_of": _local(at),
            }
        )
    return rows


@dataclass
class WeeklyReport:
    """A weekly report: ``figures`` (JSON-ready), ``html`` (one self-contained file).

    ``charts`` holds the matplotlib figures when :func:`weekly_report` was asked to keep them
    (``keep_charts=True``; the caller closes them), else it is empty.
    """

    week: str
    figures: dict
    html: str
    charts: dict = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        """One line for a terminal: the week's days, and each rate named with its as-of.

        Examples
        --------
        ``2026-W47 (2026-11-16 – 2026-11-22): received 138, closed in week 104, completion by
        week end 48.6% as of 2026-11-22 24:00, overdue 23``
        """
        f = self.figures
        return (
            f"{self.week} ({f['first_day']} – {f['last_day']}"
            + (", partial week" if f["partial_week"] else "")
            + f"): received {f['received']}, closed in week {f['closed']}, "
            f"{DEFINITIONS['completion_rate']['en'].lower()} {_pct(f['completion_rate'])} "
            f"as of {f['as_of_text']}, overdue {f['overdue_total']}"
        )

    def pdf(self, path) -> str:
        """Write the report as PDF with WeasyPrint (``pip install weasyprint``)."""
        try:
            import weasyprint
        except ImportError as err:
            raise AnalyticsError("PDF output needs weasyprint (pip install weasyprint)") from err
        weasyprint.HTML(string=self.html).write_pdf(str(path))
        return str(path)


def weekly_report(
    incidents,
    communities=None,
    week: str | None = None,
    *,
    hotspot_weeks: int = 4,
    top: int = 5,
    max_overdue: int = 50,
    charts: bool = True,
    keep_charts: bool = False,
    outlook: bool = True,
    key_tasks: tuple[Any, Any] | None = None,
    opinion: tuple[Any, Any] | None = None,
    top_topics: int = 10,
) -> WeeklyReport:
    """Build the weekly report of ``week`` (see the module docstring).

    Parameters
    ----------
    incidents : GeoDataFrame
        The incidents layer (all of it: the overdue list and the previous week need history).
    communities : GeoDataFrame, optional
        Community polygons (names in tables; the hot spot map's outlines).
    week : str, optional
        ISO week in Beijing time (``"2026-W47"``); default the week of the latest report.
    hotspot_weeks : int, default 4
        Weeks of cases (ending with ``week``) in the hot spot analysis.
    top : int, default 5
        Hot spots listed.
    max_overdue : int, default 50
        Rows of the overdue list printed (the count is always complete).
    charts : bool, default True
        Draw the matplotlib charts.
    keep_charts : bool, default False
        Also return the matplotlib figures (``WeeklyReport.charts``) for inspection.
    outlook : bool, default True
        Add the outlook section (next week's forecast and the warnings; ``figures["outlook"]``,
        ``None`` when False).
    key_tasks : (GeoDataFrame, DataFrame[, DataFrame]), optional
        The ``key_tasks`` and ``key_task_milestones`` rows, and the audit rows
        (:func:`layers.key_task_figures.audit`): adds the key-work section
        (``figures["key_tasks"]``: :func:`layers.key_task_figures.summary` as of ``as_of``,
        tasks issued after it left out; with the audit rows each task's status and
        escalation as they were at ``as_of`` and the week's escalation entries; ``None``
        without them).

    opinion : (DataFrame, DataFrame), optional
        The ``public_opinion`` posts and ``opinion_topics`` rows (public fields suffice):
        adds the week's topics to the public-opinion section
        (``figures["public_opinion"]["topics"]``: :func:`_opinion_topics`; ``None`` without
        them).

    top_topics : int, default 10
        Topics listed in the public-opinion section.

    Returns
    -------
    WeeklyReport
    """
    until = data_until(incidents)
    if week is None:
        latest = pd.to_datetime(incidents["reported_at"], utc=True, format="ISO8601").max()
        if pd.isna(latest):
            raise AnalyticsError("no incidents to report on")
        week = _week_label(latest)
    start, end = week_bounds(week)
    first_day, last_day = _days(start, end)
    # the data day: the Beijing day of the latest timestamp; rates are taken at its end
    data_end = end if until is None else until.tz_convert(TZ).normalize().tz_convert("UTC") + _DAY
    if data_end <= start:
        raise AnalyticsError(
            f"{week} ({first_day} – {last_day}) lies after the data, which end on "
            f"{_days(data_end - _DAY, data_end)[0]} ({_week_label(data_end - _DAY)})"
        )
    as_of = min(end, data_end)
    prev_start = start - pd.Timedelta(days=7)
    cur = _summary(incidents, start, end, as_of)
    prev = _summary(incidents, prev_start, start, min(start, as_of))
    snap, wk, overdue = cur.pop("_snap"), cur.pop("_week"), cur.pop("_overdue")
    for k in ("_snap", "_week", "_overdue"):
        prev.pop(k)
    prev["completion_rate_as_of"] = _completion(snap, prev_start, start, as_of)
    prev["first_day"], prev["last_day"] = _days(prev_start, start)
    cur["completion_rate_as_of"] = cur["completion_rate"]
    names = {}
    if communities is not None:
        names = dict(zip(communities["code"], communities["name"], strict=False))
    by = {b: _table(wk, b, as_of) for b in ("channel", "category", "department", "community")}
    for r in by["community"]:
        r["label"] = names.get(r["community"], r["community"])
    wow = {}
    for k in ("received", "closed", "completion_rate", "on_time_rate", "overdue_total"):
        a, b = cur[k], prev[k]
        wow[k] = None if a is None or b is None else _num(a - b)
    od = overdue.sort_values("deadline")
    od_rows = []
    for _, r in od.head(max_overdue).iterrows():
        cat, cat_en = _labels("category", r["category"])
        dep, dep_en = _labels("department", r["department"])
        od_rows.append(
            {
                "case_no": r["case_no"],
                "title": r["title"],
                "category": cat,
                "category_en": cat_en,
                "department": dep,
                "department_en": dep_en,
                "community": names.get(r["community_code"], r["community_code"]),
                "reported_at": _bj(r["reported_at"]),
                "deadline": _bj(r["deadline"]),
                "overdue_h": round((as_of - r["deadline"]) / pd.Timedelta(hours=1), 1),
            }
        )
    opinion_frames, online = opinion, wk[wk["channel"].isin(ONLINE_CHANNELS)]
    online_cases = {
        "cases": int(len(online)),
        "by_channel": {c: int((online["channel"] == c).sum()) for c in ONLINE_CHANNELS},
        "channels": [
            {
                "channel": c,
                "label": _labels("channel", c)[0],
                "label_en": _labels("channel", c)[1],
                "cases": int((online["channel"] == c).sum()),
            }
            for c in ONLINE_CHANNELS
        ],
        "completion_rate": _num(
            supervision.figures(online, now=as_of).loc["all", "completion_rate"]
        ),
        "categories": _table(online, "category", as_of) if len(online) else [],
        "rows": [
            {
                "case_no": r["case_no"],
                "title": r["title"],
                "channel": _labels("channel", r["channel"])[0],
                "channel_en": _labels("channel", r["channel"])[1],
                "status": _labels("status", r["status"])[0],
                "status_en": _labels("status", r["status"])[1],
                "community": names.get(r["community_code"], r["community_code"]),
            }
            for _, r in online.sort_values("reported_at").head(30).iterrows()
        ],
    }
    hs_start = end - pd.Timedelta(days=7 * hotspot_weeks)
    hs_frame = snap[_in(snap["reported_at"], hs_start, end)]
    hotspots, hot_cells = _hotspots(hs_frame, communities, top)
    first_reported = pd.to_datetime(incidents["reported_at"], utc=True, format="ISO8601").min()
    trend = _trend(
        incidents, snap, start, as_of, None if pd.isna(first_reported) else first_reported
    )
    figures = {
        "week": week,
        "start": _local(start),
        "end": _local(end),
        "first_day": first_day,
        "last_day": last_day,
        "as_of": _local(as_of),
        "as_of_text": _as_of_text(as_of),
        "data_until": None if until is None else _local(until),
        "partial_week": bool(as_of < end),
        "definitions": DEFINITIONS,
        "previous_week": _week_label(prev_start),
        **cur,
        "previous": prev,
        "week_over_week": wow,
        "by": by,
        "trend": trend,
        "overdue_list": od_rows,
        "public_opinion": {
            **online_cases,
            "topics": None
            if opinion_frames is None
            else _opinion_topics(*opinion_frames, start, min(end, as_of), names, top_topics),
        },
        "hotspots": hotspots,
        "hotspot_window": [_local(hs_start), _local(end)],
        "hotspot_days": list(_days(hs_start, end)),
        "outlook": _outlook(snap, start, end, as_of, names) if outlook else None,
        "key_tasks": (
            None if key_tasks is None else _key_tasks(*key_tasks, as_of=as_of, since=start)
        ),
    }
    figs = _draw_charts(snap, by, figures, hot_cells, hs_frame, communities) if charts else {}
    images = {k: _png(v, close=not keep_charts) for k, v in figs.items()}
    doc = _TEMPLATE.render(
        f=figures,
        d=DEFINITIONS,
        img=images,
        pct=_pct,
        num=_fmt,
        e=html_mod.escape,
        md=lambda day: day[5:],
    )
    return WeeklyReport(week, figures, doc, figs if keep_charts else {})


#: the outlook's model and interval level (see the module docstring)
OUTLOOK_MODEL, OUTLOOK_LEVEL = "ets", 0.8


def _outlook(snap: pd.DataFrame, start, end, as_of, names: dict) -> dict:
    """Next week's forecast by major category and in all, and the communities that warn.

    Only ``snap`` (the cases as they stood at ``as_of``) reported before ``end`` is counted.
    """
    from analytics.early_warning import weekly_outlook

    partial = bool(as_of < end)
    origin_start = start - pd.Timedelta(days=7) if partial else start
    h = 2 if partial else 1
    target = end  # the week after the report week
    out: dict[str, Any] = {
        "model": OUTLOOK_MODEL,
        "level": OUTLOOK_LEVEL,
        "week": _week_label(target),
        "first_day": _days(target, target + pd.Timedelta(days=7))[0],
        "last_day": _days(target, target + pd.Timedelta(days=7))[1],
        "origin_week": _week_label(origin_start),
        "horizon": h,
        "categories": [],
        "total": None,
        "warnings": [],
        "note": None,
    }
    origin = pd.Timestamp(origin_start.tz_convert(TZ).date())
    try:
        found = weekly_outlook(
            snap, origin, horizon=h, model=OUTLOOK_MODEL, level=OUTLOOK_LEVEL, names=names
        )
    except AnalyticsError as err:  # too short a history: the section says so
        out["note"] = str(err)
    else:
        out.update({k: found[k] for k in ("categories", "total", "warnings")})
    return out


def _opinion_topics(posts, topics, start, until, names: dict, top: int) -> dict:
    """The week's online posts and topics (网络舆情, issue 14), as they stood at ``until``.

    Posts of the week are those posted in ``[start, until)``. ``placed`` posts have a place
    (``place_id``), ``unknown`` ones none (the geoparser was not sure); the same for the
    actionable ones. A topic of the week has posts in the week; ``top`` of them are listed
    by their posts in the week, then growth
    (:func:`analytics.opinion.hot.hot_topics`: the week against the week before), with the
    category, community, whether a case was opened (``case_id``), the topic's status and
    its reply.
    """
    from analytics.opinion.hot import hot_topics

    t = pd.to_datetime(posts["posted_at"], utc=True, format="ISO8601")
    wk = posts[((t >= start) & (t < until)).to_numpy()]
    placed = wk["place_id"].notna()
    act = wk["actionable"].fillna(False).astype(bool)
    eps = pd.Timedelta(microseconds=1)  # hot_topics' windows are (since, until]
    hot = hot_topics(posts, topics, since=start - eps, until=until - eps, limit=None)
    cat = LAYERS["public_opinion"].field("category")
    status = LAYERS["opinion_topics"].field("status")
    rows = []

    def text(v) -> str | None:
        return None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

    for r in hot.head(top).to_dict("records"):
        case, note, st = text(r.get("case_id")), text(r.get("reply_note")), text(r.get("status"))
        comm, c = text(r["community_code"]), text(r["category"])
        rows.append(
            {
                "topic_id": r["topic_id"],
                "category": c,
                "category_label": cat.label(c, "zh") if c else "—",
                "category_en": cat.label(c, "en") if c else "",
                "community": names.get(comm, comm) or "—",
                "posts_week": int(r["posts_recent"]),
                "posts_before": int(r["posts_before"]),
                "growth": round(float(r["growth"]), 2),
                "posts": int(r["posts"]),
                "case_id": case,
                "case_opened": case is not None,
                "status": st,
                "status_label": status.label(st, "zh") if st else "—",
                "status_en": status.label(st, "en") if st else "",
                "reply_note": note,
            }
        )
    return {
        "posts": int(len(wk)),
        "placed": int(placed.sum()),
        "unknown": int((~placed).sum()),
        "actionable": int(act.sum()),
        "actionable_placed": int((act & placed).sum()),
        "actionable_unknown": int((act & ~placed).sum()),
        "topics": int(len(hot)),
        "new_topics": int((pd.to_datetime(hot["first_at"], utc=True) >= start).sum()),
        "cases_opened": int(hot["case_id"].notna().sum()) if "case_id" in hot else 0,
        "top": rows,
    }


def _key_tasks(tasks, milestones, history=None, *, as_of, since) -> dict:
    """The key-work section: :func:`layers.key_task_figures.summary` at ``as_of``, of the
    tasks issued (started) by then, with zh/en labels of the departments and codes.

    Milestones count as done only if done by ``as_of``'s day. With the audit rows
    (``history``) a task's status and escalation are those it had at ``as_of`` (a past
    week's report shows the week's, not today's), and the escalation entries recorded in
    the week (``since`` … ``as_of``) are counted; without them the stored ones.
    """
    from layers import key_task_figures as ktf

    out = ktf.summary(tasks, milestones, now=as_of, history=history, since=since)
    for r in out["ranking"]:
        r["label"], r["label_en"] = _labels("department", r["department"])
    for r in out["overdue_tasks"]:
        r["department"], r["department_en"] = _labels("department", r["lead_department"])
        r["status_label"], r["status_en"] = _key_label("status", r["status"])
        r["escalation_label"], r["escalation_en"] = _key_label("escalation", r.get("escalation"))
    return out


def _key_label(field_name: str, code) -> tuple[str, str]:
    f = LAYERS["key_tasks"].field(field_name)
    for c in f.codes or ():
        if c.code == code:
            return c.zh, c.en
    return ("—", "") if code is None else (str(code), "")


def _bj(ts) -> str:
    if ts is None or pd.isna(ts):
        return ""
    return pd.Timestamp(ts).tz_convert(TZ).strftime("%Y-%m-%d %H:%M")


def _hotspots(frame, communities, top):
    cells = gi_cells(frame)
    if cells is None:
        return [], None
    pts = frame.to_crs(UTM)
    comm = communities.to_crs(UTM) if communities is not None else None
    rows = []
    for _, c in significant_cells(cells, "hot", top=top).iterrows():
        inside = pts[pts.within(c.geometry)]
        cat = inside["category"].value_counts()
        centre = c.geometry.centroid
        name = ""
        if comm is not None and len(comm):
            name = comm["name"].iloc[int(np.argmin(comm.distance(centre).to_numpy()))]
        lon, lat = _lonlat(centre)
        zh, en = _labels("category", cat.index[0]) if len(cat) else ("", "")
        rows.append(
            {
                "community": name,
                "count": c["count"],
                "gi_z": c["gi_z"],
                "gi_bin": c["gi_bin"],
                "top_category": zh,
                "top_category_en": en,
                "lon": round(lon, 5),
                "lat": round(lat, 5),
            }
        )
    return rows, cells


def _lonlat(pt):
    from pyproj import Transformer

    t = Transformer.from_crs(UTM, 4326, always_xy=True)
    return t.transform(pt.x, pt.y)


def _pct(v) -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v * 100:.1f}%"


def _fmt(v, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


# --- Charts -------------------------------------------------------------------------------------

_FONTS = [
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "DejaVu Sans",
]


def _png(fig, close: bool = True) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _hbar(plt, rows: list[dict], title: str, colors: list[str]):
    """Horizontal bars of group rows, bilingual labels on the y axis, counts at the bar ends."""
    n = len(rows)
    fig, ax = plt.subplots(figsize=(6.4, 0.75 + 0.26 * max(n, 1)), layout="constrained")
    y = np.arange(n)
    bars = ax.barh(y, [r["cases"] for r in rows], color=colors, height=0.7)
    labels = [f"{r['label']} {r['label_en']}".strip() for r in rows]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.bar_label(bars, fontsize=7, padding=2)
    ax.set_xlim(0, max([r["cases"] for r in rows] + [1]) * 1.15)
    ax.set_xlabel("受理 Cases", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def _draw_charts(snap, by, f, hot_cells, hs_frame, communities) -> dict[str, Any]:
    """The report's charts as matplotlib figures (constrained layout, legends outside)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.family"] = ["sans-serif"]
    plt.rcParams["font.sans-serif"] = _FONTS
    plt.rcParams["axes.unicode_minus"] = False
    out: dict[str, Any] = {}
    span = f"{f['first_day']} – {f['last_day']}"
    # daily received vs closed, Beijing days
    days = pd.date_range(pd.Timestamp(f["start"]), periods=7, freq="D")
    rec = pd.to_datetime(snap["reported_at"], utc=True).dt.tz_convert(TZ).dt.normalize()
    clo = pd.to_datetime(snap["closed_at"], utc=True).dt.tz_convert(TZ).dt.normalize()
    r = rec.value_counts().reindex(days, fill_value=0)
    c = clo.value_counts().reindex(days, fill_value=0)
    fig, ax = plt.subplots(figsize=(6.4, 3.0), layout="constrained")
    x = np.arange(7)
    ax.bar(x - 0.2, r.to_numpy(), 0.4, label="受理 Received", color=CHART_COLORS["received"])
    ax.bar(x + 0.2, c.to_numpy(), 0.4, label="结案 Closed", color=CHART_COLORS["closed"])
    ax.set_xticks(x, [f"{d:%m-%d}\n{_WEEKDAYS[i]}" for i, d in enumerate(days)], fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title(f"每日受理与结案 Daily: Received, Closed · {span}", fontsize=10)
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=8)
    out["daily"] = fig
    # 12-week trend: received (bars), the two completion rates (lines)
    tr = f["trend"]
    x = np.arange(len(tr))
    fig, ax = plt.subplots(figsize=(6.4, 3.3), layout="constrained")
    ax.bar(
        x,
        [t["received"] for t in tr],
        color=CHART_COLORS["weekly_received"],
        label="受理 Received (左轴 left axis)",
    )
    ax.set_xticks(x, [f"W{t['week'][-2:]}\n{t['first_day'][5:]}" for t in tr], fontsize=7)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylabel("受理 Cases", fontsize=8)
    ax2 = ax.twinx()

    def pct(key):
        return [np.nan if t[key] is None else t[key] * 100 for t in tr]

    d = DEFINITIONS
    ax2.plot(
        x,
        pct("completion_rate"),
        color=CHART_COLORS["completion"],
        marker="o",
        markersize=4,
        label=f"{d['completion_rate']['zh']} {d['completion_rate']['en']} %",
    )
    ax2.plot(
        x,
        pct("completion_rate_as_of"),
        color=MUTED,
        linestyle="--",
        marker="s",
        markersize=3,
        label=f"{d['completion_rate_as_of']['zh']} {d['completion_rate_as_of']['en']}"
        f" ({f['as_of_text']}) %",
    )
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("%", fontsize=8)
    ax2.tick_params(axis="y", labelsize=8)
    ax.set_title(f"近{len(tr)}周趋势 Last {len(tr)} weeks (周一日期 Monday dates)", fontsize=10)
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=7)
    out["trend"] = fig
    # by channel, by category (top 12)
    ch = by["channel"]
    if ch:
        out["channel"] = _hbar(
            plt, ch, "按来源渠道 By channel", [CHART_COLORS["channel"]] * len(ch)
        )
    cats = by["category"][:12]
    if cats:
        colors = {c.code: c.color or MUTED for c in _INC.field("category").codes or ()}
        more = len(by["category"]) > len(cats)
        out["category"] = _hbar(
            plt,
            cats,
            "按类别 By category" + (f" (前{len(cats)} top {len(cats)})" if more else ""),
            [colors.get(x["category"], MUTED) for x in cats],
        )
    # hot spot map
    if hot_cells is not None:
        fig, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
        if communities is not None:
            communities.to_crs(UTM).boundary.plot(ax=ax, color=MUTED, linewidth=0.5)
        sig = significant_cells(hot_cells, "significant")
        if len(sig):
            sig.plot(ax=ax, color=sig["color"].tolist(), alpha=0.85)
        hs_frame.to_crs(UTM).plot(ax=ax, markersize=2, color=FEATURE_EDGE, alpha=0.5)
        b = hs_frame.to_crs(UTM).total_bounds
        pad = 2000
        ax.set_xlim(b[0] - pad, b[2] + pad)
        ax.set_ylim(b[1] - pad, b[3] + pad)
        ax.set_axis_off()
        hs_first, hs_last = f["hotspot_days"]
        weeks = round(
            (pd.Timestamp(f["hotspot_window"][1]) - pd.Timestamp(f["hotspot_window"][0])).days / 7
        )
        ax.set_title(
            f"热点 (Gi*, 近{weeks}周) Hot spots, last {weeks} weeks · {hs_first} – {hs_last}",
            fontsize=10,
        )
        out["hotspots"] = fig
    return out


_TEMPLATE = Template("""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>天涯区联合指挥中心周报 {{ f.week }} ({{ f.first_day }} – {{ f.last_day }})</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:24px;color:#222;
 max-width:900px}
h1{font-size:22px;border-bottom:3px solid #c62828;padding-bottom:6px}
h2{font-size:17px;margin-top:26px;border-left:4px solid #1976d2;padding-left:8px}
table{border-collapse:collapse;width:100%;font-size:12px;margin:6px 0}
caption{text-align:left;color:#666;font-size:11px;padding:2px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th:first-child,td:first-child{text-align:left}
#overdue :is(th,td),#opinion-cases :is(th,td){text-align:left}
.kpi{display:flex;gap:10px;flex-wrap:wrap}
.kpi div{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:22px}
.small,.en,.asof{color:#666;font-size:11px}
.en,.asof{display:block}
dl.defs{font-size:12px;margin:4px 0}dl.defs dt{font-weight:bold;margin-top:4px}
dl.defs dd{margin:0 0 0 14px}
img{max-width:100%}
@page{size:A4;margin:14mm}
</style></head><body>
{% macro lab(zh, en) %}{{ e(zh) }}{% if en and en != zh %}<span class="en">{{ e(en) }}</span>{%
 endif %}{% endmacro %}
{% macro asof(at) %}<span class="asof">截至 as of {{ at }}</span>{% endmacro %}
<h1>天涯区联合指挥中心 案件办理周报<br><span class="small" id="week-range">Tianya joint command
 center weekly report · {{ f.week }} · {{ f.first_day }} (周一 Mon) – {{ f.last_day }} (周日 Sun),
 北京时间 Beijing time (UTC+8)</span></h1>
{% if f.partial_week %}<p class="small" id="partial"><b>本周数据截至 {{ f.as_of_text }}，
 非完整周。</b> The data end on {{ f.as_of_text }}: this week is not complete.</p>{% endif %}
<p class="small">样例数据为程序生成的模拟数据。Sample data are synthetic.
 所有比率截至 {{ f.as_of_text }} (北京时间)。All rates as of {{ f.as_of_text }} Beijing time.</p>
<h2>口径 Definitions</h2>
<dl class="defs" id="definitions">
{% for key in ['completion_rate', 'completion_rate_as_of', 'on_time_rate', 'closed'] %}
<dt id="def-{{ key }}">{{ d[key].zh }} {{ d[key].en }}</dt>
<dd>{{ d[key].zh_text }}<br>{{ d[key].en_text }}</dd>{% endfor %}
<dt>为何采用当周办结率 Why completion by week end</dt>
<dd>周报用于周与周、部门与部门比较和督办，比率须在同一时点计算且发出后不变；累计办结率对往周总是更高
 (往周案件已有更多时间办理)，故只作跟踪。A weekly report compares weeks and departments and is a
 record once issued: its rate must be taken at the same horizon every week and never change
 afterwards. Completion to date is always higher for older weeks (their cases had
 more time), so it is shown for follow-up only.</dd>
</dl>
<h2>一、总体情况 Overview</h2>
<div class="kpi" id="kpi">
<div>受理 Received<b id="received">{{ num(f.received) }}</b></div>
<div>{{ d.closed.zh }} {{ d.closed.en }}<b id="closed">{{ num(f.closed) }}</b></div>
<div>{{ d.completion_rate.zh }} {{ d.completion_rate.en }}
<b id="completion_rate">{{ pct(f.completion_rate) }}</b>{{ asof(f.as_of_text) }}</div>
<div>{{ d.on_time_rate.zh }} {{ d.on_time_rate.en }}
<b id="on_time_rate">{{ pct(f.on_time_rate) }}</b>{{ asof(f.as_of_text) }}</div>
<div>超期未办结 Overdue<b id="overdue_total">{{ num(f.overdue_total) }}</b>{{
 asof(f.as_of_text) }}</div>
</div>
<table id="wow"><tr><th>指标 Measure</th>
<th>{{ f.week }}<span class="en">{{ md(f.first_day) }} – {{ md(f.last_day) }}</span></th>
<th>{{ f.previous_week }}<span class="en">{{ md(f.previous.first_day) }} –
 {{ md(f.previous.last_day) }}</span></th><th>环比 Change</th></tr>
<tr><td>受理 Received</td><td>{{ num(f.received) }}</td><td>{{ num(f.previous.received) }}</td>
<td>{{ '%+d' % f.week_over_week.received }}</td></tr>
<tr><td>{{ d.closed.zh }} {{ d.closed.en }}</td><td>{{ num(f.closed) }}</td>
<td>{{ num(f.previous.closed) }}</td><td>{{ '%+d' % f.week_over_week.closed }}</td></tr>
<tr id="wow-completion"><td>{{ d.completion_rate.zh }} {{ d.completion_rate.en }}
<span class="en">各周截至该周日24:00 each week as of its Sunday 24:00</span></td>
<td>{{ pct(f.completion_rate) }}{{ asof(f.as_of_text) }}</td>
<td>{{ pct(f.previous.completion_rate) }}{{ asof(f.previous.as_of_text) }}</td>
<td>{% if f.week_over_week.completion_rate is not none %}{{ '%+.1f' %
 (f.week_over_week.completion_rate * 100) }} pp{% else %}—{% endif %}</td></tr>
<tr id="wow-completion-as-of"><td>{{ d.completion_rate_as_of.zh }}
 {{ d.completion_rate_as_of.en }}<span class="en">两周均截至 both as of {{ f.as_of_text }}
</span></td>
<td>{{ pct(f.completion_rate_as_of) }}</td><td>{{ pct(f.previous.completion_rate_as_of) }}</td>
<td>不作比较 not compared</td></tr>
<tr><td>{{ d.on_time_rate.zh }} {{ d.on_time_rate.en }}</td>
<td>{{ pct(f.on_time_rate) }}{{ asof(f.as_of_text) }}</td>
<td>{{ pct(f.previous.on_time_rate) }}{{ asof(f.previous.as_of_text) }}</td>
<td>{% if f.week_over_week.on_time_rate is not none %}{{ '%+.1f' %
 (f.week_over_week.on_time_rate * 100) }} pp{% else %}—{% endif %}</td></tr>
<tr><td>超期未办结 Overdue</td><td>{{ num(f.overdue_total) }}{{ asof(f.as_of_text) }}</td>
<td>{{ num(f.previous.overdue_total) }}{{ asof(f.previous.as_of_text) }}</td>
<td>{{ '%+d' % f.week_over_week.overdue_total }}</td></tr></table>
<p>派遣中位时长 Median time to dispatch {{ num(f.median_dispatch_h) }} h ·
 结案中位时长 Median time to close {{ num(f.median_close_h) }} h
 (本周受理、截至 {{ f.as_of_text }} Cases received in the week, as of {{ f.as_of_text }})</p>
{% if img.daily %}<img src="{{ img.daily }}" alt="每日受理与结案 Daily: Received, Closed">{%
 endif %}
{% if img.trend %}<img src="{{ img.trend }}" alt="近12周趋势 Trend">
<p class="small">趋势图实线为{{ d.completion_rate.zh }}(各周截至该周日24:00，与上表一致)，虚线为{{
 d.completion_rate_as_of.zh }}(截至 {{ f.as_of_text }})。Solid line: {{ d.completion_rate.en }}
 (each week as of its Sunday 24:00, as in the tables); dashed: {{ d.completion_rate_as_of.en }}
 ({{ f.as_of_text }}).</p>{% endif %}
{% macro table(rows, key, title, id) %}
<h2>{{ title }}</h2>
<table id="{{ id }}"><caption>比率为{{ d.completion_rate.zh }}与{{ d.on_time_rate.zh }}，截至
 {{ f.as_of_text }}。Rates: {{ d.completion_rate.en }} and {{ d.on_time_rate.en }}, as of
 {{ f.as_of_text }}.</caption>
<tr><th>{{ key }}</th><th>受理 Cases</th><th>已办结 Completed</th>
<th>{{ d.completion_rate.zh }} {{ d.completion_rate.en }}</th>
<th>{{ d.on_time_rate.zh }} {{ d.on_time_rate.en }}</th><th>超期 Overdue</th></tr>
{% for r in rows %}<tr><td>{{ lab(r.label or '—', r.label_en) }}</td><td>{{ r.cases }}</td>
<td>{{ r.completed }}</td><td>{{ pct(r.completion_rate) }}</td><td>{{ pct(r.on_time_rate) }}</td>
<td>{{ r.overdue }}</td></tr>{% endfor %}</table>
{% endmacro %}
{{ table(f.by.channel, '渠道 Channel', '二、按来源渠道 By channel', 'by-channel') }}
{% if img.channel %}<img src="{{ img.channel }}" alt="按来源渠道 By channel">{% endif %}
{{ table(f.by.category, '类别 Category', '三、按案件类别 By category', 'by-category') }}
{% if img.category %}<img src="{{ img.category }}" alt="按类别 By category">{% endif %}
{{ table(f.by.department, '部门 Department', '四、按责任部门 By department', 'by-department') }}
{{ table(f.by.community, '社区(村) Community', '五、按社区(村) By community', 'by-community') }}
<h2>六、超期督办清单 Overdue cases for supervision ({{ f.overdue_total }},
 截至 as of {{ f.as_of_text }})</h2>
<table id="overdue"><tr><th>案卷编号 Case</th><th>标题 Title</th><th>类别 Category</th>
<th>责任部门 Department</th><th>社区(村) Community</th><th>处置时限 Deadline</th>
<th>超期(小时) Overdue (h)</th></tr>
{% for r in f.overdue_list %}<tr><td>{{ r.case_no }}</td><td>{{ e(r.title) }}</td>
<td>{{ lab(r.category, r.category_en) }}</td><td>{{ lab(r.department, r.department_en) }}</td>
<td>{{ e(r.community) }}</td><td>{{ r.deadline }}</td><td>{{ r.overdue_h }}</td></tr>{% endfor %}
</table>
<h2>七、热点区域 Top hot spots ({{ f.hotspot_days[0] }} – {{ f.hotspot_days[1] }})</h2>
<table id="hotspots"><tr><th>社区(村) Community</th><th>案件 Cases</th><th>Gi* z</th>
<th>主要类别 Main category</th><th>位置 lon, lat</th></tr>
{% for r in f.hotspots %}<tr><td>{{ e(r.community) }}</td><td>{{ r.count }}</td>
<td>{{ r.gi_z }}</td><td>{{ lab(r.top_category, r.top_category_en) }}</td>
<td>{{ r.lon }}, {{ r.lat }}</td></tr>{% endfor %}</table>
{% if img.hotspots %}<img src="{{ img.hotspots }}" alt="热点 Hot spots">{% endif %}
<h2>八、网络舆情 Public opinion</h2>
{% set op = f.public_opinion %}
{% if op.topics %}{% set ot = op.topics %}
<p id="opinion-posts">本周监测帖文 {{ ot.posts }} 条，识别出地点 {{ ot.placed }} 条、地点不明
 {{ ot.unknown }} 条；需处置 {{ ot.actionable }} 条(地点明确 {{ ot.actionable_placed }}、不明
 {{ ot.actionable_unknown }})，涉及话题 {{ ot.topics }} 个(新话题 {{ ot.new_topics }} 个，已立案
 {{ ot.cases_opened }} 个)。<br><span class="small">{{ ot.posts }} posts monitored this week:
 {{ ot.placed }} placed, {{ ot.unknown }} with no known place; {{ ot.actionable }} actionable
 ({{ ot.actionable_placed }} placed, {{ ot.actionable_unknown }} unknown) in {{ ot.topics }}
 topics ({{ ot.new_topics }} new, {{ ot.cases_opened }} with a case opened).</span></p>
<table id="opinion-topics"><caption>本周热点话题：按本周帖文数，其次按增长(本周帖文数 /
 max(1, 上周帖文数))排序。Top topics of the week: by posts this week, then growth (posts this week
 / max(1, posts the week before)).</caption>
<tr><th>话题 Topic</th><th>类别 Category</th><th>社区(村) Community</th><th>本周 Week</th>
<th>上周 Before</th><th>增长 Growth</th><th>累计 Posts</th><th>立案 Case</th>
<th>状态 Status</th><th>回应 Reply</th></tr>
{% for r in ot.top %}<tr><td>{{ r.topic_id }}</td><td>{{ lab(r.category_label, r.category_en)
 }}</td><td>{{ e(r.community) }}</td><td>{{ r.posts_week }}</td><td>{{ r.posts_before }}</td>
<td>{{ '%.1f' % r.growth }}</td><td>{{ r.posts }}</td><td>{{ r.case_id or '未立案 none' }}</td>
<td>{{ lab(r.status_label, r.status_en) }}</td><td style="text-align:left">{{ e(r.reply_note or
 '—') }}</td></tr>{% endfor %}</table>
<h3>网络渠道受理案件 Cases from online channels</h3>{% endif %}
<p id="opinion">本周网络渠道({% for c in op.channels %}{{ c.label }}{% if not loop.last %}、{%
 endif %}{% endfor %})受理 {{ op.cases }} 件({% for c in op.channels %}{{ c.label }} {{ c.cases
 }} 件{% if not loop.last %}，{% endif %}{% endfor %})，{{ d.completion_rate.zh }}
 {{ pct(op.completion_rate) }}(截至 {{ f.as_of_text }})。<br><span class="small">Online
 channels received {{ op.cases }} cases ({% for c in op.channels %}{{ c.label_en }} {{ c.cases
 }}{% if not loop.last %}, {% endif %}{% endfor %}); {{ d.completion_rate.en }}
 {{ pct(op.completion_rate) }} as of {{ f.as_of_text }}.</span></p>
<table id="opinion-cases"><tr><th>案卷编号 Case</th><th>标题 Title</th><th>渠道 Channel</th>
<th>阶段 Stage ({{ f.as_of_text }})</th><th>社区(村) Community</th></tr>
{% for r in op.rows %}<tr><td>{{ r.case_no }}</td><td>{{ e(r.title) }}</td>
<td>{{ lab(r.channel, r.channel_en) }}</td><td>{{ lab(r.status, r.status_en) }}</td>
<td>{{ e(r.community) }}</td></tr>{% endfor %}
</table>
{% if f.outlook %}{% set o = f.outlook %}
<h2>九、预判 Outlook: {{ o.week }} ({{ o.first_day }} – {{ o.last_day }})</h2>
<p class="small" id="outlook-method">逐序列指数平滑(ETS)预测，{{ (o.level * 100) | round | int }}%
 预测区间；数据截至 {{ f.as_of_text }}{% if o.horizon > 1 %}，本周不完整，自 {{ o.origin_week }}
 起预测 {{ o.horizon }} 周{% endif %}。预警：区间上限超过该社区按近13周平均水平
 百分之一概率才会达到的件数(至少3件)。Per-series exponential smoothing (ETS),
 {{ (o.level * 100) | round | int }} % intervals, data as of {{ f.as_of_text }}{%
 if o.horizon > 1 %} (the report week is not complete: forecast from {{ o.origin_week }},
 {{ o.horizon }} weeks ahead){% endif %}. A
 community warns when the upper end of its interval exceeds the count it would reach one week
 in a hundred at its usual level (mean of 13 weeks; at least 3 cases).</p>
{% if o.note %}<p id="outlook-note">暂无预判 No outlook: {{ e(o.note) }}</p>{% else %}
<table id="outlook"><tr><th>类别 Category</th><th>预计 Expected</th>
<th>区间 Interval</th><th>近13周平均 Usual</th></tr>
{% for r in o.categories %}<tr><td>{{ lab(r.label, r.label_en) }}</td><td>{{ r.expected }}</td>
<td>{{ r.lo }} – {{ r.hi }}</td><td>{{ r.usual }}</td></tr>{% endfor %}
<tr id="outlook-total"><td>合计 All cases</td><td>{{ o.total.expected }}</td>
<td>{{ o.total.lo }} – {{ o.total.hi }}</td><td>{{ o.total.usual }}</td></tr></table>
<p class="small">合计为全区总件数的单独预测，不等于各类之和的区间。The total is its own forecast
 of all cases; its interval is not the sum of the categories' intervals.</p>
<h3>预警 Warnings ({{ o.warnings | length }})</h3>
{% if o.warnings %}<table id="outlook-warnings"><tr><th>社区(村) Community</th>
<th>预计 Expected</th><th>区间 Interval</th><th>平时 Usual</th><th>预警线 Alarm</th>
<th>说明 Why</th></tr>
{% for w in o.warnings %}<tr><td>{{ e(w.community) }}</td><td>{{ w.expected }}</td>
<td>{{ w.lo }} – {{ w.hi }}</td><td>{{ w.usual }}</td><td>{{ w.alarm if w.alarm is not none
 else '—' }}</td><td style="text-align:left">{{ e(w.reason_zh) }}<span class="en">{{
 e(w.reason) }}</span></td></tr>{% endfor %}</table>
{% else %}<p id="outlook-no-warnings">下周无社区预警。No community warns for next week.</p>
{% endif %}{% endif %}{% endif %}
{% if f.key_tasks %}{% set k = f.key_tasks %}
<h2>十、重点工作督办 Key tasks (截至 as of {{ f.as_of_text }})</h2>
<div class="kpi" id="key-kpi">
<div>在办任务 Open tasks<b id="key-open">{{ k.all.open_tasks }}</b></div>
<div>超期任务 Overdue tasks<b id="key-overdue">{{ k.all.overdue_tasks }}</b></div>
<div>节点按期完成率 Milestones on time<b id="key-on-time">{{ pct(k.all.on_time_rate) }}</b>
<span class="en">{{ k.all.on_time }} / {{ k.all.due }}</span></div>
<div>预警 Warnings<b id="key-warnings">{{ k.escalations.warning }}</b></div>
<div>问责 Accountability<b id="key-accountability">{{ k.escalations.accountability }}</b></div>
<div>本周预警记录 Warnings this week<b id="key-warning-entries">{{
 k.all.warning_entries }}</b></div>
<div>本周问责记录 Accountability entries this week<b id="key-accountability-entries">{{
 k.all.accountability_entries }}</b></div>
</div>
<p class="small">节点按期完成率：截至统计日应完成(已完成或已过计划日期)的节点中，
 不晚于计划日期完成的占比；预警、问责为截至统计日督办等级的任务数(任务状态与等级取当时的，
 据督办记录还原)；本周预警、问责记录为本周内督办时钟记下的条数。
 On time: among the milestones due by the day (done, or past their due date), the share
 done by their due date; warnings and accountability count tasks at that escalation
 level as of the day (status and level as they were then, from the audit trail); the
 week's entries are the warnings and accountability entries the supervision clock
 recorded in the week.</p>
<table id="key-ranking"><caption>部门排名 Ranking of lead departments: 按期率高者在前，
 其次超期任务少、问责少。Higher on-time rate first, then fewer overdue tasks, fewer accountability
 entries.</caption>
<tr><th>名次 Rank</th><th>牵头部门 Lead department</th><th>任务 Tasks</th><th>超期任务 Overdue</th>
<th>应完成节点 Due</th><th>按期 On time</th><th>节点按期完成率 Rate</th><th>超期节点 Overdue
 milestones</th><th>预警 Warn.</th><th>问责 Acc.</th><th>本周预警记录 Warn. entries</th>
<th>本周问责记录 Acc. entries</th></tr>
{% for r in k.ranking %}<tr><td>{{ r.rank }}</td><td>{{ lab(r.label, r.label_en) }}</td>
<td>{{ r.tasks }}</td><td>{{ r.overdue_tasks }}</td><td>{{ r.due }}</td><td>{{ r.on_time }}</td>
<td>{{ pct(r.on_time_rate) }}</td><td>{{ r.overdue_milestones }}</td><td>{{ r.warnings }}</td>
<td>{{ r.accountability }}</td><td>{{ r.warning_entries }}</td>
<td>{{ r.accountability_entries }}</td></tr>{% endfor %}</table>
<table id="key-overdue-tasks"><tr><th>任务编号 Task</th><th>任务名称 Title</th>
<th>牵头部门 Lead department</th><th>办理状态 Status</th><th>进度 Progress</th>
<th>督办等级 Escalation</th><th>超期(天) Overdue (days)</th></tr>
{% for r in k.overdue_tasks %}<tr><td>{{ r.task_no }}</td><td>{{ e(r.title) }}</td>
<td>{{ lab(r.department, r.department_en) }}</td><td>{{ lab(r.status_label, r.status_en) }}</td>
<td>{{ r.progress if r.progress is not none else '—' }}%</td>
<td>{{ lab(r.escalation_label, r.escalation_en) }}</td><td>{{ r.overdue_days }}</td></tr>{%
 endfor %}</table>{% endif %}
</body></html>
""")
