"""The ``openagg`` command: serve, worker, migrate, clients and operator actions."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from openagg import logs
from openagg.runtime import Runtime, build_runtime
from openagg.settings import Settings

app = typer.Typer(help="OpenAgg: MX-compatible financial data aggregation.", no_args_is_help=True)
clients_app = typer.Typer(help="Clients (tenants) and their API keys.", no_args_is_help=True)
members_app = typer.Typer(help="Operator actions on members.", no_args_is_help=True)
institutions_app = typer.Typer(help="Operator actions on institutions.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
app.add_typer(members_app, name="members")
app.add_typer(institutions_app, name="institutions")
webhooks_app = typer.Typer(
    help="A client's webhook endpoints and deliveries.", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")

T = TypeVar("T")
DbOption = typer.Option(None, "--database-url", help="Overrides OPENAGG_DATABASE_URL.")


def _settings(database_url: str | None = None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)


# serve and worker wait this long for the database at start-up (it may come up after them).
STARTUP_WAIT_SECONDS = 60.0


def _prepare(settings: Settings, wait_seconds: float = 0) -> None:
    """Migrate; a long-running process (``serve``, ``worker``) waits up to
    ``wait_seconds`` for a database that is not up yet instead of exiting."""
    from sqlalchemy.exc import DBAPIError

    from openagg.db.migrate import upgrade

    settings.ensure_data_dir()
    deadline = time.monotonic() + wait_seconds
    delay = 0.5
    while True:
        try:
            upgrade(settings.database_url)
            return
        except (DBAPIError, OSError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            logging.getLogger("openagg").warning(
                "database unavailable (%s); retrying in %.0f s", type(exc).__name__, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 5)


def _with_runtime(settings: Settings, action: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        rt = build_runtime(settings)
        try:
            return await action(rt)
        finally:
            await rt.db.dispose()

    return asyncio.run(main())


# Collector thresholds for the long-running processes (Python's are 700, 10, 10).
GC_THRESHOLDS = (20_000, 20, 50)


def _tune_gc() -> None:
    """For ``serve`` and ``worker``, once started: what is alive by then (modules,
    the schema, settings) lives as long as the process, so the collector stops
    scanning it, and collects less often. With the defaults, the worker's full
    collections took a fifth of its CPU and stopped its event loop for ~100 ms at a
    time, which every aggregation in flight waited out (bench/aggregation_throughput)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


@app.command()
def migrate(database_url: str | None = DbOption) -> None:
    """Create or upgrade the database schema."""
    _prepare(_settings(database_url))
    typer.echo("database is up to date")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    database_url: str | None = DbOption,
    no_worker: bool = typer.Option(False, "--no-worker", help="API only; run workers apart."),
    demo: bool = typer.Option(False, "--demo", help="Create and print a demo client."),
    concurrency: int | None = typer.Option(
        None, help="Jobs the in-process worker runs at once with institutions."
    ),
    log_requests: bool = typer.Option(
        False,
        "--log-requests",
        help="Log one line per request (method, path, status, time, request id).",
    ),
) -> None:
    """Run the API (and, unless --no-worker, a worker and the scheduler)."""
    import uvicorn

    from openagg.api.app import create_app
    from openagg.services.admin import seed_institutions

    # --demo also serves the widget demo host page (/demo).
    settings = _settings(
        database_url,
        widget_demo=True if demo else None,
        log_requests=True if log_requests else None,
    )
    logs.configure(settings.log_format)
    _prepare(settings, wait_seconds=STARTUP_WAIT_SECONDS)
    _note_a_pure_python_codec()

    async def main() -> None:
        rt = build_runtime(settings)
        await seed_institutions(rt)
        await _check_connectors(rt)
        if demo:
            await _print_demo(rt, host, port)
        config = uvicorn.Config(
            create_app(rt, run_worker=not no_worker, concurrency=concurrency),
            host=host,
            port=port,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            log_level="warning",
            access_log=False,
        )
        typer.echo(f"OpenAgg listening on http://{host}:{port}")
        _tune_gc()
        await uvicorn.Server(config).serve()

    asyncio.run(main())


def _note_a_pure_python_codec() -> None:
    """Says so when the OFX codec's C part was not built: it reads the same, slower."""
    from openagg.ofx import accel

    if accel.native is None:
        logging.getLogger("openagg").warning(
            "the OFX codec's C part is not built (no C compiler when OpenAgg was "
            "installed): OFX files and answers read the same, about 5x slower. "
            "Reinstall with gcc and Python's headers present (docs/connectors/ofx.md)"
        )


