"""Headless Chromium for the page tests, offline: every request to another host is refused.

Debian's ``/usr/bin/chromium`` driven by playwright-python (never ``playwright install``).
:class:`OfflinePage` routes ``**/*``: a request whose host is not 127.0.0.1 / localhost is
aborted and recorded in ``blocked``; a request that fails (network error, or an answer of
400 or more) is recorded in ``failed``; console errors and uncaught exceptions in ``errors``.
A page that works offline ends with all three empty.
"""

from __future__ import annotations

import io
import os
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


def launch(playwright):
    """Chromium, or a skip (a failure under CI) where it or playwright is missing."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def playwright_or_skip():
    """``sync_playwright`` after checking the browser is there."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium and playwright-python")
        pytest.skip("needs /usr/bin/chromium and playwright-python")
    return sync_playwright


class OfflinePage:
    """A page in its own browser context (``timezone_id`` and viewport as given)."""

    def __init__(self, browser, *, timezone_id: str | None = None, viewport=(1280, 860)):
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

    def _route(self, route):
        url = route.request.url
        scheme, host = urlsplit(url).scheme, urlsplit(url).hostname
        if scheme in ("data", "blob", "about") or host in LOCAL:
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
        if msg.type == "error":
            self.errors.append(f"{msg.text} @ {(msg.location or {}).get('url', '')}")

    def goto(self, url: str, ready: str, timeout: int = 30_000):
        self.page.goto(url)
        self.page.wait_for_selector(ready, state="attached", timeout=timeout)
        return self

    def texts(self, selector: str) -> list[str]:
        return self.page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")

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
