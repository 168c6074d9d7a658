"""The API's description, served at ``/openapi.json`` (OpenAPI 3.1).

Built once per process from three sources:
- MX's operations (``mx_v20111101.json``, extracted from MX's MIT-licensed OpenAPI file by
  ``tests/tools/extract_mx_openapi.py``): parameters and responses of every MX route
  OpenAgg serves;
- OpenAgg's own request models (``services/inputs.py`` and friends): every request body,
  as OpenAgg really validates it (unknown fields refused, strict types);
- hand-written entries (``extensions.py``) for OpenAgg's extensions.
``OVERRIDES`` then says where OpenAgg answers otherwise than MX's file
(docs/compatibility.md); ``INTERNAL`` lists the routes that are not the developer API
(web pages, their own JSON APIs), left out on purpose.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute

from openagg import __version__
from openagg.api.openapi import extensions
from openagg.api.openapi.extensions import ERROR, ok
from openagg.services import inputs, webhooks, widget
from openagg.services.support import inputs as support_inputs
from openagg.settings import Settings

MX_MEDIA = "application/vnd.mx.api.v1+json"
MX_SCHEMAS = "#/components/schemas/"

# Paths (or their starts) that are not the developer API: pages for people and the JSON
# those pages call, which may change with them.
INTERNAL = (
    "/",
    "/assets/",
    "/favicon.",
    "/console",
    "/portal",
    "/connect/",
    "/demo",
    "/oauth/",
    "/sandbox/",
    "/simplefin/create",
    "/simplefin/fix/",
    "/openapi.json",
    "/docs",
)

# The request body of each operation that takes one: OpenAgg's own models.
BODIES: dict[str, type[BaseModel]] = {
    "POST /users": inputs.UserBody,
    "PUT /users/{user_guid}": inputs.UserBody,
    "POST /users/{user_guid}/members": inputs.MemberCreateBody,
    "PUT /users/{user_guid}/members/{member_guid}": inputs.MemberUpdateBody,
    "PUT /users/{user_guid}/members/{member_guid}/resume": inputs.ResumeBody,
    "POST /users/{user_guid}/managed_members": inputs.ManagedMemberCreateBody,
    "PUT /users/{user_guid}/managed_members/{member_guid}": inputs.ManagedMemberUpdateBody,
    "POST /users/{user_guid}/managed_members/{member_guid}/accounts": (
        inputs.ManagedAccountCreateBody
    ),
    "PUT /users/{user_guid}/managed_members/{member_guid}/accounts/{account_guid}": (
        inputs.ManagedAccountUpdateBody
    ),
    "POST /users/{user_guid}/managed_members/{member_guid}/accounts/{account_guid}"
    "/transactions": inputs.ManagedTransactionCreateBody,
    "PUT /users/{user_guid}/managed_members/{member_guid}/accounts/{account_guid}"
    "/transactions/{transaction_guid}": inputs.ManagedTransactionUpdateBody,
    "POST /users/{user_guid}/widget_urls": widget.WidgetUrlBody,
    "POST /users/{user_guid}/connect_widget_url": widget.ConnectWidgetBody,
    "POST /webhook_endpoints": webhooks.WebhookEndpointBody,
    "PUT /webhook_endpoints/{guid}": webhooks.WebhookEndpointBody,
    "POST /users/{user_guid}/members/{member_guid}/support_tickets": (
        support_inputs.TicketCreateBody
    ),
    "PUT /users/{user_guid}/support_tickets/{ticket_guid}/additional_login_info": (
        support_inputs.AdditionalLoginInfoBody
    ),
    "POST /users/{user_guid}/support_tickets/{ticket_guid}/reopen": (
        support_inputs.TicketReopenBody
    ),
}
# Bodies that may be left out (the defaults apply).
OPTIONAL_BODIES = {
    "POST /users/{user_guid}/connect_widget_url",
    "POST /users/{user_guid}/support_tickets/{ticket_guid}/reopen",
    "POST /users/{user_guid}/simplefin_tokens",
}


def _mx() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("mx_v20111101.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def is_internal(path: str) -> bool:
    return path == "/" or any(path.startswith(p) for p in INTERNAL if p != "/")


def served(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path) of every route, HEAD aside."""
    found = {
        (method, path)
        for route in routes
        if isinstance(path := getattr(route, "path", None), str)
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    }
    return sorted(found, key=lambda mp: (mp[1], mp[0]))


def undescribed(routes: Iterable[BaseRoute]) -> list[str]:
    """Routes neither described nor internal: each one should be one or the other."""
    mx_ops = _mx()["operations"]
    return [
        f"{m} {p}"
        for m, p in served(routes)
        if not is_internal(p) and f"{m} {p}" not in mx_ops and f"{m} {p}" not in extensions.OPS
    ]


