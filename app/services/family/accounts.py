"""A family account's life: create, delete, the Plus Multi flag, and the lock changes take.

Locking: every change to a family's members, limits or cards first locks the family row
(`locked_family`: `SELECT … FOR UPDATE` on PostgreSQL; on SQLite the unit of work holds the
write lock from its first statement), so the owner's checks and the write they lead to can't
interleave with another change of the same family. "One family per user" is the unique index
on `family_members.user_id`: an insert that loses a race inserts nothing (ON CONFLICT DO
NOTHING) and answers ALREADY_IN_FAMILY.

A migrated family is changed in passport first (`members`, `delete_family`): the call happens
under the family lock, and nothing local changes when passport refuses or fails.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.integrations.passport.client import PassportClient
from app.integrations.passport.errors import PassportError, PassportErrorCode
from app.models.family import (
    FamilyAccount,
    FamilyHold,
    FamilyMember,
    FamilyRole,
    HoldStatus,
    PortalStatus,
)
from app.services.errors import DomainError
from app.services.family.codes import FamilyErrorCode

MAX_NAME = 64
MAX_MEMBERS = 8  # the owner included, as passport allows
_COLOR = re.compile(r"^#?([0-9A-Fa-f]{6})$")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LockedFamily:
    id: uuid.UUID
    owner_id: uuid.UUID
    passport_family_id: str | None


def check_name(raw: str, field: str = "name") -> str:
    name = " ".join(raw.split())
    if not 1 <= len(name) <= MAX_NAME or not all(unicodedata.category(ch)[0] != "C" for ch in name):
        raise DomainError(
            FamilyErrorCode.INVALID_NAME, f"A name is 1-{MAX_NAME} printable characters.", field
        )
    return name


def check_color(raw: str, field: str = "color") -> str:
    match = _COLOR.match(raw.strip())
    if match is None:
        raise DomainError(
            FamilyErrorCode.INVALID_COLOR, "A color is six hex digits, RRGGBB.", field
        )
    return match.group(1).upper()


async def locked_family(
    session: AsyncSession, account_id: uuid.UUID, user_id: uuid.UUID, *, owner: bool = True
) -> LockedFamily:
    """The family, locked, if `user_id` belongs to it (and owns it, with `owner`).

    A family the caller is not in (or only invited to) is NOT_FOUND (ids can't be probed); a
    member who isn't the owner gets NOT_OWNER.
    """
    row = (
        await session.execute(
            select(
                FamilyAccount.id,
                FamilyAccount.owner_id,
                FamilyAccount.passport_family_id,
                exists()
                .where(FamilyMember.account_id == FamilyAccount.id)
                .where(FamilyMember.user_id == user_id)
                .where(FamilyMember.accepted_at.is_not(None))
                .label("is_member"),
            )
            .where(FamilyAccount.id == account_id)
            .with_for_update(of=FamilyAccount)
        )
    ).one_or_none()
    if row is None or not row.is_member:
        raise DomainError(FamilyErrorCode.NOT_FOUND, "No such family.", "accountId")
    if owner and row.owner_id != user_id:
        raise DomainError(
            FamilyErrorCode.NOT_OWNER, "Only the family's owner can do this.", "accountId"
        )
    return LockedFamily(row.id, row.owner_id, row.passport_family_id)


async def locked_invitation(
    session: AsyncSession, account_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[LockedFamily, uuid.UUID]:
    """The family, locked, and the caller's pending invitation to it; NOT_FOUND if none."""
    row = (
        await session.execute(
            select(
                FamilyAccount.id,
                FamilyAccount.owner_id,
                FamilyAccount.passport_family_id,
                FamilyMember.id.label("member_id"),
            )
            .join(FamilyMember, FamilyMember.account_id == FamilyAccount.id)
            .where(
                FamilyAccount.id == account_id,
                FamilyMember.user_id == user_id,
                FamilyMember.accepted_at.is_(None),
            )
            .with_for_update(of=FamilyAccount)
        )
    ).one_or_none()
    if row is None:
        raise DomainError(FamilyErrorCode.NOT_FOUND, "No invitation to this family.", "accountId")
    return LockedFamily(row.id, row.owner_id, row.passport_family_id), row.member_id


async def create_family(
    session: AsyncSession, owner_id: uuid.UUID, *, name: str, color: str, now: datetime
) -> uuid.UUID:
    """A new family owned by the caller, who becomes its OWNER member."""
    name, color = check_name(name), check_color(color)
    account_id = uuid.uuid4()
    inserted = await session.execute(
        upsert_insert(session, FamilyAccount)
        .values(id=account_id, owner_id=owner_id, type="FAMILY", name=name, color=color)
        .on_conflict_do_nothing()
        .returning(FamilyAccount.id)
    )
    if inserted.first() is None:
        raise _already_in_family("You own a family already.")
    member = await session.execute(
        upsert_insert(session, FamilyMember)
        .values(
            id=uuid.uuid4(),
            account_id=account_id,
            user_id=owner_id,
            role=FamilyRole.OWNER,
            accepted_at=now,
            portal_status=PortalStatus.LOCAL,
        )
        .on_conflict_do_nothing()
        .returning(FamilyMember.id)
    )
    if member.first() is None:
        raise _already_in_family("You are a member of another family; leave it first.")
    return account_id


def _already_in_family(message: str) -> DomainError:
    return DomainError(FamilyErrorCode.ALREADY_IN_FAMILY, message, None)


async def has_live_holds(session: AsyncSession, account_id: uuid.UUID, now: datetime) -> bool:
    found = await session.execute(
        select(FamilyHold.id)
        .where(
            FamilyHold.account_id == account_id,
            FamilyHold.status == HoldStatus.HELD,
            FamilyHold.expires_at > now,
        )
        .limit(1)
    )
    return found.first() is not None


async def delete_family(
    session: AsyncSession,
    account_id: uuid.UUID,
    owner_id: uuid.UUID,
    *,
    passport: PassportClient | None,
    now: datetime,
) -> None:
    """Delete the owner's family (in passport first, once migrated); refused while a ride
    holds part of a limit, since the ride's charge would have no family to land on."""
    family = await locked_family(session, account_id, owner_id)
    if await has_live_holds(session, account_id, now):
        raise DomainError(
            FamilyErrorCode.RIDE_IN_PROGRESS,
            "A member's ride is under way; delete the family once it ends.",
            "accountId",
        )
    if family.passport_family_id is not None:
        pfid = family.passport_family_id
        await passport_call(passport, lambda client: client.delete_family(pfid))
    await session.execute(delete(FamilyAccount).where(FamilyAccount.id == account_id))


async def set_plus_multi(
    session: AsyncSession, account_id: uuid.UUID, enabled: bool, *, now: datetime
) -> bool:
    """Set the family's Plus Multi flag (the subscription system's call); False if unknown."""
    result = await session.execute(
        update(FamilyAccount)
        .where(FamilyAccount.id == account_id)
        .values(has_plus_multi=enabled, updated_at=now)
        .returning(FamilyAccount.id)
    )
    return result.first() is not None


async def passport_call(
    passport: PassportClient | None, step: Callable[[PassportClient], Awaitable[T]]
) -> T:
    """Run one passport step for a migrated family; its failures become typed errors."""
    if passport is None:
        raise DomainError(
            FamilyErrorCode.PASSPORT_UNAVAILABLE,
            "The family lives in passport, which is not configured here.",
            None,
        )
    try:
        return await step(passport)
    except PassportError as exc:
        raise passport_failure(exc) from exc


_PASSPORT_REFUSALS = {
    PassportErrorCode.ALREADY_IN_FAMILY: (
        FamilyErrorCode.ALREADY_IN_FAMILY,
        "The user is in another family.",
    ),
    PassportErrorCode.FAMILY_FULL: (FamilyErrorCode.FAMILY_FULL, "The family has no room left."),
    PassportErrorCode.CANNOT_REMOVE_ADMIN: (
        FamilyErrorCode.OWNER_IS_MEMBER,
        "The owner can't be removed.",
    ),
}


def passport_failure(exc: PassportError) -> DomainError:
    """The client's view of a passport error: a refusal it can act on, else UNAVAILABLE."""
    refusal = _PASSPORT_REFUSALS.get(exc.code)
    if refusal is None:
        return DomainError(
            FamilyErrorCode.PASSPORT_UNAVAILABLE,
            "Passport is unavailable; nothing was changed. Try again later.",
            None,
        )
    return DomainError(refusal[0], refusal[1], None)
