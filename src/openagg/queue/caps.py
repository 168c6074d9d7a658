"""Fair use of institutions: the pure rules behind the per-institution caps.

Two caps per institution, honoured across all workers (``queue/jobs.py: claim``
applies them while holding the institution's ``institution_limits`` row lock):

- ``max_concurrent``: sessions open at the institution at once (running jobs). A job
  over it simply stays queued until a slot frees; nothing is written.
- ``max_per_day``: aggregations started per UTC day. Foreground work (an end user is
  waiting) may use the whole day's allowance at any time. Background work is paced:
  by time t into the day it may have started only ``floor(cap * t / day) + 1``, so a
  backlog spreads over the day instead of running at midnight. A job over the cap
  is deferred: its ``run_after`` moves to the time the cap allows it, and the job
  records that time and why.

A resumed MFA job continues an aggregation already counted, so it is exempt from the
daily cap (its saved session would expire overnight); it still needs a free slot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Caps:
    """0 means no cap."""

    max_concurrent: int = 0
    max_per_day: int = 0

    @property
    def any(self) -> bool:
        return bool(self.max_concurrent or self.max_per_day)


def effective_caps(max_concurrent: int | None, max_per_day: int | None, default: Caps) -> Caps:
    """An institution's own values win; ``None`` falls back to the global default."""
    return Caps(
        max_concurrent=default.max_concurrent if max_concurrent is None else max_concurrent,
        max_per_day=default.max_per_day if max_per_day is None else max_per_day,
    )


@dataclass
class Usage:
    """What an institution uses right now (read under its row lock)."""

    running: int = 0
    started_today: int = 0


@dataclass(frozen=True)
class Candidate:
    job_id: int
    institution_id: int | None
    foreground: bool
    resuming: bool = False


@dataclass(frozen=True)
class Deferral:
    until: dt.datetime
    reason: str


@dataclass
class Allocation:
    claim: list[int] = field(default_factory=list)
    defer: dict[int, Deferral] = field(default_factory=dict)
    # Over the concurrency cap: left queued, untouched, for the next free slot.
    wait: list[int] = field(default_factory=list)
    # Per institution, how many aggregations this allocation starts (daily counter).
    started: dict[int, int] = field(default_factory=dict)


def day_start(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def background_budget(max_per_day: int, now: dt.datetime) -> int:
    """How many aggregations background work may have started by ``now`` today."""
    elapsed = (now - day_start(now)) / DAY
    return min(max_per_day, int(max_per_day * elapsed) + 1)


def background_slot(max_per_day: int, slot: int, now: dt.datetime) -> dt.datetime:
    """When the paced budget first admits aggregation number ``slot`` (0-based) of
    today; slots past the cap run on into the following days at the same pace."""
    return day_start(now) + DAY * slot / max_per_day


def allocate(
    candidates: Iterable[Candidate],
    caps: dict[int, Caps],
    usage: dict[int, Usage],
    now: dt.datetime,
) -> Allocation:
    """Decide, in the candidates' order (priority, then age), which jobs start now,
    which are deferred and until when, and which wait for a free slot.

    ``caps`` holds only capped institutions; ``usage`` is read under their locks."""
    out = Allocation()
    deferred_background: dict[int, int] = {}
    for c in candidates:
        cap = caps.get(c.institution_id) if c.institution_id is not None else None
        if cap is None or not cap.any:
            out.claim.append(c.job_id)
            continue
        assert c.institution_id is not None
        used = usage.setdefault(c.institution_id, Usage())
        if cap.max_concurrent and used.running >= cap.max_concurrent:
            out.wait.append(c.job_id)
            continue
        daily = cap.max_per_day and not c.resuming
        if daily and c.foreground and used.started_today >= cap.max_per_day:
            out.defer[c.job_id] = Deferral(
                day_start(now) + DAY,
                f"institution daily cap reached ({cap.max_per_day} aggregations per day)",
            )
            continue
        if daily and not c.foreground:
            allowed = background_budget(cap.max_per_day, now)
            if used.started_today >= allowed:
                # Successive deferred jobs take successive slots, so they do not all
                # become due at the same moment.
                ahead = deferred_background.get(c.institution_id, 0)
                deferred_background[c.institution_id] = ahead + 1
                slot = max(used.started_today, allowed) + ahead
                out.defer[c.job_id] = Deferral(
                    background_slot(cap.max_per_day, slot, now),
                    "background paced to the institution daily cap "
                    f"({cap.max_per_day} aggregations per day)",
                )
                continue
        out.claim.append(c.job_id)
        used.running += 1
        if daily:
            used.started_today += 1
            out.started[c.institution_id] = out.started.get(c.institution_id, 0) + 1
    return out
