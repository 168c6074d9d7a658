"""The wire serializers against MX's v20111101 OpenAPI schemas.

Every serializer must emit exactly the declared properties, with the declared JSON
types, ``null`` only where the schema allows it. The schemas come from the facts
committed in ``tests/compat/mx_facts.json`` (extracted from MX's file), so these
tests run on any clone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from openagg import wire
from openagg.db.models import (
    Account,
    AccountNumber,
    AccountOwner,
    Holding,
    Institution,
    Member,
    Transaction,
    User,
)
from openagg.domain.statuses import NEEDS_NEW_CREDENTIALS, Status
from tests.compat.extract_mx_facts import load_facts

T0 = dt.datetime(2024, 12, 20, 18, 52, 36, 123456, tzinfo=dt.UTC)
T1 = dt.datetime(2024, 12, 21, 1, 2, 3, tzinfo=dt.UTC)

# ------------------------------------------------------------------ spec resolution

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """MX's schemas, shaped as in the OpenAPI file so ``$ref`` paths resolve."""
    return {"components": {"schemas": load_facts()["schemas"]}}


def resolve(spec: dict[str, Any], node: Schema) -> Schema:
    """Follow ``$ref`` and merge ``allOf`` (properties unioned) recursively at the top."""
    while "$ref" in node:
        ref: str = node["$ref"]
        assert ref.startswith("#/components/schemas/"), ref
        node = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    if "allOf" in node:
        merged: Schema = {"type": "object", "properties": {}}
        for part in node["allOf"]:
            sub = resolve(spec, part)
            merged["properties"].update(sub.get("properties", {}))
        for k, v in node.items():
            if k not in ("allOf", "properties"):
                merged[k] = v
        merged["properties"].update(node.get("properties", {}))
        return merged
    return node


def schema(spec: dict[str, Any], name: str) -> Schema:
    return resolve(spec, {"$ref": f"#/components/schemas/{name}"})


def transaction_schema(spec: dict[str, Any]) -> Schema:
    body = schema(spec, "TransactionsResponseBodyIncludes")
    return resolve(spec, body["properties"]["transactions"]["items"])


def holding_schema(spec: dict[str, Any]) -> Schema:
    body = schema(spec, "InvestmentHoldingsResponseBody")
    return resolve(spec, body["properties"]["investment_holdings"]["items"])


def declared(s: Schema) -> set[str]:
    return set(s["properties"])


def type_ok(value: Any, declared_type: str | None) -> bool:
    if declared_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if declared_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if declared_type == "boolean":
        return isinstance(value, bool)
    if declared_type == "string":
        return isinstance(value, str)
    if declared_type == "array":
        return isinstance(value, list)
    if declared_type == "object":
        return isinstance(value, dict)
    return True  # untyped


def check(
    spec: dict[str, Any],
    s: Schema,
    obj: Any,
    path: str = "$",
    *,
    omit: frozenset[str] = frozenset(),
) -> None:
    """Assert ``obj`` matches schema ``s`` exactly (keys, JSON types, nullability, enums).

    ``None`` is rejected only where the schema says ``nullable: false`` explicitly
    (AccountResponse.created_at, MemberResponse.institution_guid).
    """
    s = resolve(spec, s)
    if obj is None:
        assert s.get("nullable") is not False, f"{path} is null but not nullable"
        return
    t = s.get("type")
    assert type_ok(obj, t), f"{path}: {obj!r} is not a JSON {t}"
    if "enum" in s:
        assert obj in s["enum"], f"{path}: {obj!r} not in {s['enum']}"
    if t == "object" and "properties" in s:
        assert isinstance(obj, dict)
        want = declared(s) - omit
        assert set(obj) == want, (
            f"{path}: missing {sorted(want - set(obj))}, undeclared {sorted(set(obj) - want)}"
        )
        for k, v in obj.items():
            check(spec, s["properties"][k], v, f"{path}.{k}")
    elif t == "array" and "items" in s:
        assert isinstance(obj, list)
        for i, v in enumerate(obj):
            check(spec, s["items"], v, f"{path}[{i}]")


