"""What a store is asked for: :class:`Query`, and CQL2 compiled to SQL.

A query is built once (by the provider or a library caller) from validated
parts; each store compiles it with its own :class:`Dialect`. Filters arrive as
pygeofilter ASTs (CQL2 text or JSON) and are compiled to a parameterised SQL
``WHERE`` clause: values are always passed as parameters, never formatted in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import math
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import shapely
from pygeofilter import ast, values

from layers.catalogue import Layer
from layers.cql2 import TEMPORAL_FUNCTIONS, parse_json, parse_text
from layers.errors import InvalidParameter, choices

#: Largest page a store returns in one request.
MAX_LIMIT = 10_000
#: The calendar days any date or datetime must fall in (in UTC), at intake and in every
#: query: a year like 0999 is a typing mistake, and pandas, the screens and the analytics
#: cannot hold such dates (one stored case made every supervision figure fail).
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)
#: Largest CQL2 filter accepted: predicates in all, and nesting depth (a chain of ANDs,
#: or of ORs, counts as one level). Beyond them compiling exhausts Python's stack, and
#: SQLite's parser overflows at about 30 nested AND/OR levels (45 NOTs).
FILTER_MAX_TERMS = 200
FILTER_MAX_DEPTH = 20
#: Most vertices of all geometry literals in one filter: a 2,800-vertex polygon in
#: S_TOUCHES kept PostgreSQL busy 30 s per request (no index narrows it).
FILTER_MAX_VERTICES = 500
#: Integers the stores can hold and bind (64-bit).
INT64_MAX = 2**63 - 1


@dataclass
class Query:
    """A request for features of one layer.

    Parameters
    ----------
    bbox : tuple of 4 floats, optional
        ``(minx, miny, maxx, maxy)`` in the storage CRS (CRS84).
    interval : tuple of 2 datetimes (either may be None), optional
        Closed interval on the layer's temporal field; an instant is ``(t, t)``.
    where : pygeofilter AST, optional
        CQL2 filter, already checked against the layer's fields.
    equals : dict, optional
        Property equality filters (``?category=street_light``), typed values.
    sortby : list of (name, ascending)
    properties : list of str, optional
        Properties to return (``None``: all the caller may see).
    skip_geometry : bool
    offset, limit : int
    visible : set of str, optional
        The fields the caller may see. When given, a query that names any other field
        (in ``properties``, ``sortby``, ``equals`` or the filter) is refused here, where
        the query is built, whatever route it came by: a hidden field used in a filter
        or a sort order would answer questions about its values. ``None`` (library
        callers) allows every field of the layer.
    """

    bbox: tuple[float, float, float, float] | None = None
    interval: tuple[dt.datetime | None, dt.datetime | None] | None = None
    where: ast.Node | None = None
    equals: dict[str, object] = field(default_factory=dict)
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    properties: list[str] | None = None
    skip_geometry: bool = False
    offset: int = 0
    limit: int = 100
    visible: frozenset[str] | None = None

    def __post_init__(self):
        if self.visible is not None:
            self.visible = frozenset(self.visible)
            self._refuse_hidden(self.visible)
        if self.offset < 0:
            raise InvalidParameter(f"offset must be zero or positive, got {self.offset}")
        if not 0 <= self.limit <= MAX_LIMIT:
            raise InvalidParameter(f"limit must be between 0 and {MAX_LIMIT}, got {self.limit}")
        if self.bbox is not None:
            miny, maxy = self.bbox[1], self.bbox[3]
            if miny > maxy:  # minx > maxx is a box across the antimeridian (Features §7.15.3)
                raise InvalidParameter(f"bbox {list(self.bbox)} has min greater than max")

    def named_fields(self) -> set[str]:
        """Every field this query names (returned, sorted on, compared or filtered)."""
        names = set(self.properties or ()) | {n for n, _ in self.sortby} | set(self.equals)
        if self.where is not None:
            names |= filter_properties(self.where) - GEOMETRY_NAMES
        return names

    def _refuse_hidden(self, visible: frozenset[str]) -> None:
        hidden = sorted(self.named_fields() - visible)
        if hidden:
            raise InvalidParameter(
                f"unknown property {hidden[0]!r}; the properties you may use are: "
                f"{', '.join(sorted(visible))}"
            )


#: Names a filter may use for the geometry (not a field of the catalogue).
GEOMETRY_NAMES = frozenset({"geometry", "geom"})


# --- Parsing and checking -------------------------------------------------------------------


def parse_filter(text: str, lang: str | None = None) -> ast.Node:
    """Parse a CQL2 filter in text or JSON encoding.

    Parameters
    ----------
    text : str
        The filter.
    lang : {'cql2-text', 'cql2-json', None}
        ``None`` guesses JSON when the text starts with ``{``.

    Raises
    ------
    InvalidParameter
        With the parser's own explanation of what is wrong.
    """
    langs = ("cql2-text", "cql2-json")
    if lang is not None and lang not in langs:
        raise InvalidParameter(choices(lang, langs, "filter-lang"))
    if lang is None:
        lang = "cql2-json" if text.lstrip().startswith("{") else "cql2-text"
    try:
        # our parsers of the standard's grammar and schema: pygeofilter's refuse valid CQL2
        # (docs/upstream/pygeofilter-cql2-text-grammar.md)
        node = parse_json(json.loads(text)) if lang == "cql2-json" else parse_text(text)
    except RecursionError:
        raise InvalidParameter(
            f"{lang} filter is nested too deeply; at most {FILTER_MAX_DEPTH} levels are accepted"
        ) from None
    except Exception as exc:  # the parsers raise many kinds; all mean a bad filter
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidParameter(f"malformed {lang} filter: {detail[:300]}") from None
    if not isinstance(node, ast.Node):
        raise InvalidParameter(f"{lang} filter is not a predicate: {text[:200]!r}")
    check_filter_values(node)
    return node


#: Functions of one argument that change case (CASEI is CQL2's; LOWER and UPPER SQL's).
_CASE_FUNCTIONS = ("lower", "casei", "upper", "accenti")


def has_geometry_literal(node: ast.Node) -> bool:
    """Whether a filter holds a geometry or bbox literal (spatial predicates cost most)."""
    return any(isinstance(n, values.Geometry | values.Envelope) or _is_bbox(n) for n in _walk(node))


def _not_geometry(*operands) -> None:
    """Refuse the geometry (property or literal) where a value is compared as a scalar."""
    for o in operands:
        if (
            (isinstance(o, ast.Attribute) and o.name in GEOMETRY_NAMES)
            or isinstance(o, values.Geometry | values.Envelope)
            or _is_bbox(o)
        ):
            raise InvalidParameter(
                "the geometry is compared with the spatial predicates "
                "(S_INTERSECTS, S_WITHIN, ...), not with =, <, LIKE, IN "
                "or BETWEEN"
            )


def _children(n) -> list:
    if isinstance(n, ast.Node):
        if dataclasses.is_dataclass(n):
            # every member, not get_sub_nodes(): pygeofilter's Like leaves out its pattern,
            # and a property there went unchecked (a hidden field read back by LIKE)
            return [getattr(n, f.name) for f in dataclasses.fields(n)]
        return list(n.get_sub_nodes())
    if isinstance(n, list | tuple):
        return list(n)
    if isinstance(n, values.Interval):
        return [n.start, n.end]
    return []


def _walk(node):
    """Every node, list and literal of a filter (iteratively: any depth)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(_children(n))


def filter_properties(node: ast.Node) -> set[str]:
    """Names of all properties a filter refers to."""
    return {n.name for n in _walk(node) if isinstance(n, ast.Attribute)}


def check_date[D: dt.date](value: D, what: str = "date", error: type = InvalidParameter) -> D:
    """``value`` if its calendar day is within :data:`DATE_MIN` .. :data:`DATE_MAX`.

    An aware datetime is checked on its own day and on its UTC day (the local day
    first: converting year 1 or 9999 with a large offset would overflow).

    Raises
    ------
    InvalidParameter (or ``error``)
        Naming the value and the accepted range.
    """
    day = value.date() if isinstance(value, dt.datetime) else value
    ok = DATE_MIN <= day <= DATE_MAX
    if ok and isinstance(value, dt.datetime) and value.tzinfo is not None:
        ok = DATE_MIN <= value.astimezone(dt.UTC).date() <= DATE_MAX
    if not ok:
        raise error(
            f"{what} {value.isoformat()} is outside the accepted range "
            f"{DATE_MIN.isoformat()} to {DATE_MAX.isoformat()} (in UTC)"
        )
    return value


def check_filter_values(node: ast.Node) -> None:
    """Refuse a filter the stores cannot run: too large or deep, or with a bad literal.

    Checked without recursion, so a filter of any depth gets an answer: at most
    :data:`FILTER_MAX_TERMS` predicates and :data:`FILTER_MAX_DEPTH` levels of
    nesting; integers within 64 bits; finite numbers; dates within
    :data:`DATE_MIN` .. :data:`DATE_MAX`; valid geometries with finite coordinates.

    Raises
    ------
    InvalidParameter
        Naming the limit or the literal.
    """
    terms = vertices = 0
    stack: list[tuple[object, int, type | None]] = [(node, 1, None)]
    while stack:
        n, depth, parent = stack.pop()
        if isinstance(n, ast.Attribute) and not isinstance(n.name, str):
            raise InvalidParameter(
                f"a property in the filter is named by a {type(n.name).__name__}, not a string"
            )
        if isinstance(n, ast.Node):
            if isinstance(n, ast.And | ast.Or) and type(n) is parent:
                depth -= 1  # a chain of ANDs (or ORs) is one level
            elif not isinstance(n, ast.And | ast.Or | ast.Not | ast.Attribute | ast.Function):
                terms += 1
            if terms > FILTER_MAX_TERMS:
                raise InvalidParameter(
                    f"filter has more than {FILTER_MAX_TERMS} predicates; "
                    f"at most {FILTER_MAX_TERMS} are accepted"
                )
            if depth > FILTER_MAX_DEPTH and not isinstance(n, ast.Attribute):
                raise InvalidParameter(
                    f"filter is nested more than {FILTER_MAX_DEPTH} levels "
                    f"deep; at most {FILTER_MAX_DEPTH} are accepted"
                )
            stack.extend((c, depth + 1, type(n)) for c in _children(n))
        elif isinstance(n, bool | str) or n is None:
            continue
        elif isinstance(n, int):
            if abs(n) > INT64_MAX:
                raise InvalidParameter(
                    f"integer {str(n)[:40]} in the filter is outside the "
                    f"64-bit range the stores hold (-{INT64_MAX} to "
                    f"{INT64_MAX})"
                )
        elif isinstance(n, float):
            if not math.isfinite(n):
                raise InvalidParameter(f"number {n} in the filter is not finite")
        elif isinstance(n, dt.date):
            check_date(n, "timestamp" if isinstance(n, dt.datetime) else "date")
        elif isinstance(n, values.Geometry | values.Envelope):
            vertices += _check_literal_geometry(n)
            if vertices > FILTER_MAX_VERTICES:
                raise InvalidParameter(
                    f"geometries in the filter have more than "
                    f"{FILTER_MAX_VERTICES} vertices; at most "
                    f"{FILTER_MAX_VERTICES} are accepted (simplify them)"
                )
        else:
            stack.extend((c, depth + 1, None) for c in _children(n))


def check_geographic_literals(node: ast.Node, lat_first: bool = False) -> None:
    """Refuse geometry literals outside the longitude/latitude range of a geographic CRS.

    A filter without ``filter-crs`` is in CRS84 (Features Part 3 /req/filter/filter-crs-wgs84);
    ``POINT(1000000 1000000)`` there is no place, and a 400 says so rather than an empty page
    (the standard's abstract test expects the error). ``lat_first`` for EPSG:4326 and 4490.

    Raises
    ------
    InvalidParameter
        Naming the range.
    """
    for n in _walk(node):
        if not (isinstance(n, values.Geometry | values.Envelope) or _is_bbox(n)):
            continue
        xy = shapely.get_coordinates(literal_geometry(n))
        lon, lat = (xy[:, 1], xy[:, 0]) if lat_first else (xy[:, 0], xy[:, 1])
        if len(xy) and (np.abs(lon).max() > 180 or np.abs(lat).max() > 90):
            order = "latitude, longitude" if lat_first else "longitude, latitude"
            raise InvalidParameter(
                f"a geometry in the filter is outside {order} -180..180, -90..90 of its CRS "
                "(without filter-crs: CRS84); give filter-crs for projected coordinates"
            )


def _check_literal_geometry(v) -> int:
    """Refuse an invalid or non-finite geometry literal; its number of vertices."""
    try:
        geom = literal_geometry(v)
        coords = shapely.get_coordinates(geom)
    except InvalidParameter:
        raise
    except Exception as exc:  # shapely/GEOS refuse malformed coordinates in many ways
        raise InvalidParameter(f"geometry in the filter is not valid: {exc}"[:300]) from None
    if not np.isfinite(coords).all():
        raise InvalidParameter("geometry in the filter has coordinates that are not finite")
    if not shapely.is_valid(geom):
        raise InvalidParameter(
            f"geometry in the filter is not valid: {shapely.is_valid_reason(geom)}"
        )
    return len(coords)


def check_filter(layer: Layer, node: ast.Node, allowed: set[str] | None = None) -> None:
    """Refuse a filter naming a property the layer (or the caller) does not have."""
    valid = {f.name for f in layer.fields} if allowed is None else set(allowed)
    if layer.geometry_type is not None:
        valid |= GEOMETRY_NAMES
    for name in sorted(filter_properties(node)):
        if name not in valid:
            raise InvalidParameter(
                "filter names unknown property "
                + choices(name, sorted(valid), f"queryable of {layer.id!r}").split(" is not ", 1)[0]
                + f"; queryables are: {', '.join(sorted(valid))}"
            )
    _check_date_strings(layer, node)
    _check_types(layer, node)


#: The kind of value each field type holds, for CQL2's "same type" rules.
_KINDS = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "date": "temporal",
    "datetime": "temporal",
}


