"""The API's description (/openapi.json): every developer route is in it, it is valid
OpenAPI 3.1, and the vendored extract of MX's file is current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openagg.api import openapi
from openagg.api.app import ROUTE_MODULES
from openagg.settings import Settings
from tests.tools import extract_mx_openapi

ROUTES = [route for module in ROUTE_MODULES for route in module.router.routes]


def _document(**settings: Any) -> dict[str, Any]:
    return openapi.build(ROUTES, Settings(**settings))


def test_every_route_is_described_or_internal() -> None:
    assert openapi.undescribed(ROUTES) == []
    doc = _document()
    described = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    for method, path in openapi.served(ROUTES):
        assert openapi.is_internal(path) or (method, path) in described, (method, path)
    # The MX API and the extensions a developer calls, not the web pages.
    assert ("POST", "/users/{user_guid}/members") in described
    assert ("POST", "/users/{user_guid}/simplefin_tokens") in described
    assert not any(p.startswith(("/console", "/portal", "/connect/")) for _, p in described)


def test_bodies_queries_and_answers_are_described() -> None:
    doc = _document()
    create = doc["paths"]["/users/{user_guid}/members"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.rsplit("/", 1)[-1] in doc["components"]["schemas"]
    assert {"200", "202", "400", "401", "404"} <= set(create["responses"])
    listing = doc["paths"]["/users/{user_guid}/transactions"]["get"]
    names = {
        doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[-1]]["name"]
        for p in listing["parameters"]
    }
    assert {"page", "records_per_page", "from_date", "to_date"} <= names


def test_read_transaction_follows_the_configured_shape() -> None:
    def answer(shape: str) -> dict[str, Any]:
        doc = _document(read_transaction_shape=shape)
        op = doc["paths"]["/users/{user_guid}/transactions/{transaction_guid}"]["get"]
        schema: dict[str, Any] = op["responses"]["200"]["content"][openapi.MX_MEDIA]["schema"]
        return schema

    assert "transaction" in answer("real")["properties"]
    assert answer("spec")["$ref"].endswith("/TransactionsResponseBodyIncludes")


def test_the_document_is_valid_openapi() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.core.result import Ok

    doc = _document()
    results = list(schemathesis.openapi.from_dict(doc).get_all_operations())
    # Each operation loads (an Err names a broken reference or schema).
    assert [r.err() for r in results if not isinstance(r, Ok)] == []
    assert len(results) == sum(len(item) for item in doc["paths"].values())


def test_mx_extract_is_current() -> None:
    spec = extract_mx_openapi.DEFAULT_SPEC
    if not spec.exists():
        pytest.skip(f"MX's OpenAPI file is not at {spec}")
    current = Path(extract_mx_openapi.OUT).read_text(encoding="utf-8")
    assert current == extract_mx_openapi.render(spec), (
        "run .venv/bin/python -m tests.tools.extract_mx_openapi"
    )