async def _check_connectors(rt: Runtime) -> None:
    from openagg.services.institutions import MissingConnectors, check_connectors

    try:
        await check_connectors(rt)
    except MissingConnectors as exc:
        await rt.db.dispose()
        _fail(f"cannot start: {exc}")


async def _demo_secret(
    path: Path, create: Callable[[], Awaitable[dict[str, str]]]
) -> dict[str, str]:
    """Credentials made on the first demo start and kept (mode 0600) for the next."""
    if path.exists():
        creds: dict[str, str] = json.loads(path.read_text())
        return creds
    creds = await create()
    path.write_text(json.dumps(creds))
    path.chmod(0o600)
    return creds


async def _print_demo(rt: Runtime, host: str, port: int) -> None:
    from openagg.services.clients import create_client
    from openagg.services.operators import create_operator

    async def new_client() -> dict[str, str]:
        new = await create_client(rt, "Demo client")
        return {"client_id": new.client.client_id, "api_key": new.api_key}

    async def new_operator() -> dict[str, str]:
        new = await create_operator(rt, "Demo engineer", "engineer@demo.openagg.dev")
        return {"email": new.operator.email, "password": new.password}

    path: Path = rt.settings.data_dir / "demo-client.json"
    creds = await _demo_secret(path, new_client)
    engineer = await _demo_secret(rt.settings.data_dir / "demo-operator.json", new_operator)
    base = f"http://{host}:{port}"
    typer.echo(
        f"""
Demo client (kept in {path}):
  client_id: {creds["client_id"]}
  api_key:   {creds["api_key"]}

Connect widget demo (open in a browser): {base}/demo
Developer portal (support tickets; log in with the client_id and api_key above): {base}/portal
Engineer console: {base}/console
  email: {engineer["email"]}  password: {engineer["password"]}

Try it:
  curl -s -u {creds["client_id"]}:{creds["api_key"]} {base}/institutions/mxbank

With MX's Python SDK, in a venv of its own (it needs pydantic 1):
  python3 -m venv sdk && sdk/bin/pip install mx-platform-python==1.12.0
then, in sdk/bin/python:
  import mx_platform_python as mx
  api = mx.ApiClient(mx.Configuration(host="{base}",
                     username="{creds["client_id"]}", password="{creds["api_key"]}"))
  print(mx.InstitutionsApi(api).read_institution("mxbank"))
"""
    )


@app.command()
def worker(
    database_url: str | None = DbOption,
    concurrency: int | None = typer.Option(
        None, help="Jobs this process runs at once with institutions."
    ),
    metrics_port: int | None = typer.Option(
        None, help="Serve this process's Prometheus metrics on this port (/metrics)."
    ),
    metrics_host: str = typer.Option("127.0.0.1", help="Address for --metrics-port."),
) -> None:
    """Run a worker (and the scheduler) without the API."""
    from openagg.engine.deliverer import run_deliverer
    from openagg.engine.scheduler import run_scheduler
    from openagg.engine.wakeup import listen_for_jobs
    from openagg.engine.worker import Worker

    settings = _settings(database_url)
    logs.configure(settings.log_format)
    _prepare(settings, wait_seconds=STARTUP_WAIT_SECONDS)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from openagg.metrics import PROCESS

        start_http_server(metrics_port, metrics_host, registry=PROCESS)

    async def main(rt: Runtime) -> None:
        await _check_connectors(rt)
        stop = asyncio.Event()
        # SIGINT/SIGTERM: stop claiming, let running jobs finish briefly, hand back the rest.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        _tune_gc()
        await asyncio.gather(
            Worker(rt, concurrency).run(stop),
            run_scheduler(rt, stop),
            run_deliverer(rt, stop),
            listen_for_jobs(rt, stop),  # PostgreSQL: wake at once on new jobs
        )

    _with_runtime(settings, main)


@clients_app.command("create")
def clients_create(
    name: str = typer.Option(..., help="The client's name."),
    as_json: bool = typer.Option(False, "--json", help="Print {client_id, api_key} as JSON."),
    database_url: str | None = DbOption,
) -> None:
    """Create a client; its api_key is shown once."""
    from openagg.services.clients import create_client

    settings = _settings(database_url)
    _prepare(settings)
    new = _with_runtime(settings, lambda rt: create_client(rt, name))
    if as_json:
        typer.echo(json.dumps({"client_id": new.client.client_id, "api_key": new.api_key}))
    else:
        typer.echo(
            f"client_id: {new.client.client_id}\napi_key:   {new.api_key}\n"
            "(the api_key is not shown again)"
        )


