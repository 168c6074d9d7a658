"""The developer portal's JSON API (login, sessions, CSRF, throttling, a client's own
tickets, filters, pending additional login info, never an answer) and the Connect
widget's "Report a problem" endpoints (docs/portal.md, docs/widget.md)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from openagg.api.app import create_app
from openagg.db.models import Client, LoginCount, Operator
from openagg.runtime import build_runtime
from openagg.services import support
from openagg.services.clients import create_client
from openagg.services.support import Prompt
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, new_user, status
from tests.integration.conftest import BreakableConnector
from tests.integration.test_support_tickets import (
    AGENT,
    connected,
    direct,
    escalate,
    failing,
    indirect,
)
from tests.integration.test_widget_urls import bearer, open_session

PORTAL = "/portal/api"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def client_key(platform: Platform) -> tuple[Client, str]:
    """The test client's own credentials (what its staff type into the portal)."""
    new = await create_client(platform.rt, "Acme Budget")
    return new.client, new.api_key


@pytest.fixture
async def browser(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A browser: the same platform, no Basic header, its own cookie jar."""
    app = create_app(platform.rt, run_worker=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://openagg.test"
    ) as b:
        yield b


async def log_in(b: httpx.AsyncClient, client: Client, api_key: str) -> str:
    r = await b.post(f"{PORTAL}/login", json={"client_id": client.client_id, "api_key": api_key})
    assert r.status_code == 200, r.text
    token: str = r.json()["csrf_token"]
    return token


def api_for(platform: Platform, client: Client, api_key: str) -> httpx.AsyncClient:
    """The MX-style API as this client's backend (Basic auth)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(platform.rt, run_worker=False)),
        base_url="http://openagg.test",
        auth=(client.client_id, api_key),
        headers={"Accept": "application/vnd.mx.api.v1+json"},
    )


async def tickets(b: httpx.AsyncClient, query: str = "", expect: int = 200) -> dict[str, Any]:
    r = await b.get(f"{PORTAL}/tickets?{query}")
    assert r.status_code == expect, r.text
    body: dict[str, Any] = r.json()
    return body


async def guids(b: httpx.AsyncClient, query: str = "") -> list[str]:
    return [t["guid"] for t in (await tickets(b, query))["support_tickets"]]


# ------------------------------------------------------------------------ logging in


async def test_the_page_and_its_files_are_locked_down(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/portal")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
    assert '"session":null' in page.text
    for name, media in (("portal.js", "text/javascript"), ("portal.css", "text/css")):
        r = await browser.get(f"/portal/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    assert (await browser.get("/portal/static/index.html")).status_code == 404
    assert (await browser.get("/portal/static/..%2Fapi%2Froutes%2Fportal.py")).status_code == 404


async def test_log_in_with_client_id_and_api_key(
    platform: Platform, browser: httpx.AsyncClient, client_key: tuple[Client, str]
) -> None:
    client, key = client_key
    r = await browser.post(f"{PORTAL}/login", json={"client_id": client.client_id, "api_key": key})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["client"] == {"client_id": client.client_id, "name": "Acme Budget"}
    assert len(body["csrf_token"]) >= 20
    assert key not in r.text  # never echoed
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("openagg_portal=") and key not in cookie
    assert "HttpOnly" in cookie and "Path=/portal" in cookie
    assert re.search(r"SameSite=strict", cookie, re.IGNORECASE)
    session = await browser.get(f"{PORTAL}/session")
    assert session.status_code == 200 and session.json() == body
    # A reload starts logged in.
    page = await browser.get("/portal")
    assert '"name":"Acme Budget"' in page.text and body["csrf_token"] in page.text
    assert (await tickets(browser))["support_tickets"] == []


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"client_id": "nobody", "api_key": "x"}, 401, "Wrong client_id or api_key"),
        ({"client_id": "", "api_key": "x"}, 400, "client_id"),
        ({"client_id": "a", "api_key": "b", "admin": True}, 400, "admin"),
        ({"client_id": "a"}, 400, "api_key"),
    ],
)
async def test_bad_logins_are_clear(
    browser: httpx.AsyncClient, payload: dict[str, Any], code: int, message: str
) -> None:
    r = await browser.post(f"{PORTAL}/login", json=payload)
    assert r.status_code == code, r.text
    assert message in r.json()["error"]["message"]
    # No Basic challenge: the browser must not pop up its own login box.
    assert "www-authenticate" not in r.headers
    assert "set-cookie" not in r.headers


