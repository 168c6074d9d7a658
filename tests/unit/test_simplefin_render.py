"""SimpleFIN transactions rendered by SQLite (``TRANSACTION_JSON_SQLITE``) are the
bytes the Python renderer (``add_transactions`` and orjson) makes, for every field's
edge: each character a string may hold, empty and missing texts, signs and sizes of
amounts, pending and posted, with and without a category."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import orjson

from openagg.wire.simplefin import (
    TRANSACTION_COLUMNS,
    TRANSACTION_JSON_SQLITE,
    sqlite_transactions_json,
    transactions_json,
)

# Every code point but the surrogates (which no stored text can hold), in chunks.
_CHARS = [chr(i) for i in range(0x110000) if not 0xD800 <= i < 0xE000]
_TRICKY = [
    None,
    "",
    " ",
    '"',
    "\\",
    '\\"',
    "\x00",
    "\x7f",
    "a\nb\tc\rd\x08e\x0cf\x1f",
    "</script>",
    "caf\u00e9 \u2028 \u2029 \U0001f600",
    "0",
    "null",
    "%s %d %%",
    "'quoted'",
]


def _rows() -> list[tuple[Any, ...]]:
    rng = random.Random(19)
    texts = _TRICKY + ["".join(_CHARS[i : i + 997]) for i in range(0, len(_CHARS), 997)]
    cents = [0, 1, -1, 5, -5, 99, 100, -100, 123_456, -123_456, 10**15 - 1, 10**15, -(10**17) - 7]
    rows = []
    for n in range(len(texts) * 2):
        rows.append(
            (
                1 + n % 3,  # account_id
                f"TRN-{n}",
                rng.choice(["PENDING", "POSTED"]),
                1_700_000_000 + n,  # posted
                1_690_000_000 + n,  # happened
                cents[n % len(cents)],
                rng.choice(["DEBIT", "CREDIT"]),
                rng.choice(texts),  # description
                rng.choice(texts),  # original_description
                rng.choice(texts),  # memo
                texts[n % len(texts)] if n % 4 else None,  # category
            )
        )
    return rows


def test_sqlite_renders_the_bytes_the_python_renderer_makes() -> None:
    rows = _rows()
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE TABLE t ({', '.join(TRANSACTION_COLUMNS)})")
    marks = ", ".join("?" * len(TRANSACTION_COLUMNS))
    conn.executemany(f"INSERT INTO t VALUES ({marks})", rows)
    rendered = conn.execute(f"SELECT account_id, {TRANSACTION_JSON_SQLITE} FROM t ORDER BY rowid")
    accounts = [1, 2, 3, 4]  # 4 has no transactions: []
    by_sqlite = sqlite_transactions_json(rendered, accounts)
    by_python = transactions_json(rows, accounts)
    assert len(orjson.dumps(by_python[1])) > 100_000
    for account in accounts:
        assert orjson.dumps(by_sqlite[account]) == orjson.dumps(by_python[account]), account
