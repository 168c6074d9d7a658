"""Defects a security review and MX's definitions found (issue 21): login throttles
that concurrency slipped past or that locked the owner out, bodies and strings of any
size, a 500 that broke the connection, a Host header reflected in a redirect, a
credential update that had to repeat every credential, booleans and OAuth parameters
ignored, sandbox transactions dated in the future, numbers that overflow the database,
405 without Allow, NUL bytes, is_authenticated after a login that went through, a
database file others could read, migration noise before the demo's credentials, no
request log, a 404 at /.
(Webhook URLs written as legacy IPv4 literals: tests/integration/test_webhooks.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sqlite3
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from select import select as ready_sockets

import httpx
import pytest
from sqlalchemy import select

from openagg.api.app import create_app
from openagg.db.migrate import upgrade
from openagg.db.models import Member
from openagg.services import operators, vault
from tests.conftest import (
    VENV_BIN,
    LiveServer,
    Platform,
    create_operator_with_cli,
    free_port,
    openagg_env,
    start_live_server,
)
from tests.databases import psql
from tests.integration.api_helpers import authorize, create_member, new_user, status
from tests.support import MXBANK_CREDENTIALS, MXBANK_PASSWORD, wait_healthy


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


async def test_the_trailing_slash_redirect_is_relative_whatever_the_host(
    platform: Platform,
) -> None:
    user = await new_user(platform.http)
    r = await platform.http.get(f"/users/{user}/?x=1", headers={"Host": "evil.example"})
    assert r.status_code == 307
    assert r.headers["location"] == f"/users/{user}?x=1"  # no host: the same server
    assert (await platform.http.get(r.headers["location"])).status_code == 200
    # Nothing served without the slash, or a path that reads as another host: 404.
    for path in ("/nothing/", "//evil.example/", "/users//"):
        # A whole URL, so that "//evil.example/" stays a path.
        url = httpx.URL("http://openagg.test" + path)
        r = await platform.http.get(url, headers={"Host": "evil.example"})
        assert r.request.url.path == path
        assert r.status_code == 404 and "location" not in r.headers, (path, r.headers)


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


# --- the login throttle (item 1) ---------------------------------------------------

ENGINEER = "owner@openagg.test"


@pytest.fixture(scope="module")
def login_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A live server (real sockets, the suite's database) with one operator; its
    password comes from ``openagg operators create``."""
    server = start_live_server(tmp_path_factory.mktemp("logins"))
    password = create_operator_with_cli(server.env, "Owner", ENGINEER)
    yield server, password
    server.stop()


