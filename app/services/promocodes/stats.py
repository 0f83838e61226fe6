"""Per-code stats and the admin's lists: attempts (with true reasons) and purchases of a code.

The `*_query` functions return a Select ordered newest first, ties broken by id, for the API's
cursor connections; they read nothing themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.promocodes import (
    PromocodeAttempt,
    PromocodeGrant,
    PromocodeUse,
    Purchase,
    Rejection,
    ReleaseReason,
    UseStatus,
)
from app.services.promocodes.codes import get_promocode


@dataclass(frozen=True, slots=True)
class PromocodeStats:
    promocode_id: uuid.UUID
    uses: int  # the code's counter: uses held now (RESERVED + CONFIRMED)
    max_uses: int | None
    reserved: int  # ledger entries by status
    confirmed: int
    released: int
    released_by_reason: dict[ReleaseReason, int]
    rejections: dict[Rejection, int]  # rejected attempts by their true reason
    user_grants: int
    group_grants: int

    @property
    def remaining(self) -> int | None:
        return None if self.max_uses is None else max(self.max_uses - self.uses, 0)


async def promocode_stats(session: AsyncSession, promocode_id: uuid.UUID) -> PromocodeStats:
    promocode = await get_promocode(session, promocode_id)
    by_status = await _counts(session, PromocodeUse.status, PromocodeUse.promocode_id, promocode.id)
    return PromocodeStats(
        promocode_id=promocode.id,
        uses=promocode.uses,
        max_uses=promocode.max_uses,
        reserved=by_status.get(UseStatus.RESERVED, 0),
        confirmed=by_status.get(UseStatus.CONFIRMED, 0),
        released=by_status.get(UseStatus.RELEASED, 0),
        released_by_reason=await _counts(
            session,
            PromocodeUse.release_reason,
            PromocodeUse.promocode_id,
            promocode.id,
            PromocodeUse.status == UseStatus.RELEASED,
        ),
        rejections=await _counts(
            session, PromocodeAttempt.reason, PromocodeAttempt.promocode_id, promocode.id
        ),
        user_grants=await _grant_count(session, promocode.id, PromocodeGrant.user_id),
        group_grants=await _grant_count(session, promocode.id, PromocodeGrant.group_id),
    )


async def _counts(
    session: AsyncSession,
    key: Any,
    owner: Any,
    promocode_id: uuid.UUID,
    *conditions: Any,
) -> dict[Any, int]:
    rows = await session.execute(
        select(key, func.count()).where(owner == promocode_id, *conditions).group_by(key)
    )
    return {value: int(n) for value, n in rows.all() if value is not None}


async def _grant_count(session: AsyncSession, promocode_id: uuid.UUID, column: Any) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(PromocodeGrant)
        .where(PromocodeGrant.promocode_id == promocode_id, column.is_not(None))
    )
    return int(count or 0)


def attempts_query(
    *,
    user_id: uuid.UUID | None = None,
    promocode_id: uuid.UUID | None = None,
    reason: Rejection | None = None,
) -> Select[PromocodeAttempt]:
    """Rejected attempts, newest first, filtered by user, code and/or true reason."""
    query = select(PromocodeAttempt)
    if user_id is not None:
        query = query.where(PromocodeAttempt.user_id == user_id)
    if promocode_id is not None:
        query = query.where(PromocodeAttempt.promocode_id == promocode_id)
    if reason is not None:
        query = query.where(PromocodeAttempt.reason == reason)
    return query.order_by(PromocodeAttempt.created_at.desc(), PromocodeAttempt.id.desc())


def purchases_of_code_query(promocode_id: uuid.UUID) -> Select[Purchase]:
    """Purchases made with the code (every status), newest first."""
    return (
        select(Purchase)
        .where(Purchase.promocode_id == promocode_id)
        .order_by(Purchase.created_at.desc(), Purchase.id.desc())
    )
