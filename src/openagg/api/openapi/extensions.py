"""Hand-written descriptions of OpenAgg's extensions (docs/compatibility.md,
docs/simplefin.md, docs/imports.md, docs/webhooks.md, docs/support.md). Their request
bodies come from OpenAgg's models (``BODIES`` in ``__init__``); here are the paths,
queries and answers. Keep them in step with ``wire/`` and the routes."""

from __future__ import annotations

from typing import Any

from openagg.api.routes.imports import CSV_OPTIONS

MX_MEDIA = "application/vnd.mx.api.v1+json"
REF = "#/components/schemas/"


def _t(kind: str, *, null: bool = True, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"] if null else kind, **more}


STR, STR_N = _t("string", null=False), _t("string")
INT, INT_N = _t("integer", null=False), _t("integer")
BOOL = _t("boolean", null=False)


def _obj(props: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": [k for k in props if k not in optional],
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def ok(schema: dict[str, Any] | None, media: str = MX_MEDIA, text: str = "OK") -> dict[str, Any]:
    """A success answer (no body when ``schema`` is None)."""
    if schema is None:
        return {"description": "No Content"}
    return {"description": text, "content": {media: {"schema": schema}}}


ERROR = {
    MX_MEDIA: {
        "schema": _obj({"error": _obj({"message": STR})}),
    }
}


def _one(key: str, schema: str) -> dict[str, Any]:
    return _obj({key: _ref(schema)})


def _page(key: str, schema: str) -> dict[str, Any]:
    return _obj(
        {key: {"type": "array", "items": _ref(schema)}, "pagination": _ref("PaginationResponse")}
    )


def _q(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema or STR}


def _path(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": STR} for n in names]


PAGING = [
    _q("page", "Page number, from 1.", _t("integer", null=False, minimum=1)),
    _q("records_per_page", "10 to 1000 (25 by default, and above 1000).", INT),
]
TIME = _t("string", format="date-time")

# SimpleFIN's money: a string with exactly two decimals (or the currency's own).
_SF_AMOUNT = {**STR, "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
_SF_ACCOUNT = {
    "id": STR,
    "name": STR,
    "currency": STR,
    "balance": _SF_AMOUNT,
    "available-balance": _SF_AMOUNT,
    "balance-date": {**INT, "description": "UNIX seconds"},
    "transactions": {"type": "array", "items": _ref("SimplefinTransaction")},
    "holdings": {"type": "array", "items": {"type": "object"}},
}

SCHEMAS: dict[str, Any] = {
    "OpenAggSimplefinToken": _obj(
        {
            "guid": STR,
            "user_guid": STR,
            "token": {**STR, "description": "Only in the answer that creates it"},
            "claim_url": {**STR, "description": "Only in the answer that creates it"},
            "state": {"enum": ["UNCLAIMED", "CLAIMED", "EXPIRED", "REVOKED"]},
            "created_at": TIME,
            "expires_at": TIME,
            "claimed_at": TIME,
            "revoked_at": TIME,
            "created_by": {
                "enum": ["API", "PORTAL", "WIDGET", None],
                "description": "The client's backend, its developer portal, or the end user "
                "in the Connect widget (null: made before this was kept)",
            },
        },
        optional=("token", "claim_url"),
    ),
    "OpenAggImport": _obj(
        {
            "guid": STR,
            "member_guid": STR,
            "format": STR,
            "filename": STR_N,
            "created_at": TIME,
            "accounts": {
                "type": "array",
                "items": _obj({"guid": STR, "name": STR_N, "type": STR_N, "balance": _t("number")}),
            },
            "transactions_added": INT,
            "transactions_updated": INT,
            "transactions_unchanged": INT,
            "warnings": {"type": "array", "items": STR},
        }
    ),
    "OpenAggWebhookEndpoint": _obj(
        {
            "created_at": TIME,
            "enabled": BOOL,
            "event_types": _t("array", items=STR),
            "guid": STR,
            "updated_at": TIME,
            "url": STR,
            "secret": {**STR, "description": "Only in the answer that creates it"},
        },
        optional=("secret",),
    ),
    "OpenAggWebhookDelivery": _obj(
        {
            "action": STR_N,
            "attempts": {
                "type": "array",
                "items": _obj(
                    {
                        "attempted_at": TIME,
                        "duration_ms": INT,
                        "error": STR_N,
                        "status_code": INT_N,
                        "succeeded": BOOL,
                    }
                ),
            },
            "attempts_count": INT,
            "created_at": TIME,
            "delivered_at": TIME,
            "event_type": STR,
            "failed_at": TIME,
            "guid": STR,
            "last_error": STR_N,
            "last_status_code": INT_N,
            "member_guid": STR_N,
            "next_attempt_at": TIME,
            "payload": {"type": "object"},
            "status": STR,
            "webhook_endpoint_guid": STR,
            "webhook_id": STR,
        }
    ),
    "OpenAggSupportTicket": _obj(
        {
            "account_guids": {"type": "array", "items": STR},
            "additional_login_info": {
                "type": ["array", "null"],
                "items": _ref("ChallengeResponse"),
                "description": "The engineer's questions, while the end user owes answers",
            },
            "cause": STR_N,
            "channel": STR_N,
            "connection_status": STR_N,
            "created_at": TIME,
            "description": STR_N,
            "estimated_resolution_at": TIME,
            "guid": STR,
            "institution_code": STR_N,
            "member_guid": STR_N,
            "queue_position": INT_N,
            "report_count": INT,
            "resolved_at": TIME,
            "special_instructions": STR_N,
            "status": STR,
            "updated_at": TIME,
            "user_guid": STR_N,
        }
    ),
    # The SimpleFIN protocol's answer (docs/simplefin.md): v1 by default, v2 on request.
    "SimplefinTransaction": _obj(
        {
            "id": STR,
            "posted": {**INT, "description": "UNIX seconds; 0 while pending"},
            "amount": _SF_AMOUNT,
            "description": STR,
            "payee": STR,
            "memo": STR,
            "transacted_at": {**INT, "description": "UNIX seconds"},
            "pending": BOOL,
            "extra": _obj({"category": STR}),
        },
        optional=("extra",),
    ),
    "SimplefinOrg": _obj({"domain": STR, "name": STR, "sfin-url": STR, "url": STR, "id": STR}),
    "SimplefinAccountV1": _obj({"org": _ref("SimplefinOrg"), **_SF_ACCOUNT}),
    "SimplefinAccountV2": _obj({"conn_id": STR, "conn_name": STR, **_SF_ACCOUNT}),
    "SimplefinConnection": _obj(
        {
            "conn_id": STR,
            "name": STR,
            "org_id": STR,
            "org_name": STR,
            "org_url": STR,
            "sfin_url": STR,
        }
    ),
    "SimplefinError": _obj(
        {"code": STR, "msg": STR, "message": STR, "conn_id": STR, "account_id": STR},
        optional=("conn_id", "account_id"),
    ),
    "SimplefinAccountSetV1": _obj(
        {
            "errors": {"type": "array", "items": STR},
            "x-api-message": {"type": "array", "items": STR},
            "accounts": {"type": "array", "items": _ref("SimplefinAccountV1")},
        }
    ),
    "SimplefinAccountSetV2": _obj(
        {
            "errlist": {"type": "array", "items": _ref("SimplefinError")},
            "connections": {"type": "array", "items": _ref("SimplefinConnection")},
            "accounts": {"type": "array", "items": _ref("SimplefinAccountV2")},
        }
    ),
    "OpenAggSupportTicketEvent": _obj(
        {
            "action": STR,
            "actor": _obj({"id": STR_N, "name": STR_N, "type": STR_N}),
            "channel": STR_N,
            "client_address": STR_N,
            "created_at": TIME,
            "from_status": STR_N,
            "note": STR_N,
            "request_id": STR_N,
            "to_status": STR_N,
        }
    ),
}


def _op(summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"summary": summary, "tags": ["openagg"], "responses": responses, **more}


_USER = _path("user_guid")
_TOKEN_BODY = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "simplefin_token": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {},
                    }
                },
            }
        }
    },
}
_IMPORT_QUERY = [
    _q("format", "OFX (or QFX), QIF, CSV, CAMT053 or MT940; detected when left out"),
    _q("filename", "The file's name (a multipart part's own name otherwise)"),
    _q("member_guid", "The managed member to import into; a new one otherwise"),
    *(
        _q(name, "CSV: '.' or ','", {"enum": [".", ","]})
        if name == "decimal_separator"
        else _q(name, "CSV: see docs/imports.md")
        for name in CSV_OPTIONS
    ),
    _q("skip_rows", "CSV: lines to skip before the header", INT),
]
_FORBIDDEN = {"description": "A disabled user", "content": ERROR}
_SF_FORBIDDEN = {"description": "Missing, wrong or revoked credentials", "content": ERROR}
_TICKET = _one("support_ticket", "OpenAggSupportTicket")
_TICKETS = _page("support_tickets", "OpenAggSupportTicket")
_STATUS_Q = _q("status", "Ticket statuses (the key repeated)", {"type": "array", "items": STR})