async def _concurrently(
    server: LiveServer, path: str, bodies: list[dict[str, str]], address: str
) -> list[int]:
    """Every body POSTed at once, each on its own connection (from ``address``, as a
    trusted proxy on 127.0.0.1 forwards it)."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as http:
        answers = await asyncio.gather(
            *(http.post(path, json=body, headers={"X-Forwarded-For": address}) for body in bodies)
        )
    return [r.status_code for r in answers]


async def test_concurrent_console_logins_check_no_more_passwords_than_the_limit(
    login_server: tuple[LiveServer, str],
) -> None:
    server, password = login_server
    wrong = {"email": ENGINEER, "password": "not the password at all"}
    codes = await _concurrently(
        server,
        "/console/api/login",
        [wrong] * 199 + [{**wrong, "password": password}],
        "203.0.113.10",
    )
    counted = Counter(codes)
    # 10 attempts are counted (and checked) before the address must wait; the other
    # 190 are held back unchecked, whatever their order of arrival.
    assert counted[401] + counted[200] == 10, counted
    assert counted[429] == 190, counted
    # One by one, the right password now waits too.
    r = httpx.post(
        f"{server.url}/console/api/login",
        json={"email": ENGINEER, "password": password},
        headers={"X-Forwarded-For": "203.0.113.10"},
    )
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0, r.text


async def test_concurrent_portal_logins_check_no_more_keys_than_the_limit(
    login_server: tuple[LiveServer, str],
) -> None:
    server, _ = login_server
    wrong = {"client_id": server.client_id, "api_key": "guess"}
    codes = Counter(await _concurrently(server, "/portal/api/login", [wrong] * 60, "203.0.113.11"))
    assert codes == {401: 10, 429: 50}, codes


@pytest.fixture
async def owner(platform: Platform) -> str:
    made = await operators.create_operator(platform.rt, "Owner", ENGINEER)
    return made.password


def _browser_at(platform: Platform, address: str) -> httpx.AsyncClient:
    """A browser at its own client address (the socket's peer, as uvicorn sees it)."""
    transport = httpx.ASGITransport(
        app=create_app(platform.rt, run_worker=False), client=(address, 50000)
    )
    return httpx.AsyncClient(transport=transport, base_url="http://openagg.test")


async def _console_login(http: httpx.AsyncClient, password: str) -> httpx.Response:
    return await http.post("/console/api/login", json={"email": ENGINEER, "password": password})


async def test_knowing_an_email_does_not_lock_its_owner_out(platform: Platform, owner: str) -> None:
    async with (
        _browser_at(platform, "203.0.113.66") as attacker,
        _browser_at(platform, "198.51.100.20") as owner_browser,
    ):
        codes = [
            (await _console_login(attacker, "guess guess guess")).status_code for _ in range(30)
        ]
        assert codes == [401] * 10 + [429] * 20
        # The owner, from their own address, is not held back by the attacker's tries.
        assert (await _console_login(owner_browser, owner)).status_code == 200


async def test_the_delays_grow_after_each_failure_past_the_limit(
    platform: Platform, owner: str
) -> None:
    async with _browser_at(platform, "203.0.113.67") as attacker:
        for _ in range(10):
            assert (await _console_login(attacker, "guess guess guess")).status_code == 401
        waits = []
        for _ in range(4):
            held = await _console_login(attacker, "guess guess guess")
            assert held.status_code == 429
            assert "Too many failed logins. Try again in" in held.json()["error"]["message"]
            waits.append(int(held.headers["retry-after"]))
            platform.clock.advance(seconds=waits[-1])
            # One more try once the delay has passed; it fails, and the next wait doubles.
            assert (await _console_login(attacker, "guess guess guess")).status_code == 401
        assert waits == [15, 30, 60, 120]
        # Even the right password is not checked while held back.
        assert (await _console_login(attacker, owner)).status_code == 429
        # A window without failures forgets them.
        platform.clock.advance(seconds=platform.rt.settings.web_login_failure_window_seconds)
        assert (await _console_login(attacker, owner)).status_code == 200


async def test_many_addresses_at_one_account_are_slowed_not_locked_out(
    platform: Platform, owner: str
) -> None:
    platform.rt.settings.web_login_account_max_failures = 6
    for n in range(6):  # a botnet: two tries from each address
        async with _browser_at(platform, f"192.0.2.{n // 2}") as bot:
            assert (await _console_login(bot, "guess guess guess")).status_code == 401
    async with _browser_at(platform, "198.51.100.20") as owner_browser:
        held = await _console_login(owner_browser, owner)
        assert held.status_code == 429  # the account waits, a short time only
        assert int(held.headers["retry-after"]) == 15
        platform.clock.advance(seconds=15)
        assert (await _console_login(owner_browser, owner)).status_code == 200
        # The account's count is gone with the login.
        async with _browser_at(platform, "192.0.2.9") as bot:
            assert (await _console_login(bot, "guess guess guess")).status_code == 401


# --- size limits (item 2) ------------------------------------------------------------

MB = 1024 * 1024
CREDS = MXBANK_CREDENTIALS


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _send_chunked(url: str, path: str, total: int) -> bytes:
    """POST ``total`` bytes in 64 KiB chunks (no Content-Length), reading the answer
    as soon as the server gives one; returns what the server said."""
    host, port = url.removeprefix("http://").split(":")
    chunk = b"x" * 65536
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent = 0
        try:
            while sent < total:
                readable, _, _ = ready_sockets([sock], [], [], 0)
                if readable:
                    break  # the server answered before the body ended
                sock.sendall(b"10000\r\n" + chunk + b"\r\n")
                sent += len(chunk)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # it closed the connection: whatever it said is in the buffer
        answer = b""
        try:
            while part := sock.recv(65536):
                answer += part
                if b"\r\n\r\n" in answer:
                    break
        except ConnectionResetError:
            pass
        return answer


def test_a_large_body_is_refused_while_it_is_read_and_memory_does_not_grow(
    tmp_path: Path,
) -> None:
    server = start_live_server(tmp_path)
    try:
        pid = server.process.pid
        before = _rss_bytes(pid)
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(
                    lambda _: _send_chunked(server.url, "/console/api/login", 100 * MB), range(4)
                )
            )
        grown = _rss_bytes(pid) - before
        # Four 100 MB bodies: the server read about 1 MB of each, then stopped.
        assert grown < 40 * MB, f"the server grew by {grown / MB:.0f} MB"
        for answer in answers:
            assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
            assert b"connection: close" in answer.lower(), answer
            assert b"x-request-id" in answer.lower(), answer
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()


