"""MX's managed data: MX's SDK drives all 16 operations against a live server, and
managed data shows in the ordinary lists but is never aggregated."""

from __future__ import annotations

from pathlib import Path

from tests.compat.test_sdk import run_scenario, sdk  # noqa: F401  (the sdk fixture)
from tests.conftest import LiveServer


def test_mx_sdk_drives_all_16_managed_data_operations(
    sdk: Path,  # noqa: F811  (the fixture imported above)
    live_server: LiveServer,
) -> None:
    r = run_scenario(sdk, live_server, "managed_data")
    assert "mxbank" in r["institution_codes"] and "statement_file" in r["institution_codes"]
    assert r["member"] == ["My managed bank", "partner-m-1", False, None]
    assert r["managed_members"] and r["member_renamed"]
    assert r["account"] == ["acct-1", "Managed checking", "CHECKING", 1000.5, 1.5]
    assert r["account_balance"] == 900.25
    assert r["managed_accounts"] == 1
    assert r["transaction"] == ["txn-1", 61.11, "DEBIT", "2026-03-01T12:00:00Z", "groceries"]
    assert r["transaction_description"] == "Whole Foods Market"
    assert r["managed_transactions"] == 1
    assert r["in_members"] and r["in_accounts"] and r["in_transactions"]
    assert r["aggregate_error"] == 422
    assert (r["after_transaction_delete"], r["after_account_delete"]) == (0, 0)
    assert r["after_member_delete"] == 0
