"""InvestmentHoldingResponse."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from openagg.db.models import Holding
from openagg.wire.scalars import iso, to_float

_HOLDING_NULLS: Final = (
    "coupon_yield",
    "current_price_as_of",
    "daily_change",
    "expiration",
    "face_value",
    "frequency",
    "issue_date",
    "maturity_date",
    "percentage_change",
    "purchase_price",
    "put_or_call",
    "rate",
    "strike_price",
    "term",
    "term_unit",
    "today_ugl_amount",
    "today_ugl_percentage",
    "total_ugl_amount",
    "total_ugl_percentage",
    "unvested_quantity",
    "unvested_value",
    "vested_quantity",
    "vested_value",
    "vesting_end_date",
    "vesting_start_date",
)


def _quantity(q: float | None) -> str | None:
    """MX sends quantity as a string ("5000.0"); repr keeps every digit we have."""
    f = to_float(q)
    if f is None:
        return None
    s = repr(f)
    # Never scientific notation (1e-07, 1e+16): plain digits, same value.
    return format(Decimal(s), "f") if "e" in s else s


def holding(h: Holding, *, user_guid: str, account_guid: str, member_guid: str) -> dict[str, Any]:
    """InvestmentHoldingResponse (v20111101 declares no member_guid on it; the
    argument is accepted for symmetry with the other serializers and unused)."""
    del member_guid
    out: dict[str, Any] = dict.fromkeys(_HOLDING_NULLS)
    out.update(
        account_guid=account_guid,
        cost_basis=to_float(h.cost_basis),
        created_at=iso(h.created_at),
        currency_code=h.currency_code,
        current_price=to_float(h.current_price),
        description=h.description,
        guid=h.guid,
        holding_type=h.holding_type,
        market_value=to_float(h.market_value),
        quantity=_quantity(h.quantity),
        symbol=h.symbol,
        user_guid=user_guid,
    )
    return out
