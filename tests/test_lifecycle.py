"""The seven-stage lifecycle: legal and illegal moves, roles, reasons, re-dispatch, history."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from casekit import feature
from stores import writable_copy

from layers import access, cases, lifecycle
from layers.catalogue import STAGES
from layers.errors import Conflict, Forbidden, InvalidFeature, NotAuthenticated, NotFound
from layers.stores import open_store

REPORTER = access.Principal("app", "reporter")
DISPATCHER = access.Principal("center", "dispatcher")
WATER = access.Principal("water bureau", "department", "water")
POWER = access.Principal("power bureau", "department", "power")
ADMIN = access.Principal("root", "admin")


pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def store(store_kind, sample_gpkg):
    return open_store(writable_copy(store_kind, sample_gpkg, "lifecycle"))


@pytest.fixture
def case_no(store):
    return cases.create_case(store, feature(category="manhole_cover"), REPORTER)["id"]


def _status(store, case_no):
    return store.get(cases.INCIDENTS, case_no)["properties"]["status"]


def test_every_stage_is_reachable_and_known():
    codes = {c.code for c in STAGES}
    for a, b in lifecycle.TRANSITIONS:
        assert a in codes and b in codes
    reached = {"collected"} | {b for _, b in lifecycle.TRANSITIONS}
    assert reached == codes


def test_full_path_stamps_each_stage(store, case_no):
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    steps = [
        ("handling", WATER, None),
        ("feedback", WATER, "cover replaced"),
        ("closed", DISPATCHER, "verified"),
        ("evaluated", REPORTER, None),
    ]
    for i, (to, who, note) in enumerate(steps):
        lifecycle.transition(
            store,
            case_no,
            to,
            who,
            note=note,
            now=t0 + dt.timedelta(hours=i),
            satisfaction=4 if to == "evaluated" else None,
        )
    p = store.get(cases.INCIDENTS, case_no)["properties"]
    assert p["status"] == "evaluated" and p["satisfaction"] == 4

    def stamp(i):
        return (t0 + dt.timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S")

    assert p["handled_at"].startswith(stamp(1))
    assert p["closed_at"].startswith(stamp(2))
    assert p["evaluated_at"].startswith(stamp(3))
    hist = lifecycle.history(store, case_no)
    assert [(h["from_status"], h["to_status"]) for h in hist] == [
        (None, "collected"),
        ("collected", "registered"),
        ("registered", "dispatched"),
        ("dispatched", "handling"),
        ("handling", "feedback"),
        ("feedback", "closed"),
        ("closed", "evaluated"),
    ]
    assert hist[4]["actor"] == "water bureau" and hist[4]["note"] == "cover replaced"
    assert all(h["at"] for h in hist)


def test_illegal_transition_is_409_naming_legal_ones(store, case_no):
    with pytest.raises(
        Conflict, match="cannot move to 'closed'; legal next stages: handling, returned"
    ):
        lifecycle.transition(store, case_no, "closed", ADMIN)
    with pytest.raises(InvalidFeature, match="'done' is not a valid stage"):
        lifecycle.transition(store, case_no, "done", ADMIN)
    assert _status(store, case_no) == "dispatched"


def test_roles_and_departments(store, case_no):
    with pytest.raises(Forbidden, match="allowed roles: department, admin"):
        lifecycle.transition(store, case_no, "handling", DISPATCHER)
    with pytest.raises(Forbidden, match="dispatched to 'water', not to 'power'"):
        lifecycle.transition(store, case_no, "handling", POWER)
    with pytest.raises(NotAuthenticated):
        lifecycle.transition(store, case_no, "handling", access.PUBLIC)
    # an illegal move or unknown stage by an anonymous caller is a 401 too, not a 409/400
    for to in ("evaluated", "done"):
        with pytest.raises(NotAuthenticated, match="needs an API key"):
            lifecycle.transition(store, case_no, to, access.PUBLIC)
    with pytest.raises(Forbidden):
        lifecycle.transition(store, case_no, "handling", REPORTER)
    lifecycle.transition(store, case_no, "handling", WATER)
    lifecycle.transition(store, case_no, "feedback", WATER, note="done")
    with pytest.raises(Forbidden, match="allowed roles: dispatcher, admin"):
        lifecycle.transition(store, case_no, "closed", WATER)  # no self-verification


def test_return_needs_reason_and_redispatch_restarts_deadline(store, case_no):
    with pytest.raises(InvalidFeature, match="needs a reason"):
        lifecycle.transition(store, case_no, "returned", WATER)
    before = store.get(cases.INCIDENTS, case_no)["properties"]
    lifecycle.transition(store, case_no, "returned", WATER, note="not ours: road surface")
    assert _status(store, case_no) == "returned"
    # a week on: the working-time deadline moves whatever the weekday (a day after a
    # Saturday is a Sunday, and both deadlines fell on the same Monday)
    later = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=7)
    f = lifecycle.transition(
        store,
        case_no,
        "dispatched",
        DISPATCHER,
        department="transport",
        note="re-dispatch",
        now=later,
    )
    p = f["properties"]
    assert p["department"] == "transport" and not p["territorial"]
    assert p["dispatched_at"].startswith(later.strftime("%Y-%m-%dT%H:%M:%S"))
    assert p["deadline"] != before["deadline"]
    hist = lifecycle.history(store, case_no)
    assert hist[-2]["note"] == "not ours: road surface"
    assert "dispatched to transport" in hist[-1]["note"]
    with pytest.raises(Forbidden):  # water no longer owns it
        lifecycle.transition(store, case_no, "handling", WATER)


def test_failed_verification_goes_back_to_handling(store, case_no):
    lifecycle.transition(store, case_no, "handling", WATER)
    lifecycle.transition(store, case_no, "feedback", WATER, note="done")
    with pytest.raises(InvalidFeature, match="needs a reason"):
        lifecycle.transition(store, case_no, "handling", DISPATCHER)
    lifecycle.transition(store, case_no, "handling", DISPATCHER, note="cover still loose")
    assert _status(store, case_no) == "handling"


def test_bad_arguments(store, case_no):
    with pytest.raises(InvalidFeature, match="department can only be given"):
        lifecycle.transition(store, case_no, "handling", WATER, department="water")
    with pytest.raises(InvalidFeature, match="'nowhere' is not a valid department"):
        lifecycle.transition(store, case_no, "returned", WATER, note="x")
        lifecycle.transition(store, case_no, "dispatched", DISPATCHER, department="nowhere")
    with pytest.raises(NotFound):
        lifecycle.transition(store, "TY0000000000000", "handling", WATER)


def test_edit_and_delete_keep_history(store, case_no):
    lifecycle.edit(store, case_no, {"description": "深夜发现"}, who=DISPATCHER)
    with pytest.raises(Forbidden):
        lifecycle.edit(store, case_no, {"description": "x"}, who=REPORTER)
    with pytest.raises(Forbidden, match="allowed roles: admin"):
        lifecycle.delete_case(store, case_no, DISPATCHER)
    lifecycle.delete_case(store, case_no, ADMIN)
    with pytest.raises(NotFound):
        store.get(cases.INCIDENTS, case_no)
    actions = [h["action"] for h in lifecycle.history(store, case_no)]
    assert actions[-2:] == ["edit", "delete"]


def test_failed_move_writes_nothing(store, case_no):
    n = len(lifecycle.history(store, case_no))
    with pytest.raises(Conflict):
        lifecycle.edit(store, case_no, {"description": "改了"}, who=DISPATCHER)
        lifecycle.edit(
            store, case_no, {"description": "再改", "status": "evaluated"}, who=DISPATCHER
        )
    assert len(lifecycle.history(store, case_no)) == n + 1  # only the first edit
    assert store.get(cases.INCIDENTS, case_no)["properties"]["description"] == "改了"


def test_concurrent_creates_and_racing_moves(store):
    def make(_):
        return [cases.create_case(store, feature(), REPORTER)["id"] for _ in range(15)]

    with ThreadPoolExecutor(8) as pool:
        made = [c for batch in pool.map(make, range(8)) for c in batch]
    assert len(set(made)) == len(made) == 120
    target = made[0]
    barrier = threading.Barrier(8)

    def move(_):
        barrier.wait()
        try:
            lifecycle.transition(store, target, "handling", WATER)
            return "ok"
        except Conflict:
            return "conflict"

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(move, range(8)))
    assert outcomes == ["conflict"] * 7 + ["ok"]
    moves = [h for h in lifecycle.history(store, target) if h["to_status"] == "handling"]
    assert len(moves) == 1
