"""The shell's small HTTP kit: errors to HTTP, parameters, bodies, responses.

Every route the shell serves itself (the checks in front of pygeoapi, ``/cases``,
``/supervision``, ``/open311``, ``/screen``, the tiles) goes through these few functions:

* :func:`error_response` turns a :class:`~layers.errors.TianyaError` into its answer: the
  status of the error's class with the reason phrase of :class:`http.HTTPStatus`, the OGC
  exception body (``type``/``code``/``description``) or a route's own format (Open311),
  and the headers the status calls for (``WWW-Authenticate``, ``Allow``, ``Retry-After``,
  ``Connection: close`` when the body was not read). :func:`guarded` runs a route and
  answers any other exception with a generic 500, logged once with its traceback.
  Logging follows the status: a client's error (4xx) is one INFO line (method, path,
  status, message), a server fault (5xx) one ERROR record with its traceback.
* :func:`query` is the one query-string parser: unknown names (with the valid ones),
  repeated names and NUL characters are refused.
* :func:`json_body` is the one JSON body reader (size cap and deadline of
  :mod:`tianya.edge`, UTF-8, must be an object).
* :func:`respond` writes JSON, GeoJSON or text with ``Content-Length`` (no body for
  ``HEAD``); :func:`allow` is the method check (405 with ``Allow``).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable, Iterable
from http import HTTPStatus
from urllib.parse import parse_qsl

import orjson

from layers import cases
from layers.errors import InvalidParameter, TianyaError, choices
from layers.lifecycle import PreconditionFailed  # a 412 (If-Match), raised in the write too
from tianya import edge
from tianya import settings as tianya_settings

__all__ = [
    "CHALLENGE",
    "GEOJSON",
    "JSON",
    "TEXT",
    "MethodNotAllowed",
    "PreconditionFailed",
    "allow",
    "check_params",
    "error_headers",
    "error_response",
    "guarded",
    "json_body",
    "ogc_body",
    "query",
    "query_pairs",
    "read_body",
    "respond",
    "settings_of",
    "status_line",
]

LOGGER = logging.getLogger("tianya.web")
JSON = "application/json; charset=UTF-8"
GEOJSON = "application/geo+json"
TEXT = "text/plain; charset=utf-8"
#: Statuses whose answer has no body, hence no Content-Type or Content-Length (RFC 9110).
_NO_BODY = (204, 304)
#: The challenge of a 401 (RFC 9110 §11.6.1): keys are bearer tokens (RFC 6750).
CHALLENGE = 'Bearer realm="tianya"'


class MethodNotAllowed(TianyaError, ValueError):
    """The resource exists but not with this method (HTTP 405, ``Allow``: ``allowed``)."""

    status = 405
    ogc_code = "InvalidParameterValue"

    def __init__(self, message: str, allowed: Iterable[str] = ()):
        super().__init__(message)
        self.allowed = tuple(allowed)


def status_line(code: int) -> str:
    """The WSGI status line of ``code``, with :class:`http.HTTPStatus`'s reason phrase.

    Examples
    --------
    >>> status_line(404)
    '404 Not Found'
    >>> status_line(599)
    '599 Error'
    """
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Error"


def settings_of(environ) -> tianya_settings.Settings:
    """The settings the shell serves this request with (the process's outside a request)."""
    return environ.get("tianya.settings") or tianya_settings.current()


# --- errors ------------------------------------------------------------------------------------


def ogc_body(err: TianyaError) -> dict:
    """The OGC API exception document of ``err``."""
    return {"code": err.ogc_code, "type": err.ogc_code, "description": str(err)}


def error_headers(err: TianyaError, environ=None) -> list[tuple[str, str]]:
    """The headers ``err``'s status calls for (besides the body's type and length)."""
    headers = []
    if err.status == 401:
        headers.append(("WWW-Authenticate", CHALLENGE))
    if err.status == 405 and getattr(err, "allowed", ()):
        headers.append(("Allow", ", ".join(err.allowed)))
    retry = getattr(err, "retry_after", None)
    if err.status in (429, 503) and retry is not None:
        headers.append(("Retry-After", str(retry)))
    if environ is not None and environ.get("tianya.close"):
        headers.append(("Connection", "close"))  # the body was not read to its end
    return headers


def error_response(
    environ,
    start_response,
    err: TianyaError,
    render: Callable[[TianyaError], object] = ogc_body,
    exc_info=None,
):
    """Answer ``err``: its status and headers, the body ``render`` makes of it (OGC's).

    Logged once: a client's error (status below 500) as one INFO line, a server fault
    (503 for a store that is down, say) at ERROR with the traceback of the exception
    being handled; with ``exc_info`` the fault was logged already (:func:`internal_error`).
    """
    what = f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '')}"
    if err.status < 500:
        LOGGER.info("%s: %d %s", what, err.status, err)
    elif exc_info is None:
        LOGGER.error("%s: %d %s", what, err.status, err, exc_info=sys.exc_info()[0] is not None)
    return respond(
        environ,
        start_response,
        render(err),
        err.status,
        headers=error_headers(err, environ),
        exc_info=exc_info,
    )


