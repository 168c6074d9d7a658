"""The committed MX facts are current, and shaped as the wire tests expect."""

from __future__ import annotations

import pytest

from tests.compat.extract_mx_facts import (
    FACTS_PATH,
    SPEC_PATH,
    extract,
    load_facts,
    load_spec,
    render,
)
from tests.support import skip_or_fail


def test_facts_are_committed_and_complete() -> None:
    facts = load_facts()
    assert "MIT License" in facts["_about"]
    # The schemas the wire tests check against, and MX's success codes.
    for name in ("AccountResponse", "MemberResponse", "TransactionsResponseBodyIncludes"):
        assert facts["schemas"][name]
    assert facts["operations"]["POST /users/{user_guid}/members"] == [200, 202]
    assert facts["operations"]["DELETE /users/{user_guid}"] == [204]
    account = facts["schemas"]["AccountResponse"]["properties"]
    assert account["created_at"] == {"type": "string", "nullable": False}
    assert account["balance"] == {"type": "number", "nullable": True}


def test_facts_match_mx_file() -> None:
    """Re-extract from MX's file when it is present: the committed copy must be current."""
    if not SPEC_PATH.exists():
        skip_or_fail(f"MX OpenAPI file not found at {SPEC_PATH} (set OPENAGG_MX_SPEC)")
    pytest.importorskip("yaml")
    fresh = render(extract(load_spec(SPEC_PATH)))
    assert fresh == FACTS_PATH.read_text(encoding="utf-8"), (
        "tests/compat/mx_facts.json is stale: run .venv/bin/python tests/compat/extract_mx_facts.py"
    )
