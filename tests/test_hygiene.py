"""Data hygiene (issue "Safe to deploy", points 5 and 7), on both stores.

Each test reproduces a finding as it was reported and checks the safe answer:
implausible dates at intake and in queries (one case reported in year 0999 made the
supervision figures fail for everyone), filters the stores cannot run, non-finite
boxes, NUL characters, Open311 ``null`` values, revoked API keys and a reporter acting
on cases it did not report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time

import pytest
from casekit import GEOJSON, URBAN, Client, feature, headers
from conftest import KEYS, LiveServer
from pygeoapi.process.base import BaseProcessor
from pygeoapi.util import RequestedProcessExecutionMode
from pygeofilter import ast
from stores import writable_copy

from layers import access, cases, lifecycle
from layers.errors import Forbidden, InvalidFeature, InvalidParameter, NotAuthenticated
from layers.query import (
    DATE_MAX,
    DATE_MIN,
    FILTER_MAX_DEPTH,
    FILTER_MAX_TERMS,
    Query,
    format_datetime,
    parse_filter,
    parse_interval,
)
from layers.stores import open_store
from tianya.request import PRINCIPAL

pytestmark = pytest.mark.both_stores

INCIDENTS = cases.INCIDENTS
ITEMS = "/collections/incidents/items"
V2 = "/open311/v2"
RANGE = f"{DATE_MIN.isoformat()} to {DATE_MAX.isoformat()}"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
EPSG32649 = "http://www.opengis.net/def/crs/EPSG/0/32649"


@pytest.fixture(scope="module")
def server(store_kind, sample_gpkg):
    srv = LiveServer(writable_copy(store_kind, sample_gpkg, "hygiene"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server)


@pytest.fixture(scope="module")
def store(server):
    """The live server's own store, opened in the test process."""
    return open_store(server.data)


def _message(r) -> str:
    doc = r.json()
    return doc[0]["description"] if isinstance(doc, list) else doc["description"]


def _put(client, case_no, doc, role="dispatcher"):
    return client.session.put(
        f"{client.url}{ITEMS}/{case_no}",
        data=json.dumps(doc),
        headers=headers(role, **{"Content-Type": GEOJSON}),
        timeout=60,
    )


# --- implausible dates ------------------------------------------------------------------------


def test_far_past_report_is_refused_and_the_figures_keep_working(client):
    # the finding: 201, stored as '999-12-31…', then /supervision, /supervision/overdue and
    # the screen's summary answered 500 for everyone until an admin deleted the case
    for when in ("0999-12-31T08:00:00+08:00", "0999-12-31T00:00:00Z", "2101-01-01T00:00:00Z"):
        r = client.create(feature(reported_at=when))
        assert r.status_code == 400, r.text
        assert "'reported_at'" in _message(r) and RANGE in _message(r)
    # in range but old: only a trusted role may record it (a reporter: 30 days back)
    case_no = client.create_ok(feature(reported_at="1999-12-31T08:00:00+08:00"), "dispatcher")
    stored = client.item(case_no).json()["properties"]["reported_at"]
    assert stored == "1999-12-31T00:00:00.000Z"
    r = client.patch(case_no, {"reported_at": "0999-12-31T00:00:00Z"}, "dispatcher")
    assert r.status_code == 400 and RANGE in _message(r)
    doc = client.item(case_no).json()
    doc["properties"]["reported_at"] = "0999-12-31T00:00:00Z"
    r = _put(client, case_no, doc)
    assert r.status_code == 400 and RANGE in _message(r)
    assert client.item(case_no).json()["properties"]["reported_at"] == stored
    assert client.get("/supervision").status_code == 200
    assert client.get("/supervision?by=week").status_code == 200
    assert client.get("/supervision/overdue", "dispatcher").status_code == 200
    assert client.get("/screen/summary.json").status_code == 200


def test_library_intake_refuses_the_date_too(store):
    who = access.Principal("app", "reporter")
    with pytest.raises(InvalidFeature, match="outside the accepted range"):
        cases.create_case(store, feature(reported_at="0999-12-31T00:00:00Z"), who)


