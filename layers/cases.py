"""Case intake: validation against the catalogue and automatic dispatch (任务自动分派).

:func:`read_feature` turns a request body into checked properties and a CRS84
point (refusing with a message that names the field); :func:`locate` and
:func:`dispatch` find the community, unit grid, grid worker, responsible
department, deadline and priority; :func:`create_case` writes the case and its
history in one store transaction. The lifecycle after intake is in
:mod:`layers.lifecycle`.

Unowned cases (a category whose rule names the territorial unit or no rule, a
point on no unit grid) and ambiguous ones (a point on the edge of two grids)
go to the territorial unit (属地管理) with ``territorial`` set: that flag is
what the supervision screens list.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache

import orjson
import pyproj
import shapely
from pygeofilter import ast

from layers import access, audit
from layers.catalogue import CATEGORY_CLASS, Field, get_layer
from layers.dispatch import (
    dispatch,
    locator_for,
)
from layers.district import PROJECTED_CRS
from layers.errors import InvalidFeature, NotFound, PayloadTooLarge, choices
from layers.query import Query, check_date
from layers.store import Store, normalize_crs
from layers.worktime import TZ

INCIDENTS = get_layer("incidents")
#: Largest request body accepted (bytes).
MAX_BODY = 64 * 1024
#: ``Content-Crs`` values taken as they are (CRS84 order: lon, lat) or with lat, lon order.
LONLAT_CRS = ("OGC:CRS84",)
LATLON_CRS = ("EPSG:4326", "EPSG:4490")
#: Projected CRSs reprojected to CRS84 on intake.
ACCEPTED_CRS = LONLAT_CRS + LATLON_CRS + PROJECTED_CRS

#: Properties a reporter may set on intake; dispatchers and admins may add :data:`OVERRIDES`.
INTAKE_FIELDS = (
    "title",
    "description",
    "case_type",
    "major_class",
    "category",
    "channel",
    "nature",
    "address",
    "reporter_name",
    "reporter_phone",
    "reported_at",
)
OVERRIDES = ("priority", "department")
#: Set by dispatch and the lifecycle, never by a client.
MANAGED_FIELDS = tuple(f.name for f in INCIDENTS.fields if f.name not in INTAKE_FIELDS + OVERRIDES)


# --- Parsing and validation -------------------------------------------------------------------


def parse_body(body: bytes | str | dict) -> dict:
    """The JSON object in a request body; 413 when too large, 400 when not a JSON object."""
    if isinstance(body, dict):
        return body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(
            f"request body of {len(body)} bytes is larger than the {MAX_BODY} bytes allowed"
        )
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidFeature(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidFeature("request body must be a JSON object (a GeoJSON Feature)")
    return doc


def check_crs(content_crs: str | None) -> str:
    """The normalised ``Content-Crs`` (default CRS84); 400 naming the accepted ones."""
    if not content_crs:
        return "OGC:CRS84"
    crs = normalize_crs(content_crs.strip().strip("<>"))
    if crs not in ACCEPTED_CRS:
        raise InvalidFeature(choices(content_crs, ACCEPTED_CRS, "Content-Crs"))
    return crs


@lru_cache(maxsize=8)
def _to_crs84(crs: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(
        pyproj.CRS.from_user_input(crs), pyproj.CRS.from_user_input("OGC:CRS84"), always_xy=False
    )


def read_point(geometry, crs: str = "OGC:CRS84") -> shapely.Point:
    """A GeoJSON Point in ``crs`` (axis order of that CRS) as a CRS84 shapely point."""
    if not isinstance(geometry, dict):
        raise InvalidFeature("geometry is required: a GeoJSON Point")
    gtype = geometry.get("type")
    if gtype != INCIDENTS.geometry_type:
        raise InvalidFeature(
            f"geometry type {gtype!r} is not valid for incidents, must be: "
            f"{INCIDENTS.geometry_type}"
        )
    c = geometry.get("coordinates")
    if (
        not isinstance(c, list)
        or len(c) not in (2, 3)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in c)
        or not all(math.isfinite(v) for v in c)
    ):
        raise InvalidFeature(
            f"geometry coordinates must be 2 or 3 finite numbers, got {str(c)[:80]}"
        )
    x, y = float(c[0]), float(c[1])
    if crs != "OGC:CRS84":
        x, y = _to_crs84(crs).transform(x, y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidFeature(f"geometry coordinates {c[:2]} are outside the area of {crs}")
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        swapped = -90 <= x <= 90 and -180 <= y <= 180
        raise InvalidFeature(
            f"geometry coordinates {c[:2]} are not valid longitude/latitude "
            f"in {crs}" + (_axis_hint(shapely.Point(x, y)) if swapped else "")
        )
    return shapely.Point(x, y)


def _coerce(name: str, ftype: str, value):
    """A property value checked against its field type (datetimes parsed, aware UTC)."""
    bad = InvalidFeature(f"property {name!r} must be of type {ftype}, got {value!r}"[:200])
    if ftype == "string":
        if not isinstance(value, str):
            raise bad
        if len(value) > 2000:
            raise InvalidFeature(f"property {name!r} is longer than 2000 characters")
        check_text(value, f"property {name!r}")
        return value
    if ftype == "integer":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise bad
        if abs(value) > 2**53:
            raise bad
        return int(value)
    if ftype == "number":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise bad
        return float(value)
    if ftype == "boolean":
        if not isinstance(value, bool):
            raise bad
        return value
    if not isinstance(value, str):
        raise bad
    try:
        if ftype == "date":
            return check_date(
                dt.date.fromisoformat(value), f"property {name!r}", InvalidFeature
            ).isoformat()
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except InvalidFeature:
        raise
    except ValueError:
        raise bad from None
    if t.tzinfo is None:
        raise InvalidFeature(
            f"property {name!r} needs a time zone (e.g. 'Z' or '+08:00'), got {value!r}"
        )
    return check_date(t, f"property {name!r}", InvalidFeature).astimezone(dt.UTC)


def check_text(value: str, what: str) -> str:
    """``value`` unless it holds a NUL character (which no text field may store).

    Raises
    ------
    InvalidFeature
        Naming ``what``.
    """
    if "\x00" in value:
        raise InvalidFeature(
            f"{what} contains a NUL character (U+0000), which text fields may not hold"
        )
    return value


def check_properties(props, allowed, *, required=(), what: str = "on intake") -> dict:
    """``props`` checked against the incidents fields: names, types, code lists, required.

    Parameters
    ----------
    props : dict
        Submitted properties (``None`` values clear a field).
    allowed : sequence of str
        Fields the caller may set here; known fields outside it are refused by name.
    required : sequence of str
        Fields that must be present and not null.
    """
    if not isinstance(props, dict):
        raise InvalidFeature("properties must be a JSON object")
    fmap = INCIDENTS.field_map
    out: dict[str, object] = {}
    for name, value in props.items():
        if name not in fmap:
            raise InvalidFeature(choices(name, list(allowed), "property of incidents " + what))
        if name not in allowed:
            why = (
                "is set by dispatch and the case workflow"
                if name in MANAGED_FIELDS
                else "may not be set by this role"
            )
            raise InvalidFeature(
                f"property {name!r} {why}, not {what}; allowed: {', '.join(allowed)}"
            )
        f = fmap[name]
        if value is None:
            out[name] = None
            continue
        value = _coerce(name, f.type, value)
        codes = f.code_values
        if codes is not None and value not in codes:
            raise InvalidFeature(choices(value, codes, f"{name} code"))
        out[name] = value
    for name in required:
        if out.get(name) in (None, ""):
            raise InvalidFeature(f"property {name!r} is required")
    return out


def read_feature(
    doc: dict, *, allowed, partial: bool = False, content_crs: str | None = None
) -> tuple[dict, shapely.Point | None]:
    """Properties and CRS84 point of a submitted GeoJSON Feature.

    Parameters
    ----------
    doc : dict
        A GeoJSON Feature; with ``partial`` also a bare properties object.
    partial : bool
        A PATCH: nothing is required and the geometry may be absent.
    allowed : sequence of str
        Settable fields (:func:`intake_fields` or :func:`edit_fields` of the caller).
    content_crs : str, optional
        The request's ``Content-Crs`` (default CRS84).
    """
    crs = check_crs(content_crs)
    if doc.get("type") == "Feature":
        extra = sorted(set(doc) - {"type", "id", "geometry", "properties", "bbox", "links", "note"})
        if extra:
            raise InvalidFeature(f"unknown member {extra[0]!r} in the Feature")
        props = doc.get("properties") or {}
        geometry = doc.get("geometry")
    elif partial:
        props, geometry = dict(doc), None
        props.pop("note", None)
    else:
        raise InvalidFeature(f"body must be a GeoJSON Feature, got type {doc.get('type')!r}")
    required = () if partial else INCIDENTS.required_fields
    out = check_properties(
        props, allowed, required=required, what="in a PATCH" if partial else "on intake"
    )
    point = None
    if geometry is not None or not partial:
        point = read_point(geometry, crs)
    if "category" in out and out["category"] is not None:
        case_type, major = CATEGORY_CLASS[out["category"]]
        for name, want in (("case_type", case_type), ("major_class", major)):
            if out.get(name) not in (None, want):
                raise InvalidFeature(
                    f"property {name!r} is {out[name]!r} but category "
                    f"{out['category']!r} belongs to {want!r}"
                )
            out[name] = want
    return out, point


def intake_fields(who: access.Principal) -> tuple[str, ...]:
    """Fields ``who`` may set on intake."""
    return INTAKE_FIELDS + (OVERRIDES if who.role in ("dispatcher", "admin") else ())


# --- Case numbers and intake --------------------------------------------------------------------


#: One row per local day: the last case serial handed out (kept beside the cases).
COUNTERS = audit.counters_layer(
    "case_counters",
    "案卷编号计数",
    "Case number counters",
    "每日案卷流水号。",
    "Last case serial of each local day.",
    Field("day", "string", "日期", "Local day (YYYYMMDD)"),
)


def next_case_no(store: Store, at: dt.datetime) -> str:
    """The next case number of ``at``'s local day: ``TY`` + YYYYMMDD + 5-digit serial.

    Call inside the write transaction that inserts the case. The day's counter
    row is locked (:meth:`~layers.store.Store.get_for_update`) until the
    transaction ends, so concurrent writers on any store take turns; a new
    day's counter starts from the highest case number already stored.
    """
    day = at.astimezone(TZ).strftime("%Y%m%d")
    last = audit.next_serial(store, COUNTERS, day, first=lambda: _max_serial(store, day))
    return f"TY{day}{last:05d}"


def _max_serial(store: Store, day: str) -> int:
    """The highest serial among stored case numbers of ``day`` (0 if none)."""
    lo = f"TY{day}"
    key = ast.Attribute("case_no")
    where = ast.And(ast.GreaterEqual(key, lo), ast.LessThan(key, f"TY{day}~"))
    q = Query(
        where=where,
        sortby=[("case_no", False)],
        properties=["case_no"],
        skip_geometry=True,
        limit=1,
    )
    page = store.query(INCIDENTS, q, count=False)
    if page.features:
        tail = str(page.features[0]["properties"]["case_no"])[len(lo) :]
        return int(tail) if tail.isdigit() else 0
    return 0


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


#: How far back a reporter may date a case (trusted roles may record any date in range).
MAX_BACKDATE = dt.timedelta(days=30)


def create_case(
    store: Store,
    doc: dict,
    who: access.Principal,
    *,
    content_crs: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Validate, dispatch and store a new case with its history; returns the stored feature.

    Everything is written in one store transaction: the case (status
    ``dispatched``), and history rows for collection, registration and dispatch.
    """
    from layers import lifecycle
    from layers.errors import Conflict

    lifecycle.require_role(who, "create", lifecycle.CREATE_ROLES)
    props, point = read_feature(doc, allowed=intake_fields(who), content_crs=content_crs)
    if point is None:  # read_feature requires the point when not partial
        raise InvalidFeature("geometry is required: a GeoJSON Point")
    loc = locator_for(store)
    if not loc.inside(point):
        raise InvalidFeature(
            f"location ({point.x:.6f}, {point.y:.6f}) is outside Tianya District "
            f"({loc.outside_by(point):.0f} m beyond its boundary): the case cannot be taken "
            "here (report it to the district it falls in)" + _axis_hint(point)
        )
    now = now or now_utc()
    reported = props.get("reported_at") or now
    if reported > now + dt.timedelta(minutes=5):
        raise InvalidFeature(f"property 'reported_at' ({reported.isoformat()}) is in the future")
    if not who.trusted and reported < now - MAX_BACKDATE:
        # an old date stretches every time series: a case "reported" in 1900 made the
        # default emerging hot spots refuse everyone's run (6,623 steps)
        raise InvalidFeature(
            f"property 'reported_at' ({reported.isoformat()}) is more than "
            f"{MAX_BACKDATE.days} days ago: only a dispatcher or admin may record older cases"
        )
    d = dispatch(
        props["category"],
        loc.place(point),
        now,
        department=props.pop("department", None),
        priority=props.pop("priority", None),
    )
    props.update(d.properties())
    props.update(status="dispatched", reported_at=reported, registered_at=now, dispatched_at=now)
    lifecycle.ensure_tables(store)
    store.ensure_layer(COUNTERS)
    for attempt in range(5):
        try:
            with store.transaction():
                case_no = next_case_no(store, now)
                props["case_no"] = case_no
                store.insert(INCIDENTS, [{"geometry": point, "properties": props}])
                lifecycle.record(
                    store,
                    case_no,
                    None,
                    "collected",
                    who,
                    at=reported,
                    note=f"intake via {props['channel']}",
                )
                lifecycle.record(store, case_no, "collected", "registered", who, at=now)
                lifecycle.record(
                    store,
                    case_no,
                    "registered",
                    "dispatched",
                    lifecycle.SYSTEM,
                    at=now,
                    note="automatic dispatch: " + d.reason,
                )
            break
        except Conflict:
            if attempt == 4:
                raise
    return _as_stored(case_no, point, props)


