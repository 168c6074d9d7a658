"""OpenAgg as a SimpleFIN server (docs/simplefin.md).

Two faces: the client's backend manages setup tokens under
``/users/{guid}/simplefin_tokens`` (MX-style auth; an OpenAgg extension), and budget
apps speak the SimpleFIN protocol under ``/simplefin`` on the public URL: ``/info``,
``/create``, ``POST /claim/{claim_token}`` and ``GET /accounts`` with the access URL's Basic
credentials. ``/simplefin/fix/...`` is the link the ``errors`` give to fix a
connection in the Connect widget.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from fastapi import Depends, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from openagg.api.http import (
    current_client,
    decode_basic,
    error,
    mx,
    no_content,
    parse_body,
    runtime,
)
from openagg.api.list_cache import ListCache
from openagg.api.routing import Router
from openagg.db.models import Client
from openagg.services import simplefin
from openagg.services.errors import BadRequest, Forbidden
from openagg.services.inputs import Strict
from openagg.wire.simplefin import (
    account_v1,
    account_v2,
    connection,
    errlist_v2,
    errors_v1,
    simplefin_token,
)

router = Router()

ROOT = "/simplefin"
# Financial data and secrets: no cache anywhere may keep them.
_PRIVATE = {"Cache-Control": "no-store"}
_EPOCH = re.compile(r"^-?\d{1,12}(\.\d+)?$")


class _TokenFields(Strict):
    """Nothing to choose yet: the token is for the user in the path."""


class _TokenBody(Strict):
    simplefin_token: _TokenFields | None = None


def public_base(request: Request) -> str:
    """The platform's public URL (``OPENAGG_PUBLIC_URL``), else the request's own."""
    return runtime(request).settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


# --- setup tokens: the client's backend ------------------------------------------------


@router.post("/users/{user_guid}/simplefin_tokens")
async def create_token(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    if (await request.body()).strip():
        await parse_body(request, _TokenBody)
    body = await new_token_body(request, client, user_guid, created_by="API")
    return mx({"simplefin_token": body}, 201)


async def new_token_body(
    request: Request, client: Client, user_guid: str, *, created_by: simplefin.TokenOrigin
) -> dict[str, Any]:
    """A new setup token for the user, with its secret (the token and the claim URL):
    the one answer that ever shows them. The developer portal makes them too."""
    rt = runtime(request)
    made = await simplefin.create_token(rt, client, user_guid, created_by=created_by)
    return token_body(request, made)


def token_body(request: Request, new: simplefin.NewToken) -> dict[str, Any]:
    """A token just made, with its secret (the Connect widget makes them too)."""
    rt = runtime(request)
    claim_url = f"{public_base(request)}{ROOT}/claim/{new.claim_code}"
    secret_fields = {
        "token": base64.b64encode(claim_url.encode()).decode(),
        "claim_url": claim_url,
    }
    return simplefin_token(new.token, new.user.guid, rt.now(), secret_fields=secret_fields)


@router.get("/users/{user_guid}/simplefin_tokens")
async def list_tokens(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    rt = runtime(request)
    tokens = await simplefin.list_tokens(rt, client, user_guid)
    return mx({"simplefin_tokens": [simplefin_token(t, user_guid, rt.now()) for t in tokens]})


@router.delete("/users/{user_guid}/simplefin_tokens/{guid}")
async def revoke_token(
    user_guid: str, guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    await simplefin.revoke_token(runtime(request), client, user_guid, guid)
    return no_content()


# --- the SimpleFIN protocol: budget apps -----------------------------------------------


@router.get(f"{ROOT}/info")
async def info() -> Response:
    # One line: Sure splits this body on newlines.
    return Response(orjson.dumps({"versions": ["1.0"]}), media_type="application/json")


@router.get(f"{ROOT}/create")
async def create() -> Response:
    return PlainTextResponse(
        "OpenAgg gives SimpleFIN tokens through the app you connected your accounts with: "
        "ask it for a SimpleFIN token, then paste that token into your budget app.\n"
    )


# The path parameter's name has "token" in it: the request log hides its value.
@router.post(f"{ROOT}/claim/{{claim_token}}")
async def claim(claim_token: str, request: Request) -> Response:
    username, password = await simplefin.claim(runtime(request), claim_token)
    parts = urlsplit(public_base(request))
    access_url = urlunsplit(
        (parts.scheme, f"{username}:{password}@{parts.netloc}", parts.path + ROOT, "", "")
    )
    return PlainTextResponse(access_url, headers=_PRIVATE)


def _basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Forbidden("This request needs the access URL's credentials (HTTP Basic).")
    decoded = decode_basic(encoded)
    if decoded is None:
        raise Forbidden("Malformed Basic authorization header.")
    return decoded


def _epoch(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not _EPOCH.match(value):
        raise BadRequest(f"'{name}' must be a UNIX timestamp in seconds, not '{value[:40]}'.")
    return math.floor(float(value))


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None or value.lower() in ("0", "false", ""):
        return False
    if value.lower() in ("1", "true"):
        return True
    raise BadRequest(f"'{name}' must be 1 or 0, not '{value[:40]}'.")


def _version(request: Request) -> int:
    value = request.query_params.get("version")
    if value in (None, "", "1"):
        return 1
    if value == "2":
        return 2
    raise BadRequest(f"'version' must be 1 or 2, not '{value[:40]}'.")


def _accounts_query(request: Request) -> simplefin.AccountsQuery:
    return simplefin.AccountsQuery(
        start=_epoch(request, "start-date"),
        end=_epoch(request, "end-date"),
        # Present at all, as the Bridge reads it (Sure sends it only when it wants them).
        pending="pending" in request.query_params,
        balances_only=_flag(request, "balances-only"),
        accounts=tuple(a for a in request.query_params.getlist("account") if a),
    )


@router.get(f"{ROOT}/accounts")
async def accounts(request: Request) -> Response:
    query, shape = _accounts_query(request), _version(request)
    rt = runtime(request)
    username, password = _basic_credentials(request)
    try:
        access = await simplefin.open_access(rt, username, password)
    except simplefin.RateLimited as exc:
        return error(429, exc.message, {"Retry-After": str(exc.retry_after)})
    query = simplefin.with_default_window(query, rt.now())
    sfin_url = f"{public_base(request)}{ROOT}"
    # Apps ask the same again and again; the bytes are served again while the
    # account set's version (read from the database each time) is unchanged.
    cache: ListCache = request.app.state.list_cache
    key = ("simplefin", access.token_id, query, shape, sfin_url)
    found = await simplefin.read_account_set(
        rt, access, query, sfin_url=sfin_url, cached=lambda version: cache.get(key, version)
    )
    if isinstance(found, bytes):
        body = found
    else:
        body = orjson.dumps(_account_set(found, shape))
        cache.put(key, found.version, body)
    return Response(body, media_type="application/json", headers=_PRIVATE)


def _account_set(found: simplefin.AccountSet, shape: int) -> dict[str, Any]:
    if shape == 2:
        return {
            "errlist": errlist_v2(found.connections, found.missing_accounts),
            "connections": [connection(c) for c in found.connections],
            "accounts": [account_v2(a, c, txns) for a, c, txns in found.accounts],
        }
    return {
        "errors": errors_v1(found.connections, found.missing_accounts),
        "x-api-message": [],
        "accounts": [account_v1(a, c, txns) for a, c, txns in found.accounts],
    }


@router.get(f"{ROOT}/fix/{{token_guid}}/{{member_guid}}/{{signature}}")
async def fix_connection(
    token_guid: str, member_guid: str, signature: str, request: Request
) -> Response:
    new = await simplefin.open_fix_link(runtime(request), token_guid, member_guid, signature)
    return RedirectResponse(f"{public_base(request)}/connect/{new.url_token}", status_code=303)
