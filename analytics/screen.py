"""Figures for the command-center screen (大屏): one JSON-ready dict per refresh.

:func:`screen_summary` is a pure function of the incidents (and communities): today's counts,
the overdue cases with their positions, Gi* hot spots of the last weeks and every colour the
page needs (catalogue code colours and :mod:`analytics.palettes`; the page has none of its
own). The shell serves it as ``/screen/summary.json``; the page reads the incidents
themselves from the OGC API.

Only public fields are returned: the screen is shown in a hall and served to anonymous
callers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.errors import AnalyticsError
from analytics.hotcells import GI_BINS, gi_cells, significant_cells
from analytics.palettes import MUTED, OVERDUE
from layers import supervision
from layers.catalogue import LAYERS
from layers.district import TZ_NAME as TZ
from layers.district import district_boundary

__all__ = ["screen_summary"]

_INC = LAYERS["incidents"]


def _day_bounds(day) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(day).tz_localize(TZ).tz_convert("UTC")
    return start, start + pd.Timedelta(days=1)


def screen_summary(
    incidents,
    communities=None,
    day=None,
    *,
    now=None,
    hotspot_days: int = 28,
    max_overdue: int = 30,
    lang: str = "zh",
    outlook: bool = True,
    key_tasks: tuple | None = None,
    opinion: tuple | None = None,
) -> dict:
    """Today's counts, overdue cases, hot spots and next week's outlook for the screen.

    Parameters
    ----------
    incidents : GeoDataFrame
        The incidents layer (EPSG:4326).
    communities : GeoDataFrame, optional
        For community names.
    day : str or date, optional
        Beijing calendar day shown as "today"; default today, or the latest day with cases
        when there are none today (sample data end on 2026-11-22).
    now : datetime-like, optional
        Reference instant for "overdue"; default the end of ``day`` or the current time,
        whichever is earlier.
    hotspot_days : int, default 28
        Days of cases (ending with ``day``) in the Gi* analysis.
    max_overdue : int, default 30
        Overdue cases listed (oldest deadline first); ``overdue`` always counts all.
    lang : {"zh", "en"}
        Language of the labels.
    outlook : bool, default True
        Forecast next week (cases reported up to the end of ``day`` only).
    key_tasks : (GeoDataFrame, DataFrame), optional
        The ``key_tasks`` and ``key_task_milestones`` rows: adds the key-work panel's
        figures as of ``now`` (:func:`_key_tasks`); ``None`` without them.

    opinion : (DataFrame, DataFrame), optional
        The ``public_opinion`` posts (public fields, from the day before ``day`` on at least)
        and the ``opinion_topics`` rows: adds the day's hot topics panel (:func:`_opinion`);
        ``None`` without them.

    Returns
    -------
    dict
        ``day`` and how it was chosen, ``day_kind``: ``"today"`` (today's Beijing day),
        ``"latest"`` (no case today: the latest day with cases) or ``"requested"`` (``day``
        given); ``latest_day`` (the latest Beijing day with cases, or None); ``day_start``
        and ``day_end`` (the day's bounds as UTC instants); ``tz`` (the time zone every time
        on the screen is shown in); ``bounds`` (the district's lon/lat bounds, for the first
        view); ``now``, ``today`` (received, closed, open, by_category), ``overdue`` (count),
        ``overdue_cases`` (list), ``week`` (supervision figures of the last 7 days),
        ``hotspots`` (GeoJSON FeatureCollection of hot cells), ``outlook`` (next week's
        expected cases by major class and in all with 80 % intervals, and the communities
        that warn: :func:`_outlook`; None with ``outlook=False``) and ``styles``: every colour
        the page draws with (``category`` code → colour and label, ``major_class`` likewise,
        ``hot_bins``: Gi* bin, colour and label of the hot bins, ``overdue``, ``incident``,
        ``muted``).
    """
    reported = pd.to_datetime(incidents["reported_at"], utc=True, format="ISO8601")
    real_now = pd.Timestamp.now(tz="UTC")
    latest = reported.max().tz_convert(TZ).date() if reported.notna().any() else None
    kind = "requested"
    if day is None:
        today = real_now.tz_convert(TZ).date()
        start, end = _day_bounds(today)
        kind = "today"
        if not ((reported >= start) & (reported < end)).any() and latest is not None:
            today, kind = latest, "latest"
        day = today
    try:
        start, end = _day_bounds(pd.Timestamp(day).date())
    except (ValueError, TypeError) as err:
        raise AnalyticsError(f"day must be a date like 2026-11-22, got {day!r}") from err
    now = min(end, real_now) if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    closed_at = pd.to_datetime(incidents["closed_at"], utc=True, format="ISO8601")
    todays = incidents[(reported >= start) & (reported < end)]
    flags = supervision.case_flags(incidents[reported < end], now=now)
    past = incidents[reported < end]
    overdue = past[flags["overdue"].to_numpy()]
    overdue = overdue.sort_values("deadline")
    names = {}
    if communities is not None:
        names = dict(zip(communities["code"], communities["name"], strict=False))
    cat = _INC.field("category")
    dept = _INC.field("department")
    od = []
    deadlines = pd.to_datetime(overdue["deadline"], utc=True, format="ISO8601")
    for (_, r), dl in zip(overdue.head(max_overdue).iterrows(), deadlines, strict=False):
        od.append(
            {
                "case_no": r["case_no"],
                "title": r["title"],
                "category": r["category"],
                "category_label": cat.label(r["category"], lang),
                "department": dept.label(r["department"], lang),
                "community": names.get(r["community_code"], r["community_code"]),
                "deadline": dl.tz_convert(TZ).strftime("%m-%d %H:%M"),
                "overdue_h": round((now - dl) / pd.Timedelta(hours=1), 1),
                "lon": round(float(r.geometry.x), 6),
                "lat": round(float(r.geometry.y), 6),
            }
        )
    week = incidents[(reported >= end - pd.Timedelta(days=7)) & (reported < end)]
    wk = supervision.to_records(supervision.figures(week, now=now))[0]
    by_cat = todays["category"].value_counts()
    return {
        "day": str(pd.Timestamp(day).date()),
        "day_kind": kind,
        "latest_day": None if latest is None else str(latest),
        "day_start": start.isoformat(),
        "day_end": end.isoformat(),
        "tz": TZ,
        "bounds": [round(float(v), 5) for v in district_boundary().bounds],
        "now": now.isoformat(),
        "today": {
            "received": int(len(todays)),
            "closed": int(((closed_at >= start) & (closed_at < end)).sum()),
            "open": int(supervision.case_flags(todays, now=now)["open"].sum())
            if len(todays)
            else 0,
            "by_category": [
                {"category": c, "label": cat.label(c, lang), "cases": int(n)}
                for c, n in by_cat.items()
            ],
        },
        "overdue": int(len(overdue)),
        "overdue_cases": od,
        "week": wk,
        "hotspots": _hotspots(
            incidents[(reported >= end - pd.Timedelta(days=hotspot_days)) & (reported < end)]
        ),
        "outlook": _outlook(incidents, pd.Timestamp(day).date(), end, names) if outlook else None,
        "key_tasks": None if key_tasks is None else _key_tasks(key_tasks, now, lang),
        "opinion": None
        if opinion is None
        else _opinion(opinion, start, min(end, now), names, lang),
        "styles": _styles(cat, lang),
    }


def _outlook(incidents, day, end, names: dict) -> dict:
    """Next week's expected load by major class and the communities that warn.

    :func:`analytics.early_warning.weekly_outlook` (ETS of the weekly counts, 80 % intervals,
    warnings per community) for the week after the Monday-Sunday week holding ``day``; while
    that week is still running (``day`` before its Sunday) the forecast starts from the week
    before, two weeks ahead.  Only cases reported before ``end`` (the end of ``day``) are
    read.  ``note`` says why there is no forecast (too short a history).
    """
    from analytics.early_warning import OUTLOOK_LEVEL, OUTLOOK_MODEL, weekly_outlook

    d = pd.Timestamp(day)
    monday = d - pd.Timedelta(days=d.day_of_week)
    full = d.day_of_week == 6  # the week is over on its Sunday
    origin = monday if full else monday - pd.Timedelta(days=7)
    h = 1 if full else 2
    target = monday + pd.Timedelta(days=7)
    iso = target.isocalendar()
    out: dict = {
        "model": OUTLOOK_MODEL,
        "level": OUTLOOK_LEVEL,
        "horizon": h,
        "origin_week": str(origin.date()),
        "week": f"{iso[0]}-W{iso[1]:02d}",
        "first_day": str(target.date()),
        "last_day": str((target + pd.Timedelta(days=6)).date()),
        "categories": [],
        "total": None,
        "warnings": [],
        "note": None,
    }
    reported = pd.to_datetime(incidents["reported_at"], utc=True, format="ISO8601")
    try:
        found = weekly_outlook(incidents[reported < end], origin, horizon=h, names=names)
    except AnalyticsError as err:  # too short a history: the panel says so
        out["note"] = str(err)
    else:
        out.update({k: found[k] for k in ("categories", "total", "warnings")})
    return out


def _key_tasks(tables: tuple, now, lang: str) -> dict:
    """The key-work panel (重点工作督办): :func:`layers.key_task_figures.summary` as of
    ``now`` of the tasks started by then (public figures only), departments labelled, each
    ranked department with its on-time milestone rate, overdue tasks and escalations, and
    the catalogue's escalation colours. ``tables``: tasks, milestones and optionally the
    audit rows (:func:`layers.key_task_figures.audit`): then the tasks as they were at
    ``now`` and this week's escalation entries (since its Monday:
    :func:`layers.key_task_figures.week_start`)."""
    from layers import key_task_figures as ktf

    tasks, milestones, *rest = tables
    history = rest[0] if rest else None
    since = ktf.week_start(now) if history is not None else None
    f = ktf.summary(tasks, milestones, now=now, history=history, since=since)
    dept = _INC.field("department")
    esc = LAYERS["key_tasks"].field("escalation")
    keep = ("department", "rank", "tasks", "overdue_tasks", "due", "on_time", "on_time_rate")
    ranking = [
        {
            **{k: r[k] for k in keep},
            "label": dept.label(r["department"], lang),
            "warnings": r["warnings"],
            "accountability": r["accountability"],
            "warning_entries": r["warning_entries"],
            "accountability_entries": r["accountability_entries"],
        }
        for r in f["ranking"]
    ]
    return {
        "since": f["since"],
        "all": f["all"],
        "escalations": f["escalations"],
        "ranking": ranking,
        "overdue_tasks": len(f["overdue_tasks"]),
        "colors": {c.code: c.color for c in esc.codes or ()},
        "labels": {c.code: esc.label(c.code, lang) for c in esc.codes or ()},
    }


#: Hot topics the screen lists.
SCREEN_TOPICS = 8


def _opinion(tables: tuple, start, until, names: dict, lang: str) -> dict:
    """Today's hot topics (网络舆情): the day's posts (up to ``until``) and its topics by posts
    today, then growth against the day before (:func:`analytics.opinion.hot.hot_topics`),
    with category (label, colour), community, case and status; public fields only."""
    from analytics.opinion.hot import hot_topics

    posts, topics = tables
    t = pd.to_datetime(posts["posted_at"], utc=True, format="ISO8601")
    today = posts[((t >= start) & (t < until)).to_numpy()]
    eps = pd.Timedelta(microseconds=1)  # hot_topics' windows are (since, until]
    hot = hot_topics(posts, topics, since=start - eps, until=until - eps, limit=SCREEN_TOPICS)
    cat = LAYERS["public_opinion"].field("category")
    colors = {c.code: c.color for c in cat.codes or ()}
    status = LAYERS["opinion_topics"].field("status")

    def text(v):
        return None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

    rows = []
    for r in hot.to_dict("records"):
        c, comm, st = text(r["category"]), text(r["community_code"]), text(r.get("status"))
        rows.append(
            {
                "topic_id": r["topic_id"],
                "category": c,
                "label": cat.label(c, lang) if c else "—",
                "color": colors.get(c) or MUTED,
                "community": names.get(comm, comm) or "—",
                "posts_today": int(r["posts_recent"]),
                "posts_before": int(r["posts_before"]),
                "growth": round(float(r["growth"]), 2),
                "posts": int(r["posts"]),
                "case_id": text(r.get("case_id")),
                "status": st,
                "status_label": status.label(st, lang) if st else None,
            }
        )
    return {
        "posts": int(len(today)),
        "actionable": int(today["actionable"].fillna(False).astype(bool).sum()),
        "topics": rows,
    }


def _styles(cat, lang: str) -> dict:
    """Every colour the page draws with (it has none of its own): category colours from the
    catalogue, the rest from :mod:`analytics.palettes`."""
    return {
        "category": {
            c.code: {"color": c.color, "label": c.zh if lang == "zh" else c.en}
            for c in cat.codes or ()
        },
        "major_class": {
            c.code: {"color": c.color, "label": c.zh if lang == "zh" else c.en}
            for c in _INC.field("major_class").codes or ()
        },
        # the hot bins the page draws, strongest first, as the legend lists them
        "hot_bins": [
            {"gi_bin": b, "color": color, "label": zh if lang == "zh" else en}
            for b, (zh, en, color) in GI_BINS.items()
            if b > 0
        ],
        "overdue": OVERDUE,
        "incident": _INC.style.color,  # an incident whose category has no colour
        "muted": MUTED,  # a category without a catalogue colour
    }


def _hotspots(frame) -> dict:
    """Hot cells (Gi* bin > 0) as a GeoJSON FeatureCollection in CRS84."""
    cells = gi_cells(frame)
    if cells is None:
        return {"type": "FeatureCollection", "features": []}
    hot = significant_cells(cells, "hot").to_crs(4326)
    feats = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Polygon",
                "coordinates": [np.round(np.asarray(g.exterior.coords), 6).tolist()],
            },
            "properties": {"count": n, "gi_bin": b, "gi_z": z, "color": c},
        }
        for g, n, b, z, c in zip(
            hot.geometry, hot["count"], hot["gi_bin"], hot["gi_z"], hot["color"], strict=True
        )
    ]
    return {"type": "FeatureCollection", "features": feats}
