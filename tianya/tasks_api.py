"""OGC API - Features - Part 4 writes of key tasks and their milestones (issue 15 item 5).

==========================================================  ================================
``POST   /collections/key_tasks/items``                       issue a task (a GeoJSON Feature;
                                                              a ``milestones`` member lists
                                                              ``{title, due_date}``)
``PUT    /collections/key_tasks/items/{taskNo}``              replace a task's fields
``PATCH  /collections/key_tasks/items/{taskNo}``              change some; ``status`` moves
``DELETE /collections/key_tasks/items/{taskNo}``              delete it and its milestones
``POST   /collections/key_task_milestones/items``             add a milestone to a task
``PATCH  /collections/key_task_milestones/items/{id}``        report it done (evidence, a
                                                              reason when late), or re-plan
                                                              it (``due_date``, ``title``)
``PUT    /collections/key_task_milestones/items/{id}``        re-plan it (title, due date)
``DELETE /collections/key_task_milestones/items/{id}``        delete it (not once done)
``OPTIONS`` of those resources                                ``Allow`` for this caller
``GET    /key-tasks/{taskNo}/history``                        a task's audit trail
``GET    /key-tasks/transitions``                             the task state machine
==========================================================  ================================

Milestones are the items of their own collection, ``key_task_milestones`` (id ``{taskNo}-NN``),
not a sub-resource of a task: Part 4 defines its writes on ``/collections/{collectionId}/items``
and ``/items/{featureId}`` only, and the clients that speak it (OWSLib's
``collection_item_create``/``_update``/``_delete``, QGIS' OAPIF provider) can address nothing
else; as a collection they are also read, filtered (``?task_no=``) and paged like any other.
A milestone's PATCH is the lead department's report (``done_date``, ``evidence_note`` or
``evidence_link``, ``late_reason``, ``progress``), or leadership's re-plan (``due_date``,
``title`` and, when the date moves later or past the task's deadline, the reason in ``note``);
never both in one request. A PUT re-plans it too (a Feature with its ``title`` and
``due_date``; the server's fields echoed unchanged or left out); DELETE (leadership, admin)
removes it while it is not reported done. Each is audited (who, when, why).

Every rule (roles, the lead department, stages, dates, evidence, reasons) is
:mod:`layers.key_tasks`'; this module maps HTTP onto it: bodies, ``If-Match`` (checked against
the locked row in the write's transaction, 412), ``ETag``, ``Allow``, the caller's visible
fields.
"""

from __future__ import annotations

import re

from layers import access, key_tasks, lifecycle
from layers.cases import now_utc
from layers.catalogue import get_layer
from layers.errors import InvalidFeature, InvalidParameter, NotFound, choices
from layers.store import Store
from tianya import request
from tianya.api import transitions_document
from tianya.web import allow, json_body, query, respond

TASKS = get_layer("key_tasks")
MILESTONES = get_layer("key_task_milestones")
LAYER_IDS = (TASKS.id, MILESTONES.id)
_ITEM = re.compile(r"^/collections/(key_tasks|key_task_milestones)/items/([^/]+)/?$")
_HISTORY = re.compile(r"^/key-tasks/([^/]+)/history/?$")
_MILESTONE_ID = re.compile(r"^(.+)-(\d{2,})$")
#: Members of a milestone's PATCH (a report: :func:`layers.key_tasks.report_milestone`).
REPORT_MEMBERS = ("done_date", "evidence_note", "evidence_link", "late_reason", "progress")
#: Members of a milestone's re-plan (:func:`layers.key_tasks.replan_milestone`).
REPLAN_MEMBERS = ("due_date", "title", "note")
#: Members of a task's Feature besides ``properties`` and ``geometry``.
_FEATURE_MEMBERS = {"type", "id", "geometry", "properties", "bbox", "links", "note"}
#: The POSTs (a task issued, a milestone added) are pygeoapi's, through its provider:
#: :func:`tianya.plugins.provider.create_key_work`.
#: Task fields the server sets (stage, progress, escalation, stamps): echoed unchanged in a
#: PUT or left out.
MANAGED = tuple(
    f.name for f in TASKS.fields if f.name not in (*key_tasks.TASK_FIELDS, "status", "progress")
)
CREATE_TYPES = ("application/geo+json",)
QUERY_TYPES = ("application/query-cql-json", "application/json")
PATCH_TYPES = "application/json, application/geo+json, application/merge-patch+json"


