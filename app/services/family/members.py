"""A family's members and their limits: invite, accept or decline, remove, leave, limits.

The owner invites by phone (`add_member`); the invitee becomes a member when they accept:
nobody is put into a family without saying yes, and an invitation doesn't stop them joining
or creating another family meanwhile (one *accepted* membership per person). Every change
runs under the family lock (`accounts.locked_family` / `locked_invitation`). In a migrated
family a member change is made in passport first, then mirrored locally (SPEC §5): an
invitation needs a phone passport knows, accepting it adds them in passport, removing or
leaving removes them there; a refusal or failure of passport changes nothing here. A limit
is local in every family (passport keeps none); the owner may set it before acceptance.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.integrations.passport.client import PassportClient
from app.integrations.passport.errors import PassportError, PassportErrorCode
from app.models.family import (
    FamilyMember,
    FamilyRole,
    LimitFrame,
    PortalStatus,
)
from app.models.identity import User, UserStatus
from app.services.errors import DomainError
from app.services.family.accounts import (
    MAX_MEMBERS,
    LockedFamily,
    locked_family,
    locked_invitation,
    passport_call,
)
from app.services.family.codes import FamilyErrorCode
from app.services.validation import MAX_MINOR, InvalidValue, check_currency, normalize_phone


@dataclass(frozen=True, slots=True)
class LimitSpec:
    amount_minor: int
    currency: str
    frame: LimitFrame


def check_limit(limit: LimitSpec | None, field: str = "limit") -> LimitSpec | None:
    if limit is None:
        return None
    if not 0 <= limit.amount_minor <= MAX_MINOR:
        raise DomainError(
            FamilyErrorCode.INVALID_AMOUNT,
            f"A limit is 0-{MAX_MINOR} minor units.",
            f"{field}.amountMinor",
        )
    try:
        check_currency(limit.currency)
    except InvalidValue as exc:
        raise DomainError(FamilyErrorCode.INVALID_CURRENCY, str(exc), f"{field}.currency") from exc
    return limit


def _phone(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except InvalidValue as exc:
        raise DomainError(FamilyErrorCode.INVALID_PHONE, str(exc), "phone") from exc


async def _user_by_phone(session: AsyncSession, phone: str) -> uuid.UUID:
    found = await session.scalar(
        select(User.id).where(User.phone == phone, User.status == UserStatus.ACTIVE)
    )
    if found is None:
        raise DomainError(
            FamilyErrorCode.USER_NOT_FOUND, "Nobody with this phone number uses the app.", "phone"
        )
    return found


async def _accepted_family(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(
        select(FamilyMember.account_id).where(
            FamilyMember.user_id == user_id, FamilyMember.accepted_at.is_not(None)
        )
    )


async def _check_room(session: AsyncSession, family: LockedFamily, user_id: uuid.UUID) -> None:
    current = await _accepted_family(session, user_id)
    if current == family.id:
        raise DomainError(FamilyErrorCode.ALREADY_MEMBER, "Already in this family.", "phone")
    if current is not None:
        raise DomainError(FamilyErrorCode.ALREADY_IN_FAMILY, "They are in a family.", "phone")
    invited = await session.scalar(
        select(FamilyMember.id).where(
            FamilyMember.account_id == family.id, FamilyMember.user_id == user_id
        )
    )
    if invited is not None:
        raise DomainError(FamilyErrorCode.ALREADY_MEMBER, "Invited already.", "phone")
    count = await session.scalar(
        select(func.count()).select_from(FamilyMember).where(FamilyMember.account_id == family.id)
    )
    if int(count or 0) >= MAX_MEMBERS:
        raise DomainError(
            FamilyErrorCode.FAMILY_FULL,
            f"A family has at most {MAX_MEMBERS} people, the invited included.",
            "phone",
        )


async def _portal_uid(passport: PassportClient | None, phone: str, field: str | None) -> str:
    """The uid of the phone's passport account; NO_PORTAL_ACCOUNT if it has none."""
    account = await passport_call(passport, lambda client: client.find_account(phone))
    if account is None:
        raise DomainError(
            FamilyErrorCode.NO_PORTAL_ACCOUNT,
            "This family lives in passport, and this number has no passport account.",
            field,
        )
    return account.uid


async def add_member(
    session: AsyncSession,
    account_id: uuid.UUID,
    owner_id: uuid.UUID,
    *,
    phone: str,
    limit: LimitSpec | None,
    passport: PassportClient | None,
    now: datetime,
) -> uuid.UUID:
    """Invite the user with `phone` to the owner's family; the new member's id.

    They become a member when they accept (`accept`): nobody is put into a family without
    saying yes. In a migrated family the phone must have a passport account (asked now, so
    the owner hears at once); passport adds them when they accept.
    """
    family = await locked_family(session, account_id, owner_id)
    phone = _phone(phone)
    limit = check_limit(limit)
    user_id = await _user_by_phone(session, phone)
    if user_id == owner_id:
        raise DomainError(FamilyErrorCode.OWNER_IS_MEMBER, "You are the owner.", "phone")
    await _check_room(session, family, user_id)
    if family.passport_family_id is not None:
        await _portal_uid(passport, phone, "phone")
    member_id = uuid.uuid4()
    inserted = await session.execute(
        upsert_insert(session, FamilyMember)
        .values(
            id=member_id,
            account_id=account_id,
            user_id=user_id,
            role=FamilyRole.MEMBER,
            accepted_at=None,
            portal_status=PortalStatus.LOCAL,
            limit_amount_minor=limit.amount_minor if limit else None,
            limit_currency=limit.currency if limit else None,
            limit_frame=limit.frame if limit else None,
        )
        .on_conflict_do_nothing()
        .returning(FamilyMember.id)
    )
    if inserted.first() is None:  # a concurrent invitation of the same person won
        raise DomainError(FamilyErrorCode.ALREADY_MEMBER, "Invited already.", "phone")
    return member_id


