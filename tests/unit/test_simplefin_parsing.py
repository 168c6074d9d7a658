"""The ``simplefin`` connector's reading of answers no fake sends: version 1's
``errors`` strings, ``errlist`` codes besides the fake's, and account types."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from openagg.connectors.simplefin import _account, _error_cause
from openagg.domain.causes import Cause

ACCOUNT = {"id": "A1", "name": "Checking", "balance": "1.00", "transactions": []}


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        ({"errors": ["Connection to Bank may need attention"], "accounts": [ACCOUNT]}, "USER"),
        ({"errors": ["Please reauthenticate"], "accounts": [ACCOUNT]}, "BAD"),
        ({"errors": ["Please make fewer requests"], "accounts": [ACCOUNT]}, "RATE"),
        ({"errors": ["Bank X is slow today"], "accounts": [ACCOUNT]}, None),
        ({"errors": ["Something broke"], "accounts": []}, "ERROR"),
        ({"errlist": [{"code": "act.missing", "message": "gone"}], "accounts": [ACCOUNT]}, None),
        (
            {"errlist": [{"code": "con.", "message": "Bank is down"}], "accounts": [ACCOUNT]},
            "ERROR",
        ),
        (
            {
                "errlist": [
                    {"code": "con.", "message": "Bank is down"},
                    {"code": "con.auth", "message": "Sign in again at the Bridge"},
                ],
                "accounts": [ACCOUNT],
            },
            "USER",
        ),
        ({"errlist": [], "errors": [], "accounts": [ACCOUNT]}, None),
    ],
)
def test_errors_become_the_worst_cause(body: dict[str, Any], cause: str | None) -> None:
    names = {
        "USER": Cause.USER_ACTION_REQUIRED,
        "BAD": Cause.BAD_CREDENTIALS,
        "RATE": Cause.RATE_LIMITED,
        "ERROR": Cause.INSTITUTION_ERROR,
    }
    found = _error_cause(body)
    assert (found[0] if found else None) == (names[cause] if cause else None)


@pytest.mark.parametrize(
    ("name", "balance", "kind", "mx_balance"),
    [
        ("Visa Checking", "-5.00", "CHECKING", "-5.00"),  # overdrawn, not a card
        ("Premier Savings", "100.00", "SAVINGS", "100.00"),
        ("Home Mortgage", "-250000.00", "MORTGAGE", "250000.00"),
        ("Auto Loan", "-9000.00", "LOAN", "9000.00"),
        ("Roth IRA", "5000.00", "INVESTMENT", "5000.00"),
        ("Freedom Unlimited", "-12.34", "CREDIT_CARD", "12.34"),  # by the sign
        ("Freedom Unlimited", "12.34", "CHECKING", "12.34"),
    ],
)
def test_account_types_from_names_and_signs(
    name: str, balance: str, kind: str, mx_balance: str
) -> None:
    account = _account({"id": "A", "name": name, "balance": balance, "currency": "USD"})
    assert (account.type, account.balance) == (kind, Decimal(mx_balance))


def test_a_type_the_server_sends_wins() -> None:
    raw = {"id": "A", "name": "Checking", "balance": "-3.00", "extra": {"type": "credit card"}}
    assert _account(raw).type == "CREDIT_CARD"