def _kind(n, fields) -> str | None:
    """The kind of value an operand evaluates to (None: not known here)."""
    if isinstance(n, ast.Attribute):
        return _KINDS.get(fields[n.name].type) if n.name in fields else None
    if isinstance(n, bool):
        return "boolean"
    if isinstance(n, int | float):
        return "number"
    if isinstance(n, str):
        return "string"
    if isinstance(n, dt.date):
        return "temporal"
    if isinstance(n, ast.Function) and n.name.lower() in _CASE_FUNCTIONS:
        return "string"
    return None


def _check_types(layer: Layer, node: ast.Node) -> None:
    """Both sides of a comparison, BETWEEN, IN or LIKE are of one type (CQL2
    /req/basic-cql2/binary-comparison-predicate D, /req/advanced-comparison-operators/...).

    ``status = 5`` or ``satisfaction = 'five'`` selected nothing (SQLite compares across
    types) or failed in PostgreSQL; it is refused, naming the property and both types.
    Text compared with a date or datetime field is allowed (:func:`_check_date_strings`
    checks that it is one).
    """
    fields = layer.field_map
    for n in _walk(node):
        if isinstance(n, ast.Function) and n.name.lower() in _CASE_FUNCTIONS:
            other = {k for a in n.arguments if (k := _kind(a, fields)) not in (None, "string")}
            if other:
                raise InvalidParameter(
                    f"{n.name.upper()} takes a string, not a {' or '.join(sorted(other))}"
                )
        if type(n) in _COMPARISONS:
            operands = [n.lhs, n.rhs]
        elif isinstance(n, ast.Between):
            operands = [n.lhs, n.low, n.high]
        elif isinstance(n, ast.In) and isinstance(n.sub_nodes, list | tuple):
            operands = [n.lhs, *n.sub_nodes]
        elif isinstance(n, ast.Like):
            operands = [n.lhs, n.pattern]
        else:
            continue
        kinds: set[str] = {k for o in operands if (k := _kind(o, fields)) is not None}
        if isinstance(n, ast.Like):
            kinds.add("string")  # LIKE matches strings
        if kinds == {"temporal", "string"} and not isinstance(n, ast.Like):
            continue  # a date written as text: checked by _check_date_strings
        between = isinstance(n, ast.Between) and kinds & {"string", "boolean"}
        if len(kinds) > 1 or between:
            names = [o.name for o in operands if isinstance(o, ast.Attribute)]
            what = f"property {names[0]!r}" if names else "values"
            raise InvalidParameter(
                f"filter compares {what} of types {' and '.join(sorted(kinds))} with "
                f"{type(n).__name__.upper()}, which needs "
                + ("numbers or dates" if isinstance(n, ast.Between) else "values of one type")
                + (" (LIKE matches strings)" if isinstance(n, ast.Like) else "")
            )


