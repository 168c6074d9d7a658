"""The OAuth callback page's message to the widget, in headless Chromium: the page in
the window the widget opened posts MX's ``oauthComplete/success`` or
``oauthComplete/error`` to it (to the platform's origin only) and closes itself, and
the widget reads the member at once. The widget here polls once a minute, so a
widget that moves on within seconds was told, not polling. A message from another
origin, even from that window, is ignored; the host app's ``mx/client/oauthComplete``
(MX's APP referral source) is heeded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Widget, new_user
from tests.browser.test_widget_oauth import BANK, DENIED, PENDING, choose_oauth_bank, status
from tests.conftest import LiveServer, start_live_server

POLL_MS = 60_000
# Far less than a poll: only the callback page's message can explain moving on.
TOLD_WITHIN_MS = 8_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    s = start_live_server(
        tmp_path_factory.mktemp("widget-oauth-complete"),
        OPENAGG_WIDGET_POLL_INTERVAL_MS=str(POLL_MS),
        OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS="0",
    )
    yield s
    s.stop()


def open_bank(w: Widget) -> tuple[str, Any]:
    """The OAuth step from the search, its window opened: the member and the window."""
    choose_oauth_bank(w)
    guid = next(
        e["metadata"]["member_guid"]
        for e in w.events(5)
        if e["type"] == "mx/connect/memberStatusUpdate"
    )
    with w.page.expect_popup() as opened:
        w.frame.get_by_role("button", name=f"Go to {BANK}").click()
    popup = opened.value
    popup.wait_for_load_state()
    w.screen("enterCreds")  # the waiting screen
    return guid, popup


def wait_closed(w: Widget, popup: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not popup.is_closed():
        assert time.monotonic() < deadline, "the OAuth window is still open"
        w.page.wait_for_timeout(100)


def types(w: Widget) -> list[str]:
    return [e["type"].removeprefix("mx/connect/") for e in w.received()]


def test_the_callback_page_tells_the_widget_which_moves_on_at_once(
    api: httpx.Client, open_widget: Any
) -> None:
    user = new_user(api)
    w = open_widget(user)
    guid, popup = open_bank(w)
    assert popup.evaluate("() => window.opener !== null")  # the callback page needs it
    popup.get_by_role("button", name="Authorize access").click(no_wait_after=True)
    # The widget leaves the waiting screen long before its next poll.
    started = time.monotonic()
    shown = w.content().wait_for_function(
        """() => {
            const main = document.querySelector("main");
            return ["connecting", "connected"].includes(main.dataset.screen)
              && main.dataset.screen;
        }""",
        timeout=TOLD_WITHIN_MS,
    )
    assert shown.json_value() in ("connecting", "connected")
    assert time.monotonic() - started < POLL_MS / 1000 / 2
    wait_closed(w, popup)  # the callback page closed its own window
    got = types(w)
    assert got[got.index("oauthRequested") + 1] == "memberStatusUpdate"
    assert "oauthError" not in got
    m = api.get(f"/users/{user}/members/{guid}").json()["member"]
    assert m["connection_status"] != "PENDING" and m["oauth_window_uri"] is None


def test_declined_posts_oauth_error_at_once(api: httpx.Client, open_widget: Any) -> None:
    user = new_user(api)
    w = open_widget(user)
    guid, popup = open_bank(w)
    popup.get_by_role("button", name="Deny").click(no_wait_after=True)
    error = w.screen("loginError", timeout=TOLD_WITHIN_MS)
    assert "Access was not granted" in error.inner_text()
    # No credentials were given, so none were refused: the bank gave no access.
    assert error.get_by_role("heading").inner_text() == "MX Bank (OAuth) didn't give access"
    wait_closed(w, popup)
    assert w.received()[-3:] == [
        status(w, guid, DENIED),
        w.event("oauthError", member_guid=guid),
        w.step("enterCreds", "loginError"),
    ]
    assert types(w).count("oauthError") == 1


def test_a_message_from_another_origin_is_ignored(
    api: httpx.Client, open_widget: Any, host_origin: str
) -> None:
    """The window the widget opened, now on another site, posts an oauthComplete/error
    message (as a hostile institution page could): the widget does not heed it."""
    user = new_user(api)
    w = open_widget(user)
    guid, popup = open_bank(w)
    popup.goto(f"{host_origin}/elsewhere")
    assert popup.evaluate("() => window.opener !== null")
    before = len(w.received())
    popup.evaluate(
        """(guid) => window.opener.postMessage(
            {mx: true, type: "oauthComplete/error",
             metadata: {member_guid: guid, error_reason: "DENIED"}}, "*")""",
        guid,
    )
    w.page.wait_for_timeout(1500)
    assert w.received()[before:] == []
    waiting = w.frame.locator("main")
    assert waiting.get_attribute("data-screen") == "enterCreds"
    assert f"Finish signing in at {BANK}" in waiting.inner_text()
    m = api.get(f"/users/{user}/members/{guid}").json()["member"]
    assert m["connection_status"] == "PENDING"
    popup.close()


def test_the_host_apps_oauth_complete_makes_the_widget_look_at_once(
    api: httpx.Client, open_widget: Any, host_origin: str
) -> None:
    """MX's APP referral source: the app opens the link itself, gets the redirect,
    and posts mx/client/oauthComplete with it to the widget."""
    user = new_user(api)
    back = f"{host_origin}/oauth-done"
    w = open_widget(
        user,
        current_institution_code="mx_bank_oauth",
        oauth_referral_source="APP",
        client_redirect_url=back,
    )
    w.screen("enterCreds")
    guid = next(
        e["metadata"]["member_guid"]
        for e in w.events(3)
        if e["type"] == "mx/connect/memberStatusUpdate"
    )
    w.frame.get_by_role("button", name=f"Go to {BANK}").click()
    w.screen("enterCreds")
    [url] = [e["metadata"]["url"] for e in w.received() if e["type"] == "mx/connect/oauthRequested"]
    app = w.page.context.new_page()
    app.goto(url)
    app.get_by_role("button", name="Authorize access").click()
    app.wait_for_url(f"{back}?**")
    redirect = app.url
    app.close()
    w.page.wait_for_timeout(1000)
    assert w.frame.locator("main").get_attribute("data-screen") == "enterCreds"  # not polled
    w.page.evaluate(
        """(url) => document.getElementById("widget").contentWindow.postMessage(
            {mx: true, type: "mx/client/oauthComplete", metadata: {url}}, "*")""",
        redirect,
    )
    w.content().wait_for_function(
        """() => ["connecting", "connected"].includes(
            document.querySelector("main").dataset.screen)""",
        timeout=TOLD_WITHIN_MS,
    )
    assert w.received()[:3] == [
        {"mx": True, "type": "mx/load", "metadata": {}},
        w.event("loaded", initial_step="enterCreds"),
        status(w, guid, PENDING),
    ]


def test_a_webview_apps_oauth_complete_makes_the_widget_look_at_once(
    api: httpx.Client, open_webview: Any, host_origin: str
) -> None:
    """In a mobile WebView (APP referral source by default), MX's React Native SDK
    posts oauthComplete/success as JSON text through the WebView's bridge once the
    app gets the redirect; react-native-webview hands it to the page on document."""
    user = new_user(api)
    back = f"{host_origin}/oauth-done"
    w = open_webview(user, current_institution_code="mx_bank_oauth", client_redirect_url=back)
    w.screen("enterCreds")
    w.page.get_by_role("button", name=f"Go to {BANK}").click()
    w.screen("enterCreds")
    deadline = time.monotonic() + 10
    while "mx/connect/oauthRequested" not in [e["type"] for e in w.received()]:
        assert time.monotonic() < deadline, w.received()
        w.page.wait_for_timeout(50)
    requested = next(e for e in w.received() if e["type"] == "mx/connect/oauthRequested")
    guid = requested["metadata"]["member_guid"]
    app = w.page.context.new_page()
    app.goto(requested["metadata"]["url"])
    app.get_by_role("button", name="Authorize access").click()
    app.wait_for_url(f"{back}?**")
    app.close()
    w.page.wait_for_timeout(1000)
    assert w.page.locator("main").get_attribute("data-screen") == "enterCreds"  # not polled
    w.page.evaluate(
        """(guid) => document.dispatchEvent(new MessageEvent("message", {data: JSON.stringify(
            {mx: true, type: "oauthComplete/success", metadata: {member_guid: guid}})}))""",
        guid,
    )
    w.page.main_frame.wait_for_function(
        """() => ["connecting", "connected"].includes(
            document.querySelector("main").dataset.screen)""",
        timeout=TOLD_WITHIN_MS,
    )


def test_a_code_not_confirmed_posts_oauth_error_and_the_step_stays_open(
    api: httpx.Client, open_widget: Any
) -> None:
    """The bank's code does not verify at the callback (here: the consent form's PKCE
    challenge altered): the page posts oauthComplete/error (PROVIDER_ERROR), the widget
    sends oauthError at once and keeps the step open with the member's message; the
    same link then connects."""
    user = new_user(api)
    w = open_widget(user)
    guid, popup = open_bank(w)
    popup.evaluate(
        """() => { document.querySelector('input[name="code_challenge"]').value = "x"; }"""
    )
    popup.get_by_role("button", name="Authorize access").click(no_wait_after=True)
    wait_closed(w, popup)
    deadline = time.monotonic() + TOLD_WITHIN_MS / 1000
    while "oauthError" not in types(w):
        assert time.monotonic() < deadline, types(w)
        w.page.wait_for_timeout(50)
    assert w.received()[-1] == w.event("oauthError", member_guid=guid)
    waiting = w.frame.locator("main")
    assert waiting.get_attribute("data-screen") == "enterCreds"
    status_text = w.frame.locator(".oa-status")
    status_text.filter(has_text="did not confirm access").wait_for()
    m = api.get(f"/users/{user}/members/{guid}").json()["member"]
    assert m["connection_status"] == "PENDING"

    with w.page.expect_popup() as again:
        w.frame.get_by_role("button", name=f"Go to {BANK} again").click()
    again.value.wait_for_load_state()
    again.value.get_by_role("button", name="Authorize access").click(no_wait_after=True)
    w.content().wait_for_function(
        """() => ["connecting", "connected"].includes(
            document.querySelector("main").dataset.screen)""",
        timeout=TOLD_WITHIN_MS,
    )
    assert types(w).count("oauthError") == 1
