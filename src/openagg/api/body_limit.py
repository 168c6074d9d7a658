"""Request bodies larger than ``OPENAGG_MAX_BODY_BYTES`` get a 413 before they are
buffered: a declared ``Content-Length`` over the limit at once, without reading a
byte; a chunked body as soon as the bytes read so far pass it. The connection is
closed after the answer (the rest of the body is never read)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openagg.api.http import error

CLOSE = {"Connection": "close"}


def _too_large(limit: int) -> str:
    return f"The request body is too large: at most {limit} bytes."


# The paths of statement file uploads, which have their own limit (OPENAGG_IMPORT_MAX_BYTES).
IMPORT_PATHS = ("/imports",)


class LimitBodies:
    """``large`` paths (statement file imports: their suffix) take up to ``large_bytes``."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, large_bytes: int = 0, large: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.large_bytes = max(large_bytes, max_bytes)
        self.large = large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.large_bytes if scope["path"].endswith(self.large) else self.max_bytes
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await error(413, _too_large(limit), CLOSE)(scope, receive, send)
            return
        read = 0

        async def limited() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    # Raised in the route that reads; the app's handler answers it.
                    raise HTTPException(413, _too_large(limit), CLOSE)
            return message

        await self.app(scope, limited, send)
