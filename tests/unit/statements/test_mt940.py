"""The MT940 reader on files written for these tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from openagg.statements.model import UnreadableFile
from openagg.statements.mt940 import read_mt940

GERMAN = """\
:20:STARTUMS
:25:10020030/1234567890
:28C:00012/001
:60F:C260130EUR1000,00
:61:2601310131DR12,50NDDTKREF-4711//B7Q1234567
:86:105?00LASTSCHRIFT?10931?20EREF+2026-01-ABC?21MREF+M-99
?22SVWZ+Stromabschlag Januar ?232026?30COBADEFFXXX?31DE0210020030
?32Stadtwerke Beispielstadt Gm?33bH
:61:2601310131CR2500,00NTRFNONREF//NONREF
:86:166?00GUTSCHRIFT?20SVWZ+Gehalt Januar?32Beispiel AG
:62F:C260131EUR3487,50
:64:C260131EUR3400,00
-
:20:STARTUMS
:25:10020030/1234567890
:28C:00013/001
:60F:C260131EUR3487,50
:61:260202D40,00NMSCNONREF
Kartenzahlung
:86:Kartenzahlung Baeckerei Sonnenschein
 Filiale Hauptstrasse
:62F:C260202EUR3447,50
-
"""


def test_german_statements_with_structured_86():
    f = read_mt940(GERMAN.replace("\n", "\r\n").encode("latin-1"))
    assert f.format == "MT940"
    (account,) = f.accounts
    assert account.account_id == "10020030/1234567890"
    assert account.currency == "EUR"
    assert account.balance == Decimal("3447.50")
    assert account.balance_date == dt.date(2026, 2, 2)
    assert account.available_balance is None  # the latest statement has no :64:
    power, salary, card = f.entries
    assert power.date == dt.date(2026, 1, 31)
    assert power.amount == Decimal("-12.50")
    assert power.bank_id == "B7Q1234567"
    assert power.description == "Stromabschlag Januar 2026"
    assert power.payee == "Stadtwerke Beispielstadt GmbH"  # ?32 filled to 27 runs on into ?33
    assert power.memo.startswith("LASTSCHRIFT; EREF+2026-01-ABC MREF+M-99 SVWZ+")
    assert power.line == 5
    assert salary.amount == Decimal("2500.00")
    assert salary.bank_id is None  # NONREF
    assert (salary.description, salary.payee) == ("Gehalt Januar", "Beispiel AG")
    assert card.date == dt.date(2026, 2, 2)
    assert card.amount == Decimal("-40.00")
    assert card.description == "Kartenzahlung Baeckerei Sonnenschein Filiale Hauptstrasse"
    assert card.payee is None
    assert f.warnings == []


def test_available_balance_and_balance_check():
    text = GERMAN.split("-\n")[0].replace(":62F:C260131EUR3487,50", ":62F:C260131EUR3000,00")
    f = read_mt940(text.encode())
    assert f.accounts[0].available_balance == Decimal("3400.00")
    assert f.accounts[0].balance == Decimal("3000.00")
    assert "do not add up" in f.warnings[0]


SWIFT = """\
{1:F01TESTDEFFAXXX0000000000}{2:O9401200260131TESTBANKXXXX00000000002601311200N}{4:
:20:940-0001
:25:NL91TEST0417164300
:28C:1/1
:60F:D251231EUR100,00
:61:2601020102RD55,00NTRFREF-1//BANK-REF-1
Storno
:86:/NAME/Return of direct debit/
:61:2601020102RC10,00NCHGNONREF//BANK-REF-2
:86:Reversal of a fee credit
:61:2512311231C30,00NTRFNONREF
:86:Year end
:62F:D260102EUR25,00
-}{5:{CHK:123456789ABC}}
{1:F01TESTDEFFAXXX0000000000}{2:O9401200260131TESTBANKXXXX00000000002601311200N}{4:
:20:940-0002
:25:NL91TEST0417164399
:28C:1/1
:60F:C260101USD0,00
:61:2601050105C1,
:86:Interest
:62F:C260105USD1,00
:86:Statement notice
-}
"""


def test_swift_blocks_several_accounts_and_reversals():
    f = read_mt940(SWIFT.encode())
    assert [(a.account_id, a.currency, a.balance) for a in f.accounts] == [
        ("NL91TEST0417164300", "EUR", Decimal("-25.00")),
        ("NL91TEST0417164399", "USD", Decimal("1.00")),
    ]
    storno, fee, year_end, interest = f.entries
    assert storno.amount == Decimal("55.00")  # RD: a debit reversed is money in
    assert storno.bank_id == "BANK-REF-1"
    assert storno.memo == "Storno"
    assert fee.amount == Decimal("-10.00")  # RC: a credit reversed is money out
    assert year_end.date == dt.date(2025, 12, 31)
    assert interest.amount == Decimal("1")
    assert interest.account_id == "NL91TEST0417164399"
    assert interest.description == "Interest"  # the statement-level :86: is not its
    assert f.warnings == []


def test_entry_date_across_the_year_end():
    text = ":20:X\n:25:1\n:60F:C251231EUR0,00\n:61:2512310102D5,00NTRFNONREF\n:86:Fee\n"
    (entry,) = read_mt940(text.encode()).entries
    assert entry.date == dt.date(2026, 1, 2)


def test_a_statement_line_that_cannot_be_read_names_its_line():
    text = ":20:X\n:25:1\n:60F:C260101EUR0,00\n:61:26013XC5,00NTRF\n"
    with pytest.raises(UnreadableFile, match=r"^line 4: statement line '26013XC5,00NTRF'"):
        read_mt940(text.encode())


def test_a_bad_balance_names_its_line():
    with pytest.raises(UnreadableFile, match=r"^line 3: .* is not a balance"):
        read_mt940(b":20:X\n:25:1\n:60F:C26AB01EUR0,00\n")


def test_no_statement():
    with pytest.raises(UnreadableFile, match="no MT940 statement"):
        read_mt940(b"just text\n")