@clients_app.command("list")
def clients_list(database_url: str | None = DbOption) -> None:
    """List clients (never their keys)."""
    from openagg.services.clients import list_clients

    settings = _settings(database_url)
    _prepare(settings)
    for c in _with_runtime(settings, list_clients):
        bg = "on" if c.background_aggregation_enabled else "off"
        typer.echo(f"{c.client_id}  {c.name}  background_aggregation={bg}")


@clients_app.command("background")
def clients_background(
    client_id: str,
    enabled: bool = typer.Option(..., "--enabled/--disabled"),
    database_url: str | None = DbOption,
) -> None:
    """Set a client's default for background aggregation of its members."""
    from openagg.services.clients import set_background_default

    settings = _settings(database_url)
    if _with_runtime(settings, lambda rt: set_background_default(rt, client_id, enabled)) is None:
        _fail(f"no client {client_id}")


def _member_action(settings: Settings, action: Callable[[Runtime], Awaitable[Any]]) -> None:
    from openagg.services.errors import ServiceError

    try:
        result = _with_runtime(settings, action)
    except ServiceError as exc:
        _fail(exc.message)
    else:
        guid = getattr(result, "guid", None)
        status = getattr(result, "connection_status", None)
        typer.echo(f"{guid} {status}" if guid else str(result))


@members_app.command("disable")
def members_disable(member_guid: str, database_url: str | None = DbOption) -> None:
    """Pause aggregation for a member (DISABLED)."""
    from openagg.domain.statuses import Status
    from openagg.services.admin import set_member_status

    _member_action(
        _settings(database_url), lambda rt: set_member_status(rt, member_guid, Status.DISABLED)
    )


@members_app.command("close")
def members_close(member_guid: str, database_url: str | None = DbOption) -> None:
    """Close a member (CLOSED)."""
    from openagg.domain.statuses import Status
    from openagg.services.admin import set_member_status

    _member_action(
        _settings(database_url), lambda rt: set_member_status(rt, member_guid, Status.CLOSED)
    )


@members_app.command("enable")
def members_enable(member_guid: str, database_url: str | None = DbOption) -> None:
    """Undo disable/close."""
    from openagg.services.admin import enable_member

    _member_action(_settings(database_url), lambda rt: enable_member(rt, member_guid))


@members_app.command("import")
def members_import(
    client_id: str = typer.Option(...),
    user_guid: str = typer.Option(...),
    institution_code: str = typer.Option(...),
    member_id: str | None = typer.Option(None),
    database_url: str | None = DbOption,
) -> None:
    """Import a member without credentials (IMPORTED until the user supplies them)."""
    from sqlalchemy import select

    from openagg.db.models import Client
    from openagg.services.admin import import_member
    from openagg.services.errors import NotFound

    async def action(rt: Runtime) -> Any:
        async with rt.db.read() as s:
            client = await s.scalar(select(Client).where(Client.client_id == client_id))
        if client is None:
            raise NotFound(f"No client {client_id}.")
        return await import_member(rt, client, user_guid, institution_code, member_id)

    _member_action(_settings(database_url), action)


@institutions_app.command("retire")
def institutions_retire(code: str, database_url: str | None = DbOption) -> None:
    """Stop supporting an institution: its members become DISCONTINUED."""
    from openagg.services.admin import retire_institution

    _member_action(_settings(database_url), lambda rt: retire_institution(rt, code))


@institutions_app.command("move")
def institutions_move(
    code: str,
    data_source: str = typer.Option(..., help="Name of the new data source."),
    database_url: str | None = DbOption,
) -> None:
    """Move an institution to a new data source: connected members become RECONNECTED."""
    from openagg.services.admin import move_institution

    _member_action(_settings(database_url), lambda rt: move_institution(rt, code, data_source))


# --- institutions as data, connectors as plugins --------------------------------------

CredentialOption = typer.Option(
    None,
    "--credential",
    help="FIELD_NAME:LABEL[:TYPE] (TEXT, PASSWORD, TOKEN), in display order; "
    "default LOGIN:Username and PASSWORD:Password:PASSWORD.",
)


SupportsOption = typer.Option(
    None,
    "--supports",
    help="account_identification or account_verification (repeat for both): the "
    "identify and verify jobs, and MX's supports_* fields. On update, replaces the "
    "list ('none' clears it).",
)


def _supports(given: list[str] | None) -> tuple[str, ...]:
    return tuple(c.strip().lower() for c in given or [] if c.strip().lower() != "none")


def _options(given: list[str] | None) -> dict[str, str]:
    from openagg.services.institutions import parse_option

    return dict(parse_option(o) for o in given or [])


