"""The OFX Direct Connect connector against the fake OFX bank over real sockets:
data from v1 and v2 servers, MFA, each status a bank's answer maps to (with the
bank's message), the CLIENTUID device registration, version fallback, and
institutions added from a directory file. MX's SDK drives the main journey."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from openagg.services.institutions import InstitutionInput, add_institution, update_institution
from openagg.testing import Scenario, run_conformance
from tests.compat.test_sdk import run_scenario, sdk  # noqa: F401  (the sdk fixture)
from tests.conftest import VENV_BIN, Platform, make_platform, settings_for, start_live_server
from tests.integration.api_helpers import create_member, member, new_user, status
from tests.integration.fake_ofx_bank import FakeOfxBank, serve_fake_ofx_bank


@pytest.fixture
def ofx_bank() -> Iterator[FakeOfxBank]:
    with serve_fake_ofx_bank() as bank:
        yield bank


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    settings = settings_for(tmp_path, connector_allow_private_addresses=True)
    settings.ensure_data_dir()
    p, _ = await make_platform(settings)
    yield p
    await p.http.aclose()
    await p.rt.db.dispose()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "openagg"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_mx_sdk_connects_members_at_ofx_banks_added_from_a_directory_file(
    sdk: Path,  # noqa: F811  (the fixture imported above)
    ofx_bank: FakeOfxBank,
    tmp_path: Path,
) -> None:
    directory = tmp_path / "ofx-institutions.json"
    directory.write_text(
        json.dumps(
            [
                {
                    "name": "Fake OFX Bank",
                    "url": ofx_bank.url("standard"),
                    "org": "FakeBank",
                    "fid": "4242",
                },
                {
                    "name": "Fake OFX Bank (v1)",
                    "code": "ofx_v1",
                    "url": ofx_bank.url("oneline"),
                    "org": "FakeBank",
                    "fid": "4242",
                    "version": "102",
                    "bankid": "0123456789",
                },
                {
                    "name": "Fake OFX Bank (v1 only)",
                    "code": "ofx_v1only",
                    "url": ofx_bank.url("v1only"),
                    "org": "FakeBank",
                    "fid": "4242",
                    "brokerid": "broker.fakebank.test",
                },
            ]
        )
    )
    server = start_live_server(tmp_path, OPENAGG_CONNECTOR_ALLOW_PRIVATE_ADDRESSES="true")
    try:
        imported = _cli(server.env, "institutions", "import", str(directory))
        assert imported.returncode == 0, imported.stderr
        shown = _cli(server.env, "institutions", "list").stdout
        assert "fake_ofx_bank\tofx\t0 members\tFake OFX Bank" in shown  # a code from the name
        r = run_scenario(sdk, server, "ofx_bank")
    finally:
        server.stop()
    assert (r["create_status"], r["first_status"], r["second_status"]) == (
        202,
        "CONNECTED",
        "CONNECTED",
    )
    assert ["100200300", "CHECKING", 3187.44] in r["accounts"]
    assert ["4111000011112222", "CREDIT_CARD", 865.09] in r["accounts"]
    txns = {t[0]: t[1:] for t in r["transactions"]}
    assert txns["CHK-0001"] == ["CREDIT", 2500.0, None]
    assert txns["CHK-0002"] == ["DEBIT", 84.27, None]
    assert txns["CHK-0003"] == ["DEBIT", 150.0, "1042"]
    assert txns["CHK-0004"] == ["DEBIT", 12.0, None]
    assert txns["CC-0003"] == ["CREDIT", 200.0, None]
    assert txns["INV-0003"] == ["CREDIT", 18.4, None]
    assert r["transactions_after"] == len(r["transactions"])
    assert sorted(float(quantity) for _, quantity in r["holdings"]) == [30.0, 120.285]
    assert all(symbol for symbol, _ in r["holdings"])
    assert r["mfa_labels"] == [
        "Enter the code we sent to your phone",
        "What is the name of your first pet?",
    ]
    assert r["mfa_status"] == "CONNECTED"
    assert (r["denied_status"], r["denied_message"]) == ("DENIED", "Invalid user ID or password")
    assert (r["v1_status"], r["v1only_status"]) == ("CONNECTED", "CONNECTED")


async def _institution(platform: Platform, bank: FakeOfxBank, variant: str, **options: str) -> str:
    code = f"ofx_{variant}"
    bank.today = platform.clock.now.date()  # the platform's clock is the tests' own
    await add_institution(
        platform.rt,
        InstitutionInput(
            "ofx",
            code,
            f"Fake OFX Bank ({variant})",
            options={"url": bank.url(variant), "org": "FakeBank", "fid": "4242", **options},
        ),
    )
    return code


async def _connect(platform: Platform, code: str, password: str) -> tuple[str, str]:
    user = await new_user(platform.http)
    made = await create_member(platform.http, user, password, code=code, username="ada", expect=202)
    await platform.drain()
    return user, made.json()["member"]["guid"]


async def _list(platform: Platform, path: str, key: str) -> list[dict[str, Any]]:
    r = await platform.http.get(path, params={"records_per_page": 1000})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()[key]
    return items


async def test_a_v2_bank_connects_with_accounts_transactions_and_holdings(
    platform: Platform, ofx_bank: FakeOfxBank
) -> None:
    code = await _institution(platform, ofx_bank, "standard")
    user, member = await _connect(platform, code, "good")
    assert (await status(platform.http, user, member))["connection_status"] == "CONNECTED"
    listed = await _list(platform, f"/users/{user}/accounts", "accounts")
    accounts = {a["id"]: a for a in listed}
    assert accounts["100200300"]["account_number"] == "0300"  # MX shows the last four
    assert accounts["100200300"]["type"] == "CHECKING"
    assert accounts["100200300"]["balance"] == 3187.44
    assert accounts["100200300"]["available_balance"] == 3100.0
    assert accounts["100200301"]["type"] == "SAVINGS"
    assert accounts["4111000011112222"]["type"] == "CREDIT_CARD"
    assert accounts["4111000011112222"]["balance"] == 865.09  # owed, positive as at MX
    assert accounts["4111000011112222"]["available_credit"] == 4134.91
    assert accounts["INV-778899"]["type"] == "INVESTMENT"
    assert accounts["INV-778899"]["balance"] == 1520.55 + 4533.0 + 5063.0
    txns = {
        t["id"]: t for t in await _list(platform, f"/users/{user}/transactions", "transactions")
    }
    assert (txns["CHK-0001"]["amount"], txns["CHK-0001"]["type"]) == (2500.0, "CREDIT")
    assert (txns["CHK-0002"]["amount"], txns["CHK-0002"]["type"]) == (84.27, "DEBIT")
    assert txns["CHK-0002"]["description"] == "Café Olé & Sons"
    assert txns["CHK-0003"]["check_number_string"] == "1042"
    assert (txns["CHK-0004"]["amount"], txns["CHK-0004"]["is_fee"]) == (12.0, True)
    assert (txns["CC-0001"]["type"], txns["CC-0003"]["type"]) == ("DEBIT", "CREDIT")
    assert (txns["INV-0001"]["amount"], txns["INV-0001"]["type"]) == (1507.45, "DEBIT")
    assert (txns["INV-0002"]["amount"], txns["INV-0002"]["type"]) == (210.5, "CREDIT")
    assert txns["INV-0005"]["amount"] == 0.0 and "20 units" in txns["INV-0005"]["memo"]
    holdings = await _list(platform, f"/users/{user}/investment_holdings", "investment_holdings")
    assert sorted(float(h["quantity"]) for h in holdings) == [30.0, 120.285]
    assert all(h["symbol"] for h in holdings)

    # The same data again adds nothing.
    before = len(txns)
    platform.clock.advance(hours=4)
    assert (
        await platform.http.post(f"/users/{user}/members/{member}/aggregate")
    ).status_code == 202
    await platform.drain()
    assert len(await _list(platform, f"/users/{user}/transactions", "transactions")) == before
    # One CLIENTUID for the member, on every request.
    uids = {r.clientuid for r in ofx_bank.requests}
    assert len(uids) == 1 and None not in uids


@pytest.mark.parametrize(
    ("password", "expected", "words"),
    [
        ("wrong", "DENIED", "Invalid user ID or password"),
        ("locked", "LOCKED", "locked after too many attempts"),
        ("mustchange", "IMPEDED", "must change your password"),
        ("notauthorized", "IMPEDED", "not authorized"),
        ("error", "FAILED", "General error"),
        ("garbage", "FAILED", "not OFX we can read"),
    ],
)
async def test_each_bank_answer_becomes_its_status_with_the_banks_message(
    platform: Platform, ofx_bank: FakeOfxBank, password: str, expected: str, words: str
) -> None:
    code = await _institution(platform, ofx_bank, "standard")
    user, guid = await _connect(platform, code, password + "#pw-4821")
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == expected
    assert words in shown["connection_status_message"]


async def test_a_server_that_is_down_is_failed(platform: Platform, ofx_bank: FakeOfxBank) -> None:
    code = await _institution(platform, ofx_bank, "down")
    user, guid = await _connect(platform, code, "good")
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "FAILED"
    assert "unavailable (HTTP 503)" in shown["connection_status_message"]


async def test_mfa_is_one_round_then_the_answers_are_kept(
    platform: Platform, ofx_bank: FakeOfxBank
) -> None:
    code = await _institution(platform, ofx_bank, "standard")
    user, member = await _connect(platform, code, "mfa")
    assert (await status(platform.http, user, member))["connection_status"] == "CHALLENGED"
    r = await platform.http.get(f"/users/{user}/members/{member}/challenges")
    challenges = r.json()["challenges"]
    answers = {"first pet": "Rex", "code we sent": "123456"}
    body = {
        "member": {
            "challenges": [
                {"guid": c["guid"], "value": next(v for k, v in answers.items() if k in c["label"])}
                for c in challenges
            ]
        }
    }
    assert (
        await platform.http.put(f"/users/{user}/members/{member}/resume", json=body)
    ).status_code == 202
    await platform.drain()
    assert (await status(platform.http, user, member))["connection_status"] == "CONNECTED"
    # The next aggregation signs on with the kept answers: no new challenge.
    platform.clock.advance(hours=4)
    await platform.http.post(f"/users/{user}/members/{member}/aggregate")
    await platform.drain()
    assert (await status(platform.http, user, member))["connection_status"] == "CONNECTED"


async def test_a_wrong_mfa_answer_is_rejected(platform: Platform, ofx_bank: FakeOfxBank) -> None:
    code = await _institution(platform, ofx_bank, "standard")
    user, member = await _connect(platform, code, "mfa")
    r = await platform.http.get(f"/users/{user}/members/{member}/challenges")
    body = {
        "member": {
            "challenges": [{"guid": c["guid"], "value": "nope"} for c in r.json()["challenges"]]
        }
    }
    await platform.http.put(f"/users/{user}/members/{member}/resume", json=body)
    await platform.drain()
    assert (await status(platform.http, user, member))["connection_status"] == "REJECTED"


async def test_the_clientuid_bank_works_after_the_member_approves_the_app(
    platform: Platform, ofx_bank: FakeOfxBank
) -> None:
    code = await _institution(platform, ofx_bank, "clientuid")
    user, guid = await _connect(platform, code, "good")
    shown = await member(platform.http, user, guid)
    assert shown["connection_status"] == "IMPEDED"
    assert "Secure Message Center" in shown["connection_status_message"]
    (pending,) = ofx_bank.pending_clientuids
    ofx_bank.approve(pending)
    platform.clock.advance(hours=4)
    await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    await platform.drain()
    assert (await status(platform.http, user, guid))["connection_status"] == "CONNECTED"
    assert {r.clientuid for r in ofx_bank.requests} == {pending}


@pytest.mark.parametrize("version", ["102", "103", "151", "160", "200", "211", "220"])
async def test_every_ofx_version_connects(
    platform: Platform, ofx_bank: FakeOfxBank, version: str
) -> None:
    code = await _institution(platform, ofx_bank, "oneline", version=version)
    user, member = await _connect(platform, code, "good")
    assert (await status(platform.http, user, member))["connection_status"] == "CONNECTED"
    assert {r.version for r in ofx_bank.requests} == {version}
    # CLIENTUID exists from 1.0.3 and 2.0.3 on.
    assert all((r.clientuid is None) == (version in ("102", "200")) for r in ofx_bank.requests)


async def test_a_v1_only_server_is_reached_by_falling_back_once_and_remembered(
    platform: Platform, ofx_bank: FakeOfxBank
) -> None:
    code = await _institution(platform, ofx_bank, "v1only")
    user, member = await _connect(platform, code, "good")
    assert (await status(platform.http, user, member))["connection_status"] == "CONNECTED"
    assert [r.major_version for r in ofx_bank.requests[:2]] == [2, 1]
    seen = len(ofx_bank.requests)
    platform.clock.advance(hours=4)
    await platform.http.post(f"/users/{user}/members/{member}/aggregate")
    await platform.drain()
    assert (await status(platform.http, user, member))["connection_status"] == "CONNECTED"
    assert {r.major_version for r in ofx_bank.requests[seen:]} == {1}  # no second try at v2


async def test_a_slow_server_times_out(platform: Platform, ofx_bank: FakeOfxBank) -> None:
    platform.rt.settings.job_deadline_seconds = 0.5
    ofx_bank.slow_seconds = 3
    code = await _institution(platform, ofx_bank, "slow")
    user, member = await _connect(platform, code, "good")
    assert (await status(platform.http, user, member))["connection_status"] == "FAILED"


async def test_the_ofx_connector_passes_the_conformance_suite(
    ofx_bank: FakeOfxBank, tmp_path: Path
) -> None:
    scenario = {
        "connector": "ofx",
        "institution": {
            "code": "fake_ofx_bank",
            "name": "Fake OFX Bank",
            "options": {"url": ofx_bank.url("standard"), "org": "FakeBank", "fid": "4242"},
        },
        "connects": {
            "credentials": {"LOGIN": "ada", "PASSWORD": "mfa"},
            "mfa": [["Rex", "123456"]],
        },
        "errors": [
            {"credentials": {"LOGIN": "ada", "PASSWORD": "x#1"}, "cause": "BAD_CREDENTIALS"},
            {"credentials": {"LOGIN": "ada", "PASSWORD": "locked#1"}, "cause": "LOCKED_OUT"},
            {
                "credentials": {"LOGIN": "ada", "PASSWORD": "mustchange#1"},
                "cause": "USER_ACTION_REQUIRED",
            },
            {"credentials": {"LOGIN": "ada", "PASSWORD": "error#1"}, "cause": "INSTITUTION_ERROR"},
            {"credentials": {"LOGIN": "ada", "PASSWORD": "garbage#1"}, "cause": "DATA_ERROR"},
        ],
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    report = await run_conformance(Scenario.load(path), workdir=tmp_path)
    assert report.ok, report.text()


async def test_a_version_is_kept_only_once_the_bank_has_answered_in_it(
    platform: Platform, ofx_bank: FakeOfxBank
) -> None:
    """A v1-only bank that was down for the first job still gets the fallback later."""
    code = await _institution(platform, ofx_bank, "down")
    user, guid = await _connect(platform, code, "good")
    assert (await status(platform.http, user, guid))["connection_status"] == "FAILED"
    await update_institution(platform.rt, code, set_options={"url": ofx_bank.url("v1only")})
    platform.clock.advance(hours=4)
    await platform.http.post(f"/users/{user}/members/{guid}/aggregate")
    await platform.drain()
    assert (await status(platform.http, user, guid))["connection_status"] == "CONNECTED"
