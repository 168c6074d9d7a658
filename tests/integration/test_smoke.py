from __future__ import annotations

from tests.conftest import Platform
from tests.integration.api_helpers import create_member, member, new_user


async def test_mxbank_member_connects(platform: Platform) -> None:
    user = await new_user(platform.http)
    r = await create_member(platform.http, user, "password", expect=202)
    guid = r.json()["member"]["guid"]
    assert r.json()["member"]["is_being_aggregated"] is True
    await platform.drain()
    m = await member(platform.http, user, guid)
    assert m["connection_status"] == "CONNECTED"
    assert m["is_being_aggregated"] is False
    accounts = (await platform.http.get(f"/users/{user}/accounts")).json()
    assert accounts["pagination"]["total_entries"] == 6
