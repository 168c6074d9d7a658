"""One test per MX connection status: each is reachable through a documented path
(docs/connection-statuses.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from openagg.domain.statuses import STATUS_IDS, Status
from openagg.engine.scheduler import tick
from openagg.services import admin
from openagg.settings import Settings
from tests.conftest import Platform, make_platform, settings_for
from tests.integration.api_helpers import (
    authorize,
    create_member,
    institution_credentials,
    member,
    new_user,
    status,
)
from tests.support import credentials_for


async def connect(
    p: Platform, password: str, code: str = "mxbank", **fields: Any
) -> tuple[str, str]:
    user = await new_user(p.http)
    r = await create_member(p.http, user, password, code=code, **fields)
    assert r.status_code in (200, 202), r.text
    await p.drain()
    return user, r.json()["member"]["guid"]


async def aggregate(p: Platform, user: str, guid: str, expect: int = 202) -> dict[str, Any]:
    r = await p.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert r.status_code == expect, r.text
    await p.drain()
    return r.json()


async def update_password(p: Platform, user: str, guid: str, password: str, code: str) -> None:
    username = "mxuser" if code == "mxbank" else "user_good"
    creds = credentials_for(await institution_credentials(p.http, code), username, password)
    r = await p.http.put(f"/users/{user}/members/{guid}", json={"member": {"credentials": creds}})
    assert r.status_code == 200, r.text
    await p.drain()


def test_ids_are_mx_ids() -> None:
    assert len(Status) == 22
    assert [STATUS_IDS[s] for s in (Status.CREATED, Status.CONNECTED, Status.PENDING)] == [0, 6, 21]
    assert STATUS_IDS[Status.RESUMED] == 18 and STATUS_IDS[Status.IMPAIRED] == 20


async def test_created(platform: Platform) -> None:
    user = await new_user(platform.http)
    r = await create_member(platform.http, user, "password", skip_aggregation=True, expect=200)
    assert r.json()["member"]["connection_status"] == "CREATED"
    assert r.json()["member"]["is_being_aggregated"] is False


async def test_prevented_after_three_credential_failures(platform: Platform) -> None:
    user, guid = await connect(platform, "INVALID")
    assert (await member(platform.http, user, guid))["connection_status"] == "DENIED"
    await update_password(platform, user, guid, "UNAUTHORIZED", "mxbank")
    assert (await member(platform.http, user, guid))["connection_status"] == "DENIED"
    await update_password(platform, user, guid, "INVALID", "mxbank")
    m = await member(platform.http, user, guid)
    assert m["connection_status"] == "PREVENTED"
    assert m["needs_updated_credentials"] is True
    # Only new credentials (and a success) clear it.
    await update_password(platform, user, guid, "good-password", "mxbank")
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"


async def test_denied(platform: Platform) -> None:
    user, guid = await connect(platform, "UNAUTHORIZED")
    m = await member(platform.http, user, guid)
    assert m["connection_status"] == "DENIED"
    assert (await status(platform.http, user, guid))["is_authenticated"] is False


async def test_challenged(platform: Platform) -> None:
    user, guid = await connect(platform, "challenge")
    st = await status(platform.http, user, guid)
    assert st["connection_status"] == "CHALLENGED"
    assert st["is_being_aggregated"] is True
    assert st["challenges"] and st["challenges"][0]["type"] == "TEXT"


async def test_rejected(platform: Platform) -> None:
    user, guid = await connect(platform, "challenge")
    challenge = (await status(platform.http, user, guid))["challenges"][0]
    body = {"member": {"challenges": [{"guid": challenge["guid"], "value": "wrong"}]}}
    r = await platform.http.put(f"/users/{user}/members/{guid}/resume", json=body)
    assert r.status_code == 202
    await platform.drain()
    assert (await member(platform.http, user, guid))["connection_status"] == "REJECTED"


async def test_locked(platform: Platform) -> None:
    user, guid = await connect(platform, "LOCKED")
    assert (await member(platform.http, user, guid))["connection_status"] == "LOCKED"


async def test_connected(platform: Platform) -> None:
    user, guid = await connect(platform, "anything")
    m = await member(platform.http, user, guid)
    assert m["connection_status"] == "CONNECTED"
    assert m["successfully_aggregated_at"] and m["aggregated_at"]


async def test_impeded(platform: Platform) -> None:
    user, guid = await connect(platform, "error_impeded", code="sandbox_bank")
    assert (await member(platform.http, user, guid))["connection_status"] == "IMPEDED"


async def test_reconnected(platform: Platform) -> None:
    user, guid = await connect(platform, "pass_good", code="sandbox_bank")
    moved = await admin.move_institution(platform.rt, "sandbox_bank", "fdx-v2")
    assert moved == 1
    assert (await member(platform.http, user, guid))["connection_status"] == "RECONNECTED"


async def test_degraded_after_three_failures_in_a_short_period(platform: Platform) -> None:
    user, guid = await connect(platform, "flaky", code="sandbox_bank")
    assert (await member(platform.http, user, guid))["connection_status"] == "FAILED"
    await aggregate(platform, user, guid)
    assert (await member(platform.http, user, guid))["connection_status"] == "FAILED"
    await aggregate(platform, user, guid)
    assert (await member(platform.http, user, guid))["connection_status"] == "DEGRADED"
    await aggregate(platform, user, guid)  # flaky works on the fourth try
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"


async def test_disconnected_after_failures_and_two_weeks_without_success(
    platform: Platform,
) -> None:
    user, guid = await connect(platform, "error_failed", code="sandbox_bank")
    assert (await member(platform.http, user, guid))["connection_status"] == "FAILED"
    platform.clock.advance(days=8)
    await aggregate(platform, user, guid)
    platform.clock.advance(days=7)
    await aggregate(platform, user, guid)
    assert (await member(platform.http, user, guid))["connection_status"] == "DISCONNECTED"


async def test_discontinued(platform: Platform) -> None:
    user, guid = await connect(platform, "pass_good", code="sandbox_bank")
    await admin.retire_institution(platform.rt, "sandbox_bank")
    assert (await member(platform.http, user, guid))["connection_status"] == "DISCONTINUED"
    r = await platform.http.get("/institutions", params={"name": "sandbox"})
    assert [i["code"] for i in r.json()["institutions"]] == []


async def test_closed_by_institution_and_by_operator(platform: Platform) -> None:
    user, guid = await connect(platform, "error_closed", code="sandbox_bank")
    assert (await member(platform.http, user, guid))["connection_status"] == "CLOSED"
    user, guid = await connect(platform, "password")
    await admin.set_member_status(platform.rt, guid, Status.CLOSED)
    assert (await member(platform.http, user, guid))["connection_status"] == "CLOSED"


@pytest.fixture
def slow_settings(tmp_path: Path) -> Settings:
    settings = settings_for(
        tmp_path, delayed_after_seconds=0.3, connector_options={"sandbox": {"slow_seconds": "1.5"}}
    )
    settings.ensure_data_dir()
    return settings


async def test_delayed_while_a_job_runs_long(slow_settings: Settings) -> None:
    p, _ = await make_platform(slow_settings)
    try:
        user = await new_user(p.http)
        r = await create_member(p.http, user, "slow", code="sandbox_bank", expect=202)
        guid = r.json()["member"]["guid"]
        drain = asyncio.create_task(p.drain())
        await asyncio.sleep(0.8)
        st = await status(p.http, user, guid)
        assert st["connection_status"] == "DELAYED"
        assert st["is_being_aggregated"] is True
        await drain
        assert (await member(p.http, user, guid))["connection_status"] == "CONNECTED"
    finally:
        await p.http.aclose()
        await p.rt.db.dispose()


async def test_failed(platform: Platform) -> None:
    user, guid = await connect(platform, "SERVER_ERROR")
    assert (await member(platform.http, user, guid))["connection_status"] == "FAILED"


async def test_updated(platform: Platform) -> None:
    user, guid = await connect(platform, "INVALID")
    creds = credentials_for(await institution_credentials(platform.http, "mxbank"), "mxuser", "x")
    body = {"member": {"credentials": creds, "skip_aggregation": True}}
    r = await platform.http.put(f"/users/{user}/members/{guid}", json=body)
    assert r.status_code == 200
    assert r.json()["member"]["connection_status"] == "UPDATED"
    assert r.json()["member"]["is_being_aggregated"] is False


async def test_disabled(platform: Platform) -> None:
    user, guid = await connect(platform, "password")
    await admin.set_member_status(platform.rt, guid, Status.DISABLED)
    assert (await member(platform.http, user, guid))["connection_status"] == "DISABLED"
    await admin.enable_member(platform.rt, guid)
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"


async def test_imported(platform: Platform) -> None:
    user = await new_user(platform.http)
    client = await _client(platform)
    m = await admin.import_member(platform.rt, client, user, "mxbank", "legacy-1")
    got = await member(platform.http, user, m.guid)
    assert got["connection_status"] == "IMPORTED" and got["needs_updated_credentials"] is True
    await update_password(platform, user, m.guid, "password", "mxbank")
    assert (await member(platform.http, user, m.guid))["connection_status"] == "CONNECTED"


async def test_resumed(platform: Platform) -> None:
    user, guid = await connect(platform, "challenge")
    challenge = (await status(platform.http, user, guid))["challenges"][0]
    body = {"member": {"challenges": [{"guid": challenge["guid"], "value": "correct"}]}}
    r = await platform.http.put(f"/users/{user}/members/{guid}/resume", json=body)
    assert r.json()["member"]["connection_status"] == "RESUMED"
    assert (await status(platform.http, user, guid))["is_being_aggregated"] is True
    await platform.drain()
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"


async def test_expired(platform: Platform) -> None:
    user, guid = await connect(platform, "challenge")
    platform.clock.advance(seconds=platform.rt.settings.challenge_expiry_seconds + 1)
    result = await tick(platform.rt)
    assert result.challenges_expired == 1
    st = await status(platform.http, user, guid)
    assert st["connection_status"] == "EXPIRED" and st["is_being_aggregated"] is False


async def test_impaired(platform: Platform) -> None:
    user, guid = await connect(platform, "error_impaired", code="sandbox_bank")
    assert (await member(platform.http, user, guid))["connection_status"] == "IMPAIRED"


async def test_pending_until_oauth_completes(platform: Platform) -> None:
    user = await new_user(platform.http)
    body = {"member": {"institution_code": "mx_bank_oauth", "is_oauth": True}}
    r = await platform.http.post(f"/users/{user}/members", json=body)
    assert r.status_code == 200, r.text
    m = r.json()["member"]
    assert m["connection_status"] == "PENDING" and m["oauth_window_uri"]
    assert (await authorize(platform, m["oauth_window_uri"])).status_code == 200
    await platform.drain()
    assert (await member(platform.http, user, m["guid"]))["connection_status"] == "CONNECTED"
    assert (await authorize(platform, m["oauth_window_uri"])).status_code == 404  # single use


async def _client(p: Platform) -> Any:
    from sqlalchemy import select

    from openagg.db.models import Client

    async with p.rt.db.read() as s:
        return await s.scalar(select(Client))


@pytest.mark.parametrize("status_name", [s.value for s in Status])
def test_every_status_is_documented(status_name: str) -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "connection-statuses.md"
    assert f"`{status_name}`" in doc.read_text()
