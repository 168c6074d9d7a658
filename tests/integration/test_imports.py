"""Statement files into managed members (POST /users/{guid}/imports): every format,
no duplicates ever, clear 400s naming the line, 413 over the size limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from openagg.services import imports as imports_service
from tests.conftest import Platform, make_platform, settings_for
from tests.integration.api_helpers import new_user

V1_HEADER = (
    "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:USASCII\r\n"
    "CHARSET:1252\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n"
)


def ofx_file(
    rows: list[tuple[str, str, str, str]], *, balance: str = "1000.00", org: str = "Fake CU"
) -> bytes:
    """A v1 bank statement: rows of (FITID, YYYYMMDD, amount, name)."""
    txns = "".join(
        f"<STMTTRN><TRNTYPE>{'CREDIT' if not a.startswith('-') else 'DEBIT'}<DTPOSTED>{d}"
        f"<TRNAMT>{a}<FITID>{f}<NAME>{n}</STMTTRN>\r\n"
        for f, d, a, n in rows
    )
    return (
        V1_HEADER
        + "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><DTSERVER>20260301"
        f"<LANGUAGE>ENG<FI><ORG>{org}<FID>77</FI></SONRS></SIGNONMSGSRSV1><BANKMSGSRSV1><STMTTRNRS>"
        "<TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>USD<BANKACCTFROM>"
        "<BANKID>011000015<ACCTID>99887766<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>"
        f"<DTSTART>20260101<DTEND>20260301\r\n{txns}</BANKTRANLIST><LEDGERBAL><BALAMT>{balance}"
        "<DTASOF>20260301</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\r\n"
    ).encode("cp1252")


MARCH_APRIL = [
    ("F1", "20260305", "-4.50", "Coffee"),
    ("F2", "20260305", "-4.50", "Coffee"),  # a second coffee that day: real
    ("F3", "20260320", "2500.00", "Payroll"),
    ("F4", "20260410", "-80.00", "Groceries"),
]
APRIL_MAY = [
    ("F4", "20260410", "-80.00", "Groceries"),
    ("F5", "20260502", "-12.00", "Fee"),
]


async def post_import(platform: Platform, user: str, data: bytes, **params: str) -> httpx.Response:
    return await platform.http.post(
        f"/users/{user}/imports",
        content=data,
        params=params,
        headers={"Content-Type": "application/octet-stream"},
    )


async def imported(platform: Platform, user: str, data: bytes, **params: str) -> dict[str, Any]:
    r = await post_import(platform, user, data, **params)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()["import"]
    return body


async def transactions(platform: Platform, user: str) -> list[dict[str, Any]]:
    r = await platform.http.get(
        f"/users/{user}/transactions",
        params={"from_date": "2025-01-01", "to_date": "2027-12-31", "records_per_page": 1000},
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["transactions"]
    return items


async def test_an_ofx_file_becomes_a_managed_member_with_its_account_and_transactions(
    platform: Platform,
) -> None:
    user = await new_user(platform.http)
    body = await imported(platform, user, ofx_file(MARCH_APRIL), filename="march.ofx")
    assert body["format"] == "OFX" and body["guid"].startswith("IMP-")
    assert (
        body["transactions_added"],
        body["transactions_updated"],
        body["transactions_unchanged"],
    ) == (4, 0, 0)
    assert (body["from_date"], body["to_date"]) == ("2026-03-05", "2026-04-10")
    assert [(a["name"], a["type"], a["balance"], a["currency_code"]) for a in body["accounts"]] == [
        ("Checking ...7766", "CHECKING", 1000.0, "USD")
    ]
    member = (await platform.http.get(f"/users/{user}/members/{body['member_guid']}")).json()[
        "member"
    ]
    assert (member["name"], member["connection_status"], member["is_managed_by_user"]) == (
        "Fake CU",
        None,
        False,
    )
    listed = {t["id"]: t for t in await transactions(platform, user)}
    assert sorted(listed) == ["F1", "F2", "F3", "F4"]
    assert (listed["F3"]["amount"], listed["F3"]["type"], listed["F3"]["date"]) == (
        2500.0,
        "CREDIT",
        "2026-03-20",
    )
    assert (listed["F1"]["amount"], listed["F1"]["type"]) == (4.5, "DEBIT")
    # Never aggregated.
    r = await platform.http.post(f"/users/{user}/members/{body['member_guid']}/aggregate")
    assert r.status_code == 422 and "never aggregated" in r.text
    # Listed and read back.
    listing = (await platform.http.get(f"/users/{user}/imports")).json()["imports"]
    assert [i["guid"] for i in listing] == [body["guid"]]
    again = await platform.http.get(f"/users/{user}/imports/{body['guid']}")
    assert again.json()["import"]["transactions_added"] == 4


async def test_the_same_file_twice_and_overlapping_files_add_only_what_is_new(
    platform: Platform,
) -> None:
    user = await new_user(platform.http)
    first = await imported(platform, user, ofx_file(MARCH_APRIL))
    same = await imported(platform, user, ofx_file(MARCH_APRIL))
    assert same["member_guid"] == first["member_guid"]  # the same account: the same member
    assert (same["transactions_added"], same["transactions_unchanged"]) == (0, 4)
    later = await imported(platform, user, ofx_file(APRIL_MAY, balance="900.00"))
    assert (later["transactions_added"], later["transactions_unchanged"]) == (1, 1)
    assert later["accounts"][0]["balance"] == 900.0
    assert len(await transactions(platform, user)) == 5


async def test_changed_fitids_are_matched_by_date_amount_and_description(
    platform: Platform,
) -> None:
    user = await new_user(platform.http)
    await imported(platform, user, ofx_file(MARCH_APRIL))
    renamed = [(f"NEW-{f}", d, a, n) for f, d, a, n in MARCH_APRIL]
    body = await imported(platform, user, ofx_file(renamed))
    assert (body["transactions_added"], body["transactions_unchanged"]) == (0, 4)
    assert any("new bank ids" in w for w in body["warnings"])
    assert len(await transactions(platform, user)) == 4


async def test_a_transaction_the_bank_redated_outside_the_new_file_is_updated_not_added(
    platform: Platform,
) -> None:
    """An import reads the account's stored rows of the file's span only; a FITID
    stored at a date outside it (the bank moved the transaction) is still that one."""
    user = await new_user(platform.http)
    await imported(platform, user, ofx_file(MARCH_APRIL))
    may = [("F1", "20260503", "-4.50", "Coffee"), ("F6", "20260504", "-7.00", "Lunch")]
    body = await imported(platform, user, ofx_file(may))
    counts = ("transactions_added", "transactions_updated", "transactions_unchanged")
    assert tuple(body[c] for c in counts) == (1, 1, 0)
    listed = {t["id"]: t for t in await transactions(platform, user)}
    assert sorted(listed) == ["F1", "F2", "F3", "F4", "F6"]
    assert listed["F1"]["date"] == "2026-05-03"
    again = await imported(platform, user, ofx_file(may))
    assert tuple(again[c] for c in counts) == (0, 0, 2)


async def test_a_months_file_into_a_long_history_reads_that_month(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the import reads of the account: its rows of the file's span (and, when
    some rows are outside it, the file's new keys among them), not its whole history."""
    user = await new_user(platform.http)
    history = [
        (f"H{n}", f"2025{1 + n // 28:02d}{1 + n % 28:02d}", "-1.00", f"Old {n}") for n in range(280)
    ]
    await imported(platform, user, ofx_file(history))
    read: list[int] = []
    original = imports_service._plan

    def counted(
        b: Any, key: str, currency: Any, entries: Any, stored: list[Any], *rest: Any
    ) -> Any:
        read.append(len(stored))
        return original(b, key, currency, entries, stored, *rest)

    monkeypatch.setattr(imports_service, "_plan", counted)
    body = await imported(platform, user, ofx_file(MARCH_APRIL))
    assert body["transactions_added"] == 4 and read == [0]
    body = await imported(platform, user, ofx_file(history[28:56]))  # February 2025
    assert body["transactions_unchanged"] == 28 and read == [0, 28]
    assert len(await transactions(platform, user)) == 284