def _institution_action(
    database_url: str | None, action: Callable[[Runtime], Awaitable[T]]
) -> T | None:
    from openagg.services.errors import ServiceError

    settings = _settings(database_url)
    _prepare(settings)
    try:
        return _with_runtime(settings, action)
    except ServiceError as exc:
        _fail(exc.message)
        return None


@institutions_app.command("add")
def institutions_add(
    connector: str = typer.Option(..., help="An installed connector (openagg connectors list)."),
    code: str = typer.Option(..., help="The institution's code (institution_code in the API)."),
    name: str = typer.Option(..., help="The name end users see."),
    url: str | None = typer.Option(None, help="The institution's website."),
    option: list[str] | None = typer.Option(
        None,
        help="KEY=VALUE for the connector (ctx.options); keys ending in secret or "
        "password are encrypted and never printed.",
    ),
    credential: list[str] | None = CredentialOption,
    oauth: bool = typer.Option(False, help="End users sign in at the institution (OAuth)."),
    supports: list[str] | None = SupportsOption,
    database_url: str | None = DbOption,
) -> None:
    """Add an institution served by an installed connector."""
    from openagg.services.institutions import InstitutionInput, add_institution, parse_credential

    def given() -> InstitutionInput:
        creds = [parse_credential(c) for c in credential] if credential else None
        return InstitutionInput(
            connector, code, name, url, _options(option), creds, oauth, supports=_supports(supports)
        )

    done = _institution_action(database_url, lambda rt: add_institution(rt, given()))
    if done is not None:
        typer.echo(f"{done.code} {done.guid} added ({done.connector})")


@institutions_app.command("update")
def institutions_update(
    code: str,
    name: str | None = typer.Option(None),
    url: str | None = typer.Option(None),
    option: list[str] | None = typer.Option(None, help="KEY=VALUE to set."),
    remove_option: list[str] | None = typer.Option(None, help="KEY to remove."),
    credential: list[str] | None = CredentialOption,
    supports: list[str] | None = SupportsOption,
    database_url: str | None = DbOption,
) -> None:
    """Change an institution; running processes see it at once."""
    from openagg.services.institutions import parse_credential, update_institution

    def action(rt: Runtime) -> Any:
        return update_institution(
            rt,
            code,
            name=name,
            url=url,
            set_options=_options(option),
            remove_options=remove_option,
            credentials=[parse_credential(c) for c in credential] if credential else None,
            supports=None if supports is None else _supports(supports),
        )

    done = _institution_action(database_url, action)
    if done is not None:
        typer.echo(f"{code} updated")


@institutions_app.command("import")
def institutions_import(
    file: Path = typer.Argument(..., help="A JSON list of institutions (docs/connectors.md)."),
    database_url: str | None = DbOption,
) -> None:
    """Add or update many institutions at once: all of them, or none."""
    from openagg.services.institutions import import_institutions

    try:
        items = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {file}: {exc}")
        return
    if not isinstance(items, list):
        _fail(f"{file}: expected a JSON list of institutions")
        return
    done = _institution_action(database_url, lambda rt: import_institutions(rt, items))
    if done is not None:
        typer.echo(f"{done[0]} added, {done[1]} updated")


@institutions_app.command("remove")
def institutions_remove(code: str, database_url: str | None = DbOption) -> None:
    """Remove an institution that has no members (otherwise retire it)."""
    from openagg.services.institutions import remove_institution

    _institution_action(database_url, lambda rt: remove_institution(rt, code))
    typer.echo(f"{code} removed")


@institutions_app.command("list")
def institutions_list(database_url: str | None = DbOption) -> None:
    """Every institution: code, connector, members, name, options (secrets masked), and
    what it supports beyond aggregation."""
    from openagg.services.institutions import list_institutions

    rows = _institution_action(database_url, list_institutions) or []
    for r in rows:
        options = " ".join(f"{k}={v}" for k, v in sorted(r.options.items()))
        retired = " (retired)" if r.is_retired else ""
        supports = f"\tsupports {','.join(r.supports)}" if r.supports else ""
        typer.echo(
            f"{r.code}\t{r.connector}\t{r.members} members\t{r.name}{retired}\t{options}{supports}"
        )


