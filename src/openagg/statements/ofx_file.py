"""OFX and QFX statement files, through OpenAgg's OFX codec (`openagg.ofx`)."""

from __future__ import annotations

from decimal import Decimal

from openagg import ofx
from openagg.statements.model import (
    StatementAccount,
    StatementEntry,
    StatementFile,
    StatementHolding,
    UnreadableFile,
)

_TYPES = {
    ("BANK", "CHECKING"): "CHECKING",
    ("BANK", "SAVINGS"): "SAVINGS",
    ("BANK", "MONEYMRKT"): "SAVINGS",
    ("BANK", "CD"): "SAVINGS",
    ("BANK", "CREDITLINE"): "LINE_OF_CREDIT",
}
_KINDS = {"CREDITCARD": "CREDIT_CARD", "LOAN": "LOAN", "INVESTMENT": "INVESTMENT"}
_HOLDING_TYPES = {"STOCK": "EQUITY", "MF": "MUTUAL_FUND", "DEBT": "BOND", "OPT": "OPTIONS"}


def read_ofx(data: bytes) -> StatementFile:
    try:
        doc = ofx.parse(data)
    except ofx.OFXError as exc:
        raise UnreadableFile(str(exc).split(": ", 1)[-1], exc.line) from None
    if not doc.statements:
        raise UnreadableFile(_why_no_statement(doc))
    out = StatementFile(format="OFX", warnings=list(doc.warnings))
    if doc.signon is not None:
        out.institution = doc.signon.org
    for s in doc.statements:
        _statement(s, doc, out)
    return out


def _why_no_statement(doc: ofx.Document) -> str:
    failed = [e.status for e in doc.statement_errors]
    if doc.signon is not None and not doc.signon.status.ok:
        failed.insert(0, doc.signon.status)
    if failed:
        status = failed[0]
        words = f": {status.message}" if status.message else ""
        return (
            f"the file is an error answer from the bank (OFX status {status.code}{words}), "
            "not a statement"
        )
    if doc.accounts:
        return "the file is an account list, not a statement: it has no transactions or balances"
    return "the file has no statement in it (a sign-on or profile answer?)"


def _statement(s: ofx.Statement, doc: ofx.Document, out: StatementFile) -> None:
    ref = s.account
    account_type = _TYPES.get((ref.kind, ref.account_type or ""), _KINDS.get(ref.kind, "CHECKING"))
    if ref.kind == "LOAN" and ref.account_type == "MORTGAGE":
        account_type = "MORTGAGE"
    balance = s.ledger_balance
    if ref.kind == "LOAN" and s.principal_balance is not None:
        balance = s.principal_balance
    amount = balance.amount if balance else None
    if ref.kind == "INVESTMENT":
        cash = s.cash_balance or Decimal(0)
        amount = cash + sum(p.market_value for p in s.positions)
    out.accounts.append(
        StatementAccount(
            account_id=ref.account_id,
            type=account_type,
            currency=s.currency,
            balance=amount,
            balance_date=balance.as_of.date() if balance and balance.as_of else None,
            available_balance=s.available_balance.amount if s.available_balance else None,
            bank_id=ref.bank_id or ref.broker_id,
        )
    )
    for t in s.transactions:
        assert t.posted is not None  # the codec leaves out entries without a date
        out.entries.append(
            StatementEntry(
                account_id=ref.account_id,
                date=t.posted.date(),
                amount=t.amount,
                description=t.name or t.memo or t.type.title(),
                bank_id=t.fitid,
                memo=t.memo or None,
                check_number=t.check_number,
            )
        )
    for i in s.investment_transactions:
        assert i.trade_date is not None
        security = doc.securities.get(i.security) if i.security else None
        what = (security.ticker or security.name) if security else ""
        units = (
            f" ({i.units.normalize():f} units)" if i.total is None and i.units is not None else ""
        )
        out.entries.append(
            StatementEntry(
                account_id=ref.account_id,
                date=i.trade_date.date(),
                amount=i.total if i.total is not None else Decimal(0),
                description=" ".join(x for x in (i.kind.title(), what) if x) + units,
                bank_id=i.fitid,
                memo=i.memo or None,
            )
        )
    for p in s.positions:
        security = doc.securities.get(p.security)
        out.holdings.append(
            StatementHolding(
                account_id=ref.account_id,
                security_id=f"{p.security.id_type}:{p.security.unique_id}",
                description=security.name if security else p.security.unique_id,
                quantity=p.units,
                price=p.unit_price,
                symbol=security.ticker if security else None,
                holding_type=_HOLDING_TYPES.get(p.kind, "UNKNOWN_TYPE"),
            )
        )
