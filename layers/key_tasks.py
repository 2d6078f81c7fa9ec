"""Key-work supervision (重点工作督办): key tasks, their milestones, lifecycle, escalation, audit.

The district's leadership issues key tasks (``key_tasks``: a renovation area, a river
section, a typhoon preparation, a rectification campaign …) to a lead department, with
co-operating departments, a deadline and milestones (``key_task_milestones``). Stages::

    assigned → in_progress → (milestone reports) → submitted → accepted
                    ↑                                   ↓
                    └───────────── returned ←───────────┘   (with a reason)

:data:`TRANSITIONS` lists every legal move with the roles that may make it, as
:mod:`layers.lifecycle` does for cases: a move not in it is refused with 409 naming the
legal next stages, a legal move by the wrong role with 403 naming the roles that may, a
department acting on a task it does not lead with 403. ``leadership`` and ``admin`` issue,
edit and accept tasks; the lead department starts, reports milestones (with evidence; a
report after the due date needs a reason, else 400) and submits; the public reads every
task and milestone without the sensitive fields (:mod:`layers.access`).

Every change writes one row of :data:`HISTORY` (who, role, department, when, action,
from, to, milestone, note) in the same store transaction; the history is kept out of the
published catalogue, as the case history is.

:func:`escalate` is the supervision clock: an open milestone (or an open task) past its
due date gets a ``warning`` entry, and :data:`GRACE_DAYS` days later an
``accountability`` entry (问责), each exactly once however often it runs; ``now`` is always
passed in (never read inside), so tests drive the clock.

Geometry: any of Point, LineString, MultiLineString, Polygon, MultiPolygon in CRS84,
stored as the generic geometry type (GeoPackage ``GEOMETRY``, PostGIS
``geometry(Geometry, 4326)``) and served as GeoJSON of its own type.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import shapely
import shapely.geometry

from layers import access, audit
from layers.catalogue import DEPARTMENTS, Field, Layer, get_layer
from layers.district import TZ, district_boundary
from layers.errors import Conflict, Forbidden, InvalidFeature, NotFound, choices
from layers.lifecycle import require_role
from layers.query import Query
from layers.store import Store

TASKS = get_layer("key_tasks")
MILESTONES = get_layer("key_task_milestones")

HISTORY = audit.history_layer(
    "key_task_history",
    "重点工作督办记录",
    "Key task history",
    "重点工作每次变更、节点报送与预警问责的审计记录。",
    "Audit trail of every key-task change, milestone report and escalation.",
    Field("task_no", "string", "任务编号", "Task number", required=True, indexed=True),
    after_role=(Field("department", "string", "部门", "Department"),),
    after_action=(
        Field("milestone_seq", "integer", "节点序号", "Milestone (0: the task's deadline)"),
    ),
    action_indexed=True,
    stage=("状态", "status"),
)

#: Last task serial of each year (``KT`` + year + ``-`` + 3-digit serial).
COUNTERS = audit.counters_layer(
    "key_task_counters",
    "任务编号计数",
    "Key task number counters",
    "每年任务流水号。",
    "Last key-task serial of each year.",
    Field("year", "string", "年份", "Year"),
)

#: The principal the supervision clock records its entries under.
CLOCK = access.Principal("supervision clock", "admin")

_DEP, _L, _A = "department", "leadership", "admin"
ISSUE_ROLES = (_L, _A)
EDIT_ROLES = (_L, _A)
REPORT_ROLES = (_DEP, _A)
DELETE_ROLES = (_A,)
#: (from, to) → roles allowed to make the move.
TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("assigned", "in_progress"): (_DEP, _A),
    ("in_progress", "submitted"): (_DEP, _A),
    ("submitted", "accepted"): (_L, _A),
    ("submitted", "returned"): (_L, _A),
    ("returned", "in_progress"): (_DEP, _A),
}
#: Moves that need a reason in ``note``.
NEEDS_REASON = {("submitted", "returned")}
#: Timestamp field stamped on entering a stage.
STAMPS = {"submitted": "submitted_at", "accepted": "accepted_at"}
STATUS_CODES = tuple(TASKS.field("status").code_values or ())
DEPARTMENT_CODES = tuple(c.code for c in DEPARTMENTS)
#: Stages in which a task's milestones and deadline are still running.
OPEN = ("assigned", "in_progress", "returned")
#: Days after the warning's day (the day after the due date) before accountability.
GRACE_DAYS = 7
LEVELS = ("warning", "accountability")
GEOMETRIES = ("Point", "LineString", "MultiLineString", "Polygon", "MultiPolygon")

#: Fields leadership/admin set when issuing or editing a task.
TASK_FIELDS = (
    "title",
    "description",
    "kind",
    "lead_department",
    "co_departments",
    "issuing_authority",
    "priority",
    "start_date",
    "deadline",
    "community_code",
    "responsible_person",
    "responsible_phone",
)
#: Fields the lead department may change on its own task (besides reports and moves).
DEPARTMENT_FIELDS = ("progress", "responsible_person", "responsible_phone")
MILESTONE_FIELDS = ("title", "due_date")
MAX_TEXT = 2000


# --- helpers ----------------------------------------------------------------------------------


def local_day(now: dt.datetime) -> dt.date:
    """The Tianya (UTC+8) calendar day of the aware instant ``now``."""
    if now.tzinfo is None:
        raise InvalidFeature("now must be an aware datetime")
    return now.astimezone(TZ).date()


def _date(value, name: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InvalidFeature(f"{name} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def _day(value, name: str) -> dt.date:
    """A stored date that must be there."""
    d = _date(value, name)
    if d is None:
        raise InvalidFeature(f"{name} is required")
    return d


def _text(value, name: str, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidFeature(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidFeature(f"{name} must be a text, got {value!r}"[:200])
    if len(value) > MAX_TEXT:
        raise InvalidFeature(f"{name} is longer than {MAX_TEXT} characters")
    if "\x00" in value:
        raise InvalidFeature(f"{name} contains a NUL character (U+0000), which text may not hold")
    return value


def check_co_departments(value) -> str | None:
    """``value`` (a comma-separated text or a list of department codes) as stored text."""
    if value is None or value == "" or value == []:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise InvalidFeature("co_departments must be department codes, comma-separated")
    out = []
    for item in items:
        code = str(item).strip()
        if code not in DEPARTMENT_CODES:
            raise InvalidFeature(choices(code, DEPARTMENT_CODES, "co_departments code"))
        if code not in out:
            out.append(code)
    return ",".join(out)


def check_fields(layer: Layer, props: dict, allowed: Sequence[str], what: str) -> dict:
    """``props`` checked against ``layer``'s fields: names, types, code lists (400 naming)."""
    from layers.cases import _coerce

    if not isinstance(props, dict):
        raise InvalidFeature("properties must be a JSON object")
    fmap = layer.field_map
    out: dict[str, object] = {}
    for name, value in props.items():
        if name not in allowed:
            if name in fmap:
                raise InvalidFeature(
                    f"property {name!r} may not be set {what}; allowed: {', '.join(allowed)}"
                )
            raise InvalidFeature(choices(name, list(allowed), f"property of {layer.id} {what}"))
        f = fmap[name]
        if value is None:
            out[name] = None
            continue
        if name == "co_departments":
            out[name] = check_co_departments(value)
            continue
        value = _coerce(name, f.type, value)
        codes = f.code_values
        if codes is not None and value not in codes:
            raise InvalidFeature(choices(value, codes, f"{name} code"))
        out[name] = value
    if "progress" in out and out["progress"] is not None:
        p = out["progress"]
        if not isinstance(p, int) or not 0 <= p <= 100:
            raise InvalidFeature(f"progress must be an integer from 0 to 100, got {p!r}")
    return out


