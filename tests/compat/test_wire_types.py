"""Wire details MX's SDKs rely on, checked over a live server with plain httpx:
media types, the error envelope, pagination rules and query-string encodings."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import VENV_BIN, LiveServer
from tests.support import MXBANK_PASSWORD, MXBANK_USERNAME

V1 = "application/vnd.mx.api.v1+json"


def client_for(server: LiveServer, client_id: str, api_key: str) -> httpx.Client:
    """An httpx client speaking v1 with Basic auth."""
    return httpx.Client(
        base_url=server.url, auth=(client_id, api_key), headers={"Accept": V1}, timeout=10
    )


def assert_error(resp: httpx.Response, status: int) -> str:
    """MX's error envelope: the status, the v1 media type and {"error":{"message":…}}."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(V1)
    body = resp.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], dict)
    message = body["error"].get("message")
    assert isinstance(message, str) and message, body
    return message


def create_user(http: httpx.Client) -> str:
    resp = http.post("/users", json={"user": {"id": f"wire-{uuid.uuid4().hex[:12]}"}})
    assert resp.status_code == 200, resp.text
    guid: str = resp.json()["user"]["guid"]
    return guid


def mxbank_member_body(*, skip_aggregation: bool = False, password: str = "pass") -> dict[str, Any]:
    return {
        "member": {
            "institution_code": "mxbank",
            "credentials": [
                {"guid": MXBANK_USERNAME, "value": "mxuser"},
                {"guid": MXBANK_PASSWORD, "value": password},
            ],
            "skip_aggregation": skip_aggregation,
        }
    }


@dataclass
class Connected:
    """A user with one CONNECTED mxbank member."""

    user_guid: str
    member_guid: str


@pytest.fixture(scope="module")
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with client_for(live_server, live_server.client_id, live_server.api_key) as c:
        yield c


@pytest.fixture(scope="module")
def connected(http: httpx.Client) -> Connected:
    """Create an mxbank member and wait until it is CONNECTED and idle."""
    user = create_user(http)
    resp = http.post(f"/users/{user}/members", json=mxbank_member_body())
    assert resp.status_code == 202, resp.text
    member = resp.json()["member"]["guid"]
    deadline = time.monotonic() + 30
    while True:
        status = http.get(f"/users/{user}/members/{member}/status").json()["member"]
        if status["connection_status"] == "CONNECTED" and not status["is_being_aggregated"]:
            return Connected(user, member)
        assert time.monotonic() < deadline, f"member never connected: {status}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def many_users(http: httpx.Client) -> int:
    """At least 12 users for this client, so pages of 10 split; returns the total."""
    for _ in range(12):
        create_user(http)
    total: int = http.get("/users").json()["pagination"]["total_entries"]
    assert total >= 12
    return total


# --- media types and the error envelope --------------------------------------------


def test_success_content_type(http: httpx.Client) -> None:
    resp = http.get("/institutions")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith(V1)


def test_missing_accept_on_delete_member(http: httpx.Client) -> None:
    """The SDK's delete_member sends no Accept header; that must not be a 406."""
    user = create_user(http)
    resp = http.post(f"/users/{user}/members", json=mxbank_member_body(skip_aggregation=True))
    assert resp.status_code == 200, resp.text
    member = resp.json()["member"]["guid"]
    request = http.build_request("DELETE", f"/users/{user}/members/{member}")
    del request.headers["Accept"]
    assert "accept" not in request.headers
    resp = http.send(request)
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    assert_error(http.get(f"/users/{user}/members/{member}"), 404)


@pytest.mark.parametrize("accept", ["*/*", "application/json"])
def test_generic_accept_is_v1(http: httpx.Client, accept: str) -> None:
    resp = http.get("/institutions", headers={"Accept": accept})
    assert resp.status_code == 200, resp.text


def test_unknown_version_is_406(http: httpx.Client) -> None:
    resp = http.get("/institutions", headers={"Accept": "application/vnd.mx.api.v2+json"})
    assert_error(resp, 406)


@pytest.mark.parametrize(
    "auth",
    [None, ("nobody", "wrong"), "wrong-key"],
    ids=["missing", "unknown-client", "wrong-key"],
)
def test_bad_basic_auth_is_401(live_server: LiveServer, auth: Any) -> None:
    if auth == "wrong-key":
        auth = (live_server.client_id, "not-the-key")
    resp = httpx.get(f"{live_server.url}/users", auth=auth, headers={"Accept": V1}, timeout=10)
    assert_error(resp, 401)


def test_malformed_basic_auth_is_401(live_server: LiveServer) -> None:
    headers = {"Accept": V1, "Authorization": "Basic !!!not-base64!!!"}
    assert_error(httpx.get(f"{live_server.url}/users", headers=headers, timeout=10), 401)


@pytest.mark.parametrize(
    "path",
    [
        "/users/USR-00000000-0000-0000-0000-000000000000",
        "/users/USR-00000000-0000-0000-0000-000000000000/members",
        "/institutions/no_such_bank",
        "/institutions/no_such_bank/credentials",
    ],
)
def test_unknown_guid_is_404(http: httpx.Client, path: str) -> None:
    assert_error(http.get(path), 404)


def test_unknown_member_is_404(http: httpx.Client) -> None:
    user = create_user(http)
    missing = "MBR-00000000-0000-0000-0000-000000000000"
    assert_error(http.get(f"/users/{user}/members/{missing}"), 404)
    assert_error(http.post(f"/users/{user}/members/{missing}/aggregate"), 404)


