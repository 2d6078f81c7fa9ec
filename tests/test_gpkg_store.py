"""The GeoPackage store: a valid GeoPackage, queries equal to independent computations."""

import datetime as dt
import sqlite3
import subprocess

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from layers.catalogue import LAYERS
from layers.errors import Conflict, InvalidParameter, NotFound
from layers.gpkg import GeoPackageStore
from layers.query import Query, parse_filter

pytestmark = pytest.mark.both_stores  # GeoPackage and PostGIS (tests/stores.py)

INC = LAYERS["incidents"]
BLD = LAYERS["building_population"]


def ids(page):
    return [f["id"] for f in page.features]


def test_gdal_opens_it_and_integrity_holds(sample_gpkg):
    out = subprocess.run(
        ["ogrinfo", "-ro", "-so", sample_gpkg], capture_output=True, text=True, check=True
    ).stdout
    for lid in LAYERS:
        assert lid in out
    con = sqlite3.connect(sample_gpkg)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
    info = subprocess.run(
        ["ogrinfo", "-ro", "-so", sample_gpkg, "incidents"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Feature Count: 5600" in info


def test_gdal_uses_the_rtree(sample_gpkg, sample_data):
    # GDAL answers a spatial filter through our R-tree: same count as shapely
    bbox = (109.47, 18.28, 109.50, 18.31)
    out = subprocess.run(
        ["ogrinfo", "-ro", "-q", "-geom=NO", "-spat", *map(str, bbox), sample_gpkg, "incidents"],
        capture_output=True,
        text=True,
        check=True,
    )
    inc = sample_data["incidents"]
    expect = inc.cx[bbox[0] : bbox[2], bbox[1] : bbox[3]].shape[0]
    assert out.stdout.count("OGRFeature(incidents)") == expect
    assert "Warning" not in out.stderr  # e.g. non-conformant DATETIME text


def test_paging_and_counts(gpkg_store, sample_data):
    inc = sample_data["incidents"]
    p = gpkg_store.query(INC, Query(limit=100, offset=250))
    assert ids(p) == inc["case_no"].iloc[250:350].tolist()
    assert p.number_matched == len(inc)
    tail = gpkg_store.query(INC, Query(limit=100, offset=len(inc) - 30))
    assert tail.number_returned == 30 and tail.number_matched == len(inc)


def test_bbox_points_and_polygons(gpkg_store, sample_data):
    bbox = (109.46, 18.27, 109.49, 18.30)
    got = gpkg_store.query(INC, Query(bbox=bbox, limit=10000))
    inc = sample_data["incidents"]
    box = shapely.box(*bbox)
    assert set(ids(got)) == set(inc.loc[inc.intersects(box), "case_no"])
    got = gpkg_store.query(BLD, Query(bbox=bbox, limit=10000))
    b = sample_data["building_population"]
    assert set(ids(got)) == set(b.loc[b.intersects(box), "building_code"])


def test_interval_and_equality(gpkg_store, sample_data):
    lo = dt.datetime(2026, 9, 12, tzinfo=dt.UTC)
    hi = dt.datetime(2026, 9, 14, 23, 59, 59, tzinfo=dt.UTC)
    got = gpkg_store.query(
        INC, Query(interval=(lo, hi), equals={"category": "waterlogging"}, limit=10000)
    )
    inc = sample_data["incidents"]
    m = (
        (inc["reported_at"] >= lo)
        & (inc["reported_at"] <= hi)
        & (inc["category"] == "waterlogging")
    )
    assert ids(got) == inc.loc[m, "case_no"].tolist() and m.sum() > 0


@pytest.mark.parametrize(
    "cql, expect",
    [
        ("category = 'street_light'", lambda d: d["category"] == "street_light"),
        (
            "satisfaction >= 4 AND channel <> 'hotline'",
            lambda d: (d["satisfaction"] >= 4).fillna(False) & (d["channel"] != "hotline"),
        ),
        ("title LIKE '金鸡岭%'", lambda d: d["title"].str.startswith("金鸡岭")),
        ("title NOT LIKE '%垃圾%'", lambda d: ~d["title"].str.contains("垃圾")),
        (
            "category IN ('waterlogging', 'fallen_tree')",
            lambda d: d["category"].isin(["waterlogging", "fallen_tree"]),
        ),
        ("satisfaction BETWEEN 3 AND 4", lambda d: d["satisfaction"].between(3, 4).fillna(False)),
        ("closed_at IS NULL", lambda d: d["closed_at"].isna()),
        (
            "NOT (status = 'evaluated') OR priority = 'urgent'",
            lambda d: (d["status"] != "evaluated") | (d["priority"] == "urgent"),
        ),
        (
            "reported_at > TIMESTAMP('2026-10-01T00:00:00Z')",
            lambda d: d["reported_at"] > pd.Timestamp("2026-10-01", tz="UTC"),
        ),
        ("CASEI(channel) = CASEI('WeChat')", lambda d: d["channel"] == "wechat"),
    ],
)
def test_cql2_matches_pandas(gpkg_store, sample_data, cql, expect):
    inc = sample_data["incidents"]
    got = gpkg_store.query(INC, Query(where=parse_filter(cql), limit=10000, skip_geometry=True))
    want = inc.loc[expect(inc).astype(bool), "case_no"].tolist()
    assert ids(got) == want and len(want) > 0
    assert got.number_matched == len(want)


@pytest.mark.parametrize(
    "op",
    ["intersects", "within", "disjoint", "contains", "touches", "overlaps", "crosses", "equals"],
)
def test_spatial_predicates_match_shapely(gpkg_store, sample_data, op):
    b = sample_data["building_population"]
    # a literal that some features satisfy, for each predicate
    edge = shapely.LineString(b.geometry.iloc[7].exterior.coords[:2])
    area = {
        "equals": b.geometry.iloc[100],
        "contains": b.geometry.iloc[100].representative_point(),
        "touches": edge,
        "crosses": shapely.LineString([(109.40, 18.28), (109.52, 18.32)]),
    }.get(op, shapely.Point(109.48, 18.29).buffer(0.004))
    wkt = shapely.to_wkt(area, rounding_precision=-1)
    got = gpkg_store.query(
        BLD,
        Query(
            where=parse_filter(f"S_{op.upper()}(geometry, {wkt})"), limit=10000, skip_geometry=True
        ),
    )
    method = "geom_equals" if op == "equals" else op
    want = b.loc[getattr(b.geometry, method)(area), "building_code"].tolist()
    assert ids(got) == want
    assert want


def test_like_is_case_sensitive_as_cql2_says(gpkg_store):
    q = Query(where=parse_filter("channel LIKE 'WeChat'"), limit=10)
    assert gpkg_store.query(INC, q).number_matched == 0
    q = Query(where=parse_filter("CASEI(channel) LIKE CASEI('WeChat')"), limit=10)
    assert gpkg_store.query(INC, q).number_matched > 0


def test_wrong_geometry_type_is_refused(writable_gpkg):
    from layers.errors import InvalidFeature

    store = GeoPackageStore(writable_gpkg)
    props = dict(
        {f.name: None for f in INC.fields},
        case_no="X1",
        title="x",
        category="other",
        channel="wechat",
    )
    with pytest.raises(InvalidFeature, match="Point"):
        store.insert(INC, [{"geometry": shapely.box(0, 0, 1, 1), "properties": props}])


def test_cql2_json_and_bbox_literal(gpkg_store, sample_data):
    inc = sample_data["incidents"]
    js = (
        '{"op": "and", "args": [{"op": "s_intersects", "args": [{"property": "geometry"}, '
        '{"bbox": [109.46, 18.27, 109.49, 18.30]}]}, {"op": "=", "args": '
        '[{"property": "channel"}, "wechat"]}]}'
    )
    got = gpkg_store.query(INC, Query(where=parse_filter(js), limit=10000))
    box = shapely.box(109.46, 18.27, 109.49, 18.30)
    want = inc.loc[inc.intersects(box) & (inc["channel"] == "wechat"), "case_no"].tolist()
    assert ids(got) == want and want
    txt = parse_filter("S_WITHIN(geometry, BBOX(109.46, 18.27, 109.49, 18.30))")
    assert len(ids(gpkg_store.query(INC, Query(where=txt, limit=10000)))) == inc.within(box).sum()


def test_sortby_properties_skip_geometry(gpkg_store, sample_data):
    inc = sample_data["incidents"]
    got = gpkg_store.query(
        INC,
        Query(
            sortby=[("satisfaction", False), ("case_no", True)],
            properties=["satisfaction"],
            skip_geometry=True,
            limit=50,
        ),
    )
    want = inc.sort_values(["satisfaction", "case_no"], ascending=[False, True], na_position="last")
    assert [f["properties"]["satisfaction"] for f in got.features] == want["satisfaction"].head(
        50
    ).tolist()
    assert all(
        f["geometry"] is None and set(f["properties"]) == {"satisfaction"} for f in got.features
    )


@pytest.mark.parametrize(
    "crs",
    [
        "EPSG:4326",
        "EPSG:4490",
        "EPSG:3857",
        "EPSG:32649",
        "http://www.opengis.net/def/crs/EPSG/0/32649",
    ],
)
def test_output_crs_matches_pyproj(gpkg_store, sample_data, crs):
    got = gpkg_store.query(INC, Query(limit=20), target_crs=crs)
    inc = sample_data["incidents"].head(20)
    code = crs.rsplit("/", 1)[-1] if "/" in crs else crs
    t = pyproj.Transformer.from_crs("OGC:CRS84", code if ":" in code else f"EPSG:{code}")
    a, b = t.transform(inc.geometry.x.to_numpy(), inc.geometry.y.to_numpy())
    xy = np.array([f["geometry"]["coordinates"] for f in got.features])
    np.testing.assert_allclose(xy[:, 0], a, rtol=0, atol=1e-6)
    np.testing.assert_allclose(xy[:, 1], b, rtol=0, atol=1e-6)
    if code in ("EPSG:4326", "EPSG:4490"):  # latitude first, as the EPSG axis order says
        assert (xy[:, 0] < 30).all() and (xy[:, 1] > 100).all()


def test_bad_filters_are_refused(gpkg_store):
    for bad in ["category = ", "nosuch = 1 AND", "S_INTERSECTS(geometry)", "{not json"]:
        with pytest.raises(InvalidParameter, match="malformed"):
            parse_filter(bad)
    with pytest.raises(InvalidParameter, match="nosuch"):
        gpkg_store.query(INC, Query(where=parse_filter("nosuch = 1")))


def test_writes_keep_the_rtree_current(writable_gpkg):
    store = GeoPackageStore(writable_gpkg)
    props = {f.name: None for f in INC.fields}
    props.update(case_no="TEST0001", title="测试", category="street_light", channel="wechat")
    far = shapely.Point(109.30, 18.45)
    store.insert(INC, [{"geometry": far, "properties": props}])
    box = (109.299, 18.449, 109.301, 18.451)
    assert ids(store.query(INC, Query(bbox=box))) == ["TEST0001"]
    store.update(INC, "TEST0001", {"title": "改"}, shapely.Point(109.20, 18.50))
    assert ids(store.query(INC, Query(bbox=box))) == []
    assert ids(store.query(INC, Query(bbox=(109.19, 18.49, 109.21, 18.51)))) == ["TEST0001"]
    with pytest.raises(Conflict):
        store.insert(INC, [{"geometry": far, "properties": props}])
    store.delete(INC, "TEST0001")
    with pytest.raises(NotFound):
        store.get(INC, "TEST0001")
    assert ids(store.query(INC, Query(bbox=(109.19, 18.49, 109.21, 18.51)))) == []
    store.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out = subprocess.run(
        ["ogrinfo", "-ro", "-so", writable_gpkg, "incidents"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Feature Count: 5600" in out


def test_failed_write_leaves_nothing(writable_gpkg):
    store = GeoPackageStore(writable_gpkg)
    props = {f.name: None for f in INC.fields}
    good = dict(props, case_no="OK1", title="a", category="other", channel="wechat")
    bad = dict(props, case_no="BAD1", title="b", category="not-a-code", channel="wechat")
    p = shapely.Point(109.4, 18.3)
    with pytest.raises(Exception, match="CHECK|constraint"):
        store.insert(INC, [{"geometry": p, "properties": good}, {"geometry": p, "properties": bad}])
    with pytest.raises(NotFound):
        store.get(INC, "OK1")


def test_read_frame_round_trip(gpkg_store, sample_data):
    frame = gpkg_store.read_frame(INC, Query(equals={"channel": "video"}))
    want = sample_data["incidents"]
    want = want[want["channel"] == "video"].reset_index(drop=True)
    assert frame["case_no"].tolist() == want["case_no"].tolist()
    assert (frame["reported_at"] == want["reported_at"]).all()
    assert frame.geometry.geom_equals_exact(want.geometry, 1e-9).all()


def test_close_closes_every_threads_connection(writable_gpkg):
    import threading

    store = GeoPackageStore(writable_gpkg)
    layer = LAYERS["departments"]
    opened, closed, after = threading.Event(), threading.Event(), []
    cons = []

    def work():
        cons.append(store.con)  # this thread's own connection
        opened.set()
        closed.wait(10)
        after.append(store.query(layer, Query(limit=1)).number_returned)  # reconnects

    t = threading.Thread(target=work)
    t.start()
    assert opened.wait(10)
    with store:  # the context manager closes them all, not only the calling thread's
        assert store.con is not cons[0]
    with pytest.raises(sqlite3.ProgrammingError):
        cons[0].execute("SELECT 1")
    closed.set()
    t.join(10)
    assert after == [1]