def read_geometry(geometry) -> shapely.Geometry:
    """A GeoJSON geometry (CRS84) a key task may hold, touching Tianya District."""
    if not isinstance(geometry, dict):
        raise InvalidFeature(
            "geometry is required: a GeoJSON " + ", ".join(GEOMETRIES) + " in CRS84"
        )
    gtype = geometry.get("type")
    if gtype not in GEOMETRIES:
        raise InvalidFeature(choices(str(gtype), GEOMETRIES, "geometry type of a key task"))
    try:
        geom = shapely.geometry.shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise InvalidFeature(f"geometry is not a valid GeoJSON {gtype}: {exc}"[:200]) from None
    coords = shapely.get_coordinates(geom)
    if geom.is_empty or not len(coords) or not all(math.isfinite(v) for v in coords.ravel()):
        raise InvalidFeature("geometry coordinates must be finite numbers, and some")
    if not (
        (-180 <= coords[:, 0]).all()
        and (coords[:, 0] <= 180).all()
        and (-90 <= coords[:, 1]).all()
        and (coords[:, 1] <= 90).all()
    ):
        raise InvalidFeature("geometry coordinates must be longitude, latitude (CRS84)")
    if not geom.is_valid:
        raise InvalidFeature(f"geometry is not valid: {shapely.is_valid_reason(geom)}")
    if not geom.intersects(district_boundary()):
        raise InvalidFeature("geometry does not touch Tianya District")
    return geom


def record(
    store: Store,
    task_no: str,
    who: access.Principal,
    *,
    at: dt.datetime,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    seq: int | None = None,
    note: str | None = None,
) -> None:
    """Append one history row (call inside the transaction that makes the change)."""
    audit.append(
        store,
        HISTORY,
        who,
        at=at,
        action=action,
        task_no=task_no,
        department=who.department,
        milestone_seq=seq,
        from_status=from_status,
        to_status=to_status,
        note=note,
    )


