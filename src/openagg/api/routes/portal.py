"""The developer portal: a client's support staff log in with the client's client_id
and api_key and read the client's support tickets (docs/portal.md).

One page (``GET /portal``) and its own files; a JSON API under ``/portal/api`` behind
a cookie session (``services/web_sessions.py``). The portal changes no ticket: its
writes are logging out and making a SimpleFIN setup token for a user (both need the
CSRF header). Tickets are serialised by ``wire/`` like the MX-style client API, so
the portal shows exactly the status, queue position and estimate the end user sees.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import Field, StrictStr

from openagg import wire
from openagg.api.http import paging, parse_body, query_date, query_list, runtime
from openagg.api.pages import (
    clear_session_cookie,
    client_address,
    html_page,
    json_response,
    login_throttle,
    read_asset,
    script_json,
    session_guard,
    set_session_cookie,
    static_asset,
)
from openagg.api.routes.simplefin import new_token_body
from openagg.api.routing import Router
from openagg.db.models import Client
from openagg.services import support, web_sessions
from openagg.services.clients import authenticate
from openagg.services.errors import BadRequest, ServiceError, Unauthorized
from openagg.services.inputs import Strict


class _PortalRoute(APIRoute):
    """Errors as plain JSON. The API's 401 carries ``WWW-Authenticate: Basic``, which
    would make a browser pop up its own login box over the page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                return json_response({"error": {"message": exc.message}}, exc.status_code)

        return run


router = Router(route_class=_PortalRoute)

COOKIE = "openagg_portal"
PATH = "/portal"
API = PATH + "/api"
_PACKAGE = "openagg.portal"
_ASSETS = {"portal.js", "words.js", "portal.css"}
MAX_PER_PAGE = 100

logged_in = session_guard("client", COOKIE)


def _client(found: web_sessions.LoggedIn) -> Client:
    assert found.client is not None  # a "client" session always has one
    return found.client


def _session_body(client: Client, csrf_token: str) -> dict[str, Any]:
    return {
        "client": {"client_id": client.client_id, "name": client.name},
        "csrf_token": csrf_token,
    }


# --- the page -----------------------------------------------------------------------


@router.get(PATH)
async def portal_page(request: Request) -> Response:
    # The page starts logged in when the cookie is good (no flash of the login form).
    boot: dict[str, Any] = {"session": None}
    token = request.cookies.get(COOKIE)
    if token:
        try:
            found = await web_sessions.find_session(runtime(request), "client", token)
            boot["session"] = _session_body(_client(found), found.session.csrf_token)
        except Unauthorized as exc:
            boot["message"] = exc.message
    return html_page(read_asset(_PACKAGE, "index.html").replace("{{BOOT}}", script_json(boot)))


@router.get(PATH + "/static/{name}")
async def portal_asset(name: str, request: Request) -> Response:
    return static_asset(_PACKAGE, name, _ASSETS, request)


# --- logging in and out ---------------------------------------------------------------


class Login(Strict):
    client_id: StrictStr = Field(min_length=1, max_length=64)
    api_key: StrictStr = Field(min_length=1, max_length=256)


@router.post(API + "/login")
async def login(request: Request) -> Response:
    # JSON only: a cross-site HTML form cannot send it, so no one logs a browser in
    # to their own account behind its user's back.
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise BadRequest("Send the login as JSON (Content-Type: application/json).")
    body = await parse_body(request, Login)
    rt = runtime(request)
    throttle = login_throttle(request)
    client_id = body.client_id.strip()
    # Counted before the key is checked (429 while held back).
    attempt = await throttle.begin(client_address(request), f"client:{client_id}")
    client = await authenticate(rt, client_id, body.api_key)
    if client is None:
        raise Unauthorized("Wrong client_id or api_key. Use the pair your app's backend uses.")
    await throttle.succeeded(attempt)
    opened = await web_sessions.open_session(
        rt, "client", client.id, address=client_address(request)
    )
    response = json_response(_session_body(client, opened.session.csrf_token))
    set_session_cookie(response, request, COOKIE, PATH, opened.token)
    return response


@router.post(API + "/logout")
async def logout(request: Request, _: web_sessions.LoggedIn = Depends(logged_in)) -> Response:
    await web_sessions.close_session(runtime(request), request.cookies.get(COOKIE))
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    clear_session_cookie(response, COOKIE, PATH)
    return response


@router.get(API + "/session")
async def session(found: web_sessions.LoggedIn = Depends(logged_in)) -> Response:
    return json_response(_session_body(_client(found), found.session.csrf_token))


# --- SimpleFIN setup tokens -------------------------------------------------------------


@router.post(API + "/users/{user_guid}/simplefin_tokens")
async def simplefin_token(
    user_guid: str, request: Request, found: web_sessions.LoggedIn = Depends(logged_in)
) -> Response:
    """For support staff helping a user connect a budget app (docs/simplefin.md)."""
    body = await new_token_body(request, _client(found), user_guid.strip(), created_by="PORTAL")
    return json_response({"simplefin_token": body}, 201)


# --- tickets --------------------------------------------------------------------------


@router.get(API + "/tickets")
async def tickets(request: Request, found: web_sessions.LoggedIn = Depends(logged_in)) -> Response:
    q = request.query_params
    page, per_page = paging(request, MAX_PER_PAGE)
    order = q.get("order") or "newest"
    if order not in ("newest", "oldest"):
        raise BadRequest("Query parameter 'order' must be newest or oldest.")
    views, total = await support.list_client_tickets(
        runtime(request),
        _client(found),
        statuses=query_list(request, "status"),
        institution_code=q.get("institution_code") or None,
        channel=q.get("channel") or None,
        from_date=query_date(request, "from_date"),
        to_date=query_date(request, "to_date"),
        user_guid=q.get("user_guid") or None,
        member_guid=q.get("member_guid") or None,
        newest_first=order == "newest",
        page=page,
        per_page=per_page,
    )
    return json_response(
        {
            "support_tickets": [v.wire() for v in views],
            "pagination": wire.pagination(page, per_page, total),
        }
    )


@router.get(API + "/tickets/{ticket_guid}")
async def ticket(
    ticket_guid: str, request: Request, found: web_sessions.LoggedIn = Depends(logged_in)
) -> Response:
    t = await support.read_client_ticket(runtime(request), _client(found), ticket_guid)
    member = t.member
    return json_response(
        {
            # additional_login_info holds the engineer's questions only; answers are
            # sealed and never leave the platform except to the engineer, once.
            "support_ticket": t.view.wire(),
            "history": [wire.support_ticket_event(e) for e in t.events],
            "history_total": t.events_total,
            "member": None
            if member is None
            else {
                "guid": member.guid,
                "connection_status": member.connection_status,
                "is_being_aggregated": t.member_is_being_aggregated,
                "aggregated_at": wire.iso(member.aggregated_at),
                "successfully_aggregated_at": wire.iso(member.successfully_aggregated_at),
            },
        }
    )
