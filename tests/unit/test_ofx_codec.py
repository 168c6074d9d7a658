"""OpenAgg's OFX codec on files written for these tests, one per quirk real banks'
files and servers show (docs/connectors/ofx.md lists them)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from openagg import ofx
from openagg.ofx import accel, writer
from tests.support import skip_or_fail

V1_HEADER = (
    "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\n"
    "CHARSET:1252\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n"
)
V2_HEADER = (
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    '<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>\n'
)

SIGNON_V1 = (
    "<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>"
    "<DTSERVER>20261201120000<LANGUAGE>ENG<FI><ORG>Test<FID>99</FI></SONRS></SIGNONMSGSRSV1>"
)


def bank_v1(
    transactions: str, *, extra: str = "<LEDGERBAL><BALAMT>100.00<DTASOF>20261201</LEDGERBAL>"
) -> str:
    """A v1 bank statement body (no header) with unclosed leaves."""
    return (
        f"<OFX>{SIGNON_V1}<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>"
        "<STMTRS><CURDEF>USD<BANKACCTFROM><BANKID>0123456789<ACCTID>5550001<ACCTTYPE>CHECKING"
        "</BANKACCTFROM><BANKTRANLIST><DTSTART>20261101<DTEND>20261201"
        f"{transactions}</BANKTRANLIST>{extra}</STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>"
    )


def txn_v1(
    fitid: str = "1", amount: str = "-10.00", posted: str = "20261105", name: str = "Shop"
) -> str:
    return (
        f"<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>{posted}<TRNAMT>{amount}<FITID>{fitid}"
        f"<NAME>{name}</STMTTRN>"
    )


def only_statement(doc: ofx.Document) -> ofx.Statement:
    assert len(doc.statements) == 1, doc.statements
    return doc.statements[0]


@pytest.fixture(autouse=True, params=["C", "pure Python"])
def codec_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test reads on both of the codec's paths: with its C hot path and without."""
    if request.param == "pure Python":
        monkeypatch.setattr(accel, "native", None)
    elif accel.native is None:
        skip_or_fail("the codec's C hot path was not built (pip found no C compiler)")


# -- reading: headers, layout, encodings -------------------------------------------


def test_v1_sgml_with_unclosed_leaves_reads_into_typed_data() -> None:
    doc = ofx.parse((V1_HEADER + "\n" + bank_v1(txn_v1("A1") + txn_v1("A2", "25.50"))).encode())
    assert (doc.version, doc.major_version) == ("102", 1)
    assert doc.signon is not None and doc.signon.status.code == 0 and doc.signon.org == "Test"
    s = only_statement(doc)
    assert s.account == ofx.AccountRef(
        "BANK", "5550001", bank_id="0123456789", account_type="CHECKING"
    )
    assert [t.fitid for t in s.transactions] == ["A1", "A2"]
    assert [t.amount for t in s.transactions] == [Decimal("-10.00"), Decimal("25.50")]
    assert s.ledger_balance == ofx.Balance(
        Decimal("100.00"), dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    )
    assert doc.warnings == []