def store(environ=None) -> Store:
    """The server's store (:func:`tianya.api.store`)."""
    from tianya.api import store as server_store

    return server_store(environ)


def handles(path: str) -> bool:
    """Whether :func:`app` serves ``path`` (an item's writes, the ``/key-tasks/`` routes)."""
    return path.startswith("/key-tasks/") or bool(_ITEM.match(path))


def visible(layer_id: str, feature: dict) -> dict:
    """``feature`` without the fields the current caller may not see."""
    fields = set(access.visible_fields(get_layer(layer_id), request.principal()))
    return dict(feature, properties={k: v for k, v in feature["properties"].items() if k in fields})


def task_of(milestone: str) -> str:
    """The task number of milestone id ``milestone`` (400 when it is not ``{taskNo}-NN``).

    Examples
    --------
    >>> task_of("KT2026-007-03")
    'KT2026-007'
    """
    m = _MILESTONE_ID.match(milestone)
    if m is None:
        raise NotFound(f"no milestone {milestone!r}: a milestone id is the task number, '-', NN")
    return m.group(1)


def current_etag(environ, layer_id: str, key: str) -> str | None:
    """The strong ETag of item ``key`` as stored now (:func:`layers.lifecycle.etag`, as for
    cases); ``None`` when there is no such item."""
    try:
        return lifecycle.etag(store(environ).get(get_layer(layer_id), key))
    except NotFound:
        return None


# --- OPTIONS ----------------------------------------------------------------------------------


def allowed_methods(environ, layer_id: str, item: str | None) -> tuple[list[str], list]:
    """The methods the current caller may use on a key-task items resource, and the headers
    describing their bodies (as :func:`tianya.api.allowed_methods` for cases).

    POST to items: a CQL2 JSON query for anyone, an issue (tasks) or a new milestone for
    leadership and admin. A task: ``PUT`` for leadership and admin, ``PATCH`` for them and
    its lead department, ``DELETE`` for admin. A milestone: ``PATCH`` (a report) for its
    task's lead department and admin.
    """
    who = request.principal()
    methods, headers = ["GET", "HEAD"], []
    if item is None:
        methods.append("POST")
        accept = list(QUERY_TYPES)
        if who.role in key_tasks.ISSUE_ROLES:
            accept = [*CREATE_TYPES, *accept]
        headers.append(("Accept-Post", ", ".join(accept)))
    else:
        s = store(environ)
        if layer_id == TASKS.id:
            task = s.get(TASKS, item)  # 404 for no such task
            own = task["properties"].get("lead_department") == who.department
            if who.role in key_tasks.EDIT_ROLES:
                methods.append("PUT")
            if who.role in key_tasks.EDIT_ROLES or (who.role == "department" and own):
                methods.append("PATCH")
            if who.role in key_tasks.DELETE_ROLES:
                methods.append("DELETE")
        else:
            s.get(MILESTONES, item)  # 404 for no such milestone
            task = s.get(TASKS, task_of(item))
            own = task["properties"].get("lead_department") == who.department
            if who.role in key_tasks.EDIT_ROLES:
                methods.append("PUT")
            if who.role in key_tasks.EDIT_ROLES or (who.role in key_tasks.REPORT_ROLES and own):
                methods.append("PATCH")
            if who.role in key_tasks.EDIT_ROLES:
                methods.append("DELETE")
        if "PATCH" in methods:
            headers.append(("Accept-Patch", PATCH_TYPES))
    methods.append("OPTIONS")
    return methods, headers


def options(environ, start_response, layer_id: str, item: str | None):
    """``OPTIONS`` of a key-task items resource: 200 with ``Allow``."""
    methods, headers = allowed_methods(environ, layer_id, item)
    return respond(
        environ, start_response, b"", 200, headers=[("Allow", ", ".join(methods)), *headers]
    )


# --- PUT, PATCH, DELETE -----------------------------------------------------------------------


