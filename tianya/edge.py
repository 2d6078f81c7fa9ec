"""What every request goes through before any route sees it: its path and its body.

* :func:`normalise_path` gives the one spelling of a path that the shell checks and
  pygeoapi routes (``//collections/x``, ``/./collections/x`` and ``/a/../collections/x``
  are all ``/collections/x``); control characters are refused.
* :func:`buffer_body` reads a request body whole, whatever its transfer encoding,
  with a size cap and a deadline for the whole body: a client that sends slowly or
  never finishes holds a server thread for at most the settings' ``body_seconds``
  (``TIANYA_BODY_SECONDS``), and a chunked
  body cannot get past the cap. The body is then handed on as a plain
  ``Content-Length`` body, so no later reader touches the socket.

Production: ``tianya serve`` runs gunicorn's threaded workers (many threads per
process, so a few slow clients cannot take every thread) with these checks in
front of every route. On a network facing the public, put a buffering reverse proxy
in front as well (nginx with ``client_body_timeout``, ``client_header_timeout`` and
``client_max_body_size``): it also bounds slow *headers*, which reach gunicorn
before this code runs.
"""

from __future__ import annotations

import io
import posixpath
import socket
import threading
import time
from contextlib import contextmanager

from layers.errors import InvalidParameter, NotFound, PayloadTooLarge, RequestTimeout
from tianya import settings as tianya_settings

#: Methods whose body is read (and bounded) by :func:`buffer_body`.
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


_CLOCKS: dict[int, threading.Timer] = {}
_CLOCKS_LOCK = threading.Lock()


@contextmanager
def start_header_clock(sock, seconds: float | None = None):
    """While the block runs, shut ``sock``'s read side after ``seconds`` unless the
    application has started (:func:`headers_received`): a client sending its headers
    slowly then holds a server thread for at most ``seconds`` (default: the settings'
    ``header_seconds``, ``TIANYA_HEADER_SECONDS``; enforced by :class:`tianya.worker.Worker`)."""
    if seconds is None:
        seconds = tianya_settings.current().header_seconds
    timer = _clock(sock, seconds, threading.Event())
    with _CLOCKS_LOCK:
        _CLOCKS[id(sock)] = timer
    try:
        yield
    finally:
        with _CLOCKS_LOCK:
            _CLOCKS.pop(id(sock), None)
        timer.cancel()


def headers_received(environ) -> None:
    """Stop the header clock of this request's connection (the shell calls it first)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return
    with _CLOCKS_LOCK:
        timer = _CLOCKS.pop(id(sock), None)
    if timer is not None:
        timer.cancel()


def normalise_path(path: str) -> str:
    """The canonical form of a request path.

    Runs of slashes become one, ``.`` and ``..`` segments are resolved, a trailing
    slash is kept. A path with a control character is refused (404: no resource has
    such a name).

    Examples
    --------
    >>> normalise_path("//collections/./incidents/items")
    '/collections/incidents/items'
    >>> normalise_path("/x/../collections/")
    '/collections/'
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise NotFound("no resource has a control character in its path")
    if not path:
        return "/"
    norm = posixpath.normpath("/" + path.lstrip("/"))
    if norm.startswith("//"):  # posixpath keeps a leading double slash
        norm = "/" + norm.lstrip("/")
    if path.endswith("/") and norm != "/":
        norm += "/"
    return norm


def has_body(environ) -> bool:
    """Whether the request announces a body (a length above 0, or chunks)."""
    length = (environ.get("CONTENT_LENGTH") or "0").strip()
    return length not in ("", "0") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def _cut(sock, flag: threading.Event) -> None:
    """Deadline passed: end the body read (the blocked ``recv`` returns at once)."""
    flag.set()
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass


def _clock(sock, seconds: float, late: threading.Event) -> threading.Timer:
    """A started timer that sets ``late`` and shuts ``sock``'s read side after ``seconds``."""
    timer = threading.Timer(seconds, _cut, (sock, late))
    timer.daemon = True
    timer.start()
    return timer


def _read(environ, want: int, seconds: float, keep: bool = True) -> tuple[bytearray, int, bool]:
    """Read up to ``want`` bytes of the body within ``seconds``: (bytes kept, bytes read, late)."""
    stream = environ.get("wsgi.input")
    buf, n = bytearray(), 0
    late = threading.Event()
    if not want or stream is None:
        return buf, n, False
    sock = environ.get("gunicorn.socket")
    # a recv blocked on a silent client is ended by the clock
    timer = _clock(sock, seconds, late) if sock is not None else None
    deadline = time.monotonic() + seconds
    try:
        while n < want:
            chunk = stream.read(min(1 << 16, want - n))
            if not chunk:
                break
            n += len(chunk)
            if keep:
                buf += chunk
            if time.monotonic() > deadline:
                late.set()
                break
    except Exception as err:  # noqa: BLE001 - the server's reader: a cut or broken body
        if not late.is_set():
            raise InvalidParameter(
                f"the request body could not be read: {type(err).__name__}"
            ) from None
    finally:
        if timer is not None:
            timer.cancel()
    return buf, n, late.is_set()


def buffer_body(environ, cap: int, seconds: float | None = None) -> bytes:
    """Read the request body whole and hand it on as a ``Content-Length`` body.

    Parameters
    ----------
    environ : dict
        The WSGI environ; ``wsgi.input``, ``CONTENT_LENGTH`` and
        ``HTTP_TRANSFER_ENCODING`` are replaced by the buffered body.
    cap : int
        Largest body accepted, in bytes.
    seconds : float, optional
        Time the client has to send the whole body (default: the settings'
        ``body_seconds``, ``TIANYA_BODY_SECONDS``).

    Returns
    -------
    bytes
        The body (also ``environ["tianya.body"]``).

    Raises
    ------
    PayloadTooLarge
        Declared or sent body over ``cap`` (413).
    RequestTimeout
        The body was not complete within ``seconds`` (408).
    InvalidParameter
        A bad ``Content-Length`` or a broken chunked encoding (400).
    """
    if seconds is None:
        seconds = tianya_settings.current().body_seconds
    raw_len = environ.get("CONTENT_LENGTH") or ""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    length = None
    if raw_len.strip() and not chunked:
        try:
            length = int(raw_len)
        except ValueError:
            raise InvalidParameter(f"Content-Length is not a number: {raw_len[:40]!r}") from None
        if length < 0:
            raise InvalidParameter("Content-Length is negative")
        if length > cap:
            # read and drop a bounded part, so that the client gets to read the 413
            _read(environ, min(length, 8 << 20), min(seconds, 2.0), keep=False)
            environ["tianya.close"] = True
            raise PayloadTooLarge(
                f"request body of {length} bytes is larger than the {cap} bytes allowed"
            )
    elif not chunked:
        length = 0
    buf, n, late = _read(environ, cap + 1 if length is None else length, seconds)
    if late:
        environ["tianya.close"] = True
        raise RequestTimeout(f"the request body was not received within {seconds:g} s")
    if n > cap:
        _read(environ, 8 << 20, min(seconds, 2.0), keep=False)  # let the client read the 413
        environ["tianya.close"] = True
        raise PayloadTooLarge(f"request body is larger than the {cap} bytes allowed")
    if length is not None and n < length:
        environ["tianya.close"] = True
        raise InvalidParameter(
            f"the request body ended after {n} of the {length} bytes its Content-Length announced"
        )
    body = bytes(buf)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input_terminated"] = True
    environ["tianya.body"] = body
    return body
