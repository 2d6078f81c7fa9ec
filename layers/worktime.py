"""Working time for case deadlines (处置时限), with Chinese holidays and make-up workdays.

A working day runs 08:00–12:00 and 14:00–18:00 Beijing time (8 working hours) on
the days ``chinese_calendar`` calls workdays, so the National Day week counts as
rest and its make-up Saturdays (调休) as work. A limit of *N* working days is
*N* × 8 working hours. :class:`WorkCalendar` works at minute precision and is
vectorised: it turns every instant into "working minutes since the calendar's
start" and back with ``searchsorted``.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import chinese_calendar
import numpy as np

from layers.district import TZ

WORK_WINDOWS = ((8 * 60, 12 * 60), (14 * 60, 18 * 60))  # minutes of the local day
#: The district's UTC offset as a numpy duration (local = UTC + offset).
_OFFSET = np.timedelta64(int(TZ.utcoffset(None).total_seconds() // 60), "m")
HOURS_PER_DAY = sum(b - a for a, b in WORK_WINDOWS) / 60


def _is_workday(day: dt.date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # beyond the package's holiday tables: Monday–Friday
        return day.weekday() < 5


class WorkCalendar:
    """Cumulative working minutes between ``start`` and ``end`` (local dates).

    Parameters
    ----------
    start, end : datetime.date
        First and last local day covered; instants outside raise ``ValueError``.
    """

    def __init__(self, start: dt.date, end: dt.date):
        self.start, self.end = start, end
        days = (end - start).days + 1
        minute_is_work = np.zeros(days * 1440, dtype=bool)
        for i in range(days):
            if _is_workday(start + dt.timedelta(days=i)):
                for a, b in WORK_WINDOWS:
                    minute_is_work[i * 1440 + a : i * 1440 + b] = True
        # cum[m] = working minutes strictly before local minute m
        self._cum = np.concatenate([[0], np.cumsum(minute_is_work)])
        self._origin = np.datetime64(dt.datetime.combine(start, dt.time()), "m")  # local

    def _local_minutes(self, utc: np.ndarray) -> np.ndarray:
        local: np.ndarray = utc.astype("datetime64[m]") + _OFFSET
        m = (local - self._origin).astype(np.int64)
        if m.size and (m.min() < 0 or m.max() >= len(self._cum) - 1):
            raise ValueError(f"instant outside the work calendar {self.start}..{self.end}")
        return m

    def add(self, utc_starts, minutes) -> np.ndarray:
        """Instants (``datetime64`` UTC) ``minutes`` working minutes after ``utc_starts``.

        Seconds count: a start 43 s into a working minute ends 43 s into the final one.
        """
        starts = np.asarray(utc_starts, dtype="datetime64[s]")
        m = self._local_minutes(starts)
        working_now = self._cum[m + 1] - self._cum[m]  # 1 if the start's minute is working
        sec = (starts - starts.astype("datetime64[m]")).astype(np.int64)
        target = (
            self._cum[m] * 60 + sec * working_now + np.asarray(minutes, dtype=np.int64) * 60
        )  # working seconds since origin
        if target.size and target.max() > self._cum[-1] * 60:
            raise ValueError(f"deadline falls after the work calendar's end {self.end}")
        # first minute whose end reaches the target: cum[k + 1] * 60 >= target, k >= m
        k = np.searchsorted(self._cum, -(-target // 60), side="left") - 1
        k = np.maximum(k, m)
        local = (
            self._origin
            + k.astype("timedelta64[m]")
            + (target - self._cum[k] * 60).astype("timedelta64[s]")
        )
        already = np.asarray(minutes) <= 0
        out = (local - _OFFSET).astype("datetime64[s]")
        return np.where(already, starts, out)

    def between(self, utc_a, utc_b) -> np.ndarray:
        """Working minutes from ``utc_a`` to ``utc_b`` (negative if b is earlier)."""
        a = self._cum[self._local_minutes(np.asarray(utc_a, dtype="datetime64[s]"))]
        b = self._cum[self._local_minutes(np.asarray(utc_b, dtype="datetime64[s]"))]
        return b - a


@lru_cache(maxsize=8)
def calendar_for_year(year: int) -> WorkCalendar:
    """A calendar from 1 January of ``year - 1`` to 31 December of ``year + 1``."""
    return WorkCalendar(dt.date(year - 1, 1, 1), dt.date(year + 1, 12, 31))


def add_working_time(start: dt.datetime, hours: float = 0, days: float = 0) -> dt.datetime:
    """``start`` plus ``hours`` working hours and ``days`` working days (aware UTC result).

    Examples
    --------
    >>> import datetime as dt
    >>> t = dt.datetime(2026, 11, 20, 9, 0, tzinfo=TZ)  # a Friday, 09:00
    >>> add_working_time(t, hours=4).astimezone(TZ).strftime("%a %H:%M")
    'Fri 15:00'
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    utc = start.astimezone(dt.UTC).replace(tzinfo=None)
    minutes = round((hours + days * HOURS_PER_DAY) * 60)
    cal = calendar_for_year(start.astimezone(TZ).year)
    out = cal.add(np.array([np.datetime64(utc, "s")]), np.array([minutes]))[0]
    return out.astype(dt.datetime).replace(tzinfo=dt.UTC)
