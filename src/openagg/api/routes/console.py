"""The engineer console: one page for the platform's operators and its JSON API.

The page (``/console``) is static; it logs in through ``/console/api/login``, which
sets an HttpOnly, SameSite=Strict cookie scoped to ``/console`` and returns the CSRF
token every change must send back in ``X-CSRF-Token``. The API is thin over
``services/support/``, ``services/incidents.py`` and ``services/support_charts.py``
(docs/console.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictBool, StrictStr
from starlette.exceptions import HTTPException

from openagg import wire
from openagg.api.http import parse_body, query_int, runtime
from openagg.api.pages import (
    clear_session_cookie,
    client_address,
    html_page,
    json_response,
    login_throttle,
    read_asset,
    session_guard,
    set_session_cookie,
    static_asset,
)
from openagg.api.routing import Router
from openagg.db.models import Operator, SupportTicketEvent, WebSession
from openagg.services import incidents, operators, support, support_charts, web_sessions
from openagg.services.errors import BadRequest, Forbidden, ServiceError, Unauthorized
from openagg.services.inputs import Strict
from openagg.services.support import Prompt, TicketView

router = Router()

COOKIE = "openagg_console"
COOKIE_PATH = "/console"
_PACKAGE = "openagg.console"
_ASSETS = {"console.js", "charts.js", "console.css"}
_CSRF_HEADER = "x-csrf-token"
M = TypeVar("M", bound=BaseModel)


class UnsupportedMediaType(ServiceError):
    status_code = 415


# ------------------------------------------------------------------------ request bodies


class LoginBody(Strict):
    email: StrictStr = Field(min_length=1, max_length=320)
    password: StrictStr = Field(min_length=1, max_length=1000)


class PromptBody(Strict):
    label: StrictStr = Field(min_length=1, max_length=200)
    type: Literal["TEXT", "TOKEN", "OPTIONS"] = "TEXT"
    options: list[StrictStr] | None = Field(default=None, max_length=20)


class LoginInfoRequestBody(Strict):
    prompts: list[PromptBody] = Field(min_length=1, max_length=10)
    note: StrictStr | None = Field(default=None, max_length=2000)


class NoteBody(Strict):
    note: StrictStr | None = Field(default=None, max_length=2000)


class InvalidBody(Strict):
    note: StrictStr = Field(min_length=1, max_length=2000)


class ResolveBody(Strict):
    note: StrictStr | None = Field(default=None, max_length=2000)
    incident: StrictBool = False


class EmptyBody(Strict):
    pass


async def _body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """A JSON body (a form on another site cannot send one without CORS); an empty
    body stands for ``{}`` when every field is optional."""
    raw = await request.body()
    if not raw.strip():
        if optional:
            return model.model_validate({})
        raise BadRequest("A JSON request body is required.")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            "Send the request body as JSON (Content-Type: application/json)."
        )
    return await parse_body(request, model)


def _note(value: str | None) -> str | None:
    """A note as typed, or None when it is only blanks."""
    if value is None:
        return None
    return value.strip() or None


# ------------------------------------------------------------------------------ session


_guard = session_guard("operator", COOKIE)


async def current_operator(request: Request) -> web_sessions.LoggedIn:
    """The logged-in operator. A 401 here carries no Basic challenge (the app's
    handler adds one for API clients), so a browser never opens its password dialog."""
    try:
        return await _guard(request)
    except Unauthorized as exc:
        raise HTTPException(401, exc.message) from None


def _operator(logged_in: web_sessions.LoggedIn) -> Operator:
    assert logged_in.operator is not None  # the guard's kind is "operator"
    return logged_in.operator


def _session_body(operator: Operator, session: WebSession) -> dict[str, Any]:
    return {
        "operator": {"guid": operator.guid, "name": operator.name, "email": operator.email},
        "csrf_token": session.csrf_token,
        "expires_at": wire.iso(session.expires_at),
    }


# ---------------------------------------------------------------------------------- page


@router.get("/console")
async def console_page() -> Response:
    return html_page(read_asset(_PACKAGE, "index.html"))


@router.get("/console/static/{name}")
async def console_static(name: str, request: Request) -> Response:
    return static_asset(_PACKAGE, name, _ASSETS, request)


# -------------------------------------------------------------------------------- login


@router.post("/console/api/login")
async def login(request: Request) -> Response:
    body = await _body(request, LoginBody)
    rt = runtime(request)
    email = body.email.strip().lower()
    # Counted before the password is checked (429 while held back).
    throttle = login_throttle(request)
    attempt = await throttle.begin(client_address(request), f"operator:{email}")
    operator = await operators.authenticate_operator(rt, email, body.password)
    if operator is None:
        # One message for a wrong email, a wrong password and a disabled operator:
        # the answer must not tell which emails exist.
        raise HTTPException(401, "Wrong email or password.")
    await throttle.succeeded(attempt)
    opened = await web_sessions.open_session(
        rt, "operator", operator.id, address=client_address(request)
    )
    response = json_response(_session_body(operator, opened.session))
    set_session_cookie(response, request, COOKIE, COOKIE_PATH, opened.token)
    return response


@router.post("/console/api/logout")
async def logout(request: Request) -> Response:
    """Ends the session. Without a live session there is nothing to protect, so only
    a live one asks for the CSRF token; the cookie is cleared either way."""
    rt = runtime(request)
    token = request.cookies.get(COOKIE)
    try:
        found = await web_sessions.find_session(rt, "operator", token)
    except Unauthorized:
        found = None
    if found is not None:
        if request.headers.get(_CSRF_HEADER) != found.session.csrf_token:
            raise Forbidden("This change is missing its CSRF token; reload the page.")
        await web_sessions.close_session(rt, token)
    response = json_response({"logged_out": True})
    clear_session_cookie(response, COOKIE, COOKIE_PATH)
    return response


@router.get("/console/api/session")
async def session(logged_in: web_sessions.LoggedIn = Depends(current_operator)) -> Response:
    return json_response(_session_body(_operator(logged_in), logged_in.session))


# -------------------------------------------------------------------------------- queue


def _ticket(view: TicketView, now: dt.datetime) -> dict[str, Any]:
    body = view.wire()
    body["age_seconds"] = max(0.0, (now - view.ticket.created_at).total_seconds())
    body["verifying_since"] = wire.iso(view.ticket.verifying_since)
    return body


def _limit(request: Request, name: str, default: int, highest: int) -> int:
    value = query_int(request, name)
    if value is None:
        return default
    if not 1 <= value <= highest:
        raise BadRequest(f"Query parameter '{name}' must be between 1 and {highest}.")
    return value


@router.get("/console/api/queue")
async def queue(request: Request, _: web_sessions.LoggedIn = Depends(current_operator)) -> Response:
    rt = runtime(request)
    views = await support.queue(rt, limit=_limit(request, "limit", 200, 1000))
    now = rt.now()
    return json_response({"tickets": [_ticket(v, now) for v in views], "now": wire.iso(now)})


def _event(e: SupportTicketEvent) -> dict[str, Any]:
    return wire.support_ticket_event(e)


async def _detail(request: Request, guid: str, **extra: Any) -> Response:
    rt = runtime(request)
    view, events = await support.read_for_operator(rt, guid)
    t = view.ticket
    body = _ticket(view, rt.now())
    # The questions stay visible to the engineer until the answers are read; the
    # answers themselves only ever come from read_login_info.
    body["login_info"] = {
        "prompts": [
            {
                "label": p["label"],
                "type": p["type"],
                "options": [o["label"] for o in p.get("options") or []],
            }
            for p in t.aai_prompts or []
        ],
        "answers_waiting": t.aai_answers_enc is not None,
    }
    return json_response({"support_ticket": body, "history": [_event(e) for e in events], **extra})


@router.get("/console/api/tickets/{guid}")
async def ticket(
    guid: str, request: Request, _: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    return await _detail(request, guid)


@router.post("/console/api/tickets/{guid}/take")
async def take(
    guid: str, request: Request, logged_in: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    await _body(request, EmptyBody, optional=True)
    await support.take(runtime(request), _operator(logged_in), guid)
    return await _detail(request, guid)


@router.post("/console/api/tickets/{guid}/request_login_info")
async def request_login_info(
    guid: str, request: Request, logged_in: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    body = await _body(request, LoginInfoRequestBody)
    prompts = []
    for p in body.prompts:
        options = tuple(o.strip() for o in p.options or [] if o.strip())
        if len(set(options)) != len(options):
            raise BadRequest(f"The options of '{p.label}' repeat themselves.")
        prompts.append(Prompt(p.label.strip(), p.type, options))
    await support.request_login_info(
        runtime(request), _operator(logged_in), guid, prompts, _note(body.note)
    )
    return await _detail(request, guid)


@router.post("/console/api/tickets/{guid}/read_login_info")
async def read_login_info(
    guid: str, request: Request, logged_in: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    """The end user's answers, once: they are erased as they are read (never logged)."""
    await _body(request, EmptyBody, optional=True)
    answers = await support.read_login_info(runtime(request), _operator(logged_in), guid)
    return json_response(
        {"answers": [{"label": label, "value": value} for label, value in answers.items()]}
    )


