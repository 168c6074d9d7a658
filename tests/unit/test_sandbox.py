"""The sandbox connector: MX Bank's documented behaviour, sandbox_bank's scenarios and
the generated data's determinism and shape."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from openagg.connectors import sandbox, sandbox_data
from openagg.connectors.base import (
    AccountData,
    ConnectorContext,
    ConnectorError,
    LoginResult,
    TransactionData,
)
from openagg.connectors.sandbox import (
    MX_BANK_OAUTH_CODE,
    MXBANK_CODE,
    SANDBOX_BANK_CODE,
    SANDBOX_INSTITUTIONS,
    SandboxConnector,
    sandbox_authorization_code,
)
from openagg.domain.causes import Cause
from openagg.services.oauth import code_challenge

TODAY = dt.date(2025, 3, 14)
WINDOW_START = TODAY - dt.timedelta(days=89)
MEMBER = "MBR-7c6f361b-b8ae-4a2b-9c1a-4b0ea4f2d0aa"


def ctx(
    code: str = SANDBOX_BANK_CODE,
    member: str = MEMBER,
    previous_attempts: int = 0,
    today: dt.date = TODAY,
) -> ConnectorContext:
    return ConnectorContext(
        member_guid=member,
        institution_code=code,
        today=today,
        previous_attempts=previous_attempts,
    )


def creds(username: str, password: str) -> dict[str, str]:
    return {"LOGIN": username, "PASSWORD": password}


@pytest.fixture
def conn() -> SandboxConnector:
    return SandboxConnector()


async def login(
    conn: SandboxConnector, code: str, username: str, password: str, **kw: Any
) -> LoginResult:
    return await conn.login(ctx(code, **kw), creds(username, password))


async def expect_error(awaitable: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as info:
        await awaitable
    return info.value


async def answer(conn: SandboxConnector, code: str, result: LoginResult, value: str) -> LoginResult:
    assert len(result.challenges) == 1
    return await conn.answer(ctx(code), result.state, {result.challenges[0].guid: value})


def assert_png_data_uri(uri: str | None) -> None:
    assert uri is not None and uri.startswith("data:image/png;base64,")
    raw = base64.b64decode(uri.split(",", 1)[1], validate=True)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    assert raw.endswith(b"IEND\xaeB`\x82")


# ---------------------------------------------------------------------------
# Institutions
# ---------------------------------------------------------------------------


def by_code(code: str) -> Any:
    return next(i for i in SANDBOX_INSTITUTIONS if i.code == code)


def test_institutions_are_seeded_as_documented() -> None:
    codes = [i.code for i in SANDBOX_INSTITUTIONS]
    assert codes == [MXBANK_CODE, MX_BANK_OAUTH_CODE, SANDBOX_BANK_CODE]
    assert all(i.connector == "sandbox" for i in SANDBOX_INSTITUTIONS)

    mx = by_code(MXBANK_CODE)
    assert (mx.name, mx.guid) == ("MX Bank", "INS-1572a04c-912b-59bf-5841-332c7dfafaef")
    assert mx.throttle_exempt is True
    assert mx.credentials == [
        {
            "guid": "CRD-9f61fb4c-912c-bd1e-b175-ccc7f0275cc1",
            "label": "Username",
            "field_name": "LOGIN",
            "field_type": "TEXT",
            "type": "TEXT",
            "display_order": 1,
        },
        {
            "guid": "CRD-e3d7ea81-aac7-05e9-fbdd-4b493c6e474d",
            "label": "Password",
            "field_name": "PASSWORD",
            "field_type": "PASSWORD",
            "type": "PASSWORD",
            "display_order": 2,
        },
    ]
    assert mx.profile["supports_oauth"] is False
    assert mx.profile["iso_country_code"] == "US"
    for flag in (
        "supports_account_identification",
        "supports_account_verification",
        "supports_transaction_history",
    ):
        assert mx.profile[flag] is True

    oauth = by_code(MX_BANK_OAUTH_CODE)
    assert (oauth.name, oauth.guid) == (
        "MX Bank (OAuth)",
        "INS-68e96dd6-eabd-42d3-9f05-416897f0746c",
    )
    assert oauth.credentials == [] and oauth.profile["supports_oauth"] is True
    assert oauth.throttle_exempt is True

    sb = by_code(SANDBOX_BANK_CODE)
    assert sb.name == "OpenAgg Sandbox Bank" and sb.guid.startswith("INS-")
    assert sb.throttle_exempt is False
    assert [c["field_name"] for c in sb.credentials] == ["LOGIN", "PASSWORD"]
    assert all(c["guid"].startswith("CRD-") for c in sb.credentials)

    # Seeded into JSON columns.
    json.dumps([i.profile for i in SANDBOX_INSTITUTIONS])
    json.dumps([i.credentials for i in SANDBOX_INSTITUTIONS])
    assert len({i.guid for i in SANDBOX_INSTITUTIONS}) == 3


# ---------------------------------------------------------------------------
# MX Bank
# ---------------------------------------------------------------------------


async def test_mxbank_any_other_password_connects(conn: SandboxConnector) -> None:
    result = await login(conn, MXBANK_CODE, "mxuser", "hunter2-secret")
    assert result.challenges == []
    assert result.state["authenticated"] is True
    accounts = await conn.accounts(ctx(MXBANK_CODE), result.state)
    assert {a.type for a in accounts} == {
        "CHECKING",
        "SAVINGS",
        "CREDIT_CARD",
        "LOAN",
        "MORTGAGE",
        "INVESTMENT",
    }


async def test_mxbank_wrong_username_is_denied(conn: SandboxConnector) -> None:
    err = await expect_error(login(conn, MXBANK_CODE, "someone", "password"))
    assert err.cause is Cause.BAD_CREDENTIALS
    assert err.institution_message == "The login and/or password are invalid."


async def test_mxbank_missing_credentials(conn: SandboxConnector) -> None:
    err = await expect_error(conn.login(ctx(MXBANK_CODE), {"LOGIN": "mxuser"}))
    assert err.cause is Cause.MISSING_CREDENTIALS


async def test_credential_keys_are_case_tolerant(conn: SandboxConnector) -> None:
    result = await conn.login(ctx(MXBANK_CODE), {"login": "mxuser", "password": "x"})
    assert result.state["authenticated"] is True


@pytest.mark.parametrize(
    ("password", "cause", "message"),
    [
        ("BAD_REQUEST", Cause.BAD_REQUEST, "You must fill out the username and password fields."),
        ("UNAUTHORIZED", Cause.BAD_CREDENTIALS, "Invalid credentials."),
        ("INVALID", Cause.BAD_CREDENTIALS, "The login and/or password are invalid."),
        ("LOCKED", Cause.LOCKED_OUT, "The login and password are valid, but the user is locked."),
        ("DISABLED", Cause.BAD_CREDENTIALS, None),
        ("SERVER_ERROR", Cause.INSTITUTION_ERROR, None),
        ("UNAVAILABLE", Cause.INSTITUTION_UNAVAILABLE, None),
    ],
)
async def test_mxbank_error_passwords(
    conn: SandboxConnector, password: str, cause: Cause, message: str | None
) -> None:
    err = await expect_error(login(conn, MXBANK_CODE, "mxuser", password))
    assert err.cause is cause
    if message is not None:
        assert err.institution_message == message
    else:
        assert err.institution_message


@pytest.mark.parametrize(
    ("password", "challenge_type"),
    [("challenge", "TEXT"), ("options", "OPTIONS"), ("image", "IMAGE_DATA")],
)
async def test_mxbank_challenges_pass_with_correct(
    conn: SandboxConnector, password: str, challenge_type: str
) -> None:
    result = await login(conn, MXBANK_CODE, "mxuser", password)
    assert len(result.challenges) == 1
    challenge = result.challenges[0]
    assert challenge.type == challenge_type
    assert challenge.guid.startswith("CRD-")
    assert result.state["authenticated"] is False
    if challenge_type == "OPTIONS":
        assert "correct" in [o.value for o in challenge.options]
        assert len(challenge.options) >= 2
    if challenge_type == "IMAGE_DATA":
        assert_png_data_uri(challenge.image_data)

    done = await answer(conn, MXBANK_CODE, result, "correct")
    assert done.challenges == [] and done.state["authenticated"] is True
    assert await conn.accounts(ctx(MXBANK_CODE), done.state)


async def test_mxbank_challenge_guids_are_stable(conn: SandboxConnector) -> None:
    first = await login(conn, MXBANK_CODE, "mxuser", "challenge")
    again = await login(conn, MXBANK_CODE, "mxuser", "challenge", member="MBR-other")
    assert first.challenges[0].guid == again.challenges[0].guid


async def test_mxbank_multi_round_challenge(conn: SandboxConnector) -> None:
    first = await login(conn, MXBANK_CODE, "mxuser", "challenge")
    second = await answer(conn, MXBANK_CODE, first, "challenge")
    assert len(second.challenges) == 1 and second.challenges[0].type == "TEXT"
    assert second.challenges[0].guid != first.challenges[0].guid
    assert second.state["round"] == 2 and second.state["authenticated"] is False
    done = await answer(conn, MXBANK_CODE, second, "correct")
    assert done.challenges == [] and done.state["authenticated"] is True


async def test_mxbank_second_round_rejects_challenge_again(conn: SandboxConnector) -> None:
    first = await login(conn, MXBANK_CODE, "mxuser", "challenge")
    second = await answer(conn, MXBANK_CODE, first, "challenge")
    err = await expect_error(answer(conn, MXBANK_CODE, second, "challenge"))
    assert err.cause is Cause.MFA_WRONG_ANSWER


@pytest.mark.parametrize("password", ["challenge", "options", "image"])
@pytest.mark.parametrize("wrong", ["incorrect", "nope", "", "LOCKED"])
async def test_mxbank_wrong_answer(conn: SandboxConnector, password: str, wrong: str) -> None:
    result = await login(conn, MXBANK_CODE, "mxuser", password)
    err = await expect_error(answer(conn, MXBANK_CODE, result, wrong))
    assert err.cause is Cause.MFA_WRONG_ANSWER


async def test_mxbank_answer_missing_guid_is_wrong(conn: SandboxConnector) -> None:
    result = await login(conn, MXBANK_CODE, "mxuser", "challenge")
    err = await expect_error(conn.answer(ctx(MXBANK_CODE), result.state, {"CRD-x": "correct"}))
    assert err.cause is Cause.MFA_WRONG_ANSWER


@pytest.mark.parametrize("password", ["challenge", "options", "image"])
@pytest.mark.parametrize(
    ("value", "cause"),
    [
        ("DISABLED", Cause.BAD_CREDENTIALS),
        ("SERVER_ERROR", Cause.INSTITUTION_ERROR),
        ("UNAVAILABLE", Cause.INSTITUTION_UNAVAILABLE),
    ],
)
async def test_mxbank_error_answers(
    conn: SandboxConnector, password: str, value: str, cause: Cause
) -> None:
    result = await login(conn, MXBANK_CODE, "mxuser", password)
    err = await expect_error(answer(conn, MXBANK_CODE, result, value))
    assert err.cause is cause


async def test_answer_without_pending_challenge_is_expired(conn: SandboxConnector) -> None:
    result = await login(conn, MXBANK_CODE, "mxuser", "password")
    err = await expect_error(conn.answer(ctx(MXBANK_CODE), result.state, {"CRD-x": "correct"}))
    assert err.cause is Cause.MFA_EXPIRED


async def test_mx_bank_oauth_signs_in_with_the_token_its_oauth_step_earned(
    conn: SandboxConnector,
) -> None:
    verifier = "v" * 43
    begin = ctx(MX_BANK_OAUTH_CODE)
    started = await conn.oauth_start(
        begin, "https://openagg.test/oauth/callback", "state-1", code_challenge(verifier)
    )
    query = parse_qs(urlsplit(started.authorize_url).query)
    assert started.authorize_url.startswith("https://openagg.test/sandbox/oauth/authorize?")
    assert query["state"] == ["state-1"] and query["code_challenge_method"] == ["S256"]
    code = sandbox_authorization_code(query["code_challenge"][0])

    # A code redeemed without the verifier it was made for is refused.
    err = await expect_error(conn.oauth_finish(begin, {"code": code}, "", "w" * 43))
    assert err.cause is Cause.BAD_CREDENTIALS and begin.secrets == {}
    await conn.oauth_finish(begin, {"code": code}, "", verifier)
    assert begin.secrets["access_token"].startswith("sbx-at-")

    # No token (never granted, or revoked): the end user must reconnect.
    err = await expect_error(conn.login(ctx(MX_BANK_OAUTH_CODE), {}))
    assert err.cause is Cause.BAD_CREDENTIALS
    later = ctx(MX_BANK_OAUTH_CODE)
    later.secrets.update(begin.secrets)
    result = await conn.login(later, {})
    assert result.challenges == [] and result.state["authenticated"] is True
    assert len(await conn.accounts(later, result.state)) == 6


async def test_unknown_institution(conn: SandboxConnector) -> None:
    err = await expect_error(login(conn, "no_such_bank", "a", "b"))
    assert err.cause is Cause.INTERNAL_ERROR


# ---------------------------------------------------------------------------
# OpenAgg Sandbox Bank
# ---------------------------------------------------------------------------


async def test_sandbox_pass_good(conn: SandboxConnector) -> None:
    result = await login(conn, SANDBOX_BANK_CODE, "user_good", "pass_good")
    assert result.challenges == [] and result.state["authenticated"] is True


@pytest.mark.parametrize(
    ("username", "password"),
    [("user_bad", "pass_good"), ("user_good", "pass_bad"), ("user_good", "challenge")],
)
async def test_sandbox_bad_credentials(
    conn: SandboxConnector, username: str, password: str
) -> None:
    err = await expect_error(login(conn, SANDBOX_BANK_CODE, username, password))
    assert err.cause is Cause.BAD_CREDENTIALS


async def test_sandbox_missing_credentials(conn: SandboxConnector) -> None:
    err = await expect_error(conn.login(ctx(), {"LOGIN": "user_good", "PASSWORD": ""}))
    assert err.cause is Cause.MISSING_CREDENTIALS


@pytest.mark.parametrize(
    ("password", "cause", "message"),
    [
        ("error_denied", Cause.BAD_CREDENTIALS, None),
        ("error_locked", Cause.LOCKED_OUT, None),
        (
            "error_impeded",
            Cause.USER_ACTION_REQUIRED,
            "Please log in to the website and accept the new terms",
        ),
        ("error_impaired", Cause.MISSING_CREDENTIALS, None),
        ("error_failed", Cause.INSTITUTION_ERROR, None),
        ("error_closed", Cause.ACCOUNT_CLOSED, None),
    ],
)
async def test_sandbox_error_scenarios(
    conn: SandboxConnector, password: str, cause: Cause, message: str | None
) -> None:
    err = await expect_error(login(conn, SANDBOX_BANK_CODE, "user_good", password))
    assert err.cause is cause
    assert err.institution_message
    if message is not None:
        assert err.institution_message == message


async def test_sandbox_error_after_login(conn: SandboxConnector) -> None:
    result = await login(conn, SANDBOX_BANK_CODE, "user_good", "error_after_login")
    assert result.challenges == []
    err = await expect_error(conn.accounts(ctx(), result.state))
    assert err.cause is Cause.DATA_ERROR


@pytest.mark.parametrize(
    ("password", "challenge_type"),
    [
        ("mfa_text", "TEXT"),
        ("mfa_token", "TOKEN"),
        ("mfa_options", "OPTIONS"),
        ("mfa_image", "IMAGE_DATA"),
        ("mfa_image_options", "IMAGE_OPTIONS"),
    ],
)
async def test_sandbox_single_round_mfa(
    conn: SandboxConnector, password: str, challenge_type: str
) -> None:
    result = await login(conn, SANDBOX_BANK_CODE, "user_good", password)
    assert [c.type for c in result.challenges] == [challenge_type]
    challenge = result.challenges[0]
    assert challenge.guid.startswith("CRD-") and challenge.label
    if challenge_type in ("OPTIONS", "IMAGE_OPTIONS"):
        values = [o.value for o in challenge.options]
        assert 2 <= len(values) <= 3 and "correct" in values
        assert len(set(values)) == len(values)
        assert all(o.guid and o.guid.startswith("CRD-") for o in challenge.options)
    if challenge_type == "IMAGE_OPTIONS":
        for option in challenge.options:
            assert_png_data_uri(option.data_uri)
    if challenge_type == "IMAGE_DATA":
        assert_png_data_uri(challenge.image_data)

    done = await answer(conn, SANDBOX_BANK_CODE, result, "correct")
    assert done.challenges == [] and done.state["authenticated"] is True
    assert await conn.accounts(ctx(), done.state)


@pytest.mark.parametrize(
    "password", ["mfa_text", "mfa_token", "mfa_options", "mfa_image", "mfa_image_options"]
)
async def test_sandbox_wrong_answers(conn: SandboxConnector, password: str) -> None:
    result = await login(conn, SANDBOX_BANK_CODE, "user_good", password)
    wrong = [o.value for o in result.challenges[0].options if o.value != "correct"] or ["nope"]
    for value in wrong:
        err = await expect_error(answer(conn, SANDBOX_BANK_CODE, result, value))
        assert err.cause is Cause.MFA_WRONG_ANSWER


async def test_sandbox_multi_round_mfa(conn: SandboxConnector) -> None:
    first = await login(conn, SANDBOX_BANK_CODE, "user_good", "mfa_multi")
    assert [c.type for c in first.challenges] == ["TEXT"]
    second = await answer(conn, SANDBOX_BANK_CODE, first, "correct")
    assert [c.type for c in second.challenges] == ["OPTIONS"]
    assert second.state["authenticated"] is False
    err = await expect_error(answer(conn, SANDBOX_BANK_CODE, second, "incorrect_1"))
    assert err.cause is Cause.MFA_WRONG_ANSWER
    done = await answer(conn, SANDBOX_BANK_CODE, second, "correct")
    assert done.challenges == [] and done.state["authenticated"] is True


async def test_sandbox_multi_round_wrong_first_answer(conn: SandboxConnector) -> None:
    first = await login(conn, SANDBOX_BANK_CODE, "user_good", "mfa_multi")
    err = await expect_error(answer(conn, SANDBOX_BANK_CODE, first, "Rex"))
    assert err.cause is Cause.MFA_WRONG_ANSWER


async def test_sandbox_flaky_recovers_after_three_attempts(conn: SandboxConnector) -> None:
    for attempt in range(3):
        err = await expect_error(
            login(conn, SANDBOX_BANK_CODE, "user_good", "flaky", previous_attempts=attempt)
        )
        assert err.cause is Cause.INSTITUTION_UNAVAILABLE
    result = await login(conn, SANDBOX_BANK_CODE, "user_good", "flaky", previous_attempts=3)
    assert result.state["authenticated"] is True


async def test_sandbox_slow_sleeps_slow_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(sandbox.asyncio, "sleep", fake_sleep)
    conn = SandboxConnector(slow_seconds=62.0)
    result = await login(conn, SANDBOX_BANK_CODE, "user_good", "slow")
    assert result.state["authenticated"] is True
    assert slept == [62.0]


async def test_latency_sleeps_before_every_bank_call(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(sandbox.asyncio, "sleep", fake_sleep)
    conn = SandboxConnector(latency_ms=25)
    c = ctx()
    first = await conn.login(c, creds("user_good", "mfa_text"))
    state = (await answer(conn, SANDBOX_BANK_CODE, first, "correct")).state
    accounts = await conn.accounts(c, state)
    checking = accounts[0]
    await conn.transactions(c, state, checking, WINDOW_START, TODAY)
    await conn.holdings(c, state, accounts[-1])
    await conn.owners(c, state, checking)
    assert slept == [0.025] * 6


async def test_no_latency_means_no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail_sleep(seconds: float) -> None:
        raise AssertionError("should not sleep")

    monkeypatch.setattr(sandbox.asyncio, "sleep", fail_sleep)
    conn = SandboxConnector()
    state = (await login(conn, SANDBOX_BANK_CODE, "user_good", "pass_good")).state
    await conn.accounts(ctx(), state)


async def test_real_latency_is_roughly_applied() -> None:
    conn = SandboxConnector(latency_ms=20)
    start = time.perf_counter()
    await login(conn, SANDBOX_BANK_CODE, "user_good", "pass_good")
    assert time.perf_counter() - start >= 0.015


async def test_data_calls_need_a_logged_in_session(conn: SandboxConnector) -> None:
    pending = await login(conn, SANDBOX_BANK_CODE, "user_good", "mfa_text")
    err = await expect_error(conn.accounts(ctx(), pending.state))
    assert err.cause is Cause.INTERNAL_ERROR


ALL_PASSWORDS = [
    (MXBANK_CODE, "mxuser", p) for p in ("hunter2-secret", "challenge", "options", "image")
] + [
    (SANDBOX_BANK_CODE, "user_good", p)
    for p in (
        "pass_good",
        "mfa_text",
        "mfa_token",
        "mfa_options",
        "mfa_image",
        "mfa_image_options",
        "mfa_multi",
        "error_after_login",
        "slow",
        "dynamic",
    )
]


@pytest.mark.parametrize(("code", "username", "password"), ALL_PASSWORDS)
async def test_state_is_json_and_holds_no_password(code: str, username: str, password: str) -> None:
    conn = SandboxConnector(slow_seconds=0)
    result = await login(conn, code, username, password)
    states = [result.state]
    while result.challenges:
        result = await answer(conn, code, result, "correct")
        states.append(result.state)
    for state in states:
        text = json.dumps(state)
        assert json.loads(text) == state
        assert password not in text
        assert username not in text


# ---------------------------------------------------------------------------
# Generated data
# ---------------------------------------------------------------------------


async def pull(
    conn: SandboxConnector,
    member: str = MEMBER,
    password: str = "pass_good",
    previous_attempts: int = 0,
    today: dt.date = TODAY,
    code: str = SANDBOX_BANK_CODE,
) -> dict[str, Any]:
    """Everything one aggregation would fetch."""
    c = ctx(code, member=member, previous_attempts=previous_attempts, today=today)
    user = "mxuser" if code == MXBANK_CODE else "user_good"
    state = (await conn.login(c, creds(user, password))).state
    accounts = await conn.accounts(c, state)
    txns: dict[str, list[TransactionData]] = {}
    holdings = {}
    owners = {}
    for a in accounts:
        txns[a.external_id] = await conn.transactions(
            c, state, a, today - dt.timedelta(days=89), today
        )
        holdings[a.external_id] = await conn.holdings(c, state, a)
        owners[a.external_id] = await conn.owners(c, state, a)
    return {"accounts": accounts, "transactions": txns, "holdings": holdings, "owners": owners}


def account(data: dict[str, Any], acct_type: str) -> AccountData:
    return next(a for a in data["accounts"] if a.type == acct_type)


async def test_same_member_same_data_and_different_member_different(
    conn: SandboxConnector,
) -> None:
    sandbox_data.member_profile.cache_clear()
    first = await pull(conn)
    sandbox_data.member_profile.cache_clear()  # recomputed, not just cached
    second = await pull(conn)
    assert first == second
    other = await pull(conn, member="MBR-00000000-0000-0000-0000-000000000001")
    assert [a.balance for a in other["accounts"]] != [a.balance for a in first["accounts"]]
    assert [a.external_id for a in other["accounts"]] != [a.external_id for a in first["accounts"]]


async def test_accounts_look_real(conn: SandboxConnector) -> None:
    data = await pull(conn)
    types = [a.type for a in data["accounts"]]
    assert types == ["CHECKING", "SAVINGS", "CREDIT_CARD", "LOAN", "MORTGAGE", "INVESTMENT"]
    for a in data["accounts"]:
        assert a.name and a.currency_code == "USD" and not a.is_closed
        assert a.balance == a.balance.quantize(Decimal("0.01")) and a.balance > 0
        assert a.account_number and a.account_number.isdigit()
        json.dumps(a.details)  # stored in a JSON column
    for a in (account(data, "CHECKING"), account(data, "SAVINGS")):
        assert len(a.account_number or "") == 10
        assert a.routing_number is not None and len(a.routing_number) == 9
        d = [int(x) for x in a.routing_number]
        assert (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]) % 10 == 0
        assert a.available_balance is not None
    card = account(data, "CREDIT_CARD")
    assert {"credit_limit", "apr", "minimum_payment", "payment_due_at", "day_payment_is_due"} <= (
        card.details.keys()
    )
    assert isinstance(card.details["day_payment_is_due"], int)
    due = dt.datetime.fromisoformat(card.details["payment_due_at"].replace("Z", "+00:00"))
    assert due.date() > TODAY
    assert card.available_balance == Decimal(str(card.details["credit_limit"])) - card.balance
    loan = account(data, "LOAN")
    assert loan.subtype == "AUTO"
    assert {"original_balance", "interest_rate", "matures_on", "minimum_payment"} <= (
        loan.details.keys()
    )
    mortgage = account(data, "MORTGAGE")
    assert dt.date.fromisoformat(mortgage.details["matures_on"]) > TODAY


async def test_mxbank_gives_the_same_kinds_of_accounts(conn: SandboxConnector) -> None:
    data = await pull(conn, code=MXBANK_CODE, password="anything")
    assert len(data["accounts"]) == 6
    assert len(data["transactions"][account(data, "CHECKING").external_id]) >= 40


async def test_transactions_look_real(conn: SandboxConnector) -> None:
    data = await pull(conn)
    external_ids: list[str] = []
    for acct_id, txns in data["transactions"].items():
        for t in txns:
            assert t.account_external_id == acct_id
            assert t.amount > 0 and t.amount == t.amount.quantize(Decimal("0.01"))
            assert t.type in ("CREDIT", "DEBIT")
            assert t.status in ("POSTED", "PENDING")
            assert WINDOW_START <= t.date <= TODAY
            assert t.description and t.original_description
            assert t.category and t.top_level_category
            assert t.flags["is_international"] is False
            assert (t.posted_at is None) == (t.status == "PENDING")
            json.dumps(t.flags)
            external_ids.append(t.external_id)
    assert len(external_ids) == len(set(external_ids))

    checking = data["transactions"][account(data, "CHECKING").external_id]
    assert 40 <= len(checking) <= 90
    pending = [t for t in checking if t.status == "PENDING"]
    assert pending and all(t.date >= TODAY - dt.timedelta(days=1) for t in pending)
    assert any(t.category == "Paycheck" and t.flags["is_income"] for t in checking)
    assert any(t.flags["is_direct_deposit"] for t in checking)
    assert any(t.merchant_category_code and t.merchant_name for t in checking)
    card = data["transactions"][account(data, "CREDIT_CARD").external_id]
    assert len(card) >= 25
    assert any(t.type == "CREDIT" and t.category == "Credit Card Payment" for t in card)
    savings = data["transactions"][account(data, "SAVINGS").external_id]
    assert savings and all(t.type == "CREDIT" for t in savings)
    for kind in ("LOAN", "MORTGAGE"):
        assert len(data["transactions"][account(data, kind).external_id]) <= 4
    investment = data["transactions"][account(data, "INVESTMENT").external_id]
    assert all(t.category == "Dividend & Cap Gains" for t in investment)


async def test_categories_span_mx_names() -> None:
    categories: set[tuple[str | None, str | None]] = set()
    conn = SandboxConnector()
    for n in range(6):
        data = await pull(conn, member=f"MBR-category-{n}")
        for txns in data["transactions"].values():
            categories.update((t.category, t.top_level_category) for t in txns)
    for pair in [
        ("Groceries", "Food & Dining"),
        ("Paycheck", "Income"),
        ("Gas", "Auto & Transport"),
        ("Restaurants", "Food & Dining"),
        ("Utilities", "Bills & Utilities"),
        ("Mortgage & Rent", "Home"),
        ("Credit Card Payment", "Transfer"),
        ("Coffee Shops", "Food & Dining"),
        ("Shopping", "Shopping"),
        ("Dividend & Cap Gains", "Investments"),
    ]:
        assert pair in categories


async def test_external_ids_are_stable_as_the_window_slides(conn: SandboxConnector) -> None:
    today_pull = await pull(conn)
    later_pull = await pull(conn, today=TODAY + dt.timedelta(days=5))
    for acct_id, txns in today_pull["transactions"].items():
        later = {t.external_id: t for t in later_pull["transactions"][acct_id]}
        for t in txns:
            if t.date < TODAY - dt.timedelta(days=84):
                continue  # slid out of the later window
            same = later[t.external_id]
            assert (same.amount, same.date, same.description) == (t.amount, t.date, t.description)
            assert same.status == "POSTED"  # old pending items have posted


async def test_transactions_respect_the_date_window(conn: SandboxConnector) -> None:
    c = ctx()
    state = (await conn.login(c, creds("user_good", "pass_good"))).state
    accounts = await conn.accounts(c, state)
    checking = accounts[0]
    full = await conn.transactions(c, state, checking, WINDOW_START, TODAY)
    start, end = TODAY - dt.timedelta(days=30), TODAY - dt.timedelta(days=10)
    part = await conn.transactions(c, state, checking, start, end)
    assert part and all(start <= t.date <= end for t in part)
    assert part == [t for t in full if start <= t.date <= end]
    assert await conn.transactions(c, state, checking, TODAY + dt.timedelta(days=1), TODAY) == []
    # Nothing older than 90 days, nothing in the future.
    wide = await conn.transactions(
        c, state, checking, TODAY - dt.timedelta(days=400), TODAY + dt.timedelta(days=30)
    )
    assert wide == full


async def test_holdings_and_owners(conn: SandboxConnector) -> None:
    data = await pull(conn)
    investment = account(data, "INVESTMENT")
    holdings = data["holdings"][investment.external_id]
    assert 4 <= len(holdings) <= 6
    assert {"EQUITY", "MUTUAL_FUND", "ETF", "BOND", "CASH"} <= {h.holding_type for h in holdings}
    for h in holdings:
        assert h.quantity > 0 and h.current_price > 0 and h.cost_basis is not None
        assert h.description
    assert sum(h.market_value for h in holdings) == investment.balance
    for acct_id, hs in data["holdings"].items():
        if acct_id != investment.external_id:
            assert hs == []
    for a in data["accounts"]:
        (owner,) = data["owners"][a.external_id]
        assert owner.account_external_id == a.external_id
        assert owner.owner_name == f"{owner.first_name} {owner.last_name}"
        assert owner.country == "US" and owner.email and owner.phone
        assert owner.address and owner.city and owner.state and owner.postal_code


async def test_returned_objects_are_copies(conn: SandboxConnector) -> None:
    first = await pull(conn)
    first["accounts"][0].details["apy"] = 99.0
    first["accounts"][0].name = "mutated"
    second = await pull(conn)
    assert second["accounts"][0].name != "mutated"
    assert second["accounts"][0].details["apy"] != 99.0


async def test_dynamic_pending_transactions_post_and_vanish(conn: SandboxConnector) -> None:
    first = await pull(conn, password="dynamic", previous_attempts=0)
    checking_id = account(first, "CHECKING").external_id
    before = {t.external_id: t for t in first["transactions"][checking_id]}
    pending = {
        f"{checking_id}-pending-{n}": before.get(f"{checking_id}-pending-{n}") for n in (1, 2, 3)
    }
    assert all(t is not None and t.status == "PENDING" for t in pending.values())

    second = await pull(conn, password="dynamic", previous_attempts=1)
    after = {t.external_id: t for t in second["transactions"][checking_id]}
    assert not any(i.endswith(("-pending-1", "-pending-2", "-pending-3")) for i in after)
    replacements = {t.replaces_external_id: t for t in after.values() if t.replaces_external_id}
    p1, p2 = pending[f"{checking_id}-pending-1"], pending[f"{checking_id}-pending-2"]
    assert p1 is not None and p2 is not None
    r1 = replacements[p1.external_id]
    assert r1.status == "POSTED" and r1.amount == p1.amount and r1.external_id != p1.external_id
    r2 = replacements[p2.external_id]
    assert r2.status == "POSTED" and r2.amount != p2.amount and r2.external_id != p2.external_id
    assert f"{checking_id}-pending-3" not in replacements
    assert len(replacements) == 2
    # Everything else is untouched.
    rest_before = {k: v for k, v in before.items() if "-pending-" not in k}
    rest_after = {k: v for k, v in after.items() if k not in {r1.external_id, r2.external_id}}
    assert rest_before == rest_after


async def test_dynamic_only_touches_checking(conn: SandboxConnector) -> None:
    normal = await pull(conn)
    dynamic = await pull(conn, password="dynamic")
    for a in normal["accounts"]:
        if a.type != "CHECKING":
            assert normal["transactions"][a.external_id] == dynamic["transactions"][a.external_id]


def test_png_data_uri_is_valid() -> None:
    assert_png_data_uri(sandbox.png_data_uri((1, 2, 3)))


def test_aba_check_digit() -> None:
    # Well-known valid routing numbers.
    for number in ("011000015", "021000021", "111000025"):
        assert sandbox_data.aba_check_digit(number[:8]) == int(number[8])


async def test_connector_works_inside_gather(conn: SandboxConnector) -> None:
    results = await asyncio.gather(*(pull(conn, member=f"MBR-g-{i}") for i in range(5)))
    assert len({r["accounts"][0].external_id for r in results}) == 5
