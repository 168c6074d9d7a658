"""OFX leaf values as banks really write them: dates in every OFX form (and the
broken ones), amounts with commas or currency signs, text with HTML entities."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal, InvalidOperation

# Zone names real files put in brackets, for when the numeric offset is missing
# (`[-:EST]`) or absent (`[EST]`).
_ZONE_HOURS = {
    "GMT": 0.0,
    "UTC": 0.0,
    "Z": 0.0,
    "EST": -5.0,
    "EDT": -4.0,
    "CST": -6.0,
    "CDT": -5.0,
    "MST": -7.0,
    "MDT": -6.0,
    "PST": -8.0,
    "PDT": -7.0,
    "AKST": -9.0,
    "HST": -10.0,
}

# YYYYMMDD, then optional HHMM[SS], an optional fraction (`.123`, or `:014` as
# some servers write it), an optional bracketed zone, and stray trailing words.
_DATETIME = re.compile(
    r"\s*(\d{4})(\d{2})(\d{2})"
    r"(?:(\d{2})(\d{2})(\d{2})?)?"
    r"(?:[.:](\d{1,6}))?"
    r"\s*(?:\[\s*(?:([+-]?\d{1,2}(?:[.:]\d{1,2})?)|[+-])?\s*[:]?\s*([A-Za-z]*)\s*\])?"
    r"\s*([A-Za-z]*)\s*$"
)


class BadValue(ValueError):
    """A leaf value no reading can make sense of."""


_ZONES: dict[str, dt.timezone] = {}


def parse_datetime(text: str) -> dt.datetime:
    """An OFX date-time as an aware datetime. No zone means GMT, as the spec says."""
    # The common forms, `YYYYMMDD[HHMMSS][.XXX][[zone]]`, by slicing: a statement has
    # one date per transaction, and the regular expression costs several times more.
    n = len(text)
    if n >= 14 and text[:14].isdigit():
        rest = text[14:]
        if not rest or (rest[0] == "." and rest[1:4].isdigit()):
            tz = _ZONES.get(rest[4:] if rest else "")
            if tz is not None:
                try:
                    return dt.datetime(
                        int(text[:4]),
                        int(text[4:6]),
                        int(text[6:8]),
                        int(text[8:10]),
                        int(text[10:12]),
                        int(text[12:14]),
                        tzinfo=tz,
                    )
                except ValueError:
                    pass  # the full reading below says what is wrong
    m = _DATETIME.match(text)
    if m is None:
        raise BadValue(f"not an OFX date: {text!r}")
    year, month, day, hour, minute, second, fraction, offset, zone, trailing = m.groups()
    hours = _offset_hours(offset, zone or trailing)
    if hour and second and not trailing:
        # Remember this zone text for the fast path (``.XXX`` then the bracket, or nothing).
        bracket = text[text.find("[") :] if "[" in text else ""
        if (fraction is None or len(fraction) == 3) and len(_ZONES) < 64:
            _ZONES.setdefault(bracket, dt.timezone(dt.timedelta(hours=hours)))
    try:
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=dt.timezone(dt.timedelta(hours=hours)),
        )
    except ValueError as exc:
        raise BadValue(f"not an OFX date: {text!r} ({exc})") from None


def _offset_hours(offset: str | None, zone: str | None) -> float:
    if offset:
        sign = -1.0 if offset.startswith("-") else 1.0
        digits = offset.lstrip("+-").replace(":", ".")
        whole, _, part = digits.partition(".")
        minutes = int(part) if part else 0
        # `-5.30`-style offsets mean five and a half hours only when the part is 30/45.
        return sign * (int(whole) + minutes / 60.0)
    if zone:
        return _ZONE_HOURS.get(zone.upper(), 0.0)
    return 0.0


def parse_date(text: str) -> dt.date:
    """The calendar date an OFX date-time names, as the bank wrote it (no zone shift)."""
    text = text.strip()
    if len(text) >= 8 and text[:8].isdigit():
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError as exc:
            raise BadValue(f"not an OFX date: {text!r} ({exc})") from None
    raise BadValue(f"not an OFX date: {text!r}")


_AMOUNT_JUNK = re.compile(r"[\s$€£¥]|USD|EUR|GBP|CAD")


def parse_amount(text: str) -> Decimal:
    """An OFX amount: `-12.5`, `1,234.56`, `12,50` (comma decimals), `$5.00`,
    `(5.00)`, `+3.14159`. Precision is kept; rounding is the caller's choice."""
    try:
        value = Decimal(text)
        if value.is_finite():
            return value
    except InvalidOperation:
        pass
    cleaned = _AMOUNT_JUNK.sub("", text)
    negative = cleaned.startswith("(") and cleaned.endswith(")")
    if negative:
        cleaned = cleaned[1:-1]
    if "," in cleaned:
        if "." in cleaned and cleaned.rfind(".") > cleaned.rfind(","):
            cleaned = cleaned.replace(",", "")  # 1,234.56
        elif "." in cleaned:
            cleaned = cleaned.replace(".", "").replace(",", ".")  # 1.234,56
        elif cleaned.count(",") == 1:
            cleaned = cleaned.replace(",", ".")  # 12,50
        else:
            cleaned = cleaned.replace(",", "")  # 1,234,567
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise BadValue(f"not an amount: {text!r}") from None
    if not value.is_finite():
        raise BadValue(f"not an amount: {text!r}")
    return -value if negative else value


def unescape(text: str) -> str:
    """Decodes entities, including double-escaped ones (`&amp;amp;`) some servers send."""
    if "&" not in text:
        return text
    once = html.unescape(text)
    if "&" in once and once != text:
        return html.unescape(once)
    return once
