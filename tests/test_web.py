"""The shell's HTTP edge: one mapping from our errors to HTTP, one kit for parameters, bodies
and responses, used by every route the shell serves itself (in-process, no server)."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from http import HTTPStatus

import pytest

from layers import errors
from tianya import web
from tianya.app import Shell
from tianya.settings import Settings

KEYS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keys.yml")


class Answer:
    """A WSGI ``start_response`` that keeps what it was given."""

    def __init__(self):
        self.status, self.headers, self.calls = None, {}, 0

    def __call__(self, status, headers, exc_info=None):
        self.status, self.headers = status, dict(headers)
        self.calls += 1

    @property
    def code(self) -> int:
        return int(self.status.split()[0])


def request(
    path: str, method: str = "GET", query: str = "", body: bytes = b"", ctype: str = "", **extra
) -> dict:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "CONTENT_TYPE": ctype,
        "REMOTE_ADDR": "127.0.0.1",
    }
    env.update(extra)
    return env


def pygeoapi_stub(environ, start_response):
    """Stands for pygeoapi: a request that gets past the shell's checks reaches it."""
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"reached": "pygeoapi"}']


@pytest.fixture
def shell(tmp_path):
    return Shell(
        pygeoapi_stub,
        Settings.from_env(
            {
                "TIANYA_DATA": str(tmp_path / "none.gpkg"),
                "TIANYA_KEYS": KEYS,
                "TIANYA_URL": "http://edge.example/gis/",
            }
        ),
    )


def call(app, env) -> tuple[Answer, bytes]:
    answer = Answer()
    body = b"".join(app(env, answer))
    return answer, body


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _instance(cls):
    if issubclass(cls, web.MethodNotAllowed):
        return cls("not with this method", ("GET", "HEAD"))
    return cls("the message the user sees")


# --- one mapping from our errors to HTTP -------------------------------------------------------

#: The contract of layers.errors: status and OGC exception code of each class.
CONTRACT = {
    errors.InvalidParameter: (400, "InvalidParameterValue"),
    errors.InvalidFeature: (400, "InvalidParameterValue"),
    errors.PayloadTooLarge: (413, "InvalidParameterValue"),
    errors.NotAuthenticated: (401, "NotAuthenticated"),
    errors.Forbidden: (403, "Forbidden"),
    errors.NotFound: (404, "NotFound"),
    errors.Conflict: (409, "Conflict"),
    errors.RequestTimeout: (408, "InvalidParameterValue"),
    errors.TooManyRequests: (429, "NoApplicableCode"),
    errors.StoreUnavailable: (503, "NoApplicableCode"),
    web.MethodNotAllowed: (405, "InvalidParameterValue"),
}


def test_the_contract_covers_every_error_of_the_library():
    import tianya.plugins.runner  # noqa: F401 - its errors are subclasses too

    library = {c for c in _subclasses(errors.TianyaError) if c.__module__ == "layers.errors"}
    assert library <= set(CONTRACT)


@pytest.mark.parametrize("cls", sorted(CONTRACT, key=lambda c: c.__name__))
def test_each_error_class_maps_to_its_status_and_code(cls):
    status, code = CONTRACT[cls]
    assert (cls.status, cls.ogc_code) == (status, code)
    answer, body = call(lambda e, s: web.error_response(e, s, _instance(cls)), request("/x"))
    assert answer.status == f"{status} {HTTPStatus(status).phrase}"
    doc = json.loads(body)
    assert doc == {"code": code, "type": code, "description": str(_instance(cls))}
    assert answer.headers["Content-Type"] == web.JSON
    assert answer.headers["Content-Length"] == str(len(body))
    assert ("WWW-Authenticate" in answer.headers) == (status == 401)
    assert ("Retry-After" in answer.headers) == (status == 429)
    assert answer.headers.get("Allow") == ("GET, HEAD" if status == 405 else None)
    assert "Connection" not in answer.headers


def test_every_error_subclass_anywhere_gets_its_own_status_line():
    import tianya.plugins.runner  # noqa: F401

    for cls in [errors.TianyaError, *_subclasses(errors.TianyaError)]:
        answer, body = call(
            lambda e, s, c=cls: web.error_response(e, s, _instance(c)), request("/x")
        )
        assert answer.status == f"{cls.status} {HTTPStatus(cls.status).phrase}", cls
        assert json.loads(body)["code"] == cls.ogc_code, cls


def test_retry_after_on_a_503_that_carries_one_and_close_when_the_body_was_not_read():
    err = errors.StoreUnavailable("try later")
    err.retry_after = 30
    answer, _ = call(
        lambda e, s: web.error_response(e, s, err), request("/x", **{"tianya.close": True})
    )
    assert answer.headers["Retry-After"] == "30" and answer.headers["Connection"] == "close"
    answer, _ = call(
        lambda e, s: web.error_response(e, s, errors.TooManyRequests("x", 7)), request("/x")
    )
    assert answer.headers["Retry-After"] == "7"


