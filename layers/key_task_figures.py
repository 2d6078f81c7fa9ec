"""Supervision figures of key tasks (重点工作督办): pure functions on the raw tables.

The inputs are frames with the columns of the ``key_tasks`` layer (``task_no``, ``title``,
``kind``, ``lead_department``, ``start_date``, ``deadline``, ``status``, ``progress``,
``escalation``, geometry) and of its child table ``key_task_milestones`` (``task_no``,
``seq``, ``due_date``, ``done_date``), as :meth:`layers.store.Store.read_frame` returns
them (dates as ``date``, ISO strings or datetimes: each is read as its Beijing calendar
day). Definitions, all as of a reference instant ``now`` (passed in, never read from a
clock):

milestone due (应完成节点)
    Done, or not done with its due day before ``now``'s Beijing day. Done means a done
    date on a day begun before ``now`` (:func:`last_day`).
on time (按期完成)
    Done on or before its due day.
on_time_rate (节点按期完成率)
    on time / due, per lead department of the milestone's task (``NaN`` if none is due).
overdue milestone (超期节点)
    Not done, due day before ``now``'s day.
overdue task (超期任务)
    Not ``accepted``, deadline before ``now``'s day.
escalations (督办升级)
    Tasks by ``escalation`` level (``warning`` 预警, ``accountability`` 问责).
escalation entries (预警、问责记录)
    ``warning_entries``, ``accountability_entries``: the supervision clock's rows of the
    audit table (``key_task_history``, action ``warning`` or ``accountability``) recorded in
    the period ``[since, now)``, per lead department of their task.
as of ``now`` (历史状态)
    Given the audit table, a task's ``status`` and ``escalation`` are those it had at ``now``
    (its last move before ``now``, ``assigned`` before any; the highest escalation recorded
    before ``now``), not today's, and a task issued after ``now`` is left out
    (:func:`as_of`); a task without audit rows keeps its stored values. Its milestones are
    those planned at ``now`` (:func:`milestones_as_of`): one added later left out, one
    deleted later back, a due date re-planned later as it was.
ranking (部门排名)
    Departments leading tasks, best first: higher on-time rate, then fewer overdue tasks,
    then fewer accountability entries, then fewer warnings, then the code (no tie is left
    to chance); a department with no milestone due ranks after those with one.

:func:`area_counts` counts the points (cases, placed opinion posts) inside each task's area
in equal windows before and after its start (投诉前后对比).

Examples
--------
>>> import pandas as pd
>>> tasks = pd.DataFrame({"task_no": ["T1", "T2"], "lead_department": ["water", "urban"],
...     "status": ["in_progress", "accepted"], "deadline": ["2026-03-01", "2026-03-31"],
...     "escalation": ["warning", "none"]})
>>> ms = pd.DataFrame({"task_no": ["T1", "T1", "T2"], "seq": [1, 2, 1],
...     "due_date": ["2026-02-01", "2026-02-20", "2026-02-10"],
...     "done_date": ["2026-02-01", None, "2026-02-12"]})
>>> t = department_figures(tasks, ms, now="2026-03-05T00:00:00Z")
>>> t.loc["water", ["due", "on_time", "overdue_milestones", "overdue_tasks"]].tolist()
[2, 1, 1, 1]
>>> float(t.loc["urban", "on_time_rate"])
0.0
>>> [r["department"] for r in ranking(tasks, ms, now="2026-03-05T00:00:00Z")]
['water', 'urban']
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from layers.district import TZ_NAME
from layers.errors import InvalidParameter

#: Task statuses: a task is finished only once accepted (验收通过).
FINISHED = ("accepted",)
ESCALATIONS = ("none", "warning", "accountability")
#: Columns of :func:`department_figures`.
COLUMNS = (
    "tasks",
    "open_tasks",
    "overdue_tasks",
    "milestones",
    "due",
    "on_time",
    "late",
    "overdue_milestones",
    "on_time_rate",
    "warnings",
    "accountability",
    "mean_progress",
    "warning_entries",
    "accountability_entries",
)
_INTS = COLUMNS[:8] + ("warnings", "accountability", "warning_entries", "accountability_entries")
#: The audit table's columns the figures read.
HISTORY_COLUMNS = (
    "task_no",
    "at",
    "action",
    "milestone_seq",
    "from_status",
    "to_status",
    "note",
)
#: The notes :mod:`layers.key_tasks` writes on a milestone's re-plan and deletion.
_REPLANNED = re.compile(r"^due (\d{4}-\d{2}-\d{2}) → (\d{4}-\d{2}-\d{2})")
_DELETED = re.compile(r"^(.*) \(due (\d{4}-\d{2}-\d{2})\)(?:; reason: .*)?$", re.S)


def _need(frame: pd.DataFrame, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in frame]
    if missing:
        raise InvalidParameter(f"{what} frame lacks columns: {', '.join(missing)}")


def local_days(values) -> pd.Series:
    """Beijing calendar days (naive midnight timestamps) of dates, ISO strings or instants."""
    s = pd.Series(values)
    out: list[Any] = []
    for v in s:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            out.append(pd.NaT)
            continue
        ts = pd.Timestamp(v)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(TZ_NAME).tz_localize(None)
        out.append(ts.normalize())
    return pd.Series(pd.to_datetime(out), index=s.index, dtype="datetime64[ns]")


def today(now) -> pd.Timestamp:
    """``now``'s Beijing calendar day (``now`` is required: the figures never read a clock)."""
    if now is None:
        raise InvalidParameter("now is required: the instant the figures are taken at")
    ts = pd.Timestamp(now)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return ts.tz_convert(TZ_NAME).tz_localize(None).normalize()