def _check_date_strings(layer: Layer, node: ast.Node) -> None:
    """Text compared with a date or datetime field must be a date-time within range.

    The PostGIS store casts such text (refusing what is not a date); the GeoPackage
    compared it as text, so ``'0999-12-31'`` or ``'not a date'`` gave wrong answers.
    """
    fields = layer.field_map
    stack: list = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list | tuple):
            stack.extend(n)
            continue
        if not isinstance(n, ast.Node):
            continue
        subs = list(n.get_sub_nodes())
        if type(n) in _COMPARISONS or isinstance(n, ast.Between | ast.In):
            named = [
                a.name
                for a in subs
                if isinstance(a, ast.Attribute)
                and a.name in fields
                and fields[a.name].type in ("date", "datetime")
            ]
            for v in subs if named else ():
                if not isinstance(v, str):
                    continue
                try:
                    parse_datetime(v)
                except InvalidParameter:
                    raise
                except ValueError:
                    raise InvalidParameter(
                        f"filter compares {named[0]!r} (a {fields[named[0]].type}) with "
                        f"{v[:60]!r}, which is not an RFC 3339 date or date-time "
                        "(e.g. '2026-11-16' or TIMESTAMP('2026-11-16T08:00:00Z'))"
                    ) from None
        stack.extend(subs)