def test_v2_xml_reads_the_same() -> None:
    body = (
        "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>"
        "<DTSERVER>20261201</DTSERVER><LANGUAGE>ENG</LANGUAGE></SONRS></SIGNONMSGSRSV1>"
        "<CREDITCARDMSGSRSV1><CCSTMTTRNRS><TRNUID>7</TRNUID><STATUS><CODE>0</CODE>"
        "<SEVERITY>INFO</SEVERITY></STATUS><CCSTMTRS><CURDEF>USD</CURDEF><CCACCTFROM>"
        "<ACCTID>4111</ACCTID></CCACCTFROM><BANKTRANLIST><DTSTART>20261101</DTSTART>"
        "<DTEND>20261201</DTEND><STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20261110</DTPOSTED>"
        "<TRNAMT>-45.10</TRNAMT><FITID>C1</FITID><NAME>Grocer</NAME></STMTTRN></BANKTRANLIST>"
        "<LEDGERBAL><BALAMT>-865.09</BALAMT><DTASOF>20261201</DTASOF></LEDGERBAL>"
        "<AVAILBAL><BALAMT>4134.91</BALAMT><DTASOF>20261201</DTASOF></AVAILBAL></CCSTMTRS>"
        "</CCSTMTTRNRS></CREDITCARDMSGSRSV1></OFX>"
    )
    doc = ofx.parse((V2_HEADER + body).encode())
    assert (doc.version, doc.major_version) == ("220", 2)
    s = only_statement(doc)
    assert (s.account.kind, s.account.account_id, s.trnuid) == ("CREDITCARD", "4111", "7")
    assert s.ledger_balance is not None and s.ledger_balance.amount == Decimal("-865.09")
    assert s.available_balance is not None and s.available_balance.amount == Decimal("4134.91")
    assert s.transactions[0].name == "Grocer"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(bank_v1(txn_v1()), id="no header"),
        pytest.param("\n\n  \n" + V1_HEADER + "\n" + bank_v1(txn_v1()), id="leading blank lines"),
        pytest.param("\ufeff" + V1_HEADER + "\n" + bank_v1(txn_v1()), id="byte order mark"),
        pytest.param(V1_HEADER + bank_v1(txn_v1()), id="no blank line after the header"),
        pytest.param(
            V1_HEADER.replace("\n", " ") + bank_v1(txn_v1()), id="the whole file on one line"
        ),
        pytest.param(
            (V1_HEADER + "\n" + bank_v1(txn_v1())).replace("<", "\r\n<"), id="CRLF, a tag per line"
        ),
        pytest.param(
            V1_HEADER.replace("VERSION:102", "VERSION:203") + bank_v1(txn_v1()),
            id="a header lying about its version",
        ),
        pytest.param(
            V1_HEADER.replace("SECURITY:NONE", "SECURITY:TYPE1") + bank_v1(txn_v1()),
            id="SECURITY TYPE1",
        ),
        pytest.param(
            bank_v1(txn_v1()).replace("<STMTTRN>", "<!-- a comment <b> -->\n<STMTTRN>"),
            id="SGML comments",
        ),
        pytest.param(
            bank_v1(txn_v1()).replace("<NAME>Shop", "<NAME>Shop</NAME>"),
            id="closing tag on the value line",
        ),
        pytest.param(bank_v1(txn_v1()).replace("</STMTTRN>", ""), id="aggregate never closed"),
        pytest.param(bank_v1(txn_v1()).lower().replace("shop", "Shop"), id="lower-case tags"),
        pytest.param(
            bank_v1(txn_v1()).replace("<FITID>", "<INTU.XFER>x<FITID>"), id="proprietary elements"
        ),
    ],
)
def test_layouts_real_files_have_read_the_same(text: str) -> None:
    s = only_statement(
        ofx.parse(text.encode("latin-1") if "\ufeff" not in text else text.encode("utf-8"))
    )
    (t,) = s.transactions
    assert (t.fitid, t.amount, t.name, t.date) == (
        "1",
        Decimal("-10.00"),
        "Shop",
        dt.date(2026, 11, 5),
    )


def test_a_v2_file_without_a_header_and_on_one_line() -> None:
    body = (
        "<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1</TRNUID><STMTRS><CURDEF>EUR</CURDEF><BANKACCTFROM>"
        "<BANKID>1</BANKID><ACCTID>2</ACCTID><ACCTTYPE>SAVINGS</ACCTTYPE></BANKACCTFROM>"
        "<BANKTRANLIST><STMTTRN><TRNTYPE>CREDIT</TRNTYPE><DTPOSTED>20261101</DTPOSTED>"
        "<TRNAMT>5</TRNAMT><FITID>x</FITID><NAME/></STMTTRN></BANKTRANLIST></STMTRS></STMTTRNRS>"
        "</BANKMSGSRSV1></OFX>"
    )
    s = only_statement(ofx.parse(body.encode()))
    assert (s.currency, s.account.account_type, s.transactions[0].amount) == (
        "EUR",
        "SAVINGS",
        Decimal(5),
    )


def test_empty_elements_stay_empty_and_do_not_swallow_their_siblings() -> None:
    text = bank_v1(
        "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261105<TRNAMT>-1.00<FITID>e1<NAME>Shop<MEMO>"
        "<CHECKNUM></STMTTRN><STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261106<TRNAMT>-2.00<FITID>e2"
        "<NAME><MEMO>note</MEMO></STMTTRN>"
    )
    a, b = only_statement(ofx.parse(text)).transactions
    assert (a.name, a.memo, a.check_number) == ("Shop", "", None)
    assert (b.fitid, b.name, b.memo) == ("e2", "", "note")


@pytest.mark.parametrize(
    ("header", "encoding"),
    [
        ("CHARSET:1252", "cp1252"),
        ("CHARSET:ISO-8859-1", "latin-1"),
        ("CHARSET:8859-1", "cp1252"),
        ("CHARSET:NONE\nENCODING:UTF-8", "utf-8"),
    ],
)
def test_text_is_decoded_by_the_headers_charset(header: str, encoding: str) -> None:
    head = V1_HEADER.replace("CHARSET:1252", header)
    raw = (head + "\n" + bank_v1(txn_v1(name="Café Olé"))).encode(encoding)
    assert only_statement(ofx.parse(raw)).transactions[0].name == "Café Olé"


