"""The per-institution fair-use rules (queue/caps.py)."""

from __future__ import annotations

import datetime as dt

from openagg.queue.caps import (
    DAY,
    Candidate,
    Caps,
    Usage,
    allocate,
    background_budget,
    day_start,
    effective_caps,
)

NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
MIDNIGHT = day_start(NOON)


def fg(job_id: int, institution: int = 1) -> Candidate:
    return Candidate(job_id, institution, foreground=True)


def bg(job_id: int, institution: int = 1) -> Candidate:
    return Candidate(job_id, institution, foreground=False)


def test_own_values_win_and_none_means_default() -> None:
    default = Caps(max_concurrent=4, max_per_day=100)
    assert effective_caps(None, None, default) == default
    assert effective_caps(2, 0, default) == Caps(2, 0)
    assert not Caps().any


def test_uncapped_institutions_take_everything() -> None:
    plan = allocate([fg(1), bg(2, institution=2)], {}, {}, NOON)
    assert plan.claim == [1, 2] and not plan.defer and not plan.wait


def test_concurrency_cap_leaves_the_rest_queued() -> None:
    usage = {1: Usage(running=1)}
    plan = allocate([fg(1), fg(2), fg(3), fg(4, 2)], {1: Caps(max_concurrent=2)}, usage, NOON)
    assert plan.claim == [1, 4]
    assert plan.wait == [2, 3]
    assert not plan.defer


def test_daily_cap_defers_foreground_to_the_next_day() -> None:
    usage = {1: Usage(started_today=9)}
    plan = allocate([fg(1), fg(2)], {1: Caps(max_per_day=10)}, usage, NOON)
    assert plan.claim == [1]
    assert plan.defer[2].until == MIDNIGHT + DAY
    assert "10 aggregations per day" in plan.defer[2].reason
    assert plan.started == {1: 1}


def test_background_is_paced_over_the_day() -> None:
    # 24 a day: one an hour. At noon background may have started 12 + 1.
    assert background_budget(24, NOON) == 13
    assert background_budget(24, MIDNIGHT) == 1
    usage = {1: Usage(started_today=13)}
    plan = allocate([bg(1), bg(2), bg(3)], {1: Caps(max_per_day=24)}, usage, NOON)
    assert plan.claim == []
    # Successive slots, one hour apart, not all at once.
    assert [plan.defer[j].until for j in (1, 2, 3)] == [
        MIDNIGHT + dt.timedelta(hours=h) for h in (13, 14, 15)
    ]


def test_a_midnight_backlog_is_not_all_started_at_midnight() -> None:
    backlog = [bg(j) for j in range(100)]
    plan = allocate(backlog, {1: Caps(max_per_day=48)}, {1: Usage()}, MIDNIGHT)
    assert plan.claim == [0]
    untils = sorted(d.until for d in plan.defer.values())
    assert untils[0] == MIDNIGHT + dt.timedelta(minutes=30)
    assert untils[-1] > MIDNIGHT + DAY  # more than a day's cap runs on into the next day


def test_foreground_may_use_the_whole_allowance_early() -> None:
    usage = {1: Usage(started_today=5)}
    plan = allocate([fg(1), bg(2)], {1: Caps(max_per_day=24)}, usage, MIDNIGHT)
    assert plan.claim == [1]  # foreground: 5 < 24
    assert 2 in plan.defer  # background: budget at midnight is 1


def test_a_resumed_mfa_job_is_not_counted_again() -> None:
    usage = {1: Usage(started_today=10)}
    resumed = Candidate(1, 1, foreground=True, resuming=True)
    plan = allocate([resumed], {1: Caps(max_per_day=10)}, usage, NOON)
    assert plan.claim == [1] and plan.started == {}


def test_both_caps_together() -> None:
    usage = {1: Usage(running=0, started_today=0)}
    plan = allocate([fg(j) for j in range(5)], {1: Caps(2, 3)}, usage, NOON)
    assert plan.claim == [0, 1] and plan.wait == [2, 3, 4]