#: The roles each write of a task needs: checked before its preconditions (RFC 9110 §13.2.1).
_TASK_ROLES = {
    "PUT": ("replace a key task", key_tasks.EDIT_ROLES),
    "PATCH": ("change a key task", (*key_tasks.EDIT_ROLES, "department")),
    "DELETE": ("delete a key task", key_tasks.DELETE_ROLES),
}


def _body_type(environ, method: str) -> None:
    """A PUT body must say it is JSON (Part 4, /req/create-replace-delete/put-content-type)."""
    kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if kind in ("application/geo+json", "application/json", "application/merge-patch+json"):
        return
    raise InvalidParameter(
        f"{method} of a key task needs a Content-Type: application/geo+json (a GeoJSON "
        "Feature) or application/json" + (f"; got {kind!r}" if kind else "")
    )


def _patch_parts(doc: dict) -> tuple[dict, dict | None, str | None]:
    """Properties, GeoJSON geometry and note of a task's PATCH body (a partial Feature or a
    bare properties object; a top-level ``note`` is the move's reason)."""
    note = doc.get("note")
    if doc.get("type") == "Feature":
        extra = sorted(set(doc) - _FEATURE_MEMBERS)
        if extra:
            raise InvalidFeature(f"unknown member {extra[0]!r} in the Feature")
        props = doc.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidFeature("properties must be a JSON object")
        geometry = doc.get("geometry")
    else:
        props, geometry = {k: v for k, v in doc.items() if k != "note"}, None
    if note is not None and not isinstance(note, str):
        raise InvalidFeature("note must be a text")
    return dict(props), geometry, note


def _replacement(stored: dict, doc: dict) -> tuple[dict, dict, str | None]:
    """The changes a PUT of ``doc`` makes to the stored task: every field of
    :data:`layers.key_tasks.TASK_FIELDS` (left out: cleared), a different ``status`` (a move),
    a different ``progress``; server-set fields only echoed unchanged."""
    if doc.get("type") != "Feature":
        raise InvalidFeature(f"body must be a GeoJSON Feature, got type {doc.get('type')!r}")
    props, geometry, note = _patch_parts(doc)
    if geometry is None:
        raise InvalidFeature("geometry is required in a PUT: the task's point, line or area")
    old = stored["properties"]
    for name in MANAGED:
        if name in props:
            if name != "task_no" and str(props[name]) != str(old.get(name)):
                raise InvalidFeature(
                    f"property {name!r} is set by the server; send it unchanged or leave it out"
                )
            props.pop(name)
    status = props.pop("status", None)
    full = {n: props.pop(n, None) for n in key_tasks.TASK_FIELDS}
    if "progress" in props and props["progress"] == old.get("progress"):
        props.pop("progress")  # echoed: a change of it is the library's to allow or refuse
    full.update(props)  # unknown names: refused by the library, by name
    if status is not None and status != old.get("status"):
        full["status"] = status
    return full, geometry, note


def _locked(s: Store, layer, key: str, tags: str | None) -> dict:
    """Item ``key`` of ``layer``, its row locked for the caller's transaction, once ``If-Match``
    (``tags``) holds against it (:func:`layers.lifecycle.require_match`: 412 otherwise, also
    for no such item)."""
    try:
        row = s.get_for_update(layer, key)
    except NotFound:
        if tags is not None:
            lifecycle.require_match(None, tags, key)
        raise
    lifecycle.require_match(row, tags, key)
    return row


def _write_task(environ, s: Store, method: str, task_no: str, who, tags: str | None) -> dict:
    now = now_utc()
    if method == "DELETE":
        with s.transaction():
            _locked(s, TASKS, task_no, tags)
            key_tasks.delete_task(s, task_no, who, now=now)
        return {}
    if method == "PUT":
        _body_type(environ, method)
    doc = json_body(environ)
    from tianya.plugins.provider import crs84

    crs84(request.content_crs())
    with s.transaction():
        stored = _locked(s, TASKS, task_no, tags)
        if method == "PUT":
            props, geometry, note = _replacement(stored, doc)
        else:
            props, geometry, note = _patch_parts(doc)
            if not props and geometry is None:
                raise InvalidFeature("nothing to change: give properties or a geometry")
        return key_tasks.patch_task(
            s, task_no, props, who, now=now, geometry=geometry, note=note, if_match=tags
        )


