"""One entry point for every format: detect it (unless told), then read it."""

from __future__ import annotations

from openagg.statements.camt053 import read_camt053
from openagg.statements.csv_reader import CsvOptions, read_csv
from openagg.statements.detect import detect_format
from openagg.statements.model import StatementFile, UnreadableFile
from openagg.statements.mt940 import read_mt940
from openagg.statements.ofx_file import read_ofx
from openagg.statements.qif import read_qif

FORMATS = ("OFX", "QIF", "CSV", "CAMT053", "MT940")


def read_statement(
    data: bytes,
    *,
    format: str | None = None,
    filename: str | None = None,
    csv: CsvOptions | None = None,
) -> StatementFile:
    """The file's accounts, entries and holdings. Raises `UnreadableFile`, naming the
    line where it can, for a file that cannot be read or holds no statement."""
    if not data.strip():
        raise UnreadableFile("the file is empty")
    kind = (format or detect_format(data, filename)).upper()
    if kind == "QFX":
        kind = "OFX"
    if kind not in FORMATS:
        raise UnreadableFile(f"format {format!r} is not one of {', '.join(FORMATS)}")
    if kind == "OFX":
        return read_ofx(data)
    if kind == "QIF":
        return read_qif(data)
    if kind == "CSV":
        return read_csv(data, csv)
    if kind == "CAMT053":
        return read_camt053(data)
    return read_mt940(data)
