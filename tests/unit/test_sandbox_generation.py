"""The sandbox's fast generation: what its per-process pools and caches remember
never changes a member's data, across members, days and processes."""

from __future__ import annotations

import dataclasses
import datetime as dt

from openagg.connectors import sandbox_data
from openagg.db import driver

TODAY = dt.date(2026, 3, 2)
WINDOW = (TODAY - dt.timedelta(days=89), TODAY)


def pull(member: str, today: dt.date = TODAY) -> dict[str, list[tuple[object, ...]]]:
    profile = sandbox_data.member_profile(member, "mxbank", today)
    return {
        a.external_id: [
            dataclasses.astuple(t)
            for t in sandbox_data.transactions_for(profile, a.external_id, today, *WINDOW)
        ]
        for a in profile.accounts
    }


def forget() -> None:
    """What a new worker process starts with: nothing remembered."""
    sandbox_data.member_profile.cache_clear()
    sandbox_data._purchase_pool.cache_clear()


def test_the_pools_and_caches_never_change_what_a_member_gets() -> None:
    forget()
    first = pull("MBR-gen-1")
    others = [pull(f"MBR-gen-other-{i}") for i in range(5)]  # fill the caches in between
    again = pull("MBR-gen-1")
    forget()
    fresh = pull("MBR-gen-1")
    assert first == again == fresh
    assert all(other != first for other in others)


def test_neighbours_shop_differently() -> None:
    """Members of one town draw from the same pool of purchases, but not the same ones."""
    by_town: dict[str, list[str]] = {}
    for i in range(40):
        guid = f"MBR-town-{i}"
        by_town.setdefault(sandbox_data.member_profile(guid, "mxbank", TODAY).city, []).append(guid)
    a, b = next(members for members in by_town.values() if len(members) >= 2)[:2]

    def purchases(member: str) -> list[tuple[object, ...]]:
        card = sandbox_data.member_profile(member, "mxbank", TODAY).account_of_type("CREDIT_CARD")
        return [t[2:] for t in pull(member)[card.external_id] if t[12]]  # merchant purchases

    assert purchases(a) and purchases(b)
    assert [p[0] for p in purchases(a)] != [p[0] for p in purchases(b)]  # amounts


def test_a_dates_transactions_do_not_depend_on_the_day_they_are_pulled() -> None:
    """Only the status moves: what happened on a date is the same seen from any later
    day (and from another process)."""
    member = "MBR-gen-days"
    profile = sandbox_data.member_profile(member, "mxbank", TODAY)
    card = profile.account_of_type("CREDIT_CARD").external_id
    day = next(  # a date with card purchases
        d
        for d in (TODAY - dt.timedelta(days=n) for n in range(20, 60))
        if any(t.merchant_name for t in sandbox_data.transactions_for(profile, card, TODAY, d, d))
    )
    seen = []
    for today in (day, day + dt.timedelta(days=1), day + dt.timedelta(days=30)):
        forget()
        profile = sandbox_data.member_profile(member, "mxbank", today)
        for acct in profile.accounts:
            for t in sandbox_data.transactions_for(profile, acct.external_id, today, day, day):
                seen.append((today, t.external_id, t.amount, t.description, t.status))
    by_today: dict[dt.date, list[tuple[object, ...]]] = {}
    for today, *rest in seen:
        by_today.setdefault(today, []).append(tuple(rest))
    same_day, next_day, later = by_today.values()
    assert [r[:3] for r in same_day] == [r[:3] for r in next_day] == [r[:3] for r in later]
    assert {r[3] for r in later} == {"POSTED"}
    assert "PENDING" in {r[3] for r in same_day}  # the day's card purchases


def test_remembered_conversions_equal_fresh_ones() -> None:
    est = dt.timezone(dt.timedelta(hours=-5))
    at = dt.datetime(2026, 3, 1, 20, 30, 15, 250, tzinfo=est)
    same_instant = at.astimezone(dt.UTC)
    b = driver.SQLITE
    assert b.cached_timestamp(at) == b.timestamp(at) == "2026-03-02 01:30:15.000250"
    assert b.cached_timestamp(same_instant) == b.timestamp(at)
    assert b.cached_date(at.date()) == "2026-03-01"
    assert b.cached_timestamp(None) is None
