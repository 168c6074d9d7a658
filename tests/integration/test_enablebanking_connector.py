"""The ``enablebanking`` connector against the fake Enable Banking API over real
sockets: an OAuth member through the bank's consent page and the platform's callback
to CONNECTED with its IBAN accounts and paged transactions; a pending row booked
without a duplicate; PSD2's four unattended accesses a day (the fifth background
aggregation deferred, not failed); a new consent with new account uids onto the same
MX accounts; consent declined at the bank (DENIED), a replayed or bad ``state``
(refused, nothing changed), a consent revoked or ended at the API (DENIED with a
webhook, background aggregation stopped, renewed in place), an expired code and
``POST /sessions`` failing (not confirmed, never a 500); a deleted member's session
deleted at the API; a JWT the API refuses; and the conformance suite."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select, update

from openagg.connectors.base import ConnectorContext
from openagg.connectors.enablebanking import EnableBankingConnector
from openagg.db.models import Job, Member, WebhookEvent
from openagg.engine.scheduler import tick
from openagg.services import vault
from openagg.services.institutions import InstitutionInput, add_institution
from openagg.testing import Scenario, run_conformance
from tests.conftest import Platform, make_platform, settings_for
from tests.integration import fake_enablebanking
from tests.integration.api_helpers import local, member, new_user
from tests.integration.fake_enablebanking import (
    CURRENT_IBAN,
    SAVINGS_IBAN,
    FakeEnableBanking,
    new_key,
    pem,
)
from tests.integration.test_fdx_connector import (
    authorize,
    consent_redirect,
    last_attempt,
    sealed,
)
from tests.integration.test_simplefin_connector import aggregate, listed, transactions
from tests.integration.test_widget_urls import bearer, open_session

CODE = "fake_pankki"
# The fake bank's fixtures (its key, the bank on a loopback port), for these tests.
key, bank = fake_enablebanking.key, fake_enablebanking.bank
CALLBACK = "http://openagg.test/oauth/callback"


@pytest.fixture
async def platform(
    tmp_path: Path, bank: FakeEnableBanking, key: rsa.RSAPrivateKey
) -> AsyncIterator[Platform]:
    settings = settings_for(
        tmp_path, connector_allow_private_addresses=True, foreground_throttle_seconds=0
    )
    settings.ensure_data_dir()
    p, _ = await make_platform(settings)
    bank.clock = lambda: p.clock.now  # consents and the daily budget by the tests' clock
    await add_institution(
        p.rt,
        InstitutionInput(
            "enablebanking", CODE, "Fake Pankki", options=bank.options(key), oauth=True
        ),
    )
    yield p
    await p.http.aclose()
    await p.rt.db.dispose()


async def connect(platform: Platform, user: str | None = None) -> tuple[str, str]:
    user = user or await new_user(platform.http)
    body = {"member": {"institution_code": CODE, "is_oauth": True}}
    r = await platform.http.post(f"/users/{user}/members", json=body)
    assert r.status_code in (200, 202), r.text
    created: dict[str, Any] = r.json()["member"]
    assert created["connection_status"] == "PENDING" and created["oauth_window_uri"]
    done = await authorize(platform, created["oauth_window_uri"])
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    await platform.drain()
    return user, created["guid"]


async def background(platform: Platform, guid: str) -> None:
    """The scheduler's aggregation of the member, made due now."""
    async with platform.rt.db.write() as s:
        await s.execute(
            update(Member).where(Member.guid == guid).values(next_background_at=platform.clock.now)
        )
    assert (await tick(platform.rt)).background_enqueued == 1
    await platform.drain()


def transaction_pulls(bank: FakeEnableBanking, unattended: bool = True) -> int:
    """First pages of transaction requests (one per access) without Psu-Ip-Address."""
    return sum(
        1
        for r in bank.requests
        if r.path.endswith("/transactions")
        and "continuation_key" not in r.query
        and (r.psu_ip is None) == unattended
    )


