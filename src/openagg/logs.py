"""Logging: one line per event, tagged with the request or job it belongs to.

``OPENAGG_LOG_FORMAT=json`` writes JSON lines for a log pipeline; ``text`` (the
default) is for people. The ids come from context variables the API middleware and
the runner set, so every line logged while handling a request or a job carries them.
Secrets are never passed to a logger in the first place (see tests/integration/
test_secrets.py); connectors, whose code the platform does not control, log through
``Redacting``, which takes out the member's secrets as a last guard.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)


class _ContextIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{name}={value}"
            for name in ("request_id", "job_id")
            if (value := getattr(record, name, None))
        ]
        return f"{line} [{' '.join(ids)}]" if ids else line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "job_id"):
            if value := getattr(record, name, None):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure(fmt: Literal["text", "json"] = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_ContextIds())
    handler.setFormatter(
        _JsonFormatter()
        if fmt == "json"
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every start at INFO (its plugins, its context, each step): noise
    # before the lines a person looks for; a schema change is logged once by
    # db/migrate.py instead.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    # httpx and httpcore log every outgoing request's URL, and a connector's URLs carry
    # secrets (a SimpleFIN access URL's password, OAuth codes, account numbers).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


REDACTED = "[redacted]"
# Shorter values would blank out ordinary words; no real secret is this short.
MIN_REDACTED_LENGTH = 4


def secret_strings(value: Any) -> Iterator[str]:
    """The strings inside a JSON-like value (a secret may be a nested token set)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from secret_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secret_strings(item)


class Redacting(logging.LoggerAdapter[logging.Logger]):
    """A logger that writes every line, traceback included, with the values
    ``hidden()`` gives replaced. Connectors get one (``ctx.log``): a careless
    ``log.info("login %s", credentials)`` must not put a password in the logs."""

    def __init__(self, logger: logging.Logger, hidden: Callable[[], Iterable[str]]) -> None:
        super().__init__(logger, {})
        self._hidden = hidden

    def redact(self, text: str) -> str:
        values = {v for v in self._hidden() if len(v) >= MIN_REDACTED_LENGTH}
        for value in sorted(values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text

    def log(  # type: ignore[override]
        self,
        level: int,
        msg: object,
        *args: object,
        exc_info: Any = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        if not self.logger.isEnabledFor(level):
            return
        if len(args) == 1 and isinstance(args[0], Mapping):
            text = str(msg) % args[0]
        else:
            text = str(msg) % args if args else str(msg)
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
            if exc_info[0] is not None:
                text += "\n" + "".join(traceback.format_exception(*exc_info)).rstrip()
        self.logger.log(level, self.redact(text), stacklevel=stacklevel + 1, extra=extra)
