"""``--log-requests`` (``OPENAGG_LOG_REQUESTS``): one line per request, after its
answer: method, path, status, duration; the log line carries the request id. The
query string is left out (an OAuth callback's ``code``, for one, is a secret), and so
is any path segment that is a token (``/connect/<url_token>``, ``/oauth/start/<token>``)."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("openagg.access")
HIDDEN = "[token]"


def logged_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    for name, value in (scope.get("path_params") or {}).items():
        if "token" in name and isinstance(value, str) and value:
            path = path.replace(value, HIDDEN)
    return path


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            ms = (time.perf_counter() - started) * 1000
            # Status 0: the answer never started (the connection was dropped).
            log.info("%s %s %d %.1fms", scope["method"], logged_path(scope), status, ms)
