"""Ending a deleted member's access at its provider (the connector's ``revoke``).

Deleting a member (or its user) forgets it at once; in the same transaction, a member
that holds secrets and whose connector can ``revoke`` gets a revocation job
(``queue.enqueue_revocation``). The job carries the member's sealed secrets as they
are, so the member row goes with the delete and the API never calls the provider.
The worker runs it (``engine/revoker.py``) and the secrets go when the job ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import Client, Institution, Member
from openagg.queue import enqueue_revocation
from openagg.runtime import Runtime
from openagg.services import vault


def can_revoke(rt: Runtime, connector_name: str) -> bool:
    connector = rt.connectors.get(connector_name)
    return callable(getattr(connector, "revoke", None))


async def schedule(s: AsyncSession, rt: Runtime, members: Sequence[Member]) -> int:
    """Enqueue a revocation for each of ``members`` (about to be deleted in this
    transaction) that holds secrets at a connector with ``revoke``; returns how many."""
    holding = [m for m in members if m.secrets_enc is not None]
    if not holding:
        return 0
    ids = sorted({m.institution_id for m in holding})
    rows = await s.execute(
        select(Institution.id, Institution.code, Institution.connector).where(
            Institution.id.in_(ids)
        )
    )
    institutions = {iid: (code, connector) for iid, code, connector in rows}
    now = rt.now()
    scheduled = 0
    for member in holding:
        found = institutions.get(member.institution_id)
        if found is None or not can_revoke(rt, found[1]) or member.secrets_enc is None:
            continue
        enqueue_revocation(
            s,
            client_id=member.client_id,
            member_guid=member.guid,
            institution_id=member.institution_id,
            institution_code=found[0],
            secrets_enc=member.secrets_enc,
            now=now,
        )
        scheduled += 1
    return scheduled


async def schedule_earned(
    s: AsyncSession,
    rt: Runtime,
    earned: Sequence[tuple[Member, Institution, dict[str, Any]]],
) -> int:
    """Secrets a job earned for its member, when the job settles and finds the member
    deleted meanwhile: the member's revocation job carries the secrets it had, so
    a token rotated by this job (a new refresh token) gets a revocation of its own.
    Members that still exist (their job went to another worker) are left alone."""
    wanted = [(m, i, x) for m, i, x in earned if x and can_revoke(rt, i.connector)]
    if not wanted:
        return 0
    guids = [m.guid for m, _, _ in wanted]
    alive = set(await s.scalars(select(Member.guid).where(Member.guid.in_(guids))))
    client_ids = sorted({m.client_id for m, _, _ in wanted})
    clients = set(await s.scalars(select(Client.id).where(Client.id.in_(client_ids))))
    now = rt.now()
    scheduled = 0
    for member, institution, secrets in wanted:
        if member.guid in alive or member.client_id not in clients:
            continue
        enqueue_revocation(
            s,
            client_id=member.client_id,
            member_guid=member.guid,
            institution_id=institution.id,
            institution_code=institution.code,
            secrets_enc=vault.sealed_secrets(rt, member.guid, secrets),
            now=now,
        )
        scheduled += 1
    return scheduled
