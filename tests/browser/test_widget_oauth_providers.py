"""OAuth at real-protocol banks through the Connect widget, in headless Chromium: the
fake FDX bank (its OpenID provider's consent page) and the fake Enable Banking API
(its ASPSP's consent page), each added as an institution with the command line on a
live server. The end user finds the bank, goes to its page in a new window, allows
access, and comes back to a connected member with accounts and transactions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.browser.conftest import Widget, new_user, run_cli
from tests.browser.test_widget_oauth import requested_urls, wait_closed
from tests.conftest import LiveServer, start_live_server
from tests.integration.fake_enablebanking import (
    FakeEnableBanking,
    new_key,
    serve_fake_enablebanking,
)
from tests.integration.fake_fdx_bank import FakeFdxBank, serve_fake_fdx_bank

FDX_CODE, FDX_NAME = "fake_fdx", "Fake FDX Bank"
EB_CODE, EB_NAME = "fake_pankki", "Fake Pankki"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_key()


@pytest.fixture(scope="module")
def fdx_bank() -> Iterator[FakeFdxBank]:
    # The bank keeps its own (real) clock, as the live server does.
    with serve_fake_fdx_bank() as b:
        yield b


@pytest.fixture(scope="module")
def eb_bank(key: rsa.RSAPrivateKey) -> Iterator[FakeEnableBanking]:
    with serve_fake_enablebanking(key.public_key()) as b:
        yield b


def add_institution(server: LiveServer, connector: str, code: str, name: str, **opts: str) -> None:
    options = [f"--option={k}={v}" for k, v in opts.items()]
    add = ["institutions", "add", "--connector", connector, "--oauth", "--code", code]
    run_cli(server, *add, "--name", name, *options)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    fdx_bank: FakeFdxBank,
    eb_bank: FakeEnableBanking,
    key: rsa.RSAPrivateKey,
) -> Iterator[LiveServer]:
    s = start_live_server(
        tmp_path_factory.mktemp("widget-oauth-providers"),
        OPENAGG_WIDGET_POLL_INTERVAL_MS="100",
        OPENAGG_CONNECTOR_ALLOW_PRIVATE_ADDRESSES="true",
    )
    try:
        add_institution(s, "fdx", FDX_CODE, FDX_NAME, **fdx_bank.options())
        add_institution(s, "enablebanking", EB_CODE, EB_NAME, **eb_bank.options(key))
        yield s
    finally:
        s.stop()


def connect_through_the_widget(
    api: httpx.Client, open_widget: Any, query: str, name: str, consent_title: str
) -> tuple[str, str, Widget]:
    """Search, start OAuth, allow at the bank's page, back to connected: the user,
    the member and the widget."""
    user = new_user(api)
    w = open_widget(user)
    w.screen("search")
    w.frame.locator("#oa-search").fill(query)
    w.frame.get_by_text("1 institution", exact=True).wait_for()
    w.frame.get_by_role("button", name=name).click()
    start = w.screen("enterCreds")
    assert start.get_by_role("heading").inner_text() == f"Connect to {name}"
    assert start.locator("input").count() == 0  # no credentials form

    with w.page.expect_popup() as opened:
        w.frame.get_by_role("button", name=f"Go to {name}").click()
    popup = opened.value
    w.screen("enterCreds")  # waiting for the end user at the bank
    popup.wait_for_load_state()
    # The member's link sent the window on to the bank's own consent page.
    assert popup.title() == consent_title
    assert not popup.url.startswith(str(api.base_url))
    popup.screenshot(path=str(w.shots / "consent-page.png"))
    # The widget closes this window as soon as it sees the step done: don't wait on it.
    popup.get_by_role("button", name="Allow").click(no_wait_after=True)
    connected = w.screen("connected", timeout=30_000)
    assert f"You're connected to {name}" in connected.inner_text()
    wait_closed(w.page, popup)

    events = w.received()
    types = [e["type"] for e in events]
    assert not [t for t in types if "error" in t.lower()], types
    requested = [e for e in events if e["type"] == "mx/connect/oauthRequested"]
    assert len(requested) == 1, types
    guid = requested[0]["metadata"]["member_guid"]
    assert requested_urls(w) == [requested[0]["metadata"]["url"]]
    connected_event = w.event("memberConnected", member_guid=guid)
    assert connected_event in events
    assert events.index(requested[0]) < events.index(connected_event)
    assert types.count("mx/connect/memberConnected") == 1
    return user, guid, w


def assert_connected_with_data(api: httpx.Client, user: str, guid: str) -> list[dict[str, Any]]:
    m = api.get(f"/users/{user}/members/{guid}").json()["member"]
    assert (m["connection_status"], m["is_oauth"], m["oauth_window_uri"]) == (
        "CONNECTED",
        True,
        None,
    )
    members = api.get(f"/users/{user}/members").json()["members"]
    assert [x["guid"] for x in members] == [guid]
    accounts: list[dict[str, Any]] = api.get(
        f"/users/{user}/members/{guid}/accounts", params={"records_per_page": 100}
    ).json()["accounts"]
    assert accounts
    txns: list[dict[str, Any]] = api.get(
        f"/users/{user}/members/{guid}/transactions", params={"records_per_page": 100}
    ).json()["transactions"]
    assert txns
    return [*accounts, *txns]


def test_fdx_bank_through_the_widget(
    api: httpx.Client, open_widget: Any, fdx_bank: FakeFdxBank
) -> None:
    user, guid, w = connect_through_the_widget(api, open_widget, "FDX", FDX_NAME, FDX_NAME)
    shown = w.frame.locator(".oa-accounts .oa-name").all_inner_texts()
    accounts = api.get(f"/users/{user}/members/{guid}/accounts").json()["accounts"]
    assert shown == [a["name"] for a in accounts]
    assert sorted(shown) == [
        "30-year fixed",
        "Auto Loan",
        "Everyday Checking",
        "My card",
        "Retirement Savings Plan",
    ]
    assert_connected_with_data(api, user, guid)
    txns = api.get(
        f"/users/{user}/members/{guid}/transactions", params={"records_per_page": 100}
    ).json()["transactions"]
    ids = {t["id"] for t in txns}
    assert {"CHK-T01", "CHK-P01", "CC-T01", "LN-T01", "INV-T01"} <= ids and len(ids) == 13
    assert ("authorization_code", "ok") in fdx_bank.token_answers


def test_enablebanking_bank_through_the_widget(
    api: httpx.Client, open_widget: Any, eb_bank: FakeEnableBanking
) -> None:
    user, guid, w = connect_through_the_widget(api, open_widget, "Pankki", EB_NAME, EB_NAME)
    assert_connected_with_data(api, user, guid)
    accounts = api.get(f"/users/{user}/members/{guid}/accounts").json()["accounts"]
    assert sorted((a["type"], a["balance"], a["currency_code"]) for a in accounts) == [
        ("CHECKING", 3158.71, "EUR"),
        ("SAVINGS", 12201.15, "EUR"),
    ]
    shown = w.frame.locator(".oa-accounts .oa-name").all_inner_texts()
    assert shown == [a["name"] for a in accounts]
    txns = api.get(
        f"/users/{user}/members/{guid}/transactions", params={"records_per_page": 100}
    ).json()["transactions"]
    assert len(txns) == 9
    # The only requests the API refused are the browser's own (its favicon).
    browser_only = [r for r in eb_bank.requests if r.path == "/favicon.ico"]
    assert eb_bank.jwt_rejections == ["no Bearer JWT"] * len(browser_only)
    # Everything followed the end user in the browser: their address went with it
    # (Psu-Ip-Address), and none of it spent the day's unattended accesses.
    theirs = [
        r
        for r in eb_bank.requests
        if r.path in ("/auth", "/sessions") or r.path.startswith("/accounts/")
    ]
    assert theirs and {r.psu_ip for r in theirs} == {"127.0.0.1"}
    assert not eb_bank.unattended
