"""SimpleFIN Bridge (or any SimpleFIN server) as a source: institution ``simplefin_bridge``.

The member's one credential is a SimpleFIN setup token: the base64 of a claim URL. The
first job claims it (a ``POST``, once) for an access URL, ``https://user:pass@host/path``,
kept as the member's stored secret; every job then reads ``<access>/accounts`` once,
whole-login, with ``pending=1`` and ``version=2`` (structured errors). docs/simplefin.md
has the status table.

Stored secrets (all but the access URL are numbers: every string among a member's
secrets is hidden wherever it appears, and a date would be):

- ``access_url``, and ``token_sha256``, the token it came from: a new token typed by
  the end user is claimed again;
- ``requests``: when the last day's ``/accounts`` requests were made (epoch seconds).
  The Bridge asks for at most 24 a day per access URL; a job that would go over ends
  as ``RATE_LIMITED`` without calling it;
- ``newest_posted``: the newest posted transaction seen (epoch seconds); later windows
  start 14 days before it.

This module reads SimpleFIN's JSON itself: connectors import neither ``wire`` nor
``services`` (pyproject's ``[tool.importlinter]``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from openagg.connectors.base import (
    AccountData,
    Connector,
    ConnectorContext,
    ConnectorError,
    HoldingData,
    InstitutionSpec,
    LoginResult,
    PullResult,
    PullWindow,
    TransactionData,
)
from openagg.connectors.http import PrivateAddressRefused
from openagg.domain.causes import Cause

CONNECTOR_NAME = "simplefin"
INSTITUTION_CODE = "simplefin_bridge"
INSTITUTION_GUID = "INS-5f0c2a61-93d4-4b7e-8c1a-2e6f9b3d7a15"
TOKEN_FIELD = "TOKEN"
TOKEN_CREDENTIAL_GUID = "CRD-7b4e1d92-0c3a-4f58-a6e2-91d5c8f3b046"

REQUESTS_PER_DAY = 24  # the Bridge's budget per access URL
FIRST_WINDOW = dt.timedelta(days=90)
# Late postings: a window reaches this far before the newest posted transaction.
OVERLAP = dt.timedelta(days=14)
_DAY = dt.timedelta(days=1)
_MESSAGE_CHARS = 300
_CENT = Decimal("0.01")

BRIDGE = "SimpleFIN Bridge"
_CLAIM_REFUSED = (
    "This SimpleFIN setup token was already used (or has expired). If you did not "
    "connect it anywhere else, it may be compromised: disable it at SimpleFIN Bridge, "
    "then make a new token and enter it here."
)
_NOT_A_TOKEN = (
    "This is not a SimpleFIN setup token. Copy the whole token SimpleFIN Bridge gave you "
    "(a long string of letters and digits) and enter it again."
)
_ACCESS_REVOKED = (
    "SimpleFIN Bridge refused this connection's access (HTTP 403): it was revoked or "
    "disabled at the Bridge. Make a new setup token there and enter it here."
)
_PAYMENT_REQUIRED = (
    "SimpleFIN Bridge asks for payment (HTTP 402): the Bridge subscription has lapsed. "
    "Renew it at SimpleFIN Bridge; the connection then works again."
)

# Words in an account's name that say its type, tried in this order (deposit words
# first: "Visa Checking" is a checking account).
_NAME_TYPES: tuple[tuple[re.Pattern[str], str, str | None], ...] = tuple(
    (re.compile(rf"\b(?:{words})\b", re.I), kind, subtype)
    for words, kind, subtype in (
        (r"checking|chequing|share draft|current account", "CHECKING", None),
        (r"money market", "SAVINGS", "MONEY_MARKET"),
        (r"cd|certificate", "SAVINGS", "CERTIFICATE_OF_DEPOSIT"),
        (r"savings?|share", "SAVINGS", None),
        (r"mortgage", "MORTGAGE", None),
        (r"heloc|line of credit|loc", "LINE_OF_CREDIT", None),
        (r"loan|auto|student", "LOAN", None),
        (
            r"credit card|card|visa|mastercard|amex|american express|discover|sapphire",
            "CREDIT_CARD",
            None,
        ),
        (
            r"brokerage|ira|roth|401\(?k\)?|403\(?b\)?|hsa|investments?|retirement",
            "INVESTMENT",
            None,
        ),
    )
)
# MX types whose balance is money owed: SimpleFIN sends it negative, MX positive.
_DEBTS = frozenset({"CREDIT_CARD", "LOAN", "MORTGAGE", "LINE_OF_CREDIT"})
_KNOWN_TYPES = frozenset({"CHECKING", "SAVINGS", "INVESTMENT", *_DEBTS})
_RATE_WORDS = re.compile(r"rate.?limit|too many requests|fewer requests|once every 24 hours", re.I)
_AUTH_WORDS = re.compile(r"authenticat|credentials|password", re.I)
_ATTENTION_WORDS = re.compile(r"attention|reauthori|reconnect|action|verify|mfa|2fa", re.I)
# The worse cause wins when an answer carries several errors.
_SEVERITY = (
    Cause.BAD_CREDENTIALS,
    Cause.USER_ACTION_REQUIRED,
    Cause.RATE_LIMITED,
    Cause.INSTITUTION_ERROR,
)

SIMPLEFIN_INSTITUTION = InstitutionSpec(
    code=INSTITUTION_CODE,
    guid=INSTITUTION_GUID,
    name="SimpleFIN Bridge",
    connector=CONNECTOR_NAME,
    credentials=[
        {
            "guid": TOKEN_CREDENTIAL_GUID,
            "label": "SimpleFIN setup token",
            "field_name": TOKEN_FIELD,
            "field_type": "PASSWORD",
            "type": "PASSWORD",
            "display_order": 1,
        }
    ],
    profile={
        "url": "https://beta-bridge.simplefin.org",
        "small_logo_url": None,
        "medium_logo_url": None,
        "forgot_password_url": None,
        "forgot_username_url": None,
        "trouble_signing_in_url": "https://beta-bridge.simplefin.org/my-account",
        "instructional_text": (
            "Connect your banks at SimpleFIN Bridge, then make a setup token there "
            "(<b>New app connection</b>) and paste it here. A token works once."
        ),
        "instructional_text_steps": [
            "Sign in at SimpleFIN Bridge and connect your banks.",
            "Choose New app connection and copy the setup token.",
            "Paste the token here.",
        ],
        "iso_country_code": "US",
        "is_disabled_by_client": False,
        "supports_account_identification": False,
        "supports_account_statement": False,
        "supports_account_verification": False,
        "supports_oauth": False,
        "supports_tax_document": False,
        "supports_transaction_history": True,
    },
)


def create_connector(options: dict[str, str]) -> SimpleFINConnector:
    return SimpleFINConnector()


class SimpleFINConnector(Connector):
    def institutions(self) -> list[InstitutionSpec]:
        return [SIMPLEFIN_INSTITUTION]

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        token = "".join(credentials.get(TOKEN_FIELD, "").split())
        if not token:
            raise ConnectorError(Cause.MISSING_CREDENTIALS, "Enter your SimpleFIN setup token.")
        fingerprint = hashlib.sha256(token.encode()).hexdigest()
        if ctx.secrets.get("access_url") and ctx.secrets.get("token_sha256") == fingerprint:
            return LoginResult(state={})
        access_url = await _claim(ctx, _claim_url(token))
        # A new access starts a new budget and a new history.
        for key in ("requests", "newest_posted"):
            ctx.secrets.pop(key, None)
        ctx.secrets["access_url"] = access_url
        ctx.secrets["token_sha256"] = fingerprint
        return LoginResult(state={})

    async def pull(
        self, ctx: ConnectorContext, state: dict[str, Any], window: PullWindow
    ) -> PullResult:
        access = _Access.parse(str(ctx.secrets.get("access_url") or ""))
        now = ctx.now or dt.datetime.now(dt.UTC)
        _spend_budget(ctx, now)
        params: dict[str, str] = {"version": "2"}
        if window.from_date is None:
            params["balances-only"] = "1"
        else:
            params["start-date"] = str(_epoch(_start(ctx, window)))
            params["end-date"] = str(_epoch(window.to_date + _DAY))  # exclusive
            params["pending"] = "1"
        body = await _get_accounts(ctx, access, params)
        result = _account_set(body, window)
        posted = [
            int(t.posted_at.timestamp())
            for t in result.transactions
            if t.status == "POSTED" and t.posted_at
        ]
        if posted:
            ctx.secrets["newest_posted"] = max([*posted, int(ctx.secrets.get("newest_posted", 0))])
        return result


# --- the claim ---------------------------------------------------------------------


class _HideClaimUrls(logging.Filter):
    """httpx logs every request's URL at INFO; a claim URL not yet claimed is a
    secret (whoever has it gets the access), so its path leaves those lines."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.paths and isinstance(record.args, tuple):
            record.args = tuple(
                _hidden_url(str(a)) if any(p in str(a) for p in self.paths) else a
                for a in record.args
            )
        return True