def assert_json_roundtrip(obj: Any) -> None:
    """Everything must be plain JSON (no datetimes, Decimals, enums...)."""
    assert json.loads(json.dumps(obj)) == obj


# ----------------------------------------------------------------------- model builders


def make_user(**kw: Any) -> User:
    fields: dict[str, Any] = dict(
        id=1,
        guid="USR-11111111-1111-1111-1111-111111111111",
        client_id=1,
        external_id="partner-user-1",
        email="a@example.com",
        is_disabled=False,
        metadata_='{"first_name": "Steven"}',
        created_at=T0,
        updated_at=T1,
    )
    fields.update(kw)
    return User(**fields)


def make_institution(**kw: Any) -> Institution:
    fields: dict[str, Any] = dict(
        id=1,
        code="mxbank",
        guid="INS-22222222-2222-2222-2222-222222222222",
        name="MX Bank",
        connector="sandbox",
        data_source="default",
        is_retired=False,
        throttle_exempt=True,
        profile={
            "url": "https://www.mxbank.com",
            "small_logo_url": "https://example.com/50.png",
            "medium_logo_url": "https://example.com/100.png",
            "forgot_password_url": "https://example.com/fp",
            "forgot_username_url": "https://example.com/fu",
            "trouble_signing_in_url": "https://example.com/t",
            "instructional_text": 'Use <a href="https://x">this</a>.',
            "instructional_text_steps": ["Step 1", "Step 2"],
            "iso_country_code": "US",
            "supports_account_identification": True,
            "supports_account_statement": False,
            "supports_account_verification": True,
            "supports_oauth": False,
            "supports_tax_document": False,
            "supports_transaction_history": True,
            "guid": "must-not-leak",
        },
        credentials=[],
    )
    fields.update(kw)
    return Institution(**fields)


CHALLENGES: list[dict[str, Any]] = [
    {
        "guid": "CRD-aaaa",
        "label": "What city were you born in?",
        "type": "TEXT",
        "field_name": None,
        "image_data": None,
        "options": [],
    },
    {
        "guid": "CRD-bbbb",
        "label": "Pick a colour",
        "type": "OPTIONS",
        "field_name": "colour",
        "image_data": None,
        "options": [
            {"label": "Red", "value": "red", "guid": "CRD-o1", "data_uri": None},
            {"label": "Blue", "value": "blue", "guid": "CRD-o2", "data_uri": None},
        ],
    },
    {
        "guid": "CRD-cccc",
        "label": "Pick your image",
        "type": "IMAGE_OPTIONS",
        "field_name": None,
        "image_data": None,
        "options": [
            {"label": "A", "value": "a", "guid": "CRD-i1", "data_uri": "data:image/png;base64,AA"},
        ],
    },
    {
        "guid": "CRD-dddd",
        "label": "Who is this?",
        "type": "IMAGE_DATA",
        "field_name": None,
        "image_data": "data:image/png;base64,BB",
        "options": [],
    },
]


def make_member(**kw: Any) -> Member:
    fields: dict[str, Any] = dict(
        id=1,
        guid="MBR-33333333-3333-3333-3333-333333333333",
        client_id=1,
        user_id=1,
        institution_id=1,
        external_id="partner-member-1",
        name=None,
        metadata_="meta",
        is_oauth=False,
        use_cases=["PFM"],
        connection_status="CONNECTED",
        status_changed_at=T0,
        background_aggregation_is_disabled=None,
        aggregated_at=T0,
        successfully_aggregated_at=T1,
        last_job_succeeded_at=T1,
        is_authenticated=True,
        has_processed_accounts=True,
        has_processed_transactions=False,
        has_processed_account_numbers=True,
        consecutive_credential_failures=0,
        challenges=None,
        created_at=T0,
        updated_at=T1,
    )
    fields.update(kw)
    return Member(**fields)