OPS: dict[str, dict[str, Any]] = {
    "GET /healthz": _op(
        "Health: the database answers",
        {"200": ok(_obj({"status": {"const": "ok"}}), "application/json")},
        security=[],
    ),
    "GET /metrics": _op(
        "Prometheus metrics",
        {"200": ok(STR, "text/plain")},
        security=[],
    ),
    # SimpleFIN setup tokens (docs/simplefin.md)
    "POST /users/{user_guid}/simplefin_tokens": _op(
        "Create a SimpleFIN setup token",
        {
            "201": ok(_one("simplefin_token", "OpenAggSimplefinToken"), text="Created"),
            "403": _FORBIDDEN,
        },
        parameters=_USER,
        requestBody=_TOKEN_BODY,
    ),
    "GET /users/{user_guid}/simplefin_tokens": _op(
        "List a user's SimpleFIN setup tokens",
        {
            "200": ok(
                _obj(
                    {"simplefin_tokens": {"type": "array", "items": _ref("OpenAggSimplefinToken")}}
                )
            )
        },
        parameters=_USER,
    ),
    "DELETE /users/{user_guid}/simplefin_tokens/{guid}": _op(
        "Revoke a SimpleFIN setup token", {"204": ok(None)}, parameters=_path("user_guid", "guid")
    ),
    # The SimpleFIN protocol, for budget apps (not MX's auth or media type)
    "GET /simplefin/info": _op(
        "SimpleFIN: protocol versions",
        {"200": ok(_obj({"versions": {"type": "array", "items": STR}}), "application/json")},
        tags=["simplefin"],
        security=[],
    ),
    "POST /simplefin/claim/{claim_token}": _op(
        "SimpleFIN: claim a setup token for an access URL",
        {"200": ok(STR, "text/plain"), "403": _SF_FORBIDDEN},
        tags=["simplefin"],
        parameters=_path("claim_token"),
        security=[],
    ),
    "GET /simplefin/accounts": _op(
        "SimpleFIN: the user's accounts and transactions",
        {
            "200": ok(
                {"oneOf": [_ref("SimplefinAccountSetV1"), _ref("SimplefinAccountSetV2")]},
                "application/json",
            ),
            "400": {"description": "A bad query value", "content": ERROR},
            "403": _SF_FORBIDDEN,
            "429": {"description": "Past OPENAGG_SIMPLEFIN_REQUESTS_PER_DAY", "content": ERROR},
        },
        tags=["simplefin"],
        parameters=[
            _q("start-date", "UNIX seconds", {"type": "number"}),
            _q("end-date", "UNIX seconds", {"type": "number"}),
            _q("pending", "Present: include pending transactions"),
            _q("balances-only", "1 or 0", {"enum": ["0", "1", "true", "false"]}),
            _q("account", "Account ids (the key repeated)", {"type": "array", "items": STR}),
            _q("version", "1 (default) or 2", {"enum": ["1", "2"]}),
        ],
        security=[{"simplefinAccess": []}],
    ),
    # Statement imports (docs/imports.md)
    "POST /users/{user_guid}/imports": _op(
        "Import a statement file (OFX, QFX, QIF, CSV, CAMT.053, MT940)",
        {
            "201": ok(_one("import", "OpenAggImport"), text="Created"),
            "400": {"description": "A file no reader understands, a bad option", "content": ERROR},
            "413": {"description": "The file is over OPENAGG_IMPORT_MAX_BYTES", "content": ERROR},
        },
        parameters=[*_USER, *_IMPORT_QUERY],
        requestBody={
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": _obj({"file": {"type": "string", "format": "binary"}})
                },
            },
        },
    ),
    "GET /users/{user_guid}/imports": _op(
        "List a user's imports",
        {"200": ok(_obj({"imports": {"type": "array", "items": _ref("OpenAggImport")}}))},
        parameters=_USER,
    ),
    "GET /users/{user_guid}/imports/{import_guid}": _op(
        "Read an import",
        {"200": ok(_one("import", "OpenAggImport"))},
        parameters=_path("user_guid", "import_guid"),
    ),
    # Webhooks (docs/webhooks.md)
    "POST /webhook_endpoints": _op(
        "Create a webhook endpoint",
        {"200": ok(_one("webhook_endpoint", "OpenAggWebhookEndpoint"))},
    ),
    "GET /webhook_endpoints": _op(
        "List webhook endpoints",
        {"200": ok(_page("webhook_endpoints", "OpenAggWebhookEndpoint"))},
        parameters=PAGING,
    ),
    "GET /webhook_endpoints/{guid}": _op(
        "Read a webhook endpoint",
        {"200": ok(_one("webhook_endpoint", "OpenAggWebhookEndpoint"))},
        parameters=_path("guid"),
    ),
    "PUT /webhook_endpoints/{guid}": _op(
        "Update a webhook endpoint",
        {"200": ok(_one("webhook_endpoint", "OpenAggWebhookEndpoint"))},
        parameters=_path("guid"),
    ),
    "DELETE /webhook_endpoints/{guid}": _op(
        "Delete a webhook endpoint", {"204": ok(None)}, parameters=_path("guid")
    ),
    "GET /webhook_deliveries": _op(
        "List webhook deliveries",
        {"200": ok(_page("webhook_deliveries", "OpenAggWebhookDelivery"))},
        parameters=[
            *PAGING,
            _q("status", "PENDING, DELIVERED or FAILED"),
            _q("member_guid", "Only this member's"),
            _q("event_type", "Only this event type"),
            _q("webhook_endpoint_guid", "Only this endpoint's"),
        ],
    ),
    "GET /webhook_deliveries/{guid}": _op(
        "Read a webhook delivery",
        {"200": ok(_one("webhook_delivery", "OpenAggWebhookDelivery"))},
        parameters=_path("guid"),
    ),
    "POST /webhook_deliveries/{guid}/replay": _op(
        "Send a delivery again",
        {"202": ok(_one("webhook_delivery", "OpenAggWebhookDelivery"), text="Accepted")},
        parameters=_path("guid"),
    ),
    # Support tickets (docs/support.md)
    "POST /users/{user_guid}/members/{member_guid}/support_tickets": _op(
        "Report a connection problem",
        {
            "200": ok(_TICKET, text="Joined the member's open ticket"),
            "201": ok(_TICKET, text="Created"),
        },
        parameters=_path("user_guid", "member_guid"),
    ),
    "GET /users/{user_guid}/support_tickets": _op(
        "List a user's tickets",
        {"200": ok(_TICKETS)},
        parameters=[*_USER, *PAGING, _STATUS_Q],
    ),
    "GET /users/{user_guid}/members/{member_guid}/support_tickets": _op(
        "List a member's tickets",
        {"200": ok(_TICKETS)},
        parameters=[*_path("user_guid", "member_guid"), *PAGING, _STATUS_Q],
    ),
    "GET /users/{user_guid}/support_tickets/{ticket_guid}": _op(
        "Read a ticket", {"200": ok(_TICKET)}, parameters=_path("user_guid", "ticket_guid")
    ),
    "GET /users/{user_guid}/support_tickets/{ticket_guid}/history": _op(
        "A ticket's history",
        {"200": ok(_page("support_ticket_events", "OpenAggSupportTicketEvent"))},
        parameters=[*_path("user_guid", "ticket_guid"), *PAGING],
    ),
    "PUT /users/{user_guid}/support_tickets/{ticket_guid}/additional_login_info": _op(
        "Answer the engineer's questions",
        {"200": ok(_TICKET)},
        parameters=_path("user_guid", "ticket_guid"),
    ),
    "POST /users/{user_guid}/support_tickets/{ticket_guid}/reopen": _op(
        "Reopen a ticket", {"200": ok(_TICKET)}, parameters=_path("user_guid", "ticket_guid")
    ),
    "GET /support_tickets": _op(
        "List the client's tickets",
        {"200": ok(_TICKETS)},
        parameters=[
            *PAGING,
            _STATUS_Q,
            _q("institution_code", "Only this institution's"),
            _q("channel", "DIRECT or INDIRECT"),
            _q("from_date", "YYYY-MM-DD", {"type": "string", "format": "date"}),
            _q("to_date", "YYYY-MM-DD", {"type": "string", "format": "date"}),
            _q("user_guid", "Only this user's"),
            _q("member_guid", "Only this member's"),
        ],
    ),
}
