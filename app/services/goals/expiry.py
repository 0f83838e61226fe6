"""Periodic goal upkeep: expire ACTIVE goals past their deadline, remind before it.

Reads never show an expired goal as active (they compute the status), and `goals.expire`
makes it true in the database: MISSED, and the user's next goal activated. A grace period
leaves room for orders completed just before the deadline but processed after it.

`goals.remind` creates one REMINDER notification per goal a configurable time before its
deadline, for goals not yet reached.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.goals import NotificationKind, UserGoal, UserGoalStatus
from app.services.goals.events import GoalEventKind, event_for
from app.services.goals.lifecycle import activate_next, mark_missed
from app.services.goals.locking import lock_user
from app.services.goals.notifications import notify


async def expire_due(
    session: AsyncSession, *, now: datetime, grace: timedelta, batch_size: int
) -> int:
    """Mark up to `batch_size` overdue ACTIVE goals MISSED; returns how many."""
    cutoff = now - grace
    user_ids = (
        await session.scalars(
            select(UserGoal.user_id)
            .where(UserGoal.status == UserGoalStatus.ACTIVE, UserGoal.expires_at <= cutoff)
            .order_by(UserGoal.expires_at)
            .limit(batch_size)
        )
    ).all()
    expired = 0
    for user_id in user_ids:
        expired += await _expire_user(session, user_id, now=now, cutoff=cutoff)
    return expired


async def _expire_user(
    session: AsyncSession, user_id: uuid.UUID, *, now: datetime, cutoff: datetime
) -> int:
    if not await lock_user(session, user_id):
        return 0
    goal = await session.scalar(
        select(UserGoal).where(
            UserGoal.user_id == user_id,
            UserGoal.status == UserGoalStatus.ACTIVE,
            UserGoal.expires_at <= cutoff,
        )
    )
    if goal is None:  # an order closed it, or another run expired it, meanwhile
        return 0
    mark_missed(session, goal, now)
    await session.flush()
    # The next goal's period starts when this one ended, as after a DONE goal.
    assert goal.expires_at is not None
    await activate_next(session, user_id, at=goal.expires_at)
    return 1


async def remind_due(
    session: AsyncSession, *, now: datetime, before: timedelta, batch_size: int
) -> int:
    """Create REMINDER notifications for ACTIVE goals expiring within `before`."""
    goals = (
        await session.scalars(
            select(UserGoal)
            .where(
                UserGoal.status == UserGoalStatus.ACTIVE,
                UserGoal.reminded_at.is_(None),
                UserGoal.expires_at > now,
                UserGoal.expires_at <= now + before,
            )
            .order_by(UserGoal.expires_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for goal in goals:
        goal.reminded_at = now
        await notify(session, goal, NotificationKind.REMINDER, now)
        event_for(session, goal, GoalEventKind.REMINDER, now)
    return len(goals)
