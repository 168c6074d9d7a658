"""The ``fdx`` connector against the fake FDX bank and its OpenID provider over real
sockets: an OAuth member through the bank's consent page and the platform's callback
to CONNECTED with typed accounts, paged transactions, holdings and owners; refresh
tokens rotated across aggregations by the platform's clock; consent revoked at the
bank (DENIED), declined (DENIED), or replayed; an expired code; pending rows posted under new ids;
each kind of trouble to its status; plain http to public hosts refused; and the
conformance suite."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from openagg.connectors.base import AccountData, ConnectorContext, ConnectorError, TransactionData
from openagg.connectors.fdx import FdxConnector, owner_data, settle
from openagg.connectors.http import connector_client
from openagg.db.models import Attempt, Member
from openagg.domain.causes import Cause
from openagg.services import vault
from openagg.services.institutions import InstitutionInput, add_institution, update_institution
from openagg.testing import Scenario, run_conformance
from tests.compat.test_sdk import run_scenario, sdk  # noqa: F401  (the sdk fixture)
from tests.conftest import VENV_BIN, Platform, make_platform, settings_for, start_live_server
from tests.integration.api_helpers import local, member, new_user
from tests.integration.fake_fdx_bank import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT,
    FakeFdxBank,
    serve_fake_fdx_bank,
)
from tests.integration.test_simplefin_connector import aggregate, listed, transactions

CODE = "fake_fdx"
CALLBACK = "http://openagg.test/oauth/callback"


@pytest.fixture
def bank() -> Iterator[FakeFdxBank]:
    with serve_fake_fdx_bank() as b:
        yield b


@pytest.fixture
async def platform(tmp_path: Path, bank: FakeFdxBank) -> AsyncIterator[Platform]:
    settings = settings_for(
        tmp_path, connector_allow_private_addresses=True, foreground_throttle_seconds=0
    )
    settings.ensure_data_dir()
    p, _ = await make_platform(settings)
    bank.clock = lambda: p.clock.now  # the bank's tokens expire by the tests' clock
    bank.redirect_uris = {CALLBACK}  # what the operator registered with the provider
    await add_institution(
        p.rt, InstitutionInput("fdx", CODE, "Fake FDX Bank", options=bank.options(), oauth=True)
    )
    yield p
    await p.http.aclose()
    await p.rt.db.dispose()


async def consent_redirect(platform: Platform, uri: str, decision: str = "allow") -> str:
    """The end user's browser from the member's link to the bank's consent page and
    their decision there: where the bank sends them back (the platform's callback)."""
    start = await platform.http.get(local(uri))
    assert start.status_code == 303, start.text
    async with httpx.AsyncClient() as browser:
        page = await browser.get(start.headers["location"])
        assert page.status_code == 200, page.text
        fields = {
            k: html.unescape(v)
            for k, v in re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page.text)
        }
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None
        decided = await browser.post(
            page.url.join(action.group(1)), data={**fields, "decision": decision}
        )
    assert decided.status_code == 303, decided.text
    return str(decided.headers["location"])


async def authorize(platform: Platform, uri: str, decision: str = "allow") -> httpx.Response:
    """Through the consent page and back to the platform's callback: its answer."""
    return await platform.http.get(local(await consent_redirect(platform, uri, decision)))


async def create_oauth_member(platform: Platform, user: str) -> dict[str, Any]:
    body = {"member": {"institution_code": CODE, "is_oauth": True}}
    r = await platform.http.post(f"/users/{user}/members", json=body)
    assert r.status_code in (200, 202), r.text
    created: dict[str, Any] = r.json()["member"]
    return created


async def connect(platform: Platform) -> tuple[str, str]:
    user = await new_user(platform.http)
    created = await create_oauth_member(platform, user)
    done = await authorize(platform, created["oauth_window_uri"])
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    await platform.drain()
    return user, created["guid"]


async def sealed(platform: Platform, guid: str) -> dict[str, Any]:
    async with platform.rt.db.read() as s:
        row = await s.scalar(select(Member).where(Member.guid == guid))
    assert row is not None
    return vault.open_secrets(platform.rt, row)


async def last_attempt(platform: Platform, guid: str) -> Attempt:
    async with platform.rt.db.read() as s:
        found = await s.scalar(
            select(Attempt)
            .join(Member, Member.id == Attempt.member_id)
            .where(Member.guid == guid)
            .order_by(Attempt.id.desc())
            .limit(1)
        )
    assert found is not None
    return found


