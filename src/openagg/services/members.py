"""Member use cases: create, update, delete, ask for a job, answer MFA.

Each use case validates, changes state and enqueues its job in one transaction.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import Client, Institution, Job, Member, User
from openagg.domain.ids import new_guid
from openagg.domain.policy import Decision, JobKind, JobRequestView, Trigger, decide_job_request
from openagg.domain.states import JobState
from openagg.domain.statuses import NOT_AGGREGATABLE, Status
from openagg.queue import active_job, enqueue, finish, requeue
from openagg.runtime import Runtime
from openagg.services import consent, managed, revocations, support, vault, webhooks
from openagg.services.errors import BadRequest, Conflict, NotFound, Unprocessable
from openagg.services.inputs import CredentialValue, MemberCreateBody, MemberUpdateFields
from openagg.services.lookup import institution_by_code, member_by_guid, user_by_guid
from openagg.services.member_state import (
    current_status,
    deny_consent,
    schedule_background,
    set_status,
)

# Which institution capability each premium job needs (400 when missing, as at MX).
CAPABILITY = {
    JobKind.VERIFY: "supports_account_verification",
    JobKind.IDENTIFY: "supports_account_identification",
    JobKind.HISTORY: "supports_transaction_history",
}


@dataclass
class MemberResult:
    member: Member
    user: User
    institution: Institution
    job: Job | None  # the member's active job after the call, if any
    started: bool = False  # whether this call started a job


def _credential_values(
    institution: Institution, given: list[CredentialValue], stored: dict[str, str] | None = None
) -> dict[str, str]:
    """The credential values to seal: ``given`` over the ``stored`` ones (an update
    sends only what changed, as MX's guide does when it switches a test scenario by
    the password alone); every credential of the institution must then have one."""
    known = {c["guid"]: c for c in institution.credentials}
    values: dict[str, str] = {}
    for cred in given:
        if cred.guid not in known:
            raise BadRequest(
                f"Credential guid '{cred.guid}' does not belong to institution "
                f"'{institution.code}'. List them at /institutions/{institution.code}/credentials."
            )
        if cred.guid in values:
            raise BadRequest(f"Credential guid '{cred.guid}' is given twice.")
        values[cred.guid] = cred.value
    kept = {guid: value for guid, value in (stored or {}).items() if guid in known}
    values = kept | values
    missing = [c["label"] for c in institution.credentials if c["guid"] not in values]
    if missing:
        raise BadRequest(f"Missing credentials: {', '.join(missing)}.")
    return values


async def _institution(s: AsyncSession, code: str) -> Institution:
    inst = await institution_by_code(s, code)
    if inst is None:
        raise BadRequest(f"'{code}' is not a known institution_code.")
    if inst.is_retired:
        raise Unprocessable(f"Connections to '{code}' are no longer supported.")
    return inst


async def _check_partner_id(s: AsyncSession, user: User, external_id: str, guid: str) -> None:
    clash = await s.scalar(
        select(Member.guid).where(Member.user_id == user.id, Member.external_id == external_id)
    )
    if clash is not None and clash != guid:
        raise Conflict(f"A member with id '{external_id}' already exists for this user.")


async def _check_duplicate(s: AsyncSession, member: Member, fingerprints: list[str]) -> None:
    """409 when the user already has a member at this institution with these credentials."""
    q = select(Member.guid).where(
        Member.user_id == member.user_id,
        Member.institution_id == member.institution_id,
        Member.credentials_fingerprint.in_(fingerprints),
    )
    if member.id is not None:
        q = q.where(Member.id != member.id)
    duplicate = await s.scalar(q)
    if duplicate:
        raise Conflict(f"This member already exists ({duplicate}).")


def _start(
    rt: Runtime,
    s: AsyncSession,
    member: Member,
    kind: JobKind,
    trigger: Trigger,
    options: dict[str, Any] | None = None,
) -> Job:
    return enqueue(
        s,
        client_id=member.client_id,
        member_id=member.id,
        kind=kind,
        trigger=trigger,
        now=rt.now(),
        options=options,
    )


async def create_member(
    rt: Runtime,
    client: Client,
    user_guid: str,
    body: MemberCreateBody,
    callback: str | None,
    *,
    reuse_pending_oauth: bool = False,
    oauth_options: dict[str, Any] | None = None,
    job_options: dict[str, Any] | None = None,
) -> MemberResult:
    """A new member; with ``reuse_pending_oauth`` (the Connect widget), an OAuth
    member of the user still waiting on this institution's OAuth step is returned
    instead. The user is locked, so the checks for a duplicate (that waiting member,
    the same credentials, the same partner id) and the insert are one step: two
    requests at once make one member. ``job_options``: the first job's (the end
    user's address, from the Connect widget)."""
    f = body.member
    now = rt.now()
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid, lock=True)
        inst = await _institution(s, f.institution_code)
        is_oauth = bool(f.is_oauth)
        if is_oauth and not inst.profile.get("supports_oauth"):
            raise BadRequest(f"Institution '{inst.code}' does not support OAuth.")
        if is_oauth and reuse_pending_oauth:
            waiting = await s.scalar(
                select(Member)
                .where(
                    Member.user_id == user.id,
                    Member.institution_id == inst.id,
                    Member.is_oauth.is_(True),
                    Member.connection_status == Status.PENDING.value,
                    Member.oauth_token.is_not(None),
                )
                .order_by(Member.id.desc())
                .limit(1)
            )
            if waiting is not None:
                return MemberResult(waiting, user, inst, None, started=False)
        if not is_oauth and not f.credentials and inst.credentials:
            raise BadRequest("credentials are required (or is_oauth: true for OAuth institutions).")
        if not is_oauth and not inst.credentials and inst.profile.get("supports_oauth"):
            # Without this the member would connect with no sign-in at all.
            raise BadRequest(f"{inst.name} signs in with OAuth only: set is_oauth to true.")
        values = {} if is_oauth else _credential_values(inst, f.credentials or [])
        guid = new_guid("MBR")
        if f.id is not None:
            await _check_partner_id(s, user, f.id, guid)
        member = Member(
            guid=guid,
            client_id=client.id,
            user_id=user.id,
            institution_id=inst.id,
            external_id=f.id,
            name=inst.name,
            metadata_=f.metadata,
            is_oauth=is_oauth,
            use_cases=list(f.use_cases) if f.use_cases is not None else None,
            background_aggregation_is_disabled=f.background_aggregation_is_disabled,
            callback_payload=callback,
            consecutive_credential_failures=0,
            created_at=now,
            updated_at=now,
        )
        if values:
            fingerprints = vault.seal_credentials(rt, member, values)
            await _check_duplicate(s, member, fingerprints)
            member.end_user_present_at = now  # credentials come from the end user
        schedule_background(rt, member, now)
        job = None
        if is_oauth:
            member.oauth_token = secrets.token_urlsafe(24)
            member.oauth_options = oauth_options
            set_status(member, Status.PENDING, now)
            s.add(member)
        else:
            set_status(member, Status.CREATED, now)
            s.add(member)
            await s.flush()
            if not f.skip_aggregation:
                job = _start(rt, s, member, JobKind.AGGREGATE, Trigger.AUTOMATIC, job_options)
        await s.flush()
        await webhooks.member_event(s, rt, member, "created")
    if job:
        rt.job_enqueued.set()
    return MemberResult(member, user, inst, job, started=job is not None)


