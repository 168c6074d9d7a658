"""OFX leaf values as banks really write them: dates in every OFX form (and the
broken ones), amounts with commas or currency signs, text with HTML entities."""

from __future__ import annotations

import datetime as dt
import functools
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


# Zone texts (`[-5:EST]`, or "" for none) seen before, as ISO 8601 offsets (`-05:00`).
_ISO_OFFSETS: dict[str, str] = {}
_from_iso = dt.datetime.fromisoformat


def _iso_offset(hours: float) -> str:
    seconds = round(hours * 3600)
    sign = "-" if seconds < 0 else "+"
    minutes, seconds = divmod(abs(seconds), 60)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}" + (f":{seconds:02d}" if seconds else "")


def parse_datetime(text: str) -> dt.datetime:
    """An OFX date-time as an aware datetime. No zone means GMT, as the spec says."""
    # The common forms, `YYYYMMDDHHMMSS[.XXX][[zone]]` with a zone seen before, by
    # slicing: a statement has a date or two per transaction, and the regular
    # expression costs several times more.
    n = len(text)
    if n >= 14 and text[:14].isdigit():
        rest = text[14:]
        if rest[:1] == "." and rest[1:4].isdigit():
            rest = rest[4:]
        offset = _ISO_OFFSETS.get(rest)
        if offset is not None and text[8:10] < "24":  # (later Pythons read 24:00)
            try:  # the same datetime as from the numbers, in half the time
                return _from_iso(f"{text[:8]}T{text[8:14]}{offset}")
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
        if (fraction is None or len(fraction) == 3) and len(_ISO_OFFSETS) < 64:
            _ISO_OFFSETS.setdefault(bracket, _iso_offset(hours))
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


def iso_offset(zone: str) -> str | None:
    """The ISO 8601 offset (`-05:00`) of an OFX date's bracketed zone (`[-5:EST]`; ""
    for none, which is GMT), as `parse_datetime` reads it; None if it cannot."""
    offset = _ISO_OFFSETS.get(zone)
    if offset is None:
        m = _DATETIME.match("20000101000000" + zone)
        if m is None or m.group(10):
            return None
        offset = _iso_offset(_offset_hours(m.group(8), m.group(9)))
        if len(_ISO_OFFSETS) < 64:
            _ISO_OFFSETS[zone] = offset
    return offset


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
    return _decoded(text)


# A statement names the same payees again and again (`AT&amp;T`): a cache hit costs a
# tenth of html.unescape.
@functools.lru_cache(maxsize=4096)
def _decoded(text: str) -> str:
    once = html.unescape(text)
    if "&" in once and once != text:
        return html.unescape(once)
    return once
