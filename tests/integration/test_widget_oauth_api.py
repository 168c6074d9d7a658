"""OAuth in the Connect widget's API: an OAuth member created by a widget session
(PENDING, with its OAuth link), reused while it waits, completed through the sandbox
bank's consent page and the platform's callback with the session's options (its
mode's first job, MX's APP redirect)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from openagg.connectors.sandbox import SANDBOX_OAUTH_AUTHORIZE_PATH
from openagg.db.models import Job, Member
from openagg.services import vault
from tests.conftest import Platform
from tests.integration.api_helpers import authorize, local, member, new_user
from tests.integration.test_widget_urls import bearer, open_session
from tests.support import MXBANK_CREDENTIALS, MXBANK_USERNAME

OAUTH_BANK = "mx_bank_oauth"
PENDING, CONNECTED = 21, 6


async def create_oauth(platform: Platform, boot: dict[str, Any], **extra: Any) -> Any:
    body = {"institution_code": OAUTH_BANK, "is_oauth": True, **extra}
    return await platform.http.post("/connect/api/members", json=body, headers=bearer(boot))


async def user_members(platform: Platform, user: str) -> list[dict[str, Any]]:
    r = await platform.http.get(f"/users/{user}/members")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["members"]
    return found


async def jobs_of(platform: Platform, guid: str) -> list[tuple[str, str]]:
    async with platform.rt.db.read() as s:
        member_id = await s.scalar(select(Member.id).where(Member.guid == guid))
        rows = await s.execute(
            select(Job.kind, Job.trigger).where(Job.member_id == member_id).order_by(Job.id)
        )
    return [(kind, trigger) for kind, trigger in rows]


async def test_oauth_member_pending_then_connected(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    detail = await platform.http.get(
        f"/connect/api/institutions/{OAUTH_BANK}", headers=bearer(boot)
    )
    assert detail.json()["credentials"] == []
    assert detail.json()["institution"]["supports_oauth"] is True

    r = await create_oauth(platform, boot)
    assert r.status_code == 200, r.text  # no job yet: it starts when OAuth completes
    created = r.json()["member"]
    assert created["connection_status"] == "PENDING"
    assert created["connection_status_id"] == PENDING
    assert created["is_oauth"] is True and created["is_being_aggregated"] is False
    link = urlsplit(created["oauth_window_uri"])
    assert link.path.startswith("/oauth/start/")
    assert parse_qs(link.query) == {"widget_session": [boot["session_guid"]]}
    # The app's API shows the same link, without the widget's session.
    api_view = await member(platform.http, user, created["guid"])
    assert api_view["oauth_window_uri"] == created["oauth_window_uri"].split("?", 1)[0]
    async with platform.rt.db.read() as s:
        row = await s.scalar(select(Member).where(Member.guid == created["guid"]))
    assert row is not None and row.end_user_present_at == platform.clock.now

    # Nothing runs while the end user is away.
    await platform.drain()
    polled = await platform.http.get(
        f"/connect/api/members/{created['guid']}", headers=bearer(boot)
    )
    assert polled.json()["member"]["connection_status"] == "PENDING"
    assert polled.json()["member"]["oauth_window_uri"] == created["oauth_window_uri"]

    # The state the institution hands back carries the widget session.
    start = await platform.http.get(local(created["oauth_window_uri"]))
    assert start.status_code == 303
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    assert state.endswith("." + boot["session_guid"])
    done = await authorize(platform, created["oauth_window_uri"])
    assert done.status_code == 200 and "Access granted" in done.text  # BROWSER: no redirect
    after = await platform.http.get(f"/connect/api/members/{created['guid']}", headers=bearer(boot))
    assert after.json()["member"]["connection_status"] == "CREATED"
    assert after.json()["member"]["is_being_aggregated"] is True
    assert after.json()["member"]["oauth_window_uri"] is None

    await platform.drain()
    connected = await platform.http.get(
        f"/connect/api/members/{created['guid']}", headers=bearer(boot)
    )
    assert connected.json()["member"]["connection_status_id"] == CONNECTED
    assert await jobs_of(platform, created["guid"]) == [("aggregate", "oauth")]
    accounts = await platform.http.get(
        f"/connect/api/members/{created['guid']}/accounts", headers=bearer(boot)
    )
    assert accounts.json()["accounts"]
    assert (await authorize(platform, created["oauth_window_uri"])).status_code == 404


async def test_pending_member_is_reused(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    first = (await create_oauth(platform, boot)).json()["member"]
    again = await create_oauth(platform, boot)
    assert again.status_code == 200, again.text
    assert again.json()["member"]["guid"] == first["guid"]
    assert again.json()["member"]["oauth_window_uri"] == first["oauth_window_uri"]
    # Another session of the same user (the widget opened again) finds it too, with a
    # link naming that session.
    later = await open_session(platform, user)
    reused = (await create_oauth(platform, later)).json()["member"]
    assert reused["guid"] == first["guid"]
    assert f"widget_session={later['session_guid']}" in reused["oauth_window_uri"]
    assert [m["guid"] for m in await user_members(platform, user)] == [first["guid"]]

    # Another user's PENDING member is not theirs to reuse.
    other = await new_user(platform.http)
    theirs = (await create_oauth(platform, await open_session(platform, other))).json()["member"]
    assert theirs["guid"] != first["guid"]

    # Once connected, choosing the institution again makes a new connection.
    await authorize(platform, first["oauth_window_uri"])
    await platform.drain()
    fresh = (await create_oauth(platform, later)).json()["member"]
    assert fresh["guid"] != first["guid"] and fresh["connection_status"] == "PENDING"
    assert len(await user_members(platform, user)) == 2


async def test_two_choices_at_once_make_one_pending_member(platform: Platform) -> None:
    """A double click, or two widget tabs: the lookup and the create happen under a
    lock on the user, so both requests answer with the same member."""
    user = await new_user(platform.http)
    boots = [await open_session(platform, user) for _ in range(4)]
    answers = await asyncio.gather(*(create_oauth(platform, b) for b in boots))
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
    assert len({r.json()["member"]["guid"] for r in answers}) == 1
    assert len(await user_members(platform, user)) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"institution_code": OAUTH_BANK, "credentials": [{"guid": "CRD-x", "value": "x"}]},
            "signs in on its own website",
        ),
        ({"institution_code": OAUTH_BANK}, "is_oauth: true"),
        (
            {
                "institution_code": OAUTH_BANK,
                "is_oauth": True,
                "credentials": [{"guid": MXBANK_USERNAME, "value": "mxuser"}],
            },
            "send no credentials",
        ),
        ({"institution_code": "mxbank", "is_oauth": True}, "does not support OAuth"),
        (
            {
                "institution_code": "mxbank",
                "is_oauth": True,
                "credentials": [],
            },
            "does not support OAuth",
        ),
        ({"institution_code": OAUTH_BANK, "is_oauth": "yes"}, "is_oauth"),
    ],
)
async def test_bad_oauth_requests(platform: Platform, body: dict[str, Any], message: str) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    r = await platform.http.post("/connect/api/members", json=body, headers=bearer(boot))
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]
    assert await user_members(platform, user) == []


async def test_credentials_still_work_beside_oauth(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    body = {
        "institution_code": "mxbank",
        "credentials": MXBANK_CREDENTIALS,
    }
    r = await platform.http.post("/connect/api/members", json=body, headers=bearer(boot))
    assert r.status_code == 202, r.text
    assert r.json()["member"]["oauth_window_uri"] is None


async def test_verification_mode_verifies_after_oauth(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user, mode="verification")
    created = (await create_oauth(platform, boot)).json()["member"]
    assert (await authorize(platform, created["oauth_window_uri"])).status_code == 200
    await platform.drain()
    assert (await member(platform.http, user, created["guid"]))["connection_status"] == "CONNECTED"
    assert await jobs_of(platform, created["guid"]) == [("verify", "oauth")]
    numbers = await platform.http.get(f"/users/{user}/members/{created['guid']}/account_numbers")
    assert numbers.json()["account_numbers"]
    transactions = await platform.http.get(f"/users/{user}/members/{created['guid']}/transactions")
    assert transactions.json()["transactions"] == []


@pytest.mark.parametrize(
    ("options", "target"),
    [
        (
            {"oauth_referral_source": "APP", "client_redirect_url": "https://app.test/back?x=1"},
            "https://app.test/back?x=1&status=success&member_guid={guid}",
        ),
        (
            {"is_mobile_webview": True, "ui_message_webview_url_scheme": "myapp"},
            "myapp://oauth_complete?status=success&member_guid={guid}",
        ),
        ({"oauth_referral_source": "BROWSER", "client_redirect_url": "https://app.test/"}, None),
    ],
)
async def test_app_referral_redirects_back(
    platform: Platform, options: dict[str, Any], target: str | None
) -> None:
    """MX: with referral source APP the end user goes back to the app at the end of OAuth
    (client_redirect_url, else the webview scheme); with BROWSER the widget just polls."""
    user = await new_user(platform.http)
    boot = await open_session(platform, user, **options)
    created = (await create_oauth(platform, boot)).json()["member"]
    r = await authorize(platform, created["oauth_window_uri"])
    if target is None:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 303, r.text
        assert r.headers["location"] == target.format(guid=created["guid"])
    await platform.drain()
    assert (await member(platform.http, user, created["guid"]))["connection_status"] == "CONNECTED"


async def test_link_naming_another_users_session_is_plain(platform: Platform) -> None:
    """A widget session in the link applies only to its own user's member: naming another
    one neither redirects anywhere nor changes the job."""
    alice, bob = await new_user(platform.http), await new_user(platform.http)
    theirs = await open_session(
        platform,
        alice,
        mode="verification",
        oauth_referral_source="APP",
        client_redirect_url="https://elsewhere.test/",
    )
    body = {"member": {"institution_code": OAUTH_BANK, "is_oauth": True}}
    created = (await platform.http.post(f"/users/{bob}/members", json=body)).json()["member"]
    link = local(created["oauth_window_uri"]) + f"?widget_session={theirs['session_guid']}"
    r = await authorize(platform, link)
    assert r.status_code == 200, r.text
    await platform.drain()
    assert await jobs_of(platform, created["guid"]) == [("aggregate", "oauth")]
    assert (await authorize(platform, link)).status_code == 404  # still single use
    # An unknown session is ignored the same way.
    other = (await platform.http.post(f"/users/{bob}/members", json=body)).json()["member"]
    r = await authorize(platform, local(other["oauth_window_uri"]) + "?widget_session=WSN-nope")
    assert r.status_code == 200, r.text


async def test_denied_access_ends_denied_until_approved_with_a_fresh_link(
    platform: Platform,
) -> None:
    user = await new_user(platform.http)
    back = "https://app.test/back"
    boot = await open_session(platform, user, oauth_referral_source="APP", client_redirect_url=back)
    created = (await create_oauth(platform, boot)).json()["member"]
    guid = created["guid"]
    r = await authorize(platform, created["oauth_window_uri"], decision="deny")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"{back}?status=error&member_guid={guid}"
    again = (await platform.http.get(f"/users/{user}/members/{guid}")).json()["member"]
    assert again["connection_status"] == "DENIED" and await jobs_of(platform, guid) == []
    assert "must reconnect" in again["connection_status_message"]
    assert (await authorize(platform, created["oauth_window_uri"])).status_code == 404

    # A fresh link from the widget's session (the widget asks for one to try again).
    fresh = await platform.http.get(
        f"/connect/api/members/{guid}/oauth_window_uri", headers=bearer(boot)
    )
    assert fresh.status_code == 200, fresh.text
    r = await authorize(platform, fresh.json()["member"]["oauth_window_uri"])
    assert r.headers["location"] == f"{back}?status=success&member_guid={guid}"
    await platform.drain()
    assert (await member(platform.http, user, guid))["connection_status"] == "CONNECTED"
    # The token the sandbox bank granted is sealed with the member.
    async with platform.rt.db.read() as s:
        stored = await s.scalar(select(Member).where(Member.guid == guid))
    assert stored is not None and stored.oauth_verifier_enc is None
    token = vault.open_secrets(platform.rt, stored)["access_token"]
    assert token.startswith("sbx-at-") and token.encode() not in (stored.secrets_enc or b"")


async def test_a_callback_that_was_not_started_here_or_forges_its_code_connects_nothing(
    platform: Platform,
) -> None:
    user = await new_user(platform.http)
    body = {"member": {"institution_code": OAUTH_BANK, "is_oauth": True}}
    created = (await platform.http.post(f"/users/{user}/members", json=body)).json()["member"]
    token = urlsplit(created["oauth_window_uri"]).path.rsplit("/", 1)[1]

    r = await platform.http.get(f"/oauth/callback?state={token}&code=x")
    assert r.status_code == 400 and "not started here" in r.text  # no PKCE verifier yet
    start = await platform.http.get(local(created["oauth_window_uri"]))
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    r = await platform.http.get(f"/oauth/callback?state={state}&code=sbx-code.forged")
    assert r.status_code == 400 and "did not confirm access" in r.text
    r = await platform.http.get("/oauth/callback?state=nobody&code=x")
    assert r.status_code == 404
    # The consent page sends nobody to another site.
    r = await platform.http.get(
        f"{SANDBOX_OAUTH_AUTHORIZE_PATH}?redirect_uri=https://evil.test/oauth/callback&state=s"
    )
    assert r.status_code == 400
    got = (await platform.http.get(f"/users/{user}/members/{created['guid']}")).json()
    assert got["member"]["connection_status"] == "PENDING"
    assert await jobs_of(platform, created["guid"]) == []
