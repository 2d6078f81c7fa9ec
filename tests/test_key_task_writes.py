"""OGC API Features Part 4 on key tasks and their milestones (issue 15 item 5), live, on both
stores: a round trip for each role, every refusal (wrong role, wrong department, illegal move,
a late milestone without a reason, a stale ``If-Match``) changing nothing, ``Allow`` per caller,
the audit trail and who may read it; then 8 concurrent writers and a SIGKILL mid-write.

The rules are :mod:`layers.key_tasks`'; the HTTP mapping is :mod:`tianya.tasks_api`.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from casekit import GEOJSON, copy_sample, headers
from conftest import LiveServer
from stores import writable_copy

from layers.district import TZ

pytestmark = pytest.mark.both_stores

TASKS = "/collections/key_tasks/items"
MILESTONES = "/collections/key_task_milestones/items"
#: A small area in the urban core (inside the district).
AREA = {
    "type": "Polygon",
    "coordinates": [
        [
            [109.468, 18.295],
            [109.471, 18.295],
            [109.471, 18.298],
            [109.468, 18.298],
            [109.468, 18.295],
        ]
    ],
}


def today() -> dt.date:
    """Tianya's calendar day now (the server's clock)."""
    return dt.datetime.now(dt.UTC).astimezone(TZ).date()


def day(offset: int) -> str:
    return (today() + dt.timedelta(days=offset)).isoformat()


def task_doc(lead="water", milestones=((-5, "摸底调查"), (20, "完成整治")), **props) -> dict:
    """A key task to issue: started 30 days ago, due in 60; milestones (day offset, title)."""
    p = {
        "title": "河道整治试点",
        "kind": "river_section",
        "lead_department": lead,
        "co_departments": "sanitation,landscape",
        "issuing_authority": "district_government",
        "start_date": day(-30),
        "deadline": day(60),
        "responsible_person": "王五",
        "responsible_phone": "13800000000",
    }
    p.update(props)
    return {
        "type": "Feature",
        "geometry": AREA,
        "properties": p,
        "milestones": [{"title": t, "due_date": day(o)} for o, t in milestones],
    }


class Api:
    """Requests to one live server, by role."""

    def __init__(self, server: LiveServer):
        self.url, self.data = server.url, server.data
        self.session = requests.Session()

    def send(self, method, path, role=None, body=None, ctype="application/json", **extra):
        hdrs = headers(role, **({"Content-Type": ctype} if ctype and body is not None else {}))
        hdrs.update(extra)
        data = None if body is None else json.dumps(body)
        return self.session.request(method, self.url + path, data=data, headers=hdrs, timeout=60)

    def issue(self, doc=None, role="leadership") -> str:
        r = self.send("POST", TASKS, role, doc or task_doc(), GEOJSON)
        assert r.status_code == 201, r.text
        return r.headers["Location"].rsplit("/", 1)[-1]

    def task(self, task_no, role="leadership"):
        return self.send("GET", f"{TASKS}/{task_no}?f=json", role)

    def milestone(self, mid, role="leadership"):
        return self.send("GET", f"{MILESTONES}/{mid}?f=json", role)

    def patch(self, task_no, body, role, **extra):
        return self.send("PATCH", f"{TASKS}/{task_no}", role, body, **extra)

    def report(self, mid, body, role="department", **extra):
        return self.send("PATCH", f"{MILESTONES}/{mid}", role, body, **extra)

    def history(self, task_no, role="leadership"):
        return self.send("GET", f"/key-tasks/{task_no}/history", role)


@pytest.fixture(scope="module")
def api(store_kind, sample_gpkg):
    if store_kind == "gpkg":
        srv = LiveServer(copy_sample(sample_gpkg, "key_task_writes"))
    else:
        srv = LiveServer(writable_copy(store_kind, sample_gpkg, "key_task_writes"))
    try:
        yield Api(srv)
    finally:
        srv.stop()


def _state(api, task_no):
    """Everything a refused write must leave as it was: the task, its milestones, its trail."""
    t = api.task(task_no, "admin")
    ms = api.send("GET", f"{MILESTONES}?f=json&task_no={task_no}&limit=50", "admin").json()
    return (
        t.headers.get("ETag"),
        t.json()["properties"],
        sorted((f["id"], json.dumps(f["properties"], sort_keys=True)) for f in ms["features"]),
        len(api.history(task_no, "admin").json()["history"]),
    )


# --- a round trip for each role ----------------------------------------------------------------


def test_round_trip_issue_start_report_submit_return_accept(api):
    """Leadership issues; the lead department starts, reports each milestone (a late one with its
    reason) and submits; leadership returns it with a reason, the department resubmits,
    leadership accepts. Every answer carries the ETag a GET then gives; the trail has each
    step with its actor and role."""
    task_no = api.issue()
    got = api.task(task_no)
    assert got.status_code == 200 and got.headers["ETag"]
    p = got.json()["properties"]
    assert (p["status"], p["progress"], p["escalation"]) == ("assigned", 0, "none")
    assert p["lead_department"] == "water" and p["responsible_person"] == "王五"
    assert got.json()["geometry"]["type"] == "Polygon"
    # the public reads the task without its sensitive fields
    public = api.task(task_no, None).json()["properties"]
    assert "responsible_person" not in public and public["title"] == "河道整治试点"

    r = api.patch(task_no, {"status": "in_progress"}, "department")
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == api.task(task_no).headers["ETag"]
    assert r.json()["properties"]["status"] == "in_progress"

    m1, m2 = f"{task_no}-01", f"{task_no}-02"
    r = api.report(m1, {"done_date": day(-1), "evidence_note": "调查报告已归档"})
    assert r.status_code == 400 and "late_reason" in r.json()["description"], r.text
    r = api.report(
        m1, {"done_date": day(-1), "evidence_note": "调查报告已归档", "late_reason": "台风停工"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["done_date"] == day(-1)
    assert r.headers["ETag"] == api.milestone(m1).headers["ETag"]
    r = api.report(m2, {"done_date": day(0), "evidence_link": "https://example.org/e/2"})
    assert r.status_code == 200, r.text
    assert api.task(task_no).json()["properties"]["progress"] == 100

    assert api.patch(task_no, {"status": "submitted"}, "department").status_code == 200
    r = api.patch(task_no, {"status": "returned"}, "leadership")
    assert r.status_code == 400 and "reason" in r.json()["description"], r.text
    r = api.patch(task_no, {"status": "returned", "note": "佐证不足"}, "leadership")
    assert r.status_code == 200, r.text
    assert api.patch(task_no, {"status": "in_progress"}, "department").status_code == 200
    assert api.patch(task_no, {"status": "submitted"}, "department").status_code == 200
    r = api.patch(task_no, {"status": "accepted"}, "leadership")
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["status"] == "accepted"

    trail = api.history(task_no).json()["history"]
    steps = [(h["action"], h["role"], h.get("to_status"), h.get("milestone_seq")) for h in trail]
    assert steps == [
        ("issue", "leadership", "assigned", None),
        ("transition", "department", "in_progress", None),
        ("milestone", "department", None, 1),
        ("milestone", "department", None, 2),
        ("transition", "department", "submitted", None),
        ("transition", "leadership", "returned", None),
        ("transition", "department", "in_progress", None),
        ("transition", "department", "submitted", None),
        ("transition", "leadership", "accepted", None),
    ]
    assert trail[5]["note"] == "佐证不足" and trail[2]["department"] == "water"
    assert "台风停工" in trail[2]["note"]


def test_round_trip_admin_replaces_edits_adds_a_milestone_and_deletes(api):
    """Admin (and leadership) replace a task (PUT: 204 with the new ETag), edit fields and the
    geometry (PATCH), add a milestone (POST to the milestones' items: 201, Location); admin
    deletes the task with its milestones (200, then 404; the trail keeps a delete row)."""
    task_no = api.issue()
    doc = api.task(task_no).json()
    doc["properties"]["title"] = "河道整治（扩大）"
    doc["properties"]["priority"] = "urgent"
    r = api.send("PUT", f"{TASKS}/{task_no}", "leadership", doc, GEOJSON)
    assert r.status_code == 204, r.text
    got = api.task(task_no)
    assert got.json()["properties"]["title"] == "河道整治（扩大）"
    assert got.json()["properties"]["priority"] == "urgent"
    assert r.headers["ETag"] == got.headers["ETag"]
    # a PUT leaving a descriptive field out clears it; a required one cannot be cleared
    doc = got.json()
    doc["properties"].pop("responsible_phone")
    assert api.send("PUT", f"{TASKS}/{task_no}", "admin", doc, GEOJSON).status_code == 204
    assert api.task(task_no).json()["properties"]["responsible_phone"] is None
    doc["properties"].pop("title")
    r = api.send("PUT", f"{TASKS}/{task_no}", "admin", doc, GEOJSON)
    assert r.status_code == 400 and "title" in r.json()["description"], r.text

    point = {"type": "Point", "coordinates": [109.4695, 18.2963]}
    r = api.patch(task_no, {"type": "Feature", "geometry": point, "properties": {}}, "admin")
    assert r.status_code == 200, r.text
    assert api.task(task_no).json()["geometry"]["type"] == "Point"

    body = {
        "type": "Feature",
        "geometry": None,
        "properties": {"task_no": task_no, "title": "验收准备", "due_date": day(50)},
    }
    r = api.send("POST", MILESTONES, "leadership", body, GEOJSON)
    assert r.status_code == 201, r.text
    mid = r.headers["Location"].rsplit("/", 1)[-1]
    assert mid == f"{task_no}-03"
    assert api.milestone(mid).json()["properties"]["title"] == "验收准备"

    r = api.send("DELETE", f"{TASKS}/{task_no}", "admin")
    assert r.status_code == 200, r.text
    assert api.task(task_no).status_code == 404
    assert api.milestone(mid).status_code == 404
    r = api.history(task_no, "admin")
    assert r.status_code == 404  # the task is gone; its trail stays in the store
    actions = [h["action"] for h in _trail_rows(api, task_no)]
    assert actions[-1] == "delete" and actions[0] == "issue"


def _trail_rows(api, task_no):
    """A deleted task's trail, read from the store directly."""
    from layers.key_tasks import HISTORY
    from layers.query import Query
    from layers.stores import open_store

    s = open_store(api.data)
    try:
        q = Query(equals={"task_no": task_no}, sortby=[("at", True)], limit=100)
        return [f["properties"] for f in s.query(HISTORY, q, count=False).features]
    finally:
        s.close()


def test_history_is_read_by_trusted_roles_only(api):
    """The audit trail: leadership, departments, dispatchers and admin read it; the public is
    401 (with the bearer challenge), a reporter 403; an unknown task 404."""
    task_no = api.issue()
    for role in ("leadership", "department", "dispatcher", "admin"):
        r = api.history(task_no, role)
        assert r.status_code == 200, (role, r.text)
        assert r.json()["task_no"] == task_no and r.json()["history"][0]["action"] == "issue"
    r = api.history(task_no, None)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.history(task_no, "reporter").status_code == 403
    assert api.history("KT1999-999", "admin").status_code == 404
    r = api.send("GET", "/key-tasks/transitions")
    assert r.status_code == 200
    moves = {(t["from"], t["to"]) for t in r.json()["transitions"]}
    assert ("submitted", "accepted") in moves and ("assigned", "accepted") not in moves


# --- every refusal, and it changes nothing ------------------------------------------------------


@pytest.mark.parametrize(
    "role,status", [(None, 401), ("reporter", 403), ("dispatcher", 403), ("department", 403)]
)
def test_issuing_needs_leadership_or_admin(api, role, status):
    def count():
        page = api.send("GET", f"{TASKS}?f=json&limit=5000&skipGeometry=true", "admin").json()
        return len(page["features"])

    before = count()
    r = api.send("POST", TASKS, role, task_doc(), GEOJSON)
    assert r.status_code == status, r.text
    assert "leadership" in r.json()["description"]
    assert count() == before


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"title": None}, "title"),
        ({"kind": "picnic"}, "kind"),
        ({"lead_department": "nobody"}, "lead_department"),
        ({"deadline": "2020-01-01"}, "deadline"),
        ({"co_departments": "water"}, "co-operating"),
        ({"status": "accepted"}, "status"),
        ({"progress": 50}, "progress"),
        ({"colour": "red"}, "colour"),
        ({"start_date": "soon"}, "start_date"),
    ],
)
def test_issuing_validates_every_field(api, change, needle):
    doc = task_doc()
    doc["properties"].update(change)
    doc["properties"] = {k: v for k, v in doc["properties"].items() if v is not None}
    r = api.send("POST", TASKS, "leadership", doc, GEOJSON)
    assert r.status_code == 400, r.text
    assert needle in r.json()["description"], r.text


