"""CAMT.053 (ISO 20022 bank-to-customer statement, XML), versions .001.02 to .001.13.

Elements are matched by local name, so every version's namespace reads the same;
the few elements newer versions moved (`Sts/Cd`, `Cdtr/Pty/Nm`, `BICFI`) are looked
up in both places. Statements of the same account (one per day, say) merge into one
account whose balance is the latest closing one. camt.052 reports and camt.054
notifications share the entry layout and read the same."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from decimal import Decimal

from openagg.ofx.values import parse_amount
from openagg.statements.model import (
    StatementAccount,
    StatementEntry,
    StatementFile,
    UnreadableFile,
)
from openagg.statements.values import BadValue, join_text

_STATEMENTS = {"Stmt", "Rpt", "Ntfctn"}
_ACCOUNT_TYPES = {"CACC": "CHECKING", "SVGS": "SAVINGS", "CARD": "CREDIT_CARD", "LOAN": "LOAN"}


class _Tree:
    """The parsed document with each element's line (ElementTree keeps none)."""

    def __init__(self, data: bytes) -> None:
        self.lines: dict[int, int] = {}
        parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start",))
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            chunks = [data]  # UTF-16: lines cannot be split as bytes
        else:
            chunks = data.lstrip().splitlines(keepends=True)
        root: ET.Element | None = None
        try:
            for number, chunk in enumerate(chunks, start=1):
                parser.feed(chunk)
                for event in parser.read_events():
                    element = event[1]  # type: ignore[misc]
                    assert isinstance(element, ET.Element)
                    self.lines[id(element)] = number
                    if root is None:
                        root = element
            parser.close()
        except ET.ParseError as exc:
            raise UnreadableFile(f"not well-formed XML ({exc})", exc.position[0]) from None
        if root is None:
            raise UnreadableFile("an empty XML document")
        self.root: ET.Element = root

    def line(self, element: ET.Element) -> int | None:
        return self.lines.get(id(element))


