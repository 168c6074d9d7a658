"""PaginationResponse, the page block of every list."""

from __future__ import annotations

from typing import Any


def pagination(page: int, per_page: int, total: int) -> dict[str, Any]:
    """PaginationResponse. ``total_pages`` is ``ceil(total / per_page)``.

    So an empty list reports ``total_pages: 0`` (with ``current_page`` as asked):
    this is what MX sends for empty collections, and the SDKs only check the type.
    """
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    return {
        "current_page": int(page),
        "per_page": int(per_page),
        "total_entries": int(total),
        "total_pages": -(-int(total) // int(per_page)),
    }
