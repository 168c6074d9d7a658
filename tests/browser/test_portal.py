"""The developer portal in headless Chromium against a live server: log in with the
client's client_id and api_key (by keyboard), the support ticket list and its filters,
a ticket with its status, queue position, estimate and history, the tickets waiting for
the end user's login info, narrow and wide layouts, and the end of a session.
Screenshots go under the artifacts dir (see conftest)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import (
    artifacts_dir,
    assert_no_stray_words,
    new_operator,
    new_user,
    run_cli,
)
from tests.conftest import LiveServer

FAILING = {"mxbank": ("mxuser", "SERVER_ERROR"), "sandbox_bank": ("user_good", "error_failed")}
SECRET = "kestrel-5521"


@dataclass
class Portal:
    page: Any
    shots: Path
    count: int = 0
    last: int = 0

    def view(self, name: str, timeout: float = 15_000) -> Any:
        """Wait for the next showing of a view, filled in, then save a screenshot."""
        render = self.page.wait_for_function(
            """([name, last]) => {
                const main = document.querySelector("main");
                const n = Number(main && main.dataset.render || 0);
                return main && main.dataset.view === name && n > last
                    && main.dataset.ready === "true" ? n : 0;
            }""",
            arg=[name, self.last],
            timeout=timeout,
        ).json_value()
        self.last = int(render)
        self.shot(name)
        assert_no_stray_words(self.page, f"the {name} view")
        return self.page.locator("main")

    def reload(self) -> None:
        self.page.reload()
        self.last = 0  # a new document counts its views from one again

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.shots / f"{self.count:02d}-{name}.png"), full_page=True)

    def rows(self) -> list[str]:
        rows: list[str] = self.page.locator("tbody tr").evaluate_all(
            "rows => rows.map((r) => r.dataset.guid)"
        )
        return rows


def failing_member(api: httpx.Client, user: str, code: str) -> str:
    creds = api.get(f"/institutions/{code}/credentials").json()["credentials"]
    username, password = FAILING[code]
    values = {"LOGIN": username, "PASSWORD": password}
    body = {
        "member": {
            "institution_code": code,
            "credentials": [{"guid": c["guid"], "value": values[c["field_name"]]} for c in creds],
        }
    }
    r = api.post(f"/users/{user}/members", json=body)
    assert r.status_code == 202, r.text
    member: str = r.json()["member"]["guid"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        got = api.get(f"/users/{user}/members/{member}/status").json()["member"]
        if got["connection_status"] == "FAILED" and not got["is_being_aggregated"]:
            return member
        time.sleep(0.1)
    raise AssertionError(f"{member} did not fail")


def report(api: httpx.Client, user: str, member: str, **fields: Any) -> dict[str, Any]:
    body = {"support_ticket": {"channel": "DIRECT", "description": "It stopped", **fields}}
    r = api.post(f"/users/{user}/members/{member}/support_tickets", json=body)
    assert r.status_code == 201, r.text
    ticket: dict[str, Any] = r.json()["support_ticket"]
    return ticket


def read(api: httpx.Client, ticket: dict[str, Any]) -> dict[str, Any]:
    r = api.get(f"/users/{ticket['user_guid']}/support_tickets/{ticket['guid']}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["support_ticket"]
    return body


@pytest.fixture(scope="module")
def tickets(api: httpx.Client, server: LiveServer) -> dict[str, dict[str, Any]]:
    """Three tickets: direct at MX Bank, indirect at Sandbox Bank, and one whose engineer
    asked the end user for more (through the engineers' CLI)."""
    made: dict[str, dict[str, Any]] = {}
    user = new_user(api)
    made["direct"] = report(api, user, failing_member(api, user, "mxbank"))
    user = new_user(api)
    made["indirect"] = report(
        api,
        user,
        failing_member(api, user, "sandbox_bank"),
        channel="INDIRECT",
        description="Customer called: no new transactions",
        agent={"id": "crm-42", "name": "Sam Support"},
    )
    user = new_user(api)
    asked = report(api, user, failing_member(api, user, "mxbank"))
    engineer = new_operator(server, "eve.portal@openagg.test")
    run_cli(server, "tickets", "take", asked["guid"], OPENAGG_OPERATOR=engineer)
    run_cli(
        server,
        "tickets",
        "request-info",
        asked["guid"],
        "--prompt",
        "Your security word",
        "--prompt",
        "Where should we send codes|OPTIONS|SMS,Email",
        OPENAGG_OPERATOR=engineer,
    )
    made["asked"] = asked
    return made


@pytest.fixture
def portal(browser: Any, request: pytest.FixtureRequest) -> Iterator[Portal]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield Portal(page, artifacts_dir(request))
    context.close()


def log_in(p: Portal, server: LiveServer) -> Any:
    """By keyboard: the heading has focus, Tab reaches the fields, Enter submits."""
    p.page.keyboard.press("Tab")
    p.page.keyboard.type(server.client_id)
    p.page.keyboard.press("Tab")
    p.page.keyboard.type(server.api_key)
    p.page.keyboard.press("Enter")
    return p.view("tickets")


def test_log_in_filter_and_read_tickets(
    portal: Portal, server: LiveServer, api: httpx.Client, tickets: dict[str, dict[str, Any]]
) -> None:
    p = portal
    direct, indirect, asked = tickets["direct"], tickets["indirect"], tickets["asked"]
    p.page.goto(f"{server.url}/portal")
    login = p.view("login")
    assert login.get_by_role("heading").inner_text() == "Log in to the developer portal"
    login.get_by_label("Client ID").fill(server.client_id)
    login.get_by_label("API key").fill("not-the-key")
    login.get_by_role("button", name="Log in").click()
    login.get_by_role("alert").filter(has_text="Wrong client_id or api_key").wait_for()
    p.shot("login-refused")
    login.get_by_label("Client ID").fill("")
    login.get_by_label("API key").fill("")
    login.get_by_role("heading").focus()

    listing = log_in(p, server)
    assert p.page.locator("#op-client").inner_text() == f"Live test ({server.client_id})"
    assert p.rows() == [asked["guid"], indirect["guid"], direct["guid"]]  # newest first
    assert listing.get_by_role("status").inner_text() == "3 tickets."
    row = listing.locator(f'tr[data-guid="{asked["guid"]}"]')
    assert row.locator(".op-badge").inner_text() == "Waiting for login info"
    row = listing.locator(f'tr[data-guid="{direct["guid"]}"]')
    assert row.locator('td[data-label="Queue position"]').inner_text() == "1 (next)"

    # Filters: channel, then a status, then an institution; the URL keeps them.
    listing.get_by_label("Channel").select_option("INDIRECT")
    listing.get_by_role("button", name="Apply filters").click()
    listing = p.view("tickets")
    assert p.rows() == [indirect["guid"]]
    assert "channel=INDIRECT" in p.page.url
    assert listing.get_by_label("Channel").input_value() == "INDIRECT"
    listing.get_by_role("button", name="Clear filters").click()
    listing = p.view("tickets")
    assert len(p.rows()) == 3
    listing.get_by_label("Waiting for login info").check()
    listing.get_by_label("Login info submitted").check()
    listing.get_by_role("button", name="Apply filters").click()
    listing = p.view("tickets")
    assert p.rows() == [asked["guid"]]
    listing.get_by_role("button", name="Clear filters").click()
    listing = p.view("tickets")
    listing.get_by_label("Institution code").fill("sandbox_bank")
    listing.get_by_label("Institution code").press("Enter")
    listing = p.view("tickets")
    assert p.rows() == [indirect["guid"]]
    listing.get_by_label("Institution code").fill("no_such_bank")
    listing.get_by_role("button", name="Apply filters").click()
    listing = p.view("tickets")
    assert p.rows() == [] and listing.get_by_role("status").inner_text() == (
        "No ticket matches these filters."
    )
    listing.get_by_role("button", name="Clear filters").click()
    listing = p.view("tickets")

    # One ticket: what the end user sees, and its history.
    listing.get_by_role("link", name=direct["guid"]).click()
    detail = p.view("ticket")
    now = read(api, direct)
    assert detail.get_by_role("heading", level=1).inner_text() == f"Ticket {direct['guid']}"
    assert detail.locator(".op-overview .op-badge").inner_text() == "New"
    position = detail.locator('[data-field="queue_position"] .op-stat-value').inner_text()
    assert position == "1 (next)" and now["queue_position"] == 1
    due = detail.locator('[data-field="estimated_resolution_at"] time')
    assert due.get_attribute("datetime") == now["estimated_resolution_at"]
    assert detail.locator('[data-field="member_status"]').inner_text() == "FAILED"
    events = detail.locator(".op-timeline li")
    assert events.count() == 1
    assert "Reported" in events.first.inner_text() and "End user" in events.first.inner_text()
    detail.get_by_role("link", name="Back to support tickets").click()
    p.view("tickets")

    # The tickets waiting for the end user's login info, with the engineer's questions.
    p.page.get_by_role("link", name="Pending login info").click()
    pending = p.view("pending")
    card = pending.locator(f'li[data-guid="{asked["guid"]}"]')
    assert pending.locator(".op-card").count() == 1
    assert card.locator(".op-prompt-label").all_inner_texts() == [
        "Your security word",
        "Where should we send codes",
    ]
    assert "SMS, Email" in card.inner_text()
    card.get_by_role("link", name=asked["guid"]).click()
    detail = p.view("ticket")
    waiting = detail.locator(".op-pending")
    assert "Your security word" in waiting.inner_text()
    history = detail.locator(".op-timeline li").all_inner_texts()
    assert [h.splitlines()[1] for h in history] == [
        "Reported",
        "Taken by an engineer",
        "Engineer asked for login info",
    ]

    # The end user answers: the portal shows it, never the answer.
    prompts = read(api, asked)["additional_login_info"]
    r = api.put(
        f"/users/{asked['user_guid']}/support_tickets/{asked['guid']}/additional_login_info",
        json={
            "support_ticket": {
                "additional_login_info": [
                    {"guid": prompts[0]["guid"], "value": SECRET},
                    {"guid": prompts[1]["guid"], "value": "SMS"},
                ]
            }
        },
    )
    assert r.status_code == 200, r.text
    p.reload()
    detail = p.view("ticket")
    assert detail.locator(".op-overview .op-badge").inner_text() == "Login info submitted"
    assert detail.locator(".op-pending").count() == 0
    assert SECRET not in p.page.content()


def test_narrow_layout_and_the_end_of_a_session(
    portal: Portal, server: LiveServer, tickets: dict[str, dict[str, Any]]
) -> None:
    p = portal
    p.page.set_viewport_size({"width": 390, "height": 844})
    p.page.goto(f"{server.url}/portal#/tickets")
    p.view("login")
    log_in(p, server)
    # Narrow: the filters are folded away, and each ticket is a card of labelled lines.
    filters = p.page.locator("details.op-filters")
    assert filters.get_attribute("open") is None
    p.page.locator("details.op-filters summary").press("Enter")  # opens by keyboard
    assert filters.get_attribute("open") is not None
    assert p.page.get_by_label("Institution code").is_visible()
    head = p.page.locator("thead").bounding_box()
    assert head is not None and head["height"] <= 1
    label = p.page.locator('tbody td[data-label="Status"]').first.evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert label == '"Status"'

    # The session ends elsewhere (another tab logs out): back to the login, with why.
    csrf = p.page.request.get(f"{server.url}/portal/api/session").json()["csrf_token"]
    r = p.page.request.post(f"{server.url}/portal/api/logout", headers={"X-CSRF-Token": csrf})
    assert r.status == 204
    p.page.get_by_role("link", name="Pending login info").click()
    login = p.view("login")
    assert login.get_by_role("alert").inner_text() == (
        "Your session has ended. Please log in again."
    )
    assert p.page.locator("#op-header").is_hidden()
    # Logging in again goes back where the user was.
    log_in_again = login.get_by_label("Client ID")
    log_in_again.fill(server.client_id)
    login.get_by_label("API key").fill(server.api_key)
    login.get_by_role("button", name="Log in").click()
    p.view("pending")
    p.page.get_by_role("button", name="Log out").click()
    login = p.view("login")
    assert login.get_by_role("alert").inner_text() == "You have logged out."
    assert p.page.context.cookies() == []


@pytest.mark.parametrize(("width", "scheme"), [(1280, "light"), (390, "dark")])
def test_a_simplefin_setup_token_made_in_the_portal_is_claimed_once(
    browser: Any,
    request: pytest.FixtureRequest,
    server: LiveServer,
    api: httpx.Client,
    width: int,
    scheme: str,
) -> None:
    """Support staff make a token for a user; the budget app claims it once; a user
    the client does not have is refused in words."""
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(10_000)
    p = Portal(page, artifacts_dir(request))
    try:
        user = new_user(api)
        page.goto(f"{server.url}/portal")
        p.view("login")
        log_in(p, server)
        page.locator("#op-nav-simplefin").click()
        view = p.view("simplefin")
        view.get_by_label("User guid").fill("USR-not-one-of-ours")
        view.get_by_role("button", name="Make a setup token").click()
        view.get_by_role("alert").filter(has_text="unable to find").wait_for()
        view.get_by_label("User guid").fill(user)
        view.get_by_role("button", name="Make a setup token").click()
        token = page.locator("#op-token-value").input_value(timeout=10_000)
        p.shot("simplefin-token")
        assert page.evaluate("document.activeElement.id") == "op-token-value"
        claim_url = base64.b64decode(token).decode()
        assert claim_url.startswith(f"{server.url}/simplefin/claim/")
        first = httpx.post(claim_url, timeout=10)
        assert first.status_code == 200 and "/simplefin" in first.text
        assert httpx.post(claim_url, timeout=10).status_code == 403
        listed = api.get(f"/users/{user}/simplefin_tokens").json()["simplefin_tokens"]
        assert [(t["state"], t["created_by"]) for t in listed] == [("CLAIMED", "PORTAL")]
    finally:
        context.close()
