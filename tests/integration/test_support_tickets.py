"""Support tickets through the API and the engineers' services: every rule of
docs/support.md (who may escalate what, joining, presence, agents, bursts, additional
login info sealed at rest, FIFO and reopening, verification of a fix by
re-aggregation, webhooks, personal data removal) and the incident views."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from openagg.cli import app
from openagg.db.models import Operator, SupportTicket, SupportTicketEvent, WebhookEvent
from openagg.services import incidents, operators, support
from openagg.services.errors import Conflict, Unprocessable
from openagg.services.support import Prompt
from openagg.settings import Settings
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, new_user, status
from tests.integration.conftest import BreakableConnector


async def connected(p: Platform, password: str = "pass", code: str = "mxbank") -> tuple[str, str]:
    user = await new_user(p.http)
    r = await create_member(p.http, user, password, code=code)
    assert r.status_code == 202, r.text
    await p.drain()
    return user, r.json()["member"]["guid"]


async def failing(p: Platform, bank: BreakableConnector, code: str = "mxbank") -> tuple[str, str]:
    bank.broken.add(code)
    user, member = await connected(p, code=code)
    assert (await status(p.http, user, member))["connection_status"] == "FAILED"
    return user, member


def direct(description: str = "My bank will not sync", **fields: Any) -> dict[str, Any]:
    return {"support_ticket": {"channel": "DIRECT", "description": description, **fields}}


AGENT = {"id": "agent-7", "name": "Sam Support"}


def indirect(description: str = "Customer reports sync failure", **fields: Any) -> dict[str, Any]:
    fields.setdefault("agent", AGENT)
    return {"support_ticket": {"channel": "INDIRECT", "description": description, **fields}}


async def escalate(
    p: Platform, user: str, member: str, body: dict[str, Any], expect: int = 201, **kw: Any
) -> dict[str, Any]:
    r = await p.http.post(f"/users/{user}/members/{member}/support_tickets", json=body, **kw)
    assert r.status_code == expect, r.text
    result: dict[str, Any] = r.json()
    return result.get("support_ticket", result)


async def ticket(p: Platform, user: str, guid: str) -> dict[str, Any]:
    r = await p.http.get(f"/users/{user}/support_tickets/{guid}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["support_ticket"]
    return body


async def history(p: Platform, user: str, guid: str) -> list[dict[str, Any]]:
    r = await p.http.get(f"/users/{user}/support_tickets/{guid}/history")
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["support_ticket_events"]
    return events


# ------------------------------------------------------------------------- escalating


async def test_an_end_user_escalates_a_failing_member(
    platform: Platform, bank: BreakableConnector
) -> None:
    p = platform
    user, member = await failing(p, bank)
    accounts = (await p.http.get(f"/users/{user}/members/{member}/accounts")).json()["accounts"]
    t = await escalate(
        p,
        user,
        member,
        direct(account_guids=[a["guid"] for a in accounts]),
        headers={"X-Request-Id": "req-escalate-1"},
    )
    assert t["guid"].startswith("TKT-")
    assert t["status"] == "NEW" and t["channel"] == "DIRECT"
    assert (t["user_guid"], t["member_guid"], t["institution_code"]) == (user, member, "mxbank")
    assert t["connection_status"] == "FAILED" and t["cause"] == "DATA_ERROR"
    assert t["report_count"] == 1 and t["queue_position"] == 1
    assert t["estimated_resolution_at"] is not None and t["resolved_at"] is None
    assert t["additional_login_info"] is None
    assert t["account_guids"] == [a["guid"] for a in accounts]
    assert t["description"] == "My bank will not sync"
    assert await ticket(p, user, t["guid"]) == t
    for path in (
        f"/users/{user}/support_tickets",
        f"/users/{user}/members/{member}/support_tickets",
        "/support_tickets",
    ):
        body = (await p.http.get(path)).json()
        assert [x["guid"] for x in body["support_tickets"]] == [t["guid"]], path
        assert body["pagination"]["total_entries"] == 1
    [event] = await history(p, user, t["guid"])
    assert event["action"] == "reported" and event["to_status"] == "NEW"
    assert event["from_status"] is None and event["channel"] == "DIRECT"
    assert event["actor"] == {"type": "END_USER", "id": user, "name": None}
    assert event["request_id"] == "req-escalate-1" and event["client_address"]


async def test_a_member_that_works_needs_special_instructions(platform: Platform) -> None:
    p = platform
    user, member = await connected(p)
    r = await p.http.post(f"/users/{user}/members/{member}/support_tickets", json=direct())
    assert r.status_code == 422
    assert "special_instructions" in r.json()["error"]["message"]
    assert (await p.http.get("/support_tickets")).json()["support_tickets"] == []
    t = await escalate(
        p, user, member, direct(special_instructions="Coffee shop charge shows up twice")
    )
    assert t["special_instructions"] == "Coffee shop charge shows up twice"
    assert t["connection_status"] == "CONNECTED" and t["cause"] == "OK"


@pytest.mark.parametrize(
    ("code", "password", "status_name", "fix"),
    [
        ("mxbank", "INVALID", "DENIED", "update the member's credentials"),
        ("mxbank", "LOCKED", "LOCKED", "contact the institution"),
        ("mxbank", "challenge", "CHALLENGED", "answer the MFA challenge"),
        ("sandbox_bank", "error_impeded", "IMPEDED", "log in at the institution's website"),
        ("sandbox_bank", "error_impaired", "IMPAIRED", "give the missing credentials"),
    ],
)
async def test_problems_the_end_user_can_fix_get_the_fix_not_a_ticket(
    platform: Platform, code: str, password: str, status_name: str, fix: str
) -> None:
    p = platform
    user, member = await connected(p, password, code)
    assert (await status(p.http, user, member))["connection_status"] == status_name
    for body in (direct(), indirect(special_instructions="please look")):
        r = await p.http.post(f"/users/{user}/members/{member}/support_tickets", json=body)
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert status_name in message and fix in message
    assert (await p.http.get("/support_tickets")).json()["support_tickets"] == []


async def test_a_second_escalation_joins_the_open_ticket(
    platform: Platform, bank: BreakableConnector
) -> None:
    p = platform
    user, member = await failing(p, bank)
    first = await escalate(p, user, member, direct())
    second = await escalate(p, user, member, indirect("Called in too"), expect=200)
    assert second["guid"] == first["guid"] and second["report_count"] == 2
    assert second["description"] == "My bank will not sync"  # the first words stay
    events = await history(p, user, first["guid"])
    assert [e["action"] for e in events] == ["reported", "joined"]
    assert events[1]["actor"] == {"type": "AGENT", "id": "agent-7", "name": "Sam Support"}
    assert events[1]["note"] == "Called in too"
    listed = (await p.http.get("/support_tickets")).json()["support_tickets"]
    assert len(listed) == 1


async def test_simultaneous_escalations_make_one_ticket(
    platform: Platform, bank: BreakableConnector
) -> None:
    p = platform
    user, member = await failing(p, bank)
    url = f"/users/{user}/members/{member}/support_tickets"
    answers = await asyncio.gather(*(p.http.post(url, json=direct()) for _ in range(6)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 5 + [201], [r.text for r in answers]
    assert len({r.json()["support_ticket"]["guid"] for r in answers}) == 1
    listed = (await p.http.get("/support_tickets")).json()["support_tickets"]
    assert [t["report_count"] for t in listed] == [6]


async def test_direct_tickets_need_the_end_user_recently(
    platform: Platform, bank: BreakableConnector
) -> None:
    p = platform
    user, member = await failing(p, bank)
    p.clock.advance(hours=25)
    r = await p.http.post(f"/users/{user}/members/{member}/support_tickets", json=direct())
    assert r.status_code == 422
    assert "24 hours" in r.json()["error"]["message"]
    # Support staff may still escalate for them, naming themselves.
    t = await escalate(p, user, member, indirect())
    # The end user comes back and aggregates: now they may report it themselves.
    r = await p.http.post(f"/users/{user}/members/{member}/aggregate")
    assert r.status_code == 202
    await p.drain()
    joined = await escalate(p, user, member, direct(), expect=200)
    assert joined["guid"] == t["guid"] and joined["report_count"] == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"support_ticket": {"channel": "INDIRECT", "description": "x"}},
            "agent.id and agent.name",
        ),
        (
            {
                "support_ticket": {
                    "channel": "INDIRECT",
                    "description": "x",
                    "agent": {"id": " ", "name": "A"},
                }
            },
            "agent.id and agent.name",
        ),
    ],
)
async def test_indirect_tickets_need_an_agent(
    platform: Platform, bank: BreakableConnector, body: dict[str, Any], message: str
) -> None:
    p = platform
    user, member = await failing(p, bank)
    r = await p.http.post(f"/users/{user}/members/{member}/support_tickets", json=body)
    assert r.status_code == 422 and message in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"support_ticket": {"channel": "EMAIL", "description": "x"}}, "channel"),
        ({"support_ticket": {"channel": "DIRECT"}}, "missing field 'support_ticket.description'"),
        ({"support_ticket": {"channel": "DIRECT", "description": ""}}, "description"),
        ({"support_ticket": {"channel": "DIRECT", "description": "x", "urgent": True}}, "urgent"),
        ({"ticket": {}}, "unknown field 'ticket'"),
        (direct(agent=AGENT), "agent is for INDIRECT"),
        (direct(account_guids=["ACT-nope"]), "ACT-nope"),
    ],
)
async def test_bad_bodies_are_a_clear_400(
    platform: Platform, bank: BreakableConnector, body: dict[str, Any], message: str
) -> None:
    p = platform
    user, member = await failing(p, bank)
    r = await p.http.post(f"/users/{user}/members/{member}/support_tickets", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]
    assert (await p.http.get("/support_tickets")).json()["support_tickets"] == []


async def test_unknown_or_foreign_things_are_404(
    platform: Platform, bank: BreakableConnector
) -> None:
    p = platform
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct())
    other = await new_user(p.http)
    assert (await p.http.get(f"/users/{other}/support_tickets/{t['guid']}")).status_code == 404
    assert (await p.http.get(f"/users/{user}/support_tickets/TKT-nope")).status_code == 404
    r = await p.http.post(f"/users/{other}/members/{member}/support_tickets", json=direct())
    assert r.status_code == 404


async def test_a_burst_of_unattended_escalations_is_refused(
    platform: Platform, bank: BreakableConnector
) -> None:
    p = platform
    p.rt.settings.support_burst_max_tickets = 3
    p.rt.settings.support_burst_window_seconds = 600
    members = [await failing(p, bank) for _ in range(5)]
    p.clock.advance(hours=30)  # nobody has used these members for a day
    for user, member in members[:3]:
        await escalate(p, user, member, indirect())
    user, member = members[3]
    r = await p.http.post(f"/users/{user}/members/{member}/support_tickets", json=indirect())
    assert r.status_code == 429
    assert "policy" in r.json()["error"]["message"]
    assert "3 escalations in 600 seconds" in r.json()["error"]["message"]
    # An end user who is there is never held back by the client's batch.
    present_user, present_member = await failing(p, bank)
    await escalate(p, present_user, present_member, direct())
    p.clock.advance(seconds=601)
    await escalate(p, user, member, indirect())


# --------------------------------------------------------------- additional login info


async def test_additional_login_info_is_asked_answered_sealed_and_read_once(
    platform: Platform, bank: BreakableConnector, engineer: Operator
) -> None:
    p = platform
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct())
    await support.take(p.rt, engineer, t["guid"])
    await support.request_login_info(
        p.rt,
        engineer,
        t["guid"],
        [
            Prompt("Your mother's maiden name"),
            Prompt("Where to send a code", "OPTIONS", ("SMS", "Email")),
        ],
    )
    asked = await ticket(p, user, t["guid"])
    assert asked["status"] == "ADDITIONAL_LOGIN_INFO_REQUIRED"
    text_prompt, option_prompt = asked["additional_login_info"]
    assert text_prompt["type"] == "TEXT" and text_prompt["label"] == "Your mother's maiden name"
    assert [o["value"] for o in option_prompt["options"]] == ["SMS", "Email"]
    frozen = asked["estimated_resolution_at"]

    # Others arrive and time passes: the waiting ticket's estimate does not move.
    p.clock.advance(hours=5)
    other_user, other_member = await failing(p, bank)
    await escalate(p, other_user, other_member, direct())
    assert (await ticket(p, user, t["guid"]))["estimated_resolution_at"] == frozen

    url = f"/users/{user}/support_tickets/{t['guid']}/additional_login_info"

    def answers(*pairs: tuple[str, str]) -> dict[str, Any]:
        return {
            "support_ticket": {"additional_login_info": [{"guid": g, "value": v} for g, v in pairs]}
        }

    bad = [
        (answers((text_prompt["guid"], "Smith")), "Missing answer"),
        (answers((text_prompt["guid"], "Smith"), (option_prompt["guid"], "Fax")), "options"),
        (answers(("CRD-nope", "x")), "Unknown prompt"),
        ({"support_ticket": {"additional_login_info": []}}, "additional_login_info"),
    ]
    for body, message in bad:
        r = await p.http.put(url, json=body)
        assert r.status_code == 400 and message in r.json()["error"]["message"], r.text
    r = await p.http.put(
        url, json=answers((text_prompt["guid"], "Smith"), (option_prompt["guid"], "SMS"))
    )
    assert r.status_code == 200, r.text
    answered = r.json()["support_ticket"]
    assert answered["status"] == "ADDITIONAL_LOGIN_INFO_SUBMITTED"
    assert answered["additional_login_info"] is None
    assert "Smith" not in r.text
    r = await p.http.put(url, json=answers((text_prompt["guid"], "Again")))
    assert r.status_code == 422

    async with p.rt.db.read() as s:
        sealed = await s.scalar(
            select(SupportTicket.aai_answers_enc).where(SupportTicket.guid == t["guid"])
        )
    assert sealed is not None and b"Smith" not in sealed
    assert await support.read_login_info(p.rt, engineer, t["guid"]) == {
        "Your mother's maiden name": "Smith",
        "Where to send a code": "SMS",
    }
    with pytest.raises(Unprocessable):  # single use
        await support.read_login_info(p.rt, engineer, t["guid"])
    async with p.rt.db.read() as s:
        row = await s.scalar(select(SupportTicket).where(SupportTicket.guid == t["guid"]))
        assert row is not None and row.aai_answers_enc is None and row.aai_prompts is None
    assert "Smith" not in str(await history(p, user, t["guid"]))


async def test_login_info_is_purged_when_the_ticket_ends(
    platform: Platform, bank: BreakableConnector, engineer: Operator
) -> None:
    p = platform
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct())
    await support.request_login_info(p.rt, engineer, t["guid"], [Prompt("Code")])
    prompt = (await ticket(p, user, t["guid"]))["additional_login_info"][0]
    r = await p.http.put(
        f"/users/{user}/support_tickets/{t['guid']}/additional_login_info",
        json={
            "support_ticket": {"additional_login_info": [{"guid": prompt["guid"], "value": "1234"}]}
        },
    )
    assert r.status_code == 200
    await support.mark_invalid(p.rt, engineer, t["guid"], "not an aggregation problem")
    async with p.rt.db.read() as s:
        row = await s.scalar(select(SupportTicket).where(SupportTicket.guid == t["guid"]))
    assert row is not None and row.status == "INVALID" and row.aai_answers_enc is None


# ---------------------------------------------------------------- the engineers' queue


async def test_resolving_closes_on_success_and_reopens_on_failure(
    platform: Platform, bank: BreakableConnector, engineer: Operator
) -> None:
    p = platform
    a_user, a_member = await failing(p, bank)
    p.clock.advance(minutes=1)
    b_user, b_member = await failing(p, bank)
    unreported_user, unreported_member = await failing(p, bank)
    a = await escalate(p, a_user, a_member, direct())
    p.clock.advance(minutes=1)
    b = await escalate(p, b_user, b_member, direct())
    assert (await ticket(p, b_user, b["guid"]))["queue_position"] == 2
    assert [v.ticket.guid for v in await support.queue(p.rt)] == [a["guid"], b["guid"]]

    await support.take(p.rt, engineer, a["guid"])
    # The fix did not work: the member still fails, the ticket reopens at its place.
    result = await support.resolve(p.rt, engineer, a["guid"])
    assert result.tickets == [a["guid"]] and result.jobs_started == 1
    assert [v.ticket.guid for v in await support.queue(p.rt)] == [b["guid"]]
    # Until the member's aggregation gives its verdict, nobody can act on the ticket.
    with pytest.raises(Unprocessable, match="being verified"):
        await support.take(p.rt, engineer, a["guid"])
    with pytest.raises(Unprocessable, match="being verified"):
        await support.resolve(p.rt, engineer, a["guid"])
    with pytest.raises(Unprocessable, match="being verified"):
        await support.request_login_info(p.rt, engineer, a["guid"], [support.Prompt("Code")])
    await p.drain()
    reopened = await ticket(p, a_user, a["guid"])
    assert reopened["status"] == "REOPENED" and reopened["queue_position"] == 1
    assert reopened["resolved_at"] is None
    assert [e["action"] for e in await history(p, a_user, a["guid"])] == [
        "reported",
        "taken",
        "resolved",
        "verification_failed",
    ]

    # Fixed for real, for the whole incident: every failing member there is retried.
    bank.broken.clear()
    result = await support.resolve(p.rt, engineer, a["guid"], incident=True)
    assert sorted(result.tickets) == sorted([a["guid"], b["guid"]])
    assert result.jobs_started == 3
    await p.drain()
    for user, guid in ((a_user, a["guid"]), (b_user, b["guid"])):
        closed = await ticket(p, user, guid)
        assert closed["status"] == "CLOSED" and closed["resolved_at"] is not None
        assert closed["queue_position"] is None
    assert (await status(p.http, unreported_user, unreported_member))["connection_status"] == (
        "CONNECTED"
    )
    assert await support.queue(p.rt) == []
    events = await history(p, a_user, a["guid"])
    assert events[-1]["action"] == "verified" and events[-1]["actor"]["type"] == "SYSTEM"
    assert events[-2]["actor"] == {"type": "OPERATOR", "id": engineer.guid, "name": "Eve Engineer"}
    for action in (support.take, support.mark_invalid, support.escalate_internally):
        with pytest.raises(Unprocessable):
            await action(p.rt, engineer, a["guid"])


async def test_a_closed_ticket_reopens_at_its_original_place(
    platform: Platform, bank: BreakableConnector, engineer: Operator
) -> None:
    p = platform
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct())
    bank.broken.clear()
    await support.resolve(p.rt, engineer, t["guid"])
    await p.drain()
    assert (await ticket(p, user, t["guid"]))["status"] == "CLOSED"
    reopen_url = f"/users/{user}/support_tickets/{t['guid']}/reopen"
    # Working again: nothing to reopen for (the ticket had no special instructions).
    r = await p.http.post(reopen_url)
    assert r.status_code == 422 and "special_instructions" in r.json()["error"]["message"]

    later_user, later_member = await failing(p, bank)  # breaks the bank again
    p.clock.advance(hours=1)
    later = await escalate(p, later_user, later_member, direct())
    r = await p.http.post(f"/users/{user}/members/{member}/aggregate")
    assert r.status_code == 202
    await p.drain()
    r = await p.http.post(reopen_url, json={"support_ticket": {"description": "Broken again"}})
    assert r.status_code == 200, r.text
    again = r.json()["support_ticket"]
    assert again["status"] == "REOPENED" and again["report_count"] == 2
    assert again["queue_position"] == 1  # ahead of the later ticket: its original place
    assert (await ticket(p, later_user, later["guid"]))["queue_position"] == 2
    r = await p.http.post(reopen_url)
    assert r.status_code == 422  # open already
    # One open ticket per member: the reopened one is what a new report joins.
    joined = await escalate(p, user, member, direct(), expect=200)
    assert joined["guid"] == t["guid"]


async def test_every_status_change_sends_a_support_ticket_webhook(
    platform: Platform, bank: BreakableConnector, engineer: Operator
) -> None:
    p = platform
    r = await p.http.post(
        "/webhook_endpoints",
        json={
            "webhook_endpoint": {
                "url": "http://127.0.0.1:9/hooks",
                "event_types": ["SUPPORT_TICKET"],
            }
        },
    )
    assert r.status_code == 200, r.text
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct("my account number is 1234"))
    await escalate(p, user, member, direct(), expect=200)  # a join is not a status change
    await support.take(p.rt, engineer, t["guid"])
    await support.escalate_internally(p.rt, engineer, t["guid"], "needs the bank's help")
    bank.broken.clear()
    await support.resolve(p.rt, engineer, t["guid"])
    await p.drain()
    async with p.rt.db.read() as s:
        events = list(
            await s.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.event_type == "SUPPORT_TICKET")
                .order_by(WebhookEvent.id)
            )
        )
    assert [(e.payload["previous_status"], e.payload["status"]) for e in events] == [
        (None, "NEW"),
        ("NEW", "IN_PROCESS"),
        ("IN_PROCESS", "ESCALATED"),
        ("ESCALATED", "CLOSED"),
    ]
    first = events[0].payload
    assert first["action"] == "CREATED" and first["type"] == "SUPPORT_TICKET"
    assert first["support_ticket_guid"] == t["guid"] and first["member_guid"] == member
    assert all(e.member_guid == member for e in events)
    assert "1234" not in str([e.payload for e in events])  # free text stays out


@pytest.mark.parametrize("deleted", ["member", "user"])
async def test_deleting_removes_the_tickets_personal_data(
    platform: Platform, bank: BreakableConnector, engineer: Operator, deleted: str
) -> None:
    p = platform
    user, member = await failing(p, bank)
    t = await escalate(
        p,
        user,
        member,
        indirect("Jane Doe, 555-0100, cannot connect", special_instructions="SSN 123"),
    )
    await support.take(p.rt, engineer, t["guid"])
    path = f"/users/{user}/members/{member}" if deleted == "member" else f"/users/{user}"
    assert (await p.http.delete(path)).status_code == 204
    async with p.rt.db.read() as s:
        row = await s.scalar(select(SupportTicket).where(SupportTicket.guid == t["guid"]))
        events = list(await s.scalars(select(SupportTicketEvent).order_by(SupportTicketEvent.id)))
    assert row is not None  # kept, anonymous, for the statistics
    assert row.status == "INVALID" and row.open_member_id is None
    assert (row.description, row.special_instructions, row.account_guids) == (None, None, None)
    assert row.member_id is None and row.anonymized_at is not None
    assert (row.institution_id, row.cause, row.report_count) != (None, None, 0)
    for e in events:
        assert e.client_address is None and e.request_id is None
        if e.actor_type in ("END_USER", "AGENT"):
            assert e.actor_id is None and e.actor_name is None and e.note is None
    assert "Jane" not in str([vars(e) for e in events])
    assert (await p.http.get("/support_tickets")).json()["support_tickets"] == []
    assert await support.queue(p.rt) == []


async def test_client_wide_list_filters(platform: Platform, bank: BreakableConnector) -> None:
    p = platform
    u1, m1 = await failing(p, bank)
    t1 = await escalate(p, u1, m1, direct())
    p.clock.advance(days=2)
    u2, m2 = await failing(p, bank, "sandbox_bank")
    t2 = await escalate(p, u2, m2, indirect())

    async def guids(query: str, expect: int = 200) -> list[str]:
        r = await p.http.get(f"/support_tickets?{query}")
        assert r.status_code == expect, r.text
        return [t["guid"] for t in r.json().get("support_tickets", [])]

    assert await guids("") == [t1["guid"], t2["guid"]]
    assert await guids("channel=INDIRECT") == [t2["guid"]]
    assert await guids("institution_code=mxbank") == [t1["guid"]]
    assert await guids("status=NEW") == [t1["guid"], t2["guid"]]
    assert await guids("status[]=CLOSED") == []
    day = p.clock.now.date().isoformat()
    assert await guids(f"from_date={day}") == [t2["guid"]]
    assert await guids(f"to_date={day}&from_date=2026-01-01") == [t1["guid"], t2["guid"]]
    assert await guids(f"user_guid={u2}") == [t2["guid"]]
    assert await guids(f"member_guid={m1}") == [t1["guid"]]
    assert await guids("member_guid=MBR-nobody") == []
    for bad in (
        "channel=FAX",
        "status=DONE",
        "from_date=yesterday",
        "from_date=2026-05-02&to_date=2026-05-01",
    ):
        await guids(bad, expect=400)


async def test_the_estimate_follows_the_queue(
    platform: Platform, bank: BreakableConnector, engineer: Operator
) -> None:
    p = platform
    p.rt.settings.support_assumed_resolutions_per_day = 24  # one an hour, before history
    tickets = []
    for _ in range(3):
        user, member = await failing(p, bank)
        tickets.append((user, await escalate(p, user, member, direct())))
    start = p.clock.now
    for position, (user, t) in enumerate(tickets, start=1):
        body = await ticket(p, user, t["guid"])
        assert body["queue_position"] == position
        assert body["estimated_resolution_at"] == _iso(start.timestamp() + position * 3600)
    await support.mark_invalid(p.rt, engineer, tickets[0][1]["guid"])
    user, t = tickets[2]
    assert (await ticket(p, user, t["guid"]))["queue_position"] == 2


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -------------------------------------------------------------------- incidents, operators


async def test_incidents_rank_by_impact_and_the_long_tail_lists_small_banks(
    platform: Platform, bank: BreakableConnector
) -> None:
    p = platform
    big = [await failing(p, bank) for _ in range(3)]
    user, member = await failing(p, bank, "sandbox_bank")
    await escalate(p, user, member, direct())
    p.clock.advance(days=3)
    found = await incidents.incidents(p.rt)
    assert [(i.institution_code, i.cause) for i in found] == [
        ("mxbank", "DATA_ERROR"),
        ("sandbox_bank", "DATA_ERROR"),
    ]
    top, small = found
    assert (top.failing_members, top.affected_users, top.open_tickets) == (3, 3, 0)
    assert top.impact == pytest.approx(3 * (1 + 3))
    assert (small.affected_users, small.open_tickets) == (1, 1)
    assert small.impact == pytest.approx(1 + 3 + 5)
    for u, _ in big[1:]:
        assert (await p.http.delete(f"/users/{u}")).status_code == 204
    assert [i.institution_code for i in await incidents.incidents(p.rt)] == [
        "sandbox_bank",
        "mxbank",
    ]
    tail = await incidents.long_tail(p.rt, max_users=1)
    assert [(t.institution_code, t.open_tickets, t.failing_members) for t in tail] == [
        ("sandbox_bank", 1, 1),
        ("mxbank", 0, 1),
    ]


async def test_operators_have_their_own_credentials(platform: Platform) -> None:
    rt = platform.rt
    new = await operators.create_operator(rt, "Ada", "Ada@OpenAgg.test", "correct horse battery")
    assert new.operator.email == "ada@openagg.test"
    assert "correct horse" not in new.operator.password_hash
    assert await operators.authenticate_operator(rt, "ada@openagg.test", "correct horse battery")
    assert await operators.authenticate_operator(rt, "ada@openagg.test", "wrong") is None
    assert (await operators.authenticate_operator_key(rt, new.api_key)) is not None
    with pytest.raises(Conflict):
        await operators.create_operator(rt, "Ada 2", "ada@openagg.test")
    async with rt.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Operator)) == 1


async def test_the_engineers_cli(
    platform: Platform, bank: BreakableConnector, settings: Settings
) -> None:
    p = platform
    user, member = await failing(p, bank)
    t = await escalate(p, user, member, direct())
    env = {
        "OPENAGG_DATA_DIR": str(settings.data_dir),
        "OPENAGG_DATABASE_URL": settings.database_url,
    }

    async def cli(*args: str, code: int = 0) -> str:
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    created = await cli("operators", "create", "--name", "Cli Eve", "--email", "cli@openagg.test")
    assert "password:" in created and "api_key:" in created
    assert t["guid"] in await cli("tickets", "queue")
    assert "IN_PROCESS" in await cli("tickets", "take", t["guid"], "--operator", "cli@openagg.test")
    shown = await cli("tickets", "show", t["guid"])
    assert "taken" in shown and "OPERATOR:Cli Eve" in shown
    assert "No active operator" in await cli(
        "tickets", "invalid", t["guid"], "--operator", "nobody@openagg.test", code=1
    )
    assert "mxbank" in await cli("incidents")
    assert "mxbank" in await cli("incidents", "--long-tail")
    bank.broken.clear()
    resolved = await cli("tickets", "resolve", t["guid"], "--operator", "cli@openagg.test")
    assert "re-aggregating 1 member(s)" in resolved
    p.clock.now = dt.datetime.now(dt.UTC)  # the CLI ran on the real clock
    await p.drain()
    assert (await ticket(p, user, t["guid"]))["status"] == "CLOSED"
