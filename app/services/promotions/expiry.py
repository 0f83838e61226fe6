"""Periodic promotion upkeep: store the statuses deadlines gave, remind before them.

`promotions.expire` makes true in the database what reads already show (`rules.status_at`):
STARTED runs past the challenge deadline become EXPIRED, COMPLETED runs past the claim
deadline REWARD_EXPIRED. It waits `PROMOTIONS_EXPIRY_GRACE_SECONDS` past the deadline, so a
ride completed just in time but processed late still counts. Each UPDATE re-checks status
and deadline in its WHERE, so the job, a read's lazy expiry (`runs.store_expiry`) and the
ride job can't both move one run: the first to write wins, the others change nothing.

`promotions.remind` writes one in-app notification per run and kind, a configurable time
(`PROMOTIONS_REMINDER_BEFORE_HOURS`, 48) before a deadline: CHALLENGE_ENDING for a STARTED
run still short of its target, CLAIM_ENDING for a COMPLETED run not yet claimed. The unique
(run, kind) index makes a repeat or an overlapping run of the job write nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.models.promotions import (
    PromotionNotification,
    PromotionNotificationKind,
    PromotionUser,
    PromotionUserStatus,
)
from app.services.promotions import metrics

Status = PromotionUserStatus
Kind = PromotionNotificationKind


async def expire_due(
    session: AsyncSession, *, now: datetime, grace: timedelta, batch_size: int
) -> int:
    """Store EXPIRED and REWARD_EXPIRED for up to `batch_size` runs of each; how many."""
    cutoff = now - grace
    expired = await _expire(
        session,
        Status.STARTED,
        Status.EXPIRED,
        PromotionUser.challenge_ends_at,
        cutoff,
        now,
        batch_size,
    )
    lapsed = await _expire(
        session,
        Status.COMPLETED,
        Status.REWARD_EXPIRED,
        PromotionUser.claim_ends_at,
        cutoff,
        now,
        batch_size,
    )
    metrics.expired(session, expired)
    metrics.reward_expired(session, lapsed)
    return expired + lapsed


async def _expire(
    session: AsyncSession,
    current: Status,
    new: Status,
    deadline: Any,
    cutoff: datetime,
    now: datetime,
    batch_size: int,
) -> int:
    due = list(
        await session.scalars(
            select(PromotionUser.id)
            .where(PromotionUser.status == current, deadline <= cutoff)
            .order_by(deadline)
            .limit(batch_size)
        )
    )
    if not due:
        return 0
    result = await session.execute(
        update(PromotionUser)
        .where(PromotionUser.id.in_(due), PromotionUser.status == current, deadline <= cutoff)
        .values(status=new, expired_at=now, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def remind_due(
    session: AsyncSession, *, now: datetime, before: timedelta, batch_size: int
) -> int:
    """Write the reminders now due; how many were new."""
    challenge = await _due(
        session,
        Kind.CHALLENGE_ENDING,
        PromotionUser.challenge_ends_at,
        (
            PromotionUser.status == Status.STARTED,
            PromotionUser.progress < PromotionUser.target_rides,
        ),
        now,
        before,
        batch_size,
    )
    claim = await _due(
        session,
        Kind.CLAIM_ENDING,
        PromotionUser.claim_ends_at,
        (PromotionUser.status == Status.COMPLETED,),
        now,
        before,
        batch_size,
    )
    rows = challenge + claim
    if not rows:
        return 0
    result = await session.execute(
        upsert_insert(session, PromotionNotification)
        .on_conflict_do_nothing(index_elements=["promotion_user_id", "kind"])
        .returning(PromotionNotification.id),
        rows,
    )
    return len(result.all())


async def _due(
    session: AsyncSession,
    kind: Kind,
    deadline: Any,
    conditions: tuple[Any, ...],
    now: datetime,
    before: timedelta,
    batch_size: int,
) -> list[dict[str, Any]]:
    reminded = select(PromotionNotification.id).where(
        PromotionNotification.promotion_user_id == PromotionUser.id,
        PromotionNotification.kind == kind,
    )
    found = await session.execute(
        select(PromotionUser.id, PromotionUser.user_id, deadline.label("deadline"))
        .where(*conditions, deadline > now, deadline <= now + before, ~reminded.exists())
        .order_by(deadline)
        .limit(batch_size)
    )
    return [
        {
            "promotion_user_id": row.id,
            "user_id": row.user_id,
            "kind": kind,
            "deadline": row.deadline,
        }
        for row in found
    ]
