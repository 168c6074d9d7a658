"""Sealing and opening a member's secrets. Each value is bound to its member and
purpose, so a ciphertext copied onto another row does not open."""

from __future__ import annotations

import datetime as dt
from typing import Any

from openagg.db.models import Institution, Job, Member
from openagg.runtime import Runtime


def _ctx(member: Member, purpose: str) -> str:
    return f"{member.guid}:{purpose}"


def seal_credentials(rt: Runtime, member: Member, values: dict[str, str]) -> list[str]:
    """``values`` maps credential guid to value. Returns their fingerprints under every
    key (the stored one first), to find duplicates stored before a key rotation."""
    member.credentials_enc = rt.keys.seal_json(values, _ctx(member, "credentials"))
    fingerprints = rt.keys.fingerprints("|".join(f"{k}={values[k]}" for k in sorted(values)))
    member.credentials_fingerprint = fingerprints[0]
    return fingerprints


def open_credentials(rt: Runtime, member: Member) -> dict[str, str]:
    if member.credentials_enc is None:
        return {}
    value: dict[str, str] = rt.keys.open_json(member.credentials_enc, _ctx(member, "credentials"))
    return value


def seal_connector_state(
    rt: Runtime, member: Member, state: dict[str, Any], now: dt.datetime
) -> None:
    member.connector_state_enc = rt.keys.seal_json(state, _ctx(member, "connector_state"))
    member.connector_state_expires_at = now + dt.timedelta(
        seconds=rt.settings.connector_state_ttl_seconds
    )


def open_connector_state(rt: Runtime, member: Member, now: dt.datetime) -> dict[str, Any] | None:
    """The saved session, or None when there is none or it expired."""
    if member.connector_state_enc is None or (
        member.connector_state_expires_at and member.connector_state_expires_at < now
    ):
        return None
    value: dict[str, Any] = rt.keys.open_json(
        member.connector_state_enc, _ctx(member, "connector_state")
    )
    return value


def clear_connector_state(member: Member) -> None:
    member.connector_state_enc = None
    member.connector_state_expires_at = None


def seal_answers(rt: Runtime, member: Member, job: Job, answers: dict[str, str]) -> None:
    job.answers_enc = rt.keys.seal_json(answers, _ctx(member, f"answers:{job.guid}"))


def open_answers(rt: Runtime, member: Member, job: Job) -> dict[str, str] | None:
    if job.answers_enc is None:
        return None
    value: dict[str, str] = rt.keys.open_json(job.answers_enc, _ctx(member, f"answers:{job.guid}"))
    return value


def seal_secrets(rt: Runtime, member: Member, secrets: dict[str, Any]) -> None:
    """The secrets a connector earned for this member (empty: none)."""
    member.secrets_enc = sealed_secrets(rt, member.guid, secrets) if secrets else None


def sealed_secrets(rt: Runtime, member_guid: str, secrets: dict[str, Any]) -> bytes:
    """Secrets sealed as ``seal_secrets`` seals them on the member, wherever they are
    kept (``open_sealed_secrets`` opens them)."""
    return rt.keys.seal_json(secrets, f"{member_guid}:secrets")


def open_secrets(rt: Runtime, member: Member) -> dict[str, Any]:
    return open_sealed_secrets(rt, member.guid, member.secrets_enc)


def open_sealed_secrets(rt: Runtime, member_guid: str, sealed: bytes | None) -> dict[str, Any]:
    """A member's secrets sealed by ``seal_secrets``, wherever they are kept now (a
    revocation job carries them after the member is deleted)."""
    if sealed is None:
        return {}
    value: dict[str, Any] = rt.keys.open_json(sealed, f"{member_guid}:secrets")
    return value


def seal_oauth_verifier(rt: Runtime, member: Member, verifier: str) -> None:
    member.oauth_verifier_enc = rt.keys.seal_json(verifier, _ctx(member, "oauth_verifier"))


def open_oauth_verifier(rt: Runtime, member: Member) -> str | None:
    if member.oauth_verifier_enc is None:
        return None
    value: str = rt.keys.open_json(member.oauth_verifier_enc, _ctx(member, "oauth_verifier"))
    return value


def is_secret_option(key: str) -> bool:
    """Institution options kept sealed and never printed."""
    return key.lower().endswith(("secret", "password"))


def seal_institution_options(
    rt: Runtime, institution: Institution, options: dict[str, str]
) -> None:
    """Split ``options`` into the plain ones and the sealed secret ones."""
    plain = {k: v for k, v in options.items() if not is_secret_option(k)}
    hidden = {k: v for k, v in options.items() if is_secret_option(k)}
    institution.options = plain or None
    institution.options_enc = (
        rt.keys.seal_json(hidden, f"{institution.code}:options") if hidden else None
    )


def open_institution_options(rt: Runtime, institution: Institution) -> dict[str, str]:
    options = dict(institution.options or {})
    if institution.options_enc is not None:
        options.update(rt.keys.open_json(institution.options_enc, f"{institution.code}:options"))
    return options
