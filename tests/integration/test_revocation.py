"""Deleting a member (or its user) ends its access at the provider: the delete
enqueues a revocation job carrying the member's sealed secrets, the worker runs the
connector's ``revoke`` (the ``fdx`` connector: RFC 7009 at the fake FDX bank over a
real socket), retries while the provider is down, then gives up; the secrets are
erased whenever the job ends, and the member never comes back."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from openagg.db.models import Attempt, Job, Member, WebhookEvent
from openagg.engine.scheduler import recover_lost_jobs
from openagg.queue import REVOKE, claim, default_caps
from openagg.services import vault
from tests.conftest import Platform
from tests.integration import test_fdx_connector as fdx
from tests.integration.api_helpers import create_member, local, member, new_user
from tests.integration.fake_fdx_bank import CLIENT_ID, CLIENT_SECRET, FakeFdxBank
from tests.integration.test_fdx_connector import authorize, connect, create_oauth_member, sealed

# The FDX tests' fixtures: the fake bank, and a platform with its institution.
bank = fdx.bank
platform = fdx.platform


async def revocation_jobs(platform: Platform) -> list[Job]:
    async with platform.rt.db.read() as s:
        return list(await s.scalars(select(Job).where(Job.kind == REVOKE).order_by(Job.id)))


async def sealed_bytes(platform: Platform, guid: str) -> bytes:
    async with platform.rt.db.read() as s:
        found = await s.scalar(select(Member.secrets_enc).where(Member.guid == guid))
    assert found is not None
    return found


async def refresh_at_bank(bank: FakeFdxBank, refresh_token: str) -> httpx.Response:
    """The client asking the bank for new tokens with a refresh token, as OpenAgg does."""
    async with httpx.AsyncClient() as c:
        return await c.post(
            bank.issuer + "/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )


async def events_of(platform: Platform, guid: str) -> list[tuple[str, str]]:
    async with platform.rt.db.read() as s:
        rows = await s.execute(
            select(WebhookEvent.event_type, WebhookEvent.action)
            .where(WebhookEvent.member_guid == guid)
            .order_by(WebhookEvent.id)
        )
        return [(t, a) for t, a in rows]


def revocation_requests(bank: FakeFdxBank) -> int:
    return sum(1 for r in bank.requests if r.path == "/revoke")


async def test_deleting_an_fdx_member_revokes_its_tokens_at_the_bank(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user, guid = await connect(platform)
    tokens = await sealed(platform, guid)
    secrets_enc = await sealed_bytes(platform, guid)
    # A job of the member's own is queued when it is deleted: it goes with the member.
    assert (await platform.http.post(f"/users/{user}/members/{guid}/aggregate")).status_code in (
        200,
        202,
    )

    r = await platform.http.delete(f"/users/{user}/members/{guid}")
    assert r.status_code == 204, r.text
    assert revocation_requests(bank) == 0  # the API never calls the provider
    assert (await platform.http.get(f"/users/{user}/members/{guid}")).status_code == 404
    listed = await platform.http.get(f"/users/{user}/members")
    assert listed.json()["members"] == []
    [job] = await revocation_jobs(platform)
    assert (job.state, job.member_id, job.active_member_id) == ("queued", None, None)
    # The member's sealed secrets, as the member held them: nothing in the clear.
    assert job.secrets_enc == secrets_enc
    assert job.options == {
        "member_guid": guid,
        "institution_id": job.options["institution_id"],
        "institution_code": "fake_fdx",
    }
    async with platform.rt.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Member)) == 0
        assert await s.scalar(select(func.count()).select_from(Job).where(Job.kind != REVOKE)) == 0
        attempts_before = await s.scalar(select(func.count()).select_from(Attempt))
    events = await events_of(platform, guid)

    await platform.drain()
    assert bank.revoked == [
        (tokens["refresh_token"], "refresh_token"),
        (tokens["access_token"], "access_token"),
    ]
    refused = await refresh_at_bank(bank, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    async with httpx.AsyncClient() as c:
        api = await c.get(
            bank.api_base + "/accounts",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    assert api.status_code == 401
    [job] = await revocation_jobs(platform)
    assert (job.state, job.secrets_enc, job.attempts) == ("succeeded", None, 1)
    # Nothing about the member reappears: no webhook, no attempt, no member.
    assert await events_of(platform, guid) == events
    async with platform.rt.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Attempt)) == attempts_before
        assert await s.scalar(select(func.count()).select_from(Member)) == 0
    assert (await platform.http.get(f"/users/{user}/members/{guid}")).status_code == 404


async def test_deleting_a_user_revokes_each_of_its_fdx_members(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user = await new_user(platform.http)
    guids = []
    for _ in range(2):
        created = await create_oauth_member(platform, user)
        done = await authorize(platform, created["oauth_window_uri"])
        assert done.status_code == 200, done.text
        guids.append(created["guid"])
    await platform.drain()
    refresh_tokens = [(await sealed(platform, g))["refresh_token"] for g in guids]
    assert len(set(refresh_tokens)) == 2

    r = await platform.http.delete(f"/users/{user}")
    assert r.status_code == 204, r.text
    assert revocation_requests(bank) == 0
    jobs = await revocation_jobs(platform)
    assert sorted(j.options["member_guid"] for j in jobs) == sorted(guids)

    await platform.drain()
    revoked = {token for token, hint in bank.revoked if hint == "refresh_token"}
    assert revoked == set(refresh_tokens)
    for token in refresh_tokens:
        assert (await refresh_at_bank(bank, token)).status_code == 400
    assert all(g.revoked for g in bank.grants)
    jobs = await revocation_jobs(platform)
    assert [(j.state, j.secrets_enc) for j in jobs] == [("succeeded", None)] * 2


async def test_a_provider_down_is_retried_then_given_up_with_the_secrets_erased(
    platform: Platform, bank: FakeFdxBank, caplog: pytest.LogCaptureFixture
) -> None:
    user, guid = await connect(platform)
    tokens = await sealed(platform, guid)
    bank.revocation_fail = 503

    with caplog.at_level(logging.INFO):
        r = await platform.http.delete(f"/users/{user}/members/{guid}")
        assert r.status_code == 204, r.text  # the provider's state is no concern of the delete
        waits = []
        while True:
            await platform.drain()
            [job] = await revocation_jobs(platform)
            if job.state != "queued":
                break
            assert job.secrets_enc is not None  # still sealed while it is retried
            assert job.last_error is not None and "INSTITUTION_UNAVAILABLE" in job.last_error
            waits.append((job.run_after - platform.clock.now).total_seconds())
            platform.clock.now = job.run_after
    most = platform.rt.settings.revocation_max_attempts
    assert waits == [60, 120, 240, 480, 960][: most - 1]  # doubling backoff
    assert revocation_requests(bank) == most
    assert (job.state, job.attempts, job.secrets_enc) == ("failed", most, None)
    assert bank.revoked == [] and not any(g.revoked for g in bank.grants)
    gave_up = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert len(gave_up) == 1
    assert guid in gave_up[0] and "fake_fdx" in gave_up[0]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert tokens["refresh_token"] not in logged and tokens["access_token"] not in logged

    # Nothing else broke: another member connects and aggregates as before.
    bank.revocation_fail = None
    other_user, other = await connect(platform)
    assert (await member(platform.http, other_user, other))["connection_status"] == "CONNECTED"
    assert len(await revocation_jobs(platform)) == 1


async def test_a_provider_without_a_revocation_endpoint_gets_no_request(
    platform: Platform, bank: FakeFdxBank
) -> None:
    bank.revocation_endpoint = False
    user, guid = await connect(platform)
    assert (await platform.http.delete(f"/users/{user}/members/{guid}")).status_code == 204
    await platform.drain()
    assert revocation_requests(bank) == 0
    [job] = await revocation_jobs(platform)
    assert (job.state, job.secrets_enc) == ("succeeded", None)


async def test_a_connector_without_revoke_gets_no_revocation_job(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user = await new_user(platform.http)
    created = await create_member(platform.http, user, "password", expect=202)
    guid = created.json()["member"]["guid"]
    await platform.drain()
    async with platform.rt.db.write() as s:  # as if the sandbox had earned a token
        row = await s.scalar(select(Member).where(Member.guid == guid))
        assert row is not None
        vault.seal_secrets(platform.rt, row, {"token": "sandbox-token-0001"})
    assert (await platform.http.delete(f"/users/{user}/members/{guid}")).status_code == 204
    assert await revocation_jobs(platform) == []
    # A pending OAuth member (no secrets yet) at a connector that revokes: none either.
    pending: dict[str, Any] = await create_oauth_member(platform, user)
    assert local(pending["oauth_window_uri"])
    r = await platform.http.delete(f"/users/{user}/members/{pending['guid']}")
    assert r.status_code == 204
    assert (await platform.http.delete(f"/users/{user}")).status_code == 204
    assert await revocation_jobs(platform) == []


async def test_a_revocation_is_claimed_while_an_institution_is_at_its_concurrency_cap(
    platform: Platform, bank: FakeFdxBank
) -> None:
    platform.rt.settings.institution_max_concurrent = 1
    user, guid = await connect(platform)
    tokens = await sealed(platform, guid)
    # The sandbox bank's one session is taken by a job another worker runs.
    other = await new_user(platform.http)
    await create_member(platform.http, other, "password", expect=202)
    taken = await claim(
        platform.rt.db,
        worker_id="elsewhere",
        limit=1,
        now=platform.clock.now,
        lease=dt.timedelta(minutes=5),
        defaults=default_caps(platform.rt.settings),
    )
    assert len(taken) == 1

    assert (await platform.http.delete(f"/users/{user}/members/{guid}")).status_code == 204
    await platform.drain()
    assert (tokens["refresh_token"], "refresh_token") in bank.revoked
    [job] = await revocation_jobs(platform)
    assert (job.state, job.secrets_enc) == ("succeeded", None)


async def test_a_revocation_past_the_job_deadline_is_cancelled_and_retried(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user, guid = await connect(platform)
    tokens = await sealed(platform, guid)
    platform.rt.settings.job_deadline_seconds = 0.3
    bank.revocation_delay = 2.0

    assert (await platform.http.delete(f"/users/{user}/members/{guid}")).status_code == 204
    await platform.drain()
    [job] = await revocation_jobs(platform)
    assert job.state == "queued" and job.last_error is not None
    assert job.last_error.startswith("TIMEOUT") and job.secrets_enc is not None

    bank.revocation_delay = 0
    platform.clock.now = job.run_after
    await platform.drain()
    assert (tokens["refresh_token"], "refresh_token") in bank.revoked
    [job] = await revocation_jobs(platform)
    assert (job.state, job.attempts, job.secrets_enc) == ("succeeded", 2, None)


async def test_a_revocation_whose_worker_is_lost_is_taken_over_or_given_up(
    platform: Platform, bank: FakeFdxBank
) -> None:
    lease = dt.timedelta(seconds=platform.rt.settings.lease_seconds)

    async def lose_it() -> None:
        """Claimed by a worker that dies: its lease runs out, the scheduler sees it."""
        taken = await claim(
            platform.rt.db,
            worker_id="lost",
            limit=10,
            now=platform.clock.now,
            lease=lease,
            defaults=default_caps(platform.rt.settings),
        )
        assert len(taken) == 1
        platform.clock.advance(seconds=lease.total_seconds() + 1)
        assert await recover_lost_jobs(platform.rt) == 1

    user, guid = await connect(platform)
    tokens = await sealed(platform, guid)
    assert (await platform.http.delete(f"/users/{user}/members/{guid}")).status_code == 204
    await lose_it()
    [job] = await revocation_jobs(platform)
    assert (job.state, job.attempts) == ("queued", 1) and job.secrets_enc is not None
    await platform.drain()  # another worker takes it over
    assert (tokens["refresh_token"], "refresh_token") in bank.revoked
    [job] = await revocation_jobs(platform)
    assert (job.state, job.secrets_enc) == ("succeeded", None)

    user, guid = await connect(platform)
    assert (await platform.http.delete(f"/users/{user}/members/{guid}")).status_code == 204
    for _ in range(platform.rt.settings.revocation_max_attempts):
        await lose_it()
    job = (await revocation_jobs(platform))[-1]
    assert (job.state, job.secrets_enc) == ("failed", None)
    assert job.last_error == "worker lost too many times"


async def test_a_token_rotated_by_a_job_running_while_its_member_is_deleted_is_revoked_too(
    platform: Platform, bank: FakeFdxBank
) -> None:
    user, guid = await connect(platform)
    before = await sealed(platform, guid)
    platform.clock.advance(seconds=bank.access_seconds)  # the next job refreshes first
    bank.api_delay = 0.3
    r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert r.status_code == 202, r.text
    refreshed = bank.token_answers.count(("refresh_token", "ok"))
    running = asyncio.create_task(platform.drain())
    async with asyncio.timeout(10):
        while bank.token_answers.count(("refresh_token", "ok")) == refreshed:
            await asyncio.sleep(0.01)
    [grant] = bank.grants
    rotated = grant.refresh_token
    assert rotated is not None and rotated != before["refresh_token"]

    # Deleted while its job reads the bank with the new tokens, not yet sealed.
    assert (await platform.http.delete(f"/users/{user}/members/{guid}")).status_code == 204
    bank.api_delay = 0
    await running
    await platform.drain()
    revoked = {token for token, hint in bank.revoked if hint == "refresh_token"}
    assert {before["refresh_token"], rotated} <= revoked
    assert grant.revoked
    assert (await refresh_at_bank(bank, rotated)).status_code == 400
    jobs = await revocation_jobs(platform)
    assert [(j.state, j.secrets_enc) for j in jobs] == [("succeeded", None)] * 2
    async with platform.rt.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Member)) == 0