def ensure_tables(store: Store) -> None:
    """Create the key-task tables (and history, counters) the store lacks."""
    for layer in (TASKS, MILESTONES, HISTORY, COUNTERS):
        store.ensure_layer(layer)


def milestone_id(task_no: str, seq: int) -> str:
    """The key of milestone ``seq`` of ``task_no``.

    Examples
    --------
    >>> milestone_id("KT2026-007", 3)
    'KT2026-007-03'
    """
    return f"{task_no}-{seq:02d}"


def next_stages(status: str) -> list[str]:
    """Stages reachable from ``status``."""
    return [b for (a, b) in TRANSITIONS if a == status]


def next_task_no(store: Store, year: int) -> str:
    """The next task number of ``year`` (call inside the inserting transaction; the year's
    counter row is locked until it ends, so concurrent writers take turns)."""
    last = audit.next_serial(store, COUNTERS, str(year), first=lambda: _max_serial(store, year))
    return f"KT{year}-{last:03d}"


def _max_serial(store: Store, year: int) -> int:
    prefix = f"KT{year}-"
    q = Query(properties=["task_no"], skip_geometry=True, limit=10_000)
    best = 0
    for f in store.query(TASKS, q, count=False).features:
        no = str(f["properties"]["task_no"])
        if no.startswith(prefix) and no[len(prefix) :].isdigit():
            best = max(best, int(no[len(prefix) :]))
    return best


def _require_own(who: access.Principal, task: dict) -> None:
    props = task["properties"]
    if who.role == "department" and props.get("lead_department") != who.department:
        raise Forbidden(
            f"key task {props['task_no']} is led by {props.get('lead_department')!r}, "
            f"not by {who.department!r}: a department acts only on the tasks it leads"
        )


def _visible(layer: Layer, feature: dict, who: access.Principal) -> dict:
    keep = set(access.visible_fields(layer, who))
    props = {k: v for k, v in feature["properties"].items() if k in keep}
    return dict(feature, properties=props)


# --- reading ----------------------------------------------------------------------------------


def get_task(store: Store, task_no: str, who: access.Principal = access.PUBLIC) -> dict:
    """One task as ``who`` may see it (404 naming it if absent)."""
    return _visible(TASKS, store.get(TASKS, task_no), who)


def milestones(store: Store, task_no: str, who: access.Principal = access.PUBLIC) -> list[dict]:
    """The milestones of one task (properties ``who`` may see), in sequence order."""
    if not store.has_layer(MILESTONES):
        return []
    q = Query(equals={"task_no": task_no}, sortby=[("seq", True)], limit=10_000, skip_geometry=True)
    keep = set(access.visible_fields(MILESTONES, who))
    return [
        {k: v for k, v in f["properties"].items() if k in keep}
        for f in store.query(MILESTONES, q, count=False).features
    ]


def history(store: Store, task_no: str, who: access.Principal) -> list[dict]:
    """The audit trail of one task, oldest first; trusted roles only (401/403 otherwise).

    A department reads the trail of any task (co-operating departments follow the tasks
    they help with); the public and reporters do not.
    """
    require_role(who, "read a key task's history", access.KEY_TASK_HISTORY_ROLES)
    store.get(TASKS, task_no)  # 404 for an unknown task
    return _history(store, task_no)


def _history(store: Store, task_no: str) -> list[dict]:
    if not store.has_layer(HISTORY):
        return []
    q = Query(equals={"task_no": task_no}, sortby=[("at", True)], limit=10_000, skip_geometry=True)
    return [f["properties"] for f in store.query(HISTORY, q, count=False).features]


def accountability_list(store: Store) -> list[dict]:
    """Every escalation entry (warnings and accountability), oldest first."""
    if not store.has_layer(HISTORY):
        return []
    out = []
    for level in LEVELS:
        q = Query(equals={"action": level}, limit=10_000, skip_geometry=True)
        out += [f["properties"] for f in store.query(HISTORY, q, count=False).features]
    return sorted(out, key=lambda r: (str(r["at"]), r["task_no"], r.get("milestone_seq") or 0))


# --- writing ----------------------------------------------------------------------------------


