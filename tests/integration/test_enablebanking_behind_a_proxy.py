"""The end user's address behind a proxy, for PSD2's ``Psu-Ip-Address``: ``serve``
behind a trusted proxy takes the address it forwards (X-Forwarded-For) as the end
user's, and the Enable Banking requests of what they start in the Connect widget (the
consent, its first aggregation, a retry) carry it; an untrusted proxy's header is not
believed, and the request's own peer is sent instead."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import LiveServer, start_live_server
from tests.integration import fake_enablebanking
from tests.integration.fake_enablebanking import (
    FakeEnableBanking,
    add_with_cli,
)
from tests.integration.test_widget_urls import boot_of

CODE = "fake_pankki"
# The fake bank's fixtures (its key, the bank on a loopback port), for these tests.
key, bank = fake_enablebanking.key, fake_enablebanking.bank
END_USER = "203.0.113.7"  # documentation range (RFC 5737)


def _api(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        auth=(server.client_id, server.api_key),
        headers={"Accept": "application/vnd.mx.api.v1+json"},
        timeout=30,
    )


@contextmanager
def _widget(server: LiveServer, user: str, forwarded: str) -> Iterator[httpx.Client]:
    """The end user's browser in the widget, behind the proxy: its session."""
    with _api(server) as api:
        r = api.post(
            f"/users/{user}/widget_urls",
            json={"widget_url": {"widget_type": "connect_widget"}},
        )
        assert r.status_code == 200, r.text
        url = r.json()["widget_url"]["url"]
    with httpx.Client(timeout=30, headers={"X-Forwarded-For": forwarded}) as browser:
        boot = boot_of(browser.get(url))
        browser.headers["Authorization"] = f"Bearer {boot['session_token']}"
        yield browser


def _consent(browser: httpx.Client, link: str) -> httpx.Response:
    """The member's link, the bank's Allow button, and back to the callback."""
    start = browser.get(link)
    assert start.status_code == 303, start.text
    page = browser.get(start.headers["location"])
    form = re.search(r'<form method="post" action="([^"]+)">', page.text)
    assert form is not None, page.text
    fields = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page.text))
    decided = browser.post(
        page.url.join(html.unescape(form.group(1))), data={**fields, "decision": "allow"}
    )
    assert decided.status_code == 303, decided.text
    return browser.get(decided.headers["location"])


def _settled(server: LiveServer, user: str, guid: str) -> None:
    """Wait for the member's job to end, CONNECTED."""
    deadline = time.monotonic() + 60
    with _api(server) as api:
        while True:
            m = api.get(f"/users/{user}/members/{guid}").json()["member"]
            if not m["is_being_aggregated"] and m["connection_status"] == "CONNECTED":
                return
            assert time.monotonic() < deadline, m
            time.sleep(0.2)


def _reads(bank: FakeEnableBanking, since: int) -> set[str | None]:
    return {r.psu_ip for r in bank.requests[since:] if r.path.startswith("/accounts/")}


def test_the_forwarded_address_of_a_trusted_proxy_goes_to_the_bank(
    bank: FakeEnableBanking, key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    server = start_live_server(
        tmp_path,
        OPENAGG_CONNECTOR_ALLOW_PRIVATE_ADDRESSES="true",
        OPENAGG_FOREGROUND_THROTTLE_SECONDS="0",
    )
    try:
        add_with_cli(server.env, bank, key, CODE)
        with _api(server) as api:
            user = api.post("/users", json={"user": {}}).json()["user"]["guid"]

        # The test talks from 127.0.0.1, the proxy trusted by default.
        with _widget(server, user, END_USER) as browser:
            r = browser.post(
                f"{server.url}/connect/api/members",
                json={"institution_code": CODE, "is_oauth": True},
            )
            assert r.status_code == 200, r.text
            created = r.json()["member"]
            done = _consent(browser, created["oauth_window_uri"])
            assert done.status_code == 200 and "Access granted" in done.text, done.text
        _settled(server, user, created["guid"])
        consent = [(r.path, r.psu_ip) for r in bank.requests if r.path in ("/auth", "/sessions")]
        assert consent == [("/auth", END_USER), ("/sessions", END_USER)]
        assert _reads(bank, 0) == {END_USER}
        assert not bank.unattended

        server.stop()
        server.env["OPENAGG_FORWARDED_ALLOW_IPS"] = "192.0.2.1"  # not this client
        server.start()
        since = len(bank.requests)
        with _widget(server, user, END_USER) as browser:
            r = browser.post(f"{server.url}/connect/api/members/{created['guid']}/retry")
            assert r.status_code in (200, 202), r.text
        _settled(server, user, created["guid"])
        # The header is not believed: the request's own peer is the address sent.
        assert _reads(bank, since) == {"127.0.0.1"}
    finally:
        server.stop()
