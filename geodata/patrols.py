"""Synthetic river patrol records (巡河记录) consistent with the sample ``rivers`` layer.

Not a catalogue layer: a table generated on demand, deterministically from a
seed, for :func:`analytics.rivers.patrol_compliance`. For each segment the
latest record is its ``last_patrol_at``; earlier patrols go back a year at gaps
drawn around the level's required interval (most chiefs keep to it, some slip),
so the compliance rates vary plausibly. **Synthetic**: no real patrol log.

Examples
--------
>>> from geodata.sample import generate
>>> rec = synthetic_patrols(generate(n_incidents=1)["rivers"])
>>> sorted(rec.columns)
['duration_min', 'patrolled_at', 'segment_code', 'track_km']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geodata.sample import DEFAULT_SEED, YEAR_END, YEAR_START

#: Required interval in days by chief level (as in :mod:`analytics.rivers`).
INTERVALS = {"village": 7, "township": 30, "county": 90, "city": 30, "province": 90}


def synthetic_patrols(rivers, seed: int = DEFAULT_SEED, start=YEAR_START) -> pd.DataFrame:
    """Patrol records (``segment_code``, ``patrolled_at`` UTC, ``track_km``, ``duration_min``).

    Parameters
    ----------
    rivers : GeoDataFrame
        The sample ``rivers`` layer.
    seed : int
        Same seed, same records.
    start : date-like
        No record before this day.
    """
    rng = np.random.default_rng([seed, 11])
    t0 = pd.Timestamp(start, tz="UTC")
    rows = []
    for code, level, last, length in zip(
        rivers["segment_code"],
        rivers["chief_level"],
        pd.to_datetime(rivers["last_patrol_at"], utc=True),
        rivers["length_m"],
        strict=True,
    ):
        iv = INTERVALS.get(level, 30)
        slack = rng.uniform(0.6, 1.6)  # this chief's habit: < 1 keeps to the rule
        t = last
        while t >= t0:
            rows.append(
                (
                    code,
                    t,
                    round(float(length) / 1000 * rng.uniform(0.6, 1.1), 2),
                    int(rng.integers(30, 150)),
                )
            )
            gap = iv * slack * rng.uniform(0.5, 1.3)
            t = t - pd.Timedelta(days=float(gap))
    out = pd.DataFrame(rows, columns=["segment_code", "patrolled_at", "track_km", "duration_min"])
    return out.sort_values(["segment_code", "patrolled_at"]).reset_index(drop=True)


#: The sample's reference instant (end of the sample year, UTC).
AS_OF = pd.Timestamp(YEAR_END, tz="UTC")
