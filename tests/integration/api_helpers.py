"""Small helpers for in-process API tests."""

from __future__ import annotations

from typing import Any

import httpx

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
