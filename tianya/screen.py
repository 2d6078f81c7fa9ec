"""The command-center screen (大屏): a static page and its summary, served by the shell.

====================================  ==========================================================
``GET /screen``                       the page (``?date=2026-11-22``, ``?refresh=60`` seconds)
``GET /screen/summary.json``          :func:`analytics.screen.screen_summary` (``?date=``)
``GET /static/<file>``                the page's script and style (``tianya/static``)
``GET /static/vendor/<lib>/<file>``   vendored Leaflet (``analytics/vendor``, no CDN)
====================================  ==========================================================

The page draws the incidents from the OGC API (``/collections/incidents/items``) and the
figures from the summary, and refreshes both on its own. Everything here is public: the
summary holds no sensitive field, and the items the page reads are filtered by the caller's
role like any other request. Plain WSGI, no framework.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import os
import threading
import time
from urllib.parse import parse_qsl

import orjson

from analytics.mapassets import VENDOR
from layers.catalogue import get_layer
from layers.errors import InvalidParameter, NotFound
from layers.query import check_date

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
#: Seconds a summary is reused (per date) before it is computed again.
CACHE_SECONDS = float(os.environ.get("TIANYA_SCREEN_CACHE", "20"))
_cache: dict[str, tuple[float, bytes]] = {}
_lock = threading.Lock()


def handles(path: str) -> bool:
    """Whether :func:`app` serves ``path``."""
    return path in ("/screen", "/screen/") or path.startswith(("/screen/", "/static/"))


def _file(start_response, path: str, root: str):
    full = os.path.realpath(os.path.join(root, path))
    if not full.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(full):
        raise NotFound(f"no such file: {path}")
    with open(full, "rb") as fh:
        body = fh.read()
    ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "image/svg+xml"):
        ctype += "; charset=utf-8"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body))),
                              ("Cache-Control", "public, max-age=300")])
    return [body]


def summary(day: str | None) -> bytes:
    """The summary JSON for ``day`` (cached for :data:`CACHE_SECONDS`)."""
    from analytics.screen import screen_summary
    from tianya.api import store

    key = day or ""
    with _lock:
        hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
    s = store()
    incidents = s.read_frame(get_layer("incidents"))
    communities = s.read_frame(get_layer("communities"))
    body = orjson.dumps(screen_summary(incidents, communities, day),
                        option=orjson.OPT_SERIALIZE_NUMPY)
    with _lock:
        if len(_cache) >= 64:  # a few days are watched; a caller walking dates gets no hoard
            _cache.clear()
        _cache[key] = (time.monotonic(), body)
    return body


def app(environ, start_response):
    """Serve the routes in the module docstring."""
    path = environ.get("PATH_INFO", "") or "/"
    if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
        raise InvalidParameter("the screen is read-only: use GET")
    if path in ("/screen", "/screen/"):
        return _file(start_response, "screen.html", STATIC)
    if path == "/screen/summary.json":
        params = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        day = params.get("date") or None
        if day is not None:
            try:
                check_date(dt.date.fromisoformat(day), "date")
            except InvalidParameter:
                raise
            except ValueError:
                raise InvalidParameter(f"date must look like 2026-11-22, got {day!r}") from None
            if len(day) != 10:  # one spelling a day: the cache is keyed by it
                raise InvalidParameter(f"date must look like 2026-11-22, got {day!r}")
        body = summary(day)
        start_response("200 OK", [("Content-Type", "application/json; charset=UTF-8"),
                                  ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store")])
        return [body]
    if path.startswith("/static/vendor/"):
        return _file(start_response, path[len("/static/vendor/"):], VENDOR)
    if path.startswith("/static/"):
        return _file(start_response, path[len("/static/"):], STATIC)
    raise NotFound(f"no such screen resource: {path}")