async def update_member(
    rt: Runtime,
    client: Client,
    user_guid: str,
    member_guid: str,
    f: MemberUpdateFields,
    callback: str | None,
    *,
    job_options: dict[str, Any] | None = None,
) -> MemberResult:
    given = f.model_dump(exclude_unset=True)
    if not given:
        raise BadRequest("The request body can't be empty: give at least one member field.")
    now = rt.now()
    async with rt.db.write() as s:
        # New credentials or partner id are checked against the user's other members:
        # lock the user first, as creating a member does.
        checks = f.credentials is not None or "id" in given
        user = await user_by_guid(s, client, user_guid, lock=checks)
        member = await member_by_guid(s, user, member_guid, lock=True)
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
        if "id" in given:
            if f.id is not None:
                await _check_partner_id(s, user, f.id, member.guid)
            member.external_id = f.id
        if "metadata" in given:
            member.metadata_ = f.metadata
        if "use_cases" in given:
            member.use_cases = list(f.use_cases) if f.use_cases is not None else None
        if "background_aggregation_is_disabled" in given:
            member.background_aggregation_is_disabled = f.background_aggregation_is_disabled
        if callback is not None:
            member.callback_payload = callback
        job = await active_job(s, member.id)
        started = False
        if f.credentials is not None:
            managed.refuse_jobs(member)
            values = _credential_values(inst, f.credentials, vault.open_credentials(rt, member))
            if job is not None and job.state == JobState.RUNNING:
                raise Conflict("An aggregation is running on this member; update it when it ends.")
            if job is not None:  # queued, or waiting on MFA: the new credentials win
                finish(job, state=JobState.CANCELLED, now=now, error="credentials updated")
                await s.flush()
                job = None
            fingerprints = vault.seal_credentials(rt, member, values)
            await _check_duplicate(s, member, fingerprints)
            member.end_user_present_at = now  # credentials come from the end user
            # The credential-failure count survives updates on purpose: only a success
            # resets it, so a run of wrong passwords ends in PREVENTED, not a bank lockout.
            vault.clear_connector_state(member)
            status = current_status(member)
            if status not in NOT_AGGREGATABLE:
                set_status(member, Status.UPDATED, now)
                if not f.skip_aggregation:
                    job = _start(rt, s, member, JobKind.AGGREGATE, Trigger.AUTOMATIC, job_options)
                    started = True
        member.updated_at = now
        await webhooks.member_event(s, rt, member, "updated")
    if started:
        rt.job_enqueued.set()
    return MemberResult(member, user, inst, job, started)