def test_issuing_validates_geometry_milestones_and_content(api):
    cases = [
        (dict(task_doc(), geometry={"type": "Point", "coordinates": [110.5, 19.9]}), "Tianya"),
        (dict(task_doc(), geometry=None), "geometry"),
        (dict(task_doc(), milestones=[{"title": "x", "due_date": day(400)}]), "outside"),
        (dict(task_doc(), milestones=[{"due_date": day(4)}]), "title"),
        (dict(task_doc(), milestones="x"), "milestones"),
        (dict(task_doc(), extra=1), "extra"),
    ]
    for doc, needle in cases:
        r = api.send("POST", TASKS, "leadership", doc, GEOJSON)
        assert r.status_code == 400 and needle in r.json()["description"], (needle, r.text)
    r = api.send("POST", TASKS, "leadership", task_doc(), None)
    assert r.status_code == 400 and "Content-Type" in r.json()["description"]
    r = api.send("POST", TASKS, "leadership", task_doc(), GEOJSON, **{"Content-Crs": "EPSG:4326"})
    assert r.status_code == 400 and "CRS84" in r.json()["description"], r.text


def test_wrong_department_wrong_role_illegal_move_each_refused_unchanged(api):
    """A task led by housing: the water bureau may not start it, edit it or report its
    milestones (403); a move outside the stage machine is 409 naming the legal ones; a legal
    move by the wrong role 403; a field a department may not set 400; submitting with open
    milestones 409; a milestone reported twice 409. Each leaves task, milestones and trail as
    they were."""
    task_no = api.issue(task_doc(lead="housing"))
    before = _state(api, task_no)
    refusals = [
        (api.patch(task_no, {"status": "in_progress"}, "department"), 403, "housing"),
        (api.patch(task_no, {"progress": 10}, "department"), 403, "housing"),
        (api.patch(task_no, {"status": "accepted"}, "leadership"), 409, "in_progress"),
        (api.patch(task_no, {"status": "in_progress"}, "leadership"), 403, "department"),
        (api.patch(task_no, {"status": "done"}, "admin"), 400, "status"),
        (api.patch(task_no, {"title": "x"}, "dispatcher"), 403, "leadership"),
        (api.patch(task_no, {"title": "x"}, None), 401, "leadership"),
        (api.patch(task_no, {}, "admin"), 400, "nothing"),
        (api.report(f"{task_no}-02", {"done_date": day(0), "evidence_note": "x"}), 403, "housing"),
        (api.send("DELETE", f"{TASKS}/{task_no}", "leadership"), 403, "admin"),
        (api.send("PUT", f"{MILESTONES}/{task_no}-01", "department", {}), 403, "leadership"),
        (api.send("DELETE", f"{MILESTONES}/{task_no}-01", "department"), 403, "leadership"),
        (api.report(f"{task_no}-01", {"due_date": day(9), "note": "x"}), 403, "leadership"),
    ]
    for r, status, needle in refusals:
        assert r.status_code == status, (status, r.text)
        assert needle in r.json()["description"], (needle, r.text)
    assert _state(api, task_no) == before

    # the water bureau's own task: it starts it, but may not edit the title nor submit early
    own = api.issue()
    assert api.patch(own, {"status": "in_progress"}, "department").status_code == 200
    before = _state(api, own)
    r = api.patch(own, {"title": "改名"}, "department")
    assert r.status_code == 403 and "title" in r.json()["description"], r.text
    r = api.patch(own, {"status": "submitted"}, "department")
    assert r.status_code == 409 and "milestones" in r.json()["description"], r.text
    r = api.report(f"{own}-02", {"done_date": day(0)})
    assert r.status_code == 400 and "evidence" in r.json()["description"], r.text
    r = api.report(f"{own}-02", {"done_date": day(1), "evidence_note": "x"})
    assert r.status_code == 400 and "future" in r.json()["description"], r.text
    r = api.report(f"{own}-02", {"done": day(0)})
    assert r.status_code == 400 and "done_date" in r.json()["description"], r.text
    r = api.report(f"{own}-09", {"done_date": day(0), "evidence_note": "x"})
    assert r.status_code == 404, r.text
    assert _state(api, own) == before
    ok = {"done_date": day(0), "evidence_note": "完成"}
    assert api.report(f"{own}-02", ok).status_code == 200
    r = api.report(f"{own}-02", ok)
    assert r.status_code == 409 and "already" in r.json()["description"], r.text


