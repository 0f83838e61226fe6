"""The API's reads: the caller's family with its members, limits and cards; families by id.

Who sees what: every member sees the family, its members and its cards; the owner sees every
member's limit and usage, a member only their own (others' limits are not theirs to see).

In a migrated family the members come from passport (SPEC §5): passport's list, each joined
to the local mirror by passport uid (for the member id, role and limit). A member passport
has that the mirror lacks (the owner changed the family in passport directly) is listed with
no member id. Local members passport never took (NO_PORTAL_ACCOUNT, REFUSED) are listed
too. When passport fails, `members` is None with
`members_error = PASSPORT_UNAVAILABLE`, never the mirror presented as fresh.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.integrations.passport.client import PassportClient, PassportFamily
from app.integrations.passport.errors import PassportError
from app.models.family import (
    FamilyAccount,
    FamilyMember,
    FamilyMigration,
    FamilyPaymentMethod,
    FamilyRole,
    MigrationState,
    PaymentCard,
    PortalStatus,
)
from app.models.identity import User
from app.services.family.codes import FamilyErrorCode
from app.services.family.usage import USAGE, LimitState, limit_state, member_limit, usage_params


@dataclass(frozen=True, slots=True)
class CardView:
    id: str
    brand: str
    last4: str
    expires_month: int
    expires_year: int
    owner_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class MemberView:
    id: uuid.UUID | None  # None: in passport only, not mirrored here
    user_id: uuid.UUID | None
    phone: str | None
    role: FamilyRole
    accepted_at: datetime | None
    portal_status: PortalStatus
    limit: LimitState | None
    limit_hidden: bool  # another member's limit, which the caller may not see


@dataclass(frozen=True, slots=True)
class FamilyView:
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    color: str
    passport_family_id: str | None
    has_plus_multi: bool
    viewer_role: FamilyRole | None  # None: an admin outside the family
    accepted_at: datetime | None
    members: list[MemberView] | None
    members_error: FamilyErrorCode | None
    cards: list[CardView]
    main_card_id: str | None
    migration_state: MigrationState | None


async def family_id_of(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    """The family the user is a member of (accepted); None when in none."""
    return await session.scalar(
        select(FamilyMember.account_id).where(
            FamilyMember.user_id == user_id, FamilyMember.accepted_at.is_not(None)
        )
    )


async def accounts_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[FamilyAccount, frozenset[uuid.UUID]]]:
    """Families by id with their members' user ids (for `node(id:)` visibility)."""
    if not ids:
        return {}
    accounts = (await session.scalars(select(FamilyAccount).where(FamilyAccount.id.in_(ids)))).all()
    members: dict[uuid.UUID, set[uuid.UUID]] = {}
    for account_id, user_id in await session.execute(
        select(FamilyMember.account_id, FamilyMember.user_id).where(
            FamilyMember.account_id.in_(ids), FamilyMember.accepted_at.is_not(None)
        )
    ):
        members.setdefault(account_id, set()).add(user_id)
    return {a.id: (a, frozenset(members.get(a.id, ()))) for a in accounts}


async def cards_of(session: AsyncSession, account_id: uuid.UUID) -> list[CardView]:
    rows = await session.execute(
        select(
            PaymentCard.id,
            PaymentCard.brand,
            PaymentCard.last4,
            PaymentCard.expires_month,
            PaymentCard.expires_year,
            PaymentCard.user_id,
        )
        .join(FamilyPaymentMethod, FamilyPaymentMethod.card_id == PaymentCard.id)
        .where(FamilyPaymentMethod.account_id == account_id)
        .order_by(FamilyPaymentMethod.position)
    )
    return [CardView(*row) for row in rows]


async def own_cards(session: AsyncSession, user_id: uuid.UUID) -> list[CardView]:
    rows = await session.execute(
        select(
            PaymentCard.id,
            PaymentCard.brand,
            PaymentCard.last4,
            PaymentCard.expires_month,
            PaymentCard.expires_year,
            PaymentCard.user_id,
        )
        .where(PaymentCard.user_id == user_id)
        .order_by(PaymentCard.created_at, PaymentCard.id)
    )
    return [CardView(*row) for row in rows]


