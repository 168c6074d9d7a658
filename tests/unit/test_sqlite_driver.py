"""How OpenAgg talks to SQLite's driver: binding Python values, UNIX times in SQL."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

import openagg.db.engine  # noqa: F401  (registers the None adapter)
from openagg.db import driver
from openagg.db.driver import SQLITE


def test_none_is_still_bound_as_null() -> None:
    # The adapter is a shortcut past sqlite3's adaptation protocol, not a conversion.
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b TEXT, c INTEGER NOT NULL DEFAULT 7)")
    conn.executemany("INSERT INTO t (a, b) VALUES (?, ?)", [(None, None), (1, "x")])
    assert conn.execute("SELECT a IS NULL, b IS NULL, typeof(a) FROM t").fetchall() == [
        (1, 1, "null"),
        (0, 0, "integer"),
    ]
    assert conn.execute("SELECT count(*) FROM t WHERE b = ?", (None,)).fetchone() == (0,)


@pytest.mark.parametrize("unixepoch", [True, False], ids=["unixepoch", "strftime"])
def test_epoch_is_pythons_whole_seconds(unixepoch: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Backend.epoch`` on stored timestamps and dates, as ``int(value.timestamp())``
    gives it, with unixepoch() (SQLite 3.38) or without."""
    if unixepoch and sqlite3.sqlite_version_info < (3, 38, 0):
        pytest.skip("this SQLite has no unixepoch()")
    monkeypatch.setattr(driver, "_UNIXEPOCH", unixepoch)
    utc = dt.UTC
    times = [
        dt.datetime(2026, 12, 7, 21, 30, 5, 999_999, tzinfo=utc),
        dt.datetime(2026, 12, 7, 0, 0, 0, tzinfo=utc),
        dt.datetime(1999, 12, 31, 23, 59, 59, 500_000, tzinfo=utc),
        dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=utc),
    ]
    conn = sqlite3.connect(":memory:")
    for when in times:
        [(got,)] = conn.execute(f"SELECT {SQLITE.epoch('?')}", [SQLITE.timestamp(when)])
        assert got == int(when.timestamp()), when
        midnight = dt.datetime.combine(when.date(), dt.time(), utc)
        [(day,)] = conn.execute(f"SELECT {SQLITE.epoch('?')}", [SQLITE.date(when.date())])
        assert day == int(midnight.timestamp())
    [(none,)] = conn.execute(f"SELECT {SQLITE.epoch('?')}", [None])
    assert none is None
