"""A fake OFX Direct Connect bank, over a real socket, for the `ofx` connector's tests.

It speaks OFX 1.x (colon header, SGML with unclosed leaves, cp1252) and OFX 2.x (XML),
answering each request in the major version it came in. It is written independently of
`openagg.ofx` on purpose, so it can check that codec: nothing here imports `openagg`.

The URL path picks a behaviour (`VARIANTS`), USERPASS picks a signon outcome (see
`_SIGNON_FAILURES` and `FakeOfxBank.signon`). All data is synthetic, dated relative to
`FakeOfxBank.today`."""

from __future__ import annotations

import html
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VARIANTS = ("standard", "oneline", "v1only", "clientuid", "slow", "down")
USERID = "ada"
FI_ORG, FI_FID = "FakeBank", "4242"
BANKID = "0123456789"  # ten digits on purpose: OFX says at most nine
CHECKING, SAVINGS, CARD = "100200300", "100200301", "4111000011112222"
BROKERID, INVACCT = "broker.fakebank.test", "INV-778899"
MFA_QUESTIONS = {
    "MFA13": ("What is the name of your first pet?", "Rex"),
    "MFA107": ("Enter the code we sent to your phone", "123456"),
}
CLIENTUID_MESSAGE = (
    "Verify your identity: approve this app in the Secure Message Center within 7 days"
)
GARBAGE_PAGE = (
    "<html><head><title>Down for maintenance</title></head><body><h1>We'll be right back"
    "</h1><p>FakeBank online banking is down for scheduled maintenance.</p></body></html>\n"
)


def scenario_of(password: str | None) -> str:
    """The outcome a USERPASS picks: its part before any `#` (`locked#7f` is `locked`),
    so a test's password need not be a word the bank's message contains."""
    return (password or "").split("#", 1)[0]


# USERPASS -> (CODE, SEVERITY, MESSAGE) for signons that fail outright.
_SIGNON_FAILURES = {
    "locked": (
        15502,
        "ERROR",
        "Your account is locked after too many attempts. Call us at 1-800-555-0100.",
    ),
    # OFX gives 15000 severity INFO: signed on, but nothing else is served until it changes.
    "mustchange": (
        15000,
        "INFO",
        "You must change your password at fakebank.test before you can continue.",
    ),
    "notauthorized": (
        15510,
        "ERROR",
        "This software is not authorized. Approve it in online banking.",
    ),
}
_INVALID = (15500, "ERROR", "Invalid user ID or password")
_OK = (0, "INFO", None)
_GARBAGE = (-1, "", None)  # not an OFX status: the bank answers an HTML page


# --- requests (tolerant scan)


@dataclass
class OfxRequestSeen:
    variant: str
    major_version: int  # 1 (SGML header), 2 (XML header), 0 (no OFX header found)
    version: str
    userid: str | None
    clientuid: str | None
    messages: list[str]
    body: str


@dataclass
class _El:
    """One element of a scanned request: a leaf has text, an aggregate has kids."""

    tag: str
    text: str | None = None
    kids: list[_El] = field(default_factory=list)

    def walk(self) -> Iterator[_El]:
        for kid in self.kids:
            yield kid
            yield from kid.walk()

    def find(self, tag: str) -> _El | None:
        return next((e for e in self.walk() if e.tag == tag), None)

    def find_all(self, tag: str) -> list[_El]:
        return [e for e in self.walk() if e.tag == tag]

    def get(self, tag: str) -> str | None:
        found = self.find(tag)
        return found.text if found else None


_TOKEN = re.compile(r"<(/?)([A-Za-z0-9.]+)>([^<]*)")


def _scan_elements(sgml: str) -> _El:
    """Tag soup to a tree: a tag followed by text is a leaf (closed or not); `</X>` closes
    the nearest open aggregate X (and everything opened inside it)."""
    root = _El("#root")
    stack = [root]
    for close, tag, text in _TOKEN.findall(sgml):
        tag = tag.upper()
        if close:
            for i in range(len(stack) - 1, 0, -1):
                if stack[i].tag == tag:
                    del stack[i:]
                    break
            continue
        value = html.unescape(text.strip())
        element = _El(tag, value or None)
        stack[-1].kids.append(element)
        if not value:
            stack.append(element)
    return root


