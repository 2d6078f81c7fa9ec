"""The PostGIS store against a live PostgreSQL, checked feature-for-feature against
the GeoPackage store loaded with the same sample data.

Needs ``TIANYA_TEST_PG`` (e.g. ``postgresql://tianya:tianya@localhost:5432/tianya``,
as printed by ``.ci/postgis.sh``). Without it the tests skip, except under ``CI``,
where they fail: a PostGIS test skipped in CI must fail the run. Each session works
in its own schema and drops it at the end. The real restart test
(``pg_ctlcluster … restart``) runs under ``CI`` or with ``TIANYA_TEST_PG_RESTART=1``.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import threading
import time
import uuid

import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from geodata.sample import generate
from layers.catalogue import LAYERS
from layers.errors import Conflict, InvalidFeature, InvalidParameter, NotFound, StoreUnavailable
from layers.gpkg import GeoPackageStore
from layers.pgload import load_gpkg
from layers.postgis import PostGISStore, split_url
from layers.query import Query, format_datetime, parse_filter, parse_interval
from layers.stores import open_store

pytestmark = pytest.mark.postgis

SEED = 20261125
N_INCIDENTS = 1500
COMPARED = (
    "incidents",
    "rivers",
    "building_population",
    "communities",
    "flood_prevention",
    "urban_fixtures",
    "departments",
)
CRSS = (
    None,
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "EPSG:4326",
    "http://www.opengis.net/def/crs/EPSG/0/4490",
    "EPSG:3857",
    "EPSG:32649",
)


# --- fixtures ------------------------------------------------------------------------------------


# ``pg_url`` (TIANYA_TEST_PG, or skip; fail under CI) comes from tests/stores.py


@pytest.fixture(scope="session")
def schema(pg_url):
    """A private schema for this session, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    conninfo, _ = split_url(pg_url)
    yield name
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        c.execute(f'DROP SCHEMA IF EXISTS "{name}_load" CASCADE')
        c.execute(f'DROP SCHEMA IF EXISTS "{name}_w" CASCADE')


@pytest.fixture(scope="session")
def data():
    return generate(seed=SEED, n_incidents=N_INCIDENTS)


@pytest.fixture(scope="session")
def gpkg(data, tmp_path_factory):
    store = GeoPackageStore(str(tmp_path_factory.mktemp("pg") / "ref.gpkg"))
    for lid, frame in data.items():
        store.write_frame(LAYERS[lid], frame)
    return store


@pytest.fixture(scope="session")
def pg(data, pg_url, schema):
    store = PostGISStore(pg_url, schema=schema)
    for lid, frame in data.items():
        store.write_frame(LAYERS[lid], frame)
    yield store
    store.close()


@pytest.fixture
def writable(data, pg_url, schema, tmp_path):
    """Fresh incidents and departments in both stores, for write tests."""
    ref = GeoPackageStore(str(tmp_path / "w.gpkg"))
    store = PostGISStore(pg_url, schema=f"{schema}_w")
    for lid in ("incidents", "departments"):
        frame = data[lid].iloc[:60]
        ref.write_frame(LAYERS[lid], frame)
        store.write_frame(LAYERS[lid], frame)
    yield ref, store
    store.close()


# --- comparing -----------------------------------------------------------------------------------


