"""The engineer console's JSON API (docs/console.md): logins and their throttle, the
session cookie and its CSRF token, every engineer action on tickets, the incident
views, and the chart numbers against a history built with the test clock."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from openagg.api.app import create_app
from openagg.db.models import Operator
from openagg.services import incidents, operators
from openagg.services.errors import BadRequest, NotFound
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, new_user, status
from tests.integration.conftest import ENGINEER_EMAIL, ENGINEER_PASSWORD, BreakableConnector
from tests.integration.test_support_tickets import (
    direct,
    escalate,
    failing,
    ticket,
)

PASSWORD, EMAIL = ENGINEER_PASSWORD, ENGINEER_EMAIL
HOUR, DAY = 3600, 86400


@pytest.fixture
async def web(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of the console: its own cookie jar, no Basic auth."""
    app = create_app(platform.rt, run_worker=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://openagg.test"
    ) as client:
        yield client


class Console:
    """A logged-in console client: sends the session's CSRF token on every change."""

    def __init__(self, http: httpx.AsyncClient, csrf: str) -> None:
        self.http = http
        self.csrf = csrf

    async def get(self, path: str, expect: int = 200) -> dict[str, Any]:
        r = await self.http.get(f"/console/api{path}")
        assert r.status_code == expect, r.text
        body: dict[str, Any] = r.json()
        return body

    async def post(self, path: str, body: Any = None, expect: int = 200) -> dict[str, Any]:
        r = await self.http.post(
            f"/console/api{path}", json=body, headers={"X-CSRF-Token": self.csrf}
        )
        assert r.status_code == expect, r.text
        answer: dict[str, Any] = r.json()
        return answer


async def login(
    http: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD, expect: int = 200
) -> httpx.Response:
    r = await http.post("/console/api/login", json={"email": email, "password": password})
    assert r.status_code == expect, r.text
    return r


@pytest.fixture
async def console(platform: Platform, web: httpx.AsyncClient, engineer: Operator) -> Console:
    # Long enough for the tests that move the clock by days.
    platform.rt.settings.web_session_ttl_seconds = 30 * DAY
    r = await login(web)
    return Console(web, r.json()["csrf_token"])


def message(r: httpx.Response) -> str:
    text: str = r.json()["error"]["message"]
    return text


# ---------------------------------------------------------------------- page and login