async def test_two_transactions_of_one_file_with_one_fitid_are_both_kept(
    platform: Platform,
) -> None:
    user = await new_user(platform.http)
    rows = [("SAME", "20260305", "-4.50", "Coffee"), ("SAME", "20260306", "-9.99", "Books")]
    body = await imported(platform, user, ofx_file(rows))
    assert body["transactions_added"] == 2
    assert any("repeat another's bank id" in w for w in body["warnings"])
    again = await imported(platform, user, ofx_file(rows))
    assert (again["transactions_added"], again["transactions_unchanged"]) == (0, 2)


async def test_an_import_into_a_named_member_and_a_multipart_upload(platform: Platform) -> None:
    user = await new_user(platform.http)
    made = await platform.http.post(
        f"/users/{user}/managed_members",
        json={"member": {"institution_code": "statement_file", "name": "My shoebox"}},
    )
    assert made.status_code == 202, made.text
    guid = made.json()["member"]["guid"]
    r = await platform.http.post(
        f"/users/{user}/imports",
        params={"member_guid": guid},
        files={"file": ("statement.qfx", ofx_file(MARCH_APRIL), "application/x-ofx")},
    )
    assert r.status_code == 201, r.text
    body = r.json()["import"]
    assert (body["member_guid"], body["filename"], body["transactions_added"]) == (
        guid,
        "statement.qfx",
        4,
    )


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"<html><body>Sign in</body></html>", "not a statement file"),
        (V1_HEADER.encode() + b"\r\n<OFX>\r\n</OFX>", "line 12: the <OFX> element is empty"),
        (
            (
                V1_HEADER + "<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>15500<SEVERITY>ERROR"
                "<MESSAGE>Invalid user ID or password</STATUS></SONRS></SIGNONMSGSRSV1></OFX>"
            ).encode(),
            "OFX status 15500: Invalid user ID or password",
        ),
        (
            (
                V1_HEADER + "<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>2000"
                "<SEVERITY>ERROR<MESSAGE>General error</STATUS></STMTTRNRS></BANKMSGSRSV1></OFX>"
            ).encode(),
            "OFX status 2000: General error",
        ),
        (b"", "empty"),
    ],
)
async def test_a_file_that_cannot_be_read_is_a_400_and_writes_nothing(
    platform: Platform, data: bytes, words: str
) -> None:
    user = await new_user(platform.http)
    r = await post_import(platform, user, data)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]["message"]
    members = (await platform.http.get(f"/users/{user}/members")).json()["members"]
    assert members == []


