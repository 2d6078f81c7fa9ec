"""Vendored Leaflet assets and how a saved folium map refers to them.

folium writes ``<script src="https://cdn…">`` links to Leaflet, jQuery, Bootstrap and
Font Awesome. A command hall often has no internet, and our maps need none of the jQuery /
Bootstrap / Font Awesome stack (no folium ``Popup`` or ``Icon`` is used), so :func:`finish`
rewrites the page:

``assets="inline"`` (default)
    Leaflet and the plugins the page uses are copied into the HTML (CSS images as data
    URIs): one self-contained file that works offline and can be mailed around (~200 KB).
    An asset folium links that is neither vendored nor dropped is an error, never a silent
    link to a CDN (a new plugin must be vendored first).
``assets="cdn"``
    folium's CDN links for Leaflet and the plugins (smaller; needs internet: an explicit
    online choice).
``assets="<url prefix>"``
    Links to a server that serves ``analytics/vendor`` (``/assets/vendor`` of our shell).

The vendored files come from the npm registry (leaflet 1.9.4, leaflet.markercluster 1.5.3,
leaflet.fullscreen 3.0.0) with their licences in ``analytics/vendor/*/``.
"""

from __future__ import annotations

import base64
import mimetypes
import os
import re

VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")

#: folium asset URL (by file name) → vendored file, for the assets we keep.
_KEEP = {
    "leaflet.js": "leaflet/leaflet.js",
    "leaflet.css": "leaflet/leaflet.css",
    "leaflet.markercluster.js": "leaflet.markercluster/leaflet.markercluster.js",
    "MarkerCluster.css": "leaflet.markercluster/MarkerCluster.css",
    "MarkerCluster.Default.css": "leaflet.markercluster/MarkerCluster.Default.css",
    "Control.FullScreen.min.js": "leaflet.fullscreen/Control.FullScreen.js",
    "Control.FullScreen.js": "leaflet.fullscreen/Control.FullScreen.js",
    "Control.FullScreen.css": "leaflet.fullscreen/Control.FullScreen.css",
}
#: folium assets none of our maps use (jQuery, Bootstrap, Font Awesome, awesome-markers).
_DROP = ("jquery", "bootstrap", "awesome-markers", "fontawesome", "awesome.rotate", "glyphicons")

_SCRIPT = re.compile(r'<script src="([^"]+)"></script>\s*')
_LINK = re.compile(r'<link rel="stylesheet" href="([^"]+)"\s*/>\s*')
_URL = re.compile(r"url\(([^)#'\"]+)\)")


def _read(rel: str) -> str:
    with open(os.path.join(VENDOR, rel), encoding="utf-8") as fh:
        return fh.read()


def _css_inline(rel: str) -> str:
    """The CSS text with ``url(relative)`` images as data URIs."""
    css = _read(rel)
    base = os.path.dirname(os.path.join(VENDOR, rel))

    def data_uri(m):
        path = os.path.normpath(os.path.join(base, m.group(1)))
        if not path.startswith(VENDOR) or not os.path.exists(path):
            return m.group(0)
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        with open(path, "rb") as fh:
            return f"url(data:{mime};base64,{base64.b64encode(fh.read()).decode()})"

    return _URL.sub(data_uri, css)


def _vendored(url: str) -> str | None:
    name = url.rsplit("/", 1)[-1].split("?")[0]
    return _KEEP.get(name)


def _dropped(url: str) -> bool:
    return any(d in url.lower() for d in _DROP)


def _unvendored(url: str) -> ValueError:
    return ValueError(
        f"the map links {url}, which is not vendored: an inline map must not load it from "
        f"another host (add it to {VENDOR} and to analytics.mapassets._KEEP)"
    )


def finish(html: str, assets: str = "inline") -> str:
    """Rewrite folium's asset links in ``html`` (see the module docstring).

    Raises
    ------
    ValueError
        ``assets="inline"`` and the page links an asset that is not vendored.
    """

    def script(m):
        url = m.group(1)
        if _dropped(url):
            return ""
        rel = _vendored(url)
        if rel is None and assets == "inline":
            raise _unvendored(url)
        if rel is None or assets == "cdn":
            return m.group(0)
        if assets == "inline":
            return f"<script>{_read(rel)}</script>\n"
        return f'<script src="{assets.rstrip("/")}/{rel}"></script>\n'

    def link(m):
        url = m.group(1)
        if _dropped(url):
            return ""
        rel = _vendored(url)
        if rel is None and assets == "inline":
            raise _unvendored(url)
        if rel is None or assets == "cdn":
            return m.group(0)
        if assets == "inline":
            return f"<style>{_css_inline(rel)}</style>\n"
        return f'<link rel="stylesheet" href="{assets.rstrip("/")}/{rel}"/>\n'

    html = _SCRIPT.sub(script, html)
    return _LINK.sub(link, html)
