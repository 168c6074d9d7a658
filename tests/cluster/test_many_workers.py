"""Several worker processes and API processes on one PostgreSQL database."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import (
    UNFINISHED_JOBS,
    Cluster,
    assert_each_member_aggregated_once,
    create_members,
    make_cluster,
    only_on_postgres,
)
from tests.conftest import openagg_env
from tests.databases import new_postgres_database

pytestmark = only_on_postgres

MEMBERS = int(os.environ.get("OPENAGG_CLUSTER_MEMBERS", "2000"))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = make_cluster(
        tmp_path,
        OPENAGG_SCHEDULER_INTERVAL_SECONDS="0.5",
        OPENAGG_DATABASE_POOL_SIZE="4",  # 6 processes stay well under max_connections
    )
    yield c
    c.stop()


def test_four_workers_aggregate_every_member_exactly_once(cluster: Cluster) -> None:
    cluster.start_api()
    cluster.start_api()
    for _ in range(4):
        cluster.start_worker(concurrency=25)
    create_members(cluster, MEMBERS)
    cluster.wait_until(UNFINISHED_JOBS, 0, timeout=600)

    assert_each_member_aggregated_once(cluster, MEMBERS)
    # No job was claimed twice, and the four processes shared the work.
    twice = "SELECT id, kind, trigger, attempts, last_error FROM jobs WHERE attempts <> 1"
    assert cluster.rows(twice) == ""
    assert cluster.count("SELECT count(DISTINCT worker_id) FROM jobs") == 4


def test_killed_worker_jobs_are_taken_over(cluster: Cluster) -> None:
    cluster.env["OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS"] = "150"  # ~1.4 s per aggregation
    cluster.env["OPENAGG_LEASE_SECONDS"] = "3"  # the dead worker's jobs come back soon
    cluster.start_api()
    victim = cluster.start_worker(concurrency=20)
    create_members(cluster, 60)
    # Kill the worker while it holds running jobs, then let two others finish.
    victim_jobs = (
        f"SELECT count(*) FROM jobs WHERE state = 'running' AND worker_id LIKE '%:{victim.pid}:%'"
    )
    deadline = time.monotonic() + 30
    while cluster.count(victim_jobs) == 0:
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(0.1)
    victim.kill()
    victim.wait()
    cluster.start_worker(concurrency=20)
    cluster.start_worker(concurrency=20)
    cluster.wait_until(UNFINISHED_JOBS, 0, timeout=180)

    assert_each_member_aggregated_once(cluster, 60)
    assert cluster.count("SELECT count(*) FROM jobs WHERE attempts > 1") > 0, "no takeover seen"


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, openagg_env(tmp_path))
    cluster.env["OPENAGG_DATABASE_URL"] = new_postgres_database(migrated=False)
    migrations = [cluster._spawn("migrate", log=f"migrate-{i}.log") for i in range(4)]
    assert [m.wait(120) for m in migrations] == [0, 0, 0, 0], cluster.logs()
    assert cluster.count("SELECT count(*) FROM alembic_version") == 1
