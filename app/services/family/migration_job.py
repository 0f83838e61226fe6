"""The migration job's steps (jobs/family.py runs them): claim, link in passport, finish.

Three steps so no database transaction waits on passport: `claim` (PENDING, or RUNNING with
an expired lease → RUNNING, attempts + 1, a snapshot of the accepted members), then
`link_in_passport` (no database: find the owner's passport account and family, create it if
there is none — idempotent by a key derived from the family — and add or match every member),
then `finish` (under the family lock: `passport_family_id` and every member's status in one
transaction, DONE or PARTIAL, the "your family moved" notifications) or `record_failure`
(back to PENDING for a retry with backoff, or FAILED). Nothing is half-linked: the family and
its members change together or not at all, and passport's side is found again by the next
attempt (find-or-create, adds are idempotent). Members changed while passport was being
called: the run is not finished, the members removed meanwhile are taken out of the passport
family again (`undo_in_passport`) and the job tries again; a family deleted meanwhile has the
passport family this run created deleted too. Scheduling is `app.services.family.migration`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

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
from app.services.family import metrics
from app.services.family.notifications import Notice, notify


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
