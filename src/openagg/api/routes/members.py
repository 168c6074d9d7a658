"""/users/{user_guid}/members and the member job endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from openagg import wire
from openagg.api.http import (
    callback_payload,
    current_client,
    mx,
    mx_page,
    no_content,
    paging,
    parse_body,
    query_bool,
    query_use_case,
    runtime,
)
from openagg.api.routes.institutions import credentials_page
from openagg.api.routing import Router
from openagg.db.models import Client, Institution, Job, Member, User
from openagg.domain.policy import JobKind, background_disabled
from openagg.domain.statuses import Status
from openagg.runtime import Runtime
from openagg.services import members, widget
from openagg.services.inputs import MemberCreateBody, MemberUpdateBody, ResumeBody
from openagg.services.lookup import user_by_guid
from openagg.wire.scalars import iso

router = Router()
BASE = "/users/{user_guid}/members"


def oauth_window_uri(rt: Runtime, request: Request, m: Member) -> str | None:
    if not m.oauth_token:
        return None
    base = rt.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}/oauth/start/{m.oauth_token}"


def member_body(
    request: Request, client: Client, m: Member, user: User, inst: Institution, job: Job | None
) -> dict[str, Any]:
    body = wire.member(
        m,
        user=user,
        institution=inst,
        is_being_aggregated=job is not None,
        background_disabled=background_disabled(
            member_disabled=m.background_aggregation_is_disabled,
            client_enabled=client.background_aggregation_enabled,
        ),
    )
    body["oauth_window_uri"] = oauth_window_uri(runtime(request), request, m)
    # OpenAgg extension: when the end user's consent at an OAuth institution ends
    # (null when the institution does not say, and for members without OAuth).
    body["consent_expires_at"] = iso(m.consent_expires_at)
    return {"member": body}


def result_body(request: Request, client: Client, r: members.MemberResult) -> dict[str, Any]:
    return member_body(request, client, r.member, r.user, r.institution, r.job)


@router.get(BASE)
async def list_members(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    page, per_page = paging(request, 1000)
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        use_case = query_use_case(request)
        # Each member with its active job in one statement (one snapshot), so a job
        # settling meanwhile never shows the old status without its job.
        found = (
            await s.execute(
                select(Member, Job)
                .outerjoin(Job, Job.active_member_id == Member.id)
                .where(Member.user_id == user.id, Member.client_id == client.id)
                .order_by(Member.id)
            )
        ).all()
        rows = [(m, job) for m, job in found]
        # A user has few members, and use_cases is a JSON list: filter before paging.
        if use_case:
            rows = [(m, job) for m, job in rows if use_case in (m.use_cases or [])]
        total = len(rows)
        rows = rows[(page - 1) * per_page : page * per_page]
        insts = {
            i.id: i
            for i in await s.scalars(
                select(Institution).where(Institution.id.in_({m.institution_id for m, _ in rows}))
            )
        }
    items = [
        member_body(request, client, m, user, insts[m.institution_id], job)["member"]
        for m, job in rows
    ]
    return mx_page("members", items, page, per_page, total)


@router.post(BASE)
async def create_member(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, MemberCreateBody)
    # MX's OAuth parameters of the create body: what the first OAuth step should do.
    oauth_options = widget.oauth_link_options(
        skip_aggregation=body.member.skip_aggregation,
        referral_source=body.referral_source,
        client_redirect_url=body.client_redirect_url,
        ui_message_webview_url_scheme=body.ui_message_webview_url_scheme,
        enable_app2app=body.enable_app2app,
    )
    r = await members.create_member(
        runtime(request),
        client,
        user_guid,
        body,
        callback_payload(request),
        oauth_options=oauth_options,
    )
    return mx(result_body(request, client, r), 202 if r.started else 200)


@router.get(BASE + "/{member_guid}")
async def read_member(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    r = await members.load_member(runtime(request), client, user_guid, member_guid)
    return mx(result_body(request, client, r))


@router.put(BASE + "/{member_guid}")
async def update_member(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, MemberUpdateBody)
    r = await members.update_member(
        runtime(request), client, user_guid, member_guid, body.member, callback_payload(request)
    )
    return mx(result_body(request, client, r))


@router.delete(BASE + "/{member_guid}")
async def delete_member(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    await members.delete_member(runtime(request), client, user_guid, member_guid)
    return no_content()


@router.get(BASE + "/{member_guid}/status")
async def read_status(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    r = await members.load_member(runtime(request), client, user_guid, member_guid)
    return mx({"member": wire.member_status(r.member, is_being_aggregated=r.job is not None)})


@router.get(BASE + "/{member_guid}/challenges")
async def list_challenges(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    r = await members.load_member(runtime(request), client, user_guid, member_guid)
    if r.member.connection_status != Status.CHALLENGED.value or not r.member.challenges:
        return no_content()
    page, per_page = paging(request, 1000)
    chunk = r.member.challenges[(page - 1) * per_page : page * per_page]
    return mx_page(
        "challenges", [wire.challenge(c) for c in chunk], page, per_page, len(r.member.challenges)
    )


@router.put(BASE + "/{member_guid}/resume")
async def resume(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, ResumeBody)
    r = await members.resume(
        runtime(request), client, user_guid, member_guid, body.member.challenges
    )
    return mx(result_body(request, client, r), 202)


@router.get(BASE + "/{member_guid}/credentials")
async def member_credentials(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    r = await members.load_member(runtime(request), client, user_guid, member_guid)
    return credentials_page(request, r.institution.credentials)


@router.get(BASE + "/{member_guid}/oauth_window_uri")
async def oauth_uri(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    q = request.query_params
    options = widget.oauth_link_options(
        skip_aggregation=query_bool(request, "skip_aggregation"),
        referral_source=q.get("referral_source") or None,
        client_redirect_url=q.get("client_redirect_url") or None,
        ui_message_webview_url_scheme=q.get("ui_message_webview_url_scheme") or None,
        enable_app2app=query_bool(request, "enable_app2app"),
    )
    r = await members.set_oauth_options(runtime(request), client, user_guid, member_guid, options)
    uri = oauth_window_uri(runtime(request), request, r.member)
    return mx({"member": {"guid": r.member.guid, "oauth_window_uri": uri}})


async def _job(
    request: Request,
    client: Client,
    user_guid: str,
    member_guid: str,
    kind: JobKind,
    options: dict[str, Any] | None,
    status_code: int,
) -> Response:
    r = await members.request_job(
        runtime(request), client, user_guid, member_guid, kind, options, callback_payload(request)
    )
    return mx(result_body(request, client, r), status_code)


@router.post(BASE + "/{member_guid}/aggregate")
async def aggregate(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    options = {
        key: value
        for key in ("include_transactions", "include_holdings")
        if (value := query_bool(request, key)) is not None
    }
    return await _job(request, client, user_guid, member_guid, JobKind.AGGREGATE, options, 202)


@router.post(BASE + "/{member_guid}/check_balance")
async def check_balance(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _job(request, client, user_guid, member_guid, JobKind.BALANCE, None, 202)


@router.post(BASE + "/{member_guid}/identify")
async def identify(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _job(request, client, user_guid, member_guid, JobKind.IDENTIFY, None, 202)


@router.post(BASE + "/{member_guid}/verify")
async def verify(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    # 200, not 202: the spec and the SDK map only 200 for verify.
    return await _job(request, client, user_guid, member_guid, JobKind.VERIFY, None, 200)


@router.post(BASE + "/{member_guid}/extend_history")
async def extend_history(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _job(request, client, user_guid, member_guid, JobKind.HISTORY, None, 202)
