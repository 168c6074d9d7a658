"""The QIF reader on files written for these tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from openagg.statements.model import UnreadableFile
from openagg.statements.qif import read_qif


def qif(text: str) -> bytes:
    return text.strip().encode() + b"\n"


def test_us_dates_with_apostrophe_year_payee_memo_check_and_category():
    f = read_qif(
        qif("""
!Type:Bank
D1/31'26
T-1,234.56
PLandlord & Co
MRent January
N1042
LHousing:Rent
^
D2/ 3'26
U250.00
T250.00
PEmployer
^
""")
    )
    assert f.format == "QIF"
    assert [a.type for a in f.accounts] == ["CHECKING"]
    rent, pay = f.entries
    assert rent.date == dt.date(2026, 1, 31)
    assert rent.amount == Decimal("-1234.56")
    assert (rent.description, rent.payee, rent.memo) == (
        "Landlord & Co",
        "Landlord & Co",
        "Rent January",
    )
    assert (rent.check_number, rent.category, rent.line) == ("1042", "Housing:Rent", 2)
    assert pay.date == dt.date(2026, 2, 3) and pay.amount == Decimal("250.00")
    assert rent.bank_id is None
    assert f.warnings == []


@pytest.mark.parametrize(
    ("dates", "expected", "warns"),
    [
        (["01/31/2026", "02/01/2026"], [dt.date(2026, 1, 31), dt.date(2026, 2, 1)], False),
        (["1/31/26", "2/1/26"], [dt.date(2026, 1, 31), dt.date(2026, 2, 1)], False),
        (["31.01.2026", "01.02.2026"], [dt.date(2026, 1, 31), dt.date(2026, 2, 1)], False),
        (["31/01/2026", "01/02/2026"], [dt.date(2026, 1, 31), dt.date(2026, 2, 1)], False),
        # Nothing over 12: `/` reads as US, `.` as European, with a warning.
        (["02/01/2026"], [dt.date(2026, 2, 1)], True),
        (["02.01.2026"], [dt.date(2026, 1, 2)], True),
        (["2026-01-31"], [dt.date(2026, 1, 31)], False),
    ],
)
def test_date_styles_are_decided_per_file(dates, expected, warns):
    body = "".join(f"D{d}\nT-1.00\nPShop\n^\n" for d in dates)
    f = read_qif(qif("!Type:CCard\n" + body))
    assert [e.date for e in f.entries] == expected
    assert bool(f.warnings) == warns
    assert f.accounts[0].type == "CREDIT_CARD"


def test_european_amounts_with_comma_decimals():
    f = read_qif(qif("!Type:Bank\nD31.01.2026\nT-1.234,56\nPMiete\n^\nD01.02.2026\nT12,50\n^"))
    assert [e.amount for e in f.entries] == [Decimal("-1234.56"), Decimal("12.50")]


def test_splits_stay_one_entry_with_the_splits_in_the_memo():
    f = read_qif(
        qif("""
!Type:Bank
D03/14/2026
T-52.50
PCorner Market
MWeekly shop
LGroceries
SGroceries
EMilk and bread
$-40.00
SHousehold
$-12.50
^
""")
    )
    (entry,) = f.entries
    assert entry.amount == Decimal("-52.50")
    assert entry.memo == "Weekly shop; Groceries -40.00 (Milk and bread); Household -12.50"


def test_split_amounts_make_the_total_when_t_is_missing():
    f = read_qif(qif("!Type:Cash\nD03/14/2026\nPMarket\nSFood\n$-4.00\nSDrink\n$-1.50\n^"))
    assert f.entries[0].amount == Decimal("-5.50")
    assert f.accounts[0].type == "CASH"


def test_several_accounts():
    f = read_qif(
        qif("""