def _scan(variant: str, raw: bytes) -> tuple[OfxRequestSeen, _El | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    start = text.upper().find("<OFX>")
    head = text[: max(start, 0)]
    major, version = 0, ""
    if m := re.search(r'<\?OFX\b[^>]*\bVERSION\s*=\s*"(\d+)"', head, re.I):
        major, version = 2, m.group(1)
    elif m := re.search(r"^\s*VERSION\s*:\s*(\d+)", head, re.M | re.I):
        major, version = 1, m.group(1)
    tree = _scan_elements(text[start:]) if start >= 0 else _El("#root")
    messages = [
        e.tag
        for e in tree.walk()
        if e.tag.endswith("RQ") and not e.tag.endswith("TRNRQ") and "MSGSRQ" not in e.tag
    ]
    sonrq = tree.find("SONRQ")
    seen = OfxRequestSeen(
        variant=variant,
        major_version=major,
        version=version,
        userid=sonrq.get("USERID") if sonrq else None,
        clientuid=sonrq.get("CLIENTUID") if sonrq else None,
        messages=messages,
        body=text,
    )
    return seen, (tree if major and start >= 0 else None)


# --- responses (one tree, 2 renderings)

Node = tuple[str, "str | list[Node]"]  # (tag, leaf text | children)


def n(tag: str, *kids: Node | str | None) -> Node:
    """`n("CODE", "0")` is a leaf; `n("STATUS", n(...), None, ...)` an aggregate (Nones dropped)."""
    if len(kids) == 1 and isinstance(kids[0], str):
        return (tag, kids[0])
    return (tag, [k for k in kids if k is not None and not isinstance(k, str)])


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _lines(node: Node, closed: bool) -> Iterator[str]:
    tag, body = node
    if isinstance(body, str):
        yield f"<{tag}>{_escape(body)}" + (f"</{tag}>" if closed else "")
    else:
        yield f"<{tag}>"
        for kid in body:
            yield from _lines(kid, closed)
        yield f"</{tag}>"


def render(tree: Node, major: int, version: str, oneline: bool = False) -> bytes:
    """v1: colon header, unclosed leaves, CRLF, cp1252. v2: XML header, closed, UTF-8."""
    if major == 1:
        header = (
            f"OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:{version}\r\nSECURITY:NONE\r\n"
            "ENCODING:USASCII\r\nCHARSET:1252\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\n"
            "NEWFILEUID:NONE\r\n"
        )
        body = "".join(_lines(tree, False)) if oneline else "\r\n".join(_lines(tree, False))
        text = header + (body if oneline else "\r\n" + body + "\r\n")
        return text.encode("cp1252", errors="replace")
    if oneline:
        return "".join(_lines(tree, True)).encode()
    header = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        f'<?OFX OFXHEADER="200" VERSION="{version}" SECURITY="NONE" OLDFILEUID="NONE" '
        'NEWFILEUID="NONE"?>\n'
    )
    return (header + "\n".join(_lines(tree, True)) + "\n").encode()


def _status(code: int, severity: str, message: str | None = None) -> Node:
    return n(
        "STATUS", n("CODE", str(code)), n("SEVERITY", severity), message and n("MESSAGE", message)
    )


_OK_STATUS = _status(0, "INFO")


def _d(day: date) -> str:
    return day.strftime("%Y%m%d")


def _day_of(value: str | None) -> date | None:
    try:
        return datetime.strptime((value or "")[:8], "%Y%m%d").date()
    except ValueError:
        return None


# --- the bank's data


@dataclass(frozen=True)
class _Txn:
    fitid: str
    trntype: str
    days_ago: int
    amount: str
    name: str
    memo: str | None = None
    checknum: str | None = None
    dtuser_day_before: bool = False
    time: str = ""  # appended to DTPOSTED's date

    def node(self, today: date) -> Node:
        posted = today - timedelta(days=self.days_ago)
        return n(
            "STMTTRN",
            n("TRNTYPE", self.trntype),
            n("DTPOSTED", _d(posted) + self.time),
            n("DTUSER", _d(posted - timedelta(days=1))) if self.dtuser_day_before else None,
            n("TRNAMT", self.amount),
            n("FITID", self.fitid),
            n("CHECKNUM", self.checknum) if self.checknum else None,
            n("NAME", self.name),
            n("MEMO", self.memo) if self.memo else None,
        )


@dataclass(frozen=True)
class _Account:
    desc: str
    accttype: str  # CHECKING / SAVINGS, or "" for the card
    ledger: str
    avail: str | None
    txns: tuple[_Txn, ...]


