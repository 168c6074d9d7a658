"""Any FDX v6 data provider, over OAuth: the ``fdx`` connector.

Institutions are data (``openagg institutions add --connector fdx --oauth``) with the
options ``issuer``, ``api_base``, ``client_id``, ``client_secret`` (sealed: its key
ends in ``secret``) and ``scopes``. The provider is found from
``<issuer>/.well-known/openid-configuration``; the end user consents at the bank
through the authorization-code flow with PKCE (S256), the platform's ``state`` and
its callback; the code is exchanged for tokens kept in ``ctx.secrets``. Each job
refreshes the access token when it has less than a minute left (the provider's
rotated refresh token replacing the old one), then reads ``/accounts`` and, per
account, its details, transactions, holdings and contact. docs/connectors/fdx.md has
the mapping tables, the pending-to-posted rule and what each status means.

Stored secrets (every string value of them is hidden wherever it appears, so times
are epoch seconds and pending transaction ids are keys, never values):

- ``access_token``, ``access_expires_at``, ``refresh_token``;
- ``pending``: ``{account id: {pending transaction id: [cents, day, credit]}}``, the
  pending rows of the last pull, for matching the posted rows that replace them.

Connectors import neither ``wire`` nor ``services`` (pyproject's ``[tool.importlinter]``).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from openagg.connectors.base import (
    CONSENT_EXPIRES_AT,
    AccountData,
    Connector,
    ConnectorContext,
    ConnectorError,
    HoldingData,
    LoginResult,
    OAuthStart,
    OwnerData,
    PullResult,
    PullWindow,
    TransactionData,
)
from openagg.connectors.http import PrivateAddressRefused
from openagg.domain.causes import Cause
from openagg.netguard import address_allowed, literal_address

CONNECTOR_NAME = "fdx"
DEFAULT_SCOPES = "openid offline_access accounts:read"
DISCOVERY_PATH = "/.well-known/openid-configuration"
# Refresh before the access token has less than this left.
REFRESH_MARGIN_SECONDS = 60
# A token answer without ``expires_in`` is trusted this long (RFC 6749 makes it optional).
DEFAULT_ACCESS_SECONDS = 300
DISCOVERY_CACHE_SECONDS = 3600.0
MAX_PAGES = 500
PENDING_STATUSES = frozenset({"PENDING", "AUTHORIZATION", "MEMO"})
# The pending-to-posted rule (docs/connectors/fdx.md): a posted amount may differ from
# its pending one by this share (tips, currency conversion), and post this many days
# after it.
AMOUNT_TOLERANCE = Decimal("0.20")
POSTING_DAYS = 7
# At most this many pending rows remembered per account.
PENDING_MEMORY = 200
_MESSAGE_CHARS = 300
_CENT = Decimal("0.01")

RECONNECT = "The user must reconnect (sign in at the bank again) to restore access."
_NOT_CONNECTED = f"This connection holds no access from the bank. {RECONNECT}"
_NO_REFRESH = (
    "The bank's access token has expired and the bank gave no refresh token "
    f"(the offline_access scope). {RECONNECT}"
)

# FDX account categories and types to MX types and subtypes. A known accountType
# decides on its own; an unknown one falls back to its category.
_TYPES: dict[str, tuple[str, str | None]] = {
    # DEPOSIT_ACCOUNT
    "CHECKING": ("CHECKING", None),
    "COMMERCIALDEPOSIT": ("CHECKING", None),
    "SAVINGS": ("SAVINGS", None),
    "ESCROW": ("SAVINGS", None),
    "MONEYMARKET": ("SAVINGS", "MONEY_MARKET"),
    "CD": ("SAVINGS", "CERTIFICATE_OF_DEPOSIT"),
    "PREPAID": ("PREPAID", None),
    # LOC_ACCOUNT
    "CREDITCARD": ("CREDIT_CARD", None),
    "CHARGE": ("CREDIT_CARD", None),
    "LINEOFCREDIT": ("LINE_OF_CREDIT", None),
    "COMMERCIALLINEOFCREDIT": ("LINE_OF_CREDIT", "SMALL_BUSINESS"),
    "HOMELINEOFCREDIT": ("LINE_OF_CREDIT", "HOME_EQUITY"),
    # LOAN_ACCOUNT
    "MORTGAGE": ("MORTGAGE", None),
    "HOMEEQUITYLOAN": ("LOAN", "HOME_EQUITY"),
    "AUTOLOAN": ("LOAN", "AUTO"),
    "STUDENTLOAN": ("LOAN", "STUDENT"),
    "PERSONALLOAN": ("LOAN", "PERSONAL"),
    "SMBLOAN": ("LOAN", "SMALL_BUSINESS"),
    "COMMERCIALLOAN": ("LOAN", "SMALL_BUSINESS"),
    "INSTALLMENT": ("LOAN", None),
    "MILITARYLOAN": ("LOAN", None),
    "LOAN": ("LOAN", None),
    # INVESTMENT_ACCOUNT
    "401A": ("INVESTMENT", None),
    "401K": ("INVESTMENT", "PLAN_401_K"),
    "403B": ("INVESTMENT", "PLAN_403_B"),
    "457": ("INVESTMENT", "PLAN_457"),
    "529": ("INVESTMENT", "PLAN_529"),
    "BROKERAGEPRODUCT": ("INVESTMENT", "BROKERAGE"),
    "COVERDELL": ("INVESTMENT", None),
    "DIGITALASSET": ("INVESTMENT", None),
    "ESOP": ("INVESTMENT", "EMPLOYEE_STOCK_OWNERSHIP_PLAN"),
    "HSA": ("INVESTMENT", "HSA"),
    "IRA": ("INVESTMENT", "IRA"),
    "KEOGH": ("INVESTMENT", None),
    "ROLLOVER": ("INVESTMENT", "ROLLOVER_IRA"),
    "ROTH": ("INVESTMENT", "ROTH_IRA"),
    "SARSEP": ("INVESTMENT", "SIMPLIFIED_EMPLOYEE_PENSION"),
    "SEPIRA": ("INVESTMENT", "SIMPLIFIED_EMPLOYEE_PENSION"),
    "SIMPLEIRA": ("INVESTMENT", "SIMPLE_IRA"),
    "TAXABLE": ("INVESTMENT", "TAXABLE"),
    "TRUST": ("INVESTMENT", "TRUST"),
    "UGMA": ("INVESTMENT", "UNIFORM_GIFTS_TO_MINORS_ACT"),
    "UTMA": ("INVESTMENT", None),
    # ANNUITY_ACCOUNT, INSURANCE_ACCOUNT
    "ANNUITY": ("INSURANCE", None),
}
_CATEGORY_TYPES: dict[str, str] = {
    "DEPOSIT_ACCOUNT": "CHECKING",
    "LOC_ACCOUNT": "LINE_OF_CREDIT",
    "LOAN_ACCOUNT": "LOAN",
    "INVESTMENT_ACCOUNT": "INVESTMENT",
    "ANNUITY_ACCOUNT": "INSURANCE",
    "INSURANCE_ACCOUNT": "INSURANCE",
}
# MX types whose balance is money owed: positive, whatever sign the bank sends.
_DEBTS = frozenset({"CREDIT_CARD", "LINE_OF_CREDIT", "LOAN", "MORTGAGE"})
_HOLDING_TYPES = {
    "STOCK": "EQUITY",
    "EQUITY": "EQUITY",
    "MUTUALFUND": "MUTUAL_FUND",
    "ETF": "ETF",
    "BOND": "BOND",
    "DEBT": "BOND",
    "OPTION": "OPTIONS",
    "CD": "CERTIFICATE_OF_DEPOSIT",
    "ANNUITY": "ANNUITY",
    "CASH": "CASH",
    "MONEYMARKET": "MONEY_MARKET",
}
# Account detail fields (FDX name → MX name in ``AccountData.details``).
_DETAIL_NUMBERS = {
    "interestRate": "interest_rate",
    "annualPercentageYield": "apy",
    "creditLine": "credit_limit",
    "availableCredit": "available_credit",
    "minimumPaymentAmount": "minimum_payment",
    "nextPaymentAmount": "minimum_payment",
    "lastPaymentAmount": "last_payment",
    "lastStmtBalance": "statement_balance",
    "originalPrincipal": "original_balance",
    "payOffAmount": "payoff_balance",
    "availableCashBalance": "cash_balance",
    "currentValue": "total_account_value",
    "purchasesApr": "apr",
}
_DETAIL_DATES = {
    "nextPaymentDate": "payment_due_at",
    "paymentDueDate": "payment_due_at",
    "lastPaymentDate": "last_payment_at",
    "maturityDate": "matures_on",
    "openingDate": "started_on",
    "originatingDate": "started_on",
}


def create_connector(options: dict[str, str]) -> FdxConnector:
    """The entry point's factory. The connector has no process-wide options: each
    institution's are its own (``ctx.options``)."""
    return FdxConnector()


