"""OAuth in the Connect widget, in headless Chromium: the widget creates the OAuth member,
tells the host app (mx/connect/oauthRequested), opens the institution's page in a new
window (referral source BROWSER) or leaves that to the app (APP), and moves on by
itself when the end user has authorized access there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from openagg.connectors.sandbox import SANDBOX_OAUTH_AUTHORIZE_PATH
from tests.browser.conftest import Widget, new_user
from tests.conftest import LiveServer, start_live_server

PENDING, CREATED, CONNECTED = 21, 0, 6
LOAD = {"mx": True, "type": "mx/load", "metadata": {}}
BANK = "MX Bank (OAuth)"
# From docs/sandbox.md.
OAUTH_INSTITUTION = {
    "code": "mx_bank_oauth",
    "guid": "INS-68e96dd6-eabd-42d3-9f05-416897f0746c",
    "name": BANK,
    "url": "https://www.mx.com",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server whose sandbox bank answers slowly enough that the widget's polls
    see the connection start (CREATED) before it finishes, so the events are exact."""
    s = start_live_server(
        tmp_path_factory.mktemp("widget-oauth"),
        OPENAGG_WIDGET_POLL_INTERVAL_MS="100",
        OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS="700",
    )
    yield s
    s.stop()


def status(w: Widget, guid: str, value: int) -> dict[str, Any]:
    return w.event("memberStatusUpdate", member_guid=guid, connection_status=value)


def connected_after_oauth(w: Widget, guid: str) -> list[dict[str, Any]]:
    """What the widget posts once the OAuth step completes, through to connected."""
    return [
        status(w, guid, CREATED),
        w.step("enterCreds", "connecting"),
        status(w, guid, CONNECTED),
        w.event("memberConnected", member_guid=guid),
        w.step("connecting", "connected"),
    ]


def pending_member(w: Widget) -> str:
    update = next(e for e in w.events(1) if e["type"] == "mx/connect/memberStatusUpdate")
    assert update["metadata"]["connection_status"] == PENDING
    guid = update["metadata"]["member_guid"]
    assert isinstance(guid, str) and guid.startswith("MBR-")
    return guid


def requested_urls(w: Widget) -> list[str]:
    return [e["metadata"]["url"] for e in w.received() if e["type"] == "mx/connect/oauthRequested"]


def choose_oauth_bank(w: Widget) -> Any:
    w.screen("search")
    w.frame.locator("#oa-search").fill("oauth")
    w.frame.get_by_text("1 institution", exact=True).wait_for()
    w.frame.get_by_role("button", name=BANK).click()
    return w.screen("enterCreds")


def authorize(popup: Any, shot: str) -> None:
    """Approve access on the sandbox bank's consent page."""
    popup.wait_for_load_state()
    assert popup.get_by_role("heading").inner_text() == BANK
    popup.screenshot(path=shot)
    # The widget closes this window as soon as it sees the step done: don't wait on it.
    popup.get_by_role("button", name="Authorize access").click(no_wait_after=True)