FULL_DETAILS: dict[str, Any] = {
    "apr": 21,  # int in details -> float on the wire (number)
    "apy": 1.5,
    "available_credit": 900.25,
    "credit_limit": "1000",  # numeric string -> float
    "day_payment_is_due": 20.0,  # float -> int (integer)
    "death_benefit": "1000",
    "annuity_term_year": 2048,
    "balance_set_by": 1,
    "payment_due_at": "2025-02-13T17:57:37Z",
    "matures_on": dt.date(2030, 1, 1),
    "started_on": dt.datetime(2015, 10, 13, 17, 57, 37, tzinfo=dt.UTC),
    "nickname": "My Checking",
    "metadata": "some metadata",
    "routing_number": "068899990",
    "is_hidden": True,
    "federal_insurance_status": "INSURED",
    "account_ownership": "INDIVIDUAL",
    "statement_balance": 1000.5,
    "minimum_payment": 25,
    "feed_account_type": 1,
}


def make_account(**kw: Any) -> Account:
    fields: dict[str, Any] = dict(
        id=1,
        guid="ACT-44444444-4444-4444-4444-444444444444",
        client_id=1,
        user_id=1,
        member_id=1,
        external_id="acct-ext-1",
        name="Checking",
        type="CHECKING",
        subtype="NONE",
        account_number_last4="5366",
        currency_code="USD",
        balance_cents=1234567,
        available_balance_cents=-1,
        details=dict(FULL_DETAILS),
        is_closed=False,
        created_at=T0,
        updated_at=T1,
    )
    fields.update(kw)
    return Account(**fields)


def make_transaction(**kw: Any) -> Transaction:
    fields: dict[str, Any] = dict(
        id=1,
        guid="TRN-55555555-5555-5555-5555-555555555555",
        client_id=1,
        user_id=1,
        member_id=1,
        account_id=1,
        external_id="txn-ext-1",
        amount_cents=6111,
        type="DEBIT",
        status="POSTED",
        date=dt.date(2024, 12, 20),
        transacted_at=T0,
        posted_at=T1,
        description="MX Technologies",
        original_description="MX TECHNOLOGIES PAYMENT",
        memo=None,
        category="Groceries",
        category_guid="CAT-1",
        top_level_category="Food & Dining",
        top_level_category_guid="CAT-0",
        merchant_guid="MCH-66666666-6666-6666-6666-666666666666",
        merchant_category_code=5411,
        check_number_string=None,
        currency_code="USD",
        flags={"is_expense": True, "is_recurring": True, "is_subscription": True},
        created_at=T0,
        updated_at=T1,
    )
    fields.update(kw)
    return Transaction(**fields)


def make_holding(**kw: Any) -> Holding:
    fields: dict[str, Any] = dict(
        id=1,
        guid="HOL-77777777-7777-7777-7777-777777777777",
        client_id=1,
        user_id=1,
        member_id=1,
        account_id=1,
        external_id="hol-ext-1",
        symbol="DEF",
        description="Guggenheim Defensive Equity ETF",
        holding_type="MUTUAL_FUND",
        currency_code="USD",
        quantity=12.5,
        cost_basis=827,
        current_price=15.0,
        market_value=989.5,
        created_at=T0,
        updated_at=T1,
    )
    fields.update(kw)
    return Holding(**fields)


def tx_kwargs() -> dict[str, Any]:
    return dict(
        user_guid="USR-1",
        user_id=None,
        account_guid="ACT-1",
        account_id="acct-ext-1",
        member_guid="MBR-1",
    )


# --------------------------------------------------------------------------- scalars


def test_iso_formats_utc_without_fraction() -> None:
    assert wire.iso(T0) == "2024-12-20T18:52:36Z"
    assert wire.iso(None) is None
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert wire.iso(dt.datetime(2024, 1, 1, 1, 0, tzinfo=plus2)) == "2023-12-31T23:00:00Z"


def test_iso_date() -> None:
    assert wire.iso_date(dt.date(2024, 2, 3)) == "2024-02-03"
    assert wire.iso_date(None) is None
    minus5 = dt.timezone(dt.timedelta(hours=-5))
    assert wire.iso_date(dt.datetime(2024, 2, 3, 22, 0, tzinfo=minus5)) == "2024-02-04"


