"""CQL2 (OGC 21-065r2) text and JSON encodings parsed into pygeofilter ASTs.

pygeofilter 0.4's own parsers refuse valid CQL2 and misread some of it (see
``docs/upstream/pygeofilter-cql2-text-grammar.md``): its text grammar has no ``NOT (a OR b)``,
no boolean literal as a predicate, no ``''`` or ``\\'`` inside a string, no property name of
one character, and reads ``a OR b AND c`` as ``(a OR b) AND c``; its JSON parser expects
``between``'s bounds as a nested list and knows no GeometryCollection. These parsers follow
the standard's BNF and JSON Schema and build the same pygeofilter node classes, which
:func:`layers.query.compile_where` (and pygeoapi's CRS step) take as before.

A boolean literal standing as a predicate (``TRUE``, ``NOT false``) becomes
``ast.Include`` (``not_`` set for FALSE), pygeofilter's node for a constant predicate.
``BBOX(...)`` is the polygon it covers (a geometry literal, transformed from ``filter-crs``
like the others). Functions (``CASEI``, ``ACCENTI``, the temporal ``T_*``) are
``ast.Function`` of their lower-case name; ``INTERVAL(a, b)`` is a ``values.Interval`` whose
ends are dates, datetimes, properties or ``None`` for ``'..'``.
"""

from __future__ import annotations

import datetime as dt
import re

from lark import Lark, Token, Transformer, v_args
from pygeofilter import ast, values

__all__ = ["parse_json", "parse_text"]

_GRAMMAR = r"""
?start: bool_expr

?bool_expr: bool_term
          | bool_expr _OR bool_term                     -> or_
?bool_term: bool_factor
          | bool_term _AND bool_factor                  -> and_
?bool_factor: bool_primary
            | _NOT bool_primary                         -> not_
?bool_primary: predicate
             | "(" bool_expr ")"
             | TRUE                                     -> const
             | FALSE                                    -> const
             | call                                     -> bool_call

?predicate: scalar COMP_OP scalar                       -> compare
          | scalar LIKE scalar                          -> like
          | scalar _NOT LIKE scalar                     -> not_like
          | scalar BETWEEN scalar _AND scalar           -> between
          | scalar _NOT BETWEEN scalar _AND scalar      -> not_between
          | scalar IN "(" scalar ("," scalar)* ")"      -> in_
          | scalar _NOT IN "(" scalar ("," scalar)* ")" -> not_in
          | scalar IS NULL                              -> null
          | scalar IS _NOT NULL                         -> not_null

?scalar: STRING
       | NUMBER
       | TRUE
       | FALSE
       | property
       | call
       | geometry

property: IDENT | QUOTED_IDENT
call: IDENT "(" [scalar ("," scalar)*] ")"

?geometry: point | linestring | polygon | multipoint | multilinestring | multipolygon
         | collection
point: POINT "(" coord ")"
linestring: LINESTRING "(" coords ")"
polygon: POLYGON "(" rings ")"
multipoint: MULTIPOINT "(" mp_item ("," mp_item)* ")"
?mp_item: coord | "(" coord ")"
multilinestring: MULTILINESTRING "(" rings ")"
multipolygon: MULTIPOLYGON "(" "(" rings ")" ("," "(" rings ")")* ")"
collection: GEOMETRYCOLLECTION "(" geometry ("," geometry)* ")"
rings: "(" coords ")" ("," "(" coords ")")*
coords: coord ("," coord)*
coord: NUMBER NUMBER NUMBER?

_AND.2: /AND\b/i
_OR.2: /OR\b/i
_NOT.2: /NOT\b/i
LIKE.2: /LIKE\b/i
BETWEEN.2: /BETWEEN\b/i
IN.2: /IN\b/i
IS.2: /IS\b/i
NULL.2: /NULL\b/i
TRUE.2: /TRUE\b/i
FALSE.2: /FALSE\b/i
POINT.2: /POINT\b/i
LINESTRING.2: /LINESTRING\b/i
POLYGON.2: /POLYGON\b/i
MULTIPOINT.2: /MULTIPOINT\b/i
MULTILINESTRING.2: /MULTILINESTRING\b/i
MULTIPOLYGON.2: /MULTIPOLYGON\b/i
GEOMETRYCOLLECTION.2: /GEOMETRYCOLLECTION\b/i
COMP_OP: "<>" | "<=" | ">=" | "=" | "<" | ">"
STRING: /'(?:[^'\\]|''|\\.)*'/s
NUMBER: /[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/
IDENT: /[^\W\d][\w:.]*/
QUOTED_IDENT: /"(?:[^"]|"")+"/

%import common.WS
%ignore WS
"""

