"""Key-task figures from the audit trail (issue 15): the escalation entries of a period per
lead department, and a past week's tasks as they were then, in the supervision API, the weekly
report and the screen, each checked against SQL on the raw ``key_task_history`` table.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import pandas as pd
import pytest
import requests
from stores import writable_copy

from analytics.report import weekly_report
from analytics.screen import screen_summary
from layers import access
from layers import key_task_figures as ktf
from layers import key_tasks as kt
from layers.stores import open_store

LEADER = access.Principal("deputy mayor", "leadership")
BJ = dt.timezone(dt.timedelta(hours=8))
#: The sample's report week 2026-W47 (Beijing), and the instant its figures are taken at.
W47 = (dt.datetime(2026, 11, 16, tzinfo=BJ), dt.datetime(2026, 11, 23, tzinfo=BJ))


def raw(data: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of ``sql`` (``?`` placeholders) on the store's own tables."""
    if "://" not in data:
        con = sqlite3.connect(data)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()
    import psycopg

    from layers.postgis import split_url

    conninfo, opts = split_url(data)
    with psycopg.connect(conninfo) as c:
        c.execute(f'SET search_path TO "{opts.get("schema", "public")}", public')
        return c.execute(sql.replace("?", "%s"), params).fetchall()


def _utc(at) -> dt.datetime:
    """A stored instant (text or datetime) as an aware UTC datetime."""
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    return at.astimezone(dt.UTC) if at.tzinfo else at.replace(tzinfo=dt.UTC)


def entries_by_sql(data, since, until) -> dict[str, tuple[int, int]]:
    """(warning entries, accountability entries) per lead department, ``since <= at < until``,
    from the raw history rows joined to their task (tasks started by ``until``'s day)."""
    rows = raw(
        data,
        "SELECT t.lead_department, h.action, h.at, t.start_date FROM key_task_history h "
        "JOIN key_tasks t ON t.task_no = h.task_no "
        "WHERE h.action IN ('warning', 'accountability')",
    )
    last = (until - dt.timedelta(microseconds=1)).astimezone(BJ).date()
    out: dict[str, list[int]] = {}
    for dep, action, at, start in rows:
        if str(start)[:10] > last.isoformat():
            continue
        if since <= _utc(at) < until:
            out.setdefault(dep, [0, 0])[action == "accountability"] += 1
    return {d: (w, a) for d, (w, a) in out.items()}


def figures_entries(records) -> dict[str, tuple[int, int]]:
    return {
        r["department"]: (r["warning_entries"], r["accountability_entries"])
        for r in records
        if r["warning_entries"] or r["accountability_entries"]
    }


# --- escalation entries in the figures ---------------------------------------------------------


@pytest.mark.both_stores
def test_api_counts_the_periods_entries_per_department_as_sql_does(live_server, store_url):
    now, since = dt.datetime(2026, 11, 23, tzinfo=BJ), dt.datetime(2026, 10, 1, tzinfo=BJ)
    want = entries_by_sql(store_url, since, now)
    assert len(want) > 2 and any(a for _, a in want.values())  # several departments, both
    r = requests.get(
        f"{live_server.url}/supervision/key-tasks",
        params={"now": now.isoformat(), "since": since.isoformat()},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert figures_entries(doc["by_department"]) == want
    assert figures_entries(doc["ranking"]) == want
    assert doc["all"]["warning_entries"] == sum(w for w, _ in want.values())
    assert doc["all"]["accountability_entries"] == sum(a for _, a in want.values())
    assert pd.Timestamp(doc["since"]) == pd.Timestamp(since)
    # every entry before now without a since
    everything = requests.get(
        f"{live_server.url}/supervision/key-tasks", params={"now": now.isoformat()}, timeout=60
    ).json()
    assert figures_entries(everything["by_department"]) == entries_by_sql(
        store_url, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), now
    )
    for bad, needle in (("soon", "since"), (now.isoformat(), "must be before now")):
        r = requests.get(
            f"{live_server.url}/supervision/key-tasks",
            params={"now": now.isoformat(), "since": bad},
            timeout=60,
        )
        assert r.status_code == 400 and needle in r.json()["description"], r.text