def _overrides(settings: Settings) -> dict[str, dict[str, Any]]:
    """Success answers where OpenAgg differs from MX's file (docs/compatibility.md)."""
    transaction = {"type": "object", "properties": {"transaction": _ref("TransactionResponse")}}
    return {
        # No challenges pending: 204, no body.
        "GET /users/{user_guid}/members/{member_guid}/challenges": {"204": ok(None)},
        **(
            {}
            if settings.read_transaction_shape == "spec"
            else {
                "GET /users/{user_guid}/transactions/{transaction_guid}": {"200": ok(transaction)}
            }
        ),
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": MX_SCHEMAS + name}


def _errors(method: str, body: bool) -> dict[str, Any]:
    codes = {
        "400": "Bad input: a query value, a body field, a NUL character",
        "401": "Missing or wrong Basic credentials",
        "404": "Unknown path, guid or code (another client's guids too)",
        "406": "The Accept header names another vnd.mx.api version",
        "503": "The database is unavailable (Retry-After)",
    }
    if method != "GET":
        codes["409"] = "Conflicts with an existing record or a running job"
        codes["422"] = "Not possible in the member's status"
    if body:
        codes["413"] = "The body is over OPENAGG_MAX_BODY_BYTES"
    return {code: {"description": text, "content": ERROR} for code, text in codes.items()}


def _body_schemas(models: Iterable[type[BaseModel]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each model's schema as a ``$ref``, and the schemas, named ``OpenAgg<Model>``."""
    unique = sorted(set(models), key=lambda m: m.__name__)
    keys, defs = models_json_schema(
        [(m, "validation") for m in unique], ref_template=MX_SCHEMAS + "OpenAgg{model}"
    )
    refs = {m: keys[(m, "validation")] for m in unique}
    schemas = {f"OpenAgg{name}": s for name, s in defs.get("$defs", {}).items()}
    return {m.__name__: r for m, r in refs.items()}, schemas


def _name_path_parameters(op: dict[str, Any], path: str, shared: dict[str, Any]) -> None:
    """Declare every ``{name}`` of the path (MX's readTransaction declares none)."""
    declared = {
        (shared[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p)["name"]
        for p in op.get("parameters", [])
    }
    for name in re.findall(r"{(\w+)}", path):
        if name not in declared:
            op.setdefault("parameters", []).append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            )


def build(routes: Iterable[BaseRoute], settings: Settings) -> dict[str, Any]:
    mx = _mx()
    components = copy.deepcopy(mx["components"])
    refs, body_schemas = _body_schemas(BODIES.values())
    components["schemas"].update(body_schemas)
    components["schemas"].update(copy.deepcopy(extensions.SCHEMAS))
    components["securitySchemes"] = {
        "basicAuth": {
            "type": "http",
            "scheme": "basic",
            "description": "client_id as the user name, api_key as the password",
        },
        "simplefinAccess": {
            "type": "http",
            "scheme": "basic",
            "description": "The user name and password of a SimpleFIN access URL",
        },
    }
    overrides = _overrides(settings)
    paths: dict[str, dict[str, Any]] = {}
    for method, path in served(routes):
        key = f"{method} {path}"
        if is_internal(path):
            continue
        if key in mx["operations"]:
            op = copy.deepcopy(mx["operations"][key])
            op["security"] = [{"basicAuth": []}]
        elif key in extensions.OPS:
            op = copy.deepcopy(extensions.OPS[key])
        else:
            continue
        op.setdefault("tags", ["openagg"])
        _name_path_parameters(op, path, components["parameters"])
        if key in BODIES:
            op["requestBody"] = {
                "required": key not in OPTIONAL_BODIES,
                "content": {"application/json": {"schema": refs[BODIES[key].__name__]}},
            }
        op["responses"].update(overrides.get(key, {}))
        if op.get("security") != []:
            op["responses"] = {**_errors(method, "requestBody" in op), **op["responses"]}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OpenAgg",
            "version": __version__,
            "description": (
                "OpenAgg's API: MX's Platform API (v20111101) as OpenAgg serves it, and "
                "OpenAgg's extensions (tagged `openagg`). MX's operation descriptions and "
                "response schemas come from MX's OpenAPI file (MIT License, Copyright (c) "
                "2021 MX); request bodies are OpenAgg's own models. Where OpenAgg differs "
                "from MX, this document says what OpenAgg does (docs/compatibility.md)."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "security": [{"basicAuth": []}],
        "paths": paths,
        "components": components,
    }