@pytest.mark.parametrize(
    ("page", "per_page", "total", "pages"),
    [
        # MX reports total_pages 0 for an empty collection (ceil(0 / n)).
        (1, 25, 0, 0),
        (1, 25, 1, 1),
        (1, 25, 25, 1),
        (2, 25, 26, 2),
        (3, 10, 1001, 101),
        (7, 1000, 1000, 1),
    ],
)
def test_pagination_math(page: int, per_page: int, total: int, pages: int) -> None:
    p = wire.pagination(page, per_page, total)
    assert p == {
        "current_page": page,
        "per_page": per_page,
        "total_entries": total,
        "total_pages": pages,
    }
    assert all(type(v) is int for v in p.values())


def test_pagination_rejects_non_positive_per_page() -> None:
    with pytest.raises(ValueError):
        wire.pagination(1, 0, 5)


def test_pagination_shape(spec: dict[str, Any]) -> None:
    check(spec, schema(spec, "PaginationResponse"), wire.pagination(1, 25, 3))


# ---------------------------------------------------------------------- users/institutions


def test_user(spec: dict[str, Any]) -> None:
    out = wire.user(make_user())
    check(spec, schema(spec, "UserResponse"), out)
    assert out["id"] == "partner-user-1"
    assert out["metadata"] == '{"first_name": "Steven"}'
    bare = wire.user(make_user(external_id=None, email=None, metadata_=None))
    check(spec, schema(spec, "UserResponse"), bare)


def test_institution(spec: dict[str, Any]) -> None:
    out = wire.institution(make_institution())
    check(spec, schema(spec, "InstitutionResponse"), out)
    assert "guid" not in out
    assert out["is_disabled_by_client"] is False
    assert out["code"] == "mxbank"
    assert out["instructional_text_steps"] == ["Step 1", "Step 2"]
    assert out["supports_account_verification"] is True
    assert_json_roundtrip(out)


def test_institution_with_empty_profile(spec: dict[str, Any]) -> None:
    out = wire.institution(make_institution(profile={}))
    check(spec, schema(spec, "InstitutionResponse"), out)
    # iso_country_code is the one declared non-nullable field (no nullable: true).
    assert isinstance(out["iso_country_code"], str)


def test_credential(spec: dict[str, Any]) -> None:
    c = {
        "guid": "CRD-1",
        "label": "Username",
        "field_name": "LOGIN",
        "field_type": "TEXT",
        "type": "TEXT",
        "display_order": 1.0,
    }
    out = wire.credential(c)
    check(spec, schema(spec, "CredentialResponse"), out)
    assert out["display_order"] == 1 and type(out["display_order"]) is int


# ------------------------------------------------------------------------- challenges


@pytest.mark.parametrize("raw", CHALLENGES, ids=lambda c: c["type"])
def test_challenge(spec: dict[str, Any], raw: dict[str, Any]) -> None:
    out = wire.challenge(raw)
    check(spec, schema(spec, "ChallengeResponse"), out)
    if raw["type"] == "OPTIONS":
        assert out["image_options"] == []
        assert [set(o) for o in out["options"]] == [declared(schema(spec, "OptionResponse"))] * 2
        assert out["options"][0] == {"guid": "CRD-o1", "label": "Red", "value": "red"}
    elif raw["type"] == "IMAGE_OPTIONS":
        assert out["options"] == []
        assert set(out["image_options"][0]) == declared(schema(spec, "ImageOptionResponse"))
        assert out["image_options"][0]["data_uri"] == "data:image/png;base64,AA"
    else:
        assert out["options"] == [] and out["image_options"] == []


# ---------------------------------------------------------------------------- members