async def test_wrong_key_and_form_posts_are_refused(
    browser: httpx.AsyncClient, client_key: tuple[Client, str]
) -> None:
    client, key = client_key
    r = await browser.post(
        f"{PORTAL}/login", json={"client_id": client.client_id, "api_key": key + "x"}
    )
    assert r.status_code == 401 and "set-cookie" not in r.headers
    # A cross-site HTML form cannot send JSON: a form-encoded login is refused.
    r = await browser.post(f"{PORTAL}/login", data={"client_id": client.client_id, "api_key": key})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


async def test_the_api_needs_a_live_session(
    platform: Platform, browser: httpx.AsyncClient, client_key: tuple[Client, str]
) -> None:
    for path in ("/session", "/tickets", "/tickets/TKT-x"):
        r = await browser.get(PORTAL + path)
        assert r.status_code == 401 and r.json()["error"]["message"] == "Please log in."
        assert "www-authenticate" not in r.headers
    browser.cookies.set("openagg_portal", "forged", domain="openagg.test", path="/portal")
    r = await browser.get(f"{PORTAL}/tickets")
    assert r.status_code == 401 and "session has ended" in r.json()["error"]["message"]
    browser.cookies.clear()
    # The API's Basic credentials are not a portal login.
    client, key = client_key
    r = await browser.get(f"{PORTAL}/tickets", auth=(client.client_id, key))
    assert r.status_code == 401
    # A session ends after web_session_ttl_seconds.
    await log_in(browser, client, key)
    platform.clock.advance(seconds=platform.rt.settings.web_session_ttl_seconds + 1)
    r = await browser.get(f"{PORTAL}/tickets")
    assert r.status_code == 401 and "Please log in again" in r.json()["error"]["message"]
    page = await browser.get("/portal")
    assert '"session":null' in page.text and "Please log in again" in page.text


async def test_logout_needs_the_csrf_token(
    browser: httpx.AsyncClient, client_key: tuple[Client, str]
) -> None:
    client, key = client_key
    csrf = await log_in(browser, client, key)
    for headers in ({}, {"X-CSRF-Token": "guess"}):
        r = await browser.post(f"{PORTAL}/logout", headers=headers)
        assert r.status_code == 403, r.text
        assert "CSRF" in r.json()["error"]["message"]
    assert (await browser.get(f"{PORTAL}/session")).status_code == 200  # still logged in
    r = await browser.post(f"{PORTAL}/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert (await browser.get(f"{PORTAL}/tickets")).status_code == 401


async def test_logins_are_throttled_after_repeated_failures(
    platform: Platform, browser: httpx.AsyncClient, client_key: tuple[Client, str]
) -> None:
    client, key = client_key
    limit = platform.rt.settings.web_login_max_failures
    for _ in range(limit):
        r = await browser.post(
            f"{PORTAL}/login", json={"client_id": client.client_id, "api_key": "guess"}
        )
        assert r.status_code == 401
    # Past the limit, even the right key waits: guessing cannot go on.
    r = await browser.post(f"{PORTAL}/login", json={"client_id": client.client_id, "api_key": key})
    assert r.status_code == 429 and "Too many failed logins" in r.json()["error"]["message"]
    r = await browser.post(f"{PORTAL}/login", json={"client_id": "other", "api_key": "x"})
    assert r.status_code == 429  # the same address, another account


async def test_api_processes_share_the_login_count_and_the_window_forgets(
    platform: Platform, browser: httpx.AsyncClient, client_key: tuple[Client, str]
) -> None:
    """Two API processes (two runtimes on one database) behind one load balancer:
    failures on either count together, so N processes do not give N times the tries."""
    client, key = client_key
    other_rt = build_runtime(platform.rt.settings)
    other_rt.clock = platform.clock
    limit = platform.rt.settings.web_login_max_failures
    guess = {"client_id": client.client_id, "api_key": "guess"}
    right = {"client_id": client.client_id, "api_key": key}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(other_rt, run_worker=False)),
            base_url="http://openagg.test",
        ) as other:
            for i in range(limit):
                r = await (browser if i % 2 else other).post(f"{PORTAL}/login", json=guess)
                assert r.status_code == 401
            for b in (browser, other):
                assert (await b.post(f"{PORTAL}/login", json=right)).status_code == 429
            async with platform.rt.db.read() as s:
                stored = list(await s.execute(select(LoginCount.key_hash, LoginCount.failures)))
            assert [n for _, n in stored] == [limit, limit]  # the address and the account
            assert not any(client.client_id in h or "ip:" in h for h, _ in stored)  # hashed

            platform.clock.advance(seconds=platform.rt.settings.web_login_failure_window_seconds)
            r = await other.post(f"{PORTAL}/login", json=guess)
            assert r.status_code == 401  # counted afresh; the old failures are gone
            async with platform.rt.db.read() as s:
                assert set(await s.scalars(select(LoginCount.failures))) == {1}
            assert (await browser.post(f"{PORTAL}/login", json=right)).status_code == 200
    finally:
        await other_rt.db.dispose()


