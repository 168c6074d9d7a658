"""PostgreSQL goes away in the middle of a run and comes back: the API says so with a
503 while it is away, and API and workers reconnect and finish the work."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.cluster.conftest import (
    UNFINISHED_JOBS,
    PrivatePostgres,
    assert_each_member_aggregated_once,
    create_members,
    make_cluster,
    only_on_postgres,
)
from tests.conftest import VENV_BIN, openagg_env

pytestmark = only_on_postgres
MEMBERS = 40


def test_restart_postgres_during_a_run(private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    cluster = make_cluster(
        tmp_path,
        OPENAGG_DATABASE_URL=private_postgres.url,
        OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS="100",
        OPENAGG_LEASE_SECONDS="5",
        OPENAGG_SCHEDULER_INTERVAL_SECONDS="0.5",
    )
    try:
        cluster.start_api()
        cluster.start_worker(concurrency=10)
        cluster.start_worker(concurrency=10)
        cluster.wait_workers_ready()
        create_members(cluster, MEMBERS)
        cluster.wait_until("SELECT least(count(*), 1) FROM jobs WHERE state = 'running'", 1, 30)

        private_postgres.stop("immediate")  # as a crash: no goodbye to the clients
        with cluster.client() as http:
            r = http.get("/users")
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert "database" in error["message"].lower()
            assert "Traceback" not in r.text
            time.sleep(3)  # workers and scheduler keep failing meanwhile; none may exit

            private_postgres.start()
            cluster.wait_until(UNFINISHED_JOBS, 0, timeout=180)
            assert http.get("/users").status_code == 200
        assert_each_member_aggregated_once(cluster, MEMBERS)
        assert all(w.poll() is None for w in cluster.workers), cluster.logs()
    finally:
        cluster.stop()


def test_a_worker_started_before_the_database_waits_for_it(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    private_postgres.stop()
    env = openagg_env(tmp_path, OPENAGG_DATABASE_URL=private_postgres.url)
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [str(VENV_BIN / "openagg"), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        time.sleep(3)
        assert worker.poll() is None, log.read_text()
        assert "database unavailable" in log.read_text()
        private_postgres.start()
        deadline = time.monotonic() + 60
        while "listening for new jobs" not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(10)