async def delete_member(rt: Runtime, client: Client, user_guid: str, member_guid: str) -> None:
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        member = await member_by_guid(s, user, member_guid)
        await webhooks.member_event(s, rt, member, "deleted")
        await support.forget_members(s, rt, [member.id])
        revoking = await revocations.schedule(s, rt, [member])
        await s.execute(delete(Member).where(Member.id == member.id))
    if revoking:
        rt.job_enqueued.set()


async def load_member(
    rt: Runtime, client: Client, user_guid: str, member_guid: str
) -> MemberResult:
    async with rt.db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        # The member and its active job in one statement, so one snapshot: read apart,
        # a job settling between the two reads showed the old status with no job
        # (PostgreSQL reads each statement at its own snapshot).
        row = (
            await s.execute(
                select(Member, Job)
                .outerjoin(Job, Job.active_member_id == Member.id)
                .where(
                    Member.guid == member_guid,
                    Member.user_id == user.id,
                    Member.client_id == user.client_id,
                )
            )
        ).first()
        if row is None:
            raise NotFound()
        member, job = row
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
    return MemberResult(member, user, inst, job)


async def request_job(
    rt: Runtime,
    client: Client,
    user_guid: str,
    member_guid: str,
    kind: JobKind,
    options: dict[str, Any] | None = None,
    callback: str | None = None,
) -> MemberResult:
    """Foreground job request with MX's 202 / 409 / 422 rules (see domain.policy)."""
    now = rt.now()
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        member = await member_by_guid(s, user, member_guid, lock=True)
        managed.refuse_jobs(member)
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
        capability = CAPABILITY.get(kind)
        if capability and not inst.profile.get(capability):
            raise BadRequest(
                f"Institution '{inst.code}' does not support this request ({kind.value})."
            )
        job = await active_job(s, member.id)
        view = JobRequestView(
            status=current_status(member),
            running_kind=JobKind(job.kind) if job else None,
            last_success_at=member.successfully_aggregated_at,
            throttle_exempt=inst.throttle_exempt,
        )
        decision = decide_job_request(
            view, kind, now, dt.timedelta(seconds=rt.settings.foreground_throttle_seconds)
        )
        if decision == Decision.CONFLICT:
            assert job is not None
            raise Conflict(
                f"Another job ({job.kind}) is already running on this member; "
                "try again when it finishes."
            )
        if decision == Decision.NEEDS_CREDENTIALS:
            raise Unprocessable(
                f"This member is {member.connection_status}: its credentials must be updated "
                "before it can be aggregated."
            )
        if decision == Decision.NOT_POSSIBLE:
            raise Unprocessable(
                f"This member is {member.connection_status or 'not connectable'}: "
                "aggregation is not possible."
            )
        # A foreground request means the end user is there (support tickets' evidence).
        member.end_user_present_at = now
        started = decision == Decision.START
        if started:
            if callback is not None:
                member.callback_payload = callback
            job = _start(rt, s, member, kind, Trigger.FOREGROUND, options)
    if started:
        rt.job_enqueued.set()
    return MemberResult(member, user, inst, job, started)


async def resume(
    rt: Runtime, client: Client, user_guid: str, member_guid: str, answers: list[CredentialValue]
) -> MemberResult:
    now = rt.now()
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        member = await member_by_guid(s, user, member_guid, lock=True)
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
        job = await active_job(s, member.id)
        if (
            current_status(member) != Status.CHALLENGED
            or job is None
            or job.state != JobState.WAITING
        ):
            raise Unprocessable(
                f"This member is {member.connection_status}, not CHALLENGED: "
                "there is no challenge to answer."
            )
        asked = {c["guid"] for c in member.challenges or []}
        given = {a.guid: a.value for a in answers}
        unknown = sorted(set(given) - asked)
        if unknown:
            raise BadRequest(f"Unknown challenge guid(s): {', '.join(unknown)}.")
        missing = sorted(asked - set(given))
        if missing:
            raise BadRequest(f"Missing answer(s) for challenge guid(s): {', '.join(missing)}.")
        vault.seal_answers(rt, member, job, given)
        member.end_user_present_at = now  # only the end user answers MFA
        requeue(job, now=now)
        job.attempts = 0  # each MFA round gets its own budget against lost workers
        set_status(member, Status.RESUMED, now)
    rt.job_enqueued.set()
    return MemberResult(member, user, inst, job, started=True)


