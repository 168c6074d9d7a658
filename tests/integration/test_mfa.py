"""MFA: every challenge type, multi-round, wrong answers, and the saved session."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from openagg.db.models import Member
from tests.conftest import Platform
from tests.integration.api_helpers import member, status
from tests.integration.test_connection_statuses import connect


def right_answer(challenge: dict[str, Any]) -> str:
    for key in ("options", "image_options"):
        for option in challenge.get(key) or []:
            if option["value"] == "correct":
                return "correct"
    return "correct"


async def answer(p: Platform, user: str, guid: str, value: str | None = None) -> str:
    st = await status(p.http, user, guid)
    assert st["connection_status"] == "CHALLENGED"
    answers = [{"guid": c["guid"], "value": value or right_answer(c)} for c in st["challenges"]]
    r = await p.http.put(
        f"/users/{user}/members/{guid}/resume", json={"member": {"challenges": answers}}
    )
    assert r.status_code == 202, r.text
    await p.drain()
    return str((await member(p.http, user, guid))["connection_status"])


@pytest.mark.parametrize(
    ("password", "kind", "field"),
    [
        ("mfa_text", "TEXT", None),
        ("mfa_token", "TOKEN", None),
        ("mfa_options", "OPTIONS", "options"),
        ("mfa_image", "IMAGE_DATA", "image_data"),
        ("mfa_image_options", "IMAGE_OPTIONS", "image_options"),
    ],
)
async def test_each_challenge_type(
    platform: Platform, password: str, kind: str, field: str | None
) -> None:
    user, guid = await connect(platform, password, code="sandbox_bank")
    challenges = (await platform.http.get(f"/users/{user}/members/{guid}/challenges")).json()
    c = challenges["challenges"][0]
    assert c["type"] == kind and c["label"]
    if field == "image_data":
        assert c["image_data"].startswith("data:image/")
    elif field:
        assert len(c[field]) >= 2
        if field == "image_options":
            assert all(o["data_uri"].startswith("data:image/") for o in c[field])
    assert await answer(platform, user, guid) == "CONNECTED"
    assert (await platform.http.get(f"/users/{user}/members/{guid}/challenges")).status_code == 204


async def test_multi_round(platform: Platform) -> None:
    user, guid = await connect(platform, "mfa_multi", code="sandbox_bank")
    first = (await status(platform.http, user, guid))["challenges"][0]["type"]
    assert await answer(platform, user, guid) == "CHALLENGED"
    second = (await status(platform.http, user, guid))["challenges"][0]["type"]
    assert (first, second) == ("TEXT", "OPTIONS")
    assert await answer(platform, user, guid) == "CONNECTED"


async def test_mxbank_second_round_when_answering_challenge(platform: Platform) -> None:
    user, guid = await connect(platform, "challenge")
    assert await answer(platform, user, guid, "challenge") == "CHALLENGED"
    assert await answer(platform, user, guid, "correct") == "CONNECTED"


async def test_wrong_answer_rejected_then_retry(platform: Platform) -> None:
    user, guid = await connect(platform, "mfa_token", code="sandbox_bank")
    assert await answer(platform, user, guid, "000000") == "REJECTED"
    r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert r.status_code == 202
    await platform.drain()
    assert await answer(platform, user, guid) == "CONNECTED"


async def test_session_state_is_sealed_and_expires(platform: Platform) -> None:
    user, guid = await connect(platform, "challenge")
    async with platform.rt.db.read() as s:
        m = await s.scalar(select(Member).where(Member.guid == guid))
    assert m is not None and m.connector_state_enc and m.connector_state_expires_at
    assert b"MX_" not in m.connector_state_enc  # the connector's scenario name is sealed
    # The session outlives the challenge window only by design; past its TTL it is gone.
    platform.clock.advance(seconds=platform.rt.settings.connector_state_ttl_seconds + 1)
    platform.rt.settings.challenge_expiry_seconds = 10**6  # keep the challenge open
    assert await answer(platform, user, guid) == "EXPIRED"
