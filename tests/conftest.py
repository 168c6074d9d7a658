"""Fixtures: an in-process platform with a controllable clock, and a live server."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from openagg.api.app import create_app
from openagg.engine.worker import Worker
from openagg.runtime import Runtime, build_runtime
from openagg.services.admin import seed_institutions
from openagg.services.clients import create_client
from openagg.settings import Settings
from openagg.testing.conformance import drain
from tests.databases import (
    ON_POSTGRES,
    database_url_for,
    drop_created_databases,
    postgres_available,
)
from tests.support import wait_healthy

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def pytest_sessionstart(session: pytest.Session) -> None:
    if ON_POSTGRES and not postgres_available():
        # The whole run needs the server: stop here, failing only where it must exist.
        required = os.environ.get("OPENAGG_REQUIRE_ALL") == "1"
        pytest.exit("OPENAGG_TEST_BACKEND=postgresql but no PostgreSQL answers", int(required))


def pytest_sessionfinish(session: pytest.Session) -> None:
    drop_created_databases()


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    """Settings on a migrated database of the test's own (unless ``overrides`` name one)."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "delayed_after_seconds": 3600,
        "background_jitter_seconds": 0,
        "lease_seconds": 30,
        # Test receivers listen on 127.0.0.1.
        "webhook_allow_private_addresses": True,
    }
    values.update(overrides)
    if "database_url" not in values:
        values["database_url"] = database_url_for(tmp_path)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Platform:
    """An in-process platform: API over ASGI, jobs run on demand by `drain`."""

    rt: Runtime
    clock: Clock
    http: httpx.AsyncClient
    worker: Worker
    app: FastAPI

    async def drain(self, timeout: float = 20) -> None:
        """Run queued jobs (and what they enqueue) until the queue is idle."""
        await drain(self.worker, timeout)


async def make_platform(settings: Settings) -> tuple[Platform, str]:
    rt = build_runtime(settings)
    clock = Clock()
    rt.clock = clock
    await seed_institutions(rt)
    new = await create_client(rt, "Test client")
    app = create_app(rt, run_worker=False)
    token = base64.b64encode(f"{new.client.client_id}:{new.api_key}".encode()).decode()
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://openagg.test",
        headers={"Authorization": f"Basic {token}", "Accept": "application/vnd.mx.api.v1+json"},
    )
    return Platform(rt, clock, http, Worker(rt, concurrency=50), app), new.api_key


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = settings_for(tmp_path)
    s.ensure_data_dir()
    return s


@pytest.fixture
async def platform(settings: Settings) -> AsyncIterator[Platform]:
    p, _ = await make_platform(settings)
    yield p
    await p.http.aclose()
    await p.rt.db.dispose()


# --- live server -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    client_id: str
    api_key: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def start(self) -> None:
        """(Re)start the server process on the same port and database."""
        port = self.url.rsplit(":", 1)[1]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "openagg"), "serve", "--port", port],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_healthy(self.url, self.process)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


def openagg_env(tmp: Path, **overrides: str) -> dict[str, str]:
    """The environment of an `openagg` process for a test: its own database and data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAGG_")}
    env.update(
        OPENAGG_DATABASE_URL=database_url_for(tmp),
        OPENAGG_DATA_DIR=str(tmp / "data"),
        OPENAGG_POLL_INTERVAL_SECONDS="0.1",
        OPENAGG_SCHEDULER_INTERVAL_SECONDS="1",
        OPENAGG_WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",  # test receivers are on 127.0.0.1
    )
    env.update(overrides)
    return env


def create_client_with_cli(env: dict[str, str], name: str = "Live test") -> dict[str, str]:
    """``openagg clients create --json`` (which also migrates): {client_id, api_key}."""
    out = subprocess.run(
        [str(VENV_BIN / "openagg"), "clients", "create", "--name", name, "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    creds: dict[str, str] = json.loads(out.stdout)
    return creds


def create_operator_with_cli(env: dict[str, str], name: str, email: str) -> str:
    """``openagg operators create`` on the database of ``env``; returns the password."""
    out = subprocess.run(
        [str(VENV_BIN / "openagg"), "operators", "create", "--name", name, "--email", email],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(r"^password: (\S+)$", out, re.MULTILINE)
    assert found, out
    return found.group(1)


def start_live_server(tmp: Path, **env_overrides: str) -> LiveServer:
    env = openagg_env(tmp, **env_overrides)
    creds = create_client_with_cli(env)
    server = LiveServer(
        url=f"http://127.0.0.1:{free_port()}",
        client_id=creds["client_id"],
        api_key=creds["api_key"],
        env=env,
        process=None,  # type: ignore[arg-type]
        log_path=tmp / "server.log",
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_live_server(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()