@pytest.mark.parametrize("status", [None, *[s.value for s in Status]])
def test_member(spec: dict[str, Any], status: str | None) -> None:
    m = make_member(connection_status=status)
    out = wire.member(
        m,
        user=make_user(),
        institution=make_institution(),
        is_being_aggregated=status == "CHALLENGED",
        background_disabled=False,
    )
    check(spec, schema(spec, "MemberResponse"), out)
    assert out["most_recent_job_guid"] is None
    assert out["most_recent_job_detail_text"] is None
    assert out["most_recent_job_detail_code"] is None
    assert out["needs_updated_credentials"] is (
        status is not None and Status(status) in NEEDS_NEW_CREDENTIALS
    )
    assert (out["connection_status_message"] is None) is (status is None)
    assert out["institution_guid"] == "INS-22222222-2222-2222-2222-222222222222"
    assert out["name"] == "MX Bank"  # falls back to the institution's name
    assert out["is_managed_by_user"] is False and out["is_manual"] is False
    assert out["oauth_window_uri"] is None
    assert out["aggregated_at"] == "2024-12-20T18:52:36Z"
    assert_json_roundtrip(out)


def test_member_variants(spec: dict[str, Any]) -> None:
    m = make_member(
        name="My bank",
        external_id=None,
        metadata_=None,
        use_cases=None,
        aggregated_at=None,
        successfully_aggregated_at=None,
        connection_status=Status.DENIED,  # an enum member works as well as its string
    )
    out = wire.member(
        m,
        user=make_user(external_id=None),
        institution=make_institution(),
        is_being_aggregated=False,
        background_disabled=True,
    )
    check(spec, schema(spec, "MemberResponse"), out)
    assert out["name"] == "My bank"
    assert out["connection_status"] == "DENIED"
    assert out["needs_updated_credentials"] is True
    assert out["background_aggregation_is_disabled"] is True
    out2 = wire.member(
        make_member(use_cases=["PFM", "BOGUS", "MONEY_MOVEMENT"]),
        user=make_user(),
        institution=make_institution(),
        is_being_aggregated=False,
        background_disabled=False,
    )
    assert out2["use_cases"] == ["PFM", "MONEY_MOVEMENT"]


def test_member_status_challenged(spec: dict[str, Any]) -> None:
    m = make_member(connection_status="CHALLENGED", challenges=CHALLENGES)
    out = wire.member_status(m, is_being_aggregated=True)
    check(spec, schema(spec, "MemberStatusResponse"), out)
    assert [c["guid"] for c in out["challenges"]] == [c["guid"] for c in CHALLENGES]
    assert out["has_processed_transactions"] is False
    assert out["is_being_aggregated"] is True


@pytest.mark.parametrize("status", ["CONNECTED", "DENIED", None])
def test_member_status_not_challenged(spec: dict[str, Any], status: str | None) -> None:
    # Stale challenges on the row must not leak once the member left CHALLENGED.
    m = make_member(connection_status=status, challenges=CHALLENGES)
    out = wire.member_status(m, is_being_aggregated=False)
    check(spec, schema(spec, "MemberStatusResponse"), out)
    assert out["challenges"] == []


# --------------------------------------------------------------------------- accounts


def account_out(a: Account) -> dict[str, Any]:
    return wire.account(a, user=make_user(), member=make_member(), institution=make_institution())


def test_account_full(spec: dict[str, Any]) -> None:
    s = schema(spec, "AccountResponse")
    assert len(declared(s)) > 100
    out = account_out(make_account())
    check(spec, s, out)
    assert_json_roundtrip(out)
    assert out["id"] == "acct-ext-1"
    assert out["account_number"] == "5366"
    assert out["balance"] == 12345.67
    assert out["available_balance"] == -0.01
    assert out["apr"] == 21.0 and type(out["apr"]) is float
    assert out["credit_limit"] == 1000.0 and type(out["credit_limit"]) is float
    assert out["day_payment_is_due"] == 20 and type(out["day_payment_is_due"]) is int
    assert out["death_benefit"] == 1000 and type(out["death_benefit"]) is int
    assert out["payment_due_at"] == "2025-02-13T17:57:37Z"
    assert out["matures_on"] == "2030-01-01"
    assert out["started_on"] == "2015-10-13T17:57:37Z"
    assert out["is_hidden"] is True
    assert out["is_manual"] is False and out["member_is_managed_by_user"] is False
    assert out["member_id"] == "partner-member-1"
    assert out["institution_code"] == "mxbank"
    assert out["created_at"] == "2024-12-20T18:52:36Z"
    # feed_* mirror the non-feed values (documented choice in wire/accounts.py)...
    assert out["feed_balance"] == out["balance"]
    assert out["feed_name"] == "Checking"
    assert out["feed_is_closed"] is False
    assert out["feed_day_payment_is_due"] == 20
    # ...except the numeric type codes, which only a connector can supply.
    assert out["feed_account_type"] == 1 and out["feed_account_subtype"] is None


