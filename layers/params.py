"""Checking an OGC API Features items request before it reaches pygeoapi.

pygeoapi discards query parameters its provider does not know (pygeoapi issue
#2000) and answers a malformed filter with a bare "Bad CQL text". Every
parameter of an items request is checked here against the layer catalogue, so a
mistake gets a 400 that names it; a CQL2 JSON filter sent with ``GET`` is
normalised to CQL2 text, which is what pygeoapi parses from a query string.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from collections.abc import Mapping

import numpy as np
from pygeofilter import ast, values

from layers.catalogue import Layer
from layers.errors import InvalidParameter, choices
from layers.query import (
    check_filter,
    check_geographic_literals,
    coerce_value,
    parse_filter,
    parse_interval,
)

#: Parameters of OGC API Features Parts 1-3 that the items resource takes.
ITEMS_PARAMS = (
    "bbox",
    "bbox-crs",
    "crs",
    "f",
    "lang",
    "limit",
    "offset",
    "resulttype",
    "datetime",
    "sortby",
    "properties",
    "skipGeometry",
    "filter",
    "filter-lang",
    "filter-crs",
)
#: Parameters of a single item (``/items/{id}``).
ITEM_PARAMS = ("crs", "f", "lang", "properties", "skipGeometry")
FORMATS = ("json", "html", "jsonld", "csv")

#: CRSs every collection offers (OGC API Features Part 2).
SUPPORTED_CRS = (
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "http://www.opengis.net/def/crs/EPSG/0/4326",
    "http://www.opengis.net/def/crs/EPSG/0/4490",
    "http://www.opengis.net/def/crs/EPSG/0/3857",
    "http://www.opengis.net/def/crs/EPSG/0/32649",
)


_INT64_MAX = 2**63 - 1


def _bool(name: str, raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise InvalidParameter(f"{name} must be true or false, got {raw!r}")
    return raw.lower() == "true"


def _int(name: str, raw: str, low: int) -> int:
    try:
        v = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, got {raw!r}") from None
    if v < low:
        raise InvalidParameter(f"{name} must be at least {low}, got {v}")
    if v > _INT64_MAX:  # what SQLite and PostgreSQL can bind
        raise InvalidParameter(f"{name} must be at most {_INT64_MAX}, got {v}")
    return v


def check_filter_node(
    layer: Layer, node, fields: set[str] | None = None, filter_crs: str | None = None
) -> None:
    """Refuse a parsed filter naming a field the caller may not see, or a geographic literal
    outside longitude/latitude range in ``filter-crs`` (CRS84 when None).

    One check for every route a filter arrives by: the query string and a CQL2 JSON POST body.
    """
    check_filter(layer, node, fields)
    filter_crs = filter_crs or SUPPORTED_CRS[0]
    if filter_crs.endswith(("/CRS84", "/4326", "/4490")):
        check_geographic_literals(node, lat_first=not filter_crs.endswith("/CRS84"))


def check_items_params(
    layer: Layer, params: Mapping[str, str], visible: set[str] | None = None, single: bool = False
) -> dict[str, str]:
    """Check an items (or single item) request's parameters against the catalogue.

    Parameters
    ----------
    layer : Layer
    params : mapping of str to str
        The query string (one value per name; repeated names are refused).
    visible : set of str, optional
        The properties this caller may see; others are unknown to them.
    single : bool
        The request is for one item.

    Returns
    -------
    dict
        The parameters to pass on: the same, except that a CQL2 JSON ``filter``
        is re-encoded as CQL2 text (and ``filter-lang`` set accordingly).

    Raises
    ------
    InvalidParameter
        Naming the parameter and what is wrong with it.
    """
    fields = set(visible) if visible is not None else {f.name for f in layer.fields}
    reserved = ITEM_PARAMS if single else ITEMS_PARAMS
    out = dict(params)
    for name in params:
        if name not in reserved and (single or name not in fields):
            what = "item" if single else "items"
            valid = list(reserved) + ([] if single else sorted(fields))
            raise InvalidParameter(
                f"unknown query parameter {name!r} for {what} of {layer.id!r}; valid parameters "
                f"are: {', '.join(valid)}"
            )
    if "f" in params and params["f"] not in FORMATS:
        raise InvalidParameter(choices(params["f"], FORMATS, "format (f)"))
    if "limit" in params:
        _int("limit", params["limit"], 1)
    if "offset" in params:
        _int("offset", params["offset"], 0)
    if "resulttype" in params and params["resulttype"] not in ("results", "hits"):
        raise InvalidParameter(choices(params["resulttype"], ("results", "hits"), "resulttype"))
    if "skipGeometry" in params:
        _bool("skipGeometry", params["skipGeometry"])
    for key in ("crs", "filter-crs"):
        if key in params and params[key] not in SUPPORTED_CRS:
            raise InvalidParameter(choices(params[key], SUPPORTED_CRS, key))
    _check_bbox_params(params)
    if "datetime" in params:
        # checked everywhere; on a collection without a temporal field it matches every
        # feature (Features Part 1 /req/core/fc-time-response C)
        parse_interval(params["datetime"])
    if "sortby" in params:
        for item in params["sortby"].split(","):
            name = item.strip().lstrip("+-")
            if name not in fields:
                raise InvalidParameter(
                    choices(name, sorted(fields), f"sortby property of {layer.id!r}")
                )
    if "properties" in params:
        names = [p.strip() for p in params["properties"].split(",") if p.strip()]
        for name in names:
            if name not in fields:
                raise InvalidParameter(choices(name, sorted(fields), f"property of {layer.id!r}"))
    for name in params:
        if name in fields and name not in reserved:
            coerce_value(layer, name, params[name])
    if "filter-lang" in params and "filter" not in params:
        raise InvalidParameter("filter-lang was given without filter")
    if "filter" in params:
        node = parse_filter(params["filter"], params.get("filter-lang"))
        check_filter_node(layer, node, fields, params.get("filter-crs"))
        if params.get("filter-lang") == "cql2-json" or params["filter"].lstrip().startswith("{"):
            out["filter"] = to_cql2_text(node)
            out["filter-lang"] = "cql2-text"
    if "bbox-crs" in params and params["bbox-crs"] != SUPPORTED_CRS[0]:
        out = _projected_bbox_as_filter(out)
    return out


def _projected_bbox_as_filter(params: dict[str, str]) -> dict[str, str]:
    """A bbox in another CRS as the exact CRS84 polygon it covers, as a CQL2 filter.

    pygeoapi transforms only a bbox's two corners, which in a projected CRS is not
    the area asked for; the densified outline is (to well under a metre).
    """
    import pyproj
    import shapely

    nums = [float(v) for v in params["bbox"].split(",")]
    lo, hi = (nums[:2], nums[2:]) if len(nums) == 4 else (nums[:2], nums[3:5])
    crs = pyproj.CRS.from_user_input("EPSG:" + params["bbox-crs"].rsplit("/", 1)[-1])
    t = pyproj.Transformer.from_crs(crs, "OGC:CRS84")  # both in authority axis order
    if lo[1] > hi[1]:  # latitude, longitude across the antimeridian: the box either side
        boxes = [(lo[0], lo[1], hi[0], 180.0), (lo[0], -180.0, hi[0], hi[1])]
    else:
        boxes = [(lo[0], lo[1], hi[0], hi[1])]
    rings = []
    for x0, y0, x1, y1 in boxes:
        ring = shapely.box(x0, y0, x1, y1)
        step = max(x1 - x0, y1 - y0) / 64
        rings.append(shapely.segmentize(ring, step) if step > 0 else ring)
    area = rings[0] if len(rings) == 1 else shapely.MultiPolygon(rings)
    poly = shapely.transform(area, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
    if not np.isfinite(shapely.get_coordinates(poly)).all():
        raise InvalidParameter(
            f"bbox {params['bbox']!r} in bbox-crs {params['bbox-crs']} "
            "does not transform to finite longitudes/latitudes"
        )
    out = {k: v for k, v in params.items() if k not in ("bbox", "bbox-crs")}
    spatial = f"S_INTERSECTS(geometry, {shapely.to_wkt(poly, rounding_precision=9)})"
    if "filter" in out:
        if out.get("filter-crs", SUPPORTED_CRS[0]) != SUPPORTED_CRS[0]:
            raise InvalidParameter(
                "bbox-crs with a projected CRS cannot be combined with a "
                "filter in another filter-crs; send both in one CRS"
            )
        spatial = f"({spatial}) AND ({out['filter']})"
    out["filter"] = spatial
    out["filter-lang"] = "cql2-text"
    return out


def _check_bbox_params(params: Mapping[str, str]) -> list[float] | None:
    """Check ``bbox`` and ``bbox-crs`` together; the box's numbers (None without a box)."""
    crs = params.get("bbox-crs")
    if crs is not None and crs not in SUPPORTED_CRS:
        raise InvalidParameter(choices(crs, SUPPORTED_CRS, "bbox-crs"))
    if crs is not None and "bbox" not in params:
        raise InvalidParameter("bbox-crs was given without bbox")
    return _check_bbox(params["bbox"], crs) if "bbox" in params else None


