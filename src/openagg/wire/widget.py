"""WidgetResponse and ConnectWidgetResponse (widget URLs)."""

from __future__ import annotations

from typing import Any

from openagg.db.models import User


def widget_url(url: str, *, widget_type: str, user: User) -> dict[str, Any]:
    """WidgetResponse (``user_id`` is the partner's user id, null when none was set)."""
    return {"type": widget_type, "url": url, "user_id": user.external_id}


def connect_widget_url(url: str, *, user: User) -> dict[str, Any]:
    """ConnectWidgetResponse, the legacy ``POST /users/{guid}/connect_widget_url``."""
    return {"connect_widget_url": url, "guid": user.guid}
