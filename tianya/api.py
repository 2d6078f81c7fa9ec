"""JSON resources for the case workflow, served by the shell next to pygeoapi.

=========================================  ==================================================
``PATCH /collections/incidents/items/{id}`` change properties / location; ``status`` is a
                                           transition (pygeoapi does not route PATCH)
``PUT``, ``DELETE`` of the same            replace, delete a case (here, not in pygeoapi:
                                           ``If-Match`` checked in the write, new ``ETag``)
``OPTIONS`` of any items resource          the methods this caller may use (``Allow``)
``POST  /cases/{case_no}/transitions``     ``{"to": "handling", "note": "...",
                                           "department": ..., "satisfaction": ...}``
``GET   /cases/{case_no}/history``         the audit trail of one case (needs a role; a
                                           reporter only of the cases it reported)
``GET   /cases/transitions``               the state machine: moves and the roles allowed
``GET   /supervision``                     督办 figures; ``by``, ``datetime``, ``now``
``GET   /supervision/overdue``             open cases past their deadline (trusted roles)
``GET   /supervision/key-tasks``           key-task figures (重点工作督办): on-time milestone
                                           rate, overdue tasks, escalations, a ranking of
                                           departments; ``now``
=========================================  ==================================================

Plain WSGI: no framework, errors are :class:`~layers.errors.TianyaError` s that the
shell turns into JSON refusals.
"""

from __future__ import annotations

import datetime as dt
import re

import orjson

from layers import access, cases, lifecycle, supervision
from layers.catalogue import get_layer
from layers.errors import InvalidParameter, NotFound, choices
from layers.query import Query, parse_interval
from layers.store import Store
from tianya import request
from tianya.web import allow, json_body, query, respond, settings_of

INCIDENTS = get_layer("incidents")
_PATCH = re.compile(r"^/collections/incidents/items/([^/]+)/?$")
_TRANSITIONS = re.compile(r"^/cases/([^/]+)/transitions/?$")
_HISTORY = re.compile(r"^/cases/([^/]+)/history/?$")
_MOVE = ("to", "note", "department", "satisfaction")


def store(environ=None) -> Store:
    """The store the server runs on (the provider's, shared per process): the settings'
    ``data`` (``TIANYA_DATA``)."""
    from tianya.plugins.provider import store_for

    return store_for(settings_of(environ or {}).store_location())


def visible(feature: dict) -> dict:
    """``feature`` without the fields the current caller may not see."""
    fields = set(access.visible_fields(INCIDENTS, request.principal()))
    feature = dict(feature)
    feature["properties"] = {k: v for k, v in feature["properties"].items() if k in fields}
    return feature


#: The roles each conditional write needs: checked before its preconditions (RFC 9110 §13.2.1).
_WRITE_ROLES = {
    "PUT": ("replace a case", lifecycle.EDIT_ROLES),
    "PATCH": ("change a case", lifecycle.PATCH_ROLES),
    "DELETE": ("delete a case", lifecycle.DELETE_ROLES),
}


def item_etag(feature: dict) -> str:
    """The strong ETag of a stored case (:func:`layers.lifecycle.etag`)."""
    return lifecycle.etag(feature)


def current_etag(environ, case_no: str) -> str | None:
    """The ETag of case ``case_no`` as stored now, ``None`` when there is no such case."""
    try:
        return item_etag(store(environ).get(INCIDENTS, case_no))
    except NotFound:
        return None


def check_if_match(environ) -> None:
    """Honour ``If-Match`` on a write to one case (``PUT``/``PATCH``/``DELETE``) before its
    body is read: a quick refusal (412) of a stale or missing case.

    RFC 9110 §13.1.1 (:func:`layers.lifecycle.require_match`). The caller's role is checked
    first (a 401/403 comes before a 412, §13.2.1). The write checks the condition again
    against the row it locks (:func:`layers.lifecycle.locked_case`), so of two writers
    holding the same ETag only the first writes.
    """
    method = environ.get("REQUEST_METHOD", "")
    header = environ.get("HTTP_IF_MATCH")
    m = _PATCH.match(environ.get("PATH_INFO", ""))
    if header is None or m is None or method not in _WRITE_ROLES:
        return
    lifecycle.require_role(request.principal(), *_WRITE_ROLES[method])
    case_no = m.group(1)
    try:
        case = store(environ).get(INCIDENTS, case_no)
    except NotFound:
        case = None
    lifecycle.require_match(case, header, case_no)


#: Media types of a request body that creates a case, and of a CQL2 JSON query (POST items).
CREATE_TYPES = ("application/geo+json",)
QUERY_TYPES = ("application/query-cql-json", "application/json")