def _milestone_body(environ, method: str) -> dict:
    """A milestone write's members: a (partial) Feature's properties and top-level ``note``,
    or a bare JSON object."""
    doc = json_body(environ)
    if not isinstance(doc, dict):
        raise InvalidFeature("body must be a JSON object")
    if doc.get("type") == "Feature":
        extra = sorted(set(doc) - _FEATURE_MEMBERS)
        if extra:
            raise InvalidFeature(f"unknown member {extra[0]!r} in the Feature")
        if doc.get("geometry") is not None:
            raise InvalidFeature("a milestone has no geometry")
        props = doc.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidFeature("properties must be a JSON object")
        return {**props, **({"note": doc["note"]} if "note" in doc else {})}
    if method == "PUT":
        raise InvalidFeature(f"body must be a GeoJSON Feature, got type {doc.get('type')!r}")
    return dict(doc)


#: A milestone's fields the server sets: echoed unchanged in a PUT, or left out.
_MILESTONE_MANAGED = tuple(
    f.name for f in MILESTONES.fields if f.name not in (*key_tasks.MILESTONE_FIELDS, "note")
)


def _replan(environ, s: Store, method: str, milestone: str, who, tags: str | None) -> dict:
    """A milestone's PUT, DELETE, or re-planning PATCH (leadership, admin): the role, then
    ``If-Match`` (in the library's transaction, against the locked row), then the body."""
    task_no = task_of(milestone)
    seq = int(_MILESTONE_ID.match(milestone).group(2))  # type: ignore[union-attr]
    if method == "DELETE":
        lifecycle.require_role(who, "delete a milestone", key_tasks.EDIT_ROLES)
        key_tasks.delete_milestone(s, task_no, seq, who, now=now_utc(), if_match=tags)
        return {}
    lifecycle.require_role(who, "re-plan a milestone", key_tasks.EDIT_ROLES)
    if method == "PUT":
        _body_type(environ, method)
    with s.transaction():
        _milestone_locked(s, milestone, tags)  # 404/412 before the body's 400
        return _replan_body(environ, s, method, milestone, task_no, seq, who, tags)


def _milestone_locked(s: Store, milestone: str, tags: str | None) -> dict:
    """Milestone ``milestone`` with its task's row and its own locked (the library's order),
    once ``If-Match`` holds (412; also for no such milestone when ``tags`` is given)."""
    try:
        s.get_for_update(TASKS, task_of(milestone))
    except NotFound:
        if tags is not None:
            lifecycle.require_match(None, tags, milestone)
        raise NotFound(f"no milestone {milestone!r}") from None
    return _locked(s, MILESTONES, milestone, tags)


