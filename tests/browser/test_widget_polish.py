"""The widget's looks (issue 21, item 16): every screen in light and dark at phone and
desktop widths (screenshots in the artifacts dir), institutions' instructions as safe
rich text, account types in words, the sandbox's own logos, a connected screen that
reaches its last action, and a failure screen that says each thing once."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from openagg.domain.statuses import MESSAGES, Status
from tests.browser.conftest import (
    Widget,
    artifacts_dir,
    choose,
    new_user,
    run_cli,
    sign_in,
    widget_url,
)
from tests.conftest import VENV_BIN, LiveServer, start_live_server

SIZES = [("light", 390), ("dark", 390), ("light", 1280), ("dark", 1280)]
IDS = [f"{s}-{w}" for s, w in SIZES]
# A phone's iframe, and a laptop's.
HEIGHTS = {390: 640, 1280: 800}
HOSTILE = (
    "Use <b>bold</b> and <i>care</i>.<script>window.__pwned = 'script'</script>"
    '<img src="x" onerror="window.__pwned = \'img\'">'
    "<p onclick=\"window.__pwned = 'click'\">Read <a href=\"javascript:window.__pwned='href'\">"
    'this</a> and <a href="https://example.com/help" onmouseover="window.__pwned=\'over\'">'
    "that</a>.</p><style>body { display: none }</style><svg onload=\"window.__pwned='svg'\">"
    "</svg><ul><li>one</li></ul>"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A sandbox that answers slowly enough for the connecting screen to be seen."""
    s = start_live_server(
        tmp_path_factory.mktemp("widget-polish"),
        OPENAGG_WIDGET_POLL_INTERVAL_MS="100",
        OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS="700",
    )
    yield s
    s.stop()


@pytest.fixture
def sized_widget(
    page: Any, api: httpx.Client, host_origin: str, request: pytest.FixtureRequest
) -> Callable[..., Widget]:
    """Widgets one after another in one page, sized as a phone's or a laptop's, whose
    iframe fills the viewport; their screenshots numbered in one folder."""
    shots = artifacts_dir(request)
    last: list[Widget] = []

    def opener(user: str, width: int, **options: Any) -> Widget:
        page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
        page.goto(f"{host_origin}/app?{urlencode({'widget': widget_url(api, user, **options)})}")
        page.evaluate("document.getElementById('widget').style.height = '100vh'")
        w = Widget(page, user, shots, count=last[-1].count if last else 0)
        last.append(w)
        return w

    return opener


def reaches(w: Widget, label: str, *, scrolling: bool = True) -> None:
    """The button is shown whole inside the iframe (after scrolling to it, if allowed)."""
    target = w.frame.get_by_role("button", name=label)
    if scrolling:
        target.scroll_into_view_if_needed()
    box = target.bounding_box()
    frame_box = w.page.locator("#widget").bounding_box()
    assert box is not None and frame_box is not None
    assert box["y"] >= frame_box["y"] - 1, label
    assert box["y"] + box["height"] <= frame_box["y"] + frame_box["height"] + 1, label


def mx_words_for_failed(route: Any) -> None:
    response = route.fetch()
    body = response.json()
    member = body.get("member") if isinstance(body, dict) else None
    if member and member.get("connection_status") == "FAILED":
        member["connection_status_message"] = MESSAGES[Status.FAILED]
    route.fulfill(response=response, json=body)


