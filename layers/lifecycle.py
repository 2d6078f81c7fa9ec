"""The case lifecycle: seven stages, returns with reasons, re-dispatch, and the audit history.

Stages of digital urban management (``incidents.status``)::

    collected → registered → dispatched → handling → feedback → closed → evaluated
                     ↑            ↓           ↓          ↓ (verification failed:
                     └──────── returned ←─────┘          back to handling)

:data:`TRANSITIONS` lists every legal move with the roles that may make it; a
move that is not in it is refused with 409 (naming the legal next stages), a
legal move by the wrong role with 403 (naming the roles that may). A
department may only act on cases dispatched to it. Returns and rejections need
a reason. Each move stamps the stage's timestamp (``dispatched_at`` …) and
writes one row of :data:`HISTORY` (who, role, when, from, to, note) in the
same transaction.

A reporter (the citizen app, a grid worker's key) acts only on its own cases:
those whose intake row in the history names it (role ``reporter``, actor its
key's ``name``; give each reporter key its own name). Evaluating or reading the
history of any other case is refused with 403, not 404: the incidents layer is
public, so a case's existence is no secret, only its workflow is.

The history is a catalogue-style :class:`~layers.catalogue.Layer` kept out of
the published catalogue, so every store keeps it through the ordinary
:class:`~layers.store.Store` interface.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import orjson

from layers import access, audit
from layers.catalogue import STAGES, Field, get_layer
from layers.dispatch import Placement, dispatch, locator_for
from layers.errors import (
    Conflict,
    Forbidden,
    InvalidFeature,
    NotAuthenticated,
    NotFound,
    TianyaError,
    choices,
)
from layers.query import Query
from layers.store import Store

INCIDENTS = get_layer("incidents")

HISTORY = audit.history_layer(
    "incident_history",
    "案件办理记录",
    "Case history",
    "案件每次状态变更的审计记录（谁、何时、从、到、备注）。",
    "Audit trail of every case change (who, when, from, to, note).",
    Field("case_no", "string", "案卷编号", "Case number", required=True, indexed=True),
)

#: The principal automatic steps are recorded under.
SYSTEM = access.Principal("automatic dispatch", "admin")
CREATE_ROLES = ("reporter", "dispatcher", "admin")
EDIT_ROLES = ("dispatcher", "admin")
#: Who may change a case's stage or fields by PATCH (a department only on its own cases).
PATCH_ROLES = ("dispatcher", "department", "admin")
DELETE_ROLES = ("admin",)

_D, _DEP, _A, _R = "dispatcher", "department", "admin", "reporter"
#: (from, to) → roles allowed to make the move.
TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("collected", "registered"): (_D, _A),
    ("collected", "returned"): (_D, _A),
    ("registered", "dispatched"): (_D, _A),
    ("registered", "returned"): (_D, _A),
    ("dispatched", "handling"): (_DEP, _A),
    ("dispatched", "returned"): (_DEP, _D, _A),  # wrong department: back to the center
    ("handling", "feedback"): (_DEP, _A),
    ("handling", "returned"): (_DEP, _D, _A),
    ("feedback", "closed"): (_D, _A),  # the inspector verified on site
    ("feedback", "handling"): (_D, _A),  # verification failed: handle again
    ("closed", "evaluated"): (_D, _R, _A),
    ("returned", "dispatched"): (_D, _A),  # re-dispatch
    ("returned", "registered"): (_D, _A),
}
#: Moves that need a reason in ``note``.
#: The roles that may make some move (an anonymous caller is asked for a key first).
MOVER_ROLES = tuple(sorted({role for roles in TRANSITIONS.values() for role in roles}))
NEEDS_REASON = {(a, b) for a, b in TRANSITIONS if b == "returned"} | {("feedback", "handling")}
#: Timestamp field stamped on entering a stage.
STAMPS = {
    "registered": "registered_at",
    "dispatched": "dispatched_at",
    "feedback": "handled_at",
    "closed": "closed_at",
    "evaluated": "evaluated_at",
}
STAGE_CODES = tuple(c.code for c in STAGES)


class PreconditionFailed(TianyaError, RuntimeError):
    """A condition of the request (``If-Match``) does not hold (HTTP 412, RFC 9110 §15.5.13)."""

    status = 412
    ogc_code = "PreconditionFailed"


def etag(feature: dict) -> str:
    """The strong ETag of a stored case: a hash of the whole stored feature (every field,
    whoever asks), so any change to the case changes it.

    Examples
    --------
    >>> a = {"id": "1", "properties": {"title": "x"}, "geometry": None}
    >>> etag(a) == etag(dict(a)) != etag(dict(a, properties={"title": "y"}))
    True
    """
    data = orjson.dumps(feature, option=orjson.OPT_SORT_KEYS, default=str)
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


def require_match(case: dict | None, if_match: str | None, case_no: str) -> None:
    """Honour an ``If-Match`` header (its raw value; ``None``: no condition) against ``case``,
    the case as stored now (``None``: there is no such case).

    RFC 9110 §13.1.1: ``*`` holds when the case exists; a list of entity tags holds when one
    of them is, by strong comparison, the case's current :func:`etag`; on a case that does not
    exist the condition fails.

    Raises
    ------
    PreconditionFailed
        When the condition does not hold (nothing is to be written).

    Examples
    --------
    >>> case = {"id": "1", "properties": {}, "geometry": None}
    >>> require_match(case, "*", "1")
    >>> require_match(case, etag(case) + ', "x"', "1")
    >>> require_match(case, '"x"', "1")
    Traceback (most recent call last):
    ...
    layers.lifecycle.PreconditionFailed: If-Match: case '1' has changed; its current ETag is ...
    """
    if if_match is None:
        return
    if case is None:
        raise PreconditionFailed(f"If-Match: there is no case {case_no!r}")
    tags = [t.strip() for t in if_match.split(",") if t.strip()]
    current = etag(case)
    if "*" in tags or current in tags:  # a weak tag (W/"...") never matches strongly
        return
    raise PreconditionFailed(
        f"If-Match: case {case_no!r} has changed; its current ETag is {current} "
        "(GET it again and resend)"
    )


def locked_case(store: Store, case_no: str, if_match: str | None = None) -> dict:
    """The case, its row locked for the caller's write transaction, once ``if_match`` holds
    (:func:`require_match`, checked against the locked row: two writers holding the same
    ETag cannot both pass)."""
    try:
        case = store.get_for_update(INCIDENTS, case_no)
    except NotFound:
        if if_match is not None:
            require_match(None, if_match, case_no)
        raise
    require_match(case, if_match, case_no)
    return case


def next_stages(status: str) -> list[str]:
    """Stages reachable from ``status``."""
    return [b for (a, b) in TRANSITIONS if a == status]


def ensure_tables(store: Store) -> None:
    """Create the history table if the store lacks it."""
    store.ensure_layer(HISTORY)


def require_role(who: access.Principal, action: str, roles) -> None:
    """401 for the public, 403 naming the roles when ``who`` may not ``action``."""
    if who.role in roles:
        return
    if who.role == "public":
        raise NotAuthenticated(
            f"{action} needs an API key with one of the roles: {', '.join(roles)}"
        )
    raise Forbidden(f"role {who.role!r} may not {action}; allowed roles: {', '.join(roles)}")


def record(
    store: Store,
    case_no: str,
    from_status: str | None,
    to_status: str | None,
    who: access.Principal,
    *,
    at: dt.datetime,
    note: str | None = None,
    action: str = "transition",
) -> None:
    """Append one history row (call inside the transaction that makes the change)."""
    audit.append(
        store,
        HISTORY,
        who,
        at=at,
        action=action,
        case_no=case_no,
        from_status=from_status,
        to_status=to_status,
        note=note,
    )


def history(store: Store, case_no: str) -> list[dict]:
    """The history rows of one case, oldest first (empty list if none)."""
    if not store.has_layer(HISTORY):
        return []
    q = Query(equals={"case_no": case_no}, sortby=[("at", True)], limit=10_000, skip_geometry=True)
    rows = [f["properties"] for f in store.query(HISTORY, q, count=False).features]
    return rows


def require_reporter_of(who: access.Principal, case_no: str, rows: list[dict]) -> None:
    """403 unless ``who`` is not a reporter or reported the case (``rows``: its history).

    The intake row (``collected``) records the reporter key's name and role.
    """
    if who.role != "reporter":
        return
    for r in rows:
        if (
            r.get("to_status") == "collected"
            and r.get("role") == "reporter"
            and r.get("actor") == who.name
        ):
            return
    raise Forbidden(
        f"case {case_no} was not reported with this key: a reporter may only "
        "evaluate, and read the history of, the cases it reported"
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def check_transition(case: dict, to: str, who: access.Principal, note: str | None) -> None:
    """Raise unless ``who`` may move ``case`` (a stored feature) to ``to``."""
    if who.role == "public":  # no case is the public's to move: 401 before what the move is
        require_role(who, "moving a case", MOVER_ROLES)
    if to not in STAGE_CODES:
        raise InvalidFeature(choices(to, STAGE_CODES, "stage (to)"))
    props = case["properties"]
    frm = props["status"]
    roles = TRANSITIONS.get((frm, to))
    if roles is None:
        legal = ", ".join(next_stages(frm)) or "none"
        raise Conflict(
            f"case {props['case_no']} is {frm!r}: it cannot move to {to!r}; "
            f"legal next stages: {legal}"
        )
    require_role(who, f"move a case from {frm!r} to {to!r}", roles)
    if who.role == "department" and props.get("department") != who.department:
        raise Forbidden(
            f"case {props['case_no']} is dispatched to "
            f"{props.get('department')!r}, not to {who.department!r}"
        )
    if (frm, to) in NEEDS_REASON and not (note and note.strip()):
        raise InvalidFeature(f"moving from {frm!r} to {to!r} needs a reason in 'note'")


def transition(
    store: Store,
    case_no: str,
    to: str,
    who: access.Principal,
    *,
    note: str | None = None,
    department: str | None = None,
    satisfaction: int | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Move a case to stage ``to``; returns the updated feature.

    Parameters
    ----------
    department : str, optional
        On (re-)dispatch, the department to send the case to (default: keep).
        The deadline restarts from the dispatch instant.
    satisfaction : int, optional
        On evaluation, the 1–5 satisfaction score.
    """
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise InvalidFeature("note must be a text of at most 2000 characters")
    if note is not None and "\x00" in note:
        raise InvalidFeature(
            "note contains a NUL character (U+0000), which text fields may not hold"
        )
    if department is not None and to != "dispatched":
        raise InvalidFeature("department can only be given when dispatching")
    if satisfaction is not None and to != "evaluated":
        raise InvalidFeature("satisfaction can only be given when evaluating")
    if satisfaction is not None and (
        isinstance(satisfaction, bool) or satisfaction not in (1, 2, 3, 4, 5)
    ):
        raise InvalidFeature(f"satisfaction must be an integer from 1 to 5, got {satisfaction!r}")
    departments = INCIDENTS.field("department").code_values or ()
    if department is not None and department not in departments:
        raise InvalidFeature(choices(department, departments, "department"))
    ensure_tables(store)
    now = now or _now()
    with store.transaction():
        case = store.get_for_update(INCIDENTS, case_no)
        check_transition(case, to, who, note)
        require_reporter_of(who, case_no, history(store, case_no))
        props = case["properties"]
        frm = props["status"]
        changes: dict = {"status": to}
        if to in STAMPS:
            changes[STAMPS[to]] = now
        if to == "dispatched":
            place = Placement(
                props.get("community_code"), props.get("grid_code"), props.get("worker_id")
            )
            d = dispatch(
                props["category"],
                place,
                now,
                department=department or props.get("department"),
                priority=props.get("priority"),
            )
            changes.update(
                department=d.department,
                deadline=d.deadline,
                territorial=d.department == "territorial",
            )
            note = (
                note + "; " if note else ""
            ) + f"dispatched to {d.department}, deadline {d.deadline.isoformat()}"
        if to == "evaluated" and satisfaction is not None:
            changes["satisfaction"] = satisfaction
        store.update(INCIDENTS, case_no, changes)
        record(store, case_no, frm, to, who, at=now, note=note)
    return store.get(INCIDENTS, case_no)