def internal_error(environ) -> TianyaError:
    """Log the exception being handled (ERROR, traceback) and return the client's 500.

    The client is told when it was logged, nothing of the exception (its text may hold
    SQL, paths or personal data).
    """
    when = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    what = f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '')}"
    LOGGER.error("internal error answering %s at %s", what, when, exc_info=True)
    return TianyaError(f"internal error answering {what} (logged at {when})")


def guarded(environ, start_response, route, render: Callable[[TianyaError], object] = ogc_body):
    """Run the WSGI ``route``; a :class:`TianyaError` or any other exception is answered.

    Our errors get :func:`error_response`; anything else a generic 500 (see
    :func:`internal_error`), so the server logs it once and the client learns nothing of it.
    """
    try:
        return route(environ, start_response)
    except TianyaError as err:
        # a refusal, not a fault: no exc_info (werkzeug's test client and some servers
        # re-raise whatever exc_info they are given)
        return error_response(environ, start_response, err, render)
    except Exception:  # noqa: BLE001 - the one place an unexpected fault becomes a 500
        err = internal_error(environ)
        return error_response(environ, start_response, err, render, exc_info=sys.exc_info())


# --- requests ----------------------------------------------------------------------------------


def query_pairs(text: str) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of a query string or form body, blanks kept, in order."""
    return parse_qsl(text, keep_blank_values=True)


def check_params(
    pairs: Iterable[tuple[str, str]],
    allowed: Iterable[str] | None = None,
    what: str = "query parameter",
) -> dict[str, str]:
    """The parameters of ``pairs`` as a dict; 400 for an unknown, repeated or NUL one.

    Parameters
    ----------
    pairs : iterable of (str, str)
        Names and values (:func:`query_pairs`).
    allowed : iterable of str, optional
        The valid names (default: any; the route checks them itself).
    what : str
        What a parameter is called in the messages (``"Open311 parameter"``).

    Examples
    --------
    >>> check_params([("f", "json")], ("f",))
    {'f': 'json'}
    >>> check_params([("bbox", "1")], ("f",))
    Traceback (most recent call last):
    ...
    layers.errors.InvalidParameter: 'bbox' is not a valid query parameter, must be one of: f
    """
    allowed = None if allowed is None else tuple(allowed)
    out: dict[str, str] = {}
    for k, v in pairs:
        if allowed is not None and k not in allowed:
            raise InvalidParameter(
                choices(k, allowed, what)
                if allowed
                else f"{what} {k!r} is not valid here: this resource takes no parameters"
            )
        if k in out:
            raise InvalidParameter(f"{what} {k!r} is given more than once")
        if "\x00" in v:
            raise InvalidParameter(f"{what} {k!r} contains a NUL character (U+0000)")
        out[k] = v
    return out


def query(
    environ, allowed: Iterable[str] | None = None, what: str = "query parameter"
) -> dict[str, str]:
    """The request's query parameters, checked by :func:`check_params`."""
    return check_params(query_pairs(environ.get("QUERY_STRING", "")), allowed, what)


def allow(environ, *methods: str) -> str:
    """The request's method if it is one of ``methods``; else 405 with ``Allow``."""
    m = environ.get("REQUEST_METHOD", "GET")
    if m not in methods:
        raise MethodNotAllowed(
            f"method {m} is not allowed here; allowed: {', '.join(methods)}", methods
        )
    return m


def read_body(environ, cap: int = cases.MAX_BODY) -> bytes:
    """The request body, read once by :func:`tianya.edge.buffer_body` (``cap`` bytes at most,
    within the settings' ``body_seconds``); the shell has normally read it already."""
    if "tianya.body" not in environ:
        edge.buffer_body(environ, cap, settings_of(environ).body_seconds)
    return environ["tianya.body"]


def json_body(environ, cap: int = cases.MAX_BODY) -> dict:
    """The request body as a JSON object: 400 when empty, not UTF-8 JSON or not an object,
    413 over ``cap``, 408 when it is not sent in time."""
    raw = read_body(environ, cap)
    if not raw:
        raise InvalidParameter("request body is empty: send a JSON object")
    return cases.parse_body(raw)


# --- responses ---------------------------------------------------------------------------------


def respond(
    environ,
    start_response,
    payload,
    status: int = 200,
    *,
    content_type: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    exc_info=None,
) -> list[bytes]:
    """Write one answer.

    Parameters
    ----------
    environ, start_response
        The WSGI request (a ``HEAD`` gets the headers only).
    payload : object
        ``bytes`` as they are, ``str`` as UTF-8 text, anything else as JSON (orjson).
    status : int
        The HTTP status (204 and 304 have no body).
    content_type : str, optional
        Default :data:`JSON` for a JSON payload, :data:`TEXT` for a ``str``.
    headers : iterable of (str, str)
        More headers.
    exc_info : tuple, optional
        Passed to ``start_response`` when answering an exception.
    """
    if isinstance(payload, bytes):
        body = payload
    elif isinstance(payload, str):
        body, content_type = payload.encode("utf-8"), content_type or TEXT
    else:
        body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    out = (
        []
        if status in _NO_BODY
        else [("Content-Type", content_type or JSON), ("Content-Length", str(len(body)))]
    )
    start_response(status_line(status), [*out, *headers], *([exc_info] if exc_info else []))
    if status in _NO_BODY or environ.get("REQUEST_METHOD") == "HEAD":
        return []
    return [body]