def test_account_empty_details(spec: dict[str, Any]) -> None:
    a = make_account(
        details={},
        name=None,
        type=None,
        subtype=None,
        account_number_last4=None,
        currency_code=None,
        balance_cents=None,
        available_balance_cents=None,
    )
    out = account_out(a)
    check(spec, schema(spec, "AccountResponse"), out)
    assert out["created_at"] is not None
    assert out["balance"] is None and out["feed_balance"] is None
    assert out["is_hidden"] is False


def test_account_bad_detail_values_become_null(spec: dict[str, Any]) -> None:
    a = make_account(
        details={"apr": "n/a", "day_payment_is_due": 20.5, "credit_limit": True, "apy": "nan"}
    )
    out = account_out(a)
    check(spec, schema(spec, "AccountResponse"), out)
    assert out["apr"] is None
    assert out["day_payment_is_due"] is None
    assert out["credit_limit"] is None
    assert out["apy"] is None


def test_account_number(spec: dict[str, Any]) -> None:
    n = AccountNumber(
        id=1,
        guid="ACN-1",
        client_id=1,
        account_id=1,
        member_id=1,
        account_number="1234567890",
        routing_number="068899990",
        passed_validation=True,
    )
    out = wire.account_number(n, account_guid="ACT-1", member_guid="MBR-1", user_guid="USR-1")
    check(spec, schema(spec, "AccountNumberResponse"), out)
    assert out["account_number"] == "1234567890"


def test_account_owner(spec: dict[str, Any]) -> None:
    o = AccountOwner(
        id=1,
        guid="ACO-1",
        client_id=1,
        account_id=1,
        member_id=1,
        owner={
            "owner_name": "Donnie Darko",
            "first_name": "Donnie",
            "last_name": "Darko",
            "address": "123 This Way",
            "city": "Middlesex",
            "state": "VA",
            "postal_code": "00000-0000",
            "country": "US",
            "email": "d@darko.co",
            "phone": None,
        },
    )
    out = wire.account_owner(o, account_guid="ACT-1", member_guid="MBR-1", user_guid="USR-1")
    check(spec, schema(spec, "AccountOwnerResponse"), out)
    assert out["owner_name"] == "Donnie Darko"
    sparse = AccountOwner(id=2, guid="ACO-2", client_id=1, account_id=2, member_id=1, owner={})
    check(
        spec,
        schema(spec, "AccountOwnerResponse"),
        wire.account_owner(sparse, account_guid="A", member_guid="M", user_guid="U"),
    )


# ----------------------------------------------------------------------- transactions

INCLUDE_KEYS = {
    "repeating_transactions": "repeating_transaction",
    "merchants": "merchant",
    "classifications": "classification",
    "geolocations": "geolocation",
}


def test_transaction_schema_is_the_list_item(spec: dict[str, Any]) -> None:
    s = transaction_schema(spec)
    assert set(INCLUDE_KEYS.values()) <= declared(s)
    assert frozenset(INCLUDE_KEYS) == wire.TRANSACTION_INCLUDES


