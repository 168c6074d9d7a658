"""The database the suite runs on.

Every test gets a database that is already migrated, copied from one template that
each test process migrates once:

- SQLite files by default: the template is a file migrated on first use, checkpointed
  (no ``-wal`` file), and each test gets a copy of it (``shutil.copyfile`` takes about a
  millisecond, migrating a new file about a third of a second).
- With ``OPENAGG_TEST_BACKEND=postgresql``, a fresh PostgreSQL database cloned from a
  migrated template (``CREATE DATABASE ... TEMPLATE`` takes milliseconds, migrating takes
  a second). The server is ``OPENAGG_TEST_PG`` (default: the local one, trust auth).

A platform started on such a database (``openagg serve``, ``worker``, ``migrate``) finds
its schema current, and its start-up migration does nothing. Tests about the migrations
themselves ask for an empty database (``migrated=False``) and migrate it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openagg.db.migrate import upgrade

BACKEND = os.environ.get("OPENAGG_TEST_BACKEND", "sqlite")
ON_POSTGRES = BACKEND == "postgresql"
PG_SERVER = os.environ.get("OPENAGG_TEST_PG", "postgres@127.0.0.1:5432")

_prefix = f"openagg_t{os.getpid()}"
_counter = itertools.count()
_created: list[str] = []
_template_lock = threading.Lock()
_template: str | None = None
_sqlite_template: Path | None = None


def pg_url(database: str, driver: str = "postgresql+asyncpg") -> str:
    return f"{driver}://{PG_SERVER}/{database}"


def libpq_url(database: str) -> str:
    """A database name on the test server, or any SQLAlchemy URL, as psql wants it."""
    if "://" in database:
        return database.replace("postgresql+asyncpg://", "postgresql://", 1)
    return pg_url(database, "postgresql")


def psql(sql: str, database: str = "postgres") -> str:
    """Run SQL with psql; ``database`` is a name on the test server or a full URL."""
    if shutil.which("psql") is None:
        raise RuntimeError("psql not found (Debian package postgresql-client)")
    out = subprocess.run(
        ["psql", libpq_url(database), "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise subprocess.CalledProcessError(out.returncode, f"psql: {sql}", out.stdout, out.stderr)
    return out.stdout


def postgres_available() -> bool:
    try:
        psql("select 1")
    except (RuntimeError, subprocess.CalledProcessError):
        return False
    return True


def _migrate(url: str) -> None:
    # upgrade() runs its own event loop; a thread keeps it away from the test's loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, url).result()


def _template_database() -> str:
    global _template
    with _template_lock:
        if _template is None:
            name = f"{_prefix}_template"
            psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            psql(f"CREATE DATABASE {name}")
            _created.append(name)
            _migrate(pg_url(name))
            _template = name
        return _template


def new_postgres_database(migrated: bool = True) -> str:
    """A fresh database (migrated unless asked not to); dropped at the end of the run."""
    name = f"{_prefix}_{next(_counter)}"
    template = f" TEMPLATE {_template_database()}" if migrated else ""
    psql(f"CREATE DATABASE {name}{template}")
    _created.append(name)
    return pg_url(name)


def _sqlite_template_file() -> Path:
    """This process's migrated SQLite file, made on first use (threads wait for it)."""
    global _sqlite_template
    with _template_lock:
        if _sqlite_template is None:
            path = Path(tempfile.mkdtemp(prefix="openagg-template-")) / "openagg.db"
            _migrate(f"sqlite+aiosqlite:///{path}")
            # Everything in the main file, so that copying that file alone copies it all.
            with contextlib.closing(sqlite3.connect(path)) as con:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if Path(f"{path}-wal").exists():
                raise RuntimeError(f"{path}-wal still exists after the checkpoint")
            _sqlite_template = path
        return _sqlite_template


def new_sqlite_database(path: Path, migrated: bool = True) -> str:
    """The URL of the SQLite file ``path``: a copy of the migrated template unless asked
    not to or unless the file is already there (a platform restarted on the same
    directory keeps its data)."""
    if migrated and not path.exists():
        shutil.copyfile(_sqlite_template_file(), path)
    return f"sqlite+aiosqlite:///{path}"


def database_url_for(tmp_path: Path, migrated: bool = True) -> str:
    """The URL a test's platform uses: a file under ``tmp_path`` or a new PG database,
    migrated unless asked not to."""
    if ON_POSTGRES:
        return new_postgres_database(migrated)
    return new_sqlite_database(tmp_path / "openagg.db", migrated)


def drop_created_databases() -> None:
    global _sqlite_template
    for name in reversed(_created):
        # Best effort: a leftover test database harms nothing.
        with contextlib.suppress(subprocess.CalledProcessError):
            psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _created.clear()
    with _template_lock:
        if _sqlite_template is not None:
            shutil.rmtree(_sqlite_template.parent, ignore_errors=True)
            _sqlite_template = None


def scalar(database_url: str, sql: str) -> int:
    """One integer read over a plain connection of its own, on either backend."""
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.split("///", 1)[1]) as con:
            return int(con.execute(sql).fetchone()[0])
    return int(psql(sql, database_url).strip())


def stored_bytes(database_url: str) -> bytes:
    """Everything the database holds: the SQLite file and its WAL, or a full pg_dump."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        return b"".join(
            Path(path + suffix).read_bytes()
            for suffix in ("", "-wal")
            if Path(path + suffix).exists()
        )
    dump = subprocess.run(
        ["pg_dump", libpq_url(database_url)],
        check=True,
        capture_output=True,
    )
    return dump.stdout
