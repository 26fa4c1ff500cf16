"""Fixtures for the web page's tests: a real server, Debian's chromium driven by Playwright, and a
page that fails its test on any console error, uncaught exception, CSP violation or request that
leaves the service's origin.

Playwright cannot download browsers here, so the tests launch the system `chromium` (apt). Where
chromium or Playwright is missing they skip with the reason; CI installs both and sets
`DIGITS_REQUIRE_BROWSER=1`, which turns the skip into a failure.
"""

from __future__ import annotations

import math
import os
import re
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


# -- helpers the page tests share ---------------------------------------------------------------


Points = list[tuple[float, float]]


ONE: Points = [(0.52, 0.15 + 0.7 * i / 24) for i in range(25)]


ZERO: Points = [(0.5 + 0.22 * math.sin(2 * math.pi * i / 48), 0.5 - 0.32 * math.cos(2 * math.pi * i / 48))
                for i in range(49)]


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def draw(page: Any, stroke: Points) -> None:
    """One stroke with the mouse (pointer events), in fractions of the pad's size."""
    box = page.locator("#pad").bounding_box()
    at = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=2)
    page.mouse.up()


def answers_settled(page: Any) -> None:
    # aria-busy is false once the answers for the latest drawing or upload are on the page.
    expect()(page.locator("#answers")).to_have_attribute("aria-busy", "false", timeout=15_000)
    expect()(page.locator("#status")).to_have_text(re.compile(r"^Answered in"))


def open_page(watched: Watched, path: str = "/") -> Any:
    page = watched.page
    page.goto(watched.base + path)
    expect()(page.locator("#status")).to_have_text("Draw a digit to see every model's answer.")
    return page


def file_chooser_from_space(page: Any, control: str, attempts: int = 3) -> Any:
    """The file chooser that Space on the focused `control` opens.

    On a loaded CI machine Chromium now and then drops the chooser that one key press asked for
    (CI saw a 20 s wait end with none; alone the test passes), so the press is tried again: a
    chooser that never opens still fails the test, after every attempt.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    def press_space() -> Any:
        page.locator(control).focus()
        expect()(page.locator(control)).to_be_focused()
        with page.expect_file_chooser(timeout=7_000) as chooser:
            page.keyboard.press("Space")
        return chooser.value

    for _ in range(attempts - 1):
        try:
            return press_space()
        except PlaywrightTimeout:
            continue
    return press_space()


AXE = Path(__file__).parent / "vendor" / "axe.min.js"


RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    rule: v.id, impact: v.impact, help: v.help,
    where: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
  }));
}"""


def violations(page: Any) -> list[dict[str, Any]]:
    # Evaluated by Playwright, so the page's content security policy does not apply to axe itself.
    page.evaluate(AXE.read_text())
    result: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return result
