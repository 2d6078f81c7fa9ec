"""Milestones re-planned and deleted through Part 4 (issue 15: neither was offered, a PUT or a
DELETE of a milestone was a 405), live on both stores: leadership moves a due date (earlier
freely, later or past the task's deadline with a reason), replaces one with a PUT, deletes one
not yet done; each audited (who, when, why); every refusal (401, 403, 400, 409, 412) leaves the
task, its milestones and its trail as they were.
"""

from __future__ import annotations

import pytest
from casekit import GEOJSON, copy_sample
from conftest import LiveServer
from stores import writable_copy
from test_key_task_writes import MILESTONES, TASKS, Api, _state, day, task_doc

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def api(store_kind, sample_gpkg):
    if store_kind == "gpkg":
        srv = LiveServer(copy_sample(sample_gpkg, "key_task_replan"))
    else:
        srv = LiveServer(writable_copy(store_kind, sample_gpkg, "key_task_replan"))
    try:
        yield Api(srv)
    finally:
        srv.stop()


def _trail(api, task_no, action):
    return [h for h in api.history(task_no, "admin").json()["history"] if h["action"] == action]


def _milestone(api, mid):
    r = api.milestone(mid, "admin")
    return r.status_code, (r.json()["properties"] if r.status_code == 200 else None)


def test_leadership_replans_replaces_and_deletes_each_audited(api):
    # started 30 days ago, deadline in 60; milestones due in 10 and 20 days
    task_no = api.issue(task_doc(milestones=((10, "摸底调查"), (20, "完成整治"))))
    m1, m2 = f"{task_no}-01", f"{task_no}-02"
    # earlier: no reason needed
    r = api.report(m1, {"due_date": day(5)}, "leadership")
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["due_date"] == day(5) and r.headers["ETag"]
    # later: with a reason (the ETag of the last answer as If-Match)
    r = api.report(
        m1,
        {"due_date": day(15), "note": "汛期推迟"},
        "leadership",
        **{"If-Match": r.headers["ETag"]},
    )
    assert r.status_code == 200, r.text
    assert _milestone(api, m1)[1]["due_date"] == day(15)
    # past the task's deadline, as a Feature, by admin
    body = {"type": "Feature", "geometry": None, "properties": {"due_date": day(70)}}
    body["note"] = "上级要求延期"
    r = api.send("PATCH", f"{MILESTONES}/{m2}", "admin", body, GEOJSON)
    assert r.status_code == 200, r.text
    # a PUT: title and due date (server fields echoed unchanged)
    stored = _milestone(api, m2)[1]
    put = {"type": "Feature", "geometry": None, "properties": dict(stored)}
    put["properties"].update(title="完成整治（调整）", due_date=day(25))
    r = api.send("PUT", f"{MILESTONES}/{m2}", "leadership", put, GEOJSON)
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] == api.milestone(m2, "admin").headers["ETag"]
    got = _milestone(api, m2)[1]
    assert (got["title"], got["due_date"]) == ("完成整治（调整）", day(25))
    plans = _trail(api, task_no, "replan")
    assert [(h["actor"], h["role"], h["milestone_seq"]) for h in plans] == [
        ("district leadership", "leadership", 1),
        ("district leadership", "leadership", 1),
        ("administrator", "admin", 2),
        ("district leadership", "leadership", 2),
    ]
    assert f"due {day(10)} → {day(5)}" in plans[0]["note"]
    assert plans[1]["note"].endswith("reason: 汛期推迟") and day(15) in plans[1]["note"]
    assert "上级要求延期" in plans[2]["note"] and "title" in plans[3]["note"]
    assert all(h["at"] for h in plans)
    # delete milestone 2 (leadership), then add one: a new number, not 2 again
    r = api.send("DELETE", f"{MILESTONES}/{m2}", "leadership")
    assert r.status_code == 200, r.text
    assert api.milestone(m2, "admin").status_code == 404
    (gone,) = _trail(api, task_no, "delete_milestone")
    assert (gone["actor"], gone["milestone_seq"]) == ("district leadership", 2)
    assert "完成整治（调整）" in gone["note"]
    new = {"task_no": task_no, "title": "补充节点", "due_date": day(30)}
    r = api.send(
        "POST",
        MILESTONES,
        "leadership",
        {"type": "Feature", "geometry": None, "properties": new},
        GEOJSON,
    )
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(f"{task_no}-03")


