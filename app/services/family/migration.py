"""The migration of a family to passport (SPEC §5): who migrates, scheduling, and the job's steps.

State machine per family (`family_migrations`): PENDING → RUNNING → DONE | PARTIAL | FAILED.
- **Scheduling** (`schedule`) is one `INSERT … ON CONFLICT DO UPDATE … WHERE state = FAILED
  AND finished long enough ago`: a family gets a row once; concurrent triggers race on the
  primary key and only the one that wrote enqueues the job (in the same transaction, through
  the outbox). PENDING, RUNNING, DONE and PARTIAL schedule nothing, so at most one job is in
  flight per family and nothing is scheduled twice; a FAILED family is scheduled again by its
  owner's next app start after `FAMILY_MIGRATION_COOLDOWN_SECONDS`.
- **The job** (jobs/family.py) runs three steps so no database transaction waits on passport:
  `claim` (PENDING → RUNNING with a lease, attempts + 1, and a snapshot of the members),
  `link_in_passport` (no database: find the owner's passport account and family, create it
  if there is none — idempotent by a key derived from the family — and add or match every
  member), then `finish` (under the family lock: set `passport_family_id` and every member's
  status in one transaction, DONE or PARTIAL, the "your family moved" notifications) or
  `record_failure` (back to PENDING for a retry with backoff, or FAILED). Nothing is
  half-linked: the family and its members change together or not at all, and passport's side
  is found again by the next attempt (find-or-create, adds are idempotent).
- A member whose phone has no passport account stays local as NO_PORTAL_ACCOUNT; one passport
  won't take (in another passport family, or the family is full) stays local as REFUSED; the
  owner is told who (MEMBERS_WITHOUT_PORTAL). A family whose members changed while passport
  was being called is not finished: the job takes the members removed meanwhile out of the
  passport family again (`undo_in_passport`) and tries again with the new members; one deleted
  meanwhile has the passport family the run created deleted too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.integrations.passport.client import PassportClient
from app.integrations.passport.errors import PassportError, PassportErrorCode
from app.models.family import (
    FamilyAccount,
    FamilyMember,
    FamilyMigration,
    FamilyNotificationKind,
    FamilyRole,
    MigrationState,
    PortalStatus,
)
from app.models.identity import User
from app.outbox import enqueue
from app.services.errors import DomainError
from app.services.family import metrics
from app.services.family.codes import MigrationErrorCode
from app.services.family.notifications import Notice, notify
from app.services.family.rollout import in_rollout
from app.settings import Settings

MIGRATE_ACTOR = "family.migrate"
LIVE = (MigrationState.PENDING, MigrationState.RUNNING)
TERMINAL_OK = (MigrationState.DONE, MigrationState.PARTIAL)


def migration_on(settings: Settings) -> bool:
    return settings.passport_configured


def eligible(settings: Settings, account_id: uuid.UUID, owner_id: uuid.UUID) -> bool:
    return migration_on(settings) and in_rollout(
        account_id,
        owner_id,
        percent=settings.family_migration_percent,
        allowlist=frozenset(settings.family_migration_allowlist),
    )


async def schedule(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    trigger: str,
    cooldown: timedelta,
    now: datetime,
) -> bool:
    """Schedule the family's migration unless one is in flight, done, or failed recently."""
    table = FamilyMigration.__table__
    statement = upsert_insert(session, FamilyMigration).values(
        account_id=account_id,
        state=MigrationState.PENDING,
        attempts=0,
        trigger=trigger,
        scheduled_at=now,
        created_at=now,
        updated_at=now,
    )
    upsert = statement.on_conflict_do_update(
        index_elements=["account_id"],
        set_={
            "state": MigrationState.PENDING,
            "attempts": 0,
            "trigger": trigger,
            "scheduled_at": now,
            "started_at": None,
            "last_error": None,
            "finished_at": None,
            "lease_until": None,
            "updated_at": now,
        },
        where=and_(
            table.c.state == MigrationState.FAILED,
            table.c.finished_at <= now - cooldown,
        ),
    ).returning(FamilyMigration.account_id)
    scheduled = (await session.execute(upsert)).first() is not None
    if scheduled:
        enqueue(session, MIGRATE_ACTOR, account_id=str(account_id))
        metrics.migration_reached(MigrationState.PENDING.value)
    return scheduled