def _busiest_week(data) -> tuple[str, dt.datetime, dt.datetime]:
    """The sample's ISO week (before W47) with the most escalation entries of both kinds."""
    rows = raw(
        data,
        "SELECT action, at FROM key_task_history WHERE action IN ('warning', 'accountability')",
    )
    weeks: dict[tuple, list[int]] = {}
    for action, at in rows:
        d = _utc(at).astimezone(BJ).date()
        weeks.setdefault(d.isocalendar()[:2], [0, 0])[action == "accountability"] += 1
    (year, week), _ = max(
        ((k, v) for k, v in weeks.items() if k < (2026, 47) and min(v) > 0),
        key=lambda kv: sum(kv[1]),
    )
    monday = dt.date.fromisocalendar(year, week, 1)
    start = dt.datetime(monday.year, monday.month, monday.day, tzinfo=BJ)
    return f"{year}-W{week:02d}", start, start + dt.timedelta(days=7)


def _report(sample_data, week: str, tables):
    """The sample's weekly report of ``week`` with the key tasks of ``tables`` (a store, or
    the frames: tasks, milestones, audit rows)."""
    if not isinstance(tables, tuple):
        tables = (*ktf.tables(tables), ktf.audit(tables))
    return weekly_report(
        sample_data["incidents"],
        sample_data["communities"],
        week,
        charts=False,
        outlook=False,
        key_tasks=tables,
    )


def test_report_and_screen_count_the_weeks_entries_as_sql_does(sample_gpkg, sample_data):
    s = open_store(sample_gpkg)
    tables = (*ktf.tables(s), ktf.audit(s))
    for label, since, until in (("2026-W47", *W47), _busiest_week(sample_gpkg)):
        want = entries_by_sql(sample_gpkg, since, until)
        assert want, label
        rep = _report(sample_data, label, tables)
        k = rep.figures["key_tasks"]
        assert figures_entries(k["ranking"]) == want, label
        assert k["all"]["warning_entries"] == sum(w for w, _ in want.values())
        assert k["all"]["accountability_entries"] == sum(a for _, a in want.values())
        assert f'id="key-warning-entries">{k["all"]["warning_entries"]}<' in rep.html
    # the screen on the sample's last day: this week's (W47's) entries
    panel = screen_summary(
        sample_data["incidents"],
        sample_data["communities"],
        "2026-11-22",
        outlook=False,
        key_tasks=tables,
    )["key_tasks"]
    want = entries_by_sql(sample_gpkg, *W47)
    assert figures_entries(panel["ranking"]) == want
    assert panel["all"]["warning_entries"] == sum(w for w, _ in want.values()) > 0
    assert pd.Timestamp(panel["since"]) == pd.Timestamp(W47[0])


# --- a past week's report: the status the task had then ----------------------------------------


def status_by_sql(data, until) -> dict[str, str]:
    """Each task's status at ``until`` from the raw history: its last move's ``to_status``
    before ``until``, ``assigned`` when issued but never moved; tasks not yet issued left out."""
    rows = raw(
        data,
        "SELECT task_no, at, action, to_status FROM key_task_history "
        "WHERE action IN ('issue', 'transition')",
    )
    out: dict[str, tuple[dt.datetime, str]] = {}
    for task_no, at, action, to in sorted(rows, key=lambda r: (r[0], _utc(r[1]))):
        if _utc(at) < until:
            out[task_no] = (_utc(at), to if action == "transition" else "assigned")
    return {t: s for t, (_, s) in out.items()}


