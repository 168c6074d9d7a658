"""Edge cases found in review: admin actions on busy members, counts after a success,
duplicates on update, filtered member lists."""

from __future__ import annotations

import asyncio
import os

import pytest

from openagg.crypto import KeyRing, parse_keys
from openagg.services import admin
from openagg.services.errors import BadRequest
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, institution_credentials, member, new_user
from tests.integration.test_connection_statuses import aggregate, connect, update_password
from tests.support import credentials_for


async def test_enable_refuses_discontinued_members(platform: Platform) -> None:
    _, guid = await connect(platform, "pass_good", code="sandbox_bank")
    await admin.retire_institution(platform.rt, "sandbox_bank")
    with pytest.raises(BadRequest):
        await admin.enable_member(platform.rt, guid)


async def test_moving_an_institution_releases_a_challenged_member(platform: Platform) -> None:
    user, guid = await connect(platform, "pass_good", code="sandbox_bank")
    await update_password(platform, user, guid, "mfa_text", "sandbox_bank")
    assert (await member(platform.http, user, guid))["connection_status"] == "CHALLENGED"
    await admin.move_institution(platform.rt, "sandbox_bank", "v2")
    m = await member(platform.http, user, guid)
    assert m["connection_status"] == "RECONNECTED" and m["is_being_aggregated"] is False


async def test_a_success_restarts_the_failure_count(platform: Platform) -> None:
    user, guid = await connect(platform, "flaky", code="sandbox_bank")
    for _ in range(3):
        await aggregate(platform, user, guid)
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"
    await update_password(platform, user, guid, "error_failed", "sandbox_bank")
    assert (await member(platform.http, user, guid))["connection_status"] == "FAILED"


async def test_updating_to_another_members_credentials_is_409(platform: Platform) -> None:
    user = await new_user(platform.http)
    await create_member(platform.http, user, "first", skip_aggregation=True, expect=200)
    second = await create_member(platform.http, user, "second", skip_aggregation=True, expect=200)
    creds = credentials_for(
        await institution_credentials(platform.http, "mxbank"), "mxuser", "first"
    )
    r = await platform.http.put(
        f"/users/{user}/members/{second.json()['member']['guid']}",
        json={"member": {"credentials": creds}},
    )
    assert r.status_code == 409


async def test_member_list_filters_before_paging(platform: Platform) -> None:
    user = await new_user(platform.http)
    for i in range(12):
        use_cases = ["PFM"] if i % 3 == 0 else ["MONEY_MOVEMENT"]
        await create_member(
            platform.http, user, f"p{i}", skip_aggregation=True, use_cases=use_cases, expect=200
        )
    r = await platform.http.get(
        f"/users/{user}/members", params={"use_case": "PFM", "records_per_page": 10}
    )
    body = r.json()
    assert body["pagination"]["total_entries"] == 4 and len(body["members"]) == 4
    assert all(m["use_cases"] == ["PFM"] for m in body["members"])


async def test_duplicates_are_found_across_a_key_rotation(platform: Platform) -> None:
    user = await new_user(platform.http)
    await create_member(platform.http, user, "first", skip_aggregation=True, expect=200)
    # Rotate: a new key seals (and fingerprints) from now on; the old one still reads.
    old = parse_keys((platform.rt.settings.data_dir / "encryption.key").read_text().strip())
    platform.rt.keys = KeyRing([("k2", os.urandom(32)), *old])
    r = await create_member(platform.http, user, "first", skip_aggregation=True)
    assert r.status_code == 409, r.text
    await create_member(platform.http, user, "second", skip_aggregation=True, expect=200)


async def test_user_level_lists_filter_by_use_case(platform: Platform) -> None:
    """MX: the user-level account and transaction lists take use_case (a member's
    use_cases holds it); the member-level lists do not."""
    http = platform.http
    user = await new_user(http)
    pfm = (await create_member(http, user, "a", use_cases=["PFM"])).json()["member"]["guid"]
    both = ["MONEY_MOVEMENT", "PFM"]
    mm = (await create_member(http, user, "b", use_cases=both)).json()["member"]["guid"]
    none = (await create_member(http, user, "c")).json()["member"]["guid"]
    await platform.drain()

    async def members_of(path: str, **params: str) -> set[str]:
        r = await http.get(f"/users/{user}/{path}", params={"records_per_page": 1000, **params})
        assert r.status_code == 200, r.text
        return {row["member_guid"] for row in r.json()[path]}

    for path in ("accounts", "transactions"):
        assert await members_of(path) == {pfm, mm, none}
        assert await members_of(path, use_case="PFM") == {pfm, mm}
        assert await members_of(path, use_case="money_movement") == {mm}
        r = await http.get(f"/users/{user}/{path}", params={"use_case": "FOO"})
        assert r.status_code == 400 and "use_case" in r.json()["error"]["message"]
    r = await http.get(f"/users/{user}/members", params={"use_case": "FOO"})
    assert r.status_code == 400
    # The member-level list ignores it, as at MX.
    r = await http.get(f"/users/{user}/members/{none}/transactions", params={"use_case": "PFM"})
    assert r.status_code == 200 and r.json()["transactions"]


async def test_two_creates_at_once_with_the_same_credentials_make_one_member(
    platform: Platform,
) -> None:
    """The duplicate check and the insert are one step: requests racing with the same
    credentials leave one member; the others get 409."""
    http = platform.http
    user = await new_user(http)
    for _ in range(3):
        results = await asyncio.gather(
            *(create_member(http, user, "same", skip_aggregation=True) for _ in range(4))
        )
        assert sorted(r.status_code for r in results) in ([200, 409, 409, 409], [409] * 4)
    r = await http.get(f"/users/{user}/members")
    assert r.json()["pagination"]["total_entries"] == 1