async def test_a_file_over_the_limit_is_a_413(platform: Platform) -> None:
    platform.rt.settings.import_max_bytes = 10_000
    user = await new_user(platform.http)
    r = await post_import(platform, user, b"x" * 10_001)
    assert r.status_code == 413, r.text


CSV = (
    "Kontonummer: DE44500105175407324931\n"
    "Buchungstag;Verwendungszweck;Betrag\n"
    "05.03.2026;Kaffee;-4,50\n"
    "05.03.2026;Kaffee;-4,50\n"
    '20.03.2026;Gehalt "März";2.500,00\n'
    "Summe;;2.491,00\n"
).encode("latin-1")
QIF = (
    b"!Type:Bank\nD31.03.2026\nT-12.50\nPBakery\n^\n"
    b"D01.04.2026\nT-52.50\nPSupermarket\nSGroceries\n$-40.00\nSHousehold\n$-12.50\n^\n"
)
CAMT = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-03-02T10:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id><Ccy>EUR</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">100.00</Amt>
<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-01</Dt></Dt></Bal>
<Ntry><Amt Ccy="EUR">25.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2026-02-27</Dt></BookgDt><AcctSvcrRef>REF-1</AcctSvcrRef>
<AddtlNtryInf>Train ticket</AddtlNtryInf></Ntry>
<Ntry><Amt Ccy="EUR">9.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>
<BookgDt><Dt>2026-03-01</Dt></BookgDt><AcctSvcrRef>REF-2</AcctSvcrRef>
<AddtlNtryInf>Lunch</AddtlNtryInf></Ntry>
</Stmt></BkToCstmrStmt></Document>
"""
MT940 = (
    ":20:STMT1\r\n:25:50010517/5407324931\r\n:28C:1/1\r\n:60F:C260227EUR100,00\r\n"
    ":61:2602280228D12,50NMSCNONREF//B1\r\n:86:005?00LASTSCHRIFT?20Strom Februar?32Stadtwerke\r\n"
    ":62F:C260228EUR87,50\r\n-\r\n"
).encode("latin-1")


@pytest.mark.parametrize(
    ("data", "fmt", "expected"),
    [
        (CSV, "CSV", [("CREDIT", 2500.0), ("DEBIT", 4.5), ("DEBIT", 4.5)]),
        (QIF, "QIF", [("DEBIT", 12.5), ("DEBIT", 52.5)]),
        (CAMT, "CAMT053", [("DEBIT", 9.0), ("DEBIT", 25.0)]),
        (MT940, "MT940", [("DEBIT", 12.5)]),
    ],
)
async def test_every_format_imports_once_and_again_adds_nothing(
    platform: Platform, data: bytes, fmt: str, expected: list[tuple[str, float]]
) -> None:
    user = await new_user(platform.http)
    body = await imported(platform, user, data)
    assert body["format"] == fmt
    assert body["transactions_added"] == len(expected)
    got = sorted((t["type"], t["amount"]) for t in await transactions(platform, user))
    assert got == sorted(expected)
    again = await imported(platform, user, data)
    assert (again["member_guid"], again["transactions_added"]) == (body["member_guid"], 0)
    assert again["transactions_unchanged"] == len(expected)


async def test_pending_camt_entries_are_pending_transactions(platform: Platform) -> None:
    user = await new_user(platform.http)
    await imported(platform, user, CAMT)
    status = {t["id"]: t["status"] for t in await transactions(platform, user)}
    assert status == {"REF-1": "POSTED", "REF-2": "PENDING"}


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (CSV.replace(b"-4,50\n", b"abc\n", 1), "line 3"),
        (QIF.replace(b"D31.03.2026", b"Dyesterday"), "line 2"),
        (CAMT.replace(b'<Amt Ccy="EUR">25.00</Amt>', b'<Amt Ccy="EUR">x</Amt>'), "line 7"),
        (MT940.replace(b"D12,50", b"DXX,50"), "line 5"),
    ],
)
async def test_a_bad_file_of_each_format_is_a_400_naming_the_line(
    platform: Platform, data: bytes, line: str
) -> None:
    user = await new_user(platform.http)
    r = await post_import(platform, user, data)
    assert r.status_code == 400, r.text
    assert line in r.json()["error"]["message"]


async def test_a_file_over_the_api_body_limit_but_under_the_import_limit_is_imported(
    tmp_path: Path,
) -> None:
    """Imports have their own limit, above the API's (1 MB) for JSON bodies."""
    settings = settings_for(tmp_path, max_body_bytes=2_000)
    settings.ensure_data_dir()
    platform, _ = await make_platform(settings)
    try:
        rows = [(f"B{i}", "20260305", "-1.00", f"Row {i}") for i in range(60)]
        data = ofx_file(rows)
        assert len(data) > 2_000
        user = await new_user(platform.http)
        assert (await post_import(platform, user, data)).status_code == 201
        r = await platform.http.post(f"/users/{user}/members", content=b"{" + b" " * 3_000 + b"}")
        assert r.status_code == 413  # the API's own limit still holds elsewhere
    finally:
        await platform.http.aclose()
        await platform.rt.db.dispose()
