"""In-app goal notifications: created at most once per goal and kind, acknowledged by the user.

Kinds: ACHIEVEMENT (the goal is done and its bonus granted), REMINDER (the active goal
expires soon), ASSIGNED (an admin assigned the goal). Reading them is `reading`'s job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.models.goals import GoalNotification, NotificationKind, UserGoal
from app.services.errors import DomainError
from app.services.goals.codes import MarkSeenErrorCode

MAX_MARK_SEEN = 100


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


def check_mark_seen(count: int, field: str) -> None:
    """Refuse acknowledging more than MAX_MARK_SEEN ids in one call (`field` names the list)."""
    if count > MAX_MARK_SEEN:
        raise DomainError(
            MarkSeenErrorCode.TOO_MANY_IDS, f"At most {MAX_MARK_SEEN} ids at once.", field
        )


async def mark_notifications_seen(
    session: AsyncSession, user_id: uuid.UUID, ids: Sequence[uuid.UUID], *, now: datetime
) -> int:
    """Acknowledge the caller's own notifications by id; other ids change nothing."""
    if not ids:
        return 0
    result = await session.execute(
        update(GoalNotification)
        .where(
            GoalNotification.user_id == user_id,
            GoalNotification.id.in_(ids),
            GoalNotification.seen_at.is_(None),
        )
        .values(seen_at=now, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def mark_achievements_seen(
    session: AsyncSession, user_id: uuid.UUID, user_goal_ids: Sequence[uuid.UUID], *, now: datetime
) -> int:
    """Acknowledge the caller's own achievements; other ids change nothing and say nothing."""
    if not user_goal_ids:
        return 0
    result = await session.execute(
        update(GoalNotification)
        .where(
            GoalNotification.user_id == user_id,
            GoalNotification.user_goal_id.in_(user_goal_ids),
            GoalNotification.kind == NotificationKind.ACHIEVEMENT,
            GoalNotification.seen_at.is_(None),
        )
        .values(seen_at=now, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
