"""ListCache: bodies served only for the version they were read at, bounded by bytes,
least recently used out first."""

from __future__ import annotations

from openagg.api.list_cache import ListCache


def test_a_body_is_served_only_for_its_version() -> None:
    cache = ListCache(1000)
    cache.put(("k",), (1, 2), b"body")
    assert cache.get(("k",), (1, 2)) == b"body"
    assert cache.get(("k",), (1, 3)) is None
    assert cache.get(("other",), (1, 2)) is None
    cache.put(("k",), (1, 3), b"newer")
    assert cache.get(("k",), (1, 2)) is None
    assert cache.get(("k",), (1, 3)) == b"newer"
    assert len(cache) == 1 and cache.size == 5


def test_the_least_recently_used_go_first_when_full() -> None:
    cache = ListCache(800)  # entries of up to 100 bytes
    for n in range(8):
        cache.put((n,), 0, bytes(100))
    assert cache.get((0,), 0) is not None  # 0 is now the most recent
    cache.put((8,), 0, bytes(100))
    assert cache.get((1,), 0) is None  # the least recent went
    assert all(cache.get((n,), 0) is not None for n in (0, *range(2, 9)))
    assert cache.size == 800 and len(cache) == 8


def test_a_body_too_big_for_its_share_is_not_kept() -> None:
    cache = ListCache(800)
    cache.put(("small",), 0, bytes(100))
    cache.put(("big",), 0, bytes(101))
    assert cache.get(("big",), 0) is None and cache.get(("small",), 0) is not None
    cache.put(("small",), 1, bytes(101))  # a newer version too big: the old one goes too
    assert cache.get(("small",), 0) is None and cache.size == 0


def test_zero_bytes_keeps_nothing() -> None:
    cache = ListCache(0)
    cache.put(("k",), 0, b"x")
    assert cache.get(("k",), 0) is None and len(cache) == 0
