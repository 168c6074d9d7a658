"""The Connect widget's "Report a problem" in headless Chromium: an end user with a
connection only an engineer can fix reports it, sees the ticket's status, place in
line and estimate, finds them again when they come back, and answers the engineer's
questions. Screens are saved under the artifacts dir (see conftest)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from openagg.domain.statuses import Status
from tests.browser.conftest import (
    Widget,
    institution,
    new_operator,
    new_user,
    run_cli,
    sign_in,
    widget_url,
)
from tests.conftest import LiveServer

FAILED = Status.FAILED.id  # MX's numeric status in memberStatusUpdate
LOAD = {"mx": True, "type": "mx/load", "metadata": {}}


def member_of(w: Widget) -> str:
    update = next(e for e in w.events(1) if e["type"] == "mx/connect/memberStatusUpdate")
    guid: str = update["metadata"]["member_guid"]
    return guid


def open_ticket(api: httpx.Client, user: str, member: str) -> dict[str, Any]:
    r = api.get(f"/users/{user}/members/{member}/support_tickets")
    assert r.status_code == 200, r.text
    [ticket] = r.json()["support_tickets"]
    return dict(ticket)


def openagg_event(w: Widget, name: str, **fields: Any) -> dict[str, Any]:
    meta = {"user_guid": w.user_guid, "session_guid": w.session_guid, **fields}
    return {"mx": True, "type": f"openagg/connect/{name}", "metadata": meta}


def fact(main: Any, term: str) -> str:
    text: str = main.locator(f'dd[data-fact="{term}"]').inner_text()
    return text


def reopen(
    w: Widget, api: httpx.Client, host_origin: str, user: str | None = None, **options: Any
) -> Widget:
    """A new widget URL in the same host page (the end user comes back, or another one
    comes). Screenshots go on in the same folder (``open_widget`` would empty it)."""
    user = user or w.user_guid
    url = widget_url(api, user, **options)
    w.page.goto(f"{host_origin}/app?{urlencode({'widget': url})}")
    return Widget(w.page, user, w.shots, count=w.count)


def failed_member(w: Widget) -> Any:
    """Sign in to MX Bank with the password that makes the bank fail (FAILED)."""
    sign_in(w, "mxuser", "SERVER_ERROR")
    return w.screen("loginError")


def test_report_a_problem_then_come_back(
    api: httpx.Client, open_widget: Any, host_origin: str
) -> None:
    user = new_user(api)
    w = open_widget(user, current_institution_code="mxbank")
    error = failed_member(w)
    member = member_of(w)
    error.get_by_role("button", name="Report a problem").click()

    form = w.screen("reportProblem")
    assert form.get_by_role("heading").inner_text() == "Report a problem with MX Bank"
    form.get_by_label("It keeps failing to connect").check()
    form.get_by_label("Details (optional)").fill("Nothing new since Monday.")
    form.get_by_role("button", name="Send report").click()

    shown = w.screen("supportTicket")
    assert shown.get_by_role("heading").inner_text() == "We've reported the problem"
    ticket = open_ticket(api, user, member)
    assert ticket["status"] == "NEW" and ticket["channel"] == "DIRECT"
    assert "Nothing new since Monday." in ticket["description"]
    assert fact(shown, "Status") == "Reported. It's waiting for an engineer."
    assert fact(shown, "Your place in line") == "Next"
    assert fact(shown, "Reference") == ticket["guid"]
    due = shown.locator('dd[data-fact="Expected to be fixed by"] time')
    assert due.get_attribute("datetime") == ticket["estimated_resolution_at"]
    assert _parse(ticket["estimated_resolution_at"]) > dt.datetime.now(dt.UTC)

    w.assert_events(
        [
            LOAD,
            w.event("loaded", initial_step="enterCreds"),
            w.event("enterCredentials", institution={"code": "mxbank", "guid": _mx_guid(api)}),
            w.event("memberStatusUpdate", member_guid=member, connection_status=0),
            w.step("enterCreds", "connecting"),
            w.event("memberStatusUpdate", member_guid=member, connection_status=FAILED),
            w.step("connecting", "loginError"),
            w.step("loginError", "reportProblem"),
            openagg_event(
                w,
                "problemReported",
                member_guid=member,
                support_ticket_guid=ticket["guid"],
                status="NEW",
                joined=False,
            ),
            w.step("reportProblem", "supportTicket"),
        ]
    )

    # The end user comes back later: the ticket's status instead of a bare error.
    again = reopen(w, api, host_origin, current_member_guid=member)
    back = again.screen("supportTicket")
    assert back.get_by_role("heading").inner_text() == "Your report about MX Bank"
    assert fact(back, "Status") == "Reported. It's waiting for an engineer."
    assert fact(back, "Reference") == ticket["guid"]
    assert back.locator("time").get_attribute("datetime") == ticket["estimated_resolution_at"]
    again.assert_events(
        [
            LOAD,
            again.event("loaded", initial_step="loginError"),
            again.event("memberStatusUpdate", member_guid=member, connection_status=FAILED),
        ]
    )

    # A second report joins the open ticket, and the widget says so.
    back.get_by_role("button", name="Tell us more").click()
    more = again.screen("reportProblem")
    more.get_by_label("Something else").check()
    more.get_by_label("Details (optional)").fill("Also my savings account is missing.")
    more.get_by_role("button", name="Send report").click()
    joined = again.screen("supportTicket")
    assert joined.get_by_role("heading").inner_text() == "We added your report to the open one"
    assert fact(joined, "Reports") == "2"
    assert open_ticket(api, user, member)["report_count"] == 2
    again.assert_events(
        [
            LOAD,
            again.event("loaded", initial_step="loginError"),
            again.event("memberStatusUpdate", member_guid=member, connection_status=FAILED),
            again.step("supportTicket", "reportProblem"),
            openagg_event(
                again,
                "problemReported",
                member_guid=member,
                support_ticket_guid=ticket["guid"],
                status="NEW",
                joined=True,
            ),
            again.step("reportProblem", "supportTicket"),
        ]
    )


def test_answer_the_engineers_questions(
    api: httpx.Client, open_widget: Any, server: LiveServer, host_origin: str
) -> None:
    user = new_user(api)
    w = open_widget(user, current_institution_code="mxbank")
    failed_member(w).get_by_role("button", name="Report a problem").click()
    member = member_of(w)
    w.screen("reportProblem").get_by_role("button", name="Send report").click()
    w.screen("supportTicket")
    ticket = open_ticket(api, user, member)

    engineer = new_operator(server, "eve.widget@openagg.test")
    run_cli(
        server,
        "tickets",
        "request-info",
        ticket["guid"],
        "--prompt",
        "Your security word",
        "--prompt",
        "One-time code|TOKEN",
        "--prompt",
        "Where should we send codes|OPTIONS|SMS,Email",
        OPENAGG_OPERATOR=engineer,
    )

    again = reopen(w, api, host_origin, current_member_guid=member)
    asked = again.screen("loginInfo")
    assert asked.get_by_role("heading").inner_text() == "Our engineer needs a bit more from you"
    asked.get_by_role("button", name="Send answers").click()
    asked.get_by_role("alert").filter(has_text="Please answer every question.").wait_for()
    asked.get_by_label("Your security word").fill("heron")
    asked.get_by_label("One-time code").fill("918273")
    asked.get_by_label("Email").check()
    asked.get_by_role("button", name="Send answers").click()

    done = again.screen("supportTicket")
    assert done.get_by_role("heading").inner_text() == "Thanks, we sent your answers"
    assert fact(done, "Status") == "We have your answers. An engineer is working on it."
    assert open_ticket(api, user, member)["status"] == "ADDITIONAL_LOGIN_INFO_SUBMITTED"
    again.assert_events(
        [
            LOAD,
            again.event("loaded", initial_step="loginError"),
            again.event("memberStatusUpdate", member_guid=member, connection_status=FAILED),
            openagg_event(
                again, "loginInfoSubmitted", member_guid=member, support_ticket_guid=ticket["guid"]
            ),
            again.step("loginInfo", "supportTicket"),
        ]
    )
    # The engineer reads the answers once; the app's API never shows them.
    assert "heron" not in api.get(f"/users/{user}/support_tickets/{ticket['guid']}").text
    out = run_cli(server, "tickets", "read-info", ticket["guid"], OPENAGG_OPERATOR=engineer)
    assert out.splitlines() == [
        "Your security word: heron",
        "One-time code: 918273",
        "Where should we send codes: Email",
    ]


def test_no_report_for_what_the_end_user_fixes_and_plain_refusals(
    api: httpx.Client, open_widget: Any, host_origin: str
) -> None:
    # DENIED: the screen offers the fix (update credentials), not a report.
    user = new_user(api)
    w = open_widget(user, current_institution_code="mxbank")
    sign_in(w, "mxuser", "INVALID")
    denied = w.screen("loginError")
    assert denied.get_by_role("button", name="Update credentials").is_visible()
    assert denied.get_by_role("button", name="Report a problem").count() == 0

    # The status changes while the form is open: the refusal comes in plain words.
    other = new_user(api)
    v = reopen(w, api, host_origin, other, current_institution_code="mxbank")
    failed_member(v).get_by_role("button", name="Report a problem").click()
    form = v.screen("reportProblem")
    member = member_of(v)
    creds = api.get("/institutions/mxbank/credentials").json()["credentials"]
    values = {"LOGIN": "mxuser", "PASSWORD": "INVALID"}
    r = api.put(
        f"/users/{other}/members/{member}",
        json={
            "member": {
                "credentials": [
                    {"guid": c["guid"], "value": values[c["field_name"]]} for c in creds
                ]
            }
        },
    )
    assert r.status_code == 200, r.text
    _wait_for_status(api, other, member, "DENIED")
    form.get_by_role("button", name="Send report").click()
    refusal = form.get_by_role("alert")
    refusal.wait_for()
    assert refusal.inner_text() == (
        "MX Bank didn't accept your username or password. You can fix this yourself: "
        "update your credentials."
    )
    v.page.screenshot(path=str(v.shots / f"{v.count + 1:02d}-reportProblem-refused.png"))
    v.count += 1
    assert api.get(f"/users/{other}/support_tickets").json()["support_tickets"] == []
    # Back shows where things stand now: the fix for DENIED.
    form.get_by_role("button", name="Cancel").click()
    now = v.screen("loginError")
    assert now.get_by_role("heading").inner_text() == "Your credentials weren't accepted"
    assert now.get_by_role("button", name="Report a problem").count() == 0


def _wait_for_status(api: httpx.Client, user: str, member: str, want: str) -> None:
    deadline = dt.datetime.now() + dt.timedelta(seconds=15)
    while dt.datetime.now() < deadline:
        body = api.get(f"/users/{user}/members/{member}/status").json()["member"]
        if body["connection_status"] == want and not body["is_being_aggregated"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"{member} never became {want}")


def _mx_guid(api: httpx.Client) -> str:
    return str(institution(api, "mxbank")["guid"])


def _parse(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