_BANK_ACCOUNTS = {
    CHECKING: _Account("Everyday Checking", "CHECKING", "3187.44", "3100.00", (
        _Txn("CHK-0001", "CREDIT", 30, "2500.00", "ACME PAYROLL", memo="Direct deposit"),
        _Txn("CHK-0002", "DEBIT", 20, "-84.27", "Café Olé & Sons", dtuser_day_before=True),
        _Txn("CHK-0003", "CHECK", 15, "-150.00", "Check 1042", checknum="1042"),
        _Txn("CHK-0004", "FEE", 10, "-12.00", "Monthly service fee"),
        _Txn("CHK-0005", "INT", 5, "0.37", "Interest paid"),
        _Txn("CHK-0006", "ATM", 2, "-60.00", "ATM withdrawal", time="120000.000[-5:EST]"),
    )),
    SAVINGS: _Account("Rainy Day Savings", "SAVINGS", "10501.23", None, (
        _Txn("SAV-0001", "CREDIT", 25, "500.00", "Transfer from checking"),
        _Txn("SAV-0002", "INT", 5, "1.23", "Interest paid"),
    )),
}  # fmt: skip
_CARD = _Account("FakeBank Rewards Visa", "", "-865.09", "4134.91", (
    _Txn("CC-0001", "DEBIT", 18, "-45.10", "GROCERY MART"),
    _Txn("CC-0002", "DEBIT", 12, "-19.99", "STREAMING SVC"),
    _Txn("CC-0003", "CREDIT", 6, "200.00", "PAYMENT THANK YOU"),
))  # fmt: skip
# CUSIP, name, ticker, price. Made-up CUSIPs.
_STOCK = ("000000AA1", "Fake Widgets Inc", "FWID", "151.10")
_FUND = ("000000BB2", "Fake Total Market Index Fund", "FTMIX", "42.10")
_FUND_MKTVAL = "5063.00"  # as specified; 120.285 x 42.10 is 5063.9985 (banks round oddly)


def _bank_from(acctid: str) -> Node:
    accttype = _BANK_ACCOUNTS[acctid].accttype
    return n("BANKACCTFROM", n("BANKID", BANKID), n("ACCTID", acctid), n("ACCTTYPE", accttype))


def _inv_from() -> Node:
    return n("INVACCTFROM", n("BROKERID", BROKERID), n("ACCTID", INVACCT))


def _acctinfo_rs(today: date) -> Node:
    def info(desc: str, tag: str, account_from: Node, xfer: str) -> Node:
        return n("ACCTINFO", n("DESC", desc), n(
            tag, account_from, n("SUPTXDL", "Y"), n("XFERSRC", xfer[0]),
            n("XFERDEST", xfer[1]), n("SVCSTATUS", "ACTIVE"),
        ))  # fmt: skip

    return n(
        "ACCTINFORS",
        n("DTACCTUP", _d(today)),
        *(info(a.desc, "BANKACCTINFO", _bank_from(i), "YY") for i, a in _BANK_ACCOUNTS.items()),
        info(_CARD.desc, "CCACCTINFO", n("CCACCTFROM", n("ACCTID", CARD)), "NY"),
        n("ACCTINFO", n("DESC", "Retirement 401(k)"), n(
            "INVACCTINFO", _inv_from(), n("USPRODUCTTYPE", "401K"), n("CHECKING", "Y"),
            n("SVCSTATUS", "ACTIVE"), n("INVACCTTYPE", "INDIVIDUAL"),
        )),
    )  # fmt: skip


@dataclass
class _Window:
    start: date | None
    end: date | None

    @staticmethod
    def of(rq: _El) -> _Window | None:
        """INCTRAN's window, or None when no transactions were asked for."""
        inctran = rq.find("INCTRAN")
        if inctran is None or (inctran.get("INCLUDE") or "Y").upper() != "Y":
            return None
        return _Window(_day_of(inctran.get("DTSTART")), _day_of(inctran.get("DTEND")))

    def holds(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)

    def bounds(self, today: date) -> tuple[Node, Node]:
        start, end = self.start or today - timedelta(days=40), self.end or today
        return n("DTSTART", _d(start)), n("DTEND", _d(end))


def _banktranlist(account: _Account, window: _Window | None, today: date) -> Node | None:
    if window is None:
        return None
    txns = [t for t in account.txns if window.holds(today - timedelta(days=t.days_ago))]
    return n("BANKTRANLIST", *window.bounds(today), *(t.node(today) for t in txns))


