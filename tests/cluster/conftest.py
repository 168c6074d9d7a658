"""Many real processes on one PostgreSQL: API processes, worker processes, and a
private PostgreSQL server the tests may stop and start."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import VENV_BIN, create_client_with_cli, free_port, openagg_env
from tests.databases import ON_POSTGRES, new_postgres_database, psql, scalar
from tests.support import credentials_for, skip_or_fail, wait_healthy

PG_BIN = Path("/usr/lib/postgresql")


@dataclass
class Cluster:
    """`openagg serve --no-worker` and `openagg worker` processes sharing one database."""

    tmp: Path
    env: dict[str, str]
    client_id: str = ""
    api_key: str = ""
    apis: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return self.env["OPENAGG_DATABASE_URL"]

    def _spawn(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        with (self.tmp / log).open("ab") as out:
            process = subprocess.Popen(
                [str(VENV_BIN / "openagg"), *args], env=self.env, stdout=out, stderr=out
            )
        self.processes.append(process)
        return process

    def start_api(self) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = self._spawn("serve", "--no-worker", "--port", str(port), log=f"api-{port}.log")
        wait_healthy(url, process)
        self.apis.append(url)
        return url

    def start_worker(self, concurrency: int) -> subprocess.Popen[bytes]:
        n = len(self.workers)
        worker = self._spawn("worker", "--concurrency", str(concurrency), log=f"worker-{n}.log")
        self.workers.append(worker)
        return worker

    def wait_workers_ready(self, timeout: float = 60) -> None:
        """Until every worker has migrated and listens for jobs (a worker still in its
        start-up migration does not retry it)."""
        deadline = time.monotonic() + timeout
        for n in range(len(self.workers)):
            log = self.tmp / f"worker-{n}.log"
            while not (log.exists() and "listening for new jobs" in log.read_text()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"worker-{n} is not ready\n{self.logs()}")
                assert self.workers[n].poll() is None, f"worker-{n} exited\n{self.logs()}"
                time.sleep(0.1)

    def client(self, api: int = 0) -> httpx.Client:
        return httpx.Client(
            base_url=self.apis[api], auth=(self.client_id, self.api_key), timeout=30
        )

    def count(self, sql: str) -> int:
        return scalar(self.database_url, sql)

    def rows(self, sql: str) -> str:
        """Rows as text, for assertion messages."""
        return psql(sql, self.database_url)

    def wait_until(self, sql: str, expected: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (seen := self.count(sql)) != expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sql!r} is {seen}, expected {expected}\n{self.logs()}")
            for p in self.workers:
                assert p.poll() is None or p.returncode == -9, f"worker exited\n{self.logs()}"
            time.sleep(0.5)

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in self.tmp.glob("*.log"))

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def make_cluster(tmp: Path, **env: str) -> Cluster:
    """A cluster on a new database of the test PostgreSQL server (unless ``env`` names one)."""
    env.setdefault("OPENAGG_DATABASE_URL", new_postgres_database(migrated=False))
    cluster = Cluster(tmp, openagg_env(tmp, **env))
    creds = create_client_with_cli(cluster.env, "Cluster test")
    cluster.client_id, cluster.api_key = creds["client_id"], creds["api_key"]
    return cluster


# These tests are about PostgreSQL; they run once, in the PostgreSQL pass of the suite.
only_on_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="multi-process tests run in the PostgreSQL pass (make test-postgresql)"
)


DUPLICATE_TRANSACTIONS = (
    "SELECT count(*) FROM (SELECT 1 FROM transactions GROUP BY account_id, external_id "
    "HAVING count(*) > 1) AS d"
)
UNFINISHED_JOBS = "SELECT count(*) FROM jobs WHERE state NOT IN ('succeeded', 'failed')"


def create_members(cluster: Cluster, count: int, *, users: int = 20) -> None:
    """Create ``count`` mxbank members through every API process; each create is the
    member's one trigger (automatic aggregation)."""
    clients = [cluster.client(i) for i in range(len(cluster.apis))]
    creds = clients[0].get("/institutions/mxbank/credentials").json()["credentials"]
    user_guids = [
        clients[0].post("/users", json={"user": {"id": f"u{i}"}}).json()["user"]["guid"]
        for i in range(users)
    ]

    def create(i: int) -> int:
        http = clients[i % len(clients)]
        body = {
            "member": {
                "institution_code": "mxbank",
                "credentials": credentials_for(creds, "mxuser", f"pw-{i}"),
            }
        }
        return http.post(f"/users/{user_guids[i % users]}/members", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, range(count)))
    assert codes == [202] * count
    for http in clients:
        http.close()


def assert_each_member_aggregated_once(cluster: Cluster, members: int) -> None:
    assert cluster.count("SELECT count(*) FROM members") == members
    assert cluster.count("SELECT count(*) FROM members WHERE connection_status = 'CONNECTED'") == (
        members
    )
    assert cluster.count("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == members
    assert cluster.count("SELECT count(*) FROM jobs WHERE active_member_id IS NOT NULL") == 0
    # One finished attempt per member: nobody aggregated twice, nobody skipped.
    assert cluster.count("SELECT count(*) FROM attempts WHERE cause = 'OK'") == members
    assert cluster.count("SELECT count(DISTINCT member_id) FROM attempts") == members
    assert cluster.count(DUPLICATE_TRANSACTIONS) == 0


# --- a PostgreSQL server of the test's own -----------------------------------------


def _pg_tool(name: str) -> str:
    found = sorted(PG_BIN.glob(f"*/bin/{name}"))
    if not found:
        skip_or_fail(f"PostgreSQL server binaries ({name}) not found under {PG_BIN}")
    return str(found[-1])


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster on its own port, so a test can stop it."""

    data: Path
    port: int

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"{' '.join(args)} failed:\n{out.stdout}{out.stderr}")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        self._run(_pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _pg_tool("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.data / "server.log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(_pg_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    # Not under pytest's temp dir: the postgres user must reach it, and pytest keeps
    # its own tree private (0700) for root.
    base = Path(tempfile.mkdtemp(prefix="openagg-pg-"))
    base.chmod(0o711)
    server = PrivatePostgres(base / "data", free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(RuntimeError):
            server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
