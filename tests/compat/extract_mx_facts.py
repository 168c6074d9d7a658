"""Extract the facts our wire tests need from MX's OpenAPI file into a small JSON file.

    .venv/bin/python tests/compat/extract_mx_facts.py [path/to/mx_platform_api_v20111101.yml]

Writes ``tests/compat/mx_facts.json``: every component schema reduced to its field
names, JSON types, nullability, enums, ``$ref``/``allOf`` links and array items, plus
the success codes of every operation. The tests read that file, so they run on a clone
without MX's file; ``tests/compat/test_mx_facts.py`` re-extracts when MX's file is
present and fails if the committed copy is stale.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FACTS_PATH = HERE / "mx_facts.json"
# The shared reference folder sits beside the repository (as in CI).
DEFAULT_SPEC = HERE.parents[2] / "shared/reference/mx_platform_api_v20111101.yml"
SPEC_PATH = Path(os.environ.get("OPENAGG_MX_SPEC", str(DEFAULT_SPEC)))

ABOUT = (
    "Facts extracted by tests/compat/extract_mx_facts.py from MX's "
    "mx_platform_api_v20111101.yml (MIT License, Copyright (c) 2021 MX). "
    "Do not edit by hand: re-run the script."
)
# Only what the wire checks read; descriptions and examples are dropped.
_KEPT = ("type", "nullable", "enum", "$ref")
_METHODS = ("get", "put", "post", "delete", "patch")


def _reduce(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
    if "allOf" in node:
        out["allOf"] = [_reduce(part) for part in node["allOf"]]
    if "items" in node:
        out["items"] = _reduce(node["items"])
    if "properties" in node:
        out["properties"] = {k: _reduce(v) for k, v in node["properties"].items()}
    return out


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    operations = {
        f"{method.upper()} {path}": sorted(
            int(code) for code in op.get("responses", {}) if str(code).startswith("2")
        )
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in _METHODS
    }
    return {
        "_about": ABOUT,
        "operations": dict(sorted(operations.items())),
        "schemas": {name: _reduce(schemas[name]) for name in sorted(schemas)},
    }


def render(facts: dict[str, Any]) -> str:
    # One line per schema keeps the file small and its diffs readable.
    lines = ["{", f'"_about": {json.dumps(facts["_about"])},', '"operations": {']
    ops = list(facts["operations"].items())
    lines += [
        f"  {json.dumps(k)}: {json.dumps(v)}{',' if i < len(ops) - 1 else ''}"
        for i, (k, v) in enumerate(ops)
    ]
    lines += ["},", '"schemas": {']
    schemas = list(facts["schemas"].items())
    lines += [
        f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
        f"{',' if i < len(schemas) - 1 else ''}"
        for i, (k, v) in enumerate(schemas)
    ]
    lines += ["}", "}"]
    return "\n".join(lines) + "\n"


def load_spec(path: Path) -> dict[str, Any]:
    import yaml  # only needed when MX's file is at hand

    with path.open(encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


def load_facts() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    return loaded


def main(argv: list[str]) -> int:
    spec_path = Path(argv[1]) if len(argv) > 1 else SPEC_PATH
    FACTS_PATH.write_text(render(extract(load_spec(spec_path))), encoding="utf-8")
    print(f"wrote {FACTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
