"""Kill -9 the server while aggregations run, start it again: no job lost, no member
left being aggregated, no duplicate transaction."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, start_live_server
from tests.databases import scalar
from tests.support import credentials_for

MEMBERS = 30
DUPLICATE_TRANSACTIONS = (
    "SELECT count(*) FROM (SELECT 1 FROM transactions GROUP BY account_id, external_id "
    "HAVING count(*) > 1) AS d"
)


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_live_server(
        tmp_path,
        OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS="300",
        OPENAGG_LEASE_SECONDS="2",
        OPENAGG_SCHEDULER_INTERVAL_SECONDS="0.5",
        OPENAGG_WORKER_CONCURRENCY="10",
    )
    yield server
    server.stop()


def wait_idle(http: httpx.Client, user: str, timeout: float = 90) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = http.get(f"/users/{user}/members", params={"records_per_page": 100}).json()[
            "members"
        ]
        if not any(m["is_being_aggregated"] for m in members):
            return members  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise TimeoutError("members still being aggregated")


def test_kill_during_aggregation_and_restart(slow_server: LiveServer) -> None:
    http = httpx.Client(
        base_url=slow_server.url, auth=(slow_server.client_id, slow_server.api_key), timeout=10
    )
    user = http.post("/users", json={"user": {"id": "crash"}}).json()["user"]["guid"]
    creds = http.get("/institutions/mxbank/credentials").json()["credentials"]
    for i in range(MEMBERS):
        body = {
            "member": {
                "institution_code": "mxbank",
                "credentials": credentials_for(creds, "mxuser", f"pw-{i}"),
            }
        }
        assert http.post(f"/users/{user}/members", json=body).status_code == 202
    time.sleep(1.0)
    db = slow_server.env["OPENAGG_DATABASE_URL"]
    running = scalar(db, "SELECT count(*) FROM jobs WHERE state='running'")
    assert running > 0, "the kill must land while jobs run"

    slow_server.kill()
    slow_server.start()

    members = wait_idle(http, user)
    assert len(members) == MEMBERS
    assert {m["connection_status"] for m in members} == {"CONNECTED"}
    assert scalar(db, "SELECT count(*) FROM jobs WHERE active_member_id IS NOT NULL") == 0
    assert scalar(db, "SELECT count(*) FROM jobs WHERE state='succeeded'") == MEMBERS
    assert scalar(db, DUPLICATE_TRANSACTIONS) == 0
    total = http.get(f"/users/{user}/transactions").json()["pagination"]["total_entries"]
    # Aggregating everyone again finds nothing new: nothing was half-ingested.
    for m in members:
        assert http.post(f"/users/{user}/members/{m['guid']}/aggregate").status_code == 202
    wait_idle(http, user)
    assert http.get(f"/users/{user}/transactions").json()["pagination"]["total_entries"] == total
    http.close()
