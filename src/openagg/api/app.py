"""The ASGI application: MX-compatible routes, error envelopes, and (optionally) the
in-process worker and scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException

from openagg.api import pages
from openagg.api.body_limit import IMPORT_PATHS, LimitBodies
from openagg.api.http import error
from openagg.api.list_cache import ListCache
from openagg.api.nul_guard import RefuseNul
from openagg.api.request_ids import RequestIds
from openagg.api.routes import (
    api_docs,
    console,
    data,
    imports,
    institutions,
    managed,
    members,
    oauth,
    ops,
    portal,
    simplefin,
    support,
    users,
    widget,
)
from openagg.api.routes import webhooks as webhook_routes
from openagg.runtime import Runtime
from openagg.services.errors import ServiceError, TooManyRequests

log = logging.getLogger("openagg.api")
# Matched in this order, one route at a time: the hot reads (data) first. No two
# routers answer the same path (tests/unit/test_route_order.py), so the order
# changes nothing else.
ROUTE_MODULES = (
    data,
    members,
    managed,
    imports,
    users,
    institutions,
    ops,
    oauth,
    widget,
    webhook_routes,
    support,
    simplefin,
    console,
    portal,
    api_docs,
    pages,
)
_WEB_PAGES = ("/console", "/portal", "/connect")


def _allowed_methods(path: str) -> list[str]:
    """Every method some route answers on ``path`` (for a 405's Allow)."""
    found: set[str] = set()
    for route in (r for module in ROUTE_MODULES for r in module.router.routes):
        pattern, methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if pattern is not None and methods and pattern.match(path):
            found.update(methods)
    return sorted(found)


def _without_slash(request: Request) -> str | None:
    """Where a path with a trailing slash should go when only the path without it is
    served: relative (``/users?page=2``), so the Host header never reaches the
    ``Location``. None when nothing is served there, or for a path that would read as
    another host (``//host``)."""
    path = request.url.path
    if len(path) < 2 or not path.endswith("/"):
        return None
    target = path[:-1]
    if not target or target.startswith("//") or not _allowed_methods(target):
        return None
    query = request.url.query
    return target + ("?" + query if query else "")


def create_app(rt: Runtime, *, run_worker: bool = True, concurrency: int | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from openagg.engine.deliverer import run_deliverer
        from openagg.engine.scheduler import run_scheduler
        from openagg.engine.wakeup import listen_for_jobs
        from openagg.engine.worker import Worker

        stop = asyncio.Event()
        tasks = []
        if run_worker:
            tasks.append(asyncio.create_task(Worker(rt, concurrency).run(stop)))
            tasks.append(asyncio.create_task(run_scheduler(rt, stop)))
            # PostgreSQL: wake the worker at once when another process enqueues a job.
            tasks.append(asyncio.create_task(listen_for_jobs(rt, stop)))
            tasks.append(asyncio.create_task(run_deliverer(rt, stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await rt.db.dispose()

    app = FastAPI(
        title="OpenAgg",
        lifespan=lifespan,
        # /openapi.json and /docs are OpenAgg's own (routes/api_docs.py): FastAPI's
        # generated document cannot see the bodies and answers the handlers parse and build.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Starlette's redirect names the Host header's host; the 404 handler redirects
        # relatively instead (_without_slash).
        redirect_slashes=False,
    )
    app.state.runtime = rt
    app.state.auth_cache = {}
    app.state.list_cache = ListCache(rt.settings.list_cache_mb * 1024 * 1024)
    app.add_middleware(
        LimitBodies,
        max_bytes=rt.settings.max_body_bytes,
        large_bytes=rt.settings.import_max_bytes,
        large=IMPORT_PATHS,
    )
    app.add_middleware(RefuseNul)
    # Outermost of ours: the request id, an unexpected error's 500, the request log.
    app.add_middleware(RequestIds, log_requests=rt.settings.log_requests)
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    # Every route, flat: FastAPI's app.routes holds the included routers, not their routes.
    app.state.api_routes = [r for module in ROUTE_MODULES for r in module.router.routes]

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        # The Basic challenge is for API clients; on the web pages' own APIs a browser
        # would answer it with its password dialog.
        basic = exc.status_code == 401 and not request.url.path.startswith(_WEB_PAGES)
        headers = {"WWW-Authenticate": 'Basic realm="OpenAgg"'} if basic else {}
        if isinstance(exc, TooManyRequests) and exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return error(exc.status_code, exc.message, headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            if (target := _without_slash(request)) is not None:
                return Response(status_code=307, headers={"Location": target})
            return error(404, "We were unable to find the record you requested.", headers)
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path only.
            headers["Allow"] = ", ".join(_allowed_methods(request.url.path))
            return error(405, "This method is not allowed on this path.", headers)
        return error(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_r: Request, exc: RequestValidationError) -> Response:
        return error(400, f"Invalid request: {exc.errors()[0].get('msg', 'bad value')}.")

    @app.exception_handler(IntegrityError)
    async def integrity_error(_r: Request, exc: IntegrityError) -> Response:
        # Two requests raced to create the same thing; the database kept one.
        return error(409, "This conflicts with a record that already exists.")

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    # The direct SQLite reads (``Database.read_plan``) meet the driver's own errors.
    @app.exception_handler(sqlite3.OperationalError)
    # asyncpg lets a refused connection through as the OS error itself.
    @app.exception_handler(ConnectionError)
    async def database_error(_r: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", type(exc).__name__)
        return error(503, "The database is unavailable; try again shortly.", {"Retry-After": "5"})

    return app
