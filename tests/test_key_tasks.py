"""Key-work supervision (issue 15): the sample, the lifecycle, refusals, audit, escalation."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from stores import writable_copy

from geodata.key_tasks import AS_OF
from layers import access
from layers import key_tasks as kt
from layers.errors import Conflict, Forbidden, InvalidFeature, NotAuthenticated, NotFound
from layers.query import Query
from layers.stores import open_store

LEADER = access.Principal("deputy mayor", "leadership")
ADMIN = access.Principal("root", "admin")
DISPATCHER = access.Principal("center", "dispatcher")
HOUSING = access.Principal("housing bureau", "department", "housing")
WATER = access.Principal("water bureau", "department", "water")
REPORTER = access.Principal("app", "reporter")

#: A renovation area in the urban centre (CRS84).
AREA = {
    "type": "Polygon",
    "coordinates": [
        [
            [109.500, 18.250],
            [109.504, 18.250],
            [109.504, 18.253],
            [109.500, 18.253],
            [109.500, 18.250],
        ]
    ],
}
T0 = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)  # 09:00 in Tianya, after the sample year

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def store(store_kind, sample_gpkg):
    return open_store(writable_copy(store_kind, sample_gpkg, "key_tasks"))


def task_doc(geometry=AREA, **props) -> dict:
    base = {
        "title": "港门社区棚户区改造（测试）",
        "kind": "renovation_area",
        "lead_department": "housing",
        "co_departments": "civil_affairs,territorial",
        "issuing_authority": "district_government",
        "start_date": "2026-12-01",
        "deadline": "2027-03-31",
        "responsible_person": "王明",
        "responsible_phone": "13800000000",
    }
    base.update(props)
    return {"type": "Feature", "geometry": geometry, "properties": base}


MILESTONES = (
    {"title": "入户调查摸底", "due_date": "2026-12-20"},
    {"title": "签约腾空", "due_date": "2027-02-15"},
)


def new_task(store, **props) -> str:
    return kt.create_task(store, task_doc(**props), LEADER, now=T0, milestones=MILESTONES)["id"]


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def local(day: str, hour: int = 9) -> dt.datetime:
    """``hour`` o'clock in Tianya on ``day``, as an aware UTC instant."""
    d = dt.date.fromisoformat(day)
    return dt.datetime(d.year, d.month, d.day, hour, tzinfo=dt.UTC) - dt.timedelta(hours=8)


def actions(store, task_no):
    return [
        (h["action"], h["role"], h["from_status"], h["to_status"], h["milestone_seq"])
        for h in kt.history(store, task_no, ADMIN)
    ]


# --- the sample -------------------------------------------------------------------------------


def test_sample_escalations_are_the_librarys(store):
    """The sample's state is the library's on AS_OF: running the clock at the end of that
    day adds no entry, and every escalated field has its history row."""
    end = local(AS_OF.isoformat(), 23)
    assert kt.escalate(store, end) == []
    entries = kt.accountability_list(store)
    assert {e["action"] for e in entries} == {"warning", "accountability"}
    tasks = store.read_frame(kt.TASKS)
    ms = store.read_frame(kt.MILESTONES)
    assert 40 <= len(tasks) <= 80 and len(ms) >= 3 * len(tasks)
    assert {"assigned", "in_progress", "accepted"} <= set(tasks["status"])
    # some late (escalated), some not; late milestones carry a reason
    assert 0 < (tasks["escalation"] != "none").sum() < len(tasks)
    late = ms[ms["done_date"].notna() & (ms["done_date"] > ms["due_date"])]
    assert len(late) and late["late_reason"].notna().all()
    by_task = {}
    for e in entries:
        lvl = by_task.get(e["task_no"], "none")
        if lvl != "accountability":
            by_task[e["task_no"]] = e["action"]
    assert dict(zip(tasks["task_no"], tasks["escalation"], strict=True)) == {
        t: by_task.get(t, "none") for t in tasks["task_no"]
    }
    for m in ms.itertuples():
        seqs = {
            e["action"]
            for e in entries
            if e["task_no"] == m.task_no and e["milestone_seq"] == m.seq
        }
        want = {
            "none": set(),
            "warning": {"warning"},
            "accountability": {"warning", "accountability"},
        }
        assert seqs == want[m.escalation], m.milestone_id


def test_sample_geometries_are_points_lines_and_polygons(store):
    page = store.query(kt.TASKS, Query(limit=1000), count=False)
    types = {f["geometry"]["type"] for f in page.features}
    assert {"Point", "LineString", "Polygon"} <= types


