"""The CAMT.053 reader on files written for these tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from openagg.statements.camt053 import read_camt053
from openagg.statements.model import UnreadableFile


def document(statements: str, version: str = "02", encoding: str = "UTF-8") -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}">\n'
        "<BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId></GrpHdr>\n"
        f"{statements}</BkToCstmrStmt>\n</Document>\n"
    )


def balance(code: str, amount: str, date: str, sign: str = "CRDT") -> str:
    return (
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{sign}</CdtDbtInd>'
        f"<Dt><Dt>{date}</Dt></Dt></Bal>\n"
    )


FIRST = (
    "<Stmt><Id>S1</Id>\n"
    "<Acct><Id><IBAN>DE02100200301234567890</IBAN></Id><Ccy>EUR</Ccy>"
    "<Svcr><FinInstnId><BIC>TESTDEFFXXX</BIC><Nm>Testbank AG</Nm></FinInstnId></Svcr></Acct>\n"
    + balance("OPBD", "100.00", "2026-01-30")
    + balance("CLBD", "1087.50", "2026-01-31")
    + balance("CLAV", "1000.00", "2026-01-31")
    + """<Ntry>
  <NtryRef>E1</NtryRef>
  <Amt Ccy="EUR">12.50</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
  <BookgDt><Dt>2026-01-31</Dt></BookgDt><ValDt><Dt>2026-02-01</Dt></ValDt>
  <AcctSvcrRef>REF-0001</AcctSvcrRef>
  <AddtlNtryInf>SEPA-LASTSCHRIFT</AddtlNtryInf>
  <NtryDtls><TxDtls>
    <RltdPties><Cdtr><Nm>Stadtwerke Beispielstadt</Nm></Cdtr><Dbtr><Nm>Me</Nm></Dbtr></RltdPties>
    <RmtInf><Ustrd>Strom Januar</Ustrd><Ustrd>Kundennr 42</Ustrd></RmtInf>
  </TxDtls></NtryDtls>
</Ntry>
<Ntry>
  <Amt Ccy="EUR">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
  <BookgDt><DtTm>2026-01-31T09:30:00+01:00</DtTm></BookgDt>
  <NtryRef>E2</NtryRef>
  <NtryDtls><TxDtls>
    <RltdPties><Dbtr><Nm>Beispiel AG</Nm></Dbtr></RltdPties>
    <RmtInf><Ustrd>Gehalt</Ustrd></RmtInf>
  </TxDtls></NtryDtls>
</Ntry>
<Ntry>
  <Amt Ccy="EUR">5.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>PDNG</Sts>
  <ValDt><Dt>2026-02-01</Dt></ValDt>
  <AddtlNtryInf>Kartenzahlung vorgemerkt</AddtlNtryInf>
</Ntry>
<Ntry>
  <Amt Ccy="EUR">7.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>INFO</Sts>
  <BookgDt><Dt>2026-02-01</Dt></BookgDt>
</Ntry>
</Stmt>
"""
)

SECOND = (
    "<Stmt><Id>S2</Id>\n"
    "<Acct><Id><Othr><Id>0099887766</Id></Othr></Id><Ccy>EUR</Ccy><Tp><Cd>SVGS</Cd></Tp></Acct>\n"
    + balance("CLBD", "50.00", "2026-01-31", "DBIT")
    + """<Ntry>
  <Amt Ccy="EUR">300.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
  <BookgDt><Dt>2026-01-29</Dt></BookgDt>
  <AcctSvcrRef>BATCH-7</AcctSvcrRef>
  <AddtlNtryInf>Sammelueberweisung</AddtlNtryInf>
  <NtryDtls>
    <TxDtls><AmtDtls><TxAmt><Amt Ccy="EUR">100.00</Amt></TxAmt></AmtDtls>
      <RltdPties><Cdtr><Pty><Nm>Anna</Nm></Pty></Cdtr></RltdPties>
      <RmtInf><Ustrd>Rechnung 1</Ustrd></RmtInf></TxDtls>
    <TxDtls><AmtDtls><TxAmt><Amt Ccy="EUR">200.00</Amt></TxAmt></AmtDtls>
      <RltdPties><Cdtr><Pty><Nm>Bert</Nm></Pty></Cdtr></RltdPties>
      <RmtInf><Ustrd>Rechnung 2</Ustrd></RmtInf></TxDtls>
  </NtryDtls>