def test_cp1252_only_characters_read_right() -> None:
    name = "Smith\u2019s \u2013 \u20ac5 deal"  # a curly quote, an en dash and the euro sign
    raw = (V1_HEADER + "\n" + bank_v1(txn_v1(name=name))).encode("cp1252")
    assert only_statement(ofx.parse(raw)).transactions[0].name == name


def test_a_header_that_lies_about_the_encoding_falls_back_with_a_warning() -> None:
    says_utf8 = V1_HEADER.replace("ENCODING:USASCII", "ENCODING:UTF-8")
    doc = ofx.parse((says_utf8 + "\n" + bank_v1(txn_v1(name="Café"))).encode("cp1252"))
    assert only_statement(doc).transactions[0].name == "Café"
    assert any("declares UTF-8" in w for w in doc.warnings)
    says_1252 = ofx.parse((V1_HEADER + "\n" + bank_v1(txn_v1(name="Café"))).encode("utf-8"))
    assert only_statement(says_1252).transactions[0].name == "Café"  # not "CafÃ©"
    lying_xml = V2_HEADER.replace('encoding="UTF-8"', 'encoding="utf-16"')
    doc = ofx.parse((lying_xml + bank_v1(txn_v1(name="Café"))).encode("utf-8"))
    assert only_statement(doc).transactions[0].name == "Café"


def test_utf16_files_are_read() -> None:
    text = V1_HEADER + "\n" + bank_v1(txn_v1(name="Café"))
    for raw in (text.encode("utf-16"), text.encode("utf-16-le")):
        assert only_statement(ofx.parse(raw)).transactions[0].name == "Café"


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("AT&amp;T", "AT&T"),
        ("AT&amp;amp;T", "AT&T"),  # double-escaped
        ("&lt;Payroll&gt;", "<Payroll>"),
        ("Caf&#233;", "Café"),
        ("Ben &amp; Jerry&apos;s", "Ben & Jerry's"),
        ("Tom&Jerry", "Tom&Jerry"),  # a bare ampersand stays
    ],
)
def test_entities_are_decoded(written: str, read: str) -> None:
    assert only_statement(ofx.parse(bank_v1(txn_v1(name=written)))).transactions[0].name == read


# -- reading: values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("-12,50", Decimal("-12.50")),
        ("1.234,56", Decimal("1234.56")),
        ("1,234.56", Decimal("1234.56")),
        ("-3.141", Decimal("-3.141")),
        ("10.12345", Decimal("10.12345")),
        ("+7.00", Decimal("7.00")),
        ("$5.25", Decimal("5.25")),
        ("(8.00)", Decimal("-8.00")),
        (" 9.99 ", Decimal("9.99")),
    ],
)
def test_amounts_in_every_form_banks_write(written: str, amount: Decimal) -> None:
    assert (
        only_statement(ofx.parse(bank_v1(txn_v1(amount=written)))).transactions[0].amount == amount
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("20261105", dt.datetime(2026, 11, 5, tzinfo=dt.UTC)),
        ("202611051230", dt.datetime(2026, 11, 5, 12, 30, tzinfo=dt.UTC)),
        ("20261105123045", dt.datetime(2026, 11, 5, 12, 30, 45, tzinfo=dt.UTC)),
        ("20261105123045.123", dt.datetime(2026, 11, 5, 12, 30, 45, tzinfo=dt.UTC)),
        ("20261105123045:014", dt.datetime(2026, 11, 5, 12, 30, 45, tzinfo=dt.UTC)),
        ("20261105123045.000[-5:EST]", dt.datetime(2026, 11, 5, 17, 30, 45, tzinfo=dt.UTC)),
        ("20261105123045[+5.30:IST]", dt.datetime(2026, 11, 5, 7, 0, 45, tzinfo=dt.UTC)),
        ("20261105123045[0:GMT]", dt.datetime(2026, 11, 5, 12, 30, 45, tzinfo=dt.UTC)),
        ("20261105123045[-3:GMT]", dt.datetime(2026, 11, 5, 15, 30, 45, tzinfo=dt.UTC)),
        ("20261105123045[-:EST]", dt.datetime(2026, 11, 5, 17, 30, 45, tzinfo=dt.UTC)),
        ("20261105120000[-6:CST]", dt.datetime(2026, 11, 5, 18, 0, tzinfo=dt.UTC)),
        ("20261105123045 GMT", dt.datetime(2026, 11, 5, 12, 30, 45, tzinfo=dt.UTC)),
    ],
)
def test_dates_in_every_ofx_form(written: str, expected: dt.datetime) -> None:
    assert ofx.parse_datetime(written) == expected


def test_a_transaction_keeps_the_date_the_bank_wrote_whatever_the_zone() -> None:
    t = only_statement(ofx.parse(bank_v1(txn_v1(posted="20261105230000[-8:PST]")))).transactions[0]
    assert t.date == dt.date(2026, 11, 5)


