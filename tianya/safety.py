"""Small guards the shell puts on answers: heavy reads per caller, CSV cells, the public
OpenAPI document, and what reaches the log.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from contextlib import contextmanager

from layers import access
from layers.catalogue import LAYERS
from layers.errors import InvalidParameter, TooManyRequests, choices
from tianya import request


class CallerLimit:
    """At most ``n`` heavy requests at a time per caller (in this server process).

    A caller is an API key's name, or the client address for the public. A request
    over the limit is refused at once with 429 and ``Retry-After``: it never waits
    for a thread.
    """

    def __init__(self, n: int):
        self.n = n
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}

    @contextmanager
    def hold(self, caller: str | None):
        """Count one heavy request of ``caller`` while the block runs (``None``: not heavy)."""
        if caller is None:
            yield
            return
        with self._lock:
            if self._busy.get(caller, 0) >= self.n:
                raise TooManyRequests(
                    f"at most {self.n} heavy reads (pages of more than 1000 features, CSV, "
                    "coverages, filters with a geometry) "
                    "may run at a time for one caller; retry when one has finished",
                    retry_after=2,
                )
            self._busy[caller] = self._busy.get(caller, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._busy[caller] -= 1
                if not self._busy[caller]:
                    del self._busy[caller]


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def escape_cell(cell: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula.

    Cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a
    leading apostrophe (OWASP's advice), unless they are plain numbers.

    Examples
    --------
    >>> escape_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> escape_cell("-12.5")
    '-12.5'
    """
    if cell and cell[0] in "=+-@\t\r" and not _NUMBER.match(cell):
        return "'" + cell
    return cell


def escape_csv(data: bytes) -> bytes:
    """``data`` (UTF-8 CSV) with every cell passed through :func:`escape_cell`."""
    text = data.decode("utf-8")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n")
    for row in csv.reader(io.StringIO(text, newline="")):
        writer.writerow([escape_cell(c) for c in row])
    return out.getvalue().encode("utf-8")


_DOCS: dict[frozenset, dict] = {}


def _without(node, hidden: frozenset):
    if isinstance(node, dict):
        return {
            k: _without(v, hidden)
            for k, v in node.items()
            if k not in hidden and not (isinstance(v, dict) and _named(v) in hidden)
        }
    if isinstance(node, list):
        return [
            _without(v, hidden)
            for v in node
            if not (isinstance(v, str) and v in hidden)
            and not (isinstance(v, dict) and _named(v) in hidden)
        ]
    return node


def _named(node: dict) -> str | None:
    """The ``name`` of a parameter or tag (a schema's ``properties`` may have a property
    called ``name``, whose value is a schema)."""
    name = node.get("name")
    return name if isinstance(name, str) else None


#: The ``f`` values of the JSON OpenAPI document (pygeoapi answers another ``f`` with a 400).
_OPENAPI_FORMATS = ("json", "jsonld")


def public_openapi(environ, load) -> dict | None:
    """The OpenAPI document for a caller who may not read every collection.

    Parameters
    ----------
    environ : dict
        The request (``f`` and ``Accept`` choose HTML, which is left to pygeoapi:
        its page loads this JSON).
    load : callable
        Returns the full document.

    Returns
    -------
    dict or None
        The document without the paths, tags and choices of the collections the
        caller may not read; ``None`` when there is nothing to hide or HTML is asked.

    Raises
    ------
    InvalidParameter
        ``f`` is none of the document's formats (400, as pygeoapi answers a caller who may
        read everything; the public's document was answered for any ``f``).
    """
    from tianya.web import query_pairs

    # pygeoapi checks the query itself: only the first ``f`` is read here
    f = next((v for k, v in query_pairs(environ.get("QUERY_STRING", "")) if k == "f"), "")
    if f == "html" or (not f and "text/html" in environ.get("HTTP_ACCEPT", "")):
        return None
    if f not in ("", *_OPENAPI_FORMATS):  # pygeoapi's answer to a caller who sees it all
        raise InvalidParameter(choices(f, ("html", *_OPENAPI_FORMATS), "f"))
    who = request.principal()
    hidden = frozenset(lid for lid, layer in LAYERS.items() if not access.can_read(layer, who))
    if not hidden:
        return None
    if hidden not in _DOCS:
        doc = dict(load())
        doc["paths"] = {
            p: v
            for p, v in doc.get("paths", {}).items()
            if not any(
                p == f"/collections/{h}" or p.startswith(f"/collections/{h}/") for h in hidden
            )
        }
        _DOCS[hidden] = _without(doc, hidden)
    return _DOCS[hidden]


class RedactFilter(logging.Filter):
    """Masks phone- and ID-number-like digit runs and bearer keys in log messages."""

    _DIGITS = re.compile(r"\d{7,}")
    _BEARER = re.compile(r"(?i)(bearer\s+|api[_-]?key\W+)\S+")

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = self._BEARER.sub(r"\1[redacted]", self._DIGITS.sub("[redacted]", msg))
        if masked != msg:
            record.msg, record.args = masked, ()
        return True