async def schedule_for_owner(
    session: AsyncSession, user_id: uuid.UUID, *, settings: Settings, now: datetime
) -> bool:
    """The app-start trigger: the caller owns a family not migrated yet, in the rollout."""
    if not migration_on(settings):
        return False
    owned = (
        await session.execute(
            select(FamilyAccount.id, FamilyMigration.state)
            .outerjoin(FamilyMigration, FamilyMigration.account_id == FamilyAccount.id)
            .where(FamilyAccount.owner_id == user_id, FamilyAccount.passport_family_id.is_(None))
        )
    ).one_or_none()
    if owned is None or owned.state in (*LIVE, *TERMINAL_OK):
        return False
    if not eligible(settings, owned.id, user_id):
        return False
    cooldown = timedelta(seconds=settings.family_migration_cooldown_seconds)
    return await schedule(session, owned.id, trigger="APP", cooldown=cooldown, now=now)


# --- the job's steps -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    member_id: uuid.UUID
    user_id: uuid.UUID
    role: FamilyRole
    phone: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    account_id: uuid.UUID
    owner_id: uuid.UUID
    attempt: int
    members: tuple[MemberSnapshot, ...]

    @property
    def owner(self) -> MemberSnapshot:
        return next(m for m in self.members if m.role is FamilyRole.OWNER)


async def claim(
    session: AsyncSession, account_id: uuid.UUID, *, lease: timedelta, now: datetime
) -> Snapshot | None:
    """PENDING (or RUNNING with an expired lease) → RUNNING; None when there is nothing to do.

    An already linked family is DONE at once (skip if migrated).
    """
    attempt = (
        await session.execute(
            update(FamilyMigration)
            .where(
                FamilyMigration.account_id == account_id,
                or_(
                    FamilyMigration.state == MigrationState.PENDING,
                    and_(
                        FamilyMigration.state == MigrationState.RUNNING,
                        FamilyMigration.lease_until < now,
                    ),
                ),
            )
            .values(
                state=MigrationState.RUNNING,
                attempts=FamilyMigration.attempts + 1,
                started_at=now,
                lease_until=now + lease,
                updated_at=now,
            )
            .returning(FamilyMigration.attempts)
        )
    ).scalar_one_or_none()
    if attempt is None:
        return None
    metrics.migration_reached(MigrationState.RUNNING.value)
    account = (
        await session.execute(
            select(FamilyAccount.owner_id, FamilyAccount.passport_family_id).where(
                FamilyAccount.id == account_id
            )
        )
    ).one()
    if account.passport_family_id is not None:
        await _set_state(session, account_id, MigrationState.DONE, None, now)
        return None
    members = await _members(session, account_id)
    return Snapshot(account_id, account.owner_id, attempt, members)


async def _members(session: AsyncSession, account_id: uuid.UUID) -> tuple[MemberSnapshot, ...]:
    rows = await session.execute(
        select(FamilyMember.id, FamilyMember.user_id, FamilyMember.role, User.phone)
        .join(User, User.id == FamilyMember.user_id)
        .where(FamilyMember.account_id == account_id, FamilyMember.accepted_at.is_not(None))
        .order_by(FamilyMember.accepted_at, FamilyMember.id)
    )
    return tuple(MemberSnapshot(*row) for row in rows)


