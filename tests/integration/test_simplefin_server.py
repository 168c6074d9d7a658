"""OpenAgg as a SimpleFIN server, over real sockets: the protocol (claim once, accounts,
every window and filter, version 2), the parsing rules of Actual Budget, Firefly III
and Home Assistant's simplefin4py, members that need their end user, the rate limit
shared by API processes, revocation and tenant isolation."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema_rs
import pytest
from simplefin4py import SimpleFin
from simplefin4py.exceptions import SimpleFinAuthError, SimpleFinClaimError
from sqlalchemy import func, select

from openagg.api.app import create_app
from openagg.db.models import Job, SimplefinToken
from openagg.runtime import build_runtime
from openagg.services.clients import create_client
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, new_user
from tests.integration.simplefin_client import (
    ACTUAL_ACCESS_URL,
    FIREFLY_CLAIM_URL,
    SimplefinApp,
    actual_cents,
    actual_is_pending,
    firefly_check_account,
    served,
)

DEBT_TYPES = {"CREDIT_CARD", "LOAN", "MORTGAGE", "LINE_OF_CREDIT"}
V1_ACCOUNT_KEYS = {
    "org",
    "id",
    "name",
    "currency",
    "balance",
    "available-balance",
    "balance-date",
    "transactions",
    "holdings",
}
TRANSACTION_KEYS = {"id", "posted", "amount", "description", "payee", "memo", "transacted_at"}


@dataclass
class World:
    """The platform on a loopback port, a client's backend talking to it, and one user
    with an mxbank member that has aggregated."""

    p: Platform
    url: str
    mx: httpx.AsyncClient
    user: str
    member: str

    async def setup_token(self, user: str | None = None) -> dict[str, Any]:
        r = await self.mx.post(f"/users/{user or self.user}/simplefin_tokens")
        assert r.status_code == 201, r.text
        token: dict[str, Any] = r.json()["simplefin_token"]
        return token

    async def app(self) -> SimplefinApp:
        return await SimplefinApp.claim((await self.setup_token())["token"])

    async def mx_accounts(self) -> dict[str, dict[str, Any]]:
        r = await self.mx.get(f"/users/{self.user}/accounts", params={"records_per_page": 100})
        return {a["guid"]: a for a in r.json()["accounts"]}

    async def mx_transactions(self) -> list[dict[str, Any]]:
        r = await self.mx.get(
            f"/users/{self.user}/transactions",
            params={"from_date": "2020-01-01", "to_date": "2030-01-01", "records_per_page": 1000},
        )
        assert r.status_code == 200, r.text
        assert r.json()["pagination"]["total_pages"] == 1
        rows: list[dict[str, Any]] = r.json()["transactions"]
        return rows


@pytest.fixture
async def world(platform: Platform) -> AsyncIterator[World]:
    user = await new_user(platform.http)
    created = await create_member(platform.http, user, "secret", expect=202)
    await platform.drain()
    async with (
        served(platform.app) as url,
        httpx.AsyncClient(base_url=url, headers=platform.http.headers) as mx,
    ):
        yield World(platform, url, mx, user, created.json()["member"]["guid"])


def _epoch(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def simplefin_time(t: dict[str, Any]) -> int:
    """The time SimpleFIN windows compare, from MX's fields: posted, or when it happened."""
    return _epoch(t["transacted_at"] if t["status"] == "PENDING" else t["posted_at"])


def signed_cents(t: dict[str, Any]) -> int:
    cents = round(t["amount"] * 100)
    return -cents if t["type"] == "DEBIT" else cents