_OWNER = aliased(User)


async def _local_members(session: AsyncSession, account_id: uuid.UUID) -> list[Any]:
    rows = await session.execute(
        select(
            FamilyMember.id,
            FamilyMember.user_id,
            FamilyMember.role,
            FamilyMember.accepted_at,
            FamilyMember.portal_status,
            FamilyMember.portal_uid,
            FamilyMember.limit_amount_minor,
            FamilyMember.limit_currency,
            FamilyMember.limit_frame,
            FamilyAccount.owner_id,
            User.phone,
            _OWNER.timezone.label("owner_timezone"),
        )
        .join(FamilyAccount, FamilyAccount.id == FamilyMember.account_id)
        .join(User, User.id == FamilyMember.user_id)
        .join(_OWNER, _OWNER.id == FamilyAccount.owner_id)
        .where(FamilyMember.account_id == account_id)
        .order_by(FamilyMember.role.desc(), FamilyMember.accepted_at, FamilyMember.id)
    )
    return list(rows.all())


async def _limits(
    session: AsyncSession,
    account_id: uuid.UUID,
    rows: Sequence[Any],
    now: datetime,
) -> dict[uuid.UUID, LimitState]:
    """Each limited member's usage now, in one pipelined round trip on PostgreSQL."""
    limited = [(row.user_id, member_limit(row, now)) for row in rows if row.limit_frame]
    if not limited:
        return {}
    params = [usage_params(account_id, user_id, member, now) for user_id, member in limited]
    found = await USAGE.rows_many(session, params)
    return {
        user_id: limit_state(member, row.charged, row.held)
        for (user_id, member), row in zip(limited, found, strict=True)
    }


def _member_view(row: Any, limit: LimitState | None, visible: bool) -> MemberView:
    return MemberView(
        id=row.id,
        user_id=row.user_id,
        phone=row.phone,
        role=row.role,
        accepted_at=row.accepted_at,
        portal_status=row.portal_status,
        limit=limit if visible else None,
        limit_hidden=not visible and limit is not None,
    )


_NEVER_IN_PASSPORT = (PortalStatus.NO_PORTAL_ACCOUNT, PortalStatus.REFUSED)


def _from_passport(
    family: PassportFamily, rows: Sequence[Any], views: dict[uuid.UUID, MemberView]
) -> list[MemberView]:
    by_uid = {row.portal_uid: row for row in rows if row.portal_uid}
    listed: list[MemberView] = []
    for member in family.members:
        row = by_uid.get(member.uid)
        if row is not None:
            listed.append(views[row.id])
            continue
        role = FamilyRole.OWNER if member.role == "admin" else FamilyRole.MEMBER
        listed.append(
            MemberView(None, None, member.phone, role, None, PortalStatus.LINKED, None, False)
        )
    stayed = [
        views[row.id]
        for row in rows
        if row.portal_status in _NEVER_IN_PASSPORT or row.accepted_at is None
    ]
    return listed + stayed


async def family_of_viewer(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    passport: PassportClient | None,
    now: datetime,
) -> FamilyView | None:
    """The caller's family as the caller may see it; None when the caller is in none."""
    account_id = await family_id_of(session, user_id)
    if account_id is None:
        return None
    return await family_view(session, account_id, viewer_id=user_id, passport=passport, now=now)


async def family_view(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    viewer_id: uuid.UUID | None,
    passport: PassportClient | None,
    now: datetime,
) -> FamilyView | None:
    """A family as `viewer_id` may see it (None: an admin, who sees every limit)."""
    account = await session.get(FamilyAccount, account_id)
    if account is None:
        return None
    rows = await _local_members(session, account_id)
    limits = await _limits(session, account_id, rows, now)
    sees_all = viewer_id is None or account.owner_id == viewer_id
    views = {
        row.id: _member_view(row, limits.get(row.user_id), sees_all or row.user_id == viewer_id)
        for row in rows
    }
    members: list[MemberView] | None = list(views.values())
    error = None
    if account.passport_family_id is not None:
        members, error = await _passport_members(passport, account.passport_family_id, rows, views)
    me = next((r for r in rows if r.user_id == viewer_id and r.accepted_at is not None), None)
    migration = await session.scalar(
        select(FamilyMigration.state).where(FamilyMigration.account_id == account_id)
    )
    return FamilyView(
        id=account.id,
        owner_id=account.owner_id,
        name=account.name,
        color=account.color,
        passport_family_id=account.passport_family_id,
        has_plus_multi=account.has_plus_multi,
        viewer_role=me.role if me is not None else None,
        accepted_at=me.accepted_at if me is not None else None,
        members=members,
        members_error=error,
        cards=await cards_of(session, account_id),
        main_card_id=account.main_card_id,
        migration_state=migration,
    )