def create_task(
    store: Store,
    doc: dict,
    who: access.Principal,
    *,
    now: dt.datetime,
    milestones: Sequence[dict] = (),
) -> dict:
    """Issue a key task (leadership/admin): status ``assigned``, progress 0, no escalation.

    Parameters
    ----------
    doc : dict
        A GeoJSON Feature: ``geometry`` (see :func:`read_geometry`) and ``properties`` of
        :data:`TASK_FIELDS` (``title``, ``kind``, ``lead_department``, ``start_date``,
        ``deadline`` required); ``task_no`` is given out (``KT`` + year + serial).
    milestones : sequence of dict
        ``{"title", "due_date"}`` each, numbered 1, 2, … in order; due dates between the
        start date and the deadline.
    now : datetime
        The instant of issue (aware).

    Returns
    -------
    dict
        The stored task feature.
    """
    require_role(who, "issue a key task", ISSUE_ROLES)
    if not isinstance(doc, dict) or doc.get("type") != "Feature":
        raise InvalidFeature("body must be a GeoJSON Feature")
    props = check_fields(TASKS, doc.get("properties") or {}, TASK_FIELDS, "when issuing")
    for name in TASKS.required_fields:
        if props.get(name) in (None, ""):
            raise InvalidFeature(f"property {name!r} is required")
    _text(props.get("title"), "title", required=True)
    geom = read_geometry(doc.get("geometry"))
    start, deadline = _date(props["start_date"], "start_date"), _date(props["deadline"], "deadline")
    assert start is not None and deadline is not None
    if deadline < start:
        raise InvalidFeature(f"deadline {deadline} is before start_date {start}")
    if props.get("co_departments") and props["lead_department"] in str(
        props["co_departments"]
    ).split(","):
        raise InvalidFeature("the lead department cannot also be a co-operating department")
    rows = _new_milestones(list(milestones), start, deadline)
    props.update(status="assigned", progress=0, escalation="none", issued_at=now, updated_at=now)
    props.setdefault("priority", "normal")
    ensure_tables(store)
    with store.transaction():
        task_no = next_task_no(store, local_day(now).year)
        props["task_no"] = task_no
        store.insert(TASKS, [{"geometry": geom, "properties": props}])
        for seq, m in enumerate(rows, 1):
            _insert_milestone(store, task_no, seq, m)
        record(
            store,
            task_no,
            who,
            at=now,
            action="issue",
            to_status="assigned",
            note=f"issued to {props['lead_department']} with {len(rows)} milestones",
        )
    return store.get(TASKS, task_no)


def _new_milestones(items: list[dict], start: dt.date, deadline: dt.date) -> list[dict]:
    out = []
    for i, m in enumerate(items, 1):
        m = check_fields(MILESTONES, m, MILESTONE_FIELDS, "for a new milestone")
        _text(m.get("title"), f"milestone {i} title", required=True)
        due = _date(m.get("due_date"), f"milestone {i} due_date")
        if due is None:
            raise InvalidFeature(f"milestone {i} needs a due_date")
        if not start <= due <= deadline:
            raise InvalidFeature(
                f"milestone {i} due_date {due} is outside the task's {start} … {deadline}"
            )
        out.append({"title": m["title"], "due_date": due.isoformat()})
    return out


def _insert_milestone(store: Store, task_no: str, seq: int, m: dict) -> None:
    store.insert(
        MILESTONES,
        [
            {
                "geometry": None,
                "properties": {
                    "milestone_id": milestone_id(task_no, seq),
                    "task_no": task_no,
                    "seq": seq,
                    "title": m["title"],
                    "due_date": m["due_date"],
                    "escalation": "none",
                },
            }
        ],
    )


def add_milestone(
    store: Store, task_no: str, props: dict, who: access.Principal, *, now: dt.datetime
) -> dict:
    """Add a milestone to an open task (leadership/admin); returns its stored properties."""
    require_role(who, "add a milestone", EDIT_ROLES)
    ensure_tables(store)
    with store.transaction():
        task = store.get_for_update(TASKS, task_no)
        tp = task["properties"]
        if tp["status"] not in OPEN:
            raise Conflict(
                f"key task {task_no} is {tp['status']!r}: milestones are added while it is "
                + " or ".join(OPEN)
            )
        (m,) = _new_milestones(
            [props], _day(tp["start_date"], "start_date"), _day(tp["deadline"], "deadline")
        )
        # a deleted milestone's number is not given out again (its history keeps it)
        used = [r["seq"] for r in milestones(store, task_no, CLOCK)]
        used += [int(h["milestone_seq"] or 0) for h in _history(store, task_no)]
        seq = 1 + max(used, default=0)
        _insert_milestone(store, task_no, seq, m)
        record(store, task_no, who, at=now, action="add_milestone", seq=seq, note=m["title"])
    return store.get(MILESTONES, milestone_id(task_no, seq))["properties"]


