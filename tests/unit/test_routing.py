"""Routers that turn away paths none of their routes can match (api/routing.py): the
app answers exactly as with FastAPI's own routers, 404 and 405 included."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import Scope

from openagg.api.app import ROUTE_MODULES
from openagg.api.routing import Router, first_segment


def _scope(path: str, method: str = "GET") -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_first_segment() -> None:
    assert first_segment("/users/USR-1/members") == "users"
    assert first_segment("/simplefin") == "simplefin"
    assert first_segment("/") == ""


def test_a_route_added_later_is_seen() -> None:
    router = Router()
    router.add_api_route("/a", lambda: None)
    assert router.matches(_scope("/b")) == (Match.NONE, {})
    router.add_api_route("/b", lambda: None)
    assert router._first_segments() == frozenset({"a", "b"})


def test_a_parameter_first_segment_switches_the_shortcut_off() -> None:
    router = Router()
    router.add_api_route("/a", lambda: None)
    router.add_api_route("/{anything}", lambda: None)
    assert router._first_segments() is None


def test_every_route_module_uses_it() -> None:
    assert all(isinstance(m.router, Router) for m in ROUTE_MODULES)


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    first, second = Router(), Router()

    @first.get("/items/{n}")
    async def item(n: int) -> dict[str, int]:
        return {"item": n}

    @second.post("/items")
    async def add() -> dict[str, str]:
        return {"added": "yes"}

    @second.get("/other")
    async def other() -> dict[str, str]:
        return {"other": "yes"}

    app.state.items_route = first.routes[0]
    app.include_router(first)
    app.include_router(second)
    return app


async def test_a_router_turns_away_other_first_segments_without_trying_its_routes(
    app: FastAPI,
) -> None:
    items = app.state.items_route
    tried: list[str] = []
    original = items.matches

    def counted(scope: Scope) -> tuple[Match, Scope]:
        tried.append(scope["path"])
        return original(scope)

    items.matches = counted
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/other")).status_code == 200
        assert tried == []
        assert (await client.get("/items/3")).status_code == 200
        assert "/items/3" in tried


async def test_the_app_answers_as_with_fastapis_routers(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/items/3")).json() == {"item": 3}
        assert (await client.post("/items")).json() == {"added": "yes"}
        assert (await client.get("/other")).json() == {"other": "yes"}
        assert (await client.get("/nothing")).status_code == 404
        assert (await client.delete("/other")).status_code == 405
        assert (await client.post("/items/3")).status_code == 405
