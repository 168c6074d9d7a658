"""The API page at /docs in headless Chromium: at phone and desktop widths, in light and
dark mode, nothing loaded from elsewhere, no horizontal scroll; and the home page links
to it. Screenshots go under the artifacts dir (see conftest)."""

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
def test_the_docs_page(
    browser: Any, server: LiveServer, request: pytest.FixtureRequest, size: str, scheme: str
) -> None:
    opened = open_local_page(browser, server, size, scheme)
    context, page, elsewhere = opened.context, opened.page, opened.elsewhere
    try:
        page.goto(server.url + "/")
        page.get_by_role("link", name="API documentation").click()
        page.wait_for_url(server.url + "/docs")
        page.wait_for_load_state("networkidle")
        assert page.get_by_role("heading", name="OpenAgg API").is_visible()
        # Open one operation to show its parameters, body and answers.
        create = page.locator("details.op", has_text="/users/{user_guid}/members").filter(
            has_text="POST"
        )
        create.first.locator("summary").click()
        assert create.first.get_by_text("OpenAggMemberCreateBody").is_visible()
        shots = artifacts_dir(request)
        page.screenshot(path=str(shots / f"docs-{size}-{scheme}.png"))
        assert_fits_in_its_theme(page, scheme)
        assert elsewhere == []
    finally:
        context.close()