async def test_the_page_and_its_files_are_served_with_strict_headers(
    web: httpx.AsyncClient,
) -> None:
    r = await web.get("/console")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and r.headers["x-frame-options"] == "DENY"
    assert '<script type="module" src="/console/static/console.js">' in r.text
    assert "<script>" not in r.text and "style=" not in r.text
    for name, media_type in (
        ("console.js", "text/javascript"),
        ("charts.js", "text/javascript"),
        ("console.css", "text/css"),
    ):
        r = await web.get(f"/console/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(media_type)
    for name in ("index.html", "__init__.py", "nope.js", "..%2F__init__.py"):
        assert (await web.get(f"/console/static/{name}")).status_code == 404, name
    # Revalidated on every load (no stale JS after an upgrade), 304 when unchanged.
    shared = ("/assets/dom.js", "/assets/login.js", "/assets/theme.css")
    for path in ("/console/static/console.js", *shared):
        r = await web.get(path)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-cache", path
        again = await web.get(path, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path
    assert (await web.get("/assets/__init__.py")).status_code == 404


async def test_login_opens_a_cookie_session_and_logout_ends_it(
    web: httpx.AsyncClient, engineer: Operator
) -> None:
    r = await login(web, email="  Eve@OpenAgg.test ")
    body = r.json()
    assert body["operator"] == {"guid": engineer.guid, "name": "Eve Engineer", "email": EMAIL}
    csrf = body["csrf_token"]
    assert len(csrf) >= 24 and body["expires_at"].endswith("Z")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("openagg_console=")
    lowered = cookie.lower()
    for part in ("httponly", "samesite=strict", "path=/console", "max-age=43200"):
        assert part in lowered, cookie
    token = web.cookies["openagg_console"]
    assert token not in r.text  # the cookie's value only travels in the header

    r = await web.get("/console/api/session")
    assert r.status_code == 200 and r.json()["csrf_token"] == csrf
    assert r.headers["cache-control"] == "no-store"

    r = await web.post("/console/api/logout")
    assert r.status_code == 403 and "CSRF" in message(r)
    assert (await web.get("/console/api/session")).status_code == 200
    r = await web.post("/console/api/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert "openagg_console=" in r.headers["set-cookie"]
    assert (await web.get("/console/api/session")).status_code == 401
    # The old cookie, replayed, opens nothing: the session row is gone.
    r = await web.get("/console/api/session", headers={"Cookie": f"openagg_console={token}"})
    assert r.status_code == 401
    # Logging out without a session is harmless.
    assert (await web.post("/console/api/logout")).status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, "wrong password!"), ("nobody@openagg.test", PASSWORD), (EMAIL, PASSWORD + " ")],
)
async def test_bad_credentials_get_one_clear_401(
    web: httpx.AsyncClient, engineer: Operator, email: str, password: str
) -> None:
    r = await login(web, email, password, expect=401)
    assert message(r) == "Wrong email or password."
    # No Basic challenge: a web must not open its own password dialog.
    assert "www-authenticate" not in r.headers
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize(
    ("body", "content_type", "status_code", "words"),
    [
        ({"email": EMAIL}, None, 400, "missing field 'password'"),
        ({"email": EMAIL, "password": PASSWORD, "remember": True}, None, 400, "'remember'"),
        ({"email": 42, "password": PASSWORD}, None, 400, "'email'"),
        ("email=eve&password=x", "application/x-www-form-urlencoded", 415, "JSON"),
        ("[]", "application/json", 400, "JSON object"),
        ("{", "application/json", 400, "not valid JSON"),
    ],
)
async def test_bad_login_bodies_are_a_clear_4xx(
    web: httpx.AsyncClient,
    engineer: Operator,
    body: Any,
    content_type: str | None,
    status_code: int,
    words: str,
) -> None:
    if content_type is None:
        r = await web.post("/console/api/login", json=body)
    else:
        r = await web.post(
            "/console/api/login", content=body, headers={"Content-Type": content_type}
        )
    assert r.status_code == status_code, r.text
    assert words in message(r)


async def test_repeated_failures_are_throttled(
    platform: Platform, web: httpx.AsyncClient, engineer: Operator
) -> None:
    platform.rt.settings.web_login_max_failures = 3
    for _ in range(3):
        await login(web, password="guess guess guess", expect=401)
    # Even the right password waits now: the attacker cannot tell it was right.
    r = await login(web, expect=429)
    assert "Too many failed logins" in message(r)
    assert "set-cookie" not in r.headers
    # The address is held back too, whatever account it tries next.
    await operators.create_operator(platform.rt, "Ada", "ada@openagg.test", PASSWORD)
    await login(web, email="ada@openagg.test", expect=429)


async def test_a_disabled_operator_cannot_log_in_and_loses_the_session(
    platform: Platform, console: Console, engineer: Operator
) -> None:
    await console.get("/session")
    async with platform.rt.db.write() as s:
        await s.execute(update(Operator).where(Operator.id == engineer.id).values(is_disabled=True))
    r = await console.http.get("/console/api/queue")
    assert r.status_code == 401 and "can no longer log in" in message(r)
    r = await login(console.http, expect=401)
    assert message(r) == "Wrong email or password."


async def test_disabling_or_resetting_an_operator_ends_their_sessions(
    platform: Platform, console: Console, engineer: Operator
) -> None:
    rt = platform.rt
    await operators.set_disabled(rt, EMAIL.upper(), True)
    r = await console.http.get("/console/api/queue")
    assert r.status_code == 401
    await login(console.http, expect=401)
    await operators.set_disabled(rt, EMAIL, False)
    await login(console.http)
    new = await operators.reset_credentials(rt, EMAIL)
    assert new.password != PASSWORD
    r = await console.http.get("/console/api/queue")
    assert r.status_code == 401
    await login(console.http, expect=401)
    await login(console.http, password=new.password)
    assert await operators.authenticate_operator_key(rt, new.api_key) is not None
    with pytest.raises(NotFound):
        await operators.set_disabled(rt, "nobody@example.com", True)
    with pytest.raises(BadRequest):
        await operators.reset_credentials(rt, EMAIL, "short")


