"""What the platform's own web pages share: their files, strict headers, and the
cookie sessions of the engineer console and the developer portal.

Pages are plain HTML, JS modules and CSS shipped in a package (no CDN, no build
step); the strict CSP lets them run only their own files.
"""

from __future__ import annotations

import functools
import hashlib
import html
import string
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from openagg import __version__
from openagg.api.http import runtime
from openagg.api.routing import Router
from openagg.services import web_sessions
from openagg.services.errors import Forbidden, NotFound

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'",
}
# Pages behind a login must not be framed by another site (clickjacking).
PRIVATE_PAGE_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
CSRF_HEADER = "x-csrf-token"
_SHARED = "openagg.assets"
_SHARED_ASSETS = {
    "dom.js",
    "login.js",
    # The OAuth callback page's message to the widget that opened it.
    "oauth-complete.js",
    "theme.css",
    "home.css",
    "docs.css",
    "favicon.svg",
    # The sandbox institutions' logos.
    "logo-mxbank.svg",
    "logo-sandbox_bank.svg",
}

router = Router()


def read_asset(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


@functools.cache
def _versioned_asset(package: str, name: str) -> tuple[str, str]:
    """A file's text and its ETag (files change only with an upgrade, i.e. a restart)."""
    text = read_asset(package, name)
    return text, '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def static_asset(package: str, name: str, allowed: set[str], request: Request) -> Response:
    """One of a page's own files, by name; anything not listed is a 404.

    Browsers revalidate every time (a 304 when unchanged), so after an upgrade a page
    never runs old JS against the new API."""
    if name not in allowed:
        raise NotFound()
    text, etag = _versioned_asset(package, name)
    headers = {"Cache-Control": "no-cache", "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    media_type = _MEDIA_TYPES.get(name[name.rfind(".") :], "application/octet-stream")
    return Response(text, media_type=media_type, headers=headers)


@router.get("/assets/{name}")
async def shared_asset(name: str, request: Request) -> Response:
    """What the widget, the console and the portal share (``openagg/assets``)."""
    return static_asset(_SHARED, name, _SHARED_ASSETS, request)


@router.get("/favicon.svg")
@router.get("/favicon.ico")  # what browsers ask for on their own; an SVG serves them
async def favicon(request: Request) -> Response:
    return static_asset(_SHARED, "favicon.svg", _SHARED_ASSETS, request)


def _link(path: str | None, title: str, what: str) -> str:
    """One tile of the home page; without a path, a tile that says how to get it."""
    inner = f"<strong>{html.escape(title)}</strong><span>{what}</span>"
    if path is None:
        return f'    <li><div class="off">{inner}</div></li>'
    return f'    <li><a href="{html.escape(path)}">{inner}</a></li>'


@router.get("/")
async def home(request: Request) -> Response:
    """For a browser that opens the server's address: what runs here, where to go."""
    settings = runtime(request).settings
    served = {getattr(route, "path", None) for route in request.app.state.api_routes}
    links = [
        _link(
            "/demo" if settings.widget_demo else None,
            "Connect widget demo",
            "Connect a sandbox bank as an end user would."
            if settings.widget_demo
            else "Start the server with <code>openagg serve --demo</code> to try it.",
        ),
        _link("/portal", "Developer portal", "An app's support staff: their tickets."),
        _link("/console", "Engineer console", "The aggregation engineers' queue and incidents."),
        _link(
            "/docs" if "/docs" in served else None,
            "API documentation",
            "Every route, its parameters and answers."
            if "/docs" in served
            else "In <code>docs/</code> of the source.",
        ),
        _link("/healthz", "Health", "Whether this server reaches its database."),
        _link("/metrics", "Metrics", "Jobs, members and webhooks, for Prometheus."),
    ]
    # Never the Host header: the public URL when one is set, else words.
    api_base = (
        f"<code>{html.escape(settings.public_url)}</code>"
        if settings.public_url
        else "this server's address"
    )
    page = string.Template(read_asset(_SHARED, "home.html")).substitute(
        version=html.escape(__version__), api_base=api_base, links="\n".join(links)
    )
    return html_page(page)


def html_page(text: str, headers: dict[str, str] = PRIVATE_PAGE_HEADERS) -> HTMLResponse:
    return HTMLResponse(text, headers=headers)


def script_json(data: Any) -> str:
    """JSON safe to place inside a <script> element."""
    return orjson.dumps(data).decode().replace("<", "\\u003c").replace(">", "\\u003e")


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def login_throttle(request: Request) -> web_sessions.LoginThrottle:
    return web_sessions.LoginThrottle(runtime(request))


def set_session_cookie(
    response: Response, request: Request, cookie: str, path: str, token: str
) -> None:
    rt = runtime(request)
    secure = request.url.scheme == "https" or rt.settings.public_url.startswith("https:")
    response.set_cookie(
        cookie,
        token,
        max_age=rt.settings.web_session_ttl_seconds,
        path=path,
        httponly=True,
        secure=secure,
        samesite="strict",
    )


def clear_session_cookie(response: Response, cookie: str, path: str) -> None:
    response.delete_cookie(cookie, path=path, httponly=True, samesite="strict")


def session_guard(
    kind: web_sessions.Kind, cookie: str
) -> Callable[[Request], Awaitable[web_sessions.LoggedIn]]:
    """A dependency: the logged-in session; changes also need the CSRF header."""

    async def logged_in(request: Request) -> web_sessions.LoggedIn:
        found = await web_sessions.find_session(runtime(request), kind, request.cookies.get(cookie))
        if (
            request.method not in ("GET", "HEAD")
            and request.headers.get(CSRF_HEADER) != found.session.csrf_token
        ):
            raise Forbidden("This change is missing its CSRF token; reload the page.")
        return found

    return logged_in
