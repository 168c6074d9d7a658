"""The home page at / in headless Chromium: at phone and desktop widths, in light and
dark mode, with its favicon, nothing loaded from elsewhere and no horizontal scroll.
Screenshots go under the artifacts dir (see conftest)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import (
    PAGE_SIZES,
    artifacts_dir,
    assert_fits_in_its_theme,
    open_local_page,
)
from tests.conftest import LiveServer


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", list(PAGE_SIZES))
def test_the_home_page(
    browser: Any, server: LiveServer, request: pytest.FixtureRequest, size: str, scheme: str
) -> None:
    opened = open_local_page(browser, server, size, scheme)
    context, page, elsewhere = opened.context, opened.page, opened.elsewhere
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
        assert_fits_in_its_theme(page, scheme)
        assert elsewhere == [] and failed == []
        page.get_by_role("link", name="Developer portal").click()
        page.wait_for_url(server.url + "/portal")
    finally:
        context.close()