def _check_bbox(raw: str, crs: str | None) -> list[float]:
    try:
        nums = [float(v) for v in raw.split(",")]
    except ValueError:
        raise InvalidParameter(
            f"bbox must be 4 or 6 comma-separated numbers, got {raw!r}"
        ) from None
    if len(nums) not in (4, 6):
        raise InvalidParameter(f"bbox must be 4 or 6 comma-separated numbers, got {raw!r}")
    if not all(math.isfinite(v) for v in nums):  # float() takes nan and inf
        raise InvalidParameter(f"bbox must be finite numbers, got {raw!r}")
    lo, hi = (nums[:2], nums[2:]) if len(nums) == 4 else (nums[:2], nums[3:5])
    geographic = crs is None or crs.endswith(("/CRS84", "/4326", "/4490"))
    if geographic and crs is not None and crs.endswith(("/4326", "/4490")):
        lo, hi = lo[::-1], hi[::-1]  # lat, lon order
    # a longitude range with min > max crosses the antimeridian (Features §7.15.3)
    if (lo[0] > hi[0] and not geographic) or lo[1] > hi[1]:
        raise InvalidParameter(f"bbox {raw!r} has a minimum greater than its maximum")
    if geographic and (abs(lo[1]) > 90 or abs(hi[1]) > 90 or abs(lo[0]) > 180 or abs(hi[0]) > 180):
        raise InvalidParameter(f"bbox {raw!r} is outside the valid longitude/latitude range")
    if not geographic:
        # a box beyond the projection's domain transforms to inf/NaN (or makes shapely and
        # pyproj fail): it must lie within the CRS's area of use
        name, (x0, y0, x1, y1) = _projected_area(crs)
        slack = 1e-9 * max(x1 - x0, y1 - y0)  # the bounds' own rounding
        if lo[0] < x0 - slack or lo[1] < y0 - slack or hi[0] > x1 + slack or hi[1] > y1 + slack:
            raise InvalidParameter(
                f"bbox {raw!r} is outside the area of use of bbox-crs {crs} ({name}): x from "
                f"{x0:.2f} to {x1:.2f}, y from {y0:.2f} to {y1:.2f}"
            )
    return nums