connectors_app = typer.Typer(help="Installed connectors (plugins).", no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")


@connectors_app.command("list")
def connectors_list(database_url: str | None = DbOption) -> None:
    """One line per installed connector: name, package and version, institutions."""
    from openagg.connectors.registry import installed
    from openagg.services.institutions import institutions_per_connector

    used = _institution_action(database_url, institutions_per_connector) or {}
    for name, plugin in sorted(installed().items()):
        count = used.get(name, 0)
        typer.echo(f"{name}\t{plugin.package} {plugin.version}\t{count} institution(s)")


@connectors_app.command("check")
def connectors_check(
    name: str,
    scenario: Path = typer.Option(..., help="The scenario file (docs/connectors.md)."),
) -> None:
    """Run the conformance suite against an installed connector, on a temporary
    database; exits 1 unless every check passes."""
    from openagg.testing.conformance import Scenario, run_conformance

    try:
        given = Scenario.load(scenario)
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {scenario}: {exc}")
        return
    if given.connector != name:
        _fail(f"{scenario} is a scenario for connector {given.connector!r}, not {name!r}")
    report = asyncio.run(run_conformance(given))
    typer.echo(report.text())
    if not report.ok:
        raise typer.Exit(1)


# --- queue: fair use of institutions, what a member waits on ------------------------


@institutions_app.command("caps")
def institutions_caps(
    code: str,
    max_concurrent: int | None = typer.Option(
        None, min=0, help="Sessions open at the institution at once (0: no cap)."
    ),
    max_per_day: int | None = typer.Option(
        None, min=0, help="Aggregations started per UTC day (0: no cap)."
    ),
    use_defaults: bool = typer.Option(
        False, "--default", help="Follow OPENAGG_INSTITUTION_MAX_* again (before the above)."
    ),
    database_url: str | None = DbOption,
) -> None:
    """Show or set an institution's caps, honoured across all workers."""
    from openagg.queue import default_caps, institution_caps

    settings = _settings(database_url)
    _prepare(settings)
    view = _with_runtime(
        settings,
        lambda rt: institution_caps(
            rt.db,
            code,
            now=rt.now(),
            defaults=default_caps(rt.settings),
            max_concurrent=max_concurrent,
            max_per_day=max_per_day,
            use_defaults=use_defaults,
        ),
    )
    if view is None:
        _fail(f"no institution {code}")
        return

    def show(own: int | None, effective: int) -> str:
        value = str(effective) if effective else "no cap"
        return f"{value} ({'default' if own is None else 'own'})"

    typer.echo(
        f"{view.code}: max_concurrent={show(view.own[0], view.effective.max_concurrent)} "
        f"max_per_day={show(view.own[1], view.effective.max_per_day)} "
        f"running={view.running} started_today={view.started_today}"
    )


@members_app.command("show")
def members_show(member_guid: str, database_url: str | None = DbOption) -> None:
    """A member's status, its active job (deferred? until when, why) and last attempts."""
    from openagg.queue import member_queue_view

    settings = _settings(database_url)
    view = _with_runtime(settings, lambda rt: member_queue_view(rt.db, member_guid))
    if view is None:
        _fail(f"no member {member_guid}")
        return
    m, job = view.member, view.job
    typer.echo(
        f"{m.guid} {m.connection_status} institution={view.institution_code}\n"
        f"  aggregated_at={m.aggregated_at} successfully_aggregated_at="
        f"{m.successfully_aggregated_at} next_background_at={m.next_background_at}"
    )
    if job is None:
        typer.echo("  no active job")
    else:
        typer.echo(
            f"  job {job.guid} {job.kind} {job.trigger} {job.state} run_after={job.run_after} "
            f"claims={job.attempts}"
        )
        if job.deferred_until is not None:
            typer.echo(f"  deferred until {job.deferred_until}: {job.deferred_reason}")
    for a in view.attempts:
        typer.echo(f"  attempt {a.finished_at} {a.trigger} {a.kind} {a.cause} -> {a.status_after}")


# --- webhooks --------------------------------------------------------------------


def _webhook_action(settings: Settings, client_id: str, action: Callable[..., Awaitable[T]]) -> T:
    """Run ``action(rt, client)`` for the client with this client_id."""
    from sqlalchemy import select

    from openagg.db.models import Client
    from openagg.services.errors import NotFound, ServiceError

    async def main(rt: Runtime) -> T:
        async with rt.db.read() as s:
            client = await s.scalar(select(Client).where(Client.client_id == client_id))
        if client is None:
            raise NotFound(f"No client {client_id}.")
        return await action(rt, client)

    _prepare(settings)
    try:
        return _with_runtime(settings, main)
    except ServiceError as exc:
        _fail(exc.message)
        raise  # unreachable: _fail exits


@webhooks_app.command("add")
def webhooks_add(
    client_id: str = typer.Option(..., help="The client that owns the endpoint."),
    url: str = typer.Option(..., help="Where to POST the webhooks."),
    secret: str | None = typer.Option(None, help="whsec_<base64>; generated when omitted."),
    event_type: list[str] | None = typer.Option(
        None, "--event-type", help="Only these types (repeat the option); all when omitted."
    ),
    database_url: str | None = DbOption,
) -> None:
    """Add an endpoint; its secret is shown once."""
    from pydantic import ValidationError

    from openagg.services.webhooks import WebhookEndpointFields, create_endpoint

    try:
        fields = WebhookEndpointFields.model_validate(
            {"url": url, "secret": secret, "event_types": event_type or None}
        )
    except ValidationError as exc:
        _fail(f"invalid option: {exc.errors()[0]['msg']}")
        return
    new = _webhook_action(
        _settings(database_url), client_id, lambda rt, c: create_endpoint(rt, c, fields)
    )
    typer.echo(f"guid:   {new.endpoint.guid}\nurl:    {new.endpoint.url}")
    typer.echo(f"secret: {new.secret}\n(the secret is not shown again)")


@webhooks_app.command("list")
def webhooks_list(client_id: str = typer.Option(...), database_url: str | None = DbOption) -> None:
    """List a client's endpoints (never their secrets)."""
    from openagg.services.webhooks import list_endpoints

    rows, _ = _webhook_action(
        _settings(database_url),
        client_id,
        lambda rt, c: list_endpoints(rt, c, page=1, per_page=1000),
    )
    for e in rows:
        types = ",".join(e.event_types) if e.event_types else "all"
        state = "enabled" if e.enabled else "disabled"
        typer.echo(f"{e.guid}  {e.url}  {state}  events={types}")


@webhooks_app.command("remove")
def webhooks_remove(
    guid: str, client_id: str = typer.Option(...), database_url: str | None = DbOption
) -> None:
    """Remove an endpoint and its deliveries."""
    from openagg.services.webhooks import delete_endpoint

    _webhook_action(_settings(database_url), client_id, lambda rt, c: delete_endpoint(rt, c, guid))
    typer.echo(f"removed {guid}")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    client_id: str = typer.Option(...),
    status: str | None = typer.Option(None, help="PENDING, DELIVERED or FAILED."),
    member_guid: str | None = typer.Option(None),
    event_type: str | None = typer.Option(None),
    limit: int = typer.Option(50, help="How many, newest first."),
    database_url: str | None = DbOption,
) -> None:
    """Recent deliveries and their outcome."""
    from openagg.services.webhooks import list_deliveries

    views, total = _webhook_action(
        _settings(database_url),
        client_id,
        lambda rt, c: list_deliveries(
            rt,
            c,
            page=1,
            per_page=limit,
            status=status,
            member_guid=member_guid,
            event_type=event_type,
        ),
    )
    for v in views:
        d = v.delivery
        last = d.last_error or (f"HTTP {d.last_status_code}" if d.last_status_code else "-")
        typer.echo(
            f"{d.guid}  {d.state.upper():9}  {v.event.event_type}/{v.event.action}  "
            f"member={v.event.member_guid or '-'}  attempts={d.attempts}  last={last}"
        )
    typer.echo(f"({len(views)} of {total})")


