"""MX's aggregation methods: automatic, foreground (202/409/422 and the 3-hour
throttle) and background (schedule, opt-outs, pushed out by foreground runs)."""

from __future__ import annotations

from sqlalchemy import func, select

from openagg.db.models import Attempt, Job, Member
from openagg.domain.statuses import Status
from openagg.engine.scheduler import tick
from openagg.services import admin
from openagg.services.clients import set_background_default
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, member, new_user
from tests.integration.test_connection_statuses import aggregate, connect


async def jobs(p: Platform, **where: str) -> list[Job]:
    async with p.rt.db.read() as s:
        q = select(Job)
        for key, value in where.items():
            q = q.where(getattr(Job, key) == value)
        return list(await s.scalars(q.order_by(Job.id)))


# --- automatic ------------------------------------------------------------------


async def test_create_starts_an_aggregation_unless_skipped(platform: Platform) -> None:
    user = await new_user(platform.http)
    started = await create_member(platform.http, user, "password", expect=202)
    skipped = await create_member(platform.http, user, "other", skip_aggregation=True, expect=200)
    assert started.json()["member"]["is_being_aggregated"] is True
    assert skipped.json()["member"]["is_being_aggregated"] is False
    assert [j.trigger for j in await jobs(platform)] == ["automatic"]


async def test_credential_update_starts_an_aggregation(platform: Platform) -> None:
    user, guid = await connect(platform, "INVALID")
    from tests.integration.test_connection_statuses import update_password

    await update_password(platform, user, guid, "password", "mxbank")
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"
    assert [j.trigger for j in await jobs(platform)] == ["automatic", "automatic"]


async def test_update_without_credentials_starts_nothing(platform: Platform) -> None:
    user, guid = await connect(platform, "password")
    r = await platform.http.put(f"/users/{user}/members/{guid}", json={"member": {"metadata": "x"}})
    assert r.status_code == 200 and r.json()["member"]["metadata"] == "x"
    assert len(await jobs(platform)) == 1


# --- foreground -----------------------------------------------------------------


async def test_throttle_within_three_hours_is_a_202_no_op(platform: Platform) -> None:
    user, guid = await connect(platform, "pass_good", code="sandbox_bank")
    before = await member(platform.http, user, guid)
    platform.clock.advance(hours=2, minutes=59)
    r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert r.status_code == 202
    assert r.json()["member"] == before  # unchanged, is_being_aggregated false
    assert len(await jobs(platform)) == 1
    platform.clock.advance(minutes=2)
    body = await aggregate(platform, user, guid)
    assert body["member"]["is_being_aggregated"] is True
    assert len(await jobs(platform)) == 2


async def test_mxbank_is_never_throttled(platform: Platform) -> None:
    user, guid = await connect(platform, "password")
    body = await aggregate(platform, user, guid)
    assert body["member"]["is_being_aggregated"] is True


async def test_throttle_window_is_a_setting(platform: Platform) -> None:
    platform.rt.settings.foreground_throttle_seconds = 60
    user, guid = await connect(platform, "pass_good", code="sandbox_bank")
    platform.clock.advance(seconds=61)
    assert (await aggregate(platform, user, guid))["member"]["is_being_aggregated"] is True


async def test_same_job_running_is_202_and_different_job_is_409(platform: Platform) -> None:
    user, guid = await connect(platform, "password")
    first = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    again = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert first.status_code == again.status_code == 202
    assert again.json()["member"]["is_being_aggregated"] is True
    assert len(await jobs(platform, state="queued")) == 1
    verify = await platform.http.post(f"/users/{user}/members/{guid}/verify")
    assert verify.status_code == 409
    assert "aggregate" in verify.json()["error"]["message"]
    await platform.drain()
    verify = await platform.http.post(f"/users/{user}/members/{guid}/verify")
    assert verify.status_code == 200


async def test_challenged_member_counts_as_being_aggregated(platform: Platform) -> None:
    user, guid = await connect(platform, "challenge")
    r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert r.status_code == 202 and r.json()["member"]["is_being_aggregated"] is True
    r = await platform.http.post(f"/users/{user}/members/{guid}/identify")
    assert r.status_code == 409


async def test_members_needing_credentials_get_422(platform: Platform) -> None:
    for password in ("INVALID", "UNAUTHORIZED"):
        user, guid = await connect(platform, password)
        r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
        assert r.status_code == 422
        assert "credentials must be updated" in r.json()["error"]["message"]
    user, guid = await connect(platform, "error_impaired", code="sandbox_bank")
    r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert r.status_code == 422


async def test_closed_disabled_discontinued_get_422(platform: Platform) -> None:
    for status in (Status.CLOSED, Status.DISABLED):
        user, guid = await connect(platform, "password")
        await admin.set_member_status(platform.rt, guid, status)
        r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
        assert r.status_code == 422
        assert "not possible" in r.json()["error"]["message"]
    user, guid = await connect(platform, "pass_good", code="sandbox_bank")
    await admin.retire_institution(platform.rt, "sandbox_bank")
    r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert r.status_code == 422


async def test_other_job_kinds(platform: Platform) -> None:
    user, guid = await connect(platform, "password")
    base = f"/users/{user}/members/{guid}"
    assert (await platform.http.post(base + "/check_balance")).status_code == 202
    await platform.drain()
    assert (await platform.http.post(base + "/identify")).status_code == 202
    await platform.drain()
    owners = (await platform.http.get(base + "/account_owners")).json()
    assert owners["pagination"]["total_entries"] == 6
    assert (await platform.http.post(base + "/verify")).status_code == 200
    await platform.drain()
    numbers = (await platform.http.get(base + "/account_numbers")).json()["account_numbers"]
    routing = [n["routing_number"] for n in numbers if n["routing_number"]]
    assert len(routing) >= 2 and all(len(r) == 9 and r.isdigit() for r in routing)
    st = (await platform.http.get(base + "/status")).json()["member"]
    assert st["has_processed_account_numbers"] is True
    assert (await platform.http.post(base + "/extend_history")).status_code == 202
    await platform.drain()
    assert [j.kind for j in await jobs(platform)] == [
        "aggregate",
        "balance",
        "identify",
        "verify",
        "history",
    ]