def patch_task(
    store: Store,
    task_no: str,
    props: dict,
    who: access.Principal,
    *,
    now: dt.datetime,
    geometry: dict | None = None,
    note: str | None = None,
    if_match: str | None = None,
) -> dict:
    """Change some fields (and the geometry) of a task; ``status`` in ``props`` is a
    :func:`transition` in the same transaction.

    Leadership/admin change :data:`TASK_FIELDS`; the lead department only
    :data:`DEPARTMENT_FIELDS` on its own task. ``if_match`` (an ``If-Match`` value) is
    checked against the locked row. Returns the stored task.
    """
    props = dict(props)
    to = props.pop("status", None)
    allowed = (
        TASK_FIELDS if who.role in EDIT_ROLES else DEPARTMENT_FIELDS if who.role == _DEP else ()
    )
    if props or geometry is not None:
        require_role(who, "edit a key task", EDIT_ROLES + (_DEP,))
        if geometry is not None and who.role not in EDIT_ROLES:
            raise Forbidden(
                f"role {who.role!r} may not move a key task; allowed: leadership, admin"
            )
    barred = sorted((set(props) & set(TASK_FIELDS)) - set(allowed))
    if barred:
        raise Forbidden(
            f"role {who.role!r} may not change {', '.join(barred)} of a key task; it may "
            f"change: {', '.join(allowed) or 'nothing'} (leadership and admin change the rest)"
        )
    changes = check_fields(TASKS, props, allowed, f"by role {who.role!r}")
    geom = read_geometry(geometry) if geometry is not None else None
    if "title" in changes:
        _text(changes["title"], "title", required=True)
    ensure_tables(store)
    with store.transaction():
        task = _locked(store, task_no, if_match)
        _require_own(who, task)
        old = task["properties"]
        merged = {**old, **changes}
        start, deadline = _date(merged["start_date"], "start"), _date(merged["deadline"], "end")
        assert start is not None and deadline is not None
        if deadline < start:
            raise InvalidFeature(f"deadline {deadline} is before start_date {start}")
        for name in ("title", "kind", "lead_department", "start_date", "deadline"):
            if name in changes and changes[name] is None:
                raise InvalidFeature(f"property {name!r} is required and cannot be cleared")
        changed = sorted(k for k, v in changes.items() if str(old.get(k)) != str(v))
        if changes or geom is not None:
            changes["updated_at"] = now
            store.update(TASKS, task_no, changes, geom)
            record(
                store,
                task_no,
                who,
                at=now,
                action="edit",
                from_status=old["status"],
                note="changed: "
                + (", ".join(changed) or "nothing")
                + (" and geometry" if geom is not None else "")
                + (f"; {note}" if note and to is None else ""),
            )
        if to is not None:
            _transition(store, task_no, to, who, note=note, now=now)
        return store.get(TASKS, task_no)


#: Same as :func:`patch_task` (the Part 4 PATCH).
update_task = patch_task


def _locked(store: Store, task_no: str, if_match: str | None) -> dict:
    """The task locked for this transaction, once ``if_match`` holds."""
    from layers.lifecycle import require_match

    try:
        task = store.get_for_update(TASKS, task_no)
    except NotFound:
        if if_match is not None:
            require_match(None, if_match, task_no)
        raise
    require_match(task, if_match, task_no)
    return task


def check_transition(task: dict, to: str, who: access.Principal, note: str | None) -> None:
    """Raise unless ``who`` may move ``task`` (a stored feature) to ``to``."""
    if to not in STATUS_CODES:
        raise InvalidFeature(choices(to, STATUS_CODES, "status (to)"))
    props = task["properties"]
    frm = props["status"]
    roles = TRANSITIONS.get((frm, to))
    if roles is None:
        legal = ", ".join(next_stages(frm)) or "none"
        raise Conflict(
            f"key task {props['task_no']} is {frm!r}: it cannot move to {to!r}; "
            f"legal next stages: {legal}"
        )
    require_role(who, f"move a key task from {frm!r} to {to!r}", roles)
    _require_own(who, task)
    if (frm, to) in NEEDS_REASON and not (note and note.strip()):
        raise InvalidFeature(f"moving a key task from {frm!r} to {to!r} needs a reason in 'note'")


def transition(
    store: Store,
    task_no: str,
    to: str,
    who: access.Principal,
    note: str | None = None,
    *,
    now: dt.datetime,
    if_match: str | None = None,
) -> dict:
    """Move a task to stage ``to`` (see :data:`TRANSITIONS`); returns the stored task.

    Submitting needs every milestone reported (409 naming the open ones); accepting sets
    progress to 100.
    """
    _text(note, "note")
    ensure_tables(store)
    with store.transaction():
        _locked(store, task_no, if_match)
        _transition(store, task_no, to, who, note=note, now=now)
    return store.get(TASKS, task_no)


def _transition(
    store: Store, task_no: str, to: str, who: access.Principal, *, note, now: dt.datetime
) -> None:
    _text(note, "note")
    task = store.get(TASKS, task_no)
    check_transition(task, to, who, note)
    frm = task["properties"]["status"]
    changes: dict = {"status": to, "updated_at": now}
    if to in STAMPS:
        changes[STAMPS[to]] = now
    if to == "submitted":
        open_ = [m["seq"] for m in milestones(store, task_no, CLOCK) if not m.get("done_date")]
        if open_:
            raise Conflict(
                f"key task {task_no} cannot be submitted: milestones "
                f"{', '.join(map(str, open_))} are not reported done"
            )
    if to == "accepted":
        changes["progress"] = 100
    store.update(TASKS, task_no, changes)
    record(
        store, task_no, who, at=now, action="transition", from_status=frm, to_status=to, note=note
    )


