"""Supervision figures (督办) on a frame of incidents.

Pure functions on a (Geo)DataFrame with the ``incidents`` layer's columns, as
:meth:`layers.store.Store.read_frame` returns it (datetimes as tz-aware UTC;
ISO strings are accepted too). Definitions, all as of a reference instant
``now`` (default: the latest timestamp in the frame):

completed
    ``status`` is ``closed`` or ``evaluated`` (核查结案 / 综合评价).
open
    Any other status (collected, registered, dispatched, handling, feedback,
    returned).
overdue
    Open, with a ``deadline`` earlier than ``now`` (超期未办结).
completion_rate
    completed / cases, for the cases reported in the group (办结率).
due, due_completion_rate
    Cases that are due (completed, or open past their deadline: 应办结) and
    the share of them completed; cases still within their time limit do not
    count against it.
on_time_rate
    Among completed cases with a deadline: share whose ``handled_at`` (the
    department's own handling, the step the time limit 处置时限 governs) is at
    or before the ``deadline`` (按期办结率).
median_dispatch_h
    Median hours from ``reported_at`` to ``dispatched_at`` (cases dispatched).
median_close_h
    Median hours from ``reported_at`` to ``closed_at`` (cases closed).

Groups (``by``): ``department``, ``category``, ``channel``, ``community``
(``community_code``) and ``week`` (ISO week of ``reported_at`` in Beijing time,
``"2026-W07"``); ``None`` gives one row for everything.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({
...     "status": ["closed", "handling"], "department": ["water", "water"],
...     "category": ["waterlogging"] * 2, "channel": ["wechat"] * 2,
...     "community_code": ["460204001001"] * 2,
...     "reported_at": ["2026-03-02T01:00:00Z", "2026-03-02T02:00:00Z"],
...     "dispatched_at": ["2026-03-02T01:30:00Z", "2026-03-02T02:30:00Z"],
...     "handled_at": ["2026-03-02T03:00:00Z", None],
...     "closed_at": ["2026-03-02T05:00:00Z", None],
...     "deadline": ["2026-03-02T06:00:00Z", "2026-03-02T06:00:00Z"]})
>>> f = figures(df, now="2026-03-03T00:00:00Z")
>>> row = f.loc["all"]
>>> int(row["cases"]), int(row["open"]), int(row["overdue"]), float(row["completion_rate"])
(2, 1, 1, 0.5)
>>> float(row["median_close_h"]), float(row["due_completion_rate"])
(4.0, 0.5)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from layers.district import TZ_NAME
from layers.errors import InvalidParameter, choices

COMPLETED = ("closed", "evaluated")
OPEN = ("collected", "registered", "dispatched", "handling", "feedback", "returned")
#: Grouping keys and the column each reads.
GROUPS = {
    "department": "department",
    "category": "category",
    "channel": "channel",
    "community": "community_code",
    "week": "week",
}
TIMES = ("reported_at", "dispatched_at", "handled_at", "closed_at", "deadline")
COLUMNS = (
    "cases",
    "open",
    "overdue",
    "completed",
    "completion_rate",
    "due",
    "due_completion_rate",
    "on_time",
    "on_time_rate",
    "median_dispatch_h",
    "median_close_h",
)
TZ = TZ_NAME  # the district's local time, for pandas


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True, format="ISO8601")


def _now(df: pd.DataFrame, now) -> pd.Timestamp:
    if now is not None:
        ts = pd.Timestamp(now)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    stamps = [df[c].max() for c in TIMES if c in df and c != "deadline"]
    stamps = [s for s in stamps if not pd.isna(s)]
    return max(stamps) if stamps else pd.Timestamp.now(tz="UTC")


def iso_week(reported_at: pd.Series) -> pd.Series:
    """ISO week labels (``"2026-W07"``) of instants, in Beijing time."""
    local = _utc(reported_at).dt.tz_convert(TZ)
    cal = local.dt.isocalendar()
    return cal["year"].astype(str) + "-W" + cal["week"].astype(str).str.zfill(2)


def case_flags(incidents: pd.DataFrame, now=None) -> pd.DataFrame:
    """Per-case flags and durations that :func:`figures` aggregates.

    Returns
    -------
    DataFrame
        Same index, columns ``open``, ``completed``, ``overdue``, ``on_time``
        (``NaN`` where not applicable), ``dispatch_h``, ``close_h`` and the
        grouping columns (``week`` added).
    """
    missing = [c for c in ("status", *TIMES) if c not in incidents]
    if missing:
        raise InvalidParameter(f"incidents frame lacks columns: {', '.join(missing)}")
    df = pd.DataFrame(index=incidents.index)
    t = {c: _utc(incidents[c]) for c in TIMES}
    now = _now(pd.DataFrame(t), now)
    status = incidents["status"].astype(object)
    df["completed"] = status.isin(COMPLETED)
    df["open"] = ~df["completed"]
    df["overdue"] = df["open"] & t["deadline"].notna() & (t["deadline"] < now)
    eligible = df["completed"] & t["deadline"].notna() & t["handled_at"].notna()
    df["on_time"] = np.where(eligible, (t["handled_at"] <= t["deadline"]).astype(float), np.nan)
    hour = pd.Timedelta(hours=1)
    # pandas-stubs type datetime differences as Series[Any], which it will not divide
    df["dispatch_h"] = (t["dispatched_at"] - t["reported_at"]) / hour  # type: ignore[operator]
    df["close_h"] = (t["closed_at"] - t["reported_at"]) / hour  # type: ignore[operator]
    for key, col in GROUPS.items():
        if key != "week" and col in incidents:
            df[col] = incidents[col].to_numpy()
    df["week"] = iso_week(incidents["reported_at"])
    return df


def _aggregate(g) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "cases": g["open"].size(),
            "open": g["open"].sum(),
            "overdue": g["overdue"].sum(),
            "completed": g["completed"].sum(),
            "on_time": g["on_time"].sum(),
            "_eligible": g["on_time"].count(),
            "median_dispatch_h": g["dispatch_h"].median(),
            "median_close_h": g["close_h"].median(),
        }
    )
    out["completion_rate"] = out["completed"] / out["cases"]
    out["due"] = out["completed"] + out["overdue"]
    out["due_completion_rate"] = (out["completed"] / out["due"]).where(out["due"] > 0)
    out["on_time_rate"] = (out["on_time"] / out["_eligible"]).where(out["_eligible"] > 0)
    ints = ["cases", "open", "overdue", "completed", "due", "on_time"]
    out[ints] = out[ints].astype(int)
    return out[list(COLUMNS)]


def figures(incidents: pd.DataFrame, by: str | None = None, now=None) -> pd.DataFrame:
    """Supervision figures, overall or per group.

    Parameters
    ----------
    incidents : DataFrame or GeoDataFrame
        Rows of the ``incidents`` layer (geometry is not used).
    by : {None, 'department', 'category', 'channel', 'community', 'week'}
        Group rows by this key; ``None`` gives a single row labelled ``"all"``.
    now : str or datetime-like, optional
        Reference instant for open / overdue; default the latest timestamp.

    Returns
    -------
    DataFrame
        Indexed by group, with columns :data:`COLUMNS` (rates in 0..1, medians in
        hours, ``NaN`` where there is nothing to measure).
    """
    if by is not None and by not in GROUPS:
        raise InvalidParameter(choices(by, list(GROUPS), "grouping (by)"))
    flags = case_flags(incidents, now)
    if by is None:
        out = _aggregate(flags.groupby(np.zeros(len(flags), dtype=int)))
        if out.empty:
            out = pd.DataFrame(
                [[0, 0, 0, 0, np.nan, 0, np.nan, 0, np.nan, np.nan, np.nan]], columns=list(COLUMNS)
            )
        out.index = pd.Index(["all"], name="group")
        return out
    col = GROUPS[by]
    if col not in flags:
        raise InvalidParameter(f"incidents frame lacks the column {col!r} for by={by!r}")
    out = _aggregate(flags.groupby(col, dropna=False, sort=True))
    out.index.name = by
    return out


def completion_rate(incidents: pd.DataFrame) -> float:
    """Share of cases completed (closed or evaluated); ``NaN`` for no cases."""
    rate: Any = figures(incidents).loc["all", "completion_rate"]
    return float(rate)


def open_cases(incidents: pd.DataFrame, now=None, overdue_only: bool = False) -> pd.DataFrame:
    """The rows of open cases (or only overdue ones) as of ``now``."""
    flags = case_flags(incidents, now)
    return incidents[flags["overdue" if overdue_only else "open"].to_numpy()]


def to_records(table: pd.DataFrame) -> list[dict]:
    """A figures table as JSON-ready records (``NaN`` → ``None``, rates rounded)."""
    out = []
    key: Any
    for key, row in table.iterrows():
        rec: dict[Any, Any] = {table.index.name or "group": None if pd.isna(key) else str(key)}
        for c in table.columns:
            v: Any = row[c]
            if pd.isna(v):
                rec[c] = None
            elif c in ("cases", "open", "overdue", "completed", "due", "on_time"):
                rec[c] = int(v)
            else:
                rec[c] = round(float(v), 4)
        out.append(rec)
    return out
