"""The sandbox's fast generation: what its per-process pools and caches remember
never changes a member's data, across members, days and processes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from openagg.connectors import sandbox_data
from openagg.db import driver

TODAY = dt.date(2026, 3, 2)
WINDOW = (TODAY - dt.timedelta(days=89), TODAY)
CENT = Decimal("0.01")


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
    sandbox_data._calendar.cache_clear()
    sandbox_data._calendar_day.cache_clear()


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


def test_transactions_have_every_field_in_its_place() -> None:
    """The sandbox builds TransactionData positionally (keywords cost more than the
    rest): each field must still hold what its name says."""
    profile = sandbox_data.member_profile("MBR-gen-fields", "mxbank", TODAY)
    merchants = {
        m.name: m
        for group in (*(g for g, _ in sandbox_data._CARD_MIX), sandbox_data._SUBSCRIPTIONS)
        for m in group
    }
    seen_purchase = seen_bank_item = False
    for account in profile.accounts:
        for t in sandbox_data.transactions_for(profile, account.external_id, TODAY, *WINDOW):
            assert t.external_id.startswith(f"{account.external_id}-{t.date:%Y%m%d}-")
            assert t.account_external_id == account.external_id
            assert isinstance(t.amount, Decimal) and t.amount > 0
            assert t.type in ("CREDIT", "DEBIT") and t.status in ("POSTED", "PENDING")
            assert t.transacted_at is not None and t.transacted_at.date() == t.date
            assert t.posted_at is None if t.status == "PENDING" else t.posted_at >= t.transacted_at
            assert t.original_description and t.description
            assert (t.memo, t.check_number_string, t.replaces_external_id) == (None, None, None)
            assert t.currency_code == "USD" and set(t.flags) == set(sandbox_data._FLAG_NAMES)
            if t.merchant_name in merchants:  # a card purchase or subscription
                m = merchants[t.merchant_name]
                assert (t.description, t.category, t.top_level_category) == (
                    m.name,
                    m.category,
                    m.top_level,
                )
                assert t.merchant_category_code == m.mcc and t.type == "DEBIT"
                seen_purchase = True
            else:
                assert isinstance(t.category, str) and isinstance(t.top_level_category, str)
                seen_bank_item = True
    assert seen_purchase and seen_bank_item


def test_a_card_payment_leaves_checking_as_it_reaches_the_card() -> None:
    profile = sandbox_data.member_profile("MBR-gen-payment", "mxbank", TODAY)

    def payments(acct_type: str, txn_type: str) -> list[tuple[dt.date, Decimal]]:
        account = profile.account_of_type(acct_type).external_id
        return [
            (t.date, t.amount)
            for t in sandbox_data.transactions_for(profile, account, TODAY, *WINDOW)
            if t.category == "Credit Card Payment" and t.type == txn_type
        ]

    sent = payments("CHECKING", "DEBIT")
    assert len(sent) >= 2 and len({amount for _, amount in sent}) == len(sent)  # monthly, varied
    assert sent == payments("CREDIT_CARD", "CREDIT")


def test_money_rounds_to_cents_as_round_does() -> None:
    for value in (0.0, 0.005, 0.015, 1.005, 2.675, 12.344999, 99.995, 1234.5, 650000.125, 15.49):
        assert sandbox_data._money(value) == Decimal(str(round(value, 2))).quantize(CENT)
        assert sandbox_data._money(value).as_tuple().exponent == -2


def test_remembered_conversions_equal_fresh_ones() -> None:
    est = dt.timezone(dt.timedelta(hours=-5))
    at = dt.datetime(2026, 3, 1, 20, 30, 15, 250, tzinfo=est)
    same_instant = at.astimezone(dt.UTC)
    b = driver.SQLITE
    assert b.cached_timestamp(at) == b.timestamp(at) == "2026-03-02 01:30:15.000250"
    assert b.cached_timestamp(same_instant) == b.timestamp(at)
    assert b.cached_date(at.date()) == "2026-03-01"
    assert b.cached_timestamp(None) is None
