"""JSON resources for the case workflow, served by the shell next to pygeoapi.

=========================================  ==================================================
``PATCH /collections/incidents/items/{id}`` change properties / location; ``status`` is a
                                           transition (pygeoapi does not route PATCH)
``POST  /cases/{case_no}/transitions``     ``{"to": "handling", "note": "...",
                                           "department": ..., "satisfaction": ...}``
``GET   /cases/{case_no}/history``         the audit trail of one case (needs a role; a
                                           reporter only of the cases it reported)
``GET   /cases/transitions``               the state machine: moves and the roles allowed
``GET   /supervision``                     督办 figures; ``by``, ``datetime``, ``now``
``GET   /supervision/overdue``             open cases past their deadline (trusted roles)
=========================================  ==================================================

Plain WSGI: no framework, errors are :class:`~layers.errors.TianyaError` s that the
shell turns into JSON refusals.
"""

from __future__ import annotations

import hashlib
import re

import orjson

from layers import access, cases, lifecycle, supervision
from layers.catalogue import get_layer
from layers.errors import InvalidParameter, NotFound, choices
from layers.query import Query, parse_interval
from layers.store import Store
from tianya import request
from tianya.web import PreconditionFailed, allow, json_body, query, respond, settings_of

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
    """The strong ETag of a stored case: a hash of the whole stored feature (every field,
    whoever asks), so any change to the case changes it.

    Examples
    --------
    >>> a = {"id": "1", "properties": {"title": "x"}, "geometry": None}
    >>> item_etag(a) == item_etag(dict(a)) != item_etag(dict(a, properties={"title": "y"}))
    True
    """
    data = orjson.dumps(feature, option=orjson.OPT_SORT_KEYS, default=str)
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


def current_etag(environ, case_no: str) -> str | None:
    """The ETag of case ``case_no`` as stored now, ``None`` when there is no such case."""
    try:
        return item_etag(store(environ).get(INCIDENTS, case_no))
    except NotFound:
        return None


def check_if_match(environ) -> None:
    """Honour ``If-Match`` on a write to one case (``PUT``/``PATCH``/``DELETE``).

    RFC 9110 §13.1.1: ``*`` holds when the case exists; a list of entity tags holds when
    one of them is, by strong comparison, the case's current ETag; on a case that does not
    exist the condition fails. A failed condition is a 412 and nothing is written. The
    caller's role is checked first (a 401/403 comes before a 412, §13.2.1).
    """
    method = environ.get("REQUEST_METHOD", "")
    header = environ.get("HTTP_IF_MATCH")
    m = _PATCH.match(environ.get("PATH_INFO", ""))
    if header is None or m is None or method not in _WRITE_ROLES:
        return
    lifecycle.require_role(request.principal(), *_WRITE_ROLES[method])
    case_no = m.group(1)
    etag = current_etag(environ, case_no)
    if etag is None:
        raise PreconditionFailed(f"If-Match: there is no case {case_no!r}")
    tags = [t.strip() for t in header.split(",") if t.strip()]
    if "*" in tags or etag in tags:  # a weak tag (W/"...") never matches strongly
        return
    raise PreconditionFailed(
        f"If-Match: case {case_no!r} has changed; its current ETag is {etag} "
        "(GET it again and resend)"
    )


def handles(path: str) -> bool:
    """Whether :func:`app` serves ``path`` (for the methods it serves)."""
    return path.startswith(("/cases/", "/supervision")) or bool(_PATCH.match(path))


def app(environ, start_response):
    """Dispatch one request to the resources in the module docstring."""
    path = environ.get("PATH_INFO", "") or "/"
    who = request.principal()
    if m := _PATCH.match(path):
        allow(environ, "PATCH")
        query(environ, ("f",))
        check_if_match(environ)
        feat = cases.patch_case(
            store(environ), m.group(1), json_body(environ), who, content_crs=request.content_crs()
        )
        return respond(environ, start_response, visible(feat))
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
            {
                "transitions": [
                    {
                        "from": a,
                        "to": b,
                        "roles": list(r),
                        "reason_required": (a, b) in lifecycle.NEEDS_REASON,
                    }
                    for (a, b), r in lifecycle.TRANSITIONS.items()
                ]
            },
        )
    if path.rstrip("/") == "/supervision":
        allow(environ, "GET", "HEAD")
        return respond(environ, start_response, supervision_figures(environ))
    if path.rstrip("/") == "/supervision/overdue":
        allow(environ, "GET", "HEAD")
        return respond(environ, start_response, overdue(environ))
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
