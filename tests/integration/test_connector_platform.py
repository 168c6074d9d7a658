"""The connector platform: a connector shipped as its own package (tests/
connector_plugin) found through its entry point, institutions added with the CLI,
secrets a connector earns kept across jobs, the deadline, a connector that blocks the
event loop, the start-up check, and the conformance suite."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from openagg import metrics
from openagg.connectors import Cause, ConnectorError
from openagg.connectors.registry import installed
from openagg.db.models import Attempt, Member
from openagg.engine.stalls import STALL_SECONDS
from openagg.queue import member_queue_view
from openagg.services import vault
from openagg.services.institutions import InstitutionInput, add_institution, list_institutions
from openagg.testing import Scenario, ScriptedConnector, Step, run_conformance, transaction
from tests.compat.test_sdk import run_scenario, sdk  # noqa: F401  (the sdk fixture)
from tests.conftest import (
    VENV_BIN,
    Platform,
    create_client_with_cli,
    openagg_env,
    start_live_server,
)
from tests.databases import ON_POSTGRES, psql
from tests.integration.api_helpers import create_member, new_user
from tests.integration.fake_json_bank import API_SECRET, PASSWORD, USERNAME, running_bank
from tests.support import MXBANK_CREDENTIALS, skip_or_fail


def openagg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "openagg"), *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def plugin() -> None:
    if "testbank" not in installed():
        skip_or_fail("tests/connector_plugin is not installed (make test installs it)")


def test_a_plugin_connector_serves_an_institution_added_while_running(
    plugin: None,
    sdk: Path,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    with running_bank() as (bank, url):
        server = start_live_server(tmp_path, OPENAGG_CONNECTOR_ALLOW_PRIVATE_ADDRESSES="true")
        try:
            listed = openagg(server.env, "connectors", "list")
            assert "testbank\topenagg-test-connector 0.3.0\t0 institution(s)" in listed.stdout
            # Added while the server runs: no restart.
            added = openagg(
                server.env, "institutions", "add", "--connector", "testbank",
                "--code", "test_bank", "--name", "Test Bank", "--url", "https://bank.test",
                "--option", f"base_url={url}", "--option", f"api_secret={API_SECRET}",
            )  # fmt: skip
            assert added.returncode == 0, added.stderr
            shown = openagg(server.env, "institutions", "list").stdout
            assert "test_bank\ttestbank\t0 members\tTest Bank" in shown
            assert "api_secret=***" in shown and API_SECRET not in shown

            r = run_scenario(sdk, server, "plugin_bank")
        finally:
            server.stop()
        log = server.log_path.read_text()
    assert r["institution_name"] == "Test Bank"
    assert (r["create_status"], r["first_status"]) == (202, "CONNECTED")
    assert (r["update_status"], r["update_is_being_aggregated"]) == (200, True)
    assert r["second_status"] == "CONNECTED"
    assert [t[0] for t in r["transactions"]] == ["t-1", "t-2", "t-3"]  # p-1 replaced by t-3
    # The device the bank registered on the first sign-in came back on the second.
    first, second = bank.devices_seen
    assert first is None and second is not None and second.startswith("device-")
    # The connector logged its credentials; the platform's logger took them out.
    assert "signed in for MBR-" in log and PASSWORD not in log and API_SECRET not in log


def test_the_plugin_passes_the_conformance_suite(plugin: None, tmp_path: Path) -> None:
    with running_bank() as (_bank, url):
        scenario = {
            "connector": "testbank",
            "institution": {
                "code": "test_bank",
                "name": "Test Bank",
                "options": {"base_url": url, "api_secret": API_SECRET},
            },
            "connects": {"credentials": {"LOGIN": USERNAME, "PASSWORD": PASSWORD}},
            "errors": [
                {
                    "credentials": {"LOGIN": USERNAME, "PASSWORD": "nope"},
                    "cause": "BAD_CREDENTIALS",
                },
                {"credentials": {"LOGIN": "locked", "PASSWORD": "x"}, "cause": "LOCKED_OUT"},
            ],
        }
        path = tmp_path / "scenario.json"
        path.write_text(json.dumps(scenario))
        done = openagg(
            openagg_env(tmp_path), "connectors", "check", "testbank", "--scenario", str(path)
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout
    assert "ok   second pull stores nothing twice (pending->posted)" in done.stdout


@pytest.mark.parametrize("name", ["sandbox-mxbank", "sandbox-bank", "sandbox-oauth"])
async def test_the_sandbox_passes_the_conformance_suite(name: str, tmp_path: Path) -> None:
    import openagg.testing

    path = Path(openagg.testing.__file__).parent / "scenarios" / f"{name}.json"
    report = await run_conformance(Scenario.load(path), workdir=tmp_path)
    assert report.ok, report.text()


async def test_a_broken_connector_fails_the_conformance_suite(tmp_path: Path) -> None:
    """The suite can fail: a connector that stores a transaction twice under two
    ids... is fine; one that logs a password without the platform's logger is not."""

    class Leaky(ScriptedConnector):
        async def login(self, ctx, credentials):  # type: ignore[no-untyped-def]
            import logging

            logging.getLogger("leaky").warning("password is %s", credentials.get("PASSWORD"))
            return await super().login(ctx, credentials)

    scenario = Scenario.from_dict(
        {
            "connector": "leaky",
            "institution": {"code": "leaky_bank", "name": "Leaky Bank"},
            "connects": {"credentials": {"LOGIN": "u", "PASSWORD": "p"}},
        }
    )
    report = await run_conformance(scenario, connector=Leaky(), workdir=tmp_path)
    assert not report.ok
    assert [c.name for c in report.checks if not c.ok] == ["no secret in the logs"]


