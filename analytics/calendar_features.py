"""Calendar features of forecast periods: Chinese holidays, working-day adjustments, typhoon
season and the weekday rhythm.

Everything here is known in advance (the State Council publishes the holiday schedule the
year before), so these features may describe the *target* period of a forecast without any
look-ahead; nothing is computed from case counts.

Functions
---------
day_features
    One row per day: weekday, working day, statutory holiday, make-up working day, typhoon
    season.
period_features
    The same summed over forecast periods (``"W"``: Monday-based weeks, ``"D"``: days).

The holiday schedule comes from ``chinese-calendar`` (``chinese_calendar.is_workday`` and
``get_holiday_detail``), which covers 2004 up to the latest published year; a day outside its
range falls back to the plain weekday rule (Saturday and Sunday off, no holiday) and
:func:`period_features` says so with a :class:`UserWarning`.

Typhoon season: June to November (:data:`TYPHOON_MONTHS`), the months in which typhoons
usually reach Hainan; the flag is the share of the period's days inside the season.
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

from analytics.errors import check_choice

__all__ = ["FREQS", "TYPHOON_MONTHS", "day_features", "period_features"]

#: forecast period lengths: Monday-based weeks, days
FREQS = ("W", "D")
#: months of Hainan's typhoon season
TYPHOON_MONTHS = (6, 7, 8, 9, 10, 11)


@lru_cache(maxsize=8192)
def _day(d: dt.date) -> tuple[int, int, int, bool]:
    """``(workday, holiday, makeup, known)`` of one date (``known``: inside the library's range)."""
    import chinese_calendar

    weekend = d.weekday() >= 5
    try:
        work = bool(chinese_calendar.is_workday(d))
        on_holiday, name = chinese_calendar.get_holiday_detail(d)
    except NotImplementedError:  # a year the schedule does not cover yet
        return int(not weekend), 0, 0, False
    holiday = int(bool(on_holiday) and name is not None)
    makeup = int(work and weekend)
    return int(work), holiday, makeup, True


def day_features(days) -> pd.DataFrame:
    """Calendar features of each day.

    Parameters
    ----------
    days : sequence of date-like
        Local calendar days (times of day are ignored).

    Returns
    -------
    DataFrame
        Indexed by the days: ``weekday`` (0 = Monday), ``workday`` (1 on a working day,
        make-up working days included), ``holiday`` (1 on a statutory holiday, e.g. National
        Day), ``makeup`` (1 on a weekend day that is a working day), ``typhoon_season`` (1 in
        :data:`TYPHOON_MONTHS`) and ``known`` (1 when the holiday schedule covers the day).

    Examples
    --------
    >>> f = day_features(["2026-10-01", "2026-10-10", "2026-10-12"])
    >>> f[["weekday", "workday", "holiday", "makeup", "typhoon_season"]].to_numpy().tolist()
    [[3, 0, 1, 0, 1], [5, 1, 0, 1, 1], [0, 1, 0, 0, 1]]
    """
    idx = pd.DatetimeIndex(pd.to_datetime(days)).normalize()
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    rows = np.array([_day(d.date()) for d in idx], dtype=np.int64).reshape(-1, 4)
    return pd.DataFrame(
        {
            "weekday": idx.day_of_week.to_numpy(np.int64),
            "workday": rows[:, 0],
            "holiday": rows[:, 1],
            "makeup": rows[:, 2],
            "typhoon_season": np.isin(idx.month, TYPHOON_MONTHS).astype(np.int64),
            "known": rows[:, 3],
        },
        index=idx,
    )


def period_features(starts, freq: str = "W") -> pd.DataFrame:
    """Calendar features of forecast periods.

    Parameters
    ----------
    starts : sequence of date-like
        First local day of each period.
    freq : {"W", "D"}
        ``"W"``: seven-day periods; ``"D"``: days.

    Returns
    -------
    DataFrame
        One row per period, indexed by its start.  Days: the columns of :func:`day_features`
        but ``known``.  Weeks: ``workdays``, ``holidays``, ``makeups`` (counts of such days in
        the week) and ``typhoon_season`` (share of the week's days in the season).

    Warns
    -----
    UserWarning
        When some day is outside the range of the holiday schedule (the weekday rule is used).

    Examples
    --------
    >>> period_features(["2026-09-28", "2026-10-05"])["holidays"].tolist()
    [4, 3]
    """
    check_choice(freq, "freq", FREQS)
    idx = pd.DatetimeIndex(pd.to_datetime(starts)).normalize()
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    n_days = 7 if freq == "W" else 1
    days = (idx.values[:, None] + np.arange(n_days) * np.timedelta64(1, "D")).ravel()
    f = day_features(pd.DatetimeIndex(days))
    if not f["known"].all():
        first = f.index[f["known"].to_numpy() == 0][0].date()
        warnings.warn(
            f"chinese-calendar has no holiday schedule for {first} (and "
            f"{int((f['known'] == 0).sum()) - 1} more days): Saturdays and Sundays are taken as "
            "the days off there, with no holiday",
            UserWarning,
            stacklevel=2,
        )
    if freq == "D":
        return f.drop(columns="known").set_axis(idx)
    a = f.to_numpy().reshape(len(idx), n_days, -1)
    col = {c: i for i, c in enumerate(f.columns)}
    return pd.DataFrame(
        {
            "workdays": a[:, :, col["workday"]].sum(axis=1),
            "holidays": a[:, :, col["holiday"]].sum(axis=1),
            "makeups": a[:, :, col["makeup"]].sum(axis=1),
            "typhoon_season": a[:, :, col["typhoon_season"]].mean(axis=1),
        },
        index=idx,
    )