def test_an_unexpected_exception_is_a_generic_500_logged_once(caplog):
    def route(environ, start_response):
        raise KeyError("SELECT secret FROM people")

    with caplog.at_level(logging.ERROR, logger="tianya.web"):
        answer, body = call(lambda e, s: web.guarded(e, s, route), request("/cases/x"))
    assert answer.status == "500 Internal Server Error"
    doc = json.loads(body)
    assert doc["code"] == "NoApplicableCode" and "secret" not in doc["description"]
    assert "internal error answering GET /cases/x (logged at" in doc["description"]
    records = [r for r in caplog.records if r.name == "tianya.web"]
    assert len(records) == 1 and records[0].exc_info[0] is KeyError


def test_the_shell_answers_an_unexpected_fault_of_its_routes_with_the_500(
    shell, monkeypatch, caplog
):
    from tianya import api

    monkeypatch.setattr(api.lifecycle, "TRANSITIONS", None)  # a bug in the route
    with caplog.at_level(logging.ERROR, logger="tianya.web"):
        answer, body = call(shell, request("/cases/transitions"))
    assert answer.code == 500 and json.loads(body)["type"] == "NoApplicableCode"
    assert len([r for r in caplog.records if r.name == "tianya.web"]) == 1


# --- Open311: its own body, the same statuses ---------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the block ends: nothing listens there


def test_open311_answers_503_when_the_store_is_unavailable(monkeypatch):
    from layers.postgis import PostGISStore
    from tianya.plugins import provider

    opened = []

    def store_for(data):
        # the real store on a port where no PostgreSQL listens (1 s to give up, not 10)
        opened.append(PostGISStore(data, connect_timeout=1))
        return opened[-1]

    monkeypatch.setattr(provider, "store_for", store_for)
    url = f"postgresql://tianya@127.0.0.1:{_closed_port()}/tianya"
    shell = Shell(pygeoapi_stub, Settings.from_env({"TIANYA_DATA": url}))
    try:
        answer, body = call(shell, request("/open311/v2/requests.json"))
        assert answer.status == "503 Service Unavailable"
        doc = json.loads(body)
        assert doc[0]["code"] == 503 and "unavailable" in doc[0]["description"]
        # the case API on the same store: the same status, OGC's body
        answer, body = call(shell, request("/supervision"))
        assert answer.status == "503 Service Unavailable"
        assert json.loads(body)["type"] == "NoApplicableCode"
    finally:
        for store in opened:
            store.close()


def test_open311_errors_keep_the_georeport_format_with_the_shared_statuses(shell):
    answer, body = call(shell, request("/open311/v2/services.json", "DELETE"))
    assert answer.status == "405 Method Not Allowed"
    assert answer.headers["Allow"] == "GET, HEAD"
    assert json.loads(body) == [{"code": 405, "description": json.loads(body)[0]["description"]}]
    # refused by the shell before the route (a bad key): still GeoReport's format
    answer, body = call(
        shell, request("/open311/v2/services.json", HTTP_AUTHORIZATION="Bearer nope")
    )
    assert answer.code == 401 and answer.headers["WWW-Authenticate"]
    assert json.loads(body)[0]["code"] == 401


# --- one parser, the same refusals on every route ------------------------------------------------

#: One GET resource of each router the shell serves itself, and one pygeoapi route it checks.
ROUTES = [
    "/open311/v2/services.json",
    "/cases/transitions",
    "/supervision",
    "/screen/summary.json",
    "/collections/incidents/tiles",
    "/collections/incidents/items",
    "/collections/dem/coverage",
]


#: A parameter each of the ROUTES takes.
VALID = {
    "/screen/summary.json": "date",
    "/open311/v2/services.json": "lang",
    "/supervision": "by",
    "/collections/dem/coverage": "bbox",
}


@pytest.mark.parametrize("path", ROUTES)
def test_a_repeated_parameter_is_refused_on_every_route(shell, path):
    name = VALID.get(path, "f")
    answer, body = call(shell, request(path, query=f"{name}=json&{name}=json"))
    assert answer.code == 400, body
    text = body.decode()
    assert f"{name!r} is given more than once" in text


@pytest.mark.parametrize("path", ROUTES)
def test_a_nul_in_a_value_is_refused_on_every_route(shell, path):
    answer, body = call(shell, request(path, query=f"{VALID.get(path, 'f')}=a%00b"))
    assert answer.code == 400 and "NUL" in body.decode(), body


@pytest.mark.parametrize(
    "path, valid",
    [
        ("/open311/v2/services.json", "jurisdiction_id, lang"),
        ("/cases/transitions", "f"),
        ("/supervision", "by, datetime, now, f"),
        ("/screen/summary.json", "date"),
        ("/collections/incidents/tiles", "f"),
    ],
)
def test_an_unknown_parameter_is_refused_with_the_valid_ones(shell, path, valid):
    answer, body = call(shell, request(path, query="colour=red"))
    assert answer.code == 400
    assert "'colour' is not a valid" in body.decode() and f"must be one of: {valid}" in (
        body.decode()
    )


