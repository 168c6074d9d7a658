"""Scalars in MX's wire form, shared by every serializer.

* timestamps: ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); dates: ``YYYY-MM-DD``;
* money: the models keep integer cents; the wire gets ``cents / 100`` as a float
  (true division of ints is correctly rounded, so 1234567 -> 12345.67 exactly as
  JSON prints it);
* the ``to_*`` coercions never raise on odd values in free-form JSON columns
  (``Account.details``, ``Institution.profile``...): a value that cannot be coerced
  to the declared type becomes ``None`` (sent as ``null``) rather than failing a
  whole list.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

_UTC = dt.UTC


def iso(ts: dt.datetime | None) -> str | None:
    """``2024-12-20T18:52:36Z``. A naive datetime is taken to be UTC already."""
    if ts is None:
        return None
    tz = ts.tzinfo
    if tz is not None and tz is not _UTC:
        ts = ts.astimezone(_UTC)
    # %-formatting is about twice as fast as isoformat() on an aware datetime
    # (which calls utcoffset()) and three times faster than strftime.
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031
        ts.year,
        ts.month,
        ts.day,
        ts.hour,
        ts.minute,
        ts.second,
    )


def iso_date(d: dt.date | dt.datetime | None) -> str | None:
    """``2024-12-20``. A datetime is first converted to UTC."""
    if d is None:
        return None
    if isinstance(d, dt.datetime):
        if d.tzinfo is not None and d.tzinfo is not _UTC:
            d = d.astimezone(_UTC)
        d = d.date()
    return d.isoformat()


def money(cents: int | None) -> float | None:
    return None if cents is None else cents / 100


def to_str(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dt.datetime):
        return iso(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def to_float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def to_int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    f = to_float(v)
    if f is None or not f.is_integer():
        return None
    return int(f)


def to_bool(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        return None
    if isinstance(v, int | float):
        return bool(v)
    return None