class Blocking(ScriptedConnector):
    """Signs in with a blocking call, as a connector on a synchronous HTTP client does."""

    async def login(self, ctx, credentials):  # type: ignore[no-untyped-def]
        time.sleep(STALL_SECONDS + 0.1)
        return await super().login(ctx, credentials)


async def test_a_connector_that_blocks_the_event_loop_fails_the_suite(tmp_path: Path) -> None:
    scenario = Scenario.from_dict(
        {
            "connector": "blocking",
            "institution": {"code": "blocking_bank", "name": "Blocking Bank"},
            "connects": {"credentials": {"LOGIN": "u", "PASSWORD": "p"}},
        }
    )
    report = await run_conformance(scenario, connector=Blocking(), workdir=tmp_path)
    [failed] = [c for c in report.checks if not c.ok]
    assert failed.name == "never holds the event loop", report.text()
    assert "in login" in failed.detail and "blocking call" in failed.detail
    # A connector that awaits its bank the same time passes.
    report = await run_conformance(scenario, connector=ScriptedConnector(), workdir=tmp_path / "2")
    assert report.ok, report.text()
    assert "never holds the event loop" in report.text()


async def test_the_worker_names_a_connector_that_blocked_its_loop(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    stalls = metrics.CONNECTOR_STALLS.labels("scripted")
    before = stalls._value.get()
    path = await _scripted_member(platform, Blocking(transactions=[transaction("t-1")]))
    with caplog.at_level(logging.WARNING, logger="openagg"):
        await platform.drain()
    assert stalls._value.get() == before + 1
    lines = [r.getMessage() for r in caplog.records]
    [line] = [text for text in lines if "held the worker's event loop" in text]
    assert "connector 'scripted'" in line and "without yielding" in line
    # It is only named: the job itself went through.
    user, member = path.split("/")
    status = await platform.http.get(f"/users/{user}/members/{member}/status")
    assert status.json()["member"]["connection_status"] == "CONNECTED"


async def _scripted_member(platform: Platform, connector: ScriptedConnector, **options: str) -> str:
    platform.rt.connectors["scripted"] = connector
    await add_institution(
        platform.rt,
        InstitutionInput("scripted", "scripted_bank", "Scripted Bank", options=dict(options)),
    )
    user = await new_user(platform.http)
    made = await create_member(
        platform.http, user, "pw-123456", code="scripted_bank", username="u", expect=202
    )
    return f"{user}/{made.json()['member']['guid']}"


async def test_secrets_a_connector_earns_are_kept_across_jobs_even_when_a_job_fails(
    platform: Platform,
) -> None:
    connector = ScriptedConnector(
        [
            Step(secrets={"refresh_token": "rt-1"}),
            # Rotated, then the institution fails: the new token must still be kept.
            Step(secrets={"refresh_token": "rt-2"}, error=ConnectorError(Cause.INSTITUTION_ERROR)),
            Step(),
        ],
        transactions=[transaction("t-1")],
    )
    path = await _scripted_member(platform, connector, client_secret="cs-very-secret")
    user, member = path.split("/")
    await platform.drain()
    for _ in range(2):
        platform.clock.advance(hours=4)
        answer = await platform.http.post(f"/users/{user}/members/{member}/aggregate")
        assert answer.status_code == 202
        await platform.drain()
    logins = [held for call, _, held in connector.calls if call == "login"]
    assert logins == [{}, {"refresh_token": "rt-1"}, {"refresh_token": "rt-2"}]
    async with platform.rt.db.read() as s:
        stored = await s.scalar(select(Member).where(Member.guid == member))
        assert stored is not None
        assert vault.open_secrets(platform.rt, stored) == {"refresh_token": "rt-2"}
        # Sealed, apart from the credentials the user typed.
        assert b"rt-2" not in (stored.secrets_enc or b"")
        assert vault.open_credentials(platform.rt, stored) != {}
    rows = await list_institutions(platform.rt)
    assert {"client_secret": "***"} in [r.options for r in rows if r.code == "scripted_bank"]

    assert (await platform.http.delete(f"/users/{user}/members/{member}")).status_code == 204
    async with platform.rt.db.read() as s:
        assert await s.scalar(select(Member).where(Member.guid == member)) is None


async def test_a_hanging_connector_is_cancelled_at_the_deadline(platform: Platform) -> None:
    platform.rt.settings.job_deadline_seconds = 0.5
    path = await _scripted_member(platform, ScriptedConnector([Step(hang=True)]))
    user, member = path.split("/")
    other = await platform.http.post(
        f"/users/{user}/members",
        json={"member": {"institution_code": "mxbank", "credentials": MXBANK_CREDENTIALS}},
    )
    await platform.drain(timeout=10)
    view = await member_queue_view(platform.rt.db, member)
    assert view is not None and view.job is None  # the slot and the member are free
    assert [a.cause for a in view.attempts] == ["TIMEOUT"]
    status = await platform.http.get(f"/users/{user}/members/{other.json()['member']['guid']}")
    assert status.json()["member"]["connection_status"] == "CONNECTED"


async def test_connector_requests_to_private_addresses_are_refused(platform: Platform) -> None:
    with running_bank() as (_bank, url):
        assert not platform.rt.settings.connector_allow_private_addresses
        with pytest.raises(httpx.ConnectError, match="private or local address"):
            await platform.rt.http_for("scripted").get(f"{url}/data")


async def test_a_connector_that_cannot_reach_its_bank_is_institution_unavailable(
    platform: Platform,
) -> None:
    class Unreachable(ScriptedConnector):
        async def login(self, ctx, credentials):  # type: ignore[no-untyped-def]
            assert ctx.http is not None
            await ctx.http.get("http://127.0.0.1:9/")  # private: refused by the guard
            raise AssertionError("not reached")

    path = await _scripted_member(platform, Unreachable())
    await platform.drain()
    async with platform.rt.db.read() as s:
        causes = list(await s.scalars(select(Attempt.cause)))
    assert causes == [Cause.INSTITUTION_UNAVAILABLE.value], path


def test_a_process_refuses_to_start_when_a_connector_is_missing(tmp_path: Path) -> None:
    env = openagg_env(tmp_path)
    create_client_with_cli(env)  # migrates
    insert = (
        "INSERT INTO institutions (code, guid, name, connector, data_source, is_retired, "
        "throttle_exempt, profile, credentials) VALUES ('gone_bank', 'INS-gone', 'Gone Bank', "
        "'gone', 'default', false, false, '{}', '[]')"
    )
    url = env["OPENAGG_DATABASE_URL"]
    if ON_POSTGRES:
        psql(insert, url)
    else:
        import sqlite3

        with sqlite3.connect(url.split("///", 1)[1]) as con:
            con.execute(insert)
    for command in (["serve", "--port", "1"], ["worker"]):
        done = openagg(env, *command)
        assert done.returncode == 1, done.stderr
        assert "connector 'gone' is not installed" in done.stderr
        assert "gone_bank" in done.stderr
