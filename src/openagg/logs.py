"""Logging: one line per event, tagged with the request or job it belongs to.

``OPENAGG_LOG_FORMAT=json`` writes JSON lines for a log pipeline; ``text`` (the
default) is for people. The ids come from context variables the API middleware and
the runner set, so every line logged while handling a request or a job carries them.
Secrets are never passed to a logger in the first place (see tests/integration/
test_secrets.py); this module adds ids, nothing else.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from typing import Literal

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
    # Alembic lists its autogenerate plugins at INFO on every start: noise, not news.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(level, logging.WARNING))