#: Keywords that are not property names (a property so named must be double-quoted).
_KEYWORDS = frozenset(
    "and or not like between in is null true false point linestring polygon multipoint "
    "multilinestring multipolygon geometrycollection".split()
)

_COMPARE = {
    "=": ast.Equal,
    "<>": ast.NotEqual,
    "<": ast.LessThan,
    "<=": ast.LessEqual,
    ">": ast.GreaterThan,
    ">=": ast.GreaterEqual,
}
_SPATIAL = {
    "s_intersects": ast.GeometryIntersects,
    "s_disjoint": ast.GeometryDisjoint,
    "s_contains": ast.GeometryContains,
    "s_within": ast.GeometryWithin,
    "s_touches": ast.GeometryTouches,
    "s_crosses": ast.GeometryCrosses,
    "s_overlaps": ast.GeometryOverlaps,
    "s_equals": ast.GeometryEquals,
}
#: CQL2 text escapes in a character literal (/req/cql2-text/escaping): a quote doubled or
#: after a backslash, a backslash doubled, and the control characters. Any other backslash
#: is kept as written (it is LIKE's escape character: ``'100\%'``).
_ESCAPES = dict(zip("abtnvfr'\\", "\a\b\t\n\v\f\r'\\", strict=True))
_ESCAPE = re.compile(r"''|\\(.)", re.S)
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.I)


def _unescape(body: str) -> str:
    def sub(m: re.Match) -> str:
        if m.group(0) == "''":
            return "'"
        c = m.group(1)
        return _ESCAPES.get(c, "\\" + c)

    return _ESCAPE.sub(sub, body)


def _predicate(v):
    """A boolean literal where a predicate stands: pygeofilter's constant predicate."""
    if isinstance(v, bool):
        return ast.Include(not v)
    return v


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _temporal(name: str, args: list):
    """``DATE('…')`` or ``TIMESTAMP('…')`` as a date or an aware datetime."""
    if len(args) != 1 or not isinstance(args[0], str):
        raise ValueError(f"{name.upper()} takes one string, got {args!r}")
    text = args[0]
    if name == "date":
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(f"DATE needs YYYY-MM-DD, got {text!r}")
        return dt.date.fromisoformat(text)
    if not _TIMESTAMP.fullmatch(text):
        raise ValueError(f"TIMESTAMP needs an RFC 3339 date-time with a time zone, got {text!r}")
    return dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))


#: CQL2's temporal functions (/req/temporal-functions/temporal-functions), kept as the
#: function of that name (pygeofilter has no T_DISJOINT and reads T_INTERSECTS as overlaps).
TEMPORAL_FUNCTIONS = frozenset(
    "t_after t_before t_contains t_disjoint t_during t_equals t_finishedby t_finishes "
    "t_intersects t_meets t_metby t_overlappedby t_overlaps t_startedby t_starts".split()
)


def _instant_parameter(v):
    """An end of ``INTERVAL(...)``: ``'..'`` (open), a date or timestamp string, a
    DATE/TIMESTAMP literal, or a property."""
    if v == "..":
        return None
    if isinstance(v, str):
        return _temporal("date" if len(v) == 10 else "timestamp", [v])
    if isinstance(v, dt.date | ast.Attribute):
        return v
    raise ValueError(f"an end of INTERVAL is a date, a timestamp, '..' or a property, not {v!r}")


def _interval(args: list) -> values.Interval:
    if len(args) != 2:
        raise ValueError(f"INTERVAL takes two ends, got {len(args)}")
    return values.Interval(*(_instant_parameter(a) for a in args))