def allowed_methods(environ, layer_id: str, item: str | None) -> tuple[list[str], list]:
    """The methods the current caller may use on an items resource (``item`` ``None``: the
    collection's items), and the headers describing their bodies (``Accept-Post``,
    ``Accept-Patch``).

    OGC API - Features Part 4, /req/create-replace-delete/options-response: the ``Allow``
    header lists the methods allowed "at the time and within the context of the request": a
    POST to items is a CQL2 JSON query for anyone who may read the layer and, on
    ``incidents``, an intake for the roles that create cases; ``PUT``, ``PATCH`` and
    ``DELETE`` of a case need the roles of :data:`_WRITE_ROLES` (a department patches only
    the cases dispatched to it).
    """
    who = request.principal()
    methods, headers = ["GET", "HEAD"], []
    if item is None:
        methods.append("POST")
        accept = list(QUERY_TYPES)
        if layer_id == INCIDENTS.id and who.role in lifecycle.CREATE_ROLES:
            accept = [*CREATE_TYPES, *accept]
        headers.append(("Accept-Post", ", ".join(accept)))
    elif layer_id == INCIDENTS.id:
        case = store(environ).get(INCIDENTS, item)  # 404 for no such case
        for method, (_, roles) in _WRITE_ROLES.items():
            own = who.role != "department" or (
                case["properties"].get("department") == who.department
            )
            if who.role in roles and own:
                methods.append(method)
        if "PATCH" in methods:
            headers.append(("Accept-Patch", "application/json, application/geo+json"))
    methods.append("OPTIONS")
    return methods, headers


def options(environ, start_response, layer_id: str, item: str | None):
    """``OPTIONS`` of an items resource: 200 with ``Allow`` (:func:`allowed_methods`)."""
    methods, headers = allowed_methods(environ, layer_id, item)
    return respond(
        environ, start_response, b"", 200, headers=[("Allow", ", ".join(methods)), *headers]
    )


def _body_type(environ, method: str) -> None:
    """A PUT body must say it is JSON (OGC API Features Part 4,
    /req/create-replace-delete/put-content-type: no ``Content-Type`` is a 400)."""
    kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if kind in ("application/geo+json", "application/json", "application/merge-patch+json"):
        return
    raise InvalidParameter(
        f"{method} of a case needs a Content-Type: application/geo+json (a GeoJSON Feature) "
        "or application/json" + (f"; got {kind!r}" if kind else "")
    )


def handles(path: str) -> bool:
    """Whether :func:`app` serves ``path`` (for the methods it serves)."""
    return path.startswith(("/cases/", "/supervision")) or bool(_PATCH.match(path))


def app(environ, start_response):
    """Dispatch one request to the resources in the module docstring."""
    path = environ.get("PATH_INFO", "") or "/"
    who = request.principal()
    if m := _PATCH.match(path):
        method = allow(environ, "PUT", "PATCH", "DELETE")
        query(environ, ("f",))
        case_no, tags = m.group(1), environ.get("HTTP_IF_MATCH")
        check_if_match(environ)
        s = store(environ)
        if method == "DELETE":
            lifecycle.delete_case(s, case_no, who, if_match=tags)
            return respond(environ, start_response, b"", 200)  # as pygeoapi answered
        lifecycle.require_role(who, *_WRITE_ROLES[method])
        if method == "PUT":  # PATCH kept as it was: a body without a type is read as JSON
            _body_type(environ, method)
        write = cases.replace_case if method == "PUT" else cases.patch_case
        feat = write(
            s, case_no, json_body(environ), who, content_crs=request.content_crs(), if_match=tags
        )
        etag = [("ETag", item_etag(feat))]
        if method == "PUT":
            return respond(environ, start_response, b"", 204, headers=etag)
        return respond(environ, start_response, visible(feat), headers=etag)
    if m := _TRANSITIONS.match(path):
        allow(environ, "POST")
        query(environ, ("f",))
        doc = json_body(environ)
        extra = sorted(set(doc) - set(_MOVE))
        if extra:
            raise InvalidParameter(choices(extra[0], _MOVE, "transition member"))
        if not isinstance(doc.get("to"), str):
            raise InvalidParameter("'to' is required: the stage to move the case to")
        feat = lifecycle.transition(
            store(environ),
            m.group(1),
            doc["to"],
            who,
            note=doc.get("note"),
            department=doc.get("department"),
            satisfaction=doc.get("satisfaction"),
        )
        return respond(environ, start_response, visible(feat))
    if m := _HISTORY.match(path):
        allow(environ, "GET", "HEAD")
        query(environ, ("f",))
        lifecycle.require_role(
            who, "read a case history", ("reporter", "dispatcher", "department", "admin")
        )
        s = store(environ)
        rows = lifecycle.history(s, m.group(1))
        if not rows:
            s.get(INCIDENTS, m.group(1))  # 404 for an unknown case
        lifecycle.require_reporter_of(who, m.group(1), rows)  # own cases only
        return respond(environ, start_response, {"case_no": m.group(1), "history": rows})
    if path.rstrip("/") == "/cases/transitions":
        allow(environ, "GET", "HEAD")
        query(environ, ("f",))
        return respond(
            environ,
            start_response,
            transitions_document(lifecycle.TRANSITIONS, lifecycle.NEEDS_REASON),
        )
    if path.rstrip("/") == "/supervision":
        allow(environ, "GET", "HEAD")
        return respond(environ, start_response, supervision_figures(environ))
    if path.rstrip("/") == "/supervision/overdue":
        allow(environ, "GET", "HEAD")
        return respond(environ, start_response, overdue(environ))
    if path.rstrip("/") == "/supervision/key-tasks":
        allow(environ, "GET", "HEAD")
        return respond(environ, start_response, key_task_supervision(environ))
    raise NotFound(f"no resource at {path}")