async def test_a_session_expires(platform: Platform, console: Console) -> None:
    await console.get("/queue")
    platform.clock.advance(seconds=platform.rt.settings.web_session_ttl_seconds + 1)
    r = await console.http.get("/console/api/queue")
    assert r.status_code == 401
    assert message(r) == "Your session has ended. Please log in again."
    assert "www-authenticate" not in r.headers


READS = ["/session", "/queue", "/tickets/TKT-x", "/incidents", "/long_tail", "/charts"]
CHANGES = [
    "/tickets/TKT-x/take",
    "/tickets/TKT-x/request_login_info",
    "/tickets/TKT-x/read_login_info",
    "/tickets/TKT-x/escalate",
    "/tickets/TKT-x/invalid",
    "/tickets/TKT-x/resolve",
]


async def test_everything_needs_a_login(web: httpx.AsyncClient, engineer: Operator) -> None:
    for path in READS:
        r = await web.get(f"/console/api{path}")
        assert r.status_code == 401, path
        assert message(r) == "Please log in." and "www-authenticate" not in r.headers
    for path in CHANGES:
        r = await web.post(f"/console/api{path}", json={}, headers={"X-CSRF-Token": "x"})
        assert r.status_code == 401, path
    r = await web.get("/console/api/queue", headers={"Cookie": "openagg_console=made-up"})
    assert r.status_code == 401


async def test_changes_need_the_sessions_csrf_token(
    platform: Platform, bank: BreakableConnector, console: Console
) -> None:
    user, member = await failing(platform, bank)
    t = await escalate(platform, user, member, direct())
    path = f"/console/api/tickets/{t['guid']}/take"
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}, {"X-CSRF-Token": ""}):
        r = await console.http.post(path, headers=headers)
        assert r.status_code == 403, headers
        assert "CSRF" in message(r)
    for change in CHANGES:
        r = await console.http.post(f"/console/api{change.replace('TKT-x', t['guid'])}")
        assert r.status_code == 403, change
    assert (await ticket(platform, user, t["guid"]))["status"] == "NEW"
    await console.post(f"/tickets/{t['guid']}/take")
    assert (await ticket(platform, user, t["guid"]))["status"] == "IN_PROCESS"


# ------------------------------------------------------------------------ the tickets