def test_transaction_without_includes(spec: dict[str, Any]) -> None:
    s = transaction_schema(spec)
    t = make_transaction()
    out = wire.transaction(t, **tx_kwargs())
    check(spec, s, out, omit=frozenset(INCLUDE_KEYS.values()))
    assert not set(INCLUDE_KEYS.values()) & set(out)
    assert out["id"] == "txn-ext-1"
    assert out["amount"] == 61.11
    assert out["date"] == "2024-12-20"
    assert out["transacted_at"] == "2024-12-20T18:52:36Z"
    assert out["merchant_category_code"] == 5411
    assert out["is_expense"] is True
    assert out["is_bill_pay"] is False
    assert out["is_international"] is None
    assert out["latitude"] is None and out["longitude"] is None
    assert out["member_is_managed_by_user"] is False and out["is_manual"] is False
    assert_json_roundtrip(out)


def test_transaction_flag_defaults(spec: dict[str, Any]) -> None:
    out = wire.transaction(make_transaction(flags={}), **tx_kwargs())
    check(spec, transaction_schema(spec), out, omit=frozenset(INCLUDE_KEYS.values()))
    assert out["is_recurring"] is False and out["is_international"] is None
    out = wire.transaction(make_transaction(flags={"is_international": True}), **tx_kwargs())
    assert out["is_international"] is True


def test_transaction_all_includes(spec: dict[str, Any]) -> None:
    s = transaction_schema(spec)
    out = wire.transaction(make_transaction(), **tx_kwargs(), includes=wire.TRANSACTION_INCLUDES)
    check(spec, s, out)
    assert set(out) == declared(s)
    assert set(out["geolocation"]) == {"city", "country", "state", "postal code"}
    assert "postal code" in out["geolocation"]
    assert out["merchant"]["guid"] == "MCH-66666666-6666-6666-6666-666666666666"
    assert out["classification"]["parent_class"] == "Spend"
    assert out["classification"]["guid"].startswith("MNC-")
    rt = out["repeating_transaction"]
    assert rt["repeating_transaction_type"] == "SUBSCRIPTION"
    assert rt["recurrence_type"] is None
    assert rt["guid"].startswith("RPT-")
    assert_json_roundtrip(out)


@pytest.mark.parametrize("include", sorted(INCLUDE_KEYS))
def test_transaction_single_include(spec: dict[str, Any], include: str) -> None:
    s = transaction_schema(spec)
    out = wire.transaction(make_transaction(), **tx_kwargs(), includes=frozenset({include}))
    others = frozenset(v for k, v in INCLUDE_KEYS.items() if k != include)
    check(spec, s, out, omit=others)
    assert INCLUDE_KEYS[include] in out


def test_transaction_include_nulls(spec: dict[str, Any]) -> None:
    t = make_transaction(merchant_guid=None, flags={"is_recurring": False})
    out = wire.transaction(t, **tx_kwargs(), includes=wire.TRANSACTION_INCLUDES)
    check(spec, transaction_schema(spec), out)
    assert out["merchant"] is None
    assert out["repeating_transaction"] is None


@pytest.mark.parametrize(
    ("flags", "top", "kind"),
    [
        ({"is_recurring": True}, "Bills & Utilities", "BILL"),
        ({"is_recurring": True, "is_subscription": True}, "Entertainment", "SUBSCRIPTION"),
        ({"is_recurring": True, "is_income": True}, "Income", "INCOME"),
    ],
)
def test_repeating_transaction_type(
    spec: dict[str, Any], flags: dict[str, Any], top: str, kind: str
) -> None:
    t = make_transaction(flags=flags, top_level_category=top)
    out = wire.transaction(t, **tx_kwargs(), includes=frozenset({"repeating_transactions"}))
    assert out["repeating_transaction"]["repeating_transaction_type"] == kind
    enum = transaction_schema(spec)["properties"]["repeating_transaction"]["properties"]
    assert kind in enum["repeating_transaction_type"]["enum"]