def _frame(environ, params):
    q = Query(interval=parse_interval(params["datetime"]) if params.get("datetime") else None)
    return store(environ).read_frame(INCIDENTS, q)


def _now(params):
    if not params.get("now"):
        return None
    lo, hi = parse_interval(params["now"])
    if lo != hi:
        raise InvalidParameter("now must be an instant, not an interval")
    return lo


def transitions_document(transitions: dict, needs_reason) -> dict:
    """``GET …/transitions``: a state machine's moves (``{(from, to): roles}``), the roles
    allowed each and whether it needs a reason (cases and key tasks alike)."""
    return {
        "transitions": [
            {"from": a, "to": b, "roles": list(r), "reason_required": (a, b) in needs_reason}
            for (a, b), r in transitions.items()
        ]
    }


def supervision_figures(environ) -> dict:
    """``GET /supervision``: figures overall or ``by`` a grouping, for reported ``datetime``."""
    p = query(environ, ("by", "datetime", "now", "f"))
    by = p.get("by") or None
    now = _now(p)
    table = supervision.figures(_frame(environ, p), by=by, now=now)
    return {
        "by": by or "all",
        "datetime": p.get("datetime"),
        "now": now.isoformat() if now else None,
        "definitions": supervision.__doc__.split("Examples")[0].strip(),
        "figures": supervision.to_records(table),
    }


def key_task_supervision(environ) -> dict:
    """``GET /supervision/key-tasks``: the key-task figures of
    :func:`layers.key_task_figures.summary` as of ``now`` (default the time of the request).

    Public, as the weekly published results are: figures, and of the overdue tasks their
    public fields only. Tasks are as they were at ``now`` (the audit trail); the escalation
    entries are those recorded in ``[since, now)`` (``since`` default: every one before).
    """
    from layers import key_task_figures

    p = query(environ, ("now", "since", "f"))
    now = _now(p) or dt.datetime.now(dt.UTC)
    since = None
    if p.get("since"):
        try:
            since, hi = parse_interval(p["since"])
        except InvalidParameter:
            since, hi = None, None
        if since is None or since != hi:
            raise InvalidParameter(
                f"since must be an RFC 3339 instant (e.g. 2026-11-16T00:00:00+08:00), "
                f"got {p['since']!r}"
            )
        if since >= now:
            raise InvalidParameter(f"since ({since.isoformat()}) must be before now ({now})")
    s = store(environ)
    tasks, milestones = key_task_figures.tables(s)
    out = key_task_figures.summary(
        tasks, milestones, now=now, history=key_task_figures.audit(s), since=since
    )
    out["definitions"] = key_task_figures.__doc__.split("Examples")[0].strip()
    return out


def overdue(environ) -> dict:
    """``GET /supervision/overdue``: open cases past their deadline (trusted roles)."""
    p = query(environ, ("datetime", "now", "department", "f"))
    who = request.principal()
    lifecycle.require_role(who, "list overdue cases", access.TRUSTED)
    frame = _frame(environ, p)
    if p.get("department"):
        frame = frame[frame["department"] == p["department"]]
    if who.role == "department":
        frame = frame[frame["department"] == who.department]
    rows = supervision.open_cases(frame, now=_now(p), overdue_only=True)
    cols = [
        "case_no",
        "title",
        "category",
        "status",
        "department",
        "community_code",
        "grid_code",
        "worker_id",
        "territorial",
        "reported_at",
        "dispatched_at",
        "deadline",
    ]
    recs = orjson.loads(rows[cols].to_json(orient="records", date_format="iso"))
    return {"count": len(recs), "cases": recs}
