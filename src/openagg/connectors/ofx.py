"""OFX Direct Connect: a bank's OFX server, with the member's own credentials.

Institutions are data (``openagg institutions add --connector ofx --option url=…
--option org=… --option fid=…``). Each job signs on and lists the accounts, then asks
for one statement per account (OFX has no sessions: every request signs on again).
The member keeps, as stored secrets: a CLIENTUID (the bank registers it as a device,
so it never changes), the OFX version the bank accepted, and MFA answers, which
OFX banks ask for again on later signons.

Status codes become causes by `STATUS_CAUSES`; the bank's own MESSAGE goes with
them. The table is in docs/connectors/ofx.md.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx

from openagg import ofx
from openagg.connectors.base import (
    AccountData,
    Challenge,
    Connector,
    ConnectorContext,
    ConnectorError,
    HoldingData,
    LoginResult,
    PullResult,
    PullWindow,
    TransactionData,
)
from openagg.domain.causes import Cause
from openagg.ofx import models as codes
from openagg.ofx import writer

DEFAULT_VERSION = "220"
# What other major version to try, once, when a server refuses the first.
_OTHER_MAJOR = {1: "220", 2: "103"}
# HTTP answers that mean "not this request" rather than "not now".
_REFUSALS = frozenset({400, 405, 406, 415, 501})
# Many OFX servers sit behind firewalls that admit only the user agents of known
# OFX clients; an institution's `useragent` option overrides this.
DEFAULT_USER_AGENT = "InetClntApp/3.0"

STATUS_CAUSES: dict[int, Cause] = {
    codes.MFA_REQUIRED: Cause.MFA_REQUIRED,
    codes.MFA_INVALID: Cause.MFA_WRONG_ANSWER,
    codes.MFA_ERROR: Cause.MFA_WRONG_ANSWER,
    codes.SIGNON_INVALID: Cause.BAD_CREDENTIALS,
    codes.SIGNON_INVALID_PASSWORD_CHANGE: Cause.BAD_CREDENTIALS,
    codes.EMPTY_SIGNON_NOT_SUPPORTED: Cause.BAD_CREDENTIALS,
    codes.LOCKED_OUT: Cause.LOCKED_OUT,
    codes.MUST_CHANGE_PASSWORD: Cause.USER_ACTION_REQUIRED,
    codes.CLIENTUID_ERROR: Cause.USER_ACTION_REQUIRED,
    codes.AUTHTOKEN_REQUIRED: Cause.USER_ACTION_REQUIRED,
    codes.AUTHTOKEN_INVALID: Cause.USER_ACTION_REQUIRED,
    codes.ACCOUNT_IN_USE: Cause.INSTITUTION_ERROR,
    codes.FI_INVALID: Cause.BAD_REQUEST,
    codes.UNSUPPORTED_VERSION: Cause.BAD_REQUEST,
    codes.GENERAL_ERROR: Cause.INSTITUTION_ERROR,
}

_BANK_TYPES = {
    "CHECKING": ("CHECKING", None),
    "SAVINGS": ("SAVINGS", None),
    "MONEYMRKT": ("SAVINGS", "MONEY_MARKET"),
    "CD": ("SAVINGS", "CERTIFICATE_OF_DEPOSIT"),
    "CREDITLINE": ("LINE_OF_CREDIT", None),
}
_HOLDING_TYPES = {
    "STOCK": "EQUITY",
    "MF": "MUTUAL_FUND",
    "DEBT": "BOND",
    "OPT": "OPTIONS",
    "OTHER": "UNKNOWN_TYPE",
}
_INCOME_WORDS = {
    "DIV": "Dividend",
    "INTEREST": "Interest",
    "CGLONG": "Capital gain",
    "CGSHORT": "Capital gain",
}


def create_connector(options: dict[str, str]) -> OFXConnector:
    return OFXConnector()


def cause_of(status: ofx.Status) -> Cause:
    return STATUS_CAUSES.get(status.code, Cause.INSTITUTION_ERROR)


def _message(status: ofx.Status) -> str:
    return status.message.strip() or f"The bank answered with OFX status {status.code}."


class _Bank:
    """One member's conversation with one OFX server."""

    def __init__(self, ctx: ConnectorContext, credentials: dict[str, str]) -> None:
        options = ctx.options
        for key in ("url", "org", "fid"):
            if not options.get(key):
                raise ConnectorError(
                    Cause.INTERNAL_ERROR, f"The institution has no {key!r} option."
                )
        if ctx.http is None:
            raise ConnectorError(Cause.INTERNAL_ERROR, "No HTTP client.")
        self.ctx = ctx
        self.http: httpx.AsyncClient = ctx.http
        self.credentials = credentials
        self.version = str(ctx.secrets.get("version") or options.get("version") or DEFAULT_VERSION)
        try:
            writer.major_of(self.version)
        except ValueError as exc:  # the operator's mistake: say so plainly
            raise ConnectorError(
                Cause.INTERNAL_ERROR, f"The institution's OFX options: {exc}"
            ) from None
        if "clientuid" not in ctx.secrets:
            ctx.secrets["clientuid"] = str(uuid.uuid4()).upper()
        self.trnuid = 0

    def signon(self, mfa_answers: dict[str, str] | None = None) -> writer.SignonRequest:
        o = self.ctx.options
        answers = (
            mfa_answers if mfa_answers is not None else self.ctx.secrets.get("mfa_answers") or {}
        )
        return writer.SignonRequest(
            userid=self.credentials.get("LOGIN", ""),
            password=self.credentials.get("PASSWORD", ""),
            org=o["org"],
            fid=o["fid"],
            appid=o.get("appid") or "QWIN",
            appver=o.get("appver") or "2700",
            clientuid=self.ctx.secrets["clientuid"],
            mfa_answers=answers,
        )

    def next_trnuid(self) -> str:
        self.trnuid += 1
        return str(uuid.UUID(int=uuid.uuid4().int ^ self.trnuid)).upper()

    async def exchange(
        self, messages: list[writer.Node], mfa_answers: dict[str, str] | None = None
    ) -> ofx.Document:
        """Sends one request; on a refusal, tries the other major version once and
        keeps whichever version the bank accepted."""
        try:
            doc = await self._post(self.version, messages, mfa_answers)
        except _Refused as first:
            if self.ctx.secrets.get("version") == self.version:
                raise first.error() from None  # this version worked before: not a version problem
            other = _OTHER_MAJOR[writer.major_of(self.version)]
            self.ctx.log.info("OFX %s refused (%s); trying %s", self.version, first.reason, other)
            try:
                doc = await self._post(other, messages, mfa_answers)
            except _Refused as second:
                raise second.error() from None
            self.version = other
        # The bank spoke this version (whatever it said): keep it for the next job.
        self.ctx.secrets["version"] = self.version
        return doc

    async def _post(
        self, version: str, messages: list[writer.Node], mfa_answers: dict[str, str] | None
    ) -> ofx.Document:
        body = writer.request(version, self.signon(mfa_answers), messages)
        response = await self.http.post(
            self.ctx.options["url"],
            content=body,
            headers={
                "User-Agent": self.ctx.options.get("useragent") or DEFAULT_USER_AGENT,
                "Content-Type": "application/x-ofx",
                "Accept": "application/x-ofx, application/xml;q=0.9, */*;q=0.8",
            },
        )
        code = response.status_code
        if code in _REFUSALS:
            raise _Refused(
                f"HTTP {code}",
                Cause.INSTITUTION_ERROR,
                f"The bank's OFX server answered HTTP {code}.",
            )
        if code == 429:
            raise ConnectorError(
                Cause.RATE_LIMITED, "The bank's OFX server asked us to slow down (HTTP 429)."
            )
        if code >= 500:
            raise ConnectorError(
                Cause.INSTITUTION_UNAVAILABLE,
                f"The bank's OFX server is unavailable (HTTP {code}).",
            )
        if code != 200:
            raise ConnectorError(
                Cause.INSTITUTION_ERROR, f"The bank's OFX server answered HTTP {code}."
            )
        try:
            doc = ofx.parse(response.content)
        except ofx.OFXError as exc:
            raise _Refused(
                "unreadable answer",
                Cause.DATA_ERROR,
                f"The bank's answer is not OFX we can read ({exc}).",
            ) from None
        signon = doc.signon
        if signon is None:
            raise _Refused(
                "no signon", Cause.DATA_ERROR, "The bank's answer has no signon response."
            )
        if signon.status.code == codes.UNSUPPORTED_VERSION:
            raise _Refused("version refused", Cause.BAD_REQUEST, _message(signon.status))
        for warning in doc.warnings[:5]:
            self.ctx.log.info("OFX answer read with a warning: %s", warning)
        return doc


