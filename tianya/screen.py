"""The command-center screen (大屏): a static page and its summary, served by the shell.

====================================  ==========================================================
``GET /screen``                       the page (``?date=2026-11-22``, ``?refresh=60`` seconds,
                                      ``?basemap=tianya`` or ``osm``)
``GET /screen/summary.json``          :func:`analytics.screen.screen_summary` (``?date=``)
====================================  ==========================================================

The page's script, style and Leaflet are assets (:mod:`tianya.assets`). The page draws the
incidents from the OGC API (``/collections/incidents/items``) and the figures from the
summary, and refreshes both on its own. Its base map is the server's own dark base map
(``/styles/basemap-dark``, drawn by ``/assets/basemap.js``): the page asks no other host.
``?basemap=osm`` chooses OpenStreetMap's tiles instead, for a screen with internet access.
Everything here is public: the summary holds no sensitive field, and the items the page reads
are filtered by the caller's role like any other request. Plain WSGI, no framework.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import orjson

from layers import key_task_figures
from layers.catalogue import get_layer
from layers.errors import InvalidParameter, NotFound, choices
from layers.query import check_date
from tianya.assets import STATIC, file_response
from tianya.web import allow, query, respond, settings_of

_cache: dict[str, tuple[float, bytes]] = {}
_lock = threading.Lock()
#: The screen's base maps: our own vector tiles (default, offline) or OpenStreetMap's.
BASEMAPS = ("tianya", "osm")


def handles(path: str) -> bool:
    """Whether :func:`app` serves ``path``."""
    return path in ("/screen", "/screen/") or path.startswith("/screen/")


def summary(environ, day: str | None) -> bytes:
    """The summary JSON for ``day``, cached for the settings' ``screen_cache`` seconds
    (``TIANYA_SCREEN_CACHE``)."""
    from analytics.opinion.hot import read_opinion
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
        screen_summary(
            incidents,
            communities,
            day,
            key_tasks=(*key_task_figures.tables(s), key_task_figures.audit(s)),
            opinion=read_opinion(s, since=_opinion_since(incidents, day)),
        ),
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    with _lock:
        if len(_cache) >= 64:  # a few days are watched; a caller walking dates gets no hoard
            _cache.clear()
        _cache[key] = (time.monotonic(), body)
    return body


def _opinion_since(incidents, day: str | None) -> dt.datetime:
    """The first instant of opinion posts the screen reads: the day before the day it shows
    (``day``, else at the latest the latest day with cases, the default day's fallback)."""
    import pandas as pd

    from layers.district import TZ

    if day is not None:
        base = dt.date.fromisoformat(day)
    else:
        reported = pd.to_datetime(incidents["reported_at"], utc=True, format="ISO8601").max()
        today = dt.datetime.now(TZ).date()
        base = today if pd.isna(reported) else min(today, reported.tz_convert(TZ).date())
    return dt.datetime.combine(base - dt.timedelta(days=1), dt.time(), TZ)


def _check_day(day: str | None) -> str | None:
    """``day`` if it is a date the screen can show, spelt 2026-11-22."""
    if day is not None:
        try:
            check_date(dt.date.fromisoformat(day), "date")
        except InvalidParameter:
            raise
        except ValueError:
            raise InvalidParameter(f"date must look like 2026-11-22, got {day!r}") from None
        if len(day) != 10:  # one spelling a day: the cache is keyed by it
            raise InvalidParameter(f"date must look like 2026-11-22, got {day!r}")
    return day


def app(environ, start_response):
    """Serve the routes in the module docstring."""
    path = environ.get("PATH_INFO", "") or "/"
    allow(environ, "GET", "HEAD")  # the screen is read-only
    if path in ("/screen", "/screen/"):
        # the page's script reads its date, refresh period and base map
        params = query(environ, ("date", "refresh", "basemap"))
        _check_day(params.get("date") or None)
        basemap = params.get("basemap")
        if basemap is not None and basemap not in BASEMAPS:
            raise InvalidParameter(choices(basemap, BASEMAPS, "basemap"))
        return file_response(
            environ, start_response, "screen.html", (STATIC,), ("date", "refresh", "basemap")
        )
    if path == "/screen/summary.json":
        day = _check_day(query(environ, ("date",)).get("date") or None)
        return respond(
            environ, start_response, summary(environ, day), headers=[("Cache-Control", "no-store")]
        )
    raise NotFound(f"no such screen resource: {path}")
