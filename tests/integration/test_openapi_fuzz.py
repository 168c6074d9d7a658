"""Schemathesis against a live server, from the server's own /openapi.json: no answer
may be a server error, break its schema or carry an undocumented status code.

The suite's run is short and repeatable (a few examples per operation, a fixed seed, a
examples bound the time); ``make fuzz`` runs the same with more (OPENAGG_FUZZ_EXAMPLES,
OPENAGG_FUZZ_SECONDS, OPENAGG_FUZZ_SEED)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, LiveServer, start_live_server

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_live_server(tmp_path_factory.mktemp("fuzz"))
    yield live
    live.stop()


def test_schemathesis_finds_nothing(server: LiveServer, tmp_path: Path) -> None:
    st = VENV_BIN / "st"
    if not st.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    examples = os.environ.get("OPENAGG_FUZZ_EXAMPLES", "10")
    seconds = os.environ.get("OPENAGG_FUZZ_SECONDS")
    command = [
        str(st),
        "run",
        f"{server.url}/openapi.json",
        "--auth",
        f"{server.client_id}:{server.api_key}",
        "--checks",
        CHECKS,
        "--max-examples",
        examples,
        "--seed",
        os.environ.get("OPENAGG_FUZZ_SEED", "20111101"),
        "--workers",
        "1",
        "--phases",
        "examples,fuzzing",
        "--generation-database",
        "none",
        "--no-shrink",
        "--request-timeout",
        "10",
        "--no-color",
        "--output-truncate",
        "false",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    if seconds:
        # Fuzzing then repeats until the time is spent (make fuzz).
        command += ["--max-time", seconds]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=int(seconds or 0) + 900,
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-3000:]
