"""Health check, metrics, and the sandbox's stand-in for an institution's OAuth page."""

from __future__ import annotations

import html
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import text

from openagg import metrics
from openagg.api.http import runtime
from openagg.services import widget

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    async with runtime(request).db.read() as s:
        await s.execute(text("SELECT 1"))
    return JSONResponse({"status": "ok"})


@router.get("/metrics")
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format: this process's figures and the database's (no client data)."""
    rt = runtime(request)
    snapshot = await metrics.read_snapshot(rt.db, rt.now())
    return Response(metrics.render(snapshot), media_type=metrics.CONTENT_TYPE)


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>MX Bank (OAuth) - sign in</title></head><body>
<main><h1>MX Bank (OAuth)</h1><p>{msg}</p>{form}</main></body></html>"""


@router.get("/oauth/sandbox/{token}")
async def oauth_page(token: str, request: Request) -> Response:
    session = request.query_params.get(widget.OAUTH_SESSION_PARAM)
    query = f"?{urlencode({widget.OAUTH_SESSION_PARAM: session})}" if session else ""
    form = (
        f'<form method="post" action="/oauth/sandbox/{html.escape(token + query)}">'
        '<button type="submit">Authorize access</button></form>'
    )
    return HTMLResponse(_PAGE.format(msg="Allow the app to read your accounts?", form=form))


@router.post("/oauth/sandbox/{token}")
async def oauth_authorize(token: str, request: Request) -> Response:
    done = await widget.complete_oauth(
        runtime(request), token, request.query_params.get(widget.OAUTH_SESSION_PARAM)
    )
    if done.redirect_url:
        # MX's APP referral source: back to the app, with status and member_guid.
        return RedirectResponse(done.redirect_url, status_code=303)
    return HTMLResponse(_PAGE.format(msg="Done. You can close this window.", form=""))
