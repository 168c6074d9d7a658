"""The ``simplefin`` connector (institution ``simplefin_bridge``) against the fake
SimpleFIN Bridge over real sockets: the one claim, the windows it reads, pending to
posted, the Bridge's daily budget, each kind of trouble to its status with the
Bridge's words, the private-address guard on the token's claim URL, and the
conformance suite."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from openagg.connectors.simplefin import INSTITUTION_CODE
from openagg.services.institutions import update_institution
from openagg.testing import Scenario, run_conformance
from tests.conftest import Platform, make_platform, settings_for
from tests.integration.api_helpers import member, new_user, status
from tests.integration.fake_simplefin_bridge import (
    ATTENTION,
    AUTH,
    PAYMENT,
    RATE,
    FakeBridge,
    Token,
    serve_fake_bridge,
)


@pytest.fixture
def bridge() -> Iterator[FakeBridge]:
    with serve_fake_bridge() as b:
        yield b


async def _platform(tmp_path: Path, **overrides: Any) -> Platform:
    settings = settings_for(tmp_path, **overrides)
    settings.ensure_data_dir()
    p, _ = await make_platform(settings)
    return p


@pytest.fixture
async def platform(tmp_path: Path, bridge: FakeBridge) -> AsyncIterator[Platform]:
    p = await _platform(tmp_path, connector_allow_private_addresses=True)
    bridge.today = p.clock.now.date()  # the platform's clock is the tests' own
    yield p
    await p.http.aclose()
    await p.rt.db.dispose()


async def connect(platform: Platform, token: str, user: str | None = None) -> tuple[str, str]:
    user = user or await new_user(platform.http)
    r = await platform.http.get(f"/institutions/{INSTITUTION_CODE}/credentials")
    [field] = r.json()["credentials"]
    assert field["label"] == "SimpleFIN setup token" and field["field_type"] == "PASSWORD"
    body = {
        "member": {
            "institution_code": INSTITUTION_CODE,
            "credentials": [{"guid": field["guid"], "value": token}],
        }
    }
    made = await platform.http.post(f"/users/{user}/members", json=body)
    assert made.status_code == 202, made.text
    await platform.drain()
    return user, made.json()["member"]["guid"]


async def aggregate(platform: Platform, user: str, guid: str, hours: float = 4) -> str:
    platform.clock.advance(hours=hours)  # past the foreground throttle
    r = await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    assert r.status_code == 202, r.text
    await platform.drain()
    return str((await status(platform.http, user, guid))["connection_status"])


async def listed(platform: Platform, path: str, key: str) -> list[dict[str, Any]]:
    r = await platform.http.get(path, params={"records_per_page": 1000})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()[key]
    return items


async def transactions(platform: Platform, user: str) -> dict[str, dict[str, Any]]:
    found = await listed(platform, f"/users/{user}/transactions", "transactions")
    ids = [t["id"] for t in found]
    assert len(ids) == len(set(ids)), f"stored twice: {ids}"
    return {t["id"]: t for t in found}


def epoch(day: dt.date) -> str:
    return str(int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()))


async def test_a_token_is_claimed_once_then_the_bridge_is_read_in_windows(
    platform: Platform, bridge: FakeBridge
) -> None:
    token = bridge.issue()
    user, guid = await connect(platform, token.token)
    assert (await status(platform.http, user, guid))["connection_status"] == "CONNECTED"
    accounts = {a["id"]: a for a in await listed(platform, f"/users/{user}/accounts", "accounts")}
    assert (accounts["ACT-chk"]["type"], accounts["ACT-chk"]["balance"]) == ("CHECKING", 1523.40)
    assert accounts["ACT-chk"]["available_balance"] == 1500.0
    # Owed money is negative at SimpleFIN, positive at MX; the type from the name...
    assert (accounts["ACT-card"]["type"], accounts["ACT-card"]["balance"]) == (
        "CREDIT_CARD",
        642.18,
    )
    assert accounts["ACT-card"]["available_credit"] == 4357.82
    # ... or, when the name says nothing, from the balance's sign.
    assert (accounts["ACT-owed"]["type"], accounts["ACT-owed"]["balance"]) == ("CREDIT_CARD", 120.0)

    today = bridge.today
    txns = await transactions(platform, user)
    assert set(txns) == {"T-salary", "T-rent", "P-coffee", "T-grocery", "T-payment", "T-fee"}
    salary = txns["T-salary"]
    assert (salary["amount"], salary["type"], salary["description"]) == (
        2500.0,
        "CREDIT",
        "Acme Corp",
    )
    assert salary["original_description"] == "ACME CORP PAYROLL"
    assert (txns["T-rent"]["type"], txns["T-rent"]["description"]) == (
        "DEBIT",
        "ONLINE TRANSFER RENT",
    )
    assert txns["P-coffee"]["status"] == "PENDING"
    grocery = txns["T-grocery"]
    assert grocery["date"] == str(today - dt.timedelta(days=4))  # the day it happened
    assert grocery["category"] == "Groceries" and grocery["account_id"] == "ACT-card"

    [first] = bridge.accounts_requests()
    assert bridge.claims == 1
    assert first.query["version"] == ["2"] and first.query["pending"] == ["1"]
    assert first.query["start-date"] == [epoch(today - dt.timedelta(days=90))]
    assert first.query["end-date"] == [epoch(today + dt.timedelta(days=6))]

    # The next job uses the kept access URL, from 14 days before the newest posted
    # transaction (the card's, 3 days ago), and the pending purchase has posted.
    assert await aggregate(platform, user, guid) == "CONNECTED"
    assert bridge.claims == 1
    second = bridge.accounts_requests()[-1]
    assert second.query["start-date"] == [epoch(today - dt.timedelta(days=17))]
    txns = await transactions(platform, user)
    assert "P-coffee" not in txns
    coffee = txns["T-coffee"]
    assert (coffee["status"], coffee["amount"], coffee["date"]) == (
        "POSTED",
        5.25,
        str(today - dt.timedelta(days=1)),
    )
    assert len(txns) == 6
    assert len(bridge.accounts_requests(token)) == 2


async def test_a_pending_transaction_posted_under_its_own_id_is_updated_in_place(
    platform: Platform, bridge: FakeBridge
) -> None:
    user, guid = await connect(platform, bridge.issue(same_id=True).token)
    before = await transactions(platform, user)
    assert before["P-coffee"]["status"] == "PENDING"
    assert await aggregate(platform, user, guid) == "CONNECTED"
    after = await transactions(platform, user)
    assert set(after) == set(before)
    assert (after["P-coffee"]["status"], after["P-coffee"]["amount"]) == ("POSTED", 5.25)
    assert after["P-coffee"]["guid"] == before["P-coffee"]["guid"]


async def test_the_bridges_daily_budget_is_kept_without_calling_it(
    platform: Platform, bridge: FakeBridge
) -> None:
    await update_institution(platform.rt, INSTITUTION_CODE, set_options={"requests_per_day": "3"})
    token = bridge.issue()
    user, guid = await connect(platform, token.token)
    assert await aggregate(platform, user, guid) == "CONNECTED"
    assert await aggregate(platform, user, guid) == "CONNECTED"
    assert len(bridge.accounts_requests(token)) == 3
    # A fourth within the rolling day would go over: refused here, not at the Bridge.
    assert await aggregate(platform, user, guid) == "FAILED"
    assert len(bridge.accounts_requests(token)) == 3
    shown = await member(platform.http, user, guid)
    assert "limit of 3 requests a day" in shown["connection_status_message"]
    # A day after the first request, one place is free again.
    platform.clock.advance(hours=12)
    assert await aggregate(platform, user, guid, hours=0.1) == "CONNECTED"
    assert len(bridge.accounts_requests(token)) == 4
    assert bridge.claims == 1


@pytest.mark.parametrize(
    ("mode", "expected", "words"),
    [
        ("auth", "DENIED", AUTH),
        ("rate", "FAILED", RATE),
        ("attention", "IMPEDED", ATTENTION),
        ("402", "IMPEDED", PAYMENT),
        ("403", "DENIED", "revoked or disabled at the Bridge"),
        ("500", "FAILED", "unavailable (HTTP 500)"),
        ("garbage", "FAILED", "not the JSON expected"),
    ],
)
async def test_each_kind_of_trouble_becomes_its_status_with_the_bridges_words(
    platform: Platform, bridge: FakeBridge, mode: str, expected: str, words: str
) -> None:
    token = bridge.issue()
    user, guid = await connect(platform, token.token)
    assert (await status(platform.http, user, guid))["connection_status"] == "CONNECTED"
    token.mode = mode
    assert await aggregate(platform, user, guid) == expected
    shown = await member(platform.http, user, guid)
    assert words in shown["connection_status_message"]
    # Whatever went wrong, the data already read stays.
    assert "T-salary" in await transactions(platform, user)


async def test_trouble_on_the_first_job_keeps_the_claimed_access(
    platform: Platform, bridge: FakeBridge
) -> None:
    token = bridge.issue("500")
    user, guid = await connect(platform, token.token)
    assert (await status(platform.http, user, guid))["connection_status"] == "FAILED"
    token.mode = "ok"
    assert await aggregate(platform, user, guid) == "CONNECTED"
    assert bridge.claims == 1  # the access URL was kept although the job failed


async def test_a_token_claimed_already_is_denied_with_words_about_it(
    platform: Platform, bridge: FakeBridge
) -> None:
    token = bridge.issue()
    await connect(platform, token.token)
    user, guid = await connect(platform, token.token)  # another member, the same token
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "DENIED"
    assert "already used" in shown["connection_status_message"]
    assert "compromised" in shown["connection_status_message"]


async def test_a_new_token_after_a_revoked_access_is_claimed(
    platform: Platform, bridge: FakeBridge
) -> None:
    token = bridge.issue()
    user, guid = await connect(platform, token.token)
    token.mode = "403"
    assert await aggregate(platform, user, guid) == "DENIED"
    fresh = bridge.issue()
    r = await platform.http.get(f"/institutions/{INSTITUTION_CODE}/credentials")
    [field] = r.json()["credentials"]
    body = {"member": {"credentials": [{"guid": field["guid"], "value": fresh.token}]}}
    r = await platform.http.put(f"/users/{user}/members/{guid}", json=body)
    assert r.status_code == 200, r.text
    await platform.drain()
    assert (await status(platform.http, user, guid))["connection_status"] == "CONNECTED"
    assert bridge.accounts_requests(fresh)


@pytest.mark.parametrize("value", ["not a token", base64.b64encode(b"ftp://x/claim/1").decode()])
async def test_something_else_than_a_token_is_denied(platform: Platform, value: str) -> None:
    user, guid = await connect(platform, value)
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "DENIED"
    assert "not a SimpleFIN setup token" in shown["connection_status_message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3"])
async def test_a_claim_url_at_a_private_address_is_refused(
    tmp_path: Path, bridge: FakeBridge, host: str
) -> None:
    p = await _platform(tmp_path)  # private addresses not allowed, as by default
    try:
        real = bridge.issue()
        # At 127.0.0.1 the fake would answer: the guard, not a dead address, refuses it.
        url = real.claim_url.replace("127.0.0.1", host)
        user, guid = await connect(p, base64.b64encode(url.encode()).decode())
        shown = await member(p.http, user, guid)
        assert shown["connection_status"] == "DENIED"
        assert (
            f"points at {host}, a private or local network address"
            in (shown["connection_status_message"])
        )
        assert bridge.claims == 0 and not real.claimed
    finally:
        await p.http.aclose()
        await p.rt.db.dispose()


async def test_the_simplefin_connector_passes_the_conformance_suite(
    bridge: FakeBridge, tmp_path: Path
) -> None:
    good = bridge.issue()
    trouble = {
        "auth": "BAD_CREDENTIALS",
        "attention": "USER_ACTION_REQUIRED",
        "rate": "RATE_LIMITED",
        "402": "USER_ACTION_REQUIRED",
        "403": "BAD_CREDENTIALS",
        "500": "INSTITUTION_UNAVAILABLE",
        "garbage": "DATA_ERROR",
    }
    tokens: list[tuple[Token, str]] = [
        (bridge.issue(mode), cause) for mode, cause in trouble.items()
    ]
    used = bridge.issue()
    used.claimed = True
    tokens.append((used, "BAD_CREDENTIALS"))
    scenario = {
        "connector": "simplefin",
        "institution": {"code": INSTITUTION_CODE},
        "connects": {"credentials": {"TOKEN": good.token}},
        "errors": [{"credentials": {"TOKEN": t.token}, "cause": c} for t, c in tokens],
        "never_logged": [
            value
            for t in [good, *(t for t, _ in tokens)]
            for value in (t.token, t.claim_url, t.access_url, t.password)
        ],
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    report = await run_conformance(Scenario.load(path), workdir=tmp_path)
    assert report.ok, report.text()