@functools.cache
def _projected_area(crs: str) -> tuple[str, tuple[float, float, float, float]]:
    """A projected CRS's name and the bounds of its area of use in its own coordinates."""
    import pyproj

    proj = pyproj.CRS.from_user_input("EPSG:" + crs.rsplit("/", 1)[-1])
    area = proj.area_of_use
    if area is None:
        raise ValueError(f"{crs} has no area of use to bound it")
    t = pyproj.Transformer.from_crs("OGC:CRS84", proj)  # lon/lat in, authority order out
    return proj.name, t.transform_bounds(
        area.west, area.south, area.east, area.north, densify_pts=64
    )


# --- CQL2 text encoding --------------------------------------------------------------------------

_OPS = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_SPATIAL = {
    ast.GeometryIntersects: "S_INTERSECTS",
    ast.GeometryDisjoint: "S_DISJOINT",
    ast.GeometryContains: "S_CONTAINS",
    ast.GeometryWithin: "S_WITHIN",
    ast.GeometryTouches: "S_TOUCHES",
    ast.GeometryCrosses: "S_CROSSES",
    ast.GeometryOverlaps: "S_OVERLAPS",
    ast.GeometryEquals: "S_EQUALS",
}


def to_cql2_text(node) -> str:
    """Encode a pygeofilter AST (as :func:`layers.query.parse_filter` returns) as CQL2 text."""
    import shapely

    def lit(v) -> str:
        if isinstance(v, ast.Attribute):
            return '"' + v.name.replace('"', '""') + '"'
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'"  # CQL2 escapes
        if isinstance(v, dt.datetime):  # fractions of a second kept
            return f"TIMESTAMP('{v.astimezone(dt.UTC).isoformat().replace('+00:00', 'Z')}')"
        if isinstance(v, values.Interval):  # CQL2's ends: quoted instants, '..' or properties
            ends = [
                "'..'" if e is None else lit(e).split("(", 1)[-1].removesuffix(")")
                for e in (v.start, v.end)
            ]
            return f"INTERVAL({ends[0]}, {ends[1]})"
        if isinstance(v, dt.date):
            return f"DATE('{v.isoformat()}')"
        if isinstance(v, values.Geometry):
            return shapely.geometry.shape(v.geometry).wkt
        if isinstance(v, values.Envelope):
            return f"BBOX({v.x1},{v.x2},{v.y1},{v.y2})"  # see layers.query.literal_geometry
        if isinstance(v, ast.Function):
            return f"{v.name.upper()}({', '.join(lit(a) for a in v.arguments)})"
        if isinstance(v, ast.Node):
            return enc(v)
        raise InvalidParameter(f"cannot encode filter value {v!r}")

    def enc(n) -> str:
        if isinstance(n, ast.And | ast.Or):
            op = "AND" if isinstance(n, ast.And) else "OR"
            return f"({enc(n.lhs)} {op} {enc(n.rhs)})"
        if isinstance(n, ast.Not):
            return f"NOT ({enc(n.sub_node)})"
        if isinstance(n, ast.Include):  # a boolean literal as a predicate
            return "FALSE" if n.not_ else "TRUE"
        if isinstance(n, ast.Function) and n.name.lower().startswith("t_"):  # temporal
            return lit(n)
        if type(n) in _OPS:
            return f"{lit(n.lhs)} {_OPS[type(n)]} {lit(n.rhs)}"
        if isinstance(n, ast.Like):
            return f"{lit(n.lhs)} {'NOT ' if n.not_ else ''}LIKE {lit(n.pattern)}"
        if isinstance(n, ast.In):
            items = ", ".join(lit(v) for v in n.sub_nodes)
            return f"{lit(n.lhs)} {'NOT ' if n.not_ else ''}IN ({items})"
        if isinstance(n, ast.Between):
            return f"{lit(n.lhs)} {'NOT ' if n.not_ else ''}BETWEEN {lit(n.low)} AND {lit(n.high)}"
        if isinstance(n, ast.IsNull):
            return f"{lit(n.lhs)} IS {'NOT ' if n.not_ else ''}NULL"
        if type(n) in _SPATIAL:
            return f"{_SPATIAL[type(n)]}({lit(n.lhs)}, {lit(n.rhs)})"
        raise InvalidParameter(f"filter operator {type(n).__name__} is not supported")

    return enc(node)


