"""HTTP plumbing shared by the routes: MX's media type and error envelope, query
parsing the way MX's SDKs send it, request bodies, and Basic authentication."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from openagg import wire
from openagg.db.models import Client
from openagg.runtime import Runtime
from openagg.services.clients import authenticate
from openagg.services.errors import BadRequest, ServiceError, Unauthorized

MX_MEDIA_TYPE = "application/vnd.mx.api.v1+json; charset=utf-8"
M = TypeVar("M", bound=BaseModel)


class NotAcceptable(ServiceError):
    status_code = 406


def mx(body: dict[str, Any], status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type=MX_MEDIA_TYPE)


def mx_page(name: str, items: list[Any], page: int, per_page: int, total: int) -> Response:
    """A list in MX's envelope: ``{name: [...], "pagination": {...}}``."""
    return mx({name: items, "pagination": wire.pagination(page, per_page, total)})


def no_content() -> Response:
    return Response(status_code=204)


def error(status_code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps({"error": {"message": message}}),
        status_code=status_code,
        media_type=MX_MEDIA_TYPE,
        headers=headers,
    )


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def public_base(request: Request) -> str:
    """The platform's address as its users reach it: the public_url setting, or else
    the address this request came to."""
    return runtime(request).settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


def check_accept(request: Request) -> None:
    """406 only for an MX version we do not speak; a missing Accept is v1 (the SDK
    sends none on some deletes)."""
    accept = request.headers.get("accept", "")
    if "vnd.mx.api." in accept and "vnd.mx.api.v1" not in accept:
        raise NotAcceptable("This server speaks application/vnd.mx.api.v1+json.")


# Authenticated clients, so a request does not hash and query on every call.
_AUTH_TTL = 60.0


async def current_client(request: Request) -> Client:
    check_accept(request)
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized("Authentication required: HTTP Basic with client_id:api_key.")
    cache: dict[str, tuple[float, Client]] = request.app.state.auth_cache
    hit = cache.get(encoded)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    decoded = decode_basic(encoded)
    if decoded is None:
        raise Unauthorized("Malformed Basic authorization header.")
    client_id, api_key = decoded
    client = await authenticate(runtime(request), client_id, api_key)
    if client is None:
        raise Unauthorized("Invalid client_id or api_key.")
    if len(cache) > 10_000:
        cache.clear()
    cache[encoded] = (time.monotonic() + _AUTH_TTL, client)
    return client


def decode_basic(encoded: str) -> tuple[str, str] | None:
    """HTTP Basic's ``base64(user:password)`` as (user, password); None when malformed."""
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if not raw.strip():
        raise BadRequest("A JSON request body is required.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc)) from None


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field '{where}'")
        elif err["type"] == "missing":
            parts.append(f"missing field '{where}'")
        else:
            parts.append(f"'{where}': {err['msg']}")
    return "Invalid request body: " + "; ".join(parts) + "."


def callback_payload(request: Request) -> str | None:
    value = request.headers.get("x-callback-payload")
    if value is not None and len(value) > 1024:
        raise BadRequest("X-CALLBACK-PAYLOAD may be at most 1024 characters.")
    return value


# --- query strings -------------------------------------------------------------


def query_bool(request: Request, name: str) -> bool | None:
    """MX's Python SDK sends True/False capitalised; accept any case."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"Query parameter '{name}' must be true or false, not '{value}'.")


QUERY_INT_LIMIT = 2**31 - 1


def query_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' must be an integer, not '{value}'.") from None
    if not -QUERY_INT_LIMIT <= number <= QUERY_INT_LIMIT:
        # Larger values overflow the databases' integers (a 500 before).
        raise BadRequest(f"Query parameter '{name}' must be at most {QUERY_INT_LIMIT}.")
    return number


def query_date(request: Request, name: str) -> dt.date | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' must be a date like 2024-12-31.") from None


USE_CASES = ("MONEY_MOVEMENT", "PFM")


def query_use_case(request: Request) -> str | None:
    """MX's ``use_case`` filter: members whose ``use_cases`` hold it."""
    value = request.query_params.get("use_case")
    if not value:
        return None
    if value.upper() not in USE_CASES:
        raise BadRequest(
            f"Query parameter 'use_case' must be MONEY_MOVEMENT or PFM, not '{value}'."
        )
    return value.upper()


def use_case_pattern(use_case: str) -> str:
    """A LIKE pattern for a member's ``use_cases`` JSON list, as text (both databases)."""
    return f'%"{use_case}"%'


def query_list(request: Request, name: str) -> list[str]:
    """Repeated keys, with or without the ``[]`` suffix: ``a=1&a=2`` or ``a[]=1&a[]=2``."""
    params = request.query_params
    return [v for key in (name, f"{name}[]") for v in params.getlist(key) if v]


def paging(request: Request, max_per_page: int) -> tuple[int, int]:
    """MX's rules: default 25; over the cap falls back to 25; below 10 is raised to 10."""
    page = query_int(request, "page")
    per_page = query_int(request, "records_per_page")
    if page is None:
        page = 1
    if page < 1:
        raise BadRequest("Query parameter 'page' must be 1 or more.")
    if per_page is None or per_page > max_per_page:
        per_page = 25
    per_page = max(per_page, 10)
    return page, per_page
