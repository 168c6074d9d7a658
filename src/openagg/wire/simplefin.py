"""SimpleFIN's JSON shapes, as OpenAgg serves them (``/simplefin``; the rules the real
clients read are in docs/simplefin.md).

* money: a string with exactly two decimals (``"-12.30"``), since OpenAgg keeps
  hundredths and Actual Budget computes cents as ``parseInt(s.replace(".", ""))``;
* an amount's sign is the money's direction for the account: a debit is negative;
  a balance is negative for money owed (credit cards, loans), as the Bridge sends it;
* times are UNIX epoch integers; ``posted`` is ``0`` for a pending transaction;
* every field a known client reads is always present (``org`` with ``domain``,
  ``name``, ``sfin-url``, ``id``; ``available-balance``; ``payee``, ``memo``,
  ``transacted_at``, ``pending``), with the JSON type it expects.

The v1 shape (``errors`` strings, ``org`` per account) is the default; ``version=2``
gives ``errlist``, ``connections`` and ``conn_id`` per account.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import orjson

from openagg.db.models import SimplefinToken
from openagg.domain.statuses import (
    MESSAGES,
    NEEDS_END_USER,
    NEEDS_NEW_CREDENTIALS,
    NOT_AGGREGATABLE,
    Status,
)
from openagg.wire.scalars import iso

# MX account types whose balance is money owed: negative in SimpleFIN.
DEBT_TYPES: Final = frozenset(
    {"CREDIT_CARD", "LOAN", "MORTGAGE", "LINE_OF_CREDIT", "CHECKING_LINE_OF_CREDIT"}
)
# A member in one of these waits for its end user, who fixes it in the widget.
NEEDS_ATTENTION: Final = NEEDS_END_USER - NOT_AGGREGATABLE
# ... and these of them are a sign-in problem (version 2's ``con.auth``).
_SIGN_IN: Final = NEEDS_NEW_CREDENTIALS | {
    Status.CHALLENGED,
    Status.REJECTED,
    Status.EXPIRED,
    Status.LOCKED,
    Status.PENDING,
    Status.RECONNECTED,
}
# The institution, not the end user, is failing: OpenAgg keeps trying on its own.
_INSTITUTION_TROUBLE: Final = frozenset({Status.FAILED, Status.DEGRADED, Status.DISCONNECTED})


# Below this many cents, ``cents / 100`` is so close to the exact amount that "%.2f"
# rounds it to the exact digits (the float's error is far below half a cent).
_EXACT_AS_FLOAT = 10**15


def amount(cents: int) -> str:
    """``-1230`` -> ``"-12.30"``: exactly two decimals, never an exponent."""
    if -_EXACT_AS_FLOAT < cents < _EXACT_AS_FLOAT:
        return "%.2f" % (cents / 100)  # the fastest formatting
    whole, fraction = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{fraction:02d}"


def epoch(ts: dt.datetime) -> int:
    return int(ts.timestamp())


@dataclass(frozen=True)
class Connection:
    """One member of the user: one SimpleFIN connection."""

    conn_id: str  # the member's guid
    name: str
    status: Status | None
    org_id: str  # the institution's guid
    org_name: str
    org_domain: str
    org_url: str
    sfin_url: str
    fix_url: str
    last_success: dt.datetime | None


class AccountRow(NamedTuple):
    id: int
    guid: str
    name: str | None
    type: str | None
    currency_code: str | None
    balance_cents: int | None
    available_balance_cents: int | None
    member_id: int
    updated_at: dt.datetime


# The columns ``add_transactions`` reads, in order (services/simplefin.py selects them
# straight from the driver): ``posted`` and ``happened`` are UNIX times, the stored
# date's midday (UTC) when the transaction has no such time.
TRANSACTION_COLUMNS: Final = (
    "account_id",
    "guid",
    "status",
    "posted",
    "happened",
    "amount_cents",
    "type",
    "description",
    "original_description",
    "memo",
    "category",
)


def add_transactions(rows: Iterable[Sequence[Any]], into: dict[int, list[dict[str, Any]]]) -> None:
    """Each row (``TRANSACTION_COLUMNS``) as SimpleFIN's transaction, appended to its
    account's list in ``into``."""
    for (
        account_id,
        guid,
        status,
        posted,
        happened,
        cents,
        kind,
        description,
        original,
        memo,
        category,
    ) in rows:
        pending = status == "PENDING"
        body: dict[str, Any] = {
            "id": guid,
            "posted": 0 if pending else posted,
            "amount": amount(-cents if kind == "DEBIT" else cents),
            # The bank's own words, as the Bridge sends them; the cleaned name is the payee.
            "description": original or description or "",
            "payee": description or original or "",
            "memo": memo or "",
            "transacted_at": happened,
            "pending": pending,
        }
        if category:
            body["extra"] = {"category": category}
        into[account_id].append(body)