def _replan_body(environ, s: Store, method, milestone, task_no, seq, who, tags) -> dict:
    body = _milestone_body(environ, method)
    if method == "PUT":
        stored = s.get(MILESTONES, milestone)["properties"]
        for name in _MILESTONE_MANAGED:
            if name in body:
                if str(body[name]) != str(stored.get(name)):
                    raise InvalidFeature(
                        f"property {name!r} is set by the server; send it unchanged or leave it out"
                    )
                body.pop(name)
        for name in key_tasks.MILESTONE_FIELDS:
            if body.get(name) in (None, ""):
                raise InvalidFeature(f"property {name!r} is required in a PUT of a milestone")
    mixed = sorted(set(body) & set(REPORT_MEMBERS))
    if mixed:
        raise InvalidFeature(
            f"a milestone's PATCH either reports it ({', '.join(REPORT_MEMBERS)}) or re-plans "
            f"it ({', '.join(REPLAN_MEMBERS)}), not both: got {', '.join(sorted(body))}"
        )
    extra = sorted(set(body) - set(REPLAN_MEMBERS))
    if extra:
        raise InvalidFeature(choices(extra[0], REPLAN_MEMBERS, "member of a milestone re-plan"))
    for name in ("title", "note"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidFeature(f"{name} must be a text")
    return key_tasks.replan_milestone(
        s,
        task_no,
        seq,
        who,
        now=now_utc(),
        title=body.get("title"),
        due_date=body.get("due_date"),
        note=body.get("note"),
        if_match=tags,
    )


def _report(environ, s: Store, milestone: str, who, tags: str | None) -> dict:
    """A milestone's PATCH: the report of :func:`layers.key_tasks.report_milestone`.

    The caller's role, then ``If-Match`` (against the locked row), then the body: a 401/403
    comes before a 412, and a 412 before a 400 (RFC 9110 §13.2.1).
    """
    lifecycle.require_role(who, "report a milestone", key_tasks.REPORT_ROLES)
    doc = json_body(environ)
    task_no = task_of(milestone)
    with s.transaction():
        try:
            s.get_for_update(TASKS, task_no)  # the lock the report takes, taken first
        except NotFound:
            if tags is not None:
                lifecycle.require_match(None, tags, milestone)
            raise NotFound(f"no milestone {milestone!r}") from None
        row = _locked(s, MILESTONES, milestone, tags)
        if doc.get("type") == "Feature":
            if doc.get("geometry") is not None:
                raise InvalidFeature("a milestone has no geometry")
            doc = doc.get("properties") or {}
            if not isinstance(doc, dict):
                raise InvalidFeature("properties must be a JSON object")
        extra = sorted(set(doc) - set(REPORT_MEMBERS))
        if extra:
            raise InvalidFeature(
                choices(extra[0], REPORT_MEMBERS, "member of a milestone report (its PATCH)")
            )
        key_tasks.report_milestone(
            s,
            task_no,
            int(row["properties"]["seq"]),
            who,
            now=now_utc(),
            done_date=doc.get("done_date"),  # type: ignore[arg-type]  # checked there
            evidence_note=doc.get("evidence_note"),
            evidence_link=doc.get("evidence_link"),
            late_reason=doc.get("late_reason"),
            progress=doc.get("progress"),
        )
        return s.get(MILESTONES, milestone)


def _is_replan(environ) -> bool:
    """Whether a milestone's PATCH body re-plans it (``due_date`` or ``title`` among its
    members) rather than reports it (mixing both: a 400 of :func:`_replan`, after
    ``If-Match``)."""
    doc = json_body(environ)
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = doc.get("properties") or {}
    return isinstance(doc, dict) and bool(set(doc) & {"due_date", "title"})


def app(environ, start_response):
    """Dispatch one request to the resources in the module docstring."""
    path = environ.get("PATH_INFO", "") or "/"
    who = request.principal()
    if m := _ITEM.match(path):
        layer_id, key = m.group(1), m.group(2)
        tags = environ.get("HTTP_IF_MATCH")
        s = store(environ)
        if layer_id == TASKS.id:
            method = allow(environ, "PUT", "PATCH", "DELETE")
            query(environ, ("f",))
            lifecycle.require_role(who, *_TASK_ROLES[method])
            feat = _write_task(environ, s, method, key, who, tags)
            if method == "DELETE":
                return respond(environ, start_response, b"", 200)  # as for a case
        else:
            method = allow(environ, "PUT", "PATCH", "DELETE")
            query(environ, ("f",))
            if method == "PATCH":  # a report or a re-plan: anyone who may do either, first
                roles = (*key_tasks.EDIT_ROLES, *key_tasks.REPORT_ROLES)
                lifecycle.require_role(who, "change a milestone", tuple(dict.fromkeys(roles)))
            if method == "PATCH" and not _is_replan(environ):
                feat = _report(environ, s, key, who, tags)
            else:
                props = _replan(environ, s, method, key, who, tags)
                if method == "DELETE":
                    return respond(environ, start_response, b"", 200)
                feat = s.get(MILESTONES, props["milestone_id"])
        etag = [("ETag", lifecycle.etag(feat))]
        if method == "PUT":
            return respond(environ, start_response, b"", 204, headers=etag)
        return respond(environ, start_response, visible(layer_id, feat), headers=etag)
    if m := _HISTORY.match(path):
        allow(environ, "GET", "HEAD")
        query(environ, ("f",))
        rows = key_tasks.history(store(environ), m.group(1), who)
        return respond(environ, start_response, {"task_no": m.group(1), "history": rows})
    if path.rstrip("/") == "/key-tasks/transitions":
        allow(environ, "GET", "HEAD")
        query(environ, ("f",))
        return respond(
            environ,
            start_response,
            transitions_document(key_tasks.TRANSITIONS, key_tasks.NEEDS_REASON),
        )
    raise NotFound(f"no resource at {path}")