@pytest.mark.parametrize(("scheme", "width"), SIZES, ids=IDS)
def test_every_screen(
    api: httpx.Client, sized_widget: Callable[..., Widget], scheme: str, width: int
) -> None:
    user = new_user(api)
    # Search, sign-in, MFA, connecting, connected.
    w = sized_widget(user, width, color_scheme=scheme)
    w.screen("search")
    w.frame.get_by_role("button", name="MX Bank").first.wait_for()
    logos = w.frame.locator(".oa-results img.oa-logo")
    assert logos.count() >= 3  # MX Bank, MX Bank (OAuth), OpenAgg Sandbox Bank
    # A logo may still be on its way: wait until every one has loaded or failed.
    logos.evaluate_all(
        "(imgs) => Promise.all(imgs.map((i) => i.complete || new Promise((done) => {"
        " i.addEventListener('load', done); i.addEventListener('error', done); })))"
    )
    loaded = logos.evaluate_all("(imgs) => imgs.map((i) => i.naturalWidth > 0)")
    assert all(loaded), loaded
    w.page.screenshot(path=str(w.shots / "00-search-with-logos.png"))
    choose(w, "MX Bank")
    creds = w.screen("enterCreds")
    hint = creds.locator(".oa-instructions")
    assert hint.locator("b").inner_text() == "mxuser"
    assert "<b>" not in creds.inner_text()
    assert creds.locator(".oa-intro img.oa-logo").count() == 1
    w.frame.get_by_label("Username").fill("mxuser")
    w.frame.get_by_label("Password").fill("challenge")
    w.frame.get_by_role("button", name="Connect").click()
    w.screen("mfa")
    w.frame.locator('input[type="text"]').fill("correct")
    w.frame.get_by_role("button", name="Continue").click()
    w.screen("connecting")
    connected = w.screen("connected", timeout=30_000)
    types = connected.locator(".oa-type").all_inner_texts()
    assert types and not any("_" in t or t.split(" ")[0].isupper() for t in types), types
    assert any(t.startswith("Credit card") for t in types), types
    # Six accounts at 390x640: the list scrolls, the last action stays in view.
    reaches(w, "Remove this connection", scrolling=False)

    # Failure: the sandbox bank's unexpected error, worded as MX's text for FAILED (what
    # a connector that gives no words of its own shows).
    w = sized_widget(user, width, color_scheme=scheme)
    w.page.route("**/connect/api/members**", mx_words_for_failed)
    w.screen("search")
    choose(w, "OpenAgg Sandbox Bank")
    sign_in(w, "user_good", "error_failed")
    failed = w.screen("loginError", timeout=30_000)
    text = failed.inner_text().lower()
    assert text.count("try again later") <= 1, text
    reaches(w, "Remove this connection")

    # OAuth: waiting for the bank's window.
    w = sized_widget(user, width, color_scheme=scheme)
    w.screen("search")
    choose(w, "MX Bank (OAuth)")
    w.screen("enterCreds")
    with w.page.expect_popup() as opened:
        w.frame.get_by_role("button", name="Go to MX Bank (OAuth)").click()
    waiting = w.screen("enterCreds")
    assert "Finish signing in" in waiting.inner_text()
    opened.value.close()

    # Upload a statement file.
    w = sized_widget(user, width, color_scheme=scheme)
    w.screen("search")
    w.frame.locator("#oa-upload-choice").click()
    w.screen("upload")


def test_logos_are_served_by_the_platform(api: httpx.Client, server: LiveServer) -> None:
    for code in ("mxbank", "mx_bank_oauth", "sandbox_bank"):
        inst = api.get(f"/institutions/{code}").json()["institution"]
        for key in ("small_logo_url", "medium_logo_url"):
            url = inst[key]
            assert url.startswith(server.url + "/assets/"), url
            got = httpx.get(url, timeout=10)
            assert got.status_code == 200 and got.headers["content-type"] == "image/svg+xml"
            assert got.text.startswith("<svg")


def test_an_institution_without_a_logo_shows_its_initial(
    api: httpx.Client, open_widget: Any, request: Any
) -> None:
    w = open_widget(new_user(api))
    w.screen("search")
    results = w.frame.locator(".oa-results")
    results.get_by_role("button", name="MX Bank").first.wait_for()
    statement = results.locator(".oa-institution", has_text="Statement file")
    assert statement.locator(".oa-logo-initial").inner_text() == "S"


def set_instructions(server: LiveServer, code: str, text: str) -> None:
    """Store an institution's instructional_text (no command sets it; a directory
    import would)."""
    script = (
        "import sys\n"
        "from openagg.cli import _settings, _with_runtime\n"
        "from openagg.services.lookup import institution_by_code\n"
        "async def act(rt):\n"
        "    async with rt.db.write() as s:\n"
        "        inst = await institution_by_code(s, sys.argv[1])\n"
        "        inst.profile = {**inst.profile, 'instructional_text': sys.argv[2]}\n"
        "_with_runtime(_settings(), act)\n"
    )
    subprocess.run(
        [str(VENV_BIN / "python"), "-c", script, code, text],
        env=server.env,
        check=True,
        timeout=60,
    )


def test_hostile_instructions_run_nothing(
    api: httpx.Client, open_widget: Any, server: LiveServer
) -> None:
    run_cli(
        server,
        "institutions",
        "add",
        "--connector",
        "sandbox",
        "--code",
        "hostile_bank",
        "--name",
        "Hostile Bank",
    )
    set_instructions(server, "hostile_bank", HOSTILE)
    w = open_widget(new_user(api))
    w.screen("search")
    choose(w, "Hostile Bank")
    creds = w.screen("enterCreds")
    hint = creds.locator(".oa-instructions")
    assert hint.locator("b").inner_text() == "bold"
    assert hint.locator("i").inner_text() == "care"
    assert hint.locator("li").inner_text() == "one"
    # The javascript: link keeps its words and loses its link; the https one opens apart.
    assert hint.locator("a").count() == 1
    link = hint.locator("a")
    assert link.inner_text() == "that"
    assert link.get_attribute("href") == "https://example.com/help"
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in (link.get_attribute("rel") or "")
    assert link.get_attribute("onmouseover") is None
    link.hover()
    hint.locator("p").click()
    w.page.wait_for_timeout(300)
    frame = w.content()
    assert frame.evaluate("() => window.__pwned === undefined")
    html = hint.evaluate("(el) => el.innerHTML")
    for bad in ("script", "onerror", "onclick", "javascript:", "<img", "<svg", "<style"):
        assert bad not in html, html
    assert creds.is_visible()  # the <style> did not hide the page
