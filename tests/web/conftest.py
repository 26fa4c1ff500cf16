"""Fixtures for the web page's tests: a real server, Debian's chromium driven by Playwright, and a
page that fails its test on any console error, uncaught exception, CSP violation or request that
leaves the service's origin.

Playwright cannot download browsers here, so the tests launch the system `chromium` (apt). Where
chromium or Playwright is missing they skip with the reason; CI installs both and sets
`DIGITS_REQUIRE_BROWSER=1`, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import REPO
from tests.service.live_server import LiveServer, live_server

REQUIRE_ENV = "DIGITS_REQUIRE_BROWSER"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}


def chromium_path() -> str | None:
    """The system chromium (Debian's package installs /usr/bin/chromium), if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 says the browser tests must run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -r requirements/ci.lock)")
    executable = chromium_path()
    if executable is None:
        _unavailable("no system chromium (apt-get install -y chromium)")
    from playwright.sync_api import expect

    # Two cores shared with other work: waits are generous, and a test only fails when the page
    # really never gets there.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    store = Path(os.environ.get("DIGITS_TEST_STORE", REPO / "model_store"))
    with live_server(store) as running:
        yield running


@pytest.fixture(scope="session")
def ready_models(server: LiveServer) -> list[dict[str, Any]]:
    models = httpx.get(f"{server.base_url}/models", timeout=10).json()["models"]
    return [m for m in models if m["state"] == "ready"]


@dataclass
class Watched:
    """A page and what it did: console errors, uncaught exceptions, requests."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def off_origin(self) -> list[str]:
        # data: and blob: are the page's own previews (the drawing, the prepared 28x28 image).
        return [u for u in self.requests if not u.startswith((self.base + "/", "data:", "blob:"))]

    def check(self) -> None:
        """Fail on anything the page should never do; CSP violations are console errors in Chromium."""
        assert self.errors == [], "console errors or uncaught exceptions:\n" + "\n".join(self.errors)
        assert self.off_origin() == [], f"requests that left the origin: {self.off_origin()}"


def open_watched(browser: Any, server: LiveServer, *, viewport: dict[str, int] = DESKTOP, **context: Any) -> Watched:
    page = browser.new_context(viewport=viewport, **context).new_page()
    page.set_default_timeout(20_000)
    watched = Watched(page, server.base_url)
    page.on("console", lambda m: watched.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.errors.append(f"uncaught: {e}"))
    page.on("request", lambda r: watched.requests.append(r.url))
    return watched


@pytest.fixture
def watched(browser: Any, server: LiveServer) -> Iterator[Watched]:
    """A desktop-sized page on the live server, checked when the test ends."""
    opened = open_watched(browser, server)
    yield opened
    opened.check()
    opened.page.context.close()