def _as_stored(case_no: str, point: shapely.Point, props: dict) -> dict:
    """The feature as the store now holds it (datetimes as stored text)."""
    from layers.query import format_datetime

    out = {f.name: props.get(f.name) for f in INCIDENTS.fields}
    for k, v in out.items():
        if isinstance(v, dt.datetime):
            out[k] = format_datetime(v)
    return {
        "type": "Feature",
        "id": case_no,
        "geometry": {"type": "Point", "coordinates": [point.x, point.y]},
        "properties": out,
    }


def _axis_hint(point: shapely.Point) -> str:
    if 17 <= point.x <= 20 and 108 <= point.y <= 111:
        return (
            "; the coordinates look like latitude/longitude: GeoJSON in CRS84 is "
            "longitude, latitude (EPSG:4326 in Content-Crs means latitude, longitude)"
        )
    return ""


def edit_fields(who: access.Principal) -> tuple[str, ...]:
    """Fields ``who`` may change after intake (besides ``status``, a transition)."""
    return intake_fields(who) if who.role in ("dispatcher", "admin") else ()


def patch_case(
    store: Store,
    case_no: str,
    doc: dict,
    who: access.Principal,
    *,
    content_crs: str | None = None,
    if_match: str | None = None,
) -> dict:
    """PATCH: change some properties and/or the location; ``status`` makes a transition.

    ``doc`` is a partial GeoJSON Feature or a bare properties object; a
    top-level ``note`` is the transition's reason. ``if_match``: the request's ``If-Match``,
    checked in the write transaction (:func:`layers.lifecycle.locked_case`).
    """
    from layers import lifecycle

    lifecycle.require_role(who, "change a case", lifecycle.PATCH_ROLES)
    note = doc.get("note")
    props, point = read_feature(
        doc, partial=True, allowed=edit_fields(who) + ("status",), content_crs=content_crs
    )
    if not props and point is None:
        raise InvalidFeature("nothing to change: give properties or a geometry")
    return lifecycle.edit(store, case_no, props, point, who=who, note=note, if_match=if_match)


