"""The codec's C hot path against its pure-Python reference, on statements made of
random transactions: the same runs found, the same texts captured, the same
transactions and warnings read."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openagg import ofx
from openagg.ofx import accel, reader
from tests.support import skip_or_fail

HEADER = "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nCHARSET:1252\n\n"
TEXT = (
    HEADER + "<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>USD<BANKACCTFROM><ACCTID>1"
    "</BANKACCTFROM><BANKTRANLIST><STMTTRN><TRNTYPE>POS<DTPOSTED>20261105120000"
    "<TRNAMT>-1.25<FITID>F1<NAME>Shop</STMTTRN></BANKTRANLIST></STMTRS></STMTTRNRS>"
    "</BANKMSGSRSV1></OFX>"
)


@pytest.fixture(autouse=True)
def native() -> None:
    if accel.native is None:
        skip_or_fail("the codec's C hot path was not built (pip found no C compiler)")


def test_the_c_path_knows_the_fields_the_expression_reads() -> None:
    assert accel.native is not None
    assert accel.native.FIELDS == reader._FIELDS


# What a leaf may hold: mostly what banks write, at times what breaks the fast path.
def _leaf(usual: list[str], odd: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(usual), st.sampled_from(usual), st.sampled_from(odd))


_TEXTS = _leaf(
    ["Shop", "Shop \r\n", "A &amp; B", "Café"],
    [
        *("", " ", " x ", "&amp;amp;", "x\xa0", "12", " 0042 ", "\x85y\x1c"),
        *("McDonald\u2019s", "\u3000x\u2028", "\U0001f600", "\u20ac5"),  # beyond Latin-1
    ],
)
_FIELD_VALUES = {
    "TRNTYPE": _leaf(
        ["POS", "DEBIT\r\n", "credit"],
        ["", " ", "A&amp;B", "ß", "ÿ", "\u2028POS", "\u20ac", "\u2122"],
    ),
    "DTPOSTED": _leaf(
        ["20261105120000[-5:EST]", "20261105120000.123[-5:EST]\n", "20261105093000"],
        [
            " 20261105120000[0:GMT] \n",
            "20261105120000[+99:XX]",
            "20261131120000[-5:EST]",
            "20261105240000",
            "20261105126000",
            "20261105",
            "20261105120000.12",
            "20261105120000.1234",
            "20261105120000[-5 EST]",
            "20261105120000[-5:EST",
            "2026-11-05",
            "",
            "  ",
            "20261105120000[-3.30:NST]",
            "20261105120000[-5:EST]&amp;",
            "\t20261105120000[]",
            "00001105120000",
            "\u300020261105120000[-5:EST]",
            "\x1c20261105120000",
            "20261105120000[-5:\u20ac]",
            "20261105120000\u2003",
        ],
    ),
    "TRNAMT": _leaf(
        ["-12.50", "3.00\r\n", "-0.01"],
        [
            "",
            " 3 ",
            "1,234.56",
            "12.5.5",
            "1_000",
            "NaN",
            "$5",
            "-0",
            "7&#46;5",
            "  \n",
            "1e3",
            "1A",
        ],
    ),
    "SIC": _leaf(["5411"], [" 12 ", "x1", "", "\xb2", "007"]),
    "FITID": _leaf(["F1", "F2", "F3\n"], ["", " ", "a&amp;b", " F4 "]),
}
_FIELD_VALUES["DTUSER"] = _FIELD_VALUES["DTPOSTED"]
_CORE = {"TRNTYPE", "DTPOSTED", "TRNAMT", "FITID", "NAME"}


@st.composite
def _transaction(draw: st.DrawFn) -> str:
    closed = draw(st.booleans())
    parts = ["<STMTTRN>", draw(st.sampled_from(["", "\n", " \r\n"]))]
    for tag, _ in reader._FIELDS:
        if draw(st.integers(0, 9)) >= (9 if tag in _CORE else 3):
            continue
        parts.append(f"<{tag}>{draw(_FIELD_VALUES.get(tag, _TEXTS))}")
        if closed:
            parts.append(f"</{tag}>" + draw(st.sampled_from(["", "\n", "\x1f"])))
    if draw(st.integers(0, 9)) == 0:
        parts.append(draw(st.sampled_from(["<PAYEE><NAME>P</PAYEE>", "<FOO>1", "<name>x"])))
    parts.append("</STMTTRN>" + draw(st.sampled_from(["", "\n", "  "])))
    return "".join(parts)


@st.composite
def _statement(draw: st.DrawFn) -> str:
    body = []
    for t in draw(st.lists(_transaction(), max_size=12)):
        body.append(t)
        if draw(st.integers(0, 9)) == 0:
            body.append(draw(st.sampled_from(["<STMTTRN>", "<!-- x -->", " junk ", "</STMTTRN>"])))
    if draw(st.integers(0, 4)) == 0:  # a text of two or four bytes a character
        body.append(draw(st.sampled_from(["€", "\U0001f600"])))
    return (
        HEADER + "<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STMTRS><CURDEF>USD"
        "<BANKACCTFROM><ACCTID>1</BANKACCTFROM><BANKTRANLIST>"
        + "".join(body)
        + "</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>"
    )


def _captures(text: str, spans: bytes, count: int) -> list[tuple[str, ...]]:
    """The C path's spans as the expression's captures (without its lookahead)."""
    width = accel.native.SPANS_PER_ROW  # type: ignore[union-attr]
    flat = struct.unpack(f"{2 * width * count}i", spans)
    return [
        tuple(text[flat[2 * k] : flat[2 * k + 1]] for k in range(row * width, (row + 1) * width))
        for row in range(count)
    ]


def _read(text: str, monkeypatch: pytest.MonkeyPatch, native: bool) -> ofx.Document:
    with monkeypatch.context() as m:
        if not native:
            m.setattr(accel, "native", None)
        return ofx.parse(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_statement())
def test_the_c_path_reads_what_the_pure_python_path_reads(text: str) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        start = text.index("<OFX>")
        assert accel.native is not None
        found = accel.native.find_runs(text, start)
        monkeypatch.setattr(accel, "native", None)
        expected = reader._transaction_runs(text, start)
        monkeypatch.undo()
        assert found is not None
        assert [(p, q, count, tags) for p, q, _, count, tags in found] == [
            (p, q, count, tags) for p, q, _, count, tags in expected
        ]
        for (_, _, spans, count, _), (_, _, rows, _, _) in zip(found, expected, strict=True):
            assert _captures(text, spans, count) == [row[:-1] for row in rows]
        c_doc = _read(text, monkeypatch, native=True)
        py_doc = _read(text, monkeypatch, native=False)
    # repr, not ==: a datetime's zone and a Decimal's digits count too.
    assert repr(c_doc.statements) == repr(py_doc.statements)
    assert c_doc.warnings == py_doc.warnings


def test_texts_beyond_latin_1_take_the_c_path_and_read_the_same() -> None:
    """Such a text is scanned through a one-byte shadow, where "€" and "™" are both
    "?": what the C path remembers by a leaf's text (TRNTYPE, zones) tells them apart."""
    body = "".join(
        f"<STMTTRN><TRNTYPE>{kind}<DTPOSTED>20261105120000[-5:EST]<TRNAMT>-1"
        f"<FITID>F{i}<NAME>McDonald\u2019s \U0001f600</STMTTRN>"
        for i, kind in enumerate(["\u20ac", "\u2122", "POS", "\u20ac"])
    )
    text = (
        HEADER + "<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>USD<BANKACCTFROM><ACCTID>1"
        f"</BANKACCTFROM><BANKTRANLIST>{body}</BANKTRANLIST></STMTRS></STMTTRNRS>"
        "</BANKMSGSRSV1></OFX>"
    )
    assert accel.native is not None
    assert accel.native.find_runs(text, 0)
    with pytest.MonkeyPatch.context() as monkeypatch:
        c_doc = _read(text, monkeypatch, native=True)
        py_doc = _read(text, monkeypatch, native=False)
    [statement] = c_doc.statements
    assert [t.type for t in statement.transactions] == ["\u20ac", "\u2122", "POS", "\u20ac"]
    assert statement.transactions[0].name == "McDonald\u2019s \U0001f600"
    assert repr(c_doc.statements) == repr(py_doc.statements)


