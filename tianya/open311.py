"""Open311 GeoReport v2 facade over the same cases (``/open311/v2/…``).

========================================  ============================================
``GET  /open311/v2/services.json``        one service per case category
``GET  /open311/v2/services/{code}.json`` the service definition (no extra attributes)
``POST /open311/v2/requests.json``        new case (form-encoded or JSON); needs
                                          ``api_key`` with a reporter/dispatcher role
``GET  /open311/v2/requests.json``        cases: ``service_request_id``, ``service_code``,
                                          ``start_date``, ``end_date``, ``status``
``GET  /open311/v2/requests/{id}.json``   one case
========================================  ============================================

Mapping: ``service_code`` = category; ``status`` is ``closed`` for completed cases
(核查结案/综合评价) and ``open`` otherwise, with the stage in ``status_notes``;
``agency_responsible`` = the department; ``expected_datetime`` = the deadline.
Requests come in on the ``wechat`` channel (the citizen app) unless a
``channel`` is given. Contact details are stored but never returned. Only JSON
is served (``.xml`` is refused). Errors use GeoReport's ``[{code, description}]``.
"""

from __future__ import annotations

import datetime as dt
import re

import orjson

from layers import access, cases
from layers.catalogue import CATEGORIES, CATEGORY_CLASS, DEPARTMENTS, MAJOR_CLASSES, STAGES
from layers.errors import InvalidParameter, NotFound, TianyaError, choices
from layers.query import Query, parse_filter, parse_interval
from tianya import request
from tianya.api import INCIDENTS, store
from tianya.web import (
    allow,
    check_params,
    guarded,
    json_body,
    query_pairs,
    read_body,
    respond,
    settings_of,
)

PREFIX = "/open311/v2"
JURISDICTIONS = ("tianya", "460204")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_LABEL = {c.code: c for c in CATEGORIES}
_DEPT = {c.code: c for c in DEPARTMENTS}
_STAGE = {c.code: c for c in STAGES}
_CLASS = {c.code: c for c in MAJOR_CLASSES}
POST_PARAMS = (
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "description",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "media_url",
    "channel",
    "title",
)
GET_PARAMS = (
    "jurisdiction_id",
    "service_request_id",
    "service_code",
    "start_date",
    "end_date",
    "status",
    "lang",
    "limit",
)


def _lang(params) -> str:
    return "zh" if str(params.get("lang", "en")).lower().startswith("zh") else "en"


def services(params) -> list[dict]:
    lang = _lang(params)
    out = []
    for c in CATEGORIES:
        major = _CLASS[CATEGORY_CLASS[c.code][1]]
        out.append(
            {
                "service_code": c.code,
                "service_name": c.zh if lang == "zh" else c.en,
                "description": f"{c.zh} / {c.en}",
                "metadata": False,
                "type": "realtime",
                "keywords": f"{c.zh},{c.en}",
                "group": major.zh if lang == "zh" else major.en,
            }
        )
    return out


def _params(environ, allowed) -> dict:
    """The query's and a POST body's (form-encoded or JSON) parameters, checked together."""
    pairs = query_pairs(environ.get("QUERY_STRING", ""))
    if environ.get("REQUEST_METHOD") == "POST":
        if environ.get("CONTENT_TYPE", "").startswith("application/json"):
            # a JSON null is a value not given (not the text "null")
            pairs += [
                (k, v if isinstance(v, str) else orjson.dumps(v).decode())
                for k, v in json_body(environ).items()
                if v is not None
            ]
        else:
            pairs += query_pairs(read_body(environ, cases.MAX_BODY).decode("utf-8", "replace"))
    out = check_params(pairs, allowed, "Open311 parameter")
    if "jurisdiction_id" in out and out["jurisdiction_id"] not in JURISDICTIONS:
        raise InvalidParameter(choices(out["jurisdiction_id"], JURISDICTIONS, "jurisdiction_id"))
    return out


def _float(params, name) -> float:
    try:
        return float(params[name])
    except KeyError:
        raise InvalidParameter(f"{name!r} is required") from None
    except ValueError:
        raise InvalidParameter(f"{name!r} must be a number, got {params[name]!r}") from None


def post_request(environ) -> list[dict]:
    p = _params(environ, POST_PARAMS)
    who = request.principal()
    if p.get("api_key"):
        who = access.authenticate(p["api_key"], settings_of(environ).keys)
    code = p.get("service_code")
    if not code:
        raise InvalidParameter("'service_code' is required")
    if code not in _LABEL:
        raise InvalidParameter(choices(code, list(_LABEL), "service_code"))
    if "address_id" in p or "media_url" in p or "device_id" in p or "account_id" in p:
        raise InvalidParameter(
            "address_id, media_url, device_id and account_id are not "
            "supported: send lat/long and a description"
        )
    lat, lon = _float(p, "lat"), _float(p, "long")
    name = " ".join(x for x in (p.get("last_name"), p.get("first_name")) if x) or None
    props = {
        "title": p.get("title") or (p.get("description") or _LABEL[code].zh)[:60],
        "category": code,
        "channel": p.get("channel", "wechat"),
        "description": p.get("description"),
        "address": p.get("address_string"),
        "reporter_name": name,
        "reporter_phone": p.get("phone") or p.get("email"),
    }
    doc = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {k: v for k, v in props.items() if v is not None},
    }
    feat = cases.create_case(store(environ), doc, who, content_crs="OGC:CRS84")
    pr = feat["properties"]
    dep = _DEPT[pr["department"]]
    return [
        {
            "service_request_id": feat["id"],
            "account_id": None,
            "service_notice": f"dispatched to {dep.en} ({dep.zh}); expected by {pr['deadline']}",
        }
    ]


