"""Clients (tenants) and their API keys. Keys are shown once and stored hashed."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from openagg.crypto import hash_api_key
from openagg.db.models import Client
from openagg.domain.ids import new_api_key
from openagg.runtime import Runtime


@dataclass(frozen=True)
class NewClient:
    client: Client
    api_key: str


async def create_client(rt: Runtime, name: str, *, background_enabled: bool = True) -> NewClient:
    api_key = new_api_key()
    client = Client(
        client_id=str(uuid.uuid4()),
        name=name,
        api_key_hash=hash_api_key(api_key),
        background_aggregation_enabled=background_enabled,
        created_at=rt.now(),
    )
    async with rt.db.write() as s:
        s.add(client)
    return NewClient(client, api_key)


async def list_clients(rt: Runtime) -> list[Client]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Client).order_by(Client.id)))


async def set_background_default(rt: Runtime, client_id: str, enabled: bool) -> Client | None:
    async with rt.db.write() as s:
        client = await s.scalar(select(Client).where(Client.client_id == client_id))
        if client is not None:
            client.background_aggregation_enabled = enabled
    return client


async def authenticate(rt: Runtime, client_id: str, api_key: str) -> Client | None:
    async with rt.db.read() as s:
        client = await s.scalar(select(Client).where(Client.client_id == client_id))
    if client is None or not hmac.compare_digest(client.api_key_hash, hash_api_key(api_key)):
        return None
    return client