</Ntry>
<Ntry>
  <Amt Ccy="EUR">9.99</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>
  <BookgDt><Dt>2026-01-31</Dt></BookgDt>
  <NtryDtls><TxDtls><RltdPties><Cdtr><Pty><Nm>Streaming Co</Nm></Pty></Cdtr></RltdPties>
  </TxDtls></NtryDtls>
</Ntry>
</Stmt>
"""
)


def test_two_statements_booked_pending_and_info_entries():
    f = read_camt053(document(FIRST + SECOND).encode())
    assert f.format == "CAMT053"
    assert f.institution == "Testbank AG"
    first, second = f.accounts
    assert (first.account_id, first.currency, first.bank_id) == (
        "DE02100200301234567890",
        "EUR",
        "TESTDEFFXXX",
    )
    assert (first.balance, first.balance_date) == (Decimal("1087.50"), dt.date(2026, 1, 31))
    assert first.available_balance == Decimal("1000.00")
    assert (second.account_id, second.type, second.balance) == (
        "0099887766",
        "SAVINGS",
        Decimal("-50.00"),
    )
    power, salary, card, batch, streaming = f.entries
    assert (power.amount, power.date, power.bank_id) == (
        Decimal("-12.50"),
        dt.date(2026, 1, 31),
        "REF-0001",
    )
    assert power.description == "Strom Januar Kundennr 42"
    assert power.payee == "Stadtwerke Beispielstadt"  # the creditor of a debit
    assert power.memo == "SEPA-LASTSCHRIFT"
    assert (salary.amount, salary.payee, salary.bank_id) == (
        Decimal("1000.00"),
        "Beispiel AG",
        "E2",
    )
    assert salary.date == dt.date(2026, 1, 31)
    assert card.pending and card.bank_id is None and card.date == dt.date(2026, 2, 1)
    assert card.description == "Kartenzahlung vorgemerkt"
    assert not power.pending
    assert batch.amount == Decimal("-300.00")
    assert batch.description == "Sammelueberweisung"
    assert batch.memo == "Anna Rechnung 1 100.00; Bert Rechnung 2 200.00"
    assert batch.account_id == "0099887766"
    assert streaming.pending and streaming.description == "Streaming Co"
    assert f.warnings == [
        "1 entries with status INFO (information only, not on the account) left out, "
        "first at line 34"
    ]


@pytest.mark.parametrize("version", ["02", "08", "13"])
def test_every_namespace_version_reads_the_same(version):
    f = read_camt053(document(FIRST, version).encode())
    assert len(f.entries) == 3


def test_iso_8859_1():
    text = document(FIRST.replace("Gehalt", "Gehalt für Jänner"), encoding="ISO-8859-1")
    f = read_camt053(text.encode("latin-1"))
    assert f.entries[1].description == "Gehalt für Jänner"


def test_without_closing_balance_it_is_computed():
    stmt = FIRST.replace("<Cd>CLBD</Cd>", "<Cd>XXXX</Cd>")
    f = read_camt053(document(stmt).encode())
    # opening 100.00, booked -12.50 and +1000.00; the pending entry does not count
    assert f.accounts[0].balance == Decimal("1087.50")
    assert any("computed from the opening balance" in w for w in f.warnings)


def test_two_days_of_one_account_keep_the_latest_balance():
    later = FIRST.replace("<Id>S1</Id>", "<Id>S3</Id>").replace(
        balance("CLBD", "1087.50", "2026-01-31"), balance("CLBD", "5.00", "2026-02-28")
    )
    f = read_camt053(document(later + FIRST).encode())
    assert len(f.accounts) == 1
    assert (f.accounts[0].balance, f.accounts[0].balance_date) == (
        Decimal("5.00"),
        dt.date(2026, 2, 28),
    )


def test_bad_amount_names_the_line():
    text = document(FIRST.replace('<Amt Ccy="EUR">1000.00</Amt>', '<Amt Ccy="EUR">lots</Amt>'))
    with pytest.raises(UnreadableFile, match=r"^line 21: entry: 'lots' is not an amount"):
        read_camt053(text.encode())


def test_broken_xml_names_the_line():
    text = document(FIRST).replace("</Ntry>", "</Ntr>", 1)
    with pytest.raises(UnreadableFile, match=r"^line 19: not well-formed XML"):
        read_camt053(text.encode())


def test_other_xml():
    with pytest.raises(UnreadableFile, match=r"not a camt\.053 statement: the document is <rss>"):
        read_camt053(b"<?xml version='1.0'?>\n<rss><channel/></rss>")
