"""How OpenAgg's SQLite engine has the driver bind Python values."""

from __future__ import annotations

import sqlite3

import openagg.db.engine  # noqa: F401  (registers the None adapter)


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
