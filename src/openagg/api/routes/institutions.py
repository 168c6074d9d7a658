"""/institutions"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from openagg import wire
from openagg.api.http import (
    current_client,
    mx,
    mx_page,
    paging,
    public_base,
    query_bool,
    query_list,
    runtime,
)
from openagg.api.routing import Router
from openagg.db.models import Client, Institution
from openagg.services.errors import NotFound
from openagg.services.lookup import institution_by_code

router = Router()

_SUPPORT_FILTERS = (
    "supports_account_identification",
    "supports_account_statement",
    "supports_account_verification",
    "supports_transaction_history",
)


def _matches(inst: Institution, request: Request) -> bool:
    name = request.query_params.get("name")
    if name and name.lower() not in inst.name.lower() and name.lower() not in inst.code.lower():
        return False
    countries = query_list(request, "iso_country_code")
    if countries and inst.profile.get("iso_country_code", "US") not in countries:
        return False
    for flag in _SUPPORT_FILTERS:
        wanted = query_bool(request, flag)
        if wanted is not None and bool(inst.profile.get(flag)) != wanted:
            return False
    return True


async def list_all(
    request: Request, *, favorites: bool = False, max_per_page: int = 100
) -> Response:
    page, per_page = paging(request, max_per_page)
    async with runtime(request).db.read() as s:
        rows = await s.scalars(
            select(Institution).where(Institution.is_retired.is_(False)).order_by(Institution.name)
        )
        matched = [i for i in rows if _matches(i, request)]
    if favorites:
        matched = [i for i in matched if i.profile.get("is_favorite", True)]
    chunk = matched[(page - 1) * per_page : page * per_page]
    return mx_page(
        "institutions",
        [wire.institution(i, public_base(request)) for i in chunk],
        page,
        per_page,
        len(matched),
    )


@router.get("/institutions")
async def list_institutions(request: Request, _c: Client = Depends(current_client)) -> Response:
    return await list_all(request, favorites=False)


@router.get("/institutions/favorites")
async def list_favorites(request: Request, _c: Client = Depends(current_client)) -> Response:
    return await list_all(request, favorites=True)


async def _institution(request: Request, code: str) -> Institution:
    async with runtime(request).db.read() as s:
        inst = await institution_by_code(s, code)
    if inst is None:
        raise NotFound()
    return inst


@router.get("/institutions/{institution_code}")
async def read_institution(
    institution_code: str, request: Request, _c: Client = Depends(current_client)
) -> Response:
    inst = await _institution(request, institution_code)
    return mx({"institution": wire.institution(inst, public_base(request))})


@router.get("/institutions/{institution_code}/credentials")
async def list_credentials(
    institution_code: str, request: Request, _c: Client = Depends(current_client)
) -> Response:
    inst = await _institution(request, institution_code)
    return credentials_page(request, inst.credentials)


def credentials_page(request: Request, creds: list[dict[str, Any]]) -> Response:
    page, per_page = paging(request, 1000)
    chunk = creds[(page - 1) * per_page : page * per_page]
    return mx_page("credentials", [wire.credential(c) for c in chunk], page, per_page, len(creds))
