"""The connector interface: one small async class per institution family.

A connector logs in (maybe answering challenges over several rounds), then lists
accounts, transactions, holdings, account numbers and owners. It reports failures
as a `ConnectorError` carrying a `Cause`; the engine, not the connector, decides the
member's connection status.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from openagg.domain.causes import Cause


class ConnectorError(Exception):
    def __init__(self, cause: Cause, institution_message: str = ""):
        super().__init__(f"{cause.value}: {institution_message}")
        self.cause = cause
        self.institution_message = institution_message


@dataclass(frozen=True)
class ChallengeOption:
    label: str
    value: str
    guid: str | None = None
    data_uri: str | None = None  # IMAGE_OPTIONS only


@dataclass(frozen=True)
class Challenge:
    """One MFA question. ``type`` is an MX credential type: TEXT, TOKEN, OPTIONS,
    IMAGE_DATA or IMAGE_OPTIONS."""

    guid: str
    label: str
    type: str
    field_name: str | None = None
    image_data: str | None = None
    options: tuple[ChallengeOption, ...] = ()


@dataclass
class LoginResult:
    """Either logged in (no challenges) or waiting for answers to ``challenges``.

    ``state`` is the connector's session (cookies, tokens, which round); the engine
    stores it encrypted between MFA rounds and hands it back unchanged.
    """

    state: dict[str, Any]
    challenges: list[Challenge] = field(default_factory=list)


@dataclass
class AccountData:
    external_id: str
    name: str
    type: str  # MX account type: CHECKING, SAVINGS, CREDIT_CARD, LOAN, MORTGAGE, INVESTMENT...
    balance: Decimal
    subtype: str | None = None
    available_balance: Decimal | None = None
    currency_code: str = "USD"
    account_number: str | None = None
    routing_number: str | None = None
    is_closed: bool = False
    # Other MX account fields by their MX names (apr, credit_limit, payment_due_at...).
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class TransactionData:
    external_id: str
    account_external_id: str
    amount: Decimal  # always positive; the direction is in ``type``
    type: str  # CREDIT or DEBIT
    date: dt.date
    description: str
    status: str = "POSTED"  # or PENDING
    original_description: str | None = None
    transacted_at: dt.datetime | None = None
    posted_at: dt.datetime | None = None
    category: str | None = None
    top_level_category: str | None = None
    merchant_name: str | None = None
    merchant_category_code: int | None = None
    memo: str | None = None
    check_number_string: str | None = None
    currency_code: str = "USD"
    # A posted transaction that replaces a pending one names it here.
    replaces_external_id: str | None = None
    # MX booleans: is_bill_pay, is_direct_deposit, is_expense, is_fee, is_income,
    # is_overdraft_fee, is_payroll_advance, is_recurring, is_subscription...
    flags: dict[str, bool] = field(default_factory=dict)


@dataclass
class HoldingData:
    external_id: str
    account_external_id: str
    symbol: str | None
    description: str
    holding_type: str  # MX holding types: EQUITY, MUTUAL_FUND, ETF, BOND, CASH...
    quantity: Decimal
    current_price: Decimal
    cost_basis: Decimal | None = None
    currency_code: str = "USD"

    @property
    def market_value(self) -> Decimal:
        return (self.quantity * self.current_price).quantize(Decimal("0.01"))


@dataclass
class OwnerData:
    account_external_id: str
    owner_name: str
    first_name: str | None = None
    last_name: str | None = None
    address: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class ConnectorContext:
    """What the platform tells a connector about the job at hand.

    ``secrets`` is the member's stored secrets (tokens, access URLs, client ids the
    connector earned in earlier jobs). Change it in place, from any step, to keep new
    ones: the engine seals what it holds when the job settles, whatever the outcome.
    ``log`` never prints the member's credentials, secrets or the institution's
    secret options. ``http`` is the platform's client: timeouts, a user agent, and no
    requests to private addresses unless the operator allows them.
    """

    member_guid: str
    institution_code: str
    today: dt.date
    # Attempts this member made before this one (scripted sandbox scenarios use it).
    previous_attempts: int = 0
    options: Mapping[str, str] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    log: logging.Logger | logging.LoggerAdapter[logging.Logger] = field(
        default_factory=lambda: logging.getLogger("openagg.connector")
    )
    http: httpx.AsyncClient | None = None
    # The platform's clock when the job started (UTC; tests move it): nothing a connector
    # reports should be dated later, and budgets counted in hours use it. None where no
    # clock was given (then: the end of ``today``).
    now: dt.datetime | None = None
    # Whether the end user asked for this job and is there (a job the app or the widget
    # started, or the OAuth return), not the scheduler's: PSD2 caps unattended access.
    end_user_present: bool = False
    # The end user's IP address when the job carries one (PSD2's PSU-IP-Address).
    end_user_ip: str | None = None


@dataclass(frozen=True)
class PullWindow:
    """What a whole-login ``pull`` is asked for: transactions dated ``from_date`` to
    ``to_date`` (none when ``from_date`` is None) and holdings when ``holdings``."""

    from_date: dt.date | None
    to_date: dt.date
    holdings: bool


@dataclass
class PullResult:
    """Everything one login sees, as a whole-login ``pull`` returns it. Each
    transaction and holding names its account by ``account_external_id``."""

    accounts: list[AccountData]
    transactions: list[TransactionData] = field(default_factory=list)
    holdings: list[HoldingData] = field(default_factory=list)
    # Accounts whose transactions were not read this time (a provider's daily budget
    # spent): the engine leaves their stored transactions, pending ones too, as they are.
    unread: frozenset[str] = frozenset()


# The key of ``ctx.secrets`` where an OAuth connector says when the end user's consent
# ends (ISO 8601, e.g. "2026-09-01T00:00:00+00:00"); absent when the provider does not
# say. The platform shows it on the member and acts on it (docs/connectors.md, "OAuth").
CONSENT_EXPIRES_AT = "consent_expires_at"


@dataclass(frozen=True)
class OAuthStart:
    """Where to send the end user to authorize access (``Connector.oauth_start``)."""

    authorize_url: str


class Connector:
    """The base of a connector. ``login`` is required, and either ``accounts`` (with
    ``transactions``) or a whole-login ``pull(ctx, state, window) -> PullResult``,
    which the engine prefers when a connector has it. The rest is optional:

    - ``answer`` for institutions with MFA;
    - ``holdings`` and ``owners`` per account;
    - ``institutions()`` for institutions served out of the box;
    - ``oauth_start(ctx, redirect_uri, state, code_challenge) -> OAuthStart`` and
      ``oauth_finish(ctx, params, redirect_uri, code_verifier)`` for OAuth
      institutions (keep the tokens in ``ctx.secrets``);
    - ``revoke(ctx) -> None`` to end a deleted member's access at the institution
      (an OAuth token revocation, RFC 7009). The member is already gone for the
      client: the engine calls it later, from a worker, with the member's last
      sealed ``ctx.secrets`` and the institution's ``ctx.options``, under the job
      deadline, and only for members that held secrets. Return when the access is
      ended (or there was nothing to end); raise ``ConnectorError`` otherwise: a
      transient cause is retried a few times with backoff, then given up. It may
      run more than once: revoking twice must do no harm. Changes to
      ``ctx.secrets`` are not kept.

    The engine also runs objects that do not subclass this, if they have the methods.
    """

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        """``credentials`` maps credential ``field_name`` (e.g. "LOGIN") to its value."""
        raise NotImplementedError

    async def answer(
        self, ctx: ConnectorContext, state: dict[str, Any], answers: dict[str, str]
    ) -> LoginResult:
        """``answers`` maps challenge guid to the answer value."""
        raise ConnectorError(Cause.MFA_EXPIRED, "There is no challenge waiting for an answer.")

    async def accounts(self, ctx: ConnectorContext, state: dict[str, Any]) -> list[AccountData]:
        raise NotImplementedError

    async def transactions(
        self,
        ctx: ConnectorContext,
        state: dict[str, Any],
        account: AccountData,
        from_date: dt.date,
        to_date: dt.date,
    ) -> list[TransactionData]:
        return []

    async def holdings(
        self, ctx: ConnectorContext, state: dict[str, Any], account: AccountData
    ) -> list[HoldingData]:
        return []

    async def owners(
        self, ctx: ConnectorContext, state: dict[str, Any], account: AccountData
    ) -> list[OwnerData]:
        return []

    def institutions(self) -> list[InstitutionSpec]:
        return []


@dataclass(frozen=True)
class InstitutionSpec:
    """An institution a connector serves, as it is seeded into the database.

    ``profile`` holds MX institution fields (url, logos, instructional_text,
    supports_* flags, iso_country_code...). ``credentials`` are MX credential
    definitions: guid, label, field_name, field_type, type, display_order.
    """

    code: str
    guid: str
    name: str
    connector: str
    profile: dict[str, Any]
    credentials: list[dict[str, Any]]
    throttle_exempt: bool = False