def test_static_files_take_no_parameters(shell):
    answer, _ = call(shell, request("/assets/screen.css"))
    assert answer.code == 200
    answer, body = call(shell, request("/assets/screen.css", query="v=2"))
    assert answer.code == 400 and "takes no parameters" in body.decode()


# --- methods, HEAD, bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, method, allowed",
    [
        ("/screen", "POST", "GET, HEAD"),
        ("/cases/transitions", "DELETE", "GET, HEAD"),
        ("/cases/C1/transitions", "GET", "POST"),
        ("/collections/incidents/tiles", "PUT", "GET, HEAD"),
    ],
)
def test_a_wrong_method_is_405_with_allow(shell, path, method, allowed):
    answer, body = call(shell, request(path, method, body=b"{}" if method != "GET" else b""))
    assert answer.status == "405 Method Not Allowed", body
    assert answer.headers["Allow"] == allowed


def test_head_gets_the_headers_without_the_body(shell):
    get, body = call(shell, request("/cases/transitions"))
    head, nothing = call(shell, request("/cases/transitions", "HEAD"))
    assert get.code == head.code == 200 and body and nothing == b""
    assert head.headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize(
    "raw, status, match",
    [
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"to": "\xff"}', 400, "not valid JSON"),
        (b"{" + b" " * (70 * 1024) + b"}", 413, "larger than"),
    ],
)
def test_the_json_body_reader(raw, status, match):
    env = request("/cases/C1/transitions", "POST", body=raw)
    with pytest.raises(errors.TianyaError, match=match) as caught:
        web.json_body(env)
    assert caught.value.status == status


def test_the_tiles_links_use_the_shells_settings_not_the_environment(shell, monkeypatch):
    monkeypatch.setenv("TIANYA_URL", "http://from-the-environment.example")
    answer, body = call(shell, request("/collections/incidents/tiles"))
    assert answer.code == 200 and answer.headers["Content-Type"] == "application/json"
    href = json.loads(body)["links"][0]["href"]
    assert href == "http://edge.example/gis/collections/incidents/tiles"


def test_a_gpkg_shell_reaches_pygeoapi_after_its_checks(shell):
    answer, body = call(shell, request("/collections/incidents/items", query="limit=2"))
    assert answer.code == 200 and json.loads(body) == {"reached": "pygeoapi"}


def test_a_refusal_is_answered_without_exc_info(shell):
    # werkzeug's test client re-raises any exc_info given to start_response: a 401 from the
    # shell's own checks used to escape as an exception there
    seen = []

    def strict(status, headers, exc_info=None):
        if exc_info is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        seen.append(status)

    body = b"".join(shell(request("/collections/poverty_relief/items"), strict))
    assert seen == ["401 Unauthorized"] and b"personal data" in body


def test_pygeoapi_keeps_its_static_files_and_ours_are_assets(shell):
    # pygeoapi's templates load /static/css/default.css and its logo: our pages must not
    # claim that path (they live under /assets/)
    answer, body = call(shell, request("/static/css/default.css"))
    assert answer.code == 200 and b"{" in body
    answer, _ = call(shell, request("/static/img/logo.png"))
    assert answer.code == 200
    answer, body = call(shell, request("/assets/screen.js"))
    assert answer.code == 200 and b"L.map" in body
    answer, _ = call(shell, request("/assets/vendor/leaflet/leaflet.js"))
    assert answer.code == 200
    answer, _ = call(shell, request("/assets/vendor/nosuch/x.js"))
    assert answer.code == 404


def test_every_answer_may_be_read_by_a_page_of_another_origin(shell):
    # pages whose links name the server as localhost are often opened as 127.0.0.1 (or the
    # other way round): the styles, tiles, OpenAPI document and errors our routes answer
    # must be readable there, as pygeoapi's answers are (flask-cors, server.cors: true)
    for path, query in (
        ("/styles/basemap", ""),
        ("/tiles/WebMercatorQuad", ""),
        ("/assets/screen.js", ""),
        ("/assets/nosuch.js", ""),
        ("/collections/incidents/items", "colour=red"),
    ):
        answer, _ = call(shell, request(path, query=query, HTTP_ORIGIN="http://127.0.0.1:5000"))
        assert answer.headers.get("Access-Control-Allow-Origin") == "*", (path, answer.status)


def test_an_answer_with_its_own_cors_header_keeps_it_alone(tmp_path):
    def cors_stub(environ, start_response):
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "http://a")],
        )
        return [b"{}"]

    shell = Shell(cors_stub, Settings.from_env({"TIANYA_DATA": str(tmp_path / "none.gpkg")}))
    seen: list = []

    def start(status, headers, exc_info=None):
        seen.extend(headers)

    b"".join(shell(request("/collections"), start))
    assert [v for k, v in seen if k.lower() == "access-control-allow-origin"] == ["http://a"]