@pytest.mark.parametrize(
    "path, params, role",
    [
        (ITEMS, {"datetime": "0999-12-31/.."}, None),
        (ITEMS, {"datetime": "0999-12-31T00:00:00Z"}, None),
        (ITEMS, {"datetime": "../2101-01-01"}, None),
        (ITEMS, {"datetime": "9999-12-31T23:00:00-14:00"}, None),
        (ITEMS, {"datetime": "0001-01-01T00:00:00+14:00"}, None),
        (ITEMS, {"reported_at": "0999-12-31T00:00:00Z"}, None),
        (ITEMS, {"filter": "reported_at > TIMESTAMP('0999-12-31T00:00:00Z')"}, None),
        (ITEMS, {"filter": "reported_at > TIMESTAMP('0001-01-01T00:00:00+14:00')"}, None),
        (ITEMS, {"filter": "reported_at < DATE('0999-12-31')"}, None),
        (ITEMS, {"filter": "reported_at < '0999-12-31'"}, None),
        (ITEMS, {"filter": "reported_at BETWEEN '0999-01-01' AND '2026-01-01T00:00:00Z'"}, None),
        ("/supervision", {"datetime": "0999-12-31/.."}, None),
        ("/supervision", {"now": "9999-12-31T23:00:00-14:00"}, None),
        ("/supervision/overdue", {"now": "0001-01-01T00:00:00+14:00"}, "dispatcher"),
        (V2 + "/requests.json", {"start_date": "0999-12-31T00:00:00Z"}, None),
    ],
)
def test_queries_refuse_dates_outside_the_range(client, path, params, role):
    # year-1/9999 instants with ±14:00 offsets answered 500 (overflow); dates before year
    # 1000 gave wrong answers (compared as text against four-digit stored years)
    r = client.get(path, role, params=params)
    assert r.status_code == 400, r.text
    assert RANGE in _message(r)


def test_text_that_is_no_date_is_refused_for_a_date_field(client):
    # the GeoPackage compared it as text and answered 200 (PostGIS refused it)
    r = client.get(ITEMS, params={"filter": "reported_at > 'not a date'"})
    assert r.status_code == 400 and "RFC 3339" in _message(r)
    assert client.get(ITEMS, params={"filter": "reported_at > '2026-11-01'", "limit": 1}).ok


def test_dates_within_the_range_still_work(client):
    assert client.get(ITEMS, params={"datetime": "1900-01-01/2100-12-31", "limit": 1}).ok
    assert client.get(ITEMS, params={"filter": "reported_at > DATE('1900-01-01')", "limit": 1}).ok
    assert client.get("/supervision", params={"now": "2100-12-31T23:59:59Z"}).ok
    lo, hi = parse_interval(f"{DATE_MIN.isoformat()}/{DATE_MAX.isoformat()}")
    assert lo.date() == DATE_MIN and hi.date() == DATE_MAX
    with pytest.raises(InvalidParameter, match=RANGE):
        parse_interval((DATE_MIN - dt.timedelta(days=1)).isoformat())
    with pytest.raises(InvalidParameter, match=RANGE):
        parse_interval("2100-12-31T23:00:00-02:00")  # 2101 in UTC


def test_storage_writes_four_digit_years():
    # the finding: strftime's %Y wrote year 999 as '999-12-31…'
    assert format_datetime(dt.datetime(999, 12, 31, tzinfo=dt.UTC)) == "0999-12-31T00:00:00.000Z"
    assert (
        format_datetime(dt.datetime(2026, 1, 2, 3, 4, 5, 678900, tzinfo=dt.UTC))
        == "2026-01-02T03:04:05.678Z"
    )


# --- filters the stores cannot run ----------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"filter": "satisfaction = 99999999999999999999999"}, "64-bit"),
        (
            {
                "filter": "S_INTERSECTS(geometry, POLYGON((109.4 18.2, 109.5 18.3, 109.5 18.2, "
                "109.4 18.3, 109.4 18.2)))"
            },
            "Self-intersection",
        ),
        (
            {"filter": "S_INTERSECTS(geometry, POLYGON((109.4 18.2, 109.5 18.3, 109.4 18.2)))"},
            "not valid",
        ),
        ({"bbox": "nan,18.2,109.5,18.3"}, "finite"),
        ({"bbox": "-inf,2000000,12200000,2100000", "bbox-crs": EPSG3857}, "finite"),
        # shapely.segmentize raised GEOSException "Tolerance is too small": a 500
        ({"bbox": "0,0,1e300,1", "bbox-crs": EPSG3857}, "outside the area of use"),
        ({"bbox": "100000,2000000,120000,2100000", "bbox-crs": EPSG32649}, "x from 166021.44"),
    ],
)
def test_unrunnable_filters_are_400(client, params, match):
    # integers beyond 64 bits, invalid polygons and -inf with bbox-crs answered 500;
    # bbox=nan answered 200 with nothing in it
    r = client.get(ITEMS, params=params)
    assert r.status_code == 400, r.text
    assert match in _message(r)


