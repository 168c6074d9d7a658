"""What wraps every request: an id, an unexpected error's 500, and the request log.

- The id is the caller's ``X-Request-Id`` when it is sane, else a new one. It tags the
  request's log lines and comes back in the response header.
- An unexpected error becomes a logged 500 in the error envelope, with the request id
  and ``Connection: close``: the server then ends the connection cleanly, and the
  client's next request opens a new one instead of meeting a connection reset.
- With ``OPENAGG_LOG_REQUESTS`` (``serve --log-requests``), one line per request after
  its answer: method, path, status, duration (the line carries the request id). The
  query string is left out (an OAuth callback's ``code``, for one, is a secret), and so
  is any path segment that is a token (``/connect/<url_token>``, ``/oauth/start/<token>``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openagg import logs
from openagg.api.http import error

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
HIDDEN = "[token]"
log = logging.getLogger("openagg.api")
access = logging.getLogger("openagg.access")


# Path parameters whose values are secrets (a widget URL's or a SimpleFIN claim's
# token, a signed link's signature): the log shows HIDDEN instead.
_SECRET_PARAMS = ("token", "signature")


def logged_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    for name, value in (scope.get("path_params") or {}).items():
        if any(s in name for s in _SECRET_PARAMS) and isinstance(value, str) and value:
            path = path.replace(value, HIDDEN)
    return path


class RequestIds:
    """Plain ASGI middleware (cheaper than BaseHTTPMiddleware on the hot paths)."""

    def __init__(self, app: ASGIApp, log_requests: bool = False) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == HEADER), b"")
        rid = given if _SANE.fullmatch(given) else uuid.uuid4().hex.encode()
        token = logs.request_id.set(rid.decode())
        started = time.perf_counter()
        status = 0  # stays 0 when no answer started (the connection was dropped)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            if status:
                raise  # half an answer is out: only dropping the connection is left
            response = error(500, "Internal server error.", {"Connection": "close"})
            await response(scope, receive, send_with_id)
        finally:
            if self.log_requests:
                ms = (time.perf_counter() - started) * 1000
                access.info("%s %s %d %.1fms", scope["method"], logged_path(scope), status, ms)
            logs.request_id.reset(token)
