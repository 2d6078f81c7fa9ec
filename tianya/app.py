"""The WSGI application: pygeoapi's Flask app behind our checks.

:class:`Shell` sits in front of pygeoapi and does what pygeoapi does not:

* authenticates the caller (API key → role) and makes the principal current for
  the request, so the provider hides what that role may not see;
* checks every parameter of an items request against the layer catalogue
  (unknown names, bad values, malformed filters → 400 with a message naming the
  problem) and normalises a GET CQL2 JSON filter to CQL2 text;
* refuses pygeoapi's admin API;
* serves OGC API Tiles (Mapbox vector tiles of the point layers, from PostGIS:
  :mod:`tianya.tiles`).

Run it with a production server: ``gunicorn 'tianya.app:create_app()'`` (what
``tianya serve`` does), never pygeoapi's debug ``serve``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from urllib.parse import parse_qsl, urlencode

from layers import access, cases
from layers.catalogue import LAYERS
from layers.errors import InvalidParameter, NotFound, PayloadTooLarge, TianyaError
from layers.params import check_coverage_params, check_items_params
from tianya import api, open311, screen, tiles

_ITEMS = re.compile(r"^/collections/([^/]+)/items(?:/([^/]+))?/?$")
_COLLECTION = re.compile(r"^/collections/([^/]+)(?:/(queryables|schema))?/?$")
_COVERAGE = re.compile(r"^/collections/[^/]+/coverage/?$")


def _error(start_response, err: TianyaError):
    body = json.dumps({"code": err.ogc_code, "type": err.ogc_code,
                       "description": str(err)}, ensure_ascii=False).encode("utf-8")
    headers = [("Content-Type", "application/json; charset=UTF-8"),
               ("Content-Length", str(len(body)))]
    if err.status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="tianya"'))
    reason = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
              405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
              503: "Service Unavailable"}
    start_response(f"{err.status} {reason.get(err.status, 'Error')}", headers)
    return [body]


def _drain(environ, length: int, limit: int = 8 << 20) -> None:
    """Read and drop a refused body (up to ``limit``), so the client sees the 413."""
    stream = environ.get("wsgi.input")
    left = min(length, limit)
    while stream is not None and left > 0:
        chunk = stream.read(min(left, 1 << 16))
        if not chunk:
            break
        left -= len(chunk)


def _geojson_type(start_response):
    """``start_response`` that labels a successful JSON items answer ``application/geo+json``.

    OGC API Features Part 1 (/req/geojson/content) asks for that media type; pygeoapi
    sends ``application/json``.
    """
    def start(status, headers, exc_info=None):
        if status.startswith("200"):
            headers = [("Content-Type", "application/geo+json")
                       if k.lower() == "content-type" and v.startswith("application/json")
                       else (k, v) for k, v in headers]
        return start_response(status, headers, exc_info)
    return start


def _token(environ) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return environ.get("HTTP_X_API_KEY") or None


class Shell:
    """WSGI middleware in front of pygeoapi (see the module docstring)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        try:
            who = access.authenticate(_token(environ))
        except TianyaError as err:
            return _error(start_response, err)
        token = access.CURRENT.set(who)
        crs_token = cases.CONTENT_CRS.set(environ.get("HTTP_CONTENT_CRS"))
        try:
            path = environ.get("PATH_INFO", "") or "/"
            if path.startswith(open311.PREFIX + "/"):
                return open311.app(environ, start_response)
            if screen.handles(path):
                return screen.app(environ, start_response)
            self._check_body(environ)
            if api.handles(path) and (environ.get("REQUEST_METHOD") == "PATCH"
                                      or not path.startswith("/collections/")):
                return api.app(environ, start_response)
            if tiles.handles(path):
                return tiles.app(environ, start_response)
            self._check(environ)
            if path.rstrip("/") == "/collections" and environ.get("REQUEST_METHOD") == "GET":
                return _COLLECTIONS_CACHE(self.app, environ, start_response)
            if _ITEMS.match(path) and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
                return self.app(environ, _geojson_type(start_response))
            return self.app(environ, start_response)
        except TianyaError as err:
            return _error(start_response, err)
        finally:
            cases.CONTENT_CRS.reset(crs_token)
            access.CURRENT.reset(token)

    @staticmethod
    def _check_body(environ) -> None:
        """Refuse oversized bodies (413) and check ``Content-Crs`` before any write."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("POST", "PUT", "PATCH"):
            return
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise InvalidParameter("Content-Length is not a number") from None
        if length > cases.MAX_BODY:
            _drain(environ, length)
            raise PayloadTooLarge(f"request body of {length} bytes is larger than the "
                                  f"{cases.MAX_BODY} bytes allowed")
        if environ.get("HTTP_CONTENT_CRS"):
            cases.check_crs(environ["HTTP_CONTENT_CRS"])
        ctype = environ.get("CONTENT_TYPE", "")
        if ctype.split(";")[0].strip().lower() == "application/geo+json":
            environ["CONTENT_TYPE"] = "application/geo+json"  # pygeoapi compares it exactly
        m = _ITEMS.match(environ.get("PATH_INFO", "") or "/")
        if method == "POST" and m and m.group(2) is None and not ctype.strip():
            # pygeoapi answers this with a bare 500
            raise InvalidParameter("POST to items needs a Content-Type: application/geo+json "
                                   "to create a feature, application/json for a CQL2 JSON query")

    def _check(self, environ) -> None:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/admin"):
            raise NotFound("there is no admin API")
        if _COVERAGE.match(path) and method in ("GET", "HEAD"):
            params = self._params(environ)
            checked = check_coverage_params(params)
            if checked != params:
                environ["QUERY_STRING"] = urlencode(checked)
            return
        m = _ITEMS.match(path)
        c = _COLLECTION.match(path)
        layer_id = (m or c).group(1) if (m or c) else None
        if layer_id is None or layer_id not in LAYERS:
            return
        layer = LAYERS[layer_id]
        if c is None and method not in ("GET", "HEAD", "POST"):
            return  # transactions: checked by the provider's write path
        access.require_read(layer)
        if m is None or method not in ("GET", "HEAD"):
            return
        params = self._params(environ)
        checked = check_items_params(layer, params, set(access.visible_fields(layer)),
                                     single=m.group(2) is not None)
        if checked != params:
            environ["QUERY_STRING"] = urlencode(checked)

    @staticmethod
    def _params(environ) -> dict[str, str]:
        """The query parameters; one given twice is a 400."""
        pairs = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        names = [k for k, _ in pairs]
        dup = sorted({k for k in names if names.count(k) > 1})
        if dup:
            raise InvalidParameter(f"query parameter {dup[0]!r} is given more than once")
        return dict(pairs)


class _ResponseCache:
    """Successful responses of one static resource, reused for ``ttl`` seconds.

    ``/collections`` is the same for every request with the same query, ``Accept``,
    ``Accept-Language`` and role (its extents come from the configuration), but
    pygeoapi rebuilds it from every collection, coverage and process each time
    (about 40 ms). Keyed by exactly those inputs, so no caller sees another's view.
    """

    def __init__(self, ttl: float = 10.0, size: int = 64):
        self.ttl, self.size = ttl, size
        self._hits: dict[tuple, tuple[float, str, list, bytes]] = {}

    def __call__(self, app, environ, start_response):
        import time

        who = access.CURRENT.get()
        key = (environ.get("PATH_INFO"), environ.get("QUERY_STRING", ""),
               environ.get("HTTP_ACCEPT", ""), environ.get("HTTP_ACCEPT_LANGUAGE", ""),
               getattr(who, "role", None), getattr(who, "department", None),
               environ.get("HTTP_HOST", ""))
        now = time.monotonic()
        hit = self._hits.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            start_response(hit[1], list(hit[2]))
            return [hit[3]]
        seen: dict = {}

        def capture(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = b"".join(app(environ, capture))
        if seen.get("status", "").startswith("200"):
            if len(self._hits) >= self.size:
                self._hits.clear()
            self._hits[key] = (now, seen["status"], list(seen["headers"]), body)
        return [body]


_COLLECTIONS_CACHE = _ResponseCache()


def openapi_path(config_path: str) -> str:
    """pygeoapi's OpenAPI document for ``config_path``, generated once per config and data."""
    from pathlib import Path

    from pygeoapi.openapi import generate_openapi_document

    h = hashlib.sha256()
    with open(config_path, "rb") as fh:
        h.update(fh.read())
    for var in ("TIANYA_DATA", "TIANYA_URL"):
        h.update(os.environ.get(var, "").encode() + b"\0")
    out = os.path.join(tempfile.gettempdir(), f"tianya-openapi-{h.hexdigest()[:16]}.yml")
    if not os.path.exists(out):
        tmp = f"{out}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(generate_openapi_document(Path(config_path), "yaml"))
        os.replace(tmp, out)
    return out