@pytest.mark.parametrize(
    ("top", "ttype", "parent"),
    [
        ("Income", "CREDIT", "Income"),
        ("Transfer", "DEBIT", "Transfer"),
        ("Fees & Charges", "DEBIT", "Fees"),
        ("Investments", "DEBIT", "Investment"),
        ("Food & Dining", "DEBIT", "Spend"),
        ("Shopping", "CREDIT", "Deposit"),
        (None, "DEBIT", "Spend"),
        (None, "CREDIT", "Deposit"),
        (None, "WEIRD", "Other"),
    ],
)
def test_classification_parent_class(
    spec: dict[str, Any], top: str | None, ttype: str, parent: str
) -> None:
    sdk_enum = set(
        transaction_schema(spec)["properties"]["classification"]["properties"]["parent_class"][
            "enum"
        ]
    )
    assert sdk_enum == wire.CLASSIFICATION_PARENT_CLASSES
    t = make_transaction(top_level_category=top, type=ttype)
    out = wire.transaction(t, **tx_kwargs(), includes=frozenset({"classifications"}))
    assert out["classification"]["parent_class"] == parent
    assert out["classification"]["parent_class"] in sdk_enum


def test_money_is_exact() -> None:
    for cents, text in [
        (1234567, "12345.67"),
        (1, "0.01"),
        (10, "0.1"),
        (100, "1.0"),
        (-1999, "-19.99"),
        (999999999999, "9999999999.99"),
        (0, "0.0"),
    ]:
        out = wire.transaction(make_transaction(amount_cents=cents), **tx_kwargs())
        assert type(out["amount"]) is float
        assert json.dumps(out["amount"]) == text
        assert orjson.dumps(out["amount"]).decode() == text
        assert round(out["amount"] * 100) == cents


# --------------------------------------------------------------------------- holdings


def holding_out(h: Holding) -> dict[str, Any]:
    return wire.holding(h, user_guid="USR-1", account_guid="ACT-1", member_guid="MBR-1")


def test_holding(spec: dict[str, Any]) -> None:
    out = holding_out(make_holding())
    check(spec, holding_schema(spec), out)
    assert out["quantity"] == "12.5"
    assert out["cost_basis"] == 827.0 and type(out["cost_basis"]) is float
    assert_json_roundtrip(out)


@pytest.mark.parametrize(
    ("qty", "text"),
    [
        (5000.0, "5000.0"),
        (12.5, "12.5"),
        (1e-7, "0.0000001"),
        (1e16, "10000000000000000"),
        (None, None),
    ],
)
def test_holding_quantity_is_a_string(
    spec: dict[str, Any], qty: float | None, text: str | None
) -> None:
    out = holding_out(make_holding(quantity=qty, cost_basis=None, market_value=None))
    check(spec, holding_schema(spec), out)
    assert out["quantity"] == text


# ----------------------------------------------------------------------- parse_includes


def test_parse_includes() -> None:
    assert wire.parse_includes(None) == frozenset()
    assert wire.parse_includes("") == frozenset()
    assert wire.parse_includes("merchants") == frozenset({"merchants"})
    assert wire.parse_includes("merchants, classifications,") == frozenset(
        {"merchants", "classifications"}
    )
    assert wire.parse_includes(",".join(sorted(INCLUDE_KEYS))) == wire.TRANSACTION_INCLUDES


@pytest.mark.parametrize("bad", ["merchant", "merchants,bogus", "Merchants"])
def test_parse_includes_rejects_unknown(bad: str) -> None:
    with pytest.raises(ValueError) as exc:
        wire.parse_includes(bad)
    unknown = next(p.strip() for p in bad.split(",") if p.strip() not in INCLUDE_KEYS)
    assert unknown in str(exc.value)


# ------------------------------------------------------------------- spec coverage meta


def test_checker_catches_mistakes(spec: dict[str, Any]) -> None:
    """The checker itself must fail on the errors it exists to catch."""
    s = schema(spec, "PaginationResponse")
    good = wire.pagination(1, 25, 3)
    bad_cases: list[Mapping[str, Any]] = [
        {**good, "total_pages": 1.0},
        {**good, "total_pages": True},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "per_page"},
    ]
    for bad in bad_cases:
        with pytest.raises(AssertionError):
            check(spec, s, bad)
    with pytest.raises(AssertionError):
        check(spec, schema(spec, "MemberResponse")["properties"]["institution_guid"], None)