!Option:AutoSwitch
!Account
NEveryday Checking
TBank
DJoint account
^
NVisa Gold
TCCard
^
!Clear:AutoSwitch
!Account
NEveryday Checking
TBank
^
!Type:Bank
D01/05/2026
T-20.00
PGas station
^
!Account
NVisa Gold
TCCard
^
!Type:CCard
D01/06/2026
T-35.10
PBookshop
^
!Account
NHouse
TOth A
^
!Type:Oth A
D01/07/2026
T1000
PRevaluation
^
""")
    )
    assert [(a.account_id, a.type) for a in f.accounts] == [
        ("Everyday Checking", "CHECKING"),
        ("Visa Gold", "CREDIT_CARD"),
        ("House", "PROPERTY"),
    ]
    assert [(e.account_id, e.amount) for e in f.entries] == [
        ("Everyday Checking", Decimal("-20.00")),
        ("Visa Gold", Decimal("-35.10")),
        ("House", Decimal("1000")),
    ]


def test_list_sections_are_not_entries():
    f = read_qif(qif("!Type:Cat\nNGroceries\nE\n^\n!Type:Bank\nD01/05/2026\nT-1.00\nPX\n^\n"))
    assert len(f.entries) == 1


def test_investment_records_become_cash_entries_signed_by_action():
    f = read_qif(
        qif("""
!Account
NBrokerage
TInvst
^
!Type:Invst
D01/10/2026
NBuy
YAcme Corp
I150.00
Q10
T1504.95
O4.95
^
D02/10/2026
NSell
YAcme Corp
I160.00
Q5
O4.95
^
D03/10/2026
NDiv
YAcme Corp
T12.34
^
D03/11/2026
NReinvDiv
YIndex Fund
I50
Q0.5
T25.00
^
D03/12/2026
NXIn
PFrom checking
T500.00
^
D03/13/2026
NXOut
T-100.00
^
D03/14/2026
NShrsIn
YAcme Corp
Q3
^
""")
    )
    assert f.accounts[0].type == "INVESTMENT"
    assert f.holdings == []
    amounts = [(e.description, e.amount) for e in f.entries]
    assert amounts == [
        ("Buy Acme Corp", Decimal("-1504.95")),
        ("Sell Acme Corp", Decimal("795.05")),  # 5 x 160 less the commission
        ("Div Acme Corp", Decimal("12.34")),
        ("ReinvDiv Index Fund", Decimal("25.00")),
        ("XIn", Decimal("500.00")),
        ("XOut", Decimal("-100.00")),
    ]
    assert f.entries[0].memo == "10 @ 150.00, commission 4.95"
    assert f.entries[0].payee == "Acme Corp"
    assert any("move no cash" in w for w in f.warnings)


def test_a_date_that_is_no_date_names_its_line():
    with pytest.raises(UnreadableFile) as err:
        read_qif(qif("!Type:Bank\nD01/05/2026\nT-1.00\n^\nD13/45/2026\nT-2.00\n^"))
    assert err.value.line == 5
    assert str(err.value) == "line 5: '13/45/2026' is not a date"


def test_an_amount_that_is_no_amount_names_its_line():
    with pytest.raises(UnreadableFile, match=r"line 3: 'twelve' is not an amount"):
        read_qif(qif("!Type:Bank\nD01/05/2026\nTtwelve\n^"))


def test_a_record_without_a_date():
    with pytest.raises(UnreadableFile, match=r"line 2: a record without a date"):
        read_qif(qif("!Type:Bank\nT-1.00\nPShop\n^"))


def test_day_first_and_month_first_in_one_file():
    with pytest.raises(UnreadableFile, match="line 2: dates are written day first"):
        read_qif(qif("!Type:Bank\nD31/01/2026\nT-1\n^\nD01/31/2026\nT-1\n^"))


def test_latin1_text_and_crlf():
    f = read_qif(
        "!Type:Bank\r\nD31.01.2026\r\nT-3,00\r\nPB\xe4ckerei M\xfcller\r\n^\r\n".encode("latin-1")
    )
    assert f.entries[0].payee == "Bäckerei Müller"


def test_not_qif_at_all():
    with pytest.raises(UnreadableFile, match="line 1: not QIF: 'hello'"):
        read_qif(b"hello\n")
    with pytest.raises(UnreadableFile, match="line 1: no QIF records"):
        read_qif(b"!Type:Bank\n")