# ------------------------------------------------------------------------------ tickets


async def test_a_client_sees_only_its_own_tickets(
    platform: Platform,
    browser: httpx.AsyncClient,
    bank: BreakableConnector,
    client_key: tuple[Client, str],
) -> None:
    p = platform
    client, key = client_key
    mine_api = api_for(p, client, key)
    async with mine_api:
        bank.broken.add("mxbank")
        user = await new_user(mine_api)
        r = await create_member(mine_api, user, "pass", expect=202)
        await p.drain()
        member = r.json()["member"]["guid"]
        r = await mine_api.post(
            f"/users/{user}/members/{member}/support_tickets", json=direct("Mine")
        )
        assert r.status_code == 201, r.text
        mine = r.json()["support_ticket"]
    other_user, other_member = await failing(p, bank)  # the default test client
    theirs = await escalate(p, other_user, other_member, direct("Theirs"))

    await log_in(browser, client, key)
    assert await guids(browser) == [mine["guid"]]
    r = await browser.get(f"{PORTAL}/tickets/{theirs['guid']}")
    assert r.status_code == 404
    assert "Theirs" not in r.text
    assert await guids(browser, f"user_guid={other_user}") == []
    assert await guids(browser, f"member_guid={other_member}") == []
    assert (await browser.get(f"{PORTAL}/tickets/{mine['guid']}")).status_code == 200


async def test_filters_order_and_pages(
    platform: Platform,
    browser: httpx.AsyncClient,
    bank: BreakableConnector,
    engineer: Operator,
) -> None:
    p = platform
    u1, m1 = await failing(p, bank)
    t1 = await escalate(p, u1, m1, direct())
    p.clock.advance(days=2)
    u2, m2 = await failing(p, bank, "sandbox_bank")
    t2 = await escalate(p, u2, m2, indirect())
    p.clock.advance(minutes=5)
    u3, m3 = await failing(p, bank)
    t3 = await escalate(p, u3, m3, direct())
    await support.take(p.rt, engineer, t3["guid"])
    await log_in(browser, *await _default_client(p))

    newest = [t3["guid"], t2["guid"], t1["guid"]]
    assert await guids(browser) == newest
    assert await guids(browser, "order=oldest") == newest[::-1]
    assert await guids(browser, "status=NEW") == [t2["guid"], t1["guid"]]
    assert await guids(browser, "status=NEW&status=IN_PROCESS") == newest
    assert await guids(browser, "status=IN_PROCESS") == [t3["guid"]]
    assert await guids(browser, "status=CLOSED") == []
    assert await guids(browser, "institution_code=sandbox_bank") == [t2["guid"]]
    assert await guids(browser, "channel=DIRECT") == [t3["guid"], t1["guid"]]
    assert await guids(browser, "channel=indirect") == [t2["guid"]]
    day = p.clock.now.date().isoformat()
    assert await guids(browser, f"from_date={day}") == [t3["guid"], t2["guid"]]
    assert await guids(browser, "to_date=2026-03-02") == [t1["guid"]]
    assert await guids(browser, f"user_guid={u2}") == [t2["guid"]]
    assert await guids(browser, f"member_guid={m1}") == [t1["guid"]]
    assert await guids(browser, f"user_guid={u2}&member_guid={m1}") == []
    assert await guids(browser, "user_guid=USR-nobody") == []
    everything_at_once = f"status=NEW&channel=DIRECT&institution_code=mxbank&user_guid={u1}"
    assert await guids(browser, everything_at_once) == [t1["guid"]]
    for bad, message in (
        ("status=DONE", "DONE"),
        ("channel=FAX", "channel"),
        ("from_date=yesterday", "from_date"),
        ("from_date=2026-05-02&to_date=2026-05-01", "from_date"),
        ("order=random", "order"),
        ("page=0", "page"),
    ):
        body = await tickets(browser, bad, expect=400)
        assert message in body["error"]["message"], bad

    # Pages of at least 10 (MX's floor), newest first across pages.
    for _ in range(9):
        p.clock.advance(minutes=1)
        user, member = await failing(p, bank)
        await escalate(p, user, member, direct())
    first = await tickets(browser, "records_per_page=10")
    second = await tickets(browser, "records_per_page=10&page=2")
    assert first["pagination"] == {
        "current_page": 1,
        "per_page": 10,
        "total_entries": 12,
        "total_pages": 2,
    }
    assert [t["guid"] for t in second["support_tickets"]] == [t2["guid"], t1["guid"]]
    everything = [t["guid"] for t in first["support_tickets"] + second["support_tickets"]]
    assert len(set(everything)) == 12