def replace_case(
    store: Store,
    case_no: str,
    doc: dict,
    who: access.Principal,
    *,
    content_crs: str | None = None,
    if_match: str | None = None,
) -> dict:
    """PUT: replace the descriptive fields and the location of a case.

    Fields set by dispatch and the workflow may be echoed back unchanged (as a
    GET returned them); a different ``status`` makes a transition, any other
    difference in them is refused. Descriptive fields left out are cleared.
    ``if_match``: the request's ``If-Match``, checked in the write transaction
    (:func:`layers.lifecycle.locked_case`). Returns the case as stored.
    """
    from layers import lifecycle

    lifecycle.require_role(who, "replace a case", lifecycle.EDIT_ROLES)
    if doc.get("type") != "Feature":
        raise InvalidFeature(f"body must be a GeoJSON Feature, got type {doc.get('type')!r}")
    try:
        stored = store.get(INCIDENTS, case_no)["properties"]
    except NotFound:
        lifecycle.require_match(None, if_match, case_no)  # If-Match on no case: 412
        raise
    if not isinstance(doc.get("properties") or {}, dict):  # before dict(): 5 or "ab"
        raise InvalidFeature("properties must be a JSON object")
    props = dict(doc.get("properties") or {})
    status = props.pop("status", None)
    for name in MANAGED_FIELDS:
        if name in props and name != "status":
            if props[name] != stored.get(name):
                raise InvalidFeature(
                    f"property {name!r} is set by dispatch and the case "
                    "workflow; send it unchanged or leave it out"
                )
            props.pop(name)
    new, point = read_feature(
        dict(doc, properties=props), allowed=edit_fields(who), content_crs=content_crs
    )
    full = {n: new.get(n) for n in edit_fields(who) if n not in OVERRIDES or n in new}
    if full.get("reported_at") is None:
        full.pop("reported_at", None)
    if status is not None and status != stored.get("status"):
        full["status"] = status
    return lifecycle.edit(
        store, case_no, full, point, who=who, note=doc.get("note"), if_match=if_match
    )
