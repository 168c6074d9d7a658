"""Requests whose path or query string carries a NUL byte (``%00``) get a 400 before
any route sees them: PostgreSQL cannot store or compare NUL in text, and SQLite
would store it. Bodies are checked where they are parsed (``services/inputs.Strict``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from openagg.api.http import error


class RefuseNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", "")
        ):
            response = error(400, "The address may not contain NUL (%00) characters.")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