@pytest.mark.parametrize(
    "params, status, match",
    [
        # transform_bounds gave NaN, then the raster provider failed on int(NaN): a 500
        (
            {"bbox": "-1e308,-1e308,1e308,1e308", "bbox-crs": EPSG3857},
            400,
            "outside the area of use",
        ),
        # finite bounds whose span is not: int(inf) in the cell count was a 500
        ({"subset": "Lat(-1e308:1e308),Long(-1e308:1e308)"}, 413, "over the limit"),
    ],
)
def test_coverage_boxes_beyond_any_grid_are_refused(live_server, params, status, match):
    r = live_server.get("/collections/dem/coverage", params={**params, "f": "json"})
    assert r.status_code == status, r.text[:300]
    assert match in r.json()["description"]


def test_a_subset_reaching_far_beyond_the_grid_answers_the_part_on_it(live_server):
    # the crop of a subset whose bound is 1e308 was a NaN window in rasterio's mask: a 500
    r = live_server.get(
        "/collections/dem/coverage",
        params={"subset": "Lat(18.3:1e308),Long(109.3:109.31)", "f": "json"},
    )
    assert r.status_code == 200, r.text[:300]
    west, south, east, north = (float(v) for v in r.headers["Content-Bbox"].split(","))
    assert south == pytest.approx(18.3) and north == pytest.approx(18.63)  # the grid's top
    assert west == pytest.approx(109.3, abs=1e-3) and east == pytest.approx(109.31)


def test_a_box_covering_the_whole_projection_still_works(client):
    world = "-20037508.342789244,-20037508.342789244,20037508.342789244,20037508.342789244"
    r = client.get(ITEMS, params={"bbox": world, "bbox-crs": EPSG3857, "resulttype": "hits"})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["numberMatched"] > 0


def _posted_filter(client, doc: str):
    return client.session.post(
        client.url + ITEMS,
        data=doc,
        headers={"Content-Type": "application/query-cql-json"},
        timeout=60,
    )


def test_oversized_and_deep_filters_are_400_stating_the_limit(client):
    term = '{"op":"=","args":[{"property":"satisfaction"},1]}'
    deep = term
    for _ in range(2900):  # 2900-deep CQL2 JSON (RecursionError)
        deep = '{"op":"not","args":[' + deep + "]}"
    r = _posted_filter(client, deep)
    assert r.status_code == 400, r.text
    assert f"at most {FILTER_MAX_DEPTH}" in _message(r)
    many = '{"op":"and","args":[' + ",".join([term] * (FILTER_MAX_TERMS + 1)) + "]}"
    r = _posted_filter(client, many)
    assert r.status_code == 400, r.text
    assert f"at most {FILTER_MAX_TERMS}" in _message(r)
    ok = '{"op":"and","args":[' + ",".join([term] * FILTER_MAX_TERMS) + "]}"
    assert _posted_filter(client, ok).status_code == 200
    with pytest.raises(InvalidParameter, match=f"at most {FILTER_MAX_TERMS}"):
        parse_filter(" AND ".join(["satisfaction = 1"] * 4000))
    with pytest.raises(InvalidParameter, match=f"at most {FILTER_MAX_DEPTH}"):
        parse_filter(deep)


def test_stores_refuse_oversized_filter_trees(store):
    # 4000 ANDed terms reached the store's SQL compiler and overflowed the stack (500)
    term = ast.Equal(ast.Attribute("satisfaction"), 1)
    wide = term
    for _ in range(3999):
        wide = ast.And(wide, term)
    deep = term
    for _ in range(2900):
        deep = ast.Not(deep)
    for where, match in (
        (wide, f"at most {FILTER_MAX_TERMS}"),
        (deep, f"at most {FILTER_MAX_DEPTH}"),
    ):
        with pytest.raises(InvalidParameter, match=match):
            store.query(INCIDENTS, Query(where=where, limit=1), count=False)
    # the largest accepted filters run on the store (SQLite's parser has its own limit)
    widest = term
    for _ in range(FILTER_MAX_TERMS - 1):
        widest = ast.And(widest, term)
    nested = ast.Equal(ast.Function("lower", [ast.Attribute("title")]), "x")
    builders = (ast.Not, lambda d: ast.And(term, d), lambda d: ast.Or(d, term))
    for i in range(FILTER_MAX_DEPTH - 2):  # the function is the deepest level
        nested = builders[i % 3](nested)
    for where in (widest, nested):
        page = store.query(INCIDENTS, Query(where=where, limit=1), count=False)
        assert len(page.features) <= 1
    with pytest.raises(InvalidParameter, match=f"at most {FILTER_MAX_DEPTH}"):
        store.query(INCIDENTS, Query(where=ast.Not(ast.Not(nested)), limit=1), count=False)