def report_milestone(
    store: Store,
    task_no: str,
    seq: int,
    who: access.Principal,
    *,
    done_date: dt.date | str,
    now: dt.datetime,
    evidence_note: str | None = None,
    evidence_link: str | None = None,
    late_reason: str | None = None,
    progress: int | None = None,
) -> dict:
    """Report milestone ``seq`` of a task done (the lead department or admin).

    The task must be ``in_progress`` (409 otherwise); a milestone is reported once (409).
    Evidence (a note or a link) is required. A report whose ``done_date`` is after the due
    date, or made after the due date (Tianya's calendar day of ``now``), needs
    ``late_reason`` (400 otherwise). ``done_date`` may not be in the future nor before the
    task's start. ``progress`` (0–100) defaults to the share of milestones done.

    Returns
    -------
    dict
        The milestone's stored properties.
    """
    require_role(who, "report a milestone", REPORT_ROLES)
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidFeature(f"milestone seq must be an integer, got {seq!r}")
    done = _date(done_date, "done_date")
    if done is None:
        raise InvalidFeature("done_date is required: the day the milestone was reached")
    evidence_note = _text(evidence_note, "evidence_note")
    evidence_link = _text(evidence_link, "evidence_link")
    late_reason = _text(late_reason, "late_reason")
    if not (evidence_note or evidence_link):
        raise InvalidFeature("a milestone report needs evidence: evidence_note or evidence_link")
    if progress is not None and (
        isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100
    ):
        raise InvalidFeature(f"progress must be an integer from 0 to 100, got {progress!r}")
    today = local_day(now)
    if done > today:
        raise InvalidFeature(f"done_date {done} is in the future (today is {today})")
    ensure_tables(store)
    with store.transaction():
        task = store.get_for_update(TASKS, task_no)
        _require_own(who, task)
        tp = task["properties"]
        if tp["status"] != "in_progress":
            raise Conflict(
                f"key task {task_no} is {tp['status']!r}: milestones are reported while it "
                "is 'in_progress'"
                + (" (move it to in_progress first)" if tp["status"] in OPEN else "")
            )
        try:
            m = store.get(MILESTONES, milestone_id(task_no, seq))["properties"]
        except NotFound:
            seqs = [str(r["seq"]) for r in milestones(store, task_no, CLOCK)]
            raise NotFound(
                f"key task {task_no} has no milestone {seq}; its milestones: "
                + (", ".join(seqs) or "none")
            ) from None
        if m.get("done_date"):
            raise Conflict(
                f"milestone {seq} of key task {task_no} was already reported done on "
                f"{m['done_date']}"
            )
        start = _date(tp["start_date"], "start_date")
        if start is not None and done < start:
            raise InvalidFeature(f"done_date {done} is before the task's start_date {start}")
        due = _date(m["due_date"], "due_date")
        assert due is not None
        late = done > due or today > due
        if late and not late_reason:
            raise InvalidFeature(
                f"milestone {seq} of key task {task_no} was due on {due}: a report "
                f"{'of a late completion' if done > due else 'after the due date'} needs "
                "a reason in 'late_reason'"
            )
        store.update(
            MILESTONES,
            milestone_id(task_no, seq),
            {
                "done_date": done.isoformat(),
                "evidence_note": evidence_note,
                "evidence_link": evidence_link,
                "late_reason": late_reason if late else None,
                "reported_by": who.name,
                "reported_at": now,
            },
        )
        rows = milestones(store, task_no, CLOCK)
        if progress is None:
            share = sum(1 for r in rows if r.get("done_date")) / max(len(rows), 1)
            progress = max(int(tp.get("progress") or 0), int(round(100 * share)))
        store.update(TASKS, task_no, {"progress": progress, "updated_at": now})
        record(
            store,
            task_no,
            who,
            at=now,
            action="milestone",
            from_status=tp["status"],
            seq=seq,
            note=f"done {done}" + (f" ({done - due} late: {late_reason})" if done > due else ""),
        )
    return store.get(MILESTONES, milestone_id(task_no, seq))["properties"]


