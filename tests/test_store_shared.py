"""What the Store base gives both stores: one value rule, context managers, shared writes.

Each test runs on the GeoPackage and on PostGIS (``[postgis]`` needs ``TIANYA_TEST_PG``).
"""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest
import shapely

from layers.catalogue import LAYERS
from layers.errors import InvalidFeature
from layers.query import Query
from layers.stores import open_store

INC = LAYERS["incidents"]
PARTY = LAYERS["party_building"]


@pytest.fixture(scope="module")
def small():
    from geodata.sample import generate

    data = generate(seed=7, n_incidents=120)
    return {
        "incidents": data["incidents"].iloc[:40].copy(),
        "party_building": data["party_building"].iloc[:10].copy(),
    }


def _pg_location() -> str:
    from stores import pg_base_url, with_options

    return with_options(pg_base_url(), schema=f"shared_{uuid.uuid4().hex[:10]}")


def _drop(url: str) -> None:
    import psycopg

    from layers.postgis import split_url

    conninfo, opts = split_url(url)
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{opts["schema"]}" CASCADE')


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def location(request, tmp_path):
    """An empty store's location (a GeoPackage path or a PostGIS URL with its own schema)."""
    if request.param == "gpkg":
        yield str(tmp_path / "shared.gpkg")
        return
    url = _pg_location()
    yield url
    _drop(url)


@pytest.fixture
def store(location, small):
    with open_store(location) as s:
        for lid, frame in small.items():
            s.write_frame(LAYERS[lid], frame)
        yield s


def _open(store) -> bool:
    """Whether the store holds an open connection (or connection pool)."""
    if hasattr(store, "_pool"):
        return store._opened
    return len(store._cons) > 0


# --- context manager ---------------------------------------------------------------------------


def test_store_is_a_context_manager_that_closes(location, small):
    with open_store(location) as s:
        s.write_frame(INC, small["incidents"])
        assert s.query(INC, Query(limit=5)).number_returned == 5
        assert _open(s)
    assert not _open(s)
    s.close()  # idempotent
    s.close()
    assert not _open(s)
    # a closed store opens again on its next use, and closes again on exit
    with s:
        assert s.query(INC, Query(limit=3)).number_returned == 3
    assert not _open(s)


def test_context_manager_closes_on_error(location, small):
    with pytest.raises(RuntimeError), open_store(location) as s:
        s.write_frame(INC, small["incidents"])
        raise RuntimeError("boom")
    assert not _open(s)


# --- one value rule ----------------------------------------------------------------------------


def _incident(key, **over):
    props = {
        "case_no": key,
        "title": "测试",
        "category": "manhole_cover",
        "channel": "grid_app",
        "status": "collected",
        "territorial": False,
        "reported_at": "2026-11-25T01:02:03.000Z",
    }
    props.update(over)
    return {"geometry": shapely.Point(109.5, 18.3), "properties": props}


@pytest.mark.parametrize(
    "value, stored",
    [
        ("2026-11-16T16:00:00+08:00", "2026-11-16T08:00:00.000Z"),  # aware text: to UTC
        ("2026-11-16T08:00:00", "2026-11-16T08:00:00.000Z"),  # naive text: taken as UTC
        (
            dt.datetime(2026, 11, 16, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
            "2026-11-16T08:00:00.000Z",
        ),
        (dt.datetime(2026, 11, 16, 8, 0), "2026-11-16T08:00:00.000Z"),  # naive: UTC
        (pd.Timestamp("2026-11-16T08:00:00.123456Z"), "2026-11-16T08:00:00.123Z"),
    ],
)
def test_datetimes_are_stored_in_utc_alike(store, value, stored):
    store.insert(INC, [_incident("TYV1", reported_at=value)])
    assert store.get(INC, "TYV1")["properties"]["reported_at"] == stored
    store.update(INC, "TYV1", {"reported_at": value})
    assert store.get(INC, "TYV1")["properties"]["reported_at"] == stored


@pytest.mark.parametrize(
    "value", ["now", "yesterday", "infinity", "16/11/2026", "0001-01-01T00:00:00+08:00"]
)
def test_datetime_text_must_be_rfc3339_in_range(store, value):
    # PostGIS used to store PostgreSQL's own words ('now'…); the GeoPackage raised a bare
    # ValueError (HTTP 500) for them: both refuse them now as an invalid feature
    with pytest.raises(InvalidFeature, match="reported_at"):
        store.insert(INC, [_incident("TYBAD", reported_at=value)])
    key = store.query(INC, Query(limit=1)).features[0]["id"]
    with pytest.raises(InvalidFeature, match="reported_at"):
        store.update(INC, key, {"reported_at": value})


def test_date_field_keeps_the_day(store):
    key = store.query(PARTY, Query(limit=1)).features[0]["id"]
    # the GeoPackage used to store a datetime given for a date as '2020-05-01 23:30:00'
    store.update(PARTY, key, {"established": dt.datetime(2020, 5, 1, 23, 30)})
    assert store.get(PARTY, key)["properties"]["established"] == "2020-05-01"
    store.update(PARTY, key, {"established": dt.date(2019, 4, 2)})
    assert store.get(PARTY, key)["properties"]["established"] == "2019-04-02"
    with pytest.raises(InvalidFeature, match="established"):  # was stored as given
        store.update(PARTY, key, {"established": "2019-13-45"})


def test_frame_datetimes_as_text_are_normalised(location, small):
    frame = small["incidents"].copy()
    t = pd.to_datetime(frame["reported_at"], utc=True)
    frame["reported_at"] = t.dt.tz_convert("Asia/Shanghai").map(lambda v: v.isoformat())
    with open_store(location) as s:
        s.write_frame(INC, frame)
        got = [f["properties"]["reported_at"] for f in s.query(INC, Query(limit=100)).features]
    want = [v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z" for v in t]
    assert got == want  # the GeoPackage kept the '+08:00' text as given


def test_booleans_and_missing_values_read_back_alike(store):
    store.insert(INC, [_incident("TYB1", territorial=True, satisfaction=float("nan"))])
    props = store.get(INC, "TYB1")["properties"]
    assert props["territorial"] is True
    assert props["satisfaction"] is None
    frame = store.read_frame(INC, Query(equals={"case_no": "TYB1"}, limit=0))
    assert str(frame["territorial"].dtype) == "boolean" and bool(frame["territorial"].iloc[0])
    assert str(frame["reported_at"].dt.tz) == "UTC"
