"""OAuth as a platform service, for every connector with the OAuth hooks.

An OAuth member waits in PENDING with a single-use ``oauth_token``; its
``oauth_window_uri`` is ``/oauth/start/<token>``. Asking for the link again
(``members.set_oauth_options``) opens a step on any OAuth member, connected or not,
to renew its consent. At the link the platform makes a PKCE verifier (sealed on the
member), asks the connector where to send the end user (``oauth_start``), and
redirects. The institution sends the end user back to the one callback,
``/oauth/callback``, with the ``state`` the platform gave; the connector exchanges the
code (``oauth_finish``), keeping its tokens in ``ctx.secrets``; the platform seals
them and starts the member's job in one transaction. The end user declining at the
institution makes the member DENIED.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from dataclasses import dataclass

import httpx
from sqlalchemy import select

from openagg.connectors.base import ConnectorError, OAuthStart
from openagg.db.models import Institution, Member
from openagg.runtime import Runtime
from openagg.services import members, vault, widget
from openagg.services.connector_calls import ConnectorCall
from openagg.services.errors import BadRequest, NotFound

CALLBACK_PATH = "/oauth/callback"
# The OAuth steps run while the end user waits in a browser.
STEP_SECONDS = 30.0
# Joins the member's token and the widget session in ``state`` (neither holds a dot).
_SEP = "."

NOT_VALID = "This OAuth link is not valid or was already used."

# MX's reasons for an OAuth step that ended without access (the ``error_reason`` of
# the callback page's ``oauthComplete/error`` message to the widget).
DENIED = "DENIED"  # the end user declined at the institution
PROVIDER_ERROR = "PROVIDER_ERROR"  # the institution failed or did not confirm the code
SESSION_EXPIRED = "SESSION_EXPIRED"  # the link or its ``state`` names no open step
SERVER_ERROR = "SERVER_ERROR"
# OAuth's own error codes (RFC 6749 4.1.2.1) that say the institution failed, not
# that the end user said no.
_PROVIDER_FAILURES = frozenset({"server_error", "temporarily_unavailable"})


def error_reason(exc: Exception) -> str:
    """MX's reason for a step refused before the institution was asked or answered."""
    if isinstance(exc, NotFound | NotStartedHere):
        return SESSION_EXPIRED
    if isinstance(exc, Unreachable):
        return PROVIDER_ERROR
    return SERVER_ERROR


class NotStartedHere(BadRequest):
    """A callback whose step has no verifier: it was not started at this platform."""


class Unreachable(BadRequest):
    """The institution could not start the step."""


def redirect_uri(base_url: str) -> str:
    return base_url.rstrip("/") + CALLBACK_PATH


def code_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def _open_step(rt: Runtime, token: str) -> tuple[Member, Institution]:
    """The OAuth member whose open step ``token`` names (any status: a first consent
    or a renewal)."""
    async with rt.db.read() as s:
        row = (
            await s.execute(
                select(Member, Institution)
                .join(Institution, Institution.id == Member.institution_id)
                .where(Member.oauth_token == token)
            )
        ).first()
    if row is None or not row[0].is_oauth:
        raise NotFound(NOT_VALID)
    return row[0], row[1]


def _call(
    rt: Runtime, member: Member, institution: Institution, hook: str, end_user_ip: str | None
) -> ConnectorCall:
    # The end user is at the browser for every step (PSD2's PSU-IP-Address).
    call = ConnectorCall(
        rt,
        member.guid,
        member.secrets_enc,
        institution,
        now=rt.now(),
        end_user_present=True,
        end_user_ip=end_user_ip,
    )
    if call.connector is None or not hasattr(call.connector, hook):
        raise BadRequest(f"{institution.name} cannot be connected with OAuth here.")
    return call