# --- the lifecycle ----------------------------------------------------------------------------


def test_round_trip_with_return_and_audit(store):
    sample = [n for n in store.read_frame(kt.TASKS)["task_no"] if n.startswith("KT2026-")]
    no = new_task(store)
    task = store.get(kt.TASKS, no)["properties"]
    assert no.startswith("KT2026-") and no > max(sample)  # after the sample's numbers
    assert (task["status"], task["progress"], task["escalation"]) == ("assigned", 0, "none")
    assert [m["seq"] for m in kt.milestones(store, no, ADMIN)] == [1, 2]
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    m = kt.report_milestone(
        store, no, 1, HOUSING, done_date="2026-12-18", evidence_note="台账", now=at(18)
    )
    assert m["done_date"] == "2026-12-18" and m["reported_by"] == "housing bureau"
    assert store.get(kt.TASKS, no)["properties"]["progress"] == 50
    kt.report_milestone(
        store,
        no,
        2,
        HOUSING,
        done_date="2027-02-10",
        evidence_link="https://oa.example/e/2",
        progress=95,
        now=local("2027-02-10", 15),
    )
    kt.transition(store, no, "submitted", HOUSING, now=local("2027-02-11"))
    kt.transition(store, no, "returned", LEADER, "佐证材料不全", now=local("2027-02-12"))
    kt.transition(store, no, "in_progress", HOUSING, now=local("2027-02-13"))
    kt.transition(store, no, "submitted", HOUSING, now=local("2027-02-20"))
    done = kt.transition(store, no, "accepted", LEADER, now=local("2027-02-25"))
    p = done["properties"]
    assert (p["status"], p["progress"]) == ("accepted", 100)
    assert p["submitted_at"].startswith("2027-02-20") and p["accepted_at"].startswith("2027-02-25")
    assert actions(store, no) == [
        ("issue", "leadership", None, "assigned", None),
        ("transition", "department", "assigned", "in_progress", None),
        ("milestone", "department", "in_progress", None, 1),
        ("milestone", "department", "in_progress", None, 2),
        ("transition", "department", "in_progress", "submitted", None),
        ("transition", "leadership", "submitted", "returned", None),
        ("transition", "department", "returned", "in_progress", None),
        ("transition", "department", "in_progress", "submitted", None),
        ("transition", "leadership", "submitted", "accepted", None),
    ]
    rows = kt.history(store, no, HOUSING)
    assert rows[5]["note"] == "佐证材料不全" and rows[5]["actor"] == "deputy mayor"
    assert rows[1]["department"] == "housing"


def test_wrong_role_is_403_and_public_401(store):
    with pytest.raises(Forbidden, match="allowed roles: leadership, admin"):
        kt.create_task(store, task_doc(), HOUSING, now=T0)
    with pytest.raises(NotAuthenticated):
        kt.create_task(store, task_doc(), access.PUBLIC, now=T0)
    no = new_task(store)
    with pytest.raises(Forbidden, match="allowed roles: department, admin"):
        kt.transition(store, no, "in_progress", DISPATCHER, now=at(1))
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    with pytest.raises(Forbidden, match="allowed roles: department, admin"):
        kt.report_milestone(
            store, no, 1, LEADER, done_date="2026-12-02", evidence_note="x", now=at(2)
        )
    for seq, day in ((1, "2026-12-02"), (2, "2026-12-03")):
        kt.report_milestone(store, no, seq, HOUSING, done_date=day, evidence_note="x", now=at(3))
    kt.transition(store, no, "submitted", HOUSING, now=at(4))
    with pytest.raises(Forbidden, match="allowed roles: leadership, admin"):
        kt.transition(store, no, "accepted", HOUSING, now=at(5))
    with pytest.raises(Forbidden):
        kt.patch_task(store, no, {"deadline": "2027-06-30"}, HOUSING, now=at(5))
    assert store.get(kt.TASKS, no)["properties"]["status"] == "submitted"


def test_wrong_department_is_403(store):
    no = new_task(store)
    with pytest.raises(Forbidden, match="led by 'housing', not by 'water'"):
        kt.transition(store, no, "in_progress", WATER, now=at(1))
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    with pytest.raises(Forbidden, match="led by 'housing'"):
        kt.report_milestone(
            store, no, 1, WATER, done_date="2026-12-02", evidence_note="x", now=at(2)
        )
    with pytest.raises(Forbidden, match="led by 'housing'"):
        kt.patch_task(store, no, {"progress": 30}, WATER, now=at(2))
    kt.patch_task(store, no, {"progress": 30}, HOUSING, now=at(2))
    assert store.get(kt.TASKS, no)["properties"]["progress"] == 30
    assert [a[0] for a in actions(store, no)] == ["issue", "transition", "edit"]


