"""The baseline server for ``bench.transactions_list`` and ``bench.simplefin_serve``:
the same stack as OpenAgg
(FastAPI + uvicorn, a plain ``Response`` with MX's media type) serving a response
body captured from a real OpenAgg server, from memory, with no auth and no database.

    python -m bench.bare_app --body captured.json --port 8099
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

from openagg.api.http import MX_MEDIA_TYPE


def create_bare_app(body: bytes) -> FastAPI:
    app = FastAPI(title="bare", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/users/{user_guid}/transactions")
    async def transactions(user_guid: str) -> Response:
        return Response(body, media_type=MX_MEDIA_TYPE)

    @app.get("/simplefin/accounts")
    async def simplefin_accounts() -> Response:
        return Response(body, media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--body", type=Path, required=True, help="the response body to serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args(argv)
    # The same uvicorn settings as `openagg serve`.
    uvicorn.run(
        create_bare_app(a.body.read_bytes()),
        host=a.host,
        port=a.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