def _record(feat: dict, lang: str) -> dict:
    p = feat["properties"]
    x, y = feat["geometry"]["coordinates"][:2] if feat.get("geometry") else (None, None)
    stage = _STAGE.get(p["status"])
    dep = _DEPT.get(p.get("department"))
    cat = _LABEL.get(p["category"])
    updated = max(
        v
        for v in (
            p.get(k)
            for k in (
                "reported_at",
                "registered_at",
                "dispatched_at",
                "handled_at",
                "closed_at",
                "evaluated_at",
            )
        )
        if v
    )
    return {
        "service_request_id": feat["id"],
        "status": "closed" if p["status"] in ("closed", "evaluated") else "open",
        "status_notes": (stage.zh if lang == "zh" else stage.en) if stage else p["status"],
        "service_name": (cat.zh if lang == "zh" else cat.en) if cat else p["category"],
        "service_code": p["category"],
        "description": p.get("description") or p.get("title"),
        "agency_responsible": (dep.zh if lang == "zh" else dep.en) if dep else None,
        "service_notice": None,
        "requested_datetime": p.get("reported_at"),
        "updated_datetime": updated,
        "expected_datetime": p.get("deadline"),
        "address": p.get("address"),
        "address_id": None,
        "zipcode": None,
        "lat": y,
        "long": x,
        "media_url": None,
    }


def _time(params, name) -> dt.datetime:
    lo, hi = parse_interval(params[name])
    if lo != hi or lo is None:
        raise InvalidParameter(f"{name!r} must be one instant (W3C date-time)")
    return lo


def get_requests(environ, ident: str | None = None) -> list[dict]:
    p = _params(environ, GET_PARAMS)
    lang = _lang(p)
    s = store(environ)
    if ident is not None:
        if not _ID.match(ident):
            raise NotFound(f"no service request {ident!r}")
        return [_record(s.get(INCIDENTS, ident), lang)]
    parts = []
    if p.get("service_request_id"):
        ids = p["service_request_id"].split(",")
        bad = [i for i in ids if not _ID.match(i)]
        if bad:
            raise InvalidParameter(f"service_request_id {bad[0]!r} is not a valid id")
        parts.append("case_no IN (" + ", ".join(f"'{i}'" for i in ids) + ")")
    if p.get("service_code"):
        codes = p["service_code"].split(",")
        for c in codes:
            if c not in _LABEL:
                raise InvalidParameter(choices(c, list(_LABEL), "service_code"))
        parts.append("category IN (" + ", ".join(f"'{c}'" for c in codes) + ")")
    if p.get("status"):
        if p["status"] not in ("open", "closed"):
            raise InvalidParameter(choices(p["status"], ("open", "closed"), "status"))
        op = "IN" if p["status"] == "closed" else "NOT IN"
        parts.append(f"status {op} ('closed', 'evaluated')")
    start = _time(p, "start_date") if p.get("start_date") else None
    end = _time(p, "end_date") if p.get("end_date") else None
    if start is None and end is None and not p.get("service_request_id"):
        end = dt.datetime.now(dt.UTC)
        start = end - dt.timedelta(days=90)  # GeoReport's default window
    try:
        limit = int(p.get("limit", 1000))
    except ValueError:
        raise InvalidParameter(f"limit must be an integer, got {p['limit']!r}") from None
    if not 1 <= limit <= 10_000:
        raise InvalidParameter("limit must be between 1 and 10000")
    q = Query(
        where=parse_filter(" AND ".join(parts)) if parts else None,
        interval=(start, end) if (start or end) else None,
        sortby=[("reported_at", False)],
        limit=limit,
    )
    page = s.query(INCIDENTS, q, count=False)
    return [_record(f, lang) for f in page.features]


def georeport_error(err: TianyaError) -> list[dict]:
    """GeoReport v2's error body: a list of ``{code, description}`` (the code is the status)."""
    return [{"code": err.status, "description": str(err)}]


def app(environ, start_response):
    """The GeoReport v2 resources (see the module docstring); errors in GeoReport's format."""
    return guarded(environ, start_response, _route, georeport_error)


def _route(environ, start_response):
    path = (environ.get("PATH_INFO", "") or "/")[len(PREFIX) :]
    if path.endswith(".xml"):
        raise InvalidParameter("only the JSON format (.json) is served")
    if path == "/services.json":
        allow(environ, "GET", "HEAD")
        return respond(
            environ, start_response, services(_params(environ, ("jurisdiction_id", "lang")))
        )
    if m := re.fullmatch(r"/services/([^/]+)\.json", path):
        allow(environ, "GET", "HEAD")
        _params(environ, ("jurisdiction_id", "lang"))
        if m.group(1) not in _LABEL:
            raise NotFound(choices(m.group(1), list(_LABEL), "service_code"))
        return respond(environ, start_response, {"service_code": m.group(1), "attributes": []})
    if path == "/requests.json":
        if allow(environ, "GET", "HEAD", "POST") == "POST":
            return respond(environ, start_response, post_request(environ), 201)
        return respond(environ, start_response, get_requests(environ))
    if m := re.fullmatch(r"/requests/([^/]+)\.json", path):
        allow(environ, "GET", "HEAD")
        return respond(environ, start_response, get_requests(environ, m.group(1)))
    raise NotFound(f"no Open311 resource at {PREFIX}{path}")