def coerce_value(layer: Layer, name: str, raw: str) -> object:
    """Turn a query-string value into the field's type, or say why it is not one."""
    f = layer.field(name)
    try:
        if f.type == "integer":
            value: object = int(raw)
        elif f.type == "number":
            value = float(raw)
        elif f.type == "boolean":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            value = raw.lower() in ("true", "1")
        elif f.type == "date":
            value = check_date(dt.date.fromisoformat(raw), name).isoformat()
        elif f.type == "datetime":
            value = format_datetime(parse_datetime(raw))
        else:
            value = raw
    except InvalidParameter:
        raise
    except ValueError:
        raise InvalidParameter(f"{name}={raw!r} is not a valid {f.type}") from None
    # 64 bits is what SQLite and PostgreSQL can bind
    if f.type == "integer" and isinstance(value, int) and abs(value) > INT64_MAX:
        raise InvalidParameter(
            f"{name}={raw[:40]!r} is outside the 64-bit range the stores "
            f"hold (-{INT64_MAX} to {INT64_MAX})"
        )
    if f.type == "number" and isinstance(value, float) and not math.isfinite(value):
        raise InvalidParameter(f"{name}={raw!r} is not a finite number")
    codes = f.code_values
    if codes is not None and value not in codes:
        raise InvalidParameter(choices(value, codes, f"{name} code"))
    return value


