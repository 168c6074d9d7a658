"""MemberResponse, MemberStatusResponse and the challenges (MFA) they carry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from openagg.db.models import Institution, Member, User
from openagg.domain.statuses import MESSAGES, NEEDS_NEW_CREDENTIALS, Status
from openagg.wire.scalars import iso, to_str

# ------------------------------------------------------------------------ challenges


def _options(raw: Any, *, with_image: bool) -> list[dict[str, Any]]:
    if not isinstance(raw, list | tuple):
        return []
    out: list[dict[str, Any]] = []
    for o in raw:
        if not isinstance(o, Mapping):
            continue
        item = {
            "guid": to_str(o.get("guid")),
            "label": to_str(o.get("label")),
            "value": to_str(o.get("value")),
        }
        if with_image:
            item["data_uri"] = to_str(o.get("data_uri"))
        out.append(item)
    return out


def challenge(c: Mapping[str, Any]) -> dict[str, Any]:
    """ChallengeResponse. OPTIONS fill ``options`` (OptionResponse), IMAGE_OPTIONS fill
    ``image_options`` (ImageOptionResponse); the other array is sent empty."""
    ctype = to_str(c.get("type"))
    raw = c.get("options")
    return {
        "field_name": to_str(c.get("field_name")),
        "guid": to_str(c.get("guid")),
        "image_data": to_str(c.get("image_data")),
        "image_options": _options(raw, with_image=True) if ctype == "IMAGE_OPTIONS" else [],
        "label": to_str(c.get("label")),
        "options": _options(raw, with_image=False) if ctype == "OPTIONS" else [],
        "type": ctype,
    }


# --------------------------------------------------------------------------- members

STATUS_MESSAGES: Final[dict[str, str]] = {s.value: msg for s, msg in MESSAGES.items()}
_NEEDS_CREDENTIALS: Final = frozenset(s.value for s in NEEDS_NEW_CREDENTIALS)
_CHALLENGED: Final = Status.CHALLENGED.value
_USE_CASES: Final = frozenset({"MONEY_MOVEMENT", "PFM"})


def status_str(m: Member) -> str | None:
    cs = m.connection_status
    if cs is None:
        return None
    return cs.value if isinstance(cs, Status) else str(cs)


def status_message(m: Member, status: str | None) -> str | None:
    """The institution's own words while the member has the status they were about,
    else MX's text for the status."""
    if status is None:
        return None
    if m.status_message and m.status_message_for == status:
        return m.status_message
    return STATUS_MESSAGES.get(status)


def member(
    m: Member,
    *,
    user: User,
    institution: Institution,
    is_being_aggregated: bool,
    background_disabled: bool,
) -> dict[str, Any]:
    """MemberResponse.

    ``most_recent_job_*`` are always null: the spec types two of them as boolean and
    the SDK enforces that (reference 3.1). ``oauth_window_uri`` is left null; the
    caller sets it when it issues one.
    """
    status = status_str(m)
    use_cases = m.use_cases
    return {
        "aggregated_at": iso(m.aggregated_at),
        "background_aggregation_is_disabled": bool(background_disabled),
        "connection_status": status,
        "connection_status_message": status_message(m, status),
        "guid": m.guid,
        "id": m.external_id,
        "institution_code": institution.code,
        "institution_guid": institution.guid,
        "is_being_aggregated": bool(is_being_aggregated),
        "is_managed_by_user": False,
        "is_manual": False,
        "is_oauth": bool(m.is_oauth),
        "metadata": m.metadata_,
        "most_recent_job_detail_code": None,
        "most_recent_job_detail_text": None,
        "most_recent_job_guid": None,
        "name": m.name or institution.name,
        "needs_updated_credentials": status in _NEEDS_CREDENTIALS,
        "oauth_window_uri": None,
        "successfully_aggregated_at": iso(m.successfully_aggregated_at),
        # The SDK validates the enum: drop anything else rather than break the client.
        "use_cases": None if use_cases is None else [x for x in use_cases if x in _USE_CASES],
        "user_guid": user.guid,
        "user_id": user.external_id,
    }


def member_status(m: Member, *, is_being_aggregated: bool) -> dict[str, Any]:
    """MemberStatusResponse; ``challenges`` is filled only while CHALLENGED."""
    status = status_str(m)
    challenges = (
        [challenge(c) for c in (m.challenges or ()) if isinstance(c, Mapping)]
        if status == _CHALLENGED
        else []
    )
    return {
        "aggregated_at": iso(m.aggregated_at),
        "challenges": challenges,
        "connection_status": status,
        "guid": m.guid,
        "has_processed_account_numbers": bool(m.has_processed_account_numbers),
        "has_processed_accounts": bool(m.has_processed_accounts),
        "has_processed_transactions": bool(m.has_processed_transactions),
        "is_authenticated": bool(m.is_authenticated),
        "is_being_aggregated": bool(is_being_aggregated),
        "successfully_aggregated_at": iso(m.successfully_aggregated_at),
    }