async def test_the_queue_and_every_action(
    platform: Platform,
    bank: BreakableConnector,
    console: Console,
    engineer: Operator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    p = platform
    made = []
    for _ in range(3):
        user, member = await failing(p, bank)
        made.append((user, (await escalate(p, user, member, direct("It stopped")))["guid"]))
        p.clock.advance(minutes=1)
    (_, a), (b_user, b), (_, c) = made

    queue = (await console.get("/queue"))["tickets"]
    assert [t["guid"] for t in queue] == [a, b, c]
    assert [t["queue_position"] for t in queue] == [1, 2, 3]
    assert [t["age_seconds"] for t in queue] == [180, 120, 60]
    first = queue[0]
    assert (first["status"], first["institution_code"], first["channel"]) == (
        "NEW",
        "mxbank",
        "DIRECT",
    )
    assert first["report_count"] == 1 and first["estimated_resolution_at"]
    assert first["cause"] == "DATA_ERROR" and first["connection_status"] == "FAILED"

    # Take: the history says who and when.
    taken = await console.post(f"/tickets/{a}/take")
    assert taken["support_ticket"]["status"] == "IN_PROCESS"
    last = taken["history"][-1]
    assert last["action"] == "taken"
    assert (last["from_status"], last["to_status"]) == ("NEW", "IN_PROCESS")
    assert last["actor"] == {"type": "OPERATOR", "id": engineer.guid, "name": "Eve Engineer"}
    assert last["created_at"] == "2026-03-02T15:03:00Z"

    # The fix did not work: the member still fails and the ticket reopens at its place.
    resolved = await console.post(f"/tickets/{a}/resolve", {"note": "retry the login"})
    assert resolved["resolution"] == {"verifying": [a], "reopened": [], "jobs_started": 1}
    assert resolved["support_ticket"]["verifying_since"] is not None
    assert [t["guid"] for t in (await console.get("/queue"))["tickets"]] == [b, c]
    await p.drain()
    reopened = (await console.get(f"/tickets/{a}"))["support_ticket"]
    assert reopened["status"] == "REOPENED" and reopened["verifying_since"] is None
    queue = (await console.get("/queue"))["tickets"]
    assert [(t["guid"], t["queue_position"]) for t in queue] == [(a, 1), (b, 2), (c, 3)]

    # Additional login info: asked, answered by the end user, read once.
    asked = await console.post(
        f"/tickets/{b}/request_login_info",
        {
            "prompts": [
                {"label": "Your branch", "type": "TEXT"},
                {"label": "Code", "type": "TOKEN"},
                {"label": "Send it by", "type": "OPTIONS", "options": ["SMS", " Email "]},
            ],
            "note": "the bank asks more",
        },
    )
    detail = asked["support_ticket"]
    assert detail["status"] == "ADDITIONAL_LOGIN_INFO_REQUIRED"
    assert detail["login_info"] == {
        "prompts": [
            {"label": "Your branch", "type": "TEXT", "options": []},
            {"label": "Code", "type": "TOKEN", "options": []},
            {"label": "Send it by", "type": "OPTIONS", "options": ["SMS", "Email"]},
        ],
        "answers_waiting": False,
    }
    assert [t["guid"] for t in (await console.get("/queue"))["tickets"]] == [a, c]
    r = await console.http.post(
        f"/console/api/tickets/{b}/take", headers={"X-CSRF-Token": console.csrf}
    )
    assert r.status_code == 422 and "waits for the end user" in message(r)
    r = await console.http.post(
        f"/console/api/tickets/{b}/read_login_info", headers={"X-CSRF-Token": console.csrf}
    )
    assert r.status_code == 422 and "no unread" in message(r)
    questions = (await ticket(p, b_user, b))["additional_login_info"]
    answers = [
        {"guid": questions[0]["guid"], "value": "Springfield-secret-branch"},
        {"guid": questions[1]["guid"], "value": "884422"},
        {"guid": questions[2]["guid"], "value": "Email"},
    ]
    r = await p.http.put(
        f"/users/{b_user}/support_tickets/{b}/additional_login_info",
        json={"support_ticket": {"additional_login_info": answers}},
    )
    assert r.status_code == 200, r.text
    detail = (await console.get(f"/tickets/{b}"))["support_ticket"]
    assert detail["status"] == "ADDITIONAL_LOGIN_INFO_SUBMITTED"
    assert detail["login_info"]["answers_waiting"] is True
    seen = str(await console.get(f"/tickets/{b}"))
    assert "Springfield-secret-branch" not in seen and "884422" not in seen
    read = await console.post(f"/tickets/{b}/read_login_info")
    assert read == {
        "answers": [
            {"label": "Your branch", "value": "Springfield-secret-branch"},
            {"label": "Code", "value": "884422"},
            {"label": "Send it by", "value": "Email"},
        ]
    }
    r = await console.http.post(
        f"/console/api/tickets/{b}/read_login_info", headers={"X-CSRF-Token": console.csrf}
    )
    assert r.status_code == 422  # single use
    after = await console.get(f"/tickets/{b}")
    assert after["support_ticket"]["login_info"] == {"prompts": [], "answers_waiting": False}
    assert [e["action"] for e in after["history"]][-3:] == [
        "info_requested",
        "info_submitted",
        "info_read",
    ]
    assert "Springfield-secret-branch" not in str(after)
    assert "Springfield-secret-branch" not in caplog.text and "884422" not in caplog.text

    # Mark invalid needs a reason.
    for body, words in (
        (None, "A JSON request body is required"),
        ({}, "missing field 'note'"),
        ({"note": "   "}, "Say why"),
    ):
        r = await console.http.post(
            f"/console/api/tickets/{b}/invalid", json=body, headers={"X-CSRF-Token": console.csrf}
        )
        assert r.status_code == 400, r.text
        assert words in message(r)
    invalid = await console.post(f"/tickets/{b}/invalid", {"note": "a typo in the username"})
    assert invalid["support_ticket"]["status"] == "INVALID"
    assert invalid["history"][-1]["note"] == "a typo in the username"
    assert invalid["support_ticket"]["resolved_at"] is not None
    r = await console.http.post(
        f"/console/api/tickets/{b}/take", headers={"X-CSRF-Token": console.csrf}
    )
    assert r.status_code == 422 and "INVALID" in message(r)

    # Escalate, with or without a note; it keeps its place.
    escalated = await console.post(f"/tickets/{c}/escalate", {"note": "needs the bank"})
    assert escalated["support_ticket"]["status"] == "ESCALATED"
    assert escalated["history"][-1]["note"] == "needs the bank"
    assert [t["guid"] for t in (await console.get("/queue"))["tickets"]] == [a, c]

    # Fixed for real, for the whole incident: both members re-aggregate, both close.
    bank.broken.clear()
    done = await console.post(f"/tickets/{c}/resolve", {"incident": True})
    assert sorted(done["resolution"]["verifying"]) == sorted([a, c])
    assert done["resolution"]["jobs_started"] == 3  # b's member too: failing, no open ticket
    await p.drain()
    for guid in (a, c):
        closed = await console.get(f"/tickets/{guid}")
        assert closed["support_ticket"]["status"] == "CLOSED"
        assert closed["history"][-1]["action"] == "verified"
    assert (await console.get("/queue"))["tickets"] == []
    assert (await status(p.http, b_user, (await ticket(p, b_user, b))["member_guid"]))[
        "connection_status"
    ] == "CONNECTED"
    await console.get("/tickets/TKT-nope", expect=404)
    await console.post("/tickets/TKT-nope/take", expect=404)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"prompts": []}, "'prompts'"),
        ({}, "missing field 'prompts'"),
        ({"prompts": [{"label": "Code", "type": "PHOTO"}]}, "'prompts.0.type'"),
        ({"prompts": [{"label": "", "type": "TEXT"}]}, "'prompts.0.label'"),
        ({"prompts": [{"label": "Code", "type": "OPTIONS"}]}, "OPTIONS prompts"),
        ({"prompts": [{"label": "Code", "type": "TEXT", "options": ["a"]}]}, "OPTIONS prompts"),
        (
            {"prompts": [{"label": "Code", "type": "OPTIONS", "options": ["a", "a"]}]},
            "repeat",
        ),
        ({"prompts": [{"label": "Code", "kind": "TEXT"}]}, "unknown field 'prompts.0.kind'"),
        ({"prompts": [{"label": "Code"}], "note": 5}, "'note'"),
    ],
)
async def test_bad_prompts_are_a_clear_400(
    platform: Platform,
    bank: BreakableConnector,
    console: Console,
    body: dict[str, Any],
    words: str,
) -> None:
    user, member = await failing(platform, bank)
    t = await escalate(platform, user, member, direct())
    r = await console.http.post(
        f"/console/api/tickets/{t['guid']}/request_login_info",
        json=body,
        headers={"X-CSRF-Token": console.csrf},
    )
    assert r.status_code == 400, r.text
    assert words in message(r)
    assert (await ticket(platform, user, t["guid"]))["status"] == "NEW"


