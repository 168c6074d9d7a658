"""Small helpers for in-process API tests."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from openagg.connectors.sandbox import SANDBOX_OAUTH_AUTHORIZE_PATH
from tests.conftest import Platform
from tests.support import credentials_for


async def new_user(http: httpx.AsyncClient, **fields: Any) -> str:
    r = await http.post("/users", json={"user": fields})
    assert r.status_code == 200, r.text
    return str(r.json()["user"]["guid"])


async def institution_credentials(http: httpx.AsyncClient, code: str) -> list[dict[str, Any]]:
    r = await http.get(f"/institutions/{code}/credentials")
    assert r.status_code == 200, r.text
    creds: list[dict[str, Any]] = r.json()["credentials"]
    return creds


async def create_member(
    http: httpx.AsyncClient,
    user: str,
    password: str,
    *,
    code: str = "mxbank",
    username: str | None = None,
    expect: int | None = None,
    **member_fields: Any,
) -> httpx.Response:
    username = username or ("mxuser" if code == "mxbank" else "user_good")
    creds = credentials_for(await institution_credentials(http, code), username, password)
    body = {"member": {"institution_code": code, "credentials": creds, **member_fields}}
    r = await http.post(f"/users/{user}/members", json=body)
    if expect is not None:
        assert r.status_code == expect, r.text
    return r


async def member(http: httpx.AsyncClient, user: str, guid: str) -> dict[str, Any]:
    r = await http.get(f"/users/{user}/members/{guid}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["member"]
    return body


async def status(http: httpx.AsyncClient, user: str, guid: str) -> dict[str, Any]:
    r = await http.get(f"/users/{user}/members/{guid}/status")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["member"]
    return body


def local(url: str) -> str:
    """An absolute link of the in-process platform as a path for its client."""
    parts = urlsplit(url)
    assert parts.netloc in ("openagg.test", ""), url
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def authorize(platform: Platform, uri: str, decision: str = "allow") -> httpx.Response:
    """The end user's browser through the OAuth step: the member's link, the sandbox
    bank's consent page, the decision, then the platform's callback, whose answer is
    returned (or the first answer that is not a redirect)."""
    http = platform.http
    start = await http.get(local(uri))
    if start.status_code != 303:
        return start
    consent = await http.get(local(start.headers["location"]))
    assert consent.status_code == 200, consent.text
    fields = {
        k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', consent.text)
    }
    decided = await http.post(SANDBOX_OAUTH_AUTHORIZE_PATH, data={**fields, "decision": decision})
    assert decided.status_code == 303, decided.text
    return await http.get(local(decided.headers["location"]))