def week_start(now) -> pd.Timestamp:
    """The start (Monday 00:00 Beijing, as a UTC instant) of the week of :func:`last_day`
    of ``now``: the screen's period of escalation entries.

    Examples
    --------
    >>> str(week_start("2026-11-22T12:00:00+08:00"))  # a Sunday
    '2026-11-15 16:00:00+00:00'
    """
    d = last_day(now)
    return (d - pd.Timedelta(days=d.day_of_week)).tz_localize(TZ_NAME).tz_convert("UTC")


def last_day(now) -> pd.Timestamp:
    """The last Beijing day that has begun before ``now`` (``now``'s day, or the day before
    when ``now`` is a midnight): a date on it counts as reached by ``now``."""
    return today(pd.Timestamp(now) - pd.Timedelta(1, "ns"))


def milestone_flags(milestones: pd.DataFrame, tasks: pd.DataFrame, now) -> pd.DataFrame:
    """Per-milestone flags: ``done``, ``due``, ``on_time``, ``late`` (done after its due
    day), ``overdue`` (not done, past due) and the task's ``lead_department``."""
    _need(milestones, ("task_no", "due_date", "done_date"), "milestones")
    _need(tasks, ("task_no", "lead_department"), "tasks")
    day = today(now)
    due_day, done_day = local_days(milestones["due_date"]), local_days(milestones["done_date"])
    # a milestone done after ``now`` was not done then (at a midnight, the day before is the
    # last day that counts)
    done = done_day.notna() & (done_day <= last_day(now))
    out = pd.DataFrame(index=milestones.index)
    out["task_no"] = milestones["task_no"].to_numpy()
    out["done"] = done
    out["overdue"] = ~done & due_day.notna() & (due_day < day)
    out["due"] = done | out["overdue"]
    out["on_time"] = done & due_day.notna() & (done_day <= due_day)
    out["late"] = done & ~out["on_time"]
    lead = tasks.drop_duplicates("task_no").set_index("task_no")["lead_department"]
    out["lead_department"] = out["task_no"].map(lead).to_numpy()
    return out


def task_flags(tasks: pd.DataFrame, now) -> pd.DataFrame:
    """Per-task flags: ``open`` (not accepted), ``overdue`` (open past its deadline day),
    ``warning``/``accountability`` (its escalation level) and ``lead_department``."""
    _need(tasks, ("task_no", "lead_department", "status", "deadline"), "tasks")
    day = today(now)
    out = pd.DataFrame(index=tasks.index)
    out["task_no"] = tasks["task_no"].to_numpy()
    out["lead_department"] = tasks["lead_department"].to_numpy()
    out["open"] = ~tasks["status"].isin(FINISHED)
    dl = local_days(tasks["deadline"])
    out["overdue"] = out["open"] & dl.notna() & (dl < day)
    esc = tasks["escalation"] if "escalation" in tasks else pd.Series("none", index=tasks.index)
    out["warning"] = esc == "warning"
    out["accountability"] = esc == "accountability"
    out["progress"] = (
        pd.to_numeric(tasks["progress"], errors="coerce") if "progress" in tasks else np.nan
    )
    return out


