"""An unexpected error becomes a logged 500 in the error envelope, inside the request
id middleware (so it carries ``X-Request-Id``) and with ``Connection: close``: the
server then ends the connection cleanly, and the client's next request opens a new
one instead of meeting a connection reset."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openagg.api.http import error

log = logging.getLogger("openagg.api")


class CatchUnexpected:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unhandled error")
            if started:
                raise  # half an answer is out: only dropping the connection is left
            response = error(500, "Internal server error.", {"Connection": "close"})
            await response(scope, receive, send)