def test_10_digit_bank_ids_missing_ledger_balance_and_odd_case_enums() -> None:
    text = bank_v1(txn_v1().replace("<TRNTYPE>DEBIT", "<TRNTYPE>Debit"), extra="")
    s = only_statement(ofx.parse(text))
    assert s.account.bank_id == "0123456789"
    assert s.ledger_balance is None
    assert s.transactions[0].type == "DEBIT"


def test_missing_pieces_are_read_with_warnings_naming_the_line() -> None:
    text = (
        V1_HEADER
        + "\n"
        + bank_v1(
            "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261105<TRNAMT>-1.00<NAME>No id"
            "</STMTTRN>\n"
            "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261105<TRNAMT>-1.00<NAME>No id"
            "</STMTTRN>\n"
            "<STMTTRN><TRNTYPE>DEBIT<DTUSER>20261106<TRNAMT>-2.00<FITID>u<NAME>User date"
            "</STMTTRN>\n"
            "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261107<TRNAMT>abc<FITID>bad<NAME>Bad</STMTTRN>\n"
            "<STMTTRN><TRNTYPE>DEBIT<TRNAMT>-3.00<FITID>nodate</STMTTRN>\n"
        ).replace("<CURDEF>USD", "")
    )
    doc = ofx.parse(text)
    s = only_statement(doc)
    a, b, c = s.transactions
    assert (
        a.fitid.startswith("X-") and b.fitid.startswith("X-") and a.fitid != b.fitid
    )  # two coffees
    assert ofx.parse(text).statements[0].transactions[0].fitid == a.fitid  # stable
    assert (c.fitid, c.date) == ("u", dt.date(2026, 11, 6))
    assert s.currency == "USD"
    joined = "\n".join(doc.warnings)
    assert "no CURDEF" in joined and "no FITID" in joined and "no DTPOSTED" in joined
    assert "line 14, <STMTTRN>: TRNAMT: not an amount: 'abc'" in joined
    assert "line 15, <STMTTRN>: no usable DTPOSTED or DTUSER; transaction left out" in joined


def _plain(i: int, posted: str = "20261105120000.000[-5:EST]", closed: bool = False) -> str:
    """A transaction of the shape most files hold (read by the reader's fast path)."""
    leaves = [
        ("TRNTYPE", "POS"),
        ("DTPOSTED", posted),
        ("TRNAMT", f"-{i}.25"),
        ("FITID", f"F{i}"),
        ("NAME", f"Caf&eacute; {i}"),
        ("MEMO", "card &amp; pin"),
    ]
    inner = "".join(f"<{t}>{v}</{t}>" if closed else f"<{t}>{v}\n" for t, v in leaves)
    return f"<STMTTRN>\n{inner}</STMTTRN>\n"


