"""InstitutionResponse and CredentialResponse."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from openagg.db.models import Institution
from openagg.wire.scalars import to_bool, to_int, to_str

_INSTITUTION_STR: Final = (
    "forgot_password_url",
    "forgot_username_url",
    "instructional_text",
    "medium_logo_url",
    "small_logo_url",
    "trouble_signing_in_url",
    "url",
)
_INSTITUTION_BOOL: Final = (
    "supports_account_identification",
    "supports_account_statement",
    "supports_account_verification",
    "supports_oauth",
    "supports_tax_document",
    "supports_transaction_history",
)


_LOGOS: Final = ("medium_logo_url", "small_logo_url")


def institution(i: Institution, base_url: str = "") -> dict[str, Any]:
    """InstitutionResponse (v20111101 has no ``guid`` here; do not add one).

    A logo stored as a path (``/assets/...``, the sandbox's own files) is served by this
    platform: ``base_url`` makes it the absolute URL MX's apps expect."""
    p: Mapping[str, Any] = i.profile or {}
    out: dict[str, Any] = {"code": i.code, "name": i.name}
    for k in _INSTITUTION_STR:
        out[k] = to_str(p.get(k))
    for k in _LOGOS:
        if out[k] is not None and out[k].startswith("/") and not out[k].startswith("//"):
            out[k] = base_url + out[k]
    steps = p.get("instructional_text_steps")
    out["instructional_text_steps"] = (
        [s for s in (to_str(x) for x in steps) if s is not None]
        if isinstance(steps, list | tuple)
        else None
    )
    out["is_disabled_by_client"] = False
    # Declared non-nullable.
    out["iso_country_code"] = to_str(p.get("iso_country_code")) or "US"
    for k in _INSTITUTION_BOOL:
        out[k] = bool(to_bool(p.get(k)))
    return out


def credential(c: Mapping[str, Any]) -> dict[str, Any]:
    """CredentialResponse, from a stored credential definition."""
    return {
        "display_order": to_int(c.get("display_order")),
        "field_name": to_str(c.get("field_name")),
        "field_type": to_str(c.get("field_type")),
        "guid": to_str(c.get("guid")),
        "label": to_str(c.get("label")),
        "type": to_str(c.get("type")),
    }