# --- NUL characters and Open311 nulls -------------------------------------------------------


def test_nul_characters_are_refused_everywhere(client):
    r = client.create(feature(title="井盖\x00丢失"))
    assert r.status_code == 400 and "NUL" in _message(r), r.text
    r = client.create(feature(description="a\x00b"), role="dispatcher")
    assert r.status_code == 400 and "'description'" in _message(r)
    case_no = client.create_ok()
    r = client.patch(case_no, {"address": "x\x00"}, "dispatcher")
    assert r.status_code == 400 and "NUL" in _message(r)
    doc = client.item(case_no).json()
    doc["properties"]["title"] = "t\x00"
    assert _put(client, case_no, doc).status_code == 400
    r = client.move(case_no, "returned", "dispatcher", note="wrong\x00department")
    assert r.status_code == 400 and "NUL" in _message(r)
    form = {
        "api_key": KEYS["reporter"],
        "service_code": "manhole_cover",
        "lat": URBAN[1],
        "long": URBAN[0],
        "description": "井盖\x00丢失",
    }
    r = client.session.post(client.url + V2 + "/requests.json", data=form, timeout=60)
    assert r.status_code == 400 and "NUL" in _message(r), r.text
    r = client.session.post(client.url + V2 + "/requests.json", json=form, timeout=60)
    assert r.status_code == 400 and "NUL" in _message(r), r.text
    props = client.item(case_no).json()["properties"]
    assert props["status"] == "dispatched" and "\x00" not in json.dumps(props)


def test_open311_null_is_a_missing_value(client):
    body = {
        "api_key": KEYS["reporter"],
        "service_code": "manhole_cover",
        "lat": URBAN[1],
        "long": URBAN[0],
        "description": None,
        "address_string": None,
    }
    r = client.session.post(client.url + V2 + "/requests.json", json=body, timeout=60)
    assert r.status_code == 201, r.text
    props = client.item(r.json()[0]["service_request_id"]).json()["properties"]
    assert props["description"] is None and props["address"] is None
    assert props["title"] != "null"
    r = client.session.post(
        client.url + V2 + "/requests.json", json=dict(body, service_code=None), timeout=60
    )
    assert r.status_code == 400 and "'service_code' is required" in _message(r)


# --- API keys and the reporter's own cases --------------------------------------------------


def test_a_removed_key_stops_working_without_a_restart(tmp_path, monkeypatch):
    keys = tmp_path / "keys.yml"
    keys.write_text(
        "keys:\n  - {key: old-key, role: dispatcher, name: old}\n"
        "  - {key: kept-key, role: reporter, name: kept}\n"
    )
    assert access.authenticate("old-key", str(keys)).role == "dispatcher"
    keys.write_text("keys:\n  - {key: kept-key, role: reporter, name: kept}\n")
    with pytest.raises(NotAuthenticated):  # the finding: it kept working until a restart
        access.authenticate("old-key", str(keys))
    assert access.authenticate("kept-key", str(keys)).role == "reporter"
    reads = []
    monkeypatch.setattr(
        access, "_read_keys", lambda p, real=access._read_keys: reads.append(p) or real(p)
    )
    for _ in range(3):
        assert access.authenticate("kept-key", str(keys)).name == "kept"
    assert reads == []  # an unchanged file is not read again (one stat a request)
    keys.write_text("keys:\n  - {key: new-key, role: admin, name: new}\n")
    assert access.authenticate("new-key", str(keys)).role == "admin" and len(reads) == 1
    os.remove(keys)
    with pytest.raises(NotAuthenticated):
        access.authenticate("new-key", str(keys))


def _closed_sample_case(client) -> str:
    r = client.get(ITEMS, params={"status": "closed", "limit": 1})
    return r.json()["features"][0]["id"]


