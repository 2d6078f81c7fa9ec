"""Headless Chromium for the browser tests, offline: every request to another host is refused.

Debian's ``/usr/bin/chromium`` driven by playwright-python (never ``playwright install``); the
``browser`` fixture (``tests/conftest.py``) opens one per module with :func:`chromium`.
:class:`OfflinePage` routes ``**/*``: a request that is not ``file:``/``data:``/``blob:``/
``about:`` and whose host is not one of ``allow`` (by default 127.0.0.1 / localhost, any port;
a ``host:port`` for one server only; none for files) is aborted and recorded in ``blocked``; a
request that fails (network error, or an answer of 400 or more) is recorded in ``failed``;
console errors and uncaught exceptions in ``errors``. A page that works offline ends with all
three empty (:meth:`OfflinePage.assert_clean`); :func:`not_blank` checks a screenshot.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL = ("127.0.0.1", "localhost")
#: Schemes that never leave the page's machine.
_OWN_SCHEMES = ("file", "data", "blob", "about")


def playwright_or_skip():
    """``sync_playwright`` after checking the browser is there (a skip, a failure under CI)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium and playwright-python")
        pytest.skip("needs /usr/bin/chromium and playwright-python")
    return sync_playwright


def launch(playwright):
    """Debian's Chromium with :data:`ARGS`."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


@contextmanager
def chromium() -> Iterator:
    """A launched browser, closed on exit (or a skip, see :func:`playwright_or_skip`)."""
    sync_playwright = playwright_or_skip()
    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


class OfflinePage:
    """A page in its own browser context (``timezone_id`` and viewport as given).

    ``allow``: the hosts (``host`` or ``host:port``) requests may go to. With
    ``ignore_blocked_errors`` the console errors a refused request causes (their location is
    a refused URL or another host) are not recorded: for maps that offer online tiles.
    """

    def __init__(
        self,
        browser,
        *,
        allow=LOCAL,
        timezone_id: str | None = None,
        viewport=(1280, 860),
        ignore_blocked_errors: bool = False,
    ):
        self.allow = tuple(allow)
        self.ignore_blocked_errors = ignore_blocked_errors
        self.context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, timezone_id=timezone_id
        )
        self.page = self.context.new_page()
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)
        self.page.route("**/*", self._route)

    def allowed(self, url: str) -> bool:
        """Whether a request to ``url`` stays on this machine / the allowed hosts."""
        parts = urlsplit(url)
        if parts.scheme in _OWN_SCHEMES:
            return True
        return parts.hostname in self.allow or parts.netloc in self.allow

    def _route(self, route):
        url = route.request.url
        if self.allowed(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _failed(self, request):
        if request.url not in self.blocked:
            self.failed.append(f"{request.url}: {request.failure}")

    def _response(self, response):
        if response.status >= 400:
            self.failed.append(f"{response.url}: HTTP {response.status}")

    def _console(self, msg):
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        if self.ignore_blocked_errors and (
            where in self.blocked or (where.startswith("http") and not self.allowed(where))
        ):
            return  # a tile we refused to fetch
        self.errors.append(f"{msg.text} @ {where}")

    def goto(self, url: str, ready: str, timeout: int = 30_000, pause: int = 0):
        """Open ``url``, wait for ``ready`` to be attached, then ``pause`` ms more."""
        self.page.goto(url)
        self.page.wait_for_selector(ready, state="attached", timeout=timeout)
        if pause:
            self.page.wait_for_timeout(pause)
        return self

    def settle(self, ms: int = 500):
        """Wait until the network is idle, then ``ms`` more."""
        self.page.wait_for_load_state("networkidle", timeout=60_000)
        self.page.wait_for_timeout(ms)

    def texts(self, selector: str) -> list[str]:
        return self.page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")

    def count(self, selector: str) -> int:
        return self.page.eval_on_selector_all(selector, "els => els.length")

    def screenshot(self) -> np.ndarray:
        """The page as an RGB array."""
        from PIL import Image

        img = Image.open(io.BytesIO(self.page.screenshot())).convert("RGB")
        return np.asarray(img)

    def assert_clean(self):
        """Nothing blocked, nothing failed, no console error."""
        assert self.blocked == [], f"requests to other hosts: {self.blocked}"
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.errors == [], f"console errors: {self.errors}"

    def close(self):
        self.context.close()


def not_blank(arr: np.ndarray, min_colours: int = 30):
    """Assert that a screenshot is not one flat colour."""
    colours = len(np.unique(arr.reshape(-1, 3), axis=0))
    assert colours > min_colours, f"screenshot looks blank ({colours} colours)"
    assert arr.std() > 10
