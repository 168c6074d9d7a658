"""The API page at /docs in headless Chromium: at phone and desktop widths, in light and
dark mode, nothing loaded from elsewhere, no horizontal scroll; and the home page links
to it. Screenshots go under the artifacts dir (see conftest)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import artifacts_dir
from tests.conftest import LiveServer

SIZES = {"phone": (390, 844), "desktop": (1280, 800)}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_the_docs_page(
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
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        ), "the page scrolls sideways"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(255, 255, 255)")
        assert elsewhere == []
    finally:
        context.close()
