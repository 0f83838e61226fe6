"""A user goal's life: NEXT → ACTIVE → DONE | MISSED.

This module activates the next goal and marks goals MISSED; the caller holds the user's lock
(`locking`). A goal that ends activates the user's next NEXT goal in the same transaction.
Each step publishes its goal event (`events`) and counts its metric after commit, so a
rolled-back attempt tells and counts nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.goals import UserGoal, UserGoalStatus
from app.services.goals.conditions import GoalConditions, goal_period, snapshot_conditions
from app.services.goals.events import GoalEventKind, event_for
from app.services.goals.metrics import GOALS_ACTIVATED, GOALS_MISSED
from app.uow import on_commit


def user_goal_period(
    conditions: GoalConditions,
    at: datetime,
    custom_starts_at: datetime | None,
    custom_ends_at: datetime | None,
) -> tuple[datetime, datetime]:
    """[starts_at, expires_at) for a goal activated at `at`.

    An assignment's own start delays the period (never before activation); its own end
    replaces the template's deadline.
    """
    anchor = max(at, custom_starts_at) if custom_starts_at is not None else at
    starts_at, expires_at = goal_period(conditions, anchor)
    if custom_ends_at is not None:
        expires_at = custom_ends_at
    return starts_at, expires_at


async def activate_next(
    session: AsyncSession, user_id: uuid.UUID, *, at: datetime
) -> UserGoal | None:
    """Make the user's first NEXT goal ACTIVE from `at`; the caller holds the user's lock.

    A waiting goal whose own deadline already passed is MISSED on the way.
    """
    while True:
        candidate = await session.scalar(
            select(UserGoal)
            .where(UserGoal.user_id == user_id, UserGoal.status == UserGoalStatus.NEXT)
            .order_by(UserGoal.position, UserGoal.created_at, UserGoal.id)
            .limit(1)
        )
        if candidate is None:
            return None
        conditions = snapshot_conditions(candidate.conditions)
        starts_at, expires_at = user_goal_period(
            conditions, at, candidate.custom_starts_at, candidate.custom_ends_at
        )
        if expires_at <= max(starts_at, at):
            mark_missed(session, candidate, at)
            await session.flush()
            continue
        candidate.status = UserGoalStatus.ACTIVE
        candidate.starts_at, candidate.expires_at = starts_at, expires_at
        candidate.activated_at = at
        await session.flush()
        on_commit(session, GOALS_ACTIVATED.inc)
        event_for(session, candidate, GoalEventKind.ACTIVATED, at)
        return candidate


def mark_missed(session: AsyncSession, goal: UserGoal, at: datetime) -> None:
    goal.status = UserGoalStatus.MISSED
    goal.missed_at = at
    on_commit(session, GOALS_MISSED.inc)
    event_for(session, goal, GoalEventKind.MISSED, at)


async def has_active_goal(session: AsyncSession, user_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(UserGoal.id).where(
            UserGoal.user_id == user_id, UserGoal.status == UserGoalStatus.ACTIVE
        )
    )
    return found is not None
