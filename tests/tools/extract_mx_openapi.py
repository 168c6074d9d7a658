"""Write ``src/openagg/api/openapi/mx_v20111101.json``: the operations of MX's OpenAPI
file (v20111101, MIT, (c) 2021 MX) that OpenAgg serves, with the component schemas and
parameters they name, in OpenAPI 3.1 form. ``/openapi.json`` is built from it, so the
package ships MX's descriptions without MX's 1.6 MB file.

Run it when MX's file or the served routes change:
``.venv/bin/python -m tests.tools.extract_mx_openapi [path/to/mx.yml]``.
``tests/unit/test_openapi.py`` checks the extract is current when MX's file is present.

Changes from MX's text, each one what OpenAgg really does (docs/compatibility.md):
- OpenAPI 3.0's ``nullable: true`` becomes 3.1's ``type: [t, "null"]``; every property of
  a schema a response names may be null (OpenAgg sends each declared field, null when it
  has no value).
- ``Accept`` is optional (a missing Accept is v1); ``Accept-Language`` is dropped (the
  widget speaks English only).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
OUT = _ROOT / "src/openagg/api/openapi/mx_v20111101.json"
DEFAULT_SPEC = Path(
    os.environ.get(
        "OPENAGG_MX_SPEC", _ROOT.parent / "shared/reference/mx_platform_api_v20111101.yml"
    )
)
_KEEP = ("operationId", "summary", "description", "tags", "parameters", "requestBody", "responses")
_DROPPED_PARAMETERS = {"#/components/parameters/acceptLanguage"}


def served_routes() -> set[tuple[str, str]]:
    from openagg.api.app import ROUTE_MODULES

    return {
        (method, route.path)
        for module in ROUTE_MODULES
        for route in module.router.routes
        for method in getattr(route, "methods", None) or ()
    }


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _closure(spec: dict[str, Any], start: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        todo.extend(_refs(_lookup(spec, ref)))
    return seen


def _lookup(spec: dict[str, Any], ref: str) -> Any:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _to_31(node: Any, *, all_nullable: bool = False) -> Any:
    """3.0's ``nullable`` as 3.1's null type; ``all_nullable`` makes every property
    nullable."""
    if isinstance(node, list):
        return [_to_31(v, all_nullable=all_nullable) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_31(v) for k, v in node.items() if k != "nullable"}
    if "properties" in node:
        props = node["properties"]
        out["properties"] = {
            name: _nullable(_to_31(value))
            if all_nullable or value.get("nullable")
            else _to_31(value)
            for name, value in props.items()
        }
    elif node.get("nullable"):
        out = _nullable(out)
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema["type"]
    kinds = kind if isinstance(kind, list) else [kind]
    out = dict(schema)
    out["type"] = [*kinds, "null"] if "null" not in kinds else kinds
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    served = served_routes()
    operations: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if (method.upper(), path) not in served:
                continue
            kept = {k: op[k] for k in _KEEP if k in op}
            kept["parameters"] = [
                p for p in kept.get("parameters", []) if p.get("$ref") not in _DROPPED_PARAMETERS
            ]
            operations[f"{method.upper()} {path}"] = kept
    used = _closure(spec, _refs(operations))
    from_responses = _closure(spec, _refs([op["responses"] for op in operations.values()]))
    components: dict[str, dict[str, Any]] = {"schemas": {}, "parameters": {}}
    for ref in sorted(used):
        _, _, kind, name = ref.split("/")
        node = _lookup(spec, ref)
        if kind == "schemas":
            node = _to_31(node, all_nullable=ref in from_responses)
        else:
            node = _to_31(node)
            if name == "acceptHeader":
                node["required"] = False
        components[kind][name] = node
    return {
        "x-source": "MX Platform API OpenAPI v20111101 (MIT License, Copyright (c) 2021 MX), "
        "the operations OpenAgg serves; extracted by tests/tools/extract_mx_openapi.py",
        "operations": dict(sorted(operations.items())),
        "components": components,
    }


def render(spec_path: Path) -> str:
    import yaml

    with spec_path.open(encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    return json.dumps(extract(spec), indent=1, sort_keys=False, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPEC))
    print(f"wrote {OUT}")
