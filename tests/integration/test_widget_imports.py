"""The widget's "Upload a statement file" (POST /connect/api/imports): a file into a
managed member of the session's own user, with what the widget shows of it, and the
import's errors in its words."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Platform
from tests.integration.api_helpers import new_user
from tests.integration.test_imports import CSV, MARCH_APRIL, ofx_file
from tests.integration.test_widget_urls import bearer, open_session

PATH = "/connect/api/imports"


async def upload(
    platform: Platform, boot: dict[str, Any], data: bytes, **params: str
) -> httpx.Response:
    return await platform.http.post(
        PATH,
        content=data,
        params=params,
        headers={**bearer(boot), "Content-Type": "application/octet-stream"},
    )


async def members_of(platform: Platform, user: str) -> list[dict[str, Any]]:
    r = await platform.http.get(f"/users/{user}/members")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["members"]
    return found


async def test_an_ofx_upload_answers_what_the_widget_shows(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    r = await upload(platform, boot, ofx_file(MARCH_APRIL), filename="march.ofx")
    assert r.status_code == 201, r.text
    body = r.json()
    found = body["import"]
    assert found["format"] == "OFX" and found["filename"] == "march.ofx"
    assert found["transaction_count"] == 4 == found["transactions_added"]
    assert (found["from_date"], found["to_date"]) == ("2026-03-05", "2026-04-10")
    assert [(a["name"], a["type"], a["balance"]) for a in found["accounts"]] == [
        ("Checking ...7766", "CHECKING", 1000.0)
    ]
    assert body["member"] == {"guid": found["member_guid"], "name": "Fake CU"}
    # The session's user's managed member, as the app's API shows it.
    [listed] = await members_of(platform, user)
    assert listed["guid"] == found["member_guid"] and listed["is_managed_by_user"] is False
    # The widget can read it back like a connected member.
    r = await platform.http.get(
        f"/connect/api/members/{found['member_guid']}", headers=bearer(boot)
    )
    assert r.status_code == 200, r.text

    # The same file again: the same member, nothing added, every transaction counted.
    again = (await upload(platform, boot, ofx_file(MARCH_APRIL))).json()["import"]
    assert again["member_guid"] == found["member_guid"]
    assert (again["transaction_count"], again["transactions_added"]) == (4, 0)


async def test_a_form_upload_names_the_member_after_its_file(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    r = await platform.http.post(
        PATH, files={"file": ("konto.csv", CSV, "text/csv")}, headers=bearer(boot)
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["import"]["format"] == "CSV" and body["import"]["transaction_count"] == 3
    assert body["member"]["name"] == "konto.csv"
    assert (body["import"]["from_date"], body["import"]["to_date"]) == (
        "2026-03-05",
        "2026-03-20",
    )


async def test_errors_come_back_in_the_import_s_words(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    r = await upload(platform, boot, CSV.replace(b"-4,50\n", b"abc\n", 1), filename="bad.csv")
    assert r.status_code == 400, r.text
    assert "line 3" in r.json()["error"]["message"]
    r = await upload(platform, boot, ofx_file(MARCH_APRIL), format="PDF")
    assert r.status_code == 400 and "PDF" in r.json()["error"]["message"]
    platform.rt.settings.import_max_bytes = 10_000
    r = await upload(platform, boot, b"x" * 10_001)
    assert r.status_code == 413, r.text
    assert "WWW-Authenticate" not in r.headers
    assert await members_of(platform, user) == []


async def test_a_session_imports_only_for_its_own_user(platform: Platform) -> None:
    alice, bob = await new_user(platform.http), await new_user(platform.http)
    alice_boot, bob_boot = await open_session(platform, alice), await open_session(platform, bob)
    r = await upload(platform, bob_boot, ofx_file(MARCH_APRIL))
    assert r.status_code == 201, r.text
    bobs = r.json()["import"]["member_guid"]
    assert [m["guid"] for m in await members_of(platform, bob)] == [bobs]
    assert await members_of(platform, alice) == []
    # Alice's session cannot see Bob's member, nor import without a session.
    r = await platform.http.get(f"/connect/api/members/{bobs}", headers=bearer(alice_boot))
    assert r.status_code == 404, r.text
    for headers in ({}, {"Authorization": "Bearer not-a-session"}):
        r = await platform.http.post(PATH, content=ofx_file(MARCH_APRIL), headers=headers)
        assert r.status_code == 401, r.text
        assert "WWW-Authenticate" not in r.headers
    assert await members_of(platform, alice) == []


async def test_verification_mode_refuses_a_file(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user, mode="verification")
    r = await upload(platform, boot, ofx_file(MARCH_APRIL))
    assert r.status_code == 422 and "verify" in r.json()["error"]["message"]
    assert await members_of(platform, user) == []
