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

import os
import re
from urllib.parse import parse_qsl

import orjson

from layers import access, cases, lifecycle, supervision
from layers.catalogue import get_layer
from layers.errors import InvalidParameter, NotFound, TianyaError, choices
from layers.query import Query, parse_interval
from layers.store import DEFAULT_GPKG, STORE_ENV, Store
from tianya import request
from tianya.edge import body

INCIDENTS = get_layer("incidents")
_PATCH = re.compile(r"^/collections/incidents/items/([^/]+)/?$")
_TRANSITIONS = re.compile(r"^/cases/([^/]+)/transitions/?$")
_HISTORY = re.compile(r"^/cases/([^/]+)/history/?$")


class MethodNotAllowed(TianyaError, ValueError):
    """The resource exists but not with this method (HTTP 405)."""

    status = 405
    ogc_code = "InvalidParameterValue"


def store() -> Store:
    """The store the server runs on (the provider's, shared per process)."""
    from tianya.plugins.provider import store_for

    data = os.environ.get(STORE_ENV) or DEFAULT_GPKG
    return store_for(data if "://" in data else os.path.abspath(data))


def read_body(environ) -> dict:
    """The request's JSON object (the shell has read the body, capped at
    :data:`layers.cases.MAX_BODY`)."""
    raw = body(environ)
    if not raw:
        raise InvalidParameter("request body is empty: send a JSON object")
    return cases.parse_body(raw)


def respond(start_response, payload, status: str = "200 OK", headers=()):
    body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    start_response(status, [("Content-Type", "application/json; charset=UTF-8"),
                            ("Content-Length", str(len(body))), *headers])
    return [body]


def visible(feature: dict) -> dict:
    """``feature`` without the fields the current caller may not see."""
    fields = set(access.visible_fields(INCIDENTS, request.principal()))
    feature = dict(feature)
    feature["properties"] = {k: v for k, v in feature["properties"].items() if k in fields}
    return feature


def _method(environ, *allowed):
    m = environ.get("REQUEST_METHOD", "GET")
    if m not in allowed:
        raise MethodNotAllowed(f"method {m} is not allowed here; allowed: {', '.join(allowed)}")
    return m


def _params(environ, allowed) -> dict:
    pairs = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    out = {}
    for k, v in pairs:
        if k not in allowed:
            raise InvalidParameter(choices(k, allowed, "query parameter"))
        if k in out:
            raise InvalidParameter(f"query parameter {k!r} is given more than once")
        out[k] = v
    return out


def handles(path: str) -> bool:
    """Whether :func:`app` serves ``path`` (for the methods it serves)."""
    return path.startswith(("/cases/", "/supervision")) or bool(_PATCH.match(path))


def app(environ, start_response):
    """Dispatch one request to the resources in the module docstring."""
    path = environ.get("PATH_INFO", "") or "/"
    if m := _PATCH.match(path):
        _method(environ, "PATCH")
        feat = cases.patch_case(store(), m.group(1), read_body(environ), request.principal(),
                                content_crs=request.content_crs())
        return respond(start_response, visible(feat))
    if m := _TRANSITIONS.match(path):
        _method(environ, "POST")
        doc = read_body(environ)
        extra = sorted(set(doc) - {"to", "note", "department", "satisfaction"})
        if extra:
            raise InvalidParameter(choices(extra[0], ["to", "note", "department",
                                                      "satisfaction"], "transition member"))
        if not isinstance(doc.get("to"), str):
            raise InvalidParameter("'to' is required: the stage to move the case to")
        feat = lifecycle.transition(store(), m.group(1), doc["to"], request.principal(),
                                    note=doc.get("note"),
                                    department=doc.get("department"),
                                    satisfaction=doc.get("satisfaction"))
        return respond(start_response, visible(feat))
    if m := _HISTORY.match(path):
        _method(environ, "GET", "HEAD")
        _params(environ, ("f",))
        lifecycle.require_role(request.principal(), "read a case history",
                               ("reporter", "dispatcher", "department", "admin"))
        rows = lifecycle.history(store(), m.group(1))
        if not rows:
            store().get(INCIDENTS, m.group(1))  # 404 for an unknown case
        lifecycle.require_reporter_of(request.principal(), m.group(1), rows)  # own cases only
        return respond(start_response, {"case_no": m.group(1), "history": rows})
    if path.rstrip("/") == "/cases/transitions":
        _method(environ, "GET", "HEAD")
        return respond(start_response, {"transitions": [
            {"from": a, "to": b, "roles": list(r), "reason_required": (a, b) in
             lifecycle.NEEDS_REASON} for (a, b), r in lifecycle.TRANSITIONS.items()]})
    if path.rstrip("/") == "/supervision":
        _method(environ, "GET", "HEAD")
        return respond(start_response, supervision_figures(environ))
    if path.rstrip("/") == "/supervision/overdue":
        _method(environ, "GET", "HEAD")
        return respond(start_response, overdue(environ))
    raise NotFound(f"no resource at {path}")


def _frame(params):
    q = Query(interval=parse_interval(params["datetime"]) if params.get("datetime") else None)
    return store().read_frame(INCIDENTS, q)


def _now(params):
    if not params.get("now"):
        return None
    lo, hi = parse_interval(params["now"])
    if lo != hi:
        raise InvalidParameter("now must be an instant, not an interval")
    return lo


def supervision_figures(environ) -> dict:
    """``GET /supervision``: figures overall or ``by`` a grouping, for reported ``datetime``."""
    p = _params(environ, ("by", "datetime", "now", "f"))
    by = p.get("by") or None
    now = _now(p)
    table = supervision.figures(_frame(p), by=by, now=now)
    return {"by": by or "all", "datetime": p.get("datetime"),
            "now": now.isoformat() if now else None,
            "definitions": supervision.__doc__.split("Examples")[0].strip(),
            "figures": supervision.to_records(table)}


def overdue(environ) -> dict:
    """``GET /supervision/overdue``: open cases past their deadline (trusted roles)."""
    p = _params(environ, ("datetime", "now", "department", "f"))
    who = request.principal()
    lifecycle.require_role(who, "list overdue cases", access.TRUSTED)
    frame = _frame(p)
    if p.get("department"):
        frame = frame[frame["department"] == p["department"]]
    if who.role == "department":
        frame = frame[frame["department"] == who.department]
    rows = supervision.open_cases(frame, now=_now(p), overdue_only=True)
    cols = ["case_no", "title", "category", "status", "department", "community_code",
            "grid_code", "worker_id", "territorial", "reported_at", "dispatched_at", "deadline"]
    recs = orjson.loads(rows[cols].to_json(orient="records", date_format="iso"))
    return {"count": len(recs), "cases": recs}
