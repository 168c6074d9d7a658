"""The Connect widget: MX's widget URL endpoints, the page a widget URL opens, the
widget's own JSON API (authenticated by its session) and the demo host page.

The widget API under ``/connect/api`` is OpenAgg's own, not part of MX's contract; its
payloads reuse MX's serializers (`wire/`) so the widget sees the same fields an
app does.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import Field, StrictBool, StrictStr
from sqlalchemy import select

from openagg import wire
from openagg.api.http import current_client, error, mx, no_content, parse_body, runtime
from openagg.api.pages import (
    PAGE_HEADERS,
    client_address,
    read_asset,
    script_json,
    static_asset,
)
from openagg.api.routes.imports import import_body, read_upload
from openagg.api.routes.members import oauth_window_uri
from openagg.api.routes.simplefin import token_body
from openagg.api.routing import Router
from openagg.connectors.files import STATEMENT_FILE_CODE
from openagg.db.models import Client, Institution, Member, User
from openagg.domain.policy import background_disabled
from openagg.domain.statuses import NEEDS_NEW_CREDENTIALS, NOT_AGGREGATABLE, Status
from openagg.domain.tickets import ENGINEER_FIXABLE
from openagg.runtime import Runtime
from openagg.services import imports, simplefin, widget
from openagg.services.errors import (
    NotFound,
    ServiceError,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from openagg.services.inputs import GUID_MAX, LIST_MAX, CredentialValue, Strict, UserFields
from openagg.services.members import MemberResult
from openagg.services.support import Origin
from openagg.services.users import create_user

API = "/connect/api"


class _WidgetRoute(APIRoute):
    """The widget API's errors without ``WWW-Authenticate: Basic`` (the MX API's 401
    carries it), which would make the browser pop up its own login box in the widget
    when a session ends."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.path.startswith(API + "/"):
            return handler

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                wait = exc.retry_after if isinstance(exc, TooManyRequests) else None
                headers = {"Retry-After": str(wait)} if wait is not None else None
                return error(exc.status_code, exc.message, headers)

        return run


router = Router(route_class=_WidgetRoute)

_ASSETS = {"widget.js", "widget.css", "demo.js", "text.js"}


def _in_mx_order(group: frozenset[Status]) -> list[str]:
    return [s.value for s in Status if s in group]


# The connection-status groups the widget's screens follow, in its boot data: the
# rules stay in the domain, and the script keeps no copy of them.
STATUS_GROUPS = {
    "needs_new_credentials": _in_mx_order(NEEDS_NEW_CREDENTIALS),
    "engineer_fixable": _in_mx_order(ENGINEER_FIXABLE),
    "not_aggregatable": _in_mx_order(NOT_AGGREGATABLE),
}
_PACKAGE = "openagg.widget"
# Embeddable anywhere (it is meant for iframes), but runs only its own files.
_PAGE_HEADERS = PAGE_HEADERS
# The demo host page embeds the widget, served from this same origin.
_DEMO_HEADERS = {
    **_PAGE_HEADERS,
    "Content-Security-Policy": _PAGE_HEADERS["Content-Security-Policy"] + "; frame-src 'self'",
}


def _asset(name: str) -> str:
    return read_asset(_PACKAGE, name)


def _base_url(rt: Runtime, request: Request) -> str:
    return rt.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


# --- MX: widget URLs -----------------------------------------------------------------


async def _new_url(
    request: Request, client: Client, user_guid: str, fields: widget.WidgetUrlFields
) -> tuple[str, User]:
    rt = runtime(request)
    new = await widget.create_widget_url(rt, client, user_guid, fields)
    return f"{_base_url(rt, request)}/connect/{new.url_token}", new.user


@router.post("/users/{user_guid}/widget_urls")
async def request_widget_url(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, widget.WidgetUrlBody)
    url, user = await _new_url(request, client, user_guid, body.widget_url)
    return mx({"widget_url": wire.widget_url(url, widget_type=widget.CONNECT_WIDGET, user=user)})


