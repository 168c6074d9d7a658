"""Transaction list responses kept in this process's memory and served again while
nothing they show has changed.

An app asks for the same lists over and over (each time the end user opens it),
while a member's transactions change about once a day. Each entry is stored with
the version it was read at: the user's row and each of the user's members' id,
``transactions_version`` and use cases. A request reads that version again (one
indexed read) and gets the stored bytes only when it is equal. Every write to
transactions counts on the member (ingest, the stale-pending purge); deleting a
member removes its id from the version; nothing else a list shows can change.
So an entry is never served stale, in any process: each checks the database.

Bounded by bytes, least recently used first out; 0 bytes turns it off.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from prometheus_client import Counter

from openagg.metrics import PROCESS

_LOOKUPS = Counter(
    "openagg_list_cache_lookups",
    "Transaction list requests, by whether this process's cache could answer.",
    ["result"],
    registry=PROCESS,
)
_HIT, _MISS = _LOOKUPS.labels("hit"), _LOOKUPS.labels("miss")

Key = tuple[Any, ...]


class ListCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        # A single response may take at most this: one huge page must not flush
        # everyone else's.
        self.max_entry = max_bytes // 8
        self.size = 0
        self._entries: OrderedDict[Key, tuple[Any, bytes]] = OrderedDict()

    def get(self, key: Key, version: Any) -> bytes | None:
        """The body stored under ``key`` when it was read at ``version``."""
        entry = self._entries.get(key)
        if entry is None or entry[0] != version:
            _MISS.inc()
            return None
        self._entries.move_to_end(key)
        _HIT.inc()
        return entry[1]

    def put(self, key: Key, version: Any, body: bytes) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old[1])
        if len(body) > self.max_entry:
            return
        self._entries[key] = (version, body)
        self.size += len(body)
        while self.size > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._entries)