@pytest.mark.parametrize("closed", [False, True], ids=["v1 leaves", "v2 leaves"])
def test_a_statement_cut_at_every_character_reads_the_same_on_both_paths(closed: bool) -> None:
    """Every way a scan can meet the text's end: inside a tag, a date, a zone, a closer."""
    leaves = [
        ("TRNTYPE", "POS"),
        ("DTPOSTED", "20261105120000.123[-5:EST]"),
        ("DTUSER", "20261104"),
        ("TRNAMT", "-1.25"),
        ("FITID", "F1"),
        ("SIC", "5411"),
        ("NAME", "A &amp; B\u2019s"),
        ("MEMO", "m"),
    ]
    one = "".join(f"<{t}>{v}</{t}>\n" if closed else f"<{t}>{v}\n" for t, v in leaves)
    text = (
        HEADER + "<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>USD<BANKACCTFROM><ACCTID>1"
        "</BANKACCTFROM><BANKTRANLIST>"
        + f"<STMTTRN>\n{one}</STMTTRN>\n" * 2
        + "</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>"
    )
    start = text.index("<STMTTRN>")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for end in range(start, len(text) + 1):
            cut = text[:end]
            c_doc = _read(cut, monkeypatch, native=True)
            py_doc = _read(cut, monkeypatch, native=False)
            assert repr(c_doc.statements) == repr(py_doc.statements), end
            assert c_doc.warnings == py_doc.warnings, end
    assert len(c_doc.statements[0].transactions) == 2


def test_without_the_c_part_the_codec_imports_and_reads_in_pure_python() -> None:
    """What an install without a C compiler runs: the import of `_speedups` fails, and
    `accel` says so rather than failing with it."""
    script = (
        "import sys; sys.modules['openagg.ofx._speedups'] = None\n"  # its import fails
        "from openagg.ofx import accel, parse\n"
        "assert accel.native is None\n"
        f"doc = parse({TEXT!r})\n"
        "print(len(doc.statements[0].transactions))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def test_spans_that_do_not_fit_the_text_are_refused() -> None:
    assert accel.native is not None
    text = "<STMTTRN><DTPOSTED>20261105<TRNAMT>1<FITID>A</STMTTRN>"
    [(_, _, spans, count, _)] = accel.native.find_runs(text, 0)
    with pytest.raises(ValueError, match="outside the text"):
        accel.native.read_run(text[:10], spans, count, lambda z: None, lambda t: None)
    with pytest.raises(ValueError, match="did not make"):
        accel.native.read_run(text, spans[:-4], count, lambda z: None, lambda t: None)
    day = struct.unpack_from("2i", spans, 8)  # DTPOSTED's day, 8 long
    broken = bytearray(spans)
    struct.pack_into("2i", broken, 8, day[0], day[0] + 2)  # 2 long: would read past it
    with pytest.raises(ValueError, match="shape"):
        accel.native.read_run(text, bytes(broken), count, lambda z: None, lambda t: None)
