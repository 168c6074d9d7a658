"""OAuth consents over time, at the fake FDX bank: a member renewed in place through
its ``oauth_window_uri`` (connected, or DENIED after a revocation) with no duplicate
accounts or transactions; revocation's CONNECTION_STATUS webhook; a consent's end
(``consent_expires_at``), the CONSENT webhook before it, and DENIED once it has
passed without asking the bank."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from openagg.db.models import Member, WebhookEvent
from openagg.engine.scheduler import tick
from tests.conftest import Platform
from tests.integration import test_fdx_connector as fdx
from tests.integration.api_helpers import local, member
from tests.integration.fake_fdx_bank import FakeFdxBank
from tests.integration.test_fdx_connector import authorize, connect, sealed
from tests.integration.test_simplefin_connector import aggregate, listed, transactions

DAY = 24.0  # hours
# The FDX tests' fixtures: the fake bank, and a platform with it as an institution.
bank, platform = fdx.bank, fdx.platform


async def add_endpoint(platform: Platform) -> None:
    body = {"webhook_endpoint": {"url": "https://app.example/hooks"}}
    r = await platform.http.post("/webhook_endpoints", json=body)
    assert r.status_code in (200, 201), r.text


async def events(platform: Platform, guid: str) -> list[tuple[str, str, dict[str, Any]]]:
    async with platform.rt.db.read() as s:
        rows = await s.scalars(
            select(WebhookEvent).where(WebhookEvent.member_guid == guid).order_by(WebhookEvent.id)
        )
        return [(e.event_type, e.action, e.payload) for e in rows]


async def fresh_link(platform: Platform, user: str, guid: str) -> str:
    r = await platform.http.get(f"/users/{user}/members/{guid}/oauth_window_uri")
    assert r.status_code == 200, r.text
    uri: str = r.json()["member"]["oauth_window_uri"]
    assert uri
    return uri


async def snapshot(platform: Platform, user: str) -> tuple[list[str], dict[str, Any]]:
    accounts = await listed(platform, f"/users/{user}/accounts", "accounts")
    return sorted(a["guid"] for a in accounts), await transactions(platform, user)


async def test_a_connected_member_renews_its_consent_in_place(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user, guid = await connect(platform)
    accounts, txns = await snapshot(platform, user)
    before = await sealed(platform, guid)
    link = await fresh_link(platform, user, guid)
    # Until it is used, asking again gives the same link.
    assert await fresh_link(platform, user, guid) == link
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "CONNECTED" and shown["oauth_window_uri"] == link

    done = await authorize(platform, link)
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    assert (await member(platform.http, user, guid))["connection_status"] == "UPDATED"
    await platform.drain()
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "CONNECTED" and shown["oauth_window_uri"] is None
    after = await sealed(platform, guid)
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] != before["access_token"]
    # Same member, same accounts, the same transactions once each.
    r = await platform.http.get(f"/users/{user}/members")
    assert [m["guid"] for m in r.json()["members"]] == [guid]
    again_accounts, again_txns = await snapshot(platform, user)
    assert again_accounts == accounts
    assert set(again_txns) == (set(txns) - {"CHK-P01"}) | {"CHK-T08"}  # the pending one posted
    # The link worked once.
    assert (await platform.http.get(local(link))).status_code == 404


async def test_a_revoked_consent_is_denied_with_a_webhook_and_renewed_to_connected(
    platform: Platform, bank: FakeFdxBank
) -> None:
    await add_endpoint(platform)
    user, guid = await connect(platform)
    accounts, txns = await snapshot(platform, user)
    bank.revoke()
    assert await aggregate(platform, user, guid, hours=2) == "DENIED"
    status_events = [p for t, _, p in await events(platform, guid) if t == "CONNECTION_STATUS"]
    assert [(p["connection_status"], p["action"]) for p in status_events] == [("DENIED", "CHANGED")]
    assert "must reconnect" in status_events[0]["connection_status_message"]

    # Background aggregation leaves a DENIED member alone.
    platform.clock.advance(hours=48)
    await tick(platform.rt)
    await platform.drain()
    assert (await member(platform.http, user, guid))["connection_status"] == "DENIED"

    done = await authorize(platform, await fresh_link(platform, user, guid))
    assert done.status_code == 200 and "Access granted" in done.text, done.text
    await platform.drain()
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "CONNECTED"
    assert shown["connection_status_message"] == "Connected."
    again_accounts, again_txns = await snapshot(platform, user)
    assert again_accounts == accounts
    assert set(again_txns) == (set(txns) - {"CHK-P01"}) | {"CHK-T08"}


async def test_a_consent_that_ends(platform: Platform, bank: FakeFdxBank) -> None:
    bank.consent_seconds = 30 * 86400
    # The bank's rows keep their dates while weeks pass (the fake dates them from its
    # clock otherwise, and a stored row whose date moves forward from before the window
    # is not matched by engine/ingest.py, which looks from the earliest pulled date).
    bank.data_day = platform.clock.now.date()
    await add_endpoint(platform)
    user, guid = await connect(platform)
    shown = await member(platform.http, user, guid)
    ends = platform.clock.now.replace(microsecond=0).timestamp() + 30 * 86400
    assert shown["consent_expires_at"] is not None
    async with platform.rt.db.read() as s:
        row = await s.scalar(select(Member).where(Member.guid == guid))
    assert row is not None and row.consent_expires_at is not None
    assert int(row.consent_expires_at.timestamp()) == int(ends)
    assert shown["consent_expires_at"] == row.consent_expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await sealed(platform, guid))[
        "consent_expires_at"
    ] == row.consent_expires_at.isoformat()

    def consent_events(found: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
        return [p for t, _, p in found if t == "CONSENT"]

    # Eight days before the end: nothing yet.
    platform.clock.advance(hours=22 * DAY)
    await tick(platform.rt)
    assert consent_events(await events(platform, guid)) == []
    # Within the seven days: the client is told, once.
    platform.clock.advance(hours=1.5 * DAY)
    await tick(platform.rt)
    await tick(platform.rt)
    told = consent_events(await events(platform, guid))
    assert len(told) == 1
    assert told[0] == {
        "action": "EXPIRING",
        "connection_status": "CONNECTED",
        "connection_status_id": 6,
        "consent_expires_at": int(ends),
        "consent_expires_on": told[0]["consent_expires_on"],
        "member_guid": guid,
        "type": "CONSENT",
        "user_guid": user,
    }
    await platform.drain()

    # Past the end: DENIED before the bank is asked anything.
    platform.clock.advance(hours=7 * DAY)
    asked = (len(bank.token_answers), len(bank.api_requests()))
    r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert r.status_code == 202, r.text
    await platform.drain()
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "DENIED"
    assert "ended on" in shown["connection_status_message"]
    assert "must reconnect" in shown["connection_status_message"]
    assert (len(bank.token_answers), len(bank.api_requests())) == asked
    assert [
        p["connection_status"]
        for t, _, p in await events(platform, guid)
        if t == "CONNECTION_STATUS"
    ] == ["DENIED"]

    # Renewed: a new end, announced again when it nears.
    done = await authorize(platform, await fresh_link(platform, user, guid))
    assert done.status_code == 200, done.text
    await platform.drain()
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "CONNECTED"
    async with platform.rt.db.read() as s:
        row = await s.scalar(select(Member).where(Member.guid == guid))
    assert row is not None and row.consent_expires_at is not None
    assert row.consent_expires_at > platform.clock.now and row.consent_renewal_notified_at is None


async def test_no_consent_end_when_the_bank_does_not_say(
    platform: Platform, bank: FakeFdxBank
) -> None:
    bank.consent_seconds = None
    user, guid = await connect(platform)
    assert (await member(platform.http, user, guid))["consent_expires_at"] is None
    assert "consent_expires_at" not in await sealed(platform, guid)
