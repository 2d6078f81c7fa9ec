"""The command-center screen (大屏): a static page and its summary, served by the shell.

====================================  ==========================================================
``GET /screen``                       the page (``?date=2026-11-22``, ``?refresh=60`` seconds)
``GET /screen/summary.json``          :func:`analytics.screen.screen_summary` (``?date=``)
====================================  ==========================================================

The page's script, style and Leaflet are assets (:mod:`tianya.assets`). The page draws the
incidents from the OGC API (``/collections/incidents/items``) and the figures from the
summary, and refreshes both on its own. Everything here is public: the summary holds no
sensitive field, and the items the page reads are filtered by the caller's role like any
other request. Plain WSGI, no framework.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import orjson

from layers.catalogue import get_layer
from layers.errors import InvalidParameter, NotFound
from layers.query import check_date
from tianya.assets import STATIC, file_response
from tianya.web import allow, query, respond, settings_of

_cache: dict[str, tuple[float, bytes]] = {}
_lock = threading.Lock()


def handles(path: str) -> bool:
    """Whether :func:`app` serves ``path``."""
    return path in ("/screen", "/screen/") or path.startswith("/screen/")


def summary(environ, day: str | None) -> bytes:
    """The summary JSON for ``day``, cached for the settings' ``screen_cache`` seconds
    (``TIANYA_SCREEN_CACHE``)."""
    from analytics.screen import screen_summary
    from tianya.api import store

    key = day or ""
    with _lock:
        hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < settings_of(environ).screen_cache:
            return hit[1]
    s = store(environ)
    incidents = s.read_frame(get_layer("incidents"))
    communities = s.read_frame(get_layer("communities"))
    body = orjson.dumps(
        screen_summary(incidents, communities, day), option=orjson.OPT_SERIALIZE_NUMPY
    )
    with _lock:
        if len(_cache) >= 64:  # a few days are watched; a caller walking dates gets no hoard
            _cache.clear()
        _cache[key] = (time.monotonic(), body)
    return body


def app(environ, start_response):
    """Serve the routes in the module docstring."""
    path = environ.get("PATH_INFO", "") or "/"
    allow(environ, "GET", "HEAD")  # the screen is read-only
    if path in ("/screen", "/screen/"):
        # the page's script reads its date and refresh period
        return file_response(environ, start_response, "screen.html", (STATIC,), ("date", "refresh"))
    if path == "/screen/summary.json":
        day = query(environ, ("date",)).get("date") or None
        if day is not None:
            try:
                check_date(dt.date.fromisoformat(day), "date")
            except InvalidParameter:
                raise
            except ValueError:
                raise InvalidParameter(f"date must look like 2026-11-22, got {day!r}") from None
            if len(day) != 10:  # one spelling a day: the cache is keyed by it
                raise InvalidParameter(f"date must look like 2026-11-22, got {day!r}")
        return respond(
            environ, start_response, summary(environ, day), headers=[("Cache-Control", "no-store")]
        )
    raise NotFound(f"no such screen resource: {path}")
