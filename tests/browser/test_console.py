"""The engineer console in headless Chromium against a live server: log in, the FIFO
queue, take and resolve tickets until the worker's re-aggregation closes one and
reopens another (at its place), additional login info read once, the incident, long
tail and chart views with their numbers, narrow screens, logout and a lost session.
Screenshots of every step go to the artifacts directory (see conftest)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import artifacts_dir, assert_no_stray_words, new_user
from tests.conftest import LiveServer, create_operator_with_cli
from tests.support import credentials_for

EMAIL = "eve@console.test"
USERNAMES = {"mxbank": "mxuser", "sandbox_bank": "user_good"}


# --- setting the scene through the MX-style API ---------------------------------------


def create_operator(server: LiveServer) -> str:
    """``openagg operators create`` on the server's database; returns the password."""
    return create_operator_with_cli(server.env, "Eve", EMAIL)


def wait_idle(api: httpx.Client, user: str, member: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        r = api.get(f"/users/{user}/members/{member}/status")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()["member"]
        if not body["is_being_aggregated"]:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def connect(api: httpx.Client, code: str, password: str) -> tuple[str, str]:
    user = new_user(api)
    fields = api.get(f"/institutions/{code}/credentials").json()["credentials"]
    creds = credentials_for(fields, USERNAMES[code], password)
    r = api.post(
        f"/users/{user}/members",
        json={"member": {"institution_code": code, "credentials": creds}},
    )
    assert r.status_code == 202, r.text
    member = str(r.json()["member"]["guid"])
    settled = wait_idle(api, user, member)
    assert settled["connection_status"] == "FAILED", settled
    return user, member


def aggregate(api: httpx.Client, user: str, member: str) -> str:
    r = api.post(f"/users/{user}/members/{member}/aggregate")
    assert r.status_code == 202, r.text
    assert r.json()["member"]["is_being_aggregated"] is True, r.text
    return str(wait_idle(api, user, member)["connection_status"])


def escalate(api: httpx.Client, user: str, member: str, description: str) -> str:
    r = api.post(
        f"/users/{user}/members/{member}/support_tickets",
        json={"support_ticket": {"channel": "DIRECT", "description": description}},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["support_ticket"]["guid"])


# --- driving the page -------------------------------------------------------------------


class Console:
    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.count = 0

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.shots / f"{self.count:02d}-{name}.png"), full_page=True)

    def view(self, name: str, timeout: float = 10_000) -> Any:
        self.page.wait_for_selector(f'main[data-view="{name}"][aria-busy="false"]', timeout=timeout)
        assert_no_stray_words(self.page, f"the {name} view")
        return self.page.locator("main")

    def status(self, status: str, timeout: float = 20_000) -> None:
        self.page.wait_for_selector(
            f'main[data-view="ticket"][data-status="{status}"]', timeout=timeout
        )

    def go(self, hash_: str, name: str) -> Any:
        self.page.evaluate("(h) => { location.hash = h; }", hash_)
        return self.view(name)

    def queue(self) -> list[tuple[str, str, str]]:
        """(position, guid, status) of each row, top to bottom."""
        self.go("#/queue", "queue")
        self.page.get_by_role("button", name="Refresh").click()
        self.view("queue")
        rows = self.page.locator("table.queue tbody tr")
        return [
            (
                row.locator("td").nth(0).inner_text().strip(),
                row.locator("td").nth(1).inner_text().strip(),
                row.locator("td").nth(2).inner_text().strip().replace(" ", "_"),
            )
            for row in rows.all()
        ]

    def table(self, selector: str) -> list[list[str]]:
        rows = self.page.locator(f"{selector} tbody tr").all()
        return [
            [(c.text_content() or "").strip() for c in row.locator("th, td").all()] for row in rows
        ]

    def log_in(self, password: str) -> None:
        """By keyboard: the email field has the focus when the form shows."""
        self.view("login")
        self.page.keyboard.type(EMAIL)
        self.page.keyboard.press("Tab")
        self.page.keyboard.type(password)
        self.page.keyboard.press("Enter")


@pytest.fixture
def console_page(browser: Any, server: LiveServer, request: pytest.FixtureRequest) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # CSP violations are reported on the console; a page that breaks its own policy fails.
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{server.url}/console")
    yield Console(page, artifacts_dir(request))
    context.close()
    assert errors == []