def test_milestone_after_its_due_date_needs_a_reason(api):
    """Issue 15's refusal "milestone after deadline without a reason": a report made after the
    due date (done on time or not) without ``late_reason`` is 400 and nothing is recorded."""
    task_no = api.issue(task_doc(milestones=((-3, "清淤"),)))
    assert api.patch(task_no, {"status": "in_progress"}, "admin").status_code == 200
    before = _state(api, task_no)
    for done in (day(-4), day(-1)):  # done before the due date but reported late; done late
        r = api.report(f"{task_no}-01", {"done_date": done, "evidence_note": "照片"})
        assert r.status_code == 400 and "late_reason" in r.json()["description"], r.text
    assert _state(api, task_no) == before
    r = api.report(
        f"{task_no}-01", {"done_date": day(-1), "evidence_note": "照片", "late_reason": "汛期"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["late_reason"] == "汛期"


def test_if_match_stale_or_missing_is_412_and_changes_nothing(api):
    """``If-Match`` on every write of a task and of a milestone: a stale tag is 412 (nothing
    written); the current one (or ``*``) lets the write through, and a write changes the tag;
    on an item that does not exist, 412 (RFC 9110 §13.1.1)."""
    task_no = api.issue()
    before = _state(api, task_no)
    etag = before[0]
    stale = {"If-Match": '"stale"'}
    doc = api.task(task_no).json()
    for r in (
        api.patch(task_no, {"progress": 5}, "admin", **stale),
        api.send("PUT", f"{TASKS}/{task_no}", "admin", doc, GEOJSON, **stale),
        api.send("DELETE", f"{TASKS}/{task_no}", "admin", **stale),
        api.patch(task_no, {"status": "in_progress"}, "department", **stale),
    ):
        assert r.status_code == 412, r.text
    assert _state(api, task_no) == before
    r = api.patch(task_no, {"status": "in_progress"}, "department", **{"If-Match": etag})
    assert r.status_code == 200 and r.headers["ETag"] != etag
    r = api.patch(task_no, {"progress": 5}, "department", **{"If-Match": etag})
    assert r.status_code == 412  # the old tag no longer matches

    mid = f"{task_no}-02"
    m_etag = api.milestone(mid).headers["ETag"]
    body = {"done_date": day(0), "evidence_note": "x"}
    assert api.report(mid, body, **stale).status_code == 412
    r = api.report(mid, body, **{"If-Match": m_etag})
    assert r.status_code == 200 and r.headers["ETag"] != m_etag
    for method, path in (
        ("PATCH", f"{TASKS}/KT1999-998"),
        ("PUT", f"{TASKS}/KT1999-998"),
        ("DELETE", f"{TASKS}/KT1999-998"),
        ("PATCH", f"{MILESTONES}/KT1999-998-01"),
    ):
        for tag in ('"abc"', "*"):
            r = api.send(method, path, "admin", doc, GEOJSON, **{"If-Match": tag})
            assert r.status_code == 412, (method, path, tag, r.text)
    r = api.send("PUT", f"{TASKS}/KT1999-998", "admin", doc, GEOJSON)
    assert r.status_code == 404, r.text
    r = api.send("PUT", f"{TASKS}/{task_no}", "admin", doc, None)
    assert r.status_code == 400 and "Content-Type" in r.json()["description"], r.text


# --- OPTIONS -------------------------------------------------------------------------------------

#: What each role may do to a task led by the water bureau, and to one of its milestones.
TASK_WRITES = {
    None: set(),
    "reporter": set(),
    "dispatcher": set(),
    "department": {"PATCH"},
    "leadership": {"PUT", "PATCH"},
    "admin": {"PUT", "PATCH", "DELETE"},
}
MILESTONE_WRITES = {
    None: set(),
    "reporter": set(),
    "dispatcher": set(),
    "department": {"PATCH"},
    "leadership": {"PUT", "PATCH", "DELETE"},
    "admin": {"PUT", "PATCH", "DELETE"},
}


def _allow(api, path, role):
    r = api.send("OPTIONS", path, role)
    assert r.status_code == 200, r.text
    return {m.strip() for m in r.headers["Allow"].split(",")}, r


@pytest.mark.parametrize("role", list(TASK_WRITES))
def test_options_lists_what_this_caller_may_do_and_only_that(api, role):
    """Part 4 /req/create-replace-delete/options-response on tasks and milestones: ``Allow``
    is this caller's; every write it leaves out is refused (401/403/405)."""
    task_no = api.issue()
    for path, writes in (
        (f"{TASKS}/{task_no}", TASK_WRITES),
        (f"{MILESTONES}/{task_no}-01", MILESTONE_WRITES),
    ):
        allowed, r = _allow(api, path, role)
        assert {"GET", "HEAD", "OPTIONS"} <= allowed
        assert allowed - {"GET", "HEAD", "OPTIONS"} == writes[role], path
        assert ("Accept-Patch" in r.headers) == ("PATCH" in allowed)
        for method in ("PUT", "PATCH", "DELETE"):
            if method not in allowed:
                r = api.send(method, path, role, {"progress": 1}, GEOJSON)
                assert r.status_code in (401, 403, 405), (method, path, r.text)
    allowed, r = _allow(api, TASKS, role)
    accept = {t.strip() for t in r.headers["Accept-Post"].split(",")}
    assert "POST" in allowed and "application/query-cql-json" in accept
    assert ("application/geo+json" in accept) == (role in ("leadership", "admin"))


def test_options_department_only_on_the_tasks_it_leads(api):
    for lead in ("water", "housing"):
        task_no = api.issue(task_doc(lead=lead))
        allowed, _ = _allow(api, f"{TASKS}/{task_no}", "department")
        assert ("PATCH" in allowed) == (lead == "water")
        allowed, _ = _allow(api, f"{MILESTONES}/{task_no}-01", "department")
        assert ("PATCH" in allowed) == (lead == "water")
    assert api.send("OPTIONS", f"{TASKS}/KT1999-997", "admin").status_code == 404


# --- 8 concurrent writers, and a SIGKILL mid-write ----------------------------------------------

WRITERS = 8
TASKS_PER_WRITER = 6  # each: issue, start, report one milestone, a PATCH → 4 writes


def _writer(url: str, n: int, errors: list) -> list[str]:
    api = Api.__new__(Api)
    api.url, api.data, api.session = url, None, requests.Session()
    made = []
    for i in range(n):
        r = api.send("POST", TASKS, "leadership", task_doc(title=f"并发 {i}"), GEOJSON)
        if r.status_code != 201:
            errors.append((r.status_code, r.text[:200]))
            continue
        task_no = r.headers["Location"].rsplit("/", 1)[-1]
        made.append(task_no)
        for r in (
            api.patch(task_no, {"status": "in_progress"}, "department"),
            api.report(f"{task_no}-02", {"done_date": day(0), "evidence_note": "并发"}),
            api.patch(task_no, {"responsible_phone": f"1390000{i:04d}"}, "department"),
        ):
            if r.status_code != 200:
                errors.append((r.status_code, r.text[:200]))
    return made


def test_eight_concurrent_writers_lose_and_duplicate_nothing(store_kind, sample_gpkg):
    """8 writers issue tasks (with 2 milestones each), start them, report a milestone and edit
    them at once; then 8 writers race to report one milestone and to accept one task. Every
    acknowledged write is stored once, numbers are unique, the trail has each write once, the
    store is sound."""
    from layers.key_tasks import HISTORY
    from layers.key_tasks import MILESTONES as ML
    from layers.key_tasks import TASKS as TL
    from layers.query import Query
    from layers.stores import open_store

    data = (
        copy_sample(sample_gpkg, "key_task_concurrency")
        if store_kind == "gpkg"
        else writable_copy(store_kind, sample_gpkg, "key_task_concurrency")
    )
    server = LiveServer(data, workers=3)
    try:
        errors: list = []
        t0 = time.perf_counter()
        with ThreadPoolExecutor(WRITERS) as pool:
            futures = [pool.submit(_writer, server.url, TASKS_PER_WRITER, errors) for _ in range(8)]
            made = [t for f in futures for t in f.result()]
        elapsed = time.perf_counter() - t0
        api = Api(server)
        # the race: one milestone reported by 8 at once, one task moved by 8 at once
        race = made[0]
        barrier = threading.Barrier(WRITERS)
        body = {"done_date": day(0), "evidence_note": "抢报", "late_reason": "补报"}

        def report(_):
            barrier.wait()
            return api.report(f"{race}-01", body, "admin").status_code

        with ThreadPoolExecutor(WRITERS) as pool:
            reports = sorted(pool.map(report, range(WRITERS)))
        barrier = threading.Barrier(WRITERS)

        def submit(_):
            barrier.wait()
            return api.patch(race, {"status": "submitted"}, "admin").status_code

        with ThreadPoolExecutor(WRITERS) as pool:
            submits = sorted(pool.map(submit, range(WRITERS)))
    finally:
        server.stop()
    assert not errors, errors[:5]
    assert len(made) == WRITERS * TASKS_PER_WRITER and len(set(made)) == len(made)
    assert reports == [200] + [409] * (WRITERS - 1)
    assert submits == [200] + [409] * (WRITERS - 1)
    s = open_store(data)
    try:
        mine = [
            f["properties"]
            for f in s.query(TL, Query(limit=10_000, skip_geometry=True), count=False).features
            if f["properties"]["task_no"] in set(made)
        ]
        assert len(mine) == len(made)
        assert all(p["responsible_phone"].startswith("1390000") for p in mine)
        assert {p["status"] for p in mine if p["task_no"] != race} == {"in_progress"}
        ms = s.query(ML, Query(limit=10_000, skip_geometry=True), count=False).features
        ms = [f["properties"] for f in ms if f["properties"]["task_no"] in set(made)]
        assert len(ms) == 2 * len(made) and len({m["milestone_id"] for m in ms}) == len(ms)
        assert sum(1 for m in ms if m["done_date"]) == len(made) + 1
        hist = s.query(HISTORY, Query(limit=10_000, skip_geometry=True), count=False).features
        hist = [h["properties"] for h in hist if h["properties"]["task_no"] in set(made)]
        # per task: issue, start, report, edit; the raced task: one more report and a submit
        assert len(hist) == 4 * len(made) + 2
        assert len({h["event_id"] for h in hist}) == len(hist)
    finally:
        s.close()
    if store_kind == "gpkg":
        con = sqlite3.connect(data)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
    print(f"{4 * len(made)} key-task writes by {WRITERS} writers in {elapsed:.1f} s")


def test_sigkill_mid_writes_keeps_every_acknowledged_task(store_kind, sample_gpkg):
    """Writers issue tasks and report milestones until the server is SIGKILLed: every
    acknowledged task is stored with its two milestones and its issue row, every acknowledged
    report is stored, the store is sound and a restarted server numbers on without reuse."""
    from layers.key_tasks import HISTORY
    from layers.key_tasks import MILESTONES as ML
    from layers.key_tasks import TASKS as TL
    from layers.query import Query
    from layers.stores import open_store

    data = (
        copy_sample(sample_gpkg, "key_task_sigkill")
        if store_kind == "gpkg"
        else writable_copy(store_kind, sample_gpkg, "key_task_sigkill")
    )
    server = LiveServer(data, workers=2)
    acked: list[str] = []
    reported: list[str] = []
    stop = threading.Event()

    def writer():
        api = Api(server)
        while not stop.is_set():
            try:
                r = api.send("POST", TASKS, "admin", task_doc(), GEOJSON)
                if r.status_code != 201:
                    continue
                task_no = r.headers["Location"].rsplit("/", 1)[-1]
                acked.append(task_no)
                if api.patch(task_no, {"status": "in_progress"}, "admin").status_code == 200:
                    body = {"done_date": day(0), "evidence_note": "x"}
                    if api.report(f"{task_no}-02", body, "admin").status_code == 200:
                        reported.append(task_no)
            except requests.RequestException:
                return  # the server died under us

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.time() + 40
    while len(acked) < 40 and time.time() < deadline:
        time.sleep(0.05)
    server.stop(sig=signal.SIGKILL)  # the whole process group, mid-write
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 40
    if store_kind == "gpkg":
        con = sqlite3.connect(data)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
    s = open_store(data)
    try:
        q = Query(limit=10_000, skip_geometry=True)
        stored = {f["properties"]["task_no"] for f in s.query(TL, q, count=False).features}
        ms = [f["properties"] for f in s.query(ML, q, count=False).features]
        issued = {
            f["properties"]["task_no"]
            for f in s.query(HISTORY, q, count=False).features
            if f["properties"]["action"] == "issue"
        }
    finally:
        s.close()
    assert set(acked) <= stored and set(acked) <= issued
    per_task: dict[str, int] = {}
    for m in ms:
        per_task[m["task_no"]] = per_task.get(m["task_no"], 0) + 1
    assert all(per_task.get(t) == 2 for t in acked)
    done = {m["task_no"] for m in ms if m["seq"] == 2 and m["done_date"]}
    assert set(reported) <= done
    server = LiveServer(data, workers=1)
    try:
        api = Api(server)
        assert api.task(acked[-1]).status_code == 200
        new = api.issue()
        assert new not in acked
    finally:
        server.stop()