def transactions_of(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {a["id"]: a["transactions"] for a in body["accounts"]}


async def assert_described(world: World, *bodies: dict[str, Any]) -> None:
    """``bodies`` (answers of /simplefin/accounts) match the platform's own description."""
    doc = (await world.mx.get("/openapi.json")).json()
    op = doc["paths"]["/simplefin/accounts"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
    for body in bodies:
        validator.validate(body)
        # Not a schema that takes anything: an account without its fields is refused.
        assert not validator.is_valid({**body, "accounts": [{"id": "A"}]})


# --- tokens and the claim ----------------------------------------------------------------


async def test_a_setup_token_claims_once_and_is_listed_without_secrets(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await world.setup_token()
    assert token["guid"].startswith("SFT-") and token["state"] == "UNCLAIMED"
    assert token["created_by"] == "API"  # the client's backend
    claim_url = base64.b64decode(token["token"]).decode()
    assert claim_url == token["claim_url"] == token["claim_url"].strip()
    assert claim_url.startswith(f"{world.url}/simplefin/claim/")
    assert FIREFLY_CLAIM_URL.match(claim_url)

    first = await SimplefinApp.claim_response(token["token"])
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    access_url = first.text
    assert ACTUAL_ACCESS_URL.match(access_url) and not access_url.startswith("Forbidden")
    assert access_url.startswith(f"http://{token['guid']}:")
    assert access_url.endswith("@" + world.url.removeprefix("http://") + "/simplefin")

    second = await SimplefinApp.claim_response(token["token"])
    assert second.status_code == 403
    assert "already used" in second.json()["error"]["message"]

    listed = await world.mx.get(f"/users/{world.user}/simplefin_tokens")
    assert listed.status_code == 200
    [row] = listed.json()["simplefin_tokens"]
    assert row["guid"] == token["guid"] and row["state"] == "CLAIMED"
    assert row["created_by"] == "API"
    assert "token" not in row and "claim_url" not in row
    text = listed.text
    assert claim_url.rsplit("/", 1)[1] not in text and access_url.split("@")[0] not in text
    # Stored hashed: neither the claim code nor the password is in the database.
    async with world.p.rt.db.read() as s:
        stored = await s.scalar(select(SimplefinToken))
    assert stored is not None and stored.access_password_hash is not None
    password = access_url.split("@")[0].rsplit(":", 1)[1]
    code = claim_url.rsplit("/", 1)[1]
    await SimplefinApp(access_url).accounts()
    # The server's log lines (the test's own HTTP client logs the URLs it calls).
    server_log = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    for secret in (password, code):
        assert secret not in repr(vars(stored)) and secret not in server_log


async def test_an_expired_setup_token_cannot_be_claimed(world: World) -> None:
    token = await world.setup_token()
    world.p.clock.advance(seconds=world.p.rt.settings.simplefin_claim_ttl_seconds)
    r = await SimplefinApp.claim_response(token["token"])
    assert r.status_code == 403
    listed = await world.mx.get(f"/users/{world.user}/simplefin_tokens")
    assert listed.json()["simplefin_tokens"][0]["state"] == "EXPIRED"
    unknown = await SimplefinApp.claim_response(
        base64.b64encode(f"{world.url}/simplefin/claim/not-a-code".encode()).decode()
    )
    assert unknown.status_code == 403


async def test_revoking_stops_the_access_and_the_claim_at_once(world: World) -> None:
    app = await world.app()
    assert (await app.get()).status_code == 200
    tokens = (await world.mx.get(f"/users/{world.user}/simplefin_tokens")).json()
    guid = tokens["simplefin_tokens"][0]["guid"]
    r = await world.mx.delete(f"/users/{world.user}/simplefin_tokens/{guid}")
    assert r.status_code == 204
    assert (await app.get()).status_code == 403
    # Again: still revoked, still 204.
    assert (
        await world.mx.delete(f"/users/{world.user}/simplefin_tokens/{guid}")
    ).status_code == 204

    unclaimed = await world.setup_token()
    await world.mx.delete(f"/users/{world.user}/simplefin_tokens/{unclaimed['guid']}")
    assert (await SimplefinApp.claim_response(unclaimed["token"])).status_code == 403
    states = {
        t["guid"]: t["state"]
        for t in (await world.mx.get(f"/users/{world.user}/simplefin_tokens")).json()[
            "simplefin_tokens"
        ]
    }
    assert states == {guid: "REVOKED", unclaimed["guid"]: "REVOKED"}


async def test_deleting_the_user_ends_its_access(world: World) -> None:
    app = await world.app()
    assert (await world.mx.delete(f"/users/{world.user}")).status_code == 204
    assert (await app.get()).status_code == 403


async def test_bad_credentials_and_bad_input_get_clear_answers(world: World) -> None:
    app = await world.app()
    async with httpx.AsyncClient() as http:
        nothing = await http.get(app.root + "/accounts")
        wrong = await http.get(app.root + "/accounts", auth=(app.auth[0], "wrong"))
        garbled = await http.get(
            app.root + "/accounts", headers={"Authorization": "Basic !!notbase64"}
        )
    assert nothing.status_code == wrong.status_code == garbled.status_code == 403
    assert "HTTP Basic" in nothing.json()["error"]["message"]
    for params, words in (
        ({"start-date": "yesterday"}, "'start-date' must be a UNIX timestamp"),
        ({"end-date": "1e9"}, "'end-date' must be a UNIX timestamp"),
        ({"balances-only": "yes"}, "'balances-only' must be 1 or 0"),
        ({"version": "3"}, "'version' must be 1 or 2"),
    ):
        r = await app.get(**params)
        assert r.status_code == 400 and words in r.json()["error"]["message"], r.text
    r = await world.mx.post(
        f"/users/{world.user}/simplefin_tokens", json={"simplefin_token": {"expires_in": 5}}
    )
    assert r.status_code == 400 and "expires_in" in r.json()["error"]["message"]
    r = await world.mx.post("/users/USR-nobody/simplefin_tokens")
    assert r.status_code == 404
    info = await app.get("/info")
    assert info.json() == {"versions": ["1.0"]} and b"\n" not in info.content


# --- the account set ---------------------------------------------------------------------


async def test_accounts_carry_every_field_the_clients_read_with_exact_amounts(
    world: World,
) -> None:
    app = await world.app()
    body = await app.accounts(pending=1)
    mx_accounts = await world.mx_accounts()
    assert body["errors"] == [] and body["x-api-message"] == []
    assert [a["id"] for a in body["accounts"]] == list(mx_accounts)
    by_id = {t["guid"]: t for t in await world.mx_transactions()}
    for account in body["accounts"]:
        mx_account = mx_accounts[account["id"]]
        assert set(account) == V1_ACCOUNT_KEYS
        firefly_check_account(account)
        assert account["org"] == {
            "domain": "www.mx.com",
            "name": "MX Bank",
            "sfin-url": f"{world.url}/simplefin",
            "url": "https://www.mx.com",
            "id": mx_account["institution_guid"],
        }
        cents = round(mx_account["balance"] * 100)
        expected = -cents if mx_account["type"] in DEBT_TYPES else cents
        assert account["balance"].count(".") == 1 and len(account["balance"].split(".")[1]) == 2
        assert actual_cents(account["balance"]) == expected, account["name"]
        assert actual_cents(account["available-balance"]) == (
            round(mx_account["available_balance"] * 100)
            if mx_account["available_balance"] is not None
            else expected
        )
        times = [t["posted"] or t["transacted_at"] for t in account["transactions"]]
        assert times == sorted(times)
        for t in account["transactions"]:
            mx_t = by_id[t["id"]]
            assert set(t) >= TRANSACTION_KEYS and isinstance(t["pending"], bool)
            assert len(t["amount"].split(".")[1]) == 2
            assert actual_cents(t["amount"]) == signed_cents(mx_t)
            assert actual_is_pending(t) == (mx_t["status"] == "PENDING")
            assert t["posted"] == (0 if t["pending"] else _epoch(mx_t["posted_at"]))
            assert t["transacted_at"] == _epoch(mx_t["transacted_at"])
            assert t["payee"] == mx_t["description"]
            assert t["description"] == mx_t["original_description"]
    card = next(a for a in body["accounts"] if mx_accounts[a["id"]]["type"] == "CREDIT_CARD")
    assert card["balance"].startswith("-")
    # Ids are stable: the same request answers the same bytes.
    assert (await app.get(pending=1)).content == (await app.get(pending=1)).content


async def test_windows_and_filters(world: World) -> None:
    app = await world.app()
    everything = await world.mx_transactions()
    now = _epoch("2026-03-02T15:00:00Z")
    posted = [t for t in everything if t["status"] == "POSTED"]
    pending = [t for t in everything if t["status"] == "PENDING"]
    assert pending, "mxbank has a pending transaction"

    def expect(start: int, end: int | None, with_pending: bool) -> set[str]:
        return {
            t["guid"]
            for t in (posted + pending if with_pending else posted)
            if start <= simplefin_time(t) and (end is None or simplefin_time(t) < end)
        }

    def got(body: dict[str, Any]) -> set[str]:
        return {t["id"] for txns in transactions_of(body).values() for t in txns}

    # Without start-date: the last 90 days; without pending=1: no pending ones.
    assert got(await app.accounts()) == expect(now - 90 * 86400, None, False)
    assert got(await app.accounts(pending=1)) == expect(now - 90 * 86400, None, True)
    assert got(await app.accounts(**{"start-date": 0, "pending": 1})) == expect(0, None, True)
    # start-date inclusive, end-date exclusive, on the posted time.
    edge = sorted(posted, key=simplefin_time)[len(posted) // 2]
    at = simplefin_time(edge)
    assert edge["guid"] in got(await app.accounts(**{"start-date": at}))
    assert edge["guid"] not in got(await app.accounts(**{"start-date": at + 1}))
    assert edge["guid"] not in got(await app.accounts(**{"start-date": 0, "end-date": at}))
    window = await app.accounts(**{"start-date": at - 20 * 86400, "end-date": at + 1})
    assert edge["guid"] in got(window)
    assert got(window) == expect(at - 20 * 86400, at + 1, False)
    # Pending ones by when they happened; Actual's end-date is the next month's first day.
    p = pending[0]
    assert p["guid"] in got(
        await app.accounts(
            **{"start-date": simplefin_time(p), "end-date": simplefin_time(p) + 1, "pending": 1}
        )
    )

    # account=: only those, in the order asked (Firefly reads accounts[0]).
    ids = [a["id"] for a in (await app.accounts())["accounts"]]
    picked = await app.accounts(account=[ids[2], ids[0], ids[2]])
    assert [a["id"] for a in picked["accounts"]] == [ids[2], ids[0]]
    for account_id in ids:
        one = await app.accounts(account=account_id, **{"start-date": 0})
        assert one["accounts"][0]["id"] == account_id and len(one["accounts"]) == 1
    missing = await app.accounts(account=["ACT-gone", ids[1]])
    assert [a["id"] for a in missing["accounts"]] == [ids[1]]
    assert any("ACT-gone" in e for e in missing["errors"])

    # balances-only=1: balances, no transactions.
    balances = await app.accounts(**{"balances-only": 1, "start-date": 0, "pending": 1})
    assert [a["id"] for a in balances["accounts"]] == ids
    assert all(a["transactions"] == [] and a["balance"] for a in balances["accounts"])


async def test_version_2_has_connections_and_errlist(world: World) -> None:
    app = await world.app()
    body = await app.accounts(version=2, **{"start-date": 0})
    assert set(body) == {"errlist", "connections", "accounts"} and body["errlist"] == []
    [conn] = body["connections"]
    assert conn["conn_id"] == world.member and conn["name"] == "MX Bank"
    assert conn["org_name"] == "MX Bank" and conn["sfin_url"] == f"{world.url}/simplefin"
    v1 = await app.accounts(**{"start-date": 0})
    for a2, a1 in zip(body["accounts"], v1["accounts"], strict=True):
        assert "org" not in a2 and a2["conn_id"] == world.member
        assert {k: v for k, v in a2.items() if k not in ("conn_id", "conn_name")} == {
            k: v for k, v in a1.items() if k != "org"
        }


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # aiohttp's, in simplefin4py
async def test_a_denied_member_is_reported_and_keeps_its_data(world: World) -> None:
    app = await world.app()
    before = await app.accounts(**{"start-date": 0})
    creds = {
        c["field_name"]: c["guid"]
        for c in (await world.mx.get("/institutions/mxbank/credentials")).json()["credentials"]
    }
    r = await world.mx.put(
        f"/users/{world.user}/members/{world.member}",
        json={
            "member": {
                "credentials": [
                    {"guid": creds["LOGIN"], "value": "mxuser"},
                    {"guid": creds["PASSWORD"], "value": "INVALID"},
                ]
            }
        },
    )
    assert r.status_code == 200, r.text
    await world.p.drain()
    status = (await world.mx.get(f"/users/{world.user}/members/{world.member}/status")).json()
    assert status["member"]["connection_status"] == "DENIED"

    after = await app.accounts(**{"start-date": 0})
    # Still served: no client drops the accounts or their transactions.
    assert after["accounts"] == before["accounts"]
    phrase, words = after["errors"]
    assert phrase == "Connection to MX Bank may need attention"  # what Actual reacts to
    assert "credentials entered are not correct" in words
    assert "authentication" not in words.lower()  # Sure would ask for a new token
    fix_url = words.split("Fix this connection here: ", 1)[1]
    assert fix_url.startswith(f"{world.url}/simplefin/fix/")

    v2 = await app.accounts(version=2, **{"start-date": 0})
    [entry] = v2["errlist"]
    assert entry["code"] == "con.auth" and entry["conn_id"] == world.member
    assert entry["msg"] == entry["message"] == words

    # Each shape, errors included, is the one /openapi.json describes.
    await assert_described(world, before, after, v2, await app.accounts(**{"balances-only": 1}))

    # Home Assistant's client flags the accounts of that connection.
    data = await SimpleFin(app.access_url).fetch_data()
    assert data.accounts and all(a.possible_error for a in data.accounts)

    # The link opens the Connect widget on that member, asking for new credentials.
    async with httpx.AsyncClient() as browser:
        opened = await browser.get(fix_url)
        assert opened.status_code == 303
        assert opened.headers["location"].startswith(f"{world.url}/connect/")
        page = await browser.get(opened.headers["location"])
        assert page.status_code == 200 and world.member in page.text
        forged = await browser.get(fix_url[:-4] + "abcd")
        assert forged.status_code == 404
    # Reading never started an aggregation.
    async with world.p.rt.db.read() as s:
        jobs = await s.scalar(select(func.count()).select_from(Job))
    for _ in range(3):
        await app.accounts()
    async with world.p.rt.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Job)) == jobs


# --- the rate limit ----------------------------------------------------------------------


@asynccontextmanager
async def two_api_processes(world: World, limit: int) -> AsyncIterator[list[SimplefinApp]]:
    """A new access as a budget app sees it through the platform, and through a second
    API process on the same database; the rate limit set to ``limit``."""
    world.p.rt.settings.simplefin_requests_per_day = limit
    other_rt = build_runtime(world.p.rt.settings)
    other_rt.clock = world.p.clock
    try:
        async with served(create_app(other_rt, run_worker=False)) as other_url:
            app = await world.app()
            yield [app, SimplefinApp(app.access_url.replace(world.url[7:], other_url[7:]))]
    finally:
        await other_rt.db.dispose()


async def test_the_rate_limit_is_a_rolling_day_shared_by_api_processes(world: World) -> None:
    async with two_api_processes(world, 3) as (app, elsewhere):
        assert (await app.get()).status_code == 200
        world.p.clock.advance(hours=1)
        assert (await elsewhere.get()).status_code == 200
        assert (await app.get()).status_code == 200
        refused = await elsewhere.get()
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == str(23 * 3600)
        assert "Make fewer requests" in refused.json()["error"]["message"]
        assert (await app.get()).status_code == 429
        # A day after the first request, one place is free again.
        world.p.clock.advance(hours=23)
        assert (await elsewhere.get()).status_code == 200
        assert (await app.get()).status_code == 429
        # Another access of the same user has its own day.
        assert (await (await world.app()).get()).status_code == 200


async def test_concurrent_requests_of_two_api_processes_take_exactly_the_limit(
    world: World,
) -> None:
    async with two_api_processes(world, 5) as (app, elsewhere):
        answers = await asyncio.gather(
            *(c.get("/accounts", **{"balances-only": 1}) for c in [app, elsewhere] * 8)
        )
        assert sorted(r.status_code for r in answers) == [200] * 5 + [429] * 11
        # A day later, the day is empty again: five places, however many ask at once.
        world.p.clock.advance(hours=24)
        answers = await asyncio.gather(*(c.get() for c in [elsewhere, app] * 4))
        assert sorted(r.status_code for r in answers) == [200] * 5 + [429] * 3


# --- tenants -----------------------------------------------------------------------------


async def test_another_clients_users_and_tokens_are_not_found(world: World) -> None:
    other = await create_client(world.p.rt, "Another client")
    auth = base64.b64encode(f"{other.client.client_id}:{other.api_key}".encode()).decode()
    async with httpx.AsyncClient(
        base_url=world.url,
        headers={"Authorization": f"Basic {auth}", "Accept": "application/vnd.mx.api.v1+json"},
    ) as other_mx:
        mine = await world.setup_token()
        assert (await other_mx.post(f"/users/{world.user}/simplefin_tokens")).status_code == 404
        assert (await other_mx.get(f"/users/{world.user}/simplefin_tokens")).status_code == 404
        r = await other_mx.delete(f"/users/{world.user}/simplefin_tokens/{mine['guid']}")
        assert r.status_code == 404
        their_user = (await other_mx.post("/users", json={"user": {}})).json()["user"]["guid"]
        r = await other_mx.delete(f"/users/{their_user}/simplefin_tokens/{mine['guid']}")
        assert r.status_code == 404
        theirs = (await other_mx.post(f"/users/{their_user}/simplefin_tokens")).json()
    # Their user has no members: their access sees nothing of ours.
    their_app = await SimplefinApp.claim(theirs["simplefin_token"]["token"])
    assert (await their_app.accounts())["accounts"] == []
    # The same user's second user at our client sees only its own.
    second_user = await new_user(world.p.http)
    r = await world.mx.post(f"/users/{second_user}/simplefin_tokens")
    second_app = await SimplefinApp.claim(r.json()["simplefin_token"]["token"])
    assert (await second_app.accounts())["accounts"] == []
    assert (await SimplefinApp.claim(mine["token"])).access_url


# --- Home Assistant's client -------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # aiohttp's, in simplefin4py
async def test_simplefin4py_claims_and_reads_as_home_assistant_does(world: World) -> None:
    token = await world.setup_token()
    access_url = await SimpleFin.claim_setup_token(token["token"])
    data = await SimpleFin(access_url).fetch_data()
    mx_accounts = await world.mx_accounts()
    assert [a.id for a in data.accounts] == list(mx_accounts)
    assert all(not a.possible_error for a in data.accounts)
    assert all(a.org.name == "MX Bank" and a.org.domain == "www.mx.com" for a in data.accounts)
    with pytest.raises(SimpleFinClaimError):
        await SimpleFin.claim_setup_token(token["token"])
    await world.mx.delete(f"/users/{world.user}/simplefin_tokens/{token['guid']}")
    with pytest.raises(SimpleFinAuthError):
        await SimpleFin(access_url).fetch_data()