async def _passport_members(
    passport: PassportClient | None,
    passport_family_id: str,
    rows: Sequence[Any],
    views: dict[uuid.UUID, MemberView],
) -> tuple[list[MemberView] | None, FamilyErrorCode | None]:
    if passport is None:
        return None, FamilyErrorCode.PASSPORT_UNAVAILABLE
    try:
        family = await passport.get_family(passport_family_id)
    except PassportError:
        return None, FamilyErrorCode.PASSPORT_UNAVAILABLE
    if family is None:  # passport lost the family: nothing trustworthy to show
        return None, FamilyErrorCode.PASSPORT_UNAVAILABLE
    return _from_passport(family, rows, views), None


@dataclass(frozen=True, slots=True)
class FamilyCards:
    account_id: uuid.UUID
    passport_account: bool
    cards: list[CardView]
    main_card_id: str | None
    limit: LimitState | None  # the caller's own limit there (None: no limit)


@dataclass(frozen=True, slots=True)
class PaymentMethods:
    own: list[CardView]
    family: FamilyCards | None


async def payment_methods(
    session: AsyncSession, user_id: uuid.UUID, *, now: datetime
) -> PaymentMethods:
    """The caller's own cards, and the family's cards with what the caller may spend."""
    own = await own_cards(session, user_id)
    account_id = await family_id_of(session, user_id)
    if account_id is None:
        return PaymentMethods(own, None)
    account = await session.get(FamilyAccount, account_id)
    assert account is not None
    mine = [row for row in await _local_members(session, account_id) if row.user_id == user_id]
    limits = await _limits(session, account_id, mine, now)
    shared = [card for card in await cards_of(session, account_id) if card.owner_id != user_id]
    return PaymentMethods(
        own,
        FamilyCards(
            account_id=account_id,
            passport_account=account.passport_family_id is not None,
            cards=shared,
            main_card_id=account.main_card_id,
            limit=limits.get(user_id),
        ),
    )


@dataclass(frozen=True, slots=True)
class LaunchView:
    account_id: uuid.UUID
    role: FamilyRole
    passport_account: bool


async def launch_family(session: AsyncSession, user_id: uuid.UUID) -> LaunchView | None:
    """The caller's family at app start, in one statement."""
    row = (
        await session.execute(
            select(FamilyMember.account_id, FamilyMember.role, FamilyAccount.passport_family_id)
            .join(FamilyAccount, FamilyAccount.id == FamilyMember.account_id)
            .where(FamilyMember.user_id == user_id, FamilyMember.accepted_at.is_not(None))
        )
    ).one_or_none()
    if row is None:
        return None
    return LaunchView(row.account_id, row.role, row.passport_family_id is not None)


@dataclass(frozen=True, slots=True)
class InvitationView:
    account_id: uuid.UUID
    name: str
    color: str
    owner_phone: str | None
    invited_at: datetime


async def invitations_of(session: AsyncSession, user_id: uuid.UUID) -> list[InvitationView]:
    """The families that invited the user and wait for an answer, newest first."""
    rows = await session.execute(
        select(
            FamilyAccount.id,
            FamilyAccount.name,
            FamilyAccount.color,
            _OWNER.phone,
            FamilyMember.created_at,
        )
        .join(FamilyMember, FamilyMember.account_id == FamilyAccount.id)
        .join(_OWNER, _OWNER.id == FamilyAccount.owner_id)
        .where(FamilyMember.user_id == user_id, FamilyMember.accepted_at.is_(None))
        .order_by(FamilyMember.created_at.desc(), FamilyAccount.id)
    )
    return [InvitationView(*row) for row in rows]
