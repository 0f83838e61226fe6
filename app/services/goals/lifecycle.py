"""A user goal's life: NEXT → ACTIVE → DONE | MISSED, and what each step tells the user.

Every step runs under the user's lock (`lock_user`), which is what serialises concurrent
orders, assignments and expiry for one user; the partial unique index on ACTIVE goals is the
database's backstop. A goal that ends activates the user's next NEXT goal in the same
transaction.

Domain events (`goal_event`) go to the user's pub/sub channel after commit, for the
`goalProgress` subscription; metrics are counted after commit too, so a rolled-back attempt
counts nothing.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.events import publish_after_commit, user_channel
from app.models.goals import (
    GoalNotification,
    NotificationKind,
    UserGoal,
    UserGoalStatus,
)
from app.models.identity import User, UserStatus
from app.services.goals.conditions import GoalConditions, goal_period, parse_conditions
from app.services.goals.metrics import GOALS_ACTIVATED, GOALS_MISSED
from app.uow import on_commit


class GoalEventKind:
    ACTIVATED = "ACTIVATED"
    PROGRESS = "PROGRESS"
    REVERSED = "REVERSED"
    DONE = "DONE"
    MISSED = "MISSED"
    ACHIEVEMENT = "ACHIEVEMENT"
    REMINDER = "REMINDER"


@functools.lru_cache(maxsize=1024)
def _conditions_from_bytes(raw: bytes) -> GoalConditions:
    return parse_conditions(orjson.loads(raw))


def snapshot_conditions(data: Mapping[str, Any]) -> GoalConditions:
    """A user goal's stored conditions, parsed once per distinct snapshot (they are immutable)."""
    return _conditions_from_bytes(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


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


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> UserStatus | None:
    """Take the user's row lock for this transaction; the user's status, None if no such user.

    FOR NO KEY UPDATE does not conflict with the KEY SHARE locks foreign keys take, so rows
    referencing the user can still be written by others. SQLite ignores it (one writer anyway).
    """
    status: UserStatus | None = await session.scalar(_LOCK_USER, {"user_id": user_id})
    return status


_LOCK_USER = (
    select(User.status).where(User.id == bindparam("user_id")).with_for_update(key_share=True)
)


def goal_event(
    session: AsyncSession,
    *,
    kind: str,
    user_id: uuid.UUID,
    user_goal_id: uuid.UUID,
    template_id: str,
    status: str,
    current: int,
    total: int,
    at: datetime,
) -> None:
    publish_after_commit(
        session,
        user_channel(user_id),
        {
            "type": "goal",
            "kind": kind,
            "userGoalId": str(user_goal_id),
            "templateId": template_id,
            "status": status,
            "current": current,
            "total": total,
            "at": at.isoformat(),
        },
    )


def event_for(session: AsyncSession, goal: UserGoal, kind: str, at: datetime) -> None:
    goal_event(
        session,
        kind=kind,
        user_id=goal.user_id,
        user_goal_id=goal.id,
        template_id=goal.goal_id,
        status=goal.status.value,
        current=goal.progress,
        total=goal.target,
        at=at,
    )


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


async def notify(
    session: AsyncSession, goal: UserGoal, kind: NotificationKind, now: datetime
) -> None:
    """Create the goal's in-app notification of `kind`, at most once per goal and kind."""
    await session.execute(
        upsert_insert(session, GoalNotification)
        .values(
            id=uuid.uuid4(),
            user_id=goal.user_id,
            user_goal_id=goal.id,
            kind=kind,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["user_goal_id", "kind"])
    )


async def has_active_goal(session: AsyncSession, user_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(UserGoal.id).where(
            UserGoal.user_id == user_id, UserGoal.status == UserGoalStatus.ACTIVE
        )
    )
    return found is not None
