"""The server schedules the key-task supervision clock (issue 15: escalation ran only from
``tianya escalate``): :mod:`tianya.schedule` on its own, its ticks driven with a given instant,
and a running two-worker server whose clock passes a milestone's due date, then its grace
period: one warning, then one accountability entry, counted in the raw history table.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time

import pytest
from casekit import GEOJSON, headers
from conftest import LiveServer
from stores import writable_copy
from test_key_task_writes import AREA

from layers import access
from layers import key_tasks as kt
from layers.errors import InvalidParameter
from tianya import schedule
from tianya.settings import Settings

LEADER = access.Principal("deputy mayor", "leadership")
#: The task's first milestone is due on this day (Tianya), its second and deadline later.
DUE = dt.date(2027, 1, 10)


def task_doc() -> dict:
    return {
        "type": "Feature",
        "geometry": AREA,
        "properties": {
            "title": "河道整治（督办时钟测试）",
            "kind": "river_section",
            "lead_department": "water",
            "issuing_authority": "district_government",
            "start_date": "2026-12-01",
            "deadline": "2027-03-31",
        },
        "milestones": [
            {"title": "清淤", "due_date": DUE.isoformat()},
            {"title": "验收准备", "due_date": "2027-03-01"},
        ],
    }


def local(day: dt.date, hour: int = 9) -> dt.datetime:
    """``hour`` o'clock in Tianya on ``day``, aware."""
    return dt.datetime(
        day.year, day.month, day.day, hour, tzinfo=dt.timezone(dt.timedelta(hours=8))
    )


def entries(data: str, task_no: str) -> list[tuple[str, int]]:
    """The task's escalation rows, (action, milestone_seq), read with SQL from the raw table."""
    sql = (
        "SELECT action, milestone_seq FROM key_task_history WHERE task_no = {p} "
        "AND action IN ('warning', 'accountability') ORDER BY at, action DESC"
    )
    if "://" not in data:
        con = sqlite3.connect(data)
        try:
            rows = con.execute(sql.format(p="?"), (task_no,)).fetchall()
        finally:
            con.close()
    else:
        import psycopg

        from layers.postgis import split_url

        conninfo, opts = split_url(data)
        with psycopg.connect(conninfo) as c:
            c.execute(f'SET search_path TO "{opts["schema"]}", public')
            rows = c.execute(sql.format(p="%s"), (task_no,)).fetchall()
    return [(a, int(s)) for a, s in rows]


# --- the scheduler ----------------------------------------------------------------------------


def test_tasks_run_at_their_interval_and_a_failure_stops_nothing():
    runs: list[dt.datetime] = []

    def boom(now):
        raise RuntimeError("feed down")

    s = schedule.Scheduler()
    s.every(0.05, "count", runs.append)
    s.every(0.05, "boom", boom)
    s.start()
    try:
        time.sleep(0.6)
    finally:
        s.stop()
    assert not s.running
    assert len(runs) >= 4 and all(r.tzinfo is not None for r in runs)
    assert s._tasks["boom"].failures >= 4 and s._tasks["count"].runs == len(runs)
    n = len(runs)
    time.sleep(0.2)
    assert len(runs) == n  # stopped


def test_every_refuses_what_it_cannot_schedule():
    s = schedule.Scheduler()
    for bad in (-1, float("nan"), float("inf"), "15"):
        with pytest.raises(InvalidParameter, match="seconds of task 'x'"):
            s.every(bad, "x", print)
    s.every(1, "x", print)
    with pytest.raises(InvalidParameter, match="'x' is already scheduled"):
        s.every(2, "x", print)
    s.every(0, "off", print)
    assert s.names == ("x",)
    assert not schedule.Scheduler().start().running  # nothing to run: no thread
    with pytest.raises(InvalidParameter, match="aware"):
        s.tick(dt.datetime(2027, 1, 1))


def test_the_clock_file_is_read_at_each_call_and_must_have_an_offset(tmp_path):
    path = tmp_path / "now"
    clock = schedule.file_clock(str(path))
    with pytest.raises(InvalidParameter, match="schedule clock file"):
        clock()  # missing
    path.write_text("2027-01-11T09:00+08:00\n")
    assert clock() == dt.datetime(2027, 1, 11, 1, tzinfo=dt.UTC)
    path.write_text("2027-01-19T09:00+08:00")
    assert clock() == dt.datetime(2027, 1, 19, 1, tzinfo=dt.UTC)
    path.write_text("2027-01-19T09:00")
    with pytest.raises(InvalidParameter, match="no UTC offset"):
        clock()