def _instants(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")


def _instant(value, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be an ISO 8601 instant, got {value!r}") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def entries(tasks: pd.DataFrame, history: pd.DataFrame | None, now, since=None) -> pd.DataFrame:
    """Escalation entries per lead department: ``warning_entries`` and
    ``accountability_entries`` recorded in ``[since, now)`` (``since`` None: from the first)
    for the tasks of ``tasks``, indexed by department code."""
    cols = ["warning_entries", "accountability_entries"]
    if history is None or not len(history):
        return pd.DataFrame(columns=cols, dtype=int)
    _need(history, ("task_no", "at", "action"), "history")
    until = _instant(now, "now")
    at = _instants(history["at"])
    keep = history["action"].isin(("warning", "accountability")).to_numpy(copy=True)
    keep &= (at < until).to_numpy()
    if since is not None:
        keep &= (at >= _instant(since, "since")).to_numpy()
    rows = history[keep]
    lead = tasks.drop_duplicates("task_no").set_index("task_no")["lead_department"]
    dep = rows["task_no"].map(lead)
    known = dep.notna().to_numpy()
    rows, dep = rows[known], dep[known]
    counts = pd.crosstab(dep, rows["action"]) if len(rows) else pd.DataFrame()
    return pd.DataFrame(
        {
            "warning_entries": counts.get("warning", pd.Series(dtype=int)),
            "accountability_entries": counts.get("accountability", pd.Series(dtype=int)),
        }
    ).fillna(0)


def as_of(tasks: pd.DataFrame, history: pd.DataFrame | None, now) -> pd.DataFrame:
    """``tasks`` as they were at ``now`` by the audit table (see the module docstring):
    ``status`` from the last move before ``now`` (``assigned`` before any), ``escalation``
    the highest level recorded before ``now``; tasks issued at or after ``now`` left out."""
    if history is None or not len(history):
        return tasks
    _need(history, ("task_no", "at", "action", "to_status"), "history")
    until = _instant(now, "now")
    at = _instants(history["at"])
    h = history.assign(_at=at.to_numpy()).sort_values("_at", kind="stable")
    seen = set(h["task_no"])
    before = h[(h["_at"] < until).to_numpy()]
    issued = set(before["task_no"])
    moves = before[(before["action"] == "transition").to_numpy() & before["to_status"].notna()]
    status = moves.groupby("task_no")["to_status"].last()
    rank = {"none": 0, "warning": 1, "accountability": 2}
    esc = before[before["action"].isin(("warning", "accountability")).to_numpy()]
    level = esc.groupby("task_no")["action"].agg(lambda a: max(a, key=rank.__getitem__))
    out = tasks[[(t not in seen) or (t in issued) for t in tasks["task_no"]]].copy()
    has = out["task_no"].isin(seen).to_numpy()
    out.loc[has, "status"] = out.loc[has, "task_no"].map(status).fillna("assigned").to_numpy()
    if "escalation" in out:
        out.loc[has, "escalation"] = out.loc[has, "task_no"].map(level).fillna("none").to_numpy()
    return out


def milestones_as_of(milestones: pd.DataFrame, history: pd.DataFrame | None, now) -> pd.DataFrame:
    """``milestones`` as planned at ``now`` by the audit table: a milestone added at or after
    ``now`` (``add_milestone``) left out, one deleted at or after it (``delete_milestone``)
    back with its title and due date, and a due date re-planned at or after it
    (``replan``) the one it had then (the earliest later re-plan's old date)."""
    if history is None or not len(history):
        return milestones
    _need(history, ("task_no", "at", "action", "milestone_seq", "note"), "history")
    _need(milestones, ("task_no", "seq", "due_date"), "milestones")
    at = _instants(history["at"])
    h = history.assign(_at=at.to_numpy()).sort_values("_at", kind="stable")
    later = h[(h["_at"] >= _instant(now, "now")).to_numpy()]
    later = later[later["milestone_seq"].notna().to_numpy()]
    if not len(later):
        return milestones
    seq = pd.to_numeric(later["milestone_seq"]).astype(int).to_numpy()
    key = list(zip(later["task_no"], seq, strict=True))
    actions, notes = later["action"].to_numpy(), later["note"].to_numpy()
    added = {k for k, a in zip(key, actions, strict=True) if a == "add_milestone"}
    due_then: dict[tuple, str] = {}
    restored = []
    for k, a, note in zip(key, actions, notes, strict=True):
        text = note if isinstance(note, str) else ""
        if a == "replan" and k not in due_then and (m := _REPLANNED.match(text)):
            due_then[k] = m.group(1)
        elif a == "delete_milestone" and k not in added and (m := _DELETED.match(text)):
            row = {"task_no": k[0], "seq": k[1], "title": m.group(1), "due_date": m.group(2)}
            restored.append({**row, "due_date": due_then.get(k, row["due_date"])})
    mk = list(zip(milestones["task_no"], pd.to_numeric(milestones["seq"]).astype(int), strict=True))
    out = milestones[[k not in added for k in mk]].copy()
    keys = [k for k in mk if k not in added]
    out["due_date"] = [
        due_then.get(k, d) for k, d in zip(keys, out["due_date"].to_numpy(), strict=True)
    ]
    if restored:
        out = pd.concat([out, pd.DataFrame(restored)], ignore_index=True)
    return out


def department_figures(
    tasks: pd.DataFrame,
    milestones: pd.DataFrame,
    now,
    history: pd.DataFrame | None = None,
    since=None,
) -> pd.DataFrame:
    """The figures per lead department (:data:`COLUMNS`), indexed by department code;
    the escalation entries are counted from ``history`` (the audit table) in
    ``[since, now)`` (zero without it)."""
    tf = task_flags(tasks, now)
    mf = milestone_flags(milestones, tasks, now)
    g = tf.groupby("lead_department", dropna=False)
    t = pd.DataFrame(
        {
            "tasks": g.size(),
            "open_tasks": g["open"].sum(),
            "overdue_tasks": g["overdue"].sum(),
            "warnings": g["warning"].sum(),
            "accountability": g["accountability"].sum(),
            "mean_progress": g["progress"].mean(),
        }
    )
    h = mf.groupby("lead_department", dropna=False)
    m = pd.DataFrame(
        {
            "milestones": h.size(),
            "due": h["due"].sum(),
            "on_time": h["on_time"].sum(),
            "late": h["late"].sum(),
            "overdue_milestones": h["overdue"].sum(),
        }
    )
    out = t.join(m, how="outer").join(entries(tasks, history, now, since), how="outer")
    out = out.fillna({c: 0 for c in _INTS})
    out["on_time_rate"] = (out["on_time"] / out["due"]).where(out["due"] > 0)
    out[list(_INTS)] = out[list(_INTS)].astype(int)
    out.index.name = "department"
    return out[list(COLUMNS)].sort_index()


def ranking(
    tasks: pd.DataFrame,
    milestones: pd.DataFrame,
    now,
    history: pd.DataFrame | None = None,
    since=None,
) -> list[dict]:
    """Departments best first (see the module docstring), each with its figures and rank."""
    t = department_figures(tasks, milestones, now, history, since).reset_index()
    t["_none"] = t["on_time_rate"].isna()
    t = t.sort_values(
        ["_none", "on_time_rate", "overdue_tasks", "accountability", "warnings", "department"],
        ascending=[True, False, True, True, True, True],
        kind="stable",
    )
    recs = to_records(t.drop(columns="_none").set_index("department"))
    for i, r in enumerate(recs, 1):
        r["rank"] = i
    return recs


def overdue_tasks(tasks: pd.DataFrame, now) -> pd.DataFrame:
    """Open tasks past their deadline day, the longest overdue first."""
    tf = task_flags(tasks, now)
    out = tasks[tf["overdue"].to_numpy()].copy()
    out["overdue_days"] = (today(now) - local_days(out["deadline"])).dt.days
    return out.sort_values(["overdue_days", "task_no"], ascending=[False, True])


def escalations(tasks: pd.DataFrame) -> dict[str, int]:
    """Tasks per escalation level (every level of :data:`ESCALATIONS`, zeros included)."""
    esc = tasks["escalation"] if "escalation" in tasks else pd.Series([], dtype=object)
    counts = esc.fillna("none").value_counts()
    return {k: int(counts.get(k, 0)) for k in ESCALATIONS}


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
            elif c in _INTS:
                rec[c] = int(v)
            else:
                rec[c] = round(float(v), 4)
        out.append(rec)
    return out


def started(tasks: pd.DataFrame, milestones: pd.DataFrame, now) -> tuple:
    """The tasks whose ``start_date`` is a day begun before ``now`` (:func:`last_day`), and
    their milestones."""
    _need(tasks, ("task_no", "start_date"), "tasks")
    tasks = tasks[(local_days(tasks["start_date"]) <= last_day(now)).to_numpy()]
    return tasks, milestones[milestones["task_no"].isin(tasks["task_no"]).to_numpy()]


def summary(
    tasks: pd.DataFrame,
    milestones: pd.DataFrame,
    now,
    history: pd.DataFrame | None = None,
    since=None,
) -> dict:
    """All the key-task figures as one JSON-ready dict: ``now``, ``since`` (the period of
    the escalation entries, ``[since, now)``), ``all`` (the totals), ``by_department``,
    ``ranking``, ``escalations``, ``overdue_tasks`` (task_no, title, lead department,
    deadline, status, progress, escalation, days overdue).

    Only the tasks started by ``now`` (:func:`started`) and their milestones count: the API,
    the weekly report and the screen give the same figures for the same instant. With
    ``history`` (the audit table, :func:`audit`), tasks are as they were at ``now``
    (:func:`as_of`) and the escalation entries of ``[since, now)`` are counted.
    """
    tasks = as_of(tasks, history, now)
    milestones = milestones_as_of(milestones, history, now)
    tasks, milestones = started(tasks, milestones, now)
    day = today(now)
    by = department_figures(tasks, milestones, now, history, since)
    tot = by[list(_INTS)].sum()
    due, on_time = int(tot["due"]), int(tot["on_time"])
    all_: dict[str, Any] = {c: int(tot[c]) for c in _INTS}
    all_["on_time_rate"] = round(on_time / due, 4) if due else None
    od = overdue_tasks(tasks, now)
    cols = [
        c
        for c in ("task_no", "title", "kind", "lead_department", "status", "progress", "escalation")
        if c in od
    ]
    rows = []
    for _, r in od.iterrows():
        rec = {c: (None if not isinstance(r[c], str) and pd.isna(r[c]) else r[c]) for c in cols}
        if "progress" in rec and rec["progress"] is not None:
            rec["progress"] = float(rec["progress"])
        rec["deadline"] = str(local_days(pd.Series([r["deadline"]])).iloc[0].date())
        rec["overdue_days"] = int(r["overdue_days"])
        rows.append(rec)
    return {
        "now": pd.Timestamp(now).isoformat(),
        "since": None if since is None else _instant(since, "since").isoformat(),
        "day": str(day.date()),
        "all": all_,
        "by_department": to_records(by),
        "ranking": ranking(tasks, milestones, now, history, since),
        "escalations": escalations(tasks),
        "overdue_tasks": rows,
    }


def tables(store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw ``key_tasks`` (a GeoDataFrame) and ``key_task_milestones`` rows of ``store``;
    empty frames with the layers' columns when the store has no such table yet."""
    import geopandas as gpd

    from layers.catalogue import get_layer

    out = []
    for layer_id in ("key_tasks", "key_task_milestones"):
        layer = get_layer(layer_id)
        if store.has_layer(layer):
            out.append(store.read_frame(layer))
        else:
            cols = [f.name for f in layer.fields]
            frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
            out.append(
                gpd.GeoDataFrame(frame, geometry=[], crs=4326) if layer.geometry_type else frame
            )
    return out[0], out[1]


def audit(store) -> pd.DataFrame:
    """The raw audit rows of ``store``'s key tasks (``key_task_history``:
    :data:`HISTORY_COLUMNS`); an empty frame when it has none."""
    from layers.key_tasks import HISTORY

    if not store.has_layer(HISTORY):
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in HISTORY_COLUMNS})
    return pd.DataFrame(store.read_frame(HISTORY))[list(HISTORY_COLUMNS)]


def _points(points: pd.DataFrame):
    """Point geometries (lon/lat) of a GeoDataFrame, or of ``place_lon``/``place_lat``
    (opinion posts placed by the pipeline) or else ``lon``/``lat`` columns."""
    import shapely

    if "geometry" in points and hasattr(points, "crs"):
        g = points.geometry
        return g.to_crs(4326).to_numpy() if g.crs is not None else g.to_numpy()
    # a placed post's place first: its own lon/lat are the poster's GPS (mostly NaN)
    for x, y in (("place_lon", "place_lat"), ("lon", "lat")):
        if x in points and y in points:
            return shapely.points(points[x].to_numpy(float), points[y].to_numpy(float))
    raise InvalidParameter(
        "points need a geometry, or lon/lat or place_lon/place_lat columns "
        f"(have: {', '.join(map(str, points.columns))})"
    )


def area_counts(
    tasks,
    points: pd.DataFrame,
    *,
    time: str = "reported_at",
    days: int = 90,
    buffer_m: float = 50.0,
    distinct: str | None = None,
) -> pd.DataFrame:
    """Points inside each key task's area in the ``days`` before and after its start.

    Parameters
    ----------
    tasks : GeoDataFrame
        Key tasks (``task_no``, ``start_date``, geometry in EPSG:4326): a polygon is its
        area; a point or a line (a river section) is buffered by ``buffer_m`` metres.
    points : GeoDataFrame or DataFrame
        Cases (``reported_at``), or opinion posts placed by
        :func:`analytics.opinion.pipeline.understand` (``time="posted_at"``,
        ``place_lon``/``place_lat``; unplaced posts are not counted).
    time : str, default "reported_at"
        The column of the points' instants.
    days : int, default 90
        Window length; both windows are ``days`` long, split at the start day's
        Beijing midnight (before: ``[start - days, start)``, after: ``[start, start + days)``).
    buffer_m : float, default 50
        Buffer of point and line tasks, in metres.
    distinct : str, optional
        Count distinct values of this column (e.g. ``topic_id``: opinion topics) instead of
        rows.

    Returns
    -------
    DataFrame
        Indexed by ``task_no``: ``before``, ``after``, ``change`` (after - before),
        ``window_days`` and ``after_complete`` (False when the latest point is earlier than
        the after window's end: a task started near the data's end has a short ``after``).
    """
    import geopandas as gpd

    from layers.district import UTM

    if days <= 0:
        raise InvalidParameter(f"days must be a positive number of days, got {days}")
    _need(tasks, ("task_no", "start_date"), "tasks")
    _need(points, (time,), "points")
    areas = gpd.GeoSeries(tasks.geometry.to_numpy(), crs=tasks.crs or 4326).to_crs(UTM)
    areas = areas.where(areas.geom_type.isin(["Polygon", "MultiPolygon"]), areas.buffer(buffer_m))
    pts = gpd.GeoSeries(_points(points), crs=4326).to_crs(UTM)
    keep = ~(pts.is_empty | pts.isna()).to_numpy()
    at = pd.to_datetime(points[time], utc=True, format="ISO8601").to_numpy()[keep]
    pts = pts[keep]
    extra = points[distinct].to_numpy()[keep] if distinct else None
    start = local_days(tasks["start_date"]).dt.tz_localize(TZ_NAME).dt.tz_convert("UTC").to_numpy()
    span = np.timedelta64(days, "D")
    latest = at.max() if len(at) else None
    rows = []
    tree_idx = areas.sindex.query(pts.to_numpy(), predicate="within") if len(pts) else None
    for i, task_no in enumerate(tasks["task_no"]):
        hit = tree_idx[0][tree_idx[1] == i] if tree_idx is not None else np.array([], int)
        t = at[hit]
        s = start[i]
        before = (t >= s - span) & (t < s)
        after = (t >= s) & (t < s + span)
        if extra is not None:
            e = extra[hit]
            nb = len(pd.unique(pd.Series(e[before]).dropna()))
            na = len(pd.unique(pd.Series(e[after]).dropna()))
        else:
            nb, na = int(before.sum()), int(after.sum())
        # the points stop before the window's end (a task started near the data's end):
        # ``after`` is not comparable with ``before``
        complete = bool(latest is not None and s + span <= latest)
        rows.append((task_no, nb, na, na - nb, days, complete))
    return pd.DataFrame(
        rows, columns=["task_no", "before", "after", "change", "window_days", "after_complete"]
    ).set_index("task_no")
