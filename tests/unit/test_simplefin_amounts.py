"""SimpleFIN amounts: exactly two decimals, on the fast path and beyond it."""

from __future__ import annotations

import random

from openagg.wire.simplefin import amount


def _exact(cents: int) -> str:
    whole, fraction = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{fraction:02d}"


def test_amounts_are_exact_strings_with_two_decimals() -> None:
    assert amount(-1230) == "-12.30" and amount(5) == "0.05" and amount(0) == "0.00"
    assert amount(-1) == "-0.01" and amount(100) == "1.00"
    edge = 10**15
    rng = random.Random(19)
    values = [
        *range(-20_000, 20_001),
        *(rng.randrange(-edge + 1, edge) for _ in range(200_000)),
        edge - 1,
        -edge + 1,
        edge,
        -edge,
        10**20 + 7,
        -(10**20) - 99,
    ]
    assert [v for v in values if amount(v) != _exact(v)] == []
