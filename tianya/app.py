"""The WSGI application: pygeoapi's Flask app behind our checks.

:class:`Shell` sits in front of pygeoapi and does what pygeoapi does not:

* authenticates the caller (API key → role) and makes the principal current for
  the request, so the provider hides what that role may not see;
* checks every parameter of an items request against the layer catalogue
  (unknown names, bad values, malformed filters → 400 with a message naming the
  problem) and normalises a GET CQL2 JSON filter to CQL2 text;
* refuses pygeoapi's admin API;
* serves OGC API Tiles and Styles (the base map and the point layers' Mapbox vector
  tiles, from either store: :mod:`tianya.tiles`), and the routes beside pygeoapi (:mod:`tianya.api`,
  :mod:`tianya.open311`, :mod:`tianya.screen`);
* answers every refusal and every unexpected fault of its own through :mod:`tianya.web`
  (one mapping of our errors to HTTP), with the settings it was given
  (``environ["tianya.settings"]``), never the environment.

Run it with a production server: ``gunicorn 'tianya.app:create_app(schedule=True)'`` (what
``tianya serve`` does), never pygeoapi's debug ``serve``.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlencode

from layers import access, cases
from layers.catalogue import LAYERS
from layers.errors import InvalidParameter, NotFound, TianyaError
from layers.params import check_coverage_params, check_filter_node, check_items_params
from layers.query import has_geometry_literal, parse_filter
from tianya import (
    api,
    assets,
    compat,
    edge,
    open311,
    opinion_api,
    request,
    screen,
    tasks_api,
    tiles,
    web,
)
from tianya import settings as tianya_settings
from tianya.safety import CallerLimit, escape_csv, public_openapi
from tianya.settings import Settings

_ITEMS = re.compile(r"^/collections/([^/]+)/items(?:/([^/]+))?/?$")
_COVERAGE = re.compile(r"^/collections/[^/]+/coverage/?$")
_EXECUTION = re.compile(r"^/processes/[^/]+/execution/?$")
#: Every path under /collections that is served; pygeoapi routes more (EDR, maps, ids with
#: slashes), and what our checks do not know is not passed on.
_KNOWN = re.compile(
    r"^/collections(?:/([^/]+)(?:/(?:items(?:/[^/]+)?|queryables|schema|coverage"
    r"|tiles(?:/[^/]+)*))?)?/?$"
)
#: The resources of OGC API Common whose only parameters are pygeoapi's ``f`` and ``lang``:
#: the landing page, /conformance, /collections and one collection.
_PAGES = re.compile(r"^(?:/|/conformance|/collections(?:/[^/]+)?)/?$")
PAGE_PARAMS = ("f", "lang")
#: Media types of a CQL2 JSON query sent with POST to items.
_QUERY_TYPES = ("application/json", "application/query-cql-json")
_OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"
#: An items page above this many features is a heavy read, limited per caller.
HEAVY_LIMIT = 1000
#: A coverage answer is a heavy read unless scaled (``scale-size``) to at most this many cells:
#: GDAL reads a coverage in blocks of 256 x 256 cells, five requests at a time.
LIGHT_SCALED_CELLS = 1024 * 1024
_SCALE = re.compile(r"\(\s*(\d+)\s*\)")


def _heavy_coverage(environ) -> bool:
    """Whether a coverage request is a heavy read (:data:`LIGHT_SCALED_CELLS`)."""
    params = web.query(environ)
    sizes = _SCALE.findall(params.get("scale-size") or params.get("scaleSize") or "")
    return len(sizes) != 2 or int(sizes[0]) * int(sizes[1]) > LIGHT_SCALED_CELLS


def _retry_after(start_response):
    """``start_response`` that adds ``Retry-After`` to pygeoapi's 429 (a job submitted over
    its caller's limit, :mod:`tianya.plugins.jobs`): pygeoapi's error answers carry no headers."""

    def start(status, headers, exc_info=None):
        if status.startswith("429") and not any(k.lower() == "retry-after" for k, _ in headers):
            from tianya.plugins.jobs import RETRY_AFTER

            headers = [*headers, ("Retry-After", str(RETRY_AFTER))]
        return start_response(status, headers, exc_info)

    return start


def _geojson_type(start_response):
    """``start_response`` that labels a successful JSON items answer ``application/geo+json``.

    OGC API Features Part 1 (/req/geojson/content) asks for that media type; pygeoapi
    sends ``application/json``.
    """

    def start(status, headers, exc_info=None):
        if status.startswith("200"):
            headers = [
                ("Content-Type", "application/geo+json")
                if k.lower() == "content-type" and v.startswith("application/json")
                else (k, v)
                for k, v in headers
            ]
        return start_response(status, headers, exc_info)

    return start


def _answer_headers(start_response):
    """``start_response`` that completes every answer's headers the same way, ours and
    pygeoapi's:

    - an HTML answer names its charset (pygeoapi sends ``text/html`` alone, and clients such
      as ``requests`` then read Chinese as Latin-1);
    - every answer may be read by a page of another origin (CORS, ``server.cors``: pygeoapi
      adds it to its own answers through flask-cors, our routes did not, so a page opened as
      ``127.0.0.1`` could not read the styles, tiles or OpenAPI document its links name as
      ``localhost``). Keys are bearer tokens, never cookies, so no credential rides along.
    """

    def start(status, headers, exc_info=None):
        headers = [
            (k, "text/html; charset=utf-8")
            if k.lower() == "content-type" and v.strip().lower() == "text/html"
            else (k, v)
            for k, v in headers
        ]
        if status.startswith("401") and not any(
            k.lower() == "www-authenticate" for k, _ in headers
        ):
            headers.append(("WWW-Authenticate", web.CHALLENGE))  # pygeoapi's 401s (RFC 9110)
        if not any(k.lower() == "access-control-allow-origin" for k, _ in headers):
            headers += [
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Expose-Headers", "*"),
            ]
        return start_response(status, headers, exc_info)

    return start


def _caller(environ, who, proxies=frozenset()) -> str:
    """Who a per-caller limit counts: the key's name, or the client address for the public
    (behind one of the trusted ``proxies``, ``TIANYA_TRUSTED_PROXIES``, the address it
    forwarded)."""
    if who.role != "public":
        return who.name
    addr = environ.get("REMOTE_ADDR", "?")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    if addr in proxies and forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()  # the address the proxy itself saw
    return addr


def _token(environ) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return environ.get("HTTP_X_API_KEY") or None


def _csv_header(layer_id: str, params: dict, who: access.Principal) -> bytes:
    """The header row of an items CSV that has no row (pygeoapi answers an empty body): the
    requested ``properties`` the caller may see, else every field the caller may see."""
    if layer_id not in LAYERS:
        return b""
    visible = access.visible_fields(LAYERS[layer_id], who)
    asked = [n for n in params.get("properties", "").split(",") if n in visible]
    return (",".join(asked or visible) + "\r\n").encode("utf-8")


class Shell:
    """WSGI middleware in front of pygeoapi (see the module docstring).

    Parameters
    ----------
    app : WSGI application
        pygeoapi's Flask app.
    settings : Settings, optional
        What the shell and its routes serve with (default :func:`tianya.settings.current`);
        each request carries them as ``environ["tianya.settings"]``.
    """

    def __init__(self, app, settings: Settings | None = None):
        self.app = app
        self.settings = settings or tianya_settings.current()
        self.heavy = CallerLimit(self.settings.heavy_reads)
        self.proxies = frozenset(self.settings.trusted_proxies)
        self.scheduler = None  # this process's periodic tasks (create_app(schedule=True))

    def __call__(self, environ, start_response):
        edge.headers_received(environ)  # the request's headers are in: stop their clock
        start_response = _answer_headers(start_response)
        environ["tianya.settings"] = self.settings
        render = web.ogc_body
        try:
            # one spelling of the path for our checks and for pygeoapi's router
            environ["PATH_INFO"] = edge.normalise_path(environ.get("PATH_INFO", ""))
            if environ["PATH_INFO"].startswith(open311.PREFIX + "/"):
                render = open311.georeport_error
            if environ.get("REQUEST_METHOD") in edge.BODY_METHODS:
                edge.buffer_body(environ, cases.MAX_BODY, self.settings.body_seconds)
            elif edge.has_body(environ):
                # pygeoapi would read a GET body as a CQL2 JSON filter
                raise InvalidParameter(
                    f"a {environ.get('REQUEST_METHOD')} request takes no "
                    "body: send filters in the query string"
                )
            who = access.authenticate(_token(environ), self.settings.keys)
        except TianyaError as err:
            return web.error_response(environ, start_response, err, render)
        token = request.PRINCIPAL.set(who)
        crs_token = request.CONTENT_CRS.set(environ.get("HTTP_CONTENT_CRS"))
        try:
            return web.guarded(environ, start_response, lambda e, s: self._route(e, s, who), render)
        finally:
            request.CONTENT_CRS.reset(crs_token)
            request.PRINCIPAL.reset(token)

    def _route(self, environ, start_response, who):
        """Our own routes, or pygeoapi's once our checks have passed."""
        path = environ["PATH_INFO"]
        if path.startswith(open311.PREFIX + "/"):
            return open311.app(environ, start_response)
        if screen.handles(path):
            return screen.app(environ, start_response)
        if assets.handles(path):
            return assets.app(environ, start_response)
        if opinion_api.handles(path):
            return opinion_api.app(environ, start_response)  # hot topics (issue 14)
        self._check_body(environ)
        if api.handles(path) and (
            environ.get("REQUEST_METHOD") in ("PUT", "PATCH", "DELETE")
            or not path.startswith("/collections/")
        ):
            return api.app(environ, start_response)  # a case's writes: If-Match, ETag
        if tasks_api.handles(path) and (
            environ.get("REQUEST_METHOD") in ("PUT", "PATCH", "DELETE")
            or not path.startswith("/collections/")
        ):
            return tasks_api.app(environ, start_response)  # key tasks' writes, history
        if tiles.handles(path):
            return tiles.app(environ, start_response)
        self._check(environ)
        method = environ.get("REQUEST_METHOD")
        if method == "OPTIONS" and (m := _ITEMS.match(path)) and m.group(1) in tasks_api.LAYER_IDS:
            return tasks_api.options(environ, start_response, m.group(1), m.group(2))
        if method == "OPTIONS" and (m := _ITEMS.match(path)) and m.group(1) in LAYERS:
            return api.options(environ, start_response, m.group(1), m.group(2))
        if path.rstrip("/") == "/collections" and method == "GET":
            return _COLLECTIONS_CACHE(self.app, environ, start_response)
        if path.rstrip("/") == "/openapi" and method in ("GET", "HEAD"):
            doc = public_openapi(environ, compat.openapi_document)
            if doc is not None:
                return web.respond(environ, start_response, doc, content_type=_OPENAPI_TYPE)
        if _ITEMS.match(path) and method in ("GET", "HEAD"):
            return self._items(environ, start_response, who)
        if _COVERAGE.match(path) and method in ("GET", "HEAD"):
            # a GeoTIFF window is built in memory (~200 MB for the whole district)
            heavy = _heavy_coverage(environ)
            with self.heavy.hold(_caller(environ, who, self.proxies) if heavy else None):
                return self.app(environ, start_response)
        if environ.get("tianya.heavy"):  # a POST query with a geometry
            with self.heavy.hold(_caller(environ, who, self.proxies)):
                return self.app(environ, _retry_after(start_response))
        if method == "POST" and _EXECUTION.match(path):
            return self._execute(environ, start_response)
        return self.app(environ, _retry_after(start_response))

    def _execute(self, environ, start_response):
        """A process execution: the request document's members checked (pygeoapi answers a
        wrong ``subscriber``/``outputs`` with a 500), and the client's socket handed to the
        runner so a synchronous run stops when its client goes (:mod:`tianya.plugins.runner`)."""
        from tianya.plugins.processes import check_execute_request
        from tianya.plugins.runner import CLIENT, peer_present

        check_execute_request(web.read_body(environ))
        token = CLIENT.set(peer_present(environ.get("gunicorn.socket")))
        try:
            return self.app(environ, _retry_after(start_response))
        finally:
            CLIENT.reset(token)

    def _items(self, environ, start_response, who):
        """An items GET: geo+json labels, CSV cells escaped, heavy pages limited per caller."""
        params = web.query(environ)
        limit = params.get("limit", "")
        heavy = (
            (int(limit) if limit.isdigit() else 0) > HEAVY_LIMIT
            or params.get("f") == "csv"
            or environ.get("tianya.heavy")
        )
        with self.heavy.hold(_caller(environ, who, self.proxies) if heavy else None):
            seen: dict = {}
            m = _ITEMS.match(environ["PATH_INFO"])
            etag_of = m.group(2) if m and m.group(1) == "incidents" else None  # a case: ETag
            if m and m.group(1) in tasks_api.LAYER_IDS:  # a key task or milestone: ETag
                etag_of = m.group(2)

            def start(status, headers, exc_info=None):
                seen["type"] = next((v for k, v in headers if k.lower() == "content-type"), "")
                ok = status.startswith("200") and etag_of
                if ok and m.group(1) in tasks_api.LAYER_IDS:
                    etag = tasks_api.current_etag(environ, m.group(1), etag_of)
                else:
                    etag = api.current_etag(environ, etag_of) if ok else None
                if etag:
                    headers = [*headers, ("ETag", etag)]
                if seen["type"].startswith("text/csv"):
                    seen["status"], seen["headers"] = status, headers
                    return lambda _: None  # written below, once escaped
                return _geojson_type(start_response)(status, headers, exc_info)

            body = self.app(environ, start)
            if not seen.get("type", "").startswith("text/csv"):
                return body
            text = escape_csv(b"".join(body))
            if not text and seen["status"].startswith("200") and m and m.group(2) is None:
                text = _csv_header(m.group(1), params, who)  # no feature: pygeoapi wrote nothing
            headers = [
                (k, str(len(text)) if k.lower() == "content-length" else v)
                for k, v in seen["headers"]
            ]
            start_response(seen["status"], headers)
            return [text]

    @staticmethod
    def _check_body(environ) -> None:
        """Check ``Content-Crs`` and the media type of a body (its size was bounded already)."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("POST", "PUT", "PATCH"):
            return
        if environ.get("HTTP_CONTENT_CRS"):
            cases.check_crs(environ["HTTP_CONTENT_CRS"])
        ctype = environ.get("CONTENT_TYPE", "")
        kind = ctype.split(";")[0].strip().lower()
        if kind == "application/geo+json":
            environ["CONTENT_TYPE"] = "application/geo+json"  # pygeoapi compares it exactly
        m = _ITEMS.match(environ["PATH_INFO"])
        if (
            method == "POST"
            and m
            and m.group(2) is None
            and kind not in ("application/geo+json", *_QUERY_TYPES)
        ):
            # pygeoapi answers no type with a bare 500 and takes any other as a query
            raise InvalidParameter(
                "POST to items needs a Content-Type: application/geo+json to create a "
                "feature, application/json or application/query-cql-json for a CQL2 JSON "
                "query" + (f"; got {kind!r}" if kind else "")
            )

    def _check(self, environ) -> None:
        path = environ["PATH_INFO"]
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/admin"):
            raise NotFound("there is no admin API")
        known = _KNOWN.match(path)
        if path.startswith("/collections") and known is None:
            raise NotFound(f"no resource at {path}")
        layer_id = known.group(1) if known else None
        if layer_id in LAYERS:
            access.require_read(LAYERS[layer_id], request.principal())
        if method in ("GET", "HEAD") and _PAGES.match(path or "/"):
            # pygeoapi ignores what it does not know (Features /req/core/query-param-unknown)
            web.query(environ, PAGE_PARAMS)
        if _COVERAGE.match(path) and method in ("GET", "HEAD"):
            params = web.query(environ)
            checked = check_coverage_params(params)
            if checked != params:
                environ["QUERY_STRING"] = urlencode(checked)
            return
        m = _ITEMS.match(path)
        if m is None or m.group(1) not in LAYERS:
            return
        layer = LAYERS[m.group(1)]
        query = method == "POST" and environ.get("CONTENT_TYPE") != "application/geo+json"
        if method not in ("GET", "HEAD") and not query:
            return  # transactions: checked by the provider's write path
        params = web.query(environ)
        visible = set(access.visible_fields(layer, request.principal()))
        checked = check_items_params(layer, params, visible, single=m.group(2) is not None)
        if checked != params:
            environ["QUERY_STRING"] = urlencode(checked)
        node = None
        if query:  # pygeoapi's POST query: the body is a CQL2 JSON filter
            body = web.read_body(environ).decode("utf-8", "replace")
            if not body.strip():
                raise InvalidParameter("a POST query needs a CQL2 JSON filter as its body")
            node = parse_filter(body, "cql2-json")
            check_filter_node(layer, node, visible, checked.get("filter-crs"))
        elif "filter" in checked:
            node = parse_filter(checked["filter"], checked.get("filter-lang"))
        # a geometry literal makes a query costly (no index narrows S_TOUCHES and the like)
        environ["tianya.heavy"] = node is not None and has_geometry_literal(node)


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

        who = request.principal()
        key = (
            environ.get("PATH_INFO"),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_ACCEPT", ""),
            environ.get("HTTP_ACCEPT_LANGUAGE", ""),
            getattr(who, "role", None),
            getattr(who, "department", None),
            environ.get("HTTP_HOST", ""),
        )
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


def create_app(
    config_path: str | None = None, settings: Settings | None = None, *, schedule: bool = False
):
    """The WSGI app: pygeoapi's Flask app for ``config_path`` wrapped in :class:`Shell`.

    ``settings`` default to :meth:`Settings.from_env` (read and checked now). ``schedule``
    (each ``tianya serve`` worker's): start this process's periodic tasks
    (:func:`tianya.schedule.for_server`: the key-task supervision clock), kept as the
    shell's ``scheduler``; off for an app built in a test or a script.
    """
    from tianya.config import CONFIG_PATH

    compat.check()  # a pygeoapi our replacements do not fit: refuse to start, naming why
    settings = tianya_settings.use(settings or Settings.from_env())
    shell = Shell(compat.load_app(settings, os.path.abspath(config_path or CONFIG_PATH)), settings)
    if schedule:
        from tianya.schedule import for_server

        shell.scheduler = for_server(settings).start()
    return shell
