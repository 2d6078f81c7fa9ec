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
