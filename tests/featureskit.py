"""Small helpers of the OGC API conformance modules (``tests/test_conformance_*.py``).

Requests to a live server, the links of a document, the ``<a>`` targets of an HTML page, and
the sample data the answers are checked against (computed here, independently of the stores).
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlsplit

import requests

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_ANCHOR = re.compile(r"<a\b[^>]*\bhref=\"([^\"]*)\"", re.I)


def get(server, path: str, params: dict | None = None, accept: str | None = None, **kw):
    """GET ``path`` of the live ``server`` anonymously (the public's view)."""
    headers = {"Accept": accept} if accept else {}
    return requests.get(server.url + path, params=params, headers=headers, timeout=60, **kw)


def get_json(server, path: str, **params) -> dict:
    """The JSON document at ``path`` (``f=json`` unless given), asserting a 200."""
    r = get(server, path, {"f": "json", **params})
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r.json()


def refused(server, path: str, params: dict | None = None, raw_query: str | None = None):
    """The OGC exception body of a request that must be a 400."""
    r = get(server, path + (f"?{raw_query}" if raw_query else ""), params)
    assert r.status_code == 400, (path, params, raw_query, r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body.get("code"), str) and body["code"], body  # exception.yaml
    assert isinstance(body.get("description"), str) and body["description"], body
    return body


def links(doc: dict, rel: str) -> list[dict]:
    """The links of ``doc`` with relation ``rel``."""
    return [lk for lk in doc.get("links", []) if lk.get("rel") == rel]


def anchors(page: str) -> set[str]:
    """The ``href`` of every ``<a>`` element of an HTML page (entities decoded)."""
    return {html.unescape(h) for h in _ANCHOR.findall(page)}


def same_target(href: str) -> tuple[str, frozenset]:
    """A link target without its representation: path and query less ``f``, ``limit``
    (the JSON ``next`` link asks for bigger pages than the HTML one, on purpose)."""
    parts = urlsplit(href)
    query = frozenset((k, v) for k, v in parse_qsl(parts.query) if k not in ("f", "limit"))
    return (parts.path.rstrip("/") or "/", query)


def assert_links_in_html(doc: dict, page: str) -> None:
    """Every link of the JSON ``doc`` is an ``<a>`` of the HTML ``page`` (same target)."""
    targets = {same_target(h) for h in anchors(page)}
    missing = [lk["href"] for lk in doc.get("links", []) if same_target(lk["href"]) not in targets]
    assert not missing, f"links of the document missing from the HTML page: {missing}"


def assert_html5(response) -> str:
    """The text of a 200 ``text/html`` answer that is an HTML 5 document."""
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/html")
    text = response.text
    start = re.sub(r"^(\s|<!--.*?-->)*", "", text, flags=re.S)  # comments may precede it
    assert start[:15].lower() == "<!doctype html>", text[:80]
    assert re.search(r"<html\b", text, re.I) and re.search(r"<body\b", text, re.I)
    return text