def _balances(account: _Account, today: date) -> list[Node | None]:
    asof = n("DTASOF", _d(today) + "060000.000[-5:EST]")
    return [
        n("LEDGERBAL", n("BALAMT", account.ledger), asof),
        n("AVAILBAL", n("BALAMT", account.avail), asof) if account.avail else None,
    ]


def _bank_stmt(rq: _El, today: date) -> Node | None:
    acctid = rq.get("ACCTID")
    if rq.get("BANKID") != BANKID or acctid not in _BANK_ACCOUNTS:
        return None
    account = _BANK_ACCOUNTS[acctid]
    return n(
        "STMTRS", n("CURDEF", "USD"), _bank_from(acctid),
        _banktranlist(account, _Window.of(rq), today), *_balances(account, today),
    )  # fmt: skip


def _cc_stmt(rq: _El, today: date) -> Node | None:
    if rq.get("ACCTID") != CARD:
        return None
    return n(
        "CCSTMTRS", n("CURDEF", "USD"), n("CCACCTFROM", n("ACCTID", CARD)),
        _banktranlist(_CARD, _Window.of(rq), today), *_balances(_CARD, today),
    )  # fmt: skip


def _secid(security: tuple[str, ...]) -> Node:
    return n("SECID", n("UNIQUEID", security[0]), n("UNIQUEIDTYPE", "CUSIP"))


def _invtrans(today: date) -> list[tuple[date, Node]]:
    def day(ago: int) -> date:
        return today - timedelta(days=ago)

    def invtran(fitid: str, ago: int, memo: str) -> Node:
        return n(
            "INVTRAN", n("FITID", fitid), n("DTTRADE", _d(day(ago))),
            n("DTSETTLE", _d(day(ago - 2))), n("MEMO", memo),
        )  # fmt: skip

    cash = (n("SUBACCTSEC", "CASH"), n("SUBACCTFUND", "CASH"))
    return [
        (day(25), n("BUYSTOCK", n(
            "INVBUY", invtran("INV-0001", 25, "Bought FWID"), _secid(_STOCK), n("UNITS", "10"),
            n("UNITPRICE", "150.25"), n("COMMISSION", "4.95"), n("TOTAL", "-1507.45"), *cash,
        ), n("BUYTYPE", "BUY"))),
        (day(20), n("SELLMF", n(
            "INVSELL", invtran("INV-0002", 20, "Sold FTMIX"), _secid(_FUND), n("UNITS", "-5"),
            n("UNITPRICE", "42.10"), n("TOTAL", "210.50"), *cash,
        ), n("SELLTYPE", "SELL"))),
        (day(15), n(
            "INCOME", invtran("INV-0003", 15, "FWID dividend"), _secid(_STOCK),
            n("INCOMETYPE", "DIV"), n("TOTAL", "18.40"), *cash,
        )),
        (day(15), n(
            "REINVEST", invtran("INV-0004", 15, "FTMIX dividend reinvested"), _secid(_FUND),
            n("INCOMETYPE", "DIV"), n("TOTAL", "-12.00"), n("SUBACCTSEC", "CASH"),
            n("UNITS", "0.285"), n("UNITPRICE", "42.10"),
        )),
        (day(10), n(
            "TRANSFER", invtran("INV-0005", 10, "Shares transferred in"), _secid(_STOCK),
            n("SUBACCTSEC", "CASH"), n("UNITS", "20"), n("TFERACTION", "IN"),
            n("POSTYPE", "LONG"),
        )),
        (day(5), n("INVBANKTRAN", n(
            "STMTTRN", n("TRNTYPE", "CREDIT"), n("DTPOSTED", _d(day(5))),
            n("TRNAMT", "1000.00"), n("FITID", "INV-0006"), n("NAME", "Contribution"),
        ), n("SUBACCTFUND", "CASH"))),
    ]  # fmt: skip


