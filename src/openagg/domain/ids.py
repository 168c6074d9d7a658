"""MX-style identifiers (``USR-…``, ``MBR-…``) and secrets."""

from __future__ import annotations

import secrets
import uuid


def new_guid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def stable_guid(prefix: str, *parts: str) -> str:
    """A guid that is the same every time for the same parts (sandbox data, reruns)."""
    return f"{prefix}-{uuid.uuid5(uuid.NAMESPACE_URL, '/'.join(parts))}"


def new_api_key() -> str:
    return secrets.token_hex(32)