@pytest.mark.parametrize("closed", [False, True], ids=["v1 leaves", "v2 leaves"])
def test_runs_of_plain_transactions_read_like_any_with_warnings_on_their_lines(
    closed: bool,
) -> None:
    """Runs of plain STMTTRN are read whole by one expression each; one the fast path
    cannot read as is (a bad date, no FITID, a PAYEE) is read the general way, and its
    warning names its own line."""
    bad_date = _plain(3, posted="20261131120000[-5:EST]", closed=closed)  # no 31 November
    no_fitid = _plain(5, closed=closed).replace(
        "<FITID>F5</FITID>" if closed else "<FITID>F5\n", ""
    )
    payee = _plain(6, closed=closed).replace("<NAME>", "<PAYEE><NAME>")
    payee = payee.replace("<MEMO>", "<ADDR1>1 Main St</PAYEE><MEMO>")
    body = (
        _plain(1, closed=closed)
        + _plain(2, closed=closed)
        + bad_date
        + _plain(4, closed=closed)
        + no_fitid
        + payee
        + _plain(7, closed=closed)
    )
    text = V1_HEADER + "\n" + bank_v1("\n" + body)
    doc = ofx.parse(text)
    s = only_statement(doc)
    fitids = [t.fitid for t in s.transactions]
    assert fitids[:3] == ["F1", "F2", "F4"] and fitids[3].startswith("X-")
    assert fitids[4:] == ["F6", "F7"]
    first = s.transactions[0]
    assert first.posted == dt.datetime(2026, 11, 5, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert (first.amount, first.name, first.memo, first.type) == (
        Decimal("-1.25"),
        "Café 1",
        "card & pin",
        "POS",
    )
    assert s.transactions[4].name == "Café 6"  # from the PAYEE aggregate
    lines = text.split("\n")
    line_of = {f: next(n for n, x in enumerate(lines, 1) if f in x) for f in ("-3.25", "-5.25")}
    opener = {
        f: max(n for n in range(1, line_of[f]) if "<STMTTRN>" in lines[n - 1]) for f in line_of
    }
    assert doc.warnings == [
        f"line {opener['-3.25']}, <STMTTRN>: DTPOSTED: not an OFX date: '20261131120000[-5:EST]'"
        " (day is out of range for month)",
        f"line {opener['-3.25']}, <STMTTRN>: no usable DTPOSTED or DTUSER; transaction left out",
        f"line {opener['-5.25']}, <STMTTRN>: no FITID; using the stand-in {fitids[3]}",
    ]
    # The reader's tree still shows every STMTTRN, in order, as the general reading has them.
    raw = ofx.reader.read(text)
    listing = raw.root.find("BANKTRANLIST")
    assert listing is not None
    runs = [c for c in listing.children if isinstance(c, ofx.reader.TransactionRun)]
    assert [r.count for r in runs] == [5, 1]  # (the bad date and no FITID are plain)
    found = listing.find_all("STMTTRN")
    assert [e.values.get("FITID") for e in found] == ["F1", "F2", "F3", "F4", None, "F6", "F7"]
    assert found[0].values["NAME"] == "Café 1" and raw.root.find("STMTTRN") is not None
    assert [raw.line_of_token(e.offset) for e in found[2:5:2]] == [opener["-3.25"], opener["-5.25"]]


@pytest.mark.parametrize("general", [False, True], ids=["plain", "with a PAYEE"])
def test_a_sic_of_other_digits_is_no_sic_not_a_crash(general: bool) -> None:
    """ "²" is a digit to str.isdigit but not to int(): it used to fail the whole file."""
    sics = {"5411": 5411, "\xb2": None, " 0042 ": 42, "54x": None}
    body = "".join(
        _plain(i).replace("<NAME>", f"<SIC>{sic}\n<NAME>") for i, sic in enumerate(sics, 1)
    )
    if general:
        body = body.replace("<NAME>", "<PAYEE><NAME>").replace("<MEMO>", "</PAYEE><MEMO>")
    doc = ofx.parse(V1_HEADER + "\n" + bank_v1(body))
    assert [t.sic for t in only_statement(doc).transactions] == list(sics.values())


def test_a_zone_of_a_day_or_more_is_a_warning_not_a_crash() -> None:
    doc = ofx.parse(V1_HEADER + "\n" + bank_v1(_plain(1, posted="20261105120000[+99:XX]")))
    assert only_statement(doc).transactions == []
    assert any("not an OFX date: '20261105120000[+99:XX]'" in w for w in doc.warnings)


def test_order_empty_lists_reversed_windows_and_several_statements() -> None:
    first = bank_v1("").replace(
        "<DTSTART>20261101<DTEND>20261201", "<DTEND>20261001<DTSTART>20261201"
    )
    second = bank_v1(txn_v1("z")).replace("5550001", "5550002")
    text = (
        first.replace("</BANKMSGSRSV1></OFX>", "") + second[second.index("<BANKMSGSRSV1>") + 14 :]
    )
    doc = ofx.parse(text)
    assert [s.account.account_id for s in doc.statements] == ["5550001", "5550002"]
    assert doc.statements[0].transactions == []
    assert any("DTSTART is after DTEND" in w for w in doc.warnings)


# -- reading: typed messages ----------------------------------------------------------


def test_error_only_answers_and_every_status() -> None:
    text = (
        "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO<MESSAGE>Welcome</STATUS>"
        "<DTSERVER>20261201</SONRS></SIGNONMSGSRSV1><BANKMSGSRSV1><STMTTRNRS><TRNUID>42"
        "<STATUS><CODE>2000<SEVERITY>ERROR<MESSAGE>General error</STATUS></STMTTRNRS>"
        "</BANKMSGSRSV1></OFX>"
    )
    doc = ofx.parse(text)
    assert doc.statements == []
    assert doc.statement_errors == [
        ofx.StatementError("42", ofx.Status(2000, "ERROR", "General error", "STMTTRNRS"))
    ]
    assert [(s.code, s.severity, s.message, s.source) for s in doc.statuses] == [
        (0, "INFO", "Welcome", "SONRS"),
        (2000, "ERROR", "General error", "STMTTRNRS"),
    ]


@pytest.mark.parametrize("code", [15500, 15502, 15000, 15510, 3000, 3001])
def test_signon_refusals_are_statuses_not_errors(code: int) -> None:
    text = (
        f"{V1_HEADER}\n<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>{code}"
        "<SEVERITY>ERROR"
        "<MESSAGE>Bank says no</STATUS><DTSERVER>20261201<LANGUAGE>ENG</SONRS>"
        "</SIGNONMSGSRSV1></OFX>"
    )
    doc = ofx.parse(text)
    assert doc.signon is not None
    assert (doc.signon.status.code, doc.signon.status.message, doc.signon.status.ok) == (
        code,
        "Bank says no",
        False,
    )


def test_account_lists_and_mfa_challenges() -> None:
    text = (
        "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>3000<SEVERITY>ERROR</STATUS><DTSERVER>20261201"
        "</SONRS><MFACHALLENGETRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS><MFACHALLENGERS>"
        "<MFACHALLENGE><MFAPHRASEID>MFA13<MFAPHRASELABEL>First pet?</MFACHALLENGE>"
        "<MFACHALLENGE><MFAPHRASEID>MFA107<MFAPHRASELABEL>Code?</MFACHALLENGE>"
        "</MFACHALLENGERS></MFACHALLENGETRNRS></SIGNONMSGSRSV1>"
        "<SIGNUPMSGSRSV1><ACCTINFOTRNRS><TRNUID>2<STATUS><CODE>0<SEVERITY>INFO</STATUS><ACCTINFORS>"
        "<DTACCTUP>20261201<ACCTINFO><DESC>Checking<BANKACCTINFO><BANKACCTFROM><BANKID>011000015"
        "<ACCTID>111<ACCTTYPE>CHECKING</BANKACCTFROM><SUPTXDL>Y<XFERSRC>Y<XFERDEST>Y<SVCSTATUS>ACTIVE"
        "</BANKACCTINFO></ACCTINFO><ACCTINFO><DESC>Card<CCACCTINFO><CCACCTFROM><ACCTID>222"
        "</CCACCTFROM><SUPTXDL>N<SVCSTATUS>PEND</CCACCTINFO></ACCTINFO><ACCTINFO><INVACCTINFO>"
        "<INVACCTFROM><BROKERID>b.test<ACCTID>333</INVACCTFROM><USPRODUCTTYPE>401K<SVCSTATUS>ACTIVE"
        "</INVACCTINFO></ACCTINFO><ACCTINFO><LOANACCTINFO><LOANACCTFROM><ACCTID>444<LOANACCTTYPE>"
        "MORTGAGE</LOANACCTFROM><SVCSTATUS>ACTIVE</LOANACCTINFO></ACCTINFO></ACCTINFORS>"
        "</ACCTINFOTRNRS></SIGNUPMSGSRSV1></OFX>"
    )
    doc = ofx.parse(text)
    assert doc.mfa_challenges == [
        ofx.MFAChallenge("MFA13", "First pet?"),
        ofx.MFAChallenge("MFA107", "Code?"),
    ]
    kinds = [
        (a.account.kind, a.account.account_id, a.supports_download, a.status) for a in doc.accounts
    ]
    assert kinds == [
        ("BANK", "111", True, "ACTIVE"),
        ("CREDITCARD", "222", False, "PEND"),
        ("INVESTMENT", "333", True, "ACTIVE"),
        ("LOAN", "444", True, "ACTIVE"),
    ]
    assert (
        doc.accounts[2].product_type == "401K"
        and doc.accounts[3].account.account_type == "MORTGAGE"
    )


def test_investment_statements_with_transactions_positions_and_securities() -> None:
    text = (
        "<OFX><INVSTMTMSGSRSV1><INVSTMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>"
        "<INVSTMTRS><DTASOF>20261201<CURDEF>USD<INVACCTFROM><BROKERID>b.test<ACCTID>9</INVACCTFROM>"
        "<INVTRANLIST><DTSTART>20261101<DTEND>20261201"
        "<BUYSTOCK><INVBUY><INVTRAN><FITID>b1<DTTRADE>20261102<DTSETTLE>20261104<MEMO>Buy</INVTRAN>"
        "<SECID><UNIQUEID>000000AA1<UNIQUEIDTYPE>CUSIP</SECID><UNITS>10<UNITPRICE>150.25"
        "<COMMISSION>4.95<TOTAL>-1507.45<SUBACCTSEC>CASH<SUBACCTFUND>CASH</INVBUY><BUYTYPE>BUY</BUYSTOCK>"
        "<INCOME><INVTRAN><FITID>i1<DTTRADE>20261103</INVTRAN><SECID><UNIQUEID>000000AA1"
        "<UNIQUEIDTYPE>CUSIP</SECID><INCOMETYPE>DIV<TOTAL>18.40<SUBACCTSEC>CASH<SUBACCTFUND>CASH</INCOME>"
        "<TRANSFER><INVTRAN><FITID>t1<DTTRADE>20261104</INVTRAN><SECID><UNIQUEID>000000BB2"
        "<UNIQUEIDTYPE>CUSIP</SECID><SUBACCTSEC>CASH<UNITS>20<TFERACTION>IN<POSTYPE>LONG</TRANSFER>"
        "<INVBANKTRAN><STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20261105<TRNAMT>1000<FITID>c1<NAME>Deposit"
        "</STMTTRN><SUBACCTFUND>CASH</INVBANKTRAN></INVTRANLIST>"
        "<INVPOSLIST><POSSTOCK><INVPOS><SECID><UNIQUEID>000000AA1<UNIQUEIDTYPE>CUSIP</SECID>"
        "<HELDINACCT>CASH<POSTYPE>LONG<UNITS>30<UNITPRICE>151.10<MKTVAL>4533.00<DTPRICEASOF>20261201"
        "</INVPOS></POSSTOCK><POSMF><INVPOS><SECID><UNIQUEID>000000BB2<UNIQUEIDTYPE>CUSIP</SECID>"
        "<HELDINACCT>CASH<POSTYPE>LONG<UNITS>120.285<UNITPRICE>42.10<MKTVAL>5063.9985"
        "<DTPRICEASOF>20261201</INVPOS></POSMF></INVPOSLIST>"
        "<INVBAL><AVAILCASH>1520.55<MARGINBALANCE>0<SHORTBALANCE>0</INVBAL></INVSTMTRS></INVSTMTTRNRS>"
        "</INVSTMTMSGSRSV1><SECLISTMSGSRSV1><SECLIST><STOCKINFO><SECINFO><SECID><UNIQUEID>000000AA1"
        "<UNIQUEIDTYPE>CUSIP</SECID><SECNAME>Acme Corp<TICKER>ACME<UNITPRICE>151.10</SECINFO>"
        "</STOCKINFO><MFINFO><SECINFO><SECID><UNIQUEID>000000BB2<UNIQUEIDTYPE>CUSIP</SECID>"
        "<SECNAME>Index Fund</SECINFO><MFTYPE>OPENEND</MFINFO></SECLIST></SECLISTMSGSRSV1></OFX>"
    )
    doc = ofx.parse(text)
    s = only_statement(doc)
    assert (s.account.kind, s.account.broker_id, s.cash_balance) == (
        "INVESTMENT",
        "b.test",
        Decimal("1520.55"),
    )
    buy, income, transfer = s.investment_transactions
    assert (buy.kind, buy.total, buy.units, buy.commission, buy.subtype) == (
        "BUYSTOCK",
        Decimal("-1507.45"),
        Decimal(10),
        Decimal("4.95"),
        "BUY",
    )
    assert buy.security == ofx.SecurityId("000000AA1", "CUSIP")
    assert (income.total, income.subtype) == (Decimal("18.40"), "DIV")
    assert (transfer.total, transfer.units, transfer.subtype) == (None, Decimal(20), "IN")
    assert [t.fitid for t in s.transactions] == ["c1"]
    assert [(p.kind, p.units, p.market_value) for p in s.positions] == [
        ("STOCK", Decimal(30), Decimal("4533.00")),
        ("MF", Decimal("120.285"), Decimal("5063.9985")),
    ]
    acme = doc.securities[ofx.SecurityId("000000AA1", "CUSIP")]
    assert (acme.kind, acme.name, acme.ticker) == ("STOCK", "Acme Corp", "ACME")
    assert doc.securities[ofx.SecurityId("000000BB2", "CUSIP")].kind == "MF"


def test_loan_statements() -> None:
    text = (
        "<OFX><LOANMSGSRSV1><LOANSTMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>"
        "<LOANSTMTRS><CURDEF>USD<LOANACCTFROM><ACCTID>L1<LOANACCTTYPE>AUTO</LOANACCTFROM>"
        "<LOANTRANLIST><DTSTART>20261101<DTEND>20261201<LOANSTMTTRN><TRNTYPE>PAYMENT<DTPOSTED>20261115"
        "<TRNAMT>350.00<FITID>p1<NAME>Payment<LOANTRNAMT><PRINAMT>300<INTAMT>50</LOANTRNAMT>"
        "</LOANSTMTTRN></LOANTRANLIST><PRINBAL><BALAMT>12000.00<DTASOF>20261201</PRINBAL>"
        "</LOANSTMTRS></LOANSTMTTRNRS></LOANMSGSRSV1></OFX>"
    )
    s = only_statement(ofx.parse(text))
    assert (s.account.kind, s.account.account_type) == ("LOAN", "AUTO")
    assert s.principal_balance is not None and s.principal_balance.amount == Decimal("12000.00")
    assert [(t.fitid, t.amount) for t in s.transactions] == [("p1", Decimal("350.00"))]


# -- reading: what no reader could understand -----------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "line 1: the document is empty"),
        (
            b"<html><body>Down for maintenance</body></html>",
            "this is not an OFX document (it starts with an HTML page)",
        ),
        (b"%PDF-1.7 binary", "no <OFX> element"),
        ((V1_HEADER + "\n\n<OFX>\n</OFX>").encode(), "line 12, <OFX>: the <OFX> element is empty"),
    ],
)
def test_what_no_reader_could_understand_is_a_clear_error(raw: bytes, words: str) -> None:
    with pytest.raises(ofx.OFXError) as caught:
        ofx.parse(raw)
    assert words in str(caught.value)