def test_illegal_transition_is_409_naming_the_legal_ones(store):
    no = new_task(store)
    with pytest.raises(Conflict, match="legal next stages: in_progress$"):
        kt.transition(store, no, "accepted", LEADER, now=at(1))
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    with pytest.raises(Conflict, match="legal next stages: submitted$"):
        kt.transition(store, no, "returned", LEADER, "x", now=at(2))
    with pytest.raises(Conflict, match="milestones 1, 2 are not reported done"):
        kt.transition(store, no, "submitted", HOUSING, now=at(2))
    with pytest.raises(InvalidFeature, match="status \\(to\\)"):
        kt.transition(store, no, "closed", HOUSING, now=at(2))
    assert store.get(kt.TASKS, no)["properties"]["status"] == "in_progress"


def test_milestone_after_its_due_date_needs_a_reason(store):
    no = new_task(store)
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    # done on time, but reported after the due date: a reason is needed too
    for done in ("2026-12-22", "2026-12-19"):
        with pytest.raises(InvalidFeature, match="was due on 2026-12-20.*late_reason"):
            kt.report_milestone(
                store, no, 1, HOUSING, done_date=done, evidence_note="x", now=local("2026-12-23")
            )
    m = kt.milestones(store, no, ADMIN)[0]
    assert m["done_date"] is None
    m = kt.report_milestone(
        store,
        no,
        1,
        HOUSING,
        done_date="2026-12-22",
        evidence_note="x",
        late_reason="连续降雨影响施工",
        now=local("2026-12-23"),
    )
    assert m["late_reason"] == "连续降雨影响施工"
    with pytest.raises(Conflict, match="already reported done on 2026-12-22"):
        kt.report_milestone(
            store,
            no,
            1,
            HOUSING,
            done_date="2026-12-22",
            evidence_note="x",
            now=local("2026-12-24"),
        )
    with pytest.raises(NotFound, match="its milestones: 1, 2"):
        kt.report_milestone(
            store,
            no,
            9,
            HOUSING,
            done_date="2026-12-22",
            evidence_note="x",
            now=local("2026-12-24"),
        )
    with pytest.raises(InvalidFeature, match="needs evidence"):
        kt.report_milestone(store, no, 2, HOUSING, done_date="2026-12-24", now=local("2026-12-24"))
    with pytest.raises(InvalidFeature, match="in the future"):
        kt.report_milestone(
            store,
            no,
            2,
            HOUSING,
            done_date="2026-12-25",
            evidence_note="x",
            now=local("2026-12-24"),
        )


def test_return_needs_a_reason_and_reports_need_in_progress(store):
    no = new_task(store)
    with pytest.raises(Conflict, match="move it to in_progress first"):
        kt.report_milestone(
            store, no, 1, HOUSING, done_date="2026-12-01", evidence_note="x", now=at(1)
        )
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    for seq in (1, 2):
        kt.report_milestone(
            store, no, seq, HOUSING, done_date="2026-12-02", evidence_note="x", now=at(2)
        )
    kt.transition(store, no, "submitted", HOUSING, now=at(3))
    with pytest.raises(InvalidFeature, match="needs a reason in 'note'"):
        kt.transition(store, no, "returned", LEADER, "  ", now=at(4))
    assert store.get(kt.TASKS, no)["properties"]["status"] == "submitted"


def test_a_failed_audit_write_rolls_the_change_back(store, monkeypatch):
    """The history row is written in the change's transaction: no row, no change."""
    no = new_task(store)
    before = kt.history(store, no, ADMIN)

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(kt, "record", broken)
    with pytest.raises(RuntimeError):
        kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    assert store.get(kt.TASKS, no)["properties"]["status"] == "assigned"
    monkeypatch.undo()
    assert kt.history(store, no, ADMIN) == before


