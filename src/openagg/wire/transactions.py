"""TransactionIncludesResponse, from model objects or from rows read straight from the
driver, and the ``includes`` query parameter.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from openagg.db.models import Transaction
from openagg.domain.ids import stable_guid
from openagg.wire.scalars import iso, iso_date, to_bool

# includes=<value> -> the key it adds to each transaction.
_INCLUDE_KEYS: Final = {
    "repeating_transactions": "repeating_transaction",
    "merchants": "merchant",
    "classifications": "classification",
    "geolocations": "geolocation",
}
TRANSACTION_INCLUDES: Final = frozenset(_INCLUDE_KEYS)

# The enum both SDKs check on classification.parent_class.
CLASSIFICATION_PARENT_CLASSES: Final = frozenset(
    {
        "Payroll",
        "Deposit",
        "Savings",
        "Transfer",
        "Refunds",
        "Spend",
        "Investment",
        "Buy",
        "Sell",
        "Income",
        "Fees",
        "Expenses",
        "Corporate Actions",
        "Other",
    }
)
_PARENT_BY_TOP_LEVEL: Final = {
    "Income": "Income",
    "Transfer": "Transfer",
    "Fees & Charges": "Fees",
    "Investments": "Investment",
}
_PARENT_BY_TYPE: Final = {"DEBIT": "Spend", "CREDIT": "Deposit"}
# One stable MNC- guid per class (we have no finer-grained classification).
_CLASSIFICATION_GUIDS: Final = {
    c: stable_guid("MNC", "openagg-classification", c) for c in CLASSIFICATION_PARENT_CLASSES
}

# MX booleans kept in Transaction.flags, with their default when absent.
_FLAG_DEFAULTS: Final = (
    ("is_bill_pay", False),
    ("is_direct_deposit", False),
    ("is_expense", False),
    ("is_fee", False),
    ("is_income", False),
    ("is_international", None),  # null = unknown, as MX sends it
    ("is_overdraft_fee", False),
    ("is_payroll_advance", False),
    ("is_recurring", False),
    ("is_subscription", False),
)


def parse_includes(value: str | None) -> frozenset[str]:
    """The ``includes`` query parameter (comma-separated). Empty pieces are ignored;
    an unknown value raises ``ValueError`` naming it."""
    if not value:
        return frozenset()
    parts = frozenset(p.strip() for p in value.split(",")) - {""}
    unknown = parts - TRANSACTION_INCLUDES
    if unknown:
        bad = ", ".join(sorted(unknown))
        allowed = ", ".join(sorted(TRANSACTION_INCLUDES))
        raise ValueError(f"unknown includes value(s): {bad} (allowed: {allowed})")
    return parts


_FLAG_KEYS: Final = tuple(k for k, _ in _FLAG_DEFAULTS)
_FLAG_NONE: Final = tuple(default for _, default in _FLAG_DEFAULTS)


def _flag_values(flags: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """The MX booleans in ``_FLAG_DEFAULTS`` order."""
    if not flags:
        return _FLAG_NONE
    out = []
    for k, default in _FLAG_DEFAULTS:
        v = flags.get(k, default)
        out.append(v if v is None or v.__class__ is bool else to_bool(v))
    return tuple(out)


def _parent_class_of(top_level_category: str | None, type_: str) -> str:
    return _PARENT_BY_TOP_LEVEL.get(top_level_category or "") or _PARENT_BY_TYPE.get(type_, "Other")


def _parent_class(t: Transaction) -> str:
    return _parent_class_of(t.top_level_category, t.type)


def _repeating_of(
    flags: Mapping[str, Any],
    account_guid: str,
    top_level_category: str | None,
    merchant_guid: str | None,
    description: str | None,
    original_description: str | None,
) -> Any:
    if not flags.get("is_recurring"):
        return None
    if flags.get("is_income") or top_level_category == "Income":
        kind = "INCOME"
    elif flags.get("is_subscription"):
        kind = "SUBSCRIPTION"
    else:
        kind = "BILL"
    # A series is identified by its account and its payee (merchant, else text).
    payee = merchant_guid or description or original_description or ""
    return {
        "guid": stable_guid("RPT", account_guid, payee, kind),
        # Only EVERY_OTHER_WEEK is in the SDK-checked enum; we don't detect cadence.
        "recurrence_type": None,
        "repeating_transaction_type": kind,
    }


def _repeating(t: Transaction, flags: Mapping[str, Any], account_guid: str) -> Any:
    return _repeating_of(
        flags,
        account_guid,
        t.top_level_category,
        t.merchant_guid,
        t.description,
        t.original_description,
    )


def _transaction_body(
    account_guid: str,
    account_id: str | None,
    amount_cents: int,
    category: str | None,
    category_guid: str | None,
    check_number_string: str | None,
    created_at: str | None,
    currency_code: str | None,
    date: str | None,
    description: str | None,
    guid: str,
    external_id: str,
    member_guid: str,
    memo: str | None,
    merchant_category_code: int | None,
    merchant_guid: str | None,
    original_description: str | None,
    posted_at: str | None,
    status: str,
    top_level_category: str | None,
    transacted_at: str | None,
    type_: str,
    updated_at: str | None,
    user_guid: str,
    user_id: str | None,
    flags: Mapping[str, Any],
    flag_values: tuple[Any, ...],
    includes: frozenset[str],
) -> dict[str, Any]:
    """TransactionIncludesResponse from values already in wire form (timestamps and
    dates as strings): the one place that lays the object out."""
    out: dict[str, Any] = {
        "account_guid": account_guid,
        "account_id": account_id,
        "amount": amount_cents / 100,
        "category": category,
        "category_guid": category_guid,
        "check_number_string": check_number_string,
        "created_at": created_at,
        "currency_code": currency_code,
        "date": date,
        "description": description,
        "extended_transaction_type": None,
        "guid": guid,
        "id": external_id,
        "is_manual": False,
        "latitude": None,
        "localized_description": None,
        "localized_memo": None,
        "longitude": None,
        "member_guid": member_guid,
        "member_is_managed_by_user": False,
        "memo": memo,
        "merchant_category_code": merchant_category_code,
        "merchant_guid": merchant_guid,
        "merchant_location_guid": None,
        "metadata": None,
        "original_description": original_description,
        "posted_at": posted_at,
        "status": status,
        "top_level_category": top_level_category,
        "transacted_at": transacted_at,
        "type": type_,
        "updated_at": updated_at,
        "user_guid": user_guid,
        "user_id": user_id,
    }
    out.update(zip(_FLAG_KEYS, flag_values, strict=True))
    if includes:
        if "merchants" in includes:
            out["merchant"] = (
                None
                if merchant_guid is None
                else {"guid": merchant_guid, "logo_url": None, "name": None, "website_url": None}
            )
        if "classifications" in includes:
            pc = _parent_class_of(top_level_category, type_)
            out["classification"] = {"guid": _CLASSIFICATION_GUIDS[pc], "parent_class": pc}
        if "geolocations" in includes:
            out["geolocation"] = {"city": None, "country": None, "postal code": None, "state": None}
        if "repeating_transactions" in includes:
            out["repeating_transaction"] = _repeating_of(
                flags,
                account_guid,
                top_level_category,
                merchant_guid,
                description,
                original_description,
            )
    return out


def transaction(
    t: Transaction,
    *,
    user_guid: str,
    user_id: str | None,
    account_guid: str,
    account_id: str | None,
    member_guid: str,
    includes: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """TransactionIncludesResponse; the include objects appear only when requested."""
    flags: Mapping[str, Any] = t.flags or {}
    return _transaction_body(
        account_guid,
        account_id,
        t.amount_cents,
        t.category,
        t.category_guid,
        t.check_number_string,
        iso(t.created_at),
        t.currency_code,
        iso_date(t.date),
        t.description,
        t.guid,
        t.external_id,
        member_guid,
        t.memo,
        t.merchant_category_code,
        t.merchant_guid,
        t.original_description,
        iso(t.posted_at),
        t.status,
        t.top_level_category,
        iso(t.transacted_at),
        t.type,
        iso(t.updated_at),
        user_guid,
        user_id,
        flags,
        _flag_values(flags),
        includes,
    )


# The columns ``transactions_from_rows`` reads, in order: the transaction's own, then
# its account's guid and external id and its member's guid.
TRANSACTION_ROW: Final = (
    "guid",
    "external_id",
    "amount_cents",
    "category",
    "category_guid",
    "check_number_string",
    "created_at",
    "currency_code",
    "date",
    "description",
    "memo",
    "merchant_category_code",
    "merchant_guid",
    "original_description",
    "posted_at",
    "status",
    "top_level_category",
    "transacted_at",
    "type",
    "updated_at",
    "flags",
)


def _sqlite_iso(stored: str | None) -> str | None:
    """``iso`` of a timestamp as SQLAlchemy stores it on SQLite (UTC,
    ``YYYY-MM-DD HH:MM:SS.ffffff``), without parsing it."""
    if stored is None:
        return None
    if len(stored) >= 19 and stored[10] == " " and stored[19:20] in ("", "."):
        return f"{stored[:10]}T{stored[11:19]}Z"
    return iso(dt.datetime.fromisoformat(stored))


def _sqlite_date(stored: str | None) -> str | None:
    if stored is None or len(stored) == 10:
        return stored
    return iso_date(dt.date.fromisoformat(stored[:10]))


@lru_cache(maxsize=4096)
def _sqlite_flags(stored: str | None) -> tuple[Mapping[str, Any], tuple[Any, ...]]:
    """A flags column's JSON text, decoded once: the same few texts repeat."""
    flags = (json.loads(stored) if stored is not None else None) or {}
    return flags, _flag_values(flags)