def test_a_truncated_file_is_read_with_a_warning() -> None:
    text = bank_v1(txn_v1("a") + txn_v1("b"))
    doc = ofx.parse(text[: text.index("</BANKTRANLIST>")])
    assert [t.fitid for t in only_statement(doc).transactions] == ["a", "b"]
    assert any("ends before this element is closed" in w for w in doc.warnings)


# -- writing -----------------------------------------------------------------------------


def _request(version: str) -> bytes:
    signon = writer.SignonRequest(
        "ada", "p<&>ss", org="FakeBank", fid="4242", clientuid="C-1", mfa_answers={"MFA13": "Rex"}
    )
    messages = [
        writer.account_list("1"),
        writer.statement(
            "2",
            ofx.AccountRef("BANK", "111", bank_id="011000015", account_type="SAVINGS"),
            dt.date(2026, 11, 1),
            dt.date(2026, 12, 1),
        ),
        writer.statement("3", ofx.AccountRef("CREDITCARD", "222"), dt.date(2026, 11, 1), None),
        writer.statement("4", ofx.AccountRef("INVESTMENT", "333", broker_id="b.test"), None, None),
        writer.statement("5", ofx.AccountRef("LOAN", "444", account_type="AUTO"), None, None),
    ]
    return writer.request(
        version, signon, messages, now=dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC), file_uid="F1"
    )


