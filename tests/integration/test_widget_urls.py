"""Widget URLs (MX's shapes and validation), the page a URL opens (single use, expiry,
tampering) and the widget session's reach (only its own user's members)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from openagg.crypto import hash_api_key
from openagg.db.models import Institution, Member, WidgetSession
from openagg.domain.statuses import NEEDS_NEW_CREDENTIALS, NOT_AGGREGATABLE, Status
from openagg.domain.tickets import ENGINEER_FIXABLE
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, member, new_user
from tests.support import MXBANK_CREDENTIALS, MXBANK_USERNAME


async def widget_url(platform: Platform, user: str, **options: Any) -> str:
    body = {"widget_url": {"widget_type": "connect_widget", **options}}
    r = await platform.http.post(f"/users/{user}/widget_urls", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["widget_url"]["url"])


def boot_of(page: httpx.Response) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="oa-boot">(.*?)</script>', page.text)
    assert found, page.text
    boot: dict[str, Any] = json.loads(found.group(1))
    return boot


async def open_session(platform: Platform, user: str, **options: Any) -> dict[str, Any]:
    page = await platform.http.get(await widget_url(platform, user, **options))
    assert page.status_code == 200, page.text
    return boot_of(page)


def bearer(boot: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {boot['session_token']}"}


@pytest.fixture
async def no_verify_bank(platform: Platform) -> str:
    """An institution without account verification (every sandbox bank verifies)."""
    async with platform.rt.db.write() as s:
        s.add(
            Institution(
                code="plain_bank",
                guid="INS-00000000-0000-4000-8000-00000000beef",
                name="Plain Bank",
                connector="sandbox",
                profile={"supports_account_verification": False, "url": "https://plain.test"},
                credentials=[],
            )
        )
    return "plain_bank"


async def test_widget_url_shape(platform: Platform) -> None:
    user = await new_user(platform.http, id="partner-7")
    r = await platform.http.post(
        f"/users/{user}/widget_urls", json={"widget_url": {"widget_type": "connect_widget"}}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.mx.api.v1+json")
    body = r.json()
    assert list(body) == ["widget_url"]
    assert set(body["widget_url"]) == {"type", "url", "user_id"}
    assert body["widget_url"]["type"] == "connect_widget"
    assert body["widget_url"]["user_id"] == "partner-7"
    assert re.fullmatch(
        r"http://openagg\.test/connect/[A-Za-z0-9_-]{40,}", body["widget_url"]["url"]
    )


async def test_user_id_is_null_without_partner_id(platform: Platform) -> None:
    user = await new_user(platform.http)
    r = await platform.http.post(
        f"/users/{user}/widget_urls", json={"widget_url": {"widget_type": "connect_widget"}}
    )
    assert r.json()["widget_url"]["user_id"] is None


async def test_legacy_connect_widget_url(platform: Platform) -> None:
    user = await new_user(platform.http)
    for kwargs in ({}, {"json": {"config": {"is_mobile_webview": True, "mode": "aggregation"}}}):
        r = await platform.http.post(f"/users/{user}/connect_widget_url", **kwargs)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body["user"]) == {"connect_widget_url", "guid"}
        assert body["user"]["guid"] == user
        assert "/connect/" in body["user"]["connect_widget_url"]
    page = await platform.http.get(body["user"]["connect_widget_url"])
    assert boot_of(page)["options"]["is_mobile_webview"] is True
    bad = await platform.http.post(f"/users/{user}/connect_widget_url", json={"config": {"x": 1}})
    assert bad.status_code == 400
    assert "unknown field 'config.x'" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "missing field 'widget_url.widget_type'"),
        ({"widget_type": "budgets_widget"}, "widget_type 'budgets_widget' is not served"),
        ({"widget_type": "connect_widget", "mode": "iav"}, "widget_url.mode"),
        ({"widget_type": "connect_widget", "ui_message_version": 3}, "must be 4"),
        ({"widget_type": "connect_widget", "color_scheme": "blue"}, "color_scheme"),
        ({"widget_type": "connect_widget", "is_mobile_webview": "true"}, "is_mobile_webview"),
        ({"widget_type": "connect_widget", "colour": "dark"}, "unknown field 'widget_url.colour'"),
        (
            {"widget_type": "connect_widget", "disable_institution_search": True},
            "disable_institution_search needs",
        ),
        ({"widget_type": "connect_widget", "update_credentials": True}, "needs current_member"),
        ({"widget_type": "connect_widget", "current_institution_code": "nope"}, "not a known"),
        (
            {"widget_type": "connect_widget", "ui_message_webview_url_scheme": "javascript"},
            "not a usable URL scheme",
        ),
        (
            {"widget_type": "connect_widget", "client_redirect_url": "javascript:alert(1)"},
            "client_redirect_url",
        ),
        (
            {
                "widget_type": "connect_widget",
                "mode": "verification",
                "current_institution_code": "plain_bank",
            },
            "does not support verification",
        ),
    ],
)
async def test_widget_url_validation(
    platform: Platform, no_verify_bank: str, fields: dict[str, Any], message: str
) -> None:
    user = await new_user(platform.http)
    r = await platform.http.post(f"/users/{user}/widget_urls", json={"widget_url": fields})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]


async def test_widget_url_needs_auth_and_own_user(platform: Platform) -> None:
    user = await new_user(platform.http)
    body = {"widget_url": {"widget_type": "connect_widget"}}
    r = await platform.http.post(
        f"/users/{user}/widget_urls", json=body, headers={"Authorization": ""}
    )
    assert r.status_code == 401
    r = await platform.http.post("/users/USR-nobody/widget_urls", json=body)
    assert r.status_code == 404
    r = await platform.http.post(f"/users/{user}/widget_urls", content=b"{not json")
    assert r.status_code == 400


async def test_current_member_must_be_the_users(platform: Platform) -> None:
    alice, bob = await new_user(platform.http), await new_user(platform.http)
    m = (await create_member(platform.http, alice, "good", expect=202)).json()["member"]["guid"]
    r = await platform.http.post(
        f"/users/{bob}/widget_urls",
        json={"widget_url": {"widget_type": "connect_widget", "current_member_guid": m}},
    )
    assert r.status_code == 404
    assert m in r.json()["error"]["message"]


async def test_url_opens_once(platform: Platform) -> None:
    user = await new_user(platform.http)
    url = await widget_url(platform, user, color_scheme="dark")
    first = await platform.http.get(url)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    assert 'data-color-scheme="dark"' in first.text
    boot = boot_of(first)
    assert boot["user_guid"] == user
    assert boot["session_guid"].startswith("WSN-")
    assert boot["options"]["mode"] == "aggregation"
    assert boot["options"]["ui_message_version"] == 4
    again = await platform.http.get(url)
    assert again.status_code == 410
    assert again.headers["content-type"].startswith("text/html")
    assert "already used" in again.text
    assert "Traceback" not in again.text


async def test_url_expires_after_ten_minutes(platform: Platform) -> None:
    user = await new_user(platform.http)
    fresh = await widget_url(platform, user)
    stale = await widget_url(platform, user)
    platform.clock.advance(seconds=599)
    assert (await platform.http.get(fresh)).status_code == 200
    platform.clock.advance(seconds=2)
    expired = await platform.http.get(stale)
    assert expired.status_code == 410
    assert "expired" in expired.text


async def test_tampered_url_is_401(platform: Platform) -> None:
    user = await new_user(platform.http)
    url = await widget_url(platform, user)
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    r = await platform.http.get(tampered)
    assert r.status_code == 401
    assert "not valid" in r.text
    assert (await platform.http.get(url)).status_code == 200  # the real one still opens


async def test_tokens_are_stored_hashed(platform: Platform) -> None:
    user = await new_user(platform.http)
    url = await widget_url(platform, user)
    url_token = url.rsplit("/", 1)[1]
    boot = boot_of(await platform.http.get(url))
    async with platform.rt.db.read() as s:
        row = await s.scalar(select(WidgetSession))
    assert row is not None
    assert row.url_token_hash == hash_api_key(url_token)
    assert row.session_token_hash == hash_api_key(boot["session_token"])
    stored = json.dumps([row.url_token_hash, row.session_token_hash, row.options])
    assert url_token not in stored and boot["session_token"] not in stored


async def test_boot_data_carries_the_status_groups(platform: Platform) -> None:
    """The widget's screens follow the domain's groups, in MX's order; it has no copy."""
    boot = await open_session(platform, await new_user(platform.http))
    groups = boot["status_groups"]
    assert groups["needs_new_credentials"] == ["PREVENTED", "DENIED", "IMPORTED", "IMPAIRED"]
    expected = {
        "needs_new_credentials": NEEDS_NEW_CREDENTIALS,
        "engineer_fixable": ENGINEER_FIXABLE,
        "not_aggregatable": NOT_AGGREGATABLE,
    }
    assert {name: {Status(s) for s in group} for name, group in groups.items()} == expected