async def _default_client(p: Platform) -> tuple[Client, str]:
    """The platform fixture's client and its key, from the Basic header its API uses."""
    client_id, _, key = (
        base64.b64decode(p.http.headers["Authorization"][6:]).decode().partition(":")
    )
    async with p.rt.db.read() as s:
        client = await s.scalar(select(Client).where(Client.client_id == client_id))
    assert client is not None
    return client, key


async def test_a_ticket_shows_what_the_end_user_sees_and_its_history(
    platform: Platform, browser: httpx.AsyncClient, bank: BreakableConnector, engineer: Operator
) -> None:
    p = platform
    await log_in(browser, *await _default_client(p))
    first_user, first_member = await failing(p, bank)
    await escalate(p, first_user, first_member, direct())
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct("Nothing syncs"), headers={"X-Request-Id": "rq-1"})
    await escalate(p, user, member, indirect("Called us too"), expect=200)

    r = await browser.get(f"{PORTAL}/tickets/{t['guid']}")
    assert r.status_code == 200, r.text
    body = r.json()
    seen_by_user = (await p.http.get(f"/users/{user}/support_tickets/{t['guid']}")).json()
    assert body["support_ticket"] == seen_by_user["support_ticket"]
    shown = body["support_ticket"]
    assert shown["queue_position"] == 2 and shown["estimated_resolution_at"]
    assert shown["report_count"] == 2 and shown["description"] == "Nothing syncs"
    assert [e["action"] for e in body["history"]] == ["reported", "joined"]
    assert body["history"][0]["request_id"] == "rq-1"
    assert body["history"][1]["actor"] == {"type": "AGENT", **AGENT}
    assert body["history_total"] == 2
    assert body["member"]["guid"] == member
    assert body["member"]["connection_status"] == "FAILED"
    assert body["member"]["is_being_aggregated"] is False

    # The member's current state, not the one it had when reported.
    bank.broken.clear()
    r = await p.http.post(f"/users/{user}/members/{member}/aggregate")
    assert r.status_code == 202
    now = (await browser.get(f"{PORTAL}/tickets/{t['guid']}")).json()
    assert now["member"]["is_being_aggregated"] is True
    await p.drain()
    now = (await browser.get(f"{PORTAL}/tickets/{t['guid']}")).json()
    assert now["member"]["connection_status"] == "CONNECTED"
    assert now["support_ticket"]["connection_status"] == "FAILED"  # when reported
    assert (await browser.get(f"{PORTAL}/tickets/TKT-nope")).status_code == 404


