"""From the bytes a bank sends to a tree of OFX aggregates.

One tolerant pass serves both OFX 1.x (SGML, leaves usually unclosed) and 2.x (XML):
the header is read for its version and character set, then a single regular
expression walks the tags. A tag with text after it is a leaf; a tag without text is
an aggregate when OFX defines it so (or the file closes it somewhere), else an empty
leaf. Closing tags pop to their aggregate, so missing or extra closers, one-line
files and mixed styles all read the same.

Most of a statement is its transactions, nearly always STMTTRN aggregates of leaves
in OFX's order: runs of those are read first, one regular expression match each,
into a `TransactionRun` (their leaf texts, no token or node per leaf); the tokens
between runs are read as above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from openagg.ofx import accel
from openagg.ofx.values import unescape


class OFXError(ValueError):
    """A document no OFX reader could understand. Names the line and element."""

    def __init__(self, message: str, line: int | None = None, element: str | None = None):
        where = ""
        if line is not None:
            where = f"line {line}"
            if element:
                where += f", <{element}>"
            where += ": "
        super().__init__(where + message)
        self.line = line
        self.element = element


class Element:
    """An OFX aggregate: its leaves by tag, its child aggregates in order, and where
    it opened (the index of its tag among the document's tags, turned into a line
    number only for messages)."""

    __slots__ = ("children", "offset", "tag", "values")

    def __init__(self, tag: str, offset: int) -> None:
        self.tag = tag
        self.values: dict[str, str] = {}
        self.children: list[Element] = []
        self.offset = offset

    def child(self, tag: str) -> Element | None:
        for c in self.children:
            if c.tag == tag:
                return c
            if tag == "STMTTRN" and isinstance(c, TransactionRun):
                return c.element(0)
        return None

    def find(self, tag: str) -> Element | None:
        """The first aggregate named ``tag`` at any depth below this one."""
        for c in self.children:
            if c.tag == tag:
                return c
            if tag == "STMTTRN" and isinstance(c, TransactionRun):
                return c.element(0)
            found = c.find(tag)
            if found is not None:
                return found
        return None

    def find_all(self, tag: str) -> list[Element]:
        out: list[Element] = []
        stack = list(reversed(self.children))
        while stack:
            c = stack.pop()
            if c.tag == tag:
                out.append(c)
            elif tag == "STMTTRN" and isinstance(c, TransactionRun):
                out.extend(c.elements())
            else:
                stack.extend(reversed(c.children))
        return out

    def __repr__(self) -> str:
        return f"<Element {self.tag} values={len(self.values)} children={len(self.children)}>"


# A run's transactions as read: each one's raw leaf texts as `_RUN_BLOCK` captures them
# (TRNTYPE, DTPOSTED as day, time, zone and other form, DTUSER the same, TRNAMT, FITID,
# CORRECTFITID, CORRECTACTION, CHECKNUM, REFNUM, SIC, NAME, MEMO, then whether another
# follows; an absent leaf reads "", texts are not yet stripped nor unescaped), or, when
# the C path read them, where those texts are (`_speedups.c`'s spans).
Rows = list[tuple[str, ...]] | bytes


class TransactionRun(Element):
    """Consecutive STMTTRN aggregates of the plain shape (only leaves, in OFX's order,
    nothing between them), read by one regular expression (or its C equivalent)
    instead of token by token: ``rows`` and ``count``, as `Rows` says. Stands among
    its parent's children where the aggregates were. `element` gives one as a general
    `Element` (with its tag index, for warnings); `find`, `find_all` and `child` see
    them."""

    __slots__ = ("_starts", "count", "end", "rows", "start", "text")

    def __init__(self, offset: int, text: str, start: int, end: int, rows: Rows, count: int):
        super().__init__(RUN_TAG, offset)
        self.text, self.start, self.end, self.rows, self.count = text, start, end, rows, count
        self._starts: list[tuple[int, int]] | None = None

    def element(self, k: int) -> Element:
        """The ``k``-th aggregate of the run, read as the general reading reads it."""
        if self._starts is None:  # (where each aggregate starts, its tag index)
            text, starts, index, at = self.text, [], self.offset, self.start
            for m in _RUN_OPENER.finditer(text, self.start, self.end):
                index += text.count("<", at, m.start())
                at = m.start()
                starts.append((at, index))
            self._starts = starts
        at, index = self._starts[k]
        end = self._starts[k + 1][0] if k + 1 < len(self._starts) else self.end
        element = Element("STMTTRN", index)
        values = element.values
        for slash, name, value in _TOKEN.findall(self.text, at + len("<STMTTRN>"), end):
            if not slash:  # only leaves of _FIELDS (their closers change nothing)
                value = value.strip()
                values[name] = unescape(value) if "&" in value else value
        return element

    def elements(self) -> list[Element]:
        return [self.element(k) for k in range(self.count)]

    def __repr__(self) -> str:
        return f"<TransactionRun of {self.count} STMTTRN>"


@dataclass
class RawDocument:
    header: dict[str, str]
    major_version: int  # 1 or 2 from the header, 0 without one (the body reads the same)
    encoding: str
    root: Element
    text: str
    warnings: list[str] = field(default_factory=list)

    # Where each tag starts, found only when a message needs a line (rarely): the
    # tokenizer itself keeps no positions, which makes it about twice as fast.
    token_starts: list[int] | None = None
    body_start: int = 0
    scanned: str = ""

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def line_of_token(self, index: int) -> int:
        if index < 0:
            return self.line_of(len(self.text))
        if self.token_starts is None:
            self.token_starts = [m.start() for m in _TOKEN.finditer(self.scanned, self.body_start)]
        return self.line_of(self.token_starts[index])

    def warn(self, token: int, element: str, message: str) -> None:
        """``token``: the tag's index (`Element.offset`), or -1 for the document's end."""
        self.warnings.append(f"line {self.line_of_token(token)}, <{element}>: {message}")


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Aggregates OFX defines (the ones a reader meets in bank answers and statement
# files). An unknown tag without text is an aggregate only if the file closes it.
AGGREGATES = _names(
    """
    OFX SIGNONMSGSRSV1 SIGNONMSGSRQV1 SONRS SONRQ STATUS FI MFACHALLENGETRNRS MFACHALLENGERS
    MFACHALLENGE MFACHALLENGETRNRQ MFACHALLENGERQ MFACHALLENGEA PINCHTRNRS PINCHRS
    CHALLENGETRNRS CHALLENGERS SIGNUPMSGSRSV1 SIGNUPMSGSRQV1 ACCTINFOTRNRS ACCTINFORS
    ACCTINFO ACCTINFOTRNRQ ACCTINFORQ BANKACCTINFO CCACCTINFO INVACCTINFO LOANACCTINFO
    BPACCTINFO PRESACCTINFO BANKACCTFROM BANKACCTTO CCACCTFROM CCACCTTO INVACCTFROM
    LOANACCTFROM BANKMSGSRSV1 BANKMSGSRQV1 STMTTRNRS STMTRS STMTTRNRQ STMTRQ INCTRAN
    STMTENDTRNRS STMTENDRS CLOSING CREDITCARDMSGSRSV1 CREDITCARDMSGSRQV1 CCSTMTTRNRS
    CCSTMTRS CCSTMTTRNRQ CCSTMTRQ CCSTMTENDTRNRS CCSTMTENDRS CCCLOSING LOANMSGSRSV1
    LOANMSGSRQV1 LOANSTMTTRNRS LOANSTMTRS LOANSTMTTRNRQ LOANSTMTRQ LOANTRANLIST LOANSTMTTRN
    LOANTRNAMT PRINBAL BANKTRANLIST STMTTRN PAYEE CCACCTTO LEDGERBAL AVAILBAL BALLIST BAL
    CURRENCY ORIGCURRENCY IMAGEDATA BANKTRANLISTP STMTTRNP INVSTMTMSGSRSV1 INVSTMTMSGSRQV1
    INVSTMTTRNRS INVSTMTRS INVSTMTTRNRQ INVSTMTRQ INCPOS INVTRANLIST INVBANKTRAN INVPOSLIST
    INVBAL INVOOLIST INV401K INV401KBAL BUYDEBT BUYMF BUYOPT BUYOTHER BUYSTOCK CLOSUREOPT
    INCOME INVEXPENSE JRNLFUND JRNLSEC MARGININTEREST REINVEST RETOFCAP SELLDEBT SELLMF
    SELLOPT SELLOTHER SELLSTOCK SPLIT TRANSFER INVBUY INVSELL INVTRAN SECID POSDEBT POSMF
    POSOPT POSOTHER POSSTOCK INVPOS SECLISTMSGSRSV1 SECLISTMSGSRQV1 SECLISTTRNRS
    SECLISTTRNRQ SECLISTRS SECLISTRQ SECLIST SECRQ DEBTINFO MFINFO OPTINFO OTHERINFO
    STOCKINFO SECINFO MFASSETCLASS PORTION FIMFASSETCLASS FIPORTION PROFMSGSRSV1
    PROFMSGSRQV1 PROFTRNRS PROFRS PROFTRNRQ PROFRQ MSGSETLIST SIGNONINFOLIST SIGNONINFO
    EMAILMSGSRSV1 BILLPAYMSGSRSV1 INTERXFERMSGSRSV1 WIREXFERMSGSRSV1
    """
)

# Leaves that may be empty and unclosed (`<MEMO>` then the next tag); never aggregates.
LEAVES = _names(
    """
    CODE SEVERITY MESSAGE DTSERVER LANGUAGE DTPROFUP DTACCTUP ORG FID SESSCOOKIE USERID
    USERPASS APPID APPVER CLIENTUID DTCLIENT TRNUID CLTCOOKIE USERKEY MFAPHRASEID
    MFAPHRASELABEL MFAPHRASEA ACCESSTOKEN AUTHTOKEN DESC PHONE SUPTXDL XFERSRC XFERDEST
    SVCSTATUS CHECKING USPRODUCTTYPE INVACCTTYPE OPTIONLEVEL BANKID BRANCHID ACCTID ACCTTYPE
    ACCTKEY BROKERID LOANACCTTYPE CURDEF DTSTART DTEND INCLUDE TRNTYPE DTPOSTED DTUSER
    DTAVAIL TRNAMT FITID CORRECTFITID CORRECTACTION SRVRTID CHECKNUM REFNUM SIC PAYEEID NAME
    EXTDNAME MEMO INV401KSOURCE BALAMT DTASOF MKTGINFO CURRATE CURSYM VALUE BALTYPE DTTRADE
    DTSETTLE UNIQUEID UNIQUEIDTYPE UNITS UNITPRICE COMMISSION FEES LOAD TOTAL SUBACCTSEC
    SUBACCTFUND SUBACCTFROM SUBACCTTO BUYTYPE SELLTYPE INCOMETYPE TFERACTION POSTYPE
    AVGCOSTBASIS UNITPRICE HELDINACCT MKTVAL DTPRICEASOF AVAILCASH MARGINBALANCE
    SHORTBALANCE BUYPOWER SECNAME TICKER RATING ASSETCLASS FIASSETCLASS PERCENT YIELD
    DTYIELDASOF MFTYPE PARVALUE DEBTTYPE COUPONRT DTCOUPON DTMAT STOCKTYPE TYPEDESC INCOO
    INCPOS INCBAL DENOMINATOR NUMERATOR OLDUNITS NEWUNITS ACCRDINT MARKUP MARKDOWN TAXES
    WITHHOLDING STATEWITHHOLDING PENALTY GAIN LOANID LOANPRINCIPAL LOANINTEREST PRINAMT
    INTAMT INSURANCE ESCRWAMT LATEFEEAMT OTHERAMT AVGCOSTBASIS ADDR1 ADDR2 ADDR3 CITY STATE
    POSTALCODE COUNTRY
    """
)

_TOKEN = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9._]*)[^<>]*>([^<]*)")
_CLOSERS = re.compile(r"</([A-Za-z][A-Za-z0-9._]*)")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_V1_FIELD = re.compile(r"([A-Za-z]+)[ \t]*:[ \t]*([^\s<]*)")
_PI_ATTR = re.compile(r"([A-Za-z]+)\s*=\s*[\"']([^\"']*)[\"']")
_XML_DECL = re.compile(r"<\?xml([^>]*)\?>", re.I)
_OFX_PI = re.compile(r"<\?OFX([^>]*)\?>", re.I)
_OFX_ROOT = re.compile(r"<OFX\s*>", re.I)

# The shape nearly every statement's transactions take: STMTTRN aggregates of leaves
# only, in the order OFX 2.2 (11.4.4.1) gives them, each leaf closed or not. One match
# reads one transaction; anything else (a PAYEE or CURRENCY aggregate, another order,
# an unknown leaf, a tag with attributes) is left to the general reading. How each
# leaf's text is captured:
#   text: as is (entities and space included: the typed pass sees to them);
#   amount: the same, but `&` and letters leave the fast path (no NaN, no Infinity);
#   date: split when of the common form, `YYYYMMDD` `HHMMSS` [.XXX] `[zone]` (3 groups),
#   else whole (a 4th); skip: not captured (a leaf OFX allows that we do not read).
# (`[^<]*` costs `re` a few instructions a character; a class of several, tens.)
_FIELDS = (
    ("TRNTYPE", "text"),
    ("DTPOSTED", "date"),
    ("DTUSER", "date"),
    ("DTAVAIL", "skip"),
    ("TRNAMT", "amount"),
    ("FITID", "text"),
    ("CORRECTFITID", "text"),
    ("CORRECTACTION", "text"),
    ("SRVRTID", "skip"),
    ("CHECKNUM", "text"),
    ("REFNUM", "text"),
    ("SIC", "text"),
    ("PAYEEID", "skip"),
    ("NAME", "text"),
    ("EXTDNAME", "skip"),
    ("MEMO", "text"),
    ("INV401KSOURCE", "skip"),
)
_CAPTURE = {
    "text": "([^<]*)",
    "amount": "([^<&A-Za-z]*)",
    # The split form must be all the leaf holds (else the alternative reads it whole).
    "date": r"(?:[ \t]*([0-9]{8})([0-9]{6})(?:\.[0-9]{3})?(\[[^\]<&\s]*\])?\s*(?=<)|([^<]*))",
    "skip": "[^<]*",
}
RUN_TAG = "#STMTTRN-RUN"


def _field(tag: str, capture: str) -> str:
    # `(?:x|)`, not `(?:x)?`: the same, but `re` runs it a quarter faster.
    return rf"(?:<{tag}>{_CAPTURE[capture]}(?:</{tag}>\s*|)|)"


# The last group: "<STMTTRN>" when another one follows right after (the run goes on).
_RUN_BLOCK = re.compile(
    r"<STMTTRN>\s*" + "".join(_field(*f) for f in _FIELDS) + r"</STMTTRN>\s*(?=(<STMTTRN>)|)"
)
_RUN_OPENER = re.compile(r"<STMTTRN>")
_SPACE = re.compile(r"\s*")
assert all(tag in LEAVES for tag, _ in _FIELDS)  # so that their closers change nothing


# (start, end, rows, count, tags) of a run: where it is, its transactions and how many,
# and how many tags it holds (each `<` in it opens one).
Run = tuple[int, int, Rows, int, int]


def _transaction_runs(text: str, start: int) -> list[Run]:
    """Each run of plain transactions in ``text`` from ``start``: read in C when it
    was built, else by `_RUN_BLOCK`."""
    if accel.native is not None:
        found: list[Run] | None = accel.native.find_runs(text, start)
        if found is not None:
            return found
    rows = _RUN_BLOCK.findall(text, start)
    if not rows:
        return []
    if len(rows) != text.count("<STMTTRN>", start):
        return _some_transaction_runs(text, start)
    # Every STMTTRN matched (a match starts at one and reads to its closer), so each run
    # is its rows end to end: its end is after the closer of its last row.
    runs: list[Run] = []
    at = start
    first = 0
    for k, row in enumerate(rows):
        if row[-1]:
            continue
        p = at = text.find("<STMTTRN>", at)
        for _ in range(k + 1 - first):
            at = text.find("</STMTTRN>", at) + len("</STMTTRN>")
        at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
        runs.append((p, at, rows[first : k + 1], k + 1 - first, text.count("<", p, at)))
        first = k + 1
    return runs


def _some_transaction_runs(text: str, start: int) -> list[Run]:
    """`_transaction_runs` when some STMTTRN are not plain: the plain ones around them
    still make runs."""
    runs: list[Run] = []
    rows: list[tuple[str, ...]] = []
    p = q = -1
    for m in _RUN_BLOCK.finditer(text, start):
        if m.start() != q:
            if rows:
                runs.append((p, q, rows, len(rows), text.count("<", p, q)))
            p, rows = m.start(), []
        rows.append(m.groups(""))
        q = m.end()
    if rows:
        runs.append((p, q, rows, len(rows), text.count("<", p, q)))
    return runs


_CHARSETS = {
    "1252": "cp1252",
    "WINDOWS-1252": "cp1252",
    "CP1252": "cp1252",
    "8859-1": "cp1252",  # banks that say ISO-8859-1 mostly send cp1252
    "ISO-8859-1": "cp1252",
    "LATIN1": "cp1252",
    "LATIN-1": "cp1252",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
}


def read(data: bytes | str) -> RawDocument:
    """The tree of an OFX document (a server's answer or a statement file)."""
    if isinstance(data, str):
        text, header, major, encoding, warnings = _header_of_text(data)
    else:
        text, header, major, encoding, warnings = _decode(data)
    start = _OFX_ROOT.search(text)
    if start is None:
        raise _not_ofx(text)
    doc = RawDocument(header, major, encoding, Element("", 0), text, warnings)
    _build(doc, start.start())
    ofx = doc.root.child("OFX")
    if ofx is None or (not ofx.children and not ofx.values):
        raise OFXError("the <OFX> element is empty", doc.line_of(start.start()), "OFX")
    return doc


def _not_ofx(text: str) -> OFXError:
    head = text.lstrip()[:60].replace("\n", " ")
    if not head:
        return OFXError("the document is empty", 1)
    what = "an HTML page" if re.match(r"(<!doctype\s+html|<html)", head, re.I) else repr(head)
    return OFXError(f"no <OFX> element: this is not an OFX document (it starts with {what})", 1)


def _decode(raw: bytes) -> tuple[str, dict[str, str], int, str, list[str]]:
    warnings: list[str] = []
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if raw.startswith(bom):
            text = raw[len(bom) :].decode(codec, errors="replace")
            return (*_header_of_text(text)[:3], codec, warnings)
    if raw[:200].count(b"\x00") > 20:  # UTF-16 without a byte order mark
        codec = "utf-16-le" if raw[1:2] == b"\x00" else "utf-16-be"
        return (*_header_of_text(raw.decode(codec, errors="replace"))[:3], codec, warnings)
    if raw.isascii():
        return (*_header_of_text(raw.decode("ascii"))[:3], "ascii", warnings)
    # The header is ASCII: read it first for the character set it declares.
    _, header, major, _, _ = _header_of_text(raw[:4096].decode("latin-1"))
    declared = _declared_codec(header, major)
    try:
        text = raw.decode("utf-8")
        if declared not in (None, "utf-8"):
            warnings.append(
                f"the header declares {_declaration(header, major)} but the bytes are UTF-8;"
                " read as UTF-8"
            )
        return text, header, major, "utf-8", warnings
    except UnicodeDecodeError:
        pass
    if declared == "utf-8":
        warnings.append("the header declares UTF-8 but the bytes are not; read as Windows-1252")
    try:
        return raw.decode("cp1252"), header, major, "cp1252", warnings
    except UnicodeDecodeError:
        return raw.decode("latin-1"), header, major, "latin-1", warnings


def _declared_codec(header: dict[str, str], major: int) -> str | None:
    if major == 2:
        name = header.get("encoding", "").upper()
        return _CHARSETS.get(name)
    if header.get("ENCODING", "").upper() in ("UTF-8", "UTF8"):
        return "utf-8"
    return _CHARSETS.get(header.get("CHARSET", "").upper())


def _declaration(header: dict[str, str], major: int) -> str:
    if major == 2:
        return f"encoding {header.get('encoding')!r}"
    return f"CHARSET {header.get('CHARSET')!r}"


def _header_of_text(text: str) -> tuple[str, dict[str, str], int, str, list[str]]:
    """(text, header fields, major version); the header is whatever precedes <OFX>."""
    if text.startswith("\ufeff"):
        text = text[1:]
    root = _OFX_ROOT.search(text, 0, 65536)
    head = text[: root.start()] if root else text[:4096]
    pi = _OFX_PI.search(head)
    if pi is not None:
        header = dict(_PI_ATTR.findall(pi.group(1)))
        decl = _XML_DECL.search(head)
        if decl is not None:
            header.update({k.lower(): v for k, v in _PI_ATTR.findall(decl.group(1))})
        return text, header, 2, "", []
    if "OFXHEADER" in head.upper():
        header = {k.upper(): v for k, v in _V1_FIELD.findall(head)}
        return text, header, 1, "", []
    if _XML_DECL.search(head):
        return text, {}, 2, "", []
    return text, {}, 0, "", []  # no header: the version is unknown, the body reads the same


def _build(doc: RawDocument, start: int) -> None:
    text = doc.text
    # Comments are blanked, not cut: positions and lines stay those of the file. ("!"
    # first: rare in OFX, it is found ten times faster than "<!--".)
    if "!" in text and "<!--" in text:
        text = _COMMENT.sub(lambda m: " " * len(m.group(0)), text)
    doc.scanned, doc.body_start = text, start
    builder = _Builder(doc, text, start)
    # Runs of plain transactions go to `TransactionRun`s; the rest, token by token.
    index = 0
    pos = start
    for p, q, rows, count, tags in _transaction_runs(text, start):
        index = builder.feed(_TOKEN.findall(text, pos, p), index)
        pos = q
        if "STMTTRN" in builder.tags:  # inside an unclosed STMTTRN: the general reading warns
            index = builder.feed(_TOKEN.findall(text, p, q), index)
            continue
        builder.stack[-1].children.append(TransactionRun(index, text, p, q, rows, count))
        index += tags
    builder.feed(_TOKEN.findall(text, pos), index)
    if len(builder.stack) > 1:
        doc.warn(-1, builder.tags[-1], "the document ends before this element is closed")


class _Builder:
    """The tokens to the tree. ``feed`` takes the tokens of one stretch of the text at
    a time (the stretches between transaction runs), its state carried across."""

    def __init__(self, doc: RawDocument, text: str, start: int) -> None:
        self.doc, self.text, self.start = doc, text, start
        self.stack = [doc.root]
        self.tags = [""]
        self.names: dict[str, str] = {}
        self.closed: set[str] | None = None

    def closed_tags(self) -> set[str]:
        """Every tag the file closes somewhere: found when an unknown tag first needs it."""
        if self.closed is None:
            self.closed = {t.upper() for t in _CLOSERS.findall(self.text, self.start)}
        return self.closed

    def feed(self, tokens: list[tuple[str, str, str]], first: int) -> int:
        """Reads ``tokens``, the first of which is the document's ``first``-th tag;
        returns the index of the tag after them."""
        doc = self.doc
        aggregates, leaves = AGGREGATES, LEAVES
        stack, tags, names = self.stack, self.tags, self.names
        top_values = stack[-1].values
        for index, (slash, name, value) in enumerate(tokens, first):
            tag = names.get(name)
            if tag is None:
                tag = names[name] = name.upper()
            if slash:
                if tag in tags:
                    i = len(tags) - 1
                    while tags[i] != tag:
                        i -= 1
                    if i != len(tags) - 1:
                        doc.warn(index, tags[-1], f"not closed before </{tag}>")
                    del stack[i:], tags[i:]
                    top_values = stack[-1].values
                continue
            value = value.strip()
            if value:  # text makes a leaf, even of a name OFX uses for an aggregate (CURRENCY)
                top_values[tag] = unescape(value) if "&" in value else value
            elif tag in leaves or (tag not in aggregates and tag not in self.closed_tags()):
                top_values[tag] = ""
            else:
                if (
                    tag in tags
                ):  # OFX never nests an aggregate in itself: the last one was left open
                    i = tags.index(tag)
                    doc.warn(index, tag, "opened again before it was closed")
                    del stack[i:], tags[i:]
                element = Element(tag, index)
                stack[-1].children.append(element)
                stack.append(element)
                tags.append(tag)
                top_values = element.values
        return first + len(tokens)