def test_mx_sdk_connects_an_oauth_member_at_an_fdx_bank(
    sdk: Path,  # noqa: F811  (the fixture imported above)
    bank: FakeFdxBank,
    tmp_path: Path,
) -> None:
    server = start_live_server(
        tmp_path,
        OPENAGG_CONNECTOR_ALLOW_PRIVATE_ADDRESSES="true",
        OPENAGG_FOREGROUND_THROTTLE_SECONDS="0",  # the second aggregation runs at once
    )
    try:
        options = [f"--option={k}={v}" for k, v in bank.options().items()]
        add = ["institutions", "add", "--connector", "fdx", "--oauth", "--code", CODE]
        added = subprocess.run(
            [str(VENV_BIN / "openagg"), *add, "--name", "Fake FDX Bank", *options],
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        r = run_scenario(sdk, server, "fdx_bank")
    finally:
        server.stop()
    assert r["create"] == [200, "PENDING", True]
    assert r["consent"][0] == 200 and "Access granted" in r["consent"][1]
    assert (r["first_status"], r["second_status"]) == ("CONNECTED", "CONNECTED")
    assert ["Auto Loan", "LOAN", "AUTO", 12450.0] in r["accounts"]
    assert ["My card", "CREDIT_CARD", None, 865.09] in r["accounts"]
    assert ["Retirement Savings Plan", "INVESTMENT", "PLAN_401_K", 30218.4] in r["accounts"]
    txns = {t[0]: t[1:] for t in r["transactions"]}
    assert len(txns) == 13 and txns["CHK-P01"] == ["DEBIT", 42.0, "PENDING"]
    assert txns["CHK-T01"] == ["CREDIT", 2500.0, "POSTED"]
    assert r["holdings"] == [["BIGX", "EQUITY", "30.0"], ["VTSX", "MUTUAL_FUND", "120.285"]]
    # The pending dinner posted with its tip under a new id: no duplicate.
    assert "CHK-P01" not in r["transactions_after"] and "CHK-T08" in r["transactions_after"]
    assert len(r["transactions_after"]) == 13


async def test_an_oauth_member_consents_at_the_bank_and_connects_with_its_data(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user = await new_user(platform.http)
    created = await create_oauth_member(platform, user)
    assert created["connection_status"] == "PENDING" and created["is_oauth"] is True
    start = await platform.http.get(local(created["oauth_window_uri"]))
    asked = parse_qs(urlsplit(start.headers["location"]).query)
    assert {k: v[0] for k, v in asked.items() if k != "code_challenge" and k != "state"} == {
        "response_type": "code",
        "client_id": "openagg-test-client",
        "redirect_uri": CALLBACK,
        "scope": "openid offline_access accounts:read",
        "code_challenge_method": "S256",
        "prompt": "consent",
    }
    # The link works once; the member's fresh one leads to the same consent.
    fresh = await platform.http.get(f"/users/{user}/members/{created['guid']}/oauth_window_uri")
    done = await authorize(platform, fresh.json()["member"]["oauth_window_uri"])
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    await platform.drain()
    guid = created["guid"]
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"

    accounts = {a["name"]: a for a in await listed(platform, f"/users/{user}/accounts", "accounts")}
    assert {n: (a["type"], a["subtype"]) for n, a in accounts.items()} == {
        "Everyday Checking": ("CHECKING", None),
        "My card": ("CREDIT_CARD", None),
        "Auto Loan": ("LOAN", "AUTO"),
        "30-year fixed": ("MORTGAGE", None),
        "Retirement Savings Plan": ("INVESTMENT", "PLAN_401_K"),
    }
    card = accounts["My card"]
    assert (card["balance"], card["available_balance"], card["credit_limit"]) == (
        865.09,
        4134.91,
        5000.0,
    )
    loan = accounts["Auto Loan"]
    assert (loan["balance"], loan["original_balance"], loan["interest_rate"]) == (
        12450.0,
        20000.0,
        4.9,
    )
    assert loan["matures_on"] == "2029-06-01"
    assert accounts["Retirement Savings Plan"]["balance"] == 30218.4

    txns = await transactions(platform, user)
    assert set(txns) == {
        *(f"CHK-T0{n}" for n in range(1, 8)),
        "CHK-P01",
        "CC-T01",
        "CC-T02",
        "CC-T03",
        "LN-T01",
        "INV-T01",
    }  # the memo line moved no money
    assert (txns["CHK-T01"]["type"], txns["CHK-T01"]["amount"]) == ("CREDIT", 2500.0)
    assert (txns["CHK-T04"]["type"], txns["CHK-T04"]["check_number_string"]) == ("DEBIT", "1042")
    assert txns["CHK-P01"]["status"] == "PENDING" and txns["CC-T03"]["status"] == "PENDING"
    assert txns["LN-T01"]["type"] == "CREDIT"
    # Transactions were read page by page, within the job's window.
    reads = bank.api_requests("/accounts/acc-chk-1001/transactions")
    assert [r.query.get("pageKey") for r in reads] == [None, ["p3"], ["p6"]]
    assert reads[0].query["startTime"] == [str(platform.clock.now.date() - dt.timedelta(days=90))]
    pages = [r.query.get("pageKey") for r in bank.api_requests() if r.path.endswith("/accounts")]
    assert pages == [None, ["p2"], ["p4"]]  # five accounts, two a page

    holdings = await listed(platform, f"/users/{user}/investment_holdings", "investment_holdings")
    assert sorted((h["symbol"], h["holding_type"], float(h["quantity"])) for h in holdings) == [
        ("BIGX", "EQUITY", 30.0),
        ("VTSX", "MUTUAL_FUND", 120.285),
    ]

    tokens = await sealed(platform, guid)
    assert tokens["access_token"].startswith("at-") and tokens["refresh_token"].startswith("rt-")
    assert tokens["access_expires_at"] == int(platform.clock.now.timestamp()) + 3600

    # An institution added as data offers identification once its operator says so
    # (`openagg institutions update CODE --supports account_identification`).
    r = await platform.http.post(f"/users/{user}/members/{guid}/identify")
    assert r.status_code == 400, r.text
    await update_institution(platform.rt, CODE, supports=("account_identification",))
    r = await platform.http.post(f"/users/{user}/members/{guid}/identify")
    assert r.status_code == 202, r.text
    await platform.drain()
    owners = await listed(
        platform, f"/users/{user}/members/{guid}/account_owners", "account_owners"
    )
    # One owner per account: the platform keeps one (upsert_owner), the last given.
    assert len(owners) == 5 and {o["owner_name"] for o in owners} == {"Sam Example"}
    sam = owners[0]
    assert (sam["address"], sam["city"], sam["state"], sam["email"], sam["phone"]) == (
        "1 Sample Street, Apt 2",
        "Springfield",
        "OR",
        "ada@example.com",
        "1 5555550123",
    )
    assert [o.owner_name for o in owner_data("acc-chk-1001", CONTACT)] == [
        "Ada Q Example",
        "Sam Example",
    ]


async def test_refresh_tokens_rotate_across_aggregations(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user, guid = await connect(platform)  # the access token lives an hour
    first = await sealed(platform, guid)
    # Half an hour later: no refresh.
    assert await aggregate(platform, user, guid, hours=0.5) == "CONNECTED"
    assert [a for a in bank.token_answers if a[0] == "refresh_token"] == []
    tokens = ("access_token", "access_expires_at", "refresh_token")
    assert [(await sealed(platform, guid))[k] for k in tokens] == [first[k] for k in tokens]

    # 50 seconds before its end (less than a minute counts): refreshed, and rotated.
    assert await aggregate(platform, user, guid, hours=(1800 - 50) / 3600) == "CONNECTED"
    second = await sealed(platform, guid)
    assert bank.token_answers[-1] == ("refresh_token", "ok")
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["access_expires_at"] == int(platform.clock.now.timestamp()) + 3600

    # Two hours on, the token has ended at the bank too: refreshed before any API call.
    assert await aggregate(platform, user, guid, hours=2) == "CONNECTED"
    third = await sealed(platform, guid)
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert bank.unauthorized == 0  # the API never saw an expired token

    # The bank refuses a refresh token once used.
    basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for used in (first["refresh_token"], second["refresh_token"]):
        answer = bank.token({"grant_type": "refresh_token", "refresh_token": used}, basic)
        assert answer[0] == 400 and answer[1]["error"] == "invalid_grant"


@pytest.mark.parametrize("hours", [0.5, 2])
async def test_consent_revoked_at_the_bank_ends_denied_with_words(
    platform: Platform, bank: FakeFdxBank, hours: float
) -> None:
    """Revoked while the access token still lives (the API refuses it, the refresh is
    refused) or after it ended (the refresh is refused)."""
    user, guid = await connect(platform)
    bank.revoke()
    assert await aggregate(platform, user, guid, hours=hours) == "DENIED"
    shown = await member(platform.http, user, guid)
    assert "must reconnect" in shown["connection_status_message"]
    attempt = await last_attempt(platform, guid)
    assert attempt.cause == "BAD_CREDENTIALS"
    assert "revoked at the bank" in (attempt.institution_message or "")
    # The data read before stays.
    assert "CHK-T01" in await transactions(platform, user)


async def test_declined_consent_ends_denied_and_connects_nothing(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user = await new_user(platform.http)
    created = await create_oauth_member(platform, user)
    callback = await consent_redirect(platform, created["oauth_window_uri"], decision="deny")
    r = await platform.http.get(local(callback))
    assert r.status_code == 400 and "declined" in r.text, r.text
    await platform.drain()
    shown = await member(platform.http, user, created["guid"])
    assert shown["connection_status"] == "DENIED" and shown["oauth_window_uri"] is None
    message = shown["connection_status_message"]
    assert "Access was not granted at Fake FDX Bank" in message and "must reconnect" in message
    assert await sealed(platform, created["guid"]) == {}
    assert not bank.token_answers and not bank.api_requests()
    # The answer replayed: the link is used up, nothing changes.
    again = await platform.http.get(local(callback))
    assert again.status_code == 404 and "not valid" in again.text
    assert (await member(platform.http, user, created["guid"]))["connection_status"] == "DENIED"
    # A fresh link, and the end user says yes this time: the same member connects.
    fresh = await platform.http.get(f"/users/{user}/members/{created['guid']}/oauth_window_uri")
    done = await authorize(platform, fresh.json()["member"]["oauth_window_uri"])
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    await platform.drain()
    assert (await member(platform.http, user, created["guid"]))["connection_status"] == "CONNECTED"


async def test_a_replayed_callback_is_refused_and_changes_nothing(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user = await new_user(platform.http)
    created = await create_oauth_member(platform, user)
    callback = await consent_redirect(platform, created["oauth_window_uri"])
    assert (await platform.http.get(local(callback))).status_code == 200
    await platform.drain()
    before = await sealed(platform, created["guid"])
    answers = len(bank.token_answers)
    again = await platform.http.get(local(callback))
    assert 400 <= again.status_code < 500 and "not valid" in again.text
    await platform.drain()
    assert await sealed(platform, created["guid"]) == before
    assert len(bank.token_answers) == answers  # the code never reached the bank again
    assert (await member(platform.http, user, created["guid"]))["connection_status"] == "CONNECTED"


async def test_an_expired_code_is_not_confirmed(platform: Platform, bank: FakeFdxBank) -> None:
    user = await new_user(platform.http)
    created = await create_oauth_member(platform, user)
    callback = await consent_redirect(platform, created["oauth_window_uri"])
    platform.clock.advance(seconds=61)  # the bank's codes live a minute
    r = await platform.http.get(local(callback))
    assert r.status_code == 400 and "did not confirm access" in r.text
    assert bank.token_answers == [("authorization_code", "invalid_grant")]
    shown = await member(platform.http, user, created["guid"])
    assert shown["connection_status"] == "PENDING"
    assert shown["connection_status_message"] == (
        "Fake FDX Bank did not confirm access; please try again."
    )
    # The same link works again.
    assert (await authorize(platform, created["oauth_window_uri"])).status_code == 200


async def test_a_pending_row_posted_under_a_new_id_replaces_it(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user, guid = await connect(platform)
    before = await transactions(platform, user)
    assert before["CHK-P01"]["status"] == "PENDING" and before["CHK-P01"]["amount"] == 42.0
    assert (await sealed(platform, guid))["pending"]["acc-chk-1001"] == {
        "CHK-P01": [4200, (platform.clock.now.date() - dt.timedelta(days=1)).toordinal(), 0]
    }
    assert await aggregate(platform, user, guid) == "CONNECTED"
    after = await transactions(platform, user)
    assert "CHK-P01" not in after
    assert (after["CHK-T08"]["status"], after["CHK-T08"]["amount"]) == ("POSTED", 49.5)
    assert set(after) == (set(before) - {"CHK-P01"}) | {"CHK-T08"}
    # The card's pending row is still listed, so it is still pending.
    assert after["CC-T03"]["status"] == "PENDING"
    assert (await sealed(platform, guid))["pending"] == {
        "acc-card-2002": {
            "CC-T03": [1999, (platform.clock.now.date() - dt.timedelta(days=5)).toordinal(), 0]
        }
    }
    assert await aggregate(platform, user, guid) == "CONNECTED"
    assert set(await transactions(platform, user)) == set(after)


def _row(
    tid: str, amount: str, day: dt.date, *, status: str = "POSTED", credit: bool = False
) -> Any:
    return TransactionData(
        external_id=tid,
        account_external_id="a",
        amount=Decimal(amount),
        type="CREDIT" if credit else "DEBIT",
        date=day,
        description="x",
        status=status,
    )


def test_the_pending_to_posted_rule() -> None:
    d = dt.date(2026, 3, 2)
    memory = {
        "P-tip": [2000, d.toordinal(), 0],  # $20.00 debit on the 2nd
        "P-still": [500, d.toordinal(), 0],
        "P-credit": [1000, d.toordinal(), 1],
    }
    rows = [
        _row("T-old", "20.00", d - dt.timedelta(days=1)),  # posted before the pending day
        _row("T-far", "20.00", d + dt.timedelta(days=8)),  # too late
        _row("T-big", "30.00", d + dt.timedelta(days=1)),  # beyond the tolerance
        _row("T-tip", "23.50", d + dt.timedelta(days=2)),
        _row("T-exact", "20.00", d + dt.timedelta(days=2)),  # closer: it wins
        _row("T-5", "5.00", d),  # P-still is still listed: it has not posted
        _row("P-still", "5.00", d, status="PENDING"),
        _row("T-debit", "10.00", d),  # the pending credit is not a debit
    ]
    out, remembered = settle(rows, memory)
    assert {t.external_id: t.replaces_external_id for t in out if t.replaces_external_id} == {
        "T-exact": "P-tip"
    }
    assert remembered == {"P-still": [500, d.toordinal(), 0]}


async def test_each_kind_of_trouble_becomes_its_status(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user, guid = await connect(platform)
    for fail, cause in [
        (429, "RATE_LIMITED"),
        (503, "INSTITUTION_UNAVAILABLE"),
        ("garbage", "DATA_ERROR"),
    ]:
        bank.fail = fail
        assert await aggregate(platform, user, guid) in ("FAILED", "DEGRADED")
        assert (await last_attempt(platform, guid)).cause == cause
    bank.fail = None
    assert await aggregate(platform, user, guid) == "CONNECTED"


async def test_the_client_may_authenticate_in_the_form(
    platform: Platform, bank: FakeFdxBank
) -> None:
    bank.auth_method = "client_secret_post"
    user, guid = await connect(platform)
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"


def _ctx(options: dict[str, str], *, allow_private: bool) -> ConnectorContext:
    return ConnectorContext(
        member_guid="MBR-x",
        institution_code=CODE,
        today=dt.date(2026, 3, 2),
        options=options,
        http=connector_client("fdx", allow_private=allow_private),
        now=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize("option", ["issuer", "api_base"])
async def test_plain_http_is_refused_unless_the_address_is_private(
    bank: FakeFdxBank, option: str
) -> None:
    connector = FdxConnector()
    public = bank.options(**{option: "http://93.184.216.34/fdx"})
    ctx = _ctx(public, allow_private=True)
    with pytest.raises(ConnectorError) as caught:
        if option == "issuer":
            await connector.oauth_start(ctx, CALLBACK, "s", "c")
        else:
            ctx.secrets.update(access_token="at", access_expires_at=2**40)
            account = AccountData("acc-1", "Checking", "CHECKING", Decimal(0))
            await connector.owners(ctx, {}, account)
    assert caught.value.cause == Cause.INSTITUTION_ERROR
    assert "plain http to a public host" in caught.value.institution_message

    # At a private address, plain http goes as far as the platform lets it.
    private = _ctx(bank.options(), allow_private=False)
    with pytest.raises(ConnectorError) as caught:
        await connector.oauth_start(private, CALLBACK, "s", "c")
    assert caught.value.cause == Cause.INSTITUTION_UNAVAILABLE
    assert "private or local network address" in caught.value.institution_message
    started = await connector.oauth_start(
        _ctx(bank.options(), allow_private=True), CALLBACK, "s", "c"
    )
    assert started.authorize_url.startswith(bank.issuer + "/authorize?")


async def test_the_fdx_connector_passes_the_conformance_suite(
    bank: FakeFdxBank, tmp_path: Path
) -> None:
    scenario = Scenario.from_dict(
        {
            "connector": "fdx",
            "institution": {
                "code": CODE,
                "name": "Fake FDX Bank",
                "options": bank.options(),
                "oauth": True,
            },
            "connects": {"oauth": True},
            "never_logged": [CLIENT_SECRET],
        }
    )
    report = await run_conformance(scenario, workdir=tmp_path)
    assert report.ok, report.text()
    assert ("refresh_token", "ok") in bank.token_answers  # the second pull was 4 h later