def wait_closed(page: Any, other: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not other.is_closed():
        assert time.monotonic() < deadline, "the OAuth window is still open"
        page.wait_for_timeout(100)


def test_oauth_in_a_new_window(api: httpx.Client, open_widget: Any, server: LiveServer) -> None:
    user = new_user(api)
    w = open_widget(user)
    start = choose_oauth_bank(w)
    assert start.get_by_role("heading").inner_text() == f"Connect to {BANK}"
    assert "on its own website" in start.inner_text()
    assert start.locator("input").count() == 0  # no credentials form
    assert w.frame.get_by_role("button", name="Back to search").is_visible()
    guid = pending_member(w)
    m = api.get(f"/users/{user}/members/{guid}").json()["member"]
    assert m["connection_status"] == "PENDING" and m["is_oauth"] is True

    with w.page.expect_popup() as opened:
        w.frame.get_by_role("button", name=f"Go to {BANK}").click()
    popup = opened.value
    waiting = w.screen("enterCreds")
    assert waiting.get_by_role("heading").inner_text() == f"Finish signing in at {BANK}"
    assert "new window" in waiting.inner_text()
    [url] = requested_urls(w)
    link = urlsplit(url)
    assert f"{link.scheme}://{link.netloc}" == server.url
    assert link.path == urlsplit(m["oauth_window_uri"]).path  # the member's own link
    assert parse_qs(link.query) == {"widget_session": [w.session_guid]}
    popup.wait_for_load_state()
    # The member's link sent the window on to the bank's consent page.
    consent = urlsplit(popup.url)
    assert consent.path == SANDBOX_OAUTH_AUTHORIZE_PATH
    token = link.path.rsplit("/", 1)[1]
    assert parse_qs(consent.query)["state"] == [f"{token}.{w.session_guid}"]
    # The window keeps its opener: the callback page tells the widget at the end.
    assert popup.evaluate("() => window.opener !== null")

    authorize(popup, str(w.shots / "oauth-page.png"))
    w.screen("connecting")
    connected = w.screen("connected", timeout=30_000)
    assert f"You're connected to {BANK}" in connected.inner_text()
    wait_closed(w.page, popup)
    shown = w.frame.locator(".oa-accounts .oa-name").all_inner_texts()

    w.assert_events(
        [
            LOAD,
            w.event("loaded", initial_step="search"),
            w.event("institutionSearch", query="oauth"),
            w.event("selectedInstitution", **OAUTH_INSTITUTION),
            status(w, guid, PENDING),
            w.step("search", "enterCreds"),
            w.event("oauthRequested", url=url, member_guid=guid),
            *connected_after_oauth(w, guid),
        ]
    )
    m = api.get(f"/users/{user}/members/{guid}").json()["member"]
    assert m["connection_status"] == "CONNECTED" and m["oauth_window_uri"] is None
    accounts = api.get(f"/users/{user}/members/{guid}/accounts").json()["accounts"]
    assert shown == [a["name"] for a in accounts] and shown


def test_app_referral_leaves_the_page_to_the_app(
    api: httpx.Client, open_widget: Any, host_origin: str
) -> None:
    """oauth_referral_source APP: the widget only posts oauthRequested; the app opens
    the page, which sends the end user back to client_redirect_url when done."""
    user = new_user(api)
    back = f"{host_origin}/oauth-done"
    w = open_widget(
        user,
        current_institution_code="mx_bank_oauth",
        oauth_referral_source="APP",
        client_redirect_url=back,
    )
    popups: list[Any] = []
    w.page.on("popup", lambda p: popups.append(p))
    w.screen("enterCreds")
    guid = pending_member(w)
    w.frame.get_by_role("button", name=f"Go to {BANK}").click()
    waiting = w.screen("enterCreds")
    assert "The app is opening" in waiting.inner_text()
    [url] = requested_urls(w)
    w.page.wait_for_timeout(1000)  # a window would have opened by now
    assert popups == [] and len(w.page.context.pages) == 1

    # The app's part: open the link, where the end user authorizes access.
    app = w.page.context.new_page()
    app.goto(url)
    app.get_by_role("button", name="Authorize access").click()
    app.wait_for_url(f"{back}?**")
    query = parse_qs(urlsplit(app.url).query)
    assert query == {"status": ["success"], "member_guid": [guid]}
    app.close()

    w.screen("connecting")
    w.screen("connected", timeout=30_000)
    w.assert_events(
        [
            LOAD,
            w.event("loaded", initial_step="enterCreds"),
            status(w, guid, PENDING),
            w.event("oauthRequested", url=url, member_guid=guid),
            *connected_after_oauth(w, guid),
        ]
    )


def test_coming_back_without_finishing(api: httpx.Client, open_widget: Any) -> None:
    """The end user closes the bank's window, opens it again from the widget, then goes
    back to the search and picks the bank again: still one member, the same link."""
    user = new_user(api)
    w = open_widget(user)
    choose_oauth_bank(w)
    guid = pending_member(w)
    go = w.frame.get_by_role("button", name=f"Go to {BANK}")
    with w.page.expect_popup() as opened:
        go.click()
    w.screen("enterCreds")
    opened.value.close()  # gave up at the bank
    with w.page.expect_popup() as reopened:
        w.frame.get_by_role("button", name=f"Go to {BANK} again").click()
    reopened.value.wait_for_load_state()
    w.frame.get_by_role("button", name="Cancel").click()
    w.screen("enterCreds")
    wait_closed(w.page, reopened.value)  # Cancel closes the window the widget opened
    w.frame.get_by_role("button", name="Back to search").click()
    choose_oauth_bank(w)
    with w.page.expect_popup() as last:
        w.frame.get_by_role("button", name=f"Go to {BANK}").click()
    authorize(last.value, str(w.shots / "oauth-page.png"))
    w.screen("connected", timeout=30_000)

    urls = requested_urls(w)
    assert len(urls) == 3 and len(set(urls)) == 1
    members = api.get(f"/users/{user}/members").json()["members"]
    assert [(m["guid"], m["connection_status"]) for m in members] == [(guid, "CONNECTED")]
    requested = w.event("oauthRequested", url=urls[0], member_guid=guid)
    assert [e for e in w.received() if e["type"] != "mx/connect/institutionSearch"] == [
        LOAD,
        w.event("loaded", initial_step="search"),
        w.event("selectedInstitution", **OAUTH_INSTITUTION),
        status(w, guid, PENDING),
        w.step("search", "enterCreds"),
        requested,
        requested,
        w.event("backToSearch"),
        w.step("enterCreds", "search"),
        w.event("selectedInstitution", **OAUTH_INSTITUTION),
        w.step("search", "enterCreds"),
        requested,
        *connected_after_oauth(w, guid),
    ]


def test_opening_on_a_pending_member(api: httpx.Client, open_widget: Any) -> None:
    """current_member_guid on a member still waiting on OAuth opens its OAuth step."""
    user = new_user(api)
    body = {"member": {"institution_code": "mx_bank_oauth", "is_oauth": True}}
    guid = api.post(f"/users/{user}/members", json=body).json()["member"]["guid"]
    w = open_widget(user, current_member_guid=guid)
    start = w.screen("enterCreds")
    assert start.get_by_role("heading").inner_text() == f"Connect to {BANK}"
    with w.page.expect_popup() as opened:
        w.frame.get_by_role("button", name=f"Go to {BANK}").click()
    authorize(opened.value, str(w.shots / "oauth-page.png"))
    w.screen("connected", timeout=30_000)
    [url] = requested_urls(w)
    assert w.received()[:4] == [
        LOAD,
        w.event("loaded", initial_step="enterCreds"),
        status(w, guid, PENDING),
        w.event("oauthRequested", url=url, member_guid=guid),
    ]


DENIED = 2


def test_declined_at_the_bank_then_reconnected_on_the_same_member(
    api: httpx.Client, open_widget: Any
) -> None:
    """The end user declines at the bank: the member is DENIED, the widget posts
    oauthError and shows the error with a Reconnect action, which sends them through a
    fresh link; allowing access then connects the same member."""
    user = new_user(api)
    w = open_widget(user)
    choose_oauth_bank(w)
    guid = pending_member(w)
    with w.page.expect_popup() as opened:
        w.frame.get_by_role("button", name=f"Go to {BANK}").click()
    popup = opened.value
    popup.wait_for_load_state()
    popup.get_by_role("button", name="Deny").click(no_wait_after=True)
    error = w.screen("loginError", timeout=30_000)
    assert "Access was not granted" in error.inner_text()
    wait_closed(w.page, popup)
    [url] = requested_urls(w)
    assert w.received()[4:] == [
        status(w, guid, PENDING),
        w.step("search", "enterCreds"),
        w.event("oauthRequested", url=url, member_guid=guid),
        status(w, guid, DENIED),
        w.event("oauthError", member_guid=guid),
        w.step("enterCreds", "loginError"),
    ]

    w.frame.get_by_role("button", name=f"Reconnect {BANK}").click()
    w.screen("enterCreds")
    with w.page.expect_popup() as again:
        w.frame.get_by_role("button", name=f"Go to {BANK}").click()
    authorize(again.value, str(w.shots / "oauth-page.png"))
    w.screen("connected", timeout=30_000)
    urls = requested_urls(w)
    assert len(urls) == 2 and urls[0] != urls[1]  # a fresh link
    tail = w.received()[-6:]
    assert tail[0] == w.event("oauthRequested", url=urls[1], member_guid=guid)
    assert w.event("memberConnected", member_guid=guid) in tail
    assert "mx/connect/oauthError" not in [e["type"] for e in tail]
    members = api.get(f"/users/{user}/members").json()["members"]
    assert [(m["guid"], m["connection_status"]) for m in members] == [(guid, "CONNECTED")]
