"""Bad input gets a clear 4xx with a message, never a 500, never a half-written record."""

from __future__ import annotations

import base64

import httpx
import pytest
from sqlalchemy import func, select

from openagg.db.models import Member, User
from openagg.services.clients import create_client
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, new_user
from tests.support import MXBANK_PASSWORD, MXBANK_USERNAME


async def counts(p: Platform) -> tuple[int, int]:
    async with p.rt.db.read() as s:
        users = await s.scalar(select(func.count()).select_from(User))
        members = await s.scalar(select(func.count()).select_from(Member))
    return users or 0, members or 0


def creds(password: str = "pw") -> list[dict[str, str]]:
    return [
        {"guid": MXBANK_USERNAME, "value": "mxuser"},
        {"guid": MXBANK_PASSWORD, "value": password},
    ]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "body is required"),
        (b"[]", "JSON object"),
        (b'{"member": {}}', "missing field 'member.institution_code'"),
        (
            b'{"member": {"institution_code": "mxbank", "credentials": [], "colour": 1}}',
            "unknown field 'member.colour'",
        ),
        (b'{"member": {"institution_code": 7}}', "member.institution_code"),
        (b'{"member": {"institution_code": "nope", "credentials": []}}', "not a known"),
        (b'{"member": {"institution_code": "mxbank"}}', "credentials are required"),
        (
            b'{"member": {"institution_code": "mxbank", "credentials": '
            b'[{"guid": "CRD-x", "value": "a"}]}}',
            "does not belong",
        ),
        (
            b'{"member": {"institution_code": "mxbank", "credentials": '
            b'[{"guid": "CRD-9f61fb4c-912c-bd1e-b175-ccc7f0275cc1", "value": "a"}]}}',
            "Missing credentials: Password",
        ),
        (
            b'{"member": {"institution_code": "mxbank", "skip_aggregation": "yes"}}',
            "skip_aggregation",
        ),
        (b'{"member": {"institution_code": "mxbank", "use_cases": ["FOO"]}}', "use_cases"),
    ],
)
async def test_create_member_rejects(platform: Platform, body: bytes, fragment: str) -> None:
    user = await new_user(platform.http)
    before = await counts(platform)
    r = await platform.http.post(
        f"/users/{user}/members", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]["message"]
    assert await counts(platform) == before


async def test_bad_guids_and_paths_are_404(platform: Platform) -> None:
    user = await new_user(platform.http)
    for path in (
        "/users/USR-nope",
        f"/users/{user}/members/MBR-nope",
        f"/users/{user}/accounts/ACT-nope",
        f"/users/{user}/transactions/TRN-nope",
        f"/users/{user}/investment_holdings/HOL-nope",
        "/institutions/nope",
        "/no/such/path",
    ):
        r = await platform.http.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["message"]


@pytest.mark.parametrize(
    "query",
    [
        "from_date=2024-13-01",
        "to_date=yesterday",
        "page=0",
        "page=x",
        "records_per_page=ten",
        "from_date=2024-05-01&to_date=2024-04-01",
        "includes=merchants,planets",
        "from_updated_at=2024-01-01&to_updated_at=2024-12-01",
    ],
)
async def test_bad_transaction_queries_are_400(platform: Platform, query: str) -> None:
    user = await new_user(platform.http)
    r = await platform.http.get(f"/users/{user}/transactions?{query}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"]


async def test_bad_booleans_are_400(platform: Platform) -> None:
    r = await platform.http.get("/users?is_disabled=maybe")
    assert r.status_code == 400 and "true or false" in r.json()["error"]["message"]


async def test_update_with_empty_body_is_400(platform: Platform) -> None:
    user = await new_user(platform.http)
    guid = (await create_member(platform.http, user, "pw", expect=202)).json()["member"]["guid"]
    r = await platform.http.put(f"/users/{user}/members/{guid}", json={"member": {}})
    assert r.status_code == 400 and "can't be empty" in r.json()["error"]["message"]


