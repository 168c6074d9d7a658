"""The CSV reader on files written for these tests, one per quirk of banks' exports."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from openagg.statements.csv_reader import CsvOptions, read_csv
from openagg.statements.model import UnreadableFile

GERMAN = (
    "Umsätze Girokonto;;;;\n"
    "Kontonummer:;DE02100200301234567890;;;\n"
    "Zeitraum:;01.01.2026 - 31.01.2026;;;\n"
    "\n"
    "Buchungstag;Valutadatum;Empfänger;Verwendungszweck;Betrag (EUR);Saldo\n"
    "02.01.2026;02.01.2026;Bäckerei Müller;Brötchen;-3,20;996,80\n"
    '05.01.2026;06.01.2026;Stadtwerke;"Strom; Abschlag\nJanuar";-1.012,50;-15,70\n'
    "30.01.2026;30.01.2026;Beispiel AG;Gehalt;2.500,00;2.484,30\n"
    ";;;;;\n"
    "Summe;;;;1.484,30;\n"
)


def test_semicolons_comma_decimals_latin1_preamble_and_footer():
    f = read_csv(GERMAN.encode("latin-1"))
    assert f.format == "CSV"
    (account,) = f.accounts
    assert account.account_id == "DE02100200301234567890"  # from the preamble
    assert (account.balance, account.balance_date) == (Decimal("2484.30"), dt.date(2026, 1, 30))
    bread, power, salary = f.entries
    assert (bread.date, bread.amount, bread.description, bread.payee) == (
        dt.date(2026, 1, 2),
        Decimal("-3.20"),
        "Brötchen",
        "Bäckerei Müller",
    )
    assert power.date == dt.date(2026, 1, 5)  # the booking day, not the value date
    assert power.amount == Decimal("-1012.50")
    assert power.description == "Strom; Abschlag Januar"
    assert (bread.line, power.line, salary.line) == (6, 7, 9)
    assert salary.amount == Decimal("2500.00")
    assert f.warnings == [
        "1 lines without a transaction skipped (totals, balances, notes): line 11"
    ]


def test_utf8_bom_quoted_commas_newlines_identical_rows_and_us_dates():
    text = (
        "\ufeffDate,Description,Amount,Running Bal.\n"
        '01/30/2026,"Coffee, large",-3.50,96.50\n'
        '01/30/2026,"Coffee, large",-3.50,93.00\n'
        '01/31/2026,"Transfer\nfrom savings","$1,000.00","$1,093.00"\n'
    )
    f = read_csv(text.encode("utf-8"))
    assert [(e.date, e.amount, e.description) for e in f.entries] == [
        (dt.date(2026, 1, 30), Decimal("-3.50"), "Coffee, large"),
        (dt.date(2026, 1, 30), Decimal("-3.50"), "Coffee, large"),
        (dt.date(2026, 1, 31), Decimal("1000.00"), "Transfer from savings"),
    ]
    assert f.accounts[0].balance == Decimal("1093.00")
    assert f.accounts[0].account_id == ""
    assert f.warnings == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_tab_separated(encoding):
    text = "Date\tPayee\tAmount\n2026-01-05\tCafé Zoë\t-4.20\n2026-01-06\tRefund\t4.20\n"
    f = read_csv(text.encode(encoding))
    assert [(e.description, e.amount) for e in f.entries] == [
        ("Café Zoë", Decimal("-4.20")),
        ("Refund", Decimal("4.20")),
    ]


def test_nul_padded_text():
    text = "Date|Memo|Amount\x00\x00\n2026-01-05|Parking|-2.00\x00\n"
    f = read_csv(text.encode())
    assert f.entries[0].amount == Decimal("-2.00")
    assert f.entries[0].description == "Parking"


def test_debit_and_credit_columns_newest_first():
    text = (
        "Date,Description,Paid out,Paid in,Balance\n"
        "31 Jan 2026,SALARY,,2500.00,2600.00\n"
        "15 Jan 2026,CARD PAYMENT,-12.00,,100.00\n"  # a debit written negative is still out
        "14 Jan 2026,DIRECT DEBIT,88.00,,112.00\n"
    )
    f = read_csv(text.encode())
    assert [e.amount for e in f.entries] == [
        Decimal("2500.00"),
        Decimal("-12.00"),
        Decimal("-88.00"),
    ]
    assert f.entries[0].date == dt.date(2026, 1, 31)
    # newest first: the first row holds the latest balance
    assert (f.accounts[0].balance, f.accounts[0].balance_date) == (
        Decimal("2600.00"),
        dt.date(2026, 1, 31),
    )


def test_a_dc_column_signs_the_amount():
    text = (
        "Datum;Buchungstext;Betrag;S/H\n03.02.2026;Miete;850,00;S\n04.02.2026;Erstattung;12,00;H\n"
    )
    f = read_csv(text.encode())
    assert [e.amount for e in f.entries] == [Decimal("-850.00"), Decimal("12.00")]


def test_an_unnamed_debit_credit_column_is_found_by_its_content():
    text = (
        "Details,Posting Date,Description,Amount,Type,Balance\n"
        "DEBIT,02/03/2026,GROCERY STORE,42.10,DEBIT_CARD,957.90\n"
        "CREDIT,02/04/2026,PAYROLL,1000.00,ACH_CREDIT,1957.90\n"
    )
    f = read_csv(text.encode())
    assert [(e.description, e.amount) for e in f.entries] == [
        ("GROCERY STORE", Decimal("-42.10")),
        ("PAYROLL", Decimal("1000.00")),
    ]


def test_amount_styles():
    text = (
        "Date,Description,Amount\n"
        "2026-03-01,a,(5.00)\n"
        "2026-03-02,b,12.50-\n"
        "2026-03-03,c,€ 7.25\n"
        "2026-03-04,d,USD -1.00\n"
        "2026-03-05,e,+3.00\n"
    )
    f = read_csv(text.encode())
    assert [e.amount for e in f.entries] == [
        Decimal("-5.00"),
        Decimal("-12.50"),
        Decimal("7.25"),
        Decimal("-1.00"),
        Decimal("3.00"),
    ]


def test_explicit_mapping_by_name_and_number():
    text = "When;What;How much;Ref\n2026/01/02;Tea;-1,10;x\n2026/01/03;Cake;-2,20;y\n"
    with pytest.raises(UnreadableFile, match="pass date_column"):
        read_csv(text.encode())
    options = CsvOptions(
        date_column="When",
        description_column="2",
        amount_column="How much",
        date_format="%Y/%m/%d",
        decimal_separator=",",
        account_id="ACC-1",
    )
    f = read_csv(text.encode(), options)
    assert [(e.account_id, e.date, e.description, e.amount) for e in f.entries] == [
        ("ACC-1", dt.date(2026, 1, 2), "Tea", Decimal("-1.10")),
        ("ACC-1", dt.date(2026, 1, 3), "Cake", Decimal("-2.20")),
    ]


def test_skip_rows_and_encoding_options():
    text = 'garbage "line\nmore;garbage\nDate;Text;Amount\n2026-01-02;Tea;-1\n'
    f = read_csv(text.encode("cp1252"), CsvOptions(skip_rows=2, encoding="cp1252"))
    assert f.entries[0].line == 4
    assert f.entries[0].description == "Tea"


def test_no_header_columns_by_content_with_running_balance():
    text = (
        "15.01.2026;Miete Januar;-850,00;1.150,00\n"
        "16.01.2026;Kaffee;-3,00;1.147,00\n"
        "17.01.2026;Erstattung;20,00;1.167,00\n"
    )
    f = read_csv(text.encode())
    assert [e.amount for e in f.entries] == [Decimal("-850.00"), Decimal("-3.00"), Decimal("20.00")]
    assert f.entries[0].description == "Miete Januar"
    assert f.accounts[0].balance == Decimal("1167.00")
    assert f.warnings[0].startswith("no header row; columns told by their content")


def test_no_header_with_a_preamble_naming_the_period():
    text = "01.01.2026 - 31.01.2026;Konto 123\n15.01.2026;Miete;-850,00\n16.01.2026;Kaffee;-3,00\n"
    f = read_csv(text.encode())
    assert [e.amount for e in f.entries] == [Decimal("-850.00"), Decimal("-3.00")]


def test_no_header_and_no_telling_which_number_is_the_amount():
    text = "2026-01-01,Tea,1.00,7.00\n2026-01-02,Cake,2.00,9.00\n2026-01-03,Pie,4.00,3.00\n"
    with pytest.raises(
        UnreadableFile, match="pass amount_column, or debit_column and credit_column"
    ):
        read_csv(text.encode())


def test_ambiguous_dates_are_decided_by_order_and_warned():
    text = "Date,Description,Amount\n01/02/2026,a,1.00\n01/03/2026,b,1.00\n02/01/2026,c,1.00\n"
    f = read_csv(text.encode())
    # month first keeps the rows in order (Jan 2, Jan 3, Feb 1); day first would not
    assert [e.date for e in f.entries] == [
        dt.date(2026, 1, 2),
        dt.date(2026, 1, 3),
        dt.date(2026, 2, 1),
    ]
    assert "read as %m/%d/%Y" in f.warnings[0]


def test_ambiguous_dates_with_decimal_commas_read_day_first():
    text = "Datum;Text;Betrag\n01/02/2026;a;1,50\n"
    f = read_csv(text.encode())
    assert f.entries[0].date == dt.date(2026, 2, 1)
    assert "read as %d/%m/%Y (decimal commas)" in f.warnings[0]


def test_a_bad_amount_in_a_data_row_names_its_line():
    text = (
        "Date,Description,Amount\n2026-01-01,Tea,-1.00\n"
        "2026-01-02,Cake,lots\n2026-01-03,Pie,-2.00\n"
    )
    with pytest.raises(UnreadableFile) as err:
        read_csv(text.encode())
    assert str(err.value) == "line 3: 'lots' in column 'Amount' is not an amount"
    assert err.value.line == 3


def test_a_bad_date_in_a_data_row_names_its_line():
    text = "Date,Description,Amount\n2026-01-01,Tea,-1.00\n2026-13-02,Cake,-1.00\n"
    with pytest.raises(UnreadableFile, match=r"^line 3: '2026-13-02' is not a date"):
        read_csv(text.encode())


def test_a_row_without_an_amount():
    text = "Date,Description,Amount\n2026-01-01,Tea,-1.00\n2026-01-02,Cake,\n"
    with pytest.raises(UnreadableFile, match=r"^line 3: no amount in column 'Amount'"):
        read_csv(text.encode())


def test_not_a_table():
    with pytest.raises(UnreadableFile):
        read_csv(b"Hello, this is a letter.\nNothing to see.\n")
    with pytest.raises(UnreadableFile, match="no rows"):
        read_csv(b"\n\n")


def test_german_bank_export_with_an_account_column_and_two_digit_years():
    header = (
        '"Auftragskonto";"Buchungstag";"Valutadatum";"Buchungstext";"Verwendungszweck";'
        '"Lastschrift Ursprungsbetrag";"Beguenstigter/Zahlungspflichtiger";'
        '"Kontonummer/IBAN";"Betrag";"Waehrung"\n'
    )
    text = header + (
        '"DE11";"30.01.26";"31.01.26";"LASTSCHRIFT";"Strom Jan";"";"Stadtwerke";'
        '"DE22";"-45,00";"EUR"\n'
        '"DE11";"28.01.26";"28.01.26";"GUTSCHRIFT";"Gehalt";"";"Firma";"DE33";"2500,00";"EUR"\n'
    )
    f = read_csv(text.encode("cp1252"))
    assert [(a.account_id, a.currency) for a in f.accounts] == [("DE11", "EUR")]
    power, salary = f.entries
    assert (power.account_id, power.date, power.amount) == (
        "DE11",
        dt.date(2026, 1, 30),
        Decimal("-45.00"),
    )
    assert (power.description, power.payee, power.memo) == (
        "Strom Jan",
        "Stadtwerke",
        "LASTSCHRIFT",
    )
    assert salary.amount == Decimal("2500.00")


def test_card_export_with_category_and_a_type_column_that_is_no_sign():
    text = (
        "Transaction Date,Post Date,Description,Category,Type,Amount,Memo\n"
        "01/28/2026,01/29/2026,ONLINE STORE,Shopping,Sale,-23.99,\n"
        "01/27/2026,01/28/2026,Payment Thank You,,Payment,500.00,\n"
    )
    f = read_csv(text.encode())
    assert [(e.date, e.amount, e.category) for e in f.entries] == [
        (dt.date(2026, 1, 28), Decimal("-23.99"), "Shopping"),
        (dt.date(2026, 1, 27), Decimal("500.00"), None),
    ]
