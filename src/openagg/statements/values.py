"""Values the text formats (CSV, QIF, MT940) share: decoding bytes of unknown
encoding, money as banks write it, and two-digit years."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from openagg.ofx.values import BadValue

__all__ = [
    "BadValue",
    "decode_text",
    "full_year",
    "guess_decimal_separator",
    "join_text",
    "parse_money",
]


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """Bytes as text: the given encoding, else a BOM, else UTF-16 told by its NUL
    bytes, else UTF-8, else Windows-1252 (Latin-1 for the five bytes it lacks).
    NULs left over (NUL-padded exports) are dropped."""
    if encoding:
        try:
            text = data.decode(encoding)
        except LookupError:
            raise BadValue(f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            raise BadValue(
                f"the file is not {encoding}: {exc.reason} at byte {exc.start}"
            ) from None
    else:
        text = _decode_guess(data)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\x00", "") if "\x00" in text else text


def _decode_guess(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    head = data[:4096]
    if len(head) >= 4 and head.count(0) * 3 > len(head):
        # ASCII text in UTF-16 has a NUL in every other byte: which half says LE or BE.
        odd_nuls = head[1::2].count(0)
        even_nuls = head[0::2].count(0)
        if odd_nuls > 2 * even_nuls:
            return data.decode("utf-16-le", errors="replace")
        if even_nuls > 2 * odd_nuls:
            return data.decode("utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# Money: a sign before or after (or `CR`/`DR`), parentheses, a currency symbol or
# code either side, digits with `.` `,` `'` or spaces as separators.
_MONEY = re.compile(
    r"\s*([-+\u2212])?\s*(\()?\s*([-+\u2212])?\s*"
    r"(?:[A-Z]{3}|[$€£¥₹₩₽¢]|R\$|kr|Fr\.)?\s*([-+\u2212])?\s*"
    r"(\d[\d.,'\u2019 \u00a0\u202f]*|[.,]\d+)"
    r"\s*(?:[A-Z]{3}|[$€£¥₹₩₽]|kr)?\s*(\))?\s*([-+\u2212]|CR|DR|Cr|Dr|cr|dr)?\s*"
)
_PLAIN_DOT = re.compile(r"-?\d+(?:\.\d+)?")
_PLAIN_COMMA = re.compile(r"-?\d+(?:,\d+)?")


def parse_money(text: str, decimal: str | None = None) -> Decimal:
    """An amount as a bank writes it: `-1,234.56`, `1.234,56`, `(5.00)`, `12.50-`,
    `€ 3,20`, `12.00 DR`. ``decimal`` is the file's decimal separator when known;
    without it a lone separator followed by three digits is taken for thousands."""
    if decimal != "," and _PLAIN_DOT.fullmatch(text):
        return Decimal(text)
    if decimal == "," and _PLAIN_COMMA.fullmatch(text):
        return Decimal(text.replace(",", "."))
    m = _MONEY.fullmatch(text)
    if m is None:
        raise BadValue(f"not an amount: {text!r}")
    sign1, opened, sign2, sign3, digits, closed, trailing = m.groups()
    if bool(opened) != bool(closed):
        raise BadValue(f"not an amount: {text!r}")
    digits = re.sub(r"['\u2019 \u00a0\u202f]", "", digits)
    sep = decimal or _decimal_of(digits)
    other = "," if sep == "." else "."
    digits = digits.replace(other, "")
    if digits.count(sep) > 1:
        raise BadValue(f"not an amount: {text!r}")
    try:
        value = Decimal(digits.replace(sep, "."))
    except InvalidOperation:
        raise BadValue(f"not an amount: {text!r}") from None
    signs = [s for s in (sign1, sign2, sign3, trailing) if s]
    negative = bool(opened) != any(s in ("-", "\u2212") or s.upper() == "DR" for s in signs)
    return -value if negative else value


def _decimal_of(digits: str) -> str:
    last_dot, last_comma = digits.rfind("."), digits.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        return "." if last_dot > last_comma else ","
    sep = "." if last_dot >= 0 else ","
    if digits.count(sep) > 1 or len(digits) - digits.rfind(sep) - 1 == 3:
        return "," if sep == "." else "."  # `1,234` or `1.234.567`: thousands
    return sep


def guess_decimal_separator(samples: Iterable[str]) -> str | None:
    """`.` or `,` by what a file's amounts show, or None when they show neither
    (whole numbers only). Two separators, or one followed by one or two digits, is
    proof; a lone one followed by three digits only a hint that it groups thousands."""
    votes = {".": 0, ",": 0}
    hints = {".": 0, ",": 0}
    for text in samples:
        dot, comma = text.rfind("."), text.rfind(",")
        if dot >= 0 and comma >= 0:
            votes["." if dot > comma else ","] += 1
        elif dot >= 0 or comma >= 0:
            sep = "." if dot >= 0 else ","
            pos = max(dot, comma)
            tail = len(text) - pos - 1 - len(text[pos + 1 :].lstrip("0123456789"))
            if text.count(sep) > 1 or tail == 3:
                hints["," if sep == "." else "."] += 1
            elif tail in (1, 2) or tail > 3:
                votes[sep] += 1
    if votes["."] != votes[","]:
        return "." if votes["."] > votes[","] else ","
    if hints["."] != hints[","]:
        return "." if hints["."] > hints[","] else ","
    return None


def full_year(year: int) -> int:
    """A two-digit year as a four-digit one: up to ten years ahead of today is this
    century, the rest the last one (`99` is 1999, `26` is 2026)."""
    if year >= 100:
        return year
    pivot = (dt.date.today().year + 10) % 100
    return 2000 + year if year <= pivot else 1900 + year


def join_text(parts: Iterable[str | None], sep: str = " ") -> str:
    """Non-empty parts joined, runs of whitespace (newlines too) made one space."""
    return sep.join(" ".join(p.split()) for p in parts if p and p.strip())
