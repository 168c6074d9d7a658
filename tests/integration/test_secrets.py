"""Secrets at rest: nothing readable in the stored database (file or dump),
nothing in responses or logs."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from openagg.db.models import Member
from openagg.services import vault
from tests.conftest import Platform
from tests.databases import stored_bytes
from tests.integration.api_helpers import create_member, new_user, status

PASSWORD = "Hunter2-pa55word-7Q"
WRONG_ANSWER = "my-first-pet-was-ZORBLAX"


def database_bytes(p: Platform) -> bytes:
    return stored_bytes(p.rt.db.url)


async def test_no_secret_in_the_database_file_responses_or_logs(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = await new_user(platform.http)
    seen = []
    r = await create_member(platform.http, user, PASSWORD, expect=202)
    seen.append(r.text)
    guid = r.json()["member"]["guid"]
    await platform.drain()
    r2 = await create_member(platform.http, user, "challenge", expect=202)
    guid2 = r2.json()["member"]["guid"]
    await platform.drain()
    challenge = (await status(platform.http, user, guid2))["challenges"][0]
    body = {"member": {"challenges": [{"guid": challenge["guid"], "value": WRONG_ANSWER}]}}
    seen.append((await platform.http.put(f"/users/{user}/members/{guid2}/resume", json=body)).text)
    stored_before_run = database_bytes(platform)
    await platform.drain()
    for path in (
        f"/users/{user}/members/{guid}",
        f"/users/{user}/members",
        f"/users/{user}/members/{guid}/credentials",
        f"/users/{user}/members/{guid2}",
    ):
        seen.append((await platform.http.get(path)).text)

    stored = stored_before_run + database_bytes(platform)
    api_key = platform.http.headers["Authorization"]
    for secret in (PASSWORD, WRONG_ANSWER):
        assert secret.encode() not in stored
        assert not any(secret in text for text in seen)
        assert secret not in caplog.text
    import base64

    key = base64.b64decode(api_key.split()[1]).decode().split(":", 1)[1]
    assert key.encode() not in stored
    # ...while the platform itself can still open what it sealed.
    async with platform.rt.db.read() as s:
        member = await s.scalar(select(Member).where(Member.guid == guid))
    assert member is not None
    assert PASSWORD in vault.open_credentials(platform.rt, member).values()


async def test_sealed_values_are_bound_to_their_member(platform: Platform) -> None:
    user = await new_user(platform.http)
    a = (await create_member(platform.http, user, "one", skip_aggregation=True)).json()
    b = (await create_member(platform.http, user, "two", skip_aggregation=True)).json()
    async with platform.rt.db.read() as s:
        ma = await s.scalar(select(Member).where(Member.guid == a["member"]["guid"]))
        mb = await s.scalar(select(Member).where(Member.guid == b["member"]["guid"]))
    assert ma is not None and mb is not None
    mb.credentials_enc = ma.credentials_enc  # a row copied onto another member
    from openagg.crypto import CryptoError

    with pytest.raises(CryptoError):
        vault.open_credentials(platform.rt, mb)
