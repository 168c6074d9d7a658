"""Telling statement formats apart, from their content first and their name second."""

from __future__ import annotations

import pytest

from openagg.statements.detect import detect_format
from openagg.statements.model import UnreadableFile


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"OFXHEADER:100\nDATA:OFXSGML\n\n<OFX><SIGNONMSGSRSV1>", "OFX"),
        (b'<?xml version="1.0"?>\n<?OFX OFXHEADER="200"?>\n<OFX>', "OFX"),
        (b"\xef\xbb\xbf\n<ofx>\n<BANKMSGSRSV1>", "OFX"),
        (
            b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<Document xmlns="urn:iso:std:iso:'
            b'20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>',
            "CAMT053",
        ),
        (b"!Type:Bank\nD1/31'26\nT-1.00\n^\n", "QIF"),
        (b"!Account\nNChecking\n^\n", "QIF"),
        (b"\r\n:20:STARTUMS\r\n:25:10020030/1234\r\n:60F:C260101EUR0,00\r\n", "MT940"),
        (
            b"{1:F01TESTDEFFAXXX0000000000}{2:O940}{4:\n:20:X\n:25:NL91\n:61:260101C1,00NTRF\n",
            "MT940",
        ),
        (b"Date,Description,Amount\n2026-01-01,Tea,-1.00\n", "CSV"),
        ("Datum;Text;Betrag\n01.01.2026;Tee;-1,00\n".encode("utf-16"), "CSV"),
    ],
)
def test_by_content(data, expected):
    assert detect_format(data) == expected
    assert detect_format(data, "statement.txt") == expected


def test_the_name_breaks_ties():
    assert detect_format(b"garbled\n", "export.qif") == "QIF"
    assert detect_format(b"garbled\n", "export.STA") == "MT940"
    assert detect_format(b"<Document><Other/></Document>", "camt.xml") == "CAMT053"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"%PDF-1.7\n%\xe2\xe3\n1 0 obj", "PDF"),
        (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml xl/workbook.xml", "spreadsheet (xlsx)"),
        (b"<!DOCTYPE html>\n<html><body>Login</body></html>", "HTML"),
        (b'<?xml version="1.0"?>\n<rss version="2.0"><channel/></rss>', "XML document (<rss>)"),
        (b"\x00\x01\x02\x03\x04\x05binary\x06\x07\x08", "binary"),
        (b"Dear customer, your statement is attached.", "no statement layout"),
    ],
)
def test_what_it_is_not(data, words):
    with pytest.raises(UnreadableFile, match="this is not a statement file we can read") as err:
        detect_format(data)
    assert words in str(err.value)