def _hidden_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/[claim URL hidden]"


_CLAIMS_IN_FLIGHT = _HideClaimUrls()
logging.getLogger("httpx").addFilter(_CLAIMS_IN_FLIGHT)


def _claim_url(token: str) -> str:
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=False).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ConnectorError(Cause.BAD_CREDENTIALS, _NOT_A_TOKEN) from None
    parts = urlsplit(decoded.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectorError(Cause.BAD_CREDENTIALS, _NOT_A_TOKEN)
    return decoded.strip()


async def _claim(ctx: ConnectorContext, claim_url: str) -> str:
    """POSTs to the claim URL, once: the answer is the access URL."""
    http = _http(ctx)
    host = urlsplit(claim_url).hostname or "?"
    parts = urlsplit(claim_url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    path = path if len(path) > 1 else claim_url
    _CLAIMS_IN_FLIGHT.paths.add(path)
    try:
        response = await http.post(claim_url, content=b"", headers={"Content-Length": "0"})
    except httpx.TimeoutException:
        raise
    except httpx.HTTPError as exc:
        raise _unreachable(exc, host, "setup token's claim URL") from None
    finally:
        _CLAIMS_IN_FLIGHT.paths.discard(path)
    code = response.status_code
    if code == 403:
        raise ConnectorError(Cause.BAD_CREDENTIALS, _CLAIM_REFUSED)
    if code >= 500:
        raise ConnectorError(
            Cause.INSTITUTION_UNAVAILABLE, f"{host} could not claim the token now (HTTP {code})."
        )
    if code != 200:
        raise ConnectorError(
            Cause.INSTITUTION_ERROR, f"{host} answered the token's claim with HTTP {code}."
        )
    access_url = response.text.strip()
    try:
        _Access.parse(access_url)
    except ConnectorError:
        raise ConnectorError(
            Cause.DATA_ERROR, f"{host} answered the claim with something that is not an access URL."
        ) from None
    return access_url


def _unreachable(exc: httpx.HTTPError, host: str, what: str) -> ConnectorError:
    if isinstance(exc.__cause__, PrivateAddressRefused):
        # The token is the end user's: only they (or the operator) can change where it goes.
        return ConnectorError(
            Cause.BAD_CREDENTIALS,
            f"The {what} points at {host}, a private or local network address, which "
            "this OpenAgg does not reach. Use a token from SimpleFIN Bridge (or ask the "
            "operator to allow private addresses).",
        )
    return ConnectorError(
        Cause.INSTITUTION_UNAVAILABLE, f"{host} could not be reached ({type(exc).__name__})."
    )


def _http(ctx: ConnectorContext) -> httpx.AsyncClient:
    if ctx.http is None:
        raise ConnectorError(Cause.INTERNAL_ERROR, "No HTTP client.")
    return ctx.http


class _Access:
    """An access URL split into where to send requests and the Basic credentials."""

    def __init__(self, root: str, username: str, password: str) -> None:
        self.root = root
        self.username = username
        self.password = password
        self.host = urlsplit(root).hostname or "?"

    @classmethod
    def parse(cls, url: str) -> _Access:
        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is None
            or parts.password is None
        ):
            raise ConnectorError(
                Cause.BAD_CREDENTIALS,
                "This connection has no SimpleFIN access yet: enter a new setup token.",
            )
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
        root = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        return cls(root, unquote(parts.username), unquote(parts.password))


# --- /accounts -----------------------------------------------------------------------


def _spend_budget(ctx: ConnectorContext, now: dt.datetime) -> None:
    """Counts this job's request against the rolling day, or refuses it."""
    limit = _requests_per_day(ctx)
    stamp = int(now.timestamp())
    day_ago = stamp - int(_DAY.total_seconds())
    made = sorted(int(t) for t in ctx.secrets.get("requests", []) if int(t) > day_ago)
    if len(made) >= limit:
        after = dt.datetime.fromtimestamp(made[len(made) - limit] + _DAY.total_seconds(), dt.UTC)
        ctx.secrets["requests"] = made
        raise ConnectorError(
            Cause.RATE_LIMITED,
            f"OpenAgg keeps to SimpleFIN Bridge's limit of {limit} requests a day for "
            f"this connection; it refreshes again after {after:%Y-%m-%d %H:%M} UTC.",
        )
    ctx.secrets["requests"] = [*made, stamp]


def _requests_per_day(ctx: ConnectorContext) -> int:
    value = ctx.options.get("requests_per_day")
    try:
        return max(1, int(value)) if value else REQUESTS_PER_DAY
    except ValueError:
        raise ConnectorError(
            Cause.INTERNAL_ERROR, "The institution's requests_per_day option is not a number."
        ) from None


def _start(ctx: ConnectorContext, window: PullWindow) -> dt.date:
    """From 14 days before the newest posted transaction seen, but never after the
    engine's own start (a pending transaction the answer leaves out is taken as
    voided) and, unless the engine asks for more, not more than 90 days back."""
    assert window.from_date is not None
    start = window.from_date
    newest = ctx.secrets.get("newest_posted")
    if newest:
        seen = dt.datetime.fromtimestamp(int(newest), dt.UTC).date()
        start = min(start, seen - OVERLAP)
    return max(start, min(window.from_date, ctx.today - FIRST_WINDOW))


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


async def _get_accounts(
    ctx: ConnectorContext, access: _Access, params: dict[str, str]
) -> dict[str, Any]:
    try:
        response = await _http(ctx).get(
            f"{access.root}/accounts",
            params=params,
            auth=(access.username, access.password),
        )
    except httpx.TimeoutException:
        raise
    except httpx.HTTPError as exc:
        raise _unreachable(exc, access.host, "access URL") from None
    code = response.status_code
    words = _words(response.text) if code != 200 else ""
    if code == 403:
        raise ConnectorError(Cause.BAD_CREDENTIALS, _ACCESS_REVOKED)
    if code == 402:
        raise ConnectorError(Cause.USER_ACTION_REQUIRED, _with(_PAYMENT_REQUIRED, words))
    if code == 429:
        raise ConnectorError(
            Cause.RATE_LIMITED, _with(f"{BRIDGE} asked for fewer requests.", words)
        )
    if code >= 500:
        raise ConnectorError(
            Cause.INSTITUTION_UNAVAILABLE, f"{BRIDGE} is unavailable (HTTP {code})."
        )
    if code != 200:
        raise ConnectorError(
            Cause.INSTITUTION_ERROR, _with(f"{BRIDGE} answered HTTP {code}.", words)
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ConnectorError(Cause.DATA_ERROR, f"{BRIDGE}'s answer is not the JSON expected.")
    return body


def _words(text: str) -> str:
    """A server's message, made safe to show: one line, printable, short."""
    clean = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(clean.split())[:_MESSAGE_CHARS]


def _with(ours: str, theirs: str) -> str:
    return f"{ours} {BRIDGE} says: {theirs}" if theirs and not theirs.startswith("<") else ours


# --- errors --------------------------------------------------------------------------


def _error_cause(body: dict[str, Any]) -> tuple[Cause, str] | None:
    """The worst of the answer's errors (``errlist``, or version 1's ``errors``) as a
    cause with the server's words; None when nothing stops the pull."""
    found: list[tuple[Cause, str]] = []
    for entry in body.get("errlist") or []:
        if isinstance(entry, dict):
            text = _words(str(entry.get("message") or entry.get("msg") or ""))
            cause = _errlist_cause(str(entry.get("code") or ""), text)
            if cause is not None:
                found.append((cause, text or f"{BRIDGE} reported {entry.get('code')}."))
    if not body.get("errlist"):
        for entry in body.get("errors") or []:
            text = _words(str(entry))
            cause = _errors_cause(text)
            if cause is not None:
                found.append((cause, text))
    entries = list(body.get("errlist") or body.get("errors") or [])
    if not found and entries and not body.get("accounts"):
        # Errors and nothing else: whatever they say, this pull has no data.
        first = entries[0]
        said = (first.get("message") or first.get("msg")) if isinstance(first, dict) else first
        found.append((Cause.INSTITUTION_ERROR, _words(str(said or "")) or f"{BRIDGE} failed."))
    if not found:
        return None
    return min(found, key=lambda f: _SEVERITY.index(f[0]))


def _errlist_cause(code: str, text: str) -> Cause | None:
    """Version 2's codes: ``gen.`` (the access), ``con.`` (a connection the Bridge has to
    a bank; ``con.auth``: it needs signing in again, at the Bridge), ``act.`` (one
    account)."""
    if _RATE_WORDS.search(text) or "rate" in code:
        return Cause.RATE_LIMITED
    if code.startswith("gen.auth") or (code.startswith("gen.") and _AUTH_WORDS.search(text)):
        return Cause.BAD_CREDENTIALS
    if code.startswith("con.auth") or (code.startswith("con.") and _ATTENTION_WORDS.search(text)):
        return Cause.USER_ACTION_REQUIRED
    if code.startswith("con."):
        return Cause.INSTITUTION_ERROR  # the Bridge retries its bank itself
    return None  # act. and unknown codes: the data is still good


def _errors_cause(text: str) -> Cause | None:
    """Version 1's strings, read as the Bridge writes them."""
    if _RATE_WORDS.search(text):
        return Cause.RATE_LIMITED
    if "may need attention" in text:
        return Cause.USER_ACTION_REQUIRED
    if re.search(r"reauthenticate|authentication", text, re.I):
        return Cause.BAD_CREDENTIALS
    return None


# --- the account set -----------------------------------------------------------------


def _account_set(body: dict[str, Any], window: PullWindow) -> PullResult:
    problem = _error_cause(body)
    if problem is not None:
        raise ConnectorError(*problem)
    raw_accounts = body.get("accounts")
    if not isinstance(raw_accounts, list):
        raise ConnectorError(Cause.DATA_ERROR, f"{BRIDGE}'s answer has no account list.")
    result = PullResult(accounts=[])
    try:
        for raw in raw_accounts:
            account = _account(raw)
            result.accounts.append(account)
            if window.from_date is not None:
                result.transactions += [
                    _transaction(t, account) for t in raw.get("transactions") or []
                ]
            if window.holdings and account.type == "INVESTMENT":
                result.holdings += [_holding(h, account) for h in raw.get("holdings") or []]
    except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation) as exc:
        raise ConnectorError(
            Cause.DATA_ERROR, f"{BRIDGE} sent an account or transaction we cannot read ({exc})."
        ) from None
    return result


def _extra(raw: dict[str, Any]) -> dict[str, Any]:
    found = raw.get("extra")
    return found if isinstance(found, dict) else {}


def _money(value: Any) -> Decimal:
    return Decimal(str(value).strip()).quantize(_CENT)


def _account_type(raw: dict[str, Any], name: str, balance: Decimal) -> tuple[str, str | None]:
    extra = _extra(raw)
    said = str(raw.get("type") or extra.get("type") or extra.get("account_type") or "").upper()
    if said.replace(" ", "_") in _KNOWN_TYPES:
        return said.replace(" ", "_"), None
    if raw.get("holdings"):
        return "INVESTMENT", None
    for words, kind, subtype in _NAME_TYPES:
        if words.search(name):
            return kind, subtype
    # Nothing said: money owed is a card's, the most common debt at the Bridge.
    return ("CREDIT_CARD", None) if balance < 0 else ("CHECKING", None)


def _account(raw: dict[str, Any]) -> AccountData:
    name = str(raw.get("name") or "").strip() or "Account"
    balance = _money(raw["balance"])
    available_raw = raw.get("available-balance")
    available = _money(available_raw) if available_raw not in (None, "") else None
    kind, subtype = _account_type(raw, name, balance)
    details: dict[str, Any] = {}
    if kind in _DEBTS:
        balance = -balance  # owed: negative at SimpleFIN, positive at MX
        if kind in ("CREDIT_CARD", "LINE_OF_CREDIT") and available is not None:
            details["available_credit"] = available
        available = None
    currency = str(raw.get("currency") or "USD")
    return AccountData(
        external_id=str(raw["id"]),
        name=name,
        type=kind,
        subtype=subtype,
        balance=balance,
        available_balance=available,
        # A custom currency is a URL; MX knows only ISO codes.
        currency_code=currency.upper() if len(currency) == 3 else "USD",
        details=details,
    )


def _when(value: Any) -> dt.datetime | None:
    """An epoch time (an int, or a string of one); 0 or nothing is none."""
    if value in (None, "", 0, "0"):
        return None
    return dt.datetime.fromtimestamp(int(float(value)), dt.UTC)


def _transaction(raw: dict[str, Any], account: AccountData) -> TransactionData:
    amount = _money(raw["amount"])
    posted = _when(raw.get("posted"))
    transacted = _when(raw.get("transacted_at"))
    pending = bool(raw["pending"]) if raw.get("pending") is not None else posted is None
    happened = transacted or posted
    if happened is None:
        raise ValueError(f"transaction {raw.get('id')!r} has no time")
    description = str(raw.get("description") or "").strip()
    payee = str(raw.get("payee") or "").strip()
    memo = str(raw.get("memo") or "").strip()
    extra = _extra(raw)
    category = extra.get("category")
    return TransactionData(
        # The SimpleFIN id is the MX id. The Bridge either posts a pending one under the
        # same id (then it is updated in place) or under a new one (then the pending one
        # is missing from the answer, and the engine removes it).
        external_id=str(raw["id"]),
        account_external_id=account.external_id,
        amount=abs(amount),
        type="CREDIT" if amount > 0 else "DEBIT",
        # The day it happened, as MX dates a transaction; the posting time is kept apart.
        date=happened.date(),
        description=payee or description or memo or "Transaction",
        original_description=description or None,
        memo=memo or None,
        status="PENDING" if pending else "POSTED",
        transacted_at=happened,
        posted_at=None if pending else posted,
        category=str(category) if category else None,
        currency_code=account.currency_code,
    )


def _holding(raw: dict[str, Any], account: AccountData) -> HoldingData:
    shares = Decimal(str(raw.get("shares") or raw.get("quantity") or 0))
    value = _money(raw.get("market_value") or 0)
    cost = raw.get("cost_basis")
    return HoldingData(
        external_id=str(raw["id"]),
        account_external_id=account.external_id,
        symbol=str(raw["symbol"]) if raw.get("symbol") else None,
        description=str(raw.get("description") or raw.get("symbol") or "Holding"),
        holding_type="UNKNOWN_TYPE",
        quantity=shares,
        current_price=(value / shares) if shares else value,
        cost_basis=_money(cost) if cost not in (None, "") else None,
        currency_code=account.currency_code,
    )
