"""UserResponse."""

from __future__ import annotations

from typing import Any

from openagg.db.models import User


def user(u: User) -> dict[str, Any]:
    """UserResponse."""
    return {
        "email": u.email,
        "guid": u.guid,
        "id": u.external_id,
        "is_disabled": bool(u.is_disabled),
        "metadata": u.metadata_,
    }
