"""Envelope encryption for secrets at rest (credentials, MFA answers, connector state).

Each value gets its own random data key (AES-256-GCM); the data key is wrapped by a
key-encryption key named by a key id, so keys rotate by adding a new first key and
keeping old ones to read old data. Layout of a sealed value:
``b"OA1" | len(kid) | kid | wrapped data key (60 bytes) | nonce (12) | ciphertext``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_MAGIC = b"OA1"
_DEV_KEY_FILE = "encryption.key"


class CryptoError(Exception):
    pass


class KeyRing:
    def __init__(self, keys: list[tuple[str, bytes]]):
        if not keys:
            raise CryptoError("no encryption key configured")
        for kid, key in keys:
            if len(key) != 32:
                raise CryptoError(f"key {kid!r} must be 32 bytes")
        self._active_kid, _ = keys[0]
        self._keys = dict(keys)

    @property
    def active_kid(self) -> str:
        return self._active_kid

    def seal(self, plaintext: bytes, context: bytes = b"") -> bytes:
        data_key = AESGCM.generate_key(bit_length=256)
        wrap_nonce, nonce = os.urandom(12), os.urandom(12)
        kid = self._active_kid.encode()
        wrapped = wrap_nonce + AESGCM(self._keys[self._active_kid]).encrypt(
            wrap_nonce, data_key, kid
        )
        body = AESGCM(data_key).encrypt(nonce, plaintext, context)
        return _MAGIC + bytes([len(kid)]) + kid + wrapped + nonce + body

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        if not sealed.startswith(_MAGIC):
            raise CryptoError("not a sealed value")
        n = sealed[3]
        kid = sealed[4 : 4 + n]
        rest = sealed[4 + n :]
        kek = self._keys.get(kid.decode())
        if kek is None:
            raise CryptoError(f"unknown key id {kid.decode()!r}")
        wrapped, nonce, body = rest[:60], rest[60:72], rest[72:]
        try:
            data_key = AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], kid)
            return AESGCM(data_key).decrypt(nonce, body, context)
        except Exception as exc:  # InvalidTag: wrong key or tampered data
            raise CryptoError("cannot decrypt value") from exc

    def seal_json(self, value: Any, context: str = "") -> bytes:
        return self.seal(json.dumps(value).encode(), context.encode())

    def open_json(self, sealed: bytes, context: str = "") -> Any:
        return json.loads(self.open(sealed, context.encode()))

    def fingerprint(self, value: str) -> str:
        """Keyed hash for equality checks (duplicate members) without storing the value."""
        return self._fingerprint(self._active_kid, value)

    def fingerprints(self, value: str) -> list[str]:
        """The value's fingerprint under every key, the active one first: values stored
        before a key rotation still match."""
        return [self._fingerprint(kid, value) for kid in self._keys]

    def _fingerprint(self, kid: str, value: str) -> str:
        key = hashlib.sha256(b"fingerprint" + self._keys[kid]).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    keys = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, _, b64 = part.partition(":")
        if not b64:
            raise CryptoError("OPENAGG_ENCRYPTION_KEYS entries look like kid:base64key")
        keys.append((kid, base64.b64decode(b64)))
    return keys


def load_keyring(spec: str, data_dir: Path) -> KeyRing:
    """Keys from the environment, else the dev key in the data dir (created on first use)."""
    if spec:
        return KeyRing(parse_keys(spec))
    path = data_dir / _DEV_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("dev1:" + base64.b64encode(os.urandom(32)).decode() + "\n")
    return KeyRing(parse_keys(path.read_text().strip()))


def hash_api_key(api_key: str) -> str:
    # API keys are 256-bit random values, so a plain SHA-256 is not brute-forceable.
    return hashlib.sha256(api_key.encode()).hexdigest()
