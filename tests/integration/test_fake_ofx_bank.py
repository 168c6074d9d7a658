"""Sanity checks for the fake OFX bank: raw OFX requests over HTTP, answers checked as text
(no OFX library, so the fake is not checked with the codec it exists to check)."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest

from tests.integration.fake_ofx_bank import FakeOfxBank, serve_fake_ofx_bank

TODAY = date(2026, 12, 10)


@pytest.fixture
def bank() -> Iterator[FakeOfxBank]:
    with serve_fake_ofx_bank() as b:
        b.today = TODAY
        yield b


def _signon(userpass: str, userid: str, clientuid: str | None, extra: str) -> str:
    uid = f"<CLIENTUID>{clientuid}</CLIENTUID>" if clientuid else ""
    return (
        "<SONRQ><DTCLIENT>20261210093000.000</DTCLIENT>"
        f"<USERID>{userid}</USERID><USERPASS>{userpass}</USERPASS>{extra}"
        "<LANGUAGE>ENG</LANGUAGE><FI><ORG>FakeBank</ORG><FID>4242</FID></FI>"
        f"<APPID>QWIN</APPID><APPVER>2700</APPVER>{uid}</SONRQ>"
    )


def ofx(
    *msgsets: str,
    major: int = 1,
    userpass: str = "good",
    userid: str = "ada",
    clientuid: str | None = None,
    sonrq_extra: str = "",
    signon_extra: str = "",
) -> bytes:
    """A request; message sets are written closed, and v1 drops the leaves' closing tags."""
    signon = _signon(userpass, userid, clientuid, sonrq_extra)
    body = f"<OFX><SIGNONMSGSRQV1>{signon}{signon_extra}</SIGNONMSGSRQV1>{''.join(msgsets)}</OFX>"
    if major == 2:
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            '<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" '
            'NEWFILEUID="NONE"?>\n' + body
        ).encode()
    body = re.sub(r"(<(\w+)>[^<]+)</\2>", r"\1", body).replace("><", ">\r\n<")
    return (
        "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:USASCII\r\n"
        "CHARSET:1252\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n" + body
    ).encode()


ACCTINFO = (
    "<SIGNUPMSGSRQV1><ACCTINFOTRNRQ><TRNUID>ai-1</TRNUID>"
    "<ACCTINFORQ><DTACCTUP>19700101</DTACCTUP></ACCTINFORQ></ACCTINFOTRNRQ></SIGNUPMSGSRQV1>"
)


def inctran(start: str = "", end: str = "") -> str:
    start = start and f"<DTSTART>{start}</DTSTART>"
    end = end and f"<DTEND>{end}</DTEND>"
    return f"<INCTRAN>{start}{end}<INCLUDE>Y</INCLUDE></INCTRAN>"


def stmt(trnuid: str, acctid: str, accttype: str = "CHECKING", window: str = "") -> str:
    return (
        f"<STMTTRNRQ><TRNUID>{trnuid}</TRNUID><STMTRQ><BANKACCTFROM><BANKID>0123456789</BANKID>"
        f"<ACCTID>{acctid}</ACCTID><ACCTTYPE>{accttype}</ACCTTYPE></BANKACCTFROM>"
        f"{window or inctran()}</STMTRQ></STMTTRNRQ>"
    )


def bankmsgs(*trnrqs: str) -> str:
    return f"<BANKMSGSRQV1>{''.join(trnrqs)}</BANKMSGSRQV1>"


CCSTMT = (
    "<CREDITCARDMSGSRQV1><CCSTMTTRNRQ><TRNUID>cc-1</TRNUID><CCSTMTRQ><CCACCTFROM>"
    f"<ACCTID>4111000011112222</ACCTID></CCACCTFROM>{inctran()}</CCSTMTRQ></CCSTMTTRNRQ>"
    "</CREDITCARDMSGSRQV1>"
)
INVSTMT = (
    "<INVSTMTMSGSRQV1><INVSTMTTRNRQ><TRNUID>inv-1</TRNUID><INVSTMTRQ><INVACCTFROM>"
    "<BROKERID>broker.fakebank.test</BROKERID><ACCTID>INV-778899</ACCTID></INVACCTFROM>"
    f"{inctran()}<INCOO>N</INCOO><INCPOS><INCLUDE>Y</INCLUDE></INCPOS><INCBAL>Y</INCBAL>"
    "</INVSTMTRQ></INVSTMTTRNRQ></INVSTMTMSGSRQV1>"
)