def _name(element: ET.Element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if tag[0] == "{" else tag


def _find(element: ET.Element | None, *path: str) -> ET.Element | None:
    for step in path:
        if element is None:
            return None
        element = next((c for c in element if _name(c) == step), None)
    return element


def _all(element: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if element is None else [c for c in element if _name(c) == name]


def _text(element: ET.Element | None, *path: str) -> str:
    found = _find(element, *path)
    return (found.text or "").strip() if found is not None else ""


def read_camt053(data: bytes) -> StatementFile:
    tree = _Tree(data)
    statements = [e for e in tree.root.iter() if _name(e) in _STATEMENTS]
    if not statements:
        raise UnreadableFile(
            f"not a camt.053 statement: the document is <{_name(tree.root)}>, "
            "with no <BkToCstmrStmt><Stmt>",
            tree.line(tree.root),
        )
    out = StatementFile(format="CAMT053")
    if not any(_name(e) == "BkToCstmrStmt" for e in tree.root.iter()):
        out.warnings.append("a camt.052 report or camt.054 notification, read as a statement")
    accounts: dict[str, StatementAccount] = {}
    skipped: list[int] = []
    for stmt in statements:
        account = _account(stmt, accounts, out)
        entries = []
        for ntry in _all(stmt, "Ntry"):
            entry = _entry(tree, ntry, account)
            if entry is None:
                skipped.append(tree.line(ntry) or 0)
            else:
                entries.append(entry)
        _balances(tree, stmt, account, entries, out.warnings)
        out.entries.extend(entries)
    if skipped:
        out.warnings.append(
            f"{len(skipped)} entries with status INFO (information only, not on the "
            f"account) left out, first at line {skipped[0]}"
        )
    out.accounts = list(accounts.values())
    return out


def _account(
    stmt: ET.Element, accounts: dict[str, StatementAccount], out: StatementFile
) -> StatementAccount:
    acct = _find(stmt, "Acct")
    account_id = _text(acct, "Id", "IBAN") or _text(acct, "Id", "Othr", "Id")
    account = accounts.get(account_id)
    if account is None:
        account = accounts[account_id] = StatementAccount(
            account_id=account_id,
            name=_text(acct, "Nm") or _text(acct, "Ownr", "Nm"),
            type=_ACCOUNT_TYPES.get(_text(acct, "Tp", "Cd")),
            currency=_text(acct, "Ccy") or None,
        )
    institution = _find(acct, "Svcr", "FinInstnId")
    bic = _text(institution, "BICFI") or _text(institution, "BIC")
    account.bank_id = account.bank_id or bic or None
    out.institution = out.institution or _text(institution, "Nm") or bic or None
    return account


def _money(tree: _Tree, element: ET.Element, what: str) -> Decimal:
    """A signed amount from `Amt` and `CdtDbtInd` under ``element``."""
    amt = _find(element, "Amt")
    text = (amt.text or "").strip() if amt is not None else ""
    try:
        amount = parse_amount(text)
    except BadValue:
        line = tree.line(amt if amt is not None else element)
        raise UnreadableFile(f"{what}: {text!r} is not an amount", line) from None
    indicator = _text(element, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise UnreadableFile(
            f"{what}: CdtDbtInd is {indicator!r}, not CRDT or DBIT", tree.line(element)
        )
    return -amount if indicator == "DBIT" else amount


def _date(tree: _Tree, element: ET.Element | None) -> dt.date | None:
    """`Dt` or `DtTm` under ``element`` (the date as written, no zone shift)."""
    if element is None:
        return None
    text = _text(element, "Dt") or _text(element, "DtTm")
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise UnreadableFile(f"{text!r} is not a date", tree.line(element)) from None


def _balances(
    tree: _Tree,
    stmt: ET.Element,
    account: StatementAccount,
    entries: list[StatementEntry],
    warnings: list[str],
) -> None:
    found: dict[str, tuple[Decimal, dt.date | None]] = {}
    for bal in _all(stmt, "Bal"):
        code = _text(bal, "Tp", "CdOrPrtry", "Cd") or _text(bal, "Tp", "CdOrPrtry", "Prtry")
        amount, date = _money(tree, bal, f"balance {code}"), _date(tree, _find(bal, "Dt"))
        if code not in found or (date and (found[code][1] or date) <= date):
            found[code] = (amount, date)
    where = f"line {tree.line(stmt)}: statement {_text(stmt, 'Id')!r}"
    if "CLBD" in found:
        balance, date = found["CLBD"]
    elif "ITBD" in found:
        balance, date = found["ITBD"]
        warnings.append(f"{where} has no closing balance; its interim balance is used")
    elif "OPBD" in found or "PRCD" in found:
        opening, date = found.get("OPBD") or found["PRCD"]
        booked = [e for e in entries if not e.pending]
        balance = opening + sum((e.amount for e in booked), Decimal(0))
        date = max((e.date for e in booked), default=date)
        warnings.append(
            f"{where} has no closing balance; computed from the opening balance and entries"
        )
    else:
        return
    date = date or _date(tree, _find(stmt, "FrToDt", "ToDtTm")) or dt.date.min
    if account.balance_date is None or date >= account.balance_date:
        account.balance, account.balance_date = balance, date
        account.available_balance = found["CLAV"][0] if "CLAV" in found else None


def _entry(tree: _Tree, ntry: ET.Element, account: StatementAccount) -> StatementEntry | None:
    line = tree.line(ntry)
    status = _text(ntry, "Sts", "Cd") or _text(ntry, "Sts", "Prtry") or _text(ntry, "Sts")
    if status == "INFO":
        return None
    amount = _money(tree, ntry, "entry")
    date = _date(tree, _find(ntry, "BookgDt")) or _date(tree, _find(ntry, "ValDt"))
    if date is None:
        raise UnreadableFile("an entry with no booking or value date", line)
    details = [tx for d in _all(ntry, "NtryDtls") for tx in _tx_details(d)]
    parties = [_party(tx, amount) for tx in details]
    texts = [_remittance(tx) for tx in details]
    extra = _text(ntry, "AddtlNtryInf")
    if len(details) > 1:
        description = extra or f"{len(details)} transactions"
        memo = "; ".join(
            join_text([p, t, _text(tx, "AmtDtls", "TxAmt", "Amt") or _text(tx, "Amt")], " ")
            for tx, p, t in zip(details, parties, texts, strict=True)
        )
        payee = None
    else:
        payee = parties[0] if parties else ""
        text = texts[0] if texts else ""
        description = text or extra or payee or _text(ntry, "BkTxCd", "Prtry", "Cd")
        memo = extra if extra and extra != description else ""
    refs = [_text(ntry, "AcctSvcrRef"), _text(ntry, "NtryRef")]
    bank_id = next((r for r in refs if r and r.upper() not in ("NONREF", "NOTPROVIDED")), None)
    return StatementEntry(
        account_id=account.account_id,
        date=date,
        amount=amount,
        description=description,
        bank_id=bank_id,
        memo=memo or None,
        payee=payee or None,
        check_number=next((_text(tx, "Refs", "ChqNb") for tx in details), "") or None,
        pending=status in ("PDNG", "FUTR"),
        line=line,
    )


def _tx_details(details: ET.Element) -> list[ET.Element]:
    """`TxDtls` directly under `NtryDtls` or inside its `Btch` (older versions)."""
    return [tx for c in details for tx in ([c] if _name(c) == "TxDtls" else _all(c, "TxDtls"))]


def _party(tx: ET.Element, amount: Decimal) -> str:
    """The other side: who was paid on a debit, who paid on a credit."""
    parties = _find(tx, "RltdPties")
    role = "Cdtr" if amount < 0 else "Dbtr"
    for name in (role, "Ultmt" + role):
        found = _text(parties, name, "Nm") or _text(parties, name, "Pty", "Nm")
        if found:
            return join_text([found])
    return ""


def _remittance(tx: ET.Element) -> str:
    info = _find(tx, "RmtInf")
    text = join_text(u.text for u in _all(info, "Ustrd"))
    if not text:
        text = join_text(_text(s, "CdtrRefInf", "Ref") for s in _all(info, "Strd"))
    return text or join_text([_text(tx, "AddtlTxInf")])