def transactions_json(rows: Iterable[Sequence[Any]], account_ids: Iterable[int]) -> dict[int, Any]:
    """Each account's transactions (rows of ``TRANSACTION_COLUMNS``) as its JSON array,
    ready to embed in the answer (an ``orjson.Fragment``)."""
    into: dict[int, list[dict[str, Any]]] = {a: [] for a in account_ids}
    add_transactions(rows, into)
    return {a: orjson.Fragment(orjson.dumps(txns)) for a, txns in into.items()}


# The same JSON, byte for byte, as SQLite renders it (``sqlite_transactions_json``):
# one text per transaction from the columns of ``TRANSACTION_COLUMNS`` by name. Not
# one Python object per field: SQLite's ``json_quote`` escapes strings exactly as
# orjson does (tests/unit/test_simplefin_render.py), and the amount is formatted
# from whole cents with integer arithmetic, as ``amount`` does.
_SIGNED = "(CASE WHEN type = 'DEBIT' THEN -amount_cents ELSE amount_cents END)"
_PENDING = "status = 'PENDING'"
TRANSACTION_JSON_SQLITE: Final = (
    "format('"
    '{"id":%s,"posted":%d,"amount":"%s%d.%02d","description":%s,"payee":%s,'
    '"memo":%s,"transacted_at":%d,"pending":%s%s}'
    "', json_quote(guid), "
    f"CASE WHEN {_PENDING} THEN 0 ELSE posted END, "
    f"CASE WHEN {_SIGNED} < 0 THEN '-' ELSE '' END, abs({_SIGNED}) / 100, abs({_SIGNED}) % 100, "
    "json_quote(COALESCE(NULLIF(original_description, ''), NULLIF(description, ''), '')), "
    "json_quote(COALESCE(NULLIF(description, ''), NULLIF(original_description, ''), '')), "
    "json_quote(COALESCE(memo, '')), happened, "
    f"CASE WHEN {_PENDING} THEN 'true' ELSE 'false' END, "
    "CASE WHEN category IS NULL OR category = '' THEN '' "
    """ELSE ',"extra":{"category":' || json_quote(category) || '}' END)"""
)


def sqlite_transactions_json(
    rows: Iterable[tuple[int, str]], account_ids: Iterable[int]
) -> dict[int, Any]:
    """Rows of (account id, ``TRANSACTION_JSON_SQLITE``) in the answer's order, as
    ``transactions_json`` gives them."""
    into: dict[int, list[str]] = {a: [] for a in account_ids}
    for account_id, text in rows:
        into[account_id].append(text)
    return {a: orjson.Fragment(f"[{','.join(texts)}]") for a, texts in into.items()}


def _balance(a: AccountRow) -> int:
    cents = a.balance_cents or 0
    return -cents if a.type in DEBT_TYPES else cents


def _account_fields(a: AccountRow, c: Connection, transactions: list[Any]) -> dict[str, Any]:
    balance = _balance(a)
    # A card's available balance is its available credit: money the holder may spend.
    available = a.available_balance_cents if a.available_balance_cents is not None else balance
    return {
        "id": a.guid,
        "name": a.name or c.org_name,
        "currency": a.currency_code or "USD",
        "balance": amount(balance),
        "available-balance": amount(available),
        "balance-date": epoch(c.last_success or a.updated_at),
        "transactions": transactions,
        "holdings": [],
    }


