"""The app matches its routers in an order chosen for speed (api/app.py); that is
only safe while no path of one router could also match a route of another."""

from __future__ import annotations

import itertools
import re

from starlette.routing import compile_path

from openagg.api.app import ROUTE_MODULES


def test_no_two_routers_answer_the_same_path() -> None:
    routes = [
        (module.__name__, r.path, set(getattr(r, "methods", None) or ()))
        for module in ROUTE_MODULES
        for r in module.router.routes
    ]
    assert len(routes) > 90
    for (mod1, path1, methods1), (mod2, path2, methods2) in itertools.permutations(routes, 2):
        if mod1 == mod2 or not methods1 & methods2:
            continue
        concrete = re.sub(r"\{[^}]+\}", "X", path1)  # a path the first route answers
        pattern, _, _ = compile_path(path2)
        assert not pattern.match(concrete), f"{mod1} {path1} and {mod2} {path2}"