def _call(name: str, args: list):
    """A function call in a scalar position: a literal constructor or a function."""
    low = name.lower()
    if low in ("date", "timestamp"):
        return _temporal(low, args)
    if low == "interval":
        return _interval(args)
    if low in TEMPORAL_FUNCTIONS and len(args) != 2:
        raise ValueError(f"{name.upper()} takes two temporal expressions, got {len(args)}")
    if low == "bbox":
        return _bbox(args)
    if low in _SPATIAL:
        return _spatial(low, args)
    return ast.Function(low, list(args))


def _bbox(args: list) -> values.Geometry:
    """``BBOX(minx, miny, maxx, maxy)`` (or with two heights) as the polygon it covers.

    A geometry literal, so that pygeoapi transforms it from ``filter-crs`` as it does the
    others (a ``bbox`` function it left in the filter's CRS). A box whose west edge is east
    of its east edge crosses the antimeridian: the two boxes either side of it.
    """
    if len(args) not in (4, 6) or not all(
        isinstance(a, int | float) and not isinstance(a, bool) for a in args
    ):
        raise ValueError(f"BBOX takes 4 or 6 numbers, got {args!r}")
    x0, y0, x1, y1 = args if len(args) == 4 else (args[0], args[1], args[3], args[4])

    def ring(a, b):
        return [[a, y0], [b, y0], [b, y1], [a, y1], [a, y0]]

    if x0 > x1:
        coords = [[ring(x0, 180.0)], [ring(-180.0, x1)]]
        return values.Geometry({"type": "MultiPolygon", "coordinates": coords})
    return values.Geometry({"type": "Polygon", "coordinates": [ring(x0, x1)]})


def _spatial(name: str, args: list):
    if len(args) != 2:
        raise ValueError(f"{name.upper()} takes two geometries, got {len(args)} arguments")
    return _SPATIAL[name](*args)


@v_args(inline=True)
class _ToAst(Transformer):
    def or_(self, a, b):
        return ast.Or(_predicate(a), _predicate(b))

    def and_(self, a, b):
        return ast.And(_predicate(a), _predicate(b))

    def not_(self, a):
        return ast.Not(_predicate(a))

    def const(self, value):
        return ast.Include(not value)

    def bool_call(self, node):
        if isinstance(node, ast.Function) and node.name not in TEMPORAL_FUNCTIONS:
            raise ValueError(f"function {node.name.upper()} does not give a predicate here")
        return node

    def compare(self, a, op, b):
        return _COMPARE[str(op)](a, b)

    def like(self, a, _kw, b):
        return ast.Like(a, b, False, "%", "_", "\\", False)

    def not_like(self, a, _kw, b):
        return ast.Like(a, b, False, "%", "_", "\\", True)

    def between(self, a, _kw, lo, hi):
        return ast.Between(a, lo, hi, False)

    def not_between(self, a, _kw, lo, hi):
        return ast.Between(a, lo, hi, True)

    def in_(self, a, _kw, *items):
        return ast.In(a, list(items), False)

    def not_in(self, a, _kw, *items):
        return ast.In(a, list(items), True)

    def null(self, a, _is, _null):
        return ast.IsNull(a, False)

    def not_null(self, a, _is, _null):
        return ast.IsNull(a, True)

    def property(self, tok):
        if tok.type == "QUOTED_IDENT":
            return ast.Attribute(tok[1:-1].replace('""', '"'))
        return ast.Attribute(str(tok))

    def call(self, name, *args):
        # an empty argument list is one None
        return _call(str(name), [a for a in args if a is not None])

    def STRING(self, tok):
        return _unescape(tok[1:-1])

    def NUMBER(self, tok):
        return _number(tok)

    def TRUE(self, tok):
        return True

    def FALSE(self, tok):
        return False

    # geometries, as GeoJSON
    def coord(self, *nums):
        return [float(n) for n in nums]

    def coords(self, *cs):
        return list(cs)

    def rings(self, *rs):
        return list(rs)

    def point(self, _kw, c):
        return values.Geometry({"type": "Point", "coordinates": c})

    def linestring(self, _kw, cs):
        return values.Geometry({"type": "LineString", "coordinates": cs})

    def polygon(self, _kw, rs):
        return values.Geometry({"type": "Polygon", "coordinates": rs})

    def multipoint(self, _kw, *cs):
        return values.Geometry({"type": "MultiPoint", "coordinates": list(cs)})

    def multilinestring(self, _kw, rs):
        return values.Geometry({"type": "MultiLineString", "coordinates": rs})

    def multipolygon(self, _kw, *polys):
        return values.Geometry({"type": "MultiPolygon", "coordinates": list(polys)})

    def collection(self, _kw, *geoms):
        return values.Geometry(
            {"type": "GeometryCollection", "geometries": [g.geometry for g in geoms]}
        )