@pytest.mark.parametrize("version", writer.V2_VERSIONS)
def test_v2_requests_are_well_formed_xml(version: str) -> None:
    raw = _request(version)
    text = raw.decode()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8" standalone="no"?>')
    assert f'<?OFX OFXHEADER="200" VERSION="{version}"' in text
    root = ET.fromstring(raw)
    sonrq = root.find("SIGNONMSGSRQV1/SONRQ")
    assert sonrq is not None
    assert sonrq.findtext("USERPASS") == "p<&>ss"
    assert sonrq.findtext("MFACHALLENGEA/MFAPHRASEA") == "Rex"
    assert (sonrq.findtext("CLIENTUID") == "C-1") is (version not in ("200", "201", "202"))
    assert root.findtext("BANKMSGSRQV1/STMTTRNRQ/STMTRQ/INCTRAN/DTEND") == "20261202"
    assert root.find("INVSTMTMSGSRQV1/INVSTMTTRNRQ/INVSTMTRQ/INCPOS") is not None
    assert (
        root.findtext("LOANMSGSRQV1/LOANSTMTTRNRQ/LOANSTMTRQ/LOANACCTFROM/LOANACCTTYPE") == "AUTO"
    )
    assert [c.tag for c in root] == [
        "SIGNONMSGSRQV1",
        "SIGNUPMSGSRQV1",
        "BANKMSGSRQV1",
        "CREDITCARDMSGSRQV1",
        "LOANMSGSRQV1",
        "INVSTMTMSGSRQV1",
    ]