def parse_datetime(text: str) -> dt.datetime:
    """RFC 3339 date-time (or date) to an aware UTC datetime.

    Raises
    ------
    ValueError
        Not a date-time; :class:`InvalidParameter` (a ValueError too) outside
        :data:`DATE_MIN` .. :data:`DATE_MAX`.
    """
    t = text.strip()
    if len(t) == 10:
        d = check_date(dt.date.fromisoformat(t))
        return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
    value = dt.datetime.fromisoformat(t.replace("z", "Z"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return check_date(value, "datetime").astimezone(dt.UTC)


def format_datetime(value: dt.datetime) -> str:
    """The stored form of a datetime: UTC with milliseconds and ``Z``, as GeoPackage requires.

    Examples
    --------
    >>> format_datetime(dt.datetime(2026, 11, 16, 8, 0, tzinfo=dt.UTC))
    '2026-11-16T08:00:00.000Z'
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    v = value.astimezone(dt.UTC)
    # always four-digit years (strftime's %Y gives '999' for year 999)
    return f"{v.year:04d}-" + v.strftime("%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


def parse_interval(text: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """An OGC API ``datetime`` value: an instant or ``start/end`` with ``..`` for open ends."""
    try:
        if "/" in text:
            start, end = text.split("/", 1)
            lo = None if start in ("..", "") else parse_datetime(start)
            hi = None if end in ("..", "") else parse_datetime(end)
            if lo is None and hi is None:
                raise ValueError
            if lo is not None and hi is not None and lo > hi:
                raise InvalidParameter(f"datetime interval {text!r} ends before it starts")
            if hi is not None and len(end.strip()) == 10:  # a date end covers the whole day
                hi = hi + dt.timedelta(days=1) - dt.timedelta(seconds=1)
            return lo, hi
        t = parse_datetime(text)
        if len(text.strip()) == 10:
            return t, t + dt.timedelta(days=1) - dt.timedelta(seconds=1)
        return t, t
    except InvalidParameter:
        raise
    except ValueError:
        raise InvalidParameter(
            f"datetime {text!r} is not an RFC 3339 instant or interval (e.g. "
            "2026-11-16T00:00:00Z/2026-11-22T23:59:59Z or 2026-11-16/..)"
        ) from None


# --- Compiling to SQL ------------------------------------------------------------------------


class Dialect:
    """How one SQL engine spells parameters, geometry literals and spatial predicates."""

    param = "?"

    def column(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def geometry_literal(self, geom) -> tuple[str, list]:
        raise NotImplementedError

    def spatial(self, op: str, column: str, geom) -> tuple[str, list]:
        raise NotImplementedError

    def casefold(self, sql: str) -> str:
        """CQL2's CASEI of an SQL expression: Unicode full case folding.

        This default is PostgreSQL's (:func:`casefold_sql`); an engine whose ``lower`` is
        ASCII only (SQLite) overrides it with a registered function (:func:`casefold`).
        """
        return casefold_sql(sql)

    def accenti(self, sql: str) -> str:
        """CQL2's ACCENTI of an SQL expression (:func:`accenti`); PostgreSQL's by default
        (:func:`accenti_sql`), SQLite's a registered function."""
        return accenti_sql(sql)

    def like(self, column: str, nocase: bool) -> str:
        if nocase:
            return f"lower({column}) LIKE lower({self.param}) ESCAPE '\\'"
        return f"{column} LIKE {self.param} ESCAPE '\\'"

    def value(self, v):
        """A literal as it is stored (datetimes as the stored text)."""
        if isinstance(v, dt.datetime):
            return format_datetime(v)
        if isinstance(v, dt.date):
            return v.isoformat()
        return v


def casefold(value):
    """Unicode full case folding (CQL2 CASEI) of a value, ``None`` kept: the SQL function.

    >>> casefold("STRAẞE"), casefold(None)
    ('strasse', None)
    """
    return value.casefold() if isinstance(value, str) else value


def accenti(value):
    """CQL2 ACCENTI of a value, ``None`` kept: the SQL function.

    Unicode normalization without the accents: decomposed (NFD), its nonspacing marks
    (category Mn) dropped, composed again (NFC, so Hangul syllables stay whole).

    >>> accenti("Crème Brûlée"), accenti(None)
    ('Creme Brulee', None)
    """
    if not isinstance(value, str):
        return value
    nfd = unicodedata.normalize("NFD", value)
    bare = "".join(c for c in nfd if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", bare)


@functools.cache
def _accents() -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """For SQL ``translate``: every character :func:`accenti` changes to one other character
    (``from`` and ``to``), then every nonspacing mark (in ``from`` only: removed); and the
    few it changes to several (musical symbols, Kannada OO), for ``replace``."""
    src, dst, marks, many = [], [], [], []
    for i in range(0x110000):
        if 0xD800 <= i <= 0xDFFF:
            continue
        c = chr(i)
        if unicodedata.category(c) == "Mn":
            marks.append(c)
            continue
        bare = accenti(c)
        if bare != c and len(bare) == 1:
            src.append(c)
            dst.append(bare)
        elif bare != c:
            many.append((c, bare))
    return "".join(src) + "".join(marks), "".join(dst), tuple(many)


def accenti_sql(sql: str) -> str:
    """CQL2 ACCENTI of an SQL expression in PostgreSQL: ``translate`` of each accented
    character to its base letter, nonspacing marks removed (:func:`_accents`). None of them
    is a quote, a backslash or ``%``."""
    src, dst, many = _accents()
    for c, bare in many:
        sql = f"replace({sql}, '{c}', '{bare}')"
    return f"translate({sql}, '{src}', '{dst}')"


@functools.cache
def _folds() -> tuple[tuple[tuple[str, str], ...], str, str, tuple[tuple[str, str], ...]]:
    """What ``lower()`` does not do of full case folding: the characters whose lowercase is
    several (``İ``: folded before ``lower()``, which would drop its dot); then those
    ``lower()`` leaves that fold to one character (``from``, ``to``, for SQL ``translate``)
    and those that fold to several."""
    before, src, dst, many = [], [], [], []
    for i in range(0x110000):
        if 0xD800 <= i <= 0xDFFF:
            continue
        c = chr(i)
        f = c.casefold()
        if len(c.lower()) > 1:
            before.append((c, f))
        if c.lower() != c or f == c:
            continue
        if len(f) == 1:
            src.append(c)
            dst.append(f)
        else:
            many.append((c, f))
    return tuple(before), "".join(src), "".join(dst), tuple(many)


def casefold_sql(sql: str) -> str:
    """Unicode full case folding of an SQL expression in PostgreSQL.

    ``lower()`` (Unicode-aware under a UTF-8 locale), then ``translate`` of the characters
    that fold to another one (``ς`` → ``σ``, ``ſ`` → ``s``, Cherokee small letters) and a
    ``replace`` of each that folds to several (``ß`` → ``ss``, ``ﬁ`` → ``fi``); ``İ`` is
    folded first. None of them is a quote, a backslash or ``%``.
    """
    before, src, dst, many = _folds()
    for c, f in before:
        sql = f"replace({sql}, '{c}', '{f}')"
    out = f"translate(lower({sql}), '{src}', '{dst}')"
    for c, f in many:
        out = f"replace({out}, '{c}', '{f}')"
    return out


_COMPARISONS = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}

_SPATIAL = {
    ast.GeometryIntersects: "intersects",
    ast.GeometryDisjoint: "disjoint",
    ast.GeometryContains: "contains",
    ast.GeometryWithin: "within",
    ast.GeometryTouches: "touches",
    ast.GeometryCrosses: "crosses",
    ast.GeometryOverlaps: "overlaps",
    ast.GeometryEquals: "equals",
}


def _is_bbox(n) -> bool:
    return isinstance(n, ast.Function) and n.name.lower() == "bbox"


def literal_geometry(v) -> shapely.Geometry:
    """A pygeofilter geometry, envelope or ``BBOX(...)`` value as a shapely geometry."""
    if _is_bbox(v):
        args = v.arguments
        if len(args) in (4, 6) and all(isinstance(a, int | float) for a in args):
            return box_geometry(*(args if len(args) == 4 else (*args[:2], *args[3:5])))
        raise InvalidParameter(f"BBOX needs 4 (or 6) numbers, got {args!r}")
    if isinstance(v, values.Geometry):
        return shapely.geometry.shape(v.geometry)
    if isinstance(v, values.Envelope):
        # pygeofilter's CQL2 JSON parser fills Envelope(x1, x2, y1, y2) positionally from
        # [minx, miny, maxx, maxy], so x2 holds miny and y1 holds maxx.
        return box_geometry(v.x1, v.x2, v.y1, v.y2)
    raise InvalidParameter(f"spatial predicate needs a geometry literal, got {v!r}")


def box_geometry(minx: float, miny: float, maxx: float, maxy: float) -> shapely.Geometry:
    """A bounding box as a geometry; ``minx > maxx`` is the box across the antimeridian
    (OGC API Features §7.15.3), the two boxes either side of it.

    Examples
    --------
    >>> box_geometry(170, -10, -170, 10).geom_type
    'MultiPolygon'
    >>> box_geometry(170, -10, -170, 10).bounds
    (-180.0, -10.0, 180.0, 10.0)
    """
    if minx > maxx:
        return shapely.MultiPolygon(
            [shapely.box(minx, miny, 180.0, maxy), shapely.box(-180.0, miny, maxx, maxy)]
        )
    return shapely.box(minx, miny, maxx, maxy)


def compile_where(
    node: ast.Node, layer: Layer, dialect: Dialect, geom_column: str = "geom"
) -> tuple[str, list]:
    """Compile a pygeofilter AST into ``(sql, params)`` for ``dialect``.

    Raises
    ------
    InvalidParameter
        For an operator the stores do not implement (it is refused, not ignored).
    """
    fields = layer.field_map
    p = dialect.param
    check_filter_values(node)  # also ASTs parsed elsewhere (pygeoapi's CQL2 JSON body)

    def operand(n) -> tuple[str, list]:
        if isinstance(n, ast.Attribute):
            if n.name in ("geometry", "geom"):
                return dialect.column(geom_column), []
            if n.name not in fields:
                raise InvalidParameter(choices(n.name, list(fields), f"property of {layer.id!r}"))
            return dialect.column(n.name), []
        if isinstance(n, values.Geometry | values.Envelope) or _is_bbox(n):
            return dialect.geometry_literal(literal_geometry(n))
        if isinstance(n, ast.Function):
            fn = n.name.lower()
            if fn in _CASE_FUNCTIONS and len(n.arguments) == 1:
                arg = n.arguments[0]
                if fn in ("casei", "accenti") and isinstance(arg, str):  # here, exactly
                    return p, [casefold(arg) if fn == "casei" else accenti(arg)]
                s, ps = operand(arg)
                if fn == "casei":
                    return dialect.casefold(s), ps
                if fn == "accenti":
                    return dialect.accenti(s), ps
                return f"{'upper' if fn == 'upper' else 'lower'}({s})", ps
            raise InvalidParameter(
                f"filter function {n.name!r} is not supported; supported: CASEI, ACCENTI, LOWER, "
                "UPPER, BBOX, DATE, TIMESTAMP, INTERVAL"
            )
        if isinstance(n, ast.Node):
            return visit(n)
        if isinstance(n, bool | int | float | str | dt.date | dt.datetime):
            return p, [dialect.value(n)]
        raise InvalidParameter(f"unsupported filter operand {n!r}")

    def dated(*ops) -> list:
        """Text compared with a date or datetime property as the value it names, which each
        store compares as it stores it (the GeoPackage compared ``'…08:00:00Z'`` as text
        with its stored ``'…08:00:00.000Z'``, and missed it)."""
        types = {
            fields[o.name].type for o in ops if isinstance(o, ast.Attribute) and o.name in fields
        }
        try:
            if "datetime" in types:
                return [parse_datetime(o) if isinstance(o, str) else o for o in ops]
            if "date" in types:
                return [
                    dt.date.fromisoformat(o.strip())
                    if isinstance(o, str) and len(o.strip()) == 10
                    else o
                    for o in ops
                ]
        except InvalidParameter:
            raise
        except ValueError:
            raise InvalidParameter(
                f"filter compares a {' or '.join(sorted(types))} property with text that is not "
                "an RFC 3339 date or date-time (e.g. '2026-11-16' or '2026-11-16T08:00:00Z')"
            ) from None
        return list(ops)

    def instant(v, open_at: int) -> tuple[str, list] | int:
        """One end of a temporal operand as SQL, or ``open_at`` (-1: -inf, 1: +inf) for '..'."""
        if v is None:
            return open_at
        if isinstance(v, ast.Attribute) and v.name in fields:
            if fields[v.name].type not in ("date", "datetime"):
                raise InvalidParameter(
                    f"temporal functions compare dates and times; {v.name!r} is a "
                    f"{fields[v.name].type}"
                )
            return operand(v)
        if isinstance(v, dt.date | ast.Attribute):
            return operand(v)  # a literal, or the refusal of an unknown property
        raise InvalidParameter(
            "temporal functions take dates, timestamps, intervals or date/time properties, "
            f"not {v!r}"[:200]
        )

    def temporal(fn: str, args: list) -> tuple[str, list]:
        """CQL2's temporal functions (OGC 21-065r2, Allen's relations) on [start, end]: an
        instant is its own start and end; an open end ('..') is -inf or +inf."""
        if len(args) != 2:
            raise InvalidParameter(f"{fn.upper()} takes two temporal expressions")

        def ends(v):
            if isinstance(v, values.Interval):
                return instant(v.start, -1), instant(v.end, 1)
            if v is None:
                raise InvalidParameter("'..' is an end of an INTERVAL, not an instant")
            one = instant(v, 0)
            return one, one

        (xs, xe), (ys, ye) = ends(args[0]), ends(args[1])
        # a property that is NULL makes the operand, and so the predicate, NULL (an
        # INTERVAL(reported_at, closed_at) of a case not closed is no interval)
        columns = [
            operand(e)[0]
            for v in args
            for e in ((v.start, v.end) if isinstance(v, values.Interval) else (v,))
            if isinstance(e, ast.Attribute)
        ]

        def cmp(a, op: str, b) -> tuple[str, list]:
            if not isinstance(a, int) and not isinstance(b, int):
                return f"({a[0]} {op} {b[0]})", a[1] + b[1]
            # an open end: its place decides, and a NULL on the other side stays NULL
            ra, rb = (a if isinstance(a, int) else 0), (b if isinstance(b, int) else 0)
            holds = {"<": ra < rb, ">": ra > rb, "=": ra == rb, "<=": ra <= rb, ">=": ra >= rb}
            other = b if isinstance(a, int) else a
            if isinstance(other, int):
                return ("(1 = 1)" if holds[op] else "(1 = 0)"), []
            same = "=" if holds[op] else "<>"
            return f"({other[0]} {same} {other[0]})", other[1] + other[1]

        def all_of(*parts) -> tuple[str, list]:
            sql = "(" + " AND ".join(q for q, _ in parts) + ")"
            return sql, [v for _, ps in parts for v in ps]

        relations = {
            "t_after": lambda: cmp(xs, ">", ye),
            "t_before": lambda: cmp(xe, "<", ys),
            "t_contains": lambda: all_of(cmp(xs, "<", ys), cmp(xe, ">", ye)),
            "t_during": lambda: all_of(cmp(xs, ">", ys), cmp(xe, "<", ye)),
            "t_equals": lambda: all_of(cmp(xs, "=", ys), cmp(xe, "=", ye)),
            "t_finishedby": lambda: all_of(cmp(xs, "<", ys), cmp(xe, "=", ye)),
            "t_finishes": lambda: all_of(cmp(xs, ">", ys), cmp(xe, "=", ye)),
            "t_intersects": lambda: all_of(cmp(xs, "<=", ye), cmp(xe, ">=", ys)),
            "t_meets": lambda: cmp(xe, "=", ys),
            "t_metby": lambda: cmp(xs, "=", ye),
            "t_overlappedby": lambda: all_of(cmp(xs, ">", ys), cmp(xs, "<", ye), cmp(xe, ">", ye)),
            "t_overlaps": lambda: all_of(cmp(xs, "<", ys), cmp(xe, ">", ys), cmp(xe, "<", ye)),
            "t_startedby": lambda: all_of(cmp(xs, "=", ys), cmp(xe, ">", ye)),
            "t_starts": lambda: all_of(cmp(xs, "=", ys), cmp(xe, "<", ye)),
        }
        if fn == "t_disjoint":
            q, ps = relations["t_intersects"]()
            q = f"(NOT {q})"
        else:
            q, ps = relations[fn]()
        if columns:
            nulls = " OR ".join(f"{c} IS NULL" for c in dict.fromkeys(columns))
            q = f"(CASE WHEN {nulls} THEN NULL ELSE {q} END)"
        return q, ps

    def visit(n) -> tuple[str, list]:
        if isinstance(n, ast.Function) and n.name.lower() in TEMPORAL_FUNCTIONS:
            return temporal(n.name.lower(), list(n.arguments))
        if isinstance(n, ast.And | ast.Or):
            # a chain of ANDs (or ORs) as one flat list: SQLite's parser overflows on
            # about 100 nested parentheses, and the chain's terms keep their order
            kind, parts, ps, todo = type(n), [], [], [n]
            while todo:
                m = todo.pop()
                if type(m) is kind:
                    todo += [m.rhs, m.lhs]
                else:
                    ms, mp = visit(m)
                    parts.append(ms)
                    ps += mp
            return "(" + (" AND " if kind is ast.And else " OR ").join(parts) + ")", ps
        if isinstance(n, ast.Not):
            s, ps = visit(n.sub_node)
            return f"(NOT {s})", ps
        if type(n) in _COMPARISONS:
            _not_geometry(n.lhs, n.rhs)
            lhs, rhs = dated(n.lhs, n.rhs)
            ls, lp = operand(lhs)
            rs, rp = operand(rhs)
            return f"({ls} {_COMPARISONS[type(n)]} {rs})", lp + rp
        if isinstance(n, ast.Like):
            # CQL2 patterns use SQL's own wildcards (% and _) and a backslash escape.
            pat = n.pattern
            if not (
                isinstance(pat, str)
                or (
                    isinstance(pat, ast.Function)
                    and pat.name.lower() in _CASE_FUNCTIONS
                    and len(pat.arguments) == 1
                    and isinstance(pat.arguments[0], str)
                )
            ):
                raise InvalidParameter(
                    "the pattern of LIKE must be a string (or CASEI, LOWER "
                    f"or UPPER of one), got {pat!r}"[:300]
                )
            _not_geometry(n.lhs)
            col, cp = operand(n.lhs)
            pat_sql, pp = operand(pat)
            # the dialect's last parameter is the pattern's (the column may hold others)
            head, _, tail = dialect.like(col, n.nocase).rpartition(p)
            sql = head + pat_sql + tail
            sql = f"(NOT {sql})" if n.not_ else sql
            return sql, cp + pp
        if isinstance(n, ast.In):
            if not isinstance(n.sub_nodes, list | tuple) or not n.sub_nodes:
                raise InvalidParameter("IN needs a non-empty list of values")
            _not_geometry(n.lhs, *n.sub_nodes)
            lhs, *items = dated(n.lhs, *n.sub_nodes)
            col, cp = operand(lhs)
            parts, ps = [], []
            for item in items:
                s, sp = operand(item)
                parts.append(s)
                ps += sp
            neg = "NOT " if n.not_ else ""
            return f"({col} {neg}IN ({', '.join(parts)}))", cp + ps
        if isinstance(n, ast.Between):
            _not_geometry(n.lhs, n.low, n.high)
            lhs, low, high = dated(n.lhs, n.low, n.high)
            col, cp = operand(lhs)
            lo, lp = operand(low)
            hi, hp = operand(high)
            neg = "NOT " if n.not_ else ""
            return f"({col} {neg}BETWEEN {lo} AND {hi})", cp + lp + hp
        if isinstance(n, ast.IsNull):
            if not isinstance(n.lhs, ast.Attribute | ast.Function):
                raise InvalidParameter(f"IS NULL applies to a property, not to {n.lhs!r}"[:200])
            col, cp = operand(n.lhs)
            return f"({col} IS {'NOT ' if n.not_ else ''}NULL)", cp
        if type(n) in _SPATIAL:
            lhs, rhs, op = n.lhs, n.rhs, _SPATIAL[type(n)]
            if isinstance(lhs, values.Geometry | values.Envelope) or _is_bbox(lhs):  # swap
                lhs, rhs = rhs, lhs
                op = {"contains": "within", "within": "contains"}.get(op, op)
            if not (isinstance(lhs, ast.Attribute) and lhs.name in ("geometry", "geom")):
                raise InvalidParameter("spatial predicates compare the geometry with a literal")
            if layer.geometry_type is None:
                raise InvalidParameter(f"collection {layer.id!r} has no geometry to filter on")
            return dialect.spatial(op, dialect.column(geom_column), literal_geometry(rhs))
        if isinstance(n, ast.Include):  # a boolean literal as a predicate (TRUE, NOT FALSE)
            return ("(1 = 0)" if n.not_ else "(1 = 1)"), []
        if isinstance(n, ast.Attribute | bool):
            s, ps = operand(n)
            return f"({s})", ps
        name = type(n).__name__
        raise InvalidParameter(
            f"filter operator {name} is not supported; supported: comparisons, AND/OR/NOT, "
            "LIKE, IN, BETWEEN, IS NULL, S_INTERSECTS, S_DISJOINT, S_CONTAINS, S_WITHIN, "
            "S_TOUCHES, S_CROSSES, S_OVERLAPS, S_EQUALS"
        )

    return visit(node)