async def test_pending_login_info_lists_questions_never_answers(
    platform: Platform, browser: httpx.AsyncClient, bank: BreakableConnector, engineer: Operator
) -> None:
    p = platform
    await log_in(browser, *await _default_client(p))
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct())
    other_user, other_member = await failing(p, bank)
    await escalate(p, other_user, other_member, direct())
    await support.request_login_info(
        p.rt,
        engineer,
        t["guid"],
        [Prompt("Security word"), Prompt("Send the code by", "OPTIONS", ("SMS", "Email"))],
    )
    pending = await tickets(browser, "status=ADDITIONAL_LOGIN_INFO_REQUIRED")
    [waiting] = pending["support_tickets"]
    assert waiting["guid"] == t["guid"]
    labels = [q["label"] for q in waiting["additional_login_info"]]
    assert labels == ["Security word", "Send the code by"]
    assert [o["label"] for o in waiting["additional_login_info"][1]["options"]] == ["SMS", "Email"]
    detail = (await browser.get(f"{PORTAL}/tickets/{t['guid']}")).json()
    assert detail["support_ticket"]["additional_login_info"] == waiting["additional_login_info"]

    # The end user answers: the secret appears in no portal answer, and the questions go.
    prompt, option = waiting["additional_login_info"]
    r = await p.http.put(
        f"/users/{user}/support_tickets/{t['guid']}/additional_login_info",
        json={
            "support_ticket": {
                "additional_login_info": [
                    {"guid": prompt["guid"], "value": "platypus-4471"},
                    {"guid": option["guid"], "value": "Email"},
                ]
            }
        },
    )
    assert r.status_code == 200, r.text
    assert (await tickets(browser, "status=ADDITIONAL_LOGIN_INFO_REQUIRED"))[
        "support_tickets"
    ] == []
    answered = await tickets(browser, "status=ADDITIONAL_LOGIN_INFO_SUBMITTED")
    detail_r = await browser.get(f"{PORTAL}/tickets/{t['guid']}")
    everything = (await browser.get(f"{PORTAL}/tickets")).text + detail_r.text + str(answered)
    assert "platypus-4471" not in everything
    assert detail_r.json()["support_ticket"]["additional_login_info"] is None
    assert [e["action"] for e in detail_r.json()["history"]][-1] == "info_submitted"
    # The engineer reads the answers once; still nothing of them in the portal.
    answers = await support.read_login_info(p.rt, engineer, t["guid"])
    assert answers["Security word"] == "platypus-4471"
    assert "platypus-4471" not in (await browser.get(f"{PORTAL}/tickets/{t['guid']}")).text


# ------------------------------------------------------- the widget: "Report a problem"


def report(problem: str = "not_connecting", details: str | None = None) -> dict[str, Any]:
    return {"problem": problem, **({"details": details} if details is not None else {})}