def account_v1(a: AccountRow, c: Connection, transactions: list[Any]) -> dict[str, Any]:
    org = {
        "domain": c.org_domain,
        "name": c.org_name,
        "sfin-url": c.sfin_url,
        "url": c.org_url,
        "id": c.org_id,
    }
    return {"org": org, **_account_fields(a, c, transactions)}


def account_v2(a: AccountRow, c: Connection, transactions: list[Any]) -> dict[str, Any]:
    return {"conn_id": c.conn_id, "conn_name": c.name, **_account_fields(a, c, transactions)}


def connection(c: Connection) -> dict[str, Any]:
    return {
        "conn_id": c.conn_id,
        "name": c.name,
        "org_id": c.org_id,
        "org_name": c.org_name,
        "org_url": c.org_url,
        "sfin_url": c.sfin_url,
    }


def attention_phrase(c: Connection) -> str:
    """The Bridge's exact words: Actual Budget flags the account on these only."""
    return f"Connection to {c.org_name} may need attention"


def connection_problem(c: Connection) -> str | None:
    """What a person reads about a connection that is not being refreshed, with what to
    do about it; None when it is fine or still working."""
    if c.status is None:
        return None
    label = c.name if c.name == c.org_name else f"{c.name} ({c.org_name})"
    if c.status in NEEDS_ATTENTION:
        return f"{label}: {MESSAGES[c.status]} Fix this connection here: {c.fix_url}"
    stale = f" The data shown is from {iso(c.last_success)}." if c.last_success else ""
    if c.status in _INSTITUTION_TROUBLE:
        return f"{label}: {MESSAGES[c.status]}{stale}"
    if c.status in NOT_AGGREGATABLE:
        return f"{label} is no longer refreshed: {MESSAGES[c.status]}{stale}"
    return None


def errors_v1(connections: Iterable[Connection], missing_accounts: Iterable[str]) -> list[str]:
    """v1 ``errors``: per connection needing its end user, the Bridge's phrase (for
    Actual) then the words to act on; other problems in words only."""
    out: list[str] = []
    for c in connections:
        problem = connection_problem(c)
        if problem is None:
            continue
        if c.status in NEEDS_ATTENTION:
            out.append(attention_phrase(c))
        out.append(problem)
    out.extend(_missing(a) for a in missing_accounts)
    return out


def errlist_v2(
    connections: Iterable[Connection], missing_accounts: Iterable[str]
) -> list[dict[str, str]]:
    """v2 ``errlist``. The message is under ``msg`` (the protocol's table) and
    ``message`` (its examples, and the Bridge)."""
    out: list[dict[str, str]] = []
    for c in connections:
        problem = connection_problem(c)
        if problem is not None:
            code = "con.auth" if c.status in _SIGN_IN else "con."
            out.append({"code": code, "msg": problem, "message": problem, "conn_id": c.conn_id})
    for guid in missing_accounts:
        text = _missing(guid)
        out.append({"code": "act.", "msg": text, "message": text, "account_id": guid})
    return out


def _missing(account_guid: str) -> str:
    return f"Account {account_guid} is not among this connection's accounts."


def simplefin_token(
    token: SimplefinToken,
    user_guid: str,
    now: dt.datetime,
    *,
    secret_fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A setup token as the client's backend sees it (``secret_fields``, the token and
    its claim URL, only in the answer that created it)."""
    if token.revoked_at is not None:
        state = "REVOKED"
    elif token.claimed_at is not None:
        state = "CLAIMED"
    elif token.claim_expires_at <= now:
        state = "EXPIRED"
    else:
        state = "UNCLAIMED"
    return {
        "guid": token.guid,
        "user_guid": user_guid,
        **(secret_fields or {}),
        "state": state,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.claim_expires_at),
        "claimed_at": iso(token.claimed_at),
        "revoked_at": iso(token.revoked_at),
        "created_by": token.created_by,
    }
