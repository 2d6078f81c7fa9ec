"""Key-task supervision figures (issue 15 item 3) against an independent computation.

The figures of :mod:`layers.key_task_figures` are recomputed here in plain SQL (SQLite, from
the raw rows as text) on random tables and on hand-made ones; the counts inside a task's area
with plain shapely loops.
"""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from layers import key_task_figures as ktf
from layers.errors import InvalidParameter

DEPTS = ("water", "urban", "housing", "emergency", "transport")
STATUSES = ("assigned", "in_progress", "submitted", "accepted", "returned")
NOW = "2026-06-15T03:00:00Z"  # 2026-06-15 11:00 Beijing


def _random_tables(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    base = pd.Timestamp("2026-01-01")
    tasks, ms = [], []
    for i in range(n):
        start = base + pd.Timedelta(days=int(rng.integers(0, 120)))
        deadline = start + pd.Timedelta(days=int(rng.integers(20, 200)))
        tasks.append(
            {
                "task_no": f"KT{i:03d}",
                "title": f"task {i}",
                "lead_department": DEPTS[int(rng.integers(0, len(DEPTS)))],
                "status": STATUSES[int(rng.integers(0, len(STATUSES)))],
                "start_date": start.date().isoformat(),
                "deadline": deadline.date().isoformat(),
                "progress": int(rng.integers(0, 101)),
                "escalation": ("none", "warning", "accountability")[int(rng.integers(0, 3))],
            }
        )
        for seq in range(1, int(rng.integers(0, 5)) + 1):
            due = start + pd.Timedelta(days=int(rng.integers(5, 200)))
            r = rng.random()
            done = None
            if r < 0.7:
                done = (due + pd.Timedelta(days=int(rng.integers(-10, 8)))).date().isoformat()
            ms.append(
                {
                    "task_no": f"KT{i:03d}",
                    "seq": seq,
                    "due_date": due.date().isoformat(),
                    "done_date": done,
                }
            )
    return pd.DataFrame(tasks), pd.DataFrame(ms)


_SQL = """
WITH m AS (
  SELECT t.lead_department AS dep,
         (m.done_date IS NOT NULL AND m.done_date <= :day) AS done,
         m.due_date, m.done_date
  FROM milestones m JOIN tasks t USING (task_no)
), md AS (
  SELECT dep, COUNT(*) AS milestones,
         SUM(done OR due_date < :day) AS due,
         SUM(done AND done_date <= due_date) AS on_time,
         SUM(done AND done_date > due_date) AS late,
         SUM(NOT done AND due_date < :day) AS overdue_milestones
  FROM m GROUP BY dep
), td AS (
  SELECT lead_department AS dep, COUNT(*) AS tasks,
         SUM(status <> 'accepted') AS open_tasks,
         SUM(status <> 'accepted' AND deadline < :day) AS overdue_tasks,
         SUM(escalation = 'warning') AS warnings,
         SUM(escalation = 'accountability') AS accountability
  FROM tasks GROUP BY lead_department
)
SELECT td.dep, tasks, open_tasks, overdue_tasks, COALESCE(milestones, 0),
       COALESCE(due, 0), COALESCE(on_time, 0), COALESCE(late, 0),
       COALESCE(overdue_milestones, 0), warnings, accountability
FROM td LEFT JOIN md USING (dep) ORDER BY td.dep
"""


def _by_sql(tasks: pd.DataFrame, ms: pd.DataFrame, day: str) -> dict[str, tuple]:
    con = sqlite3.connect(":memory:")
    tasks.to_sql("tasks", con)
    ms.to_sql("milestones", con)
    rows = con.execute(_SQL, {"day": day}).fetchall()
    con.close()
    return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_department_figures_match_sql(seed):
    tasks, ms = _random_tables(seed)
    got = ktf.department_figures(tasks, ms, now=NOW)
    want = _by_sql(tasks, ms, "2026-06-15")
    assert set(got.index) == set(want)
    cols = [
        "tasks",
        "open_tasks",
        "overdue_tasks",
        "milestones",
        "due",
        "on_time",
        "late",
        "overdue_milestones",
        "warnings",
        "accountability",
    ]
    for dep, row in want.items():
        assert tuple(int(v) for v in got.loc[dep, cols]) == row, dep
        due, on_time = row[4], row[5]
        rate = got.loc[dep, "on_time_rate"]
        assert (np.isnan(rate) and due == 0) or rate == pytest.approx(on_time / due)
    # mean progress as pandas' own groupby of the raw column
    assert got["mean_progress"].to_dict() == pytest.approx(
        tasks.groupby("lead_department")["progress"].mean().to_dict()
    )


def test_ranking_order_and_totals():
    tasks, ms = _random_tables(7)
    want = _by_sql(tasks, ms, "2026-06-15")
    rank = ktf.ranking(tasks, ms, now=NOW)
    assert [r["rank"] for r in rank] == list(range(1, len(want) + 1))

    def key(dep):
        r = want[dep]
        rate = r[5] / r[4] if r[4] else None
        return (rate is None, -(rate or 0), r[2], r[9], r[8], dep)

    assert [r["department"] for r in rank] == sorted(want, key=key)
    s = ktf.summary(tasks, ms, now=NOW)
    assert s["all"]["due"] == sum(r[4] for r in want.values())
    assert s["all"]["on_time"] == sum(r[5] for r in want.values())
    assert (
        s["escalations"]
        == tasks["escalation"].value_counts().reindex(ktf.ESCALATIONS, fill_value=0).to_dict()
    )
    od = tasks[(tasks["status"] != "accepted") & (tasks["deadline"] < "2026-06-15")]
    assert sorted(r["task_no"] for r in s["overdue_tasks"]) == sorted(od["task_no"])
    days = [r["overdue_days"] for r in s["overdue_tasks"]]
    assert days == sorted(days, reverse=True) and all(d > 0 for d in days)


def test_days_are_beijing_days_and_reports_after_now_do_not_count():
    tasks = pd.DataFrame(
        {"task_no": ["A"], "lead_department": ["water"], "status": ["in_progress"],
         "deadline": ["2026-06-14"], "escalation": ["none"]}
    )  # fmt: skip
    ms = pd.DataFrame(
        {"task_no": ["A", "A"], "seq": [1, 2], "due_date": ["2026-06-14", "2026-06-14"],
         # done at 23:30 Beijing on the due day (15:30 UTC): on time; the other after now
         "done_date": [pd.Timestamp("2026-06-14T15:30:00Z"), "2026-06-20"]}
    )  # fmt: skip
    # 2026-06-14 20:00 UTC is 2026-06-15 04:00 Beijing: the due day is over
    f = ktf.department_figures(tasks, ms, now="2026-06-14T20:00:00Z").loc["water"]
    assert (f["on_time"], f["overdue_milestones"], f["overdue_tasks"]) == (1, 1, 1)
    # 2026-06-14 15:00 UTC is 23:00 Beijing on the due day: nothing overdue yet (days are
    # the unit: the milestone done that day counts as done)
    f = ktf.department_figures(tasks, ms, now="2026-06-14T15:00:00Z").loc["water"]
    assert (f["due"], f["on_time"], f["overdue_milestones"], f["overdue_tasks"]) == (1, 1, 0, 0)
    assert f["on_time_rate"] == 1.0
    # the day before: neither is done, nothing due
    f = ktf.department_figures(tasks, ms, now="2026-06-13T03:00:00Z").loc["water"]
    assert (f["due"], f["overdue_milestones"]) == (0, 0) and np.isnan(f["on_time_rate"])


def test_refusals():
    tasks, ms = _random_tables(1, 3)
    with pytest.raises(InvalidParameter, match="now is required"):
        ktf.department_figures(tasks, ms, now=None)
    with pytest.raises(InvalidParameter, match="lacks columns: lead_department"):
        ktf.department_figures(tasks.drop(columns="lead_department"), ms, now=NOW)
    with pytest.raises(InvalidParameter, match="days must be"):
        ktf.area_counts(gpd.GeoDataFrame(tasks, geometry=[None] * 3), ms, days=0)


def test_area_counts_against_shapely_loops():
    rng = np.random.default_rng(5)
    area = shapely.box(109.40, 18.28, 109.42, 18.30)
    river = shapely.LineString([(109.45, 18.30), (109.47, 18.31)])
    tasks = gpd.GeoDataFrame(
        {"task_no": ["P", "L"], "start_date": ["2026-03-01", "2026-04-01"]},
        geometry=[area, river],
        crs=4326,
    )
    n = 8000
    lon = rng.uniform(109.38, 109.48, n)
    lat = rng.uniform(18.26, 18.33, n)
    at = pd.Timestamp("2025-12-01T00:00:00Z") + pd.to_timedelta(rng.uniform(0, 220, n), unit="D")
    cases = gpd.GeoDataFrame(
        {"reported_at": at, "topic_id": rng.integers(0, 40, n)},
        geometry=shapely.points(lon, lat),
        crs=4326,
    )
    got = ktf.area_counts(tasks, cases, days=60, buffer_m=200)
    # independent: every point tested one by one, the river buffered 200 m in UTM 49N
    utm = gpd.GeoSeries([area, river], crs=4326).to_crs(32649)
    shapes = [utm.iloc[0], utm.iloc[1].buffer(200)]
    pts = gpd.GeoSeries(cases.geometry, crs=4326).to_crs(32649)
    for shape, (task_no, start) in zip(
        shapes, [("P", "2026-03-01"), ("L", "2026-04-01")], strict=True
    ):
        s = pd.Timestamp(start).tz_localize("Asia/Shanghai").tz_convert("UTC")
        inside = np.array([shape.contains(p) for p in pts])
        t = cases["reported_at"]
        before = inside & (t >= s - pd.Timedelta(days=60)).to_numpy() & (t < s).to_numpy()
        after = inside & (t >= s).to_numpy() & (t < s + pd.Timedelta(days=60)).to_numpy()
        assert got.loc[task_no, "before"] == before.sum() > 0
        assert got.loc[task_no, "after"] == after.sum() > 0
        assert got.loc[task_no, "change"] == after.sum() - before.sum()
    assert got["after_complete"].all()  # the points run to July, the windows end by June
    long = ktf.area_counts(tasks, cases, days=200, buffer_m=200)
    latest = cases["reported_at"].max()
    for task_no, start in [("P", "2026-03-01"), ("L", "2026-04-01")]:
        end = pd.Timestamp(start).tz_localize("Asia/Shanghai") + pd.Timedelta(days=200)
        assert long.loc[task_no, "after_complete"] == (end <= latest) == False  # noqa: E712
    # opinion posts: placed by lon/lat columns, topics counted once, unplaced ones left out
    posts = pd.DataFrame(
        {
            "posted_at": cases["reported_at"],
            "place_lon": np.where(np.arange(n) % 10 == 0, np.nan, lon),
            "place_lat": lat,
            "topic_id": cases["topic_id"],
        }
    )
    topics = ktf.area_counts(tasks, posts, time="posted_at", days=60, distinct="topic_id")
    inside = np.array([shapes[0].contains(p) for p in pts]) & (np.arange(n) % 10 != 0)
    s = pd.Timestamp("2026-03-01").tz_localize("Asia/Shanghai").tz_convert("UTC")
    t = cases["reported_at"]
    win = inside & (t >= s - pd.Timedelta(days=60)).to_numpy() & (t < s).to_numpy()
    assert topics.loc["P", "before"] == len(set(cases["topic_id"][win]))


# --- the map ---------------------------------------------------------------------------------


def _map_tasks():
    """Three tasks: an area (in progress, warned), a river section (accepted), a site
    (returned, on the accountability list)."""
    return gpd.GeoDataFrame(
        {
            "task_no": ["KT-A", "KT-L", "KT-P"],
            "title": ["片区改造 <b>A</b>", "三亚河河段整治", "防台风物资点"],
            "kind": ["renovation_area", "river_section", "typhoon_preparation"],
            "lead_department": ["housing", "water", "emergency"],
            "start_date": ["2026-03-01", "2026-04-01", "2026-05-01"],
            "deadline": ["2026-06-01", "2026-09-30", "2026-06-10"],
            "status": ["in_progress", "accepted", "returned"],
            "progress": [40, 100, 70],
            "escalation": ["warning", "none", "accountability"],
            "responsible_phone": ["13800000000"] * 3,
        },
        geometry=[
            shapely.box(109.40, 18.28, 109.42, 18.30),
            shapely.LineString([(109.45, 18.30), (109.47, 18.31)]),
            shapely.Point(109.50, 18.25),
        ],
        crs=4326,
    )


def test_key_tasks_map_colours_by_status_offline(sample_data):
    from test_map_forecast import _features
    from test_map_offline import remote_references

    from analytics.maps import key_tasks_map, render_html
    from layers.catalogue import LAYERS

    tasks = _map_tasks()
    ms = pd.DataFrame(
        {"task_no": ["KT-A", "KT-A", "KT-P"], "seq": [1, 2, 1],
         "due_date": ["2026-04-01", "2026-05-01", "2026-05-20"],
         "done_date": ["2026-03-30", None, None]}
    )  # fmt: skip
    counts = ktf.area_counts(tasks, sample_data["incidents"], days=60)
    m = key_tasks_map(tasks, ms, now=NOW, counts=counts, communities=sample_data["communities"])
    html = render_html(m)
    feats = [f for f in _features(html) if "_status" in f["properties"]]
    assert sorted(f["properties"]["task_no"] for f in feats) == ["KT-A", "KT-L", "KT-P"]
    colors = {c.code: c.color for c in LAYERS["key_tasks"].field("status").codes}
    for f in feats:
        p = f["properties"]
        assert p["_color"] == colors[p["_status"]]
        assert "responsible_phone" not in p and "13800000000" not in html  # public fields only
    by = {f["properties"]["task_no"]: f for f in feats}
    assert by["KT-L"]["geometry"]["type"] == "LineString"
    assert by["KT-P"]["geometry"]["type"] == "Point"
    assert by["KT-A"]["properties"]["status"] == "推进中 In progress"  # labels, not codes
    assert by["KT-A"]["properties"]["milestones"].startswith("1/2")  # 1 on time of 2 due
    c = counts.loc["KT-A"]
    assert by["KT-A"]["properties"]["area_counts"] == f"{c['before']} → {c['after']}"
    # the title is kept as data; the popup shows it as text (map_parts.TextPopup)
    assert by["KT-A"]["properties"]["title"] == "片区改造 <b>A</b>"
    assert "tianyaEscape(feature)" in html
    assert remote_references(html) == []


def test_key_tasks_map_refuses_nothing_to_map():
    from analytics.errors import AnalyticsError
    from analytics.maps import key_tasks_map

    empty = _map_tasks().iloc[:0]
    with pytest.raises(AnalyticsError, match="no key tasks"):
        key_tasks_map(empty)


def test_a_midnight_counts_the_day_before():
    tasks = pd.DataFrame(
        {"task_no": ["A"], "lead_department": ["water"], "status": ["in_progress"],
         "deadline": ["2026-12-31"], "escalation": ["none"]}
    )  # fmt: skip
    ms = pd.DataFrame({"task_no": ["A"], "due_date": ["2026-11-22"], "done_date": ["2026-11-23"]})
    # Monday 2026-11-23 00:00 Beijing: Sunday is over, Monday's report is not in yet
    monday = pd.Timestamp("2026-11-23", tz="Asia/Shanghai")
    f = ktf.department_figures(tasks, ms, now=monday).loc["water"]
    assert (f["due"], f["on_time"], f["late"], f["overdue_milestones"]) == (1, 0, 0, 1)
    f = ktf.department_figures(tasks, ms, now=monday + pd.Timedelta(hours=1)).loc["water"]
    assert (f["due"], f["on_time"], f["late"], f["overdue_milestones"]) == (1, 0, 1, 0)


# --- the sample, in both stores and over HTTP ----------------------------------------------------

SAMPLE_NOW = "2026-11-22T04:00:00Z"  # the sample's last day, noon in Beijing


def _sample_sql(sample_data, started: bool = False) -> dict[str, tuple]:
    """The sample's figures by SQL over its raw generated rows (never through a store); with
    ``started`` of the tasks started by the sample's last day only."""
    t = pd.DataFrame(sample_data["key_tasks"].drop(columns="geometry"))
    if started:
        t = t[t["start_date"] <= "2026-11-22"]
    m = pd.DataFrame(sample_data["key_task_milestones"])
    cols = ["task_no", "lead_department", "status", "deadline", "escalation", "start_date"]
    return _by_sql(t[cols], m[["task_no", "seq", "due_date", "done_date"]], "2026-11-22")


@pytest.mark.both_stores
def test_sample_figures_from_each_store_match_sql(store_url, sample_data):
    from layers.stores import open_store

    want = _sample_sql(sample_data)
    assert sum(r[3] for r in want.values()) > 0 and sum(r[2] for r in want.values()) > 0
    with open_store(store_url) as s:
        tasks, ms = ktf.tables(s)
    assert len(tasks) == len(sample_data["key_tasks"]) and len(ms) > len(tasks)
    got = ktf.department_figures(tasks, ms, now=SAMPLE_NOW)
    cols = list(ktf.COLUMNS[:8]) + ["warnings", "accountability"]
    assert {d: tuple(int(v) for v in got.loc[d, cols]) for d in got.index} == want
    # departments differ: the ranking separates them
    rates = [r["on_time_rate"] for r in ktf.ranking(tasks, ms, now=SAMPLE_NOW)]
    assert len(set(rates)) > 2


@pytest.mark.both_stores
def test_supervision_key_tasks_route(live_server, sample_data):
    import requests

    want = _sample_sql(sample_data, started=True)
    r = requests.get(f"{live_server.url}/supervision/key-tasks?now={SAMPLE_NOW}", timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["day"] == "2026-11-22" and "on_time_rate" in doc["definitions"]
    got = {x["department"]: x for x in doc["by_department"]}
    assert set(got) == set(want)
    for dep, row in want.items():
        assert (got[dep]["due"], got[dep]["on_time"], got[dep]["overdue_tasks"]) == (
            row[4],
            row[5],
            row[2],
        )
    assert (
        doc["all"]["overdue_tasks"] == len(doc["overdue_tasks"]) == sum(r[2] for r in want.values())
    )
    assert [x["rank"] for x in doc["ranking"]] == list(range(1, len(want) + 1))
    t = sample_data["key_tasks"]
    t = t[t["start_date"] <= "2026-11-22"]
    assert len(t) < len(sample_data["key_tasks"])  # a task starting on 11-23 is left out
    assert doc["escalations"] == {
        k: int((t["escalation"] == k).sum()) for k in ("none", "warning", "accountability")
    }
    # public: no sensitive field of a task reaches the answer
    assert "responsible" not in r.text
    bad = requests.get(f"{live_server.url}/supervision/key-tasks?now=soon", timeout=60)
    assert bad.status_code == 400
    bad = requests.get(f"{live_server.url}/supervision/key-tasks?by=department", timeout=60)
    assert bad.status_code == 400 and "now, since, f" in bad.json()["description"]


def test_opinion_topics_inside_the_sample_tasks_areas(sample_data):
    """Issue 15 item 4: opinion posts placed by the pipeline (analytics.opinion) counted
    against each key task's area as distinct topics before and after its start; checked
    with a shapely loop over the placed posts."""
    from analytics.opinion.gazetteer import build_gazetteer
    from analytics.opinion.pipeline import understand
    from geodata.opinion import generate_posts

    posts = understand(
        generate_posts(sample_data, seed=5, n_posts=3000), build_gazetteer(sample_data)
    )
    placed = posts[posts["actionable"] & posts["place_lon"].notna()]
    tasks = sample_data["key_tasks"]
    got = ktf.area_counts(tasks, placed, time="posted_at", days=120, distinct="topic_id")
    utm = tasks.to_crs(32649)
    pts = gpd.GeoSeries(shapely.points(placed["place_lon"], placed["place_lat"]), crs=4326).to_crs(
        32649
    )
    at = pd.to_datetime(placed["posted_at"], utc=True).dt.tz_convert(None).to_numpy()
    for task_no, geom, start in zip(
        tasks["task_no"], utm.geometry, tasks["start_date"], strict=True
    ):
        area = geom if geom.geom_type in ("Polygon", "MultiPolygon") else geom.buffer(50)
        s = pd.Timestamp(start).tz_localize("Asia/Shanghai").tz_convert(None).to_datetime64()
        inside = np.array([area.contains(p) for p in pts])
        span = np.timedelta64(120, "D")
        before = inside & (at >= s - span) & (at < s)
        after = inside & (at >= s) & (at < s + span)
        topic = placed["topic_id"].to_numpy()
        assert got.loc[task_no, "before"] == len(set(topic[before]))
        assert got.loc[task_no, "after"] == len(set(topic[after]))
    assert got["before"].sum() + got["after"].sum() > 0