def test_queue_take_resolve_and_the_views(
    console_page: Console, api: httpx.Client, server: LiveServer
) -> None:
    ui, page = console_page, console_page.page
    password = create_operator(server)

    # A: fails for its first three attempts, then works (sandbox_bank's "flaky").
    a_user, a_member = connect(api, "sandbox_bank", "flaky")
    assert aggregate(api, a_user, a_member) == "FAILED"
    assert aggregate(api, a_user, a_member) == "DEGRADED"
    # B and C: mxbank keeps answering with a server error / unavailable.
    b_user, b_member = connect(api, "mxbank", "SERVER_ERROR")
    c_user, c_member = connect(api, "mxbank", "UNAVAILABLE")
    a = escalate(api, a_user, a_member, "My savings stopped updating")
    b = escalate(api, b_user, b_member, "Nothing since Tuesday")
    c = escalate(api, c_user, c_member, "It says unavailable")

    # Log in: a wrong password first, then the right one, by keyboard.
    ui.log_in("not the password")
    page.get_by_text("Wrong email or password.").wait_for()
    ui.shot("login-refused")
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    ui.view("queue")
    assert page.locator("#who-name").inner_text() == f"Eve ({EMAIL})"

    # The queue: first in, first out.
    assert ui.queue() == [("1", a, "NEW"), ("2", b, "NEW"), ("3", c, "NEW")]
    ui.shot("queue")

    # Open A, take it, resolve it: the worker re-aggregates and the ticket closes.
    page.get_by_role("link", name=a).click()
    ui.status("NEW")
    assert page.locator("#ticket-description").inner_text() == "My savings stopped updating"
    fields = page.locator("dl.fields").first.inner_text()
    assert "DEGRADED" in fields and "INSTITUTION_UNAVAILABLE" in fields
    page.get_by_role("button", name="Take").click()
    ui.status("IN_PROCESS")
    assert page.locator("#action-notice").inner_text() == f"You took {a}."
    ui.shot("taken")
    page.locator("#resolve-form").get_by_label("Note (optional)").fill("the bank is back")
    page.locator("#resolve-form").get_by_role("button", name="Resolve").click()
    page.locator("#action-notice").get_by_text("Re-aggregating 1 member(s).").wait_for()
    ui.shot("verifying")
    ui.status("CLOSED")
    history = ui.table("table.history")
    assert [row[1] for row in history] == ["reported", "taken", "resolved", "verified"]
    assert history[2][2] == "OPERATOR: Eve" and history[2][6] == "the bank is back"
    assert history[3][3] == "IN_PROCESS → CLOSED"
    assert page.get_by_text("This ticket is CLOSED").is_visible()
    ui.shot("closed")
    assert wait_idle(api, a_user, a_member)["connection_status"] == "CONNECTED"

    # B still fails after the fix: it reopens and keeps its place ahead of C.
    assert ui.queue() == [("1", b, "NEW"), ("2", c, "NEW")]
    page.get_by_role("link", name=b).click()
    ui.status("NEW")
    page.locator("#resolve-form").get_by_role("button", name="Resolve").click()
    ui.status("REOPENED")
    assert ui.table("table.history")[-1][1] == "verification failed"
    ui.shot("reopened")
    assert ui.queue() == [("1", b, "REOPENED"), ("2", c, "NEW")]

    # C: ask for more, like MFA; the end user answers; the answers are read once.
    page.get_by_role("link", name=c).click()
    ui.status("NEW")
    form = page.locator("#login-info-form")
    form.get_by_label("Question shown to the end user").fill("The code we texted you")
    form.get_by_label("Answer type").select_option("TOKEN")
    form.get_by_role("button", name="Add a question").click()
    second = form.locator("fieldset.prompt").nth(1)
    second.get_by_label("Question shown to the end user").fill("Where should we send it")
    second.get_by_label("Answer type").select_option("OPTIONS")
    second.get_by_label("Options (comma-separated)").fill("SMS, Email")
    ui.shot("asking")
    form.get_by_role("button", name="Ask the end user").click()
    ui.status("ADDITIONAL_LOGIN_INFO_REQUIRED")
    assert page.get_by_role("button", name="Take").is_disabled()
    asked = api.get(f"/users/{c_user}/support_tickets/{c}").json()["support_ticket"]
    prompts = asked["additional_login_info"]
    assert [(q["label"], q["type"]) for q in prompts] == [
        ("The code we texted you", "TOKEN"),
        ("Where should we send it", "OPTIONS"),
    ]
    r = api.put(
        f"/users/{c_user}/support_tickets/{c}/additional_login_info",
        json={
            "support_ticket": {
                "additional_login_info": [
                    {"guid": prompts[0]["guid"], "value": "731904"},
                    {"guid": prompts[1]["guid"], "value": "Email"},
                ]
            }
        },
    )
    assert r.status_code == 200, r.text
    page.reload()
    ui.status("ADDITIONAL_LOGIN_INFO_SUBMITTED")
    page.get_by_role("button", name="Read the answers (once)").click()
    page.locator("#login-answers").wait_for()
    answers = page.locator("#login-answers").inner_text()
    assert "731904" in answers and "Email" in answers
    ui.shot("answers-read-once")
    page.reload()
    ui.status("ADDITIONAL_LOGIN_INFO_SUBMITTED")
    assert page.get_by_role("button", name="Read the answers (once)").count() == 0
    assert "731904" not in page.locator("main").inner_text()
    assert "731904" not in server.log_path.read_text(errors="replace")

    # Mark invalid refuses an empty reason, with the API's message.
    page.locator("#invalid-form").get_by_role("button", name="Mark invalid").click()
    page.locator("#action-error").get_by_text("note").wait_for()
    ui.shot("invalid-needs-a-note")

    # Incidents: by institution and cause, with their numbers.
    ui.go("#/incidents", "incidents")
    rows = {(r[2], r[3]): r for r in ui.table("table.incidents")}
    b_row = rows[("MX Bank (mxbank)", "INSTITUTION_ERROR")]
    c_row = rows[("MX Bank (mxbank)", "INSTITUTION_UNAVAILABLE")]
    assert (b_row[4], b_row[5], b_row[6]) == ("1", "1", "1")  # users, members, tickets
    assert float(b_row[1]) == pytest.approx(6, abs=0.05)  # 1 user just broken + 5
    assert c_row[8] == c and b_row[8] == b
    assert not any(code == "OpenAgg Sandbox Bank (sandbox_bank)" for code, _ in rows)
    ui.shot("incidents")

    ui.go("#/long-tail", "long-tail")
    tail = {r[0]: r for r in ui.table("table.long-tail")}
    assert tail["MX Bank (mxbank)"][1:4] == ["2", "2", "2"]  # users, failing, tickets
    ui.shot("long-tail")

    # Charts: drawn in SVG, each with its numbers.
    ui.go("#/charts", "charts")
    assert page.locator("svg.chart").count() == 5
    for figure in ("chart-open", "chart-resolution", "chart-failures", "chart-age"):
        assert page.locator(f"#{figure} svg[role=img]").first.get_attribute("aria-label")
    open_rows = ui.table("#numbers-open")
    assert len(open_rows) == 30 and open_rows[-1][1] == "2"  # B and C open today
    assert "2 open now" in page.locator("#chart-open .summary").inner_text()
    closed = ui.table("#numbers-ttr-weeks")
    assert closed[-1][1] == "1"  # A closed this week
    failures = {r[0]: r for r in ui.table("#numbers-failures")}
    assert failures["sandbox_bank"][1:4] == ["4", "3", "75%"]  # A: 3 failures, then OK
    assert failures["mxbank"][1:4] == ["3", "3", "100%"]  # B twice (one a failed fix), C
    age = ui.table("#numbers-age")
    assert age[0] == ["< 1 h", "2"]
    page.locator("#chart-open details summary").click()
    ui.shot("charts")
    page.select_option("#chart-days", "7")
    page.wait_for_function("() => document.querySelectorAll('#numbers-open tbody tr').length === 7")
    ui.view("charts")

    # Narrow screens: the queue becomes cards, still with its labels.
    page.set_viewport_size({"width": 390, "height": 844})
    ui.queue()
    ui.shot("queue-narrow")
    page.set_viewport_size({"width": 1280, "height": 900})

    # The session ends behind the page's back: the next call shows the login again.
    page.context.clear_cookies()
    page.get_by_role("button", name="Refresh").click()
    ui.view("login")
    assert page.locator("#login-message").inner_text() == "Please log in."
    assert page.locator("#nav").is_hidden()
    ui.shot("session-lost")
    ui.log_in(password)
    ui.view("queue")

    # Log out: the server forgets the session, not only the page.
    [cookie] = page.context.cookies()
    assert cookie["name"] == "openagg_console" and cookie["httpOnly"]
    assert cookie["path"] == "/console" and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Log out").click()
    ui.view("login")
    assert page.locator("#login-message").inner_text() == "You have logged out."
    replayed = httpx.get(
        f"{server.url}/console/api/session",
        headers={"Cookie": f"openagg_console={cookie['value']}"},
    )
    assert replayed.status_code == 401
    ui.shot("logged-out")