# --- small readers ---------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    found = str(value).strip()
    return found or None


def _money(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ConnectorError(Cause.DATA_ERROR, f"The bank sent no {what}.")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConnectorError(Cause.DATA_ERROR, f"The bank sent {what} {value!r}.") from None
    if not amount.is_finite():
        raise ConnectorError(Cause.DATA_ERROR, f"The bank sent {what} {value!r}.")
    return amount


def _maybe_money(value: Any, what: str) -> Decimal | None:
    return None if value is None else _money(value, what)


def _timestamp(value: Any) -> dt.datetime | None:
    """An FDX timestamp or date (``2026-03-01T12:00:00.000Z``, ``2026-03-01``)."""
    text = _text(value)
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConnectorError(Cause.DATA_ERROR, f"The bank sent the date {text!r}.") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _unwrap(item: Any) -> tuple[dict[str, Any], str | None]:
    """An account as FDX 6 sends it (flat, with ``accountCategory``), or as FDX 4-5
    did (``{"depositAccount": {...}}``): the fields and the category."""
    if not isinstance(item, dict):
        raise ConnectorError(Cause.DATA_ERROR, "The bank sent an account that is not an object.")
    if len(item) == 1:
        [(key, inner)] = item.items()
        if key.endswith("Account") and isinstance(inner, dict):
            # depositAccount -> DEPOSIT_ACCOUNT
            snake = "".join("_" + c if c.isupper() else c for c in key).upper()
            return inner, inner.get("accountCategory") or snake
    return item, item.get("accountCategory")


def _currency(item: dict[str, Any]) -> str:
    """FDX ``currency: {currencyCode}`` (or a plain code); USD when absent."""
    currency = item.get("currency")
    if isinstance(currency, dict):
        currency = currency.get("currencyCode")
    return _text(currency) or "USD"


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


# --- URLs: https, or plain http to a private address only --------------------------


async def _checked(url: str, what: str) -> str:
    """``url`` without a trailing slash, if it may carry tokens: https, or plain http
    to a host that is private or local (the platform's client reaches those only
    where the operator allows it: labs and tests). Plain http to a public host would
    send tokens in clear text across the internet."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectorError(Cause.INSTITUTION_ERROR, f"The {what} {url!r} is not an https URL.")
    if parts.scheme == "http":
        host = parts.hostname
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, parts.port or 80, type=socket.SOCK_STREAM
                )
            except OSError as exc:
                raise ConnectorError(
                    Cause.INSTITUTION_UNAVAILABLE, f"Cannot resolve {host}: {exc}"
                ) from None
            addresses = [str(info[4][0]) for info in infos]
        if not addresses or any(address_allowed(a) for a in addresses):
            raise ConnectorError(
                Cause.INSTITUTION_ERROR,
                f"The {what} {url} is plain http to a public host: FDX needs https. Plain "
                "http is accepted only for private or local addresses (labs and tests).",
            )
    return url.rstrip("/")


@dataclass(frozen=True)
class _Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None
    auth_methods: tuple[str, ...]
    revocation_auth_methods: tuple[str, ...]


@dataclass(frozen=True)
class _Options:
    issuer: str
    api_base: str
    client_id: str
    client_secret: str | None
    scopes: str

    @classmethod
    def of(cls, options: Mapping[str, str]) -> _Options:
        missing = [k for k in ("issuer", "api_base", "client_id") if not options.get(k)]
        if missing:
            raise ConnectorError(
                Cause.INSTITUTION_ERROR,
                f"The institution has no {', '.join(repr(k) for k in missing)} option.",
            )
        return cls(
            issuer=options["issuer"].rstrip("/"),
            api_base=options["api_base"].rstrip("/"),
            client_id=options["client_id"],
            client_secret=options.get("client_secret") or None,
            scopes=" ".join(options.get("scopes", DEFAULT_SCOPES).split()),
        )


def _unreachable(exc: httpx.HTTPError, what: str) -> Exception:
    if isinstance(exc.__cause__, PrivateAddressRefused):
        return ConnectorError(
            Cause.INSTITUTION_UNAVAILABLE,
            f"The {what} is at a private or local network address, which this OpenAgg does "
            "not reach (OPENAGG_CONNECTOR_ALLOW_PRIVATE_ADDRESSES).",
        )
    return exc  # the engine's net: a timeout, or the institution unavailable


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise ConnectorError(
            Cause.DATA_ERROR, f"The {what} answered with something that is not JSON."
        ) from None
    if not isinstance(body, dict):
        raise ConnectorError(Cause.DATA_ERROR, f"The {what} answered JSON that is not an object.")
    return body


def _oauth_error(response: httpx.Response) -> str:
    """OAuth's ``error`` code of an answer (RFC 6749 5.2), or ""."""
    try:
        answer = json.loads(response.content)
    except ValueError:
        return ""
    return str(answer.get("error") or "") if isinstance(answer, dict) else ""


def _words(response: httpx.Response) -> str:
    """The institution's own message: FDX ``{code, message}`` or OAuth's
    ``{error, error_description}``, else the start of the body."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [
            str(body[k])
            for k in ("code", "message", "error", "error_description")
            if body.get(k) not in (None, "")
        ]
        if parts:
            return ": ".join(parts)[:_MESSAGE_CHARS]
    return response.text.strip()[:_MESSAGE_CHARS] or f"HTTP {response.status_code}"


def _status_error(response: httpx.Response, what: str) -> ConnectorError:
    """An answer that is not a success, as a cause."""
    code, words = response.status_code, _words(response)
    if code == 429:
        return ConnectorError(Cause.RATE_LIMITED, f"The {what} says too many requests: {words}")
    if code >= 500:
        return ConnectorError(
            Cause.INSTITUTION_UNAVAILABLE, f"The {what} answered HTTP {code}: {words}"
        )
    if code in (401, 403):
        return ConnectorError(
            Cause.BAD_CREDENTIALS,
            f"The bank refused this connection's access (HTTP {code}: {words}). {RECONNECT}",
        )
    if code == 400:
        return ConnectorError(Cause.BAD_REQUEST, f"The {what} refused the request: {words}")
    return ConnectorError(Cause.INSTITUTION_ERROR, f"The {what} answered HTTP {code}: {words}")


def _authenticate(
    options: _Options,
    methods: tuple[str, ...],
    endpoint: str,
    body: dict[str, str],
    headers: dict[str, str],
) -> None:
    """The client's authentication added to a request to the provider's ``endpoint``
    ("token", "revocation"): ``client_secret_basic`` when the provider takes it (the
    default of OAuth), else ``client_secret_post``; a client without a secret sends
    its id (PKCE)."""
    if options.client_secret is None:
        body["client_id"] = options.client_id
    elif "client_secret_basic" in methods:
        pair = f"{quote(options.client_id, safe='')}:{quote(options.client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif "client_secret_post" in methods:
        body["client_id"] = options.client_id
        body["client_secret"] = options.client_secret
    else:
        raise ConnectorError(
            Cause.INSTITUTION_ERROR,
            f"The bank's {endpoint} endpoint takes neither client_secret_basic nor "
            f"client_secret_post (it lists {', '.join(methods)}).",
        )


class _Session:
    """One job's conversation with the provider: tokens from ``ctx.secrets``, kept
    fresh by the platform's clock, and the FDX API's pages."""

    def __init__(self, connector: FdxConnector, ctx: ConnectorContext, started: Any) -> None:
        self.connector = connector
        self.ctx = ctx
        self.options = _Options.of(ctx.options)
        assert ctx.http is not None  # the engine always gives one
        self.http = ctx.http
        # ``ctx.now`` is when the job started; the time since is added, so a long
        # pull never sends a token that expired while it ran.
        self.started = started if isinstance(started, float) else time.monotonic()
        self.refreshed = False
        self.api_checked = False

    def now(self) -> float:
        base = self.ctx.now or dt.datetime.now(dt.UTC)
        return base.timestamp() + max(0.0, time.monotonic() - self.started)

    # -- tokens ----------------------------------------------------------------

    async def access_token(self) -> str:
        secrets = self.ctx.secrets
        token, expires = secrets.get("access_token"), secrets.get("access_expires_at")
        if (
            isinstance(token, str)
            and isinstance(expires, int | float)
            and expires - self.now() >= REFRESH_MARGIN_SECONDS
        ):
            return token
        await self.refresh()
        return str(secrets["access_token"])

    async def refresh(self) -> None:
        secrets = self.ctx.secrets
        refresh_token = secrets.get("refresh_token")
        if not isinstance(refresh_token, str):
            raise ConnectorError(
                Cause.BAD_CREDENTIALS,
                _NO_REFRESH if secrets.get("access_token") else _NOT_CONNECTED,
            )
        provider = await self.connector.provider(self.ctx, self.options)
        body = await self.connector.token_request(
            self.ctx,
            self.options,
            provider,
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        keep_tokens(self.ctx, body, self.now(), rotating=True)
        self.refreshed = True

    # -- the FDX API -------------------------------------------------------------

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        if not self.api_checked:
            await _checked(self.options.api_base, "api_base option")
            self.api_checked = True
        url = self.options.api_base + path
        for _ in range(2):
            token = await self.access_token()
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                # FDX's request id, for the bank's support.
                "x-fapi-interaction-id": str(uuid.uuid4()),
            }
            try:
                response = await self.http.get(url, params=params, headers=headers)
            except httpx.HTTPError as exc:
                raise _unreachable(exc, "bank's FDX API") from exc
            if response.status_code == 401 and not self.refreshed:
                # The bank may end an access token early: one refresh, then its answer.
                await self.refresh()
                continue
            break
        if response.status_code != 200:
            raise _status_error(response, "bank's FDX API")
        return _json(response, "bank's FDX API")

    async def pages(
        self, path: str, key: str, params: dict[str, str] | None = None
    ) -> AsyncIterator[Any]:
        """Every item of a paged list. FDX 6 answers ``page.nextOffset`` (older
        servers a ``nextPageKey``); it goes back as ``pageKey``, and as the
        deprecated ``offset`` for servers that only know that one."""
        query = dict(params or {})
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body = await self.get(path, query)
            items = body.get(key) or []
            if not isinstance(items, list):
                raise ConnectorError(Cause.DATA_ERROR, f"The bank's {key} are not a list.")
            for item in items:
                yield item
            page = body.get("page")
            nxt = None
            if isinstance(page, dict):
                nxt = _text(page.get("nextPageKey") or page.get("nextOffset"))
            if nxt is None:
                return
            if nxt in seen:
                raise ConnectorError(Cause.DATA_ERROR, f"The bank's {key} pages go round.")
            seen.add(nxt)
            query["pageKey"] = query["offset"] = nxt
        raise ConnectorError(Cause.DATA_ERROR, f"The bank's {key} run past {MAX_PAGES} pages.")


def keep_tokens(ctx: ConnectorContext, body: dict[str, Any], now: float, *, rotating: bool) -> None:
    """A token answer into ``ctx.secrets``. A refresh answer without a refresh token
    keeps the old one (the provider does not rotate); a code exchange without one
    leaves none (the consent gave no ``offline_access``)."""
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise ConnectorError(Cause.DATA_ERROR, "The bank's token answer has no access_token.")
    kind = str(body.get("token_type") or "Bearer")
    if kind.lower() != "bearer":
        raise ConnectorError(Cause.DATA_ERROR, f"The bank's token type is {kind!r}, not Bearer.")
    lifetime = body.get("expires_in", DEFAULT_ACCESS_SECONDS)
    try:
        seconds = int(lifetime)
    except (TypeError, ValueError):
        raise ConnectorError(Cause.DATA_ERROR, f"The bank sent expires_in {lifetime!r}.") from None
    ctx.secrets["access_token"] = access
    ctx.secrets["access_expires_at"] = int(now) + seconds
    refresh = body.get("refresh_token")
    if isinstance(refresh, str) and refresh:
        ctx.secrets["refresh_token"] = refresh
    elif not rotating:
        ctx.secrets.pop("refresh_token", None)
    # When the consent (the grant behind the refresh token) ends, where the provider
    # says: the platform reads it from ``consent_expires_at`` (docs/connectors.md).
    ends = body.get("refresh_token_expires_in", body.get("x_refresh_token_expires_in"))
    if isinstance(ends, int | float) and not isinstance(ends, bool) and ends > 0:
        moment = dt.datetime.fromtimestamp(int(now) + int(ends), dt.UTC)
        ctx.secrets[CONSENT_EXPIRES_AT] = moment.isoformat()
    elif not rotating:
        ctx.secrets.pop(CONSENT_EXPIRES_AT, None)


# --- mapping FDX to MX ------------------------------------------------------------


def account_data(fields: dict[str, Any], category: str | None) -> AccountData:
    account_id = _text(fields.get("accountId"))
    if account_id is None:
        raise ConnectorError(Cause.DATA_ERROR, "The bank sent an account without an accountId.")
    kind = str(fields.get("accountType") or "").upper()
    mx_type, subtype = _TYPES.get(kind) or (_CATEGORY_TYPES.get(str(category)) or "CHECKING", None)
    if category == "INVESTMENT_ACCOUNT" and mx_type != "INVESTMENT":
        mx_type, subtype = "INVESTMENT", None  # the category outranks a stray type word
    balance_field = {
        "INVESTMENT": "currentValue",
        "LOAN": "principalBalance",
        "MORTGAGE": "principalBalance",
    }.get(mx_type, "currentBalance")
    raw = fields.get(balance_field, fields.get("currentBalance"))
    balance = _money(raw, "balance") if raw is not None else Decimal(0)
    available = _maybe_money(
        fields.get("availableCredit" if mx_type in _DEBTS else "availableBalance"),
        "available balance",
    )
    if mx_type in _DEBTS:
        balance = abs(balance)
    details: dict[str, Any] = {}
    for name, mx in _DETAIL_NUMBERS.items():
        if fields.get(name) is not None and mx not in details:
            details[mx] = _money(fields[name], name)
    for name, mx in _DETAIL_DATES.items():
        when = _timestamp(fields.get(name))
        if when is not None and mx not in details:
            details[mx] = when.date().isoformat()
    if mx_type == "INVESTMENT" and isinstance(fields.get("holdings"), list):
        values = [h.get("marketValue") for h in fields["holdings"] if isinstance(h, dict)]
        details["holdings_value"] = sum(
            (_money(v, "holding value") for v in values if v is not None), Decimal(0)
        )
    nickname = _text(fields.get("nickname"))
    if nickname:
        details["nickname"] = nickname
    name = (
        nickname
        or _text(fields.get("productName"))
        or " ".join(filter(None, [kind.title() or mx_type.title(), _masked(fields)]))
    )
    return AccountData(
        external_id=account_id,
        name=name,
        type=mx_type,
        subtype=subtype,
        balance=balance,
        available_balance=available,
        currency_code=_currency(fields),
        is_closed=str(fields.get("status") or "").upper() == "CLOSED",
        details=details,
    )


def _masked(fields: dict[str, Any]) -> str | None:
    return _text(fields.get("accountNumberDisplay"))


def transaction_data(account_id: str, t: Any) -> TransactionData | None:
    """One FDX transaction, or None for a posted memo entry (no money moved)."""
    if not isinstance(t, dict):
        raise ConnectorError(Cause.DATA_ERROR, "The bank sent a transaction that is not an object.")
    tid = _text(t.get("transactionId"))
    if tid is None:
        raise ConnectorError(Cause.DATA_ERROR, "The bank sent a transaction without an id.")
    status = str(t.get("status") or "POSTED").upper()
    pending = status in PENDING_STATUSES
    direction = str(t.get("debitCreditMemo") or "").upper()
    if direction == "MEMO" and not pending:
        return None
    amount = _money(t.get("amount"), "transaction amount")
    if direction not in ("CREDIT", "DEBIT", "MEMO"):
        # Unsigned amounts need the direction; a signed one without it says it itself.
        direction = "CREDIT" if amount > 0 else "DEBIT"
    posted_at = _timestamp(t.get("postedTimestamp"))
    transacted_at = _timestamp(t.get("transactionTimestamp"))
    when = (transacted_at or posted_at) if pending else (posted_at or transacted_at)
    if when is None:
        raise ConnectorError(Cause.DATA_ERROR, f"The bank's transaction {tid} has no date.")
    payee = t.get("payee")
    if isinstance(payee, dict):
        payee = payee.get("name")
    description = _text(t.get("description")) or _text(payee) or _text(t.get("memo")) or tid
    return TransactionData(
        external_id=tid,
        account_external_id=account_id,
        amount=abs(amount),
        type="CREDIT" if direction == "CREDIT" else "DEBIT",
        date=when.date(),
        description=description,
        status="PENDING" if pending else "POSTED",
        transacted_at=transacted_at,
        posted_at=None if pending else posted_at,
        merchant_name=_text(payee),
        memo=_text(t.get("memo")),
        check_number_string=_text(t.get("checkNumber")),
        currency_code=_currency(t),
    )


def holding_data(account_id: str, h: Any) -> HoldingData:
    if not isinstance(h, dict):
        raise ConnectorError(Cause.DATA_ERROR, "The bank sent a holding that is not an object.")
    ids = [i for i in h.get("securityIds") or [] if isinstance(i, dict)]
    ticker = next((i.get("id") for i in ids if str(i.get("idType")).upper() == "TICKER"), None)
    other = next((i.get("id") for i in ids if i.get("id")), None)
    symbol = _text(h.get("symbol")) or _text(ticker)
    external_id = _text(h.get("holdingId")) or symbol or _text(other)
    if external_id is None:
        raise ConnectorError(Cause.DATA_ERROR, "The bank sent a holding without any id.")
    quantity = _money(h.get("units", h.get("quantity")), "holding units")
    price = _maybe_money(h.get("currentUnitPrice"), "holding price")
    if price is None:
        value = _money(h.get("marketValue"), "holding value")
        price = (value / quantity).quantize(Decimal("0.0001")) if quantity else Decimal(0)
    kind = str(h.get("holdingType") or h.get("securityType") or "").upper().replace("_", "")
    return HoldingData(
        external_id=external_id,
        account_external_id=account_id,
        symbol=symbol,
        description=_text(h.get("holdingName")) or _text(h.get("securityName")) or external_id,
        holding_type=_HOLDING_TYPES.get(kind, "UNKNOWN_TYPE"),
        quantity=quantity,
        current_price=price,
        cost_basis=_maybe_money(h.get("costBasis"), "cost basis"),
        currency_code=_currency(h),
    )


def owner_data(account_id: str, contact: dict[str, Any]) -> list[OwnerData]:
    """``/accounts/{id}/contact``: one owner per holder, with the account's first
    address, email and telephone."""
    addresses = [a for a in contact.get("addresses") or [] if isinstance(a, dict)]
    address = addresses[0] if addresses else {}
    emails = [e for e in contact.get("emails") or [] if isinstance(e, str)]
    phones = [p for p in contact.get("telephones") or [] if isinstance(p, dict)]
    phone = None
    if phones:
        phone = " ".join(
            filter(None, [_text(phones[0].get("country")), _text(phones[0].get("number"))])
        )
    owners = []
    for holder in contact.get("holders") or []:
        if not isinstance(holder, dict):
            continue
        found = holder.get("name")
        name: dict[str, Any] = found if isinstance(found, dict) else {}
        first, last = _text(name.get("first")), _text(name.get("last"))
        full = " ".join(
            filter(None, [first, _text(name.get("middle")), last, _text(name.get("suffix"))])
        )
        full = full or _text(name.get("company")) or ""
        if not full:
            continue
        street = ", ".join(
            filter(None, (_text(address.get(k)) for k in ("line1", "line2", "line3")))
        )
        owners.append(
            OwnerData(
                account_external_id=account_id,
                owner_name=full,
                first_name=first,
                last_name=last,
                address=street or None,
                city=_text(address.get("city")),
                state=_text(address.get("region")),
                postal_code=_text(address.get("postalCode")),
                country=_text(address.get("country")),
                email=emails[0] if emails else None,
                phone=phone or None,
            )
        )
    return owners


def settle(
    rows: list[TransactionData], remembered: Mapping[str, Any]
) -> tuple[list[TransactionData], dict[str, list[int]]]:
    """One account's rows with each posted row that settles a pending one naming it
    (``replaces_external_id``), and the pending rows to remember for the next pull.

    FDX gives a posted row a new id. A pending row of the last pull that this pull no
    longer lists has settled (or was voided); a posted row settles it when both go
    the same way (debit or credit), the posted amount is within ``AMOUNT_TOLERANCE``
    of the pending one, and it posted on the pending row's day or up to
    ``POSTING_DAYS`` after. Each pending row is settled by at most one posted row:
    the closest in amount, then in days. A pending row still listed has not settled.
    """
    listed = {t.external_id for t in rows}
    open_pendings: dict[str, tuple[int, int, bool]] = {}
    for pid, entry in remembered.items():
        if pid in listed or not isinstance(entry, list) or len(entry) != 3:
            continue
        open_pendings[pid] = (int(entry[0]), int(entry[1]), bool(entry[2]))
    pairs: list[tuple[int, int, str, int]] = []
    for n, t in enumerate(rows):
        if t.status != "POSTED":
            continue
        cents, day, credit = _cents(t.amount), t.date.toordinal(), t.type == "CREDIT"
        for pid, (p_cents, p_day, p_credit) in open_pendings.items():
            if p_credit != credit or not p_day <= day <= p_day + POSTING_DAYS:
                continue
            if abs(cents - p_cents) <= abs(p_cents) * AMOUNT_TOLERANCE:
                pairs.append((abs(cents - p_cents), day - p_day, pid, n))
    settled: set[str] = set()
    for _, _, pid, n in sorted(pairs):  # the closest pairs first
        if pid not in settled and rows[n].replaces_external_id is None:
            rows[n].replaces_external_id = pid
            settled.add(pid)
    out = list(rows)
    pendings = [t for t in out if t.status == "PENDING"][-PENDING_MEMORY:]
    memory = {
        t.external_id: [
            _cents(t.amount),
            (t.transacted_at.date() if t.transacted_at else t.date).toordinal(),
            int(t.type == "CREDIT"),
        ]
        for t in pendings
    }
    return out, memory


# --- the connector ----------------------------------------------------------------


class FdxConnector(Connector):
    """One instance serves every FDX institution; nothing about a member is kept
    here, only each issuer's discovery document for a while."""

    def __init__(self) -> None:
        self._providers: dict[str, tuple[float, _Provider]] = {}

    async def provider(self, ctx: ConnectorContext, options: _Options) -> _Provider:
        cached = self._providers.get(options.issuer)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        issuer = await _checked(options.issuer, "issuer option")
        assert ctx.http is not None
        try:
            response = await ctx.http.get(issuer + DISCOVERY_PATH)
        except httpx.HTTPError as exc:
            raise _unreachable(exc, "bank's OpenID provider") from exc
        if response.status_code != 200:
            raise _status_error(response, "bank's OpenID discovery")
        doc = _json(response, "bank's OpenID discovery")
        if str(doc.get("issuer") or "").rstrip("/") != issuer:
            # OpenID Connect Discovery: the document must name the issuer it was asked for.
            raise ConnectorError(
                Cause.INSTITUTION_ERROR,
                f"The discovery document names the issuer {doc.get('issuer')!r}, not {issuer}.",
            )
        endpoints = {}
        for key in ("authorization_endpoint", "token_endpoint"):
            if not isinstance(doc.get(key), str):
                raise ConnectorError(Cause.DATA_ERROR, f"The discovery document has no {key}.")
            endpoints[key] = await _checked(doc[key], key)
        revocation = doc.get("revocation_endpoint")
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        # RFC 8414: the revocation endpoint's methods default to the token endpoint's.
        revocation_methods = doc.get("revocation_endpoint_auth_methods_supported") or methods
        found = _Provider(
            issuer=issuer,
            authorization_endpoint=endpoints["authorization_endpoint"],
            token_endpoint=endpoints["token_endpoint"],
            revocation_endpoint=revocation if isinstance(revocation, str) and revocation else None,
            auth_methods=tuple(str(m) for m in methods),
            revocation_auth_methods=tuple(str(m) for m in revocation_methods),
        )
        self._providers[options.issuer] = (time.monotonic() + DISCOVERY_CACHE_SECONDS, found)
        return found

    async def token_request(
        self,
        ctx: ConnectorContext,
        options: _Options,
        provider: _Provider,
        form: dict[str, str],
    ) -> dict[str, Any]:
        """A request to the token endpoint with the client's authentication
        (``_authenticate``)."""
        assert ctx.http is not None
        headers = {"Accept": "application/json"}
        body = dict(form)
        _authenticate(options, provider.auth_methods, "token", body, headers)
        try:
            response = await ctx.http.post(provider.token_endpoint, data=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _unreachable(exc, "bank's token endpoint") from exc
        if response.status_code == 200:
            return _json(response, "bank's token endpoint")
        if response.status_code == 429 or response.status_code >= 500:
            raise _status_error(response, "bank's token endpoint")
        error = _oauth_error(response)
        words = _words(response)
        if error == "invalid_grant":
            grant = form["grant_type"]
            what = (
                "the authorization code (expired or already used)"
                if grant == "authorization_code"
                else "this connection's consent (revoked at the bank, or expired)"
            )
            raise ConnectorError(
                Cause.BAD_CREDENTIALS, f"The bank no longer accepts {what}: {words}. {RECONNECT}"
            )
        if error in ("invalid_client", "unauthorized_client"):
            raise ConnectorError(
                Cause.INSTITUTION_ERROR,
                f"The bank refused OpenAgg's client ({words}): check the institution's "
                "client_id and client_secret options.",
            )
        if not error:
            raise ConnectorError(
                Cause.DATA_ERROR,
                f"The bank's token endpoint answered HTTP {response.status_code}: {words}",
            )
        raise ConnectorError(Cause.BAD_REQUEST, f"The bank's token endpoint refused: {words}")

    # -- OAuth --------------------------------------------------------------------

    async def oauth_start(
        self, ctx: ConnectorContext, redirect_uri: str, state: str, code_challenge: str
    ) -> OAuthStart:
        options = _Options.of(ctx.options)
        provider = await self.provider(ctx, options)
        query = {
            "response_type": "code",
            "client_id": options.client_id,
            "redirect_uri": redirect_uri,
            "scope": options.scopes,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if "offline_access" in options.scopes.split():
            # OpenID Connect grants offline_access only with an explicit consent prompt.
            query["prompt"] = "consent"
        joiner = "&" if "?" in provider.authorization_endpoint else "?"
        return OAuthStart(provider.authorization_endpoint + joiner + urlencode(query))

    async def oauth_finish(
        self, ctx: ConnectorContext, params: dict[str, str], redirect_uri: str, code_verifier: str
    ) -> None:
        if params.get("error"):
            reason = params.get("error_description") or params["error"]
            raise ConnectorError(
                Cause.BAD_CREDENTIALS, f"Access was not granted at the bank ({reason})."
            )
        code = params.get("code")
        if not code:
            raise ConnectorError(Cause.BAD_CREDENTIALS, "The bank sent back no authorization code.")
        options = _Options.of(ctx.options)
        provider = await self.provider(ctx, options)
        if params.get("iss") and params["iss"].rstrip("/") != provider.issuer:
            # RFC 9207: the answer came from another provider than the one asked (mix-up).
            raise ConnectorError(
                Cause.BAD_CREDENTIALS, "The authorization answer names another issuer."
            )
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        body = await self.token_request(ctx, options, provider, form)
        session = _Session(self, ctx, None)
        keep_tokens(ctx, body, session.now(), rotating=False)

    # -- the member deleted ---------------------------------------------------------

    async def revoke(self, ctx: ConnectorContext) -> None:
        """End the member's grant at the provider (RFC 7009): its refresh token, then
        its access token if it is still valid (revoking a refresh token should end
        the access tokens of its grant too, but RFC 7009 leaves that to the
        provider). A provider without a ``revocation_endpoint`` gets nothing: the
        tokens then end when they expire."""
        tokens = []
        refresh, access = ctx.secrets.get("refresh_token"), ctx.secrets.get("access_token")
        if isinstance(refresh, str) and refresh:
            tokens.append((refresh, "refresh_token"))
        expires = ctx.secrets.get("access_expires_at")
        now = (ctx.now or dt.datetime.now(dt.UTC)).timestamp()
        expired = isinstance(expires, int | float) and expires <= now
        if isinstance(access, str) and access and not expired:
            tokens.append((access, "access_token"))
        if not tokens:
            return
        options = _Options.of(ctx.options)
        provider = await self.provider(ctx, options)
        if provider.revocation_endpoint is None:
            ctx.log.info("%s has no revocation endpoint: nothing to revoke", provider.issuer)
            return
        endpoint = await _checked(provider.revocation_endpoint, "revocation_endpoint")
        for token, hint in tokens:
            await self.revocation_request(ctx, options, provider, endpoint, token, hint)

    async def revocation_request(
        self,
        ctx: ConnectorContext,
        options: _Options,
        provider: _Provider,
        endpoint: str,
        token: str,
        hint: str,
    ) -> None:
        """One token to the revocation endpoint. RFC 7009: 200 whether or not the
        token was still valid; ``unsupported_token_type`` for a kind of token the
        provider does not revoke (then nothing more can be done about it)."""
        assert ctx.http is not None
        headers = {"Accept": "application/json"}
        body = {"token": token, "token_type_hint": hint}
        _authenticate(options, provider.revocation_auth_methods, "revocation", body, headers)
        try:
            response = await ctx.http.post(endpoint, data=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _unreachable(exc, "bank's revocation endpoint") from exc
        if response.status_code == 200:
            return
        error = _oauth_error(response)
        if error == "unsupported_token_type":
            return
        if error in ("invalid_client", "unauthorized_client"):
            raise ConnectorError(
                Cause.INSTITUTION_ERROR,
                f"The bank refused OpenAgg's client at its revocation endpoint "
                f"({_words(response)}): check the institution's client_id and client_secret "
                "options.",
            )
        raise _status_error(response, "bank's revocation endpoint")

    # -- jobs -----------------------------------------------------------------------

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        if not ctx.secrets.get("access_token") and not ctx.secrets.get("refresh_token"):
            raise ConnectorError(Cause.BAD_CREDENTIALS, _NOT_CONNECTED)
        session = _Session(self, ctx, None)
        await session.access_token()  # refreshed now if it has less than a minute left
        return LoginResult(state={"started": session.started})

    async def pull(
        self, ctx: ConnectorContext, state: dict[str, Any], window: PullWindow
    ) -> PullResult:
        session = _Session(self, ctx, state.get("started"))
        listed = [item async for item in session.pages("/accounts", "accounts")]
        result = PullResult(accounts=[])
        remembered = ctx.secrets.get("pending")
        remembered = remembered if isinstance(remembered, dict) else {}
        memory: dict[str, dict[str, list[int]]] = {}
        for item in listed:
            fields, category = _unwrap(item)
            account = account_data(fields, category)
            aid = account.external_id
            path = f"/accounts/{quote(aid, safe='')}"
            if not account.is_closed:
                detail, category = _unwrap(await session.get(path))
                fields = {**fields, **detail}
                account = account_data(fields, category or fields.get("accountCategory"))
            result.accounts.append(account)
            if account.is_closed:
                continue
            if window.from_date is not None:
                query = {"startTime": window.from_date.isoformat()}
                query["endTime"] = window.to_date.isoformat()
                rows = [
                    found
                    async for t in session.pages(f"{path}/transactions", "transactions", query)
                    if (found := transaction_data(aid, t)) is not None
                ]
                before = remembered.get(aid)
                settled, memory[aid] = settle(rows, before if isinstance(before, dict) else {})
                result.transactions.extend(settled)
            if window.holdings and account.type == "INVESTMENT":
                for h in fields.get("holdings") or []:
                    result.holdings.append(holding_data(aid, h))
        if window.from_date is not None:
            kept = {aid: rows for aid, rows in memory.items() if rows}
            if kept != remembered:
                if kept:
                    ctx.secrets["pending"] = kept
                else:
                    ctx.secrets.pop("pending", None)
        return result

    async def owners(
        self, ctx: ConnectorContext, state: dict[str, Any], account: AccountData
    ) -> list[OwnerData]:
        session = _Session(self, ctx, state.get("started"))
        contact = await session.get(f"/accounts/{quote(account.external_id, safe='')}/contact")
        return owner_data(account.external_id, contact)
