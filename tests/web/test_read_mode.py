"""The page's "Read a number" mode (issue 26) in a real browser: a number uploaded or written on the
wide pad goes to POST /read, and the page shows the string and one box per digit over the image.

Each test runs on a page that fails it on any console error (CSP violations included), uncaught
exception or request that leaves the origin (`watched`, see conftest.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from tests.service.live_server import LiveServer
from training.data import RawSplit

from .conftest import (
    DESKTOP,
    ONE,
    PHONE,
    ZERO,
    Points,
    Watched,
    expect,
    file_chooser_from_space,
    open_watched,
    violations,
)

NUMBER = "2047"


def composed_number(mnist: RawSplit, text: str, scale: int = 4) -> bytes:
    """MNIST test digits side by side in one PNG, dark ink on white paper like a scanned form.

    Each digit is the first of its class in the sample (no choosing among them); the 28x28 tiles keep
    MNIST's own margins, so the digits stand about 8 px apart before scaling.
    """
    tiles = [mnist.images[int(np.flatnonzero(mnist.labels == int(c))[0])] for c in text]
    row: npt.NDArray[np.uint8] = np.pad(np.concatenate(tiles, axis=1), 14)
    big = cv2.resize(row, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    ok, png = cv2.imencode(".png", 255 - big)
    assert ok
    return png.tobytes()


def open_read(watched: Watched) -> Any:
    page = watched.page
    page.goto(watched.base + "/#read")
    expect()(page.locator("#read-view")).to_be_visible()
    expect()(page.locator("#read-status")).to_have_text("Write a number or upload an image of one.")
    return page


def reading_settled(page: Any) -> None:
    # aria-busy is false once the answer for the latest drawing or upload is on the page.
    expect()(page.locator("#read-digits")).to_have_attribute("aria-busy", "false", timeout=15_000)
    expect()(page.locator("#read-status")).to_have_text(re.compile(r"^Read \d+ digit"))


def upload_number(page: Any, png: bytes) -> None:
    page.locator("#read-file").set_input_files({"name": "number.png", "mimeType": "image/png", "buffer": png})


def draw_on(page: Any, stroke: Points, left: float, width: float) -> None:
    """One mouse stroke on the wide pad, in fractions of a square cell starting at `left` (of the pad)."""
    box = page.locator("#read-pad").bounding_box()
    at = [(box["x"] + (left + x * width) * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=2)
    page.mouse.up()


def test_an_uploaded_number_is_read_with_a_box_per_digit(watched: Watched, mnist_test: RawSplit,
                                                         tmp_path: Path) -> None:
    page = open_read(watched)
    upload_number(page, composed_number(mnist_test, NUMBER))
    reading_settled(page)
    expect()(page.locator("#read-text")).to_have_text(NUMBER)
    boxes = page.locator("#read-boxes .digit-box")
    expect()(boxes).to_have_count(len(NUMBER))
    expect()(page.locator("#read-digits li")).to_have_count(len(NUMBER))
    # Each box carries its digit and confidence, left to right, and lies on the shown image.
    labels = [b.inner_text() for b in boxes.all()]
    assert [label.split(" ")[0] for label in labels] == list(NUMBER), labels
    assert all(re.search(r"\d+%$", label) for label in labels), labels
    image = page.locator("#read-image").bounding_box()
    shown = [b.bounding_box() for b in boxes.all()]
    assert [s["x"] for s in shown] == sorted(s["x"] for s in shown)
    for s in shown:
        assert image["x"] - 1 <= s["x"] and s["x"] + s["width"] <= image["x"] + image["width"] + 1
        assert image["y"] - 1 <= s["y"] and s["y"] + s["height"] <= image["y"] + image["height"] + 1
    # The same, for a screen reader: the boxes' description names every digit.
    expect()(page.locator("#read-boxes")).to_have_attribute(
        "aria-label", re.compile(rf"^Your image with {len(NUMBER)} digit box\(es\): 2 \("))
    expect()(page.locator("#read-confidence")).to_contain_text("sure of the whole number")
    assert page.locator("#read-image").get_attribute("src").startswith("blob:")
    page.screenshot(path=tmp_path / "read-desktop.png", full_page=True)
    assert (tmp_path / "read-desktop.png").stat().st_size > 20_000, "a rendered page, not a blank one"


def test_digits_written_on_the_wide_pad_are_read_and_clear_empties_the_reading(watched: Watched) -> None:
    page = open_read(watched)
    # A one and a zero in two cells of the pad: the pad is three times as wide as it is high.
    draw_on(page, ONE, 0.1, 1 / 3)
    reading_settled(page)
    expect()(page.locator("#read-text")).to_have_text("1")
    draw_on(page, ZERO, 0.45, 1 / 3)
    reading_settled(page)
    expect()(page.locator("#read-text")).to_have_text(re.compile(r"^1 ?0$"))
    expect()(page.locator("#read-boxes .digit-box")).to_have_count(2)
    page.get_by_role("button", name="Undo").click()
    reading_settled(page)
    expect()(page.locator("#read-boxes .digit-box")).to_have_count(1)
    page.get_by_role("button", name="Clear").click()
    expect()(page.locator("#read-text")).to_have_text("\u2013")  # the dash of "nothing read"
    expect()(page.locator("#read-boxes .digit-box")).to_have_count(0)
    expect()(page.locator("#read-figure")).to_be_hidden()


def test_an_image_without_a_digit_gets_the_services_message(watched: Watched) -> None:
    page = open_read(watched)
    _, blank = cv2.imencode(".png", np.full((64, 192), 255, np.uint8))
    upload_number(page, blank.tobytes())
    expect()(page.locator("#read-status")).to_have_text(re.compile(r"^no ink found"))
    expect()(page.locator("#read-digits")).to_have_attribute("aria-busy", "false")
    expect()(page.locator("#read-boxes .digit-box")).to_have_count(0)
    # The 422 is expected; Chromium logs every failed fetch as a console error.
    watched.errors[:] = [e for e in watched.errors if "status of 422" not in e]


def test_the_read_mode_works_from_the_keyboard(watched: Watched, mnist_test: RawSplit) -> None:
    page = watched.page
    page.goto(watched.base + "/")
    page.locator("#nav-read").focus()
    page.keyboard.press("Enter")
    expect()(page.locator("#read-view")).to_be_visible()
    expect()(page.locator("#nav-read")).to_have_attribute("aria-current", "page")
    expect()(page.locator("#try-view")).to_be_hidden()
    focused = []
    for _ in range(8):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    for control in ("read-pad", "read-file", "read-photo"):
        assert control in focused, f"{control} is not reachable with Tab: {focused}"
    # Space on the focused upload control opens the file chooser, as on a button (pressed again if a
    # loaded Chromium drops the chooser, as test_page's keyboard test does).
    chooser = file_chooser_from_space(page, "#read-file")
    chooser.set_files({"name": "number.png", "mimeType": "image/png", "buffer": composed_number(mnist_test, NUMBER)})
    reading_settled(page)
    expect()(page.locator("#read-text")).to_have_text(NUMBER)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_read_mode_passes_axe_and_fits_a_phone(browser: Any, server: LiveServer, mnist_test: RawSplit,
                                                   viewport: dict[str, int]) -> None:
    watched = open_watched(browser, server, viewport=viewport)
    page = open_read(watched)
    upload_number(page, composed_number(mnist_test, NUMBER))
    reading_settled(page)
    assert violations(page) == []
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the page is {width} px wide at {viewport['width']} px"
    watched.check()
    page.context.close()
