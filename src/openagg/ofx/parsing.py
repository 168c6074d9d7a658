"""From the tree of an OFX document to typed data (`Document`).

Tolerant of what real servers and files do: a transaction without a usable amount
or date is left out with a warning naming its line, a missing FITID gets a stable
stand-in, a missing ledger balance is None, an error-only answer (a STATUS without a
statement) is a `StatementError`, not a failure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal, InvalidOperation

from openagg.ofx import accel
from openagg.ofx.models import (
    AccountInfo,
    AccountRef,
    Balance,
    Document,
    InvestmentTransaction,
    MFAChallenge,
    Position,
    Security,
    SecurityId,
    Signon,
    Statement,
    StatementError,
    Status,
    Transaction,
)
from openagg.ofx.reader import Element, RawDocument, TransactionRun, read
from openagg.ofx.values import BadValue, iso_offset, parse_amount, parse_datetime, unescape

_from_iso = dt.datetime.fromisoformat

_STATEMENTS = {
    "STMTRS": "BANK",
    "CCSTMTRS": "CREDITCARD",
    "LOANSTMTRS": "LOAN",
    "INVSTMTRS": "INVESTMENT",
}
_WRAPPERS = {
    "STMTTRNRS": "STMTRS",
    "CCSTMTTRNRS": "CCSTMTRS",
    "LOANSTMTTRNRS": "LOANSTMTRS",
    "INVSTMTTRNRS": "INVSTMTRS",
}
_ACCOUNT_FROM = {
    "BANKACCTFROM": "BANK",
    "CCACCTFROM": "CREDITCARD",
    "LOANACCTFROM": "LOAN",
    "INVACCTFROM": "INVESTMENT",
}
_ACCOUNT_INFO = {
    "BANKACCTINFO": "BANKACCTFROM",
    "CCACCTINFO": "CCACCTFROM",
    "LOANACCTINFO": "LOANACCTFROM",
    "INVACCTINFO": "INVACCTFROM",
}
# What the single walk collects; it does not descend into these lists (their owner reads them).
_COLLECT = frozenset(
    {"SONRS", "MFACHALLENGERS", "ACCTINFORS", "SECLIST", "STATUS", *_STATEMENTS, *_WRAPPERS}
)
_LEAF_LISTS = frozenset({"BANKTRANLIST", "LOANTRANLIST", "INVTRANLIST", "INVPOSLIST", "SECLIST"})
_SECURITY_KINDS = {
    "STOCKINFO": "STOCK",
    "MFINFO": "MF",
    "DEBTINFO": "DEBT",
    "OPTINFO": "OPT",
    "OTHERINFO": "OTHER",
}
_POSITION_KINDS = {
    "POSSTOCK": "STOCK",
    "POSMF": "MF",
    "POSDEBT": "DEBT",
    "POSOPT": "OPT",
    "POSOTHER": "OTHER",
}
_SUBTYPES = (
    "BUYTYPE",
    "SELLTYPE",
    "INCOMETYPE",
    "TFERACTION",
    "OPTBUYTYPE",
    "OPTSELLTYPE",
    "RELTYPE",
)


def parse(data: bytes | str) -> Document:
    """Reads a server's answer or a statement file. Raises `OFXError` only for a
    document no OFX reader could understand; anything else is read, with warnings."""
    return _Parser(read(data)).document()


class _Parser:
    def __init__(self, raw: RawDocument) -> None:
        self.raw = raw
        self.doc = Document(
            version=raw.header.get("VERSION"),
            major_version=raw.major_version,
            warnings=raw.warnings,
        )
        self._datetimes: dict[str, dt.datetime | None] = {}
        self._raw_datetimes: dict[str, dt.datetime | None] = {}  # a run's, space and all
        self._zones: dict[str, str] = {}  # a run's date zones as ISO offsets ("": unreadable)
        self._types: dict[str, str] = {}  # a run's TRNTYPE text: as read

    def warn(self, element: Element, message: str) -> None:
        self.raw.warn(element.offset, element.tag, message)

    def document(self) -> Document:
        found: dict[str, list[tuple[Element, Element]]] = {}
        stack: list[tuple[Element, Element]] = [(c, self.raw.root) for c in self.raw.root.children]
        while stack:
            element, parent = stack.pop()
            if element.tag in _COLLECT:
                found.setdefault(element.tag, []).append((element, parent))
            if element.tag not in _LEAF_LISTS:
                stack.extend((c, element) for c in reversed(element.children))
        doc = self.doc
        for status, parent in sorted(found.get("STATUS", ()), key=lambda p: p[0].offset):
            doc.statuses.append(self.status(status, parent.tag))
        for sonrs, _ in found.get("SONRS", ()):
            doc.signon = self.signon(sonrs)
        for challenges, _ in found.get("MFACHALLENGERS", ()):
            for c in challenges.children:
                if c.tag == "MFACHALLENGE":
                    doc.mfa_challenges.append(
                        MFAChallenge(
                            c.values.get("MFAPHRASEID", ""), c.values.get("MFAPHRASELABEL", "")
                        )
                    )
        for info, _ in found.get("ACCTINFORS", ()):
            doc.accounts.extend(self.account_list(info))
        for seclist, _ in found.get("SECLIST", ()):
            self.securities(seclist)
        for wrapper, statement_tag in _WRAPPERS.items():
            for trnrs, _ in found.get(wrapper, ()):
                if trnrs.child(statement_tag) is None:
                    error = trnrs.child("STATUS")
                    doc.statement_errors.append(
                        StatementError(
                            trnrs.values.get("TRNUID", ""),
                            self.status(error, trnrs.tag)
                            if error
                            else Status(2000, "ERROR", "no statement and no status", trnrs.tag),
                        )
                    )
        statements = [
            (e, p, _STATEMENTS[tag]) for tag in _STATEMENTS for e, p in found.get(tag, ())
        ]
        for element, parent, kind in sorted(statements, key=lambda s: s[0].offset):
            statement = self.statement(element, kind)
            if statement is not None:
                statement.trnuid = parent.values.get("TRNUID", "")
                doc.statements.append(statement)
        return doc

    # -- values ----------------------------------------------------------------

    def when(self, element: Element, tag: str) -> dt.datetime | None:
        text = element.values.get(tag)
        if not text:
            return None
        cache = self._datetimes
        if text in cache:
            return cache[text]
        try:
            value: dt.datetime | None = parse_datetime(text)
        except BadValue as exc:
            self.warn(element, f"{tag}: {exc}")
            value = None
        cache[text] = value
        return value

    def amount(self, element: Element, tag: str) -> Decimal | None:
        text = element.values.get(tag)
        if not text:
            return None
        try:
            return parse_amount(text)
        except BadValue as exc:
            self.warn(element, f"{tag}: {exc}")
            return None

    def balance(self, element: Element | None) -> Balance | None:
        if element is None:
            return None
        amount = self.amount(element, "BALAMT")
        return None if amount is None else Balance(amount, self.when(element, "DTASOF"))

    def status(self, element: Element, source: str) -> Status:
        values = element.values
        code_text = values.get("CODE", "")
        try:
            code = int(code_text)
        except ValueError:
            self.warn(element, f"CODE {code_text!r} is not a number; read as 2000 (general error)")
            code = 2000
        severity = (values.get("SEVERITY") or ("INFO" if code == 0 else "ERROR")).upper()
        return Status(code, severity, values.get("MESSAGE", ""), source)

    # -- aggregates ------------------------------------------------------------

    def signon(self, sonrs: Element) -> Signon:
        status = sonrs.child("STATUS")
        fi = sonrs.child("FI")
        return Signon(
            status=self.status(status, "SONRS")
            if status
            else Status(2000, "ERROR", "no STATUS", "SONRS"),
            server_time=self.when(sonrs, "DTSERVER"),
            language=sonrs.values.get("LANGUAGE"),
            org=fi.values.get("ORG") if fi else None,
            fid=fi.values.get("FID") if fi else None,
            session_cookie=sonrs.values.get("SESSCOOKIE"),
        )

    def account_ref(self, element: Element, kind: str) -> AccountRef:
        v = element.values
        account_id = v.get("ACCTID", "")
        if not account_id:
            self.warn(element, "no ACCTID")
        return AccountRef(
            kind=kind,
            account_id=account_id,
            bank_id=v.get("BANKID") or None,
            branch_id=v.get("BRANCHID") or None,
            broker_id=v.get("BROKERID") or None,
            account_type=(v.get("ACCTTYPE") or v.get("LOANACCTTYPE") or "").upper() or None,
        )

    def account_list(self, acctinfors: Element) -> list[AccountInfo]:
        out = []
        for info in acctinfors.children:
            if info.tag != "ACCTINFO":
                continue
            for typed in info.children:
                from_tag = _ACCOUNT_INFO.get(typed.tag)
                if from_tag is None:
                    continue
                source = typed.child(from_tag)
                if source is None:
                    self.warn(typed, f"no <{from_tag}>")
                    continue
                v = typed.values
                out.append(
                    AccountInfo(
                        account=self.account_ref(source, _ACCOUNT_FROM[from_tag]),
                        description=info.values.get("DESC", ""),
                        supports_download=v.get("SUPTXDL", "Y").upper() != "N",
                        status=(v.get("SVCSTATUS") or "ACTIVE").upper(),
                        product_type=v.get("USPRODUCTTYPE"),
                    )
                )
        return out

    def statement(self, element: Element, kind: str) -> Statement | None:
        source = next((c for c in element.children if c.tag in _ACCOUNT_FROM), None)
        if source is None:
            self.warn(element, "a statement without an account (no *ACCTFROM); left out")
            return None
        currency = element.values.get("CURDEF", "")
        if not currency:
            self.warn(element, "no CURDEF; read as USD")
        statement = Statement(
            account=self.account_ref(source, kind), currency=(currency or "USD").upper()
        )
        statement.ledger_balance = self.balance(element.child("LEDGERBAL"))
        statement.available_balance = self.balance(element.child("AVAILBAL"))
        if kind == "INVESTMENT":
            self.investment(element, statement)
        else:
            if kind == "LOAN":
                statement.principal_balance = self.balance(element.child("PRINBAL"))
            listing = element.child("BANKTRANLIST") or element.child("LOANTRANLIST")
            if listing is not None:
                statement.start = self.when(listing, "DTSTART")
                statement.end = self.when(listing, "DTEND")
                self.check_window(listing, statement)
                statement.transactions = self.transactions(listing.children)
        return statement

    def check_window(self, listing: Element, statement: Statement) -> None:
        if statement.start and statement.end and statement.start > statement.end:
            self.warn(listing, "DTSTART is after DTEND")

    def transactions(self, elements: list[Element]) -> list[Transaction]:
        out: list[Transaction] = []
        seen: dict[str, int] = {}
        for e in elements:
            if e.tag in ("STMTTRN", "LOANSTMTTRN"):
                t = self.transaction(e, seen)
                if t is not None:
                    out.append(t)
            elif isinstance(e, TransactionRun):
                self.run(e, seen, out)
        return out

    def run(self, run: TransactionRun, seen: dict[str, int], out: list[Transaction]) -> None:
        """The transactions of a run, as `transaction` reads them; those it would warn
        about (no FITID, an amount or a date it cannot read as is) go to it."""
        if isinstance(run.rows, bytes):  # found by the C path, which reads them too
            assert accel.native is not None
            made = accel.native.read_run(
                run.text, run.rows, run.count, self.zone_tzinfo, self.raw_when
            )
            for k, t in enumerate(made):
                if t is None:
                    t = self.transaction(run.element(k), seen)
                    if t is None:
                        continue
                out.append(t)
            return
        zones = self._zones
        types = self._types
        append = out.append
        for k, (
            trntype,
            posted_day,
            posted_time,
            posted_zone,
            posted_other,
            user_day,
            user_time,
            user_zone,
            user_other,
            amount_text,
            fitid,
            correct,
            action,
            check,
            ref,
            sic,
            name,
            memo,
            _,
        ) in enumerate(run.rows):
            try:
                amount = Decimal(amount_text)  # it ignores the space around
            except InvalidOperation:  # (empty; letters are left to `transaction`)
                amount = None
            # The common date form, as `parse_datetime` reads it, in a third of its time.
            posted = None
            if posted_day:
                offset = zones.get(posted_zone) or self.zone(posted_zone)
                if offset and posted_time < "24":  # (later Pythons read 24:00)
                    try:
                        posted = _from_iso(f"{posted_day}T{posted_time}{offset}")
                    except ValueError:  # (a day that does not exist...): `transaction` says
                        posted = None
            elif posted_other:
                posted = self.raw_when(posted_other)
            user_date = None
            if user_day:
                offset = zones.get(user_zone) or self.zone(user_zone)
                if offset and user_time < "24":
                    try:
                        user_date = _from_iso(f"{user_day}T{user_time}{offset}")
                    except ValueError:
                        user_date = None
                if user_date is None:
                    posted = None  # so that `transaction` says what is wrong with DTUSER
            elif user_other and user_other.strip():
                user_date = self.raw_when(user_other)
                if user_date is None:
                    posted = None
            fitid = fitid.strip()
            if amount is None or posted is None or not fitid or "&" in fitid:
                t = self.transaction(run.element(k), seen)
                if t is not None:
                    append(t)
                continue
            kind = types.get(trntype)
            if kind is None:
                kind = trntype.strip().upper()
                if kind and "&" not in kind:
                    types[trntype] = kind
                elif not kind:
                    kind = "CREDIT" if amount >= 0 else "DEBIT"
                else:
                    kind = unescape(trntype.strip()).upper()
            name = name.strip()
            if "&" in name:
                name = unescape(name)
            if memo:
                memo = memo.strip()
                if "&" in memo:
                    memo = unescape(memo)
            if not (check or ref or sic or correct or action):  # as most are: fewer arguments
                append(Transaction(fitid, kind, posted, amount, name, memo, user_date))
                continue
            if "&" in check + ref + sic + correct + action:
                t = self.transaction(run.element(k), seen)
                if t is not None:
                    append(t)
                continue
            if sic:
                sic = sic.strip()
            append(
                Transaction(
                    fitid,
                    kind,
                    posted,
                    amount,
                    name,
                    memo,
                    user_date,
                    (check.strip() or None) if check else None,
                    (ref.strip() or None) if ref else None,
                    int(sic) if sic and sic.isascii() and sic.isdigit() else None,
                    None,
                    (correct.strip() or None) if correct else None,
                    (action.strip() or None) if action else None,
                )
            )

    def zone(self, zone: str) -> str:
        """A run's bracketed zone as an ISO offset; "" when `parse_datetime` refuses it."""
        offset = self._zones[zone] = iso_offset(zone) or ""
        return offset

    def zone_tzinfo(self, zone: str) -> dt.tzinfo | None:
        """A run's bracketed zone as the tzinfo `zone` names; None when unreadable."""
        offset = self._zones.get(zone) or self.zone(zone)
        try:
            return _from_iso(f"20000101T000000{offset}").tzinfo if offset else None
        except ValueError:  # a day or more: `transaction` says so
            return None

    def raw_when(self, text: str) -> dt.datetime | None:
        """A run's date text of another form (unstripped) as a datetime; None when
        `parse_datetime` refuses it (its transaction then goes to `transaction`)."""
        cache = self._raw_datetimes
        if text in cache:
            return cache[text]
        if "&" in text:  # (an entity in a date: `transaction` reads it as the reader did)
            return None
        try:
            value: dt.datetime | None = parse_datetime(text.strip())
        except BadValue:
            value = None
        cache[text] = value
        return value

    def transaction(self, e: Element, seen: dict[str, int]) -> Transaction | None:
        v = e.values
        amount = self.amount(e, "TRNAMT")
        if amount is None:
            self.warn(e, "no usable TRNAMT; transaction left out")
            return None
        posted = self.when(e, "DTPOSTED")
        user_date = self.when(e, "DTUSER")
        if posted is None:
            if user_date is None:
                self.warn(e, "no usable DTPOSTED or DTUSER; transaction left out")
                return None
            self.warn(e, "no DTPOSTED; dated by DTUSER")
            posted = user_date
        name = v.get("NAME")
        if name is None:
            payee = e.child("PAYEE")
            name = payee.values.get("NAME", "") if payee else ""
        fitid = v.get("FITID")
        if not fitid:
            fitid = _stand_in_fitid(v, seen)
            self.warn(e, f"no FITID; using the stand-in {fitid}")
        currency = e.child("CURRENCY") or e.child("ORIGCURRENCY")
        sic = v.get("SIC")
        return Transaction(
            fitid=fitid,
            type=(v.get("TRNTYPE") or ("CREDIT" if amount >= 0 else "DEBIT")).upper(),
            posted=posted,
            amount=amount,
            name=name,
            memo=v.get("MEMO", ""),
            user_date=user_date,
            check_number=v.get("CHECKNUM") or None,
            ref_number=v.get("REFNUM") or None,
            sic=int(sic) if sic and sic.isascii() and sic.isdigit() else None,
            currency=(currency.values.get("CURSYM") if currency else v.get("CURRENCY")) or None,
            correct_fitid=v.get("CORRECTFITID") or None,
            correct_action=v.get("CORRECTACTION") or None,
        )

    def security_id(self, element: Element | None) -> SecurityId | None:
        if element is None:
            return None
        secid = element.child("SECID")
        if secid is None:
            return None
        return SecurityId(
            secid.values.get("UNIQUEID", ""), secid.values.get("UNIQUEIDTYPE", "").upper()
        )

    def securities(self, seclist: Element) -> None:
        for info in seclist.children:
            kind = _SECURITY_KINDS.get(info.tag)
            secinfo = info.child("SECINFO")
            sid = self.security_id(secinfo)
            if kind is None or secinfo is None or sid is None:
                continue
            v = secinfo.values
            self.doc.securities[sid] = Security(
                id=sid,
                kind=kind,
                name=v.get("SECNAME", ""),
                ticker=v.get("TICKER") or None,
                unit_price=self.amount(secinfo, "UNITPRICE"),
                as_of=self.when(secinfo, "DTASOF"),
            )

    def investment(self, element: Element, statement: Statement) -> None:
        statement.as_of = self.when(element, "DTASOF")
        balances = element.child("INVBAL")
        if balances is not None:
            statement.cash_balance = self.amount(balances, "AVAILCASH")
        listing = element.child("INVTRANLIST")
        if listing is not None:
            statement.start = self.when(listing, "DTSTART")
            statement.end = self.when(listing, "DTEND")
            self.check_window(listing, statement)
            seen: dict[str, int] = {}
            for entry in listing.children:
                if entry.tag == "INVBANKTRAN":
                    statement.transactions.extend(self.transactions(entry.children))
                else:
                    t = self.investment_transaction(entry, seen)
                    if t is not None:
                        statement.investment_transactions.append(t)
        positions = element.child("INVPOSLIST")
        if positions is not None:
            for p in positions.children:
                position = self.position(p)
                if position is not None:
                    statement.positions.append(position)

    def investment_transaction(
        self, entry: Element, seen: dict[str, int]
    ) -> InvestmentTransaction | None:
        # BUY*/SELL* keep their common fields in INVBUY/INVSELL; others hold them directly.
        body = entry.child("INVBUY") or entry.child("INVSELL") or entry
        invtran = body.child("INVTRAN")
        if invtran is None:
            self.warn(entry, "no <INVTRAN>; investment transaction left out")
            return None
        fitid = invtran.values.get("FITID") or _stand_in_fitid(body.values, seen)
        trade_date = self.when(invtran, "DTTRADE")
        if trade_date is None:
            self.warn(entry, "no usable DTTRADE; investment transaction left out")
            return None
        subtype = next((entry.values[t] for t in _SUBTYPES if entry.values.get(t)), None)
        return InvestmentTransaction(
            fitid=fitid,
            kind=entry.tag,
            trade_date=trade_date,
            settle_date=self.when(invtran, "DTSETTLE"),
            total=self.amount(body, "TOTAL"),
            memo=invtran.values.get("MEMO", ""),
            security=self.security_id(body),
            units=self.amount(body, "UNITS"),
            unit_price=self.amount(body, "UNITPRICE"),
            commission=self.amount(body, "COMMISSION"),
            fees=self.amount(body, "FEES"),
            subtype=subtype.upper() if subtype else None,
        )

    def position(self, element: Element) -> Position | None:
        kind = _POSITION_KINDS.get(element.tag)
        invpos = element.child("INVPOS")
        if kind is None or invpos is None:
            return None
        sid = self.security_id(invpos)
        units = self.amount(invpos, "UNITS")
        price = self.amount(invpos, "UNITPRICE")
        value = self.amount(invpos, "MKTVAL")
        if sid is None or units is None:
            self.warn(element, "a position without SECID or UNITS; left out")
            return None
        if price is None and value is not None and units:
            price = value / units
        if value is None and price is not None:
            value = units * price
        v = invpos.values
        return Position(
            security=sid,
            kind=kind,
            units=units,
            unit_price=price or Decimal(0),
            market_value=value or Decimal(0),
            held_in=v.get("HELDINACCT") or None,
            position_type=v.get("POSTYPE") or None,
            price_as_of=self.when(invpos, "DTPRICEASOF"),
            memo=v.get("MEMO", ""),
        )


def _stand_in_fitid(values: dict[str, str], seen: dict[str, int]) -> str:
    """A stable id for an entry without FITID: the same file gives the same ids, and
    identical entries on one day (two coffees) stay two."""
    key = "|".join(
        values.get(t, "")
        for t in ("DTPOSTED", "DTUSER", "DTTRADE", "TRNAMT", "TOTAL", "NAME", "MEMO")
    )
    n = seen.get(key, 0)
    seen[key] = n + 1
    return "X-" + hashlib.sha256(f"{key}|{n}".encode()).hexdigest()[:20]