def test_other_clients_user_is_404(live_server: LiveServer, http: httpx.Client) -> None:
    """Clients are tenants: another client's user guid does not exist for you."""
    out = subprocess.run(
        [str(VENV_BIN / "openagg"), "clients", "create", "--name", "Other tenant", "--json"],
        env=live_server.env,
        check=True,
        capture_output=True,
        text=True,
    )
    creds = json.loads(out.stdout)
    with client_for(live_server, creds["client_id"], creds["api_key"]) as other:
        theirs = create_user(other)
        assert other.get(f"/users/{theirs}").status_code == 200
    assert_error(http.get(f"/users/{theirs}"), 404)
    assert_error(http.get(f"/users/{theirs}/members"), 404)
    assert_error(http.put(f"/users/{theirs}", json={"user": {"metadata": "x"}}), 404)
    assert_error(http.delete(f"/users/{theirs}"), 404)
    listed = http.get("/users", params={"records_per_page": 1000}).json()["users"]
    assert theirs not in {u["guid"] for u in listed}


# --- pagination ---------------------------------------------------------------------


def test_records_per_page_above_cap_falls_back_to_25(http: httpx.Client, many_users: int) -> None:
    page = http.get("/users", params={"records_per_page": 1001}).json()["pagination"]
    assert page["per_page"] == 25
    page = http.get("/users", params={"records_per_page": 1000}).json()["pagination"]
    assert page["per_page"] == 1000
    # Institutions cap at 100.
    page = http.get("/institutions", params={"records_per_page": 101}).json()["pagination"]
    assert page["per_page"] == 25
    page = http.get("/institutions", params={"records_per_page": 100}).json()["pagination"]
    assert page["per_page"] == 100


@pytest.mark.parametrize("asked", [1, 5, 9])
def test_records_per_page_below_10_becomes_10(
    http: httpx.Client, many_users: int, asked: int
) -> None:
    body = http.get("/users", params={"records_per_page": asked}).json()
    assert body["pagination"]["per_page"] == 10
    assert len(body["users"]) == 10


def test_pagination_types_and_totals(http: httpx.Client, many_users: int) -> None:
    body = http.get("/users", params={"records_per_page": 10, "page": 2}).json()
    page = body["pagination"]
    assert set(page) == {"current_page", "per_page", "total_entries", "total_pages"}
    assert all(type(v) is int for v in page.values()), page
    assert page == {
        "current_page": 2,
        "per_page": 10,
        "total_entries": many_users,
        "total_pages": -(-many_users // 10),
    }
    assert len(body["users"]) == min(10, many_users - 10)


def test_page_past_the_end_is_empty(http: httpx.Client, many_users: int) -> None:
    resp = http.get("/users", params={"records_per_page": 10, "page": 99})
    assert resp.status_code == 200
    body = resp.json()
    assert body["users"] == []
    assert body["pagination"] == {
        "current_page": 99,
        "per_page": 10,
        "total_entries": many_users,
        "total_pages": -(-many_users // 10),
    }


# --- query-string encodings -----------------------------------------------------------


def _codes(resp: httpx.Response) -> set[str]:
    assert resp.status_code == 200, resp.text
    return {i["code"] for i in resp.json()["institutions"]}


@pytest.mark.parametrize("true", ["True", "true", "TRUE"])
@pytest.mark.parametrize("false", ["False", "false", "FALSE"])
def test_booleans_any_case(http: httpx.Client, true: str, false: str) -> None:
    """The Python SDK sends True/False capitalised; any case must work."""
    codes = _codes(
        http.get(
            "/institutions",
            params={"supports_account_verification": true, "supports_account_statement": false},
        )
    )
    assert "mxbank" in codes
    assert "mxbank" not in _codes(
        http.get("/institutions", params={"supports_account_statement": true})
    )
    resp = http.get("/users", params={"is_disabled": false})
    assert resp.status_code == 200, resp.text


def test_bad_boolean_is_400(http: httpx.Client) -> None:
    """A value that is no boolean at all is a 400 with the envelope."""
    assert_error(http.get("/institutions", params={"supports_account_statement": "maybe"}), 400)
    assert_error(http.get("/users", params={"is_disabled": "maybe"}), 400)


def test_repeated_key_arrays(http: httpx.Client) -> None:
    both = http.get(
        "/institutions", params=[("iso_country_code", "US"), ("iso_country_code", "CA")]
    )
    assert "mxbank" in _codes(both)
    bracketed = http.get(
        "/institutions", params=[("iso_country_code[]", "CA"), ("iso_country_code[]", "US")]
    )
    assert "mxbank" in _codes(bracketed)
    assert "mxbank" not in _codes(http.get("/institutions", params={"iso_country_code": "CA"}))


def test_category_guid_arrays(http: httpx.Client, connected: Connected) -> None:
    """`category_guid[]` (percent-encoded on the wire) and bare repeated keys filter."""
    url = f"/users/{connected.user_guid}/transactions"
    everything = http.get(url, params={"records_per_page": 1000}).json()["transactions"]
    categories = sorted({t["category_guid"] for t in everything if t.get("category_guid")})
    assert len(categories) >= 2, "sandbox data should span several categories"
    wanted = categories[:2]
    expected = sum(1 for t in everything if t.get("category_guid") in wanted)
    for key in ("category_guid[]", "category_guid"):
        params = [(key, c) for c in wanted] + [("records_per_page", "1000")]
        resp = http.get(url, params=params)
        assert resp.status_code == 200, resp.text
        assert "%5B%5D" in str(resp.request.url) or key == "category_guid"
        got = resp.json()
        assert {t["category_guid"] for t in got["transactions"]} == set(wanted)
        assert got["pagination"]["total_entries"] == expected
    one = http.get(url, params={"category_guid": wanted[0], "records_per_page": 1000}).json()
    assert {t["category_guid"] for t in one["transactions"]} == {wanted[0]}