async def test_an_oauth_member_consents_and_connects_with_paged_transactions(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    user, guid = await connect(platform)
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"
    # The consent asked for: at most 90 days although the bank allows 180.
    [asked] = bank.auths.values()
    until = dt.datetime.fromisoformat(asked["access"]["valid_until"])
    assert until - platform.clock.now == dt.timedelta(days=90)
    assert asked["redirect_url"] == CALLBACK
    assert not bank.jwt_rejections

    accounts = await listed(platform, f"/users/{user}/accounts", "accounts")
    by_id = {a["account_number"] or a["name"]: a for a in accounts}
    assert len(accounts) == 2, by_id
    types = sorted((a["type"], a["balance"], a["currency_code"]) for a in accounts)
    assert types == [("CHECKING", 3158.71, "EUR"), ("SAVINGS", 12201.15, "EUR")]
    stored = await sealed(platform, guid)
    assert set(stored["accounts"]) == {CURRENT_IBAN, SAVINGS_IBAN}

    txns = await transactions(platform, user)
    assert len(txns) == 9
    # Three pages of the current account's seven rows were read.
    pages = [r for r in bank.requests if r.path.endswith("/transactions")]
    assert sum(1 for r in pages if "continuation_key" in r.query) == 2
    card = [t for t in txns.values() if t["description"].endswith("CUR-P1")]
    assert [(t["status"], t["type"], t["amount"]) for t in card] == [("PENDING", "DEBIT", 23.4)]
    salary = next(t for t in txns.values() if t["description"].endswith("CUR-1"))
    assert (salary["type"], salary["amount"], salary["status"]) == ("CREDIT", 2450.0, "POSTED")

    # The next aggregation: the card payment booked, the same row, no duplicate.
    assert await aggregate(platform, user, guid) == "CONNECTED"
    after = await transactions(platform, user)
    assert set(after) == set(txns)
    card = [t for t in after.values() if t["description"].endswith("CUR-P1")]
    assert [t["status"] for t in card] == ["POSTED"]


async def test_a_fifth_background_aggregation_in_a_utc_day_is_deferred_without_an_error(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    user, guid = await connect(platform)
    # The first aggregation followed the end user's consent at the callback: it went
    # with their address (the test client's) and did not count.
    assert transaction_pulls(bank, unattended=False) == 2 and transaction_pulls(bank) == 0
    assert not bank.unattended
    platform.clock.now = dt.datetime(2026, 3, 3, 0, 30, tzinfo=dt.UTC)
    before, first = transaction_pulls(bank), len(bank.requests)
    for n in range(5):
        platform.clock.advance(hours=1)
        await background(platform, guid)
        shown = await member(platform.http, user, guid)
        assert shown["connection_status"] == "CONNECTED", (n, shown)
        assert (await last_attempt(platform, guid)).cause == "OK"
    day = platform.clock.now.date()
    assert bank.unattended[(CURRENT_IBAN, day)] == 4
    assert bank.unattended[(SAVINGS_IBAN, day)] == 4
    # Four accesses per account, none past them: the fifth sent no request at all.
    assert transaction_pulls(bank) - before == 8
    assert not any(r.psu_ip for r in bank.requests[first:])  # the scheduler's: no user
    # The deferred run kept every stored transaction, the pending one included.
    assert len(await transactions(platform, user)) == 9

    # The next UTC day the account is read again, from where it was left.
    platform.clock.now = dt.datetime(2026, 3, 4, 0, 30, tzinfo=dt.UTC)
    await background(platform, guid)
    assert bank.unattended[(CURRENT_IBAN, platform.clock.now.date())] == 1
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"


async def test_the_end_users_requests_carry_their_address_and_spend_no_budget(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    """Through the Connect widget: the consent, its first aggregation and a retry carry
    the end user's address (``Psu-Ip-Address``; here the test client's, 127.0.0.1), so
    the bank does not count them against the four unattended accesses, even on a day
    the background aggregations spent them all. The address is not kept once the job
    is over."""
    platform.clock.now = dt.datetime(2026, 3, 3, 0, 30, tzinfo=dt.UTC)
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    r = await platform.http.post(
        "/connect/api/members",
        json={"institution_code": CODE, "is_oauth": True},
        headers=bearer(boot),
    )
    assert r.status_code == 200, r.text
    created = r.json()["member"]
    guid = created["guid"]
    done = await authorize(platform, created["oauth_window_uri"])
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    await platform.drain()
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"
    consent = [r for r in bank.requests if r.path in ("/auth", "/sessions")]
    assert [(r.path, r.psu_ip) for r in consent] == [
        ("/auth", "127.0.0.1"),
        ("/sessions", "127.0.0.1"),
    ]
    reads = [r for r in bank.requests if r.path.startswith("/accounts/")]
    assert reads and {r.psu_ip for r in reads} == {"127.0.0.1"}
    assert not bank.unattended
    assert await job_options(platform, guid) == [{"include_transactions": True}]

    # The scheduler spends the day's four unattended accesses...
    for _ in range(4):
        platform.clock.advance(hours=1)
        await background(platform, guid)
    day = platform.clock.now.date()
    assert bank.unattended[(CURRENT_IBAN, day)] == 4
    # ... and the end user, back in the widget, still gets fresh transactions.
    pulls = transaction_pulls(bank, unattended=False)
    boot = await open_session(platform, user)  # hours later: a new widget session
    r = await platform.http.post(f"/connect/api/members/{guid}/retry", headers=bearer(boot))
    assert r.status_code in (200, 202), r.text
    await platform.drain()
    assert (await last_attempt(platform, guid)).cause == "OK"
    assert transaction_pulls(bank, unattended=False) - pulls == 2
    assert bank.unattended[(CURRENT_IBAN, day)] == 4
    assert all("end_user_ip" not in o for o in await job_options(platform, guid))


async def job_options(platform: Platform, guid: str) -> list[dict[str, Any]]:
    async with platform.rt.db.read() as s:
        rows = await s.scalars(
            select(Job.options)
            .join(Member, Member.id == Job.member_id)
            .where(Member.guid == guid, Job.trigger != "background")
            .order_by(Job.id)
        )
        return [dict(o) for o in rows]


async def test_an_ended_consent_asks_the_user_to_reconnect(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    user, guid = await connect(platform)
    bank.end_sessions()  # revoked at the bank, or expired
    assert await aggregate(platform, user, guid) == "DENIED"
    attempt = await last_attempt(platform, guid)
    assert attempt.cause == "BAD_CREDENTIALS"
    assert "must reconnect" in (attempt.institution_message or "")


async def pending_member(platform: Platform) -> tuple[str, dict[str, Any]]:
    user = await new_user(platform.http)
    body = {"member": {"institution_code": CODE, "is_oauth": True}}
    r = await platform.http.post(f"/users/{user}/members", json=body)
    assert r.status_code in (200, 202), r.text
    created: dict[str, Any] = r.json()["member"]
    return user, created


async def fresh_link(platform: Platform, user: str, guid: str) -> str:
    r = await platform.http.get(f"/users/{user}/members/{guid}/oauth_window_uri")
    assert r.status_code == 200, r.text
    uri: str = r.json()["member"]["oauth_window_uri"]
    return uri


def session_requests(bank: FakeEnableBanking) -> int:
    return sum(1 for r in bank.requests if r.path == "/sessions")


async def test_declined_consent_ends_denied_and_connects_nothing(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    user, created = await pending_member(platform)
    guid = created["guid"]
    callback = await consent_redirect(platform, created["oauth_window_uri"], decision="deny")
    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]
    r = await platform.http.get(local(callback))
    assert r.status_code == 400 and "Access was not granted at Fake Pankki" in r.text, r.text
    # The page tells the widget that opened it: MX's oauthComplete/error, DENIED.
    assert '"type":"oauthComplete/error"' in r.text and '"error_reason":"DENIED"' in r.text
    await platform.drain()
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "DENIED" and shown["oauth_window_uri"] is None
    message = shown["connection_status_message"]
    assert "Access was not granted at Fake Pankki" in message and "must reconnect" in message
    assert await sealed(platform, guid) == {}
    assert session_requests(bank) == 0 and not bank.sessions
    # The answer replayed: its step is over, nothing changes.
    again = await platform.http.get(local(callback))
    assert again.status_code == 404 and "not valid" in again.text
    assert (await member(platform.http, user, guid))["connection_status"] == "DENIED"
    # A fresh link, and the end user allows access this time: the same member connects.
    done = await authorize(platform, await fresh_link(platform, user, guid))
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    assert '"type":"oauthComplete/success"' in done.text and guid in done.text
    await platform.drain()
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"
    r = await platform.http.get(f"/users/{user}/members")
    assert [m["guid"] for m in r.json()["members"]] == [guid]


async def test_a_replayed_or_bad_state_is_refused_and_changes_nothing(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    user, created = await pending_member(platform)
    guid = created["guid"]
    callback = await consent_redirect(platform, created["oauth_window_uri"])
    assert (await platform.http.get(local(callback))).status_code == 200
    await platform.drain()
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"
    before, sessions = await sealed(platform, guid), session_requests(bank)
    parts = urlsplit(callback)
    code = parse_qs(parts.query)["code"][0]
    for query in (
        parts.query,  # the same answer again
        f"code={code}&state=not-a-step",
        f"code={code}",
        "state=",
        f"error=access_denied&state={parse_qs(parts.query)['state'][0]}",
    ):
        again = await platform.http.get(f"{parts.path}?{query}")
        assert 400 <= again.status_code < 500, (query, again.status_code)
        assert "not valid" in again.text, query
        assert '"error_reason":"SESSION_EXPIRED"' in again.text
    await platform.drain()
    assert session_requests(bank) == sessions  # no code reached the API again
    assert await sealed(platform, guid) == before
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "CONNECTED" and shown["oauth_window_uri"] is None


async def test_a_revoked_consent_is_denied_with_a_webhook_and_renewed_in_place(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    r = await platform.http.post(
        "/webhook_endpoints", json={"webhook_endpoint": {"url": "https://app.example/hooks"}}
    )
    assert r.status_code in (200, 201), r.text
    user, guid = await connect(platform)
    accounts = {a["guid"] for a in await listed(platform, f"/users/{user}/accounts", "accounts")}
    txns = await transactions(platform, user)
    bank.end_sessions()  # the end user revoked the consent at the bank
    platform.clock.advance(hours=4)
    await background(platform, guid)
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "DENIED"
    assert "must reconnect" in shown["connection_status_message"]
    async with platform.rt.db.read() as s:
        rows = await s.scalars(
            select(WebhookEvent).where(WebhookEvent.member_guid == guid).order_by(WebhookEvent.id)
        )
        status_events = [e.payload for e in rows if e.event_type == "CONNECTION_STATUS"]
    assert [(p["connection_status"], p["action"]) for p in status_events] == [("DENIED", "CHANGED")]
    assert "must reconnect" in status_events[0]["connection_status_message"]

    # Background aggregation leaves a DENIED member alone: the API hears nothing more.
    asked = len(bank.requests)
    for _ in range(3):
        platform.clock.advance(hours=24)
        await tick(platform.rt)
        await platform.drain()
    assert len(bank.requests) == asked
    assert (await member(platform.http, user, guid))["connection_status"] == "DENIED"

    # Renewed through a fresh link (the bank gives the accounts new uids): the same
    # member, the same accounts, each transaction once.
    bank.new_uids = True
    done = await authorize(platform, await fresh_link(platform, user, guid))
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    await platform.drain()
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "CONNECTED", shown
    after = await listed(platform, f"/users/{user}/accounts", "accounts")
    assert {a["guid"] for a in after} == accounts
    assert set(await transactions(platform, user)) == set(txns)
    r = await platform.http.get(f"/users/{user}/members")
    assert [m["guid"] for m in r.json()["members"]] == [guid]


async def test_an_expired_code_is_not_confirmed_and_the_link_works_again(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    user, created = await pending_member(platform)
    guid = created["guid"]
    callback = await consent_redirect(platform, created["oauth_window_uri"])
    platform.clock.advance(seconds=bank.code_seconds + 1)
    r = await platform.http.get(local(callback))
    assert r.status_code == 400 and "did not confirm access" in r.text, r.text
    assert '"error_reason":"PROVIDER_ERROR"' in r.text
    assert session_requests(bank) == 1 and not bank.sessions
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "PENDING"
    assert shown["connection_status_message"] == (
        "Fake Pankki did not confirm access; please try again."
    )
    # The same link works again.
    done = await authorize(platform, created["oauth_window_uri"])
    assert done.status_code == 200 and "Access granted" in done.text, done.text


@pytest.mark.parametrize("fail", [500, 503, 401, 400, "garbage"])
async def test_the_sessions_endpoint_failing_is_not_confirmed_never_a_500(
    platform: Platform, bank: FakeEnableBanking, fail: int | str
) -> None:
    user, created = await pending_member(platform)
    guid = created["guid"]
    callback = await consent_redirect(platform, created["oauth_window_uri"])
    bank.fail = fail  # POST /sessions answers this
    r = await platform.http.get(local(callback))
    assert r.status_code == 400 and "did not confirm access" in r.text, r.text
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "PENDING" and shown["oauth_window_uri"]
    assert await sealed(platform, guid) == {}
    bank.fail = None
    done = await authorize(platform, created["oauth_window_uri"])
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    await platform.drain()
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"


async def test_a_new_consent_with_new_account_uids_maps_onto_the_same_mx_accounts(
    platform: Platform, bank: FakeEnableBanking, key: rsa.RSAPrivateKey
) -> None:
    """The connector's part of a renewal, in-process: a second consent at the bank,
    finished by the connector for the same member, its session (new uids for the same
    IBANs) sealed as the platform would, then an aggregation. The whole renewal through
    a fresh oauth_window_uri is in test_enablebanking_sdk.py."""
    user, guid = await connect(platform)
    accounts = {a["guid"] for a in await listed(platform, f"/users/{user}/accounts", "accounts")}
    txns = await transactions(platform, user)
    bank.new_uids = True
    connector = EnableBankingConnector()
    secrets = await sealed(platform, guid)
    first_uids = {u for a in secrets["accounts"].values() for u in a}
    ctx = ConnectorContext(
        member_guid=guid,
        institution_code=CODE,
        today=platform.clock.now.date(),
        now=platform.clock.now,
        options=bank.options(key),
        secrets=secrets,
        http=platform.rt.http_for("enablebanking"),
    )
    start = await connector.oauth_start(ctx, CALLBACK, "renewal-state", "unused")
    async with httpx.AsyncClient() as browser:
        page = await browser.get(start.authorize_url)
        assert page.status_code == 200 and "Allow" in page.text
        auth = start.authorize_url.rsplit("/", 1)[-1]
        back = await browser.post(page.url, data={"authorization": auth, "decision": "allow"})
    answer = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}
    assert answer["state"] == "renewal-state"
    await connector.oauth_finish(ctx, answer, CALLBACK, "unused")
    new_uids = {u for a in ctx.secrets["accounts"].values() for u in a}
    assert first_uids.isdisjoint(new_uids) and set(ctx.secrets["accounts"]) == {
        CURRENT_IBAN,
        SAVINGS_IBAN,
    }
    async with platform.rt.db.write() as s:
        row = await s.scalar(select(Member).where(Member.guid == guid))
        assert row is not None
        vault.seal_secrets(platform.rt, row, ctx.secrets)

    assert await aggregate(platform, user, guid) == "CONNECTED"
    after = await listed(platform, f"/users/{user}/accounts", "accounts")
    assert {a["guid"] for a in after} == accounts
    assert set(await transactions(platform, user)) == set(txns)
    # The new uids were the ones read.
    read = {r.path.split("/")[2] for r in bank.requests if r.path.endswith("/balances")}
    assert new_uids <= read


async def test_deleting_a_member_deletes_its_session_at_the_api(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    user, guid = await connect(platform)
    session_id = (await sealed(platform, guid))["session_id"]
    _, other = await connect(platform, user)
    # The second consent ended at the bank already: its session needs nothing more.
    bank.sessions[(await sealed(platform, other))["session_id"]].ended = True

    assert (await platform.http.delete(f"/users/{user}/members/{guid}")).status_code == 204
    assert (await platform.http.delete(f"/users/{user}/members/{other}")).status_code == 204
    assert bank.deleted_sessions == []  # the API never calls the provider
    await platform.drain()
    assert bank.deleted_sessions == [session_id]
    async with platform.rt.db.read() as s:
        jobs = list(await s.scalars(select(Job).where(Job.kind == "revoke")))
    assert sorted((j.state, j.secrets_enc) for j in jobs) == [("succeeded", None)] * 2


async def test_a_jwt_the_api_refuses_ends_failed_with_a_clear_message(
    platform: Platform, bank: FakeEnableBanking
) -> None:
    user, guid = await connect(platform)
    # The operator's key no longer matches the application's registered one.
    bank.public_key = new_key().public_key()
    assert await aggregate(platform, user, guid) == "FAILED"
    attempt = await last_attempt(platform, guid)
    assert attempt.cause == "INSTITUTION_ERROR"
    assert "private_key_secret" in (attempt.institution_message or "")
    assert bank.jwt_rejections


@pytest.mark.parametrize(
    ("fail", "cause"),
    [(429, "RATE_LIMITED"), (503, "INSTITUTION_UNAVAILABLE"), ("garbage", "DATA_ERROR")],
)
async def test_troubles_at_the_api_end_in_their_causes(
    platform: Platform, bank: FakeEnableBanking, fail: int | str, cause: str
) -> None:
    user, guid = await connect(platform)
    bank.fail = fail
    await aggregate(platform, user, guid)
    assert (await last_attempt(platform, guid)).cause == cause


async def test_the_enablebanking_connector_passes_the_conformance_suite(
    bank: FakeEnableBanking, key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    scenario = Scenario.from_dict(
        {
            "connector": "enablebanking",
            "institution": {
                "code": CODE,
                "name": "Fake Pankki",
                "options": bank.options(key),
                "oauth": True,
            },
            "connects": {"oauth": True},
            "never_logged": [pem(key).splitlines()[1]],
        }
    )
    report = await run_conformance(scenario, workdir=tmp_path)
    assert report.ok, report.text()
