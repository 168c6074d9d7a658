"""The widget's "Use this connection in another app" step in Chromium: a sandbox bank
connected in the widget, a SimpleFIN setup token read off the page and claimed by a
SimpleFIN app (tests/integration/simplefin_client.py), which then reads the user's
accounts; no such step without ``enable_simplefin_token``; the step's screens in light
and dark at phone and desktop sizes."""

from __future__ import annotations

import asyncio
import base64
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.browser.conftest import (
    PAGE_SIZES,
    DemoServer,
    DemoWidget,
    Widget,
    artifacts_dir,
    assert_fits_in_its_theme,
    choose,
    new_user,
    open_local_page,
    sign_in,
    widget_url,
)
from tests.browser.test_widget_polish import reaches
from tests.conftest import LiveServer
from tests.integration.simplefin_client import SimplefinApp
from tests.support import MXBANK_CREDENTIALS

STEP_BUTTON = "Use this connection in another app"


def claim(token: str) -> dict[str, Any]:
    """What a budget app does with the token: claim it, then read the accounts."""

    async def run() -> dict[str, Any]:
        app = await SimplefinApp.claim(token)
        return await app.accounts()

    # Playwright's sync API keeps an event loop in this thread: the app runs in another.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


def account_guids(api: httpx.Client, user: str) -> set[str]:
    r = api.get(f"/users/{user}/accounts", params={"records_per_page": 100})
    assert r.status_code == 200, r.text
    return {a["guid"] for a in r.json()["accounts"]}


