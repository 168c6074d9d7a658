"""How long a coroutine holds the event loop between two awaits.

A connector is plugin code: one that calls a blocking HTTP client or ``time.sleep``
inside its ``async`` methods stops the whole worker (every job, the heartbeat, the
claims) and no deadline can interrupt it, since deadlines need the loop. ``watched``
times each uninterrupted stretch of a coroutine (wall and CPU time), so the runner
can name the connector that did it and the conformance suite can fail it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# A stretch this long is a stall: a blocking call, or parsing that belongs in a thread.
STALL_SECONDS = 0.5

Report = Callable[[float, float], None]  # (wall seconds, CPU seconds) of one stretch


async def watched(coro: Coroutine[Any, Any, T], report: Report) -> T:
    """``await coro``, with ``report`` called after each stretch the coroutine runs
    without giving the loop back."""
    return await _Stretches(coro, report)


class _Stretches(Generic[T]):
    """Drives the coroutine step by step, as the task would, timing each step."""

    __slots__ = ("_coro", "_report")

    def __init__(self, coro: Coroutine[Any, Any, T], report: Report) -> None:
        self._coro = coro
        self._report = report

    def __await__(self) -> Generator[Any, Any, T]:
        coro, report = self._coro, self._report
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                step = coro.send(sent) if thrown is None else coro.throw(thrown)
            except StopIteration as done:
                return done.value
            finally:
                report(time.perf_counter() - wall, time.thread_time() - cpu)
            try:
                sent, thrown = (yield step), None
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, passed on as the task gave it
                sent, thrown = None, exc