@router.post("/users/{user_guid}/connect_widget_url")
async def request_connect_widget_url(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    # The body is optional in practice ("optional config options"): none means defaults.
    raw = await request.body()
    body = (
        await parse_body(request, widget.ConnectWidgetBody)
        if raw.strip()
        else widget.ConnectWidgetBody()
    )
    url, user = await _new_url(request, client, user_guid, widget.connect_fields(body.config))
    return mx({"user": wire.connect_widget_url(url, user=user)})


# --- the widget page ---------------------------------------------------------------------

_ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/assets/theme.css">
<link rel="stylesheet" href="/connect/static/widget.css"></head>
<body><main class="oa-widget" data-screen="linkError">
<h1 tabindex="-1">{title}</h1><p role="alert">{message}</p>
<p>Please close this window and start again from the app.</p></main></body></html>"""


def _link_error_page(status_code: int, message: str) -> HTMLResponse:
    title = "This link can't be used" if status_code == 410 else "This link is not valid"
    page = _ERROR_PAGE.format(title=html.escape(title), message=html.escape(message))
    return HTMLResponse(page, status_code=status_code, headers=_PAGE_HEADERS)


@router.get("/connect/static/{name}")
async def widget_asset(name: str, request: Request) -> Response:
    return static_asset(_PACKAGE, name, _ASSETS, request)


@router.get("/connect/{url_token}")
async def widget_page(url_token: str, request: Request) -> Response:
    rt = runtime(request)
    try:
        opened = await widget.open_widget(rt, url_token)
    except widget.WidgetLinkError as exc:
        return _link_error_page(exc.status_code, exc.message)
    ctx = opened.context
    boot = {
        "session_token": opened.session_token,
        "session_guid": ctx.session.guid,
        "user_guid": ctx.user.guid,
        "options": ctx.options,
        "poll_interval_ms": rt.settings.widget_poll_interval_ms,
        "status_groups": STATUS_GROUPS,
        "statement_file_code": STATEMENT_FILE_CODE,
    }
    page = (
        _asset("index.html")
        .replace("{{COLOR_SCHEME}}", html.escape(ctx.options["color_scheme"]))
        .replace("{{BOOT}}", script_json(boot))
    )
    return HTMLResponse(page, headers=_PAGE_HEADERS)


# --- the widget's API -----------------------------------------------------------------


async def widget_session(request: Request) -> widget.WidgetContext:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A widget session token is required (Authorization: Bearer).")
    # The end user's address (behind a trusted proxy, the one it forwarded) goes with
    # the jobs they start here, and nowhere else.
    return await widget.authenticate(runtime(request), token.strip(), client_address(request))


class MemberCreate(Strict):
    institution_code: StrictStr = Field(min_length=1, max_length=GUID_MAX)
    # None of them for an OAuth institution (is_oauth): the end user signs in there.
    credentials: list[CredentialValue] = Field(default_factory=list, max_length=LIST_MAX)
    is_oauth: StrictBool = False


class CredentialsUpdate(Strict):
    credentials: list[CredentialValue] = Field(min_length=1, max_length=LIST_MAX)


class NoFields(Strict):
    """A body with nothing in it."""


class Answers(Strict):
    challenges: list[CredentialValue] = Field(min_length=1, max_length=LIST_MAX)


def _institution_view(inst: Institution) -> dict[str, Any]:
    # Logos of our own stay paths: the page loads them from its own origin (CSP 'self').
    return {**wire.institution(inst), "guid": inst.guid}


def _member_view(
    ctx: widget.WidgetContext,
    request: Request,
    m: Member,
    inst: Institution,
    is_being_aggregated: bool,
) -> dict[str, Any]:
    body = wire.member(
        m,
        user=ctx.user,
        institution=inst,
        is_being_aggregated=is_being_aggregated,
        background_disabled=background_disabled(
            member_disabled=m.background_aggregation_is_disabled,
            client_enabled=ctx.client.background_aggregation_enabled,
        ),
    )
    status = body["connection_status"]
    uri = oauth_window_uri(ctx.rt, request, m)
    body.update(
        oauth_window_uri=widget.oauth_link(ctx, uri) if uri else None,
        challenges=wire.member_status(m, is_being_aggregated=is_being_aggregated)["challenges"],
        connection_status_id=Status(status).id if status else None,
        institution=_institution_view(inst),
    )
    return {"member": body}


def _result_view(ctx: widget.WidgetContext, request: Request, r: MemberResult) -> dict[str, Any]:
    return _member_view(ctx, request, r.member, r.institution, r.job is not None)


@router.get(API + "/institutions")
async def api_institutions(
    request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    found = await widget.search_institutions(ctx, request.query_params.get("q", "")[:100])
    return JSONResponse({"institutions": [_institution_view(i) for i in found[:50]]})


@router.get(API + "/institutions/{code}")
async def api_institution(
    code: str, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    inst = await widget.institution(ctx, code)
    creds = sorted(inst.credentials, key=lambda c: c.get("display_order") or 0)
    return JSONResponse(
        {
            "institution": _institution_view(inst),
            "credentials": [wire.credential(c) for c in creds],
        }
    )


@router.post(API + "/members")
async def api_create_member(
    request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    body = await parse_body(request, MemberCreate)
    r = await widget.create_member(ctx, body.institution_code, body.credentials, body.is_oauth)
    return JSONResponse(_result_view(ctx, request, r), status_code=202 if r.job else 200)


@router.get(API + "/members/{member_guid}")
async def api_member(
    member_guid: str, request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    return JSONResponse(_result_view(ctx, request, await widget.load_member(ctx, member_guid)))


@router.get(API + "/members/{member_guid}/oauth_window_uri")
async def api_oauth_window_uri(
    member_guid: str, request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    """A link to the institution's OAuth step, for any OAuth member (MX's endpoint)."""
    return JSONResponse(_result_view(ctx, request, await widget.open_oauth(ctx, member_guid)))


@router.put(API + "/members/{member_guid}/credentials")
async def api_update_credentials(
    member_guid: str, request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    body = await parse_body(request, CredentialsUpdate)
    r = await widget.update_credentials(ctx, member_guid, body.credentials)
    return JSONResponse(_result_view(ctx, request, r))


@router.put(API + "/members/{member_guid}/resume")
async def api_resume(
    member_guid: str, request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    body = await parse_body(request, Answers)
    r = await widget.answer_challenges(ctx, member_guid, body.challenges)
    return JSONResponse(_result_view(ctx, request, r), status_code=202)


@router.post(API + "/members/{member_guid}/retry")
async def api_retry(
    member_guid: str, request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    r = await widget.retry(ctx, member_guid)
    return JSONResponse(_result_view(ctx, request, r), status_code=202 if r.started else 200)


@router.get(API + "/members/{member_guid}/accounts")
async def api_accounts(
    member_guid: str, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    member, inst, rows = await widget.accounts(ctx, member_guid)
    return JSONResponse(
        {
            "accounts": [
                wire.account(a, user=ctx.user, member=member, institution=inst) for a in rows
            ]
        }
    )


@router.delete(API + "/members/{member_guid}")
async def api_delete_member(
    member_guid: str, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    await widget.delete_member(ctx, member_guid)
    return no_content()


# --- "Upload a statement file" (docs/imports.md) -------------------------------------------


@router.post(API + "/imports")
async def api_import(
    request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    """A statement file into a managed member of the session's user: the import of
    ``POST /users/{guid}/imports``, with what the widget shows of it."""
    if ctx.verification:
        # A file the end user uploads proves nothing about who owns the account.
        raise Unprocessable("A statement file can't verify an account: connect the bank.")
    data, sent_name = await read_upload(request)
    params = request.query_params
    options = imports.ImportOptions(
        format=params.get("format") or None, filename=params.get("filename") or sent_name
    )
    record, member = await imports.import_file(ctx.rt, ctx.client, ctx.user.guid, data, options)
    body = import_body(record, member.guid)["import"]
    # Every transaction of the file is one of these: how many the file holds.
    body["transaction_count"] = sum(
        body[f"transactions_{k}"] for k in ("added", "updated", "unchanged")
    )
    return JSONResponse(
        {"import": body, "member": {"guid": member.guid, "name": member.name}}, status_code=201
    )


# --- "Use this connection in another app" (docs/simplefin.md) -----------------------------


@router.post(API + "/simplefin_token")
async def api_simplefin_token(
    request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    """A SimpleFIN setup token for the session's own user, when the app allowed it
    (``enable_simplefin_token``): the one answer that shows it. Nothing to choose:
    a body, if any, is an empty object (no way to name another user)."""
    if (await request.body()).strip():
        await parse_body(request, NoFields)
    new = await simplefin.create_widget_token(ctx)
    return JSONResponse(
        {"simplefin_token": token_body(request, new)},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


# --- "Report a problem" (OpenAgg's support tickets, docs/support.md) ---------------------


class ProblemReport(Strict):
    problem: Literal["not_connecting", "wrong_data", "other"]
    details: StrictStr | None = Field(default=None, max_length=3000)


class LoginInfoAnswers(Strict):
    answers: list[CredentialValue] = Field(min_length=1, max_length=20)


def _origin(request: Request) -> Origin:
    return Origin.current(client_address(request))


@router.get(API + "/members/{member_guid}/support_tickets/open")
async def api_open_ticket(
    member_guid: str, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    view = await widget.open_ticket(ctx, member_guid)
    return JSONResponse({"support_ticket": view.wire() if view else None})


@router.post(API + "/members/{member_guid}/support_tickets")
async def api_report_problem(
    member_guid: str, request: Request, ctx: widget.WidgetContext = Depends(widget_session)
) -> Response:
    body = await parse_body(request, ProblemReport)
    report = await widget.report_problem(
        ctx, member_guid, body.problem, body.details, _origin(request)
    )
    # 200 when the report was added to the member's open ticket, 201 for a new one.
    return JSONResponse(
        {"support_ticket": report.ticket.wire(), "joined": report.joined},
        status_code=200 if report.joined else 201,
    )


@router.put(API + "/members/{member_guid}/support_tickets/{ticket_guid}/additional_login_info")
async def api_answer_login_info(
    member_guid: str,
    ticket_guid: str,
    request: Request,
    ctx: widget.WidgetContext = Depends(widget_session),
) -> Response:
    body = await parse_body(request, LoginInfoAnswers)
    view = await widget.answer_login_info(
        ctx, member_guid, ticket_guid, body.answers, _origin(request)
    )
    return JSONResponse({"support_ticket": view.wire()})


# --- the demo host page ------------------------------------------------------------------

DEMO_USER_ID = "demo-user"


def _demo_enabled(rt: Runtime) -> bool:
    return rt.settings.widget_demo


async def _demo_client(rt: Runtime) -> Client:
    """The client `openagg serve --demo` created (its id is in demo-client.json)."""
    path = rt.settings.data_dir / "demo-client.json"
    if not path.exists():
        raise NotFound("No demo client: start the server with `openagg serve --demo`.")
    client_id = json.loads(path.read_text())["client_id"]
    async with rt.db.read() as s:
        client = await s.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise NotFound("The demo client in demo-client.json is not in this database.")
    return client


@router.get("/demo")
async def demo_page(request: Request) -> Response:
    if not _demo_enabled(runtime(request)):
        raise NotFound()
    return HTMLResponse(_asset("demo.html"), headers=_DEMO_HEADERS)


@router.post("/demo/widget_url")
async def demo_widget_url(request: Request) -> Response:
    """What an app's backend does: find or create its user, ask for a widget URL."""
    rt = runtime(request)
    if not _demo_enabled(rt):
        raise NotFound()
    client = await _demo_client(rt)
    async with rt.db.read() as s:
        user = await s.scalar(
            select(User).where(User.client_id == client.id, User.external_id == DEMO_USER_ID)
        )
    if user is None:
        user = await create_user(rt, client, UserFields(id=DEMO_USER_ID))
    body = await parse_body(request, widget.WidgetUrlBody)
    url, _ = await _new_url(request, client, user.guid, body.widget_url)
    return mx({"widget_url": wire.widget_url(url, widget_type=widget.CONNECT_WIDGET, user=user)})
