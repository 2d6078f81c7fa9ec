"""River-chief (河长制) analytics: patrol compliance and water-quality deterioration.

Patrol frequency by chief level (:data:`PATROL_INTERVAL_DAYS`)
    village (村级) weekly (7 days), township (镇级) monthly (30 days), county (区级)
    quarterly (90 days), as the river-chief rules say. The rules set no frequency for
    the **city** (市级) chiefs of our segments: we use monthly (30 days), as for a
    township; province quarterly (90 days). Pass ``intervals`` to change them.
Compliance
    A segment is *overdue* when the time since its last patrol (``last_patrol_at``,
    or the latest patrol record) exceeds its interval at ``as_of``. With patrol
    records, the window ``[as_of - window_days, as_of)`` is cut into consecutive
    periods of the segment's interval ending at ``as_of`` (a trailing remainder
    shorter than one interval is ignored), and the *compliance rate* is the share
    of periods with at least one patrol.
Deterioration
    Water-quality classes are ordered I < II < III < IV < V < worse than V <
    black-odorous; a segment got worse when ``water_quality`` ranks above
    ``previous_quality``; ``steps`` is the number of classes it fell.

Personal fields (``chief_name``, ``chief_phone``) are never copied into results.

Examples
--------
>>> PATROL_INTERVAL_DAYS["village"], PATROL_INTERVAL_DAYS["city"]
(7, 30)
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from analytics.errors import AnalyticsError, check_positive

__all__ = [
    "PATROL_INTERVAL_DAYS",
    "QUALITY_ORDER",
    "compliance_by_level",
    "patrol_compliance",
    "quality_changes",
]

PATROL_INTERVAL_DAYS = {"village": 7, "township": 30, "county": 90, "city": 30, "province": 90}
QUALITY_ORDER = ("I", "II", "III", "IV", "V", "worse_than_V", "black_odorous")
PUBLIC_COLUMNS = (
    "segment_code",
    "name",
    "river_name",
    "chief_level",
    "community_code",
    "length_m",
    "water_quality",
    "previous_quality",
    "last_patrol_at",
)


def _public(rivers: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    cols = [c for c in PUBLIC_COLUMNS if c in rivers.columns]
    return gpd.GeoDataFrame(
        rivers[cols].copy(), geometry=rivers.geometry.to_numpy(), crs=rivers.crs
    )


def _as_of(as_of) -> pd.Timestamp:
    t = pd.Timestamp.now(tz="UTC") if as_of is None else pd.Timestamp(as_of)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def patrol_compliance(
    rivers: gpd.GeoDataFrame,
    as_of=None,
    records: pd.DataFrame | None = None,
    window_days: float = 365.0,
    intervals: dict[str, int] | None = None,
) -> gpd.GeoDataFrame:
    """Patrol compliance of each river segment.

    Parameters
    ----------
    rivers : GeoDataFrame
        The ``rivers`` layer (``segment_code``, ``chief_level``, ``last_patrol_at``).
    as_of : datetime-like, optional
        The reference instant (default: now, UTC).
    records : DataFrame, optional
        Patrol records with ``segment_code`` and ``patrolled_at`` (e.g.
        :func:`geodata.patrols.synthetic_patrols`); enables the compliance rate.
    window_days : float
        Length of the window the compliance rate covers.
    intervals : dict, optional
        Required interval in days by chief level (default :data:`PATROL_INTERVAL_DAYS`).

    Returns
    -------
    GeoDataFrame
        Public columns plus ``interval_days``, ``last_patrol``, ``days_since``, ``overdue``,
        ``days_overdue`` and, with records, ``patrols``, ``periods``,
        ``periods_patrolled`` and ``compliance_rate``.
    """
    check_positive(window_days, "window_days")
    intervals = {**PATROL_INTERVAL_DAYS, **(intervals or {})}
    levels = set(rivers["chief_level"].dropna())
    unknown = levels - set(intervals)
    if unknown:
        raise AnalyticsError(
            f"{sorted(unknown)[0]!r} is not a valid chief level, must be one "
            f"of: {', '.join(intervals)}"
        )
    t = _as_of(as_of)
    out = _public(rivers)
    out["interval_days"] = out["chief_level"].map(intervals).astype(float)
    last = pd.to_datetime(out["last_patrol_at"], utc=True)
    if records is not None:
        for col in ("segment_code", "patrolled_at"):
            if col not in records.columns:
                raise AnalyticsError(f"patrol records need a {col!r} column")
        rec = records[["segment_code", "patrolled_at"]].copy()
        rec["patrolled_at"] = pd.to_datetime(rec["patrolled_at"], utc=True)
        rec = rec[rec["patrolled_at"] <= t]
        latest = rec.groupby("segment_code")["patrolled_at"].max()
        last = pd.concat([last, out["segment_code"].map(latest)], axis=1).max(axis=1)
    out["last_patrol"] = last
    days = (t - last).dt.total_seconds() / 86400.0
    out["days_since"] = days.round(2)
    out["overdue"] = (days > out["interval_days"]).fillna(True)
    out["days_overdue"] = (days - out["interval_days"]).clip(lower=0).fillna(np.inf).round(2)
    if records is not None:
        n_periods = np.floor(window_days / out["interval_days"]).astype(int)
        counts, hits = [], []
        by_seg = {k: g["patrolled_at"] for k, g in rec.groupby("segment_code")}
        for code, iv, n in zip(out["segment_code"], out["interval_days"], n_periods, strict=True):
            p = by_seg.get(code, pd.Series([], dtype="datetime64[ns, UTC]"))
            age = (t - p).dt.total_seconds().to_numpy() / 86400.0
            k = np.floor(age / iv).astype(int)
            k = k[(k >= 0) & (k < n)]
            counts.append(len(k))
            hits.append(len(np.unique(k)))
        out["patrols"] = counts
        out["periods"] = n_periods
        out["periods_patrolled"] = hits
        out["compliance_rate"] = (
            out["periods_patrolled"] / out["periods"].where(out["periods"] > 0)
        ).round(4)
    return out


def compliance_by_level(compliance: pd.DataFrame) -> pd.DataFrame:
    """Segments, overdue segments and mean compliance rate per chief level."""
    g = compliance.groupby("chief_level")
    out = pd.DataFrame(
        {
            "interval_days": g["interval_days"].first(),
            "segments": g.size(),
            "overdue": g["overdue"].sum().astype(int),
        }
    )
    out["share_overdue"] = (out["overdue"] / out["segments"]).round(4)
    if "compliance_rate" in compliance:
        out["compliance_rate"] = g["compliance_rate"].mean().round(4)
    order = [lv for lv in PATROL_INTERVAL_DAYS if lv in out.index]
    return out.reindex(order + [lv for lv in out.index if lv not in order]).reset_index()


def quality_changes(rivers: gpd.GeoDataFrame, only_worse: bool = False) -> gpd.GeoDataFrame:
    """Water-quality change per segment (``steps`` > 0: worse), worst first.

    Returns
    -------
    GeoDataFrame
        Public columns plus ``rank_now``, ``rank_before``, ``steps``, ``worse``.
    """
    for col in ("water_quality", "previous_quality"):
        bad = set(rivers[col].dropna()) - set(QUALITY_ORDER)
        if bad:
            raise AnalyticsError(
                f"{sorted(bad)[0]!r} is not a valid water quality class, must "
                f"be one of: {', '.join(QUALITY_ORDER)}"
            )
    rank = {q: i for i, q in enumerate(QUALITY_ORDER)}
    out = _public(rivers)
    out["rank_now"] = out["water_quality"].map(rank)
    out["rank_before"] = out["previous_quality"].map(rank)
    out["steps"] = (out["rank_now"] - out["rank_before"]).astype("Int64")
    out["worse"] = (out["steps"] > 0).fillna(False).astype(bool)
    if only_worse:
        out = out[out["worse"]]
    return out.sort_values(["steps", "segment_code"], ascending=[False, True])