async def _phone_of(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    return await session.scalar(select(User.phone).where(User.id == user_id))


async def accept(
    session: AsyncSession,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    passport: PassportClient | None,
    now: datetime,
) -> None:
    """Accept an invitation: the caller becomes a member (in passport first, once migrated).

    One accepted family per person: the partial unique index decides between two
    acceptances racing (the loser's update fails inside a savepoint: ALREADY_IN_FAMILY).
    """
    family, member_id = await locked_invitation(session, account_id, user_id)
    if await _accepted_family(session, user_id) is not None:
        raise DomainError(
            FamilyErrorCode.ALREADY_IN_FAMILY, "Leave your family first.", "accountId"
        )
    values: dict[str, object] = {"accepted_at": now, "updated_at": now}
    pfid = family.passport_family_id
    if pfid is not None:
        phone = await _phone_of(session, user_id)
        if phone is None:
            raise DomainError(
                FamilyErrorCode.NO_PORTAL_ACCOUNT, "No phone, no passport account.", "accountId"
            )
        uid = await _portal_uid(passport, phone, "accountId")
        await passport_call(passport, lambda client: client.add_member(pfid, uid))
        values |= {"portal_status": PortalStatus.LINKED, "portal_uid": uid}
    try:
        async with session.begin_nested():
            await session.execute(
                update(FamilyMember)
                .where(FamilyMember.id == member_id, FamilyMember.accepted_at.is_(None))
                .values(values)
            )
    except IntegrityError as exc:
        raise DomainError(
            FamilyErrorCode.ALREADY_IN_FAMILY, "Leave your family first.", "accountId"
        ) from exc


async def decline(session: AsyncSession, account_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Turn an invitation down (the owner may invite again)."""
    _, member_id = await locked_invitation(session, account_id, user_id)
    await session.execute(delete(FamilyMember).where(FamilyMember.id == member_id))


@dataclass(frozen=True, slots=True)
class _Member:
    id: uuid.UUID
    user_id: uuid.UUID
    role: FamilyRole
    portal_status: PortalStatus
    portal_uid: str | None


async def _member(
    session: AsyncSession, family: LockedFamily, member_id: uuid.UUID, field: str = "memberId"
) -> _Member:
    row = (
        await session.execute(
            select(
                FamilyMember.id,
                FamilyMember.user_id,
                FamilyMember.role,
                FamilyMember.portal_status,
                FamilyMember.portal_uid,
            ).where(FamilyMember.id == member_id, FamilyMember.account_id == family.id)
        )
    ).one_or_none()
    if row is None:
        raise DomainError(FamilyErrorCode.MEMBER_NOT_FOUND, "Not a member of this family.", field)
    return _Member(*row)


async def remove_member(
    session: AsyncSession,
    account_id: uuid.UUID,
    owner_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    passport: PassportClient | None,
) -> None:
    family = await locked_family(session, account_id, owner_id)
    member = await _member(session, family, member_id)
    if member.role is FamilyRole.OWNER:
        raise DomainError(
            FamilyErrorCode.OWNER_IS_MEMBER, "The owner deletes the family instead.", "memberId"
        )
    pfid, uid = family.passport_family_id, member.portal_uid
    if pfid is not None and member.portal_status is PortalStatus.LINKED and uid is not None:
        await passport_call(passport, lambda client: client.remove_member(pfid, uid))
    await session.execute(delete(FamilyMember).where(FamilyMember.id == member.id))


async def leave(
    session: AsyncSession,
    account_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    passport: PassportClient | None,
) -> None:
    family = await locked_family(session, account_id, user_id, owner=False)
    if family.owner_id == user_id:
        raise DomainError(
            FamilyErrorCode.OWNER_CANNOT_LEAVE,
            "The owner can't leave; delete the family instead.",
            "accountId",
        )
    row = (
        await session.execute(
            select(FamilyMember.id, FamilyMember.portal_status, FamilyMember.portal_uid).where(
                FamilyMember.account_id == account_id, FamilyMember.user_id == user_id
            )
        )
    ).one()
    pfid, uid = family.passport_family_id, row.portal_uid
    if pfid is not None and row.portal_status is PortalStatus.LINKED and uid is not None:
        await passport_call(passport, lambda client: _leave(client, pfid, uid))
    await session.execute(delete(FamilyMember).where(FamilyMember.id == row.id))


async def _leave(client: PassportClient, family_id: str, uid: str) -> None:
    """Leave the passport family; not being in it (any more) is what leaving wants."""
    try:
        await client.leave_family(family_id, uid)
    except PassportError as exc:
        if exc.code is not PassportErrorCode.NOT_FOUND:
            raise


async def set_limit(
    session: AsyncSession,
    account_id: uuid.UUID,
    owner_id: uuid.UUID,
    member_id: uuid.UUID,
    limit: LimitSpec | None,
    *,
    now: datetime,
) -> None:
    """Set (or with None, lift) a member's limit; the next ride check applies it."""
    family = await locked_family(session, account_id, owner_id)
    limit = check_limit(limit)
    member = await _member(session, family, member_id)
    if member.role is FamilyRole.OWNER:
        raise DomainError(
            FamilyErrorCode.OWNER_IS_MEMBER, "The owner's own rides have no limit.", "memberId"
        )
    await session.execute(
        update(FamilyMember)
        .where(FamilyMember.id == member.id)
        .values(
            limit_amount_minor=limit.amount_minor if limit else None,
            limit_currency=limit.currency if limit else None,
            limit_frame=limit.frame if limit else None,
            updated_at=now,
        )
    )