@pytest.mark.parametrize("version", writer.V1_VERSIONS)
def test_v1_requests_are_sgml_with_unclosed_leaves(version: str) -> None:
    text = _request(version).decode("cp1252")
    head, _, body = text.partition("\r\n\r\n")
    assert head.split("\r\n") == [
        "OFXHEADER:100",
        "DATA:OFXSGML",
        f"VERSION:{version}",
        "SECURITY:NONE",
        "ENCODING:USASCII",
        "CHARSET:1252",
        "COMPRESSION:NONE",
        "OLDFILEUID:NONE",
        "NEWFILEUID:F1",
    ]
    assert "<USERPASS>p&lt;&amp;&gt;ss\r\n<LANGUAGE>" in body  # leaves unclosed
    assert "</USERPASS>" not in body and "</SONRQ>" in body
    assert ("<CLIENTUID>C-1" in body) is (version != "102")
    # Our reader reads it back (a server of that age would too).
    raw = ofx.reader.read(text)
    sonrq = raw.root.find("SONRQ")
    assert sonrq is not None and sonrq.values["USERPASS"] == "p<&>ss"


def test_a_non_latin_password_makes_a_utf8_v1_request() -> None:
    raw = writer.request("102", writer.SignonRequest("ada", "пароль"), [writer.account_list("1")])
    assert b"ENCODING:UTF-8\r\nCHARSET:NONE" in raw and "пароль".encode() in raw


def test_unknown_versions_and_message_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown OFX version '104'"):
        writer.request("104", writer.SignonRequest("a", "b"))
    with pytest.raises(ValueError, match="no statement request for accounts of kind"):
        writer.statement("1", ofx.AccountRef("PREPAID", "1"), None, None)
