"""The conformance suite: any connector, driven through the real API and engine on
a temporary SQLite database, as an app and its end user would.

A scenario (JSON) says which institution to use and how to sign in::

    {
      "connector": "example",
      "institution": {"code": "example_bank", "name": "Example Bank",
                      "options": {"base_url": "http://127.0.0.1:8765"}},
      "connector_options": {},
      "connects": {"credentials": {"LOGIN": "ada", "PASSWORD": "pw"},
                   "mfa": [["123456"]]},
      "errors": [{"credentials": {"LOGIN": "ada", "PASSWORD": "wrong"},
                  "cause": "BAD_CREDENTIALS"}],
      "never_logged": ["a token the bank hands out"]
    }

``institution`` with only a ``code`` uses an institution the connector serves out
of the box. ``connects.mfa`` lists the answers of each MFA round, one per challenge.
``connects.oauth`` signs in through the OAuth step instead of credentials: the
suite follows the member's ``oauth_window_uri`` like a browser, submitting the first
form of each page (the institution's consent page) until the callback answers. The
connector may reach private addresses (a fake bank on this machine).

Checks: the member connects (answering each MFA round), its accounts and
transactions are stored as the connector gave them, a second pull stores nothing
twice and drops the pendings that posted transactions replace, each error scenario
ends with its cause, no call holds the event loop for half a second or more without
yielding (a blocking call stops every job of a worker), and no password (a unique one
the suite signs in with), secret option, earned secret or ``never_logged`` value
appears in a log line or in the database file.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import html
import inspect
import json
import logging
import re
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from openagg import logs
from openagg.connectors.base import Connector, TransactionData
from openagg.db.migrate import upgrade
from openagg.db.models import Attempt, Institution, Member
from openagg.domain.causes import Cause
from openagg.engine.stalls import STALL_SECONDS, watched
from openagg.engine.worker import Worker
from openagg.services import vault
from openagg.services.oauth import CALLBACK_PATH
from openagg.settings import Settings

STATUS_WAIT_SECONDS = 60.0


@dataclass
class Scenario:
    connector: str
    institution: dict[str, Any]
    connects: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)
    connector_options: dict[str, str] = field(default_factory=dict)
    never_logged: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        try:
            return cls(
                connector=str(data["connector"]),
                institution=dict(data["institution"]),
                connects=dict(data["connects"]),
                errors=list(data.get("errors", [])),
                connector_options=dict(data.get("connector_options", {})),
                never_logged=list(data.get("never_logged", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"scenario: missing or malformed {exc}") from None

    @classmethod
    def load(cls, path: Path) -> Scenario:
        return cls.from_dict(json.loads(path.read_text()))


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))

    def text(self) -> str:
        return "\n".join(
            f"{'ok  ' if c.ok else 'FAIL'} {c.name}" + (f": {c.detail}" if c.detail else "")
            for c in self.checks
        )


PLATFORM_HOST = "openagg.conformance"
_FORM = re.compile(r"<form[^>]*action=\"([^\"]*)\"[^>]*>(.*?)</form>", re.S | re.I)
_FIELD = re.compile(r"<(?:input|button)[^>]*name=\"([^\"]+)\"[^>]*value=\"([^\"]*)\"", re.I)


def _first_form(page: str) -> tuple[str, dict[str, str]] | None:
    """A consent page's first form: where it posts, and its hidden fields with the
    first button's choice (a browser submits only the button clicked)."""
    found = _FORM.search(page)
    if found is None:
        return None
    fields: dict[str, str] = {}
    for name, value in _FIELD.findall(found.group(2)):
        fields.setdefault(html.unescape(name), html.unescape(value))
    return html.unescape(found.group(1)), fields


class _Recorder:
    """The connector under test, with what its data calls returned kept, and the
    longest stretch each of its methods held the event loop without yielding."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.returned: list[TransactionData] = []
        self.longest: dict[str, tuple[float, float]] = {}  # method: (wall, CPU) seconds

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(found):
            return found

        def timed(seconds: float, cpu_seconds: float) -> None:
            if seconds > self.longest.get(name, (0.0, 0.0))[0]:
                self.longest[name] = (seconds, cpu_seconds)

        async def recording(*args: Any) -> Any:
            result = await watched(found(*args), timed)
            if name in ("pull", "transactions"):
                self.returned.extend(result.transactions if name == "pull" else result)
            return result

        return recording


class _Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


class _Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def drain(worker: Worker, timeout: float) -> None:
    """Run queued jobs (and what they enqueue) until the queue is idle."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        # A job that ends during a claim may enqueue one the claim did not see.
        was_running = bool(worker.running)
        started = await worker.claim_and_start()
        if not started and not worker.running and not was_running:
            return
        if worker.running:
            await asyncio.wait(list(worker.running.values()))
    raise TimeoutError("jobs still running")