def post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url, content=body, headers={"Content-Type": "application/x-ofx"}, timeout=10)


def signon_code(text: str) -> str:
    m = re.search(r"<SONRS>\s*<STATUS>\s*<CODE>(\d+)", text)
    assert m, text
    return m.group(1)


def test_v1_account_list_is_sgml_cp1252_with_unclosed_leaves(bank: FakeOfxBank) -> None:
    r = post(bank.url(), ofx(ACCTINFO))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ofx"
    text = r.content.decode("cp1252")
    assert text.startswith("OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\n")
    assert "CHARSET:1252\r\n" in text and "\r\n\r\n<OFX>\r\n" in text
    assert "<CODE>0\r\n<SEVERITY>INFO\r\n</STATUS>" in text
    assert "</CODE>" not in text
    assert "<LANGUAGE>ENG\r\n<FI>\r\n<ORG>FakeBank\r\n<FID>4242\r\n</FI>" in text
    assert re.search(r"<DTSERVER>20261210\d{6}", text)
    assert "<TRNUID>ai-1\r\n" in text
    for acctid in ("100200300", "100200301", "4111000011112222", "INV-778899"):
        assert f"<ACCTID>{acctid}\r\n" in text
    assert text.count("<BANKID>0123456789\r\n") == 2
    assert "<USPRODUCTTYPE>401K" in text and "<INVACCTTYPE>INDIVIDUAL" in text
    assert text.count("<SVCSTATUS>ACTIVE") == 4
    seen = bank.requests[-1]
    assert (seen.variant, seen.major_version, seen.version) == ("standard", 1, "102")
    assert (seen.userid, seen.clientuid, seen.messages) == ("ada", None, ["SONRQ", "ACCTINFORQ"])


def test_v1_statements_for_two_accounts_and_an_unknown_one(bank: FakeOfxBank) -> None:
    body = ofx(
        bankmsgs(stmt("t1", "100200300"), stmt("t2", "100200301", "SAVINGS"), stmt("t3", "999"))
    )
    r = post(bank.url(), body)
    raw = r.content
    assert "Café Olé &amp; Sons".encode("cp1252") in raw  # cp1252 bytes, not UTF-8
    text = raw.decode("cp1252")
    assert text.count("<STMTTRNRS>") == 3
    assert re.search(r"<TRNUID>t3\r\n<STATUS>\r\n<CODE>2003\r\n<SEVERITY>ERROR\r\n"
                     r"<MESSAGE>Account not found\r\n</STATUS>\r\n</STMTTRNRS>", text)  # fmt: skip
    fitids = re.findall(r"<FITID>([\w-]+)", text)
    assert fitids == [f"CHK-000{i}" for i in range(1, 7)] + ["SAV-0001", "SAV-0002"]
    assert "<DTPOSTED>20261208120000.000[-5:EST]" in text  # the ATM withdrawal
    assert "<DTPOSTED>20261120\r\n<DTUSER>20261119\r\n<TRNAMT>-84.27" in text
    assert "<CHECKNUM>1042\r\n" in text
    assert "<LEDGERBAL>\r\n<BALAMT>3187.44" in text and "<BALAMT>3100.00" in text
    assert "<BALAMT>10501.23" in text and text.count("<AVAILBAL>") == 1
    assert bank.requests[-1].messages == ["SONRQ", "STMTRQ", "STMTRQ", "STMTRQ"]


def test_v2_answers_are_well_formed_xml_and_honour_the_window(bank: FakeOfxBank) -> None:
    window = inctran((TODAY - timedelta(days=16)).strftime("%Y%m%d"), "20261204")
    r = post(bank.url(), ofx(bankmsgs(stmt("x1", "100200300", window=window)), major=2))
    text = r.content.decode("utf-8")
    assert text.startswith('<?xml version="1.0"')
    assert '<?OFX OFXHEADER="200" VERSION="220"' in text
    root = ET.fromstring(r.content)
    assert root.findtext("SIGNONMSGSRSV1/SONRS/STATUS/CODE") == "0"
    trnrs = root.find("BANKMSGSRSV1/STMTTRNRS")
    assert trnrs is not None and trnrs.findtext("TRNUID") == "x1"
    assert [e.text for e in trnrs.iter("FITID")] == ["CHK-0003", "CHK-0004"]
    assert trnrs.findtext("STMTRS/BANKTRANLIST/DTEND") == "20261204"
    assert bank.requests[-1].major_version == 2 and bank.requests[-1].version == "220"
    r = post(bank.url(), ofx(bankmsgs(stmt("x2", "100200300")), major=2))
    assert "<NAME>Café Olé &amp; Sons</NAME>" in r.content.decode("utf-8")