def test_every_refusal_changes_nothing(api):
    task_no = api.issue(task_doc(milestones=((-5, "摸底调查"), (20, "完成整治"))))
    m1, m2 = f"{task_no}-01", f"{task_no}-02"
    assert api.patch(task_no, {"status": "in_progress"}, "admin").status_code == 200
    done = {"done_date": day(0), "evidence_note": "台账", "late_reason": "晚报"}
    assert api.report(m1, done).status_code == 200  # milestone 1 done
    before = _state(api, task_no)
    tag = api.milestone(m2, "admin").headers["ETag"]
    refusals = [
        (api.report(m2, {"due_date": day(1)}, None), 401, "leadership"),
        (api.report(m2, {"due_date": day(1)}, "reporter"), 403, "leadership"),
        (api.report(m2, {"due_date": day(1)}, "department"), 403, "leadership"),
        (api.send("DELETE", f"{MILESTONES}/{m2}", "dispatcher"), 403, "leadership"),
        (api.send("DELETE", f"{MILESTONES}/{m2}", None), 401, "leadership"),
        (api.report(m2, {"due_date": day(25)}, "leadership"), 400, "reason"),
        (api.report(m2, {"due_date": day(70), "note": " "}, "leadership"), 400, "deadline"),
        (api.report(m2, {"due_date": day(-40), "note": "x"}, "leadership"), 400, "start_date"),
        (api.report(m2, {"due_date": "soon"}, "leadership"), 400, "ISO date"),
        (api.report(m2, {"due_date": day(1), "done_date": day(0)}, "leadership"), 400, "not both"),
        (api.report(m2, {"due_date": day(1), "when": 1}, "leadership"), 400, "when"),
        (api.report(m2, {"title": ""}, "leadership"), 400, "title"),
        (api.report(m1, {"due_date": day(1)}, "leadership"), 409, "reported done"),
        (api.send("DELETE", f"{MILESTONES}/{m1}", "leadership"), 409, "reported done"),
        (
            api.report(m2, {"due_date": day(1)}, "leadership", **{"If-Match": '"stale"'}),
            412,
            "",
        ),
        (api.send("DELETE", f"{MILESTONES}/{m2}", "admin", **{"If-Match": '"stale"'}), 412, ""),
        (api.send("PUT", f"{MILESTONES}/{m2}", "leadership", {"title": "x"}), 400, "Feature"),
        (
            api.send(
                "PUT",
                f"{MILESTONES}/{m2}",
                "leadership",
                {"type": "Feature", "geometry": None, "properties": {"title": "x"}},
                GEOJSON,
            ),
            400,
            "due_date",
        ),
        (
            api.send(
                "PUT",
                f"{MILESTONES}/{m2}",
                "leadership",
                {
                    "type": "Feature",
                    "geometry": None,
                    "properties": {"title": "x", "due_date": day(1), "escalation": "warning"},
                },
                GEOJSON,
            ),
            400,
            "set by the server",
        ),
        (api.send("DELETE", f"{MILESTONES}/{task_no}-09", "leadership"), 404, "milestones: 1, 2"),
        (api.send("DELETE", f"{MILESTONES}/KT1999-001-01", "leadership"), 404, "KT1999-001"),
        (
            api.send("DELETE", f"{MILESTONES}/{task_no}-09", "admin", **{"If-Match": tag}),
            412,
            "",
        ),
    ]
    for r, status, needle in refusals:
        assert r.status_code == status, (status, needle, r.text)
        assert needle in r.json()["description"], (needle, r.text)
    assert _state(api, task_no) == before
    # the right ETag: the re-plan goes through
    r = api.report(m2, {"due_date": day(10)}, "leadership", **{"If-Match": tag})
    assert r.status_code == 200, r.text
    # an accepted task's milestones are no longer re-planned or deleted
    assert api.report(m2, {"done_date": day(0), "evidence_note": "完成"}).status_code == 200
    assert api.patch(task_no, {"status": "submitted"}, "department").status_code == 200
    assert api.patch(task_no, {"status": "accepted"}, "leadership").status_code == 200
    before = _state(api, task_no)
    r = api.send("DELETE", f"{MILESTONES}/{m2}", "admin")
    assert r.status_code == 409 and "accepted" in r.json()["description"], r.text
    assert _state(api, task_no) == before
    assert TASKS  # the task itself stays
