"""MX's official Python SDK, unmodified, against a live OpenAgg server.

Each scenario in ``sdk_scenario.py`` runs in the SDK's own venv (it needs
pydantic 1) and prints one JSON line of facts; these tests check the facts. Any
SDK exception, a pydantic ValidationError included, makes the script exit non-zero.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, start_live_server
from tests.support import skip_or_fail

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "sdk_scenario.py"
SCENARIO_TIMEOUT = 120


def sdk_python() -> Path:
    """The SDK venv's interpreter: $OPENAGG_SDK_PYTHON (relative to the repo root
    when relative), else .venv-sdk/bin/python."""
    configured = os.environ.get("OPENAGG_SDK_PYTHON")
    path = Path(configured) if configured else REPO / ".venv-sdk/bin/python"
    if not path.is_absolute():
        path = REPO / path
    return path


@pytest.fixture(scope="module")
def sdk() -> Path:
    """The SDK interpreter, after checking that it can import the SDK."""
    python = sdk_python()
    if not python.exists():
        skip_or_fail(f"the SDK venv is missing ({python}); run `make test` to build it")
    probe = subprocess.run(
        [str(python), "-c", "import mx_platform_python"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        skip_or_fail(f"mx-platform-python is not installed in {python}: {probe.stderr}")
    return python


def run_scenario(sdk: Path, server: LiveServer, name: str) -> dict[str, Any]:
    """Run one scenario; fail with the script's stderr unless it exits 0."""
    try:
        proc = subprocess.run(
            [str(sdk), str(SCRIPT), server.url, server.client_id, server.api_key, name],
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT,
            cwd=SCRIPT.parent,
        )
    except subprocess.TimeoutExpired as exc:
        raw: bytes | str | None = exc.stderr
        stderr = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        pytest.fail(f"scenario {name} timed out after {SCENARIO_TIMEOUT}s; stderr:\n{stderr}")
    assert proc.returncode == 0, (
        f"scenario {name} exited {proc.returncode}\nstderr:\n{proc.stderr}\nstdout:\n{proc.stdout}"
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"scenario {name} printed nothing; stderr:\n{proc.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def test_full_journey(sdk: Path, live_server: LiveServer) -> None:
    """Every core SDK call, end to end, without an SDK validation error."""
    r = run_scenario(sdk, live_server, "full")
    assert "mxbank" in r["institution_search_codes"]
    assert r["institution_search_per_page"] == 10
    assert "mxbank" not in r["statement_filter_codes"]
    assert r["institution_total"] >= 3
    assert r["institution"]["code"] == "mxbank"
    assert r["institution"]["supports_account_verification"] is True
    assert r["credential_fields"] == ["LOGIN", "PASSWORD"]

    assert r["create_status"] == 202
    assert r["create_is_being_aggregated"] is True
    assert r["connected_status"] == "CONNECTED"
    assert r["member_credentials"] == 2
    assert r["member_count"] == 1
    assert r["read_member"]["connection_status"] == "CONNECTED"
    assert r["read_member"]["is_being_aggregated"] is False
    assert r["read_member"]["institution_code"] == "mxbank"
    assert r["read_member"]["successfully_aggregated_at"]

    assert r["user_account_count"] > 0
    assert r["member_account_count"] == r["user_account_count"]
    assert r["read_account_guid_matches"] is True
    assert r["read_account_by_member_guid_matches"] is True

    tx = r["transactions"]
    assert tx["user_total"] > 10
    assert tx["user_page"] == 10
    assert tx["user_per_page"] == 10
    assert tx["member_total"] == tx["user_total"]
    assert 0 < tx["account_total"] <= tx["user_total"]
    assert tx["page2_current_page"] == 2
    assert tx["with_includes"] > 0
    assert r["read_transaction_type"] == "TransactionsResponseBodyIncludes"

    assert r["holding_count"] > 0
    assert r["member_holding_count"] == r["holding_count"]
    assert r["account_holding_count"] > 0
    assert r["read_holding_guid_matches"] is True

    jobs = r["jobs"]
    assert jobs["check_balances"] == 202
    assert jobs["identify_member"] == 202
    assert jobs["account_owner_count"] > 0
    assert jobs["verify_member"] == 200
    assert jobs["verify_has_body"] is True
    assert jobs["account_number_count"] > 0

    assert json.loads(r["updated_metadata"]) == {"updated": True}
    assert r["list_users_by_id"] == [r["user_guid"]]
    assert r["list_users_by_email"] == [r["user_guid"]]
    assert r["user_guid"] not in r["list_users_disabled_guids"]
    assert r["delete_member_status"] == 204
    assert r["read_deleted_member_error"] == 404
    assert r["delete_user_status"] == 204
    assert r["read_deleted_user_error"] == 404


@pytest.mark.parametrize(
    ("password", "challenge_type"),
    [("challenge", "TEXT"), ("options", "OPTIONS"), ("image", "IMAGE_DATA")],
)
def test_mfa_each_type(
    sdk: Path, live_server: LiveServer, mfa: dict[str, Any], password: str, challenge_type: str
) -> None:
    """Each mxbank MFA password: CHALLENGED, answered with `correct`, CONNECTED."""
    facts = mfa[password]
    assert facts["create_status"] == 202
    assert facts["challenges_status"] == 200
    assert facts["challenge_count"] == 1
    assert facts["challenge_type"] == challenge_type
    assert facts["challenge_guid"].startswith("CRD-")
    assert facts["has_options"] is (challenge_type == "OPTIONS")
    assert facts["has_image_data"] is (challenge_type == "IMAGE_DATA")
    assert facts["resume_status"] == 202
    assert facts["final_status"] == "CONNECTED"
    assert facts["challenges_after_status"] == 204


def test_mfa_two_rounds(mfa: dict[str, Any]) -> None:
    """Answering the first TEXT challenge with `challenge` asks a second question."""
    multi = mfa["multi"]
    assert multi["first"]["resume_status"] == 202
    assert multi["second"]["challenge_guid"] != multi["first"]["challenge_guid"]
    assert multi["second"]["resume_status"] == 202
    assert multi["final_status"] == "CONNECTED"


@pytest.fixture(scope="module")
def mfa(sdk: Path, live_server: LiveServer) -> dict[str, Any]:
    """The `mfa` scenario's facts, run once for the MFA tests."""
    return run_scenario(sdk, live_server, "mfa")


def test_denied_then_update(sdk: Path, live_server: LiveServer) -> None:
    """DENIED -> aggregate is 422 -> new credentials aggregate automatically."""
    r = run_scenario(sdk, live_server, "denied_then_update")
    assert r["create_status"] == 202
    assert r["denied_status"] == "DENIED"
    assert r["denied_message"]
    assert r["aggregate_error"] == 422
    assert r["update_status"] == 200
    assert r["update_is_being_aggregated"] is True
    assert r["final_status"] == "CONNECTED"


def test_throttle(sdk: Path, live_server: LiveServer) -> None:
    """A throttled aggregate is a 202 no-op; mxbank is never throttled."""
    r = run_scenario(sdk, live_server, "throttle")
    sandbox = r["sandbox"]
    assert sandbox["aggregate_status"] == 202
    assert sandbox["is_being_aggregated"] is False
    assert sandbox["response"] == sandbox["before"]
    assert sandbox["after"] == sandbox["before"]
    assert sandbox["before"]["connection_status"] == "CONNECTED"
    mxbank = r["mxbank"]
    assert mxbank["aggregate_status"] == 202
    assert mxbank["is_being_aggregated"] is True
    assert mxbank["final_status"] == "CONNECTED"


def test_skip_aggregation(sdk: Path, live_server: LiveServer) -> None:
    """skip_aggregation: 200, CREATED, no job; a later aggregate connects it."""
    r = run_scenario(sdk, live_server, "skip_aggregation")
    assert r["create_status"] == 200
    assert r["connection_status"] == "CREATED"
    assert r["is_being_aggregated"] is False
    assert r["status_after"] == "CREATED"
    assert r["status_is_being_aggregated"] is False
    assert r["aggregate_status"] == 202
    assert r["final_status"] == "CONNECTED"


@pytest.fixture(scope="module")
def spec_shape_server(sdk: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A second server configured to answer read_transaction in the spec's shape."""
    server = start_live_server(
        tmp_path_factory.mktemp("spec-shape"), OPENAGG_READ_TRANSACTION_SHAPE="spec"
    )
    yield server
    server.stop()


def test_read_transaction_real_shape(sdk: Path, live_server: LiveServer) -> None:
    """Default (MX's real `{"transaction":…}`): the SDK gets an empty object, no error."""
    r = run_scenario(sdk, live_server, "read_transaction")
    assert r["status"] == 200
    assert r["type"] == "TransactionsResponseBodyIncludes"
    assert r["items"] == 0


def test_read_transaction_spec_shape(sdk: Path, spec_shape_server: LiveServer) -> None:
    """With the spec shape the SDK reads the one transaction."""
    r = run_scenario(sdk, spec_shape_server, "read_transaction")
    assert r["status"] == 200
    assert r["items"] == 1
    assert r["guid_matches"] is True
    assert r["amount_matches"] is True