async def test_resume_rules(platform: Platform) -> None:
    user = await new_user(platform.http)
    guid = (await create_member(platform.http, user, "challenge", expect=202)).json()["member"][
        "guid"
    ]
    url = f"/users/{user}/members/{guid}/resume"
    r = await platform.http.put(
        url, json={"member": {"challenges": [{"guid": "CRD-x", "value": "a"}]}}
    )
    assert r.status_code == 422  # not challenged yet: the job has not run
    await platform.drain()
    r = await platform.http.put(
        url, json={"member": {"challenges": [{"guid": "CRD-x", "value": "a"}]}}
    )
    assert r.status_code == 400 and "Unknown challenge" in r.json()["error"]["message"]
    r = await platform.http.put(url, json={"member": {"challenges": []}})
    assert r.status_code == 400


async def test_duplicates_are_409(platform: Platform) -> None:
    user = await new_user(platform.http, id="partner-1")
    r = await platform.http.post("/users", json={"user": {"id": "partner-1"}})
    assert r.status_code == 409
    await create_member(platform.http, user, "same", expect=202)
    r = await create_member(platform.http, user, "same")
    assert r.status_code == 409
    await create_member(platform.http, user, "other", id="m-1", expect=202)
    assert (await create_member(platform.http, user, "third", id="m-1")).status_code == 409


async def test_unsupported_premium_job_is_400(platform: Platform) -> None:
    user = await new_user(platform.http)
    body = {"member": {"institution_code": "mx_bank_oauth", "is_oauth": True}}
    guid = (await platform.http.post(f"/users/{user}/members", json=body)).json()["member"]["guid"]
    r = await platform.http.post(f"/users/{user}/members/{guid}/verify")
    assert r.status_code in (400, 422)


async def test_an_oauth_only_institution_without_is_oauth_is_400(platform: Platform) -> None:
    user = await new_user(platform.http)
    body = {"member": {"institution_code": "mx_bank_oauth"}}
    r = await platform.http.post(f"/users/{user}/members", json=body)
    assert r.status_code == 400 and "is_oauth" in r.json()["error"]["message"]
    r = await platform.http.get(f"/users/{user}/members")
    assert r.json()["members"] == []  # nothing half-made


async def test_auth_and_tenancy(platform: Platform) -> None:
    user = await new_user(platform.http)
    guid = (await create_member(platform.http, user, "pw", expect=202)).json()["member"]["guid"]
    await platform.drain()
    anon = httpx.AsyncClient(transport=platform.http._transport, base_url="http://openagg.test")
    r = await anon.get("/users")
    assert r.status_code == 401 and r.json()["error"]["message"]
    bad = base64.b64encode(b"nobody:wrong").decode()
    r = await anon.get("/users", headers={"Authorization": f"Basic {bad}"})
    assert r.status_code == 401
    other = await create_client(platform.rt, "Other")
    token = base64.b64encode(f"{other.client.client_id}:{other.api_key}".encode()).decode()
    anon.headers["Authorization"] = f"Basic {token}"
    for path in (
        f"/users/{user}",
        f"/users/{user}/members/{guid}",
        f"/users/{user}/accounts",
        f"/users/{user}/transactions",
    ):
        assert (await anon.get(path)).status_code == 404, path
    assert (await anon.get("/users")).json()["users"] == []
    assert (await anon.delete(f"/users/{user}")).status_code == 404
    assert (await platform.http.get(f"/users/{user}")).status_code == 200
    await anon.aclose()


async def test_only_the_mx_api_asks_for_basic_credentials(platform: Platform) -> None:
    """A browser answers a Basic challenge with its own password dialog: the web pages'
    APIs (widget, console, portal) must not send one."""
    http = platform.http
    r = await http.get("/users", headers={"Authorization": ""})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    r = await http.get("/connect/api/institutions", headers={"Authorization": ""})
    assert r.status_code == 401 and "www-authenticate" not in r.headers