class _Refused(Exception):
    """The server would not take this request as written (maybe another version)."""

    def __init__(self, reason: str, cause: Cause, message: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.message = message

    def error(self) -> ConnectorError:
        return ConnectorError(self.cause, self.message)


class OFXConnector(Connector):
    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        bank = _Bank(ctx, credentials)
        doc = await bank.exchange([writer.account_list(bank.next_trnuid())])
        status = doc.signon.status if doc.signon else None
        if (
            status is not None
            and status.code in (codes.MFA_REQUIRED, codes.MFA_INVALID)
            and ctx.secrets.get("mfa_answers")
        ):
            # Answers kept from an earlier round no longer do: ask the member again.
            ctx.secrets.pop("mfa_answers", None)
            doc = await bank.exchange([writer.account_list(bank.next_trnuid())], mfa_answers={})
            status = doc.signon.status if doc.signon else None
        if status is not None and status.code == codes.MFA_REQUIRED:
            return await self._challenge(bank, credentials)
        return self._signed_on(bank, doc, credentials)

    async def answer(
        self, ctx: ConnectorContext, state: dict[str, Any], answers: dict[str, str]
    ) -> LoginResult:
        credentials = state["credentials"]
        bank = _Bank(ctx, credentials)
        given = {phrase: answers.get(phrase, "") for phrase in state.get("phrases", [])}
        doc = await bank.exchange([writer.account_list(bank.next_trnuid())], mfa_answers=given)
        if doc.signon and doc.signon.status.code == codes.MFA_REQUIRED:
            return await self._challenge(bank, credentials)
        result = self._signed_on(bank, doc, credentials)
        ctx.secrets["mfa_answers"] = given
        return result

    async def _challenge(self, bank: _Bank, credentials: dict[str, str]) -> LoginResult:
        doc = await bank.exchange(
            [writer.mfa_challenge(bank.next_trnuid(), dt.datetime.now(dt.UTC))], mfa_answers={}
        )
        if not doc.mfa_challenges:
            raise ConnectorError(
                Cause.INSTITUTION_ERROR,
                "The bank asked for more information but sent no questions.",
            )
        challenges = [
            Challenge(guid=c.phrase_id, label=c.label, type="TEXT") for c in doc.mfa_challenges
        ]
        state = {"credentials": credentials, "phrases": [c.phrase_id for c in doc.mfa_challenges]}
        return LoginResult(state, challenges)

    def _signed_on(
        self, bank: _Bank, doc: ofx.Document, credentials: dict[str, str]
    ) -> LoginResult:
        assert doc.signon is not None
        status = doc.signon.status
        if not status.ok:
            raise ConnectorError(cause_of(status), _message(status))
        errors = [s for s in doc.statuses if s.source == "ACCTINFOTRNRS" and not s.ok]
        if errors:
            raise ConnectorError(cause_of(errors[0]), _message(errors[0]))
        accounts = [
            _account_ref_state(a.account, a.description) for a in doc.accounts if _usable(a)
        ]
        if not accounts:
            raise ConnectorError(
                Cause.INSTITUTION_ERROR,
                "The bank listed no accounts open to downloads. Direct Connect may need to be "
                "enabled for them at the bank.",
            )
        return LoginResult({"credentials": credentials, "accounts": accounts})

    async def pull(
        self, ctx: ConnectorContext, state: dict[str, Any], window: PullWindow
    ) -> PullResult:
        bank = _Bank(ctx, state["credentials"])
        result = PullResult(accounts=[])
        end = window.to_date if window.from_date is not None else ctx.today
        start = window.from_date if window.from_date is not None else ctx.today
        for saved in state["accounts"]:
            ref = _account_ref(saved, ctx.options)
            doc = await bank.exchange([writer.statement(bank.next_trnuid(), ref, start, end)])
            if doc.signon is not None and not doc.signon.status.ok:
                raise ConnectorError(cause_of(doc.signon.status), _message(doc.signon.status))
            for failed in doc.statement_errors:
                raise ConnectorError(cause_of(failed.status), _message(failed.status))
            statement = next(
                (s for s in doc.statements if s.account.account_id == ref.account_id), None
            )
            if statement is None:
                raise ConnectorError(
                    Cause.DATA_ERROR,
                    f"The bank sent no statement for account ending {ref.account_id[-4:]}.",
                )
            account = _account(statement, saved.get("description", ""), doc)
            result.accounts.append(account)
            if window.from_date is not None:
                result.transactions += [_transaction(t, account) for t in statement.transactions]
                result.transactions += [
                    _investment_transaction(t, account, doc)
                    for t in statement.investment_transactions
                ]
            if window.holdings:
                result.holdings += [_holding(p, account, doc) for p in statement.positions]
        return result


def _usable(info: ofx.AccountInfo) -> bool:
    return info.supports_download and info.status == "ACTIVE" and bool(info.account.account_id)


def _account_ref_state(ref: ofx.AccountRef, description: str) -> dict[str, Any]:
    return {
        "kind": ref.kind,
        "account_id": ref.account_id,
        "bank_id": ref.bank_id,
        "branch_id": ref.branch_id,
        "broker_id": ref.broker_id,
        "account_type": ref.account_type,
        "description": description,
    }


def _account_ref(saved: dict[str, Any], options: Any) -> ofx.AccountRef:
    return ofx.AccountRef(
        kind=saved["kind"],
        account_id=saved["account_id"],
        bank_id=saved.get("bank_id") or options.get("bankid"),
        branch_id=saved.get("branch_id"),
        broker_id=saved.get("broker_id") or options.get("brokerid"),
        account_type=saved.get("account_type"),
    )


def _routing_number(bank_id: str | None) -> str | None:
    if not bank_id or not bank_id.isdigit():
        return None
    if len(bank_id) == 10 and bank_id.startswith("0"):
        return bank_id[1:]  # some banks pad the 9-digit routing number
    return bank_id if len(bank_id) == 9 else None


def _account(statement: ofx.Statement, description: str, doc: ofx.Document) -> AccountData:
    ref = statement.account
    ledger = statement.ledger_balance.amount if statement.ledger_balance else None
    available = statement.available_balance.amount if statement.available_balance else None
    details: dict[str, Any] = {}
    subtype = None
    if ref.kind == "BANK":
        kind, subtype = _BANK_TYPES.get(ref.account_type or "", ("CHECKING", None))
        balance = ledger if ledger is not None else available
    elif ref.kind == "CREDITCARD":
        kind = "CREDIT_CARD"
        # OFX sends what is owed as a negative balance; MX shows it as a positive one.
        balance = -ledger if ledger is not None else None
        if available is not None:
            details["available_credit"] = available
    elif ref.kind == "LOAN":
        kind = "MORTGAGE" if ref.account_type == "MORTGAGE" else "LOAN"
        owed = statement.principal_balance.amount if statement.principal_balance else ledger
        balance = abs(owed) if owed is not None else None
    else:
        kind = "INVESTMENT"
        cash = statement.cash_balance or Decimal(0)
        balance = cash + sum((p.market_value for p in statement.positions), Decimal(0))
        details["cash_balance"] = cash
    name = description or f"{kind.replace('_', ' ').title()} ...{ref.account_id[-4:]}"
    return AccountData(
        external_id=ref.account_id,
        name=name,
        type=kind,
        subtype=subtype,
        balance=(balance if balance is not None else Decimal(0)).quantize(Decimal("0.01")),
        available_balance=available if ref.kind == "BANK" else None,
        currency_code=statement.currency,
        account_number=ref.account_id,
        routing_number=_routing_number(ref.bank_id) if ref.kind == "BANK" else None,
        details=details,
    )


def _transaction(t: ofx.Transaction, account: AccountData) -> TransactionData:
    amount = t.amount
    category = top = None
    flags: dict[str, bool] = {}
    if t.type in ("FEE", "SRVCHG"):
        category, top, flags = "Bank Fee", "Fees & Charges", {"is_fee": True, "is_expense": True}
    elif t.type in ("INT", "DIV"):
        category, top, flags = "Interest Income", "Income", {"is_income": True}
    elif t.type == "DIRECTDEP":
        flags = {"is_direct_deposit": True, "is_income": True}
    posted = t.posted or t.user_date
    assert posted is not None  # the codec leaves out entries with neither
    return TransactionData(
        external_id=t.fitid,
        account_external_id=account.external_id,
        amount=abs(amount).quantize(Decimal("0.01")),
        type="CREDIT" if amount > 0 else "DEBIT",
        date=posted.date(),
        description=t.name or t.memo or t.type.title(),
        original_description=t.name or None,
        memo=t.memo or None,
        transacted_at=_utc(t.user_date) or _utc(posted),
        posted_at=_utc(posted),
        check_number_string=t.check_number,
        category=category,
        top_level_category=top,
        currency_code=t.currency or account.currency_code,
        merchant_category_code=t.sic,
        flags=flags,
    )


def _investment_transaction(
    t: ofx.InvestmentTransaction, account: AccountData, doc: ofx.Document
) -> TransactionData:
    security = doc.securities.get(t.security) if t.security else None
    what = (security.ticker or security.name) if security else ""
    words = _investment_words(t)
    total = t.total
    memo = t.memo
    if total is None:
        # A share transfer moves no cash: keep it, with its units in the memo.
        units = f"{t.units.normalize():f} units" if t.units is not None else "units"
        memo = " ".join(x for x in (f"{units} of {what or 'a security'}", t.memo) if x)
        total = Decimal(0)
    assert t.trade_date is not None
    return TransactionData(
        external_id=t.fitid,
        account_external_id=account.external_id,
        amount=abs(total).quantize(Decimal("0.01")),
        type="CREDIT" if total > 0 else "DEBIT",
        date=t.trade_date.date(),
        description=" ".join(x for x in (words, what) if x),
        memo=memo or None,
        transacted_at=_utc(t.trade_date),
        posted_at=_utc(t.settle_date or t.trade_date),
        category="Investments",
        top_level_category="Investments",
        currency_code=account.currency_code,
    )


def _investment_words(t: ofx.InvestmentTransaction) -> str:
    if t.kind.startswith("BUY"):
        return "Buy"
    if t.kind.startswith("SELL"):
        return "Sell"
    if t.kind == "INCOME":
        return _INCOME_WORDS.get(t.subtype or "", "Income")
    if t.kind == "REINVEST":
        return "Reinvest " + _INCOME_WORDS.get(t.subtype or "", "income").lower()
    if t.kind == "TRANSFER":
        return "Transfer out" if t.subtype == "OUT" else "Transfer in"
    return t.kind.title()


def _holding(p: ofx.Position, account: AccountData, doc: ofx.Document) -> HoldingData:
    security = doc.securities.get(p.security)
    return HoldingData(
        external_id=f"{p.security.id_type}:{p.security.unique_id}",
        account_external_id=account.external_id,
        symbol=security.ticker if security else None,
        description=security.name if security else p.security.unique_id,
        holding_type=_HOLDING_TYPES[p.kind],
        quantity=p.units,
        current_price=p.unit_price,
        currency_code=account.currency_code,
    )


def _utc(when: dt.datetime | None) -> dt.datetime | None:
    return when.astimezone(dt.UTC) if when else None