def _open_milestone(
    store: Store, task_no: str, seq: int, what: str, if_match: str | None
) -> tuple[dict, dict]:
    """The task (its row locked) and milestone ``seq`` (``If-Match`` checked against it) of
    an open task, not yet reported done: 409 otherwise, 404 naming the task's milestones."""
    from layers.lifecycle import require_match

    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidFeature(f"milestone seq must be an integer, got {seq!r}")
    mid = milestone_id(task_no, seq)
    try:
        task = store.get_for_update(TASKS, task_no)
    except NotFound:
        if if_match is not None:
            require_match(None, if_match, mid)
        raise NotFound(f"no key task {task_no!r}: no milestone {mid!r}") from None
    try:
        m = store.get_for_update(MILESTONES, mid)
    except NotFound:
        if if_match is not None:
            require_match(None, if_match, mid)
        seqs = [str(r["seq"]) for r in milestones(store, task_no, CLOCK)]
        raise NotFound(
            f"key task {task_no} has no milestone {seq}; its milestones: "
            + (", ".join(seqs) or "none")
        ) from None
    require_match(m, if_match, mid)
    tp, mp = task["properties"], m["properties"]
    if tp["status"] not in OPEN:
        raise Conflict(
            f"key task {task_no} is {tp['status']!r}: its milestones are {what} while it is "
            + " or ".join(OPEN)
        )
    if mp.get("done_date"):
        raise Conflict(
            f"milestone {seq} of key task {task_no} was reported done on {mp['done_date']}: "
            f"a milestone done is not {what}"
        )
    return task, m


def replan_milestone(
    store: Store,
    task_no: str,
    seq: int,
    who: access.Principal,
    *,
    now: dt.datetime,
    title: str | None = None,
    due_date: dt.date | str | None = None,
    note: str | None = None,
    if_match: str | None = None,
) -> dict:
    """Re-plan milestone ``seq`` of an open task (leadership/admin): a new ``title`` and/or
    ``due_date``, recorded in the history (``replan``: who, when, old and new, the reason).

    A due date moved later, or past the task's deadline, needs a reason in ``note`` (400
    otherwise); it may not be before the task's start (400). A milestone reported done, or
    of a task no longer open, is not re-planned (409). ``if_match`` (an ``If-Match`` value)
    is checked against the locked milestone (412).

    Returns
    -------
    dict
        The milestone's stored properties.
    """
    require_role(who, "re-plan a milestone", EDIT_ROLES)
    note = _text(note, "note")
    if title is not None:
        title = _text(title, "title", required=True)
    due = _date(due_date, "due_date") if due_date is not None else None
    if title is None and due is None:
        raise InvalidFeature("nothing to re-plan: give a new due_date or title")
    ensure_tables(store)
    with store.transaction():
        task, m = _open_milestone(store, task_no, seq, "re-planned", if_match)
        tp, mp = task["properties"], m["properties"]
        old_due = _day(mp["due_date"], "due_date")
        changes: dict = {}
        said: list[str] = []
        if due is not None and due != old_due:
            start, deadline = _day(tp["start_date"], "start"), _day(tp["deadline"], "deadline")
            if due < start:
                raise InvalidFeature(f"due_date {due} is before the task's start_date {start}")
            why = " and ".join(
                w
                for w, moved in (
                    ("later than planned", due > old_due),
                    (f"past the task's deadline {deadline}", due > deadline),
                )
                if moved
            )
            if why and not (note and note.strip()):
                raise InvalidFeature(
                    f"milestone {seq} of key task {task_no} was due on {old_due}: moving it to "
                    f"{due} ({why}) needs a reason in 'note'"
                )
            # a new due date starts the milestone's clock again (see :func:`escalate`)
            changes.update(due_date=due.isoformat(), escalation="none")
            said.append(f"due {old_due} → {due}")
        if title is not None and title != mp["title"]:
            changes["title"] = title
            said.append(f"title {mp['title']!r} → {title!r}")
        if changes:
            store.update(MILESTONES, mp["milestone_id"], changes)
            store.update(TASKS, task_no, {"updated_at": now})
            record(
                store,
                task_no,
                who,
                at=now,
                action="replan" if "due_date" in changes else "retitle",
                from_status=tp["status"],
                seq=seq,
                note="; ".join(said) + (f"; reason: {note}" if note else ""),
            )
        return store.get(MILESTONES, milestone_id(task_no, seq))["properties"]


def delete_milestone(
    store: Store,
    task_no: str,
    seq: int,
    who: access.Principal,
    *,
    now: dt.datetime,
    note: str | None = None,
    if_match: str | None = None,
) -> None:
    """Delete milestone ``seq`` of an open task (leadership/admin); refused (409) once it is
    reported done or its task is no longer open. The history keeps a ``delete_milestone``
    row (who, when, the milestone's title and due date, ``note``); its sequence number is
    not given out again."""
    require_role(who, "delete a milestone", EDIT_ROLES)
    note = _text(note, "note")
    ensure_tables(store)
    with store.transaction():
        task, m = _open_milestone(store, task_no, seq, "deleted", if_match)
        mp = m["properties"]
        store.delete(MILESTONES, mp["milestone_id"])
        store.update(TASKS, task_no, {"updated_at": now})
        record(
            store,
            task_no,
            who,
            at=now,
            action="delete_milestone",
            from_status=task["properties"]["status"],
            seq=seq,
            note=f"{mp['title']} (due {mp['due_date']})" + (f"; reason: {note}" if note else ""),
        )


