"""Both stores, same tests: PostGIS fixtures and the ``both_stores`` marker.

Imported by ``conftest.py``. The PostGIS side needs ``TIANYA_TEST_PG`` (printed by
``eval "$(.ci/postgis.sh)"``); without it PostGIS tests skip, except when ``CI`` is
set, where they fail — and under ``CI`` any skipped test marked ``postgis`` is turned
into a failure, so a PostGIS test can never silently not run there.

Opting in
---------
* ``pytestmark = pytest.mark.both_stores`` in a module runs every test that uses
  ``live_server``, ``gpkg_store``, ``store_url`` or ``store_kind`` once per store
  (ids ``[gpkg]`` / ``[postgis]``); the PostGIS instances carry the ``postgis`` marker,
  so ``-m "not postgis"`` deselects them.
* ``store_url`` is the read-only session sample as a GeoPackage path or a
  ``postgresql://…?schema=…`` URL; :func:`writable_copy` makes a private writable copy
  of either kind (a copied file, or a fresh schema loaded with :mod:`layers.pgload`)
  that ``LiveServer(data=...)`` or :func:`layers.stores.open_store` accept.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

__all__ = [
    "live_server_pg",
    "pg_sample_url",
    "pg_url",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_make_collect_report",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "store_kind",
    "store_url",
]

STORES = ("gpkg", "postgis")
#: Schemas made by this test session, dropped at its end.
_SCHEMAS: list[str] = []


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "both_stores: run the module's store-dependent tests on the GeoPackage and on PostGIS",
    )


def pytest_generate_tests(metafunc):
    if "store_kind" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_stores"
    ):
        metafunc.parametrize(
            "store_kind",
            [
                pytest.param("gpkg", id="gpkg"),
                pytest.param("postgis", id="postgis", marks=pytest.mark.postgis),
            ],
            indirect=True,
            scope="session",
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and os.environ.get("CI"):
        rep.outcome = "failed"
        rep.longrepr = f"test skipped under CI (a skip fails the run): {rep.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # a whole module skipped at import (importorskip of a missing package) fails under CI too
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and os.environ.get("CI"):
        rep.outcome = "failed"
        rep.longrepr = f"module skipped under CI (a skip fails the run): {rep.longrepr}"


def pytest_sessionfinish(session, exitstatus):
    if _SCHEMAS and os.environ.get("TIANYA_TEST_PG"):
        from parallel import shared_run

        with shared_run():  # not while another xdist worker restarts PostgreSQL
            drop_schemas(os.environ["TIANYA_TEST_PG"])


def pg_base_url() -> str:
    """``TIANYA_TEST_PG``, or skip (fail under ``CI``)."""
    url = os.environ.get("TIANYA_TEST_PG")
    if not url:
        msg = 'TIANYA_TEST_PG is not set (run: eval "$(.ci/postgis.sh)")'
        if os.environ.get("CI"):
            pytest.fail(msg + " — PostGIS tests may not be skipped in CI")
        pytest.skip(msg)
    return url


def with_options(url: str, **options) -> str:
    """``url`` with store options (``schema``, ``statement_timeout``…) added or replaced."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    p = urlsplit(url)
    q = dict(parse_qsl(p.query))
    q.update({k: str(v) for k, v in options.items()})
    return urlunsplit(p._replace(query=urlencode(q)))


def load_schema(gpkg: str, base_url: str, prefix: str = "t") -> str:
    """Copy ``gpkg`` into a new schema; returns the store URL (``?schema=…``)."""
    from layers.pgload import load_gpkg

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = with_options(base_url, schema=schema)
    load_gpkg(gpkg, url, progress=False)
    _SCHEMAS.append(schema)
    return url


def drop_schemas(base_url: str) -> None:
    """Drop every schema :func:`load_schema` made in this process."""
    import psycopg

    from layers.postgis import split_url

    if not _SCHEMAS:
        return
    conninfo, _ = split_url(base_url)
    with psycopg.connect(conninfo, autocommit=True) as c:
        for s in _SCHEMAS:
            c.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
    _SCHEMAS.clear()


def writable_copy(kind: str, sample_gpkg: str, name: str) -> str:
    """A private writable copy of the session sample: a GeoPackage path or a PostGIS URL.

    Parameters
    ----------
    kind : {'gpkg', 'postgis'}
        Which store.
    sample_gpkg : str
        The session sample (the ``sample_gpkg`` fixture).
    name : str
        A short name (file name, or schema prefix).

    A GeoPackage copy sits beside the sample, so that every live server of the session
    shares the sample's ``rasters/`` folder (generated once, not per server).
    """
    from layers.gpkg import GeoPackageStore

    GeoPackageStore(sample_gpkg).con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if kind == "postgis":
        return load_schema(sample_gpkg, pg_base_url(), prefix=f"w_{name}"[:30])
    dest = os.path.join(os.path.dirname(sample_gpkg), f"{name}.gpkg")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(dest + suffix):
            os.remove(dest + suffix)
    shutil.copy(sample_gpkg, dest)
    return dest


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url():
    """The test database's base URL (``TIANYA_TEST_PG``)."""
    return pg_base_url()


@pytest.fixture(scope="session")
def pg_sample_url(pg_url, sample_gpkg):
    """The session sample GeoPackage loaded into a fresh schema (read-only by convention)."""
    from layers.gpkg import GeoPackageStore

    GeoPackageStore(sample_gpkg).con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return load_schema(sample_gpkg, pg_url, prefix="sample")


@pytest.fixture(scope="session")
def store_kind(request):
    """``'gpkg'`` or ``'postgis'``; parametrized in ``both_stores`` modules."""
    return getattr(request, "param", "gpkg")


@pytest.fixture(scope="session")
def store_url(store_kind, request):
    """The read-only session sample in the store ``store_kind`` (path or URL)."""
    if store_kind == "postgis":
        return request.getfixturevalue("pg_sample_url")
    return request.getfixturevalue("sample_gpkg")


@pytest.fixture(scope="session")
def live_server_pg(pg_sample_url):
    """A live server on the PostGIS copy of the session sample."""
    from conftest import LiveServer

    server = LiveServer(pg_sample_url)
    yield server
    server.stop()