OAUTH_LINK_NOT_VALID = "This OAuth link is not valid or was already used."


async def complete_oauth(
    rt: Runtime,
    token: str,
    kind: JobKind = JobKind.AGGREGATE,
    options: dict[str, Any] | None = None,
    earned: dict[str, Any] | None = None,
    *,
    start_job: bool = True,
) -> Member:
    """The end user finished the institution's OAuth step: keep the tokens the
    connector ``earned`` (None: unchanged) and start a job (an aggregation, unless the
    Connect widget's mode asks for another, e.g. verify), unless the app asked to skip
    it (``start_job``: MX's ``skip_aggregation``).

    The first consent takes the member from PENDING to CREATED. A renewed one (any
    other status: connected, or DENIED for a revoked or ended consent) renews the same
    member's tokens in place and makes it UPDATED, as new credentials do; its job then
    reads the same accounts and transactions by their ids."""
    now = rt.now()
    async with rt.db.write() as s:
        member = await s.scalar(select(Member).where(Member.oauth_token == token).with_for_update())
        if member is None or not member.is_oauth:
            raise NotFound(OAUTH_LINK_NOT_VALID)
        first = current_status(member) == Status.PENDING
        if earned is not None:
            vault.seal_secrets(rt, member, earned)
            consent.note(member, earned)
        member.oauth_token = None
        member.oauth_verifier_enc = None
        member.oauth_options = None
        member.is_authenticated = True
        member.consecutive_credential_failures = 0  # a new consent is a new grant
        member.end_user_present_at = now
        member.status_message = member.status_message_for = None
        job = await active_job(s, member.id)
        if job is not None and job.state != JobState.RUNNING:
            # Queued, or waiting on MFA: it would run with what the consent replaced.
            finish(job, state=JobState.CANCELLED, now=now, error="consent renewed")
            await s.flush()
            job = None
        if job is None:
            vault.clear_connector_state(member)
        set_status(member, Status.CREATED if first else Status.UPDATED, now)
        start_job = start_job and job is None  # a running job carries on; it is enough
        if start_job:
            _start(rt, s, member, kind, Trigger.OAUTH, options)
    if start_job:
        rt.job_enqueued.set()
    return member


async def oauth_step_failed(rt: Runtime, token: str, message: str, *, declined: bool) -> None:
    """The OAuth step ended without access. ``declined``: the end user said no at
    the institution, and the member becomes DENIED with ``message`` (MX), its link
    used up; a new one comes from ``oauth_window_uri``. Otherwise (a code the
    institution did not confirm, its token endpoint failing) the member keeps its
    status and link, and a member waiting for access (PENDING or DENIED) shows
    ``message``."""
    async with rt.db.write() as s:
        member = await s.scalar(select(Member).where(Member.oauth_token == token).with_for_update())
        if member is None:
            raise NotFound(OAUTH_LINK_NOT_VALID)
        if declined:
            member.oauth_token = None
            member.oauth_verifier_enc = None
            member.oauth_options = None
            await deny_consent(s, rt, member, message)
            return
        status = current_status(member)
        if status in (Status.PENDING, Status.DENIED):
            member.status_message = message[:500]
            member.status_message_for = status.value
            member.updated_at = rt.now()


async def set_oauth_options(
    rt: Runtime, client: Client, user_guid: str, member_guid: str, options: dict[str, Any]
) -> MemberResult:
    """MX's ``oauth_window_uri``: the member's OAuth step, opened when it has none (any
    OAuth member, connected or not: following it renews the consent), with what the
    app asks of it (the latest request's options hold). Each link works once; until it
    is used the same link is given again. A member without OAuth is unchanged."""
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        member = await member_by_guid(s, user, member_guid, lock=True)
        if member.is_oauth and not member.is_managed:
            if not member.oauth_token:
                member.oauth_token = secrets.token_urlsafe(24)
                member.oauth_verifier_enc = None
            if member.oauth_options != options:
                member.oauth_options = options
        job = await active_job(s, member.id)
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
    return MemberResult(member, user, inst, job)
