"""The codec's hot path in C (`_speedups.c`: runs of plain STMTTRN), when it was
built. pip builds it where a C compiler is; without one the install goes on and
the codec reads the same, in pure Python, about five times slower."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from types import ModuleType

from openagg.ofx.models import Transaction
from openagg.ofx.values import unescape

native: ModuleType | None
try:
    from openagg.ofx import _speedups
except ImportError:  # built without a compiler
    native = None
else:
    _speedups.configure(Transaction, Decimal, InvalidOperation, unescape)
    native = _speedups