def test_a_past_weeks_report_shows_the_status_of_that_week(sample_gpkg, sample_data):
    """A task accepted after week W is still 'submitted' (open, overdue) in W's report; and
    the open tasks of an earlier week are those the history says were open then."""
    data = writable_copy("gpkg", sample_gpkg, "kt_audit_report")
    s = open_store(data)
    try:
        before = _report(sample_data, "2026-W47", s).figures["key_tasks"]
        row = next(r for r in before["overdue_tasks"] if r["status"] == "submitted")
        kt.transition(
            s, row["task_no"], "accepted", LEADER, now=dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC)
        )
        assert s.get(kt.TASKS, row["task_no"])["properties"]["status"] == "accepted"
        after = _report(sample_data, "2026-W47", s)
        k = after.figures["key_tasks"]
        again = next(r for r in k["overdue_tasks"] if r["task_no"] == row["task_no"])
        assert again["status"] == "submitted"
        assert k["all"] == before["all"] and k["overdue_tasks"] == before["overdue_tasks"]
        assert row["task_no"] in after.html
        # an earlier week: open tasks as the raw history has them then
        label, _, until = _busiest_week(data)
        past = _report(sample_data, label, s).figures["key_tasks"]
        then = status_by_sql(data, until)
        starts = dict(raw(data, "SELECT task_no, start_date FROM key_tasks"))
        last = (until - dt.timedelta(days=1)).date().isoformat()
        started = {t: st for t, st in then.items() if str(starts[t])[:10] <= last}
        want_open = sum(1 for st in started.values() if st != "accepted")
        assert past["all"]["open_tasks"] == want_open
        today_open = sum(
            1
            for t in started
            if s.get(kt.TASKS, t)["properties"]["status"] != "accepted"  # today's status
        )
        assert want_open != today_open  # the week's figure is not today's
    finally:
        s.close()


def test_a_past_weeks_report_keeps_the_milestones_planned_then(sample_gpkg, sample_data):
    """Milestones changed after week W (one re-planned later, one deleted, one added) leave W's
    report as it was: its milestones, due, overdue and on-time figures are those of W."""
    data = writable_copy("gpkg", sample_gpkg, "kt_audit_plans")
    s = open_store(data)
    try:
        doc = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [109.47, 18.296]},
            "properties": {
                "title": "计划变更测试",
                "kind": "rectification",
                "lead_department": "urban_admin",
                "start_date": "2026-11-01",
                "deadline": "2027-02-28",
            },
        }
        plan = [
            {"title": "摸底", "due_date": "2026-11-10"},
            {"title": "整治", "due_date": "2026-11-18"},
            {"title": "验收", "due_date": "2027-02-01"},
        ]
        no = kt.create_task(
            s, doc, LEADER, now=dt.datetime(2026, 11, 1, 2, tzinfo=dt.UTC), milestones=plan
        )["id"]
        before = _report(sample_data, "2026-W47", s).figures["key_tasks"]
        mine = next(r for r in before["by_department"] if r["department"] == "urban_admin")
        later = dt.datetime(2026, 12, 2, 2, tzinfo=dt.UTC)
        kt.replan_milestone(s, no, 2, LEADER, due_date="2027-01-15", note="推迟", now=later)
        kt.delete_milestone(s, no, 1, LEADER, note="合并", now=later)
        kt.add_milestone(s, no, {"title": "补充", "due_date": "2026-11-20"}, LEADER, now=later)
        after = _report(sample_data, "2026-W47", s).figures["key_tasks"]
        assert after["all"] == before["all"] and after["by_department"] == before["by_department"]
        # the changes are real: today's figures of the same instant without the audit rows
        today = ktf.summary(*ktf.tables(s), now=W47[1])
        now_mine = next(r for r in today["by_department"] if r["department"] == "urban_admin")
        assert mine["overdue_milestones"] >= 2  # 11-10 and 11-18 were overdue in W47
        assert now_mine["overdue_milestones"] == mine["overdue_milestones"] - 1
        assert now_mine["milestones"] == mine["milestones"]  # one deleted, one added
    finally:
        s.close()
