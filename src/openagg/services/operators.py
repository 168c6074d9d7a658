"""The platform's own operators (aggregation engineers): their credentials.

A password (chosen by people, so hashed slowly with scrypt and a salt) for the
engineer console, and a random API key (hashed with SHA-256, like clients' keys)
for scripts. Both are shown once, when the operator is created.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.crypto import hash_api_key
from openagg.db.models import Operator, WebSession
from openagg.domain.ids import new_api_key, new_guid
from openagg.runtime import Runtime
from openagg.services.errors import BadRequest, Conflict, NotFound

# scrypt cost: about 50 ms and 16 MiB per check (OWASP's minimum is N=2**17 with r=8
# for new systems on dedicated hardware; 2**15 keeps a shared test machine fast).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 2**20
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 2**20,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@dataclass
class NewOperator:
    operator: Operator
    password: str  # shown once
    api_key: str  # shown once


async def create_operator(
    rt: Runtime, name: str, email: str, password: str | None = None
) -> NewOperator:
    """Create an operator; without ``password`` one is generated."""
    name, email = name.strip(), email.strip().lower()
    if not name:
        raise BadRequest("An operator needs a name.")
    if not _EMAIL.fullmatch(email):
        raise BadRequest(f"'{email}' is not an email address.")
    if password is None:
        password = secrets.token_urlsafe(18)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.")
    api_key = new_api_key()
    async with rt.db.write() as s:
        if await s.scalar(select(Operator.id).where(Operator.email == email)) is not None:
            raise Conflict(f"An operator with email '{email}' already exists.")
        operator = Operator(
            guid=new_guid("OPR"),
            name=name,
            email=email,
            password_hash=hash_password(password),
            api_key_hash=hash_api_key(api_key),
            is_disabled=False,
            created_at=rt.now(),
        )
        s.add(operator)
    return NewOperator(operator, password, api_key)


async def operator_by_email(rt: Runtime, email: str) -> Operator:
    async with rt.db.read() as s:
        operator = await s.scalar(select(Operator).where(Operator.email == email.strip().lower()))
    if operator is None or operator.is_disabled:
        raise NotFound(f"No active operator with email '{email}'.")
    return operator


@functools.cache
def _dummy_hash() -> str:
    """Checked when the email is unknown, so a wrong email takes as long as a wrong
    password and the answer time does not tell which emails exist."""
    return hash_password(secrets.token_urlsafe(18))


async def authenticate_operator(rt: Runtime, email: str, password: str) -> Operator | None:
    """The console's login: the operator, or None for a wrong email or password."""
    async with rt.db.read() as s:
        operator = await s.scalar(select(Operator).where(Operator.email == email.strip().lower()))
    stored = operator.password_hash if operator is not None else _dummy_hash()
    # scrypt takes ~50 ms of CPU: off the event loop, which serves everyone else.
    matches = await asyncio.to_thread(check_password, password, stored)
    if operator is None or operator.is_disabled or not matches:
        return None
    return operator


async def authenticate_operator_key(rt: Runtime, api_key: str) -> Operator | None:
    async with rt.db.read() as s:
        operator = await s.scalar(
            select(Operator).where(Operator.api_key_hash == hash_api_key(api_key))
        )
    return None if operator is None or operator.is_disabled else operator


async def set_disabled(rt: Runtime, email: str, disabled: bool) -> Operator:
    """Disable (or enable again) an operator; disabling ends their console sessions."""
    async with rt.db.write() as s:
        operator = await _by_email(s, email)
        operator.is_disabled = disabled
        if disabled:
            await s.execute(delete(WebSession).where(WebSession.operator_id == operator.id))
    return operator


async def reset_credentials(rt: Runtime, email: str, password: str | None = None) -> NewOperator:
    """A new password and API key (shown once); the old ones and all sessions stop working."""
    if password is None:
        password = secrets.token_urlsafe(18)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.")
    api_key = new_api_key()
    async with rt.db.write() as s:
        operator = await _by_email(s, email)
        operator.password_hash = hash_password(password)
        operator.api_key_hash = hash_api_key(api_key)
        await s.execute(delete(WebSession).where(WebSession.operator_id == operator.id))
    return NewOperator(operator, password, api_key)


async def _by_email(s: AsyncSession, email: str) -> Operator:
    operator = await s.scalar(
        select(Operator).where(Operator.email == email.strip().lower()).with_for_update()
    )
    if operator is None:
        raise NotFound(f"No operator with email '{email}'.")
    return operator


async def list_operators(rt: Runtime) -> list[Operator]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Operator).order_by(Operator.id)))
