"""CQL2 (OGC 21-065r2, Common Query Language 1.0), requirement by requirement, on both stores.

Requirement texts: ``cql2/standard/requirements/`` of opengeospatial/ogcapi-features (the
classes' requirement files; the stored copy of ``cql2-text/REQ_basic-cql2.adoc`` is missing,
its id is the standard's ``/req/cql2-text/basic-cql2``). Every filter is sent as CQL2 text
(``filter-lang=cql2-text`` and the default), as CQL2 JSON in the query string and as a
CQL2 JSON ``POST`` body, and its result is compared with the same predicate computed from
the sample data with pandas and shapely (:func:`check`). SQL's three-valued logic is the
standard's: a comparison with ``NULL`` is ``NULL``, and ``NOT NULL`` is ``NULL``: such
features are in neither the result of a predicate nor of its negation.
"""

import json

import numpy as np
import pandas as pd
import pytest
import requests
import shapely

from layers.catalogue import LAYERS

pytestmark = pytest.mark.both_stores  # GeoPackage and PostGIS (tests/stores.py)

_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"

#: Conformance classes tested here -> every requirement of each (from the standard's text:
#: OGC 21-065r2, CQL2 1.0 §7 and §8), one test or more per requirement.
CONFORMANCE = {
    _CQL2 + "basic-cql2": (
        "/req/basic-cql2/cql2-filter",
        "/req/basic-cql2/property",
        "/req/basic-cql2/binary-comparison-predicate",
        "/req/basic-cql2/null-predicate",
    ),
    _CQL2 + "advanced-comparison-operators": (
        "/req/advanced-comparison-operators/like-predicate",
        "/req/advanced-comparison-operators/between-predicate",
        "/req/advanced-comparison-operators/in-predicate",
    ),
    _CQL2 + "case-insensitive-comparison": ("/req/case-insensitive-comparison/casei-function",),
    _CQL2 + "accent-insensitive-comparison": (
        "/req/accent-insensitive-comparison/accenti-function",
    ),
    _CQL2 + "temporal-functions": (
        "/req/temporal-functions/temporal-functions",
        "/req/temporal-functions/temporal-predicates",
    ),
    _CQL2 + "basic-spatial-functions": (
        "/req/basic-spatial-functions/spatial-functions",
        "/req/basic-spatial-functions/spatial-predicate",
    ),
    _CQL2 + "basic-spatial-functions-plus": (
        "/req/basic-spatial-functions-plus/spatial-data-types",
    ),
    _CQL2 + "spatial-functions": (
        "/req/spatial-functions/spatial-functions",
        "/req/spatial-functions/spatial-data-types",
    ),
    _CQL2 + "cql2-text": (
        "/req/cql2-text/basic-cql2",
        "/req/cql2-text/advanced-comparison-operators",
        "/req/cql2-text/case-insensitive-comparison",
        "/req/cql2-text/basic-spatial-functions",
        "/req/cql2-text/basic-spatial-functions-plus",
        "/req/cql2-text/spatial-functions",
        "/req/cql2-text/temporal-functions",
        "/req/cql2-text/accent-insensitive-comparison",
        "/req/cql2-text/escaping",
    ),
    _CQL2 + "cql2-json": (
        "/req/cql2-json/basic-cql2",
        "/req/cql2-json/advanced-comparison-operators",
        "/req/cql2-json/case-insensitive-comparison",
        "/req/cql2-json/basic-spatial-functions",
        "/req/cql2-json/basic-spatial-functions-plus",
        "/req/cql2-json/spatial-functions",
        "/req/cql2-json/temporal-functions",
        "/req/cql2-json/accent-insensitive-comparison",
    ),
}


# --- the harness -------------------------------------------------------------------------------


def P(name):  # noqa: N802 - reads as in the standard's JSON examples
    return {"property": name}


def op(name, *args):
    return {"op": name, "args": list(args)}


def _ids(r: requests.Response, what: str) -> list:
    assert r.status_code == 200, (what, r.status_code, r.text[:300])
    fc = r.json()
    assert fc["numberMatched"] == fc["numberReturned"] == len(fc["features"]), what
    return sorted(f["id"] for f in fc["features"])


def run(server, lid, text=None, js=None) -> dict[str, list]:
    """The ids a filter selects, for each way of sending it (text and JSON must both agree)."""
    base = {"f": "json", "limit": 10000, "skipGeometry": "true", "properties": LAYERS[lid].key}
    url = f"{server.url}/collections/{lid}/items"
    got = {}
    if text is not None:
        got["text"] = _ids(requests.get(url, params={**base, "filter": text}, timeout=60), text)
        params = {**base, "filter": text, "filter-lang": "cql2-text"}
        got["text, filter-lang"] = _ids(requests.get(url, params=params, timeout=60), text)
    if js is not None:
        body = json.dumps(js)
        params = {**base, "filter": body, "filter-lang": "cql2-json"}
        got["json"] = _ids(requests.get(url, params=params, timeout=60), body)
        r = requests.post(
            url,
            params=base,
            data=body,
            headers={"Content-Type": "application/query-cql-json"},
            timeout=60,
        )
        got["json, POST"] = _ids(r, body)
    return got


def check(server, frame, lid, mask, text=None, js=None, nonempty=True) -> None:
    """The filter selects exactly the features where ``mask`` (computed from the sample) holds."""
    mask = pd.Series(mask, index=frame.index).fillna(False).astype(bool)
    want = sorted(frame.loc[mask, LAYERS[lid].key].tolist())
    if nonempty:
        assert want, f"the sample has no feature where {text or js} holds: a weak test"
    for how, got in run(server, lid, text, js).items():
        assert got == want, (how, text or js, len(got), len(want))


def refused(server, lid, text=None, js=None) -> None:
    """Each encoding of the filter is a 400 naming the filter."""
    url = f"{server.url}/collections/{lid}/items"
    tries = []
    if text is not None:
        tries.append(requests.get(url, params={"filter": text}, timeout=30))
    if js is not None:
        body = json.dumps(js)
        tries.append(
            requests.get(url, params={"filter": body, "filter-lang": "cql2-json"}, timeout=30)
        )
        tries.append(
            requests.post(
                url, data=body, headers={"Content-Type": "application/query-cql-json"}, timeout=30
            )
        )
    for r in tries:
        assert r.status_code == 400, (text or js, r.status_code, r.text[:300])


@pytest.fixture(scope="module")
def inc(sample_data):
    return sample_data["incidents"]


# --- Basic CQL2 -------------------------------------------------------------------------------