async def test_a_declared_length_over_the_limit_is_413_unread(platform: Platform) -> None:
    r = await platform.http.post(
        "/users",
        content=b"{" + b" " * MB + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert "at most 1048576 bytes" in r.json()["error"]["message"]
    assert r.headers["connection"] == "close" and r.headers["x-request-id"]
    # Just under the limit is read (and answered on its merits).
    r = await platform.http.post("/users", json={"user": {"metadata": "m" * 4000}})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/users", {"user": {"id": "i" * 256}}, "user.id"),
        ("/users", {"user": {"email": "e" * 321}}, "user.email"),
        ("/users", {"user": {"metadata": "m" * 4097}}, "user.metadata"),
        ("/users/{user}", {"user": {"metadata": "m" * 4097}}, "user.metadata"),
        (
            "/users/{user}/members",
            {"member": {"institution_code": "mxbank", "id": "i" * 256, "credentials": CREDS}},
            "member.id",
        ),
        (
            "/users/{user}/members",
            {
                "member": {
                    "institution_code": "mxbank",
                    "credentials": [CREDS[0], {**CREDS[1], "value": "v" * 1025}],
                }
            },
            "member.credentials.1.value",
        ),
        ("/users/{user}/widget_urls", {"widget_url": {"widget_type": "w" * 41}}, "widget_type"),
        (
            "/webhook_endpoints",
            {"webhook_endpoint": {"url": "https://example.com/" + "p" * 2048}},
            "webhook_endpoint.url",
        ),
    ],
)
async def test_strings_longer_than_their_limit_are_400_and_nothing_is_stored(
    platform: Platform, path: str, body: dict[str, object], field: str
) -> None:
    user = await new_user(platform.http)
    send = platform.http.put if path == "/users/{user}" else platform.http.post
    r = await send(path.format(user=user), json=body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert field in message and "at most" in message, message
    users = (await platform.http.get("/users")).json()["users"]
    assert [u["guid"] for u in users] == [user] and users[0]["metadata"] is None
    assert (await platform.http.get(f"/users/{user}/members")).json()["members"] == []


# --- a 500 (item 3) ------------------------------------------------------------------


def _run_sql(database_url: str, sql: str) -> None:
    """Change the database behind a live server's back (SQLite file or PostgreSQL)."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split("///", 1)[1]) as conn:
            conn.execute(sql)
    else:
        psql(sql, database_url)


async def test_a_500_carries_the_request_id_and_the_next_request_works(tmp_path: Path) -> None:
    server = start_live_server(tmp_path)
    try:
        async with httpx.AsyncClient(
            base_url=server.url, auth=(server.client_id, server.api_key)
        ) as http:
            user = await new_user(http)
            made = await create_member(http, user, "secret", use_cases=["PFM"])
            guid = made.json()["member"]["guid"]
            # A stored value no code expects (as a bad migration or hand edit leaves).
            _run_sql(server.env["OPENAGG_DATABASE_URL"], "UPDATE members SET use_cases = '5'")
            r = await http.get(f"/users/{user}/members/{guid}")
            assert r.status_code == 500, r.text
            assert r.json() == {"error": {"message": "Internal server error."}}
            assert r.headers["connection"] == "close"
            request_id = r.headers["x-request-id"]
            # The same client goes on, over a new connection.
            assert (await http.get(f"/users/{user}")).status_code == 200
        log = server.log_path.read_text()
        assert "unhandled error" in log and request_id in log
    finally:
        server.stop()


# --- partial credential updates (item 8) ----------------------------------------------


async def test_an_update_with_only_the_password_keeps_the_stored_username(
    platform: Platform,
) -> None:
    user = await new_user(platform.http)
    made = await create_member(platform.http, user, "INVALID")  # username mxuser
    guid = made.json()["member"]["guid"]
    await platform.drain()
    assert (await status(platform.http, user, guid))["connection_status"] == "DENIED"

    # MX's guide: switch the test scenario by sending only the password.
    r = await platform.http.put(
        f"/users/{user}/members/{guid}",
        json={"member": {"credentials": [{"guid": MXBANK_PASSWORD, "value": "secret"}]}},
    )
    assert r.status_code == 200, r.text
    await platform.drain()
    assert (await status(platform.http, user, guid))["connection_status"] == "CONNECTED"
    async with platform.rt.db.read() as s:
        member = await s.scalar(select(Member).where(Member.guid == guid))
    assert member is not None
    stored = vault.open_credentials(platform.rt, member)
    assert set(stored.values()) == {"mxuser", "secret"}


# --- booleans and the OAuth parameters (item 10) ----------------------------------------


async def _oauth_member(platform: Platform) -> tuple[str, str]:
    user = await new_user(platform.http)
    body = {"member": {"institution_code": "mx_bank_oauth", "is_oauth": True}}
    r = await platform.http.post(f"/users/{user}/members", json=body)
    return user, r.json()["member"]["guid"]


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("GET", "/users/{user}/members/{member}/oauth_window_uri", "skip_aggregation"),
        ("GET", "/users/{user}/members/{member}/oauth_window_uri", "enable_app2app"),
        ("GET", "/users", "is_disabled"),
        ("GET", "/institutions", "supports_account_verification"),
        ("GET", "/users/{user}/accounts", "is_manual"),
        ("GET", "/users/{user}/accounts", "member_is_managed_by_user"),
        ("GET", "/users/{user}/members/{member}/accounts", "member_is_managed_by_user"),
        ("POST", "/users/{user}/members/{member}/aggregate", "include_transactions"),
        ("POST", "/users/{user}/members/{member}/aggregate", "include_holdings"),
    ],
)
async def test_a_query_boolean_that_is_not_one_is_400(
    platform: Platform, method: str, path: str, name: str
) -> None:
    user, guid = await _oauth_member(platform)
    url = path.format(user=user, member=guid) + f"?{name}=yes"
    r = await platform.http.request(method, url)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"] == (
        f"Query parameter '{name}' must be true or false, not 'yes'."
    )


async def test_oauth_window_uri_skip_aggregation_connects_without_aggregating(
    platform: Platform,
) -> None:
    user, guid = await _oauth_member(platform)
    r = await platform.http.get(
        f"/users/{user}/members/{guid}/oauth_window_uri?skip_aggregation=true"
    )
    assert r.status_code == 200, r.text
    assert (await authorize(platform, r.json()["member"]["oauth_window_uri"])).status_code == 200
    await platform.drain()
    got = await status(platform.http, user, guid)
    assert (got["connection_status"], got["is_authenticated"]) == ("CREATED", True)
    accounts = await platform.http.get(f"/users/{user}/members/{guid}/accounts")
    assert accounts.json()["accounts"] == []  # nothing was aggregated


async def test_oauth_window_uri_app_referral_sends_the_end_user_back_to_the_app(
    platform: Platform,
) -> None:
    user, guid = await _oauth_member(platform)
    base = f"/users/{user}/members/{guid}/oauth_window_uri"
    r = await platform.http.get(
        base + "?referral_source=APP&client_redirect_url=https://app.example/done"
        "&enable_app2app=false"
    )
    done = await authorize(platform, r.json()["member"]["oauth_window_uri"])
    assert done.status_code == 303
    assert done.headers["location"] == (
        f"https://app.example/done?status=success&member_guid={guid}"
    )
    await platform.drain()
    assert (await status(platform.http, user, guid))["connection_status"] == "CONNECTED"

    # Without a client_redirect_url: the app's scheme; a refusal says so.
    user, guid = await _oauth_member(platform)
    base = f"/users/{user}/members/{guid}/oauth_window_uri"
    r = await platform.http.get(base + "?referral_source=APP&ui_message_webview_url_scheme=myapp")
    refused = await authorize(platform, r.json()["member"]["oauth_window_uri"], "deny")
    assert refused.headers["location"] == (
        f"myapp://oauth_complete?status=error&member_guid={guid}"
    )
    # A browser referral (MX's default) sends no one anywhere.
    r = await platform.http.get(base + "?referral_source=BROWSER")
    assert (await authorize(platform, r.json()["member"]["oauth_window_uri"])).status_code == 200


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("referral_source=PHONE", "referral_source must be BROWSER or APP"),
        ("client_redirect_url=javascript://x", "may not use the 'javascript' scheme"),
        ("client_redirect_url=done", "must be an absolute URL"),
        ("ui_message_webview_url_scheme=a b", "is not a usable URL scheme"),
    ],
)
async def test_bad_oauth_window_uri_parameters_are_400(
    platform: Platform, query: str, words: str
) -> None:
    user, guid = await _oauth_member(platform)
    r = await platform.http.get(f"/users/{user}/members/{guid}/oauth_window_uri?{query}")
    assert r.status_code == 400 and words in r.json()["error"]["message"], r.text


async def test_the_create_body_oauth_parameters_are_honoured(platform: Platform) -> None:
    user = await new_user(platform.http)
    body = {
        "member": {"institution_code": "mx_bank_oauth", "is_oauth": True},
        "referral_source": "APP",
        "client_redirect_url": "https://app.example/back",
    }
    m = (await platform.http.post(f"/users/{user}/members", json=body)).json()["member"]
    done = await authorize(platform, m["oauth_window_uri"])
    assert done.headers["location"].startswith("https://app.example/back?status=success")


# --- nothing dated in the future (item 11) ------------------------------------------


@pytest.mark.parametrize("password", ["pass_good", "dynamic"])
async def test_no_sandbox_transaction_is_dated_after_the_clock(
    platform: Platform, password: str
) -> None:
    platform.clock.now = platform.clock.now.replace(hour=6, minute=34)  # early morning
    now = platform.clock.now
    user = await new_user(platform.http)
    await create_member(platform.http, user, password, code="sandbox_bank")
    await platform.drain()
    r = await platform.http.get(
        f"/users/{user}/transactions",
        params={
            "from_date": (now.date() - dt.timedelta(days=3)).isoformat(),
            "records_per_page": 1000,
        },
    )
    found = r.json()["transactions"]
    if password == "dynamic":  # pending items of today at 12:3x, always
        assert any(t["date"] == now.date().isoformat() for t in found), found
    for t in found:
        for field in ("transacted_at", "posted_at"):
            if t[field] is not None:
                assert dt.datetime.fromisoformat(t[field]) <= now, (field, t)


# --- one line per request (item 15) ---------------------------------------------------


def test_log_requests_prints_one_line_per_request_without_secrets(tmp_path: Path) -> None:
    server = start_live_server(tmp_path)  # made (client, database) and started once
    server.stop()
    port = server.url.rsplit(":", 1)[1]
    log_path = tmp_path / "requests.log"
    with log_path.open("wb") as out:
        server.process = subprocess.Popen(
            [str(VENV_BIN / "openagg"), "serve", "--port", port, "--log-requests"],
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(server.url, server.process)
        auth = (server.client_id, server.api_key)
        listed = httpx.get(f"{server.url}/users?page=1", auth=auth)
        missing = httpx.get(f"{server.url}/users/USR-nobody", auth=auth)
        opened = httpx.get(f"{server.url}/connect/a-secret-url-token")
        callback = httpx.get(f"{server.url}/oauth/callback?code=a-secret-code&state=s")
    finally:
        server.stop()
    lines = log_path.read_text().splitlines()
    for r, line_start in [
        (listed, "GET /users 200 "),
        (missing, "GET /users/USR-nobody 404 "),
        (opened, f"GET /connect/[token] {opened.status_code} "),
        (callback, f"GET /oauth/callback {callback.status_code} "),
    ]:
        found = [line for line in lines if line_start in line]
        assert len(found) == 1, (line_start, lines)
        assert f"request_id={r.headers['x-request-id']}" in found[0]
        assert "ms" in found[0]
    text = "\n".join(lines)
    assert "a-secret-url-token" not in text and "a-secret-code" not in text
    assert "page=1" not in text


# --- the home page (item 14) ------------------------------------------------------------


async def test_the_home_page_says_what_runs_here_and_links_the_pages(platform: Platform) -> None:
    r = await platform.http.get("/", headers={"Accept": "text/html", "Host": "evil.example"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert "OpenAgg is running" in page and "Version 0.1.0" in page
    for href in ("/portal", "/console", "/healthz", "/metrics", "/assets/theme.css"):
        assert f'href="{href}"' in page, href
    assert 'href="/demo"' not in page and "openagg serve --demo" in page  # not a demo server
    assert "evil.example" not in page  # the Host header is not repeated
    assert "http" not in page.replace("this server's address", "")  # nothing from elsewhere
    platform.rt.settings.widget_demo = True
    platform.rt.settings.public_url = "https://agg.example.com"
    page = (await platform.http.get("/")).text
    assert 'href="/demo"' in page and "<code>https://agg.example.com</code>" in page
    # Each link leads somewhere.
    for path in ("/portal", "/console", "/healthz", "/metrics", "/demo", "/assets/home.css"):
        assert (await platform.http.get(path)).status_code == 200, path


async def test_the_favicon_is_an_svg_of_the_package(platform: Platform) -> None:
    for path in ("/favicon.ico", "/favicon.svg"):
        r = await platform.http.get(path)
        assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
        assert r.text.lstrip().startswith("<svg") and "http://www.w3.org/2000/svg" in r.text