# --- Aggregation support (services/support/, services/incidents.py) ----------------

operators_app = typer.Typer(help="The platform's own engineers.", no_args_is_help=True)
tickets_app = typer.Typer(
    help="The support ticket queue and engineer actions.", no_args_is_help=True
)
app.add_typer(operators_app, name="operators")
app.add_typer(tickets_app, name="tickets")
OperatorOption = typer.Option(
    ..., "--operator", envvar="OPENAGG_OPERATOR", help="Your operator email (OPENAGG_OPERATOR)."
)
NoteOption = typer.Option(None, "--note", help="Why, for the ticket's history.")


def _support_action(settings: Settings, action: Callable[[Runtime], Awaitable[T]]) -> T:
    from openagg.services.errors import ServiceError

    try:
        return _with_runtime(settings, action)
    except ServiceError as exc:
        _fail(exc.message)
        raise  # unreachable: _fail exits


def _as_operator(
    settings: Settings, email: str, action: Callable[[Runtime, Any], Awaitable[T]]
) -> T:
    from openagg.services.operators import operator_by_email

    async def run(rt: Runtime) -> T:
        return await action(rt, await operator_by_email(rt, email))

    return _support_action(settings, run)


def _ticket_line(view: Any, now: Any) -> str:
    t = view.ticket
    age = now - t.created_at
    eta = t.estimated_resolution_at.strftime("%Y-%m-%d %H:%M") if t.estimated_resolution_at else "-"
    return (
        f"{t.queue_position or '-':>4}  {t.guid}  {t.status:<31} {view.institution_code:<16} "
        f"cause={t.cause or '-':<22} reports={t.report_count}  age={age.days}d"
        f"{age.seconds // 3600}h  eta={eta}"
    )