def test_req_basic_cql2_cql2_filter_logical_operators(live_server, inc):
    """/req/basic-cql2/cql2-filter: AND, OR, NOT over any boolean expression, with CQL2's
    precedence (NOT, then AND, then OR) and parentheses. pygeofilter's grammar refused
    ``NOT ( ... )`` over AND/OR (issue 17) and read ``a OR b AND c`` as ``(a OR b) AND c``."""
    s = inc["status"]
    closed = op("=", P("status"), "closed")
    returned = op("=", P("status"), "returned")
    check(
        live_server,
        inc,
        "incidents",
        ~s.isin(["closed", "returned"]),
        "NOT (status = 'closed' OR status = 'returned')",
        op("not", op("or", closed, returned)),
    )
    a, b = inc["channel"] == "wechat", inc["territorial"]
    check(
        live_server,
        inc,
        "incidents",
        ~(a & b),
        "NOT (channel = 'wechat' AND territorial = true)",
        op("not", op("and", op("=", P("channel"), "wechat"), op("=", P("territorial"), True))),
    )
    # AND binds tighter than OR; parentheses change it
    c = inc["priority"] == "urgent"
    check(
        live_server,
        inc,
        "incidents",
        (s == "closed") | (a & c),
        "status = 'closed' OR channel = 'wechat' AND priority = 'urgent'",
        op(
            "or",
            closed,
            op("and", op("=", P("channel"), "wechat"), op("=", P("priority"), "urgent")),
        ),
    )
    check(
        live_server,
        inc,
        "incidents",
        ((s == "closed") | a) & c,
        "(status = 'closed' OR channel = 'wechat') AND priority = 'urgent'",
        op(
            "and",
            op("or", closed, op("=", P("channel"), "wechat")),
            op("=", P("priority"), "urgent"),
        ),
    )
    # NOT applies to the predicate after it, not to the rest of the chain
    check(
        live_server,
        inc,
        "incidents",
        ~a & (s == "evaluated"),
        "NOT channel = 'wechat' AND status = 'evaluated'",
        op("and", op("not", op("=", P("channel"), "wechat")), op("=", P("status"), "evaluated")),
    )


def test_req_basic_cql2_cql2_filter_boolean_literals(live_server, inc):
    """/req/basic-cql2/cql2-filter: a boolean literal is a boolean expression (``TRUE``,
    ``NOT false``), and a value compared with a boolean property; all gave 400 (issue 17)."""
    everything = pd.Series(True, index=inc.index)
    check(live_server, inc, "incidents", everything, "TRUE", True)
    check(live_server, inc, "incidents", everything, "NOT false", op("not", False))
    check(live_server, inc, "incidents", ~everything, "FALSE", False, nonempty=False)
    check(live_server, inc, "incidents", ~everything, "NOT TRUE", op("not", True), nonempty=False)
    check(
        live_server,
        inc,
        "incidents",
        inc["territorial"],
        "territorial = true",
        op("=", P("territorial"), True),
    )
    check(
        live_server,
        inc,
        "incidents",
        ~inc["territorial"] & (inc["status"] == "returned"),
        "territorial = FALSE AND status = 'returned' AND TRUE",
        op("and", op("=", P("territorial"), False), op("=", P("status"), "returned"), True),
    )


def test_req_basic_cql2_property_is_a_queryable(live_server):
    """/req/basic-cql2/property A: a property name must be a queryable; any other is a 400
    (also one hidden from the caller: ``reporter_phone`` is not a public queryable)."""
    for name in ("this_is_not_a_queryable", "reporter_phone"):
        refused(live_server, "incidents", f"{name} = 'x'", op("=", P(name), "x"))
    r = requests.get(
        f"{live_server.url}/collections/incidents/items",
        params={"filter": "this_is_not_a_queryable = 'x'"},
        timeout=30,
    )
    assert "this_is_not_a_queryable" in r.json()["description"]


def test_req_basic_cql2_property_evaluates_to_its_value_or_null(live_server, inc):
    """/req/basic-cql2/property B: a property evaluates to its value, or NULL where unset
    (``satisfaction`` is unset on unevaluated cases: in neither ``= 5`` nor ``<> 5``)."""
    sat = inc["satisfaction"]
    assert sat.isna().any()
    check(
        live_server, inc, "incidents", sat == 5, "satisfaction = 5", op("=", P("satisfaction"), 5)
    )
    check(
        live_server,
        inc,
        "incidents",
        sat.notna() & (sat != 5),
        "satisfaction <> 5",
        op("<>", P("satisfaction"), 5),
    )


