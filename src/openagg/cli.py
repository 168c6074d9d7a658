"""The ``openagg`` command: serve, worker, migrate, clients and operator actions."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from openagg.runtime import Runtime, build_runtime
from openagg.settings import Settings

app = typer.Typer(help="OpenAgg: MX-compatible financial data aggregation.", no_args_is_help=True)
clients_app = typer.Typer(help="Clients (tenants) and their API keys.", no_args_is_help=True)
members_app = typer.Typer(help="Operator actions on members.", no_args_is_help=True)
institutions_app = typer.Typer(help="Operator actions on institutions.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
app.add_typer(members_app, name="members")
app.add_typer(institutions_app, name="institutions")

T = TypeVar("T")
DbOption = typer.Option(None, "--database-url", help="Overrides OPENAGG_DATABASE_URL.")


def _settings(database_url: str | None = None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)


def _prepare(settings: Settings) -> None:
    from openagg.db.migrate import upgrade

    settings.ensure_data_dir()
    upgrade(settings.database_url)


def _with_runtime(settings: Settings, action: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        rt = build_runtime(settings)
        try:
            return await action(rt)
        finally:
            await rt.db.dispose()

    return asyncio.run(main())


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
    concurrency: int | None = typer.Option(None, help="In-process worker concurrency."),
) -> None:
    """Run the API (and, unless --no-worker, a worker and the scheduler)."""
    import uvicorn

    from openagg.api.app import create_app
    from openagg.services.admin import seed_institutions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = _settings(database_url)
    _prepare(settings)

    async def main() -> None:
        rt = build_runtime(settings)
        await seed_institutions(rt)
        if demo:
            await _print_demo(rt, host, port)
        config = uvicorn.Config(
            create_app(rt, run_worker=not no_worker, concurrency=concurrency),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
        )
        typer.echo(f"OpenAgg listening on http://{host}:{port}")
        await uvicorn.Server(config).serve()

    asyncio.run(main())


async def _print_demo(rt: Runtime, host: str, port: int) -> None:
    from openagg.services.clients import create_client

    path: Path = rt.settings.data_dir / "demo-client.json"
    if path.exists():
        creds = json.loads(path.read_text())
    else:
        new = await create_client(rt, "Demo client")
        creds = {"client_id": new.client.client_id, "api_key": new.api_key}
        path.write_text(json.dumps(creds))
        path.chmod(0o600)
    base = f"http://{host}:{port}"
    typer.echo(
        f"""
Demo client (kept in {path}):
  client_id: {creds["client_id"]}
  api_key:   {creds["api_key"]}

Try it:
  curl -s -u {creds["client_id"]}:{creds["api_key"]} {base}/institutions/mxbank

With MX's Python SDK (pip install mx-platform-python):
  import mx_platform_python as mx
  api = mx.ApiClient(mx.Configuration(host="{base}",
                     username="{creds["client_id"]}", password="{creds["api_key"]}"))
  print(mx.InstitutionsApi(api).read_institution("mxbank"))
"""
    )


@app.command()
def worker(
    database_url: str | None = DbOption,
    concurrency: int | None = typer.Option(None, help="Jobs run at once by this process."),
) -> None:
    """Run a worker (and the scheduler) without the API."""
    from openagg.engine.scheduler import run_scheduler
    from openagg.engine.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = _settings(database_url)
    _prepare(settings)

    async def main(rt: Runtime) -> None:
        stop = asyncio.Event()
        # SIGINT/SIGTERM: stop claiming, let running jobs finish briefly, hand back the rest.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(Worker(rt, concurrency).run(stop), run_scheduler(rt, stop))

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


if __name__ == "__main__":
    app()