def close(a, b, path="") -> str | None:
    """Where ``a`` and ``b`` differ (floats within 1e-9, relative above 1), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            d = close(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = close(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
            return f"{path}: {a!r} != {b!r}"
        return None if abs(a - b) <= 1e-9 * max(1.0, abs(a)) else f"{path}: {a!r} != {b!r}"
    if type(a) is not type(b) or a != b:
        return f"{path}: {a!r} != {b!r}"
    return None


def same_page(gpkg, pg, layer, q, target_crs=None, count=True):
    a = gpkg.query(layer, q, target_crs=target_crs, count=count)
    b = pg.query(layer, q, target_crs=target_crs, count=count)
    diff = close(a.features, b.features, "features")
    assert diff is None, diff
    assert a.number_matched == b.number_matched
    return b


def _centre_box(frame, frac):
    x0, y0, x1, y1 = frame.total_bounds
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * frac, (y1 - y0) * frac
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _wkt_box(b):
    return shapely.box(*b).wkt


# --- schema and loading --------------------------------------------------------------------------


def test_open_store_picks_postgis(pg, pg_url, schema):
    for url in (pg_url, pg_url.replace("postgresql://", "postgresql+psycopg://", 1)):
        store = open_store(url)
        assert isinstance(store, PostGISStore)
        store.close()
    sep = "&" if "?" in pg_url else "?"
    store = open_store(f"{pg_url}{sep}schema={schema}&statement_timeout=7&count_limit=99")
    assert (store.schema, store.statement_timeout, store.count_limit) == (schema, 7.0, 99)
    assert store.has_layer(LAYERS["incidents"])
    store.close()


def test_ddl_from_catalogue(pg, schema):
    layer = LAYERS["incidents"]
    with pg.transaction() as conn:
        cols = dict(
            conn.execute(
                "SELECT column_name, udt_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'incidents'",
                [schema],
            ).fetchall()
        )
        gtype = conn.execute(
            "SELECT type, srid FROM geometry_columns WHERE f_table_schema = %s "
            "AND f_table_name = 'incidents'",
            [schema],
        ).fetchone()
        idx = " ".join(
            r[0]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'incidents'",
                [schema],
            )
        )
        checks = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'",
            [pg.table(layer)],
        ).fetchone()[0]
    assert cols["fid"] == "int8" and cols["geom"] == "geometry"
    assert cols["reported_at"] == "timestamptz" and cols["satisfaction"] == "int8"
    assert cols["territorial"] == "bool"
    assert gtype == ("POINT", 4326)
    assert "USING gist (geom)" in idx and "UNIQUE" in idx and "(case_no)" in idx
    for f in layer.fields:
        if f.indexed and f.name != layer.key:
            assert f"({f.name})" in idx
    assert checks == sum(f.codes is not None for f in layer.fields)
    with pg.transaction() as conn:
        dtype = conn.execute(
            "SELECT udt_name FROM information_schema.columns WHERE "
            "table_schema = %s AND table_name = 'party_building' AND "
            "column_name = 'established'",
            [schema],
        ).fetchone()[0]
    assert dtype == "date"


def test_has_layer_and_missing_layer(pg, pg_url):
    assert all(pg.has_layer(LAYERS[i]) for i in COMPARED)
    empty = PostGISStore(pg_url, schema=f"nothing_{uuid.uuid4().hex[:6]}")
    assert not empty.has_layer(LAYERS["incidents"])
    with pytest.raises(NotFound):
        empty.query(LAYERS["incidents"], Query())
    empty.close()


def test_pgload_copies_the_geopackage(gpkg, pg_url, schema):
    target = PostGISStore(pg_url, schema=f"{schema}_load")
    counts = load_gpkg(gpkg.path, target, progress=False)
    assert set(counts) == {lid for lid in LAYERS if gpkg.has_layer(LAYERS[lid])}
    for lid in COMPARED:
        layer = LAYERS[lid]
        assert counts[lid] == len(gpkg.read_frame(layer))
        same_page(gpkg, target, layer, Query(limit=10_000), count=False)
    # the fid sequence continues after the copied rows
    with target.transaction() as conn:
        nxt = conn.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'fid'))", [target.table(LAYERS["incidents"])]
        ).fetchone()[0]
    assert nxt == counts["incidents"] + 1
    target.close()


# --- reading: the same features as the GeoPackage store ------------------------------------------


@pytest.mark.parametrize("lid", COMPARED)
@pytest.mark.parametrize("crs", CRSS)
def test_pages_and_crs(gpkg, pg, lid, crs):
    layer = LAYERS[lid]
    for q in (Query(limit=10), Query(offset=7, limit=25), Query(limit=10_000)):
        same_page(gpkg, pg, layer, q, target_crs=crs)


@pytest.mark.parametrize("lid", COMPARED)
def test_get_by_key(gpkg, pg, lid):
    layer = LAYERS[lid]
    keys = [f["id"] for f in gpkg.query(layer, Query(limit=3)).features]
    for key in keys:
        for crs in (None, "EPSG:4490", "EPSG:32649"):
            a, b = gpkg.get(layer, key, target_crs=crs), pg.get(layer, key, target_crs=crs)
            assert close(a, b) is None, close(a, b)
            assert b["id"] == key
    with pytest.raises(NotFound):
        pg.get(layer, "no-such-key")
    with pytest.raises(NotFound):
        pg.get(layer, "x' OR '1'='1")


def test_axis_order(pg, gpkg):
    layer = LAYERS["incidents"]
    crs84 = pg.query(layer, Query(limit=1)).features[0]["geometry"]["coordinates"]
    for crs in ("EPSG:4326", "EPSG:4490"):
        c = pg.query(layer, Query(limit=1), target_crs=crs).features[0]["geometry"]["coordinates"]
        assert c == pytest.approx(crs84[::-1], abs=1e-9)  # latitude first
    c = pg.query(layer, Query(limit=1), target_crs="EPSG:32649").features[0]
    assert 200_000 < c["geometry"]["coordinates"][0] < 800_000  # easting first


INCIDENT_FILTERS = [
    "category = 'street_light'",
    "category <> 'street_light' AND satisfaction >= 4",
    "satisfaction < 3 OR channel = 'hotline'",
    "NOT (status = 'evaluated')",
    "satisfaction > 2.5",
    "territorial = true",
    "case_no LIKE 'TY2026%'",
    "case_no NOT LIKE '%1'",
    "CASEI(case_no) LIKE CASEI('ty2026%')",
    "title LIKE '%垃圾%'",
    "category IN ('street_light', 'road_damage', 'waterlogging')",
    "category NOT IN ('street_light', 'road_damage')",
    "satisfaction BETWEEN 2 AND 4",
    "satisfaction NOT BETWEEN 2 AND 4",
    "closed_at IS NULL",
    "closed_at IS NOT NULL AND satisfaction IS NULL",
    "reported_at > TIMESTAMP('2026-06-01T00:00:00Z')",
    "reported_at BETWEEN TIMESTAMP('2026-03-01T00:00:00Z') AND TIMESTAMP('2026-04-01T00:00:00Z')",
    "community_code = '460204001001' AND department = 'water'",
]


@pytest.mark.parametrize("text", INCIDENT_FILTERS)
def test_cql2_text(gpkg, pg, text):
    layer = LAYERS["incidents"]
    q = Query(where=parse_filter(text), limit=10_000)
    page = same_page(gpkg, pg, layer, q)
    same_page(gpkg, pg, layer, Query(where=parse_filter(text), limit=20, offset=5))
    assert page.number_returned > 0 or text.startswith("closed_at IS NOT NULL")


def test_cql2_json(gpkg, pg):
    f = (
        '{"op": "and", "args": [{"op": "in", "args": [{"property": "category"}, '
        '["street_light", "exposed_garbage"]]}, {"op": ">=", "args": '
        '[{"property": "satisfaction"}, 3]}]}'
    )
    same_page(gpkg, pg, LAYERS["incidents"], Query(where=parse_filter(f), limit=10_000))


@pytest.mark.parametrize("lid", ["incidents", "rivers", "building_population", "communities"])
@pytest.mark.parametrize(
    "op",
    [
        "S_INTERSECTS",
        "S_WITHIN",
        "S_DISJOINT",
        "S_CONTAINS",
        "S_OVERLAPS",
        "S_CROSSES",
        "S_TOUCHES",
    ],
)
def test_spatial_predicates(data, gpkg, pg, lid, op):
    layer = LAYERS[lid]
    box = _wkt_box(_centre_box(data[lid], 0.4))
    q = Query(where=parse_filter(f"{op}(geometry, {box})"), limit=10_000, skip_geometry=True)
    same_page(gpkg, pg, layer, q)


def test_spatial_bbox_function_and_point_equals(data, gpkg, pg):
    layer = LAYERS["incidents"]
    b = _centre_box(data["incidents"], 0.3)
    q = Query(
        where=parse_filter(f"S_INTERSECTS(geometry, BBOX({', '.join(map(str, b))}))"), limit=10_000
    )
    assert same_page(gpkg, pg, layer, q).number_returned > 0
    x, y = data["incidents"].geometry.iloc[5].coords[0]
    q = Query(where=parse_filter(f"S_EQUALS(geometry, POINT({x!r} {y!r}))"), limit=10)
    assert same_page(gpkg, pg, layer, q).number_returned >= 1


@pytest.mark.parametrize("lid", ["incidents", "rivers", "building_population", "communities"])
@pytest.mark.parametrize("frac", [0.05, 0.3, 2.0])
def test_bbox(data, gpkg, pg, lid, frac):
    q = Query(bbox=_centre_box(data[lid], frac), limit=10_000)
    same_page(gpkg, pg, LAYERS[lid], q)
    same_page(gpkg, pg, LAYERS[lid], Query(bbox=q.bbox, limit=7, offset=3), target_crs="EPSG:3857")


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-01T00:00:00Z/2026-05-01T00:00:00Z",
        "2026-07-04",
        "../2026-01-15",
        "2026-10-01/..",
        "2026-03-01T08:00:00+08:00/2026-03-09T00:00:00.5Z",
    ],
)
def test_datetime_interval(gpkg, pg, text):
    for lid in ("incidents", "urban_fixtures", "rivers"):
        same_page(gpkg, pg, LAYERS[lid], Query(interval=parse_interval(text), limit=10_000))


def test_property_equals(gpkg, pg):
    layer = LAYERS["incidents"]
    for eq in (
        {"category": "exposed_garbage"},
        {"territorial": True},
        {"satisfaction": 5, "channel": "grid_app"},
        {"reported_at": gpkg.query(layer, Query(limit=1)).features[0]["properties"]["reported_at"]},
    ):
        page = same_page(gpkg, pg, layer, Query(equals=eq, limit=10_000))
        assert page.number_returned > 0


@pytest.mark.parametrize(
    "sortby",
    [
        [("satisfaction", False)],
        [("satisfaction", True)],
        [("category", True), ("reported_at", False)],
        [("closed_at", True)],
        [("closed_at", False), ("case_no", True)],
        [("title", True)],
    ],
)
def test_sortby(gpkg, pg, sortby):
    layer = LAYERS["incidents"]
    for offset in (0, 13, 1400):
        same_page(gpkg, pg, layer, Query(sortby=sortby, offset=offset, limit=50))
    same_page(
        gpkg,
        pg,
        layer,
        Query(sortby=sortby, where=parse_filter("satisfaction >= 3"), offset=40, limit=30),
    )


def test_sortby_text_is_byte_order(gpkg, pg):
    layer = LAYERS["building_population"]
    same_page(gpkg, pg, layer, Query(sortby=[("name", True)], limit=200, offset=100))
    same_page(gpkg, pg, layer, Query(sortby=[("address", False)], limit=200))


def test_properties_and_skip_geometry(gpkg, pg):
    layer = LAYERS["incidents"]
    for q in (
        Query(properties=["status", "category", "reported_at"], limit=30),
        Query(properties=[], limit=5),
        Query(skip_geometry=True, limit=30, offset=10),
        Query(properties=["territorial"], skip_geometry=True, limit=100),
    ):
        page = same_page(gpkg, pg, layer, q)
        if q.properties is not None:
            assert list(page.features[0]["properties"]) == q.properties
        if q.skip_geometry:
            assert page.features[0]["geometry"] is None


def test_offset_limit_and_counts(gpkg, pg):
    layer = LAYERS["incidents"]
    n = len(gpkg.read_frame(layer))
    for offset, limit in (
        (0, 0),
        (0, 1),
        (0, n - 1),
        (0, n),
        (0, n + 5),
        (n - 3, 10),
        (n, 10),
        (n + 100, 10),
        (700, 0),
        (500, 100),
    ):
        page = same_page(gpkg, pg, layer, Query(offset=offset, limit=limit))
        assert page.number_matched == n
        assert page.number_returned == max(0, min(limit, n - offset))
    assert pg.query(layer, Query(limit=10), count=False).number_matched is None


def test_numbermatched_is_omitted_not_estimated(pg, pg_url, schema):
    store = PostGISStore(pg_url, schema=schema, count_limit=100)
    layer = LAYERS["incidents"]
    assert store.query(layer, Query(limit=10)).number_matched is None  # unfiltered, big
    big = parse_filter("satisfaction IS NOT NULL OR satisfaction IS NULL")
    assert store.query(layer, Query(where=big, limit=10)).number_matched is None
    few = parse_filter("category = 'fallen_tree'")
    full = store.query(layer, Query(where=few, limit=10_000))
    assert full.number_returned <= 100
    page = store.query(layer, Query(where=few, limit=2))
    if full.number_returned > 2:
        assert page.number_matched == full.number_returned  # exact where it is given
    tail = store.query(layer, Query(offset=1490, limit=100))
    assert tail.number_matched == 1490 + tail.number_returned  # a short page proves it
    store.close()


def test_filtered_queries_have_their_own_count_bound(pg, pg_url, schema):
    store = PostGISStore(pg_url, schema=schema, count_limit=50_000, filtered_count_limit=500)
    layer = LAYERS["incidents"]
    total = store.query(layer, Query(limit=10)).number_matched
    assert total is not None and total > 500  # whole table: under count_limit, exact
    many = parse_filter("channel <> 'no_such_channel'")
    assert store.query(layer, Query(where=many, limit=10)).number_matched is None
    assert PostGISStore(pg_url, schema=schema, count_limit=300).filtered_count_limit == 300
    store.close()


def test_deep_page_uses_deferred_join(pg):
    layer = LAYERS["incidents"]
    where, params = pg._where(layer, Query())
    sql, ps, _, _ = pg._page_sql(layer, Query(offset=1000, limit=10), None, where, params, 10, 1000)
    with pg.transaction() as conn:
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, ps))
    # only fids are walked for the skipped rows; the geometry work is on the joined page
    assert "SELECT fid FROM" in sql and ("Index" in plan or "Seq Scan" in plan)


def test_read_frame_and_extent(gpkg, pg, data):
    for lid in COMPARED:
        layer = LAYERS[lid]
        a, b = gpkg.read_frame(layer), pg.read_frame(layer)
        names = [f.name for f in layer.fields]
        pd.testing.assert_frame_equal(pd.DataFrame(a[names]), pd.DataFrame(b[names]))
        if layer.geometry_type:
            assert b.crs.to_epsg() == 4326
            assert bool(np.all(shapely.equals_exact(a.geometry.values, b.geometry.values, 1e-12)))
        ea, eb = gpkg.extent(layer), pg.extent(layer)
        if ea[0] is None:
            assert eb[0] is None
        else:
            assert eb[0] == pytest.approx(ea[0], abs=1e-4)
        assert ea[1] == eb[1]
    q = Query(
        where=parse_filter("category = 'street_light'"), bbox=_centre_box(data["incidents"], 0.5)
    )
    a, b = gpkg.read_frame(LAYERS["incidents"], q), pg.read_frame(LAYERS["incidents"], q)
    assert list(a["case_no"]) == list(b["case_no"]) and len(b) > 0


def test_bad_filters_say_400(pg):
    layer = LAYERS["incidents"]
    for text in ("satisfaction = 'many'", "reported_at > 'not a date'", "territorial = 'perhaps'"):
        with pytest.raises(InvalidParameter):
            pg.query(layer, Query(where=parse_filter(text)))
    with pytest.raises(InvalidParameter):
        pg.query(layer, Query(sortby=[("nope", True)]))
    with pytest.raises(InvalidParameter):
        pg.query(layer, Query(limit=1), target_crs="EPSG:999999")


# --- writing -------------------------------------------------------------------------------------


REPORTED = format_datetime(dt.datetime(2026, 11, 25, 1, 2, 3, tzinfo=dt.UTC))


def _incident(key, **over):
    props = {
        "case_no": key,
        "title": "测试井盖",
        "category": "manhole_cover",
        "channel": "grid_app",
        "status": "collected",
        "territorial": False,
        "reported_at": REPORTED,
        "satisfaction": None,
    }
    props.update(over)
    return {"geometry": shapely.Point(109.5, 18.3), "properties": props}


def test_writes_match_geopackage(writable):
    ref, store = writable
    layer = LAYERS["incidents"]
    first = ref.query(layer, Query(limit=1)).features[0]["id"]
    for s in (ref, store):
        assert s.insert(layer, [_incident("TYT1"), _incident("TYT2")]) == ["TYT1", "TYT2"]
        s.update(
            layer, "TYT1", {"status": "dispatched", "satisfaction": 4}, shapely.Point(109.51, 18.31)
        )
        s.replace(layer, "TYT2", _incident("ignored", title="换了", priority="urgent"))
        s.delete(layer, first)
    for q in (Query(limit=10_000), Query(sortby=[("reported_at", False)], limit=5)):
        same_page(ref, store, layer, q)
    assert store.get(layer, "TYT2")["properties"]["title"] == "换了"
    assert store.get(layer, "TYT1")["geometry"]["coordinates"] == [109.51, 18.31]
    assert store.extent(layer)[1][1] == REPORTED  # cache cleared by writes


def test_write_errors(writable):
    ref, store = writable
    layer = LAYERS["incidents"]
    key = store.query(layer, Query(limit=1)).features[0]["id"]
    for s in (ref, store):
        with pytest.raises(Conflict):
            s.insert(layer, [_incident(key)])
        with pytest.raises(InvalidFeature):
            s.insert(layer, [_incident("TYBAD", category="not_a_category")])
        with pytest.raises(InvalidFeature):
            s.update(layer, key, {"status": "lost"})
        with pytest.raises(InvalidFeature):
            s.insert(layer, [_incident(None)])
        with pytest.raises(NotFound):
            s.delete(layer, "TYNONE")
        with pytest.raises(NotFound):
            s.update(layer, "TYNONE", {"status": "closed"})
        with pytest.raises(InvalidParameter):
            s.update(layer, key, {"no_such_field": 1})
    with pytest.raises(InvalidFeature):  # PostGIS also checks the geometry type
        store.insert(layer, [dict(_incident("TYPOLY"), geometry=shapely.box(0, 0, 1, 1))])
    with pytest.raises(InvalidFeature):
        store.update(layer, key, {"satisfaction": "five"})
    same_page(ref, store, layer, Query(limit=10_000))  # nothing half-written
    # a failed write inside a transaction leaves it usable (savepoint), like SQLite
    with store.transaction():
        with pytest.raises(Conflict):
            store.insert(layer, [_incident(key)])
        store.insert(layer, [_incident("TYAFTER")])
    assert store.get(layer, "TYAFTER")["id"] == "TYAFTER"


def test_transactions(writable):
    _, store = writable
    layer = LAYERS["incidents"]
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.insert(layer, [_incident("TYROLL")])
            assert store.get(layer, "TYROLL")["id"] == "TYROLL"  # visible inside
            raise RuntimeError("boom")
    with pytest.raises(NotFound):
        store.get(layer, "TYROLL")
    seen = []
    with store.transaction() as outer:
        seen.append(outer.execute("SELECT pg_backend_pid()").fetchone()[0])
        with store.transaction() as inner:  # nested: the same connection
            seen.append(inner.execute("SELECT pg_backend_pid()").fetchone()[0])
            store.insert(layer, [_incident("TYNEST")])
        store.update(layer, "TYNEST", {"status": "registered"})
        assert store.query(layer, Query(equals={"case_no": "TYNEST"})).number_matched == 1
        seen.append(outer.execute("SELECT pg_backend_pid()").fetchone()[0])
        # another thread does not see the uncommitted row
        other = []
        th = threading.Thread(
            target=lambda: other.append(
                store.query(layer, Query(equals={"case_no": "TYNEST"})).number_matched
            )
        )
        th.start()
        th.join(10)
        assert other == [0]
    assert len(set(seen)) == 1
    assert store.get(layer, "TYNEST")["properties"]["status"] == "registered"


def test_concurrent_writers(writable):
    _, store = writable
    layer = LAYERS["incidents"]
    errors = []

    def work(i):
        try:
            for j in range(10):
                store.insert(layer, [_incident(f"TYC{i}-{j}")])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    q = Query(where=parse_filter("case_no LIKE 'TYC%'"), limit=100)
    assert store.query(layer, q).number_matched == 60


# --- failure modes -------------------------------------------------------------------------------


def test_statement_timeout_is_store_unavailable(pg_url, schema, pg):
    layer = LAYERS["incidents"]
    store = PostGISStore(pg_url, schema=schema, statement_timeout=0.3)
    conninfo, _ = split_url(pg_url)
    with psycopg.connect(conninfo) as blocker:
        blocker.execute(f"LOCK TABLE {pg.table(layer)} IN ACCESS EXCLUSIVE MODE")
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable, match="timed out after 0.3 s"):
            store.query(layer, Query(limit=5))
        assert time.monotonic() - t0 < 5
        blocker.rollback()
    assert store.query(layer, Query(limit=5)).number_returned == 5  # and it recovers
    store.close()


def test_unreachable_server_is_store_unavailable():
    store = PostGISStore("postgresql://nobody:x@127.0.0.1:9/none", connect_timeout=1)
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unavailable"):
        store.query(LAYERS["incidents"], Query())
    assert time.monotonic() - t0 < 10
    store.close()


def test_lost_connections_recover(pg, pg_url, schema):
    """Every backend of the store is killed (as in a restart); the next calls work."""
    app = f"tianya-test-{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in pg_url else "?"
    store = PostGISStore(f"{pg_url}{sep}application_name={app}", schema=schema)
    layer = LAYERS["incidents"]
    assert store.query(layer, Query(limit=3)).number_returned == 3
    conninfo, _ = split_url(pg_url)
    with psycopg.connect(conninfo, autocommit=True) as c:
        killed = c.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            [app],
        ).fetchone()[0]
    assert killed >= 1
    time.sleep(0.2)
    for _ in range(3):
        assert store.query(layer, Query(limit=3)).number_returned == 3
    store.close()


def test_a_pool_left_in_reconnect_backoff_is_renewed_once_postgresql_answers(pg, pg_url, schema):
    """After an outage psycopg_pool retries with doubling delays, so a pool may give no
    connection for many seconds after PostgreSQL is back (CI: a session server answered 503
    19 s after a restart). Here the pool is one whose every attempt fails (a closed port)
    while the store's own address answers: the request is served from a renewed pool, and
    when PostgreSQL does not answer either it is still a 503 naming the outage."""
    from psycopg_pool import ConnectionPool

    store = PostGISStore(pg_url, schema=schema, connect_timeout=1)
    layer = LAYERS["incidents"]
    assert store.query(layer, Query(limit=3)).number_returned == 3
    dead = dict(store._pool_args, conninfo="host=127.0.0.1 port=9 dbname=x connect_timeout=1")
    stuck = ConnectionPool(**dead)
    stuck.open(wait=False)
    store._pool.close()
    store._pool = stuck
    t0 = time.monotonic()
    assert store.query(layer, Query(limit=3)).number_returned == 3
    assert store._pool is not stuck and stuck.closed
    assert time.monotonic() - t0 < 10
    # PostgreSQL itself unreachable: the outage is still reported, not hidden
    gone = PostGISStore(
        "postgresql://tianya:tianya@127.0.0.1:9/tianya", schema=schema, connect_timeout=1
    )
    with pytest.raises(StoreUnavailable, match="unavailable: no connection within 1 s"):
        gone.query(layer, Query(limit=3))
    gone.close()
    store.close()


@pytest.mark.exclusive  # restarts PostgreSQL: no other test may use it meanwhile
@pytest.mark.skipif(
    not (os.environ.get("CI") or os.environ.get("TIANYA_TEST_PG_RESTART")),
    reason="restarts the PostgreSQL server: set TIANYA_TEST_PG_RESTART=1",
)
def test_postgresql_restart_mid_run(pg, pg_url, schema):
    cmd = os.environ.get("TIANYA_TEST_PG_RESTART_CMD", "pg_ctlcluster 15 main restart")
    store = PostGISStore(pg_url, schema=schema, connect_timeout=5)
    layer = LAYERS["incidents"]
    assert store.query(layer, Query(limit=3)).number_returned == 3
    subprocess.run(shlex.split(cmd), check=True, timeout=120)
    deadline, ok, errors = time.monotonic() + 60, False, []
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            ok = store.query(layer, Query(limit=3)).number_returned == 3
            break
        except StoreUnavailable as exc:  # allowed while it comes back, never a hang
            errors.append(str(exc))
            assert time.monotonic() - t0 < 15
            time.sleep(0.5)
    assert ok, errors
    for _ in range(3):
        assert store.query(layer, Query(limit=3)).number_returned == 3
    store.close()
