"""Health check and metrics."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from openagg import metrics
from openagg.api.http import runtime
from openagg.api.routing import Router

router = Router()


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
