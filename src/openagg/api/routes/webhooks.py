"""/webhook_endpoints and /webhook_deliveries: an OpenAgg extension in MX's style
(MX configures webhooks out of band). See docs/webhooks.md."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response

from openagg import wire
from openagg.api.http import current_client, mx, mx_page, no_content, paging, parse_body, runtime
from openagg.api.routing import Router
from openagg.db.models import Client
from openagg.services import webhooks
from openagg.services.webhooks import DeliveryView, WebhookEndpointBody

router = Router()


def _delivery(v: DeliveryView) -> dict[str, object]:
    return wire.webhook_delivery(
        v.delivery, event=v.event, endpoint_guid=v.endpoint_guid, attempts=v.attempts
    )


@router.post("/webhook_endpoints")
async def create_endpoint(request: Request, client: Client = Depends(current_client)) -> Response:
    body = await parse_body(request, WebhookEndpointBody)
    new = await webhooks.create_endpoint(runtime(request), client, body.webhook_endpoint)
    return mx({"webhook_endpoint": wire.webhook_endpoint(new.endpoint, secret=new.secret)})


@router.get("/webhook_endpoints")
async def list_endpoints(request: Request, client: Client = Depends(current_client)) -> Response:
    page, per_page = paging(request, 1000)
    rows, total = await webhooks.list_endpoints(
        runtime(request), client, page=page, per_page=per_page
    )
    return mx_page(
        "webhook_endpoints", [wire.webhook_endpoint(e) for e in rows], page, per_page, total
    )


@router.get("/webhook_endpoints/{guid}")
async def read_endpoint(
    guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    endpoint = await webhooks.read_endpoint(runtime(request), client, guid)
    return mx({"webhook_endpoint": wire.webhook_endpoint(endpoint)})


@router.put("/webhook_endpoints/{guid}")
async def update_endpoint(
    guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, WebhookEndpointBody)
    endpoint = await webhooks.update_endpoint(runtime(request), client, guid, body.webhook_endpoint)
    return mx({"webhook_endpoint": wire.webhook_endpoint(endpoint)})


@router.delete("/webhook_endpoints/{guid}")
async def delete_endpoint(
    guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    await webhooks.delete_endpoint(runtime(request), client, guid)
    return no_content()


@router.get("/webhook_deliveries")
async def list_deliveries(request: Request, client: Client = Depends(current_client)) -> Response:
    page, per_page = paging(request, 1000)
    q = request.query_params
    rows, total = await webhooks.list_deliveries(
        runtime(request),
        client,
        page=page,
        per_page=per_page,
        status=q.get("status") or None,
        member_guid=q.get("member_guid") or None,
        event_type=q.get("event_type") or None,
        endpoint_guid=q.get("webhook_endpoint_guid") or None,
    )
    return mx_page("webhook_deliveries", [_delivery(v) for v in rows], page, per_page, total)


@router.get("/webhook_deliveries/{guid}")
async def read_delivery(
    guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    view = await webhooks.read_delivery(runtime(request), client, guid)
    return mx({"webhook_delivery": _delivery(view)})


@router.post("/webhook_deliveries/{guid}/replay")
async def replay_delivery(
    guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    view = await webhooks.replay_delivery(runtime(request), client, guid)
    return mx({"webhook_delivery": _delivery(view)}, status_code=202)