async def test_session_api_auth(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    ok = await platform.http.get("/connect/api/institutions?q=mx", headers=bearer(boot))
    assert ok.status_code == 200
    assert {i["code"] for i in ok.json()["institutions"]} >= {"mxbank", "mx_bank_oauth"}
    assert (await platform.http.get("/connect/api/institutions")).status_code == 401
    bad = await platform.http.get(
        "/connect/api/institutions", headers={"Authorization": "Bearer forged"}
    )
    assert bad.status_code == 401
    platform.clock.advance(seconds=platform.rt.settings.widget_session_ttl_seconds + 1)
    expired = await platform.http.get("/connect/api/institutions", headers=bearer(boot))
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


async def test_session_cannot_touch_another_users_member(platform: Platform) -> None:
    alice, bob = await new_user(platform.http), await new_user(platform.http)
    theirs = (await create_member(platform.http, alice, "good", expect=202)).json()["member"]
    boot = await open_session(platform, bob)
    guid = theirs["guid"]
    h = bearer(boot)
    answers = {"challenges": [{"guid": "CRD-x", "value": "x"}]}
    creds = {"credentials": [{"guid": MXBANK_USERNAME, "value": "mxuser"}]}
    for method, path, body in [
        ("GET", f"/connect/api/members/{guid}", None),
        ("GET", f"/connect/api/members/{guid}/accounts", None),
        ("PUT", f"/connect/api/members/{guid}/credentials", creds),
        ("PUT", f"/connect/api/members/{guid}/resume", answers),
        ("POST", f"/connect/api/members/{guid}/retry", None),
        ("DELETE", f"/connect/api/members/{guid}", None),
    ]:
        r = await platform.http.request(method, path, json=body, headers=h)
        assert r.status_code == 404, (method, path, r.text)
    assert (await member(platform.http, alice, guid))["guid"] == guid


async def test_session_creates_member_and_marks_presence(platform: Platform) -> None:
    user = await new_user(platform.http)
    boot = await open_session(platform, user)
    body = {
        "institution_code": "mxbank",
        "credentials": MXBANK_CREDENTIALS,
    }
    r = await platform.http.post("/connect/api/members", json=body, headers=bearer(boot))
    assert r.status_code == 202, r.text
    created = r.json()["member"]
    assert created["connection_status"] == "CREATED"
    assert created["connection_status_id"] == 0
    assert created["institution"]["guid"].startswith("INS-")
    await platform.drain()
    r = await platform.http.get(f"/connect/api/members/{created['guid']}", headers=bearer(boot))
    assert r.json()["member"]["connection_status_id"] == 6  # CONNECTED
    async with platform.rt.db.read() as s:
        row = await s.scalar(select(Member).where(Member.guid == created["guid"]))
    assert row is not None and row.end_user_present_at == platform.clock.now
    # A bad body is a 400 with a message, and nothing is written.
    bad = await platform.http.post(
        "/connect/api/members", json={"institution_code": "mxbank"}, headers=bearer(boot)
    )
    assert bad.status_code == 400
    assert "credentials" in bad.json()["error"]["message"]


@pytest.mark.parametrize(("option", "disabled"), [(None, True), (False, False)])
async def test_verification_mode_background(
    platform: Platform, no_verify_bank: str, option: bool | None, disabled: bool
) -> None:
    user = await new_user(platform.http)
    extra = {} if option is None else {"disable_background_agg": option}
    boot = await open_session(platform, user, mode="verification", **extra)
    found = await platform.http.get("/connect/api/institutions", headers=bearer(boot))
    codes = {i["code"] for i in found.json()["institutions"]}
    assert "mxbank" in codes and no_verify_bank not in codes  # only banks that verify
    body = {
        "institution_code": "mxbank",
        "credentials": MXBANK_CREDENTIALS,
    }
    r = await platform.http.post("/connect/api/members", json=body, headers=bearer(boot))
    assert r.status_code == 202, r.text
    guid = r.json()["member"]["guid"]
    await platform.drain()
    m = await member(platform.http, user, guid)
    assert m["connection_status"] == "CONNECTED"
    assert m["background_aggregation_is_disabled"] is disabled
    numbers = await platform.http.get(f"/users/{user}/members/{guid}/account_numbers")
    assert numbers.status_code == 200 and numbers.json()["account_numbers"]