# --- background -----------------------------------------------------------------


async def test_background_runs_about_every_24_hours(platform: Platform) -> None:
    _user, _guid = await connect(platform, "password")
    platform.clock.advance(hours=23)
    assert (await tick(platform.rt)).background_enqueued == 0
    platform.clock.advance(hours=1, seconds=1)
    assert (await tick(platform.rt)).background_enqueued == 1
    await platform.drain()
    background = await jobs(platform, trigger="background")
    assert len(background) == 1 and background[0].state == "succeeded"
    # The next one is a day after that run, not sooner.
    platform.clock.advance(hours=12)
    assert (await tick(platform.rt)).background_enqueued == 0


async def test_background_spreads_members_with_jitter(platform: Platform) -> None:
    platform.rt.settings.background_jitter_seconds = 7200
    user = await new_user(platform.http)
    for i in range(20):
        await create_member(platform.http, user, f"password-{i}", expect=202)
    await platform.drain()
    async with platform.rt.db.read() as s:
        times = sorted(await s.scalars(select(Member.next_background_at)))
    assert len(set(times)) == 20
    spread = (times[-1] - times[0]).total_seconds()
    assert 1800 < spread <= 4 * 3600


async def test_foreground_success_pushes_background_out(platform: Platform) -> None:
    user, guid = await connect(platform, "password")
    platform.clock.advance(hours=20)
    await aggregate(platform, user, guid)
    platform.clock.advance(hours=5)  # 25 h after the first run, 5 h after the foreground one
    assert (await tick(platform.rt)).background_enqueued == 0
    platform.clock.advance(hours=19, seconds=1)
    assert (await tick(platform.rt)).background_enqueued == 1


async def test_member_flag_disables_background(platform: Platform) -> None:
    user, guid = await connect(platform, "password", background_aggregation_is_disabled=True)
    assert (await member(platform.http, user, guid))["background_aggregation_is_disabled"] is True
    platform.clock.advance(days=2)
    assert (await tick(platform.rt)).background_enqueued == 0
    r = await platform.http.put(
        f"/users/{user}/members/{guid}",
        json={"member": {"background_aggregation_is_disabled": False}},
    )
    assert r.json()["member"]["background_aggregation_is_disabled"] is False
    platform.clock.advance(days=1, seconds=1)
    assert (await tick(platform.rt)).background_enqueued == 1


async def test_client_default_disables_background(platform: Platform) -> None:
    user, guid = await connect(platform, "password")
    async with platform.rt.db.read() as s:
        from openagg.db.models import Client

        client_id = await s.scalar(select(Client.client_id))
    assert client_id is not None
    await set_background_default(platform.rt, client_id, False)
    platform.clock.advance(days=2)
    assert (await tick(platform.rt)).background_enqueued == 0
    # A member's explicit setting wins over the client default.
    r = await platform.http.put(
        f"/users/{user}/members/{guid}",
        json={"member": {"background_aggregation_is_disabled": False}},
    )
    assert r.status_code == 200
    platform.clock.advance(days=1, seconds=1)
    assert (await tick(platform.rt)).background_enqueued == 1


async def test_disabled_user_gets_no_background(platform: Platform) -> None:
    user, _guid = await connect(platform, "password")
    await platform.http.put(f"/users/{user}", json={"user": {"is_disabled": True}})
    platform.clock.advance(days=2)
    assert (await tick(platform.rt)).background_enqueued == 0


async def test_members_needing_the_end_user_get_no_background(platform: Platform) -> None:
    for password in ("INVALID", "LOCKED", "challenge"):
        await connect(platform, password)
    await connect(platform, "error_impeded", code="sandbox_bank")
    platform.clock.advance(minutes=5)
    await tick(platform.rt)  # the challenge expires: EXPIRED also needs the user
    platform.clock.advance(days=2)
    assert (await tick(platform.rt)).background_enqueued == 0


async def test_background_never_answers_mfa(platform: Platform) -> None:
    user, guid = await connect(platform, "password")
    # The bank starts asking a security question on background runs.
    from tests.integration.test_connection_statuses import update_password

    await update_password(platform, user, guid, "challenge", "mxbank")
    assert (await member(platform.http, user, guid))["connection_status"] == "CHALLENGED"
    platform.clock.advance(days=2)
    assert (await tick(platform.rt)).background_enqueued == 0
    assert (await member(platform.http, user, guid))["connection_status"] == "EXPIRED"


async def test_every_attempt_is_recorded(platform: Platform) -> None:
    user, guid = await connect(platform, "flaky", code="sandbox_bank")
    await aggregate(platform, user, guid)
    async with platform.rt.db.read() as s:
        rows = list(await s.scalars(select(Attempt).order_by(Attempt.id)))
        count = await s.scalar(select(func.count()).select_from(Attempt))
    assert count == 2
    assert [(a.trigger, a.cause, a.status_after) for a in rows] == [
        ("automatic", "INSTITUTION_UNAVAILABLE", "FAILED"),
        ("foreground", "INSTITUTION_UNAVAILABLE", "FAILED"),
    ]
    assert all(a.finished_at and a.started_at and a.institution_message for a in rows)