def _inv_stmt(rq: _El, today: date) -> Node | None:
    if rq.get("BROKERID") != BROKERID or rq.get("ACCTID") != INVACCT:
        return None
    window = _Window.of(rq)
    tranlist = window and n(
        "INVTRANLIST", *window.bounds(today),
        *(node for day, node in _invtrans(today) if window.holds(day)),
    )  # fmt: skip
    incpos = rq.find("INCPOS")
    asof = _d(today) + "160000.000[-5:EST]"

    def pos(tag: str, security: tuple[str, ...], units: str, mktval: str) -> Node:
        return n(tag, n(
            "INVPOS", _secid(security), n("HELDINACCT", "CASH"), n("POSTYPE", "LONG"),
            n("UNITS", units), n("UNITPRICE", security[3]), n("MKTVAL", mktval),
            n("DTPRICEASOF", asof),
        ))  # fmt: skip

    wants_pos = incpos is not None and (incpos.get("INCLUDE") or "Y").upper() == "Y"
    poslist = wants_pos and n(
        "INVPOSLIST", pos("POSSTOCK", _STOCK, "30", "4533.00"),
        pos("POSMF", _FUND, "120.285", _FUND_MKTVAL),
    )  # fmt: skip
    invbal = (rq.get("INCBAL") or "N").upper() == "Y" and n(
        "INVBAL", n("AVAILCASH", "1520.55"), n("MARGINBALANCE", "0"), n("SHORTBALANCE", "0"),
    )  # fmt: skip
    return n(
        "INVSTMTRS", n("DTASOF", asof), n("CURDEF", "USD"), _inv_from(),
        tranlist or None, poslist or None, invbal or None,
    )  # fmt: skip


def _seclist(today: date) -> Node:
    def secinfo(security: tuple[str, ...]) -> Node:
        _, name, ticker, price = security
        return n(
            "SECINFO", _secid(security), n("SECNAME", name), n("TICKER", ticker),
            n("UNITPRICE", price), n("DTASOF", _d(today)),
        )  # fmt: skip

    return n("SECLISTMSGSRSV1", n("SECLIST", n("STOCKINFO", secinfo(_STOCK)), n(
        "MFINFO", secinfo(_FUND), n("MFTYPE", "OPENEND"),
    )))  # fmt: skip


# request TRNRQ tag -> (inner RQ tag, statement builder); a None statement means 2003.
_STATEMENTS = {
    "STMTTRNRQ": ("STMTRQ", _bank_stmt),
    "CCSTMTTRNRQ": ("CCSTMTRQ", _cc_stmt),
    "INVSTMTTRNRQ": ("INVSTMTRQ", _inv_stmt),
}


# --- the bank


