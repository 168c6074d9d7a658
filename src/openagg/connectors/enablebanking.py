"""European banks over PSD2 through Enable Banking's API: the ``enablebanking``
connector.

Institutions are data (``openagg institutions add --connector enablebanking --oauth``),
one per bank (ASPSP), with the options ``application_id``, ``private_key_secret`` (the
application's RSA key, PEM; sealed: its key ends in ``secret``), ``aspsp_name``,
``aspsp_country``, and optionally ``api_base`` and ``consent_days``. Every request
carries a short-lived RS256 JWT the connector signs itself. The end user consents at
the bank (``POST /auth`` gives its URL); the code that comes back to the platform's
callback opens a session (``POST /sessions``) whose id and accounts are kept in
``ctx.secrets``. Jobs read each account's balances and transactions (paged by
``continuation_key``).

PSD2 lets a provider read an account without the end user present four times per UTC
day. A pull of one account's transactions (all its pages) sent without the end user's
IP address counts as one; past four, the account is left unread until the next UTC
day: the job succeeds with the last known balance and the account's stored
transactions untouched (``PullResult.unread``). docs/connectors/enablebanking.md has
the rule, the IBAN matching and the statuses.

Stored secrets (every string value of them is hidden wherever it appears, so days and
times are integers):

- ``session_id``, ``valid_until`` (epoch seconds, the consent's end);
- ``accounts``: ``{external id: {uid: last balance in cents}}``, the external id
  being the IBAN when the bank gives one, else the uid (a key, not a value: uids
  appear in request URLs, which the HTTP client's log prints);
- ``about``: ``{external id: {JSON [MX type, currency, name]: 0}}``: what is public
  about an account is kept as a key, since string values count as secret;
- ``unattended``: ``{external id: [UTC day ordinal, accesses that day]}``;
- ``read_through``: ``{external id: day ordinal}``, the last day whose transactions
  were read, so an account left unread is caught up from there.

Connectors import neither ``wire`` nor ``services`` (pyproject's ``[tool.importlinter]``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from openagg.connectors.base import (
    AccountData,
    Connector,
    ConnectorContext,
    ConnectorError,
    LoginResult,
    OAuthStart,
    PullResult,
    PullWindow,
    TransactionData,
)
from openagg.connectors.http import PrivateAddressRefused
from openagg.domain.causes import Cause

CONNECTOR_NAME = "enablebanking"
DEFAULT_API_BASE = "https://api.enablebanking.com"
JWT_ISSUER = "enablebanking.com"
JWT_AUDIENCE = "api.enablebanking.com"
# Enable Banking takes JWTs living at most an hour; a shorter one leaves room for
# clock skew between the two sides.
JWT_SECONDS = 1800
# PSD2 (RTS art. 36(5)): four accesses a day without the end user, per account.
UNATTENDED_PER_DAY = 4
CONSENT_MAX_DAYS = 90
# An account left unread is read again from a few days before its last read day:
# rows booked late are dated back.
CATCH_UP_DAYS = 3
MAX_PAGES = 200
_MESSAGE_CHARS = 300
# Balance types, most wanted first (ISO 20022 codes, as Enable Banking passes them on).
_CURRENT = ("CLBD", "ITBD", "XPCD", "OPBD", "PRCD", "INFO", "OTHR")
_AVAILABLE = ("ITAV", "CLAV", "FWAV")
_CASH_TYPES = {"CACC": "CHECKING", "SVGS": "SAVINGS", "CARD": "CREDIT_CARD", "LOAN": "LOAN"}

RECONNECT = "The user must reconnect (consent at the bank again) to restore access."


def create_connector(options: dict[str, str]) -> EnableBankingConnector:
    """The entry point's factory: every option is the institution's (``ctx.options``)."""
    return EnableBankingConnector()


@dataclass(frozen=True)
class _Options:
    application_id: str
    private_key: rsa.RSAPrivateKey
    api_base: str
    aspsp_name: str
    aspsp_country: str
    consent_days: int

    @classmethod
    def of(cls, options: Mapping[str, str]) -> _Options:
        needed = ("application_id", "private_key_secret", "aspsp_name", "aspsp_country")
        missing = [k for k in needed if not options.get(k)]
        if missing:
            raise ConnectorError(
                Cause.INSTITUTION_ERROR,
                f"The institution has no {', '.join(repr(k) for k in missing)} option.",
            )
        try:
            key = serialization.load_pem_private_key(
                options["private_key_secret"].encode(), password=None
            )
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConnectorError(
                Cause.INSTITUTION_ERROR,
                "The institution's private_key_secret option is not an unencrypted RSA "
                "private key in PEM.",
            )
        try:
            days = int(options.get("consent_days") or CONSENT_MAX_DAYS)
        except ValueError:
            days = CONSENT_MAX_DAYS
        return cls(
            application_id=options["application_id"],
            private_key=key,
            api_base=(options.get("api_base") or DEFAULT_API_BASE).rstrip("/"),
            aspsp_name=options["aspsp_name"],
            aspsp_country=options["aspsp_country"].upper(),
            consent_days=max(1, min(days, CONSENT_MAX_DAYS)),
        )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def application_jwt(application_id: str, key: rsa.RSAPrivateKey, issued_at: int) -> str:
    """The Bearer token of every request: RS256, ``kid`` the application's id. Timed
    by the wall clock, not the platform's: Enable Banking checks it against its own."""
    header = {"typ": "JWT", "alg": "RS256", "kid": application_id}
    claims = {
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": issued_at,
        "exp": issued_at + JWT_SECONDS,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


# --- answers to causes -------------------------------------------------------------


def _words(response: httpx.Response) -> str:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [
            str(body[k])
            for k in ("error", "message", "detail")
            if body.get(k) not in (None, "") and not isinstance(body[k], dict | list)
        ]
        if parts:
            return ": ".join(parts)[:_MESSAGE_CHARS]
    return response.text.strip()[:_MESSAGE_CHARS] or f"HTTP {response.status_code}"


def _status_error(response: httpx.Response) -> ConnectorError:
    code, words = response.status_code, _words(response)
    if code == 429:
        return ConnectorError(Cause.RATE_LIMITED, f"Enable Banking says too many requests: {words}")
    if code >= 500:
        return ConnectorError(
            Cause.INSTITUTION_UNAVAILABLE, f"Enable Banking answered HTTP {code}: {words}"
        )
    if code in (401, 403, 404, 422) and "SESSION" in words.upper():
        # The consent ended (expired, revoked at the bank, or closed): only the end
        # user can give a new one.
        return ConnectorError(
            Cause.BAD_CREDENTIALS,
            f"The bank's consent for this connection has ended ({words}). {RECONNECT}",
        )
    if code in (401, 403):
        return ConnectorError(
            Cause.INSTITUTION_ERROR,
            f"Enable Banking refused OpenAgg's application (HTTP {code}: {words}): check the "
            "institution's application_id and private_key_secret options.",
        )
    if code == 400:
        return ConnectorError(Cause.BAD_REQUEST, f"Enable Banking refused the request: {words}")
    return ConnectorError(Cause.INSTITUTION_ERROR, f"Enable Banking answered HTTP {code}: {words}")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise ConnectorError(
            Cause.DATA_ERROR, "Enable Banking answered with something that is not JSON."
        ) from None
    if not isinstance(body, dict):
        raise ConnectorError(
            Cause.DATA_ERROR, "Enable Banking answered JSON that is not an object."
        )
    return body


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    found = str(value).strip()
    return found or None


def _money(value: Any, what: str) -> tuple[Decimal, str | None]:
    """An Enable Banking ``{amount, currency}``."""
    if not isinstance(value, dict):
        raise ConnectorError(Cause.DATA_ERROR, f"Enable Banking sent no {what}.")
    try:
        amount = Decimal(str(value.get("amount")))
    except InvalidOperation:
        raise ConnectorError(
            Cause.DATA_ERROR, f"Enable Banking sent {what} {value.get('amount')!r}."
        ) from None
    if not amount.is_finite():
        raise ConnectorError(Cause.DATA_ERROR, f"Enable Banking sent {what} {amount}.")
    return amount, _text(value.get("currency"))


def _date(value: Any) -> dt.date | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ConnectorError(Cause.DATA_ERROR, f"Enable Banking sent the date {text!r}.") from None


# --- mapping ---------------------------------------------------------------------


def session_account(item: Any) -> tuple[str, dict[str, Any]]:
    """An account of ``POST /sessions``: its uid and what is kept of it. The IBAN
    is its MX external id: uids change when the user consents again, IBANs do not."""
    if not isinstance(item, dict) or not _text(item.get("uid")):
        raise ConnectorError(Cause.DATA_ERROR, "Enable Banking sent an account without a uid.")
    uid = str(item["uid"])
    ids = item.get("account_id")
    iban = _text(ids.get("iban")) if isinstance(ids, dict) else None
    iban = iban.replace(" ", "").upper() if iban else None
    kind = _CASH_TYPES.get(str(item.get("cash_account_type") or "").upper(), "CHECKING")
    name = _text(item.get("name")) or _text(item.get("product")) or kind.title()
    if iban:
        name = f"{name} …{iban[-4:]}"
    kept = {
        "id": iban or uid,
        "name": name,
        "currency": _text(item.get("currency")) or "EUR",
        "type": kind,
    }
    return uid, kept


def balances(body: dict[str, Any]) -> tuple[Decimal, Decimal | None]:
    """The current and available balance of ``/accounts/{uid}/balances``."""
    found: dict[str, Decimal] = {}
    for b in body.get("balances") or []:
        if isinstance(b, dict):
            kind = str(b.get("balance_type") or "OTHR").upper()
            found.setdefault(kind, _money(b.get("balance_amount"), "balance")[0])
    current = next((found[k] for k in _CURRENT if k in found), None)
    available = next((found[k] for k in _AVAILABLE if k in found), None)
    if current is None:
        current = available if available is not None else next(iter(found.values()), Decimal(0))
    return current, available


def transaction_data(account_id: str, t: Any, currency: str) -> TransactionData | None:
    """One Enable Banking transaction; None for one that is neither booked nor
    pending (rejected, cancelled)."""
    if not isinstance(t, dict):
        raise ConnectorError(
            Cause.DATA_ERROR, "Enable Banking sent a transaction that is not an object."
        )
    status = str(t.get("status") or "BOOK").upper()
    if status not in ("BOOK", "PDNG"):
        return None
    amount, in_currency = _money(t.get("transaction_amount"), "transaction amount")
    indicator = str(t.get("credit_debit_indicator") or "").upper()
    if indicator not in ("CRDT", "DBIT"):
        indicator = "CRDT" if amount > 0 else "DBIT"
    booked = _date(t.get("booking_date"))
    if status == "PDNG":
        when = _date(t.get("transaction_date")) or _date(t.get("value_date")) or booked
    else:
        when = booked or _date(t.get("value_date")) or _date(t.get("transaction_date"))
    if when is None:
        raise ConnectorError(Cause.DATA_ERROR, "Enable Banking sent a transaction without a date.")
    remittance = t.get("remittance_information") or []
    info = " ".join(str(r) for r in remittance if r) if isinstance(remittance, list) else None
    party = t.get("creditor" if indicator == "DBIT" else "debtor")
    counterparty = _text(party.get("name")) if isinstance(party, dict) else None
    description = _text(info) or counterparty or ("Credit" if indicator == "CRDT" else "Debit")
    tid = _text(t.get("entry_reference")) or _text(t.get("transaction_id"))
    if tid is None:
        # No id from the bank: one from what the row says. A pending row without one
        # is removed by the engine when a later pull no longer lists it (booked).
        seen = f"{status}|{when}|{amount}|{indicator}|{description}"
        tid = "h-" + hashlib.sha256(seen.encode()).hexdigest()[:24]
    return TransactionData(
        external_id=tid,
        account_external_id=account_id,
        amount=abs(amount),
        type="CREDIT" if indicator == "CRDT" else "DEBIT",
        date=when,
        description=description,
        status="PENDING" if status == "PDNG" else "POSTED",
        original_description=_text(info),
        posted_at=(
            dt.datetime(booked.year, booked.month, booked.day, tzinfo=dt.UTC)
            if booked and status == "BOOK"
            else None
        ),
        merchant_name=counterparty,
        currency_code=in_currency or currency,
    )


# --- the connector ------------------------------------------------------------------


class EnableBankingConnector(Connector):
    """One instance serves every Enable Banking institution; nothing about a member
    is kept here."""

    async def _request(
        self,
        ctx: ConnectorContext,
        options: _Options,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        attended: bool = False,
    ) -> dict[str, Any]:
        assert ctx.http is not None  # the engine always gives one
        headers = {
            "Authorization": "Bearer "
            + application_jwt(options.application_id, options.private_key, int(time.time())),
            "Accept": "application/json",
        }
        if attended and ctx.end_user_ip:
            # With it the bank counts the request as the end user's own, not against
            # the four unattended accesses a day.
            headers["Psu-Ip-Address"] = ctx.end_user_ip
        try:
            response = await ctx.http.request(
                method, options.api_base + path, json=body, params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, PrivateAddressRefused):
                raise ConnectorError(
                    Cause.INSTITUTION_UNAVAILABLE,
                    "Enable Banking's api_base is at a private or local network address, which "
                    "this OpenAgg does not reach (OPENAGG_CONNECTOR_ALLOW_PRIVATE_ADDRESSES).",
                ) from None
            raise  # the engine's net: a timeout, or the institution unavailable
        if response.status_code == 204:
            return {}
        if response.status_code not in (200, 201):
            raise _status_error(response)
        return _json(response)

    async def _consent_limit(self, ctx: ConnectorContext, options: _Options) -> int:
        """The consent's length in days: the bank's maximum when ``/aspsps`` says it,
        capped by the institution's ``consent_days`` (at most 90)."""
        days = options.consent_days
        try:
            found = await self._request(
                ctx, options, "GET", "/aspsps", params={"country": options.aspsp_country}
            )
        except ConnectorError:
            return days  # the bank's maximum is a refinement, not a requirement
        for aspsp in found.get("aspsps") or []:
            if isinstance(aspsp, dict) and aspsp.get("name") == options.aspsp_name:
                seconds = aspsp.get("maximum_consent_validity")
                if isinstance(seconds, int | Decimal) and seconds > 0:
                    days = min(days, max(1, int(seconds) // 86400))
        return days

    # -- OAuth --------------------------------------------------------------------

    async def oauth_start(
        self, ctx: ConnectorContext, redirect_uri: str, state: str, code_challenge: str
    ) -> OAuthStart:
        # Enable Banking's own flow has no PKCE: the platform's single-use ``state``
        # binds the answer to the member, and the code is useless without the JWT key.
        options = _Options.of(ctx.options)
        days = await self._consent_limit(ctx, options)
        now = ctx.now or dt.datetime.now(dt.UTC)
        body = {
            "access": {"valid_until": (now + dt.timedelta(days=days)).isoformat()},
            "aspsp": {"name": options.aspsp_name, "country": options.aspsp_country},
            "state": state,
            "redirect_url": redirect_uri,
            "psu_type": "personal",
        }
        answer = await self._request(ctx, options, "POST", "/auth", body=body, attended=True)
        url = _text(answer.get("url"))
        if url is None:
            raise ConnectorError(Cause.DATA_ERROR, "Enable Banking gave no authorization URL.")
        return OAuthStart(url)

    async def oauth_finish(
        self, ctx: ConnectorContext, params: dict[str, str], redirect_uri: str, code_verifier: str
    ) -> None:
        # A refusal at the bank (``error=``) is the platform's to handle: it never gets here.
        code = params.get("code")
        if not code:
            raise ConnectorError(Cause.BAD_CREDENTIALS, "The bank sent back no authorization code.")
        options = _Options.of(ctx.options)
        session = await self._request(
            ctx, options, "POST", "/sessions", body={"code": code}, attended=True
        )
        keep_session(ctx, session)

    # -- jobs -----------------------------------------------------------------------

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        if not ctx.secrets.get("session_id"):
            raise ConnectorError(
                Cause.BAD_CREDENTIALS,
                f"This connection holds no consent from the bank. {RECONNECT}",
            )
        until = ctx.secrets.get("valid_until")
        now = ctx.now or dt.datetime.now(dt.UTC)
        if isinstance(until, int) and until <= now.timestamp():
            raise ConnectorError(
                Cause.BAD_CREDENTIALS,
                f"The bank's consent for this connection expired. {RECONNECT}",
            )
        _Options.of(ctx.options)  # a broken option fails here, before any request
        return LoginResult(state={})

    async def revoke(self, ctx: ConnectorContext) -> None:
        """End a deleted member's consent: ``DELETE /sessions/{id}``. A session the
        API no longer knows (ended, expired or already deleted) needs nothing more."""
        sid = ctx.secrets.get("session_id")
        if not isinstance(sid, str) or not sid:
            return
        options = _Options.of(ctx.options)
        try:
            await self._request(ctx, options, "DELETE", f"/sessions/{quote(sid, safe='')}")
        except ConnectorError as exc:
            if exc.cause is not Cause.BAD_CREDENTIALS:  # the consent had ended already
                raise

    async def pull(
        self, ctx: ConnectorContext, state: dict[str, Any], window: PullWindow
    ) -> PullResult:
        options = _Options.of(ctx.options)
        attended = ctx.end_user_present and bool(ctx.end_user_ip)
        now = ctx.now or dt.datetime.now(dt.UTC)
        today = now.date().toordinal()
        accounts = stored_accounts(ctx.secrets)
        spent: dict[str, Any] = dict(ctx.secrets.get("unattended") or {})
        read_through: dict[str, Any] = dict(ctx.secrets.get("read_through") or {})
        result = PullResult(accounts=[])
        unread: set[str] = set()
        for uid, kept in accounts.items():
            aid = str(kept["id"])
            day, count = spent.get(aid) or [today, 0]
            used = count if day == today else 0
            if window.from_date is not None and not attended and used >= UNATTENDED_PER_DAY:
                # Deferred to the next UTC day: no request at all for this account.
                ctx.log.info(
                    "account %s: %d unattended accesses today, read again tomorrow", uid, used
                )
                unread.add(aid)
                result.accounts.append(_account(kept, None))
                continue
            path = f"/accounts/{quote(uid, safe='')}"
            found = await self._request(ctx, options, "GET", f"{path}/balances", attended=attended)
            current, available = balances(found)
            kept["cents"] = int((current * 100).to_integral_value())
            result.accounts.append(_account(kept, available))
            if window.from_date is None:
                continue
            start = window.from_date
            last = read_through.get(aid)
            if isinstance(last, int):
                start = min(start, dt.date.fromordinal(last - CATCH_UP_DAYS))
            rows = [
                found_row
                async for t in self._pages(
                    ctx, options, f"{path}/transactions", start, now.date(), attended
                )
                if (found_row := transaction_data(aid, t, str(kept["currency"]))) is not None
            ]
            result.transactions.extend(rows)
            read_through[aid] = today
            if not attended:
                spent[aid] = [today, used + 1]
        ctx.secrets["unattended"] = spent
        ctx.secrets["read_through"] = read_through
        result.unread = frozenset(unread)
        store_accounts(ctx.secrets, accounts)
        return result

    async def _pages(
        self,
        ctx: ConnectorContext,
        options: _Options,
        path: str,
        start: dt.date,
        end: dt.date,
        attended: bool,
    ) -> AsyncIterator[Any]:
        query = {"date_from": start.isoformat(), "date_to": end.isoformat()}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body = await self._request(ctx, options, "GET", path, params=query, attended=attended)
            items = body.get("transactions") or []
            if not isinstance(items, list):
                raise ConnectorError(
                    Cause.DATA_ERROR, "Enable Banking's transactions are not a list."
                )
            for item in items:
                yield item
            key = _text(body.get("continuation_key"))
            if key is None:
                return
            if key in seen:
                raise ConnectorError(
                    Cause.DATA_ERROR, "Enable Banking's transaction pages go round."
                )
            seen.add(key)
            query["continuation_key"] = key
        raise ConnectorError(
            Cause.DATA_ERROR, f"Enable Banking's transactions run past {MAX_PAGES} pages."
        )


def _account(kept: Mapping[str, Any], available: Decimal | None) -> AccountData:
    return AccountData(
        external_id=str(kept["id"]),
        name=str(kept["name"]),
        type=str(kept["type"]),
        balance=Decimal(int(kept.get("cents") or 0)) / 100,
        available_balance=available,
        currency_code=str(kept["currency"]),
    )


def stored_accounts(secrets: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The session's accounts by uid: ``id`` (external id), ``name``, ``currency``,
    ``type`` and ``cents`` (the last balance read)."""
    found: dict[str, dict[str, Any]] = {}
    about = secrets.get("about") or {}
    for aid, entry in (secrets.get("accounts") or {}).items():
        described = next(iter(about.get(aid) or {}), None)
        kind, currency, name = json.loads(described) if described else ("CHECKING", "EUR", aid)
        for uid, cents in entry.items():
            found[uid] = {
                "id": aid,
                "name": name,
                "currency": currency,
                "type": kind,
                "cents": cents,
            }
    return found


def store_accounts(secrets: dict[str, Any], accounts: Mapping[str, Mapping[str, Any]]) -> None:
    secrets["accounts"] = {k["id"]: {uid: k.get("cents")} for uid, k in accounts.items()}
    secrets["about"] = {
        k["id"]: {json.dumps([k["type"], k["currency"], k["name"]], ensure_ascii=False): 0}
        for k in accounts.values()
    }


def keep_session(ctx: ConnectorContext, session: dict[str, Any]) -> None:
    """A new session into ``ctx.secrets``. Its accounts have new uids; the budget and
    the read days go on under their IBANs, so a new consent changes no MX account."""
    sid = _text(session.get("session_id"))
    if sid is None:
        raise ConnectorError(Cause.DATA_ERROR, "Enable Banking's session has no session_id.")
    accounts = dict(session_account(a) for a in session.get("accounts") or [])
    if not accounts:
        raise ConnectorError(Cause.DATA_ERROR, "Enable Banking's session lists no accounts.")
    before = {str(k["id"]): k.get("cents") for k in stored_accounts(ctx.secrets).values()}
    for kept in accounts.values():
        kept["cents"] = before.get(kept["id"])
    ctx.secrets["session_id"] = sid
    store_accounts(ctx.secrets, accounts)
    access = session.get("access")
    until = _text(access.get("valid_until")) if isinstance(access, dict) else None
    if until is not None:
        try:
            when = dt.datetime.fromisoformat(until)
        except ValueError:
            raise ConnectorError(
                Cause.DATA_ERROR, f"Enable Banking sent valid_until {until!r}."
            ) from None
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        ctx.secrets["valid_until"] = int(when.timestamp())
    else:
        ctx.secrets.pop("valid_until", None)
