"""Files our own pages load, under ``/assets/`` (pygeoapi keeps ``/static/``).

====================================  ==========================================================
``GET /assets/<file>``                our pages' scripts and styles (``tianya/static``)
``GET /assets/vendor/<lib>/<file>``   vendored front-end libraries: the server's own
                                      (``tianya/static/vendor``) and the maps'
                                      (``analytics/vendor``: Leaflet and its plugins)
====================================  ==========================================================

Nothing a page of ours loads comes from another host: the command center's intranet has no
CDN. The files take no query parameters (a ``?v=2`` is refused like any unknown parameter).
"""

from __future__ import annotations

import mimetypes
import os

from analytics.mapassets import VENDOR
from layers.errors import NotFound
from tianya.web import allow, query, respond

PREFIX = "/assets/"
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
#: Where ``/assets/vendor/`` looks, in order.
VENDOR_ROOTS = (os.path.join(STATIC, "vendor"), VENDOR)


def handles(path: str) -> bool:
    """Whether ``path`` is an asset."""
    return path.startswith(PREFIX)


def _find(path: str, roots) -> str:
    for root in roots:
        full = os.path.realpath(os.path.join(root, path))
        if full.startswith(os.path.realpath(root) + os.sep) and os.path.isfile(full):
            return full
    raise NotFound(f"no such file: {path}")


def file_response(environ, start_response, path: str, roots, params=()):
    """The file ``path`` under the first of ``roots`` holding it; its URL takes only ``params``."""
    full = _find(path, roots)
    query(environ, params)
    with open(full, "rb") as fh:
        body = fh.read()
    ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "image/svg+xml"):
        ctype += "; charset=utf-8"
    return respond(
        environ,
        start_response,
        body,
        content_type=ctype,
        headers=[("Cache-Control", "public, max-age=300")],
    )


def app(environ, start_response):
    """Serve one asset (GET or HEAD)."""
    path = environ.get("PATH_INFO", "") or "/"
    allow(environ, "GET", "HEAD")
    rest = path[len(PREFIX) :]
    if rest.startswith("vendor/"):
        return file_response(environ, start_response, rest[len("vendor/") :], VENDOR_ROOTS)
    return file_response(environ, start_response, rest, (STATIC,))