class FakeOfxBank:
    def __init__(self) -> None:
        self.requests: list[OfxRequestSeen] = []
        self.slow_seconds: float = 5.0
        self.pending_clientuids: set[str] = set()
        self.approved_clientuids: set[str] = set()
        self.today: date = date.today()
        self.port = 0
        self.lock = threading.Lock()
        self.closing = threading.Event()  # wakes "slow" answers when the server stops

    def url(self, variant: str = "standard") -> str:
        return f"http://127.0.0.1:{self.port}/{variant}/ofx"

    def approve(self, clientuid: str) -> None:
        with self.lock:
            self.approved_clientuids.add(clientuid)
            self.pending_clientuids.discard(clientuid)

    def approve_all_pending(self) -> None:
        with self.lock:
            self.approved_clientuids |= self.pending_clientuids
            self.pending_clientuids.clear()

    def signon(self, variant: str, sonrq: _El) -> tuple[int, str, str | None]:
        password = scenario_of(sonrq.get("USERPASS"))
        if sonrq.get("USERID") != USERID:
            return _INVALID
        if password == "garbage":
            return _GARBAGE
        if password in _SIGNON_FAILURES:
            return _SIGNON_FAILURES[password]
        if password not in ("good", "error", "mfa"):
            return _INVALID
        if variant == "clientuid":
            clientuid = sonrq.get("CLIENTUID")
            with self.lock:
                if clientuid not in self.approved_clientuids:
                    if clientuid:
                        self.pending_clientuids.add(clientuid)
                    return (15510, "ERROR", CLIENTUID_MESSAGE)
        if password == "mfa":
            answers = {
                a.get("MFAPHRASEID"): a.get("MFAPHRASEA") for a in sonrq.find_all("MFACHALLENGEA")
            }
            if not answers:
                return (3000, "ERROR", "MFA challenge authentication required")
            if any(answers.get(k) != a for k, (_, a) in MFA_QUESTIONS.items()):
                return (3001, "ERROR", "MFA challenge information is invalid")
        return _OK

    def answer(self, variant: str, request: _El) -> Node | None:
        """The response tree for a scanned request, or None for the garbage page."""
        today = self.today
        now = datetime.now(UTC)
        sonrq = request.find("SONRQ") or _El("SONRQ")
        code, severity, message = self.signon(variant, sonrq)
        if code == _GARBAGE[0]:
            return None
        signon = [n(
            "SONRS", _status(code, severity, message),
            n("DTSERVER", _d(today) + now.strftime("%H%M%S.000[0:GMT]")), n("LANGUAGE", "ENG"),
            n("FI", n("ORG", FI_ORG), n("FID", FI_FID)),
        )]  # fmt: skip
        challenge = request.find("MFACHALLENGETRNRQ")
        if challenge and scenario_of(sonrq.get("USERPASS")) == "mfa" and code in (0, 3000, 3001):
            signon.append(n(
                "MFACHALLENGETRNRS", n("TRNUID", challenge.get("TRNUID") or "0"), _OK_STATUS,
                n("MFACHALLENGERS", *(
                    n("MFACHALLENGE", n("MFAPHRASEID", k), n("MFAPHRASELABEL", label))
                    for k, (label, _) in MFA_QUESTIONS.items()
                )),
            ))  # fmt: skip
        ofx = [n("SIGNONMSGSRSV1", *signon)]
        if code != 0:  # a failed signon answers the signon only, as real servers do
            return n("OFX", *ofx)
        failing = scenario_of(sonrq.get("USERPASS")) == "error"
        seclist = False
        ofx_rq = request.find("OFX") or request
        for msgset in ofx_rq.kids:
            if msgset.tag == "SIGNONMSGSRQV1" or "MSGSRQ" not in msgset.tag:
                continue
            answers: list[Node] = []
            for trnrq in (k for k in msgset.kids if k.tag.endswith("TRNRQ")):
                trnuid = n("TRNUID", trnrq.get("TRNUID") or "0")
                trnrs = trnrq.tag[:-2] + "RS"
                if trnrq.tag == "ACCTINFOTRNRQ":
                    answers.append(n(trnrs, trnuid, _OK_STATUS, _acctinfo_rs(today)))
                elif trnrq.tag not in _STATEMENTS:
                    answers.append(n(trnrs, trnuid, _status(2000, "ERROR", "Not supported")))
                elif failing:
                    error = _status(2000, "ERROR", "General error: try again later")
                    answers.append(n(trnrs, trnuid, error))
                else:
                    rq_tag, build = _STATEMENTS[trnrq.tag]
                    statement = build(trnrq.find(rq_tag) or trnrq, today)
                    seclist |= statement is not None and trnrq.tag == "INVSTMTTRNRQ"
                    ok = _OK_STATUS if statement else _status(2003, "ERROR", "Account not found")
                    answers.append(n(trnrs, trnuid, ok, statement))
            ofx.append(n(msgset.tag.replace("MSGSRQ", "MSGSRS"), *answers))
        if seclist:
            ofx.append(_seclist(today))
        return n("OFX", *ofx)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a "slow" client hanging up
            super().handle_error(request, client_address)


@contextmanager
def serve_fake_ofx_bank() -> Iterator[FakeOfxBank]:
    bank = FakeOfxBank()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, ctype: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _text(self, status: int, text: str, **headers: str) -> None:
            self._send(status, text.encode(), "text/plain; charset=utf-8", **headers)

        def do_POST(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if len(parts) != 2 or parts[0] not in VARIANTS or parts[1] != "ofx":
                return self._text(404, "Not found\n")
            variant = parts[0]
            seen, request = _scan(variant, raw)
            with bank.lock:
                bank.requests.append(seen)
            if variant == "down":
                return self._text(503, "Service temporarily unavailable\n", Retry_After="120")
            if "application/x-ofx" not in (self.headers.get("Content-Type") or "").lower():
                return self._text(415, "Content-Type must be application/x-ofx\n")
            if request is None:
                return self._text(400, "Bad request: not an OFX document\n")
            if variant == "v1only" and seen.major_version == 2:
                return self._text(400, "Bad request: OFX version not supported\n")
            if variant == "slow" and bank.closing.wait(bank.slow_seconds):
                return
            tree = bank.answer(variant, request)
            if tree is None:
                return self._send(200, GARBAGE_PAGE.encode(), "application/x-ofx")
            body = render(tree, seen.major_version, seen.version, oneline=variant == "oneline")
            self._send(200, body, "application/x-ofx")

        def do_GET(self) -> None:
            self._text(405, "Method not allowed: POST an OFX document\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    bank.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield bank
    finally:
        bank.closing.set()
        server.shutdown()
        server.server_close()