async def start(
    rt: Runtime,
    token: str,
    session_guid: str | None,
    base_url: str,
    end_user_ip: str | None = None,
) -> str:
    """Where to send the end user: the institution's authorization page."""
    member, institution = await _open_step(rt, token)
    call = _call(rt, member, institution, "oauth_start", end_user_ip)
    verifier = secrets.token_urlsafe(48)
    state = token + (_SEP + session_guid if session_guid else "")
    try:
        async with asyncio.timeout(STEP_SECONDS):
            begun: OAuthStart = await call.connector.oauth_start(  # type: ignore[union-attr]
                call.ctx, redirect_uri(base_url), state, code_challenge(verifier)
            )
    except (ConnectorError, TimeoutError, httpx.HTTPError) as exc:
        call.log.warning("oauth start for %s failed: %s", member.guid, exc)
        raise Unreachable(f"{institution.name} cannot be reached right now.") from None
    async with rt.db.write() as s:
        stored = await s.scalar(
            select(Member).where(Member.id == member.id, Member.oauth_token == token)
        )
        if stored is None:
            raise NotFound(NOT_VALID)
        vault.seal_oauth_verifier(rt, stored, verifier)
    return begun.authorize_url


@dataclass
class Finished:
    member: Member | None
    redirect_url: str | None  # where the end user's browser goes next, if anywhere
    error: str | None = None  # what to tell the end user when access was not granted
    reason: str | None = None  # MX's error reason then (DENIED, PROVIDER_ERROR)


async def finish(
    rt: Runtime, params: dict[str, str], base_url: str, end_user_ip: str | None = None
) -> Finished:
    """The institution sent the end user back: exchange the code, keep the tokens,
    start a job. A refusal at the institution (``error=...``) makes the member DENIED
    (MX); a code the institution does not confirm leaves it as it was, and the same
    link works again. A ``state`` naming no open step is refused (404) and changes
    nothing. ``end_user_ip``: the end user's address, for the connector's requests
    and the first job's (never stored past it)."""
    token, _, session_guid = params.get("state", "").partition(_SEP)
    member, institution = await _open_step(rt, token)
    refused = params.get("error")
    if refused:
        said = params.get("error_description") or refused
        message = (
            f"Access was not granted at {institution.name} ({said}). "
            "The user must reconnect to give access."
        )
        reason = PROVIDER_ERROR if refused in _PROVIDER_FAILURES else DENIED
        return await _refused(
            rt, token, session_guid, member, message, declined=True, reason=reason
        )
    call = _call(rt, member, institution, "oauth_finish", end_user_ip)
    verifier = vault.open_oauth_verifier(rt, member)
    if verifier is None:
        raise NotStartedHere("This sign-in was not started here; start again from the app.")
    try:
        async with asyncio.timeout(STEP_SECONDS):
            await call.connector.oauth_finish(  # type: ignore[union-attr]
                call.ctx, dict(params), redirect_uri(base_url), verifier
            )
    except (ConnectorError, TimeoutError, httpx.HTTPError) as exc:
        call.log.warning("oauth finish for %s failed: %s", member.guid, exc)
        return await _not_confirmed(rt, token, session_guid, member, institution)
    except Exception:  # a connector's bug: the end user still gets a page, not a 500
        call.log.exception("oauth finish for %s failed inside the connector", member.guid)
        return await _not_confirmed(rt, token, session_guid, member, institution)
    done = await widget.complete_oauth(
        rt, token, session_guid or None, call.earned(), end_user_ip=end_user_ip
    )
    return Finished(done.member, done.redirect_url)


async def _not_confirmed(
    rt: Runtime, token: str, session_guid: str, member: Member, institution: Institution
) -> Finished:
    message = f"{institution.name} did not confirm access; please try again."
    return await _refused(
        rt, token, session_guid, member, message, declined=False, reason=PROVIDER_ERROR
    )


async def _refused(
    rt: Runtime,
    token: str,
    session_guid: str,
    member: Member,
    message: str,
    *,
    declined: bool,
    reason: str,
) -> Finished:
    # Where to send the end user is read while the step is still open.
    back = await widget.oauth_refused_redirect(rt, token, session_guid or None, member.guid)
    await members.oauth_step_failed(rt, token, message, declined=declined)
    return Finished(member, back, message, reason)