class _Run:
    """One platform for the suite: API over ASGI, a worker run on demand."""

    def __init__(self, scenario: Scenario, workdir: Path, connector: Connector | None) -> None:
        self.scenario = scenario
        self.workdir = workdir
        self.connector = connector
        self.settings = Settings(
            database_url=f"sqlite+aiosqlite:///{workdir}/conformance.db",
            data_dir=workdir / "data",
            connector_options={scenario.connector: scenario.connector_options},
            connector_allow_private_addresses=True,
            delayed_after_seconds=3600,
            background_jitter_seconds=0,
        )

    async def start(self) -> None:
        from openagg.api.app import create_app
        from openagg.runtime import build_runtime
        from openagg.services.admin import seed_institutions
        from openagg.services.clients import create_client

        self.settings.ensure_data_dir()
        await asyncio.to_thread(upgrade, self.settings.database_url)
        rt = self.rt = build_runtime(self.settings)
        self.clock = _Clock()
        rt.clock = self.clock
        name = self.scenario.connector
        if self.connector is not None:
            rt.connectors[name] = self.connector
        if name not in rt.connectors:
            raise LookupError(f"connector {name!r} is not installed")
        self.recorder = _Recorder(rt.connectors[name])
        rt.connectors[name] = self.recorder  # type: ignore[assignment]
        await seed_institutions(rt)
        await self._institution()
        new = await create_client(rt, "Conformance")
        token = base64.b64encode(f"{new.client.client_id}:{new.api_key}".encode()).decode()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(rt, run_worker=False)),
            base_url=f"http://{PLATFORM_HOST}",
            headers={
                "Authorization": f"Basic {token}",
                "Accept": "application/vnd.mx.api.v1+json",
            },
        )
        self.worker = Worker(rt, concurrency=10)
        user = await self.call("POST", "/users", {"user": {"id": "conformance"}})
        self.user = user["user"]["guid"]

    async def _institution(self) -> None:
        from openagg.services.institutions import (
            add_institution,
            input_from_json,
        )

        spec = self.scenario.institution
        if set(spec) == {"code"}:
            return
        given = input_from_json({"connector": self.scenario.connector, **spec}, "institution")
        await add_institution(self.rt, given)

    async def stop(self) -> None:
        await self.http.aclose()
        await self.rt.db.dispose()

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, path, json=body)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    async def drain(self) -> None:
        await drain(self.worker, STATUS_WAIT_SECONDS)

    async def credentials(self, values: dict[str, str]) -> list[dict[str, str]]:
        code = self.scenario.institution["code"]
        listed = await self.call("GET", f"/institutions/{code}/credentials")
        by_field = {c["field_name"]: c["guid"] for c in listed["credentials"]}
        unknown = set(values) - set(by_field)
        if unknown:
            raise AssertionError(f"the institution asks no {', '.join(sorted(unknown))}")
        return [{"guid": by_field[k], "value": v} for k, v in values.items()]

    async def create_member(self, signin: dict[str, Any]) -> str:
        fields: dict[str, Any] = {"institution_code": self.scenario.institution["code"]}
        if signin.get("oauth"):
            fields["is_oauth"] = True
        else:
            fields["credentials"] = await self.credentials(signin.get("credentials", {}))
        made = await self.call("POST", f"/users/{self.user}/members", {"member": fields})
        guid: str = made["member"]["guid"]
        if signin.get("oauth"):
            await self._authorize(guid)
        await self.drain()
        return guid

    async def _authorize(self, member_guid: str) -> None:
        """The end user approves access: from the member's ``oauth_window_uri``, follow
        redirects and submit each page's first form (the institution's consent page)
        until the platform's callback answers."""
        got = await self.call("GET", f"/users/{self.user}/members/{member_guid}/oauth_window_uri")
        url: str = got["member"]["oauth_window_uri"]
        method, data = "GET", None
        async with httpx.AsyncClient(timeout=30) as outside:
            for _ in range(10):
                inside = httpx.URL(url).host == PLATFORM_HOST
                client = self.http if inside else outside
                response = await client.request(method, url, data=data)
                if response.is_redirect:
                    url, method, data = str(response.headers["location"]), "GET", None
                    continue
                if inside and httpx.URL(url).path == CALLBACK_PATH:
                    if response.status_code != 200:
                        raise AssertionError(f"the OAuth callback answered {response.text}")
                    return
                form = _first_form(response.text)
                if response.status_code != 200 or form is None:
                    raise AssertionError(f"OAuth stopped at {url}: {response.status_code}")
                url, method, data = str(httpx.URL(url).join(form[0])), "POST", form[1]
        raise AssertionError("OAuth did not come back to the platform's callback")

    async def status(self, member: str) -> str:
        got = await self.call("GET", f"/users/{self.user}/members/{member}/status")
        return str(got["member"]["connection_status"])

    async def answer_rounds(self, member: str, rounds: list[list[str]]) -> int:
        answered = 0
        while await self.status(member) == "CHALLENGED":
            if answered >= len(rounds):
                raise AssertionError(f"MFA round {answered + 1} has no answers in the scenario")
            asked = await self.call("GET", f"/users/{self.user}/members/{member}/challenges")
            given = rounds[answered]
            answers = [
                {"guid": c["guid"], "value": given[min(i, len(given) - 1)]}
                for i, c in enumerate(asked["challenges"])
            ]
            await self.call(
                "PUT",
                f"/users/{self.user}/members/{member}/resume",
                {"member": {"challenges": answers}},
            )
            await self.drain()
            answered += 1
        return answered

    async def transactions(self, member: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            got = await self.call(
                "GET",
                f"/users/{self.user}/members/{member}/transactions?records_per_page=1000&page={page}",
            )
            found.extend(got["transactions"])
            if page >= got["pagination"]["total_pages"]:
                return found
            page += 1

    async def last_cause(self, member: str) -> str | None:
        async with self.rt.db.read() as s:
            cause: str | None = await s.scalar(
                select(Attempt.cause)
                .join(Member, Member.id == Attempt.member_id)
                .where(Member.guid == member)
                .order_by(Attempt.id.desc())
                .limit(1)
            )
        return cause

    async def stored_secrets(self) -> list[str]:
        """Every secret the platform holds for the suite's members and institution."""
        found: list[str] = []
        async with self.rt.db.read() as s:
            for member in await s.scalars(select(Member)):
                found.extend(logs.secret_strings(vault.open_secrets(self.rt, member)))
            code = self.scenario.institution["code"]
            inst = await s.scalar(select(Institution).where(Institution.code == code))
            if inst is not None:
                options = vault.open_institution_options(self.rt, inst)
                found.extend(v for k, v in options.items() if vault.is_secret_option(k))
        return found


async def _connects(run: _Run, report: Report) -> str | None:
    signin = run.scenario.connects
    member = await run.create_member(signin)
    rounds = await run.answer_rounds(member, list(signin.get("mfa", [])))
    if signin.get("mfa"):
        report.add("mfa", rounds == len(signin["mfa"]), f"{rounds} round(s) answered")
    status = await run.status(member)
    if status != "CONNECTED":
        cause = await run.last_cause(member)
        report.add("connects", False, f"ended {status} (cause {cause})")
        return None
    accounts = await run.call("GET", f"/users/{run.user}/members/{member}/accounts")
    report.add("connects", bool(accounts["accounts"]), f"{len(accounts['accounts'])} account(s)")
    return member


def _stored_as_returned(run: _Run, stored: list[dict[str, Any]], report: Report, name: str) -> None:
    ids = [t["id"] for t in stored]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    replaced = {t.replaces_external_id for t in run.recorder.returned if t.replaces_external_id}
    left = sorted(i for i in set(ids) & replaced if i is not None)
    posted = {t.external_id for t in run.recorder.returned if t.status == "POSTED"}
    missing = sorted(posted - set(ids))
    problems = []
    if twice:
        problems.append(f"stored twice: {', '.join(twice[:5])}")
    if left:
        problems.append(f"replaced pendings still stored: {', '.join(left[:5])}")
    if missing:
        problems.append(f"posted but not stored: {', '.join(missing[:5])}")
    report.add(name, not problems, "; ".join(problems) or f"{len(ids)} transaction(s)")


async def _repull(run: _Run, member: str, report: Report) -> None:
    before = {t["guid"] for t in await run.transactions(member) if t["status"] == "POSTED"}
    run.clock.now += dt.timedelta(hours=4)  # past the foreground throttle
    await run.call("POST", f"/users/{run.user}/members/{member}/aggregate")
    await run.drain()
    await run.answer_rounds(member, list(run.scenario.connects.get("mfa", [])))
    status = await run.status(member)
    after = await run.transactions(member)
    lost = before - {t["guid"] for t in after}
    report.add(
        "second pull keeps every posted transaction",
        status == "CONNECTED" and not lost,
        f"ended {status}" + (f"; lost {len(lost)}" if lost else ""),
    )
    _stored_as_returned(run, after, report, "second pull stores nothing twice (pending->posted)")


async def _errors(run: _Run, report: Report) -> None:
    for n, case in enumerate(run.scenario.errors, 1):
        expected = Cause(case["cause"])
        member = await run.create_member(case)
        cause = await run.last_cause(member)
        report.add(f"error {n} is {expected.value}", cause == expected.value, f"got {cause}")


async def _sentinel_signin(run: _Run) -> list[str]:
    """Sign in once more with a unique value in each secret credential field
    (PASSWORD, TOKEN); whatever the outcome, that value must never show."""
    signin = run.scenario.connects
    if signin.get("oauth"):
        return []
    code = run.scenario.institution["code"]
    listed = await run.call("GET", f"/institutions/{code}/credentials")
    secret_fields = {
        c["field_name"] for c in listed["credentials"] if c["field_type"] in ("PASSWORD", "TOKEN")
    }
    values = dict(signin.get("credentials", {}))
    sentinels = {f: f"conformance-{uuid.uuid4().hex}" for f in secret_fields}
    values.update(sentinels)
    await run.create_member({"credentials": values})
    return list(sentinels.values())


async def _secrets(run: _Run, logged: _Logged, report: Report) -> None:
    sc = run.scenario
    values = [*sc.never_logged, *await _sentinel_signin(run), *await run.stored_secrets()]
    values = sorted({v for v in values if len(v) >= logs.MIN_REDACTED_LENGTH})
    in_logs = [v for v in values if any(v in line for line in logged.lines)]
    report.add("no secret in the logs", not in_logs, f"{len(values)} value(s) looked for")
    stored = b"".join(p.read_bytes() for p in run.workdir.glob("conformance.db*") if p.is_file())
    in_file = [v for v in values if v.encode() in stored]
    report.add("no secret in the database file", not in_file)


def _never_stalls(run: _Run, report: Report) -> None:
    longest = run.recorder.longest
    if not longest:
        return
    method, (seconds, cpu) = max(longest.items(), key=lambda item: item[1][0])
    detail = f"longest {seconds:.3f} s ({cpu:.3f} s of CPU), in {method}"
    if seconds >= STALL_SECONDS:
        detail += (
            ": every job of the worker waited; a blocking call (a synchronous HTTP client, "
            "time.sleep) or long parsing belongs in a thread"
        )
    report.add("never holds the event loop", seconds < STALL_SECONDS, detail)


async def run_conformance(
    scenario: Scenario,
    *,
    connector: Connector | None = None,
    workdir: Path | None = None,
) -> Report:
    """Run every check; ``connector`` replaces the installed one of that name."""
    report = Report()
    logged = _Logged()
    root = logging.getLogger()
    level = root.level
    root.addHandler(logged)
    root.setLevel(logging.DEBUG)
    with tempfile.TemporaryDirectory(prefix="openagg-conformance-") as tmp:
        run = _Run(scenario, workdir or Path(tmp), connector)
        try:
            await run.start()
            steps: list[Callable[[], Awaitable[None]]] = []
            member = await _connects(run, report)
            if member is not None:
                stored = await run.transactions(member)
                _stored_as_returned(run, stored, report, "transactions stored as returned")
                steps.append(lambda: _repull(run, member, report))
            steps.append(lambda: _errors(run, report))
            steps.append(lambda: _secrets(run, logged, report))
            for step in steps:
                await step()
            _never_stalls(run, report)
        except (AssertionError, LookupError, TimeoutError, ValueError) as exc:
            report.add("suite ran to the end", False, str(exc))
        finally:
            root.removeHandler(logged)
            root.setLevel(level)
            if hasattr(run, "http"):
                await run.stop()
    return report
