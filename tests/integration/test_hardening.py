"""Small defects a security review and MX's definitions found (issue 21): numbers
that overflow the database, 405 without Allow, NUL bytes, is_authenticated after a
login that went through, a database file others could read, migration noise before
the demo's credentials. (Webhook URLs written as
legacy IPv4 literals: tests/integration/test_webhooks.py.)"""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import pytest

from openagg.db.migrate import upgrade
from tests.conftest import VENV_BIN, Platform, free_port, openagg_env
from tests.integration.api_helpers import create_member, new_user


@pytest.mark.parametrize(
    "path",
    [
        "/users",
        "/institutions",
        "/users/{user}/members",
        "/users/{user}/accounts",
        "/users/{user}/transactions",
        "/users/{user}/investment_holdings",
    ],
)
async def test_a_page_number_too_large_for_the_database_is_a_400(
    platform: Platform, path: str
) -> None:
    user = await new_user(platform.http)
    r = await platform.http.get(path.format(user=user) + "?page=400000000000000000")
    assert r.status_code == 400, r.text
    assert "'page' must be at most 2147483647" in r.json()["error"]["message"]
    assert r.headers["x-request-id"]


async def test_a_405_names_the_allowed_methods(platform: Platform) -> None:
    r = await platform.http.patch("/users")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_nul_is_refused_in_bodies_and_addresses(platform: Platform) -> None:
    r = await platform.http.post("/users", json={"user": {"id": "a\u0000b"}})
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"], r.text
    r = await platform.http.post("/users", json={"user": {"metadata": '["ok", "\u0000"]'}})
    assert r.status_code == 400, r.text
    assert (await platform.http.get("/users")).json()["users"] == []  # nothing stored
    r = await platform.http.get("/institutions?name=mx%00bank")
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"], r.text
    assert r.headers["x-request-id"]


async def test_a_login_that_went_through_is_authenticated_though_the_download_failed(
    platform: Platform,
) -> None:
    user = await new_user(platform.http)
    made = await create_member(platform.http, user, "error_after_login", code="sandbox_bank")
    guid = made.json()["member"]["guid"]
    await platform.drain()
    status = (await platform.http.get(f"/users/{user}/members/{guid}/status")).json()["member"]
    assert status["connection_status"] == "FAILED"
    assert status["is_authenticated"] is True
    # A login that did not go through still says false.
    other = await create_member(platform.http, user, "INVALID")
    await platform.drain()
    denied = other.json()["member"]["guid"]
    got = (await platform.http.get(f"/users/{user}/members/{denied}/status")).json()["member"]
    assert (got["connection_status"], got["is_authenticated"]) == ("DENIED", False)


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "openagg.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_demo_start_leads_with_the_credentials_not_migration_lines(tmp_path: Path) -> None:
    env = openagg_env(tmp_path)
    proc = subprocess.Popen(
        [str(VENV_BIN / "openagg"), "serve", "--demo", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "api_key:" in line or not line:
                break
    finally:
        proc.terminate()
        proc.wait(10)
    assert any("api_key:" in line for line in lines), lines
    assert not [line for line in lines if "alembic" in line or "migration" in line], lines