def test_server_settings_schedule_the_clock_or_nothing(tmp_path):
    assert schedule.for_server(Settings(data=str(tmp_path / "x.gpkg"))).names == ("escalate",)
    off = Settings(data=str(tmp_path / "x.gpkg"), escalate_seconds=0)
    assert schedule.for_server(off).names == ()
    assert Settings.from_env({}).escalate_seconds == 900


# --- the server's clock, driven ----------------------------------------------------------------


@pytest.mark.both_stores
def test_driven_ticks_warn_then_hold_accountable_exactly_once(store_kind, sample_gpkg):
    from layers.stores import open_store

    data = writable_copy(store_kind, sample_gpkg, "kt_schedule")
    store = open_store(data)
    try:
        no = kt.create_task(
            store,
            task_doc(),
            LEADER,
            now=local(dt.date(2026, 12, 1)),
            milestones=task_doc()["milestones"],
        )["id"]
    finally:
        store.close()
    s = schedule.for_server(Settings(data=data))
    want: list[tuple[str, int]] = []
    for day, new in (
        (DUE, []),
        (DUE + dt.timedelta(days=1), [("warning", 1)]),
        (DUE + dt.timedelta(days=1), []),
        (DUE + dt.timedelta(days=kt.GRACE_DAYS), []),
        (DUE + dt.timedelta(days=kt.GRACE_DAYS + 1), [("accountability", 1)]),
        (DUE + dt.timedelta(days=kt.GRACE_DAYS + 1), []),
    ):
        made = s.tick(local(day))["escalate"]
        assert [(m["level"], m["seq"]) for m in made if m["task_no"] == no] == new, day
        want += new
        assert entries(data, no) == want, day


# --- a running server ---------------------------------------------------------------------------


def _wait_for(data, task_no, count, seconds=60.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        got = entries(data, task_no)
        if len(got) >= count:
            return got
        time.sleep(0.3)
    return entries(data, task_no)


@pytest.mark.both_stores
def test_a_running_server_records_the_warning_then_accountability_once(
    store_kind, sample_gpkg, tmp_path
):
    """Two workers each tick every second; the clock file moves past the due date, then past
    the grace period: each entry is in the raw table exactly once, after several ticks."""
    import requests

    data = writable_copy(store_kind, sample_gpkg, "kt_schedule_live")
    clock = tmp_path / "now"
    clock.write_text(local(DUE).isoformat())
    srv = LiveServer(
        data,
        extra_env={"TIANYA_ESCALATE_SECONDS": "1", "TIANYA_SCHEDULE_CLOCK_FILE": str(clock)},
        workers=2,
    )
    try:
        r = requests.post(
            f"{srv.url}/collections/key_tasks/items",
            json=task_doc(),
            headers=headers("leadership", **{"Content-Type": GEOJSON}),
            timeout=60,
        )
        assert r.status_code == 201, r.text
        no = r.headers["Location"].rsplit("/", 1)[-1]
        time.sleep(3)  # ticks on the due day: nothing
        assert entries(data, no) == []
        clock.write_text(local(DUE + dt.timedelta(days=1)).isoformat())
        assert _wait_for(data, no, 1) == [("warning", 1)]
        time.sleep(3)  # more ticks of both workers on the same day: nothing more
        assert entries(data, no) == [("warning", 1)]
        clock.write_text(local(DUE + dt.timedelta(days=kt.GRACE_DAYS + 1)).isoformat())
        assert _wait_for(data, no, 2) == [("warning", 1), ("accountability", 1)]
        time.sleep(3)
        assert entries(data, no) == [("warning", 1), ("accountability", 1)]
        trail = requests.get(
            f"{srv.url}/key-tasks/{no}/history", headers=headers("admin"), timeout=60
        ).json()["history"]
        clocked = [h for h in trail if h["action"] in kt.LEVELS]
        assert [h["actor"] for h in clocked] == [kt.CLOCK.name] * 2
        task = requests.get(
            f"{srv.url}/collections/key_tasks/items/{no}?f=json",
            headers=headers("admin"),
            timeout=60,
        ).json()
        assert task["properties"]["escalation"] == "accountability"
    finally:
        srv.stop()


def test_threads_of_one_scheduler_do_not_tick_at_once():
    """A caller's tick waits for the thread's (one tick at a time per process)."""
    inside, most = [0], [0]
    lock = threading.Lock()

    def slow(now):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1

    s = schedule.Scheduler()
    s.every(0.01, "slow", slow)
    s.start()
    try:
        threads = [threading.Thread(target=s.tick) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        s.stop()
    assert most[0] == 1
