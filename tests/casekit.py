"""Helpers shared by the case tests: a writable live server, a feature factory, a client."""

from __future__ import annotations

import json

import requests
from conftest import KEYS, LiveServer
from stores import writable_copy

#: A point on a unit grid in the urban core (on land, inside the district).
URBAN = (109.4695, 18.2963)
GEOJSON = "application/geo+json"


def copy_sample(sample_gpkg: str, name: str) -> str:
    """A private copy of the session sample GeoPackage, named ``name``.

    The GeoPackage case of :func:`stores.writable_copy`: the copy sits beside the sample so
    that every live server of the session shares the sample's ``rasters/`` folder.
    """
    return writable_copy("gpkg", sample_gpkg, name)


def feature(category="manhole_cover", coords=URBAN, channel="wechat", **props) -> dict:
    """A GeoJSON Feature for intake."""
    p = {"title": "井盖丢失", "category": category, "channel": channel}
    p.update(props)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(coords)},
        "properties": p,
    }


def headers(role: str | None = None, **extra) -> dict:
    h = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
    h.update(extra)
    return h


class Client:
    """Thin requests wrapper around a live server with roles."""

    def __init__(self, server: LiveServer):
        self.url = server.url
        self.session = requests.Session()

    def create(self, doc, role="reporter", **hdrs):
        body = doc if isinstance(doc, bytes | str) else json.dumps(doc)
        return self.session.post(
            self.url + "/collections/incidents/items",
            data=body,
            headers=headers(role, **{"Content-Type": GEOJSON, **hdrs}),
            timeout=60,
        )

    def create_ok(self, doc=None, role="reporter") -> str:
        r = self.create(doc or feature(), role)
        assert r.status_code == 201, r.text
        return r.headers["Location"].rsplit("/", 1)[-1]

    def item(self, case_no, role="dispatcher"):
        return self.session.get(
            f"{self.url}/collections/incidents/items/{case_no}?f=json",
            headers=headers(role),
            timeout=60,
        )

    def move(self, case_no, to, role, **body):
        return self.session.post(
            f"{self.url}/cases/{case_no}/transitions",
            json={"to": to, **body},
            headers=headers(role),
            timeout=60,
        )

    def patch(self, case_no, body, role):
        return self.session.patch(
            f"{self.url}/collections/incidents/items/{case_no}",
            json=body,
            headers=headers(role),
            timeout=60,
        )

    def history(self, case_no, role="dispatcher"):
        return self.session.get(
            f"{self.url}/cases/{case_no}/history", headers=headers(role), timeout=60
        )

    def get(self, path, role=None, **kw):
        return self.session.get(self.url + path, headers=headers(role), timeout=60, **kw)


_SHARED: dict[str, LiveServer] = {}


def shared_server(sample_gpkg: str) -> LiveServer:
    """One writable live server for every case test module of the session.

    Each test makes its own cases, so sharing is safe; it saves a server start
    per module. Stopped when the test process exits.
    """
    if "server" not in _SHARED:
        import atexit

        srv = _SHARED["server"] = LiveServer(copy_sample(sample_gpkg, "cases_live"))
        atexit.register(srv.stop)
    return _SHARED["server"]