async def test_resolving_a_member_that_needs_the_end_user_reopens_at_once(
    platform: Platform, bank: BreakableConnector, console: Console
) -> None:
    p = platform
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct())
    # The end user's password changed meanwhile: the member is DENIED now.
    bank.broken.clear()
    creds = (await p.http.get("/institutions/mxbank/credentials")).json()["credentials"]
    values = {"LOGIN": "mxuser", "PASSWORD": "INVALID"}
    r = await p.http.put(
        f"/users/{user}/members/{member}",
        json={
            "member": {
                "credentials": [
                    {"guid": c["guid"], "value": values[c["field_name"]]} for c in creds
                ]
            }
        },
    )
    assert r.status_code == 200, r.text
    await p.drain()
    assert (await status(p.http, user, member))["connection_status"] == "DENIED"
    done = await console.post(f"/tickets/{t['guid']}/resolve")
    assert done["resolution"] == {"verifying": [], "reopened": [t["guid"]], "jobs_started": 0}
    assert done["support_ticket"]["status"] == "REOPENED"
    assert "without the end user" in done["history"][-1]["note"]


# ------------------------------------------------------------------ incidents, charts


async def test_incidents_and_the_long_tail(
    platform: Platform, bank: BreakableConnector, console: Console
) -> None:
    p = platform
    for _ in range(3):
        await failing(p, bank)
    user, member = await failing(p, bank, "sandbox_bank")
    t = await escalate(p, user, member, direct())
    p.clock.advance(days=2)
    found = (await console.get("/incidents"))["incidents"]
    expected = await incidents.incidents(p.rt)
    assert [(i["institution_code"], i["cause"], i["impact"]) for i in found] == [
        ("mxbank", "DATA_ERROR", 9.0),  # 3 users broken 2 days: 3 * (1 + 2)
        ("sandbox_bank", "DATA_ERROR", 8.0),  # 1 user, 2 days, and a ticket: 3 + 5
    ]
    assert [i.impact for i in expected] == [9.0, 8.0]
    top, small = found
    assert (top["affected_users"], top["failing_members"], top["open_tickets"]) == (3, 3, 0)
    assert small["ticket_guids"] == [t["guid"]]
    assert small["institution_name"] == "OpenAgg Sandbox Bank"
    assert small["broken_since"] == "2026-03-02T15:00:00Z"
    p.rt.settings.support_long_tail_max_users = 1
    tail = await console.get("/long_tail")
    assert tail["max_users"] == 1
    assert [
        (i["institution_code"], i["users"], i["failing_members"], i["open_tickets"], i["causes"])
        for i in tail["institutions"]
    ] == [("sandbox_bank", 1, 1, 1, ["DATA_ERROR"])]
    assert (await console.get("/incidents?limit=1"))["incidents"][0]["impact"] == 9.0
    for bad in ("/incidents?limit=0", "/incidents?limit=x", "/queue?limit=5000"):
        r = await console.http.get(f"/console/api{bad}")
        assert r.status_code == 400, bad


