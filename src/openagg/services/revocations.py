"""Ending a deleted member's access at its provider (the connector's ``revoke``).

Deleting a member (or its user) forgets it at once; in the same transaction, a member
that holds secrets and whose connector can ``revoke`` gets a revocation job
(``queue.enqueue_revocation``). The job carries the member's sealed secrets as they
are, so the member row goes with the delete and the API never calls the provider.
The worker runs it (``engine/revoker.py``) and the secrets go when the job ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import Institution, Member
from openagg.queue import enqueue_revocation
from openagg.runtime import Runtime


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
