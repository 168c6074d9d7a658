"""MX-style identifiers (``USR-…``, ``MBR-…``) and secrets."""

from __future__ import annotations

import os
import secrets
import time
import uuid


def new_guid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def stable_guid(prefix: str, *parts: str) -> str:
    """A guid that is the same every time for the same parts (sandbox data, reruns)."""
    return f"{prefix}-{uuid.uuid5(uuid.NAMESPACE_URL, '/'.join(parts))}"


def _guid_text(prefix: str, value: int) -> str:
    h = f"{value:032x}"
    return f"{prefix}-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _uuid7(millis: int, rand: bytes) -> int:
    value = millis << 80 | int.from_bytes(rand)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    return value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant


def time_ordered_guid(prefix: str) -> str:
    """A guid whose uuid is time-ordered (UUIDv7 layout: 48-bit milliseconds, then 74
    random bits). New rows land at the right edge of the guid's unique index instead
    of at random pages, which keeps inserts into a big table cheap."""
    return _guid_text(prefix, _uuid7(time.time_ns() // 1_000_000, os.urandom(10)))


# The RFC 4122 variant nibble (10xx) for a random hex digit.
_VARIANT = {f"{n:x}": f"{8 | n & 3:x}" for n in range(16)}


def time_ordered_guids(prefix: str, count: int) -> list[str]:
    """``count`` guids like ``time_ordered_guid``'s, at once: one clock read, one
    random read, and the text cut from them."""
    if not count:
        return []
    millis = f"{time.time_ns() // 1_000_000:012x}"
    head = f"{prefix}-{millis[:8]}-{millis[8:]}-7"
    rand = os.urandom(10 * count).hex()  # 20 hex digits each; 74 bits are used
    return [
        f"{head}{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:19]}"
        for r in (rand[i : i + 20] for i in range(0, 20 * count, 20))
    ]


def new_api_key() -> str:
    return secrets.token_hex(32)