def body_filter(body: bytes) -> ast.Node:
    """Parse a CQL2 JSON request body (``POST`` with ``application/query-cql-json``)."""
    try:
        text = body.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameter(f"request body is not CQL2 JSON: {exc}") from None
    return parse_filter(text, "cql2-json")


# --- Coverages ------------------------------------------------------------------------------------

#: Parameters of a coverage request that pygeoapi's rasterio provider acts on, and the scaling
#: ours adds (``scaleSize`` is GDAL's name of ``scale-size``).
COVERAGE_PARAMS: tuple[str, ...] = ("bbox", "bbox-crs", "subset", "properties", "datetime", "f")
COVERAGE_PARAMS += ("lang", "scale-size", "scaleSize", "range-subset")
#: Other names clients give the axes of our grids' ``subset``: OGC API Coverages names a
#: geographic CRS's axes ``Lat`` and ``Lon``; pygeoapi (and the ``domainSet``) ``Long``.
SUBSET_AXIS_ALIASES = {"Lon": "Long"}
_SUBSET_AXIS = re.compile(r"(^|,)\s*([A-Za-z_][\w.-]*)\s*\(")


def subset_axes_named(subset: str) -> str:
    """``subset`` with each axis alias (:data:`SUBSET_AXIS_ALIASES`) replaced by its name.

    >>> subset_axes_named("Lon(109.3:109.4),Lat(18.3:18.4)")
    'Long(109.3:109.4),Lat(18.3:18.4)'
    """
    return _SUBSET_AXIS.sub(
        lambda m: f"{m.group(1)}{SUBSET_AXIS_ALIASES.get(m.group(2), m.group(2))}(", subset
    )


