"""AccountResponse, AccountNumberResponse and AccountOwnerResponse."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from openagg.db.models import Account, AccountNumber, AccountOwner, Institution, Member, User
from openagg.wire.scalars import iso, money, to_bool, to_float, to_int, to_str

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
_COERCE: Final = {"s": to_str, "n": to_float, "i": to_int, "b": to_bool}
_ACCOUNT_FEED_C: Final = tuple((f, base, _COERCE[kind]) for f, base, kind in _ACCOUNT_FEED)


def account(a: Account, *, user: User, member: Member, institution: Institution) -> dict[str, Any]:
    """AccountResponse: all declared properties (``account_number`` is last 4 only)."""
    d: Mapping[str, Any] = a.details or {}
    out: dict[str, Any] = {}
    for k in _ACCOUNT_DETAIL_STR:
        out[k] = to_str(d.get(k))
    for k in _ACCOUNT_DETAIL_NUM:
        out[k] = to_float(d.get(k))
    for k in _ACCOUNT_DETAIL_INT:
        out[k] = to_int(d.get(k))
    hidden = to_bool(d.get("is_hidden"))
    out.update(
        account_number=a.account_number_last4,
        available_balance=money(a.available_balance_cents),
        balance=money(a.balance_cents),
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
        out[k] = to_str(own.get(k))
    return out
