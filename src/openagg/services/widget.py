"""Connect widget sessions: widget URLs, their options, the session a URL becomes, and
what a session may do. Everything a session does goes through the member services
(`services/members.py`) with the session's client and user, so a session can only
reach its own user's members and every member rule stays in one place.

A widget URL carries a random token. Opening the URL exchanges that token, once, for a
session token; both are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import Field, StrictBool, StrictInt, StrictStr
from sqlalchemy import select, update

from openagg.crypto import hash_api_key as hash_token
from openagg.db.models import Account, Client, Institution, Member, User, WidgetSession
from openagg.domain.ids import new_guid
from openagg.domain.policy import JobKind
from openagg.domain.statuses import Status
from openagg.domain.tickets import OPEN, Channel
from openagg.queue import END_USER_IP
from openagg.runtime import Runtime
from openagg.services import members, support
from openagg.services.errors import (
    BadRequest,
    NotFound,
    ServiceError,
    Unauthorized,
    Unprocessable,
)
from openagg.services.inputs import (
    GUID_MAX,
    ID_MAX,
    LIST_MAX,
    URL_MAX,
    CredentialValue,
    MemberCreateBody,
    MemberCreateFields,
    MemberUpdateFields,
    Strict,
    UseCase,
)
from openagg.services.lookup import institution_by_code, member_by_guid, user_by_guid

CONNECT_WIDGET = "connect_widget"
UI_MESSAGE_VERSION = 4
# Schemes a webview URL may not use: they would run code or read files in the widget.
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,39}$")


class ConnectOptions(Strict):
    """The Connect widget options (MX's ConnectWidgetRequest, the legacy `config`)."""

    client_redirect_url: StrictStr | None = Field(default=None, max_length=URL_MAX)
    color_scheme: Literal["light", "dark", "browser"] | None = None
    current_institution_code: StrictStr | None = Field(default=None, max_length=GUID_MAX)
    current_member_guid: StrictStr | None = Field(default=None, max_length=GUID_MAX)
    disable_background_agg: StrictBool | None = None
    disable_institution_search: StrictBool | None = None
    enable_app2app: StrictBool | None = None
    # OpenAgg's extension: the connected screen offers a SimpleFIN setup token for the
    # user's budget app (docs/widget.md).
    enable_simplefin_token: StrictBool | None = None
    include_identity: StrictBool | None = None
    include_transactions: StrictBool | None = None
    is_mobile_webview: StrictBool | None = None
    mode: Literal["aggregation", "verification"] | None = None
    oauth_referral_source: Literal["BROWSER", "APP"] | None = None
    ui_message_version: StrictInt | None = None
    ui_message_webview_url_scheme: StrictStr | None = Field(default=None, max_length=GUID_MAX)
    update_credentials: StrictBool | None = None


class WidgetUrlFields(ConnectOptions):
    """MX's WidgetRequest: the Connect options plus the fields every widget type takes."""

    widget_type: StrictStr = Field(min_length=1, max_length=40)
    current_institution_guid: StrictStr | None = Field(default=None, max_length=GUID_MAX)
    iso_country_code: list[Annotated[StrictStr, Field(max_length=3)]] | None = Field(
        default=None, max_length=LIST_MAX
    )
    use_cases: list[UseCase] | None = None
    connections_use_case_filter: StrictBool | None = None
    insight_guid: StrictStr | None = Field(default=None, max_length=GUID_MAX)
    microwidget_instance_id: StrictStr | None = Field(default=None, max_length=ID_MAX)


class WidgetUrlBody(Strict):
    widget_url: WidgetUrlFields


class ConnectWidgetBody(Strict):
    config: ConnectOptions | None = None


@dataclass
class NewWidgetUrl:
    session: WidgetSession
    user: User
    url_token: str  # shown once, in the URL


@dataclass
class WidgetContext:
    """An authenticated widget session: who it acts for and with which options."""

    rt: Runtime
    session: WidgetSession
    client: Client
    user: User
    # The end user's address, as this request came (behind a trusted proxy, the one it
    # forwarded): the jobs they start carry it (PSD2's PSU-IP-Address); never stored.
    end_user_ip: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        return self.session.options

    @property
    def verification(self) -> bool:
        return bool(self.options["mode"] == "verification")


@dataclass
class OpenedWidget:
    context: WidgetContext
    session_token: str


class WidgetLinkError(ServiceError):
    """A widget URL that cannot be opened."""


class WidgetLinkInvalid(WidgetLinkError):
    status_code = 401


class WidgetLinkGone(WidgetLinkError):
    """Used already, or expired."""

    status_code = 410


def _check_scheme(scheme: str) -> str:
    if not _SCHEME.match(scheme) or scheme.lower() in _FORBIDDEN_SCHEMES:
        raise BadRequest(
            f"ui_message_webview_url_scheme '{scheme}' is not a usable URL scheme "
            "(letters, digits, + . -; not javascript, data, file...)."
        )
    return scheme


def oauth_link_options(
    *,
    skip_aggregation: bool | None = None,
    referral_source: str | None = None,
    client_redirect_url: str | None = None,
    ui_message_webview_url_scheme: str | None = None,
    enable_app2app: bool | None = None,
) -> dict[str, Any]:
    """MX's parameters of an OAuth step that the app starts without the widget (the
    ``oauth_window_uri`` endpoint's query, or the create body), checked and with MX's
    defaults, in the keys the widget's options use (``_app_redirect`` reads either)."""
    if referral_source not in (None, "BROWSER", "APP"):
        raise BadRequest(f"referral_source must be BROWSER or APP, not '{referral_source}'.")
    return {
        "skip_aggregation": bool(skip_aggregation),
        "oauth_referral_source": referral_source or "BROWSER",
        "client_redirect_url": (
            _check_redirect(client_redirect_url) if client_redirect_url else None
        ),
        "ui_message_webview_url_scheme": _check_scheme(ui_message_webview_url_scheme or "mx"),
        # No institution here has an app to hand over to: kept, changes nothing.
        "enable_app2app": enable_app2app is not False,
    }


def _check_redirect(url: str) -> str:
    if not re.match(r"^https?://[^\s/]+", url) and not re.match(r"^[A-Za-z][\w+.-]*://", url):
        raise BadRequest("client_redirect_url must be an absolute URL.")
    scheme = url.split("://", 1)[0].lower()
    if scheme in _FORBIDDEN_SCHEMES:
        raise BadRequest(f"client_redirect_url may not use the '{scheme}' scheme.")
    return url


async def _resolve_options(
    rt: Runtime, client: Client, user: User, f: WidgetUrlFields
) -> dict[str, Any]:
    """Validate the options and fill MX's defaults, so the widget reads one plain dict."""
    if f.widget_type != CONNECT_WIDGET:
        raise BadRequest(
            f"widget_type '{f.widget_type}' is not served by OpenAgg; use '{CONNECT_WIDGET}'."
        )
    if f.ui_message_version is not None and f.ui_message_version != UI_MESSAGE_VERSION:
        raise BadRequest("ui_message_version must be 4 (the only version OpenAgg sends).")
    mode = f.mode or "aggregation"
    verification = mode == "verification"
    institution_code: str | None = None
    async with rt.db.read() as s:
        if f.current_member_guid is not None:
            try:
                await member_by_guid(s, user, f.current_member_guid)
            except NotFound:
                raise NotFound(
                    f"current_member_guid '{f.current_member_guid}' is not a member of this user."
                ) from None
        inst: Institution | None = None
        if f.current_institution_code is not None:
            inst = await institution_by_code(s, f.current_institution_code)
            if inst is None:
                raise BadRequest(f"'{f.current_institution_code}' is not a known institution_code.")
        elif f.current_institution_guid is not None:
            inst = await s.scalar(
                select(Institution).where(Institution.guid == f.current_institution_guid)
            )
            if inst is None:
                raise BadRequest(f"'{f.current_institution_guid}' is not a known institution guid.")
        if inst is not None:
            if inst.is_retired:
                raise BadRequest(f"Connections to '{inst.code}' are no longer supported.")
            if verification and not inst.profile.get("supports_account_verification"):
                raise BadRequest(f"Institution '{inst.code}' does not support verification.")
            institution_code = inst.code
    if f.disable_institution_search and not (f.current_member_guid or institution_code):
        raise BadRequest(
            "disable_institution_search needs current_member_guid, current_institution_code "
            "or current_institution_guid."
        )
    if f.update_credentials and not f.current_member_guid:
        raise BadRequest("update_credentials needs current_member_guid.")
    is_webview = bool(f.is_mobile_webview)
    return {
        "mode": mode,
        "current_member_guid": f.current_member_guid,
        "current_institution_code": institution_code,
        "disable_institution_search": bool(f.disable_institution_search),
        # None in aggregation mode: the member follows the client's default (on, unless
        # the operator turned it off); verification mode turns it off unless told not to.
        "disable_background_agg": (
            f.disable_background_agg
            if f.disable_background_agg is not None
            else (True if verification else None)
        ),
        "include_transactions": (
            f.include_transactions if f.include_transactions is not None else not verification
        ),
        "include_identity": bool(f.include_identity),
        "update_credentials": bool(f.update_credentials),
        "color_scheme": f.color_scheme or "light",
        "is_mobile_webview": is_webview,
        "ui_message_webview_url_scheme": _check_scheme(f.ui_message_webview_url_scheme or "mx"),
        "client_redirect_url": (
            _check_redirect(f.client_redirect_url) if f.client_redirect_url else None
        ),
        "oauth_referral_source": f.oauth_referral_source or ("APP" if is_webview else "BROWSER"),
        "iso_country_code": [c.upper() for c in f.iso_country_code or []],
        "use_cases": list(f.use_cases) if f.use_cases is not None else None,
        "ui_message_version": UI_MESSAGE_VERSION,
        "enable_simplefin_token": bool(f.enable_simplefin_token),
    }


async def create_widget_url(
    rt: Runtime, client: Client, user_guid: str, fields: WidgetUrlFields
) -> NewWidgetUrl:
    async with rt.db.read() as s:
        user = await user_by_guid(s, client, user_guid)
    if user.is_disabled:
        raise BadRequest("This user is disabled; enable it before opening the widget.")
    options = await _resolve_options(rt, client, user, fields)
    url_token = secrets.token_urlsafe(32)
    now = rt.now()
    session = WidgetSession(
        guid=new_guid("WSN"),
        client_id=client.id,
        user_id=user.id,
        widget_type=fields.widget_type,
        options=options,
        url_token_hash=hash_token(url_token),
        url_expires_at=now + dt.timedelta(seconds=rt.settings.widget_url_ttl_seconds),
        created_at=now,
    )
    async with rt.db.write() as s:
        s.add(session)
    return NewWidgetUrl(session, user, url_token)


def connect_fields(config: ConnectOptions | None) -> WidgetUrlFields:
    """The legacy connect_widget_url body as a widget_urls request for the Connect widget."""
    given = config.model_dump(exclude_unset=True) if config else {}
    return WidgetUrlFields(widget_type=CONNECT_WIDGET, **given)


async def _context(rt: Runtime, session: WidgetSession) -> WidgetContext:
    async with rt.db.read() as s:
        client = await s.get(Client, session.client_id)
        user = await s.get(User, session.user_id)
    if client is None or user is None:
        raise Unauthorized("This widget session is no longer valid.")
    return WidgetContext(rt, session, client, user)


async def open_widget(rt: Runtime, url_token: str) -> OpenedWidget:
    """Exchange a widget URL's token, once, for a session token."""
    now = rt.now()
    session_token = secrets.token_urlsafe(32)
    async with rt.db.write() as s:
        session = await s.scalar(
            select(WidgetSession)
            .where(WidgetSession.url_token_hash == hash_token(url_token))
            .with_for_update()
        )
        if session is None:
            raise WidgetLinkInvalid("This widget link is not valid.")
        if session.opened_at is not None:
            raise WidgetLinkGone("This widget link was already used. Each link opens once.")
        if session.url_expires_at <= now:
            raise WidgetLinkGone("This widget link has expired. Links are valid for 10 minutes.")
        session.opened_at = now
        session.session_token_hash = hash_token(session_token)
        session.session_expires_at = now + dt.timedelta(
            seconds=rt.settings.widget_session_ttl_seconds
        )
    ctx = await _context(rt, session)
    if session.options.get("current_member_guid"):
        # Opening the widget on a member is the end user looking at it.
        await mark_present(ctx, session.options["current_member_guid"])
    return OpenedWidget(ctx, session_token)


async def authenticate(
    rt: Runtime, session_token: str, end_user_ip: str | None = None
) -> WidgetContext:
    if not session_token:
        raise Unauthorized("This widget session is missing its token.")
    async with rt.db.read() as s:
        session = await s.scalar(
            select(WidgetSession).where(
                WidgetSession.session_token_hash == hash_token(session_token)
            )
        )
    if session is None or session.session_expires_at is None:
        raise Unauthorized("This widget session is not valid.")
    if session.session_expires_at <= rt.now():
        raise Unauthorized("This widget session has expired. Open the widget again.")
    ctx = await _context(rt, session)
    ctx.end_user_ip = end_user_ip
    return ctx


async def mark_present(ctx: WidgetContext, member_guid: str) -> None:
    """Record that the end user acted on this member (support tickets read it)."""
    async with ctx.rt.db.write() as s:
        await s.execute(
            update(Member)
            .where(Member.guid == member_guid, Member.user_id == ctx.user.id)
            .values(end_user_present_at=ctx.rt.now())
        )


# --- what a session does -------------------------------------------------------------


async def search_institutions(ctx: WidgetContext, query: str) -> list[Institution]:
    """Institutions the widget offers: verification mode lists only those that verify."""
    query = query.strip().lower()
    countries = ctx.options.get("iso_country_code") or []
    async with ctx.rt.db.read() as s:
        rows = await s.scalars(
            select(Institution).where(Institution.is_retired.is_(False)).order_by(Institution.name)
        )
        found = []
        for inst in rows:
            p = inst.profile or {}
            if query and query not in inst.name.lower() and query not in inst.code.lower():
                continue
            if ctx.verification and not p.get("supports_account_verification"):
                continue
            if countries and p.get("iso_country_code", "US") not in countries:
                continue
            found.append(inst)
    return found


async def institution(ctx: WidgetContext, code: str) -> Institution:
    async with ctx.rt.db.read() as s:
        inst = await institution_by_code(s, code)
    if inst is None or inst.is_retired:
        raise NotFound("This institution is not available.")
    if ctx.verification and not inst.profile.get("supports_account_verification"):
        raise BadRequest(f"{inst.name} does not support account verification.")
    return inst


def _present(end_user_ip: str | None) -> dict[str, Any]:
    """A job's option naming the end user's address, when known."""
    return {END_USER_IP: end_user_ip} if end_user_ip else {}


def _job(ctx: WidgetContext) -> tuple[JobKind, dict[str, Any]]:
    """The job the widget's mode asks for, with its options."""
    if ctx.verification:
        return JobKind.VERIFY, _present(ctx.end_user_ip)
    return JobKind.AGGREGATE, {
        "include_transactions": ctx.options["include_transactions"],
        **_present(ctx.end_user_ip),
    }


def _needs_explicit_job(ctx: WidgetContext) -> bool:
    # A plain aggregation is what create/update start on their own.
    return ctx.verification or not ctx.options["include_transactions"]


async def create_member(
    ctx: WidgetContext,
    institution_code: str,
    credentials: list[CredentialValue],
    is_oauth: bool = False,
) -> members.MemberResult:
    inst = await institution(ctx, institution_code)
    if is_oauth:
        return await _oauth_member(ctx, inst, credentials)
    if inst.profile.get("supports_oauth") and not inst.credentials:
        raise BadRequest(
            f"{inst.name} signs in on its own website (OAuth): create the member with "
            "is_oauth: true and no credentials."
        )
    explicit = _needs_explicit_job(ctx)
    result = await _create(ctx, inst, credentials=credentials, skip_aggregation=explicit or None)
    await mark_present(ctx, result.member.guid)
    if explicit:
        kind, options = _job(ctx)
        result = await members.request_job(
            ctx.rt, ctx.client, ctx.user.guid, result.member.guid, kind, options
        )
    return result


async def _create(
    ctx: WidgetContext, inst: Institution, *, reuse_pending_oauth: bool = False, **fields: Any
) -> members.MemberResult:
    """A member made through the API's own create, with the widget's options."""
    body = MemberCreateBody(
        member=MemberCreateFields(
            institution_code=inst.code,
            background_aggregation_is_disabled=ctx.options["disable_background_agg"],
            use_cases=ctx.options.get("use_cases"),
            **fields,
        )
    )
    return await members.create_member(
        ctx.rt,
        ctx.client,
        ctx.user.guid,
        body,
        None,
        reuse_pending_oauth=reuse_pending_oauth,
        job_options=_present(ctx.end_user_ip) or None,
    )


async def _oauth_member(
    ctx: WidgetContext, inst: Institution, credentials: list[CredentialValue]
) -> members.MemberResult:
    """The member the end user authorizes at the institution: the user's member still
    waiting on this institution's OAuth step if there is one (as MX's widget does, so
    going back and choosing the institution again does not pile up PENDING members),
    else a new one. Its first job starts when the OAuth step completes
    (`complete_oauth`)."""
    if credentials:
        raise BadRequest(
            f"{inst.name} signs in on its own website (OAuth): send no credentials with "
            "is_oauth: true."
        )
    result = await _create(ctx, inst, is_oauth=True, reuse_pending_oauth=True)
    await mark_present(ctx, result.member.guid)
    return result


# Names the widget session in the OAuth links the widget hands out, so the OAuth page
# can apply that session's options (its mode's first job, MX's APP redirect).
OAUTH_SESSION_PARAM = "widget_session"


def oauth_link(ctx: WidgetContext, oauth_window_uri: str) -> str:
    return _add_query(oauth_window_uri, {OAUTH_SESSION_PARAM: ctx.session.guid})


async def open_oauth(ctx: WidgetContext, member_guid: str) -> members.MemberResult:
    """The member's OAuth step, opened if it has none: to try again after a refusal,
    or to renew a connected member's consent (MX's ``oauth_window_uri``). The
    session's options apply at the end (``oauth_link``)."""
    result = await members.set_oauth_options(
        ctx.rt, ctx.client, ctx.user.guid, member_guid, oauth_link_options()
    )
    if not result.member.is_oauth:
        raise BadRequest("This connection does not sign in with OAuth.")
    await mark_present(ctx, member_guid)
    return result


@dataclass
class OAuthCompleted:
    member: Member
    redirect_url: str | None  # where the end user's browser goes next, if anywhere


async def complete_oauth(
    rt: Runtime,
    token: str,
    session_guid: str | None,
    earned: dict[str, Any] | None = None,
    end_user_ip: str | None = None,
) -> OAuthCompleted:
    """The end user approved access at the institution, and the connector kept what it
    ``earned`` (its tokens).

    When the link came from a widget session of the member's own user, the first job is
    the one the widget's mode asks for, and with MX's APP referral source the end user
    is sent back to the app: to `client_redirect_url`, else to
    `<ui_message_webview_url_scheme>://oauth_complete`, with `status` and `member_guid`.
    The end user is at the callback: the job carries their address (``end_user_ip``)."""
    ctx = await _oauth_session(rt, token, session_guid) if session_guid else None
    if ctx is None:
        # Started by the app (its oauth_window_uri): the options it gave, if any.
        asked = await _asked_of_oauth(rt, token)
        member = await members.complete_oauth(
            rt,
            token,
            options=_present(end_user_ip) or None,
            earned=earned,
            start_job=not asked.get("skip_aggregation"),
        )
        return OAuthCompleted(member, _app_redirect(asked, "success", member.guid))
    ctx.end_user_ip = end_user_ip
    kind, options = _job(ctx)
    member = await members.complete_oauth(rt, token, kind, options, earned)
    await mark_present(ctx, member.guid)
    return OAuthCompleted(member, _app_redirect(ctx.options, "success", member.guid))


async def oauth_refused_redirect(
    rt: Runtime, token: str, session_guid: str | None, member_guid: str
) -> str | None:
    """Where to send the end user back when access was not granted (MX's APP
    referral source, with ``status=error``); None when the widget polls."""
    ctx = await _oauth_session(rt, token, session_guid) if session_guid else None
    asked = ctx.options if ctx else await _asked_of_oauth(rt, token)
    return _app_redirect(asked, "error", member_guid)


def _app_redirect(options: dict[str, Any], status: str, member_guid: str) -> str | None:
    if options.get("oauth_referral_source") != "APP":
        return None  # the widget polls, or the app does; the user closes the window
    target = (
        options["client_redirect_url"]
        or f"{options['ui_message_webview_url_scheme']}://oauth_complete"
    )
    return _add_query(target, {"status": status, "member_guid": member_guid})


async def _asked_of_oauth(rt: Runtime, token: str) -> dict[str, Any]:
    """What the app asked of this pending OAuth step (``oauth_link_options``)."""
    async with rt.db.read() as s:
        asked = await s.scalar(select(Member.oauth_options).where(Member.oauth_token == token))
    return dict(asked or {})


async def _oauth_session(rt: Runtime, token: str, session_guid: str) -> WidgetContext | None:
    """The widget session named in the OAuth link, only if it belongs to the member's
    client and user: the link's query string is not trusted to send anyone elsewhere."""
    async with rt.db.read() as s:
        member = await s.scalar(select(Member).where(Member.oauth_token == token))
        session = await s.scalar(select(WidgetSession).where(WidgetSession.guid == session_guid))
    if (
        member is None
        or session is None
        or session.opened_at is None
        or (session.client_id, session.user_id) != (member.client_id, member.user_id)
    ):
        return None
    return await _context(rt, session)


def _add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


async def load_member(ctx: WidgetContext, member_guid: str) -> members.MemberResult:
    return await members.load_member(ctx.rt, ctx.client, ctx.user.guid, member_guid)


async def update_credentials(
    ctx: WidgetContext, member_guid: str, credentials: list[CredentialValue]
) -> members.MemberResult:
    explicit = ctx.verification  # update_member starts a plain aggregation otherwise
    result = await members.update_member(
        ctx.rt,
        ctx.client,
        ctx.user.guid,
        member_guid,
        MemberUpdateFields(credentials=credentials, skip_aggregation=explicit or None),
        None,
        job_options=_present(ctx.end_user_ip) or None,
    )
    await mark_present(ctx, member_guid)
    if explicit:
        kind, options = _job(ctx)
        result = await members.request_job(
            ctx.rt, ctx.client, ctx.user.guid, member_guid, kind, options
        )
    return result


async def answer_challenges(
    ctx: WidgetContext, member_guid: str, answers: list[CredentialValue]
) -> members.MemberResult:
    result = await members.resume(ctx.rt, ctx.client, ctx.user.guid, member_guid, answers)
    await mark_present(ctx, member_guid)
    return result


async def retry(ctx: WidgetContext, member_guid: str) -> members.MemberResult:
    kind, options = _job(ctx)
    result = await members.request_job(
        ctx.rt, ctx.client, ctx.user.guid, member_guid, kind, options
    )
    await mark_present(ctx, member_guid)
    return result


async def accounts(
    ctx: WidgetContext, member_guid: str
) -> tuple[Member, Institution, list[Account]]:
    async with ctx.rt.db.read() as s:
        user = await user_by_guid(s, ctx.client, ctx.user.guid)
        member = await member_by_guid(s, user, member_guid)
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
        rows = list(
            await s.scalars(
                select(Account).where(Account.member_id == member.id).order_by(Account.id)
            )
        )
    return member, inst, rows


async def delete_member(ctx: WidgetContext, member_guid: str) -> None:
    await members.delete_member(ctx.rt, ctx.client, ctx.user.guid, member_guid)


# --- support: "Report a problem" and the engineer's questions (docs/widget.md) ----------

# Open tickets, what the widget shows instead of a bare error.
OPEN_TICKET_STATUSES = tuple(sorted(s.value for s in OPEN))

PROBLEMS: dict[str, str] = {
    "not_connecting": "The connection keeps failing",
    "wrong_data": "Accounts, balances or transactions look wrong",
    "other": "Something else is wrong",
}

# Why a report is refused, in the end user's words (the API's messages are for
# developers). The widget offers the report only where an engineer is needed; these
# cover a member whose status changed in between.
_REPORT_REFUSALS: dict[Status, str] = {
    Status.DENIED: "{bank} didn't accept your username or password. You can fix this "
    "yourself: update your credentials.",
    Status.PREVENTED: "{bank} didn't accept your username or password. You can fix this "
    "yourself: update your credentials.",
    Status.IMPAIRED: "{bank} needs more sign-in information. You can fix this yourself: "
    "update your credentials.",
    Status.CHALLENGED: "{bank} is waiting for your answer to a security question. "
    "Answer it to continue.",
    Status.REJECTED: "Your answer to {bank}'s security question wasn't accepted. "
    "Try connecting again.",
    Status.EXPIRED: "{bank}'s security question timed out. Try connecting again.",
    Status.IMPEDED: "{bank} needs you to finish a step on its website. Sign in there, "
    "then try connecting again.",
    Status.LOCKED: "Your {bank} account is locked. Contact {bank} to unlock it, then "
    "update your credentials here.",
    Status.CLOSED: "This connection to {bank} is closed, so there is nothing to fix.",
    Status.DISABLED: "Updates for this connection to {bank} are paused by the app.",
    Status.DISCONTINUED: "Connections to {bank} are no longer supported.",
    Status.PENDING: "You haven't finished signing in at {bank} yet.",
    Status.IMPORTED: "This connection to {bank} needs your credentials first.",
    Status.RECONNECTED: "Connect to {bank} once while you are here first.",
    Status.CONNECTED: "Your connection to {bank} is working now, so there is nothing to report.",
}
_IN_PROGRESS = frozenset({Status.CREATED, Status.UPDATED, Status.RESUMED, Status.DELAYED})
_STILL_CONNECTING = "We're still connecting to {bank}. Wait until it finishes, then report it."
_NOT_NOW = "We couldn't send your report right now. Please try again later."


@dataclass
class Report:
    ticket: support.TicketView
    joined: bool  # the member had an open ticket: this report was added to it


async def open_ticket(ctx: WidgetContext, member_guid: str) -> support.TicketView | None:
    """The member's open ticket (at most one), or None. Another user's member is 404."""
    views, _ = await support.list_user_tickets(
        ctx.rt,
        ctx.client,
        ctx.user.guid,
        member_guid=member_guid,
        statuses=OPEN_TICKET_STATUSES,
        page=1,
        per_page=10,
    )
    return views[-1] if views else None


async def report_problem(
    ctx: WidgetContext,
    member_guid: str,
    problem: str,
    details: str | None,
    origin: support.Origin,
) -> Report:
    """The end user asks an engineer for help: a DIRECT ticket, or a report added to
    the member's open one. The support rules decide; a refusal comes back in plain
    words."""
    description = f"{PROBLEMS[problem]} (reported in the Connect widget)."
    if details and details.strip():
        description += "\n\n" + details.strip()
    fields = support.TicketCreateFields(channel=Channel.DIRECT, description=description)
    try:
        result = await support.escalate(
            ctx.rt, ctx.client, ctx.user.guid, member_guid, fields, origin
        )
    except Unprocessable as exc:
        raise Unprocessable(await _plain_refusal(ctx, member_guid)) from exc
    await mark_present(ctx, member_guid)
    return Report(result.view, result.joined)


async def _plain_refusal(ctx: WidgetContext, member_guid: str) -> str:
    loaded = await members.load_member(ctx.rt, ctx.client, ctx.user.guid, member_guid)
    bank = loaded.institution.name
    status = Status(loaded.member.connection_status) if loaded.member.connection_status else None
    if status in _REPORT_REFUSALS:
        return _REPORT_REFUSALS[status].format(bank=bank)
    if loaded.job is not None or status is None or status in _IN_PROGRESS:
        return _STILL_CONNECTING.format(bank=bank)
    return _NOT_NOW


async def answer_login_info(
    ctx: WidgetContext,
    member_guid: str,
    ticket_guid: str,
    answers: list[CredentialValue],
    origin: support.Origin,
) -> support.TicketView:
    """The end user's answers to the engineer's questions (sealed by the support
    service, readable once by the engineer)."""
    ticket = await open_ticket(ctx, member_guid)
    if ticket is None or ticket.ticket.guid != ticket_guid:
        raise NotFound("This report is closed now: there is nothing to answer.")
    try:
        view = await support.submit_login_info(
            ctx.rt, ctx.client, ctx.user.guid, ticket_guid, answers, origin
        )
    except Unprocessable:
        raise Unprocessable(
            "These questions were already answered or withdrawn. Nothing more is needed."
        ) from None
    except BadRequest:
        raise BadRequest(
            "Please answer every question (pick one of the choices where there are choices)."
        ) from None
    await mark_present(ctx, member_guid)
    return view
