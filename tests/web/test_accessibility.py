"""Accessibility of the page, checked by axe-core (the engine behind Lighthouse's accessibility
audit) inside the real page: labels, names, roles, contrast, keyboard access to scrolling regions.

Every view is checked at desktop and phone width, with answers on screen; any violation fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.live_server import LiveServer

from .conftest import DESKTOP, ONE, PHONE, answers_settled, draw, expect, open_page, open_watched, violations


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_view_passes_axe(browser: Any, server: LiveServer, viewport: dict[str, int]) -> None:
    watched = open_watched(browser, server, viewport=viewport)
    page = open_page(watched)
    draw(page, ONE)
    answers_settled(page)
    found = {"try it": violations(page)}
    page.goto(server.base_url + "/#explore")
    tabs = page.get_by_role("tab")
    expect()(tabs.first).to_be_visible()
    for i in range(tabs.count()):
        tabs.nth(i).click()
        expect()(page.locator("#experiment .mistakes .thumb").first).to_be_visible()
        found[f"explore: {tabs.nth(i).inner_text()}"] = violations(page)
    assert {view: v for view, v in found.items() if v} == {}
    watched.check()
    page.context.close()
