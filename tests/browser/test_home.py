"""The home page at / in headless Chromium: at phone and desktop widths, in light and
dark mode, with its favicon, nothing loaded from elsewhere and no horizontal scroll.
Screenshots go under the artifacts dir (see conftest)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import artifacts_dir
from tests.conftest import LiveServer

SIZES = {"phone": (390, 844), "desktop": (1280, 800)}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_the_home_page(
    browser: Any, server: LiveServer, request: pytest.FixtureRequest, size: str, scheme: str
) -> None:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith(server.url) else elsewhere.append(r.url),
    )
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    try:
        page.goto(server.url + "/")
        page.wait_for_load_state("networkidle")
        shots = artifacts_dir(request)
        page.screenshot(path=str(shots / f"home-{size}-{scheme}.png"), full_page=True)
        assert page.get_by_role("heading", name="OpenAgg is running").is_visible()
        for name in ("Developer portal", "Engineer console", "Health", "Metrics"):
            assert page.get_by_role("link", name=name).is_visible(), name
        # The logo in the page is the favicon, and it loaded.
        assert page.evaluate("document.querySelector('header img').naturalWidth") > 0
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        ), "the page scrolls sideways"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(255, 255, 255)")
        assert elsewhere == [] and failed == []
        page.get_by_role("link", name="Developer portal").click()
        page.wait_for_url(server.url + "/portal")
    finally:
        context.close()