def check_coverage_params(params: Mapping[str, str]) -> dict[str, str]:
    """Check a ``/coverage`` request's parameters; a ``bbox-crs`` box becomes a CRS84 box.

    pygeoapi answers a malformed ``bbox`` with a 500 and hands ``bbox-crs`` to
    ``CRS.from_epsg``, which fails on the URIs the standard uses (another 500), and
    transforms only a box's two corners. Here a bad box or CRS is a 400 naming it,
    unknown parameters are refused, and a box in another CRS is replaced by the
    CRS84 box that covers its densified outline (pygeoapi's default CRS).

    Returns
    -------
    dict
        The parameters to pass on (unchanged when no ``bbox-crs`` was given).
    """
    unknown = sorted(set(params) - set(COVERAGE_PARAMS))
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {unknown[0]!r} for a coverage; valid: " + ", ".join(COVERAGE_PARAMS)
        )
    if "subset" in params and subset_axes_named(params["subset"]) != params["subset"]:
        params = {**params, "subset": subset_axes_named(params["subset"])}
    nums = _check_bbox_params(params)
    if nums is None:
        return dict(params)
    crs = params.get("bbox-crs")
    if len(nums) != 4:
        raise InvalidParameter(
            f"a coverage bbox has 4 numbers (no heights), got {params['bbox']!r}"
        )
    lon = 1 if crs is not None and crs.endswith(("/4326", "/4490")) else 0  # lat, lon order
    if nums[lon] > nums[lon + 2]:
        raise InvalidParameter(
            f"bbox {params['bbox']!r} has a minimum greater than its maximum (a coverage "
            "bbox cannot cross the antimeridian)"
        )
    out = dict(params)
    if crs is None or crs == SUPPORTED_CRS[0]:
        out.pop("bbox-crs", None)
        return out
    import pyproj

    t = pyproj.Transformer.from_crs("EPSG:" + crs.rsplit("/", 1)[-1], "OGC:CRS84")
    xmin, ymin, xmax, ymax = nums
    box = t.transform_bounds(xmin, ymin, xmax, ymax, densify_pts=64)  # authority order in
    if not all(math.isfinite(v) for v in box):
        raise InvalidParameter(
            f"bbox {params['bbox']!r} in bbox-crs {crs} does not transform "
            "to finite longitudes/latitudes"
        )
    out["bbox"] = ",".join(repr(float(v)) for v in box)
    del out["bbox-crs"]
    return out
