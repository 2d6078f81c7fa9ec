"""The server's log: a client's error is one INFO line, a server fault one ERROR with its
traceback, whether the shell or pygeoapi answers it (``tianya/web.py``, ``tianya/compat.py``).

The app runs in a forked child: pygeoapi reads its configuration once per process, and
``tests/test_compat.py`` checks the one its own app was given.
"""

from __future__ import annotations

import logging
import multiprocessing

import pytest

URLS = {
    "400 shell": "/collections/incidents/items?limit=abc",
    "401 shell": "/collections/poverty_relief/items",
    "404 pygeoapi": "/collections/nope/items",
    # pygeoapi answers a provider's "not found" inside its except block: its record had the
    # provider's traceback
    "404 pygeoapi item": "/collections/incidents/items/999999999",
    "400 format": "/collections/incidents/items?f=xml",
    "phone": "/collections/incidents/items?reporter_phone=13800138000",
}


def _scenarios(data: str) -> dict:
    """Run in the child: every request, with the records logged while it was answered."""
    from pygeoapi.provider.base import ProviderConnectionError
    from werkzeug.test import Client, EnvironBuilder

    from layers.errors import StoreUnavailable
    from tianya import screen
    from tianya.app import create_app
    from tianya.plugins.provider import TianyaProvider
    from tianya.settings import Settings

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            if record.name.startswith(("pygeoapi.api", "tianya")):
                records.append(record)

    app = create_app(settings=Settings.from_env(environ={"TIANYA_DATA": data}))
    client = Client(app)
    for name in ("", "pygeoapi", "tianya"):
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger().addHandler(Keep(logging.INFO))

    def seen():
        out = [
            (r.name, r.levelname, r.getMessage(), r.exc_info[0].__name__ if r.exc_info else None)
            for r in records
        ]
        records.clear()
        return out

    out = {}
    for key, url in URLS.items():
        status = client.get(url).status_code
        out[key] = (status, seen())

    def down(self, identifier, **kwargs):
        raise ProviderConnectionError("the database went away")

    TianyaProvider.get = down
    out["500 pygeoapi"] = (client.get("/collections/incidents/items/1").status_code, seen())
    logging.getLogger("pygeoapi.api.itemtypes").error("Bad CQL text: phone = 13800138000")
    out["redacted"] = (0, seen())
    for key, error in (("500 shell", RuntimeError("bug")), ("503 shell", StoreUnavailable("x"))):

        def broken(environ, start_response, error=error):
            raise error

        screen.app = broken
        # called as a server does: werkzeug's test client re-raises the exc_info of a 500
        answer: dict = {}
        body = app(
            EnvironBuilder(path="/screen").get_environ(),
            lambda s, h, e=None, answer=answer: answer.update(s=s),
        )
        assert b"".join(body)
        out[key] = (int(answer["s"][:3]), seen())
    return out


def _child(queue, data):
    try:
        queue.put(_scenarios(data))
    except BaseException as err:  # noqa: BLE001 - reported to the parent
        queue.put(repr(err))


@pytest.fixture(scope="module")
def logged(sample_gpkg):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue, sample_gpkg))
    child.start()
    out = queue.get(timeout=300)
    child.join(30)
    assert isinstance(out, dict), out
    return out


@pytest.mark.parametrize(
    ("key", "status", "who", "text"),
    [
        ("400 shell", 400, "tianya.web", "GET /collections/incidents/items: 400 limit must be"),
        ("401 shell", 401, "tianya.web", "401 collection 'poverty_relief'"),
        ("404 pygeoapi", 404, "pygeoapi.api", "404 NotFound: Collection not found"),
        ("404 pygeoapi item", 404, "pygeoapi.api", "has no feature"),
        ("400 format", 400, "tianya.web", "not a valid format"),
    ],
)
def test_a_client_error_is_one_info_line(logged, key, status, who, text):
    got, records = logged[key]
    assert got == status
    assert [(name, level) for name, level, _, _ in records] == [(who, "INFO")], records
    message, exc = records[0][2], records[0][3]
    assert text in message and "\n" not in message and exc is None


def test_a_fault_in_pygeoapi_is_one_error_with_its_traceback(logged):
    status, records = logged["500 pygeoapi"]
    assert status == 500
    assert [(n, lv, exc) for n, lv, _, exc in records] == [
        ("pygeoapi.api", "ERROR", "ProviderConnectionError")
    ]


@pytest.mark.parametrize(
    ("key", "status", "exc"),
    [("500 shell", 500, "RuntimeError"), ("503 shell", 503, "StoreUnavailable")],
)
def test_a_fault_in_the_shell_is_one_error_with_its_traceback(logged, key, status, exc):
    got, records = logged[key]
    assert got == status
    assert [(n, lv, e) for n, lv, _, e in records] == [("tianya.web", "ERROR", exc)]


def test_pygeoapis_module_loggers_and_the_shells_lines_are_redacted(logged):
    """The redaction filter is on each pygeoapi module logger, not only on ``pygeoapi``
    (whose filters its children's records never pass), and on the shell's refusals."""
    for key in ("redacted", "phone"):
        _, records = logged[key]
        assert records and all("13800138000" not in m for _, _, m, _ in records), records
    assert "[redacted]" in logged["redacted"][1][0][2]