def create_app(config_path: str | None = None):
    """The WSGI app: pygeoapi's Flask app for ``config_path`` wrapped in :class:`Shell`."""
    from tianya.config import CONFIG_PATH

    config_path = os.path.abspath(config_path or os.environ.get("PYGEOAPI_CONFIG")
                                  or CONFIG_PATH)
    os.environ["PYGEOAPI_CONFIG"] = config_path
    os.environ["PYGEOAPI_OPENAPI"] = openapi_path(config_path)
    from pygeoapi.flask_app import APP  # reads the two variables above at import

    _use_orjson_for_items()
    _skip_identity_bbox_transform()
    _list_readable_collections_only()
    return Shell(APP)


def _list_readable_collections_only() -> None:
    """``/collections`` lists only what the caller's role may read (as GeoServer does).

    pygeoapi builds the list from its whole configuration; a public caller would
    see ``poverty_relief`` listed, then get 401 on it. The list is filtered with
    :func:`layers.access.can_read` for the request's principal (the shell has set
    it; the ``/collections`` cache is kept per role).
    """
    import pygeoapi.api as api_module

    original = getattr(api_module.filter_dict_by_key_value, "__wrapped__",
                       api_module.filter_dict_by_key_value)

    def filter_dict_by_key_value(dict_, key, value):
        found = original(dict_, key, value)
        if value != "collection":
            return found
        return {k: v for k, v in found.items()
                if k not in LAYERS or access.can_read(LAYERS[k])}

    filter_dict_by_key_value.__wrapped__ = original
    api_module.filter_dict_by_key_value = filter_dict_by_key_value