_OPS = {
    "=": np.equal,
    "<>": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


@pytest.mark.parametrize("sym", list(_OPS))
def test_req_basic_cql2_binary_comparison_predicate(live_server, sample_data, sym):
    """/req/basic-cql2/binary-comparison-predicate A, B: each operator on numbers, strings
    and timestamps is TRUE exactly where the comparison holds, FALSE elsewhere."""
    b = sample_data["building_population"]
    floors = b["floors"].astype(float)
    check(
        live_server,
        b,
        "building_population",
        _OPS[sym](floors, 6) & floors.notna(),
        f"floors {sym} 6",
        op(sym, P("floors"), 6),
    )
    c = sample_data["communities"]
    check(
        live_server,
        c,
        "communities",
        _OPS[sym](c["code"], "460204002010"),
        f"code {sym} '460204002010'",
        op(sym, P("code"), "460204002010"),
    )
    inc = sample_data["incidents"]
    t = inc["reported_at"].iloc[2800]  # a time some case was reported at
    assert t.microsecond == 0
    ts = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    check(
        live_server,
        inc,
        "incidents",
        _OPS[sym](inc["reported_at"], t),
        f"reported_at {sym} TIMESTAMP('{ts}')",
        op(sym, P("reported_at"), {"timestamp": ts}),
    )


#: The abstract test's values by queryable type (OGC 21-065r2 A.3.2 /conf/basic-cql2/comparison).
_ATS_VALUES = {
    "string": ("'foo'", "foo"),
    "boolean": ("true", True),
    "number": ("3.14", 3.14),
    "integer": ("1", 1),
    "date-time": ("TIMESTAMP('2022-04-14T14:48:46Z')", pd.Timestamp("2022-04-14T14:48:46Z")),
    "date": ("DATE('2022-04-14')", pd.Timestamp("2022-04-14").date()),
}


def _matched(server, lid, text) -> int:
    """How many features the filter selects (counted page by page where PostGIS leaves
    ``numberMatched`` out as too costly)."""
    url = f"{server.url}/collections/{lid}/items"
    params = {"f": "json", "limit": 1, "skipGeometry": "true", "filter": text}
    r = requests.get(url, params=params, timeout=60)
    assert r.status_code == 200, (lid, text, r.text[:300])
    if "numberMatched" in r.json():
        return r.json()["numberMatched"]
    params.update(limit=10000, properties=LAYERS[lid].key)
    count, offset = 0, 0
    while True:
        page = requests.get(url, params={**params, "offset": offset}, timeout=60).json()
        count += page["numberReturned"]
        if page["numberReturned"] < 10000:
            return count
        offset += 10000


def test_req_basic_cql2_binary_comparison_predicate_every_queryable(live_server, sample_data):
    """/req/basic-cql2/binary-comparison-predicate A, B, C on every queryable of every
    collection, with the abstract test's values (A.3.2): each operator answers, and as
    many features as the sample holds where the comparison is TRUE (a NULL in none)."""
    for lid in sorted(LAYERS):
        if not LAYERS[lid].public or lid not in sample_data:
            continue
        r = live_server.get(f"/collections/{lid}/queryables?f=json")
        assert r.status_code == 200, (lid, r.status_code, r.text[:300])
        doc = r.json()
        frame = sample_data[lid]
        for name, schema in doc["properties"].items():
            kind = schema.get("format") if schema.get("format") in ("date", "date-time") else None
            kind = kind or schema.get("type")
            if kind not in _ATS_VALUES:
                continue
            text, value = _ATS_VALUES[kind]
            col = frame[name]
            if kind == "date":
                col = pd.to_datetime(col).dt.date
            for sym, fn in _OPS.items():
                want = int((fn(col[col.notna()], value)).sum())
                got = _matched(live_server, lid, f'"{name}" {sym} {text}')
                assert got == want, (lid, name, sym, got, want)


def test_req_basic_cql2_binary_comparison_predicate_dates(live_server, sample_data):
    """/req/basic-cql2/binary-comparison-predicate A, B on a date property (DATE literal)."""
    u = sample_data["urban_fixtures"]
    day = pd.Timestamp("2020-01-01").date()
    installed = pd.to_datetime(u["installed_on"]).dt.date
    check(
        live_server,
        u,
        "urban_fixtures",
        installed.notna() & (installed >= day),
        "installed_on >= DATE('2020-01-01')",
        op(">=", P("installed_on"), {"date": "2020-01-01"}),
    )


def test_req_basic_cql2_binary_comparison_predicate_null(live_server, inc):
    """/req/basic-cql2/binary-comparison-predicate C: with a NULL operand the predicate is
    NULL, so neither it nor its negation selects the feature."""
    closed = inc["closed_at"]
    assert closed.isna().any()
    t = pd.Timestamp("2026-11-01T00:00:00Z")
    text = "closed_at < TIMESTAMP('2026-11-01T00:00:00Z')"
    js = op("<", P("closed_at"), {"timestamp": "2026-11-01T00:00:00Z"})
    check(live_server, inc, "incidents", closed.notna() & (closed < t), text, js)
    check(
        live_server,
        inc,
        "incidents",
        closed.notna() & ~(closed < t),
        f"NOT ({text})",
        op("not", js),
    )


def test_req_basic_cql2_binary_comparison_predicate_same_type(live_server):
    """/req/basic-cql2/binary-comparison-predicate D: both sides are of one type; comparing
    a string property with a number, a number with a string or a timestamp with text that
    is no timestamp is refused (400), not answered with an empty page."""
    refused(live_server, "incidents", "status = 5", op("=", P("status"), 5))
    refused(live_server, "incidents", "satisfaction = 'five'", op("=", P("satisfaction"), "five"))
    refused(live_server, "incidents", "reported_at < 'soon'", op("<", P("reported_at"), "soon"))
    refused(live_server, "incidents", "territorial = 'yes'", op("=", P("territorial"), "yes"))


def test_req_basic_cql2_null_predicate(live_server, inc):
    """/req/basic-cql2/null-predicate: IS NULL is TRUE exactly where unset, IS NOT NULL and
    NOT (... IS NULL) exactly where set (the null predicate itself is never NULL)."""
    unset = inc["closed_at"].isna()
    text, js = "closed_at IS NULL", op("isNull", P("closed_at"))
    check(live_server, inc, "incidents", unset, text, js)
    check(live_server, inc, "incidents", ~unset, "closed_at IS NOT NULL", op("not", js))
    check(live_server, inc, "incidents", ~unset, f"NOT ({text})", op("not", js))
    sat = inc["satisfaction"].isna()
    check(
        live_server, inc, "incidents", sat, "satisfaction IS NULL", op("isNull", P("satisfaction"))
    )


# --- Advanced comparison operators -------------------------------------------------------------


def test_req_advanced_comparison_operators_like_predicate(live_server, sample_data):
    """/req/advanced-comparison-operators/like-predicate: ``%`` matches any run of characters,
    ``_`` exactly one, ``\\`` escapes them; the match is case-sensitive; NOT LIKE is the
    negation; a NULL value is in neither."""
    d = sample_data["departments"]
    name = d["name_en"]
    check(
        live_server,
        d,
        "departments",
        name.str.startswith("S"),
        "name_en LIKE 'S%'",
        op("like", P("name_en"), "S%"),
    )
    check(
        live_server,
        d,
        "departments",
        name.str.contains("bureau"),
        "name_en LIKE '%bureau%'",
        op("like", P("name_en"), "%bureau%"),
    )
    # case-sensitive: 'BUREAU' is in no name
    check(
        live_server,
        d,
        "departments",
        name.str.contains("BUREAU"),
        "name_en LIKE '%BUREAU%'",
        op("like", P("name_en"), "%BUREAU%"),
        nonempty=False,
    )
    # _ is exactly one character
    codes = d["code"]
    width = int(codes.str.len().mode()[0])
    pattern = "_" * width
    check(
        live_server,
        d,
        "departments",
        codes.str.len() == width,
        f"code LIKE '{pattern}'",
        op("like", P("code"), pattern),
    )
    check(
        live_server,
        d,
        "departments",
        ~(codes.str.len() == width),
        f"code NOT LIKE '{pattern}'",
        op("not", op("like", P("code"), pattern)),
    )
    # an escaped wildcard is the character itself: codes hold '_' but no '%'
    check(
        live_server,
        d,
        "departments",
        codes.str.contains("_", regex=False),
        "code LIKE '%\\_%'",
        op("like", P("code"), "%\\_%"),
    )
    check(
        live_server,
        d,
        "departments",
        codes.str.contains("%", regex=False),
        "code LIKE '%\\%%'",
        op("like", P("code"), "%\\%%"),
        nonempty=False,
    )
    inc = sample_data["incidents"]
    has = inc["title"].notna() & inc["title"].str.contains("社区")
    check(
        live_server, inc, "incidents", has, "title LIKE '%社区%'", op("like", P("title"), "%社区%")
    )
    check(
        live_server,
        inc,
        "incidents",
        inc["title"].notna() & ~has,
        "title NOT LIKE '%社区%'",
        op("not", op("like", P("title"), "%社区%")),
    )


def test_req_advanced_comparison_operators_between_predicate(live_server, sample_data):
    """/req/advanced-comparison-operators/between-predicate: inclusive at both ends; NOT
    BETWEEN its negation; NULL in neither; the bounds may be decimals."""
    inc = sample_data["incidents"]
    sat = inc["satisfaction"].astype(float)
    inside = sat.between(3, 4) & sat.notna()
    check(
        live_server,
        inc,
        "incidents",
        inside,
        "satisfaction BETWEEN 3 AND 4",
        op("between", P("satisfaction"), 3, 4),
    )
    check(
        live_server,
        inc,
        "incidents",
        sat.notna() & ~inside,
        "satisfaction NOT BETWEEN 3 AND 4",
        op("not", op("between", P("satisfaction"), 3, 4)),
    )
    r = sample_data["rivers"]
    lo, hi = float(r["length_m"].quantile(0.25)), float(r["length_m"].quantile(0.75))
    check(
        live_server,
        r,
        "rivers",
        r["length_m"].between(lo, hi),
        f"length_m BETWEEN {lo!r} AND {hi!r}",
        op("between", P("length_m"), lo, hi),
    )
    # the bounds themselves are inside
    edge = float(r["length_m"].iloc[0])
    check(
        live_server,
        r,
        "rivers",
        r["length_m"] == edge,
        f"length_m BETWEEN {edge!r} AND {edge!r}",
        op("between", P("length_m"), edge, edge),
    )


def test_req_advanced_comparison_operators_in_predicate_dates_as_text(live_server, sample_data):
    """/req/advanced-comparison-operators/in-predicate on timestamps and dates written as text
    (the abstract test's A.4.3 form): the same features as the sample. The GeoPackage
    compared ``'…T08:00:00Z'`` with its stored ``'…T08:00:00.000Z'`` as text: none."""
    inc = sample_data["incidents"]
    times = inc["reported_at"].iloc[[10, 20]]
    texts = [_ts(t) for t in times]
    check(
        live_server,
        inc,
        "incidents",
        inc["reported_at"].isin(times),
        "reported_at IN ('{}', '{}')".format(*texts),
        op("in", P("reported_at"), texts),
    )
    check(
        live_server,
        inc,
        "incidents",
        inc["reported_at"] == times.iloc[0],
        f"reported_at = '{texts[0]}'",
        op("=", P("reported_at"), texts[0]),
    )
    u = sample_data["urban_fixtures"]
    day = pd.to_datetime(u["installed_on"]).dt.date
    first = day.dropna().iloc[0]
    check(
        live_server,
        u,
        "urban_fixtures",
        day == first,
        f"installed_on IN ('{first.isoformat()}', '1999-01-01')",
        op("in", P("installed_on"), [first.isoformat(), "1999-01-01"]),
    )


def test_req_advanced_comparison_operators_in_predicate(live_server, inc):
    """/req/advanced-comparison-operators/in-predicate: TRUE where the value equals an item
    of the list, FALSE otherwise (NOT IN the negation); items of another type are refused."""
    cats = ["waterlogging", "fallen_tree"]
    m = inc["category"].isin(cats)
    check(
        live_server,
        inc,
        "incidents",
        m,
        "category IN ('waterlogging', 'fallen_tree')",
        op("in", P("category"), cats),
    )
    check(
        live_server,
        inc,
        "incidents",
        ~m,
        "category NOT IN ('waterlogging', 'fallen_tree')",
        op("not", op("in", P("category"), cats)),
    )
    sat = inc["satisfaction"]
    check(
        live_server,
        inc,
        "incidents",
        sat.isin([3, 4]),
        "satisfaction IN (3, 4)",
        op("in", P("satisfaction"), [3, 4]),
    )
    refused(
        live_server, "incidents", "satisfaction IN ('1', 2)", op("in", P("satisfaction"), ["1", 2])
    )


# --- Case-insensitive comparison ----------------------------------------------------------------


def casei(x):
    return op("casei", x)


def test_req_case_insensitive_comparison_casei_function(live_server, sample_data):
    """/req/case-insensitive-comparison/casei-function A, B, C: CASEI takes a string literal,
    a string property or a function giving a string, and gives a string compared with ``=``
    and LIKE; on any other type it is refused."""
    d = sample_data["departments"]
    folded = d["name_en"].str.casefold()
    name = d["name_en"].iloc[0]
    check(
        live_server,
        d,
        "departments",
        folded == name.casefold(),
        f"CASEI(name_en) = CASEI('{name.upper()}')",
        op("=", casei(P("name_en")), casei(name.upper())),
    )
    check(
        live_server,
        d,
        "departments",
        folded.str.contains("bureau"),
        "CASEI(name_en) LIKE CASEI('%BUREAU%')",
        op("like", casei(P("name_en")), casei("%BUREAU%")),
    )
    check(
        live_server,
        d,
        "departments",
        folded == name.casefold(),
        f"CASEI(CASEI(name_en)) = '{name.casefold()}'",
        op("=", casei(casei(P("name_en"))), name.casefold()),
    )
    refused(
        live_server,
        "building_population",
        "CASEI(floors) = CASEI('1')",
        op("=", casei(P("floors")), casei("1")),
    )


def test_req_case_insensitive_comparison_casei_function_full_case_folding(live_server, inc):
    """/req/case-insensitive-comparison/casei-function E: Unicode full case folding (ß and
    ẞ are ss, final sigma is sigma, ligatures open), not a lowercase: literals compared."""
    everything = pd.Series(True, index=inc.index)
    for a, b in (
        ("STRAẞE", "strasse"),
        ("Straße", "STRASSE"),
        ("ΣΊΣΥΦΟΣ", "σίσυφος"),
        ("ﬁle", "FILE"),
        ("ǅ", "ǆ"),
    ):
        check(
            live_server,
            inc,
            "incidents",
            everything,
            f"CASEI('{a}') = CASEI('{b}')",
            op("=", casei(a), casei(b)),
        )
    check(
        live_server,
        inc,
        "incidents",
        ~everything,
        "CASEI('Straße') = CASEI('strase')",
        op("=", casei("Straße"), casei("strase")),
        nonempty=False,
    )


def test_req_case_insensitive_comparison_casei_function_in_each_store(store_kind, store_url):
    """/req/case-insensitive-comparison/casei-function D, E on a property: the SQL each store
    runs for CASEI of a column folds every cased character of Unicode exactly as Python's
    ``str.casefold`` (full case folding) and keeps NULL (the sample holds no such text)."""
    from layers.query import casefold_sql

    chars = [
        chr(i)
        for i in range(0x110000)
        if not 0xD800 <= i <= 0xDFFF and (chr(i).casefold() != chr(i) or chr(i).upper() != chr(i))
    ]
    text = "".join(chars)
    if store_kind == "gpkg":
        from layers.gpkg import GeoPackageStore, SQLiteDialect

        con = GeoPackageStore(store_url)._connect()
        sql = SQLiteDialect("incidents").casefold("?")
        got, null = con.execute(f"SELECT {sql}, {sql.replace('?', 'NULL')}", [text]).fetchone()
        con.close()
    else:
        import psycopg

        from layers.postgis import PostgresDialect, split_url

        assert PostgresDialect().casefold("%s") == casefold_sql("%s")
        with psycopg.connect(split_url(store_url)[0]) as con:
            got, null = con.execute(
                f"SELECT {casefold_sql('%s')}, {casefold_sql('NULL')}", [text]
            ).fetchone()
    assert got == text.casefold()
    assert null is None


# --- Accent-insensitive comparison --------------------------------------------------------------


def accenti(x):
    return op("accenti", x)


def _accented(text: str) -> str:
    """The text with an accent on each a, e, u and o (``bureau`` -> ``bürëäü``)."""
    return text.translate(str.maketrans("aeuoAEUO", "áëüôÁËÜÔ"))


def test_req_accent_insensitive_comparison_accenti_function(live_server, sample_data):
    """/req/accent-insensitive-comparison/accenti-function A, B, C: ACCENTI takes a string
    literal, a string property or a function giving a string (with CASEI either way round),
    gives a string compared with ``=`` and LIKE; on any other type it is refused."""
    d = sample_data["departments"]
    names = d["name_en"]
    name = names.iloc[0]
    assert _accented(name) != name
    check(
        live_server,
        d,
        "departments",
        names == name,
        f"ACCENTI(name_en) = ACCENTI('{_accented(name)}')",
        op("=", accenti(P("name_en")), accenti(_accented(name))),
    )
    check(
        live_server,
        d,
        "departments",
        names.str.contains("bureau"),
        "ACCENTI(name_en) LIKE ACCENTI('%büreäu%')",
        op("like", accenti(P("name_en")), accenti("%büreäu%")),
    )
    folded = names.str.casefold()
    check(
        live_server,
        d,
        "departments",
        folded == name.casefold(),
        f"CASEI(ACCENTI(name_en)) = ACCENTI(CASEI('{_accented(name).upper()}'))",
        op("=", casei(accenti(P("name_en"))), accenti(casei(_accented(name).upper()))),
    )
    refused(
        live_server,
        "building_population",
        "ACCENTI(floors) = ACCENTI('1')",
        op("=", accenti(P("floors")), accenti("1")),
    )


def test_req_accent_insensitive_comparison_accenti_function_normalization(live_server, inc):
    """/req/accent-insensitive-comparison/accenti-function E: Unicode normalization: composed
    and decomposed accents alike are dropped (NFD, marks removed, NFC); literals compared."""
    everything = pd.Series(True, index=inc.index)
    for a, b in (("Crème Brûlée", "Creme Brulee"), ("e\u0301", "é"), ("Ångström", "Angstrom")):
        check(
            live_server,
            inc,
            "incidents",
            everything,
            f"ACCENTI('{a}') = ACCENTI('{b}')",
            op("=", accenti(a), accenti(b)),
        )
    check(
        live_server,
        inc,
        "incidents",
        ~everything,
        "ACCENTI('Crème') = 'Creme '",
        op("=", accenti("Crème"), "Creme "),
        nonempty=False,
    )


def test_req_accent_insensitive_comparison_accenti_function_in_each_store(store_kind, store_url):
    """/req/accent-insensitive-comparison/accenti-function D, E on a property: the SQL each
    store runs for ACCENTI of a column gives what :func:`layers.query.accenti` gives for every
    character it changes, and keeps NULL (the sample holds no accented text)."""
    from layers.query import accenti as reference
    from layers.query import accenti_sql

    chars = [
        chr(i) for i in range(0x110000) if not 0xD800 <= i <= 0xDFFF and reference(chr(i)) != chr(i)
    ]
    text = "".join(chars) + " Crème Brûlée"
    if store_kind == "gpkg":
        from layers.gpkg import GeoPackageStore, SQLiteDialect

        con = GeoPackageStore(store_url)._connect()
        sql = SQLiteDialect("incidents").accenti("?")
        got, null = con.execute(f"SELECT {sql}, {sql.replace('?', 'NULL')}", [text]).fetchone()
        con.close()
    else:
        import psycopg

        from layers.postgis import PostgresDialect, split_url

        assert PostgresDialect().accenti("%s") == accenti_sql("%s")
        with psycopg.connect(split_url(store_url)[0]) as con:
            got, null = con.execute(
                f"SELECT {accenti_sql('%s')}, {accenti_sql('NULL')}", [text]
            ).fetchone()
    assert got == reference(text) and "Creme Brulee" in got
    assert null is None


# --- Temporal functions ---------------------------------------------------------------------------

#: CQL2's temporal functions on [start, end] (OGC 21-065r2, the tables of
#: /req/temporal-functions/temporal-functions B), written out again for pandas.
RELATIONS = {
    "T_AFTER": lambda xs, xe, ys, ye: xs > ye,
    "T_BEFORE": lambda xs, xe, ys, ye: xe < ys,
    "T_CONTAINS": lambda xs, xe, ys, ye: (xs < ys) & (xe > ye),
    "T_DISJOINT": lambda xs, xe, ys, ye: ~((xs <= ye) & (xe >= ys)),
    "T_DURING": lambda xs, xe, ys, ye: (xs > ys) & (xe < ye),
    "T_EQUALS": lambda xs, xe, ys, ye: (xs == ys) & (xe == ye),
    "T_FINISHEDBY": lambda xs, xe, ys, ye: (xs < ys) & (xe == ye),
    "T_FINISHES": lambda xs, xe, ys, ye: (xs > ys) & (xe == ye),
    "T_INTERSECTS": lambda xs, xe, ys, ye: (xs <= ye) & (xe >= ys),
    "T_MEETS": lambda xs, xe, ys, ye: xe == ys,
    "T_METBY": lambda xs, xe, ys, ye: xs == ye,
    "T_OVERLAPPEDBY": lambda xs, xe, ys, ye: (xs > ys) & (xs < ye) & (xe > ye),
    "T_OVERLAPS": lambda xs, xe, ys, ye: (xs < ys) & (xe > ys) & (xe < ye),
    "T_STARTEDBY": lambda xs, xe, ys, ye: (xs == ys) & (xe > ye),
    "T_STARTS": lambda xs, xe, ys, ye: (xs == ys) & (xe < ye),
}
#: The open ends of an interval ('..'), for pandas.
_EARLIEST = pd.Timestamp("1678-01-01", tz="UTC")
_LATEST = pd.Timestamp("2261-12-31", tz="UTC")


def _ts(t) -> str:
    assert t.microsecond == 0
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("fn", list(RELATIONS))
def test_req_temporal_functions_temporal_functions(live_server, inc, fn):
    """/req/temporal-functions/temporal-functions A, B: every temporal function, on an
    instant property and on an interval of two properties (NULL where a case is not
    closed), against an interval literal, an instant, and intervals open at either end."""
    rep, closed = inc["reported_at"], inc["closed_at"]
    times = rep.sort_values().reset_index(drop=True)
    a, b = times.iloc[1500], times.iloc[3500]  # instants some cases were reported at
    relation = RELATIONS[fn]
    literals = [  # (text, JSON, start, end)
        (f"INTERVAL('{_ts(a)}', '{_ts(b)}')", {"interval": [_ts(a), _ts(b)]}, a, b),
        (f"TIMESTAMP('{_ts(a)}')", {"timestamp": _ts(a)}, a, a),
        (f"INTERVAL('..', '{_ts(b)}')", {"interval": ["..", _ts(b)]}, _EARLIEST, b),
        (f"INTERVAL('{_ts(a)}', '..')", {"interval": [_ts(a), ".."]}, a, _LATEST),
    ]
    operands = [  # (text, JSON, start, end)
        ("reported_at", P("reported_at"), rep, rep),
        (
            "INTERVAL(reported_at, closed_at)",
            {"interval": [P("reported_at"), P("closed_at")]},
            rep,
            closed,
        ),
    ]
    for xt, xj, xs, xe in operands:
        for yt, yj, ys, ye in literals:
            mask = relation(xs, xe, ys, ye) & xs.notna() & xe.notna()  # NULL: in neither
            check(
                live_server,
                inc,
                "incidents",
                mask,
                f"{fn}({xt}, {yt})",
                op(fn.lower(), xj, yj),
                nonempty=False,
            )


def test_req_temporal_functions_temporal_predicates(live_server, sample_data):
    """/req/temporal-functions/temporal-predicates: TRUE where the relation holds, FALSE
    elsewhere (NOT selects the rest, a NULL in neither); dates on a date property; the
    literal first; a non-temporal property is refused."""
    inc = sample_data["incidents"]
    rep = inc["reported_at"]
    t = rep.sort_values().iloc[2800]
    after = rep > t
    check(
        live_server,
        inc,
        "incidents",
        after,
        f"T_AFTER(reported_at, TIMESTAMP('{_ts(t)}'))",
        op("t_after", P("reported_at"), {"timestamp": _ts(t)}),
    )
    check(
        live_server,
        inc,
        "incidents",
        ~after,
        f"NOT T_AFTER(reported_at, TIMESTAMP('{_ts(t)}'))",
        op("not", op("t_after", P("reported_at"), {"timestamp": _ts(t)})),
    )
    check(
        live_server,
        inc,
        "incidents",
        after,
        f"T_BEFORE(TIMESTAMP('{_ts(t)}'), reported_at)",
        op("t_before", {"timestamp": _ts(t)}, P("reported_at")),
    )
    u = sample_data["urban_fixtures"]
    day = pd.to_datetime(u["installed_on"])
    lo, hi = pd.Timestamp("2020-01-01"), pd.Timestamp("2021-06-30")
    check(
        live_server,
        u,
        "urban_fixtures",
        (day > lo) & (day < hi) & day.notna(),
        "T_DURING(installed_on, INTERVAL('2020-01-01', '2021-06-30'))",
        op("t_during", P("installed_on"), {"interval": ["2020-01-01", "2021-06-30"]}),
    )
    refused(
        live_server,
        "incidents",
        "T_AFTER(satisfaction, TIMESTAMP('2026-01-01T00:00:00Z'))",
        op("t_after", P("satisfaction"), {"timestamp": "2026-01-01T00:00:00Z"}),
    )


def test_req_cql2_text_temporal_functions(live_server, inc):
    """/req/cql2-text/temporal-functions: T_* names in any case, INTERVAL with dates,
    timestamps, '..' and properties, in text."""
    rep, closed = inc["reported_at"], inc["closed_at"]
    lo = pd.Timestamp("2026-06-01", tz="UTC")
    mask = (rep <= _LATEST) & (closed >= lo) & closed.notna()
    check(
        live_server,
        inc,
        "incidents",
        mask,
        "t_Intersects(INTERVAL(reported_at, closed_at), interval('2026-06-01', '..'))",
    )


def test_req_cql2_json_temporal_functions(live_server, inc):
    """/req/cql2-json/temporal-functions: ``t_*`` operators and ``interval`` objects in JSON."""
    rep, closed = inc["reported_at"], inc["closed_at"]
    lo = pd.Timestamp("2026-06-01", tz="UTC")
    mask = (closed >= lo) & closed.notna()
    js = op(
        "t_intersects",
        {"interval": [P("reported_at"), P("closed_at")]},
        {"interval": ["2026-06-01", ".."]},
    )
    check(live_server, inc, "incidents", mask & rep.notna(), None, js)


# --- Spatial functions ---------------------------------------------------------------------------

#: A box over part of the district (CRS84) and literals of every type inside it.
BOX = (109.45, 18.22, 109.55, 18.32)
#: The point literal as GeoJSON.
PT = {"type": "Point", "coordinates": [109.4823, 18.2893]}
LITERALS = {
    "POINT": shapely.Point(109.4823, 18.2893),  # in a community
    "LINESTRING": shapely.LineString([(109.46, 18.23), (109.54, 18.31)]),
    "POLYGON": shapely.box(109.47, 18.24, 109.52, 18.29),
    "MULTIPOINT": shapely.MultiPoint([(109.4823, 18.2893), (109.4317, 18.2886)]),
    "MULTILINESTRING": shapely.MultiLineString(
        [[(109.46, 18.23), (109.54, 18.31)], [(109.46, 18.31), (109.54, 18.23)]]
    ),
    "MULTIPOLYGON": shapely.MultiPolygon(
        [shapely.box(109.47, 18.24, 109.49, 18.26), shapely.box(109.51, 18.28, 109.53, 18.30)]
    ),
    "GEOMETRYCOLLECTION": shapely.GeometryCollection(
        [shapely.Point(109.4823, 18.2893), shapely.box(109.47, 18.24, 109.49, 18.26)]
    ),
}
_PREDICATES = {
    "S_INTERSECTS": "intersects",
    "S_DISJOINT": "disjoint",
    "S_CONTAINS": "contains",
    "S_WITHIN": "within",
    "S_TOUCHES": "touches",
    "S_CROSSES": "crosses",
    "S_OVERLAPS": "overlaps",
    "S_EQUALS": "geom_equals",
}


def spatial(server, frame, lid, fn, geom, nonempty=True, bbox=None):
    """``fn(geometry, literal)`` as WKT text and GeoJSON, against shapely on the sample."""
    mask = getattr(frame.geometry, _PREDICATES[fn])(geom)
    if bbox is not None:
        text_lit = "BBOX({}, {}, {}, {})".format(*bbox)
        json_lit = {"bbox": list(bbox)}
    else:
        text_lit, json_lit = geom.wkt, shapely.geometry.mapping(geom)
        json_lit = json.loads(json.dumps(json_lit))  # tuples as lists
    check(
        server,
        frame,
        lid,
        mask,
        f"{fn}(geometry, {text_lit})",
        op(fn.lower(), P("geometry"), json_lit),
        nonempty=nonempty,
    )


def test_req_basic_spatial_functions_spatial_functions(live_server, sample_data):
    """/req/basic-spatial-functions/spatial-functions A, B: S_INTERSECTS with a point and a
    bbox, evaluated as Simple Features' Intersects (shapely on the sample), on points,
    lines and polygons."""
    for lid in ("incidents", "rivers", "communities"):
        frame = sample_data[lid]
        spatial(live_server, frame, lid, "S_INTERSECTS", shapely.box(*BOX), bbox=BOX)
    c = sample_data["communities"]
    spatial(live_server, c, "communities", "S_INTERSECTS", LITERALS["POINT"])


def test_req_basic_spatial_functions_spatial_predicate(live_server, sample_data):
    """/req/basic-spatial-functions/spatial-predicate: TRUE where the relation holds, FALSE
    elsewhere (a NOT of it selects exactly the rest), the literal on either side."""
    c = sample_data["communities"]
    point = LITERALS["POINT"]
    hit = c.intersects(point)
    check(
        live_server,
        c,
        "communities",
        ~hit,
        f"NOT S_INTERSECTS(geometry, {point.wkt})",
        op("not", op("s_intersects", P("geometry"), PT)),
    )
    check(
        live_server,
        c,
        "communities",
        hit,
        f"S_INTERSECTS({point.wkt}, geometry)",
        op("s_intersects", PT, P("geometry")),
    )


@pytest.mark.parametrize("kind", list(LITERALS))
def test_req_basic_spatial_functions_plus_spatial_data_types(live_server, sample_data, kind):
    """/req/basic-spatial-functions-plus/spatial-data-types: S_INTERSECTS takes every
    spatial literal of the BNF's ``spatialInstance`` (and ``BBOX``, tested above)."""
    for lid in ("incidents", "communities"):
        frame = sample_data[lid]
        nonempty = lid == "communities"  # a line or a point may miss every incident point
        spatial(live_server, frame, lid, "S_INTERSECTS", LITERALS[kind], nonempty=nonempty)


@pytest.mark.parametrize("fn", list(_PREDICATES))
def test_req_spatial_functions_spatial_functions(live_server, sample_data, fn):
    """/req/spatial-functions/spatial-functions: every standardized spatial comparison
    function, as Simple Features defines it (shapely), on polygons, lines and points."""
    c = sample_data["communities"]
    one = c.geometry.iloc[3]
    cases = [
        ("communities", shapely.box(*BOX)),
        ("communities", LITERALS["LINESTRING"]),
        ("communities", one),  # equals, touches (neighbours), within/contains
        ("rivers", shapely.box(*BOX)),
        ("incidents", LITERALS["POLYGON"]),
    ]
    for lid, geom in cases:
        geom = shapely.set_precision(geom, 0) if geom is one else geom
        spatial(live_server, sample_data[lid], lid, fn, geom, nonempty=False)


@pytest.mark.parametrize("fn", ["S_WITHIN", "S_CONTAINS", "S_DISJOINT", "S_EQUALS"])
def test_req_spatial_functions_spatial_data_types(live_server, sample_data, fn):
    """/req/spatial-functions/spatial-data-types: the other functions take every spatial
    literal too (here each of the seven types and BBOX)."""
    c = sample_data["communities"]
    for geom in LITERALS.values():
        spatial(live_server, c, "communities", fn, geom, nonempty=False)
    spatial(live_server, c, "communities", fn, shapely.box(*BOX), bbox=BOX, nonempty=False)


# --- CQL2 text and CQL2 JSON encodings -----------------------------------------------------------


def test_req_cql2_text_basic_cql2(live_server, inc):
    """/req/cql2-text/basic-cql2: text of the basic BNF is parsed and evaluated: keywords in
    any case, double-quoted property names, comparisons, NULL tests, the boolean literals."""
    sat = inc["satisfaction"]
    want = (inc["status"] == "evaluated") & sat.notna() & (sat >= 4) | inc["closed_at"].isna()
    check(
        live_server,
        inc,
        "incidents",
        want,
        "\"status\" = 'evaluated' and satisfaction >= 4 Or closed_at is null AND true",
        None,
    )
    refused(live_server, "incidents", "THIS IS NOT A FILTER")
    refused(live_server, "incidents", "status = ")


def test_req_cql2_json_basic_cql2(live_server, inc):
    """/req/cql2-json/basic-cql2: JSON valid against the schema (no advanced components) is
    parsed and evaluated; ``and``/``or`` take two arguments or more; other JSON is a 400."""
    sat = inc["satisfaction"]
    want = (inc["status"] == "evaluated") & (sat >= 4) & (inc["channel"] == "wechat")
    js = op(
        "and",
        op("=", P("status"), "evaluated"),
        op(">=", P("satisfaction"), 4),
        op("=", P("channel"), "wechat"),
    )
    check(live_server, inc, "incidents", want, None, js)
    refused(live_server, "incidents", js={"op": "=", "args": [P("status")]})
    refused(live_server, "incidents", js={"op": "and", "args": [op("=", P("status"), "x")]})
    refused(live_server, "incidents", js={"not": "a filter"})


def test_req_cql2_text_advanced_comparison_operators(live_server, inc):
    """/req/cql2-text/advanced-comparison-operators: LIKE, BETWEEN, IN and their NOT forms
    in text, keywords in any case, in one expression."""
    sat = inc["satisfaction"].astype(float)
    want = inc["title"].str.contains("社区") & sat.between(2, 4) & ~inc["channel"].isin(["wechat"])
    text = "title like '%社区%' AND satisfaction Between 2 and 4 AND channel not in ('wechat')"
    check(live_server, inc, "incidents", want & sat.notna(), text)


def test_req_cql2_json_advanced_comparison_operators(live_server, inc):
    """/req/cql2-json/advanced-comparison-operators: ``like``, ``between`` (three arguments,
    as the schema has it; pygeofilter wanted a nested list) and ``in``."""
    sat = inc["satisfaction"].astype(float)
    want = inc["title"].str.contains("社区") & sat.between(2, 4) & ~inc["channel"].isin(["wechat"])
    js = op(
        "and",
        op("like", P("title"), "%社区%"),
        op("between", P("satisfaction"), 2, 4),
        op("not", op("in", P("channel"), ["wechat"])),
    )
    check(live_server, inc, "incidents", want & sat.notna(), None, js)


def test_req_cql2_text_case_insensitive_comparison(live_server, sample_data):
    """/req/cql2-text/case-insensitive-comparison: CASEI in text, in any case, in a
    comparison, a LIKE and an IN."""
    d = sample_data["departments"]
    folded = d["name_en"].str.casefold()
    names = d["name_en"].iloc[:2].tolist()
    check(
        live_server,
        d,
        "departments",
        folded.isin([n.casefold() for n in names]),
        "casei(name_en) IN ({})".format(", ".join(f"CaseI('{n.upper()}')" for n in names)),
    )
    check(
        live_server,
        d,
        "departments",
        folded.str.startswith("S"),
        "CASEI(name_en) LIKE 'S%'",
        nonempty=False,
    )
    check(
        live_server, d, "departments", folded.str.startswith("s"), "CASEI(name_en) LIKE casei('S%')"
    )


def test_req_cql2_json_case_insensitive_comparison(live_server, sample_data):
    """/req/cql2-json/case-insensitive-comparison: ``{"op": "casei", ...}`` in JSON."""
    d = sample_data["departments"]
    folded = d["name_en"].str.casefold()
    names = d["name_en"].iloc[:2].tolist()
    check(
        live_server,
        d,
        "departments",
        folded.isin([n.casefold() for n in names]),
        None,
        op("in", casei(P("name_en")), [casei(n.upper()) for n in names]),
    )
    check(
        live_server,
        d,
        "departments",
        folded.str.startswith("s"),
        None,
        op("like", casei(P("name_en")), casei("S%")),
    )


def test_req_cql2_text_accent_insensitive_comparison(live_server, sample_data):
    """/req/cql2-text/accent-insensitive-comparison: ACCENTI in text, in any case."""
    d = sample_data["departments"]
    name = d["name_en"].iloc[1]
    check(
        live_server,
        d,
        "departments",
        d["name_en"] == name,
        f"accentI(name_en) IN (AccentI('{_accented(name)}'))",
    )


def test_req_cql2_json_accent_insensitive_comparison(live_server, sample_data):
    """/req/cql2-json/accent-insensitive-comparison: ``{"op": "accenti", ...}`` in JSON."""
    d = sample_data["departments"]
    name = d["name_en"].iloc[1]
    check(
        live_server,
        d,
        "departments",
        d["name_en"] == name,
        None,
        op("=", accenti(P("name_en")), accenti(_accented(name))),
    )


def test_req_cql2_text_basic_spatial_functions(live_server, sample_data):
    """/req/cql2-text/basic-spatial-functions: S_INTERSECTS with a WKT point and a BBOX in
    text, keywords in any case."""
    c = sample_data["communities"]
    point = LITERALS["POINT"]
    check(
        live_server,
        c,
        "communities",
        c.intersects(point),
        "s_intersects(geometry, point(109.4823 18.2893))",
    )
    check(
        live_server,
        c,
        "communities",
        c.intersects(shapely.box(*BOX)),
        "S_Intersects(geometry, bbox({}, {}, {}, {}))".format(*BOX),
    )


def test_req_cql2_json_basic_spatial_functions(live_server, sample_data):
    """/req/cql2-json/basic-spatial-functions: ``s_intersects`` with a GeoJSON point and a
    ``bbox`` object."""
    c = sample_data["communities"]
    check(
        live_server,
        c,
        "communities",
        c.intersects(LITERALS["POINT"]),
        None,
        op("s_intersects", P("geometry"), PT),
    )
    check(
        live_server,
        c,
        "communities",
        c.intersects(shapely.box(*BOX)),
        None,
        op("s_intersects", P("geometry"), {"bbox": list(BOX)}),
    )


def test_req_cql2_text_basic_spatial_functions_plus(live_server, sample_data):
    """/req/cql2-text/basic-spatial-functions-plus: every WKT type in text, including
    MULTIPOINT with and without parenthesised points, and GEOMETRYCOLLECTION."""
    c = sample_data["communities"]
    mp = LITERALS["MULTIPOINT"]
    for text in (
        "MULTIPOINT((109.4823 18.2893), (109.4317 18.2886))",
        "MULTIPOINT(109.4823 18.2893, 109.4317 18.2886)",
    ):
        check(live_server, c, "communities", c.intersects(mp), f"S_INTERSECTS(geometry, {text})")
    gc = LITERALS["GEOMETRYCOLLECTION"]
    check(live_server, c, "communities", c.intersects(gc), f"S_INTERSECTS(geometry, {gc.wkt})")


def test_req_cql2_json_basic_spatial_functions_plus(live_server, sample_data):
    """/req/cql2-json/basic-spatial-functions-plus: every GeoJSON geometry type, including
    GeometryCollection (pygeofilter refused it)."""
    c = sample_data["communities"]
    for geom in LITERALS.values():
        js = op(
            "s_intersects", P("geometry"), json.loads(json.dumps(shapely.geometry.mapping(geom)))
        )
        check(live_server, c, "communities", c.intersects(geom), None, js)


def test_req_cql2_text_spatial_functions(live_server, sample_data):
    """/req/cql2-text/spatial-functions: each function name in text, in any case."""
    c = sample_data["communities"]
    box = shapely.box(*BOX)
    for fn, method in _PREDICATES.items():
        mask = getattr(c.geometry, method)(box)
        check(
            live_server,
            c,
            "communities",
            mask,
            f"{fn.lower()}(geometry, {box.wkt})",
            nonempty=False,
        )


def test_req_cql2_json_spatial_functions(live_server, sample_data):
    """/req/cql2-json/spatial-functions: each ``s_*`` operator in JSON."""
    c = sample_data["communities"]
    box = shapely.box(*BOX)
    lit = json.loads(json.dumps(shapely.geometry.mapping(box)))
    for fn, method in _PREDICATES.items():
        mask = getattr(c.geometry, method)(box)
        check(
            live_server,
            c,
            "communities",
            mask,
            None,
            op(fn.lower(), P("geometry"), lit),
            nonempty=False,
        )


def test_req_cql2_text_escaping(live_server, inc):
    """/req/cql2-text/escaping: a quote in a string is written ``''`` or ``\\'``, a backslash
    ``\\\\``, and ``\\t``, ``\\n``, ... are the control characters; pygeofilter's grammar
    ended a string at its second quote (``'it''s'`` was a 400, issue 17). The data holds no
    quote, so literals are compared with literals (TRUE: every feature; FALSE: none)."""
    everything = pd.Series(True, index=inc.index)
    for text in (
        "'it''s' = 'it\\'s'",
        "'a\\\\b' = 'a\\\\b'",
        "'tab\\there' = 'tab\there'",
        "'line\\nbreak' = 'line\nbreak'",
        "'\\a\\b\\v\\f\\r' = '\a\b\v\f\r'",
    ):
        check(live_server, inc, "incidents", everything, text)
    check(live_server, inc, "incidents", ~everything, "'it''s' = 'its'", nonempty=False)
    check(live_server, inc, "incidents", ~everything, "'a\\\\b' = 'ab'", nonempty=False)
    # a quoted title: no title has one, so NOT (title = 'it''s') is every titled case
    check(live_server, inc, "incidents", inc["title"].notna(), "NOT (title = 'it''s')")
    # JSON strings reach the same values (they are re-encoded as text for pygeoapi)
    check(live_server, inc, "incidents", everything, None, op("=", "it's \\ ok", "it's \\ ok"))
    check(live_server, inc, "incidents", ~everything, None, op("=", "it's", "its"), nonempty=False)