def test_credit_card_and_investment_statements(bank: FakeOfxBank) -> None:
    r = post(bank.url(), ofx(CCSTMT, INVSTMT, major=2))
    root = ET.fromstring(r.content)
    cc = root.find("CREDITCARDMSGSRSV1/CCSTMTTRNRS/CCSTMTRS")
    assert cc is not None and cc.findtext("LEDGERBAL/BALAMT") == "-865.09"
    assert [e.text for e in cc.iter("FITID")] == ["CC-0001", "CC-0002", "CC-0003"]
    inv = root.find("INVSTMTMSGSRSV1/INVSTMTTRNRS/INVSTMTRS")
    assert inv is not None
    tags = [e.tag for e in inv.findall("INVTRANLIST/*")]
    assert tags[2:] == ["BUYSTOCK", "SELLMF", "INCOME", "REINVEST", "TRANSFER", "INVBANKTRAN"]
    assert [e.text for e in inv.iter("FITID")] == [f"INV-000{i}" for i in range(1, 7)]
    assert inv.findtext("INVTRANLIST/BUYSTOCK/INVBUY/TOTAL") == "-1507.45"
    assert inv.find("INVTRANLIST/TRANSFER/TOTAL") is None
    assert inv.findtext("INVPOSLIST/POSSTOCK/INVPOS/MKTVAL") == "4533.00"
    assert inv.findtext("INVPOSLIST/POSMF/INVPOS/UNITS") == "120.285"
    assert inv.findtext("INVBAL/AVAILCASH") == "1520.55"
    seclist = root.find("SECLISTMSGSRSV1/SECLIST")
    assert seclist is not None
    assert seclist.findtext("STOCKINFO/SECINFO/SECID/UNIQUEID") == "000000AA1"
    assert seclist.findtext("MFINFO/SECINFO/TICKER") == "FTMIX"
    assert bank.requests[-1].messages == ["SONRQ", "CCSTMTRQ", "INVSTMTRQ"]


@pytest.mark.parametrize(
    ("userid", "userpass", "code", "message"),
    [
        ("ada", "locked", "15502", "Your account is locked after too many attempts."),
        ("ada", "mustchange", "15000", "You must change your password at fakebank.test"),
        ("ada", "notauthorized", "15510", "This software is not authorized."),
        ("ada", "wrong", "15500", "Invalid user ID or password"),
        ("bob", "good", "15500", "Invalid user ID or password"),
    ],
)
def test_failed_signons_answer_the_signon_only(
    bank: FakeOfxBank, userid: str, userpass: str, code: str, message: str
) -> None:
    r = post(
        bank.url(),
        ofx(ACCTINFO, bankmsgs(stmt("1", "100200300")), userpass=userpass, userid=userid),
    )
    text = r.content.decode("cp1252")
    assert r.status_code == 200 and signon_code(text) == code
    assert f"<MESSAGE>{message}" in text
    assert "SIGNUPMSGSRSV1" not in text and "BANKMSGSRSV1" not in text


def test_error_password_gives_error_only_statements(bank: FakeOfxBank) -> None:
    body = ofx(ACCTINFO, bankmsgs(stmt("e1", "100200300")), CCSTMT, INVSTMT, userpass="error")
    text = post(bank.url(), body).content.decode("cp1252")
    assert signon_code(text) == "0" and "<ACCTINFORS>" in text
    assert text.count("<CODE>2000\r\n<SEVERITY>ERROR\r\n<MESSAGE>General error: try again") == 3
    assert "<STMTRS>" not in text and "<CCSTMTRS>" not in text and "<INVSTMTRS>" not in text
    assert "SECLISTMSGSRSV1" not in text


