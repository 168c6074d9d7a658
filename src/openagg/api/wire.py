"""The MX Platform API v20111101 wire format, and the only place that knows it.

Pure functions that turn model objects into plain dicts ready for JSON encoding.
Each dict carries exactly the properties the v20111101 OpenAPI file declares for
the response schema (every one present, ``None`` when we have no value, nothing
undeclared), with exactly the declared JSON types: MX's Python SDK rejects a
float in an integer field or a string in a number field, and the Java SDK rejects
unknown keys.

Conventions:

* timestamps: ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); dates: ``YYYY-MM-DD``;
* money: the models keep integer cents; the wire gets ``cents / 100`` as a float
  (true division of ints is correctly rounded, so 1234567 -> 12345.67 exactly as
  JSON prints it);
* these functions never raise on odd values in free-form JSON columns
  (``Account.details``, ``Institution.profile``...): a value that cannot be coerced
  to the declared type is sent as ``null`` rather than failing a whole list.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from openagg.db.models import (
    Account,
    AccountNumber,
    AccountOwner,
    Holding,
    Institution,
    Member,
    SupportTicket,
    SupportTicketEvent,
    Transaction,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from openagg.domain.ids import stable_guid
from openagg.domain.statuses import MESSAGES, NEEDS_NEW_CREDENTIALS, Status

__all__ = [
    "CLASSIFICATION_PARENT_CLASSES",
    "TRANSACTION_INCLUDES",
    "account",
    "account_number",
    "account_owner",
    "challenge",
    "connect_widget_url",
    "credential",
    "holding",
    "institution",
    "iso",
    "iso_date",
    "member",
    "member_status",
    "pagination",
    "parse_includes",
    "transaction",
    "transactions_from_rows",
    "user",
    "widget_url",
]

_UTC = dt.UTC

# --------------------------------------------------------------------------- scalars


def iso(ts: dt.datetime | None) -> str | None:
    """``2024-12-20T18:52:36Z``. A naive datetime is taken to be UTC already."""
    if ts is None:
        return None
    tz = ts.tzinfo
    if tz is not None and tz is not _UTC:
        ts = ts.astimezone(_UTC)
    # %-formatting is about twice as fast as isoformat() on an aware datetime
    # (which calls utcoffset()) and three times faster than strftime.
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031
        ts.year,
        ts.month,
        ts.day,
        ts.hour,
        ts.minute,
        ts.second,
    )


def iso_date(d: dt.date | dt.datetime | None) -> str | None:
    """``2024-12-20``. A datetime is first converted to UTC."""
    if d is None:
        return None
    if isinstance(d, dt.datetime):
        if d.tzinfo is not None and d.tzinfo is not _UTC:
            d = d.astimezone(_UTC)
        d = d.date()
    return d.isoformat()


def _money(cents: int | None) -> float | None:
    return None if cents is None else cents / 100


def _to_str(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dt.datetime):
        return iso(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _to_float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _to_int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    f = _to_float(v)
    if f is None or not f.is_integer():
        return None
    return int(f)


def _to_bool(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        return None
    if isinstance(v, int | float):
        return bool(v)
    return None


# ------------------------------------------------------------------------ pagination


def pagination(page: int, per_page: int, total: int) -> dict[str, Any]:
    """PaginationResponse. ``total_pages`` is ``ceil(total / per_page)``.

    So an empty list reports ``total_pages: 0`` (with ``current_page`` as asked):
    this is what MX sends for empty collections, and the SDKs only check the type.
    """
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    return {
        "current_page": int(page),
        "per_page": int(per_page),
        "total_entries": int(total),
        "total_pages": -(-int(total) // int(per_page)),
    }


# ----------------------------------------------------------------------------- users


def user(u: User) -> dict[str, Any]:
    """UserResponse."""
    return {
        "email": u.email,
        "guid": u.guid,
        "id": u.external_id,
        "is_disabled": bool(u.is_disabled),
        "metadata": u.metadata_,
    }


# ---------------------------------------------------------------------- institutions

_INSTITUTION_STR: Final = (
    "forgot_password_url",
    "forgot_username_url",
    "instructional_text",
    "medium_logo_url",
    "small_logo_url",
    "trouble_signing_in_url",
    "url",
)
_INSTITUTION_BOOL: Final = (
    "supports_account_identification",
    "supports_account_statement",
    "supports_account_verification",
    "supports_oauth",
    "supports_tax_document",
    "supports_transaction_history",
)


def institution(i: Institution) -> dict[str, Any]:
    """InstitutionResponse (v20111101 has no ``guid`` here; do not add one)."""
    p: Mapping[str, Any] = i.profile or {}
    out: dict[str, Any] = {"code": i.code, "name": i.name}
    for k in _INSTITUTION_STR:
        out[k] = _to_str(p.get(k))
    steps = p.get("instructional_text_steps")
    out["instructional_text_steps"] = (
        [s for s in (_to_str(x) for x in steps) if s is not None]
        if isinstance(steps, list | tuple)
        else None
    )
    out["is_disabled_by_client"] = False
    # Declared non-nullable.
    out["iso_country_code"] = _to_str(p.get("iso_country_code")) or "US"
    for k in _INSTITUTION_BOOL:
        out[k] = bool(_to_bool(p.get(k)))
    return out


def credential(c: Mapping[str, Any]) -> dict[str, Any]:
    """CredentialResponse, from a stored credential definition."""
    return {
        "display_order": _to_int(c.get("display_order")),
        "field_name": _to_str(c.get("field_name")),
        "field_type": _to_str(c.get("field_type")),
        "guid": _to_str(c.get("guid")),
        "label": _to_str(c.get("label")),
        "type": _to_str(c.get("type")),
    }


# ------------------------------------------------------------------------ challenges


def _options(raw: Any, *, with_image: bool) -> list[dict[str, Any]]:
    if not isinstance(raw, list | tuple):
        return []
    out: list[dict[str, Any]] = []
    for o in raw:
        if not isinstance(o, Mapping):
            continue
        item = {
            "guid": _to_str(o.get("guid")),
            "label": _to_str(o.get("label")),
            "value": _to_str(o.get("value")),
        }
        if with_image:
            item["data_uri"] = _to_str(o.get("data_uri"))
        out.append(item)
    return out


def challenge(c: Mapping[str, Any]) -> dict[str, Any]:
    """ChallengeResponse. OPTIONS fill ``options`` (OptionResponse), IMAGE_OPTIONS fill
    ``image_options`` (ImageOptionResponse); the other array is sent empty."""
    ctype = _to_str(c.get("type"))
    raw = c.get("options")
    return {
        "field_name": _to_str(c.get("field_name")),
        "guid": _to_str(c.get("guid")),
        "image_data": _to_str(c.get("image_data")),
        "image_options": _options(raw, with_image=True) if ctype == "IMAGE_OPTIONS" else [],
        "label": _to_str(c.get("label")),
        "options": _options(raw, with_image=False) if ctype == "OPTIONS" else [],
        "type": ctype,
    }


# --------------------------------------------------------------------------- members

_STATUS_MESSAGES: Final[dict[str, str]] = {s.value: msg for s, msg in MESSAGES.items()}
_NEEDS_CREDENTIALS: Final = frozenset(s.value for s in NEEDS_NEW_CREDENTIALS)
_CHALLENGED: Final = Status.CHALLENGED.value
_USE_CASES: Final = frozenset({"MONEY_MOVEMENT", "PFM"})


def _status_str(m: Member) -> str | None:
    cs = m.connection_status
    if cs is None:
        return None
    return cs.value if isinstance(cs, Status) else str(cs)


def member(
    m: Member,
    *,
    user: User,
    institution: Institution,
    is_being_aggregated: bool,
    background_disabled: bool,
) -> dict[str, Any]:
    """MemberResponse.

    ``most_recent_job_*`` are always null: the spec types two of them as boolean and
    the SDK enforces that (reference 3.1). ``oauth_window_uri`` is left null; the
    caller sets it when it issues one.
    """
    status = _status_str(m)
    use_cases = m.use_cases
    return {
        "aggregated_at": iso(m.aggregated_at),
        "background_aggregation_is_disabled": bool(background_disabled),
        "connection_status": status,
        "connection_status_message": _STATUS_MESSAGES.get(status) if status else None,
        "guid": m.guid,
        "id": m.external_id,
        "institution_code": institution.code,
        "institution_guid": institution.guid,
        "is_being_aggregated": bool(is_being_aggregated),
        "is_managed_by_user": False,
        "is_manual": False,
        "is_oauth": bool(m.is_oauth),
        "metadata": m.metadata_,
        "most_recent_job_detail_code": None,
        "most_recent_job_detail_text": None,
        "most_recent_job_guid": None,
        "name": m.name or institution.name,
        "needs_updated_credentials": status in _NEEDS_CREDENTIALS,
        "oauth_window_uri": None,
        "successfully_aggregated_at": iso(m.successfully_aggregated_at),
        # The SDK validates the enum: drop anything else rather than break the client.
        "use_cases": None if use_cases is None else [x for x in use_cases if x in _USE_CASES],
        "user_guid": user.guid,
        "user_id": user.external_id,
    }


def member_status(m: Member, *, is_being_aggregated: bool) -> dict[str, Any]:
    """MemberStatusResponse; ``challenges`` is filled only while CHALLENGED."""
    status = _status_str(m)
    challenges = (
        [challenge(c) for c in (m.challenges or ()) if isinstance(c, Mapping)]
        if status == _CHALLENGED
        else []
    )
    return {
        "aggregated_at": iso(m.aggregated_at),
        "challenges": challenges,
        "connection_status": status,
        "guid": m.guid,
        "has_processed_account_numbers": bool(m.has_processed_account_numbers),
        "has_processed_accounts": bool(m.has_processed_accounts),
        "has_processed_transactions": bool(m.has_processed_transactions),
        "is_authenticated": bool(m.is_authenticated),
        "is_being_aggregated": bool(is_being_aggregated),
        "successfully_aggregated_at": iso(m.successfully_aggregated_at),
    }


# -------------------------------------------------------------------------- accounts

# AccountResponse properties that come from ``Account.details`` (MX names), by type.
# Properties built from columns or context are set explicitly in ``account``.
_ACCOUNT_DETAIL_STR: Final = (
    "account_ownership",
    "annuity_policy_to_date",
    "annuity_provider",
    "federal_insurance_status",
    "imported_at",
    "insured_name",
    "last_payment_at",
    "matures_on",
    "metadata",
    "nickname",
    "payment_due_at",
    "property_type",
    "routing_number",
    "started_on",
)
_ACCOUNT_DETAIL_NUM: Final = (
    "apr",
    "apy",
    "available_credit",
    "calculated_apr",
    "cash_balance",
    "cash_surrender_value",
    "credit_limit",
    "holdings_value",
    "interest_rate",
    "last_payment",
    "loan_amount",
    "margin_balance",
    "minimum_balance",
    "minimum_payment",
    "original_balance",
    "pay_out_amount",
    "payoff_balance",
    "premium_amount",
    "statement_balance",
    "today_ugl_amount",
    "today_ugl_percentage",
    "total_account_value",
    "total_account_value_ugl",
)
_ACCOUNT_SET_BY: Final = tuple(
    f"{k}_set_by"
    for k in (
        "account_number",
        "apr",
        "apy",
        "available_balance",
        "available_credit",
        "balance",
        "cash_balance",
        "cash_surrender_value",
        "credit_limit",
        "currency_code",
        "day_payment_is_due",
        "death_benefit",
        "holdings_value",
        "interest_rate",
        "is_closed",
        "last_payment",
        "last_payment_at",
        "loan_amount",
        "matures_on",
        "minimum_balance",
        "minimum_payment",
        "name",
        "nickname",
        "original_balance",
        "payment_due_at",
        "payoff_balance",
        "started_on",
        "statement_balance",
        "subtype",
        "total_account_value",
        "type",
    )
)
_ACCOUNT_DETAIL_INT: Final = (
    *_ACCOUNT_SET_BY,
    "annuity_term_year",
    "day_payment_is_due",
    "death_benefit",
    # MX's internal numeric type codes; we have none unless a connector supplies them.
    "feed_account_subtype",
    "feed_account_type",
)

# feed_* properties: "the value as the institution's feed sent it". We have no user
# overrides on these, so each one mirrors its non-feed counterpart unless the
# connector stored an explicit feed_* value in ``details``.
# (feed property, counterpart, coercion kind: s=string n=number i=integer b=boolean)
_ACCOUNT_FEED: Final = (
    ("feed_account_number", "account_number", "s"),
    ("feed_apr", "apr", "n"),
    ("feed_apy", "apy", "n"),
    ("feed_available_balance", "available_balance", "n"),
    ("feed_balance", "balance", "n"),
    ("feed_cash_balance", "cash_balance", "n"),
    ("feed_cash_surrender_value", "cash_surrender_value", "n"),
    ("feed_credit_limit", "credit_limit", "n"),
    ("feed_currency_code", "currency_code", "s"),
    ("feed_day_payment_is_due", "day_payment_is_due", "i"),
    ("feed_death_benefit", "death_benefit", "i"),
    ("feed_holdings_value", "holdings_value", "n"),
    ("feed_interest_rate", "interest_rate", "n"),
    ("feed_is_closed", "is_closed", "b"),
    ("feed_last_payment", "last_payment", "n"),
    ("feed_last_payment_at", "last_payment_at", "s"),
    ("feed_loan_amount", "loan_amount", "n"),
    ("feed_matures_on", "matures_on", "s"),
    ("feed_minimum_balance", "minimum_balance", "n"),
    ("feed_minimum_payment", "minimum_payment", "n"),
    ("feed_name", "name", "s"),
    ("feed_nickname", "nickname", "s"),
    ("feed_original_balance", "original_balance", "n"),
    ("feed_payment_due_at", "payment_due_at", "s"),
    ("feed_payoff_balance", "payoff_balance", "n"),
    ("feed_routing_number", "routing_number", "s"),
    ("feed_started_on", "started_on", "s"),
    ("feed_statement_balance", "statement_balance", "n"),
    ("feed_total_account_value", "total_account_value", "n"),
)
_COERCE: Final = {"s": _to_str, "n": _to_float, "i": _to_int, "b": _to_bool}
_ACCOUNT_FEED_C: Final = tuple((f, base, _COERCE[kind]) for f, base, kind in _ACCOUNT_FEED)


def account(a: Account, *, user: User, member: Member, institution: Institution) -> dict[str, Any]:
    """AccountResponse: all declared properties (``account_number`` is last 4 only)."""
    d: Mapping[str, Any] = a.details or {}
    out: dict[str, Any] = {}
    for k in _ACCOUNT_DETAIL_STR:
        out[k] = _to_str(d.get(k))
    for k in _ACCOUNT_DETAIL_NUM:
        out[k] = _to_float(d.get(k))
    for k in _ACCOUNT_DETAIL_INT:
        out[k] = _to_int(d.get(k))
    hidden = _to_bool(d.get("is_hidden"))
    out.update(
        account_number=a.account_number_last4,
        available_balance=_money(a.available_balance_cents),
        balance=_money(a.balance_cents),
        created_at=iso(a.created_at),
        currency_code=a.currency_code,
        guid=a.guid,
        id=a.external_id,
        institution_code=institution.code,
        institution_guid=institution.guid,
        is_closed=bool(a.is_closed),
        is_hidden=False if hidden is None else hidden,
        is_manual=False,
        member_guid=member.guid,
        member_id=member.external_id,
        member_is_managed_by_user=False,
        name=a.name,
        subtype=a.subtype,
        type=a.type,
        updated_at=iso(a.updated_at),
        user_guid=user.guid,
        user_id=user.external_id,
    )
    for feed, base, coerce in _ACCOUNT_FEED_C:
        v = d.get(feed)
        out[feed] = out[base] if v is None else coerce(v)
    return out


def account_number(
    n: AccountNumber, *, account_guid: str, member_guid: str, user_guid: str
) -> dict[str, Any]:
    """AccountNumberResponse (the full number: only after verify)."""
    return {
        "account_guid": account_guid,
        "account_number": n.account_number,
        "guid": n.guid,
        "institution_number": None,
        "loan_guarantor": None,
        "loan_reference_number": None,
        "member_guid": member_guid,
        "passed_validation": bool(n.passed_validation),
        "routing_number": n.routing_number,
        "sequence_number": None,
        "transit_number": None,
        "user_guid": user_guid,
    }


_OWNER_FIELDS: Final = (
    "address",
    "city",
    "country",
    "email",
    "first_name",
    "last_name",
    "owner_name",
    "phone",
    "postal_code",
    "state",
)


def account_owner(
    o: AccountOwner, *, account_guid: str, member_guid: str, user_guid: str
) -> dict[str, Any]:
    """AccountOwnerResponse."""
    own: Mapping[str, Any] = o.owner or {}
    out: dict[str, Any] = {
        "account_guid": account_guid,
        "guid": o.guid,
        "member_guid": member_guid,
        "user_guid": user_guid,
    }
    for k in _OWNER_FIELDS:
        out[k] = _to_str(own.get(k))
    return out


# ---------------------------------------------------------------------- transactions

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
        out.append(v if v is None or v.__class__ is bool else _to_bool(v))
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


# -------------------------------------------------------------------------- holdings

_HOLDING_NULLS: Final = (
    "coupon_yield",
    "current_price_as_of",
    "daily_change",
    "expiration",
    "face_value",
    "frequency",
    "issue_date",
    "maturity_date",
    "percentage_change",
    "purchase_price",
    "put_or_call",
    "rate",
    "strike_price",
    "term",
    "term_unit",
    "today_ugl_amount",
    "today_ugl_percentage",
    "total_ugl_amount",
    "total_ugl_percentage",
    "unvested_quantity",
    "unvested_value",
    "vested_quantity",
    "vested_value",
    "vesting_end_date",
    "vesting_start_date",
)


def _quantity(q: float | None) -> str | None:
    """MX sends quantity as a string ("5000.0"); repr keeps every digit we have."""
    f = _to_float(q)
    if f is None:
        return None
    s = repr(f)
    # Never scientific notation (1e-07, 1e+16): plain digits, same value.
    return format(Decimal(s), "f") if "e" in s else s


def holding(h: Holding, *, user_guid: str, account_guid: str, member_guid: str) -> dict[str, Any]:
    """InvestmentHoldingResponse (v20111101 declares no member_guid on it; the
    argument is accepted for symmetry with the other serializers and unused)."""
    del member_guid
    out: dict[str, Any] = dict.fromkeys(_HOLDING_NULLS)
    out.update(
        account_guid=account_guid,
        cost_basis=_to_float(h.cost_basis),
        created_at=iso(h.created_at),
        currency_code=h.currency_code,
        current_price=_to_float(h.current_price),
        description=h.description,
        guid=h.guid,
        holding_type=h.holding_type,
        market_value=_to_float(h.market_value),
        quantity=_quantity(h.quantity),
        symbol=h.symbol,
        user_guid=user_guid,
    )
    return out


# ------------------------------------------------------------------------ widget URLs


def widget_url(url: str, *, widget_type: str, user: User) -> dict[str, Any]:
    """WidgetResponse (``user_id`` is the partner's user id, null when none was set)."""
    return {"type": widget_type, "url": url, "user_id": user.external_id}


def connect_widget_url(url: str, *, user: User) -> dict[str, Any]:
    """ConnectWidgetResponse, the legacy ``POST /users/{guid}/connect_widget_url``."""
    return {"connect_widget_url": url, "guid": user.guid}


# -------------------------------------------------------------------------- webhooks
# MX's webhook bodies (reference 2.10): flat objects, timestamps as integer unix
# seconds, dates as YYYY-MM-DD. Then OpenAgg's own webhook management resources.


def unix(ts: dt.datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp())


def webhook_member(
    m: Member,
    *,
    action: str,
    user: User,
    institution: Institution,
    is_being_aggregated: bool,
    background_disabled: bool,
) -> dict[str, Any]:
    """MEMBER created / updated / deleted: MemberResponse with integer timestamps."""
    body = member(
        m,
        user=user,
        institution=institution,
        is_being_aggregated=is_being_aggregated,
        background_disabled=background_disabled,
    )
    status = body["connection_status"]
    body.update(
        action=action,
        aggregated_at=unix(m.aggregated_at),
        connection_status_id=Status(status).id if status else None,
        created_at=unix(m.created_at),
        successfully_aggregated_at=unix(m.successfully_aggregated_at),
        type="MEMBER",
    )
    return body


def webhook_connection_status(m: Member, *, user: User) -> dict[str, Any]:
    value = _status_str(m)
    if value is None:
        raise ValueError("a member without a status sends no CONNECTION_STATUS webhook")
    status = Status(value)
    return {
        "action": "CHANGED",
        "connection_status": status.value,
        "connection_status_id": status.id,
        "connection_status_message": _STATUS_MESSAGES.get(status.value),
        "member_guid": m.guid,
        "type": "CONNECTION_STATUS",
        "user_guid": user.guid,
    }


def _completed(event_type: str, m: Member, user: User, at: dt.datetime) -> dict[str, Any]:
    return {
        "action": "member_data_updated",
        "completed_at": unix(at),
        "completed_on": iso_date(at),
        "member_guid": m.guid,
        "type": event_type,
        "user_guid": user.guid,
    }


def webhook_aggregation(
    m: Member,
    *,
    user: User,
    job_guid: str,
    completed_at: dt.datetime,
    is_background: bool,
    created: int,
    updated: int,
) -> dict[str, Any]:
    body = _completed("AGGREGATION", m, user, completed_at)
    body.update(
        is_background=bool(is_background),
        job_guid=job_guid,
        transactions_created_count=int(created),
        transactions_updated_count=int(updated),
        user_id=user.external_id,
    )
    return body


def webhook_data_updated(
    event_type: str, m: Member, *, user: User, completed_at: dt.datetime
) -> dict[str, Any]:
    """BALANCE and HISTORY: the base fields only, as MX sends them."""
    return _completed(event_type, m, user, completed_at)


def webhook_accounts_updated(
    event_type: str,
    m: Member,
    *,
    user: User,
    job_guid: str,
    completed_at: dt.datetime,
    account_guids: list[str],
) -> dict[str, Any]:
    """VERIFICATION (and IDENTIFICATION, shaped the same): the accounts concerned."""
    body = _completed(event_type, m, user, completed_at)
    body.update(accounts=list(account_guids), job_guid=job_guid, user_id=user.external_id)
    return body


def webhook_endpoint(e: WebhookEndpoint, *, secret: str | None = None) -> dict[str, Any]:
    """OpenAgg extension. ``secret`` is included only in the answer that creates it."""
    body: dict[str, Any] = {
        "created_at": iso(e.created_at),
        "enabled": bool(e.enabled),
        "event_types": None if e.event_types is None else list(e.event_types),
        "guid": e.guid,
        "updated_at": iso(e.updated_at),
        "url": e.url,
    }
    if secret is not None:
        body["secret"] = secret
    return body


def webhook_attempt(a: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempted_at": iso(a.attempted_at),
        "duration_ms": int(a.duration_ms),
        "error": a.error,
        "status_code": a.status_code,
        "succeeded": bool(a.succeeded),
    }


def webhook_delivery(
    d: WebhookDelivery,
    *,
    event: WebhookEvent,
    endpoint_guid: str,
    attempts: list[WebhookAttempt],
) -> dict[str, Any]:
    """OpenAgg extension: one event to one endpoint, with every POST made so far."""
    return {
        "action": event.action,
        "attempts": [webhook_attempt(a) for a in attempts],
        "attempts_count": int(d.attempts),
        "created_at": iso(d.created_at),
        "delivered_at": iso(d.delivered_at),
        "event_type": event.event_type,
        "failed_at": iso(d.failed_at),
        "guid": d.guid,
        "last_error": d.last_error,
        "last_status_code": d.last_status_code,
        "member_guid": event.member_guid,
        "next_attempt_at": iso(d.next_attempt_at) if d.state == "pending" else None,
        "payload": event.payload,
        "status": d.state.upper(),
        "webhook_endpoint_guid": endpoint_guid,
        "webhook_id": event.guid,
    }


# ------------------------------------------------------ support tickets (OpenAgg extension)


def support_ticket(
    t: SupportTicket, *, user_guid: str | None, member_guid: str | None, institution_code: str
) -> dict[str, Any]:
    """A support ticket in MX's style. The prompts show only while the end user owes
    the answers; answers are never returned."""
    prompts = t.aai_prompts if t.status == "ADDITIONAL_LOGIN_INFO_REQUIRED" else None
    return {
        "account_guids": list(t.account_guids or []),
        "additional_login_info": [challenge(p) for p in prompts] if prompts else None,
        "cause": t.cause,
        "channel": t.channel,
        "connection_status": t.connection_status,
        "created_at": iso(t.created_at),
        "description": t.description,
        "estimated_resolution_at": iso(t.estimated_resolution_at),
        "guid": t.guid,
        "institution_code": institution_code,
        "member_guid": member_guid,
        "queue_position": t.queue_position,
        "report_count": int(t.report_count),
        "resolved_at": iso(t.resolved_at),
        "special_instructions": t.special_instructions,
        "status": t.status,
        "updated_at": iso(t.updated_at),
        "user_guid": user_guid,
    }


def support_ticket_event(e: SupportTicketEvent) -> dict[str, Any]:
    """One line of a ticket's history: who, when, what, from which status to which."""
    return {
        "action": e.action,
        "actor": {"id": e.actor_id, "name": e.actor_name, "type": e.actor_type},
        "channel": e.channel,
        "client_address": e.client_address,
        "created_at": iso(e.at),
        "from_status": e.from_status,
        "note": e.note,
        "request_id": e.request_id,
        "to_status": e.to_status,
    }


def webhook_support_ticket(
    t: SupportTicket,
    *,
    previous_status: str | None,
    user_guid: str | None,
    member_guid: str | None,
    institution_code: str,
) -> dict[str, Any]:
    """SUPPORT_TICKET: a ticket's status changed. Free text (description, special
    instructions) stays out of the outbox: the client wrote it and can read it."""
    return {
        "action": "CREATED" if previous_status is None else "STATUS_CHANGED",
        "type": "SUPPORT_TICKET",
        "estimated_resolution_at": iso(t.estimated_resolution_at),
        "institution_code": institution_code,
        "member_guid": member_guid,
        "previous_status": previous_status,
        "queue_position": t.queue_position,
        "report_count": int(t.report_count),
        "resolved_at": iso(t.resolved_at),
        "status": t.status,
        "support_ticket_guid": t.guid,
        "updated_at": iso(t.updated_at),
        "user_guid": user_guid,
    }
