"""The routers every route module uses.

FastAPI (0.16x) finds a request's route by asking each included router in turn, and
each router tries every one of its routes, twice a request (once to choose the
router, once to handle it): with ~140 routes that cost more server CPU than a
repeated SimpleFIN answer's other work. A router here turns a path away at once when
its first segment is none its routes begin with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.routing import Match, get_route_path
from starlette.types import Scope


def first_segment(path: str) -> str:
    """``users`` of ``/users/USR-1/members``; "" of ``/``."""
    return path[1:].partition("/")[0]


class Router(APIRouter):
    """An APIRouter that answers "no match" at once for a path whose first segment
    none of its routes has. A route whose first segment is a parameter (or a route
    without a path) switches that off for its router."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._segments: frozenset[str] | None = None
        self._counted = -1  # how many routes _segments was computed from

    def _first_segments(self) -> frozenset[str] | None:
        if self._counted != len(self.routes):  # routes are added after construction
            self._counted = len(self.routes)
            found: set[str] = set()
            for route in self.routes:
                path = getattr(route, "path", None)
                segment = first_segment(path) if isinstance(path, str) else "{"
                if "{" in segment:
                    self._segments = None
                    return None
                found.add(segment)
            self._segments = frozenset(found)
        return self._segments

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        segments = self._first_segments()
        if (
            segments is not None
            and scope["type"] == "http"
            and first_segment(get_route_path(scope)) not in segments
        ):
            return Match.NONE, {}
        return super().matches(scope)