def edit(
    store: Store,
    case_no: str,
    props: dict,
    geometry=None,
    *,
    who: access.Principal,
    note: str | None = None,
    now: dt.datetime | None = None,
    if_match: str | None = None,
) -> dict:
    """Change descriptive fields (and the location) of a case, with a history row.

    A new location is placed again (community, grid, worker); ``status`` in
    ``props`` is made as a :func:`transition` in the same transaction. ``if_match`` (an
    ``If-Match`` value) is checked against the locked row (:func:`locked_case`). Returns the
    case as stored by this transaction (its :func:`etag` is the new ETag).
    """
    props = dict(props)
    to = props.pop("status", None)
    if props or geometry is not None:
        require_role(who, "edit a case", EDIT_ROLES)
    ensure_tables(store)
    now = now or _now()
    with store.transaction():
        case = locked_case(store, case_no, if_match)
        if geometry is not None:
            loc = locator_for(store)
            if not loc.inside(geometry):
                raise InvalidFeature(
                    f"location ({geometry.x:.6f}, {geometry.y:.6f}) is outside Tianya District"
                )
            p = loc.place(geometry)
            props.update(
                community_code=p.community_code, grid_code=p.grid_code, worker_id=p.worker_id
            )
        changed = sorted(k for k, v in props.items() if case["properties"].get(k) != v)
        if props or geometry is not None:
            store.update(INCIDENTS, case_no, props, geometry)
            record(
                store,
                case_no,
                case["properties"]["status"],
                None,
                who,
                at=now,
                action="edit",
                note="changed: "
                + (", ".join(changed) or "nothing")
                + (" and location" if geometry is not None else ""),
            )
        if to is not None:
            transition(store, case_no, to, who, note=note, now=now)
        return store.get(INCIDENTS, case_no)


def delete_case(
    store: Store, case_no: str, who: access.Principal, *, if_match: str | None = None
) -> None:
    """Delete a case (admin only); its history is kept with a ``delete`` row. ``if_match``
    (an ``If-Match`` value) is checked against the locked row (:func:`locked_case`)."""
    require_role(who, "delete a case", DELETE_ROLES)
    ensure_tables(store)
    with store.transaction():
        case = locked_case(store, case_no, if_match)
        store.delete(INCIDENTS, case_no)
        record(store, case_no, case["properties"]["status"], None, who, at=_now(), action="delete")