def test_garbage_password_gets_an_html_page(bank: FakeOfxBank) -> None:
    r = post(bank.url(), ofx(ACCTINFO, userpass="garbage"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ofx"
    assert r.text.startswith("<html>") and "<OFX>" not in r.text


def test_mfa_challenge_then_answers(bank: FakeOfxBank) -> None:
    challenge_rq = (
        "<MFACHALLENGETRNRQ><TRNUID>mfa-1</TRNUID><MFACHALLENGERQ><DTCLIENT>20261210</DTCLIENT>"
        "</MFACHALLENGERQ></MFACHALLENGETRNRQ>"
    )
    text = post(bank.url(), ofx(ACCTINFO, userpass="mfa")).text
    assert signon_code(text) == "3000" and "SIGNUPMSGSRSV1" not in text
    r = post(bank.url(), ofx(userpass="mfa", signon_extra=challenge_rq, major=2))
    root = ET.fromstring(r.content)
    assert root.findtext("SIGNONMSGSRSV1/SONRS/STATUS/CODE") == "3000"
    trnrs = root.find("SIGNONMSGSRSV1/MFACHALLENGETRNRS")
    assert trnrs is not None and trnrs.findtext("TRNUID") == "mfa-1"
    assert [e.text for e in trnrs.iter("MFAPHRASEID")] == ["MFA13", "MFA107"]
    assert bank.requests[-1].messages == ["SONRQ", "MFACHALLENGERQ"]

    def answered(pet: str) -> str:
        return (
            f"<MFACHALLENGEA><MFAPHRASEID>MFA13</MFAPHRASEID><MFAPHRASEA>{pet}</MFAPHRASEA>"
            "</MFACHALLENGEA><MFACHALLENGEA><MFAPHRASEID>MFA107</MFAPHRASEID>"
            "<MFAPHRASEA>123456</MFAPHRASEA></MFACHALLENGEA>"
        )

    text = post(bank.url(), ofx(ACCTINFO, userpass="mfa", sonrq_extra=answered("Tom"))).text
    assert signon_code(text) == "3001" and "<MESSAGE>MFA challenge information is invalid" in text
    text = post(bank.url(), ofx(ACCTINFO, userpass="mfa", sonrq_extra=answered("Rex"))).text
    assert signon_code(text) == "0" and "<ACCTID>100200300" in text


def test_clientuid_must_be_approved(bank: FakeOfxBank) -> None:
    url = bank.url("clientuid")
    text = post(url, ofx(ACCTINFO)).text
    assert signon_code(text) == "15510" and bank.pending_clientuids == set()
    uid = "5e0c8a52-1b6f-4b8e-9a3e-0d4f4c1f2a77"
    text = post(url, ofx(ACCTINFO, clientuid=uid)).text
    assert signon_code(text) == "15510" and "Secure Message Center within 7 days" in text
    assert bank.pending_clientuids == {uid} and bank.requests[-1].clientuid == uid
    bank.approve_all_pending()
    text = post(url, ofx(ACCTINFO, clientuid=uid)).text
    assert signon_code(text) == "0" and "<ACCTINFORS>" in text
    assert signon_code(post(url, ofx(ACCTINFO, clientuid="other")).text) == "15510"
    bank.approve("other")
    assert bank.pending_clientuids == set()


def test_oneline_down_v1only_and_slow_variants(bank: FakeOfxBank) -> None:
    text = post(bank.url("oneline"), ofx(ACCTINFO)).content.decode("cp1252")
    head, _, body = text.partition("NEWFILEUID:NONE\r\n")
    assert head.startswith("OFXHEADER:100") and body.startswith("<OFX><SIGNONMSGSRSV1>")
    assert "\n" not in body and "<CODE>0<SEVERITY>INFO</STATUS>" in body
    text = post(bank.url("oneline"), ofx(ACCTINFO, major=2)).text
    assert text.startswith("<OFX><SIGNONMSGSRSV1>") and "\n" not in text
    ET.fromstring(text)

    r = post(bank.url("down"), ofx(ACCTINFO))
    assert r.status_code == 503 and r.headers["retry-after"] == "120"

    assert post(bank.url("v1only"), ofx(ACCTINFO, major=2)).status_code == 400
    assert signon_code(post(bank.url("v1only"), ofx(ACCTINFO)).text) == "0"

    bank.slow_seconds = 0.3
    started = time.monotonic()
    assert signon_code(post(bank.url("slow"), ofx(ACCTINFO)).text) == "0"
    assert time.monotonic() - started >= 0.3
    variants = ["oneline", "oneline", "down", "v1only", "v1only", "slow"]
    assert [s.variant for s in bank.requests] == variants