def _ticket_change(database_url: str | None, email: str, change: Callable[..., Any]) -> None:
    """Run one engineer action on a ticket and print where the ticket went."""
    view = _as_operator(_settings(database_url), email, change)
    typer.echo(f"{view.ticket.guid} {view.ticket.status}")


@operators_app.command("create")
def operators_create(
    name: str = typer.Option(..., help="The engineer's name."),
    email: str = typer.Option(..., help="Their login."),
    database_url: str | None = DbOption,
) -> None:
    """Create an operator; the password and API key are shown once."""
    from openagg.services.operators import create_operator

    settings = _settings(database_url)
    _prepare(settings)
    new = _support_action(settings, lambda rt: create_operator(rt, name, email))
    typer.echo(
        f"guid:     {new.operator.guid}\nemail:    {new.operator.email}\n"
        f"password: {new.password}\napi_key:  {new.api_key}\n"
        "(the password and api_key are not shown again)"
    )


@operators_app.command("disable")
def operators_disable(
    email: str,
    enable: bool = typer.Option(False, "--enable", help="Let the operator in again."),
    database_url: str | None = DbOption,
) -> None:
    """Stop an operator from logging in (their console sessions end at once)."""
    from openagg.services.operators import set_disabled

    o = _support_action(_settings(database_url), lambda rt: set_disabled(rt, email, not enable))
    typer.echo(f"{o.email} {'disabled' if o.is_disabled else 'enabled'}")


@operators_app.command("reset")
def operators_reset(email: str, database_url: str | None = DbOption) -> None:
    """A new password and API key for an operator, shown once; the old ones stop working."""
    from openagg.services.operators import reset_credentials

    new = _support_action(_settings(database_url), lambda rt: reset_credentials(rt, email))
    typer.echo(
        f"email:    {new.operator.email}\npassword: {new.password}\napi_key:  {new.api_key}\n"
        "(not shown again; the operator's sessions have ended)"
    )


@operators_app.command("list")
def operators_list(database_url: str | None = DbOption) -> None:
    """List operators (never their secrets)."""
    from openagg.services.operators import list_operators

    for o in _support_action(_settings(database_url), list_operators):
        typer.echo(f"{o.guid}  {o.email}  {o.name}{'  (disabled)' if o.is_disabled else ''}")


@tickets_app.command("queue")
def tickets_queue(
    limit: int = typer.Option(50, help="How many, oldest first."),
    database_url: str | None = DbOption,
) -> None:
    """The engineers' queue: first in, first out (a reopened ticket keeps its place)."""
    from openagg.services.support import queue

    settings = _settings(database_url)

    async def run(rt: Runtime) -> list[str]:
        return [_ticket_line(v, rt.now()) for v in await queue(rt, limit=limit)]

    lines = _support_action(settings, run)
    typer.echo("\n".join(lines) if lines else "the queue is empty")


@tickets_app.command("show")
def tickets_show(guid: str, database_url: str | None = DbOption) -> None:
    """One ticket and its history."""
    from openagg.services.support import read_for_operator

    settings = _settings(database_url)

    async def run(rt: Runtime) -> list[str]:
        view, events = await read_for_operator(rt, guid)
        t = view.ticket
        lines = [
            _ticket_line(view, rt.now()),
            f"  user={view.user_guid or '-'}  member={view.member_guid or '-'}  "
            f"channel={t.channel}  connection_status={t.connection_status or '-'}",
            f"  description: {t.description or '-'}",
            f"  special_instructions: {t.special_instructions or '-'}",
        ]
        for e in events:
            who = f"{e.actor_type}:{e.actor_name or e.actor_id or '-'}"
            lines.append(
                f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.action:<20} {e.from_status or '-'} -> "
                f"{e.to_status or '-'}  by {who}" + (f"  ({e.note})" if e.note else "")
            )
        return lines

    typer.echo("\n".join(_support_action(settings, run)))


@tickets_app.command("take")
def tickets_take(
    guid: str, operator: str = OperatorOption, database_url: str | None = DbOption
) -> None:
    """Start working on a ticket (IN_PROCESS)."""
    from openagg.services.support import take

    _ticket_change(database_url, operator, lambda rt, o: take(rt, o, guid))