def delete_task(store: Store, task_no: str, who: access.Principal, *, now: dt.datetime) -> None:
    """Delete a task and its milestones (admin only); the history keeps a ``delete`` row."""
    require_role(who, "delete a key task", DELETE_ROLES)
    ensure_tables(store)
    with store.transaction():
        task = store.get_for_update(TASKS, task_no)
        for m in milestones(store, task_no, CLOCK):
            store.delete(MILESTONES, m["milestone_id"])
        store.delete(TASKS, task_no)
        record(
            store, task_no, who, at=now, action="delete", from_status=task["properties"]["status"]
        )


# --- escalation -------------------------------------------------------------------------------


def due_levels(due: dt.date, today: dt.date) -> tuple[str, ...]:
    """The escalation levels a still-open item due on ``due`` has reached on ``today``.

    Examples
    --------
    >>> d = dt.date(2026, 3, 10)
    >>> due_levels(d, d), due_levels(d, dt.date(2026, 3, 11))
    ((), ('warning',))
    >>> due_levels(d, dt.date(2026, 3, 18))
    ('warning', 'accountability')
    """
    if today <= due:
        return ()
    if today <= due + dt.timedelta(days=GRACE_DAYS):
        return ("warning",)
    return LEVELS


def escalate(store: Store, now: dt.datetime) -> list[dict]:
    """Run the supervision clock at ``now``: warnings and accountability entries, each once.

    An open milestone (not done) of an open task, or an open task itself (its deadline,
    ``milestone_seq`` 0), past due on Tianya's calendar day of ``now`` gets a ``warning``
    history row; more than :data:`GRACE_DAYS` days past due, an ``accountability`` row
    (after the warning, in the same run if the clock skipped ahead). The milestone's and
    the task's ``escalation`` fields are raised to match. Idempotent: an entry already
    recorded is never recorded again (checked under the task's row lock) — for the item's
    current due date: a milestone re-planned to a new due date (:func:`replan_milestone`)
    is warned, then held accountable, again once it passes that date.

    Returns
    -------
    list of dict
        The entries made by this run: ``task_no``, ``seq`` (0: the task), ``level``, ``due``.
    """
    if not store.has_layer(TASKS):
        return []
    ensure_tables(store)
    today = local_day(now)
    q = Query(skip_geometry=True, limit=10_000, properties=["task_no", "status", "deadline"])
    candidates: dict[str, None] = {}
    for f in store.query(TASKS, q, count=False).features:
        p = f["properties"]
        if p["status"] in OPEN:
            candidates[p["task_no"]] = None
    made: list[dict] = []
    for task_no in candidates:
        made += _escalate_task(store, task_no, now, today)
    return made


_RANK = {"none": 0, "warning": 1, "accountability": 2}


def _escalate_task(store: Store, task_no: str, now: dt.datetime, today: dt.date) -> list[dict]:
    made: list[dict] = []
    with store.transaction():
        task = store.get_for_update(TASKS, task_no)
        tp = task["properties"]
        if tp["status"] not in OPEN:
            return []
        items: list[tuple[int, dt.date | None, dict | None]] = [
            (0, _date(tp["deadline"], "deadline"), None)
        ]
        for row in milestones(store, task_no, CLOCK):
            if not row.get("done_date"):
                items.append((int(row["seq"]), _date(row["due_date"], "due_date"), row))
        todo = [(s, d, m, due_levels(d, today)) for s, d, m in items if d is not None]
        if not any(levels for *_, levels in todo):
            return []
        # the entries made since the item's due date last changed (a re-plan starts the
        # milestone's clock again: warned, then held accountable, once per due date)
        done: set[tuple[str, int]] = set()
        for r in _history(store, task_no):
            n = int(r.get("milestone_seq") or 0)
            if r["action"] in LEVELS:
                done.add((r["action"], n))
            elif r["action"] == "replan":
                done = {(a, k) for a, k in done if k != n}
        top = tp.get("escalation") or "none"
        for seq, due, m, levels in todo:
            for level in levels:
                if (level, seq) in done:
                    continue
                what = "the task's deadline" if m is None else f"milestone {seq} ({m['title']})"
                record(
                    store,
                    task_no,
                    CLOCK,
                    at=now,
                    action=level,
                    from_status=tp["status"],
                    seq=seq,
                    note=f"{what} was due on {due}; {(today - due).days} days overdue, "
                    f"lead department {tp['lead_department']}",
                )
                made.append({"task_no": task_no, "seq": seq, "level": level, "due": due})
                if m is not None and _RANK[level] > _RANK[m.get("escalation") or "none"]:
                    store.update(MILESTONES, m["milestone_id"], {"escalation": level})
                    m = dict(m, escalation=level)
                if _RANK[level] > _RANK[top]:
                    top = level
        if top != (tp.get("escalation") or "none"):
            store.update(TASKS, task_no, {"escalation": top, "updated_at": now})
    return made
