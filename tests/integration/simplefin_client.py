"""A SimpleFIN app written from the protocol (simplefin.org's protocol.md), over real
sockets with httpx, and the platform served on loopback for it.

The parsing rules of Firefly III (its required fields and ``accounts[0]``), which
cannot run here, and of Actual Budget (its cents), are mimicked next to it, from
/work/shared/reference/connectors.md section 1. Actual's own server also runs against
OpenAgg, in test_simplefin_actual.py.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
import uvicorn
from fastapi import FastAPI

from tests.conftest import free_port


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a loopback port of its own, in this event loop; yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class SimplefinApp:
    """What a budget app does with a setup token: claim it once, keep the access URL,
    then GET ``<access root>/accounts`` with the URL's Basic credentials."""

    def __init__(self, access_url: str) -> None:
        parts = urlsplit(access_url)
        assert parts.username and parts.password, access_url
        self.access_url = access_url
        self.auth = (unquote(parts.username), unquote(parts.password))
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.root = urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    @staticmethod
    async def claim_response(setup_token: str) -> httpx.Response:
        claim_url = base64.b64decode(setup_token, validate=True).decode()
        async with httpx.AsyncClient() as http:
            return await http.post(claim_url, headers={"Content-Length": "0"})

    @classmethod
    async def claim(cls, setup_token: str) -> SimplefinApp:
        r = await cls.claim_response(setup_token)
        assert r.status_code == 200, r.text
        return cls(r.text.strip())

    async def get(self, path: str = "/accounts", **params: Any) -> httpx.Response:
        async with httpx.AsyncClient(auth=self.auth) as http:
            return await http.get(self.root + path, params=params)

    async def accounts(self, **params: Any) -> dict[str, Any]:
        r = await self.get(**params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


# --- the real clients' parsing rules ---------------------------------------------------

# Actual Budget: the access URL must look like this, or it is refused.
ACTUAL_ACCESS_URL = re.compile(r"^.*//.*:.*@.*$")
# Firefly III: the decoded token must be a claim URL of this form.
FIREFLY_CLAIM_URL = re.compile(r"^https?://.+/simplefin/claim/.+$")


def actual_cents(value: str) -> int:
    """Actual Budget's ``parseInt(value.replace(".", ""))``: right only with two decimals."""
    match = re.match(r"^\s*([+-]?\d+)", value.replace(".", "", 1))
    assert match, value
    return int(match.group(1))


def actual_is_pending(t: dict[str, Any]) -> bool:
    """Actual's ``trans.pending ?? (trans.posted === 0)``."""
    pending = t.get("pending")
    return bool(pending) if pending is not None else t["posted"] == 0


def firefly_check_account(account: dict[str, Any]) -> None:
    """What Firefly III's importer throws on, and the PHP types it declares."""
    org = account["org"]
    assert isinstance(org, dict)
    assert org.get("domain") is not None and org.get("name") is not None
    assert org.get("sfin-url") is not None
    for key in ("id", "name", "currency", "balance"):
        assert isinstance(account[key], str), key
    assert isinstance(account["balance-date"], int) and not isinstance(
        account["balance-date"], bool
    )
    for t in account["transactions"]:
        assert isinstance(t["id"], str) and isinstance(t["amount"], str)
        assert isinstance(t["posted"], int) and isinstance(t["description"], str)