def connected_member(api: httpx.Client, user: str) -> str:
    """A connected MX Bank member, made by the app's backend."""
    r = api.post(
        f"/users/{user}/members",
        json={"member": {"institution_code": "mxbank", "credentials": MXBANK_CREDENTIALS}},
    )
    assert r.status_code == 202, r.text
    guid = str(r.json()["member"]["guid"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = api.get(f"/users/{user}/members/{guid}").json()["member"]
        if m["connection_status"] == "CONNECTED" and not m["is_being_aggregated"]:
            return guid
        time.sleep(0.1)
    raise AssertionError(f"{guid} did not connect")


def test_connect_then_get_a_token_that_a_budget_app_claims(
    api: httpx.Client, open_widget: Any
) -> None:
    user = new_user(api)
    # A phone's iframe (as in test_widget_polish.py).
    w: Widget = open_widget(user, enable_simplefin_token=True)
    w.page.set_viewport_size({"width": 390, "height": 640})
    w.page.evaluate("document.getElementById('widget').style.height = '100vh'")
    w.screen("search")
    choose(w, "MX Bank")
    sign_in(w, "mxuser", "any password")
    w.screen("connected", timeout=30_000)
    # Six accounts: the list scrolls, and every action, the new one too, is in view.
    for action in ("Done", STEP_BUTTON, "Remove this connection"):
        reaches(w, action, scrolling=False)

    w.frame.get_by_role("button", name=STEP_BUTTON).click()
    intro = w.screen("anotherApp")
    assert "SimpleFIN setup token" in intro.inner_text()
    w.frame.get_by_role("button", name="Get a setup token").click()
    shown = w.screen("setupToken")
    text = shown.inner_text()
    assert "Works once" in text and "Use it by" in text and "Where to paste it" in text
    for app_name in ("Actual Budget", "Firefly III", "Sure", "Home Assistant"):
        assert app_name in text
    token = w.frame.get_by_label("Setup token").input_value()
    assert "/simplefin/claim/" in base64.b64decode(token).decode()
    # In a cross-origin iframe without clipboard access, Copy selects the token.
    w.frame.get_by_role("button", name="Copy").click()
    assert w.frame.locator("#oa-copied").inner_text()
    deadline = shown.locator('[data-fact="expires"] time')
    expires = deadline.get_attribute("datetime")
    zone = deadline.evaluate(  # the browser's own zone name for that moment
        "(el) => new Intl.DateTimeFormat(undefined, {timeZoneName: 'short'})"
        ".formatToParts(new Date(el.dateTime)).find((p) => p.type === 'timeZoneName').value"
    )
    assert deadline.inner_text().endswith(zone)

    # The budget app claims it and reads the accounts the widget connected.
    body = claim(token)
    assert {a["id"] for a in body["accounts"]} == account_guids(api, user)
    assert len(body["accounts"]) == 6
    [listed] = api.get(f"/users/{user}/simplefin_tokens").json()["simplefin_tokens"]
    assert listed["state"] == "CLAIMED" and listed["expires_at"] == expires

    # Back to the connected screen.
    w.frame.get_by_role("button", name="Back to my accounts").click()
    w.screen("connected")
    # The app heard of the token (its guid), never the token itself.
    got = w.events()
    assert got[-4:] == [
        w.step("connected", "anotherApp"),
        {
            "mx": True,
            "type": "openagg/connect/simplefinTokenCreated",
            "metadata": {
                "user_guid": user,
                "session_guid": w.session_guid,
                "simplefin_token_guid": listed["guid"],
                "expires_at": expires,
            },
        },
        w.step("anotherApp", "setupToken"),
        w.step("setupToken", "connected"),
    ]
    assert got[-5] == w.step("connecting", "connected")
    assert token not in str(got)


def test_without_the_option_there_is_no_step(api: httpx.Client, open_widget: Any) -> None:
    user = new_user(api)
    guid = connected_member(api, user)
    w: Widget = open_widget(user, current_member_guid=guid)
    w.screen("connected")
    w.frame.get_by_role("button", name="Done").wait_for()
    assert w.frame.get_by_role("button", name=STEP_BUTTON).count() == 0


@pytest.mark.parametrize("size", list(PAGE_SIZES))
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_step_fits_and_follows_the_theme(
    api: httpx.Client,
    browser: Any,
    server: LiveServer,
    request: pytest.FixtureRequest,
    size: str,
    scheme: str,
) -> None:
    user = new_user(api)
    guid = connected_member(api, user)
    url = widget_url(
        api, user, current_member_guid=guid, enable_simplefin_token=True, color_scheme=scheme
    )
    shots = artifacts_dir(request)
    local = open_local_page(browser, server, size, scheme)
    local.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        page = local.page
        page.goto(url)

        def screen(name: str, shot: str | None = None) -> None:
            page.wait_for_selector(f'main[data-screen="{name}"] h1')
            assert_fits_in_its_theme(page, scheme)
            page.screenshot(path=str(shots / f"{shot or name}.png"), full_page=True)

        screen("connected")
        page.get_by_role("button", name=STEP_BUTTON).click()
        screen("anotherApp")
        page.get_by_role("button", name="Get a setup token").click()
        screen("setupToken")
        token = page.get_by_label("Setup token").input_value()
        # The token is whole in its box: no scrolling inside it.
        assert page.locator("#oa-token").evaluate("(t) => t.scrollHeight <= t.clientHeight")
        # As a top-level page with clipboard access, Copy puts the token on the clipboard.
        page.get_by_role("button", name="Copy").click()
        page.get_by_text("Copied.").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == token
        screen("setupToken", "setupToken-copied")
        assert local.elsewhere == []
    finally:
        local.context.close()


def test_the_demo_page_offers_the_step_when_ticked(
    demo_server: DemoServer, page: Any, request: pytest.FixtureRequest
) -> None:
    """A self-hoster's way (docs/simplefin.md): /demo, tick the box, connect, get a token."""
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{demo_server.url}/demo")
    w = DemoWidget(page, "", artifacts_dir(request))
    w.screen("search", timeout=5_000)
    page.get_by_label("Offer a SimpleFIN setup token").check()
    first = page.evaluate("document.getElementById('demo-widget').src")
    page.get_by_role("button", name="Open a new widget").click()
    page.wait_for_function(
        "(first) => document.getElementById('demo-widget').src !== first", arg=first
    )
    w.content().wait_for_url(page.evaluate("document.getElementById('demo-widget').src"))
    w.last_view = 0  # a new page: its screens count from 1 again
    w.screen("search", timeout=5_000)
    choose(w, "MX Bank")
    sign_in(w, "mxuser", "any password")
    w.screen("connected", timeout=30_000)
    w.frame.get_by_role("button", name=STEP_BUTTON).click()
    w.screen("anotherApp")
    w.frame.get_by_role("button", name="Get a setup token").click()
    w.screen("setupToken")
    body = claim(w.frame.get_by_label("Setup token").input_value())
    assert len(body["accounts"]) == 6


def test_too_many_waiting_tokens_are_explained(api: httpx.Client, open_widget: Any) -> None:
    user = new_user(api)
    guid = connected_member(api, user)
    for _ in range(5):  # made by the app's backend: they wait for their claim too
        assert api.post(f"/users/{user}/simplefin_tokens").status_code == 201
    w: Widget = open_widget(user, current_member_guid=guid, enable_simplefin_token=True)
    w.screen("connected")
    w.frame.get_by_role("button", name=STEP_BUTTON).click()
    w.screen("anotherApp")
    w.frame.get_by_role("button", name="Get a setup token").click()
    refused = w.screen("anotherApp")
    assert "haven't been used yet" in refused.get_by_role("alert").inner_text()
    assert w.frame.get_by_role("button", name="Get a setup token").is_enabled()