def test_a_reporter_acts_only_on_its_own_cases(client):
    # the finding: a reporter key could evaluate any closed case and read any history
    other = _closed_sample_case(client)
    r = client.move(other, "evaluated", "reporter", satisfaction=1)
    assert r.status_code == 403 and "cases it reported" in _message(r), r.text
    r = client.history(other, "reporter")
    assert r.status_code == 403 and "cases it reported" in _message(r)
    assert client.item(other).json()["properties"]["status"] == "closed"
    assert client.history(other, "dispatcher").status_code == 200
    assert client.move(other, "evaluated", "dispatcher").status_code == 200
    own = client.create_ok()
    assert client.history(own, "reporter").status_code == 200
    for to, role in (("handling", "admin"), ("feedback", "admin"), ("closed", "dispatcher")):
        assert client.move(own, to, role).status_code == 200
    r = client.move(own, "evaluated", "reporter", satisfaction=5)
    assert r.status_code == 200, r.text
    assert client.history("TY1999123199999", "reporter").status_code == 404


def test_library_reporters_are_told_apart_by_key_name(store):
    alice = access.Principal("alice app", "reporter")
    bob = access.Principal("bob app", "reporter")
    admin = access.Principal("root", "admin")
    case_no = cases.create_case(store, feature(), alice)["id"]
    for to in ("handling", "feedback", "closed"):
        lifecycle.transition(store, case_no, to, admin)
    with pytest.raises(Forbidden, match="cases it reported"):
        lifecycle.transition(store, case_no, "evaluated", bob, satisfaction=1)
    with pytest.raises(Forbidden):
        lifecycle.require_reporter_of(bob, case_no, lifecycle.history(store, case_no))
    feat = lifecycle.transition(store, case_no, "evaluated", alice, satisfaction=4)
    assert feat["properties"]["status"] == "evaluated"
    assert feat["properties"]["satisfaction"] == 4


# --- internal errors of process runs ---------------------------------------------------------


#: What a psycopg error of a run said: SQL and the schema name.
LEAK = (
    'relation "tianya_secret.incidents_2026" does not exist\n'
    "LINE 1: SELECT geom, reporter_phone FROM tianya_secret.incidents_2026"
)


class Leaky(BaseProcessor):
    """A process whose library call fails with a database error (loaded by the manager)."""

    def __init__(self, processor_def):
        super().__init__(
            processor_def,
            {
                "id": "leaky",
                "title": "leaky",
                "version": "1",
                "jobControlOptions": ["sync-execute", "async-execute"],
                "inputs": {},
                "outputs": {},
            },
        )

    def execute(self, data, outputs=None):
        import psycopg

        raise psycopg.errors.UndefinedTable(LEAK)


@pytest.mark.parametrize("mode", [None, RequestedProcessExecutionMode.respond_async])
def test_internal_run_errors_are_logged_not_told(tmp_path, caplog, mode):
    """The 500 body and the job record held the psycopg message (SQL, schema name)."""
    from pygeoapi.process.base import ProcessorExecuteError

    from tianya.plugins.jobs import JobManager

    manager = JobManager(
        {
            "name": "tianya.plugins.jobs.JobManager",
            "connection": str(tmp_path / "j.sqlite"),
            "output_dir": str(tmp_path / "out"),
            "processes": {"leaky": {"processor": {"name": f"{__name__}.Leaky"}}},
        }
    )
    pattern = (
        r"process 'leaky' failed with an internal error "
        r"\(logged at \d{4}-\d\d-\d\dT[\d:.]+Z\)"
    )
    admin = access.Principal("ops", "admin")  # anonymous callers list no jobs
    with caplog.at_level("ERROR", logger="tianya.plugins.jobs"):
        if mode is None:
            with pytest.raises(ProcessorExecuteError) as info:
                manager.execute_process("leaky", {})
            assert info.value.http_status_code == 500
            told = [info.value.message, info.value.user_msg, str(info.value)]
            assert all(re.fullmatch(pattern, t) for t in told), told
        else:
            manager.execute_process("leaky", {}, execution_mode=mode)
        deadline = time.monotonic() + 60
        while True:
            token = PRINCIPAL.set(admin)
            try:
                jobs = manager.get_jobs()["jobs"]
            finally:
                PRINCIPAL.reset(token)
            if jobs[0]["status"] == "failed" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert [j["status"] for j in jobs] == ["failed"]
    record = json.dumps(jobs)
    assert "tianya_secret" not in record and "SELECT" not in record
    assert re.search(pattern, jobs[0]["message"]), jobs[0]["message"]
    # the detail is in the server log, at ERROR, with its traceback
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert any(LEAK in str(r.exc_info[1]) for r in logged), caplog.text
