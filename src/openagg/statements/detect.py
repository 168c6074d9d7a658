"""Which statement format a file is, from its content first and its name second."""

from __future__ import annotations

import re

from openagg.statements.model import UnreadableFile
from openagg.statements.values import decode_text

FORMATS = ("OFX", "QIF", "CSV", "CAMT053", "MT940")
_EXTENSIONS = {
    "ofx": "OFX",
    "qfx": "OFX",
    "qif": "QIF",
    "csv": "CSV",
    "tsv": "CSV",
    "xml": "CAMT053",
    "camt": "CAMT053",
    "sta": "MT940",
    "mt940": "MT940",
    "940": "MT940",
}
_QIF = re.compile(r"^\s*!(?:type:|account\s*$|option:|clear:)", re.I | re.M)
_MT940_20 = re.compile(r"^(?:\{[^\n]*\{4:\s*)?:20:", re.M)
_MT940_BODY = re.compile(r"^:(?:25|60[FM]|61):", re.M)
_CAMT = re.compile(r"BkToCstmr(?:Stmt|AcctRpt|DbtCdtNtfctn)|camt\.05[234]\.")


def detect_format(data: bytes, filename: str | None = None) -> str:
    """`OFX`, `QIF`, `CSV`, `CAMT053` or `MT940`; UnreadableFile for anything else."""
    head = data[:16384]
    if not head.strip(b" \t\r\n\x00"):
        raise _not_a_statement("the file is empty")
    binary = _binary_kind(head)
    if binary:
        raise _not_a_statement(binary)
    text = decode_text(head)
    if re.search(r"OFXHEADER|<OFX[\s>]", text, re.I):
        return "OFX"
    if _CAMT.search(text):
        return "CAMT053"
    if _QIF.search(text):
        return "QIF"
    if _MT940_20.search(text) and _MT940_BODY.search(text):
        return "MT940"
    stripped = text.lstrip()
    if stripped[:200].lower().startswith(("<!doctype html", "<html")) or "<body" in text[:2000]:
        raise _not_a_statement("an HTML page (a bank's web page, not a download)")
    by_name = _EXTENSIONS.get((filename or "").rpartition(".")[2].lower()) if filename else None
    if stripped.startswith("<"):
        root = re.search(r"<([A-Za-z_][\w.:-]*)[\s>/]", re.sub(r"<[?!][^>]*>", "", stripped))
        if by_name in ("OFX", "CAMT053"):
            return by_name
        named = f"<{root[1]}>" if root else "unknown"
        raise _not_a_statement(f"an XML document ({named}) that is no camt.053 statement")
    if by_name:
        return by_name
    if _looks_tabular(text):
        return "CSV"
    raise _not_a_statement("text with no statement layout (no columns, tags or `!Type:` lines)")


def _not_a_statement(what: str) -> UnreadableFile:
    return UnreadableFile(f"this is not a statement file we can read: {what}")


def _binary_kind(head: bytes) -> str | None:
    if head.startswith(b"%PDF"):
        return "a PDF document (download the statement as CSV, OFX, QIF, CAMT.053 or MT940)"
    if head.startswith(b"PK\x03\x04"):
        if b"xl/" in head or b"[Content_Types].xml" in head:
            return "a spreadsheet (xlsx): save it as CSV first"
        return "a zip archive"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an Excel 97-2003 spreadsheet (xls): save it as CSV first"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        return "an image"
    if head.startswith((b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")):
        return "a compressed archive"
    text = decode_text(head)
    controls = sum(1 for c in text[:4096] if c < " " and c not in "\t\r\n\f")
    return "binary data" if controls * 20 > len(text[:4096]) else None


def _looks_tabular(text: str) -> bool:
    """At least two lines splitting into the same number (>1) of fields by one delimiter."""
    lines = [line for line in text.splitlines()[:30] if line.strip()]
    for delimiter in (";", ",", "\t", "|"):
        counts = [line.count(delimiter) for line in lines]
        if max(counts, default=0) > 0:
            common = max(set(counts), key=counts.count)
            if common > 0 and counts.count(common) >= 2:
                return True
    return False