async def test_the_widget_reports_a_problem_and_joins_the_open_ticket(
    platform: Platform, bank: BreakableConnector
) -> None:
    p = platform
    user, member = await failing(p, bank)
    boot = await open_session(p, user, current_member_guid=member)
    h = {**bearer(boot), "X-Request-Id": "widget-rq-1"}
    base = f"/connect/api/members/{member}/support_tickets"
    r = await p.http.get(f"{base}/open", headers=h)
    assert r.status_code == 200 and r.json() == {"support_ticket": None}

    r = await p.http.post(base, json=report(details="Since Monday"), headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["joined"] is False
    t = body["support_ticket"]
    assert t["status"] == "NEW" and t["channel"] == "DIRECT" and t["queue_position"] == 1
    assert t["estimated_resolution_at"] and t["member_guid"] == member
    assert t["description"].startswith("The connection keeps failing")
    assert "Since Monday" in t["description"]
    [event] = (await p.http.get(f"/users/{user}/support_tickets/{t['guid']}/history")).json()[
        "support_ticket_events"
    ]
    assert event["actor"]["type"] == "END_USER" and event["actor"]["id"] == user
    assert event["channel"] == "DIRECT" and event["request_id"] == "widget-rq-1"
    assert event["client_address"]

    r = await p.http.get(f"{base}/open", headers=h)
    assert r.json()["support_ticket"]["guid"] == t["guid"]

    r = await p.http.post(base, json=report("other", "It still fails"), headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["joined"] is True
    assert r.json()["support_ticket"]["guid"] == t["guid"]
    assert r.json()["support_ticket"]["report_count"] == 2


@pytest.mark.parametrize(
    ("code", "password", "words"),
    [
        ("mxbank", "INVALID", "update your credentials"),
        ("mxbank", "LOCKED", "Contact MX Bank to unlock it"),
        ("sandbox_bank", "error_impeded", "finish a step on its website"),
    ],
)
async def test_the_widget_refuses_what_the_end_user_can_fix_in_plain_words(
    platform: Platform, code: str, password: str, words: str
) -> None:
    p = platform
    user, member = await connected(p, password, code)
    boot = await open_session(p, user, current_member_guid=member)
    r = await p.http.post(
        f"/connect/api/members/{member}/support_tickets", json=report(), headers=bearer(boot)
    )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert words in message
    assert "PUT" not in message and "special_instructions" not in message
    assert (await p.http.get("/support_tickets")).json()["support_tickets"] == []


async def test_the_widget_refuses_a_working_connection_in_plain_words(
    platform: Platform,
) -> None:
    p = platform
    user, member = await connected(p)
    boot = await open_session(p, user, current_member_guid=member)
    r = await p.http.post(
        f"/connect/api/members/{member}/support_tickets", json=report(), headers=bearer(boot)
    )
    assert r.status_code == 422
    assert "working now" in r.json()["error"]["message"]


async def test_the_widget_reaches_only_its_users_members(
    platform: Platform, bank: BreakableConnector
) -> None:
    p = platform
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct())
    stranger = await new_user(p.http)
    boot = await open_session(p, stranger)
    h = bearer(boot)
    base = f"/connect/api/members/{member}/support_tickets"
    answers = {"answers": [{"guid": "CRD-x", "value": "x"}]}
    for method, path, body in (
        ("GET", f"{base}/open", None),
        ("POST", base, report()),
        ("PUT", f"{base}/{t['guid']}/additional_login_info", answers),
    ):
        r = await p.http.request(method, path, json=body, headers=h)
        assert r.status_code == 404, (method, path, r.text)
    r = await p.http.post(base, json=report())  # no widget session
    assert r.status_code == 401 and "www-authenticate" not in r.headers
    for bad in ({"problem": "bored"}, {}, {"problem": "other", "details": "x" * 3001}):
        r = await p.http.post(base, json=bad, headers=bearer(await open_session(p, user)))
        assert r.status_code == 400, r.text
    listed = (await p.http.get(f"/users/{user}/support_tickets")).json()["support_tickets"]
    assert [x["report_count"] for x in listed] == [1]


async def test_the_widget_answers_the_engineers_questions(
    platform: Platform, bank: BreakableConnector, engineer: Operator
) -> None:
    p = platform
    user, member = await failing(p, bank)
    boot = await open_session(p, user, current_member_guid=member)
    h = bearer(boot)
    base = f"/connect/api/members/{member}/support_tickets"
    t = (await p.http.post(base, json=report(), headers=h)).json()["support_ticket"]
    await support.request_login_info(
        p.rt,
        engineer,
        t["guid"],
        [Prompt("One-time code", "TOKEN"), Prompt("Bank", "OPTIONS", ("A", "B"))],
    )
    shown = (await p.http.get(f"{base}/open", headers=h)).json()["support_ticket"]
    assert shown["status"] == "ADDITIONAL_LOGIN_INFO_REQUIRED"
    code, choice = shown["additional_login_info"]
    assert code["type"] == "TOKEN" and [o["value"] for o in choice["options"]] == ["A", "B"]
    url = f"{base}/{t['guid']}/additional_login_info"

    r = await p.http.put(url, json={"answers": [{"guid": code["guid"], "value": "1"}]}, headers=h)
    assert r.status_code == 400 and "every question" in r.json()["error"]["message"]
    r = await p.http.put(
        f"{base}/TKT-other/additional_login_info",
        json={"answers": [{"guid": code["guid"], "value": "1"}]},
        headers=h,
    )
    assert r.status_code == 404
    good = {
        "answers": [
            {"guid": code["guid"], "value": "552211"},
            {"guid": choice["guid"], "value": "B"},
        ]
    }
    r = await p.http.put(url, json=good, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["support_ticket"]["status"] == "ADDITIONAL_LOGIN_INFO_SUBMITTED"
    assert "552211" not in r.text
    r = await p.http.put(url, json=good, headers=h)
    assert r.status_code == 422 and "already answered" in r.json()["error"]["message"]
    assert await support.read_login_info(p.rt, engineer, t["guid"]) == {
        "One-time code": "552211",
        "Bank": "B",
    }
    assert (await status(p.http, user, member))["connection_status"] == "FAILED"
