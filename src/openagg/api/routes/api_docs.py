"""The API's description: ``/openapi.json`` (no auth) and ``/docs``, a page rendered
from it on the server (no script, no CDN)."""

from __future__ import annotations

import html
import string
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from openagg import __version__
from openagg.api import openapi
from openagg.api.http import runtime
from openagg.api.pages import PAGE_HEADERS, html_page, read_asset
from openagg.api.routing import Router

router = Router()


def document(request: Request) -> dict[str, Any]:
    """Built once per process, from the routes this app serves."""
    state = request.app.state
    if getattr(state, "openapi", None) is None:
        state.openapi = openapi.build(state.api_routes, runtime(request).settings)
    doc: dict[str, Any] = state.openapi
    return doc


@router.get("/openapi.json")
async def openapi_json(request: Request) -> Response:
    return Response(orjson.dumps(document(request)), media_type="application/json")


@router.get("/docs")
async def docs_page(request: Request) -> Response:
    state = request.app.state
    if getattr(state, "docs_page", None) is None:
        state.docs_page = _render(document(request))
    page: str = state.docs_page
    return html_page(page, PAGE_HEADERS)


_METHODS = ("get", "post", "put", "delete")


def _render(doc: dict[str, Any]) -> str:
    """One section per tag; per operation its method, path, summary, parameters, body
    and answers."""
    by_tag: dict[str, list[str]] = {}
    shared = doc["components"].get("parameters", {})
    for path, item in doc["paths"].items():
        for method in _METHODS:
            if method in item:
                op = item[method]
                by_tag.setdefault(op.get("tags", ["other"])[0], []).append(
                    _operation(method, path, op, shared)
                )
    sections = [
        f'<section id="tag-{html.escape(tag)}"><h2>{html.escape(tag)}</h2>\n'
        + "\n".join(ops)
        + "</section>"
        for tag, ops in sorted(by_tag.items())
    ]
    nav = " ".join(f'<a href="#tag-{html.escape(t)}">{html.escape(t)}</a>' for t in sorted(by_tag))
    return string.Template(read_asset("openagg.assets", "docs.html")).substitute(
        version=html.escape(__version__),
        count=sum(len(v) for v in by_tag.values()),
        nav=nav,
        sections="\n".join(sections),
    )


def _operation(method: str, path: str, op: dict[str, Any], shared: dict[str, Any]) -> str:
    params = [
        shared.get(p["$ref"].rsplit("/", 1)[-1], {}) if "$ref" in p else p
        for p in op.get("parameters", [])
    ]
    rows = "".join(
        f"<li><code>{html.escape(p.get('name', '?'))}</code> "
        f"<span>{html.escape(p.get('in', ''))}</span></li>"
        for p in params
    )
    body = op.get("requestBody")
    body_line = ""
    if body:
        content: dict[str, Any] = body.get("content", {})
        kinds = ", ".join(html.escape(k) for k in content)
        first: dict[str, Any] = next(iter(content.values()), {})
        schema: dict[str, Any] = first.get("schema", {})
        name = schema.get("$ref", "").rsplit("/", 1)[-1]
        body_line = (
            f"<p><strong>Body</strong> {kinds}"
            f"{' <code>' + html.escape(name) + '</code>' if name else ''}"
            f"{'' if body.get('required') else ' (optional)'}</p>"
        )
    codes = " ".join(
        f'<span class="code c{html.escape(c[0])}">{html.escape(c)}</span>'
        for c in sorted(op.get("responses", {}))
    )
    auth = "" if op.get("security") != [] else ' <span class="open">no auth</span>'
    return (
        f'<details class="op"><summary><span class="m {method}">{method.upper()}</span> '
        f'<code>{html.escape(path)}</code><span class="s">{html.escape(op.get("summary", ""))}'
        f"</span>{auth}</summary>"
        f"<div>{'<ul>' + rows + '</ul>' if rows else ''}"
        f"{body_line}<p><strong>Answers</strong> {codes}</p></div></details>"
    )
