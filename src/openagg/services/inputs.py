"""Request bodies as MX's spec declares them (the inputs of the use cases). Unknown keys
are refused with a 400 that names them, so a typo never silently does nothing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


# Length limits on what is stored. MX's specification sets none; these fit the
# columns, and no string in a body is longer than TEXT_MAX (a 400 names the field).
TEXT_MAX = 4096
ID_MAX = 255  # ids the app chooses (user, member)
GUID_MAX = 64  # guids and codes we made
EMAIL_MAX = 320
CREDENTIAL_MAX = 1024  # one credential value or MFA answer
URL_MAX = 2048
LIST_MAX = 20  # credentials or answers in one body


class Strict(BaseModel):
    # str_max_length: the default for every string field; a field may set less.
    model_config = ConfigDict(extra="forbid", str_max_length=TEXT_MAX)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL cannot store NUL in text and SQLite would: refuse it on both.
        if _has_nul(data):
            raise ValueError("text may not contain NUL (\\u0000) characters")
        return data


class UserFields(Strict):
    email: StrictStr | None = Field(default=None, max_length=EMAIL_MAX)
    id: StrictStr | None = Field(default=None, max_length=ID_MAX)
    is_disabled: StrictBool | None = None
    metadata: StrictStr | None = None


class UserBody(Strict):
    user: UserFields


class CredentialValue(Strict):
    guid: StrictStr = Field(min_length=1, max_length=GUID_MAX)
    value: StrictStr = Field(max_length=CREDENTIAL_MAX)


UseCase = Literal["MONEY_MOVEMENT", "PFM"]


class MemberCreateFields(Strict):
    institution_code: StrictStr = Field(min_length=1, max_length=GUID_MAX)
    credentials: list[CredentialValue] | None = Field(default=None, max_length=LIST_MAX)
    id: StrictStr | None = Field(default=None, max_length=ID_MAX)
    metadata: StrictStr | None = None
    is_oauth: StrictBool | None = None
    skip_aggregation: StrictBool | None = None
    background_aggregation_is_disabled: StrictBool | None = None
    use_cases: list[UseCase] | None = None


class MemberCreateBody(Strict):
    member: MemberCreateFields
    client_redirect_url: StrictStr | None = Field(default=None, max_length=URL_MAX)
    enable_app2app: StrictBool | None = None
    referral_source: Literal["BROWSER", "APP"] | None = None
    ui_message_webview_url_scheme: StrictStr | None = Field(default=None, max_length=GUID_MAX)


class MemberUpdateFields(Strict):
    credentials: list[CredentialValue] | None = Field(default=None, max_length=LIST_MAX)
    id: StrictStr | None = Field(default=None, max_length=ID_MAX)
    metadata: StrictStr | None = None
    skip_aggregation: StrictBool | None = None
    background_aggregation_is_disabled: StrictBool | None = None
    use_cases: list[UseCase] | None = None


class MemberUpdateBody(Strict):
    member: MemberUpdateFields


class ResumeFields(Strict):
    challenges: list[CredentialValue] = Field(min_length=1, max_length=LIST_MAX)


class ResumeBody(Strict):
    member: ResumeFields


# --- managed data (MX's partner-managed members, accounts and transactions) ---------

Number = StrictInt | StrictFloat


class ManagedMemberCreateFields(Strict):
    institution_code: StrictStr = Field(min_length=1)
    id: StrictStr | None = None
    metadata: StrictStr | None = None
    name: StrictStr | None = None


class ManagedMemberCreateBody(Strict):
    member: ManagedMemberCreateFields


class ManagedMemberUpdateFields(Strict):
    id: StrictStr | None = None
    metadata: StrictStr | None = None
    name: StrictStr | None = None


class ManagedMemberUpdateBody(Strict):
    member: ManagedMemberUpdateFields


class ManagedAccountFields(Strict):
    """ManagedAccountUpdateRequest: every field optional."""

    account_number: StrictStr | None = None
    apr: Number | None = None
    apy: Number | None = None
    available_balance: Number | None = None
    available_credit: Number | None = None
    balance: Number | None = None
    cash_surrender_value: Number | None = None
    credit_limit: Number | None = None
    currency_code: StrictStr | None = Field(default=None, min_length=3, max_length=3)
    day_payment_is_due: StrictInt | None = None
    death_benefit: StrictInt | None = None
    id: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    interest_rate: Number | None = None
    is_closed: StrictBool | None = None
    is_hidden: StrictBool | None = None
    last_payment: Number | None = None
    last_payment_at: StrictStr | None = None
    loan_amount: Number | None = None
    matures_on: StrictStr | None = None
    metadata: StrictStr | None = None
    minimum_balance: Number | None = None
    minimum_payment: Number | None = None
    name: StrictStr | None = Field(default=None, max_length=255)
    nickname: StrictStr | None = None
    original_balance: Number | None = None
    payment_due_at: StrictStr | None = None
    payoff_balance: Number | None = None
    routing_number: StrictStr | None = None
    started_on: StrictStr | None = None
    subtype: StrictStr | None = Field(default=None, max_length=40)
    type: StrictStr | None = Field(default=None, min_length=1, max_length=40)


class ManagedAccountCreateFields(ManagedAccountFields):
    """ManagedAccountCreateRequest: balance, id, name and type are required."""

    balance: Number
    id: StrictStr = Field(min_length=1, max_length=255)
    name: StrictStr = Field(min_length=1, max_length=255)
    type: StrictStr = Field(min_length=1, max_length=40)


class ManagedAccountCreateBody(Strict):
    account: ManagedAccountCreateFields


class ManagedAccountUpdateBody(Strict):
    account: ManagedAccountFields


class ManagedTransactionFields(Strict):
    """ManagedTransactionUpdateRequest: every field optional."""

    amount: StrictStr | None = None
    category: StrictStr | None = Field(default=None, max_length=100)
    check_number_string: StrictStr | None = Field(default=None, max_length=40)
    currency_code: StrictStr | None = Field(default=None, min_length=3, max_length=3)
    description: StrictStr | None = Field(default=None, max_length=255)
    id: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    is_international: StrictBool | None = None
    latitude: Number | None = None
    localized_description: StrictStr | None = None
    localized_memo: StrictStr | None = None
    longitude: Number | None = None
    memo: StrictStr | None = Field(default=None, max_length=255)
    merchant_category_code: StrictInt | None = None
    merchant_guid: StrictStr | None = Field(default=None, max_length=48)
    merchant_location_guid: StrictStr | None = None
    metadata: StrictStr | None = None
    posted_at: StrictStr | None = None
    status: Literal["POSTED", "PENDING"] | None = None
    transacted_at: StrictStr | None = None
    type: Literal["CREDIT", "DEBIT"] | None = None


class ManagedTransactionCreateFields(ManagedTransactionFields):
    """ManagedTransactionCreateRequest: amount, description, status, posted_at,
    transacted_at and type are required."""

    amount: StrictStr
    description: StrictStr = Field(max_length=255)
    posted_at: StrictStr
    status: Literal["POSTED", "PENDING"]
    transacted_at: StrictStr
    type: Literal["CREDIT", "DEBIT"]


class ManagedTransactionCreateBody(Strict):
    transaction: ManagedTransactionCreateFields


class ManagedTransactionUpdateBody(Strict):
    transaction: ManagedTransactionFields