def _skip_identity_bbox_transform() -> None:
    """Pass a bbox through when its CRS is the storage CRS.

    pygeoapi transforms every items ``bbox`` to the storage CRS, even CRS84 to
    CRS84, building a pyproj transformer and calling ``CRS.to_epsg()`` each time
    (12 ms a request, a third of a 1000-feature page from PostGIS).
    """
    import pygeoapi.api.itemtypes as itemtypes

    original = getattr(itemtypes.transform_bbox, "__wrapped__", itemtypes.transform_bbox)

    def transform_bbox(bbox, from_crs, to_crs, always_xy=False):
        if isinstance(from_crs, str) and from_crs == to_crs:
            return list(bbox)
        return original(bbox, from_crs, to_crs, always_xy)

    transform_bbox.__wrapped__ = original
    itemtypes.transform_bbox = transform_bbox


def _use_orjson_for_items() -> None:
    """Encode items responses with orjson instead of pygeoapi's ``to_json``.

    pygeoapi's encoder is the stdlib's (about 7 ms for a page of 1000 incidents,
    a third of the request) and then rewrites every ``<`` and ``>`` in the text as
    ``&lt;`` / ``&gt;``, which changes the data. orjson is ~12× faster; ``<`` and
    ``>`` are written as the JSON escapes ``\\u003c`` / ``\\u003e``, which keep the
    value intact and still cannot close a ``<script>`` element.
    """
    import orjson
    import pygeoapi.api.itemtypes as itemtypes
    from pygeoapi.util import json_serial

    def to_json(dict_, pretty=False):
        opts = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if pretty else 0)
        text = orjson.dumps(dict_, default=json_serial, option=opts).decode("utf-8")
        return text.replace("<", "\\u003c").replace(">", "\\u003e")

    itemtypes.to_json = to_json