@router.post("/console/api/tickets/{guid}/escalate")
async def escalate(
    guid: str, request: Request, logged_in: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    body = await _body(request, NoteBody, optional=True)
    await support.escalate_internally(
        runtime(request), _operator(logged_in), guid, _note(body.note)
    )
    return await _detail(request, guid)


@router.post("/console/api/tickets/{guid}/invalid")
async def mark_invalid(
    guid: str, request: Request, logged_in: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    body = await _body(request, InvalidBody)
    note = _note(body.note)
    if note is None:
        raise BadRequest("Say why the ticket is invalid (note).")
    await support.mark_invalid(runtime(request), _operator(logged_in), guid, note)
    return await _detail(request, guid)


@router.post("/console/api/tickets/{guid}/resolve")
async def resolve(
    guid: str, request: Request, logged_in: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    body = await _body(request, ResolveBody, optional=True)
    result = await support.resolve(
        runtime(request),
        _operator(logged_in),
        guid,
        incident=body.incident,
        note=_note(body.note),
    )
    resolution = {
        "verifying": result.tickets,
        "reopened": result.reopened,
        "jobs_started": result.jobs_started,
    }
    return await _detail(request, guid, resolution=resolution)


# ---------------------------------------------------------------- incidents and charts


@router.get("/console/api/incidents")
async def list_incidents(
    request: Request, _: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    found = await incidents.incidents(runtime(request), limit=_limit(request, "limit", 50, 500))
    return json_response(
        {
            "incidents": [
                {
                    "institution_code": i.institution_code,
                    "institution_name": i.institution_name,
                    "cause": i.cause,
                    "impact": i.impact,
                    "affected_users": i.affected_users,
                    "failing_members": i.failing_members,
                    "open_tickets": i.open_tickets,
                    "ticket_guids": i.ticket_guids,
                    "broken_since": wire.iso(i.broken_since),
                }
                for i in found
            ]
        }
    )


@router.get("/console/api/long_tail")
async def list_long_tail(
    request: Request, _: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    rt = runtime(request)
    found = await incidents.long_tail(rt)
    return json_response(
        {
            "max_users": rt.settings.support_long_tail_max_users,
            "institutions": [
                {
                    "institution_code": i.institution_code,
                    "institution_name": i.institution_name,
                    "users": i.users,
                    "failing_members": i.failing_members,
                    "open_tickets": i.open_tickets,
                    "causes": i.causes,
                    "ticket_guids": i.ticket_guids,
                }
                for i in found
            ],
        }
    )


def _bucket(b: support_charts.Bucket) -> dict[str, Any]:
    return {
        "label": b.label,
        "min_seconds": b.min_seconds,
        "max_seconds": b.max_seconds,
        "count": b.count,
    }


@router.get("/console/api/charts")
async def charts(
    request: Request, _: web_sessions.LoggedIn = Depends(current_operator)
) -> Response:
    top = support_charts.MAX_DAYS
    c = await support_charts.charts(
        runtime(request),
        days=_limit(request, "days", 30, top),
        failure_window_days=_limit(request, "failure_window_days", 7, top),
    )
    q = c.queue_age
    return json_response(
        {
            "generated_at": wire.iso(c.generated_at),
            "open_tickets": {
                "days": c.days,
                "points": [
                    {"day": d.day.isoformat(), "open_tickets": d.open_tickets}
                    for d in c.open_tickets
                ],
            },
            "time_to_resolution": {
                "median_seconds": c.resolution_median_seconds,
                "p90_seconds": c.resolution_p90_seconds,
                "weeks": [
                    {
                        "start": wire.iso(w.start),
                        "end": wire.iso(w.end),
                        "closed": w.closed,
                        "median_seconds": w.median_seconds,
                        "p90_seconds": w.p90_seconds,
                    }
                    for w in c.resolution_weeks
                ],
                "histogram": [_bucket(b) for b in c.resolution_histogram],
            },
            "failure_rates": {
                "window_days": c.failure_window_days,
                "institutions": [
                    {
                        "institution_code": f.institution_code,
                        "institution_name": f.institution_name,
                        "attempts": f.attempts,
                        "failures": f.failures,
                        "end_user_failures": f.end_user_failures,
                        "failure_rate": f.failure_rate,
                    }
                    for f in c.failure_rates
                ],
            },
            "queue_age": {
                "open_tickets": q.open_tickets,
                "in_queue": q.in_queue,
                "buckets": [_bucket(b) for b in q.buckets],
                "oldest": None
                if q.oldest_guid is None
                else {
                    "guid": q.oldest_guid,
                    "status": q.oldest_status,
                    "age_seconds": q.oldest_age_seconds,
                },
            },
        }
    )