_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=True, transformer=_ToAst())


def parse_text(text: str) -> ast.Node:
    """Parse CQL2 text (OGC 21-065r2 §8 BNF) into a pygeofilter AST.

    Raises
    ------
    lark.exceptions.LarkError or ValueError
        Naming where the text stops being CQL2.

    Examples
    --------
    >>> parse_text("NOT (status = 'closed' OR title = 'it''s')")  # doctest: +ELLIPSIS
    <pygeofilter.ast.Not object at ...>
    >>> parse_text("TRUE")
    Include(not_=False)
    """
    node = _PARSER.parse(text)
    if isinstance(node, Token):  # a lone literal
        raise ValueError(f"{text!r} is a value, not a predicate")
    return _predicate(node)


# --- CQL2 JSON -------------------------------------------------------------------------------

_GEOJSON = frozenset(
    {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"}
)


def _json(node):  # noqa: C901 (one branch per member of the CQL2 JSON schema)
    if isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, list):
        return [_json(n) for n in node]
    if not isinstance(node, dict):
        raise ValueError(f"CQL2 JSON has no value {node!r}")
    if "property" in node:
        return ast.Attribute(node["property"])
    if "date" in node:
        return _temporal("date", [node["date"]])
    if "timestamp" in node:
        return _temporal("timestamp", [node["timestamp"]])
    if "interval" in node:
        ends = node["interval"] if isinstance(node["interval"], list) else []
        return _interval([_json(e) for e in ends])
    if "bbox" in node:
        return _bbox(list(node["bbox"]) if isinstance(node["bbox"], list) else [node["bbox"]])
    if node.get("type") in _GEOJSON and "coordinates" in node:
        return values.Geometry(node)
    if node.get("type") == "GeometryCollection" and isinstance(node.get("geometries"), list):
        return values.Geometry(node)
    if "op" not in node or not isinstance(node.get("args", []), list):
        raise ValueError(f"not a CQL2 JSON expression: {str(node)[:200]}")
    op, raw = str(node["op"]).lower(), node.get("args", [])
    args = [_json(a) for a in raw]

    def arity(n: int) -> None:
        if len(args) != n:
            raise ValueError(f"{op!r} takes {n} arguments, got {len(args)}")

    if op in ("and", "or"):
        if len(args) < 2:
            raise ValueError(f"{op!r} takes at least 2 arguments, got {len(args)}")
        kind = ast.And if op == "and" else ast.Or
        out = _predicate(args[0])
        for a in args[1:]:
            out = kind(out, _predicate(a))
        return out
    if op == "not":
        arity(1)
        return ast.Not(_predicate(args[0]))
    if op in _COMPARE:
        arity(2)
        return _COMPARE[op](*args)
    if op == "like":
        arity(2)
        return ast.Like(args[0], args[1], False, "%", "_", "\\", False)
    if op == "between":
        arity(3)
        return ast.Between(args[0], args[1], args[2], False)
    if op == "in":
        arity(2)
        if not isinstance(args[1], list):
            raise ValueError("'in' takes a value and a list of values")
        return ast.In(args[0], args[1], False)
    if op == "isnull":
        arity(1)
        return ast.IsNull(args[0], False)
    if op in _SPATIAL:
        return _spatial(op, args)
    if op in TEMPORAL_FUNCTIONS:
        arity(2)
    return ast.Function(op, args)


def parse_json(data) -> ast.Node:
    """Parse CQL2 JSON (already decoded: a dict, or a boolean) into a pygeofilter AST.

    Examples
    --------
    >>> parse_json({"op": "between", "args": [{"property": "floors"}, 2, 5]})
    Between(lhs=ATTRIBUTE floors, low=2, high=5, not_=False)
    """
    node = _json(data)
    if not isinstance(node, ast.Node | bool):
        raise ValueError(f"CQL2 JSON {str(data)[:200]} is a value, not a predicate")
    return _predicate(node)
