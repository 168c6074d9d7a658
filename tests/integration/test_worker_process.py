"""The standalone worker process stops cleanly and promptly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import VENV_BIN, create_client_with_cli, free_port, openagg_env
from tests.support import MXBANK_PASSWORD, MXBANK_USERNAME, wait_healthy


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_worker_stops_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    env = {
        "OPENAGG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/openagg.db",
        "OPENAGG_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        # Idle waits this long must not delay the stop.
        "OPENAGG_POLL_INTERVAL_SECONDS": "60",
        "OPENAGG_SCHEDULER_INTERVAL_SECONDS": "60",
        "OPENAGG_WEBHOOK_POLL_INTERVAL_SECONDS": "60",
    }
    proc = subprocess.Popen(
        [str(VENV_BIN / "openagg"), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not (tmp_path / "openagg.db").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == 0


def test_worker_serves_its_own_metrics(tmp_path: Path) -> None:
    """`openagg worker --metrics-port` exposes the jobs this process ran."""
    env = openagg_env(tmp_path)
    creds = create_client_with_cli(env)
    url = f"http://127.0.0.1:{free_port()}"
    api = subprocess.Popen(
        [str(VENV_BIN / "openagg"), "serve", "--no-worker", "--port", url.rsplit(":", 1)[1]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_healthy(url, api)
    metrics_port = free_port()
    worker = subprocess.Popen(
        [str(VENV_BIN / "openagg"), "worker", "--metrics-port", str(metrics_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(
            base_url=url, auth=(creds["client_id"], creds["api_key"]), timeout=10
        ) as c:
            credentials = [
                {"guid": MXBANK_USERNAME, "value": "mxuser"},
                {"guid": MXBANK_PASSWORD, "value": "pass"},
            ]
            user = c.post("/users", json={"user": {}}).json()["user"]["guid"]
            member = c.post(
                f"/users/{user}/members",
                json={"member": {"institution_code": "mxbank", "credentials": credentials}},
            ).json()["member"]["guid"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status = c.get(f"/users/{user}/members/{member}/status").json()["member"]
                if status["connection_status"] == "CONNECTED":
                    break
                time.sleep(0.2)
            assert status["connection_status"] == "CONNECTED"
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        counts = [
            line
            for line in text.splitlines()
            if line.startswith("openagg_job_duration_seconds_count") and 'kind="aggregate"' in line
        ]
        assert counts and float(counts[0].rsplit(" ", 1)[1]) >= 1, text
    finally:
        worker.terminate()
        api.terminate()
        worker.wait(10)
        api.wait(10)
