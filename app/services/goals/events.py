"""Goal push events: what happened to a user goal, for the `goalProgress` subscription.

Events go to the user's pub/sub channel after commit (`app.events.publish_after_commit`), so
a rolled-back step tells nobody anything. The message contract is documented with its reader,
`schema/goals/events.py`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.events import publish_after_commit, user_channel
from app.models.goals import UserGoal

EVENT_TYPE = "goal"


class GoalEventKind(enum.StrEnum):
    ACTIVATED = "ACTIVATED"
    PROGRESS = "PROGRESS"
    REVERSED = "REVERSED"
    DONE = "DONE"
    MISSED = "MISSED"
    ACHIEVEMENT = "ACHIEVEMENT"
    REMINDER = "REMINDER"


def goal_event(
    session: AsyncSession,
    *,
    kind: GoalEventKind,
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
            "type": EVENT_TYPE,
            "kind": kind.value,
            "userGoalId": str(user_goal_id),
            "templateId": template_id,
            "status": status,
            "current": current,
            "total": total,
            "at": at.isoformat(),
        },
    )


def event_for(session: AsyncSession, goal: UserGoal, kind: GoalEventKind, at: datetime) -> None:
    """The event of `goal` as it is now."""
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
