from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from openagg.crypto import CryptoError, KeyRing, hash_api_key, load_keyring, parse_keys


def key() -> bytes:
    return os.urandom(32)


def test_round_trip_and_context_binding() -> None:
    ring = KeyRing([("k1", key())])
    sealed = ring.seal(b"secret", b"ctx")
    assert b"secret" not in sealed
    assert ring.open(sealed, b"ctx") == b"secret"
    with pytest.raises(CryptoError):
        ring.open(sealed, b"other")


def test_tampering_is_detected() -> None:
    ring = KeyRing([("k1", key())])
    sealed = bytearray(ring.seal(b"secret"))
    sealed[-1] ^= 1
    with pytest.raises(CryptoError):
        ring.open(bytes(sealed))


def test_rotation_reads_old_keys_and_writes_with_the_first() -> None:
    old, new = key(), key()
    before = KeyRing([("old", old)]).seal(b"v")
    ring = KeyRing([("new", new), ("old", old)])
    assert ring.open(before) == b"v"
    assert ring.active_kid == "new"
    with pytest.raises(CryptoError, match="unknown key id"):
        KeyRing([("new", new)]).open(before)


def test_keys_from_environment_spec_and_dev_file(tmp_path: Path) -> None:
    spec = "a:" + base64.b64encode(key()).decode()
    assert parse_keys(spec)[0][0] == "a"
    ring = load_keyring("", tmp_path)
    assert (tmp_path / "encryption.key").stat().st_mode & 0o777 == 0o600
    again = load_keyring("", tmp_path)
    assert again.open(ring.seal(b"x")) == b"x"
    with pytest.raises(CryptoError):
        KeyRing([("short", b"123")])


def test_api_key_hash_is_stable_and_not_the_key() -> None:
    assert hash_api_key("abc") == hash_api_key("abc") != "abc"