async def test_chart_numbers(
    platform: Platform, bank: BreakableConnector, console: Console, engineer: Operator
) -> None:
    """A week of history, day by day (D0 = 2026-03-02, 15:00 UTC):

    D0 15:00  t1 opens (member m1 fails)
    D1 15:00  t2 opens (m2 fails); 16:00 the bank is fixed, t2 resolved: CLOSED after 1 h
    D2 15:00  t1 resolved: CLOSED after 2 days; an MFA round on m4 (not an outcome)
    D3 15:00  the bank breaks again: t3 opens (m3); 16:00 m1 fails again and t1 reopens
    D4 12:00  now; a sandbox_bank member has wrong credentials (an end user's failure)
    """
    p = platform
    m1_user, m1 = await failing(p, bank)
    t1 = (await escalate(p, m1_user, m1, direct()))["guid"]
    p.clock.advance(days=1)
    m2_user, m2 = await failing(p, bank)
    t2 = (await escalate(p, m2_user, m2, direct()))["guid"]
    p.clock.advance(hours=1)
    bank.broken.clear()
    await console.post(f"/tickets/{t2}/resolve")
    await p.drain()
    p.clock.advance(hours=23)
    await console.post(f"/tickets/{t1}/resolve")
    await p.drain()
    mfa_user = await new_user(p.http)
    await create_member(p.http, mfa_user, "challenge", expect=202)
    await p.drain()
    assert (await ticket(p, m1_user, t1))["status"] == "CLOSED"
    assert (await ticket(p, m2_user, t2))["status"] == "CLOSED"
    p.clock.advance(days=1)
    m3_user, m3 = await failing(p, bank)
    t3 = (await escalate(p, m3_user, m3, direct()))["guid"]
    p.clock.advance(hours=1)
    assert (await p.http.post(f"/users/{m1_user}/members/{m1}/aggregate")).status_code == 202
    await p.drain()
    r = await p.http.post(
        f"/users/{m1_user}/support_tickets/{t1}/reopen",
        json={"support_ticket": {"description": "Broken again"}},
    )
    assert r.status_code == 200, r.text
    p.clock.advance(hours=20)
    denied_user = await new_user(p.http)
    await create_member(p.http, denied_user, "error_denied", code="sandbox_bank", expect=202)
    await p.drain()
    assert p.clock.now.isoformat() == "2026-03-06T12:00:00+00:00"

    c = await console.get("/charts?days=7")
    assert c["generated_at"] == "2026-03-06T12:00:00Z"
    assert c["open_tickets"] == {
        "days": 7,
        "points": [
            {"day": "2026-02-28", "open_tickets": 0},
            {"day": "2026-03-01", "open_tickets": 0},
            {"day": "2026-03-02", "open_tickets": 1},  # t1
            {"day": "2026-03-03", "open_tickets": 1},  # t1 (t2 came and went)
            {"day": "2026-03-04", "open_tickets": 0},  # t1 closed
            {"day": "2026-03-05", "open_tickets": 2},  # t3, and t1 reopened
            {"day": "2026-03-06", "open_tickets": 2},  # now
        ],
    }
    ttr = c["time_to_resolution"]
    assert ttr["median_seconds"] == (HOUR + 2 * DAY) / 2
    assert ttr["p90_seconds"] == 2 * DAY
    assert ttr["weeks"] == [
        {
            "start": "2026-02-27T12:00:00Z",
            "end": "2026-03-06T12:00:00Z",
            "closed": 2,
            "median_seconds": (HOUR + 2 * DAY) / 2,
            "p90_seconds": 2 * DAY,
        }
    ]
    assert {b["label"]: b["count"] for b in ttr["histogram"]} == {
        "< 1 h": 0,
        "1-4 h": 1,  # t2: exactly 1 h
        "4-24 h": 0,
        "1-3 d": 1,  # t1: 2 days
        "3-7 d": 0,
        ">= 7 d": 0,
    }
    assert ttr["histogram"][1] == {
        "label": "1-4 h",
        "min_seconds": HOUR,
        "max_seconds": 4 * HOUR,
        "count": 1,
    }

    # Attempts: m1 failed, succeeded, failed; m2 failed, succeeded; m3 failed; the MFA
    # round is left out; sandbox_bank's wrong password is the end user's failure.
    rates = c["failure_rates"]
    assert rates["window_days"] == 7
    assert rates["institutions"] == [
        {
            "institution_code": "mxbank",
            "institution_name": "MX Bank",
            "attempts": 6,
            "failures": 4,
            "end_user_failures": 0,
            "failure_rate": round(4 / 6, 4),
        },
        {
            "institution_code": "sandbox_bank",
            "institution_name": "OpenAgg Sandbox Bank",
            "attempts": 1,
            "failures": 0,
            "end_user_failures": 1,
            "failure_rate": 0.0,
        },
    ]
    # The last day only: m1's and m3's failures, 20 and 21 hours ago.
    recent = (await console.get("/charts?days=7&failure_window_days=1"))["failure_rates"]
    assert [
        (i["institution_code"], i["attempts"], i["failures"]) for i in recent["institutions"]
    ] == [("mxbank", 2, 2), ("sandbox_bank", 1, 0)]

    age = c["queue_age"]
    assert (age["open_tickets"], age["in_queue"]) == (2, 2)
    assert {b["label"]: b["count"] for b in age["buckets"]} == {
        "< 1 h": 0,
        "1-4 h": 0,
        "4-24 h": 1,  # t3: 21 h
        "1-3 d": 0,
        "3-7 d": 1,  # t1: 3 d 21 h, its creation kept through the reopening
        ">= 7 d": 0,
    }
    assert age["oldest"] == {"guid": t1, "status": "REOPENED", "age_seconds": 3 * DAY + 21 * HOUR}
    assert t3 != t1

    # A longer window shows the same closings in more weeks; a day window only today.
    month = await console.get("/charts")
    assert month["open_tickets"]["days"] == 30 and len(month["open_tickets"]["points"]) == 30
    assert len(month["time_to_resolution"]["weeks"]) == 5
    assert [w["closed"] for w in month["time_to_resolution"]["weeks"]] == [0, 0, 0, 0, 2]
    today = await console.get("/charts?days=1")
    assert today["open_tickets"]["points"] == [{"day": "2026-03-06", "open_tickets": 2}]
    for bad in ("days=0", "days=367", "days=week", "failure_window_days=0"):
        r = await console.http.get(f"/console/api/charts?{bad}")
        assert r.status_code == 400, bad
        assert "between 1 and" in message(r) or "integer" in message(r)


async def test_charts_of_an_empty_platform(console: Console) -> None:
    c = await console.get("/charts?days=3")
    assert [pt["open_tickets"] for pt in c["open_tickets"]["points"]] == [0, 0, 0]
    assert c["time_to_resolution"]["median_seconds"] is None
    assert c["time_to_resolution"]["weeks"][0]["closed"] == 0
    assert c["failure_rates"]["institutions"] == []
    assert c["queue_age"]["oldest"] is None and c["queue_age"]["open_tickets"] == 0
