"""The reads the API needs: promotions by id, a user's runs and rides, notifications, and
the funnel of a promotion. Low volume (admin, the landing), so plain SQLAlchemy.

The funnel counts runs by what they reached: `completed` counts COMPLETED, REWARDED and
REWARD_EXPIRED runs (each completed once). The median time to complete is taken over the
completed runs' (completed_at - started_at): by PostgreSQL, or in Python on SQLite, which
has no percentile function.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.promotions import (
    LoanApplication,
    PromotionNotification,
    PromotionRide,
    PromotionSplit,
    PromotionUser,
    PromotionUserStatus,
)

Status = PromotionUserStatus
REACHED_TARGET = (Status.COMPLETED, Status.REWARDED, Status.REWARD_EXPIRED)
MAX_ROWS = 100


@dataclass(frozen=True)
class Funnel:
    splits: int
    started: int
    completed: int
    rewarded: int
    expired: int
    reward_expired: int
    median_seconds_to_complete: float | None


async def funnel(session: AsyncSession, promotion_id: uuid.UUID) -> Funnel:
    splits = await session.scalar(
        select(func.count()).where(PromotionSplit.promotion_id == promotion_id)
    )
    by_status = {
        Status(row.status): int(row.n)
        for row in await session.execute(
            select(PromotionUser.status, func.count().label("n"))
            .where(PromotionUser.promotion_id == promotion_id)
            .group_by(PromotionUser.status)
        )
    }
    median = await _median_seconds_to_complete(session, promotion_id)
    return Funnel(
        splits=int(splits or 0),
        started=sum(by_status.values()),
        completed=sum(by_status.get(status, 0) for status in REACHED_TARGET),
        rewarded=by_status.get(Status.REWARDED, 0),
        expired=by_status.get(Status.EXPIRED, 0),
        reward_expired=by_status.get(Status.REWARD_EXPIRED, 0),
        median_seconds_to_complete=median,
    )


async def _median_seconds_to_complete(
    session: AsyncSession, promotion_id: uuid.UUID
) -> float | None:
    """In PostgreSQL (`percentile_cont`); SQLite has no percentile function, so there the
    completed runs' durations are read and the median taken here."""
    completed = (
        PromotionUser.promotion_id == promotion_id,
        PromotionUser.completed_at.is_not(None),
    )
    if session.get_bind().dialect.name == "postgresql":
        seconds = func.extract("epoch", PromotionUser.completed_at - PromotionUser.started_at)
        median = await session.scalar(
            select(func.percentile_cont(0.5).within_group(seconds)).where(*completed)
        )
        return None if median is None else float(median)
    durations = [
        (row.completed_at - row.started_at).total_seconds()
        for row in await session.execute(
            select(PromotionUser.started_at, PromotionUser.completed_at).where(*completed)
        )
    ]
    return statistics.median(durations) if durations else None


async def runs_of(session: AsyncSession, user_id: uuid.UUID) -> list[PromotionUser]:
    """The user's promotion history, newest first."""
    found = await session.scalars(
        select(PromotionUser)
        .where(PromotionUser.user_id == user_id)
        .order_by(PromotionUser.started_at.desc(), PromotionUser.id)
    )
    return list(found)


async def rides_of(
    session: AsyncSession, run_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PromotionRide]]:
    """Each run's ride ledger, newest first (at most MAX_ROWS per call in all)."""
    if not run_ids:
        return {}
    found = await session.scalars(
        select(PromotionRide)
        .where(PromotionRide.promotion_user_id.in_(set(run_ids)))
        .order_by(PromotionRide.created_at.desc(), PromotionRide.id)
        .limit(MAX_ROWS * max(1, len(run_ids)))
    )
    rides: dict[uuid.UUID, list[PromotionRide]] = {run_id: [] for run_id in run_ids}
    for ride in found:
        rides[ride.promotion_user_id].append(ride)
    return rides


async def run_by_id(session: AsyncSession, run_id: uuid.UUID) -> PromotionUser | None:
    return await session.get(PromotionUser, run_id)


async def application_of(session: AsyncSession, run_id: uuid.UUID) -> LoanApplication | None:
    return await session.scalar(
        select(LoanApplication).where(LoanApplication.promotion_user_id == run_id)
    )


async def notifications_of(
    session: AsyncSession, user_id: uuid.UUID
) -> list[PromotionNotification]:
    found = await session.scalars(
        select(PromotionNotification)
        .where(PromotionNotification.user_id == user_id)
        .order_by(PromotionNotification.created_at.desc(), PromotionNotification.id)
        .limit(MAX_ROWS)
    )
    return list(found)