def test_validation_names_the_problem(store):
    with pytest.raises(InvalidFeature, match="kind code"):
        kt.create_task(store, task_doc(kind="party"), LEADER, now=T0)
    with pytest.raises(InvalidFeature, match="co_departments code"):
        kt.create_task(store, task_doc(co_departments="housing,nobody"), LEADER, now=T0)
    with pytest.raises(InvalidFeature, match="before start_date"):
        kt.create_task(store, task_doc(deadline="2026-11-01"), LEADER, now=T0)
    with pytest.raises(InvalidFeature, match="'deadline' is required"):
        kt.create_task(store, task_doc(deadline=None), LEADER, now=T0)
    with pytest.raises(InvalidFeature, match="outside the task's"):
        kt.create_task(
            store, task_doc(), LEADER, now=T0, milestones=[{"title": "x", "due_date": "2027-05-01"}]
        )
    with pytest.raises(InvalidFeature, match="may not be set when issuing"):
        kt.create_task(store, task_doc(status="accepted"), LEADER, now=T0)
    far = {"type": "Point", "coordinates": [116.4, 39.9]}
    with pytest.raises(InvalidFeature, match="does not touch Tianya"):
        kt.create_task(store, task_doc(geometry=far), LEADER, now=T0)
    coll = {"type": "GeometryCollection", "geometries": []}
    with pytest.raises(InvalidFeature, match="geometry type of a key task"):
        kt.create_task(store, task_doc(geometry=coll), LEADER, now=T0)


def test_any_geometry_type_round_trips(store):
    line = {"type": "LineString", "coordinates": [[109.50, 18.25], [109.505, 18.255]]}
    point = {"type": "Point", "coordinates": [109.502, 18.252]}
    for g in (line, point, AREA):
        no = kt.create_task(store, task_doc(geometry=g), LEADER, now=T0)["id"]
        got = store.get(kt.TASKS, no)["geometry"]
        assert got["type"] == g["type"]
    kt.patch_task(store, no, {}, LEADER, geometry=line, now=at(1))
    assert store.get(kt.TASKS, no)["geometry"]["type"] == "LineString"


def test_public_subset_and_history_readers(store):
    no = new_task(store)
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    kt.report_milestone(
        store, no, 1, HOUSING, done_date="2026-12-02", evidence_link="https://x/e", now=at(2)
    )
    pub = kt.get_task(store, no, access.PUBLIC)["properties"]
    assert pub["title"] and "responsible_person" not in pub and "responsible_phone" not in pub
    assert "responsible_person" in kt.get_task(store, no, LEADER)["properties"]
    m = kt.milestones(store, no, access.PUBLIC)[0]
    assert m["done_date"] == "2026-12-02" and "evidence_link" not in m and "reported_by" not in m
    with pytest.raises(NotAuthenticated):
        kt.history(store, no, access.PUBLIC)
    with pytest.raises(Forbidden):
        kt.history(store, no, REPORTER)
    assert len(kt.history(store, no, WATER)) == 3
    with pytest.raises(NotFound):
        kt.history(store, "KT1999-001", ADMIN)


# --- escalation -------------------------------------------------------------------------------


def _entries(store, no):
    return [
        (h["action"], h["milestone_seq"])
        for h in kt.history(store, no, ADMIN)
        if h["action"] in ("warning", "accountability")
    ]


def test_escalation_warning_then_accountability_exactly_once(store):
    no = new_task(store)
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    mine = lambda made: [(e["level"], e["seq"]) for e in made if e["task_no"] == no]  # noqa: E731
    assert mine(kt.escalate(store, local("2026-12-20", 23))) == []  # due today: not yet
    assert mine(kt.escalate(store, local("2026-12-21", 0))) == [("warning", 1)]
    for day in ("2026-12-21", "2026-12-24", "2026-12-27"):  # within the 7-day grace period
        assert mine(kt.escalate(store, local(day, 12))) == []
    assert _entries(store, no) == [("warning", 1)]
    m1 = kt.milestones(store, no, ADMIN)[0]
    assert m1["escalation"] == "warning"
    assert store.get(kt.TASKS, no)["properties"]["escalation"] == "warning"
    assert mine(kt.escalate(store, local("2026-12-28", 1))) == [("accountability", 1)]
    for day in ("2026-12-28", "2027-01-10"):
        assert mine(kt.escalate(store, local(day, 12))) == []
    assert _entries(store, no) == [("warning", 1), ("accountability", 1)]
    assert store.get(kt.TASKS, no)["properties"]["escalation"] == "accountability"
    # a milestone reported done escalates no further; milestone 2 and the deadline do
    kt.report_milestone(
        store,
        no,
        1,
        HOUSING,
        done_date="2027-01-10",
        evidence_note="x",
        late_reason="y",
        now=local("2027-01-10", 15),
    )
    made = mine(kt.escalate(store, local("2027-04-30", 1)))
    assert made == [("warning", 0), ("accountability", 0), ("warning", 2), ("accountability", 2)]
    assert mine(kt.escalate(store, local("2027-05-30", 1))) == []
    entries = _entries(store, no)
    assert sorted(entries) == sorted(set(entries)) and len(entries) == 6