class MigrationFailure(Exception):
    """A step that can't succeed as things are (`permanent`), or a passport failure to retry.

    What passport keeps of a run that can't finish, the job undoes (`undo_in_passport`):
    `unlink` names the uids in passport family `passport_family_id` of members removed here
    meanwhile (MEMBERS_CHANGED), or the passport family would keep people the owner removed;
    with `orphaned`, the family was deleted here meanwhile (FAMILY_GONE) and the passport
    family this very run created is deleted too, or its members would be stuck in it.
    """

    def __init__(
        self,
        code: str,
        *,
        permanent: bool,
        passport_family_id: str | None = None,
        unlink: tuple[str, ...] = (),
        orphaned: bool = False,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.permanent = permanent
        self.passport_family_id = passport_family_id
        self.unlink = unlink
        self.orphaned = orphaned


@dataclass(frozen=True, slots=True)
class MemberLink:
    status: PortalStatus
    uid: str | None


@dataclass(frozen=True, slots=True)
class Linked:
    passport_family_id: str
    owner_uid: str
    members: dict[uuid.UUID, MemberLink] = field(default_factory=dict)
    created: bool = False  # this run created the passport family


def idempotency_key(account_id: uuid.UUID) -> str:
    return f"engage-family-{account_id}"


async def link_in_passport(passport: PassportClient, snapshot: Snapshot) -> Linked:
    """Passport's side of the migration; raises MigrationFailure. No database here."""
    try:
        return await _link(passport, snapshot)
    except PassportError as exc:
        raise MigrationFailure(f"PASSPORT_{exc.code.value}", permanent=False) from exc


async def _link(passport: PassportClient, snapshot: Snapshot) -> Linked:
    owner = snapshot.owner
    account = await passport.find_account(owner.phone) if owner.phone else None
    if account is None:
        raise MigrationFailure("OWNER_WITHOUT_PORTAL_ACCOUNT", permanent=True)
    family = await passport.family_of(account.uid)
    created = family is None
    if family is None:
        family = await passport.create_family(
            account.uid, idempotency_key=idempotency_key(snapshot.account_id)
        )
    elif family.admin_uid != account.uid:
        raise MigrationFailure("OWNER_IN_ANOTHER_PASSPORT_FAMILY", permanent=True)
    present = {member.uid for member in family.members}
    links = {owner.member_id: MemberLink(PortalStatus.LINKED, account.uid)}
    for member in snapshot.members:
        if member.role is not FamilyRole.OWNER:
            links[member.member_id] = await _link_member(
                passport, family.family_id, member, present
            )
    return Linked(family.family_id, account.uid, links, created)


async def _link_member(
    passport: PassportClient, family_id: str, member: MemberSnapshot, present: set[str]
) -> MemberLink:
    found = await passport.find_account(member.phone) if member.phone else None
    if found is None:
        return MemberLink(PortalStatus.NO_PORTAL_ACCOUNT, None)
    if found.uid in present:
        return MemberLink(PortalStatus.LINKED, found.uid)
    try:
        await passport.add_member(family_id, found.uid)
    except PassportError as exc:
        if exc.code in (PassportErrorCode.ALREADY_IN_FAMILY, PassportErrorCode.FAMILY_FULL):
            return MemberLink(PortalStatus.REFUSED, found.uid)
        raise
    return MemberLink(PortalStatus.LINKED, found.uid)


@dataclass(frozen=True, slots=True)
class MovedLinks:
    owner: str
    member: str


async def finish(
    session: AsyncSession,
    snapshot: Snapshot,
    linked: Linked,
    *,
    links: MovedLinks,
    now: datetime,
) -> MigrationState | None:
    """Link the family and its members in one transaction; None if this run lost its claim.

    Raises MigrationFailure("MEMBERS_CHANGED") when the members changed meanwhile (retry),
    MigrationFailure("FAMILY_GONE") when the family was deleted meanwhile.
    """
    locked = (
        await session.execute(
            select(FamilyAccount.passport_family_id)
            .where(FamilyAccount.id == snapshot.account_id)
            .with_for_update()
        )
    ).one_or_none()
    if locked is None:
        raise MigrationFailure(
            "FAMILY_GONE",
            permanent=True,
            passport_family_id=linked.passport_family_id,
            orphaned=linked.created,
        )
    if not await _still_ours(session, snapshot):
        return None
    current = {m.member_id for m in await _members(session, snapshot.account_id)}
    if current != set(linked.members):
        gone = tuple(
            link.uid
            for member_id, link in linked.members.items()
            if member_id not in current
            and link.status is PortalStatus.LINKED
            and link.uid is not None
            and link.uid != linked.owner_uid
        )
        raise MigrationFailure(
            "MEMBERS_CHANGED",
            permanent=False,
            passport_family_id=linked.passport_family_id,
            unlink=gone,
        )
    taken = await session.scalar(
        select(func.count())
        .select_from(FamilyAccount)
        .where(
            FamilyAccount.passport_family_id == linked.passport_family_id,
            FamilyAccount.id != snapshot.account_id,
        )
    )
    if taken:
        raise MigrationFailure("PASSPORT_FAMILY_TAKEN", permanent=True)
    await session.execute(
        update(FamilyAccount)
        .where(FamilyAccount.id == snapshot.account_id)
        .values(passport_family_id=linked.passport_family_id, updated_at=now)
    )
    for member_id, link in linked.members.items():
        await session.execute(
            update(FamilyMember)
            .where(FamilyMember.id == member_id)
            .values(portal_status=link.status, portal_uid=link.uid, updated_at=now)
        )
    left_local = [m for m, link in linked.members.items() if link.status is not PortalStatus.LINKED]
    state = MigrationState.PARTIAL if left_local else MigrationState.DONE
    await _set_state(session, snapshot.account_id, state, None, now)
    await notify(session, _moved_notices(snapshot, linked, links), now=now)
    return state


async def _still_ours(session: AsyncSession, snapshot: Snapshot) -> bool:
    found = await session.execute(
        select(FamilyMigration.account_id).where(
            FamilyMigration.account_id == snapshot.account_id,
            FamilyMigration.state == MigrationState.RUNNING,
            FamilyMigration.attempts == snapshot.attempt,
        )
    )
    return found.first() is not None


def _moved_notices(snapshot: Snapshot, linked: Linked, links: MovedLinks) -> list[Notice]:
    notices = []
    for member in snapshot.members:
        link = linked.members[member.member_id]
        if link.status is not PortalStatus.LINKED:
            continue
        owner = member.role is FamilyRole.OWNER
        notices.append(
            Notice(
                user_id=member.user_id,
                account_id=snapshot.account_id,
                kind=FamilyNotificationKind.FAMILY_MOVED,
                dedupe_key=f"FAMILY_MOVED:{snapshot.account_id}:{member.user_id}",
                details={
                    "role": "OWNER" if owner else "MEMBER",
                    "deepLink": links.owner if owner else links.member,
                },
            )
        )
    stayed = [
        {"memberId": str(m.member_id), "phone": m.phone, "status": status.value}
        for m in snapshot.members
        if (status := linked.members[m.member_id].status) is not PortalStatus.LINKED
    ]
    if stayed:
        notices.append(
            Notice(
                user_id=snapshot.owner_id,
                account_id=snapshot.account_id,
                kind=FamilyNotificationKind.MEMBERS_WITHOUT_PORTAL,
                dedupe_key=f"MEMBERS_WITHOUT_PORTAL:{snapshot.account_id}:{linked.passport_family_id}",
                details={"members": stayed},
            )
        )
    return notices


async def record_failure(
    session: AsyncSession,
    snapshot: Snapshot,
    failure: MigrationFailure,
    *,
    max_attempts: int,
    now: datetime,
) -> MigrationState | None:
    """Note the failure: back to PENDING (to retry) or FAILED for good, the state returned;
    None when this run lost its claim (another run holds the family: nothing recorded)."""
    give_up = failure.permanent or snapshot.attempt >= max_attempts
    state = MigrationState.FAILED if give_up else MigrationState.PENDING
    result = await session.execute(
        update(FamilyMigration)
        .where(
            FamilyMigration.account_id == snapshot.account_id,
            FamilyMigration.state == MigrationState.RUNNING,
            FamilyMigration.attempts == snapshot.attempt,
        )
        .values(
            state=state,
            last_error=failure.code[:300],
            finished_at=now if give_up else None,
            lease_until=None,
            updated_at=now,
        )
        .returning(FamilyMigration.account_id)
    )
    if result.first() is None:
        return None
    metrics.migration_reached(state.value)
    return state


async def undo_in_passport(passport: PassportClient, failure: MigrationFailure) -> list[str]:
    """Undo in passport what a run that can't finish left there (see MigrationFailure; best
    effort): the passport ids (family or member uids) passport failed to remove now."""
    family_id = failure.passport_family_id
    if family_id is None:
        return []
    if failure.orphaned:
        try:
            await passport.delete_family(family_id)
        except PassportError:
            return [family_id]
        return []
    left: list[str] = []
    for uid in failure.unlink:
        try:
            await passport.remove_member(family_id, uid)
        except PassportError:
            left.append(uid)
    return left


async def lease_held_until(
    session: AsyncSession, account_id: uuid.UUID, *, now: datetime
) -> datetime | None:
    """When the lease of another run that holds the family (RUNNING) ends; None if none."""
    return await session.scalar(
        select(FamilyMigration.lease_until).where(
            FamilyMigration.account_id == account_id,
            FamilyMigration.state == MigrationState.RUNNING,
            FamilyMigration.lease_until >= now,
        )
    )


async def _set_state(
    session: AsyncSession,
    account_id: uuid.UUID,
    state: MigrationState,
    error: str | None,
    now: datetime,
) -> None:
    await session.execute(
        update(FamilyMigration)
        .where(FamilyMigration.account_id == account_id)
        .values(state=state, last_error=error, finished_at=now, lease_until=None, updated_at=now)
    )
    metrics.migration_reached(state.value)


def backoff(attempt: int, *, base: timedelta, cap: timedelta) -> timedelta:
    return min(base * (2 ** max(attempt - 1, 0)), cap)


# --- bulk (plan B) and the admin's view -------------------------------------------------


@dataclass(frozen=True, slots=True)
class BulkReport:
    examined: int
    eligible: int
    scheduled: int
    next_after: uuid.UUID | None  # the keyset cursor of the next batch; None: the last one


async def bulk_batch(
    session: AsyncSession,
    *,
    settings: Settings,
    after: uuid.UUID | None,
    batch_size: int,
    dry_run: bool,
    now: datetime,
) -> BulkReport:
    """One batch of plan B: schedule every eligible, unmigrated family (none with dry_run).

    Eligible: in the rollout, never scheduled or FAILED longer than the cooldown ago, so a
    dry run counts exactly the families the real run schedules.
    """
    query = (
        select(
            FamilyAccount.id,
            FamilyAccount.owner_id,
            FamilyMigration.state,
            FamilyMigration.finished_at,
        )
        .outerjoin(FamilyMigration, FamilyMigration.account_id == FamilyAccount.id)
        .where(FamilyAccount.passport_family_id.is_(None))
        .order_by(FamilyAccount.id)
        .limit(batch_size)
    )
    if after is not None:
        query = query.where(FamilyAccount.id > after)
    rows: Sequence[Any] = (await session.execute(query)).all()
    cooldown = timedelta(seconds=settings.family_migration_cooldown_seconds)
    chosen = [
        row
        for row in rows
        if _due(row.state, row.finished_at, now - cooldown)
        and eligible(settings, row.id, row.owner_id)
    ]
    scheduled = 0
    if not dry_run:
        for row in chosen:
            scheduled += await schedule(session, row.id, trigger="BULK", cooldown=cooldown, now=now)
    last = rows[-1].id if len(rows) == batch_size else None
    return BulkReport(len(rows), len(chosen), scheduled, last)


def _due(state: MigrationState | None, finished_at: datetime | None, failed_by: datetime) -> bool:
    """Whether `schedule` would take the family: no migration yet, or one FAILED by then."""
    if state is None:
        return True
    return state is MigrationState.FAILED and finished_at is not None and finished_at <= failed_by


async def list_migrations(
    session: AsyncSession, *, state: MigrationState | None, limit: int
) -> list[FamilyMigration]:
    """The newest migrations (of one state), for admins."""
    query = select(FamilyMigration).order_by(
        FamilyMigration.scheduled_at.desc(), FamilyMigration.account_id
    )
    if state is not None:
        query = query.where(FamilyMigration.state == state)
    return list((await session.scalars(query.limit(limit))).all())


async def counts_by_state(session: AsyncSession) -> dict[MigrationState, int]:
    rows = await session.execute(
        select(FamilyMigration.state, func.count()).group_by(FamilyMigration.state)
    )
    return {state: int(count) for state, count in rows}


async def start_by_admin(
    session: AsyncSession, account_id: uuid.UUID, *, settings: Settings, now: datetime
) -> FamilyMigration:
    """Schedule one family now, whatever the rollout says (not while in flight or done)."""
    if not migration_on(settings):
        raise DomainError(
            MigrationErrorCode.PASSPORT_OFF, "No passport is configured: migration is off.", None
        )
    account = (
        await session.execute(
            select(FamilyAccount.passport_family_id).where(FamilyAccount.id == account_id)
        )
    ).one_or_none()
    if account is None:
        raise DomainError(MigrationErrorCode.NOT_FOUND, "No such family.", "accountId")
    if account.passport_family_id is not None:
        raise DomainError(MigrationErrorCode.ALREADY_MIGRATED, "Migrated already.", "accountId")
    if not await schedule(session, account_id, trigger="ADMIN", cooldown=timedelta(0), now=now):
        raise DomainError(
            MigrationErrorCode.IN_FLIGHT, "Its migration is scheduled or running.", "accountId"
        )
    found = await session.get(FamilyMigration, account_id, populate_existing=True)
    assert found is not None
    return found
