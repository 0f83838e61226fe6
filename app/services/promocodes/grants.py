"""Granting a GRANTED-audience code to users and groups (and revoking grants); admin only.

A grant call reports an outcome per id instead of failing as a whole: unknown (or deleted)
users and unknown groups, blocked users, and ids that already hold the code are reported
and skipped; granting twice is a no-op. A group grant follows the group's membership at the
time a member uses the code.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.models.identity import AuditLog, Group, User, UserStatus
from app.models.promocodes import Audience, Promocode, PromocodeGrant
from app.services.errors import DomainError
from app.services.promocodes.codes import check_reason, get_promocode
from app.services.promocodes.errors import PromocodeErrorCode

MAX_GRANTEES_PER_CALL = 1000


class Grantee(enum.Enum):
    USER = "USER"
    GROUP = "GROUP"


class GrantStatus(enum.Enum):
    GRANTED = "GRANTED"
    ALREADY_GRANTED = "ALREADY_GRANTED"
    UNKNOWN_USER = "UNKNOWN_USER"  # no such user, or the account is deleted
    UNKNOWN_GROUP = "UNKNOWN_GROUP"
    USER_NOT_ACTIVE = "USER_NOT_ACTIVE"  # blocked


@dataclass(frozen=True, slots=True)
class GrantOutcome:
    grantee: Grantee
    id: uuid.UUID
    status: GrantStatus


@dataclass(slots=True)
class GrantResult:
    """One outcome per distinct id asked for, users first, in the order given."""

    promocode: Promocode
    outcomes: list[GrantOutcome] = field(default_factory=list)

    def count(self, status: GrantStatus) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status is status)

    @property
    def granted(self) -> int:
        return self.count(GrantStatus.GRANTED)

    @property
    def refused(self) -> list[GrantOutcome]:
        done = (GrantStatus.GRANTED, GrantStatus.ALREADY_GRANTED)
        return [outcome for outcome in self.outcomes if outcome.status not in done]


def _checked_ids(
    user_ids: Sequence[uuid.UUID], group_ids: Sequence[uuid.UUID]
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    users, groups = list(dict.fromkeys(user_ids)), list(dict.fromkeys(group_ids))
    if not 1 <= len(users) + len(groups) <= MAX_GRANTEES_PER_CALL:
        raise DomainError(
            PromocodeErrorCode.INVALID_GRANTEES,
            f"Give 1-{MAX_GRANTEES_PER_CALL} users and groups per call.",
            "userIds" if len(users) >= len(groups) else "groupIds",
        )
    return users, groups


async def _grantable(session: AsyncSession, promocode_id: uuid.UUID) -> Promocode:
    promocode = await get_promocode(session, promocode_id)
    if promocode.audience is not Audience.GRANTED:
        raise DomainError(
            PromocodeErrorCode.NOT_GRANTABLE,
            "This code is public: every user may use it. Set its audience to GRANTED first.",
            "promocodeId",
        )
    return promocode


async def _user_statuses(
    session: AsyncSession, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, GrantStatus]:
    """Refusals by id; the ids left out may be granted."""
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.status).where(User.id.in_(user_ids)))
    found = {user_id: status for user_id, status in rows.all()}
    refused: dict[uuid.UUID, GrantStatus] = {}
    for uid in user_ids:
        status = found.get(uid)
        if status is None or status is UserStatus.DELETED:
            refused[uid] = GrantStatus.UNKNOWN_USER
        elif status is not UserStatus.ACTIVE:
            refused[uid] = GrantStatus.USER_NOT_ACTIVE
    return refused


async def _group_statuses(
    session: AsyncSession, group_ids: list[uuid.UUID]
) -> dict[uuid.UUID, GrantStatus]:
    if not group_ids:
        return {}
    found = set(await session.scalars(select(Group.id).where(Group.id.in_(group_ids))))
    return {gid: GrantStatus.UNKNOWN_GROUP for gid in group_ids if gid not in found}


async def _insert_grants(
    session: AsyncSession,
    promocode_id: uuid.UUID,
    column: str,
    ids: list[uuid.UUID],
    actor: str,
) -> set[uuid.UUID]:
    """Insert the grants that don't exist yet; return the ids actually granted now."""
    if not ids:
        return set()
    statement = (
        upsert_insert(session, PromocodeGrant)
        .values([{"promocode_id": promocode_id, column: gid, "granted_by": actor} for gid in ids])
        .on_conflict_do_nothing()
        .returning(getattr(PromocodeGrant, column))
    )
    return set(await session.scalars(statement))


async def _grant_all(
    session: AsyncSession,
    result: GrantResult,
    grantee: Grantee,
    ids: list[uuid.UUID],
    refused: dict[uuid.UUID, GrantStatus],
    actor: str,
) -> None:
    column = "user_id" if grantee is Grantee.USER else "group_id"
    wanted = [gid for gid in ids if gid not in refused]
    granted = await _insert_grants(session, result.promocode.id, column, wanted, actor)
    for gid in ids:
        status = refused.get(gid) or (
            GrantStatus.GRANTED if gid in granted else GrantStatus.ALREADY_GRANTED
        )
        result.outcomes.append(GrantOutcome(grantee, gid, status))


async def grant_promocode(
    session: AsyncSession,
    promocode_id: uuid.UUID,
    *,
    user_ids: Sequence[uuid.UUID] = (),
    group_ids: Sequence[uuid.UUID] = (),
    actor: str,
    reason: str,
) -> GrantResult:
    """Grant a GRANTED code to users and groups; audited when anything was granted."""
    reason = check_reason(reason)
    users, groups = _checked_ids(user_ids, group_ids)
    result = GrantResult(await _grantable(session, promocode_id))
    await _grant_all(
        session, result, Grantee.USER, users, await _user_statuses(session, users), actor
    )
    await _grant_all(
        session, result, Grantee.GROUP, groups, await _group_statuses(session, groups), actor
    )
    if result.granted:
        session.add(
            AuditLog(
                actor=actor,
                action="promocode.grant",
                target=f"promocode:{promocode_id}",
                reason=reason,
            )
        )
    return result


async def revoke_grant(
    session: AsyncSession,
    promocode_id: uuid.UUID,
    *,
    user_ids: Sequence[uuid.UUID] = (),
    group_ids: Sequence[uuid.UUID] = (),
    actor: str,
    reason: str,
) -> int:
    """Remove grants; returns how many existed. Uses already taken stay; idempotent."""
    reason = check_reason(reason)
    users, groups = _checked_ids(user_ids, group_ids)
    promocode = await get_promocode(session, promocode_id)
    removed = 0
    for column, ids in ((PromocodeGrant.user_id, users), (PromocodeGrant.group_id, groups)):
        if ids:
            gone = await session.scalars(
                delete(PromocodeGrant)
                .where(PromocodeGrant.promocode_id == promocode.id, column.in_(ids))
                .returning(PromocodeGrant.id)
            )
            removed += len(list(gone))
    if removed:
        session.add(
            AuditLog(
                actor=actor,
                action="promocode.revoke_grant",
                target=f"promocode:{promocode.id}",
                reason=reason,
            )
        )
    return removed


def grants_query(promocode_id: uuid.UUID) -> Select[PromocodeGrant]:
    """The code's grants, newest first (ties broken by id, for cursor pagination)."""
    return (
        select(PromocodeGrant)
        .where(PromocodeGrant.promocode_id == promocode_id)
        .order_by(PromocodeGrant.created_at.desc(), PromocodeGrant.id.desc())
    )