def transactions_from_rows(
    rows: Iterable[Sequence[Any]],
    *,
    sqlite: bool,
    user_guid: str,
    user_id: str | None,
    includes: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """``transaction`` for rows read straight from the driver (``TRANSACTION_ROW``
    columns, then account guid, account external id, member guid): the same objects,
    without building model objects first. On SQLite, timestamps, dates and flags come
    as the text SQLAlchemy stored, and are turned into their wire form directly."""
    out = []
    for r in rows:
        if sqlite:
            created, date, posted, transacted, updated = (
                _sqlite_iso(r[6]),
                _sqlite_date(r[8]),
                _sqlite_iso(r[14]),
                _sqlite_iso(r[17]),
                _sqlite_iso(r[19]),
            )
            flags, flag_values = _sqlite_flags(r[20])
        else:
            created, date, posted, transacted, updated = (
                iso(r[6]),
                iso_date(r[8]),
                iso(r[14]),
                iso(r[17]),
                iso(r[19]),
            )
            flags = r[20] or {}
            flag_values = _flag_values(flags)
        out.append(
            _transaction_body(
                r[21],
                r[22],
                r[2],
                r[3],
                r[4],
                r[5],
                created,
                r[7],
                date,
                r[9],
                r[0],
                r[1],
                r[23],
                r[10],
                r[11],
                r[12],
                r[13],
                posted,
                r[15],
                r[16],
                transacted,
                r[18],
                updated,
                user_guid,
                user_id,
                flags,
                flag_values,
                includes,
            )
        )
    return out
