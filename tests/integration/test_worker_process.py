"""The standalone worker process stops cleanly and promptly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN


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
