"""/users"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response

from openagg import wire
from openagg.api.http import (
    current_client,
    mx,
    mx_page,
    no_content,
    paging,
    parse_body,
    query_bool,
    runtime,
)
from openagg.api.routing import Router
from openagg.db.models import Client
from openagg.services import users
from openagg.services.inputs import UserBody
from openagg.services.lookup import user_by_guid

router = Router()


@router.get("/users")
async def list_users(request: Request, client: Client = Depends(current_client)) -> Response:
    page, per_page = paging(request, 1000)
    q = request.query_params
    rows, total = await users.list_users(
        runtime(request),
        client,
        page=page,
        per_page=per_page,
        external_id=q.get("id"),
        email=q.get("email"),
        is_disabled=query_bool(request, "is_disabled"),
    )
    return mx_page("users", [wire.user(u) for u in rows], page, per_page, total)


@router.post("/users")
async def create_user(request: Request, client: Client = Depends(current_client)) -> Response:
    body = await parse_body(request, UserBody)
    user = await users.create_user(runtime(request), client, body.user)
    return mx({"user": wire.user(user)})


@router.get("/users/{user_guid}")
async def read_user(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
    return mx({"user": wire.user(user)})


@router.put("/users/{user_guid}")
async def update_user(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, UserBody)
    user = await users.update_user(runtime(request), client, user_guid, body.user)
    return mx({"user": wire.user(user)})


@router.delete("/users/{user_guid}")
async def delete_user(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    await users.delete_user(runtime(request), client, user_guid)
    return no_content()