def test_a_replanned_milestone_escalates_again_once_past_its_new_date(store):
    """A re-plan moving an overdue milestone's due date starts its clock again: past the new
    date, one more warning (then one accountability entry); a title-only re-plan does not.
    Before, (level, seq) was escalated once for good: a re-planned milestone never again."""
    no = new_task(store)
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    mine = lambda made: [(e["level"], e["seq"]) for e in made if e["task_no"] == no]  # noqa: E731
    assert mine(kt.escalate(store, local("2026-12-21", 1))) == [("warning", 1)]
    kt.replan_milestone(
        store, no, 1, LEADER, title="入户调查摸底（补）", now=local("2026-12-21", 10)
    )
    assert mine(kt.escalate(store, local("2026-12-21", 12))) == []  # same due date
    m = kt.replan_milestone(
        store, no, 1, LEADER, due_date="2027-01-05", note="春节前补齐", now=local("2026-12-22", 9)
    )
    assert (m["due_date"], m["escalation"]) == ("2027-01-05", "none")
    assert mine(kt.escalate(store, local("2027-01-05", 12))) == []
    assert mine(kt.escalate(store, local("2027-01-06", 12))) == [("warning", 1)]
    assert mine(kt.escalate(store, local("2027-01-06", 13))) == []
    assert mine(kt.escalate(store, local("2027-01-14", 12))) == [("accountability", 1)]
    assert mine(kt.escalate(store, local("2027-01-20", 12))) == []
    assert _entries(store, no) == [("warning", 1), ("warning", 1), ("accountability", 1)]
    assert [h["action"] for h in kt.history(store, no, ADMIN) if h["milestone_seq"] == 1] == [
        "warning",
        "retitle",
        "replan",
        "warning",
        "accountability",
    ]


def test_escalation_stops_once_submitted_and_skips_nothing(store):
    no = new_task(store)
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    for seq in (1, 2):
        kt.report_milestone(
            store, no, seq, HOUSING, done_date="2026-12-05", evidence_note="x", now=at(5)
        )
    kt.transition(store, no, "submitted", HOUSING, now=at(6))
    assert [e for e in kt.escalate(store, local("2027-05-01")) if e["task_no"] == no] == []
    kt.transition(store, no, "returned", LEADER, "不达标", now=local("2027-05-02"))
    made = [e["level"] for e in kt.escalate(store, local("2027-05-03")) if e["task_no"] == no]
    assert made == ["warning", "accountability"]  # the deadline (2027-03-31), once each


def test_concurrent_clocks_record_each_entry_once(store):
    no = new_task(store)
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))
    when = local("2027-01-05")
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: kt.escalate(store, when), range(4)))
    made = [(e["level"], e["seq"]) for run in runs for e in run if e["task_no"] == no]
    assert sorted(made) == [("accountability", 1), ("warning", 1)]
    assert sorted(_entries(store, no)) == [("accountability", 1), ("warning", 1)]


def test_escalate_refuses_a_naive_clock(store):
    with pytest.raises(InvalidFeature, match="aware"):
        kt.escalate(store, dt.datetime(2027, 1, 1))


def test_eight_concurrent_writers_lose_nothing(store):
    """8 leaders issue at once: 8 distinct numbers, every task, milestone and issue row kept;
    8 reports of one milestone at once: exactly one is taken, the others are 409s."""
    with ThreadPoolExecutor(8) as pool:
        nos = list(pool.map(lambda _: new_task(store), range(8)))
    assert len(set(nos)) == 8
    for no in nos:
        assert [a[0] for a in actions(store, no)] == ["issue"]
        assert [m["seq"] for m in kt.milestones(store, no, ADMIN)] == [1, 2]
    no = nos[0]
    kt.transition(store, no, "in_progress", HOUSING, now=at(1))

    def report(i):
        try:
            kt.report_milestone(
                store, no, 1, HOUSING, done_date="2026-12-02", evidence_note=f"w{i}", now=at(2)
            )
            return "ok"
        except Conflict:
            return "409"

    with ThreadPoolExecutor(8) as pool:
        got = sorted(pool.map(report, range(8)))
    assert got == ["409"] * 7 + ["ok"]
    assert [a[0] for a in actions(store, no)] == ["issue", "transition", "milestone"]
    assert store.get(kt.TASKS, no)["properties"]["progress"] == 50
