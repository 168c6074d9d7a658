"""The rules every call into a connector runs under, for an aggregation's calls and a
revocation alike: the job's deadline, a watch on how long it holds the event loop,
and whatever it raises turned into a cause (the engine trusts nothing a connector does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from openagg import metrics
from openagg.connectors.base import ConnectorError
from openagg.domain.causes import Cause
from openagg.engine.stalls import STALL_SECONDS, watched
from openagg.services.connector_calls import ConnectorCall

T = TypeVar("T")

log = logging.getLogger("openagg.engine")


class Ended(Exception):
    """A connector's call ended without its result: why, and what to say."""

    def __init__(self, cause: Cause, message: str = "") -> None:
        self.cause, self.message = cause, message


async def guarded(
    call: ConnectorCall, work: Coroutine[Any, Any, T], *, deadline: float, label: str
) -> T:
    """``await work`` (the connector's calls) under the deadline; raises ``Ended``
    with the cause of anything it raises. ``label`` names the job in the logs."""

    def stalled(seconds: float, cpu_seconds: float) -> None:
        if seconds < STALL_SECONDS:
            return
        metrics.observe_connector_stall(call.name)
        log.warning(
            "%s: connector %r held the worker's event loop for %.2f s (%.2f s of CPU) "
            "without yielding; every job of this worker waited. A blocking call (a "
            "synchronous HTTP client, time.sleep) or long parsing belongs in a thread",
            label,
            call.name,
            seconds,
            cpu_seconds,
        )

    try:
        async with asyncio.timeout(deadline) as budget:
            return await watched(work, stalled)
    except ConnectorError as exc:
        raise Ended(exc.cause, call.log.redact(exc.institution_message)) from None
    except (TimeoutError, httpx.TimeoutException):
        if budget.expired():
            log.warning("%s: past the %g s deadline; cancelled", label, deadline)
        raise Ended(Cause.TIMEOUT, "") from None
    except httpx.HTTPError as exc:
        # Connection refused, reset, a private address refused: the institution
        # could not be reached.
        call.log.warning("%s: %s: %s", label, type(exc).__name__, exc)
        raise Ended(Cause.INSTITUTION_UNAVAILABLE, "") from None
    except Exception:
        call.log.exception("%s failed inside the connector", label)
        raise Ended(Cause.INTERNAL_ERROR, "") from None
