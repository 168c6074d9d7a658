# The C hot path (`_speedups.c`); `accel.native` is this module when it was built.
import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from openagg.ofx.models import Transaction

FIELDS: tuple[tuple[str, str], ...]
SPANS_PER_ROW: int

def find_runs(text: str, start: int) -> list[tuple[int, int, bytes, int, int]] | None: ...
def read_run(
    text: str,
    spans: bytes,
    count: int,
    zone_tzinfo: Callable[[str], dt.tzinfo | None],
    raw_when: Callable[[str], dt.datetime | None],
    /,
) -> list[Transaction | None]: ...
def configure(
    transaction: type[Transaction],
    decimal: type[Decimal],
    invalid_operation: type[Exception],
    unescape: Callable[[str], str],
    /,
) -> None: ...
