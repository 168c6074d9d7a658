"""The widget's "use this connection in another app" step (POST
/connect/api/simplefin_token): a SimpleFIN setup token for the session's own user, only
when the app asked for it (``enable_simplefin_token``), a few waiting at a time, claimed
once through the real SimpleFIN server, and never in a log line."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from openagg.api.app import create_app
from openagg.services.simplefin import WIDGET_WAITING_TOKENS
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, new_user
from tests.integration.simplefin_client import SimplefinApp, served
from tests.integration.test_widget_urls import bearer, boot_of

PATH = "/connect/api/simplefin_token"


@dataclass
class World:
    """The platform on a loopback port (logging every request, as ``serve
    --log-requests`` does), its client's backend, and a user with an aggregated member."""

    p: Platform
    mx: httpx.AsyncClient
    user: str

    async def session(self, user: str | None = None, **options: Any) -> dict[str, Any]:
        body = {"widget_url": {"widget_type": "connect_widget", **options}}
        r = await self.mx.post(f"/users/{user or self.user}/widget_urls", json=body)
        assert r.status_code == 200, r.text
        page = await self.mx.get(r.json()["widget_url"]["url"])
        assert page.status_code == 200, page.text
        return boot_of(page)

    async def make(self, boot: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return await self.mx.post(PATH, headers=bearer(boot), **kwargs)

    async def token(self, boot: dict[str, Any]) -> dict[str, Any]:
        r = await self.make(boot)
        assert r.status_code == 201, r.text
        found: dict[str, Any] = r.json()["simplefin_token"]
        return found

    async def account_guids(self, user: str) -> set[str]:
        r = await self.mx.get(f"/users/{user}/accounts", params={"records_per_page": 100})
        assert r.status_code == 200, r.text
        return {a["guid"] for a in r.json()["accounts"]}

    async def listed(self, user: str) -> list[dict[str, Any]]:
        r = await self.mx.get(f"/users/{user}/simplefin_tokens")
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()["simplefin_tokens"]
        return found


@pytest.fixture
async def world(platform: Platform) -> AsyncIterator[World]:
    user = await new_user(platform.http)
    await create_member(platform.http, user, "secret", expect=202)
    await platform.drain()
    platform.rt.settings.log_requests = True
    app = create_app(platform.rt, run_worker=False)
    async with (
        served(app) as url,
        httpx.AsyncClient(base_url=url, headers=platform.http.headers) as mx,
    ):
        yield World(platform, mx, user)


async def test_the_token_claims_once_and_serves_the_session_user_s_accounts(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    boot = await world.session(enable_simplefin_token=True)
    assert boot["options"]["enable_simplefin_token"] is True
    r = await world.make(boot)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    made = r.json()["simplefin_token"]
    assert made["user_guid"] == world.user and made["state"] == "UNCLAIMED"
    assert made["guid"].startswith("SFT-") and made["expires_at"]
    claim_url = base64.b64decode(made["token"]).decode()
    assert claim_url == made["claim_url"] and "/simplefin/claim/" in claim_url
    # Listed for the app's backend, without its secret.
    [listed] = await world.listed(world.user)
    assert listed["guid"] == made["guid"] and "token" not in listed
    assert listed["created_by"] == made["created_by"] == "WIDGET"  # the end user made it

    app = await SimplefinApp.claim(made["token"])
    body = await app.accounts()
    mine = await world.account_guids(world.user)
    assert mine and {a["id"] for a in body["accounts"]} == mine
    # Once only.
    assert (await SimplefinApp.claim_response(made["token"])).status_code == 403
    [listed] = await world.listed(world.user)
    assert listed["state"] == "CLAIMED"

    # A fix link's signature is a secret too.
    r = await world.mx.get(f"/simplefin/fix/{made['guid']}/MBR-nope/not-a-good-signature")
    assert r.status_code == 404

    # No log line of the platform carries the token, its claim code or the access's
    # password (the test's own HTTP client logs the URLs it calls: not the platform's).
    code = claim_url.rsplit("/", 1)[1]
    assert app.auth[1] and code
    logged = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    for secret in (made["token"], code, app.auth[1]):
        assert secret not in logged
    assert f"POST {PATH} 201" in logged
    assert "POST /simplefin/claim/[token] 200" in logged
    assert "GET /simplefin/fix/[token]/MBR-nope/[token] 404" in logged
    assert "not-a-good-signature" not in logged


async def test_without_the_option_the_step_is_refused(world: World) -> None:
    for options in ({}, {"enable_simplefin_token": False}):
        boot = await world.session(**options)
        assert boot["options"]["enable_simplefin_token"] is False
        r = await world.make(boot)
        assert r.status_code == 403, r.text
        assert "enable_simplefin_token" in r.json()["error"]["message"]
        assert "www-authenticate" not in r.headers
    assert await world.listed(world.user) == []
    # The option is a boolean, on the legacy endpoint too.
    body = {"widget_url": {"widget_type": "connect_widget", "enable_simplefin_token": "yes"}}
    r = await world.mx.post(f"/users/{world.user}/widget_urls", json=body)
    assert r.status_code == 400 and "enable_simplefin_token" in r.text
    r = await world.mx.post(
        f"/users/{world.user}/connect_widget_url",
        json={"config": {"enable_simplefin_token": True}},
    )
    assert r.status_code == 200, r.text
    page = await world.mx.get(r.json()["user"]["connect_widget_url"])
    assert boot_of(page)["options"]["enable_simplefin_token"] is True


async def test_a_session_makes_tokens_for_its_own_user_only(world: World) -> None:
    other = await new_user(world.p.http)
    theirs = await world.session(other, enable_simplefin_token=True)
    # There is nothing to name another user with.
    for body in ({"user_guid": world.user}, {"simplefin_token": {"user_guid": world.user}}):
        r = await world.make(theirs, json=body)
        assert r.status_code == 400, r.text
    made = await world.token(theirs)
    assert made["user_guid"] == other
    assert await world.listed(world.user) == []
    # Their access reads their (empty) account set, never the first user's.
    app = await SimplefinApp.claim(made["token"])
    assert (await app.accounts())["accounts"] == []
    # No session, or an ended one: 401.
    assert (await world.mx.post(PATH)).status_code == 401
    r = await world.mx.post(PATH, headers={"Authorization": "Bearer not-a-session"})
    assert r.status_code == 401
    # A disabled user shares nothing.
    r = await world.mx.put(f"/users/{other}", json={"user": {"is_disabled": True}})
    assert r.status_code == 200, r.text
    r = await world.make(theirs)
    assert r.status_code == 403 and "disabled" in r.json()["error"]["message"]


async def test_only_a_few_tokens_wait_at_a_time(world: World) -> None:
    boot = await world.session(enable_simplefin_token=True)
    made = [await world.token(boot) for _ in range(WIDGET_WAITING_TOKENS)]
    world.p.clock.advance(minutes=30)
    refused = await world.make(boot)
    assert refused.status_code == 429, refused.text
    assert "waiting to be used" in refused.json()["error"]["message"]
    # A place frees when the oldest waiting token expires (24 hours after it was made).
    assert refused.headers["retry-after"] == str(23 * 3600 + 1800)
    # Claiming one frees a place; so does a new session (the count is the user's).
    await SimplefinApp.claim(made[0]["token"])
    await world.token(await world.session(enable_simplefin_token=True))
    assert (await world.make(boot)).status_code == 429
    # Expired tokens wait no more (the session ended too: a new one).
    world.p.clock.advance(hours=24)
    assert (await world.make(await world.session(enable_simplefin_token=True))).status_code == 201


async def test_requests_at_once_make_exactly_the_limit(world: World) -> None:
    boot = await world.session(enable_simplefin_token=True)
    answers = await asyncio.gather(*(world.make(boot) for _ in range(WIDGET_WAITING_TOKENS + 3)))
    assert sorted(r.status_code for r in answers) == [201] * WIDGET_WAITING_TOKENS + [429] * 3
    assert len(await world.listed(world.user)) == WIDGET_WAITING_TOKENS