@tickets_app.command("request-info")
def tickets_request_info(
    guid: str,
    prompt: list[str] = typer.Option(
        ..., "--prompt", help="A question; 'Label|OPTIONS|a,b' for a choice, 'Label|TOKEN'."
    ),
    operator: str = OperatorOption,
    note: str | None = NoteOption,
    database_url: str | None = DbOption,
) -> None:
    """Ask the end user for additional login info (like MFA); the estimate freezes."""
    from openagg.services.support import Prompt, request_login_info

    prompts = []
    for spec in prompt:
        label, _, rest = spec.partition("|")
        kind, _, options = rest.partition("|")
        kind = (kind or "TEXT").upper()
        if kind not in ("TEXT", "TOKEN", "OPTIONS"):
            _fail(f"prompt type must be TEXT, TOKEN or OPTIONS, not {kind}")
        choices = tuple(o.strip() for o in options.split(",") if o.strip())
        prompts.append(Prompt(label.strip(), kind, choices))  # type: ignore[arg-type]
    _ticket_change(
        database_url, operator, lambda rt, o: request_login_info(rt, o, guid, prompts, note)
    )


@tickets_app.command("read-info")
def tickets_read_info(
    guid: str, operator: str = OperatorOption, database_url: str | None = DbOption
) -> None:
    """Print the end user's answers once: they are erased as they are read."""
    from openagg.services.support import read_login_info

    answers = _as_operator(
        _settings(database_url), operator, lambda rt, o: read_login_info(rt, o, guid)
    )
    for label, value in answers.items():
        typer.echo(f"{label}: {value}")


@tickets_app.command("escalate")
def tickets_escalate(
    guid: str,
    operator: str = OperatorOption,
    note: str | None = NoteOption,
    database_url: str | None = DbOption,
) -> None:
    """Hand a ticket up (ESCALATED); it keeps its place in the queue."""
    from openagg.services.support import escalate_internally

    _ticket_change(database_url, operator, lambda rt, o: escalate_internally(rt, o, guid, note))


@tickets_app.command("invalid")
def tickets_invalid(
    guid: str,
    operator: str = OperatorOption,
    note: str | None = NoteOption,
    database_url: str | None = DbOption,
) -> None:
    """Mark a ticket INVALID (not an aggregation problem)."""
    from openagg.services.support import mark_invalid

    _ticket_change(database_url, operator, lambda rt, o: mark_invalid(rt, o, guid, note))


@tickets_app.command("resolve")
def tickets_resolve(
    guid: str,
    incident: bool = typer.Option(
        False, "--incident", help="Also every member failing at its institution with its cause."
    ),
    operator: str = OperatorOption,
    note: str | None = NoteOption,
    database_url: str | None = DbOption,
) -> None:
    """Fixed: re-aggregate the affected members; each ticket closes when its member
    then succeeds and reopens when it still fails (a running worker does the runs)."""
    from openagg.services.support import resolve

    result = _as_operator(
        _settings(database_url),
        operator,
        lambda rt, o: resolve(rt, o, guid, incident=incident, note=note),
    )
    typer.echo(f"re-aggregating {result.jobs_started} member(s)")
    for t in result.tickets:
        typer.echo(f"  {t} verifying")
    for t in result.reopened:
        typer.echo(f"  {t} REOPENED (its member cannot be re-aggregated)")


@app.command("incidents")
def incidents_command(
    long_tail: bool = typer.Option(False, "--long-tail", help="Institutions with few users."),
    limit: int = typer.Option(20, help="How many incidents."),
    database_url: str | None = DbOption,
) -> None:
    """Failing members and open tickets by institution and cause, largest impact first."""
    from openagg.services import incidents

    settings = _settings(database_url)
    if long_tail:
        for small in _support_action(settings, incidents.long_tail):
            typer.echo(
                f"{small.institution_code:<20} users={small.users:<4} "
                f"failing={small.failing_members:<4} open_tickets={small.open_tickets:<4} "
                f"causes={','.join(small.causes)}  {' '.join(small.ticket_guids[:5])}"
            )
        return
    found = _support_action(settings, lambda rt: incidents.incidents(rt, limit=limit))
    for i in found:
        since = i.broken_since.strftime("%Y-%m-%d %H:%M") if i.broken_since else "-"
        typer.echo(
            f"impact={i.impact:<8g} {i.institution_code:<20} {i.cause:<24} "
            f"users={i.affected_users:<4} failing={i.failing_members:<4} "
            f"open_tickets={i.open_tickets:<4} since={since}  {' '.join(i.ticket_guids[:5])}"
        )
    if not found:
        typer.echo("no incidents")


if __name__ == "__main__":
    app()
