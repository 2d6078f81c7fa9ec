"""The seam to pygeoapi (tianya.compat): checked at start-up, and every replacement in effect.

The refusal tests fake a changed pygeoapi (a target with another signature, a removed
attribute, a handler that no longer looks the replaced function up) and see ``create_app``
refuse, naming each mismatch, before pygeoapi's app is imported.  The others run one
in-process app (pygeoapi's Flask app is built once per process, at import) on a private copy
of the sample and check each replacement through HTTP requests.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from casekit import feature
from conftest import KEYS, KEYS_FILE

from tianya import compat
from tianya.app import create_app
from tianya.settings import Settings

pytestmark = pytest.mark.timeout(300)


# --- refusal at start-up --------------------------------------------------------------------------


def test_create_app_refuses_a_changed_signature_and_a_removed_attribute(monkeypatch):
    import pygeoapi.api.itemtypes as itemtypes
    import pygeoapi.error

    imported = "pygeoapi.flask_app" in sys.modules
    monkeypatch.setattr(itemtypes, "transform_bbox", lambda bbox, crs: bbox)
    monkeypatch.delattr(pygeoapi.error.GenericError, "http_status_code")
    with pytest.raises(compat.IncompatiblePygeoapi) as info:
        create_app(settings=Settings.from_env())
    text = str(info.value)
    assert (
        "pygeoapi.api.itemtypes.transform_bbox: expected parameters (bbox, from_crs, "
        "to_crs, always_xy), found (bbox, crs)"
    ) in text
    assert (
        "pygeoapi.provider.base.ProviderGenericError: attribute 'http_status_code' missing" in text
    )
    assert f"pygeoapi {pygeoapi.__version__}" in text
    assert ("pygeoapi.flask_app" in sys.modules) == imported  # refused before pygeoapi's app


def test_create_app_refuses_when_the_collections_list_no_longer_uses_the_filter(monkeypatch):
    """If /collections stopped calling filter_dict_by_key_value, poverty_relief would be
    listed to the public again: the server must not start."""
    import pygeoapi.api

    def describe_collections(api, request, dataset=None):
        return {}, 200, "{}"

    monkeypatch.setattr(pygeoapi.api, "describe_collections", describe_collections)
    with pytest.raises(
        compat.IncompatiblePygeoapi,
        match=r"pygeoapi\.api\.describe_collections: "
        r"no longer looks up filter_dict_by_key_value",
    ):
        create_app(settings=Settings.from_env())


def test_every_target_holds_for_the_installed_pygeoapi():
    compat.check()
    assert len(compat.TARGETS) >= 20


@pytest.mark.parametrize("target", compat.TARGETS, ids=lambda t: t.name)
def test_a_missing_target_is_named(monkeypatch, target):
    """Each target is really checked: resolving it fails, and the message names it."""
    monkeypatch.setattr(compat, "_resolve", _failing_for(compat._resolve, target.name))
    with pytest.raises(compat.IncompatiblePygeoapi, match=f"{target.name}: not found"):
        compat.check()


def _failing_for(resolve, name):
    def fake(dotted):
        if dotted == name:
            raise AttributeError(dotted)
        return resolve(dotted)

    return fake


# --- the replacements in effect, through a live app ------------------------------------------


@pytest.fixture(scope="module")
def client(sample_gpkg, tmp_path_factory):
    """An in-process app (the shell and pygeoapi) on a private copy of the sample."""
    import shutil

    from werkzeug.test import Client

    from layers.gpkg import GeoPackageStore
    from tianya import settings as tianya_settings

    data = str(tmp_path_factory.mktemp("compat") / "tianya.gpkg")
    GeoPackageStore(sample_gpkg).con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(sample_gpkg, data)
    saved_env, saved = dict(os.environ), tianya_settings._CURRENT
    jobs = tmp_path_factory.mktemp("compat-jobs")
    app = create_app(
        settings=Settings.from_env(
            data=data,
            keys=KEYS_FILE,
            rasters=os.path.join(os.path.dirname(sample_gpkg), "rasters"),
            jobs=str(jobs / "jobs.sqlite"),
            job_results=str(jobs / "results"),
        )
    )
    yield Client(app)
    os.environ.clear()
    os.environ.update(saved_env)
    tianya_settings._CURRENT = saved


def _auth(role):
    return {"Authorization": f"Bearer {KEYS[role]}"} if role else {}


def test_configure_passed_the_settings_to_pygeoapi(client):
    """The ${TIANYA_…} placeholders resolved from the settings object: links name its url."""
    r = client.get("/collections/incidents?f=json")
    assert r.status_code == 200
    assert "http://localhost:5000/collections/incidents" in r.get_data(as_text=True)
    from pygeoapi.flask_app import CONFIG

    incidents = CONFIG["resources"]["incidents"]["providers"][0]
    assert incidents["data"] == os.environ["TIANYA_DATA"]


@pytest.mark.parametrize("role,listed", [(None, False), ("admin", True)])
def test_collections_are_listed_by_role(client, role, listed):
    r = client.get("/collections?f=json", headers=_auth(role))
    ids = {c["id"] for c in r.get_json()["collections"]}
    assert "incidents" in ids
    assert ("poverty_relief" in ids) is listed


def test_a_bbox_in_the_storage_crs_is_not_transformed(client, monkeypatch):
    """pygeoapi built a pyproj transformer for every bbox, even CRS84 to CRS84."""
    import pyproj

    made = []
    original = pyproj.Transformer.from_crs

    def counting(*args, **kwargs):
        made.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(pyproj.Transformer, "from_crs", staticmethod(counting))
    base = "/collections/incidents/items?f=json&limit=5"
    plain = client.get(base)
    before = len(made)
    boxed = client.get(base + "&bbox=109.3,18.2,109.6,18.4")
    assert plain.status_code == boxed.status_code == 200
    assert boxed.get_json()["numberReturned"] > 0
    assert len(made) == before  # no transformer for the bbox
    from pygeoapi.api import itemtypes
    from pygeoapi.crs import DEFAULT_STORAGE_CRS

    itemtypes.transform_bbox(
        [0, 0, 1, 1], DEFAULT_STORAGE_CRS, "http://www.opengis.net/def/crs/EPSG/0/3857"
    )
    assert len(made) == before + 1  # another CRS is still transformed (the spy works)


def test_items_keep_angle_brackets_as_json_escapes(client):
    """pygeoapi's encoder rewrote every < and > of the data as &lt; / &gt;."""
    title = "<b>井盖丢失</b> a < b > c"
    r = client.post(
        "/collections/incidents/items",
        data=json.dumps(feature(title=title)),
        headers={**_auth("reporter"), "Content-Type": "application/geo+json"},
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    path = r.headers["Location"].split("://", 1)[-1].split("/", 1)[-1]
    got = client.get(f"/{path}?f=json", headers=_auth("admin"))
    text = got.get_data(as_text=True)
    assert got.status_code == 200
    assert "&lt;" not in text and "<" not in text and "\\u003cb\\u003e" in text
    assert got.get_json()["properties"]["title"] == title


def test_a_failed_synchronous_run_answers_its_own_status(client, monkeypatch):
    """pygeoapi answered every failed synchronous run with 400; a store outage is a 503."""
    from layers.errors import StoreUnavailable
    from tianya.plugins import runner

    def outage(*args, **kwargs):
        raise StoreUnavailable("PostgreSQL at db is unavailable; retry later")

    monkeypatch.setattr(runner, "run", outage)
    r = client.post(
        "/processes/hot-spots/execution",
        data=json.dumps({"inputs": {"collection": "incidents"}}),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 503, r.get_data(as_text=True)
    assert "PostgreSQL at db is unavailable" in r.get_json()["description"]


def test_provider_errors_keep_our_status_and_code(client):
    """The provider's errors reach pygeoapi with our status and OGC code (compat's mapping)."""
    r = client.get("/collections/incidents/items/no-such-case?f=json")
    assert r.status_code == 404 and r.get_json()["code"] == "NotFound"
    case = client.get("/collections/incidents/items?f=json&limit=1").get_json()["features"][0]
    r = client.put(
        f"/collections/incidents/items/{case['id']}",
        data='{"type": "Feature"}',
        headers={**_auth("admin"), "Content-Type": "application/geo+json"},
    )
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["code"] == "InvalidParameterValue"  # layers.errors.InvalidFeature's
